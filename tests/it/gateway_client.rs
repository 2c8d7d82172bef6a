//! Every client method against the sandbox over real HTTP on 127.0.0.1: success and each
//! error code the bank gives for it.

use std::time::Duration;

use crate::common::{client_for, sandbox, sandbox_with, settings_for};
use chasti::gateway::{
    Credentials, Feature, GatewayClient, GatewayError, Method, OrderRef, OrderStatus, PaymentState,
    RegisterRequest,
};
use chasti::money::Kopecks;
use chasti::sandbox::{Fault, FaultRule, Sandbox, SandboxSettings};
use chasti::secret::Secret;
use chrono::TimeZone;

fn gid(id: &str) -> chasti::domain::GatewayOrderId {
    chasti::domain::GatewayOrderId::parse(id).unwrap()
}

fn rub(roubles: u64) -> Kopecks {
    Kopecks::from_roubles(roubles).unwrap()
}

fn order_id(registered: &chasti::gateway::Registered) -> String {
    Sandbox::order_id_of(registered.form_url.as_str())
        .unwrap()
        .to_string()
}

fn code(result: Result<impl std::fmt::Debug, GatewayError>) -> i64 {
    match result {
        Err(e) => e
            .code()
            .map(|c| c.code())
            .unwrap_or_else(|| panic!("not a refusal: {e}")),
        Ok(v) => panic!("expected a refusal, got {v:?}"),
    }
}

#[tokio::test]
async fn register_answers_with_a_payment_link_and_refuses_a_reused_number() {
    let sb = sandbox().await;
    let client = client_for(&sb);
    let r = client
        .register(&RegisterRequest::new("A-1", rub(1499)))
        .await
        .unwrap();
    assert!(
        r.form_url.as_str().starts_with(sb.url().as_str()),
        "{}",
        r.form_url
    );
    assert_eq!(order_id(&r), r.order_id.as_str());

    let again = client.register(&RegisterRequest::new("A-1", rub(5))).await;
    assert_eq!(code(again), 1);
    let ledger = sb.ledger();
    assert_eq!(ledger.count_ok("register.do", "A-1"), 1);
    assert_eq!(ledger.order("A-1").unwrap().amount, rub(1499));
}

#[tokio::test]
async fn register_refusals_carry_the_banks_codes() {
    let sb = sandbox().await;
    let client = client_for(&sb);
    // Missing order number.
    assert_eq!(
        code(client.register(&RegisterRequest::new("", rub(1))).await),
        4
    );
    // Order number longer than 32 characters.
    let long = "x".repeat(33);
    assert_eq!(
        code(client.register(&RegisterRequest::new(long, rub(1))).await),
        5
    );
    // Zero amount.
    assert_eq!(
        code(
            client
                .register(&RegisterRequest::new("Z", Kopecks::ZERO))
                .await
        ),
        5
    );
    // Forbidden characters in the description.
    let mut bad = RegisterRequest::new("D", rub(1));
    bad.description = Some("50% off".into());
    let err = client.register(&bad).await.unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some(5));
    assert!(err.to_string().contains("forbidden characters"), "{err}");
    // AUTO_PAYMENT without clientId.
    let mut bad = RegisterRequest::new("F", rub(1));
    bad.features = vec![Feature::AutoPayment];
    assert_eq!(code(client.register(&bad).await), 4);
    // Nothing was registered by any of them.
    assert!(sb.ledger().orders.is_empty());
}

#[tokio::test]
async fn the_raw_form_dialect_checks_currency_amount_and_features() {
    let sb = sandbox().await;
    let http = crate::common::http();
    let url = sb.gateway_url().join("register.do").unwrap();
    let base = [
        ("userName", "sandbox-api"),
        ("password", "sandbox"),
        ("returnUrl", "https://shop.example/"),
    ];
    let cases: [(&[(&str, &str)], &str); 5] = [
        (
            &[
                ("orderNumber", "c1"),
                ("amount", "100"),
                ("currency", "840"),
            ],
            "3",
        ),
        (&[("orderNumber", "c2")], "4"),
        (&[("orderNumber", "c3"), ("amount", "")], "12"),
        (&[("orderNumber", "c4"), ("amount", "1.5")], "5"),
        (
            &[
                ("orderNumber", "c5"),
                ("amount", "100"),
                ("features", "TELEPORT"),
            ],
            "14",
        ),
    ];
    for (extra, expected) in cases {
        let mut form: Vec<(&str, &str)> = base.to_vec();
        form.extend_from_slice(extra);
        let body: serde_json::Value = http
            .post(url.clone())
            .form(&form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["errorCode"], expected, "{extra:?}: {body}");
    }
    // GET with query parameters works like POST.
    let ok: serde_json::Value = http
        .get(url)
        .query(&[base.as_slice(), &[("orderNumber", "g1"), ("amount", "100")]].concat())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(ok["orderId"].is_string(), "{ok}");
}

#[tokio::test]
async fn credentials_are_checked_and_never_shown() {
    let sb = sandbox_with(SandboxSettings {
        tokens: vec![Secret::new("tok-123")],
        ..SandboxSettings::default()
    })
    .await;
    let mut wrong = settings_for(&sb);
    wrong.credentials = Credentials::Password {
        user_name: "sandbox-api".into(),
        password: Secret::new("wrong-password-xyz"),
    };
    let client = GatewayClient::new(wrong).unwrap();
    let err = client
        .register(&RegisterRequest::new("C-1", rub(1)))
        .await
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some(5));
    let text = err.to_string();
    assert!(text.contains("Access denied"), "{text}");
    assert!(!text.contains("wrong-password-xyz"), "{text}");
    assert!(!format!("{client:?}").contains("wrong-password-xyz"));

    let mut empty = settings_for(&sb);
    empty.credentials = Credentials::Password {
        user_name: "sandbox-api".into(),
        password: Secret::new(""),
    };
    let err = GatewayClient::new(empty)
        .unwrap()
        .register(&RegisterRequest::new("C-2", rub(1)))
        .await
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some(4));

    let mut token = settings_for(&sb);
    token.credentials = Credentials::Token(Secret::new("tok-123"));
    let r = GatewayClient::new(token)
        .unwrap()
        .register(&RegisterRequest::new("C-3", rub(1)))
        .await;
    assert!(r.is_ok(), "{r:?}");
}

#[tokio::test]
async fn status_by_order_id_and_by_order_number() {
    let sb = sandbox().await;
    let client = client_for(&sb);
    let mut req = RegisterRequest::new("S-1", rub(2500));
    req.json_params.insert("till".into(), "2".into());
    let r = client.register(&req).await.unwrap();

    let by_id = client
        .order_status(&OrderRef::OrderId(r.order_id.clone()))
        .await
        .unwrap();
    let by_number = client
        .order_status(&OrderRef::OrderNumber("S-1".into()))
        .await
        .unwrap();
    assert_eq!(by_id, by_number);
    assert_eq!(by_id.order_status, Some(OrderStatus::Registered));
    assert_eq!(by_id.action_code.map(|c| c.code()), Some(-100));
    assert_eq!(by_id.amount, rub(2500));
    assert_eq!(by_id.merchant_order_params[0].value, "2");
    let info = by_id.payment_amount_info.unwrap();
    assert_eq!(info.payment_state, PaymentState::Created);

    assert_eq!(
        code(
            client
                .order_status(&OrderRef::OrderNumber("nope".into()))
                .await
        ),
        6
    );
    assert_eq!(
        code(client.order_status(&OrderRef::OrderId(gid("nope"))).await),
        6
    );
}

#[tokio::test]
async fn one_stage_payment_then_same_day_reversal_once() {
    let sb = sandbox().await;
    let client = client_for(&sb);
    let r = client
        .register(&RegisterRequest::new("R-1", rub(100)))
        .await
        .unwrap();
    // Nothing to reverse before payment.
    assert_eq!(code(client.reverse(&r.order_id, None).await), 7);
    // A reversal is tried once: even the refused one above used it up.
    sb.pay(&r.order_id).unwrap();
    assert_eq!(code(client.reverse(&r.order_id, None).await), 7);

    let r2 = client
        .register(&RegisterRequest::new("R-2", rub(100)))
        .await
        .unwrap();
    sb.pay(&r2.order_id).unwrap();
    let paid = client
        .order_status(&OrderRef::OrderId(r2.order_id.clone()))
        .await
        .unwrap();
    assert_eq!(paid.order_status, Some(OrderStatus::Deposited));
    assert_eq!(paid.deposited(), rub(100));
    // Partial reversal needs a permission the sandbox merchant lacks.
    assert_eq!(code(client.reverse(&r2.order_id, Some(rub(50))).await), 5);

    let r3 = client
        .register(&RegisterRequest::new("R-3", rub(100)))
        .await
        .unwrap();
    sb.pay(&r3.order_id).unwrap();
    client.reverse(&r3.order_id, None).await.unwrap();
    let reversed = client
        .order_status(&OrderRef::OrderId(r3.order_id.clone()))
        .await
        .unwrap();
    assert_eq!(reversed.order_status, Some(OrderStatus::Reversed));
    assert_eq!(code(client.reverse(&r3.order_id, None).await), 7);
    assert_eq!(code(client.reverse(&gid("unknown"), None).await), 6);
}

#[tokio::test]
async fn reversal_ends_at_moscow_midnight() {
    let sb = sandbox().await;
    let client = client_for(&sb);
    // 23:59:58 MSK = 20:59:58 UTC.
    let late = chrono::Utc
        .with_ymd_and_hms(2026, 11, 23, 20, 59, 58)
        .unwrap();
    sb.set_clock(late);
    let a = client
        .register(&RegisterRequest::new("M-1", rub(10)))
        .await
        .unwrap();
    let b = client
        .register(&RegisterRequest::new("M-2", rub(10)))
        .await
        .unwrap();
    sb.pay(&a.order_id).unwrap();
    sb.pay(&b.order_id).unwrap();
    sb.set_clock(late + chrono::Duration::seconds(1)); // 23:59:59 MSK
    client.reverse(&a.order_id, None).await.unwrap();
    sb.set_clock(late + chrono::Duration::seconds(2)); // 00:00:00 MSK, the next day
    let err = client.reverse(&b.order_id, None).await.unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some(7));
    assert!(err.to_string().contains("use refund"), "{err}");
    // The refund path is open instead.
    client.refund(&b.order_id, rub(10), None).await.unwrap();
}

#[tokio::test]
async fn two_stage_hold_deposit_and_its_limits() {
    let sb = sandbox().await;
    let client = client_for(&sb);
    let r = client
        .register_pre_auth(&RegisterRequest::new("H-1", rub(300)))
        .await
        .unwrap();
    // No deposit before the hold.
    assert_eq!(code(client.deposit(&r.order_id, None).await), 7);
    sb.pay(&r.order_id).unwrap();
    let held = client
        .order_status(&OrderRef::OrderId(r.order_id.clone()))
        .await
        .unwrap();
    assert_eq!(held.order_status, Some(OrderStatus::Held));
    assert_eq!(held.approved(), rub(300));
    assert_eq!(held.deposited(), Kopecks::ZERO);
    // Above the hold, and below one rouble.
    assert_eq!(code(client.deposit(&r.order_id, Some(rub(301))).await), 5);
    assert_eq!(code(client.deposit(&r.order_id, Kopecks::new(99)).await), 5);
    assert_eq!(code(client.deposit(&gid("unknown"), None).await), 6);
    // None = the whole hold.
    client.deposit(&r.order_id, None).await.unwrap();
    let paid = client
        .order_status(&OrderRef::OrderId(r.order_id.clone()))
        .await
        .unwrap();
    assert_eq!(paid.order_status, Some(OrderStatus::Deposited));
    assert_eq!(paid.deposited(), rub(300));
    assert_eq!(code(client.deposit(&r.order_id, None).await), 7);
    assert_eq!(sb.ledger().count_ok("deposit.do", "H-1"), 1);

    // A hold can be reversed until it is deposited.
    let h2 = client
        .register_pre_auth(&RegisterRequest::new("H-2", rub(300)))
        .await
        .unwrap();
    sb.pay(&h2.order_id).unwrap();
    client.reverse(&h2.order_id, None).await.unwrap();
    let s = client
        .order_status(&OrderRef::OrderId(h2.order_id.clone()))
        .await
        .unwrap();
    assert_eq!(s.order_status, Some(OrderStatus::Reversed));
    assert_eq!(code(client.deposit(&h2.order_id, None).await), 7);
}

#[tokio::test]
async fn refunds_up_to_the_deposited_total_and_idempotent_by_id() {
    let sb = sandbox().await;
    let client = client_for(&sb);
    let r = client
        .register(&RegisterRequest::new("F-1", rub(1000)))
        .await
        .unwrap();
    assert_eq!(code(client.refund(&r.order_id, rub(1), None).await), 7);
    sb.pay(&r.order_id).unwrap();
    client
        .refund(&r.order_id, rub(300), Some("rf-1"))
        .await
        .unwrap();
    // The same refund id again moves nothing.
    client
        .refund(&r.order_id, rub(300), Some("rf-1"))
        .await
        .unwrap();
    assert_eq!(code(client.refund(&r.order_id, rub(701), None).await), 5);
    client
        .refund(&r.order_id, rub(700), Some("rf-2"))
        .await
        .unwrap();
    let s = client
        .order_status(&OrderRef::OrderId(r.order_id.clone()))
        .await
        .unwrap();
    assert_eq!(s.order_status, Some(OrderStatus::Refunded));
    assert_eq!(s.refunded(), rub(1000));
    assert_eq!(code(client.refund(&r.order_id, rub(1), None).await), 5);
    assert_eq!(code(client.refund(&gid("unknown"), rub(1), None).await), 6);
}

#[tokio::test]
async fn decline_closes_an_unpaid_order_only() {
    let sb = sandbox().await;
    let client = client_for(&sb);
    client
        .register(&RegisterRequest::new("X-1", rub(10)))
        .await
        .unwrap();
    client
        .decline(&OrderRef::OrderNumber("X-1".into()))
        .await
        .unwrap();
    let s = client
        .order_status(&OrderRef::OrderNumber("X-1".into()))
        .await
        .unwrap();
    assert_eq!(s.order_status, Some(OrderStatus::Declined));
    assert_eq!(
        code(client.decline(&OrderRef::OrderNumber("X-1".into())).await),
        7
    );
    assert_eq!(
        code(client.decline(&OrderRef::OrderNumber("none".into())).await),
        6
    );
    // A declined order's number cannot be registered again.
    assert_eq!(
        code(client.register(&RegisterRequest::new("X-1", rub(10))).await),
        1
    );

    let paid = client
        .register(&RegisterRequest::new("X-2", rub(10)))
        .await
        .unwrap();
    sb.pay(&paid.order_id).unwrap();
    assert_eq!(
        code(client.decline(&OrderRef::OrderId(paid.order_id)).await),
        7
    );
}

#[tokio::test]
async fn an_unpaid_order_expires_into_declined_by_timeout() {
    let sb = sandbox().await;
    let client = client_for(&sb);
    let mut req = RegisterRequest::new("T-1", rub(10));
    req.session_timeout_secs = Some(60);
    let r = client.register(&req).await.unwrap();
    sb.advance_clock(chrono::Duration::seconds(61));
    let s = client
        .order_status(&OrderRef::OrderId(r.order_id.clone()))
        .await
        .unwrap();
    assert_eq!(s.order_status, Some(OrderStatus::Declined));
    assert_eq!(s.action_code.map(|c| c.code()), Some(-2007));
    assert!(
        sb.pay(&r.order_id).is_err(),
        "an expired link cannot be paid"
    );
}

#[tokio::test]
async fn payment_by_binding() {
    let sb = sandbox().await;
    let client = client_for(&sb);
    let mut first = RegisterRequest::new("B-1", rub(10));
    first.client_id = Some("client-7".into());
    first.features = vec![Feature::AutoPayment];
    let r = client.register(&first).await.unwrap();
    sb.pay(&r.order_id).unwrap();
    let s = client
        .order_status(&OrderRef::OrderId(r.order_id))
        .await
        .unwrap();
    let binding = s
        .binding_id()
        .expect("a binding after paying with AUTO_PAYMENT")
        .to_string();

    let mut second = RegisterRequest::new("B-2", rub(20));
    second.client_id = Some("client-7".into());
    let r2 = client.register(&second).await.unwrap();
    client
        .pay_with_binding(&r2.order_id, &binding, "127.0.0.1")
        .await
        .unwrap();
    let s2 = client
        .order_status(&OrderRef::OrderId(r2.order_id.clone()))
        .await
        .unwrap();
    assert_eq!(s2.order_status, Some(OrderStatus::Deposited));

    let r3 = client
        .register(&RegisterRequest::new("B-3", rub(20)))
        .await
        .unwrap();
    assert_eq!(
        code(
            client
                .pay_with_binding(&r3.order_id, "no-such-binding", "127.0.0.1")
                .await
        ),
        2
    );
    assert_eq!(
        code(client.pay_with_binding(&r3.order_id, &binding, "").await),
        4
    );
}

#[tokio::test]
async fn faults_become_the_right_errors() {
    let sb = sandbox().await;
    let mut settings = settings_for(&sb);
    settings.request_timeout = Duration::from_millis(700);
    let client = GatewayClient::new(settings).unwrap();

    sb.add_fault(FaultRule::new("register.do", Fault::GarbageBody));
    let err = client
        .register(&RegisterRequest::new("G-1", rub(1)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, GatewayError::UnreadableReply { .. }),
        "{err:?}"
    );
    assert!(err.outcome_unknown());

    sb.add_fault(FaultRule::new("register.do", Fault::HttpStatus { status: 502 }).before());
    let err = client
        .register(&RegisterRequest::new("G-2", rub(1)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, GatewayError::HttpStatus { status: 502, .. }),
        "{err:?}"
    );

    // A timeout after the bank did the work: the order exists though the client never heard.
    sb.add_fault(FaultRule::new("register.do", Fault::Latency { ms: 1500 }));
    let err = client
        .register(&RegisterRequest::new("G-3", rub(1)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            GatewayError::Timeout {
                method: Method::Register,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("getOrderStatusExtended"), "{err}");

    sb.add_fault(FaultRule::new(
        "getOrderStatusExtended.do",
        Fault::DropConnection,
    ));
    let err = client
        .order_status(&OrderRef::OrderNumber("G-3".into()))
        .await
        .unwrap_err();
    assert!(matches!(err, GatewayError::Connection { .. }), "{err:?}");

    // The faults were used up: the truth is readable again.
    let s = client
        .order_status(&OrderRef::OrderNumber("G-3".into()))
        .await
        .unwrap();
    assert_eq!(s.order_status, Some(OrderStatus::Registered));
    let ledger = sb.ledger();
    assert_eq!(
        ledger.count_ok("register.do", "G-1"),
        1,
        "garbage came after the work"
    );
    assert_eq!(
        ledger.count_ok("register.do", "G-2"),
        0,
        "502 came before the work"
    );
    assert_eq!(ledger.count_ok("register.do", "G-3"), 1);
}

#[tokio::test]
async fn nothing_listening_is_a_connection_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let settings = chasti::gateway::ClientSettings::new(
        url::Url::parse(&format!("http://{addr}/payment/rest/")).unwrap(),
        Credentials::Token(Secret::new("t")),
        "https://shop.example/",
    );
    let err = GatewayClient::new(settings)
        .unwrap()
        .order_status(&OrderRef::OrderNumber("1".into()))
        .await
        .unwrap_err();
    assert!(matches!(err, GatewayError::Unreachable { .. }), "{err:?}");
    assert!(
        !err.outcome_unknown(),
        "a connection that never opened sent nothing"
    );
    assert!(err.to_string().contains("127.0.0.1"), "{err}");
}
