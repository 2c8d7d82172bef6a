//! Moscow time, whatever the host's time zone: the bank's day (for same-day reversals and
//! "today's orders") ends at 00:00 Europe/Moscow.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Europe::Moscow;

/// The Moscow calendar day of an instant.
pub fn date(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&Moscow).date_naive()
}

/// The instant of a Moscow wall-clock time (Moscow has had no DST since 2014, so there is
/// exactly one; `None` only for times a future rule change might skip).
pub fn from_local(local: NaiveDateTime) -> Option<DateTime<Utc>> {
    Moscow
        .from_local_datetime(&local)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// 00:00 Moscow time of a day, as an instant.
pub fn day_start(day: NaiveDate) -> DateTime<Utc> {
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    // Moscow has one 00:00 a day; the fixed +3 is only a fallback for a rule change.
    from_local(midnight).unwrap_or_else(|| (midnight - chrono::Duration::hours(3)).and_utc())
}

/// The next 00:00 Moscow time after `at`: when a same-day reversal stops being possible.
pub fn next_midnight(at: DateTime<Utc>) -> DateTime<Utc> {
    let tomorrow = date(at).succ_opt().unwrap_or(NaiveDate::MAX);
    from_local(tomorrow.and_hms_opt(0, 0, 0).unwrap_or_default()).unwrap_or(at)
}

/// `HH:MM` Moscow time, for slips and pages.
pub fn clock_text(at: DateTime<Utc>) -> String {
    at.with_timezone(&Moscow).format("%H:%M").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_day_turns_at_moscow_midnight() {
        // 20:59:59 UTC = 23:59:59 MSK; 21:00:00 UTC = 00:00:00 MSK next day.
        let before = Utc.with_ymd_and_hms(2026, 11, 23, 20, 59, 59).unwrap();
        let after = Utc.with_ymd_and_hms(2026, 11, 23, 21, 0, 0).unwrap();
        assert_eq!(date(before), NaiveDate::from_ymd_opt(2026, 11, 23).unwrap());
        assert_eq!(date(after), NaiveDate::from_ymd_opt(2026, 11, 24).unwrap());
        assert_eq!(next_midnight(before), after);
        assert_eq!(clock_text(before), "23:59");
    }
}
