//! The terminal-shaped calls as a POS drives them: `POST /api/v1/pay` waits for the outcome (a
//! POS whose call times out repeats it with the same key and keeps waiting, never making a
//! second sale), a cancel while it waits ends it «cancelled», and `POST /api/v1/return`
//! reverses the same day or refunds after, once per key, saying which.

use std::sync::Arc;
use std::time::Duration;

use chasti::engine::ManualClock;

use serde_json::{json, Value};

use crate::common::{Harness, HarnessOptions, CASHIER, MANAGER};

async fn post(
    h: &Harness,
    path: &str,
    token: &str,
    body: Value,
    timeout: Duration,
) -> Result<(u16, Value), reqwest::Error> {
    let reply = crate::common::http()
        .post(format!("{}{path}", h.api()))
        .bearer_auth(token)
        .json(&body)
        .timeout(timeout)
        .send()
        .await?;
    let status = reply.status().as_u16();
    Ok((status, reply.json().await.unwrap_or(Value::Null)))
}

fn registers(h: &Harness) -> usize {
    h.sandbox
        .ledger()
        .operations
        .iter()
        .filter(|o| o.operation == "register.do")
        .count()
}

#[tokio::test]
async fn a_pos_that_times_out_repeats_the_call_and_gets_the_outcome_of_one_sale() {
    let h = Harness::new(HarnessOptions::default()).await;
    let body = json!({"amount": "1499.00", "idempotency_key": "pos-receipt-17", "wait_secs": 30,
        "slip_width": 42, "description": "Кофемашина"});
    // The POS gives up after half a second; chasti keeps the sale.
    let first = post(
        &h,
        "/api/v1/pay",
        CASHIER,
        body.clone(),
        Duration::from_millis(500),
    )
    .await;
    assert!(first.is_err_and(|e| e.is_timeout()));
    // Nothing paid yet: a short wait answers 202, with the link the customer pays by.
    let mut short = body.clone();
    short["wait_secs"] = json!(1);
    let (status, waiting) = post(&h, "/api/v1/pay", CASHIER, short, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(status, 202, "{waiting}");
    assert_eq!(waiting["outcome"], "waiting");
    assert!(waiting["payment_url"].as_str().is_some(), "{waiting}");
    // Repeated again, it waits; the customer pays meanwhile.
    let repeat = {
        let (api, body) = (h.api(), body.clone());
        tokio::spawn(async move {
            crate::common::http()
                .post(format!("{api}/api/v1/pay"))
                .bearer_auth(CASHIER)
                .json(&body)
                .send()
                .await
                .unwrap()
        })
    };
    let number = waiting["order_number"].as_str().unwrap().to_string();
    let order = h.engine.find(&number).unwrap();
    h.sandbox.pay(Harness::gateway_id(&order)).unwrap();
    let reply = repeat.await.unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    let paid: Value = reply.json().await.unwrap();
    assert_eq!(paid["outcome"], "paid", "{paid}");
    assert_eq!(paid["order_number"], number.as_str());
    assert_eq!(paid["amount"], 149_900);
    let slip = paid["slip_text"].as_str().unwrap();
    assert!(
        slip.contains("ОДОБРЕНО") && slip.contains("1 499,00 ₽") && slip.contains(&number),
        "{slip}"
    );
    assert!(slip.lines().all(|l| l.chars().count() <= 42), "{slip}");
    assert!(slip.contains("МСК"), "{slip}");
    assert_eq!(registers(&h), 1, "one sale for one key");
}

#[tokio::test]
async fn a_cancel_while_the_pos_waits_ends_the_call_cancelled() {
    let h = Harness::new(HarnessOptions::default()).await;
    let waiting = {
        let api = h.api();
        tokio::spawn(async move {
            crate::common::http()
                .post(format!("{api}/api/v1/pay"))
                .bearer_auth(CASHIER)
                .json(&json!({"amount": "2000", "idempotency_key": "pos-receipt-18", "wait_secs": 30}))
                .send()
                .await
                .unwrap()
        })
    };
    // The cashier cancels at the till as soon as the sale is there.
    let engine = h.engine.clone();
    crate::common::wait_until(
        "the sale is registered",
        Duration::from_secs(10),
        move || {
            engine
                .store()
                .all()
                .unwrap()
                .iter()
                .any(|o| o.state.bank().is_some())
        },
    )
    .await;
    let order = h.engine.store().all().unwrap().remove(0);
    let (status, body) = post(
        &h,
        &format!("/api/v1/orders/{}/cancel", order.order_number),
        CASHIER,
        json!({}),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let reply = waiting.await.unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    let ended: Value = reply.json().await.unwrap();
    assert_eq!(ended["outcome"], "cancelled", "{ended}");
    assert!(ended["slip_text"].as_str().unwrap().contains("ОТКАЗ"));
}

#[tokio::test]
async fn a_return_reverses_the_same_day_and_refunds_a_part_once_per_key() {
    let h = Harness::new(HarnessOptions::default()).await;
    let whole = h.paid_sale(1500, chasti::orders::Mode::OneStage).await;
    let (status, reversed) = post(
        &h,
        "/api/v1/return",
        MANAGER,
        json!({"order": whole.order_number.as_str(), "idempotency_key": "ret-1"}),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{reversed}");
    assert_eq!(
        (reversed["operation"].as_str(), reversed["outcome"].as_str()),
        (Some("reversal"), Some("reversed"))
    );
    assert!(reversed["slip_text"]
        .as_str()
        .unwrap()
        .contains("ОТМЕНА ОПЛАТЫ"));

    let part = h.paid_sale(3000, chasti::orders::Mode::OneStage).await;
    let body = json!({"order": part.order_number.as_str(), "amount": "500.00", "idempotency_key": "ret-2", "slip_width": 48});
    for _ in 0..2 {
        let (status, refunded) = post(
            &h,
            "/api/v1/return",
            MANAGER,
            body.clone(),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "{refunded}");
        assert_eq!(refunded["operation"], "refund");
        assert_eq!(refunded["outcome"], "refunded");
        assert_eq!(refunded["amount"], 50_000);
        let slip = refunded["slip_text"].as_str().unwrap();
        assert!(
            slip.contains("ВОЗВРАТ ОФОРМЛЕН") && slip.contains("10 рабочих дней"),
            "{slip}"
        );
    }
    let refunds = h
        .sandbox
        .ledger()
        .operations
        .iter()
        .filter(|o| o.operation == "refund.do" && o.ok())
        .count();
    assert_eq!(refunds, 1, "the same key refunds once");
    // A cashier's token may not return money.
    let (status, _) = post(&h, "/api/v1/return", CASHIER, body, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_return_may_ask_for_a_reversal_only_and_is_refused_when_one_cannot_be() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let h = Harness::new(HarnessOptions {
        clock: Some(clock.clone()),
        ..Default::default()
    })
    .await;
    let order = h.paid_sale(2000, chasti::orders::Mode::OneStage).await;
    let ask = |amount: Option<&str>, operation: &str, key: &str| {
        let mut body = json!({"order": order.order_number.as_str(), "idempotency_key": key,
            "operation": operation});
        if let Some(a) = amount {
            body["amount"] = json!(a);
        }
        body
    };
    // A cancel of part of a payment: refused, nothing sent to the bank.
    let (status, refused) = post(
        &h,
        "/api/v1/return",
        MANAGER,
        ask(Some("100.00"), "reversal", "cancel-1"),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(status, 409, "{refused}");
    assert!(refused["message"]
        .as_str()
        .unwrap()
        .contains("только всю оплату"));
    let (status, bad) = post(
        &h,
        "/api/v1/return",
        MANAGER,
        ask(None, "void", "cancel-2"),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(status, 422, "{bad}");
    assert_eq!(bad["errors"][0]["field"], "operation", "{bad}");
    // The next Moscow day a reversal cannot be: refused in the manager's words.
    clock.advance(chrono::Duration::days(1));
    let (status, late) = post(
        &h,
        "/api/v1/return",
        MANAGER,
        ask(None, "reversal", "cancel-3"),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(status, 409, "{late}");
    let ops = h.sandbox.ledger().operations;
    assert!(!ops
        .iter()
        .any(|o| o.operation == "reverse.do" || o.operation == "refund.do"));
    assert_eq!(
        h.engine.get(&order.id).unwrap().state.kind(),
        chasti::orders::StateKind::Paid
    );
    // Asked for a refund, it refunds.
    let (status, refunded) = post(
        &h,
        "/api/v1/return",
        MANAGER,
        ask(None, "refund", "ret-3"),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{refunded}");
    assert_eq!(refunded["operation"], "refund");
}
