//! Orders on disk (sled 0.34). Every write that changes an order is one transaction over the
//! order and its indexes, checked against the version it replaces (compare-and-swap), and
//! flushed to disk before the call returns: nothing is acted on or answered before that.

use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use sled::Tree;

use super::order::Order;
use super::record;
use crate::domain::{GatewayOrderId, IdempotencyKey, OrderNumber};
use crate::moscow;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("order store: {0}")]
    Io(String),
    /// Another writer changed the order first; re-read and decide again.
    #[error("order {id} changed under us (expected version {expected}, found {found})")]
    Conflict {
        id: String,
        expected: u64,
        found: u64,
    },
    #[error("order {0} is not in the store")]
    Missing(String),
    /// A sale with this idempotency key exists already.
    #[error("a sale with this idempotency key exists: {0}")]
    Duplicate(String),
    #[error("order record {id} is unreadable: {problem}")]
    Corrupt { id: String, problem: String },
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Io(e.to_string())
    }
}

/// One gateway call, for the journal (never parameters: no secrets). Kept for the retention
/// period (`store.retention_days`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub at: DateTime<Utc>,
    pub method: String,
    pub order_number: String,
    pub outcome: String,
    pub duration_us: u64,
}

/// One callback as received, kept before it is answered (for the retention period).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCallback {
    pub at: DateTime<Utc>,
    pub params: Vec<(String, String)>,
    /// `hmac`, `rsa`, or `unsigned` (accepted only when no key is configured).
    pub signature: String,
}

#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    orders: Tree,
    by_gateway: Tree,
    by_number: Tree,
    by_day: Tree,
    open: Tree,
    idempotency: Tree,
    journal: Tree,
    callbacks: Tree,
    meta: Tree,
    print_queue: Tree,
    cancel_requests: Tree,
    commit: super::commit::GroupCommit,
}

fn day_key(day: NaiveDate, id: &str) -> Vec<u8> {
    format!("{day}\u{0}{id}").into_bytes()
}

fn decode(id: &str, bytes: &[u8]) -> Result<Order, StoreError> {
    record::decode(bytes).map_err(|e| StoreError::Corrupt {
        id: id.to_string(),
        problem: e.0,
    })
}

/// Keys of the journal and callback trees: the time first, so retention is a range delete.
fn timed_key(at: DateTime<Utc>, seq: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    key[..8].copy_from_slice(&millis.to_be_bytes());
    key[8..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// Turns a transaction's error into ours.
fn tx_error(e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => StoreError::Io(e.to_string()),
    }
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .open()
            .map_err(|e| StoreError::Io(format!("cannot open {}: {e}", path.display())))?;
        let tree = |name: &str| db.open_tree(name);
        Ok(Store {
            orders: tree("orders")?,
            by_gateway: tree("by_gateway")?,
            by_number: tree("by_number")?,
            by_day: tree("by_day")?,
            open: tree("open")?,
            idempotency: tree("idempotency")?,
            journal: tree("journal")?,
            callbacks: tree("callbacks")?,
            meta: tree("meta")?,
            print_queue: tree("print_queue")?,
            cancel_requests: tree("cancel_requests")?,
            commit: super::commit::GroupCommit::new(db.clone()),
            db,
        })
    }

    /// Waits until everything written so far is on disk. Concurrent callers share flushes
    /// (`commit.rs`): each returns once a flush that started after its call has finished.
    ///
    /// The blocking `flush()` on tokio's blocking pool, not sled 0.34's `flush_async()`: the
    /// latter's futures can stay pending forever when several are polled at once
    /// (spacejam/sled#1241, #1308); the bench hit exactly that with concurrent callbacks.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.commit.flush().await.map_err(StoreError::Io)
    }

    /// The next order number for a till on a Moscow day: `PREFIX-TILL-YYMMDD-NNNN`.
    /// The counter is not flushed here: the number goes nowhere before the order that carries
    /// it is inserted, and that insert's flush writes the counter too (sled keeps writes in
    /// order), so a crash can never hand the same number out twice.
    pub fn allocate_order_number(
        &self,
        prefix: &crate::domain::StorePrefix,
        till: &crate::domain::TillId,
        day: NaiveDate,
    ) -> Result<OrderNumber, StoreError> {
        let date = day.format("%y%m%d");
        let key = format!("seq/{prefix}/{till}/{date}");
        let next = self
            .meta
            .update_and_fetch(key.as_bytes(), |old| {
                let n = old
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_be_bytes)
                    .unwrap_or(0);
                Some((n + 1).to_be_bytes().to_vec())
            })?
            .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(1);
        Ok(OrderNumber::new(prefix, till, day, next))
    }

    /// Stores a new order with its indexes. Refuses a second order for one idempotency key.
    pub async fn insert(&self, order: &Order) -> Result<(), StoreError> {
        let id = order.id.to_string();
        let day = day_key(moscow::date(order.created_at), &id);
        let trees = (
            &self.orders,
            &self.by_number,
            &self.by_day,
            &self.open,
            &self.idempotency,
        );
        trees
            .transaction(|(orders, by_number, by_day, open, idempotency)| {
                if let Some(key) = &order.idempotency_key {
                    if let Some(existing) = idempotency.get(key.as_str().as_bytes())? {
                        let id = String::from_utf8_lossy(&existing).to_string();
                        return Err(ConflictableTransactionError::Abort(StoreError::Duplicate(
                            id,
                        )));
                    }
                    idempotency.insert(key.as_str().as_bytes(), id.as_bytes())?;
                }
                orders.insert(id.as_bytes(), record::encode(order))?;
                by_number.insert(order.order_number.as_str().as_bytes(), id.as_bytes())?;
                by_day.insert(day.as_slice(), &[])?;
                if order.state.is_open() {
                    open.insert(id.as_bytes(), &[])?;
                }
                Ok(())
            })
            .map_err(tx_error)?;
        self.flush().await
    }

    /// Replaces an order if it is still at `next.version - 1` (compare-and-swap), keeps the
    /// indexes right, and flushes.
    pub async fn replace(&self, next: &Order) -> Result<(), StoreError> {
        let expected = next.version.saturating_sub(1);
        let id = next.id.to_string();
        let bytes = record::encode(next);
        let trees = (&self.orders, &self.by_gateway, &self.open);
        trees
            .transaction(|(orders, by_gateway, open)| {
                let current = orders.get(id.as_bytes())?.ok_or_else(|| {
                    ConflictableTransactionError::Abort(StoreError::Missing(id.clone()))
                })?;
                let current = decode(&id, &current).map_err(ConflictableTransactionError::Abort)?;
                if current.version != expected {
                    return Err(ConflictableTransactionError::Abort(StoreError::Conflict {
                        id: id.clone(),
                        expected,
                        found: current.version,
                    }));
                }
                orders.insert(id.as_bytes(), bytes.as_slice())?;
                if let Some(gid) = next.state.bank_id() {
                    by_gateway.insert(gid.as_str().as_bytes(), id.as_bytes())?;
                }
                if next.state.is_open() {
                    open.insert(id.as_bytes(), &[])?;
                } else {
                    open.remove(id.as_bytes())?;
                }
                Ok(())
            })
            .map_err(tx_error)?;
        self.flush().await
    }

    pub fn get(&self, id: &uuid::Uuid) -> Result<Option<Order>, StoreError> {
        self.get_raw(&id.to_string())
    }

    fn get_raw(&self, id: &str) -> Result<Option<Order>, StoreError> {
        match self.orders.get(id.as_bytes())? {
            Some(bytes) => decode(id, &bytes).map(Some),
            None => Ok(None),
        }
    }

    fn get_via(&self, index: &Tree, key: &str) -> Result<Option<Order>, StoreError> {
        match index.get(key.as_bytes())? {
            Some(id) => self.get_raw(&String::from_utf8_lossy(&id)),
            None => Ok(None),
        }
    }

    pub fn by_gateway_id(&self, id: &GatewayOrderId) -> Result<Option<Order>, StoreError> {
        self.get_via(&self.by_gateway, id.as_str())
    }

    pub fn by_number(&self, number: &OrderNumber) -> Result<Option<Order>, StoreError> {
        self.get_via(&self.by_number, number.as_str())
    }

    pub fn by_idempotency_key(&self, key: &IdempotencyKey) -> Result<Option<Order>, StoreError> {
        self.get_via(&self.idempotency, key.as_str())
    }

    /// The ids of every order still moving (for the poller and recovery), without reading them.
    pub fn open_ids(&self) -> Result<Vec<uuid::Uuid>, StoreError> {
        let mut out = Vec::new();
        for entry in self.open.iter() {
            let (id, _) = entry?;
            match uuid::Uuid::try_parse_ascii(&id) {
                Ok(id) => out.push(id),
                Err(e) => tracing::error!(error = %e, "unreadable id in the open index; skipped"),
            }
        }
        Ok(out)
    }

    /// Every order still moving.
    pub fn open_orders(&self) -> Result<Vec<Order>, StoreError> {
        let mut out = Vec::new();
        for id in self.open_ids()? {
            if let Some(order) = self.get(&id)? {
                out.push(order);
            }
        }
        Ok(out)
    }

    /// The orders created on a Moscow day, oldest first.
    pub fn day(&self, day: NaiveDate) -> Result<Vec<Order>, StoreError> {
        let prefix = format!("{day}\u{0}");
        let mut out = Vec::new();
        for entry in self.by_day.scan_prefix(prefix.as_bytes()) {
            let (key, _) = entry?;
            let id = String::from_utf8_lossy(&key[prefix.len()..]).to_string();
            if let Some(order) = self.get_raw(&id)? {
                out.push(order);
            }
        }
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    pub fn all(&self) -> Result<Vec<Order>, StoreError> {
        self.orders
            .iter()
            .map(|entry| {
                let (id, bytes) = entry?;
                decode(&String::from_utf8_lossy(&id), &bytes)
            })
            .collect()
    }

    /// Appends to the gateway-call journal. Not flushed on its own: it is diagnostics, and
    /// the next order write (or sled's periodic flush) carries it to disk.
    pub fn journal_append(&self, entry: &JournalEntry) -> Result<(), StoreError> {
        let key = timed_key(entry.at, self.db.generate_id()?);
        let bytes = serde_json::to_vec(entry).unwrap_or_default();
        self.journal.insert(key, bytes)?;
        Ok(())
    }

    pub fn journal(&self) -> Result<Vec<JournalEntry>, StoreError> {
        self.journal
            .iter()
            .values()
            .map(|v| {
                let v = v?;
                serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                    id: "journal".into(),
                    problem: e.to_string(),
                })
            })
            .collect()
    }

    /// Keeps a received callback, flushed: it is answered 200 only after this.
    pub async fn callback_append(&self, record: &StoredCallback) -> Result<(), StoreError> {
        let key = timed_key(record.at, self.db.generate_id()?);
        let bytes = serde_json::to_vec(record).unwrap_or_default();
        self.callbacks.insert(key, bytes)?;
        self.flush().await
    }

    /// Drops journal entries and callbacks older than `before`; returns how many went.
    pub fn prune_before(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        let end = timed_key(before, 0);
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
    pub async fn request_cancel(
        &self,
        id: &uuid::Uuid,
        actor: &super::order::Actor,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(actor).unwrap_or_default();
        self.cancel_requests
            .insert(id.to_string().as_bytes(), bytes)?;
        self.flush().await
    }

    /// Takes a pending cancel request (who asked), if any.
    pub fn take_cancel_request(
        &self,
        id: &uuid::Uuid,
    ) -> Result<Option<super::order::Actor>, StoreError> {
        match self.cancel_requests.remove(id.to_string().as_bytes())? {
            Some(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
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

    pub fn callbacks(&self) -> Result<Vec<StoredCallback>, StoreError> {
        self.callbacks
            .iter()
            .values()
            .map(|v| {
                let v = v?;
                serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                    id: "callbacks".into(),
                    problem: e.to_string(),
                })
            })
            .collect()
    }
}
