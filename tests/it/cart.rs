//! The sale's cart and the customer's contact through the till API: the lines kept with the
//! order and shown in its view, its history and the CSV; the phone and e-mail passed to the
//! bank with register.do; a cart that does not add up, or a line that is wrong, refused with
//! every problem named before the bank is called.

use serde_json::{json, Value};

use crate::common::{Harness, HarnessOptions, TillClient, CASHIER};

fn registers(h: &Harness) -> usize {
    h.sandbox
        .ledger()
        .operations
        .iter()
        .filter(|o| o.operation.starts_with("register"))
        .count()
}

#[tokio::test]
async fn a_sale_carries_its_cart_and_the_customers_contact_to_the_bank() {
    let h = Harness::new(HarnessOptions::default()).await;
    let api = TillClient::new(h.api());
    let body = json!({
        "amount": "1504.99",
        "idempotency_key": "cart-1",
        "phone": "8 (912) 345-67-89",
        "email": "Ivanova@Mail.ru",
        "items": [
            {"name": "Кофемашина", "quantity": "1", "price": "1499.99", "vat": "22"},
            {"name": "Сыр «Российский»", "quantity": "0.500", "price": "10.00", "vat": "10",
             "payment_object": "commodity", "payment_method": "full_payment"}
        ]
    });
    let (status, sale) = api
        .call("POST", "/api/v1/sales", Some(CASHIER), Some(body.clone()))
        .await;
    assert_eq!(status, 201, "{sale}");
    let order = &sale["order"];
    let items = order["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{order}");
    assert_eq!(items[1]["quantity"], "0,5");
    assert_eq!(items[1]["amount"], 500);
    assert_eq!(items[0]["vat"], "22");
    assert_eq!(order["customer_phone"], "+7912***6789");
    assert_eq!(order["customer_email"], "Iv***@mail.ru");
    assert!(
        !sale.to_string().contains("3456789"),
        "the whole number never in a reply: {sale}"
    );
    assert_eq!(
        order["events"][0]["text"],
        "Продажа на 1 504,99 ₽ начата, позиций в чеке: 2"
    );

    // The bank got the contact with the order.
    let number = order["order_number"].as_str().unwrap();
    let at_bank = h
        .sandbox
        .ledger()
        .orders
        .into_iter()
        .find(|o| o.order_number == number)
        .unwrap();
    assert_eq!(at_bank.phone.as_deref(), Some("+79123456789"));
    assert_eq!(at_bank.email.as_deref(), Some("Ivanova@mail.ru"));

    // Kept: the order read back from the store has the same lines.
    let id = uuid::Uuid::parse_str(order["id"].as_str().unwrap()).unwrap();
    let kept = h.engine.get(&id).unwrap();
    assert_eq!(kept.cart.as_ref().unwrap().items().len(), 2);

    // The same key and the same cart is the same sale; another cart is another sale's key.
    let (status, again) = api
        .call("POST", "/api/v1/sales", Some(CASHIER), Some(body.clone()))
        .await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["order"]["id"], order["id"]);
    let mut other = body.clone();
    other["items"][0]["name"] = json!("Кофемолка");
    let (status, refused) = api
        .call("POST", "/api/v1/sales", Some(CASHIER), Some(other))
        .await;
    assert_eq!(status, 422, "{refused}");

    // The CSV lists the lines in one cell.
    let resp = crate::common::http()
        .get(format!("{}/api/v1/orders.csv", h.api()))
        .bearer_auth(CASHIER)
        .send()
        .await
        .unwrap();
    let text = resp.text().await.unwrap();
    let header = text.lines().next().unwrap();
    assert!(header.ends_with(";Позиции;Чек"), "{header}");
    assert!(
        text.contains("Кофемашина 1 × 1 499,99 ₽ = 1 499,99 ₽ (НДС 22%)")
            && text.contains("Сыр «Российский» 0,5 × 10,00 ₽ = 5,00 ₽ (НДС 10%)"),
        "{text}"
    );
}

#[tokio::test]
async fn a_cart_that_does_not_add_up_or_a_bad_line_never_reaches_the_bank() {
    let h = Harness::new(HarnessOptions::default()).await;
    let api = TillClient::new(h.api());
    let sale = |items: Value| json!({"amount": "300.00", "idempotency_key": uuid::Uuid::new_v4().to_string(), "items": items});
    let (status, body) = api
        .call(
            "POST",
            "/api/v1/sales",
            Some(CASHIER),
            Some(sale(json!([
                {"name": "Кофе", "quantity": "2", "price": "149.99", "vat": "22"}
            ]))),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let problem = &body["errors"][0];
    assert_eq!(problem["field"], "items");
    let text = problem["problem"].as_str().unwrap();
    assert!(
        text.contains("299,98 ₽") && text.contains("300,00 ₽") && text.contains("Кофе"),
        "{text}"
    );

    let (status, body) = api
        .call(
            "POST",
            "/api/v1/sales",
            Some(CASHIER),
            Some(sale(json!([
                {"name": "", "quantity": "1.2345", "price": 300, "vat": "20", "size": "XL"},
                "a line"
            ]))),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for field in [
        "items[0].name",
        "items[0].quantity",
        "items[0].price",
        "items[0].vat",
        "items[0].size",
        "items[1]",
    ] {
        assert!(fields.contains(&field), "{field} in {body}");
    }
    let vat = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["field"] == "items[0].vat")
        .unwrap();
    assert!(
        vat["problem"].as_str().unwrap().contains("до 2026 года"),
        "{vat}"
    );
    assert_eq!(registers(&h), 0, "nothing reached the bank");
    assert!(h.engine.store().all().unwrap().is_empty(), "no order kept");
}
