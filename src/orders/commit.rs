//! Group commit: writers that finished their write ask for a flush that starts after it, and
//! every writer that asked while a flush was running shares the next one. N concurrent
//! callbacks or sales cost about two flushes, not N, and each still returns only once its own
//! write is on disk.
//!
//! Written here rather than taken from a crate: it is a few lines over sled's blocking
//! `flush()`, and the one subtle rule (a flush counts for a write only if it *started* after
//! the write) is the whole point, so it is kept where it can be read and tested.

use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// Flushes sled on tokio's blocking pool, one flush at a time, shared by everyone waiting.
#[derive(Clone)]
pub(crate) struct GroupCommit {
    inner: Arc<Inner>,
}

struct Inner {
    db: sled::Db,
    state: Mutex<Rounds>,
    /// The last finished round and its result; waiters watch it.
    done: watch::Sender<Finished>,
}

#[derive(Default)]
struct Rounds {
    /// Flushes started so far.
    started: u64,
    /// The highest round a waiter needs.
    wanted: u64,
    /// A flush is running now.
    running: bool,
}

#[derive(Clone, Default)]
struct Finished {
    round: u64,
    /// None when that flush succeeded.
    error: Option<String>,
}

impl GroupCommit {
    pub(crate) fn new(db: sled::Db) -> GroupCommit {
        GroupCommit {
            inner: Arc::new(Inner {
                db,
                state: Mutex::new(Rounds::default()),
                done: watch::channel(Finished::default()).0,
            }),
        }
    }

    /// Returns once everything written before this call is on disk.
    pub(crate) async fn flush(&self) -> Result<(), String> {
        let mut finished = self.inner.done.subscribe();
        let (round, start) = {
            let mut s = lock(&self.inner.state);
            // A flush running now may have started before our write: we need the next one.
            let round = s.started + 1;
            s.wanted = s.wanted.max(round);
            let start = !s.running;
            if start {
                s.running = true;
                s.started += 1;
            }
            (round, start)
        };
        if start {
            tokio::spawn(self.clone().run());
        }
        loop {
            {
                let last = finished.borrow_and_update();
                if last.round >= round {
                    // A later round succeeding covers ours too; one failing does not.
                    return match &last.error {
                        None => Ok(()),
                        Some(e) => Err(e.clone()),
                    };
                }
            }
            if finished.changed().await.is_err() {
                return Err("the store's flusher stopped".into());
            }
        }
    }

    /// Runs rounds while someone is waiting for one that has not started.
    async fn run(self) {
        loop {
            let round = lock(&self.inner.state).started;
            let db = self.inner.db.clone();
            let error = match tokio::task::spawn_blocking(move || db.flush()).await {
                Ok(Ok(_)) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(e) => Some(format!("flush task failed: {e}")),
            };
            if let Some(e) = &error {
                tracing::error!(error = %e, round, "the order store could not be flushed");
            }
            let more = {
                let mut s = lock(&self.inner.state);
                let more = s.wanted > s.started;
                if more {
                    s.started += 1;
                } else {
                    s.running = false;
                }
                more
            };
            self.inner.done.send_replace(Finished { round, error });
            if !more {
                return;
            }
        }
    }
}

/// The counters are plain numbers: a panic elsewhere while holding the lock leaves them usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writers_share_flushes_and_each_sees_its_write_durable() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let commit = GroupCommit::new(db.clone());
        let mut tasks = Vec::new();
        for i in 0..64u32 {
            let (db, commit) = (db.clone(), commit.clone());
            tasks.push(tokio::spawn(async move {
                db.insert(i.to_be_bytes(), &[1]).unwrap();
                commit.flush().await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let rounds = lock(&commit.inner.state).started;
        assert!((1..64).contains(&rounds), "{rounds} flushes for 64 writers");
        assert!(
            !lock(&commit.inner.state).running,
            "the flusher stops when idle"
        );
        drop(db);
    }
}
