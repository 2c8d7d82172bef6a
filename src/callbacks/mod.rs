//! The bank's callbacks after their checksum: kept, answered, and turned into looks at the
//! gateway, with bounds an attacker cannot push past. The callback route
//! (`http::callback`) checks who sent a callback; this intake decides what it is worth
//! and asks the engine to look.
//!
//! A replay of the same parameters within [`REPLAY_WINDOW`] is answered and ignored; an
//! unsigned callback (no key configured) is kept only as its order reference and time, at most
//! [`UNSIGNED_KEPT_PER_ORDER`] an order, and not at all for an order chasti does not know;
//! looks for one order coalesce (one under way, one more [`ONE_ORDER_SPACING`] after it), all
//! callback-caused looks share one rate ([`LOOKS_PER_SECOND`]), and at most [`FOLLOW_UPS_MAX`]
//! orders wait for one. None of this loses a payment: the poller looks at every open order on
//! its own schedule.

mod follow_queue;
mod guard;

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::task::TaskTracker;

use follow_queue::{Asked, FollowQueue, Next};
pub use follow_queue::{PENDING_MAX as FOLLOW_UPS_MAX, WORKERS as FOLLOW_UP_WORKERS};
use guard::CallbackGuard;
pub use guard::{REPLAY_WINDOW, UNSIGNED_KEPT_PER_ORDER};

use crate::engine::{Engine, EngineError};
use crate::orders::order::Order;
use crate::store::StoredCallback;

/// Status calls callbacks may cause, per second, across all orders (a burst of as many).
pub const LOOKS_PER_SECOND: u32 = 20;
/// A further look at one order, asked for by callbacks during the last, waits this long after
/// it: the bank's own callbacks for one order come seconds apart, a flood does not.
pub const ONE_ORDER_SPACING: Duration = Duration::from_secs(1);

/// What became of a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// Kept (whole, or as its reference when unsigned) and followed by a look.
    Accepted,
    /// The same parameters came within the replay window: answered, nothing else.
    Replayed,
    /// Unsigned and about an order chasti does not know: answered, not kept.
    UnknownUnsigned,
}

/// The callback intake: one per daemon, shared by the callback route's requests.
#[derive(Clone)]
pub struct Callbacks {
    engine: Engine,
    inner: Arc<Inner>,
}

struct Inner {
    /// Recent callbacks (replays) and unsigned ones kept per order.
    guard: Mutex<CallbackGuard>,
    /// Orders waiting for a callback-caused look (one pending look per order, bounded).
    queue: Mutex<FollowQueue>,
    /// Status calls callbacks may cause: one rate for all orders.
    looks: governor::DefaultDirectRateLimiter,
    /// Work started by callbacks after their 200: drained at shutdown.
    workers: TaskTracker,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A callback's parameter by name; an empty value counts as absent.
pub fn callback_param(params: &[(String, String)], name: &str) -> Option<String> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty())
}

/// A callback reporting a failed payment attempt: `operation` deposited or approved with
/// `status` 0 (the bank sends one for each attempt, with the same parameters each time).
fn is_failed_attempt(params: &[(String, String)]) -> bool {
    let operation = callback_param(params, "operation");
    callback_param(params, "status").as_deref() == Some("0")
        && matches!(operation.as_deref(), Some("deposited" | "approved"))
}

impl Callbacks {
    pub fn new(engine: Engine) -> Callbacks {
        let rate = NonZeroU32::new(LOOKS_PER_SECOND).unwrap_or(NonZeroU32::MIN);
        Callbacks {
            engine,
            inner: Arc::new(Inner {
                guard: Mutex::new(CallbackGuard::default()),
                queue: Mutex::new(FollowQueue::new(
                    ONE_ORDER_SPACING,
                    follow_queue::PENDING_MAX,
                )),
                looks: governor::RateLimiter::direct(governor::Quota::per_second(rate)),
                workers: TaskTracker::new(),
            }),
        }
    }

    /// The engine the intake asks to look (the route counts its outcomes in its metrics).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// A callback whose checksum verified (or that needs none: `signature` is `unsigned`):
    /// kept durably as the bounds allow, then followed by a look in the background. Call
    /// before answering the bank; an error means it was not kept (answer so the bank retries).
    pub async fn accept(
        &self,
        params: Vec<(String, String)>,
        signature: &str,
    ) -> Result<CallbackOutcome, EngineError> {
        let (md_order, order_number) = (
            callback_param(&params, "mdOrder"),
            callback_param(&params, "orderNumber"),
        );
        let order = match self
            .engine
            .callback_order(md_order.as_deref(), order_number.as_deref())
        {
            Ok(order) => order,
            Err(e) => {
                tracing::warn!(error = %e, "callback's order could not be read; the poller will look");
                None
            }
        };
        // A replay is the same parameters about the order as it stands: once the order moved
        // (a failed attempt recorded, say), the same parameters are news again, so identical
        // failure callbacks of separate attempts each count.
        let version = order.as_ref().map(|o| (o.id, o.version));
        if lock(&self.inner.guard).replayed(&params, version, Instant::now()) {
            return Ok(CallbackOutcome::Replayed);
        }
        let failure = is_failed_attempt(&params);
        let kept = if signature == "unsigned" {
            let Some(order) = &order else {
                return Ok(CallbackOutcome::UnknownUnsigned);
            };
            // Anyone could have sent it: keep what names the order, not what it claims.
            lock(&self.inner.guard).keep_unsigned(order.id).then(|| {
                vec![
                    ("orderNumber".to_string(), order.order_number.to_string()),
                    ("unsigned".to_string(), "reference only".to_string()),
                ]
            })
        } else {
            Some(params)
        };
        if let Some(params) = kept {
            let record = StoredCallback {
                at: self.engine.now(),
                params,
                signature: signature.to_string(),
            };
            self.engine.store().callback_append(&record).await?;
        }
        match order {
            Some(order) => self.follow(&order, failure),
            None => {
                tracing::warn!(md_order = ?md_order, order_number = ?order_number, "callback for an order chasti does not know; ignored")
            }
        }
        Ok(CallbackOutcome::Accepted)
    }

    /// Confirms with the gateway and acts, in the background (the bank has its 200 already):
    /// the order joins the bounded follow-up queue, and a worker looks at it when the shared
    /// rate allows. Work started here is drained at shutdown.
    fn follow(&self, order: &Order, failure: bool) {
        // A callback means something moved: poll this order promptly from now on (also the
        // fallback when the queue is full).
        self.engine.poll_soon(order.id);
        let asked = lock(&self.inner.queue).ask(order.id, failure, Instant::now());
        match asked {
            Asked::Queued { start_worker: true } => {
                let intake = self.clone();
                self.inner
                    .workers
                    .spawn(async move { intake.follow_worker().await });
            }
            Asked::Queued { .. } | Asked::Joined => {}
            Asked::Full => {
                tracing::debug!(order = %order.order_number, "callback follow-ups full; the poller will look")
            }
        }
    }

    /// One of the few workers: looks at due orders, each after the shared rate allows, until
    /// none is due or the daemon stops.
    async fn follow_worker(&self) {
        loop {
            let next = lock(&self.inner.queue).next(Instant::now());
            let (order, failures) = match next {
                Next::Done => return,
                Next::Wait(pause) => {
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => continue,
                        _ = self.engine.stopping() => break,
                    }
                }
                Next::Look { order, failures } => (order, failures),
            };
            // One rate for all callback-caused looks: a flood of callbacks about many orders
            // cannot turn into a flood of status calls to the bank.
            tokio::select! {
                _ = self.inner.looks.until_ready() => {}
                _ = self.engine.stopping() => break,
            }
            if let Err(e) = self.engine.refresh_reported(&order, failures).await {
                tracing::warn!(%order, error = %e, "callback follow-up failed; the poller will retry");
            }
            lock(&self.inner.queue).looked(order, Instant::now());
        }
        lock(&self.inner.queue).worker_stopped();
    }

    /// Waits, up to `limit`, for callback follow-ups under way; true if they all finished.
    pub async fn drain(&self, limit: Duration) -> bool {
        self.inner.workers.close();
        tokio::time::timeout(limit, self.inner.workers.wait())
            .await
            .is_ok()
    }
}

/// What tests watch: the bounds hold under a storm, and nothing is left under way.
#[cfg(any(test, feature = "test-hooks"))]
impl Callbacks {
    /// Follow-ups under way or waiting (a test waits for none before asserting "nothing moved").
    pub fn in_flight(&self) -> usize {
        self.inner.workers.len() + lock(&self.inner.queue).waiting()
    }

    /// Tasks making callback-caused looks now (at most [`FOLLOW_UP_WORKERS`]).
    pub fn tasks(&self) -> usize {
        self.inner.workers.len()
    }

    /// Orders the follow-up queue keeps (bounded by [`FOLLOW_UPS_MAX`]).
    pub fn queue_len(&self) -> usize {
        lock(&self.inner.queue).len()
    }
}
