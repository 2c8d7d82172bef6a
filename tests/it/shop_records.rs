//! What a shop keeps of its day, through the till API against the sandbox: the number on the
//! slip opens every route; who did each thing is on the history and the slip; a manual deposit;
//! the bank's time of a payment decides the same-day reversal even when the callback comes after
//! Moscow midnight; the CSV of a range opens as a spreadsheet would read it; each kind of bank
//! failure tells the cashier something different.

use std::sync::Arc;
use std::time::Duration;

use chasti::devices::printer::Printer;
use chasti::devices::profile;
use chasti::engine::ManualClock;
use chasti::orders::{Mode, StateKind};
use chasti::sandbox::{CallbackFaults, Fault, FaultRule, Faults};
use chrono::TimeZone;
use serde_json::{json, Value};

use crate::common::{settings, FakeDevice, Harness, HarnessOptions, TillClient, CASHIER, MANAGER};

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn id_of(v: &Value) -> uuid::Uuid {
    uuid::Uuid::parse_str(v["order"]["id"].as_str().unwrap()).unwrap()
}

/// 23 November 2026 at h:m:s in Moscow (UTC+3).
fn msk(h: u32, m: u32, s: u32) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc.with_ymd_and_hms(2026, 11, 23, h, m, s).unwrap() - chrono::Duration::hours(3)
}

async fn paid_sale(h: &Harness, api: &TillClient, amount: &str, mode: &str, key: &str) -> Value {
    let (status, sale) = api
        .call_as(
            "POST",
            "/api/v1/sales",
            Some(CASHIER),
            Some("Иванова"),
            Some(json!({"amount": amount, "mode": mode, "idempotency_key": key})),
        )
        .await;
    assert_eq!(status, 201, "{sale}");
    let order = h.engine.get(&id_of(&sale)).unwrap();
    h.sandbox.pay(Harness::gateway_id(&order)).unwrap();
    sale
}

/// Every route that takes an order takes the number printed on the slip (in any letter case),
/// and every action names who asked, on the history and on the slip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_takes_the_slips_number_and_records_who_asked() {
    let paper = FakeDevice::start(0x12);
    let tm = profile::printer("epson-tm-t20iii", None).unwrap();
    let h = Harness::new(HarnessOptions {
        auto_deposit: false,
        printer: Some(Printer::spawn(settings(&paper.path()), tm.clone())),
        ..HarnessOptions::default()
    })
    .await;
    let api = TillClient::new(h.api());
    let manager = |method: &'static str, path: String, body: Option<Value>| {
        let api = &api;
        async move {
            api.call_as(method, &path, Some(MANAGER), Some("Сидорова"), body)
                .await
        }
    };

    // A hold, deposited by hand by the manager.
    let held = paid_sale(&h, &api, "800", "two-stage", "hold").await;
    let number = held["order"]["order_number"].as_str().unwrap().to_string();
    h.wait_state(&id_of(&held), StateKind::Held).await;
    let (status, body) = manager("POST", format!("/api/v1/orders/{number}/deposit"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"]["name"], "paid", "{body}");
    assert_eq!(h.sandbox.ledger().count_ok("deposit.do", &number), 1);

    let lower = number.to_lowercase();
    let (status, shown) = api
        .call(
            "GET",
            &format!("/api/v1/orders/{lower}"),
            Some(CASHIER),
            None,
        )
        .await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["id"], held["order"]["id"]);
    let mut events = api
        .events(&format!("/api/v1/orders/{number}/events"), Some(CASHIER))
        .await;
    events
        .until("the order on its stream", |o| o["order_number"] == number)
        .await;

    let (status, printed) = api
        .call_as(
            "POST",
            &format!("/api/v1/orders/{number}/reprint"),
            Some(CASHIER),
            Some("Иванова"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{printed}");
    let (status, body) = manager(
        "POST",
        format!("/api/v1/orders/{number}/refund"),
        Some(json!({"amount": "300", "idempotency_key": "part"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"]["name"], "partially_refunded", "{body}");
    assert_eq!(body["refundable"], 50000, "{body}");

    let paid = paid_sale(&h, &api, "150", "one-stage", "pay").await;
    let paid_number = paid["order"]["order_number"].as_str().unwrap().to_string();
    h.wait_state(&id_of(&paid), StateKind::Paid).await;
    let (status, body) = manager(
        "POST",
        format!("/api/v1/orders/{paid_number}/reverse"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"]["name"], "reversed", "{body}");

    // Who did what, in the order's history.
    let order = h.engine.get(&id_of(&held)).unwrap();
    let who = |what: &str| {
        order
            .history
            .iter()
            .find(|e| e.what().contains(what))
            .and_then(|e| e.actor.clone())
            .map(|a| a.to_string())
            .unwrap_or_else(|| panic!("{what} with an actor in {:#?}", order.history))
    };
    assert_eq!(who("sale of"), "till-1 (Иванова)");
    assert_eq!(who("deposit"), "boss (Сидорова)");
    assert_eq!(who("printed again"), "till-1 (Иванова)");
    assert_eq!(who("refund"), "boss (Сидорова)");
    let reversed = h.engine.get(&id_of(&paid)).unwrap();
    assert!(reversed.history.iter().any(|e| e.to == StateKind::Reversing
        && e.actor.as_ref().map(|a| a.to_string()).as_deref() == Some("boss (Сидорова)")));
    assert_eq!(reversed.state.kind(), StateKind::Reversed);
    assert!(
        !format!("{order:?}{reversed:?}").contains(MANAGER),
        "never the token itself"
    );

    // The refund and reversal slips carry who did it and a line to sign.
    let signer = tm.code_page.encode("Оформил: boss (Сидорова)");
    let signature = tm.code_page.encode(chasti::devices::slip::SIGNATURE);
    let refund = tm.code_page.encode("ВОЗВРАТ");
    let reversal = tm.code_page.encode("ОПЛАТА ОТМЕНЕНА");
    let count = |got: &[u8], what: &[u8]| got.windows(what.len()).filter(|w| *w == what).count();
    let got = paper.wait_until(|got| count(got, &signature) == 2);
    assert!(contains(&got, &refund) && contains(&got, &reversal));
    assert_eq!(count(&got, &signer), 2, "both slips name the manager");

    // A cashier reprints the reversal slip: a copy, still naming the manager who reversed,
    // saying when and by whom it was printed again; the manager page's «Кто» still shows the
    // reversal's author.
    let (status, printed) = api
        .call_as(
            "POST",
            &format!("/api/v1/orders/{paid_number}/reprint"),
            Some(CASHIER),
            Some("Иванова"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{printed}");
    let copy = tm.code_page.encode("КОПИЯ");
    let reprinted_by = tm.code_page.encode("Копия напечатана");
    // The second copy of this test (the first was the held order's slip, above).
    let got = paper.wait_until(|got| count(got, &copy) == 2 && count(got, &reprinted_by) == 2);
    assert_eq!(
        count(&got, &signer),
        3,
        "the copy names who reversed, not who reprinted"
    );
    let after_copy = &got[got.windows(copy.len()).rposition(|w| w == copy).unwrap()..];
    assert!(
        contains(after_copy, &tm.code_page.encode("till-1"))
            && contains(after_copy, &tm.code_page.encode("(Иванова)")),
        "the copy names who printed it again"
    );
    assert!(
        !contains(after_copy, &tm.code_page.encode("Оформил: till-1")),
        "the reprint is not the reversal"
    );
    let (_, view) = api
        .call(
            "GET",
            &format!("/api/v1/orders/{paid_number}"),
            Some(CASHIER),
            None,
        )
        .await;
    assert_eq!(
        view["who"], "продал: till-1 (Иванова); отмена оплаты: boss (Сидорова)",
        "{view}"
    );
}

/// A number that is not there: 404 that names it, on every route a till or a manager calls.
#[tokio::test]
async fn an_unknown_number_is_404_naming_it_on_every_route() {
    let h = Harness::new(HarnessOptions::default()).await;
    let api = TillClient::new(h.api());
    // A number that is not there: 404 that names it, on every route.
    for (method, path) in [
        ("GET", "/api/v1/orders/T-1-261123-9999"),
        ("POST", "/api/v1/orders/T-1-261123-9999/cancel"),
        ("POST", "/api/v1/orders/T-1-261123-9999/reprint"),
    ] {
        let (status, body) = api.call(method, path, Some(CASHIER), None).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("Заказ «T-1-261123-9999» не найден"),
            "{body}"
        );
    }
    for action in ["deposit", "reverse"] {
        let path = format!("/api/v1/orders/T-1-261123-9999/{action}");
        let (status, _) = api.call("POST", &path, Some(MANAGER), None).await;
        assert_eq!(status, 404, "{action}");
    }
}

/// A payment at 23:59:50 Moscow time whose callback comes after midnight: the bank's time
/// counts, so no reversal is offered (the one allowed try is not burned) and a refund works.
#[tokio::test]
async fn a_payment_before_midnight_called_back_after_it_takes_a_refund() {
    let clock = Arc::new(ManualClock::new(msk(23, 59, 40)));
    let h = Harness::new(HarnessOptions {
        clock: Some(clock.clone()),
        run: false,
        ..HarnessOptions::default()
    })
    .await;
    h.sandbox.set_clock(msk(23, 59, 40));
    h.sandbox.set_faults(Faults {
        callbacks: CallbackFaults {
            hold: true,
            ..CallbackFaults::default()
        },
        ..Faults::default()
    });
    let order = h.sell(2500, Mode::OneStage).await;
    h.sandbox.set_clock(msk(23, 59, 50));
    h.sandbox.pay(Harness::gateway_id(&order)).unwrap();

    let after_midnight = msk(23, 59, 50) + chrono::Duration::seconds(20);
    clock.set(after_midnight);
    h.sandbox.set_clock(after_midnight);
    assert_eq!(h.sandbox.release_callbacks(), 1, "the payment's callback");
    let paid = h.wait_state(&order.id, StateKind::Paid).await;
    let paid_at = paid.paid_at.unwrap();
    assert!(
        paid_at >= msk(23, 59, 50) && paid_at < msk(23, 59, 50) + chrono::Duration::seconds(10),
        "paid_at is the bank's time of the payment, not when chasti heard: {paid_at}"
    );

    let api = TillClient::new(h.api());
    let (status, body) = api
        .call(
            "POST",
            &format!("/api/v1/orders/{}/reverse", order.order_number),
            Some(MANAGER),
            None,
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("Оформите возврат"),
        "{body}"
    );
    let ledger = h.sandbox.ledger();
    assert!(
        !ledger
            .operations
            .iter()
            .any(|e| e.operation == "reverse.do"),
        "no reversal was sent to the bank"
    );
    assert!(!h.engine.get(&order.id).unwrap().reversal_attempted);

    let (status, body) = api
        .call(
            "POST",
            &format!("/api/v1/orders/{}/refund", order.order_number),
            Some(MANAGER),
            Some(json!({"idempotency_key": "next-morning"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"]["name"], "refunded");
    assert_eq!(
        h.sandbox
            .ledger()
            .count_ok("refund.do", &order.order_number),
        1
    );
}

/// The CSV of two days, read back with a real CSV reader as a spreadsheet would.
#[tokio::test]
async fn the_csv_of_a_range_reads_back_as_the_orders() {
    let clock = Arc::new(ManualClock::new(msk(12, 0, 0) - chrono::Duration::days(1)));
    let h = Harness::new(HarnessOptions {
        clock: Some(clock.clone()),
        ..HarnessOptions::default()
    })
    .await;
    let api = TillClient::new(h.api());
    let (status, first) = api
        .call_as(
            "POST",
            "/api/v1/sales",
            Some(CASHIER),
            Some("Иванова"),
            Some(json!({"amount": "1499.50", "idempotency_key": "d1",
                        "description": "=A1; «скидка»"})),
        )
        .await;
    assert_eq!(status, 201, "{first}");
    h.sandbox
        .pay(Harness::gateway_id(&h.engine.get(&id_of(&first)).unwrap()))
        .unwrap();
    h.wait_state(&id_of(&first), StateKind::Paid).await;

    clock.set(msk(12, 0, 0));
    let second = api.sale("100", "d2").await;
    let (status, _) = api
        .call(
            "GET",
            "/api/v1/orders.csv?from=22.11.2026&to=23.11.2026",
            None,
            None,
        )
        .await;
    assert_eq!(status, 401, "the CSV needs a token");

    let resp = api
        .http
        .get(format!(
            "{}/api/v1/orders.csv?from=22.11.2026&to=23.11.2026",
            api.base
        ))
        .bearer_auth(CASHIER)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(resp.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("chasti-orders-2026-11-22-2026-11-23.csv"));
    let bytes = resp.bytes().await.unwrap();
    assert_eq!(&bytes[..3], b"\xEF\xBB\xBF", "a BOM, so Excel reads UTF-8");
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b';')
        .from_reader(&bytes[3..]);
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header[0], "Дата (МСК)");
    assert_eq!(header[2], "Заказ");
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 2);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(&rows[0][col("Дата (МСК)")], "22.11.2026");
    assert_eq!(&rows[0][col("Время (МСК)")], "12:00:00");
    assert_eq!(&rows[0][col("Сумма")], "1499,50");
    assert_eq!(&rows[0][col("Оплачено")], "1499,50");
    assert_eq!(&rows[0][col("Состояние")], "Оплачено");
    assert_eq!(&rows[0][col("Кто продал")], "till-1 (Иванова)");
    assert_eq!(
        &rows[0][col("Описание")],
        "'=A1; «скидка»",
        "quoted around `;` and never a formula"
    );
    assert_eq!(&rows[1][col("Дата (МСК)")], "23.11.2026");
    assert_eq!(&rows[1][col("Заказ")], second["order"]["order_number"]);
    assert_eq!(&rows[1][col("Оплачено")], "0,00");

    let (status, body) = api
        .call(
            "GET",
            "/api/v1/orders.csv?from=23.11.2026&to=22.11.2026",
            Some(CASHIER),
            None,
        )
        .await;
    assert_eq!(status, 422, "{body}");
}

/// Refused, not answered in time, not reachable, and an order chasti closed itself: four
/// different sentences, each saying what to do; never the bank's raw «Access denied».
#[tokio::test]
async fn each_bank_failure_reads_differently_for_the_cashier() {
    let h = Harness::new(HarnessOptions {
        template: false,
        request_timeout: Duration::from_millis(300),
        ..HarnessOptions::default()
    })
    .await;
    let api = TillClient::new(h.api());
    let sell = |key: &'static str| {
        let api = &api;
        async move {
            api.call(
                "POST",
                "/api/v1/sales",
                Some(CASHIER),
                Some(json!({"amount": "100", "idempotency_key": key})),
            )
            .await
        }
    };

    h.sandbox.add_fault(
        FaultRule::new(
            "register.do",
            Fault::Refuse {
                code: 5,
                message: "Access denied".into(),
            },
        )
        .before()
        .times(Some(1)),
    );
    let (status, denied) = sell("denied").await;
    assert_eq!(
        (status, denied["error_type"].as_str()),
        (502, Some("gateway"))
    );
    let denied = denied["message"].as_str().unwrap().to_string();
    assert!(denied.starts_with("Касса не настроена"), "{denied}");
    assert!(!denied.contains("Access denied"), "{denied}");

    for method in ["register.do", "getOrderStatusExtended.do"] {
        h.sandbox
            .add_fault(FaultRule::new(method, Fault::Latency { ms: 1000 }).times(Some(2)));
    }
    let (status, late) = sell("late").await;
    assert_eq!(
        (status, late["error_type"].as_str()),
        (503, Some("pending")),
        "{late}"
    );
    let late = late["message"].as_str().unwrap().to_string();
    assert!(
        late.contains("Банк не ответил вовремя") && late.contains("сохранён"),
        "{late}"
    );
    h.sandbox.clear_faults();

    // The reply is lost and no payment page can be rebuilt: chasti closes the order itself.
    h.sandbox
        .add_fault(FaultRule::new("register.do", Fault::DropConnection).times(Some(1)));
    let (status, orphan) = sell("orphan").await;
    assert_eq!(status, 502, "{orphan}");
    let orphan = orphan["message"].as_str().unwrap().to_string();
    assert!(
        orphan.contains("Банк не вернул ссылку") && !orphan.contains("Банк отказал"),
        "{orphan}"
    );
    let ledger = h.sandbox.ledger();
    let declined = ledger
        .operations
        .iter()
        .filter(|e| e.operation == "decline.do" && e.ok())
        .count();
    assert_eq!(declined, 1, "the orphan was closed at the bank");

    // A bank that cannot be reached at all: nothing was created, retry.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone = url::Url::parse(&format!(
        "http://{}/payment/rest/",
        closed.local_addr().unwrap()
    ))
    .unwrap();
    drop(closed);
    let offline = Harness::new(HarnessOptions {
        configure: Some(Box::new(move |c| c.gateway.base_url = gone)),
        ..HarnessOptions::default()
    })
    .await;
    let (status, unreachable) = TillClient::new(offline.api())
        .call(
            "POST",
            "/api/v1/sales",
            Some(CASHIER),
            Some(json!({"amount": "100", "idempotency_key": "offline"})),
        )
        .await;
    assert_eq!(status, 503, "{unreachable}");
    assert_eq!(unreachable["error_type"], "unreachable");
    let unreachable = unreachable["message"].as_str().unwrap().to_string();
    assert!(unreachable.contains("продажа не создана"), "{unreachable}");

    let all = [&denied, &late, &orphan, &unreachable];
    let distinct: std::collections::HashSet<_> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "{all:#?}");
}
