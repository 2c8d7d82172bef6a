//! What the store keeps besides orders: the gateway-call journal and the callbacks received
//! (both trimmed to the retention period), cancels asked for while a sale registers, and the
//! printer's queue of slips not yet printed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{keys, Store, StoreError};
use crate::orders::order::Actor;

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

/// Diagnostics on disk: postcard, times as microseconds.
#[derive(Serialize, Deserialize)]
struct JournalV2 {
    at: i64,
    method: String,
    order_number: String,
    outcome: String,
    duration_us: u64,
}

#[derive(Serialize, Deserialize)]
struct CallbackV2 {
    at: i64,
    params: Vec<(String, String)>,
    signature: String,
}

fn time(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

fn unreadable(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        id: what.into(),
        problem: e.to_string(),
    }
}

impl Store {
    /// Appends to the gateway-call journal. Not flushed on its own: it is diagnostics, and
    /// the next order write (or sled's periodic flush) carries it to disk.
    pub fn journal_append(&self, entry: &JournalEntry) -> Result<(), StoreError> {
        let key = keys::timed(entry.at, self.db.generate_id()?);
        let record = JournalV2 {
            at: entry.at.timestamp_micros(),
            method: entry.method.clone(),
            order_number: entry.order_number.clone(),
            outcome: entry.outcome.clone(),
            duration_us: entry.duration_us,
        };
        let bytes = postcard::to_allocvec(&record).map_err(|e| unreadable("journal", e))?;
        self.journal.insert(key, bytes)?;
        Ok(())
    }

    pub fn journal(&self) -> Result<Vec<JournalEntry>, StoreError> {
        self.journal
            .iter()
            .values()
            .map(|v| {
                let r: JournalV2 =
                    postcard::from_bytes(&v?).map_err(|e| unreadable("journal", e))?;
                Ok(JournalEntry {
                    at: time(r.at),
                    method: r.method,
                    order_number: r.order_number,
                    outcome: r.outcome,
                    duration_us: r.duration_us,
                })
            })
            .collect()
    }

    /// Keeps a received callback, flushed: it is answered 200 only after this.
    pub async fn callback_append(&self, record: &StoredCallback) -> Result<(), StoreError> {
        self.callback_write(record)?;
        self.flush().await
    }

    pub(super) fn callback_write(&self, record: &StoredCallback) -> Result<(), StoreError> {
        let key = keys::timed(record.at, self.db.generate_id()?);
        let stored = CallbackV2 {
            at: record.at.timestamp_micros(),
            params: record
                .params
                .iter()
                .filter(|(k, _)| k != "checksum")
                .cloned()
                .collect(),
            signature: record.signature.clone(),
        };
        let bytes = postcard::to_allocvec(&stored).map_err(|e| unreadable("callback", e))?;
        self.callbacks.insert(key, bytes)?;
        Ok(())
    }

    pub fn callbacks(&self) -> Result<Vec<StoredCallback>, StoreError> {
        self.callbacks
            .iter()
            .values()
            .map(|v| {
                let r: CallbackV2 =
                    postcard::from_bytes(&v?).map_err(|e| unreadable("callbacks", e))?;
                Ok(StoredCallback {
                    at: time(r.at),
                    params: r.params,
                    signature: r.signature,
                })
            })
            .collect()
    }

    /// Drops journal entries and callbacks older than `before`; returns how many went.
    pub fn prune_before(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        let end = keys::timed(before, 0);
        let mut removed = 0;
        for tree in [&self.journal, &self.callbacks] {
            for entry in tree.range(..end) {
                let (key, _) = entry?;
                tree.remove(key)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// A cancel asked for while the order is busy registering, flushed: the register path takes
    /// it up once the bank has answered.
    pub async fn request_cancel(&self, id: &uuid::Uuid, actor: &Actor) -> Result<(), StoreError> {
        let bytes = postcard::to_allocvec(&(&actor.token, &actor.cashier))
            .map_err(|e| unreadable("cancel request", e))?;
        self.cancels.insert(keys::id(id), bytes)?;
        self.flush().await
    }

    /// Takes a pending cancel request (who asked), if any.
    pub fn take_cancel_request(&self, id: &uuid::Uuid) -> Result<Option<Actor>, StoreError> {
        match self.cancels.remove(keys::id(id))? {
            Some(bytes) => Ok(postcard::from_bytes::<(String, Option<String>)>(&bytes)
                .ok()
                .map(|(token, cashier)| Actor { token, cashier })),
            None => Ok(None),
        }
    }

    /// Adds a slip to the printer's queue, flushed: a slip asked for survives a stop or a crash.
    pub async fn print_queue_push(&self, item: &[u8]) -> Result<u64, StoreError> {
        let seq = self.db.generate_id()?;
        self.print_queue.insert(seq.to_be_bytes(), item)?;
        self.flush().await?;
        Ok(seq)
    }

    /// Forgets a printed (or no longer wanted) slip. Blocking: called from the printer's thread.
    pub fn print_queue_remove(&self, seq: u64) -> Result<(), StoreError> {
        self.print_queue.remove(seq.to_be_bytes())?;
        self.db.flush()?;
        Ok(())
    }

    /// The slips still to print, oldest first.
    pub fn print_queue(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.print_queue
            .iter()
            .map(|entry| {
                let (key, value) = entry?;
                let seq = <[u8; 8]>::try_from(key.as_ref())
                    .map(u64::from_be_bytes)
                    .unwrap_or(0);
                Ok((seq, value.to_vec()))
            })
            .collect()
    }
}
