//! Sees that every receipt an order owes gets issued (54-ФЗ), by whoever the shop chose
//! (`[fiscal] mode`): the POS (a signed webhook, the POS reports the receipt back), the ATOL
//! driver's web server on the till host, or the bank's cloud. The receipts themselves live in
//! the orders (owed in the movement's own write: `orders::receipt`); this worker finds the open
//! ones (`store::receipts`), hands each to its issuer, writes what came of it as the order's
//! transition, and marks those past `fiscal.deadline_minutes` «чек не пробит». Nothing here
//! loses a receipt: a stop or a crash leaves it open in the store, and the next pass takes it up
//! (the issuer deduplicates by the receipt's id).

mod atol;
mod bank;
mod pos;

pub use atol::{explain as explain_kkt_error, tax_type as atol_tax_type, Driver as AtolDriver};

pub use pos::{sign, ReceiptOwed, SIGNATURE_HEADER};

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::config::{Config, FiscalMode};
use crate::engine::{Engine, EngineError};
use crate::orders::order::Order;
use crate::orders::receipt::{Fiscal, Receipt, ReceiptStatus};
use crate::orders::transition::Input;

/// A failed try waits `fiscal.retry_first`, then twice as long each time, up to this.
const RETRY_MAX: Duration = Duration::from_secs(600);

/// Why the fiscal worker cannot start.
#[derive(Debug, thiserror::Error)]
pub enum FiscalSetupError {
    #[error("the fiscal issuer's HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("the fiscal issuer's TLS: {0}")]
    Tls(#[source] crate::gateway::tls::TlsError),
    #[error("fiscal.mode = \"{0}\" has no settings section")]
    NotConfigured(&'static str),
}

/// What an issuer made of one receipt this time.
#[derive(Debug)]
pub(crate) enum Step {
    /// Handed over; its result comes later (a report, a job to read back).
    Sent,
    /// Still under way at the issuer: nothing to write.
    Waiting,
    /// Issued: what the ККТ says of it.
    Issued(Fiscal),
    /// It did not work this time (`permanent`: a person must act first; `new_round`: the
    /// issuer ended the attempt for certain without a document, so the next is a new job).
    Problem {
        why: String,
        permanent: bool,
        new_round: bool,
    },
}

/// Who issues the receipts.
enum Issuer {
    Pos(pos::Webhook),
    Atol(atol::Driver),
    Bank(bank::Cloud),
}

impl Issuer {
    async fn step(&self, order: &Order, receipt: &Receipt) -> Step {
        match self {
            Issuer::Pos(webhook) => webhook.step(order, receipt).await,
            Issuer::Atol(driver) => driver.step(order, receipt).await,
            Issuer::Bank(cloud) => cloud.step(order, receipt).await,
        }
    }
}

/// The worker: one task for the daemon.
pub struct FiscalWorker {
    engine: Engine,
    issuer: Issuer,
    /// A receipt's next try, after a failed one (in memory: a restart tries at once).
    not_before: HashMap<uuid::Uuid, Instant>,
    retry_first: Duration,
    /// A pass over the open receipts this often even when no movement woke the worker
    /// (retries, deadlines, a restart's leftovers).
    scan_every: Duration,
}

impl FiscalWorker {
    /// The worker for `[fiscal]`; None when chasti does not see to receipts (`mode = "none"`).
    pub fn new(config: &Config, engine: Engine) -> Result<Option<FiscalWorker>, FiscalSetupError> {
        let issuer = match config.fiscal.mode {
            FiscalMode::None => return Ok(None),
            FiscalMode::Pos => {
                let pos = config
                    .fiscal
                    .pos
                    .as_ref()
                    .ok_or(FiscalSetupError::NotConfigured("pos"))?;
                Issuer::Pos(pos::Webhook::new(pos)?)
            }
            FiscalMode::Atol => {
                let atol = config
                    .fiscal
                    .atol
                    .as_ref()
                    .ok_or(FiscalSetupError::NotConfigured("atol"))?;
                Issuer::Atol(atol::Driver::new(atol, config.fiscal.taxation)?)
            }
            FiscalMode::Bank => Issuer::Bank(bank::Cloud::new(engine.clone())),
        };
        Ok(Some(FiscalWorker {
            engine,
            issuer,
            not_before: HashMap::new(),
            retry_first: config.fiscal.retry_first,
            scan_every: config.fiscal.scan_every,
        }))
    }

    /// Passes over the open receipts until the daemon stops: at once when a movement owes one,
    /// and every few seconds for retries and deadlines.
    pub async fn run(mut self) {
        loop {
            if let Err(e) = self.pass().await {
                tracing::warn!(error = %e, "a pass over the open receipts failed; trying again");
            }
            tokio::select! {
                _ = self.engine.receipts_owed() => {}
                _ = tokio::time::sleep(self.scan_every) => {}
                _ = self.engine.stopping() => return,
            }
        }
    }

    async fn pass(&mut self) -> Result<(), EngineError> {
        let ids = self.engine.store().receipt_order_ids()?;
        for id in ids {
            if self.engine.is_stopping() {
                return Ok(());
            }
            let order = self.engine.get(&id)?;
            let open: Vec<Receipt> = order
                .receipts
                .iter()
                .filter(|r| r.open())
                .cloned()
                .collect();
            for receipt in open {
                if let Err(e) = self.one(&order, &receipt).await {
                    tracing::warn!(order = %order.order_number, receipt = %receipt.id, error = %e, "a receipt's step could not be written; trying again");
                }
            }
        }
        // Forget the waits of receipts no longer open.
        if self.not_before.len() > 10_000 {
            let now = Instant::now();
            self.not_before.retain(|_, at| *at > now);
        }
        Ok(())
    }

    async fn one(&mut self, order: &Order, receipt: &Receipt) -> Result<(), EngineError> {
        let metrics = self.engine.metrics().clone();
        if receipt.overdue(self.engine.now()) {
            tracing::warn!(order = %order.order_number, receipt = %receipt.id, kind = receipt.kind.code(), amount = %receipt.amount, "receipt not issued by its deadline");
            metrics.fiscal_receipt("late");
            self.engine
                .receipt_step(&order.id, Input::ReceiptLate { id: receipt.id }, None)
                .await?;
        }
        if self
            .not_before
            .get(&receipt.id)
            .is_some_and(|at| Instant::now() < *at)
        {
            return Ok(());
        }
        let input = match self.issuer.step(order, receipt).await {
            Step::Waiting => return Ok(()),
            Step::Sent if matches!(receipt.status, ReceiptStatus::Sent { .. }) => return Ok(()),
            Step::Sent => {
                metrics.fiscal_receipt("sent");
                Input::ReceiptSent { id: receipt.id }
            }
            Step::Issued(fiscal) => {
                metrics.fiscal_receipt("issued");
                tracing::info!(order = %order.order_number, kind = receipt.kind.code(), amount = %receipt.amount, fd = fiscal.document_number, "receipt issued");
                self.not_before.remove(&receipt.id);
                Input::ReceiptIssued {
                    id: receipt.id,
                    fiscal,
                }
            }
            Step::Problem {
                why,
                permanent,
                new_round,
            } => {
                metrics.fiscal_receipt(if permanent { "failed" } else { "retry" });
                let wait = retry_wait(self.retry_first, receipt.tries);
                tracing::warn!(order = %order.order_number, kind = receipt.kind.code(), amount = %receipt.amount, %why, permanent, retry_in_secs = wait.as_secs(), "receipt not issued");
                self.not_before.insert(receipt.id, Instant::now() + wait);
                Input::ReceiptProblem {
                    id: receipt.id,
                    why,
                    permanent,
                    new_round,
                }
            }
        };
        self.engine.receipt_step(&order.id, input, None).await?;
        Ok(())
    }
}

/// `first` after the first failed try, doubling, at most [`RETRY_MAX`].
fn retry_wait(first: Duration, tries: u32) -> Duration {
    first
        .saturating_mul(2u32.saturating_pow(tries.min(16)))
        .min(RETRY_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_ten_minutes() {
        let first = Duration::from_secs(5);
        assert_eq!(retry_wait(first, 0), Duration::from_secs(5));
        assert_eq!(retry_wait(first, 3), Duration::from_secs(40));
        assert_eq!(retry_wait(first, 30), RETRY_MAX);
    }
}
