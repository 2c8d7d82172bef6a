//! The bank's cloud fiscalisation, as the sandbox plays it: the cart that comes with an order
//! (`orderBundle`) checked as the bank checks it — the lines add up to the amount and to the
//! total, each line's sum is quantity × price rounded to the kopeck, the fields each host
//! requires are there — and refused with the bank's code; then a receipt "issued" for each
//! money movement of such an order (sell at the payment or the deposit, sell refund at a refund
//! or a reversal of taken money), kept in the ledger and answered by `getReceiptStatus`.
//! Written from the bank's public API descriptions (the project's fiscal reference, §3).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{refuse, Params, Refusal};
use crate::money::Kopecks;

/// A receipt the sandbox's cloud ККТ made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxReceipt {
    pub receipt_id: String,
    /// `AUTHORIZATION`, `COMPLETION`, `REFUND`, `REVERSAL`.
    pub operation_type: String,
    /// `SELL` or `SELL_REFUND`.
    pub receipt_type: String,
    pub amount: Kopecks,
    /// 3 done; 4, 5, 6 failed (as `fail_next_receipt` asked).
    pub receipt_status: i64,
    pub fiscal_document_number: u64,
    pub at: DateTime<Utc>,
    /// The failure's text, when it failed.
    pub error: Option<String>,
    /// How many lines its cart had.
    pub lines: usize,
}

impl SandboxReceipt {
    /// As `getReceiptStatus` shows it.
    pub fn json(&self, number: &str) -> Value {
        let mut r = serde_json::json!({
            "receiptId": self.receipt_id,
            "operationType": self.operation_type,
            "receiptType": self.receipt_type,
            "receiptStatus": self.receipt_status,
            "timestamp": self.at.with_timezone(&chrono_tz::Europe::Moscow).format("%d.%m.%Y %H:%M:%S").to_string(),
        });
        if self.receipt_status == 3 {
            r["payload"] = serde_json::json!({
                "fiscalReceiptNumber": self.fiscal_document_number - 1000,
                "shiftNumber": 12,
                "receiptDatetime": r["timestamp"],
                "total": self.amount.get(),
                "fnNumber": "9999078902004417",
                "ecrRegistrationNumber": "0000000400054952",
                "fiscalDocumentNumber": self.fiscal_document_number,
                "fiscalDocumentAttribute": 2_000_000_000u64 + self.fiscal_document_number,
                "fnsSite": "nalog.gov.ru",
                "ofdInn": "7704211201",
                "ofdReceiptUrl": format!("https://ofd.example/check/{number}/{}", self.fiscal_document_number),
            });
        } else {
            r["error"] = serde_json::json!({
                "code": self.receipt_status,
                "text": self.error.clone().unwrap_or_default(),
                "recommendation": if self.receipt_status == 5 { 1 } else { 2 },
            });
        }
        r
    }
}

/// What the sandbox's cloud ККТ does next: how many it made, and a failure it was told to give
/// the next receipt (`receiptStatus`, the error's text).
#[derive(Debug, Default)]
pub(super) struct Kkt {
    made: u64,
    pub fail_next: Option<(i64, String)>,
}

impl Kkt {
    /// A receipt for a movement of an order that came with a cart.
    pub(super) fn issue(
        &mut self,
        operation: &str,
        refund: bool,
        amount: Kopecks,
        lines: usize,
        now: DateTime<Utc>,
    ) -> SandboxReceipt {
        self.made += 1;
        let (status, error) = match self.fail_next.take() {
            Some((status, text)) => (status, Some(text)),
            None => (3, None),
        };
        SandboxReceipt {
            receipt_id: uuid::Uuid::new_v4().to_string(),
            operation_type: operation.to_string(),
            receipt_type: if refund { "SELL_REFUND" } else { "SELL" }.to_string(),
            amount,
            receipt_status: status,
            fiscal_document_number: 1000 + self.made,
            at: now,
            error,
            lines,
        }
    }
}

/// Which receipt a cart is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expect {
    Sell,
    SellRefund,
}

/// A cart the sandbox took: its lines (kept for the receipts it makes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Cart {
    pub lines: usize,
    pub json: Value,
}

const ECOM_CART: i64 = 8;

fn bad(ecom: bool, message: String) -> Refusal {
    Refusal {
        code: if ecom { ECOM_CART } else { 5 },
        message,
    }
}

/// The `orderBundle` of a call for `amount`, checked; None when the call carries none.
pub(super) fn check(p: &Params, amount: Kopecks, expect: Expect) -> Result<Option<Cart>, Refusal> {
    let Some(text) = p.value("orderBundle") else {
        return Ok(None);
    };
    let ecom = p.is_ecom();
    let bundle: Value = serde_json::from_str(text)
        .map_err(|_| bad(ecom, "orderBundle is not valid JSON".into()))?;
    if !bundle.is_object() {
        return Err(bad(ecom, "orderBundle must be an object".into()));
    }
    let items = bundle["cartItems"]["items"]
        .as_array()
        .filter(|i| !i.is_empty())
        .ok_or_else(|| bad(ecom, "orderBundle.cartItems.items is empty".into()))?;
    let ffd12 = ecom && bundle["ffdVersion"] == "1.2";
    let mut positions = std::collections::HashSet::new();
    let mut sum: u64 = 0;
    for (i, item) in items.iter().enumerate() {
        let at = |what: &str| format!("orderBundle.cartItems.items[{i}].{what}");
        let position = item["positionId"].to_string();
        if item["positionId"].is_null() || !positions.insert(position) {
            return Err(bad(
                ecom,
                format!("{}: missing or repeated", at("positionId")),
            ));
        }
        let name = item["name"].as_str().unwrap_or("");
        if name.is_empty() || name.chars().count() > 128 {
            return Err(bad(ecom, format!("{}: 1 to 128 characters", at("name"))));
        }
        let quantity = thousandths(&item["quantity"]["value"])
            .filter(|q| (1..=99_999_999).contains(q))
            .ok_or_else(|| {
                bad(
                    ecom,
                    format!(
                        "{}: more than 0, at most 99999.999, 3 decimals",
                        at("quantity.value")
                    ),
                )
            })?;
        if ffd12
            && item["quantity"]["measure"]
                .as_str()
                .is_none_or(|m| m.parse::<u8>().is_err())
        {
            return Err(bad(
                ecom,
                format!("{}: a measure code (FFD 1.2)", at("quantity.measure")),
            ));
        }
        let (Some(price), Some(line)) = (item["itemPrice"].as_u64(), item["itemAmount"].as_u64())
        else {
            return Err(bad(
                ecom,
                format!("{}: kopecks as integers", at("itemPrice/itemAmount")),
            ));
        };
        let expected = (u128::from(quantity) * u128::from(price) + 500) / 1000;
        if u128::from(line) != expected {
            return Err(bad(
                ecom,
                format!(
                    "{}: {line} is not quantity × price ({expected})",
                    at("itemAmount")
                ),
            ));
        }
        if item["tax"]["taxType"].as_u64().is_none_or(|t| t > 12) {
            return Err(bad(ecom, format!("{}: an integer code", at("tax.taxType"))));
        }
        if ecom {
            if !item["paymentMethod"]
                .as_str()
                .is_some_and(|m| METHODS.contains(&m))
            {
                return Err(bad(
                    ecom,
                    format!("{}: one of {}", at("paymentMethod"), METHODS.join(", ")),
                ));
            }
            let object_ok = match &item["paymentObject"] {
                Value::String(s) if ffd12 => s.parse::<u8>().is_ok_and(|n| (1..=33).contains(&n)),
                Value::String(s) => OBJECTS.contains(&s.as_str()),
                _ => false,
            };
            if !object_ok {
                return Err(bad(
                    ecom,
                    format!("{}: a code of tag 1212", at("paymentObject")),
                ));
            }
        } else {
            let attributes = item["itemAttributes"]["attributes"].as_array();
            let attribute = |name: &str| {
                attributes.and_then(|a| {
                    a.iter()
                        .find(|x| x["name"] == name)
                        .and_then(|x| x["value"].as_str())
                        .and_then(|v| v.parse::<u8>().ok())
                })
            };
            if !attribute("paymentMethod").is_some_and(|m| (1..=7).contains(&m))
                || !attribute("paymentObject").is_some_and(|o| (1..=33).contains(&o))
            {
                return Err(bad(
                    ecom,
                    format!(
                        "{}: paymentMethod and paymentObject codes",
                        at("itemAttributes")
                    ),
                ));
            }
        }
        sum += line;
    }
    if sum != amount.get() {
        return Err(bad(
            ecom,
            format!(
                "orderBundle: the items add up to {sum}, the amount is {}",
                amount.get()
            ),
        ));
    }
    if ecom {
        let ffd = bundle["ffdVersion"].as_str().unwrap_or("");
        if ffd != "1.05" && ffd != "1.2" {
            return refuse(
                4,
                "orderBundle.ffdVersion is required for fiscalisation (1.05 or 1.2)",
            );
        }
        let wanted = match expect {
            Expect::Sell => "sell",
            Expect::SellRefund => "sell_refund",
        };
        if bundle["receiptType"] != wanted {
            return refuse(5, format!("orderBundle.receiptType must be {wanted} here"));
        }
        if !bundle["company"]["sno"]
            .as_str()
            .is_some_and(|s| SNO.contains(&s))
        {
            return refuse(
                4,
                format!(
                    "orderBundle.company.sno is required: one of {}",
                    SNO.join(", ")
                ),
            );
        }
        let total = bundle["total"].as_u64();
        let paid: Option<u64> = bundle["payments"]
            .as_array()
            .map(|ps| ps.iter().filter_map(|x| x["sum"].as_u64()).sum());
        if total != Some(sum) || paid != Some(sum) {
            return Err(bad(
                ecom,
                format!("orderBundle: total and payments must equal the items' {sum}"),
            ));
        }
        if expect == Expect::Sell && p.value("phone").is_none() && p.value("email").is_none() {
            return refuse(4, "phone or email is required for fiscalisation");
        }
    } else {
        let details = &bundle["customerDetails"];
        let contact = details["email"].as_str().is_some() || details["phone"].as_str().is_some();
        if expect == Expect::Sell
            && !contact
            && p.value("phone").is_none()
            && p.value("email").is_none()
        {
            return refuse(
                4,
                "customerDetails.email or phone is required for fiscalisation",
            );
        }
        if p.value("taxSystem")
            .and_then(|t| t.parse::<u8>().ok())
            .is_none_or(|t| t > 5)
        {
            return refuse(4, "taxSystem is required with orderBundle (0 to 5)");
        }
    }
    Ok(Some(Cart {
        lines: items.len(),
        json: bundle,
    }))
}

const METHODS: [&str; 7] = [
    "full_prepayment",
    "prepayment",
    "advance",
    "full_payment",
    "partial_payment",
    "credit",
    "credit_payment",
];
const OBJECTS: [&str; 13] = [
    "commodity",
    "excise",
    "job",
    "service",
    "gambling_bet",
    "gambling_prize",
    "lottery",
    "lottery_prize",
    "intellectual_activity",
    "payment",
    "agent_commission",
    "composite",
    "another",
];
const SNO: [&str; 5] = ["osn", "usn_income", "usn_income_outcome", "esn", "patent"];

/// Thousandths of a JSON number (up to three decimals), exactly.
fn thousandths(v: &Value) -> Option<u64> {
    let text = v.as_number()?.to_string();
    let (whole, part) = text.split_once('.').unwrap_or((&text, ""));
    if part.len() > 3 || whole.starts_with('-') {
        return None;
    }
    Some(whole.parse::<u64>().ok()? * 1000 + format!("{part:0<3}").parse::<u64>().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn legacy(bundle: Value, amount: u64) -> Result<Option<Cart>, Refusal> {
        let p = Params::new(vec![
            ("orderBundle".into(), bundle.to_string()),
            ("taxSystem".into(), "0".into()),
            ("email".into(), "a@b.ru".into()),
        ]);
        check(&p, Kopecks::new(amount).unwrap(), Expect::Sell)
    }

    fn line(q: Value, price: u64, amount: u64) -> Value {
        json!({"positionId": 1, "name": "Сыр", "quantity": {"value": q, "measure": "шт"},
            "itemPrice": price, "itemAmount": amount, "tax": {"taxType": 2},
            "itemAttributes": {"attributes": [{"name": "paymentMethod", "value": "4"},
                {"name": "paymentObject", "value": "1"}]}})
    }

    #[test]
    fn the_cart_must_add_up_and_each_line_be_quantity_times_price() {
        let ok = json!({"cartItems": {"items": [line(json!(0.5), 1001, 501)]}});
        assert_eq!(legacy(ok, 501).unwrap().unwrap().lines, 1);
        let off = json!({"cartItems": {"items": [line(json!(0.5), 1001, 501)]}});
        assert_eq!(legacy(off, 502).unwrap_err().code, 5);
        let wrong_line = json!({"cartItems": {"items": [line(json!(2), 100, 150)]}});
        assert!(legacy(wrong_line, 150)
            .unwrap_err()
            .message
            .contains("quantity × price"));
        assert!(legacy(json!({"cartItems": {"items": []}}), 1).is_err());
        let p = Params::new(vec![("orderBundle".into(), "{not json".into())]);
        assert!(check(&p, Kopecks::new(1).unwrap(), Expect::Sell).is_err());
    }
}
