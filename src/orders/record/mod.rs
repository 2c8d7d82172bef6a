//! How an order is kept on disk: a versioned record, separate from the domain's `Order` (which
//! may change shape freely) and from the API's view of an order. Reading a record parses every
//! field through the domain types; a record that does not parse is reported as corrupt, never
//! guessed at.
//!
//! The first byte says the schema: `{` is schema 1 (JSON, read only), 2 is schema 2 (postcard:
//! compact binary, times as microseconds, history lines as typed kinds without their words).

mod v1;
mod v2;

use super::order::Order;

/// The schema this build writes.
pub const SCHEMA: u32 = 2;

/// A record that cannot be read back into an order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unreadable(pub String);

/// The order as a schema 2 record.
pub fn encode(order: &Order) -> Result<Vec<u8>, Unreadable> {
    v2::encode(order)
}

pub fn decode(bytes: &[u8]) -> Result<Order, Unreadable> {
    match bytes.first() {
        Some(b'{') => v1::decode(bytes),
        Some(&v2::TAG) => v2::decode(&bytes[1..]),
        Some(other) => Err(Unreadable(format!(
            "unknown record format (first byte {other:#04x}); a newer chasti wrote it?"
        ))),
        None => Err(Unreadable("empty record".into())),
    }
}
