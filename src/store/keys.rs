//! How things are keyed and written in the database. Order ids are UUID v7 from the engine's
//! clock, kept as their 16 bytes, so the `orders` table is in creation order and a Moscow day is
//! one key range. Times a person may query are ISO 8601 text in UTC with microseconds
//! (`2026-12-02T09:20:49.123456Z`), which SQLite's date functions read:
//! `date(created_at, '+3 hours')` is the Moscow day.

use chrono::{DateTime, NaiveDate, Utc};

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

/// A Moscow day as the database writes it: `2026-12-02`.
pub(super) fn day(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

pub(super) fn day_of(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// An instant as the database writes it (exact to the microsecond, which is all chasti keeps).
pub(super) fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

pub(super) fn time_of(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
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

    #[test]
    fn times_and_days_read_back_exactly() {
        let at = Utc.with_ymd_and_hms(2026, 12, 2, 9, 20, 49).unwrap()
            + chrono::Duration::microseconds(123_456);
        assert_eq!(time(at), "2026-12-02T09:20:49.123456Z");
        assert_eq!(time_of(&time(at)), Some(at));
        let d = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
        assert_eq!(day_of(&day(d)), Some(d));
        assert_eq!(time_of("yesterday"), None);
    }
}
