//! The ecom gateway's wire, as the sandbox reads it: POST JSON only, strict (an unknown field is
//! an error), `amount` and `sessionTimeoutSecs` integers, `currency`, `orderNumber` and the
//! other scalars strings, `jsonParams` and `orderBundle` objects, no `token`. What passes is
//! turned into the same parameters the legacy host's form gives, so one bank answers both.

use super::bank::{Params, Refusal};
use crate::gateway::Method;

const INTEGERS: [&str; 2] = ["amount", "sessionTimeoutSecs"];
const OBJECTS: [&str; 2] = ["jsonParams", "orderBundle"];
const CREDENTIALS: [&str; 2] = ["userName", "password"];

/// The fields a method takes on the ecom host (besides the credentials).
fn fields(method: Method) -> &'static [&'static str] {
    match method {
        Method::Register | Method::RegisterPreAuth => &crate::gateway::ECOM_REGISTER_FIELDS,
        Method::Deposit => &["orderId", "amount", "orderBundle"],
        Method::Reverse | Method::Refund => &["orderId", "amount", "jsonParams", "orderBundle"],
        Method::Decline => &["orderId", "orderNumber", "merchantLogin"],
        Method::OrderStatus | Method::OrderStatusExtended => {
            &["orderId", "orderNumber", "merchantLogin", "language"]
        }
        Method::PaymentOrderBinding => &["mdOrder", "bindingId", "ip"],
        Method::ReceiptStatus => &["orderId", "orderNumber", "receiptId"],
    }
}

fn refusal(message: String) -> Refusal {
    Refusal { code: 5, message }
}

/// A JSON body as parameters, or the refusal the strict host gives.
pub(super) fn params(method: Method, body: &[u8]) -> Result<Params, Refusal> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| refusal(format!("Invalid request: the body must be JSON ({e})")))?;
    let object = value
        .as_object()
        .ok_or_else(|| refusal("Invalid request: the body must be a JSON object".into()))?;
    let allowed = fields(method);
    let mut pairs = Vec::with_capacity(object.len());
    for (name, value) in object {
        let name = name.as_str();
        if !allowed.contains(&name) && !CREDENTIALS.contains(&name) {
            return Err(refusal(format!("Unknown field: {name}")));
        }
        let text = if INTEGERS.contains(&name) {
            match value.as_u64() {
                Some(n) => n.to_string(),
                None => {
                    return Err(refusal(format!(
                        "Invalid field type: {name} must be an integer"
                    )))
                }
            }
        } else if OBJECTS.contains(&name) {
            if !value.is_object() {
                return Err(refusal(format!(
                    "Invalid field type: {name} must be an object"
                )));
            }
            value.to_string()
        } else {
            match value.as_str() {
                Some(s) => s.to_string(),
                None => {
                    return Err(refusal(format!(
                        "Invalid field type: {name} must be a string"
                    )))
                }
            }
        };
        pairs.push((name.to_string(), text));
    }
    Ok(Params::ecom(pairs))
}

/// The ecom host always sends `errorCode`, as a string: "0" on success.
pub(super) fn with_error_code(mut reply: serde_json::Value) -> serde_json::Value {
    if let Some(object) = reply.as_object_mut() {
        let code = match object.get("errorCode") {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => "0".to_string(),
        };
        object.insert("errorCode".into(), serde_json::Value::String(code));
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_types_and_fields() {
        let ok = params(
            Method::Register,
            br#"{"userName":"u","password":"p","orderNumber":"N1","amount":100,"currency":"643","returnUrl":"https://x/","jsonParams":{"a":"b"}}"#,
        )
        .unwrap();
        assert_eq!(ok.get("amount"), Some("100"));
        assert_eq!(ok.get("jsonParams"), Some(r#"{"a":"b"}"#));
        for (body, why) in [
            (&br#"{"amount":"100"}"#[..], "amount must be an integer"),
            (br#"{"currency":643}"#, "currency must be a string"),
            (br#"{"orderNumber":17}"#, "orderNumber must be a string"),
            (br#"{"token":"t"}"#, "Unknown field: token"),
            (br#"{"dynamicCallbackUrl":"https://x/"}"#, "Unknown field"),
            (br#"{"jsonParams":"{}"}"#, "jsonParams must be an object"),
            (br#"[1,2]"#, "a JSON object"),
            (b"amount=100", "must be JSON"),
            (br#"{"amount":-5}"#, "amount must be an integer"),
        ] {
            let refused = params(Method::Register, body).unwrap_err();
            assert!(
                refused.message.contains(why),
                "{}: {}",
                String::from_utf8_lossy(body),
                refused.message
            );
        }
    }

    #[test]
    fn every_reply_carries_a_string_error_code() {
        let ok = with_error_code(serde_json::json!({"orderId": "x"}));
        assert_eq!(ok["errorCode"], "0");
        let refused = with_error_code(serde_json::json!({"errorCode": 6, "errorMessage": "no"}));
        assert_eq!(refused["errorCode"], "6");
    }
}
