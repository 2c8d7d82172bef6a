//! What the gateway's answer (getOrderStatusExtended) means for an order in each local state.
//! Pure: the engine asks, applies the inputs, and carries out the follow-up.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::order::{Mode, Order};
use super::reason::Reason;
use super::state::StateKind;
use super::transition::Input;
use crate::gateway::{ActionCode, OrderStatus, OrderStatusReport};

/// What the engine must do at the gateway after applying the inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowUp {
    None,
    /// Capture the hold (two-stage, auto deposit, or a deposit that did not happen yet).
    Deposit,
    /// Close an unpaid order whose link ran out (decline.do), then mark it expired.
    Decline,
    /// The shop asked to cancel: decline.do, then mark it cancelled.
    Cancel,
}

/// How many payment attempts the bank allows an order.
pub const ATTEMPTS_ALLOWED: usize = 3;

/// The failed payment attempts the bank's answer tells of that the order does not have yet.
/// `reported` callbacks each said an attempt failed since the last look: each is an attempt,
/// even when the bank's reason is the same as the last one's (the status reply does not count
/// attempts, so without callbacks a failure like the last recorded is taken to be that one).
/// Never more than the bank allows, so replayed callbacks cannot grow the record.
fn new_failed_attempts(order: &Order, report: &OrderStatusReport, reported: u32) -> Vec<Input> {
    let Some(code) = report.action_code.filter(|c| c.is_failure()) else {
        return Vec::new();
    };
    let why = report
        .action_code_description
        .clone()
        .filter(|d| !d.trim().is_empty())
        .unwrap_or_else(|| format!("код банка {code}"));
    let last = order.failed_attempts.last();
    let like_last = last.is_some_and(|a| a.code == code.code() && a.why == why);
    let new = match reported {
        0 if like_last => 0,
        0 => 1,
        n => usize::try_from(n).unwrap_or(usize::MAX),
    };
    let room = ATTEMPTS_ALLOWED.saturating_sub(order.failed_attempts.len());
    (0..new.min(room))
        .map(|_| Input::AttemptFailed {
            code: code.code(),
            why: why.clone(),
        })
        .collect()
}

/// Deposits of one hold tried at most this many times before a person is asked to look.
pub const DEPOSIT_TRIES: usize = 5;
/// The pause after the first failed deposit; it doubles after each further one.
const DEPOSIT_PAUSE: Duration = Duration::from_secs(30);
/// The longest pause between two deposits.
const DEPOSIT_PAUSE_MAX: Duration = Duration::from_secs(30 * 60);

#[derive(Debug, Clone, PartialEq, Eq)]
enum DepositDue {
    Now,
    Later,
    GiveUp { tries: usize, last: Reason },
}

/// Whether an automatic deposit of a hold may be tried now, from the deposits that failed since
/// the hold: at once the first time, then after 30 s, 1, 2, 4 min…, at most [`DEPOSIT_TRIES`].
fn deposit_due(order: &Order, now: DateTime<Utc>) -> DepositDue {
    use super::order::EventKind;
    let since_hold = order
        .history
        .iter()
        .rposition(|e| matches!(e.kind, EventKind::HoldConfirmed { .. }))
        .map_or(&order.history[..], |i| &order.history[i..]);
    let failed: Vec<_> = since_hold
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::DepositFailed { why } => Some((e.at, why)),
            _ => None,
        })
        .collect();
    let Some((last_at, last_why)) = failed.last() else {
        return DepositDue::Now;
    };
    if failed.len() >= DEPOSIT_TRIES {
        return DepositDue::GiveUp {
            tries: failed.len(),
            last: (*last_why).clone(),
        };
    }
    let doublings = u32::try_from(failed.len() - 1).unwrap_or(u32::MAX).min(16);
    let pause = DEPOSIT_PAUSE
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(DEPOSIT_PAUSE_MAX);
    if past(*last_at, pause, now) {
        DepositDue::Now
    } else {
        DepositDue::Later
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub auto_deposit: bool,
    /// After the link's expiry, how long to keep waiting before closing the order.
    pub expiry_grace: Duration,
    /// A hold not deposited within this becomes NeedsAttention (the bank's hold lasts ~7 days).
    pub hold_max: Duration,
}

fn attention(why: Reason) -> (Vec<Input>, FollowUp) {
    (vec![Input::Attention { why }], FollowUp::None)
}

fn nothing() -> (Vec<Input>, FollowUp) {
    (Vec::new(), FollowUp::None)
}

fn past(at: DateTime<Utc>, by: Duration, now: DateTime<Utc>) -> bool {
    now >= at + chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX)
}

/// Decides the inputs and the follow-up for `order` given what the gateway says.
pub fn decide(
    order: &Order,
    report: &OrderStatusReport,
    now: DateTime<Utc>,
    policy: &Policy,
) -> (Vec<Input>, FollowUp) {
    decide_reported(order, report, now, policy, 0)
}

/// [`decide`] after `failures` callbacks each reported a failed payment attempt.
pub fn decide_reported(
    order: &Order,
    report: &OrderStatusReport,
    now: DateTime<Utc>,
    policy: &Policy,
    failures: u32,
) -> (Vec<Input>, FollowUp) {
    use OrderStatus as G;
    let Some(status) = report.order_status else {
        return attention(Reason::NoStatus);
    };
    let deposited = report.deposited();
    let paid = Input::PaymentConfirmed {
        deposited,
        at: report.paid_at(),
    };
    let held = Input::HoldConfirmed {
        at: report.authorized_at(),
    };
    // A partial deposit takes what the manager asked; anything else is not what chasti asked.
    let wrong_amount = deposited != order.deposit_target();
    match (order.state.kind(), status) {
        // The order is being registered: the engine handles it by number, not here.
        (StateKind::Registering, _) => nothing(),

        (StateKind::AwaitingPayment, G::Registered | G::Authenticating) => {
            let attempt = new_failed_attempts(order, report, failures);
            if order.cancel_requested {
                // The shop asked to cancel and the decline has not gone through yet.
                (attempt, FollowUp::Cancel)
            } else if past(order.link_expires_at, policy.expiry_grace, now) {
                (attempt, FollowUp::Decline)
            } else {
                (attempt, FollowUp::None)
            }
        }
        (StateKind::AwaitingPayment, G::Held) => match order.mode {
            Mode::TwoStage => {
                let follow = if policy.auto_deposit {
                    FollowUp::Deposit
                } else {
                    FollowUp::None
                };
                (vec![held], follow)
            }
            Mode::OneStage => attention(Reason::HeldOneStage),
        },
        (StateKind::AwaitingPayment, G::Deposited) if wrong_amount => {
            attention(Reason::TakenDiffers {
                taken: deposited,
                amount: order.amount,
            })
        }
        (StateKind::AwaitingPayment, G::Deposited) => match order.mode {
            Mode::OneStage => (vec![paid], FollowUp::None),
            // The hold was missed and the money already taken: both steps at once.
            Mode::TwoStage => (vec![held, paid], FollowUp::None),
        },
        (StateKind::AwaitingPayment, G::Declined) if order.cancel_requested => {
            (vec![Input::Cancelled], FollowUp::None)
        }
        (StateKind::AwaitingPayment, G::Declined) => {
            let expired = report.action_code == Some(ActionCode::SessionExpired)
                || now >= order.link_expires_at;
            if report.action_code == Some(ActionCode::AttemptsExhausted) {
                // The attempts ran out, so all of them were made: those not recorded yet (the
                // last at least) get the bank's reason, which now says only that they ran out.
                let all = u32::try_from(ATTEMPTS_ALLOWED).unwrap_or(u32::MAX);
                let mut inputs = new_failed_attempts(order, report, all);
                inputs.push(Input::Declined {
                    why: Reason::AttemptsExhausted,
                });
                (inputs, FollowUp::None)
            } else if expired {
                (vec![Input::Expired], FollowUp::None)
            } else {
                let why = Reason::declined(
                    report.action_code.map(|c| c.code()),
                    report.action_code_description.as_deref(),
                );
                (vec![Input::Declined { why }], FollowUp::None)
            }
        }

        (StateKind::Held, G::Held) => {
            if policy.auto_deposit {
                match deposit_due(order, now) {
                    DepositDue::Now => (Vec::new(), FollowUp::Deposit),
                    DepositDue::Later => nothing(),
                    DepositDue::GiveUp { tries, last } => attention(Reason::DepositGaveUp {
                        tries: u32::try_from(tries).unwrap_or(u32::MAX),
                        last: Box::new(last),
                    }),
                }
            } else if past(
                order.held_at.unwrap_or(order.updated_at),
                policy.hold_max,
                now,
            ) {
                attention(Reason::HoldNotDeposited)
            } else {
                nothing()
            }
        }
        (StateKind::Held | StateKind::Depositing, G::Deposited) if wrong_amount => {
            attention(Reason::TakenDiffers {
                taken: deposited,
                amount: order.amount,
            })
        }
        (StateKind::Held | StateKind::Depositing, G::Deposited) => (vec![paid], FollowUp::None),
        (StateKind::Depositing, G::Held) => (Vec::new(), FollowUp::Deposit),

        (StateKind::Reversing, G::Reversed) => (vec![Input::ReversalConfirmed], FollowUp::None),
        (StateKind::Reversing, G::Held | G::Deposited) => (
            vec![Input::ReversalFailed {
                why: Reason::StillHeld,
            }],
            FollowUp::None,
        ),

        (StateKind::Refunding, G::Refunded | G::Deposited) => {
            let Some(pending) = order.pending_refund() else {
                return attention(Reason::NoPendingRefund);
            };
            let key = pending.key.clone();
            let at_bank = report.refunded();
            match order.refunded.checked_add(pending.amount) {
                Some(expected) if at_bank == expected => {
                    (vec![Input::RefundConfirmed { key }], FollowUp::None)
                }
                _ if at_bank == order.refunded => {
                    let why = Reason::NoNewRefund;
                    (vec![Input::RefundFailed { key, why }], FollowUp::None)
                }
                expected => attention(Reason::RefundedDiffers { at_bank, expected }),
            }
        }

        (StateKind::Paid | StateKind::PartiallyRefunded, G::Deposited | G::Refunded) => {
            if report.refunded() != order.refunded {
                attention(Reason::RefundedOutside {
                    at_bank: report.refunded(),
                    made: order.refunded,
                })
            } else {
                nothing()
            }
        }
        (StateKind::Paid | StateKind::PartiallyRefunded | StateKind::Held, G::Reversed) => {
            attention(Reason::ReversedOutside)
        }

        // Closed orders: only money the gateway moved after chasti closed them matters.
        (
            StateKind::Declined | StateKind::Expired | StateKind::Failed | StateKind::Cancelled,
            G::Held | G::Deposited,
        ) => attention(Reason::PaidAfterClose),
        // The shop cancelled it and the bank declined it: the same fact, said twice.
        (StateKind::Cancelled, G::Declined) => nothing(),
        (StateKind::Reversed, G::Reversed) | (StateKind::Refunded, G::Refunded) => nothing(),
        (StateKind::Declined | StateKind::Expired | StateKind::Failed, _) => nothing(),
        (StateKind::NeedsAttention, _) => nothing(),

        (state, status) => attention(Reason::StatusDisagrees {
            state,
            order_status: i64::from(status.code()),
        }),
    }
}

/// After a restore from a backup: the steps that bring an order the backup held to what the
/// bank says it became since (paid, refunded, reversed), one or two at a time; empty when the
/// ordinary rules apply. Outside a restore the same reports mean money moved without chasti,
/// which `decide` leaves to a person.
pub fn learn_after_restore(order: &Order, report: &OrderStatusReport) -> Vec<Input> {
    use OrderStatus as G;
    let Some(status) = report.order_status else {
        return Vec::new();
    };
    let held = Input::HoldConfirmed {
        at: report.authorized_at(),
    };
    // A reversal after a payment may report nothing deposited: the order's amount was paid.
    let paid = Input::PaymentConfirmed {
        deposited: order.amount,
        at: report.paid_at(),
    };
    let taken = report.deposited() == order.amount;
    match (order.state.kind(), status, order.mode) {
        (StateKind::AwaitingPayment, G::Deposited | G::Refunded, Mode::OneStage) if taken => {
            vec![paid]
        }
        (StateKind::AwaitingPayment, G::Deposited | G::Refunded, Mode::TwoStage) if taken => {
            vec![held, paid]
        }
        (StateKind::AwaitingPayment, G::Reversed, Mode::OneStage) => {
            vec![paid, Input::ReversalLearned]
        }
        (StateKind::AwaitingPayment, G::Reversed, Mode::TwoStage) => {
            vec![held, Input::ReversalLearned]
        }
        (StateKind::Held, G::Deposited | G::Refunded, _) if taken => vec![paid],
        (StateKind::Paid | StateKind::Held, G::Reversed, _) => vec![Input::ReversalLearned],
        (StateKind::Paid | StateKind::PartiallyRefunded, G::Deposited | G::Refunded, _) => {
            match report.refunded().checked_sub(order.refunded) {
                Some(more) if !more.is_zero() => vec![Input::RefundLearned { amount: more }],
                _ => Vec::new(),
            }
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests;
