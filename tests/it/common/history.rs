//! A shop's history made fast: orders as the engine would have left them (through the real
//! state machine), written straight into a store. For tests and benches that need a store of
//! many days without selling through the bank for each.

use chasti::domain::{
    Description, GatewayOrderId, IdempotencyKey, OrderNumber, PaymentUrl, StorePrefix, TillId,
};
use chasti::money::Kopecks;
use chasti::orders::order::new_order_id;
use chasti::orders::transition::{apply, apply_by, Input};
use chasti::orders::{Actor, AtBank, Mode, NewOrder, Order};
use chrono::{DateTime, NaiveDate, Utc};

/// What became of each order of a synthetic day, by its position.
fn fate(i: usize, open_every: usize) -> &'static str {
    if open_every > 0 && i % open_every == open_every - 1 {
        "open"
    } else if i % 50 == 7 {
        "reversed"
    } else if i % 20 == 3 {
        "refunded"
    } else if i % 10 == 1 {
        "two-stage"
    } else if i % 25 == 11 {
        "declined"
    } else {
        "paid"
    }
}

/// `n` orders of one Moscow day on a till, spread over the day from 09:00 МСК, in the states a
/// shop's day leaves (mostly paid; some held then deposited, refunded, reversed, declined),
/// every `open_every`-th still awaiting payment (0: none).
pub fn day_of_orders(day: NaiveDate, n: usize, till: &str, open_every: usize) -> Vec<Order> {
    let prefix = StorePrefix::parse("S1").unwrap();
    let till = TillId::parse(till).unwrap();
    let opening = chasti::moscow::day_start(day) + chrono::Duration::hours(9);
    let step = chrono::Duration::milliseconds((12 * 3_600_000 / n.max(1)) as i64);
    let cashier = Actor {
        token: "till-1".into(),
        cashier: Some("Иванова".into()),
    };
    let manager = Actor {
        token: "manager".into(),
        cashier: None,
    };
    (0..n)
        .map(|i| {
            let at = opening + step * i as i32;
            one_order(&prefix, &till, day, i, at, &cashier, &manager, open_every)
        })
        .collect()
}

/// A cart of `amount`: a weighed line of 0,5 kg and a piece that takes the rest.
pub fn cart_of(amount: Kopecks) -> chasti::orders::Cart {
    use chasti::orders::cart::{Item, ItemName, PaymentMethod, PaymentObject, Quantity, Vat};
    let cheese = Item {
        name: ItemName::parse("Сыр «Российский», весовой").unwrap(),
        quantity: Quantity::parse("0.5").unwrap(),
        price: Kopecks::new(1000).unwrap(),
        vat: Vat::Vat10,
        object: PaymentObject::Commodity,
        method: PaymentMethod::FullPayment,
    };
    let rest = amount.checked_sub(Kopecks::new(500).unwrap()).unwrap();
    let fridge = Item {
        name: ItemName::parse("Холодильник Атлант").unwrap(),
        quantity: Quantity::ONE,
        price: rest,
        vat: Vat::Vat22,
        object: PaymentObject::Commodity,
        method: PaymentMethod::FullPayment,
    };
    chasti::orders::Cart::new(vec![cheese, fridge], amount).unwrap()
}

#[allow(clippy::too_many_arguments)]
fn one_order(
    prefix: &StorePrefix,
    till: &TillId,
    day: NaiveDate,
    i: usize,
    at: DateTime<Utc>,
    cashier: &Actor,
    manager: &Actor,
    open_every: usize,
) -> Order {
    let fate = fate(i, open_every);
    let mode = if fate == "two-stage" {
        Mode::TwoStage
    } else {
        Mode::OneStage
    };
    let amount = Kopecks::new(10_000 + (i as u64 * 7919) % 2_000_000).unwrap();
    let order = Order::registering(NewOrder {
        id: new_order_id(at),
        order_number: OrderNumber::new(prefix, till, day, i as u64 + 1),
        amount,
        mode,
        description: i
            .is_multiple_of(3)
            .then(|| Description::parse("Холодильник Атлант").unwrap()),
        till: till.clone(),
        cashier: cashier.cashier.clone(),
        idempotency_key: Some(IdempotencyKey::parse(&uuid::Uuid::new_v4().to_string()).unwrap()),
        created_at: at,
        link_expires_at: at + chrono::Duration::minutes(20),
        actor: Some(cashier.clone()),
        // Every fourth sale carries its cart: two lines, one of them weighed.
        cart: i.is_multiple_of(4).then(|| cart_of(amount)),
        customer: chasti::orders::Customer {
            phone: i
                .is_multiple_of(5)
                .then(|| chasti::domain::Phone::parse("+7 912 345-67-89").unwrap()),
            email: i
                .is_multiple_of(7)
                .then(|| chasti::domain::Email::parse("ivanova@mail.ru").unwrap()),
        },
    });
    let bank_id = uuid::Uuid::new_v4().to_string();
    let bank = AtBank {
        link: PaymentUrl::parse(&format!(
            "https://securepayments.sberbank.ru/payment/merchants/sbersafe_sberid/payment_ru.html?mdOrder={bank_id}"
        ))
        .unwrap(),
        id: GatewayOrderId::parse(&bank_id).unwrap(),
    };
    let t = |secs: i64| at + chrono::Duration::seconds(secs);
    let o = apply(&order, Input::Registered(bank), t(0)).unwrap();
    if fate == "open" {
        return o;
    }
    if fate == "declined" {
        return apply(
            &o,
            Input::Declined {
                why: chasti::orders::Reason::AttemptsExhausted,
            },
            t(60),
        )
        .unwrap();
    }
    let paid = |o: &Order, at| Input::PaymentConfirmed {
        deposited: o.amount,
        at: Some(at),
    };
    let mut o = if mode == Mode::TwoStage {
        let o = apply(&o, Input::HoldConfirmed { at: Some(t(40)) }, t(41)).unwrap();
        let o = apply(&o, Input::DepositStarted { amount: None }, t(42)).unwrap();
        apply(&o, paid(&o, t(43)), t(43)).unwrap()
    } else {
        apply(&o, paid(&o, t(40)), t(41)).unwrap()
    };
    // Every fourth payment owes a fiscal receipt (the shop had `[fiscal]` on), every eighth
    // issued: the stores these days make carry receipts in both statuses.
    if i.is_multiple_of(4) {
        let policy = chasti::orders::receipt::ReceiptPolicy {
            at_hold: false,
            default_vat: chasti::orders::cart::Vat::Vat22,
            deadline: std::time::Duration::from_secs(900),
        };
        let owed = chasti::orders::receipt::owed(&o, &policy, t(44));
        o.receipts.extend(owed);
        if i.is_multiple_of(8) {
            let id = o.receipts[0].id;
            let fiscal = chasti::orders::receipt::Fiscal {
                document_number: 1000 + i as u64,
                sign: "3849123456".into(),
                fn_number: "9999078900001234".into(),
                at: t(50),
            };
            o = apply(&o, Input::ReceiptIssued { id, fiscal }, t(50)).unwrap();
        }
    }
    match fate {
        "reversed" => {
            let o = apply_by(&o, Input::ReversalStarted, t(300), Some(manager)).unwrap();
            apply(&o, Input::ReversalConfirmed, t(301)).unwrap()
        }
        "refunded" => {
            let key = IdempotencyKey::parse(&format!("refund-{i}")).unwrap();
            let part = Kopecks::new(o.amount.get() / 2).unwrap();
            let o = apply_by(
                &o,
                Input::RefundStarted {
                    key: key.clone(),
                    amount: part,
                },
                t(600),
                Some(manager),
            )
            .unwrap();
            apply(&o, Input::RefundConfirmed { key }, t(601)).unwrap()
        }
        _ => o,
    }
}

/// `n` sales of a Moscow day on a till that a crash interrupted while the bank was registering
/// them (as recovery finds them at the next start), numbered after `after` that day's others.
pub fn interrupted_orders(day: NaiveDate, n: usize, till: &str, after: usize) -> Vec<Order> {
    let prefix = StorePrefix::parse("S1").unwrap();
    let till = TillId::parse(till).unwrap();
    let evening = chasti::moscow::day_start(day) + chrono::Duration::hours(22);
    (0..n)
        .map(|i| {
            let at = evening + chrono::Duration::milliseconds(i as i64 * 100);
            Order::registering(NewOrder {
                id: new_order_id(at),
                order_number: OrderNumber::new(&prefix, &till, day, (after + i) as u64 + 1),
                amount: Kopecks::new(10_000 + i as u64).unwrap(),
                mode: Mode::OneStage,
                description: None,
                till: till.clone(),
                cashier: None,
                idempotency_key: None,
                created_at: at,
                link_expires_at: at + chrono::Duration::minutes(20),
                actor: None,
                cart: None,
                customer: Default::default(),
            })
        })
        .collect()
}
