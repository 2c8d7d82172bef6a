//! A shop's ordinary day through the till API against the sandbox: a cashier cancels an unpaid
//! sale (by the number on the slip) and every door shows it; a cancel that races a payment
//! follows the money, both ways; a sale still registering is cancelled once the bank answers;
//! a typo of extra zeros never reaches the bank; declined attempts keep the sale payable until
//! the bank's third closes it; 3-D Secure in progress is not an outcome.

use std::sync::Arc;
use std::time::Duration;

use chasti::devices::display;
use chasti::devices::pole::Display;
use chasti::devices::printer::Printer;
use chasti::devices::profile;
use chasti::orders::{Mode, StateKind};
use chasti::sandbox::{AttemptFailure, Fault, FaultRule};
use serde_json::{json, Value};

use crate::common::{
    settings, wait_ledger, wait_until, FakeDevice, Harness, HarnessOptions, TillClient, CASHIER,
};

/// chasti hears of a payment only when it asks: no callbacks, no polling within a test.
fn bank_silent() -> HarnessOptions {
    HarnessOptions {
        callbacks: false,
        run: false,
        ..HarnessOptions::default()
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn number(sale: &Value) -> String {
    sale["order"]["order_number"].as_str().unwrap().to_string()
}

fn gateway_id(sale: &Value) -> String {
    sale["order"]["gateway_order_id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn cancel(api: &TillClient, reference: &str) -> (u16, Value) {
    api.call_as(
        "POST",
        &format!("/api/v1/orders/{reference}/cancel"),
        Some(CASHIER),
        Some("Петрова"),
        None,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cashier_cancels_an_unpaid_sale_by_its_number_and_every_door_shows_it() {
    let (paper, pole) = (FakeDevice::start(0x12), FakeDevice::start(0x12));
    let tm = profile::printer("epson-tm-t20iii", None).unwrap();
    let dp = profile::display("epson-dm-d110", None).unwrap();
    let h = Harness::new(HarnessOptions {
        printer: Some(Printer::spawn(settings(&paper.path()), tm.clone())),
        display: Some(Display::spawn(settings(&pole.path()), dp.clone())),
        ..HarnessOptions::default()
    })
    .await;
    let api = TillClient::new(h.api());
    let mut screen = api.events("/api/v1/screen/events", None).await;
    let sale = api.sale("1499", "walked-away").await;
    let number = number(&sale);
    assert_eq!(
        sale["devices"]["printer"], "чек напечатан (оплата по QR-коду)",
        "the devices' outcome in the cashier's words: {sale}"
    );
    screen
        .until("the QR on the screen", |s| s["state"] == "awaiting")
        .await;

    let (status, body) = cancel(&api, &number).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["order"]["state"]["name"], "cancelled", "{body}");
    assert_eq!(body["order"]["state_text"], "Продажа отменена", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains(&format!("Продажа {number} на 1 499,00 ₽ отменена")),
        "{body}"
    );
    screen
        .until("the screen back to idle", |s| s["state"] == "idle")
        .await;
    let ledger = h.sandbox.ledger();
    assert_eq!(ledger.count_ok("decline.do", &number), 1);
    assert!(
        h.sandbox.pay(gateway_id(&sale)).is_err(),
        "the link is dead at the bank"
    );

    let cancelled = tm.code_page.encode("ПРОДАЖА ОТМЕНЕНА");
    let by = tm.code_page.encode("Оформил: till-1 (Петрова)");
    paper.wait_until(|got| contains(got, &cancelled) && contains(got, &by));
    pole.wait_until(|got| {
        display::emulate(&dp, got) == ["Продажа отменена".to_string(), String::new()]
    });

    // The history says who cancelled; a second cancel changes nothing.
    let (_, order) = api
        .call(
            "GET",
            &format!("/api/v1/orders/{number}"),
            Some(CASHIER),
            None,
        )
        .await;
    let event = order["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["to"] == "cancelled")
        .unwrap_or_else(|| panic!("a cancel event: {order}"));
    assert_eq!(event["actor"]["token"], "till-1", "{event}");
    assert_eq!(event["actor"]["cashier"], "Петрова", "{event}");
    // A second press (or a retry after a lost reply): the cancelled order, nothing sent.
    let (status, again) = cancel(&api, &number).await;
    assert_eq!(status, 200, "{again}");
    assert!(
        again["message"].as_str().unwrap().contains("уже отменена"),
        "{again}"
    );
    assert_eq!(again["order"]["state"]["name"], "cancelled", "{again}");
    assert_eq!(h.sandbox.ledger().count_ok("decline.do", &number), 1);
}

/// The customer paid (or the amount is held) before the cancel reached the bank: the order
/// follows the money, the cashier is told the customer has paid, nothing is declined.
#[tokio::test]
async fn a_cancel_after_the_payment_follows_the_money() {
    let h = Harness::new(HarnessOptions {
        auto_deposit: false,
        ..bank_silent()
    })
    .await;
    let api = TillClient::new(h.api());
    for (mode, state) in [("one-stage", "paid"), ("two-stage", "held")] {
        let (status, sale) = api
            .call(
                "POST",
                "/api/v1/sales",
                Some(CASHIER),
                Some(json!({"amount": "500", "mode": mode, "idempotency_key": mode})),
            )
            .await;
        assert_eq!(status, 201, "{sale}");
        h.sandbox.pay(gateway_id(&sale)).unwrap();
        let (status, body) = cancel(&api, &number(&sale)).await;
        assert_eq!(status, 409, "{body}");
        assert_eq!(body["error_type"], "already_paid", "{body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("Покупатель уже оплатил заказ {}", number(&sale))),
            "{body}"
        );
        let id = uuid::Uuid::parse_str(sale["order"]["id"].as_str().unwrap()).unwrap();
        assert_eq!(h.engine.get(&id).unwrap().state.name(), state);
        // Asked again, now that chasti knows: the same answer.
        let (status, again) = cancel(&api, &number(&sale)).await;
        assert_eq!(
            (status, again["error_type"].as_str()),
            (409, Some("already_paid"))
        );
        let ledger = h.sandbox.ledger();
        assert_eq!(ledger.count_ok("decline.do", number(&sale)), 0);
        assert_eq!(
            ledger.order(number(&sale)).unwrap().order_status,
            if state == "paid" { 2 } else { 1 }
        );
    }
}

/// Cancel and payment at the same moment, many times: whichever the bank took first wins, and
/// chasti always ends where the money is.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_and_payment_at_once_always_end_where_the_money_is() {
    let h = Harness::new(bank_silent()).await;
    let api = Arc::new(TillClient::new(h.api()));
    let (mut cancels_won, mut payments_won) = (0, 0);
    for i in 0..12 {
        let sale = api.sale("300", &format!("race-{i}")).await;
        let sandbox = h.sandbox.clone();
        let bank_id = gateway_id(&sale);
        let pay = tokio::task::spawn_blocking(move || sandbox.pay(bank_id).is_ok());
        let (status, body) = cancel(&api, &number(&sale)).await;
        let paid = pay.await.unwrap();
        let id = uuid::Uuid::parse_str(sale["order"]["id"].as_str().unwrap()).unwrap();
        let order = h.engine.get(&id).unwrap();
        let at_bank = h
            .sandbox
            .ledger()
            .order(number(&sale))
            .unwrap()
            .order_status;
        if paid {
            payments_won += 1;
            assert_eq!(status, 409, "{body}");
            assert_eq!(body["error_type"], "already_paid");
            assert_eq!(order.state.kind(), StateKind::Paid);
            assert_eq!(at_bank, 2);
        } else {
            cancels_won += 1;
            assert_eq!(status, 200, "{body}");
            assert_eq!(order.state.kind(), StateKind::Cancelled);
            assert_eq!(at_bank, 6);
        }
    }
    // Either way is checked whenever it happens; the first two tests pin each way down.
    assert_eq!(cancels_won + payments_won, 12);

    // Cancelled first: the customer's payment is refused by the bank.
    let sale = api.sale("300", "cancel-first").await;
    assert_eq!(cancel(&api, &number(&sale)).await.0, 200);
    assert!(h.sandbox.pay(gateway_id(&sale)).is_err());
    assert_eq!(
        h.sandbox
            .ledger()
            .order(number(&sale))
            .unwrap()
            .deposited
            .get(),
        0
    );
}

/// The cashier cancels while the bank is still answering the register call: 202, and the
/// decline goes out as soon as the bank's orderId is known.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sale_still_registering_is_cancelled_once_the_bank_answers() {
    let h = Harness::new(HarnessOptions::default()).await;
    h.sandbox
        .add_fault(FaultRule::new("register.do", Fault::Latency { ms: 1500 }).before());
    let api = Arc::new(TillClient::new(h.api()));
    let selling = {
        let api = api.clone();
        tokio::spawn(async move {
            api.call(
                "POST",
                "/api/v1/sales",
                Some(CASHIER),
                Some(json!({"amount": "700", "idempotency_key": "slow"})),
            )
            .await
        })
    };
    let today = chasti::moscow::date(h.engine.now());
    let engine = h.engine.clone();
    wait_until("the sale is registering", Duration::from_secs(5), || {
        !engine
            .list(today, Some(StateKind::Registering))
            .unwrap()
            .is_empty()
    })
    .await;
    let order = h.engine.list(today, None).unwrap().remove(0);
    let (status, body) = cancel(&api, order.order_number.as_str()).await;
    assert_eq!(status, 202, "{body}");
    assert!(
        !selling.is_finished(),
        "the cashier is answered while the bank is still registering the sale"
    );
    assert!(
        body["message"].as_str().unwrap().contains("ещё создаётся"),
        "{body}"
    );
    assert_eq!(body["order"]["cancel_requested"], true, "{body}");
    // The sale's own call ends with what the order is now: cancelled, with no link to print.
    let (status, sold) = selling.await.unwrap();
    assert_eq!(status, 409, "{sold}");
    assert_eq!(sold["error_type"], "closed", "{sold}");
    assert_eq!(sold["order"]["state"]["name"], "cancelled", "{sold}");
    assert!(sold["order"]["payment_url"].is_null(), "{sold}");
    let cancelled = h.wait_state(&order.id, StateKind::Cancelled).await;
    let ledger = h.sandbox.ledger();
    assert_eq!(ledger.count_ok("decline.do", &order.order_number), 1);
    assert!(h.sandbox.pay(Harness::gateway_id(&cancelled)).is_err());
    assert!(
        cancelled
            .history
            .iter()
            .any(|e| e.actor.as_ref().is_some_and(|a| a.token == "till-1")),
        "{:#?}",
        cancelled.history
    );
}

#[tokio::test]
async fn a_typo_of_extra_zeros_never_reaches_the_bank() {
    let h = Harness::new(HarnessOptions::default()).await;
    let api = TillClient::new(h.api());
    let (status, body) = api
        .call(
            "POST",
            "/api/v1/sales",
            Some(CASHIER),
            Some(json!({"amount": "100000000", "idempotency_key": "typo"})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "amount", "{body}");
    let problem = body["errors"][0]["problem"].as_str().unwrap();
    assert!(
        problem.contains("100 000 000,00 ₽") && problem.contains("1 000 000,00 ₽"),
        "{problem}"
    );
    assert!(h.sandbox.ledger().operations.is_empty());
    assert!(h
        .engine
        .list(chasti::moscow::date(h.engine.now()), None)
        .unwrap()
        .is_empty());
    // The limit itself is allowed.
    api.sale("1000000", "the-limit").await;
}

/// The bank allows three attempts: each decline is an event on the stream, the screen and the
/// history while the order stays payable; the third closes it (−2013) and a fourth is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_declined_attempts_then_a_fourth_is_refused() {
    let h = Harness::new(HarnessOptions::default()).await;
    let api = TillClient::new(h.api());
    let sale = api.sale("1200", "attempts").await;
    let (number, bank_id) = (number(&sale), gateway_id(&sale));
    let mut order_events = api
        .events(&format!("/api/v1/orders/{number}/events"), Some(CASHIER))
        .await;
    let mut screen = api.events("/api/v1/screen/events", None).await;

    h.sandbox
        .fail_attempt(&bank_id, AttemptFailure::InsufficientFunds)
        .unwrap();
    let at_bank = h.sandbox.ledger().order(&number).unwrap().clone();
    assert_eq!(
        (
            at_bank.order_status,
            at_bank.action_code,
            at_bank.attempts_left
        ),
        (0, 116, 2)
    );
    let seen = order_events
        .until("the first failed attempt", |o| {
            o["failed_attempts"]
                .as_array()
                .is_some_and(|a| a.len() == 1)
        })
        .await;
    assert_eq!(seen["state"]["name"], "awaiting_payment", "{seen}");
    assert_eq!(seen["failed_attempts"][0]["code"], 116, "{seen}");
    assert!(
        seen["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["text"].as_str().unwrap().contains("Недостаточно средств")),
        "{seen}"
    );
    let shown = screen
        .until("the notice on the screen", |s| s["notice"].is_string())
        .await;
    assert_eq!(shown["state"], "awaiting");
    assert!(shown["qr_svg"].is_string(), "the QR stays: {shown}");
    assert!(
        shown["notice"]
            .as_str()
            .unwrap()
            .contains("Оплата не прошла: Недостаточно средств на карте. Осталось попыток: 2. Можно попробовать ещё раз"),
        "{shown}"
    );

    h.sandbox
        .fail_attempt(&bank_id, AttemptFailure::CardExpired)
        .unwrap();
    order_events
        .until("the second failed attempt", |o| {
            o["failed_attempts"]
                .as_array()
                .is_some_and(|a| a.len() == 2)
        })
        .await;
    screen
        .until("the screen counts the attempts left", |s| {
            s["notice"]
                .as_str()
                .is_some_and(|n| n.contains("Осталось попыток: 1"))
        })
        .await;
    h.sandbox
        .fail_attempt(&bank_id, AttemptFailure::IssuerRefused3ds)
        .unwrap();
    let closed = order_events
        .until("the bank closes the order", |o| {
            o["state"]["name"] == "declined"
        })
        .await;
    assert!(
        closed["state"]["why_text"]
            .as_str()
            .unwrap()
            .contains("исчерпаны"),
        "{closed}"
    );
    let at_bank = h.sandbox.ledger().order(&number).unwrap().clone();
    assert_eq!(
        (
            at_bank.order_status,
            at_bank.action_code,
            at_bank.attempts_left
        ),
        (6, -2013, 0)
    );
    screen
        .until("the screen shows the decline", |s| s["state"] == "declined")
        .await;

    // A fourth attempt: the bank refuses it, nothing changes anywhere.
    assert!(h.sandbox.pay(&bank_id).is_err());
    assert!(h
        .sandbox
        .fail_attempt(&bank_id, AttemptFailure::InsufficientFunds)
        .is_err());
    let id = uuid::Uuid::parse_str(sale["order"]["id"].as_str().unwrap()).unwrap();
    h.engine.refresh(&id).await.unwrap();
    assert_eq!(h.engine.get(&id).unwrap().state.kind(), StateKind::Declined);
    assert_eq!(
        h.sandbox.ledger().order(&number).unwrap().deposited.get(),
        0
    );
}

/// orderStatus 5 (3-D Secure in progress) is not an outcome: the order waits, then is paid.
/// The short getOrderStatus.do shows the same order as the bank's does.
#[tokio::test]
async fn three_d_secure_in_progress_waits_for_the_outcome() {
    let h = Harness::new(HarnessOptions::default()).await;
    let order = h.sell(900, Mode::OneStage).await;
    let bank_id = Harness::gateway_id(&order);
    h.sandbox.start_3ds(&bank_id).unwrap();
    let client = crate::common::client_for(&h.sandbox);
    let by_id = chasti::gateway::OrderRef::OrderId(
        chasti::domain::GatewayOrderId::parse(&bank_id).unwrap(),
    );
    let short = client.short_status(&by_id).await.unwrap();
    assert_eq!(
        short.order_status,
        Some(chasti::gateway::OrderStatus::Authenticating)
    );
    assert_eq!(short.order_number, order.order_number.as_str());
    assert_eq!(short.amount, order.amount);

    // The poller asks twice more while authentication runs; the order stays payable.
    let asked = |l: &chasti::sandbox::Ledger| {
        l.operations
            .iter()
            .filter(|e| e.operation == "getOrderStatusExtended.do")
            .filter(|e| e.order_number.as_deref() == Some(order.order_number.as_str()))
            .count()
    };
    let before = asked(&h.sandbox.ledger());
    wait_ledger(&h.sandbox, "two more status polls", |l| {
        asked(l) >= before + 2
    })
    .await;
    assert_eq!(
        h.engine.get(&order.id).unwrap().state.kind(),
        StateKind::AwaitingPayment
    );

    h.sandbox.pay(&bank_id).unwrap();
    h.wait_state(&order.id, StateKind::Paid).await;
    let short = client.short_status(&by_id).await.unwrap();
    assert_eq!(
        short.order_status,
        Some(chasti::gateway::OrderStatus::Deposited)
    );
    assert_eq!(short.deposit_amount, order.amount);
}
