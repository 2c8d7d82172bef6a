//! The one writer: a thread that owns the write connection and commits every change waiting for
//! it in one transaction. N writers arriving while a commit (an fsync) is under way share the
//! next one: group commit, one fsync for all of them. Each writer's change runs inside a
//! savepoint of its own, so a change that fails (a version conflict, a duplicate key) is rolled
//! back alone; each writer is answered only after the transaction holding its change has
//! committed, or with the commit's error.
//!
//! Written here rather than taken from a pool crate: a pool would give each writer its own
//! connection and transaction, and SQLite serialises writers anyway (it would spin in its busy
//! handler, one fsync each); the batching rule is the point and is kept where it can be read.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::StoreError;

/// How many changes one transaction takes at most: bounds how long a commit holds the others.
const MAX_BATCH: usize = 512;

/// A change waiting for the writer: run it inside its savepoint (saying whether it succeeded
/// and giving back how to answer its writer once the commit is known), or refuse it unrun.
trait Change: Send {
    fn run(self: Box<Self>, conn: &Connection) -> (bool, Reply);
    fn refuse(self: Box<Self>, why: &StoreError);
}

type Job = Box<dyn Change>;
type Reply = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;

struct Pending<F, R> {
    change: F,
    answer: oneshot::Sender<Result<R, StoreError>>,
}

impl<F, R> Change for Pending<F, R>
where
    F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    R: Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection) -> (bool, Reply) {
        let Pending { change, answer } = *self;
        let result = match std::panic::catch_unwind(AssertUnwindSafe(|| change(conn))) {
            Ok(result) => result,
            Err(_) => {
                tracing::error!("a store change panicked; it was rolled back");
                Err(StoreError::WriterStopped)
            }
        };
        let ok = result.is_ok();
        let reply: Reply = Box::new(move |committed| {
            let _ = answer.send(match committed {
                Ok(()) => result,
                Err(e) => result.and(Err(e.clone())),
            });
        });
        (ok, reply)
    }

    fn refuse(self: Box<Self>, why: &StoreError) {
        let _ = self.answer.send(Err(why.clone()));
    }
}

pub(super) struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer thread on an open, migrated connection.
    pub(super) fn start(conn: Connection, name: &str) -> Result<Writer, StoreError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || run(conn, queue))
            .map_err(StoreError::file("starting the store's writer thread"))?;
        Ok(Writer {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Hands a change to the writer; the receiver answers once it is committed (or failed).
    pub(super) fn submit<R: Send + 'static>(
        &self,
        change: impl FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> oneshot::Receiver<Result<R, StoreError>> {
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(Pending { change, answer });
        if let Some(jobs) = &self.jobs {
            // A closed queue drops the job and with it the answer: the receiver sees that.
            let _ = jobs.send(job);
        }
        answered
    }

    /// A change, waited for.
    pub(super) async fn write<R: Send + 'static>(
        &self,
        change: impl FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.submit(change)
            .await
            .unwrap_or(Err(StoreError::WriterStopped))
    }

    /// A change, waited for from a thread that is not async (the printer's).
    pub(super) fn write_blocking<R: Send + 'static>(
        &self,
        change: impl FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.submit(change)
            .blocking_recv()
            .unwrap_or(Err(StoreError::WriterStopped))
    }
}

impl Drop for Writer {
    /// Closing: the queue ends, the thread commits what is left and closes the connection
    /// (SQLite checkpoints the WAL into the database then); we wait for it.
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

fn run(mut conn: Connection, queue: mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        commit_batch(&mut conn, jobs);
    }
    if let Err((_, e)) = conn.close() {
        tracing::warn!(error = %e, "the order store did not close cleanly (its WAL is replayed at the next start)");
    }
}

fn commit_batch(conn: &mut Connection, jobs: Vec<Job>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let e = StoreError::sqlite("starting a transaction")(e);
        tracing::error!(error = %e, "the order store cannot write");
        for job in jobs {
            job.refuse(&e);
        }
        return;
    }
    let mut replies = Vec::with_capacity(jobs.len());
    let mut jobs = jobs.into_iter();
    while let Some(job) = jobs.next() {
        if let Err(e) = conn.execute_batch("SAVEPOINT change") {
            job.refuse(&StoreError::sqlite("starting a change")(e));
            continue;
        }
        let (ok, reply) = job.run(conn);
        let closed = if ok {
            conn.execute_batch("RELEASE change")
        } else {
            conn.execute_batch("ROLLBACK TO change; RELEASE change")
        };
        if let Err(e) = closed {
            // The savepoint could not be closed: the transaction is in an unknown shape, so
            // none of it may commit.
            let e = StoreError::sqlite("ending a change")(e);
            let _ = conn.execute_batch("ROLLBACK");
            reply(Err(&e));
            replies.into_iter().for_each(|r: Reply| r(Err(&e)));
            jobs.for_each(|j| j.refuse(&e));
            return;
        }
        replies.push(reply);
    }
    let committed = conn
        .execute_batch("COMMIT")
        .map_err(StoreError::sqlite("committing"));
    if let Err(e) = &committed {
        tracing::error!(error = %e, changes = replies.len(), "a commit of the order store failed; its changes were not written");
        let _ = conn.execute_batch("ROLLBACK");
    }
    for reply in replies {
        reply(committed.as_ref().map(|_| ()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer(dir: &tempfile::TempDir) -> Writer {
        let path = dir.path().join("w.db");
        let conn =
            super::super::schema::connect(&path, super::super::schema::Role::Writer, 256).unwrap();
        conn.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
            .unwrap();
        Writer::start(conn, "test-writer").unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn writers_share_commits_and_a_failing_change_is_rolled_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let w = std::sync::Arc::new(writer(&dir));
        let mut tasks = Vec::new();
        for i in 0..200i64 {
            let w = w.clone();
            tasks.push(tokio::spawn(async move {
                w.write(move |c| {
                    c.execute("INSERT INTO t VALUES (?1, 'x')", [i])?;
                    if i % 10 == 0 {
                        // A change that writes, then fails: none of it may stay.
                        c.execute("INSERT INTO t VALUES (?1, 'y')", [10_000 + i])?;
                        return Err(StoreError::Missing(i.to_string()));
                    }
                    Ok(i)
                })
                .await
            }));
        }
        let mut ok = 0;
        for t in tasks {
            if t.await.unwrap().is_ok() {
                ok += 1;
            }
        }
        assert_eq!(ok, 180);
        let (count, above): (i64, i64) = w
            .write(|c| {
                Ok(c.query_row(
                    "SELECT count(*), count(*) FILTER (WHERE k >= 10000) FROM t",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?)
            })
            .await
            .unwrap();
        assert_eq!((count, above), (180, 0));
        let commits: i64 = w
            .write(|c| Ok(c.query_row("PRAGMA data_version", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert!(commits >= 1);
    }

    #[tokio::test]
    async fn a_panicking_change_is_an_error_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let w = writer(&dir);
        let panicked = w
            .write(|c| -> Result<(), StoreError> {
                c.execute("INSERT INTO t VALUES (1, 'x')", [])?;
                panic!("a bug in a change");
            })
            .await;
        assert!(panicked.is_err());
        let rows: i64 = w
            .write(|c| Ok(c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(rows, 0);
    }

    #[test]
    fn a_blocking_writer_is_answered_too() {
        let dir = tempfile::tempdir().unwrap();
        let w = writer(&dir);
        let n = w
            .write_blocking(|c| Ok(c.execute("INSERT INTO t VALUES (7, 'x')", [])?))
            .unwrap();
        assert_eq!(n, 1);
    }
}
