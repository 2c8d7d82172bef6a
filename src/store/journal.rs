//! Diagnostics: the gateway-call journal and the callbacks received, both kept for the
//! retention period (`store.retention_days`) and pruned hourly.

use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::{keys, Store, StoreError};

/// One gateway call that changed something or failed, for the journal (never parameters: no
/// secrets). Status calls that succeed are not kept: what they found is in the order's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub at: DateTime<Utc>,
    pub method: String,
    pub order_number: String,
    pub outcome: String,
    pub duration_us: u64,
}

/// One callback as received and verified, kept before it is answered. The checksum itself is
/// not kept: `signature` says how it was verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCallback {
    pub at: DateTime<Utc>,
    pub params: Vec<(String, String)>,
    /// `hmac`, `rsa`, or `unsigned` (accepted only when no key is configured).
    pub signature: String,
}

pub(super) fn insert_journal(
    conn: &rusqlite::Connection,
    entry: &JournalEntry,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO journal (at, method, order_number, outcome, duration_us) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| {
        s.execute(params![
            keys::time(entry.at),
            entry.method,
            entry.order_number,
            entry.outcome,
            entry.duration_us,
        ])
    })
    .map_err(StoreError::sqlite("writing the journal"))?;
    Ok(())
}

pub(super) fn insert_callback(
    conn: &rusqlite::Connection,
    record: &StoredCallback,
) -> Result<(), StoreError> {
    let kept: Vec<&(String, String)> = record
        .params
        .iter()
        .filter(|(k, _)| k != "checksum")
        .collect();
    // As a query string: what the bank sent, readable, and exact to read back.
    let params =
        serde_urlencoded::to_string(&kept).map_err(|e| StoreError::corrupt("a callback", e))?;
    conn.prepare_cached("INSERT INTO callbacks (at, params, signature) VALUES (?1, ?2, ?3)")
        .and_then(|mut s| s.execute(params![keys::time(record.at), params, record.signature]))
        .map_err(StoreError::sqlite("keeping a callback"))?;
    Ok(())
}

impl Store {
    /// Appends to the gateway-call journal without waiting: it is diagnostics, committed with
    /// the writer's next transaction.
    pub fn journal_append(&self, entry: &JournalEntry) {
        let entry = entry.clone();
        drop(
            self.writer()
                .submit(move |conn| insert_journal(conn, &entry)),
        );
    }

    pub fn journal(&self) -> Result<Vec<JournalEntry>, StoreError> {
        self.read(|conn| {
            let mut s = conn
                .prepare_cached(
                    "SELECT at, method, order_number, outcome, duration_us FROM journal ORDER BY id",
                )
                .map_err(StoreError::sqlite("reading the journal"))?;
            let rows = s
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        JournalEntry {
                            at: DateTime::default(),
                            method: r.get(1)?,
                            order_number: r.get(2)?,
                            outcome: r.get(3)?,
                            duration_us: r.get(4)?,
                        },
                    ))
                })
                .map_err(StoreError::sqlite("reading the journal"))?;
            rows.map(|row| {
                let (at, mut entry) = row.map_err(StoreError::sqlite("reading the journal"))?;
                entry.at = keys::time_of(&at)
                    .ok_or_else(|| StoreError::corrupt("journal", format!("time «{at}»")))?;
                Ok(entry)
            })
            .collect()
        })
    }

    /// Keeps a received callback; returns once it is committed (it is answered 200 only after).
    pub async fn callback_append(&self, record: &StoredCallback) -> Result<(), StoreError> {
        let record = record.clone();
        self.writer()
            .write(move |conn| insert_callback(conn, &record))
            .await
    }

    pub fn callbacks(&self) -> Result<Vec<StoredCallback>, StoreError> {
        self.read(|conn| {
            let mut s = conn
                .prepare_cached("SELECT at, params, signature FROM callbacks ORDER BY id")
                .map_err(StoreError::sqlite("reading the callbacks"))?;
            let rows = s
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .map_err(StoreError::sqlite("reading the callbacks"))?;
            rows.map(|row| {
                let (at, params, signature) =
                    row.map_err(StoreError::sqlite("reading the callbacks"))?;
                Ok(StoredCallback {
                    at: keys::time_of(&at)
                        .ok_or_else(|| StoreError::corrupt("callbacks", format!("time «{at}»")))?,
                    params: serde_urlencoded::from_str(&params)
                        .map_err(|e| StoreError::corrupt("callbacks", e))?,
                    signature,
                })
            })
            .collect()
        })
    }

    /// Drops journal entries and callbacks older than `before`; returns how many went.
    pub async fn prune_before(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        let before = keys::time(before);
        self.writer()
            .write(move |conn| {
                let mut removed = 0;
                for sql in [
                    "DELETE FROM journal WHERE at < ?1",
                    "DELETE FROM callbacks WHERE at < ?1",
                ] {
                    removed += conn
                        .execute(sql, [&before])
                        .map_err(StoreError::sqlite("pruning diagnostics"))?;
                }
                Ok(removed)
            })
            .await
    }
}
