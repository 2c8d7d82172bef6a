//! Issue 11's attacks, each reproduced against a real daemon on 127.0.0.1: what anyone who can
//! reach chasti's ports might send, and what the till still does.

use std::time::{Duration, Instant};

use chasti::gateway::checksum::hmac_sha256_checksum;
use chasti::orders::{Mode, StateKind};
use tokio::io::AsyncReadExt;

use crate::common::{Harness, HarnessOptions, TillClient, CALLBACK_KEY};

/// More silent connections to the callback port than its cap: the ones over the cap are closed
/// at once, and a sale on the till API still answers within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_to_the_callback_port_cannot_starve_the_till_api() {
    let h = Harness::new(HarnessOptions::default()).await;
    let cap = chasti::server::Limits::CALLBACK.max_connections;
    let addr = format!(
        "{}:{}",
        h.callback_url.host_str().unwrap(),
        h.callback_url.port().unwrap()
    );
    let mut silent = Vec::new();
    for _ in 0..cap + 200 {
        silent.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    // The last ones were over the cap: the server closes them without a byte.
    let mut closed = 0;
    for stream in silent.iter_mut().rev().take(100) {
        let mut byte = [0u8; 1];
        if let Ok(Ok(0)) =
            tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte)).await
        {
            closed += 1;
        }
    }
    assert_eq!(closed, 100, "connections over the cap are closed at once");

    let till = TillClient::new(h.api());
    let started = Instant::now();
    let sale = till.sale("1500.00", "silent-flood-1").await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "a sale took {took:?} with {} silent connections open",
        silent.len()
    );
    assert_eq!(sale["order"]["state"]["name"], "awaiting_payment", "{sale}");

    // The bank's callbacks get through again as soon as the silent ones go.
    drop(silent);
    let http = crate::common::http();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let reply = http
            .get(h.callback_url.clone())
            .query(&[
                ("mdOrder", "nobody"),
                ("operation", "deposited"),
                ("status", "1"),
            ])
            .send()
            .await;
        if let Ok(reply) = reply {
            // Unsigned: the test daemon has a key, so 403 is the listener answering.
            assert_eq!(reply.status().as_u16(), 403);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the callback port never answered again"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn callbacks_only(unsigned: bool) -> HarnessOptions {
    HarnessOptions {
        // Polls so rare that every status call in these tests was caused by a callback.
        poll_first: Duration::from_secs(600),
        configure: unsigned.then(|| -> crate::common::Configure {
            Box::new(|c: &mut chasti::config::Config| c.callback.key = None)
        }),
        ..HarnessOptions::default()
    }
}

fn signed(params: &[(&str, &str)]) -> Vec<(String, String)> {
    let sum = hmac_sha256_checksum(CALLBACK_KEY, params.iter().copied());
    let mut all: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    all.push(("checksum".into(), sum));
    all
}

async fn send(h: &Harness, params: &[(String, String)]) -> u16 {
    match crate::common::http()
        .get(h.callback_url.clone())
        .query(params)
        .send()
        .await
    {
        Ok(reply) => reply.status().as_u16(),
        Err(_) => 0, // the server closed the connection
    }
}

fn looks(h: &Harness, number: Option<&str>) -> Vec<chrono::DateTime<chrono::Utc>> {
    h.sandbox
        .ledger()
        .operations
        .iter()
        .filter(|o| o.operation == "getOrderStatusExtended.do")
        .filter(|o| number.is_none() || o.order_number.as_deref() == number)
        .map(|o| o.at)
        .collect()
}

/// The same signed callback again and again (a replay, or the bank's retries): one is kept
/// and looked into; the rest are answered 200 and ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_signed_callback_is_answered_and_ignored() {
    let h = Harness::new(callbacks_only(false)).await;
    let order = h.sell(90, Mode::OneStage).await;
    let (gid, number) = (Harness::gateway_id(&order), order.order_number.to_string());
    let params = signed(&[
        ("mdOrder", gid.as_str()),
        ("orderNumber", number.as_str()),
        ("operation", "deposited"),
        ("status", "1"),
    ]);
    let sent = futures_util::future::join_all((0..30).map(|_| send(&h, &params))).await;
    assert!(sent.iter().all(|s| *s == 200), "{sent:?}");
    for _ in 0..30 {
        assert_eq!(send(&h, &params).await, 200);
    }
    h.quiet().await;
    assert_eq!(h.engine.store().callbacks().unwrap().len(), 1, "one kept");
    assert_eq!(looks(&h, Some(&number)).len(), 1, "one status call");
}

/// With no callback key (the shipped default on loopback), anyone who reaches the port can
/// send a callback: huge ones are refused before they are read, ones about unknown orders are
/// not kept, ones about a real order are kept only as its reference and only a few, and the
/// bank sees a handful of status calls, not one per callback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_callbacks_cannot_fill_the_disk_or_flood_the_bank() {
    let h = Harness::new(callbacks_only(true)).await;
    let order = h.sell(91, Mode::OneStage).await;
    let number = order.order_number.to_string();

    // 60 KB queries: refused by the listener's header cap or the route's query cap.
    let huge = "x".repeat(60 * 1024);
    for _ in 0..200 {
        let params = vec![
            ("orderNumber".to_string(), number.clone()),
            ("junk".to_string(), huge.clone()),
        ];
        let status = send(&h, &params).await;
        assert!(matches!(status, 0 | 400 | 414 | 431), "{status}");
    }
    // A query over the route's cap but under the listener's: 414.
    let params = vec![
        ("orderNumber".to_string(), number.clone()),
        ("junk".to_string(), "y".repeat(20 * 1024)),
    ];
    assert_eq!(send(&h, &params).await, 414);

    // 1 500 about orders that do not exist: answered, not kept, no status calls.
    let unknown: Vec<_> = (0..1500)
        .map(|i| {
            vec![
                ("orderNumber".to_string(), format!("T-1-261123-{i:04}X")),
                ("mdOrder".to_string(), uuid::Uuid::new_v4().to_string()),
                ("operation".to_string(), "deposited".to_string()),
            ]
        })
        .collect();
    for chunk in unknown.chunks(50) {
        let sent = futures_util::future::join_all(chunk.iter().map(|p| send(&h, p))).await;
        assert!(sent.iter().all(|s| *s == 200), "{sent:?}");
    }
    // 1 500 distinct ones about the real order.
    let about_order: Vec<_> = (0..1500)
        .map(|i| {
            vec![
                ("orderNumber".to_string(), number.clone()),
                ("operation".to_string(), "deposited".to_string()),
                ("status".to_string(), "1".to_string()),
                ("n".to_string(), i.to_string()),
            ]
        })
        .collect();
    let flood = Instant::now();
    for chunk in about_order.chunks(50) {
        let sent = futures_util::future::join_all(chunk.iter().map(|p| send(&h, p))).await;
        assert!(sent.iter().all(|s| *s == 200), "{sent:?}");
    }
    h.quiet().await;

    let kept = h.engine.store().callbacks().unwrap();
    assert_eq!(
        kept.len(),
        chasti::callbacks::UNSIGNED_KEPT_PER_ORDER as usize
    );
    for callback in &kept {
        assert_eq!(callback.signature, "unsigned");
        let names: Vec<&str> = callback.params.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            ["orderNumber", "unsigned"],
            "only the reference is kept"
        );
    }
    let flooded = flood.elapsed();
    h.quiet().await;
    let calls = looks(&h, None);
    // At most one look a second for one order, however many callbacks: the bound
    // is the flood's length in seconds (a handful on an idle machine), not the callbacks.
    let bound = 1
        + (flooded.as_secs_f64() / chasti::callbacks::ONE_ORDER_SPACING.as_secs_f64()).ceil()
            as usize;
    assert!(
        calls.len() <= bound,
        "{} status calls for 3 000 unsigned callbacks over {flooded:?} (bound {bound})",
        calls.len()
    );
    assert_eq!(
        h.engine.get(&order.id).unwrap().state.kind(),
        StateKind::AwaitingPayment,
        "nothing unsigned moves money"
    );
}

/// Signed callbacks about many orders at once: the status calls they cause keep to one rate
/// (a burst of LOOKS_PER_SECOND, then LOOKS_PER_SECOND a second), and every order is looked at.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_about_many_orders_cause_status_calls_at_a_bounded_rate() {
    let h = Harness::new(callbacks_only(false)).await;
    let mut orders = Vec::new();
    for _ in 0..60 {
        orders.push(h.sell(92, Mode::OneStage).await);
    }
    let callbacks: Vec<_> = orders
        .iter()
        .map(|o| {
            let (gid, number) = (Harness::gateway_id(o), o.order_number.to_string());
            signed(&[
                ("mdOrder", gid.as_str()),
                ("orderNumber", number.as_str()),
                ("operation", "approved"),
                ("status", "1"),
            ])
        })
        .collect();
    let sent = futures_util::future::join_all(callbacks.iter().map(|p| send(&h, p))).await;
    assert!(sent.iter().all(|s| *s == 200), "{sent:?}");
    h.quiet().await;

    let mut calls = looks(&h, None);
    calls.sort();
    assert_eq!(calls.len(), 60, "every order looked at once");
    let rate = chasti::callbacks::LOOKS_PER_SECOND as usize;
    // In any one second: the burst plus what a second replenishes, no more.
    for (i, first) in calls.iter().enumerate() {
        let within = calls[i..]
            .iter()
            .take_while(|at| (**at - *first) < chrono::Duration::seconds(1))
            .count();
        assert!(
            within <= 2 * rate + 1,
            "{within} status calls within a second"
        );
    }
}

/// Beyond loopback, `/metrics` and the customer screen's stream need a token; a `screen`
/// token reads them and nothing else. On loopback they stay open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_the_screen_stream_need_a_token_beyond_loopback() {
    const SCREEN: &str = "screen-token-0123456789";
    let h = Harness::new(HarnessOptions {
        configure: Some(Box::new(|c: &mut chasti::config::Config| {
            c.api.listen = "0.0.0.0:0".parse().unwrap();
            c.api.tokens.push(chasti::config::ApiToken {
                name: "screen-1".into(),
                role: chasti::config::Role::Screen,
                token: chasti::secret::Secret::new(SCREEN.to_string()),
                till: None,
            });
        })),
        ..HarnessOptions::default()
    })
    .await;
    let base = h.api().replacen("0.0.0.0", "127.0.0.1", 1);
    let http = crate::common::http();
    let status = |r: reqwest::Response| r.status().as_u16();
    let metrics = format!("{base}/api/v1/metrics");
    assert_eq!(status(http.get(&metrics).send().await.unwrap()), 401);
    assert_eq!(
        status(http.get(&metrics).bearer_auth(SCREEN).send().await.unwrap()),
        200
    );
    let events = format!("{base}/api/v1/screen/events?till=1");
    assert_eq!(status(http.get(&events).send().await.unwrap()), 401);
    let with_token = http
        .get(format!("{events}&access_token={SCREEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(status(with_token), 200);
    // A screen token sells nothing and lists nothing.
    let till = TillClient::new(base.clone());
    let (code, body) = till
        .call(
            "POST",
            "/api/v1/sales",
            Some(SCREEN),
            Some(serde_json::json!({"amount": "10.00", "idempotency_key": "screen-1"})),
        )
        .await;
    assert_eq!(code, 403, "{body}");
    let (code, _) = till.call("GET", "/api/v1/orders", Some(SCREEN), None).await;
    assert_eq!(code, 403);

    // The default (loopback) daemon: open, as before.
    let local = Harness::new(HarnessOptions::default()).await;
    let open = http
        .get(format!("{}/api/v1/metrics", local.api()))
        .send()
        .await
        .unwrap();
    assert_eq!(open.status().as_u16(), 200);
}

/// Requests a POS should never send: control characters in a description (they would reach
/// the printer and the bank), a JSON object with a key twice (which one wins is a guess), a
/// body that does not say it is JSON. Each is refused with what was wrong; nothing is sold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_sale_requests_are_refused_and_sell_nothing() {
    let h = Harness::new(HarnessOptions::default()).await;
    let till = TillClient::new(h.api());
    for (i, bad) in [
        "Чайник\u{0}",
        "Чайник\u{1b}@",
        "Чайник\u{202e}кинйач",
        "a\u{7}b",
    ]
    .iter()
    .enumerate()
    {
        let (code, body) = till
            .call(
                "POST",
                "/api/v1/sales",
                Some(crate::common::CASHIER),
                Some(serde_json::json!({
                    "amount": "10.00",
                    "idempotency_key": format!("ctl-{i}"),
                    "description": bad,
                })),
            )
            .await;
        assert_eq!(code, 422, "{bad:?}: {body}");
        assert_eq!(body["errors"][0]["field"], "description", "{body}");
        assert!(
            body["errors"][0]["problem"]
                .as_str()
                .unwrap()
                .contains("управляющ"),
            "{body}"
        );
    }
    let http = crate::common::http();
    let url = format!("{}/api/v1/sales", h.api());
    let twice = r#"{"amount": "10.00", "amount": "10000.00", "idempotency_key": "dup-1"}"#;
    let reply = http
        .post(&url)
        .bearer_auth(crate::common::CASHIER)
        .header("content-type", "application/json")
        .body(twice)
        .send()
        .await
        .unwrap();
    let code = reply.status().as_u16();
    let body: serde_json::Value = reply.json().await.unwrap();
    assert_eq!(code, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("amount"),
        "{body}"
    );

    let reply = http
        .post(&url)
        .bearer_auth(crate::common::CASHIER)
        .body(r#"{"amount": "10.00", "idempotency_key": "ct-1"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 415);
    let body: serde_json::Value = reply.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("application/json"),
        "{body}"
    );
    assert!(
        h.sandbox.ledger().orders.is_empty(),
        "nothing reached the bank"
    );
}

/// A till that retries a sale (same key, even at the same moment as the first try, or after a
/// restart) is answered with the sale as it stands and never waits for the printer: only the
/// call that made the sale waits for its slip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_same_key_retry_is_answered_at_once_as_a_retry() {
    let mut h = Harness::new(HarnessOptions::default()).await;
    let sale = || {
        let mut s = Harness::sale(93, Mode::OneStage);
        s.idempotency_key = Some(chasti::domain::IdempotencyKey::parse("retry-race-1").unwrap());
        s
    };
    let (a, b) = tokio::join!(h.engine.sell(sale()), h.engine.sell(sale()));
    let outcomes: Vec<_> = [a, b].into_iter().filter_map(Result::ok).collect();
    assert!(!outcomes.is_empty());
    assert_eq!(
        outcomes.iter().filter(|s| s.fresh).count(),
        1,
        "exactly one call made the sale"
    );
    let first = h.engine.sell(sale()).await.unwrap();
    assert!(!first.fresh);

    // After a restart, still a retry.
    h.stop().await.unwrap();
    let dir = h.dir.clone();
    drop(h);
    let again = Harness::new(HarnessOptions {
        dir: Some(dir),
        ..HarnessOptions::default()
    })
    .await;
    let retried = again.engine.sell(sale()).await.unwrap();
    assert!(!retried.fresh);
    assert_eq!(retried.order.id, first.order.id);
}

/// The process's resident memory in MB.
fn rss_mb() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / 1e6
}

/// A storm: 20 000 distinct signed callbacks at full speed, 40 for each of 500 paid orders sent
/// round-robin (as when the bank re-sends a backlog), cannot grow memory or tasks: at most one
/// pending look per order, a bounded set overall, a few workers waiting on the shared rate,
/// and every order still reaches its state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_distinct_callbacks_keeps_memory_bounded_and_every_order_settles() {
    // RSS is the process's: measured where no other test allocates beside it.
    if crate::common::in_own_process(
        "hostile::a_storm_of_distinct_callbacks_keeps_memory_bounded_and_every_order_settles",
    ) {
        return;
    }
    const ORDERS: usize = 500;
    const EACH: usize = 40;
    let h = Harness::new(HarnessOptions {
        callbacks: false,
        ..callbacks_only(false)
    })
    .await;
    let mut orders = Vec::new();
    for _ in 0..ORDERS {
        let order = h.sell(77, Mode::OneStage).await;
        h.sandbox.pay(Harness::gateway_id(&order)).unwrap();
        orders.push(order);
    }
    let http = crate::common::http();
    let before = rss_mb();
    let (peak_rss, peak_tasks) = (
        std::sync::Arc::new(std::sync::Mutex::new(before)),
        std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0)),
    );
    let sampler = {
        let (peak_rss, peak_tasks, callbacks) =
            (peak_rss.clone(), peak_tasks.clone(), h.callbacks.clone());
        tokio::spawn(async move {
            loop {
                let now = rss_mb();
                {
                    let mut p = peak_rss.lock().unwrap();
                    *p = p.max(now);
                }
                peak_tasks.fetch_max(callbacks.tasks(), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let callbacks: Vec<Vec<(String, String)>> = (0..EACH)
        .flat_map(|i| orders.iter().map(move |o| (i, o)))
        .map(|(i, order)| {
            let (gid, number, n) = (
                Harness::gateway_id(order),
                order.order_number.to_string(),
                i.to_string(),
            );
            signed(&[
                ("mdOrder", gid.as_str()),
                ("orderNumber", number.as_str()),
                ("operation", "deposited"),
                ("status", "1"),
                ("attempt", n.as_str()),
            ])
        })
        .collect();
    let started = Instant::now();
    for chunk in callbacks.chunks(64) {
        let sent = futures_util::future::join_all(chunk.iter().map(|p| {
            let (http, url) = (&http, h.callback_url.clone());
            async move {
                http.get(url)
                    .query(p)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            }
        }))
        .await;
        assert!(sent.iter().all(|s| *s == 200), "{sent:?}");
        assert!(
            h.callbacks.queue_len() <= chasti::callbacks::FOLLOW_UPS_MAX,
            "the follow-up queue is bounded"
        );
    }
    let sent_in = started.elapsed();
    crate::common::wait_until("every order paid", Duration::from_secs(180), || {
        orders
            .iter()
            .all(|o| h.engine.get(&o.id).unwrap().state.kind() == StateKind::Paid)
    })
    .await;
    // The looks the later rounds asked for (one per order per spacing) drain at the shared rate.
    crate::common::wait_until("the follow-ups drain", Duration::from_secs(180), || {
        h.callbacks.in_flight() == 0
    })
    .await;
    sampler.abort();
    let peak = *peak_rss.lock().unwrap();
    let tasks = peak_tasks.load(std::sync::atomic::Ordering::Relaxed);
    let looks = looks(&h, None).len();
    eprintln!(
        "{} callbacks in {sent_in:?}, settled in {:?}; {looks} status calls; at most {tasks} follow-up tasks; RSS {before:.1} MB before, peak {peak:.1} MB",
        callbacks.len(),
        started.elapsed()
    );
    assert!(
        tasks <= chasti::callbacks::FOLLOW_UP_WORKERS,
        "{tasks} follow-up tasks at once: a task per order is what the storm must not cause"
    );
    assert!(
        peak - before < 64.0,
        "RSS grew from {before:.1} to {peak:.1} MB under {} callbacks",
        callbacks.len()
    );
    assert!(
        looks <= ORDERS * (2 + started.elapsed().as_secs() as usize),
        "{looks} status calls: one per order per spacing at most"
    );
}
