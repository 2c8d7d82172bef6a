//! Orders on disk (sled 0.34). Every write that changes an order is one transaction over the
//! order and its indexes, checked against the version it replaces (compare-and-swap), and
//! flushed to disk before the call returns: nothing is acted on or answered before that.

use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use sled::Tree;

use super::domain::Order;
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

/// One gateway call, for the journal (never parameters: no secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub at: DateTime<Utc>,
    pub method: String,
    pub order_number: String,
    pub outcome: String,
    pub duration_us: u64,
}

/// One callback as received, kept before it is answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackRecord {
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
}

fn day_key(day: NaiveDate, id: &str) -> Vec<u8> {
    format!("{day}\u{0}{id}").into_bytes()
}

fn decode(id: &str, bytes: &[u8]) -> Result<Order, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        id: id.to_string(),
        problem: e.to_string(),
    })
}

fn encode(order: &Order) -> Vec<u8> {
    serde_json::to_vec(order).expect("an order always serialises")
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
            db,
        })
    }

    /// Waits until everything written so far is on disk.
    ///
    /// The blocking `flush()` on tokio's blocking pool, not sled 0.34's `flush_async()`: the
    /// latter's futures can stay pending forever when several are polled at once
    /// (spacejam/sled#1241, #1308); the bench hit exactly that with concurrent callbacks.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|e| StoreError::Io(format!("flush task failed: {e}")))??;
        Ok(())
    }

    /// The next order number for a till on a Moscow day: `PREFIX-TILL-YYMMDD-NNNN`.
    /// The counter is flushed before the number is handed out, so a crash can never
    /// hand the same number out twice.
    pub async fn allocate_order_number(
        &self,
        prefix: &str,
        till: &str,
        day: NaiveDate,
    ) -> Result<String, StoreError> {
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
        self.flush().await?;
        Ok(format!("{prefix}-{till}-{date}-{next:04}"))
    }

    /// Stores a new order with its indexes. Refuses a second order for one idempotency key.
    pub async fn insert(&self, order: &Order) -> Result<(), StoreError> {
        let day = day_key(moscow::date(order.created_at), &order.id);
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
                    if let Some(existing) = idempotency.get(key.as_bytes())? {
                        let id = String::from_utf8_lossy(&existing).to_string();
                        return Err(ConflictableTransactionError::Abort(StoreError::Duplicate(
                            id,
                        )));
                    }
                    idempotency.insert(key.as_bytes(), order.id.as_bytes())?;
                }
                orders.insert(order.id.as_bytes(), encode(order))?;
                by_number.insert(order.order_number.as_bytes(), order.id.as_bytes())?;
                by_day.insert(day.as_slice(), &[])?;
                if order.state.is_open() {
                    open.insert(order.id.as_bytes(), &[])?;
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
        let trees = (&self.orders, &self.by_gateway, &self.open);
        trees
            .transaction(|(orders, by_gateway, open)| {
                let current = orders.get(next.id.as_bytes())?.ok_or_else(|| {
                    ConflictableTransactionError::Abort(StoreError::Missing(next.id.clone()))
                })?;
                let current =
                    decode(&next.id, &current).map_err(ConflictableTransactionError::Abort)?;
                if current.version != expected {
                    return Err(ConflictableTransactionError::Abort(StoreError::Conflict {
                        id: next.id.clone(),
                        expected,
                        found: current.version,
                    }));
                }
                orders.insert(next.id.as_bytes(), encode(next))?;
                if let Some(gid) = &next.gateway_order_id {
                    by_gateway.insert(gid.as_bytes(), next.id.as_bytes())?;
                }
                if next.state.is_open() {
                    open.insert(next.id.as_bytes(), &[])?;
                } else {
                    open.remove(next.id.as_bytes())?;
                }
                Ok(())
            })
            .map_err(tx_error)?;
        self.flush().await
    }

    pub fn get(&self, id: &str) -> Result<Option<Order>, StoreError> {
        match self.orders.get(id.as_bytes())? {
            Some(bytes) => decode(id, &bytes).map(Some),
            None => Ok(None),
        }
    }

    fn get_via(&self, index: &Tree, key: &str) -> Result<Option<Order>, StoreError> {
        match index.get(key.as_bytes())? {
            Some(id) => self.get(&String::from_utf8_lossy(&id)),
            None => Ok(None),
        }
    }

    pub fn by_gateway_id(&self, gateway_order_id: &str) -> Result<Option<Order>, StoreError> {
        self.get_via(&self.by_gateway, gateway_order_id)
    }

    pub fn by_number(&self, order_number: &str) -> Result<Option<Order>, StoreError> {
        self.get_via(&self.by_number, order_number)
    }

    pub fn by_idempotency_key(&self, key: &str) -> Result<Option<Order>, StoreError> {
        self.get_via(&self.idempotency, key)
    }

    /// Every order still moving (for the poller and recovery).
    pub fn open_orders(&self) -> Result<Vec<Order>, StoreError> {
        let mut out = Vec::new();
        for entry in self.open.iter() {
            let (id, _) = entry?;
            if let Some(order) = self.get(&String::from_utf8_lossy(&id))? {
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
            if let Some(order) = self.get(&id)? {
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
        let id = self.db.generate_id()?;
        let bytes = serde_json::to_vec(entry).expect("a journal entry serialises");
        self.journal.insert(id.to_be_bytes(), bytes)?;
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
    pub async fn callback_append(&self, record: &CallbackRecord) -> Result<(), StoreError> {
        let id = self.db.generate_id()?;
        let bytes = serde_json::to_vec(record).expect("a callback record serialises");
        self.callbacks.insert(id.to_be_bytes(), bytes)?;
        self.flush().await
    }

    pub fn callbacks(&self) -> Result<Vec<CallbackRecord>, StoreError> {
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
