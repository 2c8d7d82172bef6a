//! The only place states change: `apply(order, input, now)` gives the next order or says why
//! not. Pure; the engine writes what it returns. Every change adds a history line in English
//! (for logs) and in Russian (for the cashier and the manager), with who asked for it.

use chrono::{DateTime, Utc};

use super::order::{Actor, Event, EventKind, FailedAttempt, Mode, Order, Refund, RefundStatus};
use super::reason::Reason;
use super::receipt::{Fiscal, ReceiptStatus};
use super::state::{AtBank, State};
use crate::domain::IdempotencyKey;
use crate::money::Kopecks;

/// What happened to an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Registered(AtBank),
    RegistrationFailed {
        why: Reason,
    },
    /// The gateway confirms a hold (orderStatus 1); `at` is the bank's authorization time.
    HoldConfirmed {
        at: Option<DateTime<Utc>>,
    },
    /// A deposit of the hold: all of it, or `amount` (the rest released).
    DepositStarted {
        amount: Option<Kopecks>,
    },
    /// The gateway confirms the money is taken (orderStatus 2); `at` is the bank's own time of
    /// the payment (depositedDate, else authDateTime), which the same-day reversal rule uses.
    PaymentConfirmed {
        deposited: Kopecks,
        at: Option<DateTime<Utc>>,
    },
    /// A deposit the gateway refused for good, or that did not happen: back to Held.
    DepositFailed {
        why: Reason,
    },
    /// The bank closed the order unpaid.
    Declined {
        why: Reason,
    },
    Expired,
    /// A payment attempt failed; the order stays payable.
    AttemptFailed {
        code: i64,
        why: String,
    },
    /// The shop asked to cancel; decline.do follows.
    CancelRequested,
    /// The bank confirmed the decline of a sale the shop cancelled.
    Cancelled,
    ReversalStarted,
    ReversalConfirmed,
    ReversalFailed {
        why: Reason,
    },
    RefundStarted {
        key: IdempotencyKey,
        amount: Kopecks,
    },
    RefundConfirmed {
        key: IdempotencyKey,
    },
    RefundFailed {
        key: IdempotencyKey,
        why: Reason,
    },
    /// A slip printed again on request: a history line, no change of state.
    Reprinted {
        /// The slip in English (for the log), e.g. "paid slip T-1-261123-0001".
        slip: String,
        /// The same in Russian, e.g. "чек «оплачено» заказа T-1-261123-0001".
        russian: String,
    },
    Attention {
        why: Reason,
    },
    /// The payment link's SMS: a history line, no change of state.
    Sms(crate::orders::event::SmsNote),
    /// After a restore: the bank refunded this much more than the restored order knew of.
    RefundLearned {
        amount: Kopecks,
    },
    /// After a restore: the bank reversed the payment (or the hold).
    ReversalLearned,
    /// A receipt was handed to whoever issues it (no history line: its outcome gets one).
    ReceiptSent {
        id: uuid::Uuid,
    },
    /// A receipt was issued.
    ReceiptIssued {
        id: uuid::Uuid,
        fiscal: Fiscal,
    },
    /// A receipt passed its deadline unissued: «чек не пробит».
    ReceiptLate {
        id: uuid::Uuid,
    },
    /// Issuing a receipt failed this time (`permanent`: a person must act first); no history
    /// line unless permanent, so retries do not fill the history.
    ReceiptProblem {
        id: uuid::Uuid,
        why: String,
        permanent: bool,
        /// The issuer ended this attempt for certain with no document: the next is a new job.
        new_round: bool,
    },
}

impl Input {
    fn name(&self) -> &'static str {
        match self {
            Input::Registered { .. } => "registered",
            Input::RegistrationFailed { .. } => "registration failed",
            Input::HoldConfirmed { .. } => "hold confirmed",
            Input::DepositStarted { .. } => "deposit started",
            Input::PaymentConfirmed { .. } => "payment confirmed",
            Input::DepositFailed { .. } => "deposit failed",
            Input::Declined { .. } => "declined",
            Input::Expired => "expired",
            Input::AttemptFailed { .. } => "attempt failed",
            Input::CancelRequested => "cancel requested",
            Input::Cancelled => "cancelled",
            Input::ReversalStarted => "reversal started",
            Input::ReversalConfirmed => "reversal confirmed",
            Input::ReversalFailed { .. } => "reversal failed",
            Input::RefundStarted { .. } => "refund started",
            Input::RefundConfirmed { .. } => "refund confirmed",
            Input::RefundFailed { .. } => "refund failed",
            Input::Reprinted { .. } => "reprinted",
            Input::Attention { .. } => "attention",
            Input::Sms(_) => "sms",
            Input::RefundLearned { .. } => "refund learned",
            Input::ReversalLearned => "reversal learned",
            Input::ReceiptSent { .. } => "receipt sent",
            Input::ReceiptIssued { .. } => "receipt issued",
            Input::ReceiptLate { .. } => "receipt late",
            Input::ReceiptProblem { .. } => "receipt problem",
        }
    }
}

/// A transition the state machine does not allow, and why: a fault in chasti's own logic, never
/// an answer to a user (their requests are checked by `Order::check_*` first).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input} is not allowed in state {state}: {reason}")]
pub struct TransitionRefused {
    pub state: &'static str,
    pub input: &'static str,
    pub reason: String,
}

/// The next order after `input`, or why it is refused.
pub fn apply(order: &Order, input: Input, now: DateTime<Utc>) -> Result<Order, TransitionRefused> {
    apply_by(order, input, now, None)
}

/// The next order after `input` asked for by `actor` (recorded on the history line).
pub fn apply_by(
    order: &Order,
    input: Input,
    now: DateTime<Utc>,
    actor: Option<&Actor>,
) -> Result<Order, TransitionRefused> {
    let refuse = |reason: &str| TransitionRefused {
        state: order.state.name(),
        input: input.name(),
        reason: reason.to_string(),
    };
    let mut next = order.clone();
    if let Some(step) = receipt_step(&mut next, &input, now) {
        let kind = step.map_err(refuse)?;
        next.version = order.version + 1;
        next.updated_at = now;
        if let Some(kind) = kind {
            next.history.push(Event {
                at: now,
                from: order.state.kind(),
                to: next.state.kind(),
                kind,
                actor: actor.cloned(),
            });
        }
        return Ok(next);
    }
    let kind = match (&order.state, &input) {
        (State::Registering, Input::Registered(bank)) => {
            next.state = State::AwaitingPayment(bank.clone());
            EventKind::Registered
        }
        (State::Registering, Input::RegistrationFailed { why }) => {
            next.state = State::Failed { why: why.clone() };
            EventKind::RegistrationFailed { why: why.clone() }
        }
        (State::AwaitingPayment(bank), Input::HoldConfirmed { at }) => {
            if order.mode != Mode::TwoStage {
                return Err(refuse("a one-stage order cannot be held"));
            }
            next.state = State::Held(bank.clone());
            next.held_at = Some(at.unwrap_or(now));
            EventKind::HoldConfirmed {
                amount: order.amount,
            }
        }
        (State::Held(bank), Input::DepositStarted { amount }) => {
            next.state = State::Depositing(bank.clone());
            next.deposit_asked = *amount;
            match amount {
                Some(part) => EventKind::PartDepositRequested {
                    amount: *part,
                    held: order.amount,
                },
                None => EventKind::DepositRequested,
            }
        }
        (State::Depositing(bank), Input::DepositFailed { why }) => {
            next.state = State::Held(bank.clone());
            EventKind::DepositFailed { why: why.clone() }
        }
        (
            State::AwaitingPayment(bank) | State::Held(bank) | State::Depositing(bank),
            Input::PaymentConfirmed { deposited, at },
        ) => {
            if *deposited != order.deposit_target() {
                return Err(refuse(
                    "the deposited amount differs from the order's amount",
                ));
            }
            if matches!(order.state, State::AwaitingPayment(_)) && order.mode == Mode::TwoStage {
                return Err(refuse("a two-stage order is held before it is paid"));
            }
            next.deposited = *deposited;
            next.paid_at = Some(at.unwrap_or(now));
            next.state = State::Paid(bank.clone());
            EventKind::Paid { amount: *deposited }
        }
        (State::AwaitingPayment(bank), Input::Declined { why }) => {
            next.state = State::Declined {
                bank: bank.clone(),
                why: why.clone(),
            };
            EventKind::Declined { why: why.clone() }
        }
        (State::AwaitingPayment(bank), Input::Expired) => {
            next.state = State::Expired(bank.clone());
            EventKind::Expired
        }
        (State::AwaitingPayment(_), Input::AttemptFailed { code, why }) => {
            next.failed_attempts.push(FailedAttempt {
                at: now,
                code: *code,
                why: why.clone(),
            });
            EventKind::AttemptFailed {
                code: *code,
                why: why.clone(),
            }
        }
        (State::Registering | State::AwaitingPayment(_), Input::CancelRequested) => {
            next.cancel_requested = true;
            EventKind::CancelRequested
        }
        (State::AwaitingPayment(bank), Input::Cancelled) => {
            next.state = State::Cancelled(bank.clone());
            EventKind::Cancelled
        }
        (State::Held(bank) | State::Paid(bank), Input::ReversalStarted) => {
            if order.reversal_attempted {
                return Err(refuse("the gateway allows one reversal attempt"));
            }
            next.reversal_attempted = true;
            next.state = State::Reversing(bank.clone());
            EventKind::ReversalRequested
        }
        (State::Reversing(bank), Input::ReversalConfirmed) => {
            next.state = State::Reversed(bank.clone());
            EventKind::Reversed
        }
        (State::Reversing(bank), Input::ReversalFailed { why }) => {
            next.state = order.settled_state(bank.clone());
            EventKind::ReversalFailed { why: why.clone() }
        }
        (
            State::Paid(bank) | State::PartiallyRefunded(bank),
            Input::RefundStarted { key, amount },
        ) => {
            if order.refunds.iter().any(|r| &r.key == key) {
                return Err(refuse("a refund with this key exists"));
            }
            if amount.is_zero() || *amount > order.refundable() {
                return Err(refuse("the refund is above what is left to refund"));
            }
            next.refunds.push(Refund {
                key: key.clone(),
                amount: *amount,
                status: RefundStatus::Pending,
                requested_at: now,
            });
            next.state = State::Refunding(bank.clone());
            EventKind::RefundRequested {
                key: key.clone(),
                amount: *amount,
            }
        }
        (State::Refunding(bank), Input::RefundConfirmed { key }) => {
            let refund =
                pending_refund(&mut next, key).ok_or_else(|| refuse("no such pending refund"))?;
            refund.status = RefundStatus::Done;
            let amount = refund.amount;
            next.refunded = next
                .refunded
                .checked_add(amount)
                .filter(|total| *total <= next.deposited)
                .ok_or_else(|| refuse("the refunds would exceed the deposited amount"))?;
            next.state = if next.refunded >= next.deposited {
                State::Refunded(bank.clone())
            } else {
                State::PartiallyRefunded(bank.clone())
            };
            EventKind::RefundDone {
                key: key.clone(),
                amount,
            }
        }
        (State::Refunding(bank), Input::RefundFailed { key, why }) => {
            let refund =
                pending_refund(&mut next, key).ok_or_else(|| refuse("no such pending refund"))?;
            refund.status = RefundStatus::Failed { why: why.clone() };
            let amount = refund.amount;
            next.state = next.settled_state(bank.clone());
            EventKind::RefundFailed {
                key: key.clone(),
                amount,
                why: why.clone(),
            }
        }
        (State::Paid(bank) | State::PartiallyRefunded(bank), Input::RefundLearned { amount }) => {
            next.refunded = next
                .refunded
                .checked_add(*amount)
                .filter(|total| !amount.is_zero() && *total <= next.deposited)
                .ok_or_else(|| refuse("the learned refund exceeds what was deposited"))?;
            next.state = if next.refunded >= next.deposited {
                State::Refunded(bank.clone())
            } else {
                State::PartiallyRefunded(bank.clone())
            };
            EventKind::RefundLearned { amount: *amount }
        }
        (State::Paid(bank) | State::Held(bank), Input::ReversalLearned) => {
            next.state = State::Reversed(bank.clone());
            next.reversal_attempted = true;
            EventKind::ReversalLearned
        }
        (_, Input::Sms(note)) => EventKind::Sms(note.clone()),
        (_, Input::Reprinted { slip, russian }) => EventKind::Reprinted {
            slip: slip.clone(),
            russian: russian.clone(),
        },
        (_, Input::Attention { why }) => {
            next.state = State::NeedsAttention {
                why: why.clone(),
                bank: order.state.bank_id().cloned(),
            };
            EventKind::Attention { why: why.clone() }
        }
        _ => return Err(refuse("no such transition")),
    };
    next.version = order.version + 1;
    next.updated_at = now;
    next.history.push(Event {
        at: now,
        from: order.state.kind(),
        to: next.state.kind(),
        kind,
        actor: actor.cloned(),
    });
    Ok(next)
}

/// A receipt's step, in any state of the order: `None` when `input` is not about a receipt;
/// else the history line it adds (none for a handover or a retry), or why it is refused.
fn receipt_step(
    next: &mut Order,
    input: &Input,
    now: DateTime<Utc>,
) -> Option<Result<Option<EventKind>, &'static str>> {
    let id = match input {
        Input::ReceiptSent { id }
        | Input::ReceiptIssued { id, .. }
        | Input::ReceiptLate { id }
        | Input::ReceiptProblem { id, .. } => *id,
        _ => return None,
    };
    let Some(receipt) = next.receipts.iter_mut().find(|r| r.id == id) else {
        return Some(Err("no such receipt"));
    };
    if matches!(receipt.status, ReceiptStatus::Issued(_)) {
        return Some(Err("the receipt is issued already"));
    }
    Some(Ok(match input {
        Input::ReceiptSent { .. } => {
            receipt.status = ReceiptStatus::Sent { at: now };
            None
        }
        Input::ReceiptIssued { fiscal, .. } => {
            receipt.status = ReceiptStatus::Issued(fiscal.clone());
            Some(EventKind::ReceiptIssued {
                kind: receipt.kind,
                amount: receipt.amount,
                document_number: fiscal.document_number,
                sign: fiscal.sign.clone(),
                fn_number: fiscal.fn_number.clone(),
            })
        }
        Input::ReceiptLate { .. } => {
            receipt.late = true;
            Some(EventKind::ReceiptLate {
                kind: receipt.kind,
                amount: receipt.amount,
            })
        }
        Input::ReceiptProblem {
            why,
            permanent,
            new_round,
            ..
        } => {
            receipt.tries = receipt.tries.saturating_add(1);
            if *new_round {
                receipt.round = receipt.round.saturating_add(1);
                receipt.status = ReceiptStatus::Owed;
            }
            receipt.last_problem = Some(why.clone());
            if *permanent {
                receipt.status = ReceiptStatus::Failed { why: why.clone() };
                Some(EventKind::ReceiptFailed {
                    kind: receipt.kind,
                    amount: receipt.amount,
                    why: why.clone(),
                })
            } else {
                None
            }
        }
        _ => None,
    }))
}

fn pending_refund<'a>(order: &'a mut Order, key: &IdempotencyKey) -> Option<&'a mut Refund> {
    order
        .refunds
        .iter_mut()
        .find(|r| &r.key == key && r.status == RefundStatus::Pending)
}

#[cfg(test)]
pub(crate) mod examples;
#[cfg(test)]
pub(crate) mod tests;
