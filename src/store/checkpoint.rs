//! Copies the WAL back into the database off the writer's thread. Left to SQLite, the connection
//! whose commit crosses the auto-checkpoint mark copies a thousand pages and fsyncs the database
//! inside that commit, and every writer waiting behind it waits too (the benchmark saw a sale's
//! p99 jump from ~10 to ~150 ms). Here a thread of its own runs a passive checkpoint every
//! quarter second, which never blocks the writer; the writer's own auto-checkpoint is only a
//! backstop far out (`BACKSTOP_PAGES`) for a load that never pauses long enough for the
//! passive ones to catch up.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::{schema, StoreError};

/// How often the WAL is copied back.
const EVERY: Duration = Duration::from_millis(250);
/// WAL pages after which the writer checkpoints itself (32 MB of 4 KB pages).
pub(super) const BACKSTOP_PAGES: u32 = 8192;

pub(super) struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    pub(super) fn start(database: &std::path::Path) -> Result<Checkpointer, StoreError> {
        let conn = schema::connect(database, schema::Role::Reader, 256)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("chasti-checkpoint-{}", std::process::id()))
            .spawn(move || loop {
                match stopped.recv_timeout(EVERY) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        // A reader connection may checkpoint: query_only forbids changing the
                        // database's content, and a checkpoint changes none of it.
                        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                            tracing::warn!(error = %e, "a WAL checkpoint failed; the next one tries again");
                        }
                    }
                    _ => return,
                }
            })
            .map_err(StoreError::file("starting the store's checkpoint thread"))?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::store::Store;

    #[tokio::test]
    async fn the_wal_is_copied_back_while_the_store_is_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let store = Store::open(&path).unwrap();
        let empty = std::fs::metadata(&path).unwrap().len();
        let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
        for n in 0..200 {
            let counter = crate::store::Counter {
                prefix: "S1".into(),
                till: "1".into(),
                day: day + chrono::Duration::days(n),
                last: 1,
            };
            store.raise_counters(&[counter]).await.unwrap();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::fs::metadata(&path).unwrap().len() <= empty {
            assert!(
                std::time::Instant::now() < deadline,
                "nothing reached the database file while the store was open"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(store.counters().unwrap().len(), 200);
    }
}
