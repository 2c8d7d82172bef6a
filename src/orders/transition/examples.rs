//! One order in every state, each reached through the state machine as the engine would reach
//! it, for the tests that check that every reader of an order tells the same story.

use chrono::{DateTime, TimeZone, Utc};

use super::{apply_by, Input};
use crate::domain::{GatewayOrderId, IdempotencyKey, OrderNumber, PaymentUrl, TillId};
use crate::money::Kopecks;
use crate::orders::order::{Actor, Mode, NewOrder, Order};
use crate::orders::state::{AtBank, StateKind};

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, h, m, 0).unwrap()
}

fn manager() -> Option<Actor> {
    Some(Actor {
        token: "manager".into(),
        cashier: None,
    })
}

fn step(o: Order, input: Input) -> Order {
    let actor = match input {
        Input::CancelRequested | Input::ReversalStarted | Input::RefundStarted { .. } => manager(),
        _ => None,
    };
    apply_by(&o, input, at(12, 0), actor.as_ref()).expect("an allowed step")
}

fn new(n: u32, mode: Mode, roubles: u64) -> Order {
    Order::registering(NewOrder {
        id: uuid::Uuid::now_v7(),
        order_number: OrderNumber::parse(&format!("S-1-261123-{n:04}")).unwrap(),
        amount: Kopecks::from_roubles(roubles).unwrap(),
        mode,
        description: None,
        till: TillId::parse("1").unwrap(),
        cashier: Some("Иванова".into()),
        idempotency_key: None,
        created_at: at(10, n % 60),
        link_expires_at: at(11, 0),
        actor: Some(Actor {
            token: "till-1".into(),
            cashier: Some("Иванова".into()),
        }),
        cart: None,
        customer: Default::default(),
    })
}

fn registered(o: Order) -> Order {
    let id = format!("g-{}", o.order_number);
    step(
        o,
        Input::Registered(AtBank {
            id: GatewayOrderId::parse(&id).unwrap(),
            link: PaymentUrl::parse(&format!("https://pay.example/{id}")).unwrap(),
        }),
    )
}

fn paid(o: Order) -> Order {
    let deposited = o.amount;
    step(
        registered(o),
        Input::PaymentConfirmed {
            deposited,
            at: Some(at(10, 30)),
        },
    )
}

fn refund_key(k: &str) -> IdempotencyKey {
    IdempotencyKey::parse(k).unwrap()
}

/// One order in each of the 15 states, amounts 1 499 ₽ (partial refunds of 500 ₽).
pub(crate) fn one_in_every_state() -> Vec<Order> {
    let rub = |r| Kopecks::from_roubles(r).unwrap();
    let o = |n| new(n, Mode::OneStage, 1499);
    let hold = |n| {
        step(
            registered(new(n, Mode::TwoStage, 1499)),
            Input::HoldConfirmed { at: None },
        )
    };
    let refund = |order: Order, key: &str, amount| {
        step(
            order,
            Input::RefundStarted {
                key: refund_key(key),
                amount,
            },
        )
    };
    let orders = vec![
        o(1),
        registered(o(2)),
        hold(3),
        step(hold(4), Input::DepositStarted { amount: None }),
        paid(o(5)),
        step(
            registered(o(6)),
            Input::Declined {
                why: crate::orders::Reason::said("отказ банка", None),
            },
        ),
        step(registered(o(7)), Input::Expired),
        step(
            step(registered(o(8)), Input::CancelRequested),
            Input::Cancelled,
        ),
        step(
            o(9),
            Input::RegistrationFailed {
                why: crate::orders::Reason::said("errorCode 5", Some("Банк отказал".into())),
            },
        ),
        step(paid(o(10)), Input::ReversalStarted),
        step(
            step(paid(o(11)), Input::ReversalStarted),
            Input::ReversalConfirmed,
        ),
        refund(paid(o(12)), "r12", rub(500)),
        step(
            refund(paid(o(13)), "r13", rub(1499)),
            Input::RefundConfirmed {
                key: refund_key("r13"),
            },
        ),
        step(
            refund(paid(o(14)), "r14", rub(500)),
            Input::RefundConfirmed {
                key: refund_key("r14"),
            },
        ),
        step(
            paid(o(15)),
            Input::Attention {
                why: crate::orders::Reason::said("банк вернул деньги без запроса", None),
            },
        ),
    ];
    let kinds: Vec<StateKind> = orders.iter().map(|o| o.state.kind()).collect();
    assert_eq!(kinds, StateKind::ALL, "one order in each state, in order");
    orders
}
