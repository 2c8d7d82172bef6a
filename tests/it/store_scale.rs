//! A store with history: lists come a page at a time after a cursor, each day's money comes from
//! sums kept with every write (and matches the orders), the CSV export streams every order, and
//! a daemon serving 100 000 orders stays within a small, fixed memory.

use chasti::orders::StateKind;
use chasti::orders::{DayTotals, Mode};
use serde_json::{json, Value};

use crate::common::history::day_of_orders;
use crate::common::{Harness, HarnessOptions, TillClient, CASHIER, MANAGER};

fn expected_totals(orders: &[chasti::orders::Order], day: chrono::NaiveDate) -> DayTotals {
    let mut totals = DayTotals::new(day);
    for o in orders {
        totals.add(o).unwrap();
    }
    totals
}

fn totals_json(t: &DayTotals) -> Value {
    serde_json::to_value(t).unwrap()
}

#[tokio::test]
async fn a_busy_day_pages_through_and_its_money_comes_from_kept_sums() {
    let h = Harness::new(HarnessOptions::default()).await;
    let today = chasti::moscow::date(h.engine.now());
    let orders = day_of_orders(today, 250, "1", 0);
    h.engine.store().insert_many(&orders).await.unwrap();
    let api = TillClient::new(h.api());

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/orders?day={today}&limit=100&cursor={c}"),
            None => format!("/api/v1/orders?day={today}&limit=100"),
        };
        let (status, page) = api.call("GET", &path, Some(CASHIER), None).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        assert_eq!(
            page["days"][0],
            totals_json(&expected_totals(&orders, today)),
            "every page carries the day's money"
        );
        for o in page["orders"].as_array().unwrap() {
            seen.push(o["id"].as_str().unwrap().to_string());
        }
        assert_eq!(page["count"], page["orders"].as_array().unwrap().len());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let ids: Vec<String> = orders.iter().map(|o| o.id.to_string()).collect();
    assert_eq!(seen, ids, "every order once, oldest first");

    // One state across pages.
    let refunded = orders
        .iter()
        .filter(|o| o.state.name() == "partially_refunded")
        .count();
    let (_, page) = api
        .call(
            "GET",
            &format!("/api/v1/orders?day={today}&state=partially_refunded&limit=500"),
            Some(CASHIER),
            None,
        )
        .await;
    assert_eq!(page["count"], refunded);
    assert_eq!(
        page["total"]["count"], 250,
        "the day's money is the whole day's"
    );

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=много", "limit"),
        ("cursor=not-a-cursor", "cursor"),
    ] {
        let (status, body) = api
            .call(
                "GET",
                &format!("/api/v1/orders?day={today}&{query}"),
                Some(CASHIER),
                None,
            )
            .await;
        assert_eq!(status, 422, "{query}: {body}");
        assert_eq!(body["errors"][0]["field"], field, "{body}");
    }

    // The CSV streams every order of the day.
    let csv = api
        .http
        .get(format!("{}/api/v1/orders.csv?day={today}", api.base))
        .bearer_auth(CASHIER)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let rows = csv::ReaderBuilder::new()
        .delimiter(b';')
        .from_reader(&csv[3..])
        .records()
        .count();
    assert_eq!(rows, 250);

    // A live sale, its payment and a refund move the kept sums as they move the orders.
    let sale = api.sale("100", "live").await;
    let id = uuid::Uuid::parse_str(sale["order"]["id"].as_str().unwrap()).unwrap();
    h.sandbox
        .pay(Harness::gateway_id(&h.engine.get(&id).unwrap()))
        .unwrap();
    h.wait_state(&id, StateKind::Paid).await;
    let (status, _) = api
        .call(
            "POST",
            &format!("/api/v1/orders/{id}/refund"),
            Some(MANAGER),
            Some(json!({"amount": "30", "idempotency_key": "r"})),
        )
        .await;
    assert_eq!(status, 200);
    let all = h.engine.list(today, None).unwrap();
    let kept = h.engine.day_totals(today, today).unwrap();
    assert_eq!(kept[0], expected_totals(&all, today));
    assert_eq!(kept[0].count, 251);
}

#[tokio::test]
async fn sums_follow_every_kind_of_change() {
    let h = Harness::new(HarnessOptions {
        auto_deposit: false,
        ..HarnessOptions::default()
    })
    .await;
    let today = chasti::moscow::date(h.engine.now());
    let mut ids = Vec::new();
    for (i, mode) in [
        Mode::OneStage,
        Mode::TwoStage,
        Mode::OneStage,
        Mode::OneStage,
    ]
    .into_iter()
    .enumerate()
    {
        let o = h.sell(100 + i as u64, mode).await;
        ids.push(o.id);
    }
    for id in &ids[..3] {
        h.sandbox
            .pay(Harness::gateway_id(&h.engine.get(id).unwrap()))
            .unwrap();
    }
    h.wait_state(&ids[0], StateKind::Paid).await;
    h.wait_state(&ids[1], StateKind::Held).await;
    h.wait_state(&ids[2], StateKind::Paid).await;
    h.engine.deposit(&ids[1], None, None).await.unwrap();
    h.engine.reverse(&ids[0], None).await.unwrap();
    let key = chasti::domain::IdempotencyKey::parse("k").unwrap();
    h.engine.refund(&ids[2], None, &key, None).await.unwrap();
    let actor = chasti::orders::Actor {
        token: "till-1".into(),
        cashier: None,
    };
    h.engine.cancel(&ids[3], &actor).await.unwrap();
    let all = h.engine.list(today, None).unwrap();
    let kept = h.engine.day_totals(today, today).unwrap()[0];
    assert_eq!(kept, expected_totals(&all, today));
    assert_eq!(kept.sold.get(), 10_000 + 10_100 + 10_200);
    assert_eq!(kept.reversed.get(), 10_000);
    assert_eq!(kept.refunded.get(), 10_200);
    assert_eq!(kept.net.get(), 10_100);
}

/// A key answers with its sale for `KEY_DAYS` Moscow days (a till retries within minutes);
/// after that it is a new sale, and the sweep forgets the old days' keys.
#[tokio::test]
async fn an_idempotency_key_answers_for_a_week_then_is_forgotten() {
    let start = chrono::Utc::now();
    let clock = std::sync::Arc::new(chasti::engine::ManualClock::new(start));
    let h = Harness::new(HarnessOptions {
        clock: Some(clock.clone()),
        ..HarnessOptions::default()
    })
    .await;
    let sale = |key: &str| {
        let mut s = Harness::sale(100, Mode::OneStage);
        s.idempotency_key = Some(chasti::domain::IdempotencyKey::parse(key).unwrap());
        s
    };
    let first = h
        .engine
        .sell(sale("receipt-1"))
        .await
        .map(|sold| sold.order)
        .unwrap();
    let days = chasti::store::KEY_DAYS;
    clock.set(start + chrono::Duration::days(days - 1));
    let again = h
        .engine
        .sell(sale("receipt-1"))
        .await
        .map(|sold| sold.order)
        .unwrap();
    assert_eq!(again.id, first.id, "the same sale within the week");
    clock.set(start + chrono::Duration::days(days));
    let later = h
        .engine
        .sell(sale("receipt-1"))
        .await
        .map(|sold| sold.order)
        .unwrap();
    assert_ne!(later.id, first.id, "a new sale after it");
    h.engine.prune().await;
    let cutoff = start + chrono::Duration::days(days);
    let key = chasti::domain::IdempotencyKey::parse("receipt-1").unwrap();
    let found = h.engine.store().by_idempotency_key(&key, cutoff).unwrap();
    assert_eq!(
        found.map(|o| o.id),
        Some(later.id),
        "the old day's key is gone"
    );
}

/// Resident and peak resident memory of a process, in MB.
fn memory_mb(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// `chasti serve` (the shipped config, embedded sandbox, free ports) on the store at `store`.
fn serve_on(dir: &std::path::Path, store: &std::path::Path) -> crate::common::ServeProcess {
    let text = include_str!("../../config/chasti.toml")
        .replace("listen = \"127.0.0.1:8907\"", "listen = \"127.0.0.1:0\"")
        .replace("listen = \"127.0.0.1:8081\"", "listen = \"127.0.0.1:0\"")
        .replace("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:0\"")
        .replace(
            "path = \"chasti-data/orders.db\"",
            &format!("path = \"{}\"", store.display()),
        );
    let config = dir.join(format!(
        "{}.toml",
        store.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&config, text).unwrap();
    crate::common::ServeProcess::start(&config, &dir.join("serve.log"), &[])
}

/// Memory does not grow with the store's history: a daemon on 100 000 orders starts within a
/// few MB of one on an empty store, and listing pages, a day's CSV and the manager page add
/// little. (Figures for the release build are in docs/benchmarks.md, from `cargo bench --bench load`;
/// this asserts the shape with a generous margin, on the test build.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_bounded_serving_100_000_orders() {
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history");
    let today = chrono::Utc::now();
    let last = chasti::moscow::date(today) - chrono::Duration::days(1);
    let first = last - chrono::Duration::days(29);
    {
        let store = chasti::store::Store::open(&history).unwrap();
        let mut day = first;
        while day <= last {
            let n = if day == last { 13_000 } else { 3_000 };
            store
                .insert_many(&day_of_orders(day, n, "1", 0))
                .await
                .unwrap();
            day = day.succ_opt().unwrap();
        }
    }
    let empty = serve_on(dir.path(), &dir.path().join("empty"));
    let (baseline, _) = memory_mb(empty.child.id());
    drop(empty);

    let serve = serve_on(dir.path(), &history);
    let pid = serve.child.id();
    let (started, _) = memory_mb(pid);
    let http = crate::common::http();
    let manager = "demo-manager-token-change-me";
    let mut cursor = String::new();
    for _ in 0..5 {
        let reply: Value = http
            .get(format!(
                "{}/api/v1/orders?day={last}&limit=100{cursor}",
                serve.api
            ))
            .bearer_auth(manager)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(reply["total"]["count"], 13_000);
        cursor = format!("&cursor={}", reply["next_cursor"].as_str().unwrap());
    }
    let csv = http
        .get(format!("{}/api/v1/orders.csv?day={last}", serve.api))
        .bearer_auth(manager)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(csv.len() > 1_000_000, "{} bytes", csv.len());
    let page = http
        .get(format!("{}/manager", serve.api))
        .send()
        .await
        .unwrap();
    assert!(page.status().is_success());
    let (after, peak) = memory_mb(pid);
    eprintln!("memory: empty store {baseline:.1} MB, 100 000 orders {started:.1} MB at start, {after:.1} MB after (peak {peak:.1} MB)");
    assert!(
        started - baseline < 40.0,
        "serving 100 000 orders takes {started:.1} MB at start, an empty store {baseline:.1} MB"
    );
    assert!(
        peak - started < 40.0,
        "listing, a day's CSV and the manager page took it from {started:.1} MB to {after:.1} MB (peak {peak:.1} MB)"
    );
}

/// A second chasti on a store another one is serving is told which process holds it and what
/// to do, not a bare "database is locked".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_in_use_names_the_process_that_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("orders");
    let serve = serve_on(dir.path(), &store);
    let pid = serve.child.id();
    let error = match chasti::store::Store::open(&store) {
        Ok(_) => panic!("the store opened twice"),
        Err(e) => e.to_string(),
    };
    assert!(error.contains(&format!("process {pid}")), "{error}");
    assert!(error.contains("chasti"), "{error}");
    assert!(error.contains("only one chasti may use a store"), "{error}");
}
