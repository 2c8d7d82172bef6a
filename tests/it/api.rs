//! The till API end to end over real HTTP against the sandbox: auth and roles, one error
//! shape, a validation error for every field, idempotent sales, SSE seeing the payment,
//! reversal and refund, and the OpenAPI document checked against the real routes.

use chasti::orders::StateKind;
use std::time::Duration;

use crate::common::{Harness, HarnessOptions, TillClient, CASHIER, MANAGER};
use serde_json::{json, Value};

struct Till {
    h: Harness,
    api: TillClient,
}

impl std::ops::Deref for Till {
    type Target = TillClient;
    fn deref(&self) -> &TillClient {
        &self.api
    }
}

async fn till() -> Till {
    let h = Harness::new(HarnessOptions::default()).await;
    Till {
        api: TillClient::new(h.api()),
        h,
    }
}

fn uuid(v: &Value) -> uuid::Uuid {
    uuid::Uuid::parse_str(v.as_str().unwrap()).unwrap()
}

fn assert_error_shape(body: &Value, error_type: &str) {
    assert_eq!(body["error_type"], error_type, "{body}");
    assert!(
        body["request_id"].as_str().is_some_and(|r| r.len() == 36),
        "{body}"
    );
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(body["errors"].is_array(), "{body}");
}

#[tokio::test]
async fn tokens_and_roles() {
    let t = till().await;
    let (status, body) = t.call("POST", "/api/v1/sales", None, Some(json!({}))).await;
    assert_eq!(status, 401);
    assert_error_shape(&body, "unauthorized");
    let (status, body) = t
        .call(
            "GET",
            "/api/v1/orders",
            Some("wrong-token-0123456789"),
            None,
        )
        .await;
    assert_eq!(status, 401);
    assert_error_shape(&body, "unauthorized");
    let sale = t.sale("10", "k-roles").await;
    let id = sale["order"]["id"].as_str().unwrap();
    let (status, body) = t
        .call(
            "POST",
            &format!("/api/v1/orders/{id}/reverse"),
            Some(CASHIER),
            None,
        )
        .await;
    assert_eq!(status, 403);
    assert_error_shape(&body, "forbidden");
    assert!(body["message"].as_str().unwrap().contains("менеджеру"));
    assert!(!body.to_string().contains(CASHIER), "no token in replies");
}

#[tokio::test]
async fn a_validation_error_names_every_bad_field() {
    let t = till().await;
    let bad = json!({"amount": "-5", "mode": "three-stage", "description": "50% off", "till": "till-1", "idempotency_key": "", "colour": "red"});
    let (status, body) = t
        .call("POST", "/api/v1/sales", Some(CASHIER), Some(bad))
        .await;
    assert_eq!(status, 422);
    assert_error_shape(&body, "validation");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for f in [
        "amount",
        "mode",
        "description",
        "till",
        "idempotency_key",
        "colour",
    ] {
        assert!(fields.contains(&f), "{f} in {fields:?}");
    }
    let (status, body) = t
        .call(
            "POST",
            "/api/v1/sales",
            Some(CASHIER),
            Some(json!({"amount": 1499.5, "idempotency_key": "x"})),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0]["field"], "amount");
    assert!(body["errors"][0]["problem"]
        .as_str()
        .unwrap()
        .contains("строкой"));
    let (status, body) = t
        .call("POST", "/api/v1/sales", Some(CASHIER), Some(json!({})))
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body["errors"].as_array().unwrap().len(),
        2,
        "amount and idempotency_key are required: {body}"
    );
    let resp = t
        .http
        .post(format!("{}/api/v1/sales", t.base))
        .bearer_auth(CASHIER)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let (status, _) = t
        .call(
            "GET",
            "/api/v1/orders?day=23.11.2026&state=gone",
            Some(CASHIER),
            None,
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        t.h.sandbox.ledger().orders.is_empty(),
        "nothing reached the bank"
    );
}

#[tokio::test]
async fn the_same_key_returns_the_same_sale_with_link_and_qr() {
    let t = till().await;
    let first = t.sale("1 499,50", "receipt-42").await;
    let again = t.sale("1 499,50", "receipt-42").await;
    assert_eq!(first["order"]["id"], again["order"]["id"]);
    assert_eq!(t.h.sandbox.ledger().orders.len(), 1);
    assert_eq!(first["order"]["amount"], 149_950);
    assert_eq!(first["order"]["amount_text"], "1 499,50 ₽");
    assert_eq!(first["order"]["state_text"], "Ожидает оплаты");
    assert!(first["payment_url"]
        .as_str()
        .unwrap()
        .contains("/sandbox/pay/"));
    assert!(first["qr_svg"].as_str().unwrap().starts_with("<svg"));
    assert_eq!(first["devices"]["printer"], "не настроен");
    let (status, got) = t
        .call(
            "GET",
            &format!("/api/v1/orders/{}", first["order"]["id"].as_str().unwrap()),
            Some(CASHIER),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(got["order_number"], first["order"]["order_number"]);
    let (status, body) = t
        .call("GET", "/api/v1/orders/nope", Some(CASHIER), None)
        .await;
    assert_eq!(status, 404);
    assert_error_shape(&body, "not_found");
}

#[tokio::test]
async fn server_sent_events_show_the_payment_the_moment_it_is_known() {
    let t = till().await;
    let sale = t.sale("25", "sse").await;
    let id = sale["order"]["id"].as_str().unwrap().to_string();
    let mut stream = t
        .http
        .get(format!("{}/api/v1/orders/{id}/events", t.base))
        .bearer_auth(CASHIER)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let first = stream.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("awaiting_payment"));
    t.h.sandbox
        .pay(Harness::gateway_id(
            &t.h.engine.get(&uuid(&json!(id))).unwrap(),
        ))
        .unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(5), async {
        let mut text = String::new();
        while let Ok(Some(chunk)) = stream.chunk().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if text.contains("\"name\":\"paid\"") {
                return text;
            }
        }
        text
    })
    .await
    .expect("the payment arrives on the stream");
    assert!(
        seen.contains("event: order") && seen.contains("Оплачено"),
        "{seen}"
    );
}

#[tokio::test]
async fn a_manager_reverses_and_refunds_through_the_api() {
    let t = till().await;
    let a = t.sale("100", "rev").await;
    let b = t.sale("100", "ref").await;
    for s in [&a, &b] {
        let id = uuid(&s["order"]["id"]);
        t.h.sandbox
            .pay(Harness::gateway_id(&t.h.engine.get(&id).unwrap()))
            .unwrap();
        t.h.wait_state(&id, StateKind::Paid).await;
    }
    let a_id = a["order"]["id"].as_str().unwrap();
    let (status, body) = t
        .call(
            "POST",
            &format!("/api/v1/orders/{a_id}/reverse"),
            Some(MANAGER),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"]["name"], "reversed");
    let (status, body) = t
        .call(
            "POST",
            &format!("/api/v1/orders/{a_id}/reverse"),
            Some(MANAGER),
            None,
        )
        .await;
    assert_eq!(status, 409);
    assert_error_shape(&body, "conflict");

    let b_id = b["order"]["id"].as_str().unwrap();
    let refund = json!({"amount": "30", "idempotency_key": "r-1"});
    let (status, body) = t
        .call(
            "POST",
            &format!("/api/v1/orders/{b_id}/refund"),
            Some(MANAGER),
            Some(refund.clone()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"]["name"], "partially_refunded");
    let (status, body) = t
        .call(
            "POST",
            &format!("/api/v1/orders/{b_id}/refund"),
            Some(MANAGER),
            Some(refund),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["refunded"], 3000, "the same key never refunds twice");
    let (status, body) = t
        .call(
            "POST",
            &format!("/api/v1/orders/{b_id}/refund"),
            Some(MANAGER),
            Some(json!({"amount": "71", "idempotency_key": "r-2"})),
        )
        .await;
    assert_eq!(status, 409);
    assert!(
        body["message"].as_str().unwrap().contains("70,00 ₽"),
        "{body}"
    );
    let (status, body) = t
        .call(
            "POST",
            &format!("/api/v1/orders/{b_id}/refund"),
            Some(MANAGER),
            Some(json!({"amount": "x"})),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"].as_array().unwrap().len(), 2, "{body}");

    let (status, list) = t.call("GET", "/api/v1/orders", Some(CASHIER), None).await;
    assert_eq!(status, 200);
    assert_eq!(list["count"], 2);
    assert_eq!(list["net_paid"], 7000);
    let (_, reversed) = t
        .call("GET", "/api/v1/orders?state=reversed", Some(CASHIER), None)
        .await;
    assert_eq!(reversed["count"], 1);
}

#[tokio::test]
async fn health_metrics_and_the_openapi_document_match_the_routes() {
    let t = till().await;
    t.sale("10", "m").await;
    let (status, body) = t.call("GET", "/api/v1/health", None, None).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")));
    let (status, metrics) = t.call("GET", "/api/v1/metrics", None, None).await;
    assert_eq!(status, 200);
    let metrics = metrics.as_str().unwrap().to_string();
    assert!(
        metrics.contains("chasti_sales_total{outcome=\"awaiting_payment\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("chasti_gateway_call_seconds_count{method=\"register.do\"} 1"),
        "{metrics}"
    );

    let (status, doc) = t.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        doc,
        serde_json::to_value(chasti::http::api::openapi()).unwrap()
    );
    // Every documented operation, on the live router: without a token, then with a manager's
    // token on an order that does not exist. Each status it answers must be documented.
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 10, "{:?}", paths.keys());
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            let documented: Vec<u16> = op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .map(|k| k.parse().unwrap())
                .collect();
            let secured = op.get("security").is_some();
            let url = format!("{}{}", t.base, path.replace("{id}", "S9-9-261123-9999"));
            for token in [None, Some(MANAGER)] {
                let mut req = match method.as_str() {
                    "get" => t.http.get(&url),
                    "post" => t.http.post(&url).json(&json!({})),
                    "delete" => t.http.delete(&url),
                    other => panic!("{other} {path}: a method the API does not use"),
                };
                if let Some(token) = token {
                    req = req.bearer_auth(token);
                }
                let resp = req.send().await.unwrap();
                let status = resp.status().as_u16();
                assert!(
                    documented.contains(&status),
                    "{method} {path} (token: {}): {status} is not among the documented {documented:?}",
                    token.is_some()
                );
                if token.is_none() {
                    assert_eq!(
                        secured,
                        status == 401,
                        "{method} {path}: security as documented"
                    );
                }
                if status >= 400 {
                    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
                    let body: Value = resp.json().await.unwrap();
                    assert_eq!(
                        body["request_id"], id,
                        "{method} {path}: the reply names its request"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn an_idempotency_key_means_one_sale() {
    let t = till().await;
    let first = t.sale("100", "receipt-7").await;
    // The same key for a different sale is refused, naming the key.
    for other in [
        json!({"amount": "101", "idempotency_key": "receipt-7"}),
        json!({"amount": "100", "mode": "two-stage", "idempotency_key": "receipt-7"}),
        json!({"amount": "100", "till": "2", "idempotency_key": "receipt-7"}),
        json!({"amount": "100", "description": "другое", "idempotency_key": "receipt-7"}),
    ] {
        let (status, body) = t
            .call("POST", "/api/v1/sales", Some(CASHIER), Some(other))
            .await;
        assert_eq!(status, 422, "{body}");
        assert_error_shape(&body, "validation");
        assert_eq!(body["errors"][0]["field"], "idempotency_key");
        assert!(body["message"].as_str().is_some());
        assert!(
            body["errors"][0]["problem"]
                .as_str()
                .unwrap()
                .contains("ключ уже использован для другой продажи"),
            "{body}"
        );
    }
    assert_eq!(t.h.sandbox.ledger().orders.len(), 1);
    assert_eq!(
        first["order"]["id"],
        t.sale("100", "receipt-7").await["order"]["id"]
    );

    // A retry while the first attempt is still registering: 409 with the order's number.
    t.h.sandbox.add_fault(chasti::sandbox::FaultRule::new(
        "register.do",
        chasti::sandbox::Fault::Latency { ms: 1500 },
    ));
    let base = t.base.clone();
    let slow = tokio::spawn(async move {
        crate::common::http()
            .post(format!("{base}/api/v1/sales"))
            .bearer_auth(CASHIER)
            .json(&json!({"amount": "200", "idempotency_key": "receipt-8"}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    crate::common::wait_ledger(&t.h.sandbox, "the slow register", |l| l.orders.len() == 2).await;
    let (status, body) = t
        .call(
            "POST",
            "/api/v1/sales",
            Some(CASHIER),
            Some(json!({"amount": "200", "idempotency_key": "receipt-8"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_error_shape(&body, "registering");
    assert!(body["message"].as_str().unwrap().contains("T-1-"), "{body}");
    assert_eq!(slow.await.unwrap(), 201);

    // A key whose sale the bank refused answers with that refusal, never 201 without a link.
    t.h.sandbox.add_fault(
        chasti::sandbox::FaultRule::new(
            "register.do",
            chasti::sandbox::Fault::Refuse {
                code: 5,
                message: "Сумма заказа превышает лимит".into(),
            },
        )
        .before(),
    );
    for _ in 0..2 {
        let (status, body) = t
            .call(
                "POST",
                "/api/v1/sales",
                Some(CASHIER),
                Some(json!({"amount": "300", "idempotency_key": "receipt-9"})),
            )
            .await;
        assert_eq!(status, 502, "{body}");
        assert_error_shape(&body, "gateway");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("превышает лимит"),
            "{body}"
        );
    }
    assert_eq!(
        t.h.sandbox
            .ledger()
            .operations
            .iter()
            .filter(|o| o.operation == "register.do")
            .count(),
        2,
        "the refused sale was sent once; its retry was answered from the store"
    );
}

/// What a schema fuzzer (Schemathesis against `/api/v1/openapi.json`) found: inputs the
/// document allows are accepted, inputs it does not are refused with a documented status and
/// a field named, and days outside 2020–2100 are refused.
#[tokio::test]
async fn inputs_the_schema_fuzzer_found_are_answered_as_documented() {
    let t = till().await;
    let sale = t.sale("10", "fuzz-1").await;
    let id = sale["order"]["id"].as_str().unwrap().to_string();
    // Empty query values are absent values, as a form sends them.
    let (status, body) = t
        .call(
            "GET",
            "/api/v1/orders?day=&limit=&state=&cursor=",
            Some(CASHIER),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["count"], 1, "{body}");
    for day in [
        "-0001-01-01",
        "0000-01-01",
        "2019-12-31",
        "2101-01-01",
        "%2B2026-11-23",
    ] {
        let (status, body) = t
            .call(
                "GET",
                &format!("/api/v1/orders?day={day}"),
                Some(CASHIER),
                None,
            )
            .await;
        assert_eq!(status, 422, "{day}: {body}");
        assert_eq!(body["errors"][0]["field"], "day", "{body}");
        assert!(
            body["errors"][0]["problem"]
                .as_str()
                .unwrap()
                .contains("с 01.01.2020 по 31.12.2100"),
            "{body}"
        );
    }
    let (status, body) = t
        .call(
            "GET",
            "/api/v1/orders.csv?history=garbage",
            Some(CASHIER),
            None,
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "history", "{body}");
    let (status, csv) = t
        .call("GET", "/api/v1/orders.csv?history=1", Some(CASHIER), None)
        .await;
    assert_eq!(status, 200);
    assert!(csv.as_str().unwrap().contains("История (МСК)"));
    // An empty phone: no SMS, the sale goes on.
    let (status, body) = t
        .call(
            "POST",
            "/api/v1/sales",
            Some(CASHIER),
            Some(json!({"amount": "11", "idempotency_key": "fuzz-2", "phone": ""})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(body.get("sms").is_none(), "{body}");
    // A till the schema's pattern allows.
    let (status, body) = t
        .call(
            "POST",
            "/api/v1/sales",
            Some(CASHIER),
            Some(json!({"amount": "12", "idempotency_key": "fuzz-3", "till": "000"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["order"]["till"], "000", "{body}");
    // A JSON array where an object belongs: 400, documented.
    let (status, body) = t
        .call(
            "POST",
            &format!("/api/v1/orders/{id}/send-link"),
            Some(CASHIER),
            Some(json!(["+79123456789"])),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_error_shape(&body, "bad_request");
    // An empty refund amount is refused, never read as «all».
    let (status, body) = t
        .call(
            "POST",
            &format!("/api/v1/orders/{id}/refund"),
            Some(MANAGER),
            Some(json!({"amount": "", "idempotency_key": "fuzz-r"})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "amount", "{body}");
    let doc = serde_json::to_value(chasti::http::api::openapi()).unwrap();
    assert_eq!(
        doc["components"]["schemas"]["RefundBody"]["properties"]["amount"]["minLength"], 1,
        "the document says so too"
    );
}
