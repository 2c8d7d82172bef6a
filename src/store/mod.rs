//! The till's database: every order with its history, the indexes and day sums that answer the
//! till and the manager, the order-number counters, the gateway-call journal, the callbacks
//! received, cancels asked for mid-sale, the printer's queue and the SMS report key. SQLite
//! (bundled, WAL, `synchronous = FULL`, `foreign_keys = ON`), one file at `store.path`.
//!
//! **Durable before answered.** Every change goes to one writer thread (`writer.rs`) that
//! commits all changes waiting for it in one transaction and fsyncs once for all of them (group
//! commit); a caller is answered only after the commit that holds its change has returned. A
//! change is one savepoint: an order's row, its new history lines, its idempotency key, its
//! day's sums and, for a sale, the order-number counter are written together or not at all.
//! Readers use connections of their own and never wait for the writer.
//!
//! **One daemon per store**: an exclusive lock on `<database>.lock` (`lock.rs`).
//! **Bounded memory**: each connection's page cache is bounded by `store.cache_mb`, no memory
//! mapping, at most [`IDLE_READERS`] reader connections kept; lists read one page of orders at
//! a time (`range` is an iterator over pages).
//! **Upgrades**: a sled store from chasti 0.1 is imported at the first start (`sled_import.rs`),
//! the schema is versioned (`schema.rs`).

mod backup;
mod checkpoint;
mod closes;
mod days;
mod error;
mod journal;
mod keys;
mod lock;
mod meta;
mod orders;
mod outbox;
mod queues;
pub mod receipts;
pub mod record;
mod restore;
mod schema;
mod sled_import;
mod writer;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use rusqlite::Connection;

use crate::domain::{GatewayOrderId, IdempotencyKey, OrderNumber, StorePrefix, TillId};
use crate::moscow;
use crate::orders::order::Order;
use crate::orders::totals::DayTotals;

pub use backup::{
    inspect, BackupError, BackupReceiver, BackupStream, BackupSummary, BACKUP_FILE,
    MAGIC as BACKUP_MAGIC,
};
pub use closes::KeptClose;
pub use error::StoreError;
pub use journal::{JournalEntry, StoredCallback};
pub use meta::Counter;
pub use outbox::{status_in_file as outbox_in_file, Change, OutboxStatus, Replication};
pub use restore::{restore_findings, BankOnly, RestoreCheck, Restored};
pub use sled_import::{import_folder, is_sled_store, ImportSummary};

/// How many Moscow days an idempotency key keeps answering with its sale (today and the days
/// before): a retry after that is a new sale.
pub const KEY_DAYS: i64 = 7;

/// Reader connections kept open between reads (more are opened when needed, then closed).
pub const IDLE_READERS: usize = 4;

/// Orders read from the database at a time by `range`.
const PAGE: usize = 128;

/// How the store is opened.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    /// The writer connection's page cache, in bytes (`store.cache_mb`); each reader gets a
    /// quarter of it.
    pub cache_bytes: u64,
    /// Whether changes are noted for the head office (`[replicate]`); `Keep` leaves the
    /// store as the daemon last set it.
    pub replication: Replication,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            cache_bytes: 4 << 20,
            replication: Replication::Keep,
        }
    }
}

impl StoreOptions {
    fn writer_kib(&self) -> u64 {
        (self.cache_bytes >> 10).max(256)
    }

    fn reader_kib(&self) -> u64 {
        (self.cache_bytes >> 12).max(256)
    }
}

/// The database file `store.path` names: the path itself when it ends in `.db`, `.sqlite` or
/// `.sqlite3`, else `<path>.db` beside it. (chasti 0.1's configs named the sled folder,
/// `/var/lib/chasti/orders`; the same config now means `/var/lib/chasti/orders.db`.)
pub fn database_file(path: &Path) -> PathBuf {
    let named = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e, "db" | "sqlite" | "sqlite3"));
    if named {
        path.to_path_buf()
    } else {
        let mut name = path.as_os_str().to_owned();
        name.push(".db");
        PathBuf::from(name)
    }
}

/// Makes a new directory entry durable: the file exists after a power cut, not only its data.
pub(crate) fn sync_dir(of: &Path) -> Result<(), StoreError> {
    let dir = match of.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StoreError::file(format!(
            "syncing the folder {}",
            dir.display()
        )))
}

struct Shared {
    // Dropped in this order: the readers and the checkpointer, then the writer (which commits
    // what is left and closes the last connection), then the lock.
    readers: Mutex<Vec<Connection>>,
    _checkpointer: checkpoint::Checkpointer,
    writer: writer::Writer,
    database: PathBuf,
    options: StoreOptions,
    _lock: lock::StoreLock,
}

#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

fn lock_pool<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_with(path, StoreOptions::default())
    }

    /// Opens (creating, upgrading or importing as needed) the store `store.path` names.
    pub fn open_with(path: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        let database = database_file(path);
        if let Some(dir) = database.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(StoreError::file(format!("creating {}", dir.display())))?;
        }
        let lock = lock::acquire(&database)?;
        sled_import::import_if_found(path, &database)?;
        let mut conn = schema::connect(&database, schema::Role::Writer, options.writer_kib())?;
        schema::migrate(&mut conn, &database)?;
        outbox::configure(&conn, options.replication)?;
        // The database and its WAL exist now; their names must survive a power cut too.
        sync_dir(&database)?;
        backup::remove_leftovers(&database);
        let name = format!("chasti-store-{}", std::process::id());
        let writer = writer::Writer::start(conn, &name)?;
        let checkpointer = checkpoint::Checkpointer::start(&database)?;
        Ok(Store {
            shared: Arc::new(Shared {
                readers: Mutex::new(Vec::new()),
                _checkpointer: checkpointer,
                writer,
                database,
                options,
                _lock: lock,
            }),
        })
    }

    /// Whether the store could be opened now, without creating, importing or changing
    /// anything: for `doctor`. Says what it found.
    pub fn check_openable(path: &Path) -> Result<String, StoreError> {
        let database = database_file(path);
        if let Some(holder) = lock::holder_now(&database) {
            return Err(StoreError::InUse {
                path: database.display().to_string(),
                holder,
            });
        }
        if let Some(sled) = sled_import::legacy_folder(path, &database) {
            return Ok(format!(
                "a chasti 0.1 sled store at {}: imported into {} at the next start",
                sled.display(),
                database.display()
            ));
        }
        if !database.exists() {
            return Ok(format!(
                "{} will be created at the first start",
                database.display()
            ));
        }
        let conn = schema::open_read_only(&database, "opening the database")?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(StoreError::sqlite("reading the schema version"))?;
        if version > schema::latest() {
            return Err(StoreError::NewerSchema {
                path: database.display().to_string(),
                found: version,
                known: schema::latest(),
            });
        }
        Ok(format!("{} (schema {version})", database.display()))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.shared.database
    }

    fn writer(&self) -> &writer::Writer {
        &self.shared.writer
    }

    /// Runs a read on a reader connection of the pool.
    fn read<R>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let pooled = lock_pool(&self.shared.readers).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => schema::connect(
                &self.shared.database,
                schema::Role::Reader,
                self.shared.options.reader_kib(),
            )?,
        };
        let result = f(&conn);
        let mut pool = lock_pool(&self.shared.readers);
        if pool.len() < IDLE_READERS {
            pool.push(conn);
        }
        result
    }

    /// Waits until every change handed to the writer before this call is committed (the
    /// journal's, which nobody waits for).
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.writer().write(|_| Ok(())).await
    }

    /// Stores a new sale: takes the till's next order number for `day`, builds the order with it
    /// (`make`) and stores it with its indexes and day sums, all in one change. Refuses a second
    /// order for one idempotency key (the number is then not used up).
    pub async fn insert_sale(
        &self,
        prefix: &StorePrefix,
        till: &TillId,
        day: NaiveDate,
        make: impl FnOnce(OrderNumber) -> Order + Send + 'static,
    ) -> Result<Order, StoreError> {
        let (prefix, till) = (prefix.clone(), till.clone());
        self.writer()
            .write(move |conn| {
                let number = meta::next_number(conn, &prefix, &till, day)?;
                let order = make(number);
                orders::insert(conn, &order, true)?;
                Ok(order)
            })
            .await
    }

    /// Stores a new order (its number already taken) with its indexes and day sums.
    pub async fn insert(&self, order: &Order) -> Result<(), StoreError> {
        let order = order.clone();
        self.writer()
            .write(move |conn| orders::insert(conn, &order, true))
            .await
    }

    /// Stores many orders (an import, a test's history), two thousand a change. Their
    /// idempotency keys are kept only for the last `KEY_DAYS` days, as a till's would be.
    pub async fn insert_many(&self, list: &[Order]) -> Result<(), StoreError> {
        let keys_from = moscow::date(chrono::Utc::now()) - chrono::Duration::days(KEY_DAYS - 1);
        for chunk in list.chunks(2_000) {
            let chunk = chunk.to_vec();
            self.writer()
                .write(move |conn| {
                    chunk.iter().try_for_each(|o| {
                        let recent = moscow::date(o.created_at) >= keys_from;
                        orders::insert(conn, o, recent)
                    })
                })
                .await?;
        }
        Ok(())
    }

    /// Replaces an order if it is still at `next.version - 1` (compare-and-swap), with its new
    /// history lines and its day's sums.
    pub async fn replace(&self, next: &Order) -> Result<(), StoreError> {
        let next = next.clone();
        self.writer()
            .write(move |conn| orders::replace(conn, &next))
            .await
    }

    pub fn get(&self, id: &uuid::Uuid) -> Result<Option<Order>, StoreError> {
        self.read(|conn| orders::get(conn, id))
    }

    /// The orders with a history line on the Moscow `day` (the day's close reads them).
    pub fn moved_on(&self, day: chrono::NaiveDate) -> Result<Vec<Order>, StoreError> {
        self.read(|conn| closes::moved_on(conn, day))
    }

    /// Keeps a day's close (committed before it is answered).
    pub async fn record_close(&self, close: KeptClose) -> Result<(), StoreError> {
        self.writer()
            .write(move |conn| closes::record(conn, &close))
            .await
    }

    /// The closes made of a day, oldest first.
    pub fn closes_of(&self, day: chrono::NaiveDate) -> Result<Vec<KeptClose>, StoreError> {
        self.read(|conn| closes::of_day(conn, day))
    }

    pub fn by_number(&self, number: &OrderNumber) -> Result<Option<Order>, StoreError> {
        self.read(|conn| match orders::id_by_number(conn, number)? {
            Some(id) => orders::get(conn, &id),
            None => Ok(None),
        })
    }

    /// The sale made with this idempotency key on the Moscow day of `now` or the days before
    /// it (`KEY_DAYS` in all), newest first.
    pub fn by_idempotency_key(
        &self,
        key: &IdempotencyKey,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<Order>, StoreError> {
        let today = moscow::date(now);
        self.read(|conn| {
            for back in 0..KEY_DAYS {
                let day = today - chrono::Duration::days(back);
                if let Some(id) = orders::key_holder(conn, key, day)? {
                    return orders::get(conn, &id);
                }
            }
            Ok(None)
        })
    }

    /// Forgets the idempotency keys of days before `day`; returns how many went.
    pub async fn prune_keys_before(&self, day: NaiveDate) -> Result<usize, StoreError> {
        let day = keys::day(day);
        self.writer()
            .write(move |conn| {
                conn.execute("DELETE FROM idempotency_keys WHERE day < ?1", [day])
                    .map_err(StoreError::sqlite("pruning idempotency keys"))
            })
            .await
    }

    /// An order still moving, by the bank's id (a callback without an order number). Closed
    /// orders are not looked up by the bank's id: callbacks carry the order number.
    pub fn open_by_bank_id(&self, id: &GatewayOrderId) -> Result<Option<Order>, StoreError> {
        Ok(self
            .open_orders()?
            .into_iter()
            .find(|order| order.state.bank_id() == Some(id)))
    }

    /// The orders with a fiscal receipt neither issued nor failed, the longest owed first.
    pub fn receipt_order_ids(&self) -> Result<Vec<uuid::Uuid>, StoreError> {
        self.read(receipts::open_order_ids)
    }

    /// Receipts still open that were owed before `before` («чек не пробит»), and receipts that
    /// failed for good.
    pub fn late_receipts(
        &self,
        before: chrono::DateTime<chrono::Utc>,
    ) -> Result<(u64, u64), StoreError> {
        self.read(|conn| receipts::late(conn, before))
    }

    /// The ids of every order still moving (for the poller and recovery), without reading them.
    pub fn open_ids(&self) -> Result<Vec<uuid::Uuid>, StoreError> {
        self.read(orders::open_ids)
    }

    /// Every order still moving.
    pub fn open_orders(&self) -> Result<Vec<Order>, StoreError> {
        self.read(|conn| {
            let mut out = Vec::new();
            for id in orders::open_ids(conn)? {
                out.extend(orders::get(conn, &id)?);
            }
            Ok(out)
        })
    }

    /// The orders created on the Moscow days `from..=to`, oldest first, after the order `after`
    /// (a page's cursor): read a page at a time, never all at once.
    pub fn range(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        after: Option<uuid::Uuid>,
    ) -> impl Iterator<Item = Result<Order, StoreError>> + Send + 'static {
        let (start, end) = keys::days(from, to);
        let start = match after.map(|id| keys::id(&id)) {
            // A cursor from before the range starts the range, never earlier.
            Some(cursor) if cursor >= start => orders::after(cursor),
            _ => start,
        };
        Pages {
            store: self.clone(),
            next: start,
            end,
            buffer: VecDeque::new(),
            done: false,
        }
    }

    /// The totals of each day `from..=to` from the kept sums (a day without orders is zeros).
    pub fn day_totals(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<DayTotals>, StoreError> {
        self.read(|conn| {
            let mut out = Vec::new();
            let mut day = from;
            while day <= to {
                out.push(days::totals(conn, day)?);
                match day.succ_opt() {
                    Some(next) => day = next,
                    None => break,
                }
            }
            Ok(out)
        })
    }

    /// Every order. For tests and tools only: it reads the whole store.
    pub fn all(&self) -> Result<Vec<Order>, StoreError> {
        self.everything().collect()
    }

    /// Every order, read a page at a time (a resync of the head office walks it).
    pub fn every_order(&self) -> impl Iterator<Item = Result<Order, StoreError>> {
        self.everything()
    }

    /// The next `limit` changes the head office has yet to get, oldest first.
    pub fn outbox_next(&self, limit: usize) -> Result<Vec<Change>, StoreError> {
        self.read(|conn| outbox::next(conn, limit))
    }

    /// Forgets the changes the head office has taken: every one up to row `through`.
    pub async fn outbox_ack(&self, through: i64) -> Result<(), StoreError> {
        self.writer()
            .write(move |conn| outbox::ack(conn, through))
            .await
    }

    pub fn outbox_status(&self) -> Result<OutboxStatus, StoreError> {
        self.read(outbox::status)
    }

    /// Ends resync `generation`: every order was shipped again.
    pub async fn resync_done(&self, generation: u64) -> Result<(), StoreError> {
        self.writer()
            .write(move |conn| outbox::resync_done(conn, generation))
            .await
    }

    /// The outbox's size on disk, in bytes.
    pub fn outbox_bytes(&self) -> Result<u64, StoreError> {
        self.read(outbox::bytes)
    }

    fn everything(&self) -> Pages {
        Pages {
            store: self.clone(),
            next: [0; 16],
            end: [0xff; 16],
            buffer: VecDeque::new(),
            done: false,
        }
    }

    /// Reads every order once (a page at a time) and counts them: a store whose every record
    /// and history line decodes.
    pub fn verify(&self) -> Result<u64, StoreError> {
        let mut count = 0;
        for order in self.everything() {
            order?;
            count += 1;
        }
        Ok(count)
    }
}

/// Orders of a key range, fetched a page at a time.
struct Pages {
    store: Store,
    next: [u8; 16],
    end: [u8; 16],
    buffer: VecDeque<Order>,
    done: bool,
}

impl Iterator for Pages {
    type Item = Result<Order, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buffer.is_empty() && !self.done {
            let (next, end) = (self.next, self.end);
            match self.store.read(|conn| orders::page(conn, next, end, PAGE)) {
                Ok(page) => {
                    self.done = page.len() < PAGE;
                    if let Some(last) = page.last() {
                        self.next = orders::after(keys::id(&last.id));
                    }
                    self.buffer.extend(page);
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        self.buffer.pop_front().map(Ok)
    }
}
