//! The engine's own loop: sales open at once; interrupted orders are reconciled in the
//! background (several at a time, each under its lock) while every open order is polled on a
//! growing interval, a bounded number at a time; and the journal's retention. One order's trouble never
//! stops the others, and nothing here waits on an order another task is working on.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::{lock, Engine, EngineError, PollSlot};
use crate::orders::order::Order;
use crate::orders::transition::Input;

/// How often the journal and callback trees are trimmed to the retention period.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// How often the poller wakes to see which orders are due.
const TICK: Duration = Duration::from_millis(250);

/// What recovery did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Interrupted orders that the gateway's answer settled.
    pub reconciled: usize,
    /// Orders the gateway could not account for after every try: now NeedsAttention.
    pub set_aside: usize,
}

enum Recovered {
    /// Not (or no longer) in a transitional state.
    Settled,
    /// Looked at, still unsettled: counts as a try.
    NotYet,
    /// Another task holds the order now: looked at again next pass, not a try.
    Busy,
    SetAside,
}

/// Interrupted orders reconciled at once during recovery.
const RECOVERY_CONCURRENCY: usize = 8;

impl Engine {
    /// Reconciles every order a crash or a lost reply left in a transitional state, several at
    /// a time, each under its own lock, while sales are already open. An order still unsettled
    /// after `recovery_tries` passes becomes NeedsAttention with the reason, so recovery ends
    /// whatever the gateway does.
    pub async fn recover(&self) -> Result<Recovery, EngineError> {
        // The orders interrupted before this start; sales made since settle themselves.
        let mut pending = self.inner.interrupted.clone();
        if !pending.is_empty() {
            tracing::info!(
                interrupted = pending.len(),
                "reconciling interrupted orders"
            );
        }
        let mut tries: HashMap<uuid::Uuid, u32> = HashMap::new();
        let mut result = Recovery::default();
        let mut pause = Duration::from_millis(500);
        while !pending.is_empty() {
            let pass: Vec<(uuid::Uuid, Result<Recovered, EngineError>)> =
                futures_util::stream::iter(pending.iter().copied())
                    .map(|id| {
                        let attempt = tries.get(&id).copied().unwrap_or(0) + 1;
                        async move { (id, self.recover_one(id, attempt).await) }
                    })
                    .buffer_unordered(RECOVERY_CONCURRENCY)
                    .collect()
                    .await;
            pending.clear();
            for (id, outcome) in pass {
                match outcome {
                    Ok(Recovered::Settled) => result.reconciled += 1,
                    Ok(Recovered::SetAside) => result.set_aside += 1,
                    Ok(Recovered::NotYet) => {
                        *tries.entry(id).or_default() += 1;
                        pending.push(id);
                    }
                    Ok(Recovered::Busy) => pending.push(id),
                    Err(e) => {
                        // A record that cannot be read or written is for a person: it must not
                        // keep recovery going for ever.
                        tracing::error!(order = %id, error = %e, "recovery of one order failed; the others go on");
                    }
                }
            }
            if pending.is_empty() || self.is_stopping() {
                break;
            }
            tracing::warn!(
                unresolved = pending.len(),
                "recovery incomplete; trying again"
            );
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.stopping() => return Ok(result),
            }
            pause = (pause * 2).min(Duration::from_secs(30));
        }
        *lock(&self.inner.last_recovery) = Some(result);
        tracing::info!(
            reconciled = result.reconciled,
            set_aside = result.set_aside,
            "recovery done"
        );
        Ok(result)
    }

    async fn recover_one(&self, id: uuid::Uuid, attempt: u32) -> Result<Recovered, EngineError> {
        let Some(_held) = self.inner.locks.try_lock(id) else {
            return Ok(Recovered::Busy);
        };
        let order = self.get(&id)?;
        if !order.state.is_transitional() {
            return Ok(Recovered::Settled);
        }
        let looked = self.look_locked(order).await?;
        if !looked.order.state.is_transitional() {
            return Ok(Recovered::Settled);
        }
        if attempt < self.inner.settings.recovery_tries {
            return Ok(Recovered::NotYet);
        }
        self.set_aside(&looked.order, attempt, looked.unknown)
            .await?;
        Ok(Recovered::SetAside)
    }

    async fn set_aside(
        &self,
        order: &Order,
        tries: u32,
        last: Option<String>,
    ) -> Result<(), EngineError> {
        let why = crate::orders::Reason::NotReconciled {
            state: order.state.kind(),
            tries,
            last,
        };
        tracing::error!(order = %order.order_number, %why, "order set aside for a person to check");
        self.transition(order, Input::Attention { why }).await?;
        Ok(())
    }

    /// Opens sales, reconciles interrupted orders in the background, and polls open orders
    /// until shutdown begins.
    pub async fn run(self) {
        let recovering = {
            let engine = self.clone();
            tokio::spawn(async move {
                let mut pause = Duration::from_secs(1);
                loop {
                    match engine.recover().await {
                        Ok(_) => return,
                        Err(e) => tracing::error!(error = %e, "recovery failed; trying again"),
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = engine.stopping() => return,
                    }
                    pause = (pause * 2).min(Duration::from_secs(30));
                }
            })
        };
        let restore_check = {
            let engine = self.clone();
            tokio::spawn(async move {
                // After recovery: the interrupted orders first, then what a restore left.
                if let Err(e) = recovering.await {
                    tracing::error!(error = %e, "the recovery task failed");
                }
                if let Err(e) = engine.check_after_restore().await {
                    tracing::error!(error = %e, "the check after a restore stopped; it carries on at the next start");
                }
            })
        };
        let mut pruned_at: Option<Instant> = None;
        while !self.is_stopping() {
            if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                self.prune().await;
                pruned_at = Some(Instant::now());
            }
            if let Err(e) = self.poll_due().await {
                tracing::warn!(error = %e, "poll round failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = self.stopping() => {}
            }
        }
        if let Err(e) = restore_check.await {
            tracing::error!(error = %e, "the recovery task failed");
        }
        tracing::info!("poller stopped");
    }

    /// Drops journal entries and stored callbacks older than the retention period, and the
    /// idempotency keys of days that no longer answer (`KEY_DAYS`).
    pub async fn prune(&self) {
        let retention = chrono::Duration::from_std(self.inner.settings.retention)
            .unwrap_or(chrono::Duration::days(90));
        match self.inner.store.prune_before(self.now() - retention).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "old journal entries and callbacks removed"),
            Err(e) => tracing::warn!(error = %e, "retention sweep failed"),
        }
        let oldest =
            crate::moscow::date(self.now()) - chrono::Duration::days(crate::store::KEY_DAYS - 1);
        match self.inner.store.prune_keys_before(oldest).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "idempotency keys of past days removed"),
            Err(e) => tracing::warn!(error = %e, "idempotency key sweep failed"),
        }
    }

    /// One poll round: every open order whose turn has come, with a growing interval, up to
    /// `poll_concurrency` at once. Busy orders wait for the next round; one order's error is
    /// logged and never stops the round.
    pub async fn poll_due(&self) -> Result<(), EngineError> {
        let open = self.inner.store.open_ids()?;
        let now = Instant::now();
        let settings = &self.inner.settings;
        let due: Vec<uuid::Uuid> = {
            let mut polls = lock(&self.inner.polls);
            let open_set: std::collections::HashSet<&uuid::Uuid> = open.iter().collect();
            polls.retain(|id, _| open_set.contains(id));
            open.iter()
                .filter_map(|id| {
                    let slot = polls.entry(*id).or_insert(PollSlot {
                        due: now,
                        interval: settings.poll_first,
                    });
                    if slot.due > now {
                        return None;
                    }
                    let grown = slot.interval.mul_f32(1.5).min(settings.poll_max);
                    slot.due = now + slot.interval;
                    slot.interval = grown;
                    Some(*id)
                })
                .collect()
        };
        futures_util::stream::iter(due)
            .for_each_concurrent(settings.poll_concurrency.max(1), |id| async move {
                let Some(_held) = self.inner.locks.try_lock(id) else {
                    return;
                };
                let looked = match self.get(&id) {
                    Ok(order) => self.look_locked(order).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = looked {
                    tracing::warn!(order = %id, error = %e, "poll of one order failed; the others go on");
                }
            })
            .await;
        Ok(())
    }
}
