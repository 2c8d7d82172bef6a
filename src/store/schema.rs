//! The database's tables, how each connection is set up, and the schema's versions
//! (`PRAGMA user_version`): each version is a step of SQL applied in its own transaction, so a
//! store is always at one version or the next, never between.
//!
//! Columns a person reads with `sqlite3` are plain text and integers (`number`, `state`,
//! `amount_kopecks`, ISO times in UTC; a history line's `at` is microseconds since 1970, exact
//! and compact: `datetime(at / 1000000, 'unixepoch')`); `orders.record` is the whole order (a schema 2 record
//! without its history, `record/`), and each history line is a row of `events`, its exact kind
//! in `events.kind`. The readable columns are written from the record in the same statement and
//! are never read back into an order.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use super::StoreError;

/// Every step, in order: step `n` takes a store from version `n` to `n + 1`.
pub(super) const STEPS: &[&str] = &[V1, V2, V3, V4, V5];

/// Version 5: the replication outbox, a row for each change the head office has yet to get
/// (append-only on the rowid: see `outbox.rs`).
const V5: &str = "
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY,
    order_id BLOB NOT NULL CHECK (length(order_id) = 16),
    at INTEGER NOT NULL
);
";

/// Version 4: the day's close: history lines found by their time, and each close kept.
const V4: &str = "
CREATE INDEX events_at ON events(at);
CREATE TABLE day_closes (
    id INTEGER PRIMARY KEY,
    day TEXT NOT NULL,
    at TEXT NOT NULL,
    by TEXT NOT NULL,
    report TEXT NOT NULL
);
CREATE INDEX day_closes_day ON day_closes(day);
";

/// Version 3: the fiscal receipts orders owe, a row each (written from the order's record).
const V3: &str = "
CREATE TABLE receipts (
    id BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 16),
    order_id BLOB NOT NULL REFERENCES orders(id),
    kind TEXT NOT NULL,
    amount_kopecks INTEGER NOT NULL,
    status TEXT NOT NULL,
    owed_at TEXT NOT NULL,
    document_number INTEGER,
    fiscal_sign TEXT,
    fn_number TEXT,
    issued_at TEXT
) WITHOUT ROWID;
CREATE INDEX receipts_open ON receipts(status, owed_at);
CREATE INDEX receipts_order ON receipts(order_id);
";

/// Version 2: what a restore must still learn from the bank (the numbers to ask about after
/// the backup's counters) and the orders the bank has that the store lacks.
const V2: &str = "
CREATE TABLE restore_probes (
    prefix TEXT NOT NULL,
    till TEXT NOT NULL,
    day TEXT NOT NULL,
    next INTEGER NOT NULL,
    PRIMARY KEY (prefix, till, day)
) WITHOUT ROWID;
CREATE TABLE bank_only (
    number TEXT PRIMARY KEY NOT NULL,
    amount_kopecks INTEGER NOT NULL,
    status INTEGER NOT NULL,
    found_at TEXT NOT NULL
) WITHOUT ROWID;
";

/// Version 1: orders, their history, indexes and day sums, counters, diagnostics, queues.
const V1: &str = "
CREATE TABLE orders (
    id BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 16),
    number TEXT NOT NULL UNIQUE,
    till TEXT NOT NULL,
    amount_kopecks INTEGER NOT NULL,
    mode TEXT NOT NULL,
    state TEXT NOT NULL,
    open INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    paid_at TEXT,
    paid_kopecks INTEGER NOT NULL,
    refunded_kopecks INTEGER NOT NULL,
    bank_order_id TEXT,
    version INTEGER NOT NULL,
    record BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX orders_open ON orders(id) WHERE open = 1;
CREATE TABLE events (
    order_id BLOB NOT NULL REFERENCES orders(id),
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    by_token TEXT,
    by_cashier TEXT,
    kind BLOB NOT NULL,
    PRIMARY KEY (order_id, seq)
) WITHOUT ROWID;
CREATE TABLE idempotency_keys (
    day TEXT NOT NULL,
    key TEXT NOT NULL,
    order_id BLOB NOT NULL REFERENCES orders(id),
    PRIMARY KEY (day, key)
) WITHOUT ROWID;
CREATE TABLE days (
    day TEXT PRIMARY KEY NOT NULL,
    orders INTEGER NOT NULL,
    sold_kopecks INTEGER NOT NULL,
    reversed_kopecks INTEGER NOT NULL,
    refunded_kopecks INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE counters (
    prefix TEXT NOT NULL,
    till TEXT NOT NULL,
    day TEXT NOT NULL,
    last INTEGER NOT NULL,
    PRIMARY KEY (prefix, till, day)
) WITHOUT ROWID;
CREATE TABLE journal (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    method TEXT NOT NULL,
    order_number TEXT NOT NULL,
    outcome TEXT NOT NULL,
    duration_us INTEGER NOT NULL
);
CREATE INDEX journal_at ON journal(at);
CREATE TABLE callbacks (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    params TEXT NOT NULL,
    signature TEXT NOT NULL
);
CREATE INDEX callbacks_at ON callbacks(at);
CREATE TABLE cancel_requests (
    order_id BLOB PRIMARY KEY NOT NULL REFERENCES orders(id),
    by_token TEXT NOT NULL,
    by_cashier TEXT
) WITHOUT ROWID;
CREATE TABLE print_queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    slip BLOB NOT NULL
);
CREATE TABLE meta (
    key TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
) WITHOUT ROWID;
";

/// The version this build writes.
pub(super) fn latest() -> i64 {
    STEPS.len() as i64
}

/// How a connection is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Writer,
    Reader,
}

/// Opens a connection with the store's settings. `cache_kib` bounds its page cache.
/// The database file opened read only, beside a daemon that may be serving it (WAL lets a
/// reader in without the store's lock).
pub(super) fn open_read_only(
    database: &Path,
    during: &'static str,
) -> Result<Connection, StoreError> {
    Connection::open_with_flags(
        database,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(StoreError::sqlite(during))
}

/// For `doctor` and other readers of a store a daemon may hold: the database read only when it
/// exists and already has `table` (a store from before that table's version has nothing to
/// say of it); None otherwise.
pub(super) fn peek(database: &Path, table: &str) -> Result<Option<Connection>, StoreError> {
    if !database.exists() {
        return Ok(None);
    }
    let conn = open_read_only(database, "opening the database")?;
    let has_table: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
            [table],
            |r| r.get(0),
        )
        .map_err(StoreError::sqlite("reading the schema"))?;
    Ok(has_table.then_some(conn))
}

pub(super) fn connect(
    path: &std::path::Path,
    role: Role,
    cache_kib: u64,
) -> Result<Connection, StoreError> {
    use rusqlite::OpenFlags;
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if role == Role::Writer {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags)
        .map_err(StoreError::sqlite("opening the database"))?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(StoreError::sqlite("setting the busy timeout"))?;
    // WAL: readers never wait for the writer. FULL: every commit is fsynced before it returns
    // (NORMAL would let a power cut take the last commits). No memory-mapped I/O: the page
    // cache below is the whole of what SQLite keeps in memory.
    let cache = -(i64::try_from(cache_kib).unwrap_or(i64::MAX).max(64));
    conn.execute_batch(&format!(
        "PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA mmap_size = 0;
         PRAGMA temp_store = FILE;
         PRAGMA cache_size = {cache};"
    ))
    .map_err(StoreError::sqlite("setting up the connection"))?;
    if role == Role::Writer {
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(StoreError::sqlite("switching to WAL"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Sqlite {
                during: "switching to WAL",
                source: std::sync::Arc::new(rusqlite::Error::InvalidQuery),
            });
        }
        // The WAL is cut back to this size after a checkpoint, so it does not keep the size of
        // the busiest minute for ever.
        conn.execute_batch(&format!(
            "PRAGMA journal_size_limit = 8388608; PRAGMA wal_autocheckpoint = {};",
            super::checkpoint::BACKSTOP_PAGES
        ))
        .map_err(StoreError::sqlite("limiting the WAL"))?;
    } else {
        conn.execute_batch("PRAGMA query_only = ON;")
            .map_err(StoreError::sqlite("making a reader read-only"))?;
    }
    conn.set_prepared_statement_cache_capacity(48);
    Ok(conn)
}

/// Brings the database to the latest version, one step a transaction. Refuses a database from a
/// newer chasti.
pub(super) fn migrate(conn: &mut Connection, path: &std::path::Path) -> Result<i64, StoreError> {
    migrate_with(conn, path, STEPS)
}

pub(super) fn migrate_with(
    conn: &mut Connection,
    path: &std::path::Path,
    steps: &[&str],
) -> Result<i64, StoreError> {
    let known = steps.len() as i64;
    loop {
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(StoreError::sqlite("reading the schema version"))?;
        if version > known {
            return Err(StoreError::NewerSchema {
                path: path.display().to_string(),
                found: version,
                known,
            });
        }
        let Some(step) = usize::try_from(version).ok().and_then(|v| steps.get(v)) else {
            return Ok(version);
        };
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(StoreError::sqlite("starting a schema step"))?;
        tx.execute_batch(step)
            .map_err(StoreError::sqlite("applying a schema step"))?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", version + 1))
            .map_err(StoreError::sqlite("recording the schema version"))?;
        tx.commit()
            .map_err(StoreError::sqlite("committing a schema step"))?;
        tracing::info!(
            from = version,
            to = version + 1,
            "the order store's schema was upgraded"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer(dir: &tempfile::TempDir) -> (std::path::PathBuf, Connection) {
        let path = dir.path().join("t.db");
        let conn = connect(&path, Role::Writer, 1024).unwrap();
        (path, conn)
    }

    #[test]
    fn a_new_database_gets_every_step_once() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut conn) = writer(&dir);
        assert_eq!(migrate(&mut conn, &path).unwrap(), latest());
        // Again: nothing to do, nothing fails.
        assert_eq!(migrate(&mut conn, &path).unwrap(), latest());
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'orders'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 1);
    }

    #[test]
    fn steps_apply_in_order_and_a_failing_step_leaves_the_version_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut conn) = writer(&dir);
        let steps = [
            "CREATE TABLE a (x INTEGER);",
            "ALTER TABLE a ADD COLUMN y TEXT; INSERT INTO a VALUES (1, 'one');",
            "INSERT INTO a VALUES (2, 'two'); CREATE TABLE a (z);",
        ];
        let failed = migrate_with(&mut conn, &path, &steps);
        assert!(failed.is_err(), "the third step fails");
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 2, "the first two steps stay");
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM a", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 1, "nothing of the failed step stays");
        assert_eq!(migrate_with(&mut conn, &path, &steps[..2]).unwrap(), 2);
    }

    #[test]
    fn a_database_from_a_newer_chasti_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut conn) = writer(&dir);
        conn.execute_batch("PRAGMA user_version = 99").unwrap();
        let refused = migrate(&mut conn, &path).unwrap_err();
        assert!(
            matches!(refused, StoreError::NewerSchema { found: 99, .. }),
            "{refused}"
        );
        assert!(refused.to_string().contains("newer chasti"), "{refused}");
    }
}
