//! Each Moscow day's money, kept up to date in the same transaction as every order write, so a
//! day's totals are one row however many orders the day has.

use chrono::NaiveDate;
use rusqlite::{params, Connection, OptionalExtension};

use super::{keys, StoreError};
use crate::money::Kopecks;
use crate::orders::balance::reversal_counts;
use crate::orders::state::StateKind;
use crate::orders::totals::DayTotals;

/// What one order adds to its day: money taken, given back by reversal, given back by refunds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Share {
    pub sold: u64,
    pub reversed: u64,
    pub refunded: u64,
}

impl Share {
    pub(super) fn of(state: StateKind, deposited: Kopecks, refunded: Kopecks) -> Share {
        let sold = deposited.get();
        let reversed = if reversal_counts(state) { sold } else { 0 };
        Share {
            sold,
            reversed,
            refunded: refunded.get(),
        }
    }
}

fn delta(before: u64, after: u64) -> i64 {
    // Amounts are below the gateway's limit (far below i64::MAX): the difference fits.
    i64::try_from(after).unwrap_or(i64::MAX) - i64::try_from(before).unwrap_or(i64::MAX)
}

/// An order of `day` changed from `before` (None: it is new) to `after`.
pub(super) fn change(
    conn: &Connection,
    day: NaiveDate,
    before: Option<Share>,
    after: Share,
) -> Result<(), StoreError> {
    let new = i64::from(before.is_none());
    let before = before.unwrap_or_default();
    // max(0, …): sums that went wrong elsewhere never turn negative.
    conn.prepare_cached(
        "INSERT INTO days (day, orders, sold_kopecks, reversed_kopecks, refunded_kopecks)
         VALUES (?1, ?2, max(0, ?3), max(0, ?4), max(0, ?5))
         ON CONFLICT (day) DO UPDATE SET
            orders = orders + ?2,
            sold_kopecks = max(0, sold_kopecks + ?3),
            reversed_kopecks = max(0, reversed_kopecks + ?4),
            refunded_kopecks = max(0, refunded_kopecks + ?5)",
    )
    .and_then(|mut s| {
        s.execute(params![
            keys::day(day),
            new,
            delta(before.sold, after.sold),
            delta(before.reversed, after.reversed),
            delta(before.refunded, after.refunded),
        ])
    })
    .map_err(StoreError::sqlite("updating the day's sums"))?;
    Ok(())
}

/// The totals of one day (zeros when it has no orders). Fails closed when the sums leave the
/// gateway's range.
pub(super) fn totals(conn: &Connection, day: NaiveDate) -> Result<DayTotals, StoreError> {
    let row: Option<(i64, i64, i64, i64)> = conn
        .prepare_cached(
            "SELECT orders, sold_kopecks, reversed_kopecks, refunded_kopecks FROM days WHERE day = ?1",
        )
        .and_then(|mut s| {
            s.query_row([keys::day(day)], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()
        })
        .map_err(StoreError::sqlite("reading a day's sums"))?;
    let (count, sold, reversed, refunded) = row.unwrap_or_default();
    let money = |v: i64| u64::try_from(v).ok().and_then(Kopecks::new);
    let out_of_range =
        || StoreError::corrupt(format!("totals of {day}"), "they leave the gateway's range");
    let sold = money(sold).ok_or_else(out_of_range)?;
    let reversed = money(reversed).ok_or_else(out_of_range)?;
    let refunded = money(refunded).ok_or_else(out_of_range)?;
    Ok(DayTotals {
        day,
        count: u64::try_from(count).unwrap_or(0),
        sold,
        reversed,
        refunded,
        net: sold
            .checked_sub(reversed)
            .and_then(|n| n.checked_sub(refunded))
            .ok_or_else(out_of_range)?,
    })
}
