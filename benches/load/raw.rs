//! The peers chasti's figures are compared with: SQLite alone on the same disk, with the same
//! settings as chasti's store (WAL, `synchronous = FULL`), each write its own commit and fsync.

use std::time::Instant;

use rusqlite::{params, Connection};

fn open(path: &std::path::Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .unwrap();
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .unwrap();
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA mmap_size = 0;")
        .unwrap();
    conn
}

/// Callback-sized rows committed one at a time by `threads` threads (a connection each),
/// `total` in all: commits per second.
pub fn callbacks(dir: &std::path::Path, threads: usize, total: usize) -> f64 {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("raw-callbacks.db");
    open(&path)
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS callbacks (id INTEGER PRIMARY KEY, at TEXT, params TEXT, signature TEXT);",
        )
        .unwrap();
    let params_text = "mdOrder=3a9531a9-dc18-459a-b354-4ba090e339d6&orderNumber=B-1-261202-0001&operation=deposited&status=1";
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let path = &path;
            s.spawn(move || {
                let conn = open(path);
                for _ in 0..total / threads {
                    // BEGIN IMMEDIATE: concurrent writers wait for the lock instead of failing.
                    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
                    conn.execute(
                        "INSERT INTO callbacks (at, params, signature) VALUES (?1, ?2, 'hmac')",
                        params!["2026-12-02T09:20:49.123456Z", params_text],
                    )
                    .unwrap();
                    conn.execute_batch("COMMIT").unwrap();
                }
            });
        }
    });
    total as f64 / started.elapsed().as_secs_f64()
}

/// What the store's writes of a sale cost on SQLite alone: the new order (row, number index,
/// idempotency key, history line, day sums, counter) and then the registered order (row, a
/// history line, day sums), each its own commit, from `threads` threads one at a time as a
/// lock allows. Returns this process's CPU seconds per sale (its other threads are idle).
pub fn sale_writes(dir: &std::path::Path, threads: usize, total: usize) -> f64 {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("raw-sales.db");
    open(&path)
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS orders (id BLOB PRIMARY KEY, number TEXT UNIQUE, state TEXT, version INTEGER, record BLOB) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS events (order_id BLOB, seq INTEGER, at TEXT, kind BLOB, PRIMARY KEY (order_id, seq)) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS keys (day TEXT, key TEXT, order_id BLOB, PRIMARY KEY (day, key)) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS days (day TEXT PRIMARY KEY, orders INTEGER, sold INTEGER) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS counters (till TEXT PRIMARY KEY, last INTEGER) WITHOUT ROWID;",
        )
        .unwrap();
    let record = vec![7u8; 180];
    let cpu0 = super::procs::cpu_seconds(std::process::id());
    std::thread::scope(|s| {
        for t in 0..threads {
            let (path, record) = (&path, &record);
            s.spawn(move || {
                let conn = open(path);
                for i in 0..total / threads {
                    let id = (((t * total + i) as u128) << 64).to_be_bytes();
                    let number = format!("B-{t}-261202-{i:04}");
                    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
                    conn.execute("INSERT INTO counters VALUES (?1, 1) ON CONFLICT (till) DO UPDATE SET last = last + 1", [t.to_string()]).unwrap();
                    conn.execute("INSERT INTO orders VALUES (?1, ?2, 'registering', 1, ?3)", params![&id[..], number, record]).unwrap();
                    conn.execute("INSERT INTO keys VALUES ('2026-12-02', ?1, ?2)", params![number, &id[..]]).unwrap();
                    conn.execute("INSERT INTO events VALUES (?1, 0, '2026-12-02T09:20:49.123456Z', x'00')", [&id[..]]).unwrap();
                    conn.execute("INSERT INTO days VALUES ('2026-12-02', 1, 0) ON CONFLICT (day) DO UPDATE SET orders = orders + 1", []).unwrap();
                    conn.execute_batch("COMMIT").unwrap();
                    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
                    let _: i64 = conn.query_row("SELECT version FROM orders WHERE id = ?1", [&id[..]], |r| r.get(0)).unwrap();
                    conn.execute("UPDATE orders SET state = 'awaiting_payment', version = 2, record = ?2 WHERE id = ?1", params![&id[..], record]).unwrap();
                    conn.execute("INSERT INTO events VALUES (?1, 1, '2026-12-02T09:20:49.223456Z', x'01')", [&id[..]]).unwrap();
                    conn.execute("UPDATE days SET sold = sold + 0 WHERE day = '2026-12-02'", []).unwrap();
                    conn.execute_batch("COMMIT").unwrap();
                }
            });
        }
    });
    (super::procs::cpu_seconds(std::process::id()) - cpu0) / total as f64
}
