//! After `chasti restore`: the store is older than the bank. In the background, at a gentle
//! rate, chasti asks the bank about every order number after the backup's counters (an order it
//! has and the store lacks is kept as «есть в банке, нет в кассе», and its number is never
//! handed out again), then checks every order of the store once and brings it to what the
//! bank says (refunds and reversals made after the backup appear, with a history line saying
//! so). Progress is in the store: a restart carries on where it stopped.

use std::time::Duration;

use super::{Engine, EngineError};
use crate::domain::{OrderNumber, StorePrefix, TillId};
use crate::gateway::{ErrorCode, GatewayError, Method, OrderRef};
use crate::store::{BankOnly, Counter};

/// Status calls a second the check makes (beside the poller's and the callbacks').
pub const RESTORE_LOOKS_PER_SECOND: u64 = 10;
/// After a call the bank did not answer, the check waits this long and asks again.
const RETRY_AFTER: Duration = Duration::from_secs(30);
/// Orders read from the store at a time.
const BATCH: usize = 100;

impl Engine {
    /// Runs the check a restore asked for, if the store has one, until it is done or the daemon
    /// stops (then the next start carries on).
    pub async fn check_after_restore(&self) -> Result<(), EngineError> {
        let store = self.inner.store.clone();
        let Some(check) = store.restore_check()? else {
            return Ok(());
        };
        tracing::info!(restored_at = %check.restored_at, "checking the restored store against the bank");
        let mut pace =
            tokio::time::interval(Duration::from_millis(1000 / RESTORE_LOOKS_PER_SECOND));
        pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Numbers first: a new sale must not take a number the bank already has.
        for probe in store.restore_probes()? {
            if !self.probe_numbers(probe, &mut pace).await? {
                return Ok(());
            }
        }
        let mut after = check.checked_up_to;
        let mut checked = 0u64;
        loop {
            let ids = store.ids_after(after, BATCH)?;
            let Some(last) = ids.last().copied() else {
                break;
            };
            for id in &ids {
                tokio::select! {
                    _ = pace.tick() => {}
                    _ = self.inner.stopping.cancelled() => return Ok(()),
                }
                match self.refresh(id).await {
                    Ok(_) => checked += 1,
                    // The bank does not know it (a sandbox that started afresh, an order that
                    // never reached it), or cannot say now: it stays as the backup has it.
                    Err(e) => {
                        tracing::info!(order = %id, error = %e, "not checked after the restore")
                    }
                }
            }
            store.restore_checked_up_to(last).await?;
            after = Some(last);
        }
        store.restore_check_done().await?;
        self.inner
            .restoring
            .store(false, std::sync::atomic::Ordering::Release);
        let only = store.bank_only()?.len();
        tracing::info!(
            checked,
            bank_only = only,
            "the restored store is checked against the bank"
        );
        Ok(())
    }

    /// Asks the bank about each number of one till's day from `probe.last` on, until it does
    /// not know one that is past the store's counter too. False when the daemon is stopping.
    async fn probe_numbers(
        &self,
        probe: Counter,
        pace: &mut tokio::time::Interval,
    ) -> Result<bool, EngineError> {
        let store = self.inner.store.clone();
        let (Ok(prefix), Ok(till)) = (
            StorePrefix::parse(&probe.prefix),
            TillId::parse(&probe.till),
        ) else {
            tracing::warn!(prefix = %probe.prefix, till = %probe.till, "a counter that names no till; not asked about");
            store.restore_probed(probe, None, None).await?;
            return Ok(true);
        };
        let mut n = probe.last.max(1);
        loop {
            let number = OrderNumber::new(&prefix, &till, probe.day, n);
            let at = Counter {
                last: n,
                ..probe.clone()
            };
            if store.has_number(number.as_str())? {
                store.restore_probed(at, None, Some(n + 1)).await?;
                n += 1;
                continue;
            }
            tokio::select! {
                _ = pace.tick() => {}
                _ = self.inner.stopping.cancelled() => return Ok(false),
            }
            let asked = self
                .journaled(
                    Method::OrderStatusExtended,
                    &number,
                    self.inner
                        .gateway
                        .order_status(&OrderRef::OrderNumber(number.to_string())),
                )
                .await;
            let known = match asked {
                Ok(report) if report.order_status.is_some() => Some(BankOnly {
                    order_number: number.to_string(),
                    amount: report.amount,
                    status: report.order_status.map_or(-1, |s| i64::from(s.code())),
                    found_at: self.now(),
                }),
                Ok(_) => None,
                Err(GatewayError::Refused {
                    code: ErrorCode::UnknownOrder,
                    ..
                }) => None,
                Err(e) => {
                    tracing::warn!(order = %number, error = %e, "the bank did not say whether it has the order; asking again later");
                    tokio::select! {
                        _ = tokio::time::sleep(RETRY_AFTER) => continue,
                        _ = self.inner.stopping.cancelled() => return Ok(false),
                    }
                }
            };
            if let Some(found) = &known {
                tracing::warn!(order = %found.order_number, amount = %found.amount, status = found.status, "the bank has an order the restored store lacks");
            }
            let past_counter = n > store.last_number(&prefix, &till, probe.day)?;
            if known.is_none() && past_counter {
                store.restore_probed(at, None, None).await?;
                return Ok(true);
            }
            store.restore_probed(at, known, Some(n + 1)).await?;
            n += 1;
        }
    }
}
