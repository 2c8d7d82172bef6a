//! How things are keyed on disk. Order ids are UUID v7 from the engine's clock, so the orders
//! tree is in creation order and a Moscow day is one key range; the other keys are small and
//! fixed-size where they can be.

use chrono::{DateTime, NaiveDate, Utc};
use sha2::{Digest, Sha256};

use crate::domain::IdempotencyKey;
use crate::moscow;

pub(super) fn id(id: &uuid::Uuid) -> [u8; 16] {
    *id.as_bytes()
}

pub(super) fn id_of(bytes: &[u8]) -> Option<uuid::Uuid> {
    uuid::Uuid::from_slice(bytes).ok()
}

/// The smallest order key created at or after `at` (a UUID v7 starts with its milliseconds).
pub(super) fn first_at(at: DateTime<Utc>) -> [u8; 16] {
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    let mut key = [0u8; 16];
    key[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    key
}

/// The order keys of the Moscow days `from..=to`: `[start, end)`.
pub(super) fn days(from: NaiveDate, to: NaiveDate) -> ([u8; 16], [u8; 16]) {
    let end = to.succ_opt().unwrap_or(NaiveDate::MAX);
    (
        first_at(moscow::day_start(from)),
        first_at(moscow::day_start(end)),
    )
}

/// A day in the summaries tree: days since 0001-01-01, big-endian, so days sort.
pub(super) fn day(day: NaiveDate) -> [u8; 4] {
    u32::try_from(chrono::Datelike::num_days_from_ce(&day))
        .unwrap_or(0)
        .to_be_bytes()
}

/// An idempotency key in the bucket of the Moscow day its sale was made: the day, then 12
/// bytes of the key's SHA-256 (the POS's keys may be 64 characters long). A day's keys sit
/// together, so writing them touches the day's pages only, and old days are a range delete.
pub(super) fn idempotency(key: &IdempotencyKey, made: NaiveDate) -> [u8; 16] {
    let digest = Sha256::digest(key.as_str().as_bytes());
    let mut out = [0u8; 16];
    out[..4].copy_from_slice(&day(made));
    out[4..].copy_from_slice(&digest[..12]);
    out
}

/// Keys of the journal and callback trees: the time first, so retention is a range delete.
pub(super) fn timed(at: DateTime<Utc>, seq: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    key[..8].copy_from_slice(&millis.to_be_bytes());
    key[8..].copy_from_slice(&seq.to_be_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_days_orders_are_one_key_range() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let (start, end) = days(day, day);
        // 23:59:59.999 MSK on the 22nd, 00:00 and 23:59:59.999 on the 23rd, 00:00 on the 24th.
        let before = Utc.with_ymd_and_hms(2026, 11, 22, 20, 59, 59).unwrap()
            + chrono::Duration::milliseconds(999);
        let first = Utc.with_ymd_and_hms(2026, 11, 22, 21, 0, 0).unwrap();
        let last = Utc.with_ymd_and_hms(2026, 11, 23, 20, 59, 59).unwrap()
            + chrono::Duration::milliseconds(999);
        let next = Utc.with_ymd_and_hms(2026, 11, 23, 21, 0, 0).unwrap();
        let key = |at| id(&crate::orders::order::new_order_id(at));
        assert!(key(before) < start);
        assert!(start <= key(first) && key(first) < end);
        assert!(start <= key(last) && key(last) < end);
        assert!(key(next) >= end);
        assert!(super::day(NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()) < super::day(day));
    }

    #[test]
    fn ids_carry_their_own_time_even_after_the_clock_went_back() {
        let at = Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap();
        let later = crate::orders::order::new_order_id(at + chrono::Duration::days(300));
        let ids: std::collections::HashSet<_> = (0..1000)
            .map(|_| crate::orders::order::new_order_id(at))
            .collect();
        assert_eq!(ids.len(), 1000, "distinct within one millisecond");
        let (start, end) = days(moscow::date(at), moscow::date(at));
        assert!(ids.iter().all(|i| start <= id(i) && id(i) < end));
        assert!(id(&later) >= end);
    }
}
