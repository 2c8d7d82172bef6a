//! Requests and replies of the gateway, typed. The sandbox serialises the same reply types
//! the client parses, so the two halves cannot drift apart.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::codes::ActionCode;
use crate::domain::{GatewayOrderId, PaymentUrl};
use crate::money::Kopecks;

/// The gateway methods chasti speaks (legacy names; the ecom dialect uses the same ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Register,
    RegisterPreAuth,
    Deposit,
    Reverse,
    Refund,
    Decline,
    OrderStatus,
    OrderStatusExtended,
    PaymentOrderBinding,
    /// The receipts the bank's cloud fiscalisation made for an order.
    ReceiptStatus,
}

impl Method {
    pub const ALL: [Method; 10] = [
        Method::Register,
        Method::RegisterPreAuth,
        Method::Deposit,
        Method::Reverse,
        Method::Refund,
        Method::Decline,
        Method::OrderStatus,
        Method::OrderStatusExtended,
        Method::PaymentOrderBinding,
        Method::ReceiptStatus,
    ];

    /// The path segment, e.g. `register.do`.
    pub fn path(self) -> &'static str {
        match self {
            Method::Register => "register.do",
            Method::RegisterPreAuth => "registerPreAuth.do",
            Method::Deposit => "deposit.do",
            Method::Reverse => "reverse.do",
            Method::Refund => "refund.do",
            Method::Decline => "decline.do",
            Method::OrderStatus => "getOrderStatus.do",
            Method::OrderStatusExtended => "getOrderStatusExtended.do",
            Method::PaymentOrderBinding => "paymentOrderBinding.do",
            Method::ReceiptStatus => "getReceiptStatus.do",
        }
    }

    pub fn from_path(path: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.path() == path)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.path())
    }
}

/// How an order is looked up: the gateway's id wins when both are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderRef {
    OrderId(GatewayOrderId),
    OrderNumber(String),
}

/// `pageView` of the payment page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageView {
    Desktop,
    Mobile,
}

impl PageView {
    pub fn as_str(self) -> &'static str {
        match self {
            PageView::Desktop => "DESKTOP",
            PageView::Mobile => "MOBILE",
        }
    }
}

/// `features` of register / registerPreAuth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    AutoPayment,
    Verify,
    ForceTds,
    ForceSsl,
    ForceFullTds,
}

impl Feature {
    pub const ALL: [Feature; 5] = [
        Feature::AutoPayment,
        Feature::Verify,
        Feature::ForceTds,
        Feature::ForceSsl,
        Feature::ForceFullTds,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Feature::AutoPayment => "AUTO_PAYMENT",
            Feature::Verify => "VERIFY",
            Feature::ForceTds => "FORCE_TDS",
            Feature::ForceSsl => "FORCE_SSL",
            Feature::ForceFullTds => "FORCE_FULL_TDS",
        }
    }

    pub fn parse(s: &str) -> Option<Feature> {
        Feature::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// What `register.do` / `registerPreAuth.do` take. URLs and the lifetime default to the
/// client's settings when left `None`.
#[derive(Debug, Clone, Default)]
pub struct RegisterRequest {
    pub order_number: String,
    pub amount: Kopecks,
    pub description: Option<String>,
    pub return_url: Option<String>,
    pub fail_url: Option<String>,
    pub language: Option<String>,
    pub page_view: Option<PageView>,
    pub client_id: Option<String>,
    pub session_timeout_secs: Option<u64>,
    /// Moscow local time, `yyyy-MM-ddTHH:mm:ss`; overrides the lifetime.
    pub expiration_date: Option<chrono::NaiveDateTime>,
    pub features: Vec<Feature>,
    pub json_params: BTreeMap<String, String>,
    pub dynamic_callback_url: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// The cart for the bank's cloud fiscalisation (`[fiscal] mode = "bank"`).
    pub order_bundle: Option<super::bundle::OrderBundle>,
}

impl RegisterRequest {
    pub fn new(order_number: impl Into<String>, amount: Kopecks) -> RegisterRequest {
        RegisterRequest {
            order_number: order_number.into(),
            amount,
            ..RegisterRequest::default()
        }
    }
}

/// A registered order: the gateway's id and the payment link, both checked on the way in (a
/// reply with a malformed id or link is unreadable, so its outcome counts as unknown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registered {
    pub order_id: GatewayOrderId,
    pub form_url: PaymentUrl,
}

/// `orderStatus` of getOrderStatusExtended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    /// 0: registered, not paid.
    Registered,
    /// 1: amount held (two-stage, approved).
    Held,
    /// 2: paid (deposited).
    Deposited,
    /// 3: authorization reversed.
    Reversed,
    /// 4: refunded (fully or partly).
    Refunded,
    /// 5: issuer authentication (3-D Secure) in progress: not an error.
    Authenticating,
    /// 6: declined.
    Declined,
}

impl OrderStatus {
    pub fn code(self) -> u8 {
        match self {
            OrderStatus::Registered => 0,
            OrderStatus::Held => 1,
            OrderStatus::Deposited => 2,
            OrderStatus::Reversed => 3,
            OrderStatus::Refunded => 4,
            OrderStatus::Authenticating => 5,
            OrderStatus::Declined => 6,
        }
    }

    pub fn from_code(code: i64) -> Option<OrderStatus> {
        Some(match code {
            0 => OrderStatus::Registered,
            1 => OrderStatus::Held,
            2 => OrderStatus::Deposited,
            3 => OrderStatus::Reversed,
            4 => OrderStatus::Refunded,
            5 => OrderStatus::Authenticating,
            6 => OrderStatus::Declined,
            _ => return None,
        })
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let meaning = match self {
            OrderStatus::Registered => "registered, not paid",
            OrderStatus::Held => "amount held",
            OrderStatus::Deposited => "paid",
            OrderStatus::Reversed => "reversed",
            OrderStatus::Refunded => "refunded",
            OrderStatus::Authenticating => "3-D Secure in progress",
            OrderStatus::Declined => "declined",
        };
        write!(f, "{} ({meaning})", self.code())
    }
}

impl Serialize for OrderStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.code())
    }
}

impl<'de> Deserialize<'de> for OrderStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<OrderStatus, D::Error> {
        let code =
            lenient_integer(d)?.ok_or_else(|| serde::de::Error::custom("orderStatus is empty"))?;
        OrderStatus::from_code(code).ok_or_else(|| {
            serde::de::Error::custom(format!("orderStatus {code} is not one of 0..6"))
        })
    }
}

/// `paymentAmountInfo.paymentState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentState {
    Created,
    Approved,
    Deposited,
    Reversed,
    Refunded,
    Declined,
    /// A state this client does not know yet: kept, never guessed at.
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentAmountInfo {
    #[serde(default)]
    pub approved_amount: Kopecks,
    #[serde(default)]
    pub deposited_amount: Kopecks,
    #[serde(default)]
    pub refunded_amount: Kopecks,
    pub payment_state: PaymentState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BindingInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameValue {
    pub name: String,
    pub value: String,
}

/// The reply of getOrderStatusExtended.do: the truth about an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderStatusReport {
    #[serde(default)]
    pub order_number: String,
    /// Absent when the gateway does not know the order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_status: Option<OrderStatus>,
    #[serde(
        default,
        deserialize_with = "deserialize_action_code",
        serialize_with = "serialize_action_code",
        skip_serializing_if = "Option::is_none"
    )]
    pub action_code: Option<ActionCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_code_description: Option<String>,
    #[serde(default)]
    pub amount: Kopecks,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Registration time, ms since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<i64>,
    /// When the bank authorized the payment (a hold, or a one-stage payment), ms since the epoch.
    #[serde(
        default,
        deserialize_with = "deserialize_lenient_integer",
        skip_serializing_if = "Option::is_none"
    )]
    pub auth_date_time: Option<i64>,
    /// When the payment was completed (money taken), ms since the epoch.
    #[serde(
        default,
        deserialize_with = "deserialize_lenient_integer",
        skip_serializing_if = "Option::is_none"
    )]
    pub deposited_date: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_amount_info: Option<PaymentAmountInfo>,
    #[serde(default)]
    pub merchant_order_params: Vec<NameValue>,
    #[serde(default)]
    pub attributes: Vec<NameValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding_info: Option<BindingInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_auth_info: Option<serde_json::Value>,
}

impl OrderStatusReport {
    pub fn deposited(&self) -> Kopecks {
        self.payment_amount_info
            .as_ref()
            .map(|p| p.deposited_amount)
            .unwrap_or_default()
    }

    pub fn refunded(&self) -> Kopecks {
        self.payment_amount_info
            .as_ref()
            .map(|p| p.refunded_amount)
            .unwrap_or_default()
    }

    pub fn approved(&self) -> Kopecks {
        self.payment_amount_info
            .as_ref()
            .map(|p| p.approved_amount)
            .unwrap_or_default()
    }

    pub fn binding_id(&self) -> Option<&str> {
        self.binding_info.as_ref()?.binding_id.as_deref()
    }

    /// The bank's own time of the authorization (a hold or a one-stage payment).
    pub fn authorized_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.auth_date_time
            .and_then(chrono::DateTime::from_timestamp_millis)
    }

    /// The bank's own time of the payment: when the money was taken, else when it was
    /// authorized. The same-day reversal rule counts from this, not from when chasti heard.
    pub fn paid_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.deposited_date
            .and_then(chrono::DateTime::from_timestamp_millis)
            .or_else(|| self.authorized_at())
    }

    /// The bank's order id, from `attributes[mdOrder]` (a status asked by order number).
    pub fn md_order(&self) -> Option<GatewayOrderId> {
        self.attributes
            .iter()
            .find(|a| a.name == "mdOrder")
            .and_then(|a| GatewayOrderId::parse(&a.value).ok())
    }
}

/// The reply of getOrderStatus.do, the older short status (its fields are capitalised the way
/// the bank sends them). chasti asks the extended one; this is for clients that ask this one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShortStatus {
    #[serde(
        rename = "OrderStatus",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub order_status: Option<OrderStatus>,
    #[serde(rename = "OrderNumber", default)]
    pub order_number: String,
    #[serde(rename = "Amount", default)]
    pub amount: Kopecks,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(rename = "Pan", default, skip_serializing_if = "Option::is_none")]
    pub pan: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_code: Option<String>,
    #[serde(rename = "depositAmount", default)]
    pub deposit_amount: Kopecks,
}

/// Reads an integer that may arrive as a number, as a string, as null or not at all
/// (the gateway sends `errorCode` all three ways).
pub(crate) fn lenient_integer<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("{n} is not an integer"))),
        Some(serde_json::Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(serde_json::Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not an integer"))),
        Some(other) => Err(serde::de::Error::custom(format!(
            "{other} is not an integer"
        ))),
    }
}

fn deserialize_lenient_integer<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    lenient_integer(d)
}

fn deserialize_action_code<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<ActionCode>, D::Error> {
    Ok(lenient_integer(d)?.map(ActionCode::from_code))
}

fn serialize_action_code<S: Serializer>(
    code: &Option<ActionCode>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match code {
        Some(c) => s.serialize_i64(c.code()),
        None => s.serialize_none(),
    }
}

/// The error fields every reply may carry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ErrorFields {
    #[serde(default, deserialize_with = "deserialize_lenient_integer")]
    pub error_code: Option<i64>,
    #[serde(default)]
    pub error_message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_code_arrives_three_ways() {
        let s: ErrorFields = serde_json::from_str(r#"{"errorCode":"5"}"#).unwrap();
        assert_eq!(s.error_code, Some(5));
        let n: ErrorFields = serde_json::from_str(r#"{"errorCode":5}"#).unwrap();
        assert_eq!(n.error_code, Some(5));
        let missing: ErrorFields = serde_json::from_str(r#"{"orderId":"x"}"#).unwrap();
        assert_eq!(missing.error_code, None);
        let empty: ErrorFields = serde_json::from_str(r#"{"errorCode":""}"#).unwrap();
        assert_eq!(empty.error_code, None);
    }

    #[test]
    fn order_status_is_an_enum_of_0_to_6() {
        for code in 0..=6 {
            let s: OrderStatus = serde_json::from_str(&code.to_string()).unwrap();
            assert_eq!(i64::from(s.code()), code);
            let quoted: OrderStatus = serde_json::from_str(&format!("\"{code}\"")).unwrap();
            assert_eq!(quoted, s);
        }
        assert!(serde_json::from_str::<OrderStatus>("7").is_err());
    }

    #[test]
    fn status_report_reads_the_bank_shape() {
        let body = r#"{"errorCode":"0","errorMessage":"Успешно","orderNumber":"0784sse49d0s134567890",
            "orderStatus":6,"actionCode":-2007,"actionCodeDescription":"Время сессии истекло",
            "amount":33000,"currency":"643","date":1383819429914,"orderDescription":" ",
            "merchantOrderParams":[{"name":"email","value":"yap"}],
            "attributes":[{"name":"mdOrder","value":"b9054496-c65a-4975-9418-1051d101f1b9"}],
            "paymentAmountInfo":{"paymentState":"DECLINED","approvedAmount":0,"depositedAmount":0,"refundedAmount":0},
            "bankInfo":{"bankCountryCode":"UNKNOWN"}}"#;
        let r: OrderStatusReport = serde_json::from_str(body).unwrap();
        assert_eq!(r.order_status, Some(OrderStatus::Declined));
        assert_eq!(r.action_code, Some(ActionCode::SessionExpired));
        assert_eq!(r.amount, Kopecks::new(33000).unwrap());
        assert_eq!(
            r.payment_amount_info.unwrap().payment_state,
            PaymentState::Declined
        );
    }
}
