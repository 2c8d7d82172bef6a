//! Orders on disk (sled 0.34). Every write that changes an order is one transaction over the
//! order, its indexes and its day's sums, checked against the version it replaces
//! (compare-and-swap), and flushed (group commit) before the call returns: nothing is acted on
//! or answered before that.
//!
//! Layout 2 (`migrate.rs` upgrades layout 1 in place at open):
//! - `orders2`: order id (16 bytes, UUID v7: creation order) → record (schema 2)
//! - `numbers`: order number → id;  `keys`: the sale's day and the idempotency key's SHA-256
//!   → id, kept for `KEY_DAYS` (a till retries a sale within minutes; a link lives 20)
//! - `open2`: ids of orders still moving;  `days`: Moscow day → that day's sums
//! - `journal2`, `callbacks2`: diagnostics, time-keyed, trimmed to the retention period
//! - `cancel2`: cancels asked for while a sale registers;  `print_queue`;  `meta`: counters
//!
//! Memory: sled's page cache is bounded by `store.cache_mb`; nothing here loads more than a
//! page of orders at a time (`range` is an iterator).

mod backup;
mod days;
mod diagnostics;
mod keys;
mod lock;
mod migrate;

use std::path::Path;

use chrono::NaiveDate;
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use sled::Tree;

use super::order::Order;
use super::record;
use super::totals::DayTotals;
use crate::domain::{GatewayOrderId, IdempotencyKey, OrderNumber};
use crate::moscow;
use days::DaySums;

pub use backup::{BackupChunks, BackupError, BackupSummary, Restorer, MAGIC as BACKUP_MAGIC};
pub use diagnostics::{JournalEntry, StoredCallback};

/// How many Moscow days an idempotency key keeps answering with its sale (today and the days
/// before): a retry after that is a new sale.
pub const KEY_DAYS: i64 = 7;

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

/// How the store is opened.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    /// sled's page cache, in bytes (`store.cache_mb`).
    pub cache_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            cache_bytes: 2 << 20,
        }
    }
}

#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    orders: Tree,
    numbers: Tree,
    keys: Tree,
    open: Tree,
    days: Tree,
    journal: Tree,
    callbacks: Tree,
    meta: Tree,
    print_queue: Tree,
    cancels: Tree,
    commit: super::commit::GroupCommit,
}

fn decode(id: &[u8], bytes: &[u8]) -> Result<Order, StoreError> {
    record::decode(bytes).map_err(|e| StoreError::Corrupt {
        id: keys::id_of(id)
            .map(|u| u.to_string())
            .unwrap_or_else(|| String::from_utf8_lossy(id).into_owned()),
        problem: e.0,
    })
}

fn encode(order: &Order) -> Result<Vec<u8>, StoreError> {
    record::encode(order).map_err(|e| StoreError::Corrupt {
        id: order.id.to_string(),
        problem: e.0,
    })
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
        Store::open_with(path, StoreOptions::default())
    }

    /// Whether the store at `path` could be opened now (free, readable), without migrating or
    /// changing anything: for `doctor`.
    pub fn check_openable(path: &Path) -> Result<(), StoreError> {
        sled::Config::new()
            .path(path)
            .cache_capacity(1 << 20)
            .open()
            .map(drop)
            .map_err(|e| lock::open_error(path, e))
    }

    pub fn open_with(path: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(options.cache_bytes.max(1 << 20))
            .open()
            .map_err(|e| lock::open_error(path, e))?;
        let tree = |name: &str| db.open_tree(name);
        let store = Store {
            orders: tree("orders2")?,
            numbers: tree("numbers")?,
            keys: tree("keys")?,
            open: tree("open2")?,
            days: tree("days")?,
            journal: tree("journal2")?,
            callbacks: tree("callbacks2")?,
            meta: tree("meta")?,
            print_queue: tree("print_queue")?,
            cancels: tree("cancel2")?,
            commit: super::commit::GroupCommit::new(db.clone()),
            db,
        };
        migrate::upgrade(&store)?;
        Ok(store)
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

    /// Stores a new order with its indexes and its day's sums, flushed. Refuses a second order
    /// for one idempotency key.
    pub async fn insert(&self, order: &Order) -> Result<(), StoreError> {
        self.write_new(order)?;
        self.flush().await
    }

    /// Stores many orders (an import, a test's history), flushed once at the end.
    pub async fn insert_many(&self, orders: &[Order]) -> Result<(), StoreError> {
        for order in orders {
            self.write_new(order)?;
        }
        self.flush().await
    }

    fn write_new(&self, order: &Order) -> Result<(), StoreError> {
        let id = keys::id(&order.id);
        let bytes = encode(order)?;
        let day = keys::day(moscow::date(order.created_at));
        let key = order
            .idempotency_key
            .as_ref()
            .map(|k| keys::idempotency(k, moscow::date(order.created_at)));
        let trees = (
            &self.orders,
            &self.numbers,
            &self.keys,
            &self.open,
            &self.days,
        );
        trees
            .transaction(|(orders, numbers, keys_tree, open, days)| {
                if let Some(key) = &key {
                    if let Some(existing) = keys_tree.get(key)? {
                        let existing = keys::id_of(&existing)
                            .map(|u| u.to_string())
                            .unwrap_or_default();
                        return Err(ConflictableTransactionError::Abort(StoreError::Duplicate(
                            existing,
                        )));
                    }
                    keys_tree.insert(key, &id)?;
                }
                orders.insert(&id, bytes.as_slice())?;
                numbers.insert(order.order_number.as_str().as_bytes(), &id)?;
                if order.state.is_open() {
                    open.insert(&id, &[])?;
                }
                let mut sums = DaySums::read(days.get(day)?.as_deref());
                sums.add(order);
                days.insert(&day, sums.bytes())?;
                Ok(())
            })
            .map_err(tx_error)
    }

    /// Replaces an order if it is still at `next.version - 1` (compare-and-swap), keeps the
    /// open index and the day's sums right, and flushes.
    pub async fn replace(&self, next: &Order) -> Result<(), StoreError> {
        let expected = next.version.saturating_sub(1);
        let id = keys::id(&next.id);
        let bytes = encode(next)?;
        let day = keys::day(moscow::date(next.created_at));
        let trees = (&self.orders, &self.open, &self.days);
        trees
            .transaction(|(orders, open, days)| {
                let current = orders.get(id)?.ok_or_else(|| {
                    ConflictableTransactionError::Abort(StoreError::Missing(next.id.to_string()))
                })?;
                let current = decode(&id, &current).map_err(ConflictableTransactionError::Abort)?;
                if current.version != expected {
                    return Err(ConflictableTransactionError::Abort(StoreError::Conflict {
                        id: next.id.to_string(),
                        expected,
                        found: current.version,
                    }));
                }
                orders.insert(&id, bytes.as_slice())?;
                if next.state.is_open() {
                    open.insert(&id, &[])?;
                } else {
                    open.remove(&id)?;
                }
                let mut sums = DaySums::read(days.get(day)?.as_deref());
                sums.change(Some(&current), next);
                days.insert(&day, sums.bytes())?;
                Ok(())
            })
            .map_err(tx_error)?;
        self.flush().await
    }

    pub fn get(&self, id: &uuid::Uuid) -> Result<Option<Order>, StoreError> {
        self.get_key(&keys::id(id))
    }

    fn get_key(&self, key: &[u8]) -> Result<Option<Order>, StoreError> {
        match self.orders.get(key)? {
            Some(bytes) => decode(key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    fn get_via(&self, index: &Tree, key: &[u8]) -> Result<Option<Order>, StoreError> {
        match index.get(key)? {
            Some(id) => self.get_key(&id),
            None => Ok(None),
        }
    }

    pub fn by_number(&self, number: &OrderNumber) -> Result<Option<Order>, StoreError> {
        self.get_via(&self.numbers, number.as_str().as_bytes())
    }

    /// The sale made with this idempotency key on the Moscow day of `now` or the days before
    /// it (`KEY_DAYS` in all), newest first.
    pub fn by_idempotency_key(
        &self,
        key: &IdempotencyKey,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<Order>, StoreError> {
        let today = moscow::date(now);
        for back in 0..KEY_DAYS {
            let day = today - chrono::Duration::days(back);
            if let Some(order) = self.get_via(&self.keys, &keys::idempotency(key, day))? {
                return Ok(Some(order));
            }
        }
        Ok(None)
    }

    /// Forgets the idempotency keys of days before `day`; returns how many went.
    pub fn prune_keys_before(&self, day: NaiveDate) -> Result<usize, StoreError> {
        let mut removed = 0;
        for entry in self.keys.range(..keys::day(day)) {
            let (key, _) = entry?;
            self.keys.remove(key)?;
            removed += 1;
        }
        Ok(removed)
    }

    /// An order still moving, by the bank's id (a callback without an order number). Closed
    /// orders are not indexed by the bank's id: callbacks carry the order number.
    pub fn open_by_bank_id(&self, id: &GatewayOrderId) -> Result<Option<Order>, StoreError> {
        for order in self.open_orders()? {
            if order.state.bank_id() == Some(id) {
                return Ok(Some(order));
            }
        }
        Ok(None)
    }

    /// The ids of every order still moving (for the poller and recovery), without reading them.
    pub fn open_ids(&self) -> Result<Vec<uuid::Uuid>, StoreError> {
        let mut out = Vec::new();
        for entry in self.open.iter() {
            let (id, _) = entry?;
            match keys::id_of(&id) {
                Some(id) => out.push(id),
                None => tracing::error!(key = ?id, "unreadable id in the open index; skipped"),
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

    /// The orders created on the Moscow days `from..=to`, oldest first, after the order `after`
    /// (a page's cursor): read one at a time, never all at once.
    pub fn range(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        after: Option<uuid::Uuid>,
    ) -> impl Iterator<Item = Result<Order, StoreError>> + Send + 'static {
        let (start, end) = keys::days(from, to);
        let start = match after.map(|id| keys::id(&id)) {
            // A cursor from before the range starts the range, never earlier.
            Some(cursor) if cursor >= start => std::ops::Bound::Excluded(cursor.to_vec()),
            _ => std::ops::Bound::Included(start.to_vec()),
        };
        self.orders
            .range::<Vec<u8>, _>((start, std::ops::Bound::Excluded(end.to_vec())))
            .map(|entry| {
                let (key, bytes) = entry?;
                decode(&key, &bytes)
            })
    }

    /// The totals of each day `from..=to` from the kept sums (a day without orders is zeros).
    pub fn day_totals(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<DayTotals>, StoreError> {
        let mut out = Vec::new();
        let mut day = from;
        while day <= to {
            let sums = DaySums::read(self.days.get(keys::day(day))?.as_deref());
            out.push(sums.totals(day).ok_or_else(|| StoreError::Corrupt {
                id: format!("totals of {day}"),
                problem: "they leave the gateway's range".into(),
            })?);
            match day.succ_opt() {
                Some(next) => day = next,
                None => break,
            }
        }
        Ok(out)
    }

    /// Every order. For tests and tools only: it reads the whole store.
    pub fn all(&self) -> Result<Vec<Order>, StoreError> {
        self.orders
            .iter()
            .map(|entry| {
                let (key, bytes) = entry?;
                decode(&key, &bytes)
            })
            .collect()
    }

    /// Reads every order once (one at a time) and counts them: a store whose every record
    /// decodes. For `chasti restore`, before a backup replaces the live store.
    pub fn verify(&self) -> Result<u64, StoreError> {
        let mut count = 0;
        for entry in self.orders.iter() {
            let (key, bytes) = entry?;
            decode(&key, &bytes)?;
            count += 1;
        }
        Ok(count)
    }

    /// The order-number counters (`seq/PREFIX/TILL/YYMMDD` → last number handed out).
    pub fn counters(&self) -> Result<Vec<(Vec<u8>, u64)>, StoreError> {
        self.meta
            .scan_prefix(b"seq/")
            .map(|entry| {
                let (key, value) = entry?;
                let n = <[u8; 8]>::try_from(value.as_ref())
                    .map(u64::from_be_bytes)
                    .unwrap_or(0);
                Ok((key.to_vec(), n))
            })
            .collect()
    }

    /// Raises each counter to at least the given value (never lowers one), flushed: after a
    /// restore, numbers the replaced store handed out (and the bank has seen) are not reused.
    pub async fn raise_counters(&self, counters: &[(Vec<u8>, u64)]) -> Result<(), StoreError> {
        for (key, at_least) in counters {
            if !key.starts_with(b"seq/") {
                continue;
            }
            self.meta.update_and_fetch(key, |old| {
                let n = old
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_be_bytes)
                    .unwrap_or(0);
                Some(n.max(*at_least).to_be_bytes().to_vec())
            })?;
        }
        self.flush().await
    }

    /// A random key kept in the store (made on first use, flushed): it signs the delivery-report
    /// addresses handed to an SMS gateway, so a report still verifies after a restart.
    pub async fn sms_report_key(&self) -> Result<Vec<u8>, StoreError> {
        const KEY: &[u8] = b"sms_report_key";
        if let Some(key) = self.meta.get(KEY)? {
            return Ok(key.to_vec());
        }
        let fresh: [u8; 32] = rand::random();
        // Two starts racing would both try: the first one written wins, both read it back.
        let _ = self
            .meta
            .compare_and_swap(KEY, None as Option<&[u8]>, Some(&fresh[..]))?;
        self.flush().await?;
        Ok(self
            .meta
            .get(KEY)?
            .map(|k| k.to_vec())
            .unwrap_or_else(|| fresh.to_vec()))
    }
}
