//! The shop's words as types that parse: a till id, a store prefix, an order number, a
//! description, an idempotency key, the bank's order id and payment link. Each rule lives once,
//! here; the config, the till API and the engine all hold these types, so a value that got in
//! anywhere is valid everywhere.

mod email;
mod ids;
mod order_number;
mod phone;
mod text;

pub use email::Email;
pub use ids::{GatewayOrderId, IdempotencyKey, PaymentUrl, StorePrefix, TillId};
pub use order_number::OrderNumber;
pub use phone::Phone;
pub use text::Description;

/// Why a value was refused: what was found, and the problem in the integrator's English (config
/// errors, logs) and the cashier's Russian (API replies).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("found {found:?}; allowed: {en}")]
pub struct Invalid {
    pub found: String,
    pub en: String,
    pub ru: String,
}

impl Invalid {
    pub(crate) fn new(found: &str, en: impl Into<String>, ru: impl Into<String>) -> Invalid {
        // A hostile value may be huge: keep enough of it to recognise.
        let found: String = found.chars().take(80).collect();
        Invalid {
            found,
            en: en.into(),
            ru: ru.into(),
        }
    }
}

/// Implements what every string newtype here shares: `as_str`, `Display`, serde through
/// `parse` (so a stored or received value is checked on the way in), and an OpenAPI schema.
macro_rules! string_type {
    ($name:ident, $doc:expr, $max:expr, $pattern:expr) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::domain::Invalid;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::parse(s)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
                $name::parse(&text).map_err(|e| serde::de::Error::custom(e.to_string()))
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                let mut object = utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .description(Some($doc))
                    .max_length(Some($max));
                let pattern: Option<&str> = $pattern;
                if let Some(p) = pattern {
                    object = object.pattern(Some(p));
                }
                object.into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}
pub(crate) use string_type;
