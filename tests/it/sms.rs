//! The payment link by SMS. The HTTP providers against local servers that check each request as
//! the provider's public documentation describes it (method, parameters, encoding, auth) and
//! answer as it does, errors included (mocks of the other side, written from its docs: SMSC.ru
//! and SMS.ru cannot run here). Kannel runs for real in `sms_kannel.rs`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};

use crate::common::{Harness, HarnessOptions, CASHIER};

const PHONE: &str = "+7 912 345-67-89";
const NORMAL: &str = "+79123456789";

/// One request as the fake provider saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub params: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Seen {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A provider's HTTP server on 127.0.0.1 that answers from a script (the last answer repeats).
pub struct FakeProvider {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeProvider {
    pub async fn start(path: &str, script: Vec<(u16, &'static str)>) -> FakeProvider {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let record = seen.clone();
        let handler = move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let record = record.clone();
            let script = script.clone();
            async move {
                let mut params: Vec<(String, String)> = uri
                    .query()
                    .map(|q| serde_urlencoded::from_str(q).unwrap_or_default())
                    .unwrap_or_default();
                let form = headers.get("content-type").is_some_and(|v| {
                    v.as_bytes()
                        .starts_with(b"application/x-www-form-urlencoded")
                });
                if form {
                    params.extend(
                        serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
                            .unwrap_or_default(),
                    );
                }
                let n = {
                    let mut seen = record.lock().unwrap();
                    seen.push(Seen {
                        method,
                        params,
                        headers,
                        body,
                    });
                    seen.len()
                };
                let (status, reply) = script[(n - 1).min(script.len() - 1)];
                (StatusCode::from_u16(status).unwrap(), reply)
            }
        };
        let app = axum::Router::new().route(path, axum::routing::any(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeProvider {
            url: format!("http://{addr}{path}"),
            seen,
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// A daemon whose `[sms]` section is `sms`, tries spaced by milliseconds.
async fn daemon_with(sms: String) -> Harness {
    Harness::new(HarnessOptions {
        extra_config: sms,
        configure: Some(Box::new(|c: &mut chasti::config::Config| {
            if let Some(sms) = &mut c.sms {
                sms.retry_delays = vec![Duration::from_millis(50), Duration::from_millis(50)];
            }
        })),
        ..HarnessOptions::default()
    })
    .await
}

/// A sale through the API with a phone; the reply.
async fn sell_with_phone(h: &Harness, phone: &str) -> serde_json::Value {
    let body = serde_json::json!({
        "amount": "1499.50",
        "idempotency_key": uuid::Uuid::new_v4().to_string(),
        "phone": phone,
    });
    crate::common::post_json(format!("{}/api/v1/sales", h.api()), Some(CASHIER), &body).await
}

/// Waits (bounded) for the order's history to carry an SMS line starting with `what`.
async fn wait_sms_line(h: &Harness, order_id: &str, what: &str) -> String {
    let id = uuid::Uuid::parse_str(order_id).unwrap();
    let mut updates = h.engine.subscribe();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let order = h.engine.get(&id).unwrap();
        if let Some(line) = order
            .history
            .iter()
            .map(|e| e.what())
            .find(|w| w.starts_with(what))
        {
            return line;
        }
        if tokio::time::timeout_at(deadline, updates.recv())
            .await
            .is_err()
        {
            panic!("no {what:?} in {:#?}", order.history);
        }
    }
}

async fn send_link(h: &Harness, order: &str, phone: &str) -> (u16, serde_json::Value) {
    let reply = crate::common::http()
        .post(format!("{}/api/v1/orders/{order}/send-link", h.api()))
        .bearer_auth(CASHIER)
        .json(&serde_json::json!({ "phone": phone }))
        .send()
        .await
        .unwrap();
    (reply.status().as_u16(), reply.json().await.unwrap())
}

/// The message carries the link, and the link opens the sandbox's payment page.
async fn the_link_opens(text: &str, link: &str) {
    assert!(text.contains(link), "{text}");
    assert!(
        text.contains("1 499,50 ₽") && text.contains("МСК"),
        "{text}"
    );
    let page = crate::common::http().get(link).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(
        page.text().await.unwrap().contains("1 499,50"),
        "the payment page"
    );
}

#[tokio::test]
async fn smsc_gets_one_form_post_as_its_docs_say_and_its_errors_are_kept() {
    let smsc = FakeProvider::start("/sys/send.php", vec![(200, r#"{"id":4711,"cnt":2}"#)]).await;
    let h = daemon_with(format!(
        "[sms]\nprovider = \"smsc\"\nurl = \"{}\"\nlogin = \"shop\"\npassword = \"smsc-secret\"\nsender = \"Magazin\"\n",
        smsc.url
    ))
    .await;
    let sale = sell_with_phone(&h, PHONE).await;
    assert_eq!(sale["sms"]["status"], "queued", "{sale}");
    let id = sale["order"]["id"].as_str().unwrap();
    let line = wait_sms_line(&h, id, "payment link sent by SMS").await;
    assert!(
        line.contains("+7912***6789") && line.contains("id 4711"),
        "{line}"
    );
    let seen = smsc.seen();
    assert_eq!(seen.len(), 1);
    let r = &seen[0];
    assert_eq!(r.method, Method::POST);
    assert_eq!(r.param("login"), Some("shop"));
    assert_eq!(r.param("psw"), Some("smsc-secret"));
    assert_eq!(r.param("phones"), Some("79123456789"));
    assert_eq!(r.param("charset"), Some("utf-8"));
    assert_eq!(r.param("fmt"), Some("3"));
    assert_eq!(r.param("sender"), Some("Magazin"));
    the_link_opens(
        r.param("mes").unwrap(),
        sale["payment_url"].as_str().unwrap(),
    )
    .await;

    // Asked again for the same order and number: not sent again.
    let (status, again) = send_link(&h, id, "8 (912) 345-67-89").await;
    assert_eq!(
        (status, again["status"].as_str()),
        (202, Some("already_sent")),
        "{again}"
    );
    assert_eq!(smsc.seen().len(), 1);

    // A refusal (wrong password, error 2) is permanent: one try, the reason in the history.
    let refusing = FakeProvider::start(
        "/sys/send.php",
        vec![(200, r#"{"error":"authorise error","error_code":2}"#)],
    )
    .await;
    let h = daemon_with(format!(
        "[sms]\nprovider = \"smsc\"\nurl = \"{}\"\nlogin = \"shop\"\npassword = \"wrong\"\n",
        refusing.url
    ))
    .await;
    let sale = sell_with_phone(&h, PHONE).await;
    assert_eq!(
        sale["order"]["state"]["name"], "awaiting_payment",
        "the sale stands: {sale}"
    );
    let line = wait_sms_line(&h, sale["order"]["id"].as_str().unwrap(), "SMS to").await;
    assert!(line.contains("SMSC error 2: authorise error"), "{line}");
    assert_eq!(refusing.seen().len(), 1);
}

#[tokio::test]
async fn smsru_busy_then_accepting_is_tried_again_and_a_refused_number_is_not() {
    let ok = r#"{"status":"OK","status_code":100,"sms":{"79123456789":{"status":"OK","status_code":100,"sms_id":"000000-10000001"}},"balance":10.5}"#;
    let busy = r#"{"status":"ERROR","status_code":220,"status_text":"Сервис временно недоступен"}"#;
    let smsru = FakeProvider::start("/sms/send", vec![(200, busy), (200, ok)]).await;
    let h = daemon_with(format!(
        "[sms]\nprovider = \"smsru\"\nurl = \"{}\"\napi_id = \"A1B2-C3D4\"\n",
        smsru.url
    ))
    .await;
    let sale = sell_with_phone(&h, "89123456789").await;
    let id = sale["order"]["id"].as_str().unwrap();
    let line = wait_sms_line(&h, id, "payment link sent by SMS").await;
    assert!(line.contains("id 000000-10000001"), "{line}");
    let seen = smsru.seen();
    assert_eq!(seen.len(), 2, "one busy answer, one try more");
    for r in &seen {
        assert_eq!(r.method, Method::POST);
        assert_eq!(r.param("api_id"), Some("A1B2-C3D4"));
        assert_eq!(r.param("to"), Some("79123456789"));
        assert_eq!(r.param("json"), Some("1"));
    }
    the_link_opens(
        seen[1].param("msg").unwrap(),
        sale["payment_url"].as_str().unwrap(),
    )
    .await;

    let refused = r#"{"status":"OK","status_code":100,"sms":{"79123456789":{"status":"ERROR","status_code":207,"status_text":"На этот номер нельзя отправлять сообщения"}}}"#;
    let smsru = FakeProvider::start("/sms/send", vec![(200, refused)]).await;
    let h = daemon_with(format!(
        "[sms]\nprovider = \"smsru\"\nurl = \"{}\"\napi_id = \"A1B2-C3D4\"\n",
        smsru.url
    ))
    .await;
    let sale = sell_with_phone(&h, NORMAL).await;
    let line = wait_sms_line(&h, sale["order"]["id"].as_str().unwrap(), "SMS to").await;
    assert!(line.contains("SMS.ru 207: На этот номер нельзя"), "{line}");
    assert_eq!(smsru.seen().len(), 1);
}

#[tokio::test]
async fn the_webhook_gets_json_with_its_token_and_an_outage_never_fails_the_sale() {
    let hook = FakeProvider::start("/hook", vec![(200, r#"{"id":"m-1"}"#)]).await;
    let h = daemon_with(format!(
        "[sms]\nprovider = \"webhook\"\nurl = \"{}\"\ntoken = \"hook-token-123\"\n",
        hook.url
    ))
    .await;
    let sale = sell_with_phone(&h, PHONE).await;
    let id = sale["order"]["id"].as_str().unwrap();
    wait_sms_line(&h, id, "payment link sent by SMS").await;
    let seen = hook.seen();
    assert_eq!(seen.len(), 1);
    let r = &seen[0];
    assert_eq!(r.method, Method::POST);
    assert_eq!(r.headers["authorization"], "Bearer hook-token-123");
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["phone"], NORMAL);
    assert_eq!(body["order_number"], sale["order"]["order_number"]);
    assert_eq!(body["link"], sale["payment_url"]);
    the_link_opens(
        body["text"].as_str().unwrap(),
        sale["payment_url"].as_str().unwrap(),
    )
    .await;

    // The provider is down (503 every time): the sale is answered as usual, the SMS is tried
    // three times and then recorded as failed; the till sees it in the order's history.
    let down = FakeProvider::start("/hook", vec![(503, "maintenance")]).await;
    let h = daemon_with(format!(
        "[sms]\nprovider = \"webhook\"\nurl = \"{}\"\n",
        down.url
    ))
    .await;
    let sale = sell_with_phone(&h, PHONE).await;
    assert_eq!(sale["order"]["state"]["name"], "awaiting_payment", "{sale}");
    assert_eq!(sale["sms"]["status"], "queued");
    let id = sale["order"]["id"].as_str().unwrap();
    let line = wait_sms_line(&h, id, "SMS to").await;
    assert!(line.contains("HTTP 503: maintenance"), "{line}");
    assert_eq!(down.seen().len(), 3);
    let shown = h.engine.get(&uuid::Uuid::parse_str(id).unwrap()).unwrap();
    assert!(
        shown
            .history
            .iter()
            .any(|e| e.text().starts_with("SMS на +7912***6789 не отправлено")),
        "{:#?}",
        shown.history
    );
    // After a failure a new request tries again.
    let (status, again) = send_link(&h, id, PHONE).await;
    assert_eq!(
        (status, again["status"].as_str()),
        (202, Some("queued")),
        "{again}"
    );
}

#[tokio::test]
async fn limits_per_number_and_per_till_and_bad_numbers() {
    let hook = FakeProvider::start("/hook", vec![(200, "{}")]).await;
    let h = daemon_with(format!(
        "[sms]\nprovider = \"webhook\"\nurl = \"{}\"\nper_phone_per_hour = 2\nper_till_per_hour = 3\n",
        hook.url
    ))
    .await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let sale = sell_with_phone(&h, PHONE).await;
        assert_eq!(sale["sms"]["status"], "queued", "{sale}");
        ids.push(sale["order"]["id"].as_str().unwrap().to_string());
    }
    let third = sell_with_phone(&h, PHONE).await;
    assert_eq!(third["sms"]["status"], "refused");
    assert!(
        third["sms"]["message"]
            .as_str()
            .unwrap()
            .contains("уже отправлено 2 SMS"),
        "{third}"
    );
    let third_id = third["order"]["id"].as_str().unwrap();
    let (status, refused) = send_link(&h, third_id, PHONE).await;
    assert_eq!(status, 429, "{refused}");
    // Another number is fine until the till's own limit (3 an hour) is reached.
    let (status, _) = send_link(&h, third_id, "+7 999 000-00-01").await;
    assert_eq!(status, 202);
    let (status, refused) = send_link(&h, third_id, "+7 999 000-00-02").await;
    assert_eq!(status, 429);
    assert!(
        refused["message"].as_str().unwrap().contains("С кассы 1"),
        "{refused}"
    );

    // Numbers that are not Russian mobiles: 422 naming the field, and no sale made.
    for bad in [
        "8 495 123-45-67",
        "+1 212 555 0100",
        "12345",
        &"9".repeat(5000),
    ] {
        let body = serde_json::json!({"amount": "10", "idempotency_key": uuid::Uuid::new_v4().to_string(), "phone": bad});
        let reply = crate::common::http()
            .post(format!("{}/api/v1/sales", h.api()))
            .bearer_auth(CASHIER)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status().as_u16(), 422);
        let e: serde_json::Value = reply.json().await.unwrap();
        assert_eq!(e["errors"][0]["field"], "phone", "{e}");
    }
    let (status, e) = send_link(&h, &ids[0], "не телефон").await;
    assert_eq!(status, 422, "{e}");
    assert_eq!(
        h.engine.store().all().unwrap().len(),
        3,
        "no sale for a bad number"
    );
}

#[tokio::test]
async fn without_sms_set_up_a_phone_does_not_stop_the_sale() {
    let h = Harness::new(HarnessOptions::default()).await;
    let sale = sell_with_phone(&h, PHONE).await;
    assert_eq!(sale["order"]["state"]["name"], "awaiting_payment");
    assert_eq!(sale["sms"]["status"], "refused");
    let id = sale["order"]["id"].as_str().unwrap();
    let (status, e) = send_link(&h, id, PHONE).await;
    assert_eq!(status, 503, "{e}");
    assert!(e["message"].as_str().unwrap().contains("[sms]"), "{e}");
}

/// Kannel's delivery reports, with a stand-in for smsbox that takes the message as Kannel's
/// `sendsms` does and hands back its `dlr-url`: the test then reports as Kannel would.
#[tokio::test]
async fn kannel_delivery_reports_are_signed_and_kept_once() {
    let smsbox =
        FakeProvider::start("/cgi-bin/sendsms", vec![(202, "0: Accepted for delivery")]).await;
    let h = daemon_with(format!(
        "[sms]\nprovider = \"kannel\"\nurl = \"{}\"\nuser = \"chasti\"\npassword = \"k\"\nsender = \"Magazin\"\n",
        smsbox.url
    ))
    .await;
    let sale = sell_with_phone(&h, PHONE).await;
    let id = sale["order"]["id"].as_str().unwrap();
    wait_sms_line(&h, id, "payment link sent by SMS").await;
    let seen = smsbox.seen();
    let r = &seen[0];
    assert_eq!(r.method, Method::GET);
    assert_eq!(r.param("username"), Some("chasti"));
    assert_eq!(r.param("coding"), Some("2"));
    assert_eq!(r.param("charset"), Some("UTF-8"));
    assert_eq!(r.param("dlr-mask"), Some("3"));
    let report = r.param("dlr-url").unwrap().to_string();
    assert!(
        report.starts_with(&format!(
            "http://{}/chasti/sms-report?",
            h.callback_url.authority()
        )),
        "{report}"
    );
    assert!(report.ends_with("&type=%d"), "{report}");

    let http = crate::common::http();
    let call = |url: String| {
        let http = http.clone();
        async move { http.get(url).send().await.unwrap().status().as_u16() }
    };
    // Accepted by the SMSC (8): nothing new. Delivered (1), twice: one history line.
    assert_eq!(call(report.replace("%d", "8")).await, 200);
    assert_eq!(call(report.replace("%d", "1")).await, 200);
    assert_eq!(call(report.replace("%d", "1")).await, 200);
    let order = h.engine.get(&uuid::Uuid::parse_str(id).unwrap()).unwrap();
    let delivered = order
        .history
        .iter()
        .filter(|e| e.text() == "SMS на +7912***6789 доставлено")
        .count();
    assert_eq!(delivered, 1, "{:#?}", order.history);
    // A report for another number or with a forged token: refused, nothing kept.
    let other = report
        .replace("%2B79123456789", "%2B79990000000")
        .replace("%d", "1");
    assert_eq!(call(other).await, 403);
    let token = report
        .split("token=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    let forged = report
        .replace(&token, &"0".repeat(token.len()))
        .replace("%d", "2");
    assert_eq!(call(forged).await, 403);
    let base = report.split('?').next().unwrap().to_string();
    assert_eq!(
        call(format!("{base}?order=x&phone=y&token=z&type=1")).await,
        400
    );
    assert_eq!(call(format!("{base}?{}", "a=b&".repeat(500))).await, 414);
    let order = h.engine.get(&uuid::Uuid::parse_str(id).unwrap()).unwrap();
    assert_eq!(
        order
            .history
            .iter()
            .filter(|e| e.what().starts_with("SMS to"))
            .count(),
        1,
        "{:#?}",
        order.history
    );
}

/// An SMS asked for and not yet sent when chasti stops is not lost: the request is in the
/// order's history, and the next start sends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sms_requested_before_a_stop_is_sent_after_the_restart() {
    use crate::cli::{start_daemon_with, Daemon};
    let hook = FakeProvider::start("/hook", vec![(503, "down for a moment"), (200, "{}")]).await;
    let url = hook.url.clone();
    let d = start_daemon_with(move |text| {
        text + &format!("\n[sms]\nprovider = \"webhook\"\nurl = \"{url}\"\n")
    });
    let body = serde_json::json!({
        "amount": "10",
        "idempotency_key": uuid::Uuid::new_v4().to_string(),
        "phone": PHONE,
    });
    let api = d.serve.api.clone();
    let sale = crate::common::post_json(
        format!("{api}/api/v1/sales"),
        Some("demo-cashier-token-change-me"),
        &body,
    )
    .await;
    assert_eq!(sale["sms"]["status"], "queued", "{sale}");
    let id = sale["order"]["id"].as_str().unwrap().to_string();
    // The first try failed (503); the next is 5 s away: stop chasti now.
    crate::common::wait_until("the first try", Duration::from_secs(10), || {
        hook.seen().len() == 1
    })
    .await;
    let (config, _dir) = d.stop();

    let serve = crate::common::ServeProcess::start(&config, &_dir.path().join("serve2.log"), &[]);
    let api = serve.api.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let texts = loop {
        let order = crate::common::get_json(
            format!("{api}/api/v1/orders/{id}"),
            "demo-cashier-token-change-me",
        )
        .await;
        let texts: Vec<String> = order["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["text"].as_str().map(str::to_string))
            .collect();
        if texts
            .iter()
            .any(|t| t.starts_with("Ссылка на оплату отправлена по SMS"))
        {
            break texts;
        }
        assert!(tokio::time::Instant::now() < deadline, "{order}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(hook.seen().len(), 2, "the one try after the restart");
    let requested = texts
        .iter()
        .filter(|t| t.starts_with("Запрошена отправка ссылки по SMS"))
        .count();
    assert_eq!(requested, 1, "{texts:?}");
    let _ = Daemon {
        serve,
        config,
        _dir,
    };
}
