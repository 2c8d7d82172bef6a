//! `[fiscal] mode = "bank"` end to end over both of the bank's gateways, against the sandbox
//! playing the bank's cloud fiscalisation: the cart goes with register.do in each host's form
//! (and with refund.do and reverse.do on the ecom host), the bank's cloud makes a receipt for
//! each movement, chasti reads them back with getReceiptStatus and records each once — through
//! a stop before it learned one; a receipt the bank fails is «чек не пробит» with its words; a
//! cart the bank would refuse is refused before it is called, and the sandbox refuses a bad
//! cart as the bank does.

use std::time::Duration;

use serde_json::json;

use chasti::gateway::{
    BundleCompany, BundleItem, BundleReceipt, Dialect, ErrorCode, GatewayError, OrderBundle,
    RegisterRequest,
};
use chasti::money::Kopecks;
use chasti::orders::{Mode, ReceiptStatus, StateKind};
use chasti::sandbox::{Fault, FaultRule};

use crate::common::{wait_until, Harness, HarnessOptions, TillClient, CASHIER, MANAGER};

const BANK: &str = r#"
[fiscal]
mode = "bank"
taxation = "osn"
[fiscal.bank]
ffd = "1.2"
company_email = "shop@example.ru"
company_inn = "7700000000"
payment_address = "https://shop.example"
tax_types = { "22" = 11, "22/122" = 12 }
"#;

fn options(dialect: Dialect) -> HarnessOptions {
    HarnessOptions {
        extra_config: BANK.into(),
        dialect,
        ..HarnessOptions::default()
    }
}

/// A one-stage sale with the customer's e-mail (the bank's cloud needs a contact), paid.
async fn paid_sale(h: &Harness, roubles: u64) -> chasti::orders::Order {
    let mut sale = Harness::sale(roubles, Mode::OneStage);
    sale.customer.email = chasti::domain::Email::parse("ivanova@mail.ru").ok();
    let order = h
        .engine
        .sell(sale)
        .await
        .expect("the sale is registered")
        .order;
    h.sandbox.pay(Harness::gateway_id(&order)).unwrap();
    h.wait_state(&order.id, StateKind::Paid).await
}

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

fn document(order: &chasti::orders::Order, n: usize) -> u64 {
    match &order.receipts[n].status {
        ReceiptStatus::Issued(f) => f.document_number,
        other => panic!("receipt {n}: {other:?}"),
    }
}

async fn sell_with_cart(h: &Harness, key: &str) -> uuid::Uuid {
    let api = TillClient::new(h.api());
    let (status, sale) = api
        .call(
            "POST",
            "/api/v1/sales",
            Some(CASHIER),
            Some(json!({
                "amount": "1504.99", "idempotency_key": key, "email": "ivanova@mail.ru",
                "items": [
                    {"name": "Кофемашина", "quantity": "1", "price": "1499.99", "vat": "22"},
                    {"name": "Сыр", "quantity": "0.5", "price": "10.00", "vat": "22/122"}
                ]
            })),
        )
        .await;
    assert_eq!(status, 201, "{sale}");
    uuid::Uuid::parse_str(sale["order"]["id"].as_str().unwrap()).unwrap()
}

async fn the_banks_cloud_issues_each_receipt_and_chasti_records_it_once(dialect: Dialect) {
    let h = Harness::new(options(dialect)).await;
    let id = sell_with_cart(&h, "bank-1").await;
    let order = h.engine.get(&id).unwrap();
    let number = order.order_number.to_string();

    // The cart reached the bank in the host's own form.
    let at_bank = |h: &Harness| {
        h.sandbox
            .ledger()
            .orders
            .into_iter()
            .find(|o| o.order_number == number)
            .unwrap()
    };
    let cart = at_bank(&h).cart.expect("the cart went with register.do");
    match dialect {
        Dialect::Legacy => {
            assert_eq!(cart["customerDetails"]["email"], "ivanova@mail.ru");
            assert_eq!(cart["cartItems"]["items"][0]["tax"]["taxType"], 11);
            assert!(cart["cartItems"]["items"][1]["itemAttributes"].is_object());
        }
        Dialect::Ecom => {
            assert_eq!(cart["ffdVersion"], "1.2");
            assert_eq!(cart["receiptType"], "sell");
            assert_eq!(cart["company"]["sno"], "osn");
            assert_eq!(cart["total"], 150_499);
            assert_eq!(cart["cartItems"]["items"][1]["paymentObject"], "1");
            assert_eq!(cart["cartItems"]["items"][1]["tax"]["taxType"], 12);
        }
    }

    h.sandbox.pay(Harness::gateway_id(&order)).unwrap();
    h.wait_state(&id, StateKind::Paid).await;
    let order = settled(&h, &id, 0).await;
    let fd = document(&order, 0);
    let issued = at_bank(&h).receipts;
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].fiscal_document_number, fd);
    assert!(
        order.history.iter().any(|e| e
            .text()
            .starts_with(&format!("Пробит чек прихода на 1 504,99 ₽: ФД {fd}"))),
        "{:#?}",
        order.history
    );

    // A partial refund: the bank's return receipt (on the ecom host from chasti's cart).
    let api = TillClient::new(h.api());
    let (status, body) = api
        .call(
            "POST",
            &format!("/api/v1/orders/{id}/refund"),
            Some(MANAGER),
            Some(json!({"amount": "500.00", "idempotency_key": "r1"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    document(&settled(&h, &id, 1).await, 1);
    let issued = at_bank(&h).receipts;
    assert_eq!(
        (
            issued[1].operation_type.as_str(),
            issued[1].receipt_type.as_str()
        ),
        ("REFUND", "SELL_REFUND")
    );
    assert_eq!(issued[1].amount, Kopecks::new(50_000).unwrap());

    // A reversal of another sale.
    let other = paid_sale(&h, 2000).await;
    document(&settled(&h, &other.id, 0).await, 0);
    h.engine.reverse(&other.id, None).await.unwrap();
    document(&settled(&h, &other.id, 1).await, 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let all: usize = h
        .sandbox
        .ledger()
        .orders
        .iter()
        .map(|o| o.receipts.len())
        .sum();
    assert_eq!(all, 4, "each movement one receipt at the bank");
}

#[tokio::test]
async fn legacy_the_banks_cloud_issues_each_receipt_and_chasti_records_it_once() {
    the_banks_cloud_issues_each_receipt_and_chasti_records_it_once(Dialect::Legacy).await;
}

#[tokio::test]
async fn ecom_the_banks_cloud_issues_each_receipt_and_chasti_records_it_once() {
    the_banks_cloud_issues_each_receipt_and_chasti_records_it_once(Dialect::Ecom).await;
}

#[tokio::test]
async fn a_stop_before_chasti_learned_the_receipt_records_it_once_after_the_start() {
    let mut h = Harness::new(options(Dialect::Ecom)).await;
    h.sandbox.add_fault(FaultRule::new(
        "getReceiptStatus.do",
        Fault::HttpStatus { status: 502 },
    ));
    let order = paid_sale(&h, 1500).await;
    let engine = h.engine.clone();
    let id = order.id;
    wait_until(
        "the bank is asked and does not answer",
        Duration::from_secs(10),
        move || engine.get(&id).unwrap().receipts[0].tries >= 1,
    )
    .await;
    h.stop().await.unwrap();
    let (sandbox, dir) = (h.sandbox.clone(), h.dir.clone());
    drop(h);
    sandbox.clear_faults();
    let h = Harness::with_sandbox(
        sandbox,
        HarnessOptions {
            dir: Some(dir),
            ..options(Dialect::Ecom)
        },
    )
    .await;
    let order = settled(&h, &order.id, 0).await;
    document(&order, 0);
    let receipts: usize = h
        .sandbox
        .ledger()
        .orders
        .iter()
        .map(|o| o.receipts.len())
        .sum();
    assert_eq!((order.receipts.len(), receipts), (1, 1));
}

#[tokio::test]
async fn a_receipt_the_bank_fails_is_missing_with_the_banks_words() {
    let h = Harness::new(options(Dialect::Legacy)).await;
    h.sandbox.fail_next_receipt(6, "Неверный ИНН организации");
    let order = paid_sale(&h, 1500).await;
    let order = settled(&h, &order.id, 0).await;
    match &order.receipts[0].status {
        ReceiptStatus::Failed { why } => {
            assert!(
                why.contains("Неверный ИНН организации") && why.contains("личном кабинете"),
                "{why}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(order.receipts[0].missing());
}

#[tokio::test]
async fn a_sale_the_banks_cloud_cannot_take_is_refused_before_the_bank() {
    let h = Harness::new(options(Dialect::Legacy)).await;
    let api = TillClient::new(h.api());
    let (status, body) = api
        .call(
            "POST",
            "/api/v1/sales",
            Some(CASHIER),
            Some(json!({"amount": "1000.00", "idempotency_key": "no-contact",
                "items": [{"name": "Товар", "quantity": "1", "price": "1000.00", "vat": "5"}]})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let problems = body["errors"].to_string();
    assert!(problems.contains("телефон или почта"), "{problems}");
    assert!(
        problems.contains("ставка НДС 5 не настроена для облачной кассы банка"),
        "{problems}"
    );
    assert!(h.sandbox.ledger().orders.is_empty());
}

/// The sandbox refuses a cart as the bank does: its sum, each line, the fields each host wants.
#[tokio::test]
async fn the_sandbox_refuses_a_bad_cart_as_the_bank_does() {
    let sandbox = crate::common::sandbox().await;
    let bundle = |amount: u64, line: u64| OrderBundle {
        receipt: BundleReceipt::Sell,
        items: vec![BundleItem {
            name: "Товар".into(),
            quantity: 1000,
            price: Kopecks::new(line).unwrap(),
            amount: Kopecks::new(line).unwrap(),
            tax_type: 11,
            payment_method: (4, "full_payment"),
            payment_object: (1, "commodity"),
        }],
        total: Kopecks::new(amount).unwrap(),
        ffd: "1.2".into(),
        company: BundleCompany {
            sno: "osn".into(),
            ..Default::default()
        },
        tax_system: 0,
        email: Some("a@b.ru".into()),
        phone: None,
        created: 0,
    };
    for dialect in [Dialect::Legacy, Dialect::Ecom] {
        let mut settings = crate::common::settings_for(&sandbox);
        settings.dialect = dialect;
        if dialect == Dialect::Ecom {
            settings.base_url = sandbox.ecom_gateway_url();
        }
        let client = chasti::gateway::GatewayClient::new(settings).unwrap();
        let register = |n: &str, bundle: OrderBundle, email: Option<&str>| {
            let mut r =
                RegisterRequest::new(format!("{n}-{dialect:?}"), Kopecks::new(1000).unwrap());
            r.order_bundle = Some(bundle);
            r.email = email.map(str::to_string);
            r
        };
        let code = |e: GatewayError| e.code().unwrap();
        let wrong_sum = client
            .register(&register("sum", bundle(999, 999), Some("a@b.ru")))
            .await
            .unwrap_err();
        let expected = if dialect == Dialect::Ecom {
            ErrorCode::CartMismatch
        } else {
            ErrorCode::WrongValueOrAccessDenied
        };
        assert_eq!(code(wrong_sum.clone()), expected, "{wrong_sum}");
        assert!(
            wrong_sum.to_string().contains("add up to 999"),
            "{wrong_sum}"
        );
        if dialect == Dialect::Ecom {
            let no_contact = client
                .register(&register("contact", bundle(1000, 1000), None))
                .await
                .unwrap_err();
            assert_eq!(code(no_contact), ErrorCode::MissingParameter);
        }
        client
            .register(&register("good", bundle(1000, 1000), Some("a@b.ru")))
            .await
            .unwrap();
    }
}
