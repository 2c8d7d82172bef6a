//! Which slip an order update calls for, the queue of slips in the store, and the task that
//! feeds the printer from it. A slip is queued (committed) before the printer is asked, forgotten
//! once printed, and rendered from the order as it is when its turn comes: a payment slip whose
//! order was paid, cancelled or expired meanwhile, or whose link has run out, is never printed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use std::sync::Arc;

use super::printer::{Job, Printer};
use super::profile::PrinterProfile;
use super::slip::{self, Outcome, SlipOrder};
use super::Devices;
use crate::engine::Engine;
use crate::money::Kopecks;
use crate::orders::{Order, RefundStatus, State, StateKind};
use crate::store::Store;

/// What a slip says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SlipKind {
    /// The QR and the link: only while the order awaits payment and the link is alive.
    Payment,
    Paid,
    Reversed,
    Refunded {
        amount: Kopecks,
    },
    Cancelled,
}

/// One queued slip, as kept in the store.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct QueuedSlip {
    order: uuid::Uuid,
    slip: SlipKind,
    /// When the slip's event happened (printed on outcome slips).
    at: DateTime<Utc>,
    /// Who asked for it (printed on reversal, refund and cancel slips).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    by: Option<String>,
    /// A copy: when it was asked for and by whom (the original's time and author stay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    copy: Option<CopyOf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CopyOf {
    at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    by: Option<String>,
}

impl SlipKind {
    /// The slip an order's new state calls for, given the state it came from. Only entering a
    /// state prints: a history line that keeps the state (a failed attempt, a cancel request, a
    /// reprint) prints nothing.
    pub fn for_update(order: &Order) -> Option<SlipKind> {
        let last = order.history.last()?;
        if last.from == last.to {
            return None;
        }
        match &order.state {
            State::AwaitingPayment(_) => Some(SlipKind::Payment),
            State::Paid(_) => Some(SlipKind::Paid),
            State::Reversed(_) => Some(SlipKind::Reversed),
            State::Cancelled(_) => Some(SlipKind::Cancelled),
            State::Refunded(_) | State::PartiallyRefunded(_)
                if last.from == StateKind::Refunding =>
            {
                let amount = order
                    .refunds
                    .iter()
                    .rev()
                    .find(|r| r.status == RefundStatus::Done)
                    .map(|r| r.amount)
                    .unwrap_or(order.refunded);
                Some(SlipKind::Refunded { amount })
            }
            _ => None,
        }
    }

    /// Who asked for the action this slip confirms: the last person in the order's history who
    /// moved it toward this state.
    fn asked_by(self, order: &Order) -> Option<String> {
        let step = match self {
            SlipKind::Reversed => StateKind::Reversing,
            SlipKind::Refunded { .. } => StateKind::Refunding,
            SlipKind::Cancelled => StateKind::AwaitingPayment,
            SlipKind::Payment | SlipKind::Paid => return None,
        };
        order
            .history
            .iter()
            .rev()
            .find(|e| e.to == step && e.actor.is_some())
            .and_then(|e| e.actor.as_ref())
            .map(|a| a.to_string())
    }

    /// When the slip's event happened: when the order entered its state (a reprint note
    /// later does not move it).
    fn happened_at(self, order: &Order) -> DateTime<Utc> {
        let state = order.state.kind();
        order
            .history
            .iter()
            .rev()
            .find(|e| e.to == state && e.from != e.to)
            .map_or(order.updated_at, |e| e.at)
    }

    /// The slip for the order's state now (a reprint).
    pub fn for_reprint(order: &Order) -> Option<SlipKind> {
        match &order.state {
            State::AwaitingPayment(_) => Some(SlipKind::Payment),
            State::Paid(_) => Some(SlipKind::Paid),
            State::Reversed(_) => Some(SlipKind::Reversed),
            State::Cancelled(_) => Some(SlipKind::Cancelled),
            State::Refunded(_) | State::PartiallyRefunded(_) => {
                let last = order
                    .refunds
                    .iter()
                    .rev()
                    .find(|r| r.status == RefundStatus::Done)?;
                Some(SlipKind::Refunded {
                    amount: last.amount,
                })
            }
            _ => None,
        }
    }

    fn label(self, order: &Order) -> String {
        let kind = match self {
            SlipKind::Payment => "payment slip",
            SlipKind::Paid => "paid slip",
            SlipKind::Reversed => "reversal slip",
            SlipKind::Refunded { .. } => "refund slip",
            SlipKind::Cancelled => "cancel slip",
        };
        format!("{kind} {}", order.order_number)
    }
}

/// The slip's bytes for the order as it is now, or `None` when the slip is no longer wanted.
fn render(
    shop_name: &str,
    profile: &PrinterProfile,
    order: &Order,
    queued: &QueuedSlip,
    now: DateTime<Utc>,
) -> Option<Vec<u8>> {
    let (slip, at, by) = (queued.slip, queued.at, queued.by.as_deref());
    let copy = queued.copy.as_ref().map(|c| slip::Reprinted {
        at: c.at,
        by: c.by.as_deref(),
    });
    let o = SlipOrder {
        shop_name,
        order_number: order.order_number.as_str(),
        amount: order.amount,
        link_expires_at: order.link_expires_at,
    };
    match slip {
        SlipKind::Payment => match &order.state {
            State::AwaitingPayment(bank) if now < order.link_expires_at => {
                match slip::payment_slip(profile, &o, &bank.link) {
                    Ok(bytes) => Some(bytes),
                    Err(e) => {
                        tracing::error!(order = %order.order_number, error = %e, "payment slip cannot be made");
                        None
                    }
                }
            }
            _ => None,
        },
        SlipKind::Paid => Some(slip::outcome_slip(
            profile,
            &o,
            Outcome::Paid,
            at,
            None,
            copy,
        )),
        SlipKind::Reversed => Some(slip::outcome_slip(
            profile,
            &o,
            Outcome::Reversed,
            at,
            by,
            copy,
        )),
        SlipKind::Refunded { amount } => Some(slip::outcome_slip(
            profile,
            &o,
            Outcome::Refunded(amount),
            at,
            by,
            copy,
        )),
        SlipKind::Cancelled => Some(slip::outcome_slip(
            profile,
            &o,
            Outcome::Cancelled,
            at,
            by,
            copy,
        )),
    }
}

/// A printer job for a queued slip: rendered from the store's order at each try, removed
/// from the queue once printed or dropped. It holds no `Printer`: a job waiting inside the
/// printer's thread must not keep that thread alive.
fn job(
    devices: &Devices,
    printer: &Printer,
    engine: &Engine,
    seq: u64,
    queued: QueuedSlip,
    label: String,
) -> Job {
    let shop_name = devices.shop_name.clone();
    let profile: Arc<PrinterProfile> = printer.profile.clone();
    let clock = engine.clock();
    let store: Store = engine.store().clone();
    let render_store = store.clone();
    Job::new(
        label,
        Box::new(move || {
            let order = match render_store.get(&queued.order) {
                Ok(Some(order)) => order,
                Ok(None) => return None,
                Err(e) => {
                    tracing::error!(order = %queued.order, error = %e, "a queued slip's order is unreadable; dropped");
                    return None;
                }
            };
            render(&shop_name, &profile, &order, &queued, clock.now())
        }),
    )
    .on_done(move || {
        if let Err(e) = store.print_queue_remove(seq) {
            tracing::warn!(error = %e, "a printed slip could not be taken off the queue; it may print again after a restart");
        }
    })
}

impl Devices {
    /// Queues the slip (committed) and hands it to the printer, in the caller's order; the returned
    /// future gives the printer's first answer in the cashier's words.
    async fn print(
        &self,
        engine: &Engine,
        order: &Order,
        slip: SlipKind,
        at: DateTime<Utc>,
        copy: Option<CopyOf>,
    ) -> impl std::future::Future<Output = String> + Send + 'static {
        let submitted = match &self.printer {
            None => None,
            Some(printer) => {
                let queued = QueuedSlip {
                    order: order.id,
                    slip,
                    at,
                    by: slip.asked_by(order),
                    copy,
                };
                let bytes = serde_json::to_vec(&queued).unwrap_or_default();
                let seq = match engine.store().print_queue_push(&bytes).await {
                    Ok(seq) => seq,
                    Err(e) => {
                        tracing::error!(error = %e, "the slip could not be queued in the store; printing it unqueued");
                        0
                    }
                };
                let label = slip.label(order);
                Some(printer.submit(job(self, printer, engine, seq, queued, label)))
            }
        };
        let (engine, number) = (engine.clone(), order.order_number.clone());
        let printer = self.printer.clone();
        let paper_low = move || printer.as_ref().is_some_and(|p| p.paper_low());
        async move {
            let Some(outcome) = submitted else {
                return "не настроен".to_string();
            };
            match outcome.await {
                Ok(()) if paper_low() => {
                    engine.metrics().device_warning("paper_near_end");
                    format!(
                        "чек напечатан ({}); {}",
                        russian_label(slip),
                        super::PAPER_LOW
                    )
                }
                Ok(()) => format!("чек напечатан ({})", russian_label(slip)),
                Err(e) => {
                    engine.metrics().device_error("printer");
                    tracing::warn!(order = %number, error = %e, "slip not printed now");
                    e.to_string()
                }
            }
        }
    }

    /// Prints the slip of the order's current state again (the payment slip while unpaid).
    pub async fn reprint(
        &self,
        engine: &Engine,
        order: &Order,
        by: Option<&crate::orders::Actor>,
    ) -> Result<Reprint, super::ReprintError> {
        use super::ReprintError;
        if self.printer.is_none() {
            return Err(ReprintError::Nothing("Принтер не настроен.".into()));
        }
        let Some(slip) = SlipKind::for_reprint(order) else {
            return Err(ReprintError::Nothing(format!(
                "Для заказа в состоянии «{}» нет чека.",
                order.state.russian()
            )));
        };
        // A copy keeps the original's time and author, and says when and by whom it was
        // printed again.
        let copy = (slip != SlipKind::Payment).then(|| CopyOf {
            at: engine.now(),
            by: by.map(|a| a.to_string()),
        });
        let outcome = self
            .print(engine, order, slip, slip.happened_at(order), copy)
            .await
            .await;
        if outcome.starts_with("чек напечатан") {
            Ok(Reprint {
                label: slip.label(order),
                russian: format!(
                    "чек «{}» заказа {}",
                    russian_label(slip),
                    order.order_number
                ),
            })
        } else {
            Err(ReprintError::Device(outcome))
        }
    }

    /// Shows the order on the display and queues its slip, in update order; the printer's
    /// answer is awaited in the background (a payment slip's answer goes to the sale's reply).
    async fn on_update(&self, engine: &Engine, order: &Order) {
        let display = self.show(order);
        let Some(slip) = SlipKind::for_update(order) else {
            return;
        };
        let outcome = self
            .print(engine, order, slip, order.updated_at, None)
            .await;
        let devices = self.clone();
        let (id, awaiting) = (order.id, matches!(order.state, State::AwaitingPayment(_)));
        tokio::spawn(async move {
            let printer = outcome.await;
            if awaiting {
                devices.record(id, super::DevicesOutcome { printer, display });
            }
        });
    }

    /// Hands the printer every slip left in the store's queue by an earlier run.
    fn resume(&self, engine: &Engine) {
        let Some(printer) = &self.printer else {
            return;
        };
        let pending = match engine.store().print_queue() {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "the print queue is unreadable");
                return;
            }
        };
        for (seq, bytes) in pending {
            let queued: QueuedSlip = match serde_json::from_slice(&bytes) {
                Ok(q) => q,
                Err(e) => {
                    tracing::error!(error = %e, "an unreadable queued slip was dropped");
                    let _ = engine.store().print_queue_remove(seq);
                    continue;
                }
            };
            let label = match engine.get(&queued.order) {
                Ok(order) => queued.slip.label(&order),
                Err(_) => format!("slip for {}", queued.order),
            };
            tracing::info!(slip = %label, "a slip queued before the restart goes to the printer");
            // Its first answer has no one waiting for it: the printer logs it.
            drop(printer.submit(job(self, printer, engine, seq, queued, label)));
        }
    }
}

/// A slip printed again: what it was, for the log and for the cashier.
#[derive(Debug, Clone)]
pub struct Reprint {
    /// "paid slip T-1-261123-0001"
    pub label: String,
    /// "чек «оплачено» заказа T-1-261123-0001"
    pub russian: String,
}

fn russian_label(slip: SlipKind) -> &'static str {
    match slip {
        SlipKind::Payment => "оплата по QR-коду",
        SlipKind::Paid => "оплачено",
        SlipKind::Reversed => "отмена оплаты",
        SlipKind::Refunded { .. } => "возврат",
        SlipKind::Cancelled => "продажа отменена",
    }
}

/// Prints and displays what each order update calls for, in the background; first hands the
/// printer whatever an earlier run left queued.
pub fn attach(engine: &Engine, devices: Devices) -> tokio::task::JoinHandle<()> {
    let mut updates = engine.subscribe();
    devices.resume(engine);
    let engine = engine.clone();
    tokio::spawn(async move {
        loop {
            let order = match updates.recv().await {
                Ok(order) => order,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "devices missed order updates");
                    continue;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            // Queued here, in order; printing itself never holds up the next update.
            devices.on_update(&engine, &order).await;
        }
    })
}
