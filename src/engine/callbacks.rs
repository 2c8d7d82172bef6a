//! The bank's callbacks, after their checksum: kept, answered, and turned into looks at the
//! gateway, with bounds an attacker cannot push past. A replay of the same parameters within
//! [`REPLAY_WINDOW`] is answered and ignored; an unsigned callback (no key configured) is kept
//! only as its order reference and time, at most [`UNSIGNED_KEPT_PER_ORDER`] an order, and not
//! at all for an order chasti does not know; looks for one order coalesce (one under way, one
//! more [`ONE_ORDER_SPACING`] after it), all callback-caused looks share one rate
//! ([`LOOKS_PER_SECOND`]), and at most [`super::follow_queue::PENDING_MAX`] orders wait for one.
//! None of this loses a payment: the poller looks at every open order on its own schedule.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::follow_queue::{Asked, Next};
use super::{lock, Engine, EngineError};
use crate::domain::{GatewayOrderId, OrderNumber};
use crate::orders::order::Order;
use crate::store::StoredCallback;

/// Identical callbacks within this long of each other are one callback.
pub const REPLAY_WINDOW: Duration = Duration::from_secs(10 * 60);
/// Remembered callbacks for the replay check; the oldest go first when a flood fills it.
const REPLAY_MEMORY: usize = 10_000;
/// Unsigned callbacks kept on disk per order (while the daemon runs).
pub const UNSIGNED_KEPT_PER_ORDER: u32 = 10;
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

/// The engine's memory of recent callbacks.
#[derive(Default)]
pub(super) struct CallbackGuard {
    seen: HashMap<[u8; 32], Instant>,
    order: VecDeque<([u8; 32], Instant)>,
    unsigned_kept: HashMap<uuid::Uuid, u32>,
}

/// The shared rate of callback-caused looks.
pub(super) fn look_rate() -> governor::DefaultDirectRateLimiter {
    let rate = NonZeroU32::new(LOOKS_PER_SECOND).unwrap_or(NonZeroU32::MIN);
    governor::RateLimiter::direct(governor::Quota::per_second(rate))
}

impl CallbackGuard {
    /// True when these parameters came within the window (then this one is a replay).
    fn replayed(
        &mut self,
        params: &[(String, String)],
        order: Option<(uuid::Uuid, u64)>,
        now: Instant,
    ) -> bool {
        while let Some((hash, at)) = self.order.front().copied() {
            if now.duration_since(at) < REPLAY_WINDOW && self.order.len() < REPLAY_MEMORY {
                break;
            }
            self.order.pop_front();
            if self.seen.get(&hash) == Some(&at) {
                self.seen.remove(&hash);
            }
        }
        let hash = fingerprint(params, order);
        if self.seen.contains_key(&hash) {
            return true;
        }
        self.seen.insert(hash, now);
        self.order.push_back((hash, now));
        false
    }

    /// Counts one more unsigned callback kept for the order; false once it has had its share.
    fn keep_unsigned(&mut self, order: uuid::Uuid) -> bool {
        if self.unsigned_kept.len() >= REPLAY_MEMORY {
            self.unsigned_kept.clear();
        }
        let kept = self.unsigned_kept.entry(order).or_insert(0);
        *kept += 1;
        *kept <= UNSIGNED_KEPT_PER_ORDER
    }
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

/// The parameters as a set (order does not matter) and the order's id and version, hashed.
fn fingerprint(params: &[(String, String)], order: Option<(uuid::Uuid, u64)>) -> [u8; 32] {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut hash = Sha256::new();
    if let Some((id, version)) = order {
        hash.update(id.as_bytes());
        hash.update(version.to_be_bytes());
    }
    for (k, v) in sorted {
        hash.update((k.len() as u64).to_be_bytes());
        hash.update(k.as_bytes());
        hash.update((v.len() as u64).to_be_bytes());
        hash.update(v.as_bytes());
    }
    hash.finalize().into()
}

impl Engine {
    /// A callback whose checksum verified (or that needs none: `signature` is `unsigned`):
    /// kept durably as the bounds allow, then followed by a look in the background. Call
    /// before answering the bank; an error means it was not kept (answer so the bank retries).
    pub async fn accept_callback(
        &self,
        params: Vec<(String, String)>,
        signature: &str,
    ) -> Result<CallbackOutcome, EngineError> {
        let (md_order, order_number) = (
            callback_param(&params, "mdOrder"),
            callback_param(&params, "orderNumber"),
        );
        let order = match self.callback_order(md_order.as_deref(), order_number.as_deref()) {
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
        if lock(&self.inner.callback_guard).replayed(&params, version, Instant::now()) {
            return Ok(CallbackOutcome::Replayed);
        }
        let failure = is_failed_attempt(&params);
        let unsigned = signature == "unsigned";
        let kept = if unsigned {
            let Some(order) = &order else {
                return Ok(CallbackOutcome::UnknownUnsigned);
            };
            // Anyone could have sent it: keep what names the order, not what it claims.
            lock(&self.inner.callback_guard)
                .keep_unsigned(order.id)
                .then(|| {
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
                at: self.now(),
                params,
                signature: signature.to_string(),
            };
            self.inner.store.callback_append(&record).await?;
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
        self.schedule(order.id, self.inner.settings.poll_first);
        let asked = lock(&self.inner.follow_queue).ask(order.id, failure, Instant::now());
        match asked {
            Asked::Queued { start_worker: true } => {
                let engine = self.clone();
                self.inner
                    .follow_ups
                    .spawn(async move { engine.follow_worker().await });
            }
            Asked::Queued { .. } | Asked::Joined => {}
            Asked::Full => {
                tracing::debug!(order = %order.order_number, "callback follow-ups full; the poller will look")
            }
        }
    }

    /// One of the few workers: looks at due orders, each after the shared rate allows, until
    /// none is due.
    async fn follow_worker(&self) {
        loop {
            let next = lock(&self.inner.follow_queue).next(Instant::now());
            let (order, failures) = match next {
                Next::Done => return,
                Next::Wait(pause) => {
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => continue,
                        _ = self.inner.stopping.cancelled() => break,
                    }
                }
                Next::Look { order, failures } => (order, failures),
            };
            // One rate for all callback-caused looks: a flood of callbacks about many orders
            // cannot turn into a flood of status calls to the bank.
            tokio::select! {
                _ = self.inner.callback_looks.until_ready() => {}
                _ = self.inner.stopping.cancelled() => break,
            }
            if let Err(e) = self.refresh_reported(&order, failures).await {
                tracing::warn!(%order, error = %e, "callback follow-up failed; the poller will retry");
            }
            lock(&self.inner.follow_queue).looked(order, Instant::now());
        }
        lock(&self.inner.follow_queue).worker_stopped();
    }

    fn callback_order(
        &self,
        md_order: Option<&str>,
        order_number: Option<&str>,
    ) -> Result<Option<Order>, EngineError> {
        // The bank's callbacks carry the order number; the bank's id alone is looked up
        // among the open orders only (the store indexes orders by number, not by bank id).
        let store = &self.inner.store;
        if let Some(number) = order_number.and_then(|n| OrderNumber::parse(n).ok()) {
            if let Some(order) = store.by_number(&number)? {
                return Ok(Some(order));
            }
        }
        match md_order.and_then(|m| GatewayOrderId::parse(m).ok()) {
            Some(id) => Ok(store.open_by_bank_id(&id)?),
            None => Ok(None),
        }
    }
}
