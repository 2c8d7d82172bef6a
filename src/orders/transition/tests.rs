//! The state machine's tests: every allowed step, and the refusals.
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
        actor: None,
        cart: None,
        customer: Default::default(),
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
            at: None,
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
            at: None,
        },
    );
    assert_eq!(o.state, State::Paid(bank()));
    assert_eq!(o.version, 2);
    assert_eq!(
        o.history.len(),
        3,
        "the sale's start, its registration, its payment"
    );
    assert!(o.history[0].text().contains("Продажа"));
    assert_eq!(o.history[2].from, StateKind::AwaitingPayment);
    assert_eq!(o.history[2].to, StateKind::Paid);
}

#[test]
fn two_stage_happy_path() {
    let o = step(&order(Mode::TwoStage), registered());
    let o = step(&o, Input::HoldConfirmed { at: None });
    assert_eq!(o.state.kind(), StateKind::Held);
    let o = step(&o, Input::DepositStarted { amount: None });
    assert_eq!(o.state.kind(), StateKind::Depositing);
    let back = step(
        &o,
        Input::DepositFailed {
            why: crate::orders::Reason::said("7", None),
        },
    );
    assert_eq!(back.state.kind(), StateKind::Held);
    let o = step(
        &o,
        Input::PaymentConfirmed {
            deposited: rub(100),
            at: None,
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
        step(
            &waiting,
            Input::Declined {
                why: crate::orders::Reason::said("x", None)
            }
        )
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
            why: crate::orders::Reason::said("5", Some("Банк отказал".into())),
        },
    );
    assert_eq!(failed.state.kind(), StateKind::Failed);
    assert_eq!(failed.state.bank_id(), None);
    let attention = step(
        &waiting,
        Input::Attention {
            why: crate::orders::Reason::said("odd", None),
        },
    );
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
                at: None,
            },
            "no such transition",
        ),
        (&fresh, Input::Expired, "no such transition"),
        (
            &one_stage_waiting,
            Input::HoldConfirmed { at: None },
            "cannot be held",
        ),
        (
            &two_stage_waiting,
            Input::PaymentConfirmed {
                deposited: rub(100),
                at: None,
            },
            "held before it is paid",
        ),
        (
            &one_stage_waiting,
            Input::PaymentConfirmed {
                deposited: rub(99),
                at: None,
            },
            "differs",
        ),
        (
            &one_stage_waiting,
            Input::DepositStarted { amount: None },
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
            Input::Declined {
                why: crate::orders::Reason::said("x", None),
            },
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
    let failed = step(
        &o,
        Input::ReversalFailed {
            why: crate::orders::Reason::said("7", None),
        },
    );
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
        Input::HoldConfirmed { at: None },
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
fn cancel_attempts_reprints_and_who_did_it() {
    let boss = Actor {
        token: "boss".into(),
        cashier: Some("Иванова".into()),
    };
    let waiting = step(&order(Mode::OneStage), registered());
    let tried = step(
        &waiting,
        Input::AttemptFailed {
            code: 116,
            why: "Недостаточно средств".into(),
        },
    );
    assert_eq!(tried.state.kind(), StateKind::AwaitingPayment);
    assert_eq!(tried.failed_attempts.len(), 1);
    assert!(tried
        .history
        .last()
        .unwrap()
        .text()
        .contains("Недостаточно средств"));
    let asked = apply_by(&tried, Input::CancelRequested, at(12, 0, 0), Some(&boss)).unwrap();
    assert!(asked.cancel_requested);
    assert_eq!(asked.history.last().unwrap().actor.as_ref(), Some(&boss));
    assert_eq!(boss.to_string(), "boss (Иванова)");
    let cancelled = step(&asked, Input::Cancelled);
    assert_eq!(cancelled.state.kind(), StateKind::Cancelled);
    assert!(!cancelled.state.is_open());
    assert!(cancelled.check_cancel().is_err());
    let reprinted = step(
        &cancelled,
        Input::Reprinted {
            slip: "x".into(),
            russian: "x".into(),
        },
    );
    assert_eq!(
        reprinted.state, cancelled.state,
        "a reprint changes no state"
    );
    assert_eq!(reprinted.version, cancelled.version + 1);
    let paid = paid_one_stage();
    assert!(matches!(
        paid.check_cancel(),
        Err(ActionError::NotCancellable(_))
    ));
    assert!(apply(&paid, Input::Cancelled, at(12, 0, 0)).is_err());
}

#[test]
fn the_banks_time_of_payment_is_kept() {
    let bank_time = at(20, 59, 50); // 23:59:50 MSK
    let waiting = step(&order(Mode::OneStage), registered());
    let paid = apply(
        &waiting,
        Input::PaymentConfirmed {
            deposited: rub(100),
            at: Some(bank_time),
        },
        at(21, 0, 10), // learned at 00:00:10 MSK
    )
    .unwrap();
    assert_eq!(paid.paid_at, Some(bank_time));
    assert_eq!(
        paid.check_reversal(at(21, 0, 10)),
        Err(ActionError::ReversalDayOver),
        "paid yesterday by the bank's clock: refund, never a reversal the bank refuses"
    );
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
    assert_eq!(
        r1.refundable(),
        Kopecks::ZERO,
        "nothing more while a refund is under way"
    );
    assert_eq!(
        r1.check_refund(None),
        Err(ActionError::RefundUnderWay { pending: rub(30) })
    );
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
            why: crate::orders::Reason::said("5", None),
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
    let again = done.check_refund(None).unwrap_err();
    assert_eq!(
        again,
        ActionError::AlreadyRefunded {
            refunded: rub(100),
            paid: rub(100)
        }
    );
    assert_eq!(
        again.to_string(),
        "Заказ уже возвращён полностью: возвращено 100,00 ₽ из 100,00 ₽. Возвращать больше нечего."
    );
}
