//! The engine's own loop: recovery at start, then polling every open order on a growing
//! interval, a bounded number at a time, and the journal's retention. One order's trouble never
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
    NotInterrupted,
    Settled,
    SetAside,
    NotYet,
}

impl Engine {
    /// Reconciles every order left in a transitional state by a crash or a lost reply. An order
    /// still unsettled after `recovery_tries` passes becomes NeedsAttention with the reason, so
    /// recovery ends and sales open whatever the gateway does.
    pub async fn recover(&self) -> Result<Recovery, EngineError> {
        let mut tries: HashMap<uuid::Uuid, u32> = HashMap::new();
        let mut result = Recovery::default();
        let mut pause = Duration::from_millis(500);
        loop {
            let mut unresolved = 0;
            for id in self.inner.store.open_ids()? {
                match self.recover_one(id, &mut tries).await {
                    Ok(Recovered::Settled) => result.reconciled += 1,
                    Ok(Recovered::SetAside) => result.set_aside += 1,
                    Ok(Recovered::NotInterrupted) => {}
                    Ok(Recovered::NotYet) => unresolved += 1,
                    Err(e) => {
                        // A record that cannot be read or written is for a person: it must not
                        // keep the till closed.
                        tracing::error!(order = %id, error = %e, "recovery of one order failed; the others go on");
                    }
                }
            }
            if unresolved == 0 {
                break;
            }
            if self.is_stopping() {
                return Ok(result);
            }
            tracing::warn!(unresolved, "recovery incomplete; trying again");
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.stopping() => return Ok(result),
            }
            pause = (pause * 2).min(Duration::from_secs(30));
        }
        *lock(&self.inner.last_recovery) = Some(result);
        self.inner
            .ready
            .store(true, std::sync::atomic::Ordering::SeqCst);
        tracing::info!(
            reconciled = result.reconciled,
            set_aside = result.set_aside,
            "recovery done; accepting sales"
        );
        Ok(result)
    }

    async fn recover_one(
        &self,
        id: uuid::Uuid,
        tries: &mut HashMap<uuid::Uuid, u32>,
    ) -> Result<Recovered, EngineError> {
        if !self.get(&id)?.state.is_transitional() {
            return Ok(Recovered::NotInterrupted);
        }
        let Some(_held) = self
            .inner
            .locks
            .lock(id, self.inner.settings.lock_wait)
            .await
        else {
            return Ok(Recovered::NotYet);
        };
        let looked = self.look_locked(self.get(&id)?).await?;
        if !looked.order.state.is_transitional() {
            return Ok(Recovered::Settled);
        }
        let n = tries.entry(id).or_default();
        *n += 1;
        if *n < self.inner.settings.recovery_tries {
            return Ok(Recovered::NotYet);
        }
        self.set_aside(&looked.order, *n, looked.unknown).await?;
        Ok(Recovered::SetAside)
    }

    async fn set_aside(
        &self,
        order: &Order,
        tries: u32,
        last: Option<String>,
    ) -> Result<(), EngineError> {
        let why = format!(
            "interrupted in {} and not reconciled with the gateway after {tries} tries at start; last answer: {}",
            order.state.name(),
            last.as_deref().unwrap_or("none")
        );
        tracing::error!(order = %order.order_number, %why, "order set aside for a person to check");
        self.transition(order, Input::Attention { why }).await?;
        Ok(())
    }

    /// Runs recovery, then polls open orders until shutdown begins.
    pub async fn run(self) {
        let mut pause = Duration::from_secs(1);
        loop {
            match self.recover().await {
                Ok(_) => break,
                Err(e) => tracing::error!(error = %e, "recovery failed; trying again"),
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.stopping() => return,
            }
            pause = (pause * 2).min(Duration::from_secs(30));
        }
        let mut pruned_at: Option<Instant> = None;
        while !self.is_stopping() {
            if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                self.prune();
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
        tracing::info!("poller stopped");
    }

    /// Drops journal entries and stored callbacks older than the retention period.
    pub fn prune(&self) {
        let retention = chrono::Duration::from_std(self.inner.settings.retention)
            .unwrap_or(chrono::Duration::days(90));
        match self.inner.store.prune_before(self.now() - retention) {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "old journal entries and callbacks removed"),
            Err(e) => tracing::warn!(error = %e, "retention sweep failed"),
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
