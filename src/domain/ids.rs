//! Short identifiers: the till, the store's order-number prefix, idempotency keys, and what the
//! bank hands back (its order id and the payment link).

use super::{string_type, Invalid};

fn alphanumeric(text: &str, max: usize) -> bool {
    (1..=max).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A till's id, part of every order number: 1–4 Latin letters or digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TillId(String);

impl TillId {
    pub fn parse(text: &str) -> Result<TillId, Invalid> {
        if alphanumeric(text, 4) {
            Ok(TillId(text.to_string()))
        } else {
            Err(Invalid::new(
                text,
                "1-4 Latin letters or digits, such as 1 or K2",
                format!("«{text}»: допустимы 1–4 латинские буквы или цифры"),
            ))
        }
    }
}

/// Till 1: the one a sale goes to when it names none and the config says nothing else.
impl Default for TillId {
    fn default() -> Self {
        TillId("1".into())
    }
}

string_type!(
    TillId,
    "The till: 1-4 Latin letters or digits.",
    4,
    Some("^[A-Za-z0-9]{1,4}$")
);

/// The store's prefix of every order number, unique per merchant account: 1–8 letters/digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StorePrefix(String);

impl StorePrefix {
    pub fn parse(text: &str) -> Result<StorePrefix, Invalid> {
        if alphanumeric(text, 8) {
            Ok(StorePrefix(text.to_string()))
        } else {
            Err(Invalid::new(
                text,
                "1-8 Latin letters or digits, one per shop, such as S1",
                format!("«{text}»: допустимы 1–8 латинских букв или цифр"),
            ))
        }
    }
}

/// The shipped config's prefix.
impl Default for StorePrefix {
    fn default() -> Self {
        StorePrefix("S1".into())
    }
}

string_type!(
    StorePrefix,
    "The store's order-number prefix: 1-8 Latin letters or digits.",
    8,
    Some("^[A-Za-z0-9]{1,8}$")
);

/// What makes a retried request the same request: 1–64 visible ASCII characters (a UUID fits).
/// The same limit for sales and refunds; the bank takes refund keys as `externalRefundId`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

pub const IDEMPOTENCY_KEY_MAX: usize = 64;

impl IdempotencyKey {
    pub fn parse(text: &str) -> Result<IdempotencyKey, Invalid> {
        let visible = text.bytes().all(|b| b.is_ascii_graphic());
        if (1..=IDEMPOTENCY_KEY_MAX).contains(&text.len()) && visible {
            Ok(IdempotencyKey(text.to_string()))
        } else {
            Err(Invalid::new(
                text,
                "1-64 visible ASCII characters without spaces, e.g. a UUID",
                "от 1 до 64 латинских символов без пробелов, например UUID",
            ))
        }
    }

    /// A fresh random key (the command line and the manager page make one per intended action).
    pub fn random() -> IdempotencyKey {
        IdempotencyKey(uuid::Uuid::new_v4().to_string())
    }
}

string_type!(
    IdempotencyKey,
    "The same key for retries of one request: 1-64 visible ASCII characters.",
    64,
    Some("^[!-~]{1,64}$")
);

/// The bank's id of an order (`orderId`, `mdOrder`): a UUID on the real gateway.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GatewayOrderId(String);

impl GatewayOrderId {
    pub fn parse(text: &str) -> Result<GatewayOrderId, Invalid> {
        let ok = (1..=64).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(GatewayOrderId(text.to_string()))
        } else {
            Err(Invalid::new(
                text,
                "the bank's order id: 1-64 letters, digits, - or _",
                "идентификатор заказа банка: до 64 латинских букв, цифр, - или _",
            ))
        }
    }
}

string_type!(
    GatewayOrderId,
    "The bank's id of the order (orderId / mdOrder).",
    64,
    Some("^[A-Za-z0-9_-]{1,64}$")
);

/// The payment link the customer opens (`formUrl`): an absolute http(s) URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PaymentUrl(String);

impl PaymentUrl {
    pub fn parse(text: &str) -> Result<PaymentUrl, Invalid> {
        let ok = text.len() <= 2048
            && url::Url::parse(text).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
        if ok {
            Ok(PaymentUrl(text.to_string()))
        } else {
            Err(Invalid::new(
                text,
                "an absolute http:// or https:// URL of at most 2048 characters",
                "ссылка на оплату должна быть адресом http:// или https://",
            ))
        }
    }
}

string_type!(
    PaymentUrl,
    "The payment link the customer opens.",
    2048,
    None
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tills_and_prefixes() {
        assert!(TillId::parse("K2").is_ok());
        for bad in ["", "12345", "т1", "1 ", "a-b"] {
            let e = TillId::parse(bad).unwrap_err();
            assert!(e.ru.contains("1–4"), "{bad:?}: {e:?}");
        }
        assert!(StorePrefix::parse("SHOP0001").is_ok());
        assert!(StorePrefix::parse("SHOP00012").is_err());
    }

    #[test]
    fn idempotency_keys() {
        assert!(IdempotencyKey::parse(&uuid::Uuid::new_v4().to_string()).is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(64)).is_ok());
        for bad in ["", "with space", "ключ", "\u{0}"] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
        assert!(IdempotencyKey::parse(&"k".repeat(65)).is_err());
        let huge = "x".repeat(1_000_000);
        assert_eq!(IdempotencyKey::parse(&huge).unwrap_err().found.len(), 80);
    }

    #[test]
    fn gateway_ids_and_links() {
        assert!(GatewayOrderId::parse("06cf5599-3f17-7c86-bdbc-bd7d00a8b38b").is_ok());
        assert!(GatewayOrderId::parse("../etc").is_err());
        assert!(PaymentUrl::parse("https://pay.example/x?mdOrder=1").is_ok());
        assert!(PaymentUrl::parse("javascript:alert(1)").is_err());
        assert!(PaymentUrl::parse("/relative").is_err());
    }

    #[test]
    fn serde_checks_on_the_way_in() {
        let till: TillId = serde_json::from_str("\"7\"").unwrap();
        assert_eq!(serde_json::to_string(&till).unwrap(), "\"7\"");
        assert!(serde_json::from_str::<TillId>("\"toolong\"").is_err());
    }
}
