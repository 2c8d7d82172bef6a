//! Putting a backup in place of the store, and what the store must then learn from the bank.
//!
//! A backup is older than the bank: refunds and reversals made after it, and sales made after
//! it, are at the bank and not in the restored store. So a restore leaves a mark: the engine
//! then checks every order once against the bank (bringing it to what the bank says) and asks
//! the bank for each order number after the backup's counters, listing those it has and the
//! store lacks («есть в банке, нет в кассе»). The mark, the numbers still to ask about and the
//! progress are in the store, so a restart carries on where it stopped.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::meta::{get_meta, raise, read_counters, set_meta, Counter};
use super::{keys, Store, StoreError, StoreOptions};

const RESTORED_AT: &str = "restore_check_since";
const CHECKED_UP_TO: &str = "restore_checked_up_to";

/// A restore done: how many orders the backup held, and where the replaced store was put.
#[derive(Debug, Clone)]
pub struct Restored {
    pub orders: u64,
    pub set_aside: Option<PathBuf>,
}

/// The check a restore asked for, as far as it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreCheck {
    pub restored_at: DateTime<Utc>,
    /// Orders up to this id (in id order) are checked.
    pub checked_up_to: Option<uuid::Uuid>,
}

/// An order the bank has under this store's numbers and the store does not.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct BankOnly {
    pub order_number: String,
    /// kopecks, as the bank reports the order's amount.
    pub amount: crate::money::Kopecks,
    /// The bank's orderStatus (0 registered … 6 declined).
    pub status: i64,
    pub found_at: DateTime<Utc>,
}

impl BankOnly {
    /// The bank's status in the manager's words.
    pub fn status_text(&self) -> &'static str {
        match self.status {
            0 => "создан, не оплачен",
            1 => "сумма заблокирована",
            2 => "оплачен",
            3 => "оплата отменена",
            4 => "возврат",
            5 => "идёт проверка 3-D Secure",
            6 => "отклонён",
            _ => "состояние неизвестно",
        }
    }
}

fn rename_with_wal(from: &Path, to: &Path) -> Result<(), StoreError> {
    for suffix in ["", "-wal", "-shm"] {
        let a = PathBuf::from(format!("{}{suffix}", from.display()));
        if a.exists() {
            let b = PathBuf::from(format!("{}{suffix}", to.display()));
            std::fs::rename(&a, &b)
                .map_err(StoreError::file(format!("moving {} aside", a.display())))?;
        }
    }
    Ok(())
}

impl Store {
    /// Puts the backup database `source` in place of the store `store_path` names (no chasti
    /// may hold it: opening it first proves that). The replaced store is kept beside it as
    /// `<db>.before-restore-<stamp>`; its counters carry over, so numbers it handed out after
    /// the backup (the bank has seen them) are not handed out again; and the restored store is
    /// marked for the check against the bank (see the module's text).
    pub async fn restore(
        source: &Path,
        store_path: &Path,
        options: StoreOptions,
        now: DateTime<Utc>,
    ) -> Result<Restored, StoreError> {
        let expected = super::inspect(source)?.orders;
        let live = super::database_file(store_path);
        let mut carried = Vec::new();
        let mut set_aside = None;
        if live.exists() || super::is_sled_store(store_path) {
            let replaced = Store::open_with(store_path, options)?;
            carried = replaced.counters()?;
            drop(replaced);
            let stamp = now
                .with_timezone(&chrono_tz::Europe::Moscow)
                .format("%Y%m%d-%H%M%S");
            let aside = PathBuf::from(format!("{}.before-restore-{stamp}", live.display()));
            rename_with_wal(&live, &aside)?;
            set_aside = Some(aside);
        }
        let temp = PathBuf::from(format!("{}.restoring", live.display()));
        let _ = std::fs::remove_file(&temp);
        std::fs::copy(source, &temp)
            .and_then(|_| std::fs::File::open(&temp)?.sync_all())
            .and_then(|_| std::fs::rename(&temp, &live))
            .map_err(StoreError::file(format!(
                "copying the backup to {}",
                live.display()
            )))?;
        super::sync_dir(&live)?;
        let restored = Store::open_with(&live, options)?;
        // The backup's own counters are where the numbers it does not know begin.
        let from = restored.counters()?;
        restored.raise_counters(&carried).await?;
        restored.mark_restored(now, from).await?;
        let found = restored.verify()?;
        if found != expected {
            return Err(StoreError::corrupt(
                live.display().to_string(),
                format!("the restored store holds {found} orders, the backup {expected}"),
            ));
        }
        Ok(Restored {
            orders: found,
            set_aside,
        })
    }

    /// Marks the store as restored: every order to be checked against the bank, and the numbers
    /// after each of `from` to be asked about.
    async fn mark_restored(&self, at: DateTime<Utc>, from: Vec<Counter>) -> Result<(), StoreError> {
        self.writer()
            .write(move |conn| {
                set_meta(conn, RESTORED_AT, keys::time(at).as_bytes())?;
                super::outbox::restored(conn, at)?;
                conn.execute("DELETE FROM meta WHERE key = ?1", [CHECKED_UP_TO])
                    .map_err(StoreError::sqlite("starting the restore check"))?;
                for c in &from {
                    conn.prepare_cached(
                        "INSERT OR REPLACE INTO restore_probes (prefix, till, day, next) VALUES (?1, ?2, ?3, ?4)",
                    )
                    .and_then(|mut s| {
                        s.execute(params![c.prefix, c.till, keys::day(c.day), c.last + 1])
                    })
                    .map_err(StoreError::sqlite("keeping the numbers to ask about"))?;
                }
                Ok(())
            })
            .await
    }

    /// The check a restore asked for, while it is not done.
    pub fn restore_check(&self) -> Result<Option<RestoreCheck>, StoreError> {
        self.read(|conn| {
            let Some(at) = get_meta(conn, RESTORED_AT)? else {
                return Ok(None);
            };
            let text = String::from_utf8_lossy(&at).to_string();
            let restored_at = keys::time_of(&text)
                .ok_or_else(|| StoreError::corrupt("meta", format!("restore time «{text}»")))?;
            let checked_up_to = get_meta(conn, CHECKED_UP_TO)?.and_then(|b| keys::id_of(&b));
            Ok(Some(RestoreCheck {
                restored_at,
                checked_up_to,
            }))
        })
    }

    /// Up to `limit` order ids after `after`, in id (creation) order.
    pub fn ids_after(
        &self,
        after: Option<uuid::Uuid>,
        limit: usize,
    ) -> Result<Vec<uuid::Uuid>, StoreError> {
        let from = after.map(|id| keys::id(&id).to_vec()).unwrap_or_default();
        self.read(|conn| {
            let mut s = conn
                .prepare_cached("SELECT id FROM orders WHERE id > ?1 ORDER BY id LIMIT ?2")
                .map_err(StoreError::sqlite("listing orders to check"))?;
            let rows = s
                .query_map(params![from, limit as i64], |r| r.get::<_, Vec<u8>>(0))
                .map_err(StoreError::sqlite("listing orders to check"))?;
            rows.map(|r| {
                let bytes = r.map_err(StoreError::sqlite("listing orders to check"))?;
                keys::id_of(&bytes).ok_or_else(|| StoreError::corrupt(hex::encode(&bytes), "id"))
            })
            .collect()
        })
    }

    /// Orders up to `id` are checked.
    pub async fn restore_checked_up_to(&self, id: uuid::Uuid) -> Result<(), StoreError> {
        self.writer()
            .write(move |conn| set_meta(conn, CHECKED_UP_TO, &keys::id(&id)))
            .await
    }

    /// The next number to ask the bank about, for each till and day a restore left.
    pub fn restore_probes(&self) -> Result<Vec<Counter>, StoreError> {
        self.read(|conn| {
            read_counters(
                conn,
                "restore_probes",
                "next",
                "reading the numbers to ask about",
            )
        })
    }

    /// A number asked about: the bank has it (`found`, kept and the counter raised past it)
    /// or not; `next` is the one to ask about after it, or None when the till's day is done.
    pub async fn restore_probed(
        &self,
        probe: Counter,
        found: Option<BankOnly>,
        next: Option<u64>,
    ) -> Result<(), StoreError> {
        self.writer()
            .write(move |conn| {
                if let Some(b) = &found {
                    conn.prepare_cached(
                        "INSERT OR REPLACE INTO bank_only (number, amount_kopecks, status, found_at) VALUES (?1, ?2, ?3, ?4)",
                    )
                    .and_then(|mut s| {
                        s.execute(params![b.order_number, b.amount.get(), b.status, keys::time(b.found_at)])
                    })
                    .map_err(StoreError::sqlite("keeping an order only the bank has"))?;
                    raise(conn, &probe)?;
                }
                let key = params![probe.prefix, probe.till, keys::day(probe.day)];
                match next {
                    Some(n) => conn
                        .prepare_cached("UPDATE restore_probes SET next = ?4 WHERE prefix = ?1 AND till = ?2 AND day = ?3")
                        .and_then(|mut s| s.execute(params![probe.prefix, probe.till, keys::day(probe.day), n])),
                    None => conn
                        .prepare_cached("DELETE FROM restore_probes WHERE prefix = ?1 AND till = ?2 AND day = ?3")
                        .and_then(|mut s| s.execute(key)),
                }
                .map_err(StoreError::sqlite("noting a number asked about"))?;
                Ok(())
            })
            .await
    }

    /// The check is done: every order checked, every number asked about.
    pub async fn restore_check_done(&self) -> Result<(), StoreError> {
        self.writer()
            .write(|conn| {
                conn.execute(
                    "DELETE FROM meta WHERE key IN (?1, ?2)",
                    [RESTORED_AT, CHECKED_UP_TO],
                )
                .map_err(StoreError::sqlite("ending the restore check"))?;
                conn.execute("DELETE FROM restore_probes", [])
                    .map_err(StoreError::sqlite("ending the restore check"))?;
                Ok(())
            })
            .await
    }

    /// Orders the bank has under this store's numbers and the store does not, found after a
    /// restore; newest first.
    pub fn bank_only(&self) -> Result<Vec<BankOnly>, StoreError> {
        self.read(read_bank_only)
    }

    /// Whether the store has an order of this number.
    pub fn has_number(&self, number: &str) -> Result<bool, StoreError> {
        self.read(|conn| {
            conn.prepare_cached("SELECT 1 FROM orders WHERE number = ?1")
                .and_then(|mut s| s.query_row([number], |_| Ok(())).optional())
                .map(|found| found.is_some())
                .map_err(StoreError::sqlite("looking up an order number"))
        })
    }
}

/// The orders only the bank has, read on a connection of the caller's.
fn read_bank_only(conn: &rusqlite::Connection) -> Result<Vec<BankOnly>, StoreError> {
    let mut s = conn
        .prepare_cached(
            "SELECT number, amount_kopecks, status, found_at FROM bank_only ORDER BY number DESC",
        )
        .map_err(StoreError::sqlite("reading the orders only the bank has"))?;
    let rows = s
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, u64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .map_err(StoreError::sqlite("reading the orders only the bank has"))?;
    rows.map(|row| {
        let (order_number, amount, status, at) =
            row.map_err(StoreError::sqlite("reading the orders only the bank has"))?;
        let bad = |what: String| StoreError::corrupt("bank_only", what);
        Ok(BankOnly {
            amount: crate::money::Kopecks::new(amount)
                .ok_or_else(|| bad(format!("amount {amount}")))?,
            found_at: keys::time_of(&at).ok_or_else(|| bad(format!("time «{at}»")))?,
            order_number,
            status,
        })
    })
    .collect()
}

/// What a restore left to learn, read from the database file without opening the store (so
/// `chasti doctor` can say it while the daemon runs): the orders only the bank has, and
/// whether the check against the bank is still under way.
pub fn restore_findings(database: &Path) -> Result<(Vec<BankOnly>, bool), StoreError> {
    let Some(conn) = super::schema::peek(database, "bank_only")? else {
        return Ok((Vec::new(), false));
    };
    let checking = get_meta(&conn, RESTORED_AT)?.is_some();
    Ok((read_bank_only(&conn)?, checking))
}
