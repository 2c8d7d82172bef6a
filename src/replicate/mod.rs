//! A chain's head office: every order change shipped to its PostgreSQL (`[replicate]`).
//!
//! ```text
//! engine ─► store: the order, and its row in the outbox, in one transaction
//! Replicator ─► store.outbox_next ─► central::ship (one PG transaction) ─► store.outbox_ack
//! ```
//!
//! At least once, in order of change, idempotent at the other end (an order row is replaced
//! only by a newer version; history lines and movements are keyed by their line), batched, and
//! never in a sale's way: a sale only writes its outbox row. A store offline for days keeps
//! its outbox and catches up when the link returns. `central` is the PostgreSQL side, `rows`
//! the tables' shape, `report` what a head office reads.

pub mod central;
pub mod report;
pub mod rows;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::ReplicateConfig;
use crate::store::{Store, StoreError};

/// Why shipping to the head office failed. For logs, `doctor` and the manager page: the URL
/// shown never carries the password.
#[derive(Debug, thiserror::Error)]
pub enum ReplicateError {
    #[error("cannot connect to the head office's PostgreSQL at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("the TLS set-up for the head office's PostgreSQL: {0}")]
    Tls(#[source] crate::gateway::tls::TlsError),
    #[error("the head office's PostgreSQL, {during}: {source}")]
    Query {
        during: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("the head office's schema is version {found}; this chasti knows up to {known}: upgrade chasti")]
    NewerSchema { found: i64, known: i64 },
    #[error("the head office's schema is version {found}, this chasti needs {needed}: run `chasti replicate --init` once")]
    OldSchema { found: i64, needed: i64 },
    #[error("the head office's chasti_schema says version {found}, which no chasti writes: put the right version there or drop chasti's tables and run `chasti replicate --init`")]
    BadSchemaVersion { found: i64 },
    #[error("chasti's shipper failed unexpectedly ({0}); it tries again")]
    Panicked(String),
    #[error("the order store: {0}")]
    Store(#[from] StoreError),
}

impl ReplicateError {
    fn query(during: &'static str) -> impl Fn(tokio_postgres::Error) -> ReplicateError {
        move |source| ReplicateError::Query { during, source }
    }

    /// The server's own words when there are any (a wrong password, a missing database),
    /// else the whole chain of causes, on one line.
    pub fn explain(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            let more = s.to_string();
            if !text.contains(&more) {
                text.push_str(": ");
                text.push_str(&more);
            }
            source = s.source();
        }
        text
    }
}

/// How shipping goes, for the manager page, `/metrics` and `doctor`.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// The last batch the head office took (or the last check that found nothing to send).
    pub last_ok: Option<DateTime<Utc>>,
    /// Why the last attempt failed, while it keeps failing.
    pub last_error: Option<String>,
    pub shipped_total: u64,
    pub errors_total: u64,
    /// Orders sent again by a resync (replication switched on, or the outbox was full).
    pub resynced_total: u64,
}

/// Shared between the shipping task and whoever reports on it.
#[derive(Debug, Clone, Default)]
pub struct Status(Arc<Mutex<Progress>>);

impl Status {
    pub fn get(&self) -> Progress {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn update(&self, f: impl FnOnce(&mut Progress)) {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

/// What the till API shows of replication.
#[derive(Debug, Clone)]
pub struct Watch {
    pub store_id: String,
    pub status: Status,
}

/// The manager page's line when the head office is behind: None while all is shipped.
pub fn notice(
    pending: u64,
    resync: bool,
    progress: &Progress,
    now: DateTime<Utc>,
) -> Option<String> {
    if pending == 0 && !resync && progress.last_error.is_none() {
        return None;
    }
    let last = match progress.last_ok {
        Some(at) => format!(
            "последняя связь {}",
            at.with_timezone(&chrono_tz::Europe::Moscow)
                .format("%d.%m.%Y %H:%M МСК")
        ),
        None => "связи ещё не было".to_string(),
    };
    // A short wait between batches is normal; say nothing unless it lasts.
    let stale = progress
        .last_ok
        .is_none_or(|at| now - at > chrono::Duration::minutes(5));
    if progress.last_error.is_none() && !stale {
        return None;
    }
    let what = if resync {
        "в центральную базу будут отправлены заново все заказы".to_string()
    } else {
        format!("в центральную базу не отправлено изменений: {pending}")
    };
    Some(format!("{what}, {last}"))
}

/// How long the shipper lets changes gather after one wakes it.
const LINGER: Duration = Duration::from_secs(1);
/// How often it looks at the outbox when nothing wakes it (changes a tool made to a stopped
/// store, a resync asked for).
const IDLE: Duration = Duration::from_secs(2);

/// What a turn did.
enum Turn {
    /// Shipped a whole batch (or a resync): more may be waiting.
    Full,
    /// Shipped what there was.
    Some,
    /// Found nothing to ship.
    Nothing,
}

/// How long to wait after a failure: 1 s doubling to a minute.
fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.min(6)).min(Duration::from_secs(60))
}

/// The shipping task.
pub struct Replicator {
    config: ReplicateConfig,
    store: Store,
    /// The store's epoch (changed only by a restore, which the daemon never runs beside).
    epoch: i64,
    status: Status,
    wake: tokio::sync::broadcast::Receiver<crate::orders::order::Order>,
}

impl Replicator {
    pub fn new(
        config: ReplicateConfig,
        store: Store,
        wake: tokio::sync::broadcast::Receiver<crate::orders::order::Order>,
    ) -> Replicator {
        Replicator {
            config,
            store,
            epoch: 0,
            status: Status::default(),
            wake,
        }
    }

    pub fn status(&self) -> Status {
        self.status.clone()
    }

    /// Ships until `stop` resolves. Never fails: a failure is logged, kept in the status and
    /// tried again later.
    pub async fn run(mut self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut client: Option<tokio_postgres::Client> = None;
        let mut failures = 0u32;
        loop {
            // A panic in a turn (a bug, or a row no one foresaw) is a failed turn: the outbox
            // keeps the changes, and shipping goes on after the backoff rather than dying
            // unseen with its task.
            let turn = std::panic::AssertUnwindSafe(self.turn(&mut client));
            let outcome = match futures_util::FutureExt::catch_unwind(turn).await {
                Ok(outcome) => outcome,
                Err(panic) => Err(ReplicateError::Panicked(panic_text(&*panic))),
            };
            let pause = match outcome {
                Ok(Turn::Full) => {
                    failures = 0;
                    Duration::ZERO
                }
                Ok(Turn::Some | Turn::Nothing) => {
                    failures = 0;
                    IDLE
                }
                Err(e) => {
                    client = None;
                    let why = e.explain();
                    if failures == 0 {
                        tracing::warn!(error = %why, "shipping to the head office failed; the outbox keeps the changes");
                    }
                    self.status.update(|p| {
                        p.last_error = Some(why);
                        p.errors_total += 1;
                    });
                    failures += 1;
                    backoff(failures)
                }
            };
            if pause.is_zero() {
                // A backlog: the next batch at once, unless told to stop.
                if futures_now(&mut stop) {
                    break;
                }
                continue;
            }
            let woken = tokio::select! {
                _ = &mut stop => break,
                _ = tokio::time::sleep(pause) => false,
                // A change (failures wait their backoff out).
                _ = self.wake.recv(), if failures == 0 => true,
            };
            if woken {
                // Let the changes of the next moment gather: one batch and one acknowledgement
                // for them all, rather than a write to the store after every sale.
                tokio::select! {
                    _ = &mut stop => break,
                    _ = tokio::time::sleep(LINGER) => {}
                }
                while self.wake.try_recv().is_ok() {}
            }
        }
    }

    /// One step: ships the next batch (or a resync).
    async fn turn(
        &mut self,
        client: &mut Option<tokio_postgres::Client>,
    ) -> Result<Turn, ReplicateError> {
        if client.as_ref().is_none_or(|c| c.is_closed()) {
            let fresh = central::connect(&self.config).await?;
            let found = central::version(&fresh).await?;
            if found != central::latest() {
                return Err(if found > central::latest() {
                    ReplicateError::NewerSchema {
                        found,
                        known: central::latest(),
                    }
                } else {
                    ReplicateError::OldSchema {
                        found,
                        needed: central::latest(),
                    }
                });
            }
            self.epoch = self.store.outbox_status()?.epoch;
            *client = Some(fresh);
        }
        let Some(pg) = client.as_mut() else {
            return Ok(Turn::Nothing);
        };
        let pending = self.store.outbox_next(self.config.batch)?;
        if pending.is_empty() {
            let status = self.store.outbox_status()?;
            if let Some(generation) = status.resync {
                self.resync(pg, generation).await?;
                return Ok(Turn::Full);
            }
            self.status.update(|p| {
                p.last_ok = Some(Utc::now());
                p.last_error = None;
            });
            return Ok(Turn::Nothing);
        }
        // Each order once, as it is now: later changes of it in the run add nothing.
        let mut named = std::collections::HashSet::with_capacity(pending.len());
        let mut batch = rows::Batch::default();
        for change in &pending {
            if !named.insert(change.id) {
                continue;
            }
            // An order the store no longer has (a restore took it back) has nothing to send.
            if let Some(order) = self.store.get(&change.id)? {
                batch.add(&order);
            }
        }
        panic_point();
        central::ship(pg, &self.config.store_id, self.epoch, &batch).await?;
        crash_point();
        let shipped = pending.len();
        let through = pending.last().map_or(0, |c| c.seq);
        self.store.outbox_ack(through).await?;
        self.status.update(|p| {
            p.last_ok = Some(Utc::now());
            p.last_error = None;
            p.shipped_total += shipped as u64;
        });
        Ok(if shipped >= self.config.batch {
            Turn::Full
        } else {
            Turn::Some
        })
    }

    /// Ships every order again (replication switched on for a store with history, or the
    /// outbox overflowed), a batch at a time; the head office keeps what it has when newer.
    async fn resync(
        &mut self,
        pg: &mut tokio_postgres::Client,
        generation: u64,
    ) -> Result<(), ReplicateError> {
        tracing::info!(
            generation,
            "sending every order to the head office (resync)"
        );
        let mut batch = rows::Batch::default();
        let mut sent = 0u64;
        for order in self.store.every_order() {
            batch.add(&order?);
            if batch.len() >= self.config.batch {
                central::ship(pg, &self.config.store_id, self.epoch, &batch).await?;
                sent += batch.len() as u64;
                batch = rows::Batch::default();
            }
        }
        if !batch.is_empty() {
            central::ship(pg, &self.config.store_id, self.epoch, &batch).await?;
            sent += batch.len() as u64;
        }
        self.store.resync_done(generation).await?;
        self.status.update(|p| {
            p.last_ok = Some(Utc::now());
            p.last_error = None;
            p.resynced_total += sent;
        });
        tracing::info!(orders = sent, "resync done");
        Ok(())
    }
}

/// What a caught panic said (its message, when it has one).
pub(crate) fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// Whether `stop` has resolved, without waiting.
fn futures_now(stop: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>) -> bool {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    stop.as_mut().poll(&mut cx).is_ready()
}

/// Tests only: panics before the first batch is shipped (`CHASTI_TEST_PANIC_IN_SHIP=1`), once.
fn panic_point() {
    #[cfg(any(test, feature = "test-hooks"))]
    if std::env::var_os("CHASTI_TEST_PANIC_IN_SHIP").is_some() {
        static ONCE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if !ONCE.swap(true, std::sync::atomic::Ordering::SeqCst) {
            panic!("CHASTI_TEST_PANIC_IN_SHIP");
        }
    }
}

/// Tests only: dies between shipping a batch and recording that it was shipped, as a power
/// cut or a SIGKILL there would (`CHASTI_TEST_CRASH_AFTER_SHIP=1`).
fn crash_point() {
    #[cfg(any(test, feature = "test-hooks"))]
    if std::env::var_os("CHASTI_TEST_CRASH_AFTER_SHIP").is_some() {
        tracing::warn!("CHASTI_TEST_CRASH_AFTER_SHIP: aborting after the shipment");
        std::process::abort();
    }
}
