//! The only place states change: `apply(order, input, now)` gives the next order or says why
//! not. Pure; the engine writes what it returns.

use chrono::{DateTime, Utc};

use super::order::{Event, Mode, Order, Refund, RefundStatus};
use super::state::{AtBank, State};
use crate::domain::IdempotencyKey;
use crate::money::Kopecks;

/// What happened to an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Registered(AtBank),
    RegistrationFailed {
        why: String,
        cashier: String,
    },
    /// The gateway confirms a hold (orderStatus 1).
    HoldConfirmed,
    DepositStarted,
    /// The gateway confirms the money is taken (orderStatus 2).
    PaymentConfirmed {
        deposited: Kopecks,
    },
    /// A deposit the gateway refused for good, or that did not happen: back to Held.
    DepositFailed {
        why: String,
    },
    Declined {
        why: String,
    },
    Expired,
    ReversalStarted,
    ReversalConfirmed,
    ReversalFailed {
        why: String,
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
        why: String,
    },
    Attention {
        why: String,
    },
}

impl Input {
    fn name(&self) -> &'static str {
        match self {
            Input::Registered { .. } => "registered",
            Input::RegistrationFailed { .. } => "registration failed",
            Input::HoldConfirmed => "hold confirmed",
            Input::DepositStarted => "deposit started",
            Input::PaymentConfirmed { .. } => "payment confirmed",
            Input::DepositFailed { .. } => "deposit failed",
            Input::Declined { .. } => "declined",
            Input::Expired => "expired",
            Input::ReversalStarted => "reversal started",
            Input::ReversalConfirmed => "reversal confirmed",
            Input::ReversalFailed { .. } => "reversal failed",
            Input::RefundStarted { .. } => "refund started",
            Input::RefundConfirmed { .. } => "refund confirmed",
            Input::RefundFailed { .. } => "refund failed",
            Input::Attention { .. } => "attention",
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
    let refuse = |reason: &str| TransitionRefused {
        state: order.state.name(),
        input: input.name(),
        reason: reason.to_string(),
    };
    let mut next = order.clone();
    let what: String;
    match (&order.state, &input) {
        (State::Registering, Input::Registered(bank)) => {
            what = format!("registered at the gateway as {}", bank.id);
            next.state = State::AwaitingPayment(bank.clone());
        }
        (State::Registering, Input::RegistrationFailed { why, cashier }) => {
            what = format!("registration failed: {why}");
            next.state = State::Failed {
                why: why.clone(),
                cashier: cashier.clone(),
            };
        }
        (State::AwaitingPayment(bank), Input::HoldConfirmed) => {
            if order.mode != Mode::TwoStage {
                return Err(refuse("a one-stage order cannot be held"));
            }
            next.state = State::Held(bank.clone());
            next.held_at = Some(now);
            what = "the gateway holds the amount".into();
        }
        (State::Held(bank), Input::DepositStarted) => {
            next.state = State::Depositing(bank.clone());
            what = "deposit requested".into();
        }
        (State::Depositing(bank), Input::DepositFailed { why }) => {
            next.state = State::Held(bank.clone());
            what = format!("deposit did not happen: {why}");
        }
        (
            State::AwaitingPayment(bank) | State::Held(bank) | State::Depositing(bank),
            Input::PaymentConfirmed { deposited },
        ) => {
            if *deposited != order.amount {
                return Err(refuse(
                    "the deposited amount differs from the order's amount",
                ));
            }
            if matches!(order.state, State::AwaitingPayment(_)) && order.mode == Mode::TwoStage {
                return Err(refuse("a two-stage order is held before it is paid"));
            }
            next.deposited = *deposited;
            next.paid_at = Some(now);
            next.state = State::Paid(bank.clone());
            what = format!("paid: {deposited} deposited");
        }
        (State::AwaitingPayment(bank), Input::Declined { why }) => {
            next.state = State::Declined {
                bank: bank.clone(),
                why: why.clone(),
            };
            what = format!("declined: {why}");
        }
        (State::AwaitingPayment(bank), Input::Expired) => {
            next.state = State::Expired(bank.clone());
            what = "the payment link expired unpaid".into();
        }
        (State::Held(bank) | State::Paid(bank), Input::ReversalStarted) => {
            if order.reversal_attempted {
                return Err(refuse("the gateway allows one reversal attempt"));
            }
            next.reversal_attempted = true;
            next.state = State::Reversing(bank.clone());
            what = "reversal requested".into();
        }
        (State::Reversing(bank), Input::ReversalConfirmed) => {
            next.state = State::Reversed(bank.clone());
            what = "reversed".into();
        }
        (State::Reversing(bank), Input::ReversalFailed { why }) => {
            next.state = order.settled_state(bank.clone());
            what = format!("reversal failed: {why}");
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
            what = format!("refund {key} of {amount} requested");
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
            what = format!("refund {key} of {amount} done");
        }
        (State::Refunding(bank), Input::RefundFailed { key, why }) => {
            let refund =
                pending_refund(&mut next, key).ok_or_else(|| refuse("no such pending refund"))?;
            refund.status = RefundStatus::Failed { why: why.clone() };
            next.state = next.settled_state(bank.clone());
            what = format!("refund {key} failed: {why}");
        }
        (_, Input::Attention { why }) => {
            next.state = State::NeedsAttention {
                why: why.clone(),
                bank: order.state.bank_id().cloned(),
            };
            what = format!("needs attention: {why}");
        }
        _ => return Err(refuse("no such transition")),
    }
    next.version = order.version + 1;
    next.updated_at = now;
    next.history.push(Event {
        at: now,
        from: order.state.kind(),
        to: next.state.kind(),
        what,
    });
    Ok(next)
}

fn pending_refund<'a>(order: &'a mut Order, key: &IdempotencyKey) -> Option<&'a mut Refund> {
    order
        .refunds
        .iter_mut()
        .find(|r| &r.key == key && r.status == RefundStatus::Pending)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::{GatewayOrderId, OrderNumber, PaymentUrl, TillId};
    use crate::orders::order::{ActionError, NewOrder};
    use crate::orders::state::StateKind;
    use chrono::TimeZone;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, h, m, s).unwrap()
    }

    fn rub(r: u64) -> Kopecks {
        Kopecks::from_roubles(r).unwrap()
    }

    fn key(k: &str) -> IdempotencyKey {
        IdempotencyKey::parse(k).unwrap()
    }

    pub(crate) fn bank() -> AtBank {
        AtBank {
            id: GatewayOrderId::parse("g").unwrap(),
            link: PaymentUrl::parse("https://pay.example/g").unwrap(),
        }
    }

    pub(crate) fn order(mode: Mode) -> Order {
        Order::registering(NewOrder {
            id: uuid::Uuid::now_v7(),
            order_number: OrderNumber::parse("S-1-261123-0001").unwrap(),
            amount: rub(100),
            mode,
            description: None,
            till: TillId::parse("1").unwrap(),
            cashier: None,
            idempotency_key: None,
            created_at: at(10, 0, 0),
            link_expires_at: at(10, 20, 0),
        })
    }

    fn registered() -> Input {
        Input::Registered(bank())
    }

    fn step(o: &Order, input: Input) -> Order {
        apply(o, input, at(12, 0, 0)).unwrap()
    }

    fn paid_one_stage() -> Order {
        let o = step(&order(Mode::OneStage), registered());
        step(
            &o,
            Input::PaymentConfirmed {
                deposited: rub(100),
            },
        )
    }

    #[test]
    fn one_stage_happy_path() {
        let o = step(&order(Mode::OneStage), registered());
        assert_eq!(o.state, State::AwaitingPayment(bank()));
        let o = step(
            &o,
            Input::PaymentConfirmed {
                deposited: rub(100),
            },
        );
        assert_eq!(o.state, State::Paid(bank()));
        assert_eq!(o.version, 2);
        assert_eq!(o.history.len(), 2);
        assert_eq!(o.history[1].from, StateKind::AwaitingPayment);
        assert_eq!(o.history[1].to, StateKind::Paid);
    }

    #[test]
    fn two_stage_happy_path() {
        let o = step(&order(Mode::TwoStage), registered());
        let o = step(&o, Input::HoldConfirmed);
        assert_eq!(o.state.kind(), StateKind::Held);
        let o = step(&o, Input::DepositStarted);
        assert_eq!(o.state.kind(), StateKind::Depositing);
        let back = step(&o, Input::DepositFailed { why: "7".into() });
        assert_eq!(back.state.kind(), StateKind::Held);
        let o = step(
            &o,
            Input::PaymentConfirmed {
                deposited: rub(100),
            },
        );
        assert_eq!(o.state.kind(), StateKind::Paid);
        assert_eq!(o.deposited, rub(100));
        assert_eq!(o.state.bank(), Some(&bank()), "the bank's id travels along");
    }

    #[test]
    fn endings_before_payment() {
        let waiting = step(&order(Mode::OneStage), registered());
        assert_eq!(
            step(&waiting, Input::Declined { why: "x".into() })
                .state
                .kind(),
            StateKind::Declined
        );
        assert_eq!(
            step(&waiting, Input::Expired).state.kind(),
            StateKind::Expired
        );
        let failed = step(
            &order(Mode::OneStage),
            Input::RegistrationFailed {
                why: "5".into(),
                cashier: "Банк отказал".into(),
            },
        );
        assert_eq!(failed.state.kind(), StateKind::Failed);
        assert_eq!(failed.state.bank_id(), None);
        let attention = step(&waiting, Input::Attention { why: "odd".into() });
        assert_eq!(attention.state.name(), "needs_attention");
        assert_eq!(
            attention.state.bank_id(),
            Some(&bank().id),
            "attention keeps the id"
        );
    }

    #[test]
    fn refused_transitions_say_why() {
        let fresh = order(Mode::OneStage);
        let one_stage_waiting = step(&fresh, registered());
        let two_stage_waiting = step(&order(Mode::TwoStage), registered());
        let paid = paid_one_stage();
        let cases: Vec<(&Order, Input, &str)> = vec![
            (
                &fresh,
                Input::PaymentConfirmed {
                    deposited: rub(100),
                },
                "no such transition",
            ),
            (&fresh, Input::Expired, "no such transition"),
            (&one_stage_waiting, Input::HoldConfirmed, "cannot be held"),
            (
                &two_stage_waiting,
                Input::PaymentConfirmed {
                    deposited: rub(100),
                },
                "held before it is paid",
            ),
            (
                &one_stage_waiting,
                Input::PaymentConfirmed { deposited: rub(99) },
                "differs",
            ),
            (
                &one_stage_waiting,
                Input::DepositStarted,
                "no such transition",
            ),
            (
                &one_stage_waiting,
                Input::ReversalStarted,
                "no such transition",
            ),
            (&paid, registered(), "no such transition"),
            (
                &paid,
                Input::Declined { why: "x".into() },
                "no such transition",
            ),
            (
                &paid,
                Input::RefundStarted {
                    key: key("k"),
                    amount: rub(101),
                },
                "above what is left",
            ),
            (
                &paid,
                Input::RefundConfirmed { key: key("k") },
                "no such transition",
            ),
        ];
        for (o, input, reason) in cases {
            let err = apply(o, input.clone(), at(12, 0, 0)).unwrap_err();
            assert!(
                err.reason.contains(reason),
                "{input:?} from {}: {err}",
                o.state.name()
            );
        }
    }

    #[test]
    fn a_reversal_is_tried_once() {
        let o = step(&paid_one_stage(), Input::ReversalStarted);
        assert_eq!(o.state.kind(), StateKind::Reversing);
        let failed = step(&o, Input::ReversalFailed { why: "7".into() });
        assert_eq!(failed.state.kind(), StateKind::Paid);
        assert!(apply(&failed, Input::ReversalStarted, at(12, 0, 0)).is_err());
        assert_eq!(
            failed.check_reversal(at(12, 0, 0)),
            Err(ActionError::ReversalAlreadyTried)
        );
        let reversed = step(&o, Input::ReversalConfirmed);
        assert_eq!(reversed.state.kind(), StateKind::Reversed);
        assert_eq!(
            reversed.net_paid(),
            Kopecks::ZERO,
            "a reversed payment keeps nothing"
        );
        assert_eq!(failed.net_paid(), rub(100));
    }

    #[test]
    fn same_day_reversal_ends_at_moscow_midnight() {
        // Paid at 12:00 UTC = 15:00 MSK. 20:59:59 UTC is 23:59:59 MSK; 21:00:00 UTC is 00:00 MSK.
        let paid = paid_one_stage();
        assert_eq!(paid.check_reversal(at(20, 59, 59)), Ok(()));
        assert_eq!(
            paid.check_reversal(at(21, 0, 0)),
            Err(ActionError::ReversalDayOver)
        );
        // A hold can be reversed any day until it is deposited.
        let held = step(
            &step(&order(Mode::TwoStage), registered()),
            Input::HoldConfirmed,
        );
        assert_eq!(
            held.check_reversal(at(23, 0, 0) + chrono::Duration::days(3)),
            Ok(())
        );
        let waiting = step(&order(Mode::OneStage), registered());
        assert!(matches!(
            waiting.check_reversal(at(12, 0, 0)),
            Err(ActionError::NotReversible(_))
        ));
    }

    #[test]
    fn refunds_never_exceed_what_was_deposited() {
        let paid = paid_one_stage();
        assert_eq!(paid.check_refund(None), Ok(rub(100)));
        assert_eq!(paid.check_refund(Some(rub(30))), Ok(rub(30)));
        assert!(matches!(
            paid.check_refund(Some(rub(101))),
            Err(ActionError::RefundTooLarge { .. })
        ));

        let r1 = step(
            &paid,
            Input::RefundStarted {
                key: key("a"),
                amount: rub(30),
            },
        );
        assert_eq!(r1.state.kind(), StateKind::Refunding);
        assert_eq!(r1.refundable(), rub(70), "a pending refund counts");
        let r1 = step(&r1, Input::RefundConfirmed { key: key("a") });
        assert_eq!(r1.state.kind(), StateKind::PartiallyRefunded);
        assert_eq!(r1.refunded, rub(30));
        assert!(
            apply(
                &r1,
                Input::RefundStarted {
                    key: key("a"),
                    amount: rub(1)
                },
                at(12, 0, 0)
            )
            .is_err(),
            "a key is used once"
        );

        let r2 = step(
            &r1,
            Input::RefundStarted {
                key: key("b"),
                amount: rub(70),
            },
        );
        let failed = step(
            &r2,
            Input::RefundFailed {
                key: key("b"),
                why: "5".into(),
            },
        );
        assert_eq!(failed.state.kind(), StateKind::PartiallyRefunded);
        assert_eq!(failed.refundable(), rub(70));
        let r3 = step(
            &failed,
            Input::RefundStarted {
                key: key("c"),
                amount: rub(70),
            },
        );
        let done = step(&r3, Input::RefundConfirmed { key: key("c") });
        assert_eq!(done.state.kind(), StateKind::Refunded);
        assert_eq!(done.refundable(), Kopecks::ZERO);
        assert!(matches!(
            done.check_refund(None),
            Err(ActionError::NotRefundable(_))
        ));
    }
}
