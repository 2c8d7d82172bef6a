//! How an order is kept on disk: a versioned record, separate from the domain's `Order` (which
//! may change shape freely) and from the API's view of an order. Reading a record parses every
//! field through the domain types; a record that does not parse is reported as corrupt, never
//! guessed at.
//!
//! The first byte says the schema: `{` is schema 1 (JSON, read only: sled stores before layout
//! 2), 2 is schema 2 (postcard: compact binary, times as microseconds, history lines as typed
//! kinds without their words; failure reasons as sentences; read only), 3 is schema 3 (schema
//! 2's layout with failure reasons as a typed `Reason`). The SQLite store keeps a record without
//! its history in `orders.record` and each history line as a row of `events`
//! (`encode_without_history`); the sled stores it imports kept the history inside the record.

mod v1;
mod v2;
mod v2_kind;

use crate::orders::order::Order;

/// The schema this build writes.
pub const SCHEMA: u32 = 3;

/// A record that cannot be read back into an order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unreadable(pub String);

/// The order as a schema 3 record, its history included.
pub fn encode(order: &Order) -> Result<Vec<u8>, Unreadable> {
    v2::encode(order, true)
}

/// The order as a schema 3 record whose history is empty: the store keeps each line apart.
pub fn encode_without_history(order: &Order) -> Result<Vec<u8>, Unreadable> {
    v2::encode(order, false)
}

/// The first byte of a schema 3 history line in `events.kind`. A schema 2 line starts with its
/// variant's number as a postcard varint, below 0x80 while there are fewer than 128 variants,
/// so the two never mix up.
const KIND_V3: u8 = 0xFF;

/// One history line's kind as stored in `events.kind`: [`KIND_V3`], then postcard (the enum's
/// fixed variant numbers, so lines written today read back after variants are added at the end).
pub fn encode_kind(kind: &crate::orders::order::EventKind) -> Result<Vec<u8>, Unreadable> {
    let mut bytes = vec![KIND_V3];
    let body =
        postcard::to_allocvec(kind).map_err(|e| Unreadable(format!("a history line: {e}")))?;
    bytes.extend_from_slice(&body);
    Ok(bytes)
}

/// A line written by schema 3, or one written by schema 2 (upgraded: its sentences become
/// `Reason::Said`).
pub fn decode_kind(bytes: &[u8]) -> Result<crate::orders::order::EventKind, Unreadable> {
    let unreadable = |e: postcard::Error| Unreadable(format!("a history line: {e}"));
    match bytes.split_first() {
        Some((&KIND_V3, body)) => postcard::from_bytes(body).map_err(unreadable),
        _ => postcard::from_bytes::<v2_kind::EventKindV2>(bytes)
            .map(v2_kind::EventKindV2::into_current)
            .map_err(unreadable),
    }
}

pub fn decode(bytes: &[u8]) -> Result<Order, Unreadable> {
    match bytes.first() {
        Some(b'{') => v1::decode(bytes),
        Some(&v2::TAG) => v2::decode(&bytes[1..]),
        Some(&v2::TAG_V2) => v2::decode_v2(&bytes[1..]),
        Some(other) => Err(Unreadable(format!(
            "unknown record format (first byte {other:#04x}); a newer chasti wrote it?"
        ))),
        None => Err(Unreadable("empty record".into())),
    }
}
