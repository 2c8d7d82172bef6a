//! The replication outbox (`[replicate]`): which orders changed since the head office last
//! took them. A change notes its order here in the same transaction that stores it, so nothing
//! committed is ever missed and nothing is noted that was not committed.
//!
//! Append-only, one row a change, on the table's own rowid: a note is one row at the end of
//! one B-tree, the least a committed change can add to the page writes its transaction makes
//! (a row kept per order needed a unique index and a second B-tree, and cost a sale more). The
//! shipper takes a run of rows from the front, sends each order named once, as it is then, and
//! deletes the run. Rows are only ever removed from the front, so their numbers are contiguous
//! and how many wait is the span of the first and last.
//!
//! Bounded: past `[replicate] outbox_max` rows a change is not noted; the store is marked for
//! a resync instead, and the shipper sends every order once the outbox is empty (the head
//! office keeps only newer versions, so orders it has are skipped there). When replication is
//! switched on for a store that already has orders, the same resync sends its history.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};

use super::meta::{get_meta, set_meta};
use super::{keys, StoreError};

/// `meta` key: how many rows the outbox may hold; absent = replication off, nothing noted.
const MAX_KEY: &str = "outbox_max";
/// `meta` key: present while every order must be shipped again; its value is a generation,
/// so a resync that ends does not clear a newer request.
const RESYNC_KEY: &str = "outbox_resync";

/// `meta` key: the store's epoch, the time (µs) of its last restore from a backup; absent = 0.
/// A restore takes orders back to older versions, so the head office orders what it is sent
/// by (epoch, version), and replaces an order's history when the epoch is newer.
const EPOCH_KEY: &str = "outbox_epoch";

/// Whether the store notes changes for the head office, set when the daemon opens it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Replication {
    /// As the store says (a command-line tool opening a stopped store changes nothing).
    #[default]
    Keep,
    /// Note changes, at most this many waiting.
    On { outbox_max: u64 },
    /// Note nothing.
    Off,
}

/// A change waiting to be shipped: its row, and the order it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub seq: i64,
    pub id: uuid::Uuid,
}

/// What the outbox holds now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxStatus {
    /// Whether changes are noted at all.
    pub on: bool,
    /// Changes waiting to be shipped.
    pub pending: u64,
    /// When the oldest of them changed.
    pub oldest: Option<DateTime<Utc>>,
    /// A resync is due (its generation): every order is shipped again.
    pub resync: Option<u64>,
    /// The store's epoch: 0, or when it was last restored from a backup (µs since 1970).
    pub epoch: i64,
}

fn read_u64(conn: &Connection, key: &str) -> Result<Option<u64>, StoreError> {
    Ok(get_meta(conn, key)?
        .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map(u64::from_be_bytes))
}

/// Applies the daemon's setting at open. Switching replication on asks for a resync, so the
/// head office gets the orders the store had before.
pub(super) fn configure(conn: &Connection, replication: Replication) -> Result<(), StoreError> {
    match replication {
        Replication::Keep => Ok(()),
        Replication::Off => {
            conn.execute("DELETE FROM meta WHERE key = ?1", [MAX_KEY])
                .map_err(StoreError::sqlite("switching the outbox off"))?;
            Ok(())
        }
        Replication::On { outbox_max } => {
            // Only history needs a resync: a new store's first orders come by the outbox.
            if read_u64(conn, MAX_KEY)?.is_none() && has_orders(conn)? {
                request_resync(conn)?;
            }
            set_meta(conn, MAX_KEY, &outbox_max.to_be_bytes())
        }
    }
}

fn has_orders(conn: &Connection) -> Result<bool, StoreError> {
    conn.query_row("SELECT EXISTS (SELECT 1 FROM orders)", [], |r| r.get(0))
        .map_err(StoreError::sqlite("reading the orders"))
}

/// A restore from a backup put older versions of the orders in place: a new epoch, and every
/// order shipped again under it.
pub(super) fn restored(conn: &Connection, at: DateTime<Utc>) -> Result<(), StoreError> {
    set_meta(conn, EPOCH_KEY, &at.timestamp_micros().to_be_bytes())?;
    request_resync(conn)
}

fn request_resync(conn: &Connection) -> Result<(), StoreError> {
    let generation = read_u64(conn, RESYNC_KEY)?.unwrap_or(0) + 1;
    set_meta(conn, RESYNC_KEY, &generation.to_be_bytes())
}

/// The first and last rows waiting, if any.
fn ends(conn: &Connection) -> Result<Option<(i64, i64)>, StoreError> {
    // Two subqueries: SQLite finds a lone min() or max() from the B-tree's ends, but scans the
    // table for both in one.
    let (low, high): (Option<i64>, Option<i64>) = conn
        .prepare_cached("SELECT (SELECT min(seq) FROM outbox), (SELECT max(seq) FROM outbox)")
        .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
        .map_err(StoreError::sqlite("measuring the outbox"))?;
    Ok(low.zip(high))
}

/// Notes a change of order `id` (inside the transaction that stored it).
pub(super) fn note(conn: &Connection, id: &[u8; 16]) -> Result<(), StoreError> {
    let Some(max) = read_u64(conn, MAX_KEY)? else {
        return Ok(());
    };
    let waiting = ends(conn)?.map_or(0, |(low, high)| (high - low + 1) as u64);
    if waiting >= max {
        if read_u64(conn, RESYNC_KEY)?.is_none() {
            tracing::warn!(
                outbox_max = max,
                "the replication outbox is full: every order is shipped again once the head office is reachable"
            );
        }
        // A new generation even when one is due: a resync already walking the orders may
        // have passed this one.
        return request_resync(conn);
    }
    conn.prepare_cached("INSERT INTO outbox (order_id, at) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute(params![&id[..], Utc::now().timestamp_micros()]))
        .map_err(StoreError::sqlite("noting a change in the outbox"))?;
    Ok(())
}

/// The next `limit` changes waiting, oldest first.
pub(super) fn next(conn: &Connection, limit: usize) -> Result<Vec<Change>, StoreError> {
    let mut s = conn
        .prepare_cached("SELECT seq, order_id FROM outbox ORDER BY seq LIMIT ?1")
        .map_err(StoreError::sqlite("reading the outbox"))?;
    let rows = s
        .query_map([limit as i64], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
        })
        .map_err(StoreError::sqlite("reading the outbox"))?;
    rows.map(|row| {
        let (seq, id) = row.map_err(StoreError::sqlite("reading the outbox"))?;
        let id = keys::id_of(&id).ok_or_else(|| StoreError::corrupt("outbox", "an order id"))?;
        Ok(Change { seq, id })
    })
    .collect()
}

/// Removes the changes shipped: every row up to `through`. A change made after they were
/// read has a later row and waits for the next batch.
pub(super) fn ack(conn: &Connection, through: i64) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM outbox WHERE seq <= ?1")
        .and_then(|mut s| s.execute([through]))
        .map_err(StoreError::sqlite("clearing the outbox"))?;
    Ok(())
}

/// Ends the resync of `generation` (a newer request stays).
pub(super) fn resync_done(conn: &Connection, generation: u64) -> Result<(), StoreError> {
    if read_u64(conn, RESYNC_KEY)? == Some(generation) {
        conn.execute("DELETE FROM meta WHERE key = ?1", [RESYNC_KEY])
            .map_err(StoreError::sqlite("ending a resync"))?;
    }
    Ok(())
}

pub(super) fn status(conn: &Connection) -> Result<OutboxStatus, StoreError> {
    let (pending, oldest) = match ends(conn)? {
        Some((low, high)) => {
            let at: i64 = conn
                .prepare_cached("SELECT at FROM outbox WHERE seq = ?1")
                .and_then(|mut s| s.query_row([low], |r| r.get(0)))
                .map_err(StoreError::sqlite("reading the outbox"))?;
            ((high - low + 1) as u64, DateTime::from_timestamp_micros(at))
        }
        None => (0, None),
    };
    Ok(OutboxStatus {
        on: read_u64(conn, MAX_KEY)?.is_some(),
        pending,
        oldest,
        resync: read_u64(conn, RESYNC_KEY)?,
        epoch: read_u64(conn, EPOCH_KEY)?.map_or(0, |e| e as i64),
    })
}

/// The outbox read from the database file while a daemon may be serving it (`doctor`): read
/// only; None when the store is not there or has no outbox yet.
pub fn status_in_file(database: &std::path::Path) -> Result<Option<OutboxStatus>, StoreError> {
    match super::schema::peek(database, "outbox")? {
        Some(conn) => status(&conn).map(Some),
        None => Ok(None),
    }
}

/// Bytes the outbox takes on disk, for the bench.
pub(super) fn bytes(conn: &Connection) -> Result<u64, StoreError> {
    conn.query_row(
        "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = 'outbox'",
        [],
        |r| r.get(0),
    )
    .map_err(StoreError::sqlite("measuring the outbox"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::transition::examples::one_in_every_state;
    use crate::store::{Store, StoreOptions};

    fn open(path: &std::path::Path, replication: Replication) -> Store {
        Store::open_with(
            path,
            StoreOptions {
                replication,
                ..Default::default()
            },
        )
        .unwrap()
    }

    #[tokio::test]
    async fn each_change_is_noted_in_order_and_a_full_outbox_asks_for_a_resync() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orders.db");
        let orders = one_in_every_state();
        // Off: nothing is noted.
        let store = open(&path, Replication::Off);
        store.insert(&orders[0]).await.unwrap();
        assert_eq!(store.outbox_status().unwrap(), OutboxStatus::default());
        drop(store);
        // On: the order there before comes by a resync; new changes by the outbox, a row each.
        let store = open(&path, Replication::On { outbox_max: 3 });
        let first = store.outbox_status().unwrap();
        assert_eq!((first.on, first.pending, first.resync), (true, 0, Some(1)));
        store.resync_done(1).await.unwrap();
        store.insert(&orders[1]).await.unwrap();
        let mut next = orders[1].clone();
        next.version += 1;
        store.replace(&next).await.unwrap();
        let waiting = store.outbox_next(10).unwrap();
        assert_eq!(
            waiting.iter().map(|c| c.id).collect::<Vec<_>>(),
            [next.id, next.id]
        );
        assert!(waiting[0].seq < waiting[1].seq);
        // A change made after the batch was read stays for the next one.
        let mut later = next.clone();
        later.version += 1;
        store.replace(&later).await.unwrap();
        store.outbox_ack(waiting[1].seq).await.unwrap();
        let status = store.outbox_status().unwrap();
        assert_eq!(status.pending, 1);
        assert!(status.oldest.is_some());
        let last = store.outbox_next(10).unwrap();
        assert!(last[0].seq > waiting[1].seq);
        store.outbox_ack(last[0].seq).await.unwrap();
        assert_eq!(store.outbox_status().unwrap().pending, 0);
        // Full: changes past the bound are not noted; a resync is asked for instead, a new
        // generation at each.
        for o in &orders[2..7] {
            store.insert(o).await.unwrap();
        }
        let full = store.outbox_status().unwrap();
        assert_eq!((full.pending, full.resync), (3, Some(2)));
        // A resync that ends does not clear a newer request.
        store.resync_done(1).await.unwrap();
        assert_eq!(store.outbox_status().unwrap().resync, Some(2));
        store.resync_done(2).await.unwrap();
        assert_eq!(store.outbox_status().unwrap().resync, None);
        assert!(store.outbox_bytes().unwrap() > 0);
        drop(store);
        // A tool opening the store keeps what the daemon set.
        let store = open(&path, Replication::Keep);
        assert!(store.outbox_status().unwrap().on);
    }

    #[tokio::test]
    async fn a_new_store_needs_no_resync() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(
            &dir.path().join("orders.db"),
            Replication::On { outbox_max: 10 },
        );
        assert_eq!(store.outbox_status().unwrap().resync, None);
    }
}
