//! chasti 0.1 kept its orders in sled 0.34, whose `flush()` never calls fsync (a power cut lost
//! acknowledged sales, docs/design.md «Why SQLite»). At the first start of this version an existing
//! sled store is imported, in one transaction, into a new SQLite database; the sled folder is
//! then kept aside as `<folder>.sled-imported`. sled stays a dependency for this import only.
//!
//! Both of 0.1's layouts are read: layout 2 (`orders2` postcard records keyed by the id's bytes,
//! `journal2`, `callbacks2`, `cancel2`, `print_queue`, counters in `meta`) and layout 1 (JSON
//! records keyed by the id's text, `journal`, `callbacks`, `cancel_requests`), as well as a
//! layout-1 store whose upgrade to layout 2 was interrupted (its layout mark is missing, so the
//! layout-1 trees are the truth). The import writes into `<database>.importing` and renames it
//! into place only once it committed: an interrupted import simply runs again.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Deserialize;

use super::journal::{self, JournalEntry, StoredCallback};
use super::meta::{self, Counter};
use super::{orders, queues, record, schema, sync_dir, StoreError, KEY_DAYS};
use crate::moscow;
use crate::orders::order::Actor;

/// What an import carried over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub orders: u64,
    pub counters: u64,
    pub journal: u64,
    pub callbacks: u64,
    pub cancels: u64,
    pub slips: u64,
}

const IMPORTED_FROM: &str = "imported_from_sled";

/// Whether `dir` is a sled store (its `conf` and `db` files).
pub fn is_sled_store(dir: &Path) -> bool {
    dir.join("conf").is_file() && dir.join("db").is_file()
}

/// The sled folder an older chasti left for this store: `store.path` itself (a 0.1 config), or
/// the database's name without its extension (a new config beside an old folder).
pub(super) fn legacy_folder(path: &Path, database: &Path) -> Option<PathBuf> {
    [path.to_path_buf(), database.with_extension("")]
        .into_iter()
        .find(|c| c != database && is_sled_store(c))
}

fn aside(folder: &Path) -> PathBuf {
    let mut name = folder.as_os_str().to_owned();
    name.push(".sled-imported");
    let mut aside = PathBuf::from(name);
    if aside.exists() {
        let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
        let mut name = folder.as_os_str().to_owned();
        name.push(format!(".sled-imported-{stamp}"));
        aside = PathBuf::from(name);
    }
    aside
}

fn failed(folder: &Path, problem: impl std::fmt::Display) -> StoreError {
    StoreError::Import {
        path: folder.display().to_string(),
        problem: problem.to_string(),
    }
}

/// Imports the sled store left for this store, if there is one (the caller holds the lock).
pub(super) fn import_if_found(path: &Path, database: &Path) -> Result<(), StoreError> {
    let Some(folder) = legacy_folder(path, database) else {
        return Ok(());
    };
    if database.exists() {
        // An import that committed but whose folder was not moved aside yet, or a new store
        // made beside an old one by hand: only the first is ours to finish.
        let conn = schema::connect(database, schema::Role::Reader, 256)?;
        let from = meta::get_meta(&conn, IMPORTED_FROM).ok().flatten();
        drop(conn);
        if from.as_deref() == Some(folder.as_os_str().as_encoded_bytes()) {
            return move_aside(&folder);
        }
        return Err(failed(
            &folder,
            format!(
                "{} exists beside it and was not imported from it; move one of them away (the sled folder is imported when the database does not exist)",
                database.display()
            ),
        ));
    }
    let started = std::time::Instant::now();
    let mut temp = database.as_os_str().to_owned();
    temp.push(".importing");
    let temp = PathBuf::from(temp);
    for leftover in [
        &temp,
        &with_suffix(&temp, "-wal"),
        &with_suffix(&temp, "-shm"),
    ] {
        let _ = std::fs::remove_file(leftover);
    }
    let summary = import_folder(&folder, &temp)?;
    std::fs::rename(&temp, database).map_err(StoreError::file(format!(
        "moving the imported store to {}",
        database.display()
    )))?;
    sync_dir(database)?;
    move_aside(&folder)?;
    tracing::info!(
        from = %folder.display(),
        into = %database.display(),
        orders = summary.orders,
        counters = summary.counters,
        journal = summary.journal,
        callbacks = summary.callbacks,
        took_ms = started.elapsed().as_millis() as u64,
        "the sled store of chasti 0.1 was imported"
    );
    Ok(())
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn move_aside(folder: &Path) -> Result<(), StoreError> {
    let to = aside(folder);
    std::fs::rename(folder, &to).map_err(StoreError::file(format!(
        "moving {} aside",
        folder.display()
    )))?;
    sync_dir(folder)?;
    tracing::info!(kept = %to.display(), "the imported sled store is kept aside; remove it once you no longer need it");
    Ok(())
}

/// Imports the sled store in `folder` into a new database at `into`, in one transaction.
pub fn import_folder(folder: &Path, into: &Path) -> Result<ImportSummary, StoreError> {
    // sled 0.34 releases its file lock only when its background flusher lets go of the last
    // handle, a moment after the handle is dropped (a 0.1 daemon that just stopped, or a
    // handle this process just closed; seen to take seconds on a loaded machine): a lock refused
    // is asked again for up to ten seconds.
    let open = || {
        sled::Config::new()
            .path(folder)
            .cache_capacity(2 << 20)
            .open()
    };
    let mut tries = 0;
    let db = loop {
        match open() {
            Err(sled::Error::Io(e))
                if e.kind() == std::io::ErrorKind::WouldBlock && tries < 200 =>
            {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => break other,
        }
    }
    .map_err(|e| failed(folder, format!("sled could not open it: {e}")))?;
    let sled_error = |e: sled::Error| failed(folder, e);
    let mut conn = schema::connect(into, schema::Role::Writer, 8 << 10)?;
    schema::migrate(&mut conn, into)?;
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(StoreError::sqlite("starting the import"))?;
    let meta_tree = db.open_tree("meta").map_err(sled_error)?;
    let names = db.tree_names();
    let has = |name: &str| names.iter().any(|t| t.as_ref() == name.as_bytes());
    let layout2 = meta_tree.get("layout").map_err(sled_error)?.as_deref() == Some(&[2u8][..]);
    let mut summary = ImportSummary::default();

    let orders_tree = if layout2 { "orders2" } else { "orders" };
    let keys_from = moscow::date(chrono::Utc::now()) - chrono::Duration::days(KEY_DAYS - 1);
    let mut ids = std::collections::HashSet::new();
    if has(orders_tree) {
        for entry in db.open_tree(orders_tree).map_err(sled_error)?.iter() {
            let (key, bytes) = entry.map_err(sled_error)?;
            let order = record::decode(&bytes).map_err(|e| {
                failed(
                    folder,
                    format!("order record {}: {e}", String::from_utf8_lossy(&key)),
                )
            })?;
            let with_key = moscow::date(order.created_at) >= keys_from;
            match orders::insert(&tx, &order, with_key) {
                Err(StoreError::Duplicate(other)) => {
                    // 0.1 prevented this; a damaged index is no reason to lose an order.
                    tracing::warn!(order = %order.order_number, %other, "two orders share an idempotency key; the later one is kept without it");
                    orders::insert(&tx, &order, false)?;
                }
                other => other?,
            }
            ids.insert(order.id);
            summary.orders += 1;
            if summary.orders % 10_000 == 0 {
                tracing::info!(orders = summary.orders, "importing the sled store");
            }
        }
    }
    for entry in meta_tree.scan_prefix(b"seq/") {
        let (key, value) = entry.map_err(sled_error)?;
        if let Some(counter) = counter_of(&key, &value) {
            meta::raise(&tx, &counter)?;
            summary.counters += 1;
        }
    }
    if let Some(key) = meta_tree.get(meta::SMS_REPORT_KEY).map_err(sled_error)? {
        meta::set_meta(&tx, meta::SMS_REPORT_KEY, &key)?;
    }
    let diagnostics = Diagnostics {
        db: &db,
        folder,
        tx: &tx,
        layout2,
        has: &has,
    };
    summary.journal = diagnostics.journal()?;
    summary.callbacks = diagnostics.callbacks()?;
    summary.cancels = diagnostics.cancels(&ids)?;
    summary.slips = diagnostics.slips()?;
    meta::set_meta(&tx, IMPORTED_FROM, folder.as_os_str().as_encoded_bytes())?;
    tx.commit()
        .map_err(StoreError::sqlite("committing the import"))?;
    conn.close()
        .map_err(|(_, e)| StoreError::sqlite("closing the imported store")(e))?;
    drop(db);
    std::fs::File::open(into)
        .and_then(|f| f.sync_all())
        .map_err(StoreError::file(format!("syncing {}", into.display())))?;
    Ok(summary)
}

/// `seq/PREFIX/TILL/YYMMDD` → the last number (u64 big-endian).
fn counter_of(key: &[u8], value: &[u8]) -> Option<Counter> {
    let key = std::str::from_utf8(key).ok()?;
    let mut parts = key.strip_prefix("seq/")?.split('/');
    let (prefix, till, day) = (parts.next()?, parts.next()?, parts.next()?);
    let day = NaiveDate::parse_from_str(&format!("20{day}"), "%Y%m%d").ok()?;
    let last = u64::from_be_bytes(<[u8; 8]>::try_from(value).ok()?);
    Some(Counter {
        prefix: prefix.to_string(),
        till: till.to_string(),
        day,
        last,
    })
}

/// Layout 2's diagnostics records (postcard, times in microseconds).
#[derive(Deserialize)]
struct JournalV2 {
    at: i64,
    method: String,
    order_number: String,
    outcome: String,
    duration_us: u64,
}

#[derive(Deserialize)]
struct CallbackV2 {
    at: i64,
    params: Vec<(String, String)>,
    signature: String,
}

fn micros(at: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_micros(at).unwrap_or_default()
}

struct Diagnostics<'a> {
    db: &'a sled::Db,
    folder: &'a Path,
    tx: &'a rusqlite::Transaction<'a>,
    layout2: bool,
    has: &'a dyn Fn(&str) -> bool,
}

impl Diagnostics<'_> {
    fn values(&self, tree: &str) -> Result<Vec<(sled::IVec, sled::IVec)>, StoreError> {
        if !(self.has)(tree) {
            return Ok(Vec::new());
        }
        let error = |e: sled::Error| failed(self.folder, e);
        self.db
            .open_tree(tree)
            .map_err(error)?
            .iter()
            .map(|e| e.map_err(error))
            .collect()
    }

    fn journal(&self) -> Result<u64, StoreError> {
        let mut n = 0;
        for (_, value) in self.values(if self.layout2 { "journal2" } else { "journal" })? {
            let entry = if self.layout2 {
                postcard::from_bytes::<JournalV2>(&value)
                    .ok()
                    .map(|r| JournalEntry {
                        at: micros(r.at),
                        method: r.method,
                        order_number: r.order_number,
                        outcome: r.outcome,
                        duration_us: r.duration_us,
                    })
            } else {
                serde_json::from_slice::<JournalEntry>(&value).ok()
            };
            if let Some(entry) = entry {
                journal::insert_journal(self.tx, &entry)?;
                n += 1;
            }
        }
        Ok(n)
    }

    fn callbacks(&self) -> Result<u64, StoreError> {
        let mut n = 0;
        for (_, value) in self.values(if self.layout2 {
            "callbacks2"
        } else {
            "callbacks"
        })? {
            let record = if self.layout2 {
                postcard::from_bytes::<CallbackV2>(&value)
                    .ok()
                    .map(|r| StoredCallback {
                        at: micros(r.at),
                        params: r.params,
                        signature: r.signature,
                    })
            } else {
                serde_json::from_slice::<StoredCallback>(&value).ok()
            };
            if let Some(record) = record {
                journal::insert_callback(self.tx, &record)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Cancels asked for mid-sale, for orders the import carried.
    fn cancels(&self, ids: &std::collections::HashSet<uuid::Uuid>) -> Result<u64, StoreError> {
        let mut n = 0;
        let tree = if self.layout2 {
            "cancel2"
        } else {
            "cancel_requests"
        };
        for (key, value) in self.values(tree)? {
            let found = if self.layout2 {
                let id = uuid::Uuid::from_slice(&key).ok();
                let actor = postcard::from_bytes::<(String, Option<String>)>(&value)
                    .ok()
                    .map(|(token, cashier)| Actor { token, cashier });
                id.zip(actor)
            } else {
                let id = uuid::Uuid::try_parse_ascii(&key).ok();
                id.zip(serde_json::from_slice::<Actor>(&value).ok())
            };
            if let Some((id, actor)) = found.filter(|(id, _)| ids.contains(id)) {
                queues::insert_cancel(self.tx, &id, &actor)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Slips not printed yet, in their order.
    fn slips(&self) -> Result<u64, StoreError> {
        let mut n = 0;
        for (_, value) in self.values("print_queue")? {
            queues::insert_slip(self.tx, &value)?;
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{IdempotencyKey, OrderNumber, StorePrefix, TillId};
    use crate::store::Store;

    // A v7 id of the order's creation time, as layout 1 ids were.
    const ID: &str = "01a207be-e1cc-7d7a-9b1e-5a0f3c2d1e0f";

    /// A store as chasti 0.1 wrote it before layout 2: JSON records keyed by the id's text.
    fn layout_1(path: &Path) {
        let db = sled::open(path).unwrap();
        let record = format!(
            r#"{{"schema":1,"id":"{ID}","order_number":"T-1-261123-0001",
            "gateway_order_id":"4a9910be-469e-4d40-a65b-60c4adca6733","amount":149900,
            "mode":"one-stage","description":"Тест","till":"1","cashier":"Иванова",
            "idempotency_key":"pos-0001","created_at":"2026-11-23T09:31:19.884274814Z",
            "updated_at":"2026-11-23T09:31:29.978Z",
            "payment_url":"https://pay.example/payment_ru.html?mdOrder=4a9910be-469e-4d40-a65b-60c4adca6733",
            "link_expires_at":"2026-11-23T09:51:19.884Z","held_at":null,
            "paid_at":"2026-11-23T09:31:29.972Z","state":{{"name":"paid"}},"deposited":149900,
            "refunded":0,"refunds":[],"reversal_attempted":false,"cancel_requested":false,
            "failed_attempts":[],"version":2,"history":[{{"at":"2026-11-23T09:31:19.884274814Z",
            "from":"registering","to":"registering","what":"sale of 1 499,00 ₽ started",
            "text":"Продажа на 1 499,00 ₽ начата","actor":{{"token":"till-1"}}}}]}}"#
        );
        let tree = |name: &str| db.open_tree(name).unwrap();
        tree("orders").insert(ID, record.as_bytes()).unwrap();
        tree("by_number").insert("T-1-261123-0001", ID).unwrap();
        tree("idempotency").insert("pos-0001", ID).unwrap();
        tree("journal").insert([0u8; 16], br#"{"at":"2026-11-23T09:31:19Z","method":"register.do","order_number":"T-1-261123-0001","outcome":"ok","duration_us":1200}"#.as_slice()).unwrap();
        tree("callbacks").insert([0u8; 16], br#"{"at":"2026-11-23T09:31:29Z","params":[["orderNumber","T-1-261123-0001"],["checksum","AB"]],"signature":"hmac"}"#.as_slice()).unwrap();
        tree("cancel_requests")
            .insert(ID, br#"{"token":"till-1"}"#.as_slice())
            .unwrap();
        tree("meta")
            .insert("seq/T/1/261123", &7u64.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }

    #[tokio::test]
    async fn a_layout_1_store_is_imported_at_open_and_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("orders");
        layout_1(&old);
        for pass in 0..2 {
            // The second open finds the database and nothing left to import.
            let store = Store::open(&old).unwrap();
            assert_eq!(store.path(), dir.path().join("orders.db"));
            let id = uuid::Uuid::parse_str(ID).unwrap();
            let order = store.get(&id).unwrap().expect("the order is carried over");
            assert_eq!(order.amount.get(), 149_900);
            assert_eq!(order.history[0].text(), "Продажа на 1 499,00 ₽ начата");
            let number = OrderNumber::parse("T-1-261123-0001").unwrap();
            assert_eq!(store.by_number(&number).unwrap().unwrap().id, id);
            let day = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
            let totals = store.day_totals(day, day).unwrap();
            assert_eq!((totals[0].count, totals[0].sold.get()), (1, 149_900));
            assert_eq!(store.range(day, day, None).count(), 1);
            assert_eq!(store.journal().unwrap()[0].method, "register.do");
            assert_eq!(
                store.callbacks().unwrap()[0].params,
                [("orderNumber".to_string(), "T-1-261123-0001".to_string())]
            );
            if pass == 0 {
                let asked = store.take_cancel_request(&id).await.unwrap();
                assert_eq!(asked.unwrap().token, "till-1");
            }
            let (prefix, till) = (
                StorePrefix::parse("T").unwrap(),
                TillId::parse("1").unwrap(),
            );
            assert_eq!(store.last_number(&prefix, &till, day).unwrap(), 7);
            // The key is older than KEY_DAYS: a retry with it today is a new sale.
            let key = IdempotencyKey::parse("pos-0001").unwrap();
            assert!(store
                .by_idempotency_key(&key, chrono::Utc::now())
                .unwrap()
                .is_none());
            assert!(!old.exists(), "the sled folder is moved aside");
            assert!(dir.path().join("orders.sled-imported").join("db").exists());
        }
    }

    #[test]
    fn counters_are_read_from_their_keys() {
        let c = counter_of(b"seq/S1/K2/261201", &41u64.to_be_bytes()).unwrap();
        assert_eq!(
            (c.prefix.as_str(), c.till.as_str(), c.last),
            ("S1", "K2", 41)
        );
        assert_eq!(c.day, NaiveDate::from_ymd_opt(2026, 12, 1).unwrap());
        assert!(counter_of(b"seq/S1/261201", &1u64.to_be_bytes()).is_none());
        assert!(counter_of(b"seq/S1/1/2612", &1u64.to_be_bytes()).is_none());
        assert!(counter_of(b"seq/S1/1/261201", &[1, 2]).is_none());
    }

    #[test]
    fn a_database_beside_a_foreign_sled_folder_is_not_guessed_at() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("orders");
        layout_1(&old);
        drop(Store::open(&dir.path().join("orders.db")).unwrap());
        // Someone puts an old folder back beside the database.
        std::fs::rename(dir.path().join("orders.sled-imported"), &old).unwrap();
        std::fs::remove_file(dir.path().join("orders.db")).unwrap();
        drop(Store::open(&dir.path().join("other.db")).unwrap());
        std::fs::rename(dir.path().join("other.db"), dir.path().join("orders.db")).unwrap();
        let refused = Store::open(&old).err().expect("refused");
        assert!(
            refused.to_string().contains("move one of them away"),
            "{refused}"
        );
        assert!(old.join("db").exists(), "the sled folder is left as it was");
    }
}
