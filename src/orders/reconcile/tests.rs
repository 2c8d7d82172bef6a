use super::*;
use crate::gateway::{PaymentAmountInfo, PaymentState};
use crate::money::Kopecks;
use crate::orders::state::State;
use crate::orders::transition::tests::bank;
use chrono::TimeZone;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
}

fn policy(auto: bool) -> Policy {
    Policy {
        auto_deposit: auto,
        expiry_grace: Duration::from_secs(120),
        hold_max: Duration::from_secs(6 * 86_400),
    }
}

fn order(mode: Mode, state: fn(crate::orders::AtBank) -> State) -> Order {
    let mut o = Order::registering(crate::orders::order::NewOrder {
        id: uuid::Uuid::now_v7(),
        order_number: crate::domain::OrderNumber::parse("S-1-261123-0001").unwrap(),
        amount: Kopecks::new(10_000).unwrap(),
        mode,
        description: None,
        till: crate::domain::TillId::parse("1").unwrap(),
        cashier: None,
        idempotency_key: None,
        created_at: now(),
        link_expires_at: now() + chrono::Duration::minutes(20),
        actor: None,
        cart: None,
        customer: Default::default(),
    });
    o.state = state(bank());
    o.version = 1;
    o
}

fn report(status: OrderStatus, deposited: u64, refunded: u64) -> OrderStatusReport {
    OrderStatusReport {
        order_number: "n".into(),
        order_status: Some(status),
        action_code: Some(ActionCode::Success),
        action_code_description: None,
        amount: Kopecks::new(10_000).unwrap(),
        currency: None,
        date: None,
        auth_date_time: None,
        deposited_date: None,
        order_description: None,
        payment_amount_info: Some(PaymentAmountInfo {
            approved_amount: Kopecks::new(10_000).unwrap(),
            deposited_amount: Kopecks::new(deposited).unwrap(),
            refunded_amount: Kopecks::new(refunded).unwrap(),
            payment_state: PaymentState::Unknown,
        }),
        merchant_order_params: Vec::new(),
        attributes: Vec::new(),
        binding_info: None,
        card_auth_info: None,
    }
}

#[test]
fn a_hold_is_deposited_once_confirmed_when_auto() {
    let o = order(Mode::TwoStage, State::AwaitingPayment);
    let (inputs, follow) = decide(&o, &report(OrderStatus::Held, 0, 0), now(), &policy(true));
    assert_eq!(inputs, vec![Input::HoldConfirmed { at: None }]);
    assert_eq!(follow, FollowUp::Deposit);
    let (_, manual) = decide(&o, &report(OrderStatus::Held, 0, 0), now(), &policy(false));
    assert_eq!(manual, FollowUp::None);
}

#[test]
fn a_deposit_that_did_not_happen_is_retried_and_one_that_did_is_not() {
    let o = order(Mode::TwoStage, State::Depositing);
    assert_eq!(
        decide(&o, &report(OrderStatus::Held, 0, 0), now(), &policy(true)).1,
        FollowUp::Deposit
    );
    let (inputs, follow) = decide(
        &o,
        &report(OrderStatus::Deposited, 10_000, 0),
        now(),
        &policy(true),
    );
    assert!(matches!(inputs[0], Input::PaymentConfirmed { .. }));
    assert_eq!(follow, FollowUp::None);
}

#[test]
fn money_chasti_did_not_ask_for_needs_attention() {
    let cases = [
        (
            order(Mode::OneStage, State::AwaitingPayment),
            report(OrderStatus::Held, 0, 0),
        ),
        (
            order(Mode::OneStage, State::AwaitingPayment),
            report(OrderStatus::Deposited, 9_999, 0),
        ),
        (
            order(Mode::OneStage, State::Paid),
            report(OrderStatus::Reversed, 0, 0),
        ),
        (
            order(Mode::OneStage, State::Paid),
            report(OrderStatus::Refunded, 10_000, 500),
        ),
        (
            order(Mode::OneStage, State::Expired),
            report(OrderStatus::Deposited, 10_000, 0),
        ),
    ];
    for (o, r) in cases {
        let (inputs, _) = decide(&o, &r, now(), &policy(true));
        assert!(
            matches!(inputs.as_slice(), [Input::Attention { .. }]),
            "{:?} vs {:?}: {inputs:?}",
            o.state,
            r.order_status
        );
    }
}

#[test]
fn an_unpaid_order_is_closed_after_expiry_and_grace() {
    let mut o = order(Mode::OneStage, State::AwaitingPayment);
    let r = report(OrderStatus::Registered, 0, 0);
    assert_eq!(decide(&o, &r, now(), &policy(true)).1, FollowUp::None);
    o.link_expires_at = now() - chrono::Duration::seconds(121);
    assert_eq!(decide(&o, &r, now(), &policy(true)).1, FollowUp::Decline);
    let mut declined = report(OrderStatus::Declined, 0, 0);
    declined.action_code = Some(ActionCode::SessionExpired);
    assert_eq!(
        decide(&o, &declined, now(), &policy(true)).0,
        vec![Input::Expired]
    );
}

#[test]
fn an_old_manual_hold_needs_attention() {
    let mut o = order(Mode::TwoStage, State::Held);
    o.held_at = Some(now() - chrono::Duration::days(5));
    let held = report(OrderStatus::Held, 0, 0);
    assert_eq!(decide(&o, &held, now(), &policy(false)), nothing());
    o.held_at = Some(now() - chrono::Duration::days(6) - chrono::Duration::seconds(1));
    let (inputs, _) = decide(&o, &held, now(), &policy(false));
    assert!(
        matches!(inputs.as_slice(), [Input::Attention { why }] if why.what().contains("7 days")),
        "{inputs:?}"
    );
}

#[test]
fn failed_attempts_are_recorded_once_and_a_cancel_follows_the_bank() {
    let mut o = order(Mode::OneStage, State::AwaitingPayment);
    let mut r = report(OrderStatus::Registered, 0, 0);
    r.action_code = Some(ActionCode::from_code(116));
    r.action_code_description = Some("Недостаточно средств".into());
    let (inputs, follow) = decide(&o, &r, now(), &policy(true));
    assert!(matches!(
        inputs.as_slice(),
        [Input::AttemptFailed { code: 116, .. }]
    ));
    assert_eq!(follow, FollowUp::None);
    o.failed_attempts.push(crate::orders::order::FailedAttempt {
        at: now(),
        code: 116,
        why: "Недостаточно средств".into(),
    });
    assert_eq!(
        decide(&o, &r, now(), &policy(true)),
        nothing(),
        "the same attempt again"
    );
    r.action_code = Some(ActionCode::IssuerRefused3ds);
    r.action_code_description = Some("Отказ эмитента в 3-D Secure".into());
    assert_eq!(decide(&o, &r, now(), &policy(true)).0.len(), 1, "a new one");

    o.cancel_requested = true;
    let (_, follow) = decide(
        &o,
        &report(OrderStatus::Registered, 0, 0),
        now(),
        &policy(true),
    );
    assert_eq!(follow, FollowUp::Cancel);
    let (inputs, _) = decide(
        &o,
        &report(OrderStatus::Declined, 0, 0),
        now(),
        &policy(true),
    );
    assert_eq!(inputs, vec![Input::Cancelled]);
    let (inputs, _) = decide(
        &o,
        &report(OrderStatus::Deposited, 10_000, 0),
        now(),
        &policy(true),
    );
    assert!(
        matches!(inputs.as_slice(), [Input::PaymentConfirmed { .. }]),
        "paid before the decline: the order follows the money"
    );

    let mut exhausted = report(OrderStatus::Declined, 0, 0);
    exhausted.action_code = Some(ActionCode::AttemptsExhausted);
    o.cancel_requested = false;
    let (inputs, _) = decide(&o, &exhausted, now(), &policy(true));
    assert!(
        matches!(
            &inputs[..],
            [Input::AttemptFailed { .. }, Input::AttemptFailed { .. }, Input::Declined { why }]
                if why.text().contains("исчерпаны")
        ),
        "the attempts not recorded yet, then the decline: {inputs:?}"
    );
}

#[test]
fn identical_failure_callbacks_are_separate_attempts_up_to_the_banks_three() {
    let mut o = order(Mode::OneStage, State::AwaitingPayment);
    let mut r = report(OrderStatus::Registered, 0, 0);
    r.action_code = Some(ActionCode::from_code(116));
    r.action_code_description = Some("Недостаточно средств".into());
    let attempt = crate::orders::order::FailedAttempt {
        at: now(),
        code: 116,
        why: "Недостаточно средств".into(),
    };
    o.failed_attempts.push(attempt.clone());
    assert!(
        decide(&o, &r, now(), &policy(true)).0.is_empty(),
        "a poll: the same one"
    );
    let (inputs, _) = decide_reported(&o, &r, now(), &policy(true), 1);
    assert_eq!(inputs.len(), 1, "a callback said another attempt failed");
    let (inputs, _) = decide_reported(&o, &r, now(), &policy(true), 7);
    assert_eq!(
        inputs.len(),
        2,
        "never more than the bank's three: {inputs:?}"
    );
    o.failed_attempts.push(attempt.clone());
    o.failed_attempts.push(attempt);
    assert!(decide_reported(&o, &r, now(), &policy(true), 5)
        .0
        .is_empty());
}

#[test]
fn duplicates_change_nothing() {
    let paid = order(Mode::OneStage, State::Paid);
    let mut paid = paid;
    paid.deposited = paid.amount;
    assert_eq!(
        decide(
            &paid,
            &report(OrderStatus::Deposited, 10_000, 0),
            now(),
            &policy(true)
        ),
        nothing()
    );
}

#[test]
fn a_cancelled_order_the_bank_reports_declined_stays_cancelled() {
    let o = order(Mode::OneStage, State::Cancelled);
    for code in [ActionCode::Success, ActionCode::SessionExpired] {
        let mut declined = report(OrderStatus::Declined, 0, 0);
        declined.action_code = Some(code);
        assert_eq!(
            decide(&o, &declined, now(), &policy(true)),
            (Vec::new(), FollowUp::None)
        );
    }
    let (inputs, _) = decide(
        &o,
        &report(OrderStatus::Deposited, 10_000, 0),
        now(),
        &policy(true),
    );
    assert!(
        matches!(inputs[..], [Input::Attention { .. }]),
        "money on a cancelled sale is for a person: {inputs:?}"
    );
}

#[test]
fn a_failing_deposit_is_tried_again_after_growing_pauses_then_left_to_a_person() {
    use crate::orders::order::{Event, EventKind};
    let mut o = order(Mode::TwoStage, State::Held);
    let held = report(OrderStatus::Held, 0, 0);
    let look = |o: &Order, at: DateTime<Utc>| decide(o, &held, at, &policy(true));
    assert_eq!(
        look(&o, now()).1,
        FollowUp::Deposit,
        "the first try at once"
    );
    let mut at = now();
    for (tries, pause) in [(1, 30), (2, 60), (3, 120), (4, 240)] {
        o.history.push(Event {
            at,
            from: StateKind::Depositing,
            to: StateKind::Held,
            kind: EventKind::DepositFailed {
                why: Reason::Refused {
                    method: "deposit.do".into(),
                    code: 7,
                    message: "System error".into(),
                },
            },
            actor: None,
        });
        let early = at + chrono::Duration::seconds(pause - 1);
        assert_eq!(look(&o, early), (Vec::new(), FollowUp::None), "{tries}");
        at += chrono::Duration::seconds(pause);
        assert_eq!(look(&o, at).1, FollowUp::Deposit, "{tries}");
    }
    o.history.push(Event {
        at,
        from: StateKind::Depositing,
        to: StateKind::Held,
        kind: EventKind::DepositFailed {
            why: Reason::Refused {
                method: "deposit.do".into(),
                code: 7,
                message: "System error".into(),
            },
        },
        actor: None,
    });
    let (inputs, follow) = look(&o, at + chrono::Duration::hours(1));
    assert_eq!(follow, FollowUp::None);
    assert!(
        matches!(&inputs[..], [Input::Attention { why }] if why.what().contains("5 times")),
        "{inputs:?}"
    );
}

#[test]
fn after_a_restore_money_moved_since_the_backup_is_learned_step_by_step() {
    let mut paid = order(Mode::OneStage, State::Paid);
    paid.deposited = paid.amount;
    assert_eq!(
        learn_after_restore(&paid, &report(OrderStatus::Refunded, 10_000, 10_000)),
        vec![Input::RefundLearned {
            amount: Kopecks::new(10_000).unwrap()
        }]
    );
    assert_eq!(
        learn_after_restore(&paid, &report(OrderStatus::Deposited, 10_000, 3_000)),
        vec![Input::RefundLearned {
            amount: Kopecks::new(3_000).unwrap()
        }]
    );
    assert!(learn_after_restore(&paid, &report(OrderStatus::Deposited, 10_000, 0)).is_empty());
    assert_eq!(
        learn_after_restore(&paid, &report(OrderStatus::Reversed, 0, 0)),
        vec![Input::ReversalLearned]
    );
    let open = order(Mode::OneStage, State::AwaitingPayment);
    let steps = learn_after_restore(&open, &report(OrderStatus::Refunded, 10_000, 10_000));
    assert!(
        matches!(steps[..], [Input::PaymentConfirmed { .. }]),
        "{steps:?}"
    );
    let open = order(Mode::TwoStage, State::AwaitingPayment);
    let steps = learn_after_restore(&open, &report(OrderStatus::Reversed, 0, 0));
    assert!(
        matches!(
            steps[..],
            [Input::HoldConfirmed { .. }, Input::ReversalLearned]
        ),
        "{steps:?}"
    );
}
