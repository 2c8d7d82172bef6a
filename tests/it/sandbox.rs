//! The sandbox as a peer: its callbacks (signed, retried, faulted), its payment page and its
//! control API, over real HTTP on 127.0.0.1.

use std::time::Duration;

use crate::common::{client_for, CallbackReceiver};
use chasti::config::CallbackMethod;
use chasti::gateway::checksum::{hmac_sha256_checksum, verify_hmac_sha256};
use chasti::gateway::{OrderRef, OrderStatus, RegisterRequest};
use chasti::money::Kopecks;
use chasti::sandbox::bank::Notice;
use chasti::sandbox::callbacks::CallbackSender;
use chasti::sandbox::{CallbackFaults, CallbackSettings, Faults, Sandbox, SandboxSettings};
use chasti::secret::Secret;

const KEY: &str = "test-callback-key";

async fn signed_sandbox(receiver: &CallbackReceiver, method: CallbackMethod) -> Sandbox {
    crate::common::sandbox_with(SandboxSettings {
        callbacks: CallbackSettings {
            url: Some(receiver.url()),
            key: Some(Secret::new(KEY)),
            method,
            retry_delays: vec![Duration::from_millis(50), Duration::from_millis(50)],
            ..CallbackSettings::default()
        },
        ..SandboxSettings::default()
    })
    .await
}

fn verifies(received: &crate::common::Received) -> bool {
    let checksum = received.get("checksum").expect("a signed callback");
    let params = received
        .params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()));
    verify_hmac_sha256(KEY, params, checksum)
}

#[tokio::test]
async fn a_payment_sends_a_signed_get_callback() {
    let receiver = CallbackReceiver::start().await;
    let sb = signed_sandbox(&receiver, CallbackMethod::Get).await;
    let client = client_for(&sb);
    let r = client
        .register(&RegisterRequest::new(
            "CB-1",
            Kopecks::new(149_950).unwrap(),
        ))
        .await
        .unwrap();
    sb.pay(&r.order_id).unwrap();
    let got = receiver.wait_for(1).await;
    let cb = &got[0];
    assert_eq!(cb.method, axum::http::Method::GET);
    assert_eq!(cb.get("mdOrder"), Some(r.order_id.as_str()));
    assert_eq!(cb.get("orderNumber"), Some("CB-1"));
    assert_eq!(cb.get("operation"), Some("deposited"));
    assert_eq!(cb.get("status"), Some("1"));
    assert_eq!(cb.get("amount"), Some("149950"));
    assert!(verifies(cb), "checksum verifies with the key");
    let mut tampered = cb.clone();
    tampered
        .params
        .iter_mut()
        .find(|(k, _)| k == "amount")
        .unwrap()
        .1 = "1".into();
    assert!(!verifies(&tampered), "a changed amount breaks the checksum");
}

#[tokio::test]
async fn two_stage_sends_approved_then_deposited_as_post_forms() {
    let receiver = CallbackReceiver::start().await;
    let sb = signed_sandbox(&receiver, CallbackMethod::Post).await;
    let client = client_for(&sb);
    let r = client
        .register_pre_auth(&RegisterRequest::new("CB-2", Kopecks::new(10_000).unwrap()))
        .await
        .unwrap();
    sb.pay(&r.order_id).unwrap();
    receiver.wait_for(1).await;
    client.deposit(&r.order_id, None).await.unwrap();
    let got = receiver.wait_for(2).await;
    let ops: Vec<_> = got.iter().map(|c| c.get("operation").unwrap()).collect();
    assert_eq!(ops, ["approved", "deposited"]);
    assert!(got.iter().all(|c| c.method == axum::http::Method::POST));
    assert!(got.iter().all(verifies));
}

#[tokio::test]
async fn a_failed_callback_is_tried_three_times() {
    let receiver = CallbackReceiver::start().await;
    receiver.answer_with(&[500, 503]);
    let sb = signed_sandbox(&receiver, CallbackMethod::Get).await;
    let r = client_for(&sb)
        .register(&RegisterRequest::new("CB-3", Kopecks::new(100).unwrap()))
        .await
        .unwrap();
    sb.pay(&r.order_id).unwrap();
    // The sender logs each try after it: once the third is logged, no fourth can follow.
    crate::common::wait_ledger(&sb, "three tries of CB-3", |l| {
        l.callbacks
            .iter()
            .filter(|c| c.order_number == "CB-3")
            .count()
            == 3
    })
    .await;
    assert_eq!(
        receiver.received().len(),
        3,
        "delivered on the third try, then no more"
    );
    let log = sb.ledger().callbacks;
    let outcomes: Vec<_> = log
        .iter()
        .map(|c| (c.attempt, c.outcome.as_str()))
        .collect();
    assert_eq!(
        outcomes,
        [(1, "HTTP 500"), (2, "HTTP 503"), (3, "delivered")]
    );

    // A receiver that always fails gets exactly three tries.
    receiver.answer_with(&[500, 500, 500, 500]);
    let r = client_for(&sb)
        .register(&RegisterRequest::new("CB-4", Kopecks::new(100).unwrap()))
        .await
        .unwrap();
    sb.pay(&r.order_id).unwrap();
    crate::common::wait_ledger(&sb, "three tries of CB-4", |l| {
        l.callbacks
            .iter()
            .filter(|c| c.order_number == "CB-4")
            .count()
            == 3
    })
    .await;
    assert_eq!(receiver.received().len(), 6);
}

#[tokio::test]
async fn callback_faults_drop_duplicate_and_delay() {
    let receiver = CallbackReceiver::start().await;
    let sb = signed_sandbox(&receiver, CallbackMethod::Get).await;
    let client = client_for(&sb);
    let register = |n: &'static str| {
        let client = client.clone();
        async move {
            client
                .register(&RegisterRequest::new(n, Kopecks::new(100).unwrap()))
                .await
                .unwrap()
                .order_id
        }
    };

    sb.set_faults(Faults {
        callbacks: CallbackFaults {
            drop_next: 1,
            ..CallbackFaults::default()
        },
        ..Faults::default()
    });
    let dropped = register("CB-5").await;
    sb.pay(&dropped).unwrap();
    // A dropped callback is decided (and logged) when the payment is made: nothing is sent.
    assert!(receiver.received().is_empty(), "the callback was lost");
    assert_eq!(sb.ledger().callbacks[0].outcome, "dropped (fault)");

    sb.set_faults(Faults {
        callbacks: CallbackFaults {
            duplicate: true,
            ..CallbackFaults::default()
        },
        ..Faults::default()
    });
    let twice = register("CB-6").await;
    sb.pay(&twice).unwrap();
    let got = receiver.wait_for(2).await;
    assert_eq!(got[0].params, got[1].params, "the same callback, twice");

    // A late callback arrives after a newer one.
    sb.set_faults(Faults {
        callbacks: CallbackFaults {
            delay_ms: 300,
            ..CallbackFaults::default()
        },
        ..Faults::default()
    });
    let late = register("CB-7").await;
    sb.pay(&late).unwrap();
    sb.clear_faults();
    let prompt = register("CB-8").await;
    sb.pay(&prompt).unwrap();
    let got = receiver.wait_for(4).await;
    assert_eq!(got[2].get("orderNumber"), Some("CB-8"));
    assert_eq!(got[3].get("orderNumber"), Some("CB-7"));
}

#[tokio::test]
async fn declines_and_lapsed_lifetimes_are_called_back() {
    let receiver = CallbackReceiver::start().await;
    let sb = signed_sandbox(&receiver, CallbackMethod::Get).await;
    let client = client_for(&sb);
    let r = client
        .register(&RegisterRequest::new("CB-9", Kopecks::new(100).unwrap()))
        .await
        .unwrap();
    sb.fail_attempt(
        &r.order_id,
        chasti::sandbox::AttemptFailure::InsufficientFunds,
    )
    .unwrap();
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].get("operation"), Some("deposited"));
    assert_eq!(got[0].get("status"), Some("0"));

    let mut req = RegisterRequest::new("CB-10", Kopecks::new(100).unwrap());
    req.session_timeout_secs = Some(60);
    client.register(&req).await.unwrap();
    sb.advance_clock(chrono::Duration::seconds(120));
    let got = receiver.wait_for(2).await;
    assert_eq!(got[1].get("operation"), Some("declinedByTimeout"));
    assert_eq!(got[1].get("orderNumber"), Some("CB-10"));
    assert!(verifies(&got[1]));
}

/// The sandbox signs exactly as the bank's documented example (vector 1).
#[test]
fn the_sandbox_checksum_reproduces_the_banks_vector() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/callback-checksum.json"
    );
    let text = std::fs::read_to_string(path).expect("tests/fixtures holds the bank's vectors");
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let v = &doc["vectors"][0];
    assert_eq!(v["kind"], "hmac-sha256");
    let p = &v["params"];
    let notice = Notice {
        md_order: p["mdOrder"].as_str().unwrap().into(),
        order_number: p["orderNumber"].as_str().unwrap().into(),
        operation: "approved",
        status: p["status"].as_str().unwrap().parse().unwrap(),
        amount: None,
        callback_url: None,
    };
    assert_eq!(notice.operation, p["operation"].as_str().unwrap());
    let key = Secret::new(v["key"].as_str().unwrap());
    let params = CallbackSender::params(&notice, Some(&key));
    let checksum = &params.iter().find(|(k, _)| k == "checksum").unwrap().1;
    assert_eq!(checksum, v["params"]["checksum"].as_str().unwrap());
    let signed = chasti::gateway::checksum::signed_string(
        params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    assert_eq!(signed, v["signed_string"].as_str().unwrap());
    assert_eq!(
        &hmac_sha256_checksum(
            key.expose(),
            [
                ("mdOrder", notice.md_order.as_str()),
                ("operation", "approved"),
                ("orderNumber", "2003"),
                ("status", "1")
            ]
        ),
        checksum
    );
}

#[tokio::test]
async fn the_payment_page_is_russian_and_needs_the_test_code() {
    let sb = crate::common::sandbox().await;
    let client = client_for(&sb);
    let mut req = RegisterRequest::new("P-1", Kopecks::new(149_950).unwrap());
    req.description = Some("Кофемашина <DeLonghi>".into());
    let r = client.register(&req).await.unwrap();
    let http = crate::common::http();
    let page = http
        .get(r.form_url.as_str())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Оплата частями"), "{page}");
    assert!(page.contains("1 499,50 ₽"));
    assert!(page.contains("&lt;DeLonghi&gt;"), "text is escaped");

    let wrong = http
        .post(r.form_url.as_str())
        .form(&[
            ("action", "pay"),
            ("phone", "+79000000000"),
            ("code", "0000"),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(wrong.contains("Неверный код"), "{wrong}");
    let s = client
        .order_status(&OrderRef::OrderId(r.order_id.clone()))
        .await
        .unwrap();
    assert_eq!(
        s.order_status,
        Some(OrderStatus::Registered),
        "a wrong code changes nothing"
    );

    let paid = http
        .post(r.form_url.as_str())
        .form(&[
            ("action", "pay"),
            ("phone", "+79000000000"),
            ("code", "1111"),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(paid.contains("Оплачено. Спасибо!"), "{paid}");
    let s = client
        .order_status(&OrderRef::OrderId(r.order_id))
        .await
        .unwrap();
    assert_eq!(s.order_status, Some(OrderStatus::Deposited));

    let missing = http
        .get(sb.url().join("sandbox/pay/nope").unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(missing.contains("Заказ не найден"));
}

#[tokio::test]
async fn the_control_api_drives_faults_clock_and_payments() {
    let sb = crate::common::sandbox().await;
    let client = client_for(&sb);
    let http = crate::common::http();
    let api = |path: &str| sb.url().join(&format!("sandbox/api/{path}")).unwrap();

    let faults = serde_json::json!({"rules": [{"method": "register.do", "fault": {"kind": "http_status", "status": 500}, "times": 1, "phase": "before"}]});
    let put = http.put(api("faults")).json(&faults).send().await.unwrap();
    assert_eq!(put.status(), 200);
    let err = client
        .register(&RegisterRequest::new("K-1", Kopecks::new(100).unwrap()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("HTTP 500"), "{err}");
    let bad = http
        .put(api("faults"))
        .body("{\"rules\":[{\"fault\":{\"kind\":\"meteor\"}}]}")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);

    let r = client
        .register(&RegisterRequest::new("K-1", Kopecks::new(100).unwrap()))
        .await
        .unwrap();
    let paid = http
        .post(api(&format!("orders/{}/pay", r.order_id)))
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 200);
    let again = http
        .post(api(&format!("orders/{}/pay", r.order_id)))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409, "paying twice is refused");
    let unknown = http.post(api("orders/nope/decline")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);

    let order: serde_json::Value = http
        .get(api(&format!("orders/{}", r.order_id)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(order["orderStatus"], 2);

    let before = sb.now();
    let moved: serde_json::Value = http
        .post(api("clock"))
        .json(&serde_json::json!({"advance_secs": 3600}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let now: chrono::DateTime<chrono::Utc> = serde_json::from_value(moved["now"].clone()).unwrap();
    assert!(now - before >= chrono::Duration::seconds(3600));

    let ledger: serde_json::Value = http
        .get(api("ledger"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ledger["orders"][0]["order_number"], "K-1");
    let ops: Vec<&str> = ledger["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["operation"].as_str().unwrap())
        .collect();
    assert!(
        ops.contains(&"register.do") && ops.contains(&"page:pay"),
        "{ops:?}"
    );
}

/// The ecom gateway's wire on the sandbox: POST JSON only, strict types, `errorCode` always.
#[tokio::test]
async fn the_ecom_route_is_strict_and_always_says_its_error_code() {
    let sb = crate::common::sandbox().await;
    let url = sb.ecom_gateway_url().join("register.do").unwrap();
    let http = crate::common::http();
    let body = |amount: serde_json::Value, currency: serde_json::Value| {
        serde_json::json!({
            "userName": chasti::sandbox::DEFAULT_USER,
            "password": chasti::sandbox::DEFAULT_PASSWORD,
            "orderNumber": format!("E-{}", uuid::Uuid::new_v4().simple()).chars().take(30).collect::<String>(),
            "amount": amount,
            "currency": currency,
            "returnUrl": "https://shop.example/",
        })
    };
    let ok = crate::common::post_json(url.clone(), None, &body(10_000.into(), "643".into())).await;
    assert_eq!(ok["errorCode"], "0", "{ok}");
    assert!(ok["formUrl"].as_str().is_some(), "{ok}");
    for (amount, currency, why) in [
        (
            serde_json::json!("10000"),
            serde_json::json!("643"),
            "amount must be an integer",
        ),
        (
            serde_json::json!(10000),
            serde_json::json!(643),
            "currency must be a string",
        ),
    ] {
        let refused = crate::common::post_json(url.clone(), None, &body(amount, currency)).await;
        assert_eq!(refused["errorCode"], "5", "{refused}");
        assert!(
            refused["errorMessage"].as_str().unwrap().contains(why),
            "{refused}"
        );
    }
    let form = http
        .get(url.clone())
        .query(&[("userName", "sandbox-api")])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status().as_u16(), 405);
}
