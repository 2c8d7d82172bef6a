//! Every state, total and reply tells the truth (issue 21), through the till API over real HTTP
//! against the sandbox: a reversed sale reads as given back in the API, the CSV and the day's
//! totals; a second refund or cancel says what is already so; a retried sale that is no longer
//! payable answers 409 with the order and no link; a cancelled order the bank reports declined
//! stays cancelled; a deposit the bank refuses for good is not sent again; identical failed
//! attempts each count.

use std::time::Duration;

use chasti::orders::Mode;
use chasti::orders::StateKind;
use chasti::sandbox::{AttemptFailure, Fault, FaultRule};
use serde_json::{json, Value};

use crate::common::{Harness, HarnessOptions, TillClient, CASHIER, MANAGER};

async fn start(options: HarnessOptions) -> (Harness, TillClient) {
    let h = Harness::new(options).await;
    let till = TillClient::new(h.api());
    (h, till)
}

fn id_of(sale: &Value) -> String {
    sale["order"]["id"].as_str().unwrap().to_string()
}

async fn order(till: &TillClient, id: &str) -> Value {
    let (status, body) = till
        .call("GET", &format!("/api/v1/orders/{id}"), Some(CASHIER), None)
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn pay(h: &Harness, sale: &Value) -> chasti::orders::Order {
    let id = uuid::Uuid::parse_str(&id_of(sale)).unwrap();
    let order = h.engine.get(&id).unwrap();
    h.sandbox.pay(Harness::gateway_id(&order)).unwrap();
    h.wait_state(&id, StateKind::Paid).await
}

/// The CSV row of one order, as a map of header to cell.
async fn csv_row(till: &TillClient, number: &str) -> std::collections::HashMap<String, String> {
    let (status, body) = till
        .call("GET", "/api/v1/orders.csv", Some(MANAGER), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let text = body.as_str().unwrap().trim_start_matches('\u{feff}');
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(';').collect();
    let row = lines
        .find(|l| l.contains(number))
        .unwrap_or_else(|| panic!("{number} not in {text}"));
    header
        .into_iter()
        .map(str::to_string)
        .zip(row.split(';').map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reversed_sale_reads_as_given_back_everywhere() {
    let (h, till) = start(HarnessOptions::default()).await;
    let sale = till.sale("1499", "reversed-1").await;
    let paid = pay(&h, &sale).await;
    let id = id_of(&sale);
    let (status, body) = till
        .call(
            "POST",
            &format!("/api/v1/orders/{id}/reverse"),
            Some(MANAGER),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let view = order(&till, &id).await;
    assert_eq!(view["state"]["name"], "reversed", "{view}");
    assert_eq!(
        [
            &view["deposited"],
            &view["reversed"],
            &view["refunded"],
            &view["left"],
            &view["refundable"]
        ],
        [
            &json!(149_900),
            &json!(149_900),
            &json!(0),
            &json!(0),
            &json!(0)
        ],
        "{view}"
    );
    let row = csv_row(&till, paid.order_number.as_str()).await;
    assert_eq!(row["Оплачено"], "1499,00");
    assert_eq!(row["Отменено"], "1499,00");
    assert_eq!(row["Возвращено"], "0,00");
    assert_eq!(row["Осталось"], "0,00");
    assert_eq!(row["Можно вернуть"], "0,00");
    assert_eq!(row["Состояние"], "Оплата отменена");
    let (_, list) = till
        .call("GET", "/api/v1/orders", Some(MANAGER), None)
        .await;
    assert_eq!(list["total"]["sold"], 149_900, "{list}");
    assert_eq!(list["total"]["reversed"], 149_900, "{list}");
    assert_eq!(
        list["total"]["net"], 0,
        "the row and the totals agree: {list}"
    );

    let (status, body) = till
        .call(
            "POST",
            &format!("/api/v1/orders/{id}/refund"),
            Some(MANAGER),
            Some(json!({"idempotency_key": "after-reversal"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["message"],
        "Оплата заказа отменена, покупателю вернулось 1 499,00 ₽: возвращать нечего."
    );
    assert_eq!(
        h.sandbox.ledger().count_ok("refund.do", &paid.order_number),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_refund_of_a_refunded_sale_says_it_is_refunded_in_full() {
    let (h, till) = start(HarnessOptions::default()).await;
    let sale = till.sale("800", "refunded-1").await;
    let paid = pay(&h, &sale).await;
    let id = id_of(&sale);
    let refund = |key: &'static str| {
        let (till, id) = (&till, id.clone());
        async move {
            till.call(
                "POST",
                &format!("/api/v1/orders/{id}/refund"),
                Some(MANAGER),
                Some(json!({ "idempotency_key": key })),
            )
            .await
        }
    };
    let (status, body) = refund("all").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = refund("all-again").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["message"],
        "Заказ уже возвращён полностью: возвращено 800,00 ₽ из 800,00 ₽. Возвращать больше нечего."
    );
    assert_eq!(
        h.sandbox.ledger().count_ok("refund.do", &paid.order_number),
        1
    );
    let row = csv_row(&till, paid.order_number.as_str()).await;
    assert_eq!(
        (
            row["Оплачено"].as_str(),
            row["Возвращено"].as_str(),
            row["Осталось"].as_str()
        ),
        ("800,00", "800,00", "0,00")
    );
}

/// A double click or a retry after a lost reply: the second cancel answers 200 with the
/// cancelled order and sends nothing; the bank's «declined» about it is agreement; a same-key
/// retry of the sale answers 409 `closed` with the order and no link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_sale_stays_cancelled_and_says_so() {
    let (h, till) = start(HarnessOptions::default()).await;
    let sale = till.sale("300", "cancelled-1").await;
    let id = id_of(&sale);
    let number = sale["order"]["order_number"].as_str().unwrap().to_string();
    let path = format!("/api/v1/orders/{id}/cancel");
    let cancel = || till.call("POST", &path, Some(CASHIER), None);
    let (status, first) = cancel().await;
    assert_eq!(status, 200, "{first}");
    let (status, again) = cancel().await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["order"]["state"]["name"], "cancelled");
    assert!(
        again["message"].as_str().unwrap().contains("уже отменена"),
        "{again}"
    );
    assert_eq!(h.sandbox.ledger().count_ok("decline.do", &number), 1);

    // The bank has it as declined (orderStatus 6): a look changes nothing.
    let uuid = uuid::Uuid::parse_str(&id).unwrap();
    let looked = h.engine.refresh(&uuid).await.unwrap();
    assert_eq!(looked.state.name(), "cancelled", "{:?}", looked.state);
    assert_eq!(h.sandbox.ledger().order(&number).unwrap().order_status, 6);

    let (status, body) = till
        .call(
            "POST",
            "/api/v1/sales",
            Some(CASHIER),
            Some(json!({"amount": "300", "idempotency_key": "cancelled-1"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error_type"], "closed", "{body}");
    assert_eq!(body["order"]["state"]["name"], "cancelled", "{body}");
    assert!(
        body["order"]["payment_url"].is_null(),
        "no dead link: {body}"
    );
    assert!(body.get("payment_url").is_none(), "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("закрыта"),
        "{body}"
    );
    assert_eq!(h.sandbox.ledger().count_ok("register.do", &number), 1);
}

/// A hold whose deposit the bank refuses for good (errorCode 5, amount above the hold) goes to
/// a manager with the bank's reason and is not sent again at every poll; a same-key retry of
/// the sale then says a manager must look, not «статус уточняется».
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposit_refused_for_good_goes_to_a_manager_once() {
    let (h, till) = start(HarnessOptions::default()).await;
    let (status, sale) = till
        .call(
            "POST",
            "/api/v1/sales",
            Some(CASHIER),
            Some(json!({"amount": "450", "mode": "two-stage", "idempotency_key": "hold-1"})),
        )
        .await;
    assert_eq!(status, 201, "{sale}");
    let number = sale["order"]["order_number"].as_str().unwrap().to_string();
    h.sandbox.add_fault(
        FaultRule::new(
            "deposit.do",
            Fault::Refuse {
                code: 5,
                message: "Сумма списания превышает сумму блокировки".into(),
            },
        )
        .before(),
    );
    let id = uuid::Uuid::parse_str(&id_of(&sale)).unwrap();
    let order = h.engine.get(&id).unwrap();
    h.sandbox.pay(Harness::gateway_id(&order)).unwrap();
    let stuck = h.wait_state(&id, StateKind::NeedsAttention).await;
    let why = stuck.state.why().map(|w| w.text()).unwrap_or_default();
    assert!(why.contains("превышает сумму блокировки"), "{why}");
    // Several polls later (poll_first is 100 ms), still one deposit.do.
    for _ in 0..5 {
        h.engine.refresh(&id).await.unwrap();
    }
    h.engine.store().flush().await.unwrap();
    let deposits = h
        .engine
        .store()
        .journal()
        .unwrap()
        .iter()
        .filter(|call| call.method.contains("deposit") && call.order_number == number)
        .count();
    assert_eq!(deposits, 1, "a refusal for good is not repeated");

    let (status, body) = till
        .call(
            "POST",
            "/api/v1/sales",
            Some(CASHIER),
            Some(json!({"amount": "450", "mode": "two-stage", "idempotency_key": "hold-1"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error_type"], "needs_attention", "{body}");
    assert_eq!(body["order"]["order_number"], number.as_str(), "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("требует внимания менеджера"),
        "{body}"
    );
}

/// The bank sends the same parameters for each failed attempt: each is an attempt, by
/// callback alone (polls are too rare to see them), and the third closes the order with three
/// attempts recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_failed_attempts_each_count() {
    let (h, _till) = start(HarnessOptions {
        poll_first: Duration::from_secs(600),
        ..HarnessOptions::default()
    })
    .await;
    let order = h.sell(120, Mode::OneStage).await;
    let bank_id = Harness::gateway_id(&order);
    for attempt in 1..=2usize {
        h.sandbox
            .fail_attempt(&bank_id, AttemptFailure::InsufficientFunds)
            .unwrap();
        crate::common::wait_until("the attempt recorded", Duration::from_secs(10), || {
            h.engine.get(&order.id).unwrap().failed_attempts.len() == attempt
        })
        .await;
    }
    let now = h.engine.get(&order.id).unwrap();
    assert_eq!(now.state.name(), "awaiting_payment");
    assert!(now
        .failed_attempts
        .iter()
        .all(|a| a.code == 116 && a.why.contains("Недостаточно средств")));
    h.sandbox
        .fail_attempt(&bank_id, AttemptFailure::InsufficientFunds)
        .unwrap();
    let closed = h.wait_state(&order.id, StateKind::Declined).await;
    assert_eq!(
        closed.failed_attempts.len(),
        3,
        "{:?}",
        closed.failed_attempts
    );
}

/// A backup restored after the bank moved money: the restored store learns from the bank the
/// refund made after the backup, the payment and partial refund of an order open at backup
/// time, and lists the sale made after the backup as «есть в банке, нет в кассе», whose
/// number is never handed out again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_learns_from_the_bank_what_happened_after_the_backup() {
    let sandbox = std::sync::Arc::new(crate::common::sandbox().await);
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let options = || HarnessOptions {
        dir: Some(dir.clone()),
        ..HarnessOptions::default()
    };
    let key = |k: &str| chasti::domain::IdempotencyKey::parse(k).unwrap();
    let rub = |r: u64| chasti::money::Kopecks::from_roubles(r).unwrap();
    let mut h = Harness::with_sandbox(sandbox.clone(), options()).await;
    let refunded = h.sell(700, Mode::OneStage).await;
    sandbox.pay(Harness::gateway_id(&refunded)).unwrap();
    h.wait_state(&refunded.id, StateKind::Paid).await;
    let open = h.sell(900, Mode::OneStage).await;
    let backup = dir.path().join("backup.db");
    h.engine.store().backup_to(&backup).unwrap();

    // After the backup: a full refund, the open order paid and partly refunded, a new sale.
    h.engine
        .refund(&refunded.id, None, &key("after-1"), None)
        .await
        .unwrap();
    sandbox.pay(Harness::gateway_id(&open)).unwrap();
    h.wait_state(&open.id, StateKind::Paid).await;
    h.engine
        .refund(&open.id, Some(rub(300)), &key("after-2"), None)
        .await
        .unwrap();
    let later = h.sell(1499, Mode::OneStage).await;
    sandbox.pay(Harness::gateway_id(&later)).unwrap();
    h.wait_state(&later.id, StateKind::Paid).await;
    h.stop().await.unwrap();
    drop(h);

    // The store lost with its till: the backup goes onto a new one (no counters carry over).
    for suffix in ["orders.db", "orders.db-wal", "orders.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(suffix));
    }
    let restored = chasti::store::Store::restore(
        &backup,
        &dir.path().join("orders"),
        chasti::store::StoreOptions::default(),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(restored.orders, 2);

    let h = Harness::with_sandbox(sandbox.clone(), options()).await;
    crate::common::wait_until(
        "the restored store is checked against the bank",
        Duration::from_secs(30),
        || h.engine.store().restore_check().unwrap().is_none(),
    )
    .await;
    let now = h.engine.get(&refunded.id).unwrap();
    assert_eq!(now.state.name(), "refunded", "{:?}", now.state);
    assert_eq!(now.refunded, rub(700));
    assert!(
        now.history
            .iter()
            .any(|e| e.text().contains("узнан у банка после восстановления")),
        "{:#?}",
        now.history
    );
    let now = h.engine.get(&open.id).unwrap();
    assert_eq!(now.state.name(), "partially_refunded", "{:?}", now.state);
    assert_eq!((now.deposited, now.refunded), (rub(900), rub(300)));

    let only = h.engine.store().bank_only().unwrap();
    assert_eq!(only.len(), 1, "{only:?}");
    assert_eq!(only[0].order_number, later.order_number.as_str());
    assert_eq!((only[0].amount, only[0].status), (rub(1499), 2));
    let till = TillClient::new(h.api());
    let (_, list) = till
        .call("GET", "/api/v1/orders", Some(MANAGER), None)
        .await;
    assert_eq!(
        list["bank_only"][0]["order_number"],
        later.order_number.as_str(),
        "{list}"
    );
    let next = h.sell(10, Mode::OneStage).await;
    assert_ne!(
        next.order_number, later.order_number,
        "the bank's number is not reused"
    );
    assert_eq!(next.state.name(), "awaiting_payment");
}
