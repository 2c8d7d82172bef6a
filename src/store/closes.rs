//! The day's close in the store: which orders moved on a Moscow day (their history lines'
//! times, indexed), and each close a manager made (`day_closes`: when, by whom, what it found),
//! kept for the accountant.

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{params, Connection};

use super::{keys, orders, StoreError};
use crate::orders::order::Order;

/// The orders with a history line on `day` (Moscow), and those created that day.
pub(super) fn moved_on(conn: &Connection, day: NaiveDate) -> Result<Vec<Order>, StoreError> {
    let start = crate::moscow::day_start(day);
    let end = crate::moscow::day_start(day.succ_opt().unwrap_or(day));
    let mut s = conn
        .prepare_cached(
            "SELECT DISTINCT order_id FROM events WHERE at >= ?1 AND at < ?2 ORDER BY order_id",
        )
        .map_err(StoreError::sqlite("finding the day's orders"))?;
    let rows = s
        .query_map([start.timestamp_micros(), end.timestamp_micros()], |r| {
            r.get::<_, Vec<u8>>(0)
        })
        .map_err(StoreError::sqlite("finding the day's orders"))?;
    let mut out = Vec::new();
    for row in rows {
        let id = row.map_err(StoreError::sqlite("finding the day's orders"))?;
        if let Some(id) = keys::id_of(&id) {
            out.extend(orders::get(conn, &id)?);
        }
    }
    Ok(out)
}

/// One close of a day, as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptClose {
    pub day: NaiveDate,
    pub at: DateTime<Utc>,
    pub by: String,
    /// What it found, as the API showed it (JSON).
    pub report: String,
}

pub(super) fn record(conn: &Connection, close: &KeptClose) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO day_closes (day, at, by, report) VALUES (?1, ?2, ?3, ?4)")
        .and_then(|mut s| {
            s.execute(params![
                keys::day(close.day),
                keys::time(close.at),
                close.by,
                close.report
            ])
        })
        .map_err(StoreError::sqlite("keeping a day's close"))?;
    Ok(())
}

pub(super) fn of_day(conn: &Connection, day: NaiveDate) -> Result<Vec<KeptClose>, StoreError> {
    let mut s = conn
        .prepare_cached("SELECT at, by, report FROM day_closes WHERE day = ?1 ORDER BY id")
        .map_err(StoreError::sqlite("reading a day's closes"))?;
    let rows = s
        .query_map([keys::day(day)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .map_err(StoreError::sqlite("reading a day's closes"))?;
    let mut out = Vec::new();
    for row in rows {
        let (at, by, report) = row.map_err(StoreError::sqlite("reading a day's closes"))?;
        let at = DateTime::parse_from_rfc3339(&at)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                StoreError::corrupt("day_closes", format!("a close's time «{at}»: {e}"))
            })?;
        out.push(KeptClose {
            day,
            at,
            by,
            report,
        });
    }
    Ok(out)
}
