//! The replication outbox (`[replicate]`): which orders changed since the head office last
//! took them. A change notes its order here in the same transaction that stores it, so nothing
//! committed is ever missed and nothing is noted that was not committed. One row per order (a
//! second change of an order not shipped yet raises the row's version), so the outbox holds at
//! most the orders waiting, never their every step; what is shipped is the order as it is then.
//!
//! Bounded: past `[replicate] outbox_max` rows a change is not noted; the store is marked for
//! a resync instead, and the shipper sends every order once the outbox is empty (the head
//! office keeps only newer versions, so orders it has are skipped there). When replication is
//! switched on for a store that already has orders, the same resync sends its history.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::meta::{get_meta, set_meta};
use super::{keys, StoreError};

/// `meta` key: how many rows the outbox may hold; absent = replication off, nothing noted.
const MAX_KEY: &str = "outbox_max";
/// `meta` key: present while every order must be shipped again; its value is a generation,
/// so a resync that ends does not clear a newer request.
const RESYNC_KEY: &str = "outbox_resync";

/// Whether the store notes changes for the head office, set when the daemon opens it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Replication {
    /// As the store says (a command-line tool opening a stopped store changes nothing).
    #[default]
    Keep,
    /// Note changes, at most this many orders waiting.
    On { outbox_max: u64 },
    /// Note nothing.
    Off,
}

/// An order waiting to be shipped: its row, and the version noted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    pub seq: i64,
    pub id: uuid::Uuid,
    pub version: u64,
}

/// What the outbox holds now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxStatus {
    /// Whether changes are noted at all.
    pub on: bool,
    /// Orders waiting to be shipped.
    pub pending: u64,
    /// When the oldest of them changed.
    pub oldest: Option<DateTime<Utc>>,
    /// A resync is due (its generation): every order is shipped again.
    pub resync: Option<u64>,
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
            if read_u64(conn, MAX_KEY)?.is_none() {
                request_resync(conn)?;
            }
            set_meta(conn, MAX_KEY, &outbox_max.to_be_bytes())
        }
    }
}

fn request_resync(conn: &Connection) -> Result<(), StoreError> {
    let generation = read_u64(conn, RESYNC_KEY)?.unwrap_or(0) + 1;
    set_meta(conn, RESYNC_KEY, &generation.to_be_bytes())
}

/// Notes that order `id` is now at `version` (inside the change that stored it).
pub(super) fn note(conn: &Connection, id: &[u8; 16], version: u64) -> Result<(), StoreError> {
    let Some(max) = read_u64(conn, MAX_KEY)? else {
        return Ok(());
    };
    // Rows are taken from the front: the span of their numbers bounds how many there are
    // without counting them at every change. Two subqueries: SQLite finds a lone min() or
    // max() from the index's ends, but scans the table for both in one.
    let (low, high): (Option<i64>, Option<i64>) = conn
        .prepare_cached("SELECT (SELECT min(seq) FROM outbox), (SELECT max(seq) FROM outbox)")
        .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
        .map_err(StoreError::sqlite("measuring the outbox"))?;
    let waiting = match (low, high) {
        (Some(low), Some(high)) => (high - low + 1) as u64,
        _ => 0,
    };
    if waiting >= max {
        let already: bool = conn
            .prepare_cached("SELECT 1 FROM outbox WHERE order_id = ?1")
            .and_then(|mut s| s.query_row([&id[..]], |_| Ok(true)).optional())
            .map_err(StoreError::sqlite("reading the outbox"))?
            .unwrap_or(false);
        if !already {
            if read_u64(conn, RESYNC_KEY)?.is_none() {
                tracing::warn!(
                    outbox_max = max,
                    "the replication outbox is full: every order is shipped again once the head office is reachable"
                );
            }
            return request_resync(conn);
        }
    }
    conn.prepare_cached(
        "INSERT INTO outbox (order_id, version, at) VALUES (?1, ?2, ?3)
         ON CONFLICT (order_id) DO UPDATE SET version = excluded.version",
    )
    .and_then(|mut s| s.execute(params![&id[..], version, Utc::now().timestamp_micros()]))
    .map_err(StoreError::sqlite("noting a change in the outbox"))?;
    Ok(())
}

/// The next `limit` orders waiting, oldest first.
pub(super) fn next(conn: &Connection, limit: usize) -> Result<Vec<Pending>, StoreError> {
    let mut s = conn
        .prepare_cached("SELECT seq, order_id, version FROM outbox ORDER BY seq LIMIT ?1")
        .map_err(StoreError::sqlite("reading the outbox"))?;
    let rows = s
        .query_map([limit as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, u64>(2)?,
            ))
        })
        .map_err(StoreError::sqlite("reading the outbox"))?;
    rows.map(|row| {
        let (seq, id, version) = row.map_err(StoreError::sqlite("reading the outbox"))?;
        let id = keys::id_of(&id).ok_or_else(|| StoreError::corrupt("outbox", "an order id"))?;
        Ok(Pending { seq, id, version })
    })
    .collect()
}

/// Removes the rows shipped: each only if its order has not changed again since (a newer
/// version waits for the next batch).
pub(super) fn ack(conn: &Connection, shipped: &[Pending]) -> Result<(), StoreError> {
    let mut s = conn
        .prepare_cached("DELETE FROM outbox WHERE seq = ?1 AND version <= ?2")
        .map_err(StoreError::sqlite("clearing the outbox"))?;
    for p in shipped {
        s.execute(params![p.seq, p.version])
            .map_err(StoreError::sqlite("clearing the outbox"))?;
    }
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
    let (pending, oldest): (u64, Option<i64>) = conn
        .prepare_cached("SELECT count(*), min(at) FROM outbox")
        .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
        .map_err(StoreError::sqlite("reading the outbox"))?;
    Ok(OutboxStatus {
        on: read_u64(conn, MAX_KEY)?.is_some(),
        pending,
        oldest: oldest.and_then(DateTime::from_timestamp_micros),
        resync: read_u64(conn, RESYNC_KEY)?,
    })
}

/// Bytes the outbox takes on disk (its table and index pages), for the bench.
pub(super) fn bytes(conn: &Connection) -> Result<u64, StoreError> {
    conn.query_row(
        "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name IN ('outbox', 'sqlite_autoindex_outbox_1')",
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
    async fn each_change_is_noted_once_per_order_and_a_full_outbox_asks_for_a_resync() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orders.db");
        let orders = one_in_every_state();
        // Off: nothing is noted.
        let store = open(&path, Replication::Off);
        store.insert(&orders[0]).await.unwrap();
        assert_eq!(store.outbox_status().unwrap(), OutboxStatus::default());
        drop(store);
        // On: the order there before comes by a resync; new changes by the outbox, one row an
        // order however often it changes.
        let store = open(&path, Replication::On { outbox_max: 3 });
        let first = store.outbox_status().unwrap();
        assert_eq!((first.on, first.pending, first.resync), (true, 0, Some(1)));
        store.resync_done(1).await.unwrap();
        store.insert(&orders[1]).await.unwrap();
        let mut next = orders[1].clone();
        next.version += 1;
        store.replace(&next).await.unwrap();
        let waiting = store.outbox_next(10).unwrap();
        assert_eq!(waiting.len(), 1);
        assert_eq!((waiting[0].id, waiting[0].version), (next.id, next.version));
        // An acknowledgement of an older version leaves the newer change waiting.
        let stale = Pending {
            version: next.version - 1,
            ..waiting[0]
        };
        store.outbox_ack(vec![stale]).await.unwrap();
        assert_eq!(store.outbox_status().unwrap().pending, 1);
        store.outbox_ack(waiting).await.unwrap();
        assert_eq!(store.outbox_status().unwrap().pending, 0);
        // Full: the order past the bound is not noted; a resync is asked for instead.
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
}
