//! `[fiscal] mode = "atol"` end to end against the fake ATOL driver (tests/it/common/atol.rs):
//! the sale's cart printed as a sell receipt, a partial refund and a reversal as returns, each
//! exactly once, over both of the bank's gateways; every ККТ error the shop meets read with its
//! fix; a lost reply and a restart between sending and the answer never printing twice.

use std::time::Duration;

use serde_json::json;

use chasti::gateway::Dialect;
use chasti::orders::{Mode, ReceiptStatus, StateKind};

use crate::common::atol::FakeAtol;
use crate::common::{wait_until, Harness, HarnessOptions, TillClient, CASHIER, MANAGER};

fn atol_config(atol: &FakeAtol, taxation: &str) -> String {
    format!(
        r#"
[fiscal]
mode = "atol"
taxation = "{taxation}"
[fiscal.atol]
url = "{}"
operator = "Старший кассир"
"#,
        atol.url
    )
}

async fn harness(atol: &FakeAtol, dialect: Dialect) -> Harness {
    Harness::new(HarnessOptions {
        extra_config: atol_config(atol, "osn"),
        dialect,
        ..HarnessOptions::default()
    })
    .await
}

/// Waits until the order's receipt `n` is issued or failed; returns the order.
async fn settled(h: &Harness, id: &uuid::Uuid, n: usize) -> chasti::orders::Order {
    let engine = h.engine.clone();
    let id = *id;
    wait_until("the receipt settles", Duration::from_secs(10), move || {
        engine
            .get(&id)
            .unwrap()
            .receipts
            .get(n)
            .is_some_and(|r| !r.open())
    })
    .await;
    h.engine.get(&id).unwrap()
}

fn issued(order: &chasti::orders::Order, n: usize) -> u64 {
    match &order.receipts[n].status {
        ReceiptStatus::Issued(f) => f.document_number,
        other => panic!("receipt {n} is {other:?}: {:?}", order.receipts[n]),
    }
}

async fn a_sale_a_refund_and_a_reversal_print_once_each(dialect: Dialect) {
    let atol = FakeAtol::start().await;
    let h = harness(&atol, dialect).await;
    let api = TillClient::new(h.api());
    let (status, sale) = api
        .call_as(
            "POST",
            "/api/v1/sales",
            Some(CASHIER),
            Some("Иванова"),
            Some(json!({
                "amount": "1504.99", "idempotency_key": "atol-1", "email": "ivanova@mail.ru",
                "items": [
                    {"name": "Кофемашина", "quantity": "1", "price": "1499.99", "vat": "22"},
                    {"name": "Сыр", "quantity": "0.5", "price": "10.00", "vat": "10"}
                ]
            })),
        )
        .await;
    assert_eq!(status, 201, "{sale}");
    let id = uuid::Uuid::parse_str(sale["order"]["id"].as_str().unwrap()).unwrap();
    h.sandbox
        .pay(Harness::gateway_id(&h.engine.get(&id).unwrap()))
        .unwrap();
    h.wait_state(&id, StateKind::Paid).await;
    let order = settled(&h, &id, 0).await;
    let fd = issued(&order, 0);

    let printed = atol.printed();
    assert_eq!(printed.len(), 1);
    let sell = &printed[0].task;
    assert_eq!(sell["type"], "sell");
    assert_eq!(sell["taxationType"], "osn");
    assert_eq!(sell["operator"]["name"], "Иванова");
    assert_eq!(sell["clientInfo"]["emailOrPhone"], "ivanova@mail.ru");
    assert_eq!(sell["total"].to_string(), "1504.99");
    assert_eq!(sell["payments"][0]["type"], "electronically");
    assert_eq!(sell["items"][0]["tax"]["type"], "vat22");
    assert_eq!(sell["items"][1]["quantity"].to_string(), "0.5");
    assert_eq!(sell["items"][1]["amount"].as_f64(), Some(5.0));
    assert_eq!(printed[0].uuid, order.receipts[0].id.to_string());
    assert!(
        order.history.iter().any(|e| e.text()
            == format!(
                "Пробит чек прихода на 1 504,99 ₽: ФД {fd}, ФП {}",
                3_000_000_000u64 + fd
            )),
        "{:#?}",
        order.history
    );

    // A partial refund: a return of its amount, in one line naming the order.
    let (status, body) = api
        .call(
            "POST",
            &format!("/api/v1/orders/{id}/refund"),
            Some(MANAGER),
            Some(json!({"amount": "500.00", "idempotency_key": "r1"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let order = settled(&h, &id, 1).await;
    issued(&order, 1);
    let printed = atol.printed();
    assert_eq!(printed[1].task["type"], "sellReturn");
    assert_eq!(printed[1].task["total"].as_f64(), Some(500.0));

    // A reversal of another sale: its return lists what its sell listed.
    let other = h.paid_sale(2000, Mode::OneStage).await;
    settled(&h, &other.id, 0).await;
    h.engine.reverse(&other.id, None).await.unwrap();
    let reversed = settled(&h, &other.id, 1).await;
    issued(&reversed, 1);
    let printed = atol.printed();
    assert_eq!(printed.len(), 4, "each movement printed once");
    assert_eq!(printed[3].task["type"], "sellReturn");
    assert_eq!(printed[3].task["items"], printed[2].task["items"]);
    // Nothing printed twice, however often the worker looked.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(atol.printed().len(), 4);
    assert_eq!(atol.jobs(), 4);
}

#[tokio::test]
async fn legacy_a_sale_a_refund_and_a_reversal_print_once_each() {
    a_sale_a_refund_and_a_reversal_print_once_each(Dialect::Legacy).await;
}

#[tokio::test]
async fn ecom_a_sale_a_refund_and_a_reversal_print_once_each() {
    a_sale_a_refund_and_a_reversal_print_once_each(Dialect::Ecom).await;
}

#[tokio::test]
async fn each_kkt_error_reads_with_its_fix_and_only_a_person_ends_the_permanent_ones() {
    let atol = FakeAtol::start().await;
    let h = harness(&atol, Dialect::Legacy).await;
    // Transient: paper out, then a device not connected; the third try prints (a new job each
    // time: the driver ended the failed ones with nothing printed).
    atol.fail_next(44, "Нет бумаги");
    atol.fail_next(2, "Нет связи");
    let paid = h.paid_sale(1000, Mode::OneStage).await;
    let order = settled(&h, &paid.id, 0).await;
    issued(&order, 0);
    assert_eq!(
        order.receipts[0].round, 2,
        "two jobs ended in errors before"
    );
    assert_eq!(
        atol.failed().iter().map(|(_, c)| *c).collect::<Vec<_>>(),
        vec![44, 2]
    );
    assert!(
        order.receipts[0]
            .last_problem
            .as_deref()
            .unwrap()
            .contains("ККТ не подключена"),
        "{:?}",
        order.receipts[0]
    );

    // A shift over 24 hours: retried until the cashier closes it.
    atol.expire_shift(true);
    let later = h.paid_sale(1100, Mode::OneStage).await;
    let engine = h.engine.clone();
    let id = later.id;
    wait_until(
        "the shift's problem is said",
        Duration::from_secs(10),
        move || {
            engine.get(&id).unwrap().receipts[0]
                .last_problem
                .as_deref()
                .is_some_and(|p| p.contains("Z-отчёт"))
        },
    )
    .await;
    atol.expire_shift(false);
    issued(&settled(&h, &later.id, 0).await, 0);

    // The ФН full: needs a person; «чек не пробит» at once, never tried again.
    atol.fail_next(121, "ФН переполнен");
    let stuck = h.paid_sale(1200, Mode::OneStage).await;
    let order = settled(&h, &stuck.id, 0).await;
    match &order.receipts[0].status {
        ReceiptStatus::Failed { why } => {
            assert!(why.contains("замените фискальный накопитель"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    assert!(order.receipts[0].missing());
    let jobs = atol.jobs();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(atol.jobs(), jobs, "a failed receipt is not tried again");
    let api = TillClient::new(h.api());
    let (_, view) = api
        .call(
            "GET",
            &format!("/api/v1/orders/{}", stuck.id),
            Some(CASHIER),
            None,
        )
        .await;
    assert_eq!(view["receipt_text"], "приход 1 200,00 ₽: чек не пробит");
}

#[tokio::test]
async fn a_vat_the_taxation_system_does_not_allow_is_refused_by_the_kkt_and_said() {
    let atol = FakeAtol::start().await;
    let h = Harness::new(HarnessOptions {
        extra_config: atol_config(&atol, "usn_income"),
        ..HarnessOptions::default()
    })
    .await;
    let paid = h.paid_sale(1000, Mode::OneStage).await;
    let order = settled(&h, &paid.id, 0).await;
    match &order.receipts[0].status {
        ReceiptStatus::Failed { why } => assert!(why.contains("Ставка НДС"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(atol.printed().len(), 0);
}

#[tokio::test]
async fn a_lost_reply_or_a_restart_before_the_answer_never_prints_twice() {
    let atol = FakeAtol::start().await;
    // The driver takes the job and the reply is lost: asked by the same uuid, printed once.
    atol.lose_next_reply();
    let h = harness(&atol, Dialect::Legacy).await;
    let first = h.paid_sale(1000, Mode::OneStage).await;
    issued(&settled(&h, &first.id, 0).await, 0);
    assert_eq!((atol.jobs(), atol.printed().len()), (1, 1));

    // The job queued, then chasti stops before the ККТ answers; the ККТ prints meanwhile; the
    // next start reads the result back by the same uuid.
    atol.hold(true);
    let second = h.paid_sale(1100, Mode::OneStage).await;
    let engine = h.engine.clone();
    let id = second.id;
    wait_until(
        "the job is handed to the driver",
        Duration::from_secs(10),
        move || {
            matches!(
                engine.get(&id).unwrap().receipts[0].status,
                ReceiptStatus::Sent { .. }
            )
        },
    )
    .await;
    let mut h = h;
    h.stop().await.unwrap();
    let (sandbox, dir) = (h.sandbox.clone(), h.dir.clone());
    drop(h);
    atol.hold(false);
    let h = Harness::with_sandbox(
        sandbox,
        HarnessOptions {
            extra_config: atol_config(&atol, "osn"),
            dir: Some(dir),
            ..HarnessOptions::default()
        },
    )
    .await;
    issued(&settled(&h, &second.id, 0).await, 0);
    assert_eq!((atol.jobs(), atol.printed().len()), (2, 2));
}

#[tokio::test]
async fn a_driver_that_is_not_running_is_said_and_retried() {
    // An address nothing listens on: the ATOL service is stopped.
    let port = crate::common::free_port();
    let h = Harness::new(HarnessOptions {
        extra_config: format!(
            "[fiscal]\nmode = \"atol\"\n[fiscal.atol]\nurl = \"http://127.0.0.1:{port}\"\ntimeout_secs = 1\n"
        ),
        ..HarnessOptions::default()
    })
    .await;
    let paid = h.paid_sale(1000, Mode::OneStage).await;
    let engine = h.engine.clone();
    let id = paid.id;
    wait_until(
        "the driver's absence is said",
        Duration::from_secs(10),
        move || engine.get(&id).unwrap().receipts[0].tries >= 2,
    )
    .await;
    let order = h.engine.get(&paid.id).unwrap();
    assert!(order.receipts[0].open());
    assert!(
        order.receipts[0]
            .last_problem
            .as_deref()
            .unwrap()
            .contains("Веб-сервер драйвера ККТ не отвечает"),
        "{:?}",
        order.receipts[0]
    );
}

/// A real `chasti serve` killed (SIGKILL) while the ККТ is printing: the job's uuid was in the
/// store before it was sent, so the next start reads the receipt back and never prints twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_daemon_reads_the_receipt_back_and_never_prints_twice() {
    let atol = FakeAtol::start().await;
    atol.hold(true);
    let url = atol.url.clone();
    // The shipped config with its [fiscal] section turned to the fake driver.
    let d = crate::cli::start_daemon_with(move |text| {
        format!(
            "{}\n[fiscal.atol]\nurl = \"{url}\"\n",
            text.replace("mode = \"none\"", "mode = \"atol\"")
        )
    });
    let api = TillClient::new(d.serve.api.clone());
    let (status, sale) = api
        .call(
            "POST",
            "/api/v1/sales",
            Some("demo-cashier-token-change-me"),
            Some(json!({"amount": "1200.00", "idempotency_key": "crash-1"})),
        )
        .await;
    assert_eq!(status, 201, "{sale}");
    let number = sale["order"]["order_number"].as_str().unwrap().to_string();
    crate::cli::sandbox_pay(&d, sale["payment_url"].as_str().unwrap());
    let queued = atol.clone();
    wait_until(
        "the ККТ has the job",
        Duration::from_secs(20),
        move || queued.jobs() == 1,
    )
    .await;
    let (config, dir) = (d.config.clone(), d._dir);
    d.serve.kill9();
    atol.hold(false);
    let serve = crate::common::ServeProcess::start(&config, &dir.path().join("serve2.log"), &[]);
    let api = TillClient::new(serve.api.clone());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, view) = api
            .call(
                "GET",
                &format!("/api/v1/orders/{number}"),
                Some("demo-cashier-token-change-me"),
                None,
            )
            .await;
        if view["receipts"][0]["status"] == "issued" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{view}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!((atol.jobs(), atol.printed().len()), (1, 1));
    drop(serve);
}
