//! `[fiscal] mode = "pos"` end to end: a POS stand-in on 127.0.0.1 (a real HTTP server, written
//! from chasti's own webhook contract: there is no public POS to run here) receives the signed
//! webhook for each movement that owes a receipt — a sale paid, a refund, a reversal — at least
//! once (refusals and a restart in between), reports the printed receipt back through the API,
//! and an unreported one turns «чек не пробит» after the deadline.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use chasti::engine::ManualClock;
use chasti::orders::StateKind;

use crate::common::{wait_until, Harness, HarnessOptions, TillClient, CASHIER, MANAGER};

const KEY: &str = "pos-webhook-key-0123456789";

/// What the POS stand-in received: each body, and whether its signature verified.
#[derive(Clone, Default)]
struct Pos {
    received: Arc<Mutex<Vec<(Value, bool)>>>,
    /// Answer this many deliveries 503 first.
    refuse: Arc<AtomicUsize>,
    url: String,
}

impl Pos {
    async fn start() -> Pos {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let pos = Pos {
            url: format!("http://{}/receipts", listener.local_addr().unwrap()),
            ..Pos::default()
        };
        let state = pos.clone();
        let app = axum::Router::new().route(
            "/receipts",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let state = state.clone();
                async move {
                    if state
                        .refuse
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok()
                    {
                        return StatusCode::SERVICE_UNAVAILABLE;
                    }
                    let signed = headers
                        .get("x-chasti-signature")
                        .and_then(|v| v.to_str().ok())
                        == Some(chasti::fiscal::sign(KEY.as_bytes(), &body).as_str());
                    let value: Value = serde_json::from_slice(&body).unwrap();
                    state.received.lock().unwrap().push((value, signed));
                    StatusCode::OK
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        pos
    }

    fn received(&self) -> Vec<(Value, bool)> {
        self.received.lock().unwrap().clone()
    }

    async fn wait_for(&self, n: usize) -> Vec<(Value, bool)> {
        let me = self.clone();
        wait_until(
            "the POS receives its webhooks",
            Duration::from_secs(10),
            || me.received.lock().unwrap().len() >= n,
        )
        .await;
        self.received()
    }
}

fn fiscal_config(pos: &Pos) -> String {
    format!(
        r#"
[fiscal]
mode = "pos"
deadline_minutes = 15
[fiscal.pos]
webhook_url = "{}"
key = "{KEY}"
"#,
        pos.url
    )
}

async fn report(api: &TillClient, number: &str, body: Value) -> (u16, Value) {
    api.call(
        "POST",
        &format!("/api/v1/orders/{number}/receipts"),
        Some(CASHIER),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn legacy_each_movement_reaches_the_pos_once_signed_and_its_receipt_comes_back() {
    each_movement_reaches_the_pos_once_signed_and_its_receipt_comes_back(
        chasti::gateway::Dialect::Legacy,
    )
    .await;
}

#[tokio::test]
async fn ecom_each_movement_reaches_the_pos_once_signed_and_its_receipt_comes_back() {
    each_movement_reaches_the_pos_once_signed_and_its_receipt_comes_back(
        chasti::gateway::Dialect::Ecom,
    )
    .await;
}

async fn each_movement_reaches_the_pos_once_signed_and_its_receipt_comes_back(
    dialect: chasti::gateway::Dialect,
) {
    let pos = Pos::start().await;
    pos.refuse.store(2, Ordering::SeqCst);
    let h = Harness::new(HarnessOptions {
        extra_config: fiscal_config(&pos),
        dialect,
        ..HarnessOptions::default()
    })
    .await;
    let api = TillClient::new(h.api());
    let (status, sale) = api
        .call(
            "POST",
            "/api/v1/sales",
            Some(CASHIER),
            Some(json!({
                "amount": "1504.99", "idempotency_key": "fiscal-1", "phone": "+79123456789",
                "items": [
                    {"name": "Кофемашина", "quantity": "1", "price": "1499.99", "vat": "22"},
                    {"name": "Сыр", "quantity": "0.5", "price": "10.00", "vat": "10"}
                ]
            })),
        )
        .await;
    assert_eq!(status, 201, "{sale}");
    let number = sale["order"]["order_number"].as_str().unwrap().to_string();
    let id = uuid::Uuid::parse_str(sale["order"]["id"].as_str().unwrap()).unwrap();
    let order = h.engine.get(&id).unwrap();
    h.sandbox.pay(Harness::gateway_id(&order)).unwrap();
    h.wait_state(&id, StateKind::Paid).await;

    // Refused twice, then delivered once, signed, with what the POS prints.
    let got = pos.wait_for(1).await;
    let (sell, signed) = &got[0];
    assert!(signed, "the body is signed with the key: {sell}");
    assert_eq!(sell["kind"], "sell");
    assert_eq!(sell["amount"], 150_499);
    assert_eq!(sell["movement"], "payment");
    assert_eq!(sell["order_number"], number.as_str());
    assert_eq!(sell["items"].as_array().unwrap().len(), 2);
    assert_eq!(sell["items"][1]["quantity"], "0,5");
    assert_eq!(sell["customer_phone"], "+79123456789");
    let event = sell["event_id"].as_str().unwrap().to_string();
    let engine = h.engine.clone();
    wait_until(
        "the delivery is recorded",
        Duration::from_secs(10),
        move || {
            matches!(
                engine.get(&id).unwrap().receipts[0].status,
                chasti::orders::ReceiptStatus::Sent { .. }
            )
        },
    )
    .await;
    let (_, view) = api
        .call(
            "GET",
            &format!("/api/v1/orders/{number}"),
            Some(CASHIER),
            None,
        )
        .await;
    assert_eq!(view["receipts"][0]["status"], "sent", "{view}");
    assert!(
        view["receipts"][0]["problem"]
            .as_str()
            .unwrap()
            .contains("503"),
        "the refusals are kept: {view}"
    );

    // The POS reports what it printed; the same report again is the same answer.
    let printed = json!({"event_id": event, "kind": "sell", "amount": "1504.99",
        "fiscal_document_number": "1234", "fiscal_sign": "987654321", "fn_number": "9999078900001234"});
    let (status, view) = report(&api, &number, printed.clone()).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["receipts"][0]["status"], "issued");
    assert_eq!(view["receipts"][0]["fiscal_document_number"], 1234);
    assert_eq!(view["receipt_text"], "приход 1 504,99 ₽: ФД 1234");
    let history: Vec<&str> = view["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert!(
        history.contains(&"Пробит чек прихода на 1 504,99 ₽: ФД 1234, ФП 987654321"),
        "{history:?}"
    );
    let (status, again) = report(&api, &number, printed).await;
    assert_eq!(
        (status, &again["version"]),
        (200, &view["version"]),
        "{again}"
    );
    let (status, refused) = report(
        &api,
        &number,
        json!({"kind": "sell_return", "amount": "1.00", "fiscal_document_number": "1235",
            "fiscal_sign": "1", "fn_number": "9999078900001234"}),
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("нет ожидающего чека: чек возврата прихода на 1,00 ₽; ожидаются: ни одного"),
        "{refused}"
    );

    // A partial refund owes a return receipt of its amount.
    let (status, refunded) = api
        .call(
            "POST",
            &format!("/api/v1/orders/{number}/refund"),
            Some(MANAGER),
            Some(json!({"amount": "500.00", "idempotency_key": "r1"})),
        )
        .await;
    assert_eq!(status, 200, "{refunded}");
    let got = pos.wait_for(2).await;
    assert_eq!(got[1].0["kind"], "sell_return");
    assert_eq!(got[1].0["amount"], 50_000);
    assert_eq!(got[1].0["movement"], "refund");
    assert_eq!(got[1].0["refund_key"], "r1");

    // A sale without a cart, reversed the same day: a sell and a return with the same line.
    let other = h.paid_sale(2000, chasti::orders::Mode::OneStage).await;
    let got = pos.wait_for(3).await;
    assert_eq!(got[2].0["amount"], 200_000);
    assert_eq!(got[2].0["items"][0]["name"], "Тест");
    h.engine.reverse(&other.id, None).await.unwrap();
    let got = pos.wait_for(4).await;
    assert_eq!(got[3].0["kind"], "sell_return");
    assert_eq!(got[3].0["movement"], "reversal");
    assert_eq!(got[3].0["items"], got[2].0["items"]);

    // Each delivered once: four receipts, four deliveries (and the two refusals before).
    h.quiet().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ids: std::collections::HashSet<String> = pos
        .received()
        .iter()
        .map(|(v, _)| v["event_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!((pos.received().len(), ids.len()), (4, 4));

    // The CSV's «Чек» column and the metrics.
    let csv = crate::common::http()
        .get(format!("{}/api/v1/orders.csv", h.api()))
        .bearer_auth(CASHIER)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.lines().next().unwrap().ends_with(";Чек"), "{csv}");
    assert!(
        csv.contains("приход 1 504,99 ₽: ФД 1234; возврат 500,00 ₽: ожидается"),
        "{csv}"
    );
    let metrics = h.metrics().await;
    assert!(
        metrics.contains("chasti_fiscal_receipts_total{outcome=\"issued\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_receipt_survives_a_restart_and_is_missing_after_its_deadline() {
    let pos = Pos::start().await;
    pos.refuse.store(usize::MAX, Ordering::SeqCst);
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let mut h = Harness::new(HarnessOptions {
        extra_config: fiscal_config(&pos),
        clock: Some(clock.clone()),
        ..HarnessOptions::default()
    })
    .await;
    let order = h.paid_sale(1200, chasti::orders::Mode::OneStage).await;
    wait_until("the POS is tried", Duration::from_secs(10), || {
        h.engine.get(&order.id).unwrap().receipts[0].tries >= 1
    })
    .await;

    // Past the deadline unreported: «чек не пробит», in the order and its history.
    clock.advance(chrono::Duration::minutes(16));
    wait_until(
        "the receipt is marked missing",
        Duration::from_secs(10),
        || h.engine.get(&order.id).unwrap().receipts[0].late,
    )
    .await;
    let api = TillClient::new(h.api());
    let (_, view) = api
        .call(
            "GET",
            &format!("/api/v1/orders/{}", order.order_number),
            Some(CASHIER),
            None,
        )
        .await;
    assert_eq!(view["receipts"][0]["missing"], true, "{view}");
    assert_eq!(view["receipt_text"], "приход 1 200,00 ₽: чек не пробит");
    assert!(
        view["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["text"] == "Чек не пробит: чек прихода на 1 200,00 ₽ не пробит в срок"),
        "{view}"
    );

    // Stopped with the POS still refusing; started again with it answering: delivered once.
    h.stop().await.unwrap();
    let (sandbox, dir) = (h.sandbox.clone(), h.dir.clone());
    drop(h);
    assert!(pos.received().is_empty());
    pos.refuse.store(0, Ordering::SeqCst);
    let h = Harness::with_sandbox(
        sandbox,
        HarnessOptions {
            extra_config: fiscal_config(&pos),
            clock: Some(clock.clone()),
            dir: Some(dir),
            ..HarnessOptions::default()
        },
    )
    .await;
    let got = pos.wait_for(1).await;
    assert_eq!(got[0].0["order_number"], order.order_number.as_str());
    wait_until(
        "the receipt is handed over",
        Duration::from_secs(10),
        || {
            matches!(
                h.engine.get(&order.id).unwrap().receipts[0].status,
                chasti::orders::ReceiptStatus::Sent { .. }
            )
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(pos.received().len(), 1, "once");
}
