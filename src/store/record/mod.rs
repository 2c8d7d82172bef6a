//! How an order is kept on disk: a versioned record, separate from the domain's `Order` (which
//! may change shape freely) and from the API's view of an order. Reading a record parses every
//! field through the domain types; a record that does not parse is reported as corrupt, never
//! guessed at.
//!
//! The first byte says the schema: `{` is schema 1 (JSON, read only: sled stores before layout
//! 2), 2 is schema 2 (postcard: compact binary, times as microseconds, history lines as typed
//! kinds without their words). The SQLite store keeps a schema 2 record without its history in
//! `orders.record` and each history line as a row of `events` (`encode_without_history`); the
//! sled stores it imports kept the history inside the record.

mod v1;
mod v2;

use crate::orders::order::Order;

/// The schema this build writes.
pub const SCHEMA: u32 = 2;

/// A record that cannot be read back into an order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unreadable(pub String);

/// The order as a schema 2 record, its history included.
pub fn encode(order: &Order) -> Result<Vec<u8>, Unreadable> {
    v2::encode(order, true)
}

/// The order as a schema 2 record whose history is empty: the store keeps each line apart.
pub fn encode_without_history(order: &Order) -> Result<Vec<u8>, Unreadable> {
    v2::encode(order, false)
}

/// One history line's kind as stored in `events.kind` (postcard: the enum's fixed variant
/// numbers, so lines written today read back after variants are added at the end).
pub fn encode_kind(kind: &crate::orders::order::EventKind) -> Result<Vec<u8>, Unreadable> {
    postcard::to_allocvec(kind).map_err(|e| Unreadable(format!("a history line: {e}")))
}

pub fn decode_kind(bytes: &[u8]) -> Result<crate::orders::order::EventKind, Unreadable> {
    postcard::from_bytes(bytes).map_err(|e| Unreadable(format!("a history line: {e}")))
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
