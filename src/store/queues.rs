//! Work that must survive a stop or a crash: cancels asked for while a sale registers, and the
//! printer's queue of slips not yet printed.

use rusqlite::{params, OptionalExtension};

use super::{keys, Store, StoreError};
use crate::orders::order::Actor;

pub(super) fn insert_cancel(
    conn: &rusqlite::Connection,
    id: &uuid::Uuid,
    actor: &Actor,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO cancel_requests (order_id, by_token, by_cashier) VALUES (?1, ?2, ?3)",
    )
    .and_then(|mut s| s.execute(params![&keys::id(id)[..], actor.token, actor.cashier]))
    .map_err(StoreError::sqlite("keeping a cancel request"))?;
    Ok(())
}

pub(super) fn insert_slip(conn: &rusqlite::Connection, slip: &[u8]) -> Result<u64, StoreError> {
    conn.prepare_cached("INSERT INTO print_queue (slip) VALUES (?1)")
        .and_then(|mut s| s.execute([slip]))
        .map_err(StoreError::sqlite("queueing a slip"))?;
    Ok(u64::try_from(conn.last_insert_rowid()).unwrap_or(0))
}

impl Store {
    /// A cancel asked for while the order is busy registering, committed: the register path
    /// takes it up once the bank has answered.
    pub async fn request_cancel(&self, id: &uuid::Uuid, actor: &Actor) -> Result<(), StoreError> {
        let (id, actor) = (*id, actor.clone());
        self.writer()
            .write(move |conn| insert_cancel(conn, &id, &actor))
            .await
    }

    /// Takes a pending cancel request (who asked), if any.
    pub async fn take_cancel_request(&self, id: &uuid::Uuid) -> Result<Option<Actor>, StoreError> {
        let key = keys::id(id);
        self.writer()
            .write(move |conn| {
                conn.prepare_cached(
                    "DELETE FROM cancel_requests WHERE order_id = ?1 RETURNING by_token, by_cashier",
                )
                .and_then(|mut s| {
                    s.query_row([&key[..]], |r| {
                        Ok(Actor {
                            token: r.get(0)?,
                            cashier: r.get(1)?,
                        })
                    })
                    .optional()
                })
                .map_err(StoreError::sqlite("taking a cancel request"))
            })
            .await
    }

    /// Adds a slip to the printer's queue, committed: a slip asked for survives a stop or a
    /// crash. Returns its place in the queue.
    pub async fn print_queue_push(&self, item: &[u8]) -> Result<u64, StoreError> {
        let item = item.to_vec();
        self.writer()
            .write(move |conn| insert_slip(conn, &item))
            .await
    }

    /// Forgets a printed (or no longer wanted) slip. Blocking: called from the printer's thread.
    pub fn print_queue_remove(&self, seq: u64) -> Result<(), StoreError> {
        self.writer().write_blocking(move |conn| {
            conn.prepare_cached("DELETE FROM print_queue WHERE seq = ?1")
                .and_then(|mut s| s.execute([seq]))
                .map_err(StoreError::sqlite("forgetting a printed slip"))?;
            Ok(())
        })
    }

    /// The slips still to print, oldest first.
    pub fn print_queue(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.read(|conn| {
            let mut s = conn
                .prepare_cached("SELECT seq, slip FROM print_queue ORDER BY seq")
                .map_err(StoreError::sqlite("reading the print queue"))?;
            let rows = s
                .query_map([], |r| Ok((r.get::<_, u64>(0)?, r.get::<_, Vec<u8>>(1)?)))
                .map_err(StoreError::sqlite("reading the print queue"))?;
            rows.map(|r| r.map_err(StoreError::sqlite("reading the print queue")))
                .collect()
        })
    }
}
