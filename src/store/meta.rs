//! The order-number counters (one per store prefix, till and Moscow day), and small values the
//! store keeps for itself in `meta`.

use chrono::NaiveDate;
use rusqlite::{params, OptionalExtension};

use super::{keys, Store, StoreError};
use crate::domain::{OrderNumber, StorePrefix, TillId};

/// One order-number counter: the last number handed out for a till on a Moscow day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    pub prefix: String,
    pub till: String,
    pub day: NaiveDate,
    pub last: u64,
}

/// Takes the next number inside the change that stores the order carrying it: the number and
/// the order are committed together or not at all, so a number is never handed out twice.
pub(super) fn next_number(
    conn: &rusqlite::Connection,
    prefix: &StorePrefix,
    till: &TillId,
    day: NaiveDate,
) -> Result<OrderNumber, StoreError> {
    let last: u64 = conn
        .prepare_cached(
            "INSERT INTO counters (prefix, till, day, last) VALUES (?1, ?2, ?3, 1)
             ON CONFLICT (prefix, till, day) DO UPDATE SET last = last + 1
             RETURNING last",
        )
        .and_then(|mut s| {
            s.query_row(
                params![prefix.as_str(), till.as_str(), keys::day(day)],
                |r| r.get(0),
            )
        })
        .map_err(StoreError::sqlite("taking an order number"))?;
    Ok(OrderNumber::new(prefix, till, day, last))
}

/// Raises a counter to at least `at_least` (never lowers one).
pub(super) fn raise(conn: &rusqlite::Connection, counter: &Counter) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO counters (prefix, till, day, last) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (prefix, till, day) DO UPDATE SET last = max(last, excluded.last)",
    )
    .and_then(|mut s| {
        s.execute(params![
            counter.prefix,
            counter.till,
            keys::day(counter.day),
            counter.last
        ])
    })
    .map_err(StoreError::sqlite("raising an order-number counter"))?;
    Ok(())
}

pub(super) fn set_meta(
    conn: &rusqlite::Connection,
    key: &str,
    value: &[u8],
) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute(params![key, value]))
        .map_err(StoreError::sqlite("writing meta"))?;
    Ok(())
}

pub(super) fn get_meta(
    conn: &rusqlite::Connection,
    key: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")
        .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
        .map_err(StoreError::sqlite("reading meta"))
}

/// Rows of (prefix, till, day, a number) as counters: the counters themselves, or what a
/// restore still has to ask the bank about (`restore_probes`, whose number is the next one).
pub(super) fn read_counters(
    conn: &rusqlite::Connection,
    table: &'static str,
    number: &'static str,
    during: &'static str,
) -> Result<Vec<Counter>, StoreError> {
    let sql = format!("SELECT prefix, till, day, {number} FROM {table} ORDER BY day, prefix, till");
    let mut s = conn
        .prepare_cached(&sql)
        .map_err(StoreError::sqlite(during))?;
    let rows = s
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, u64>(3)?,
            ))
        })
        .map_err(StoreError::sqlite(during))?;
    rows.map(|row| {
        let (prefix, till, day, last) = row.map_err(StoreError::sqlite(during))?;
        let day =
            keys::day_of(&day).ok_or_else(|| StoreError::corrupt(table, format!("day «{day}»")))?;
        Ok(Counter {
            prefix,
            till,
            day,
            last,
        })
    })
    .collect()
}

pub(super) const SMS_REPORT_KEY: &str = "sms_report_key";

impl Store {
    /// The order-number counters.
    pub fn counters(&self) -> Result<Vec<Counter>, StoreError> {
        self.read(|conn| read_counters(conn, "counters", "last", "reading the counters"))
    }

    /// Every till that has sold from this store: the distinct tills of the order-number
    /// counters (a row per till and day, so this never reads the orders themselves).
    pub fn tills(&self) -> Result<Vec<TillId>, StoreError> {
        const DURING: &str = "reading the tills";
        self.read(|conn| {
            let mut statement = conn
                .prepare_cached("SELECT DISTINCT till FROM counters ORDER BY till")
                .map_err(StoreError::sqlite(DURING))?;
            let rows = statement
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(StoreError::sqlite(DURING))?;
            rows.map(|row| {
                let till = row.map_err(StoreError::sqlite(DURING))?;
                TillId::parse(&till)
                    .map_err(|_| StoreError::corrupt("counters", format!("till «{till}»")))
            })
            .collect()
        })
    }

    /// The last number handed out for a till on a day (0: none yet).
    pub fn last_number(
        &self,
        prefix: &StorePrefix,
        till: &TillId,
        day: NaiveDate,
    ) -> Result<u64, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT last FROM counters WHERE prefix = ?1 AND till = ?2 AND day = ?3",
            )
            .and_then(|mut s| {
                s.query_row(
                    params![prefix.as_str(), till.as_str(), keys::day(day)],
                    |r| r.get(0),
                )
                .optional()
            })
            .map(Option::unwrap_or_default)
            .map_err(StoreError::sqlite("reading a counter"))
        })
    }

    /// Raises each counter to at least the given value (never lowers one): after a restore,
    /// numbers the replaced store handed out (and the bank has seen) are not reused.
    pub async fn raise_counters(&self, counters: &[Counter]) -> Result<(), StoreError> {
        let counters = counters.to_vec();
        self.writer()
            .write(move |conn| counters.iter().try_for_each(|c| raise(conn, c)))
            .await
    }

    /// A random key kept in the store (made on first use): it signs the delivery-report
    /// addresses handed to an SMS gateway, so a report still verifies after a restart.
    pub async fn sms_report_key(&self) -> Result<Vec<u8>, StoreError> {
        if let Some(key) = self.read(|conn| get_meta(conn, SMS_REPORT_KEY))? {
            return Ok(key);
        }
        let fresh: [u8; 32] = rand::random();
        self.writer()
            .write(move |conn| {
                // Two callers racing: the first one written wins, both read it back.
                conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)",
                    params![SMS_REPORT_KEY, &fresh[..]],
                )
                .map_err(StoreError::sqlite("keeping the SMS report key"))?;
                Ok(get_meta(conn, SMS_REPORT_KEY)?.unwrap_or_else(|| fresh.to_vec()))
            })
            .await
    }
}
