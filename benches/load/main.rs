//! `cargo bench --bench load`: what a sale, a callback and a store of history cost, measured from
//! outside as on a till host — a `chasti sandbox` process as the bank, `chasti serve` with no
//! devices, stores on the project's disk (`target/tmp`, not a tmpfs) — and printed as the table
//! of issue 10, with the peer each figure is compared with (register.do straight to the
//! sandbox; raw sled insert+flush on the same disk).

mod drive;
#[path = "../../tests/it/common/history.rs"]
mod history;
mod procs;

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use drive::Load::{BackToBack, Every};

const WARMUP: usize = 300;
const CPU_SALES: usize = 3000;
const SATURATION_SALES: usize = 6000;
const TILLS: usize = 50;
const TILL_SALES: usize = 3000;
/// How often each till starts a sale in the paced run: 50 tills make 250 sales/s, far more than
/// any shop, yet below saturation, so the figure is latency rather than queueing.
const TILL_EVERY: Duration = Duration::from_millis(200);
const PAID: usize = 1000;
const CALLBACKS: usize = 4000;
const CALLBACK_CLIENTS: usize = 8;
const HISTORY_DAYS: u32 = 30;
const BUSY_DAY: usize = 10_000;
const OPEN: usize = 300;

struct Row {
    figure: &'static str,
    measured: String,
    goal: &'static str,
    met: bool,
}

fn http() -> reqwest::Client {
    let tls = chasti::gateway::tls::client_config(&Default::default()).unwrap();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .pool_max_idle_per_host(128)
        .build()
        .unwrap()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() {
    let scratch = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("load-bench");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let http = http();
    let mut rows = Vec::new();

    // --- a till's day: sales, payments, callbacks ------------------------------------------
    let callback_port = procs::free_port();
    let callback_url = format!("http://127.0.0.1:{callback_port}/cb");
    let (sandbox, sandbox_url) = procs::sandbox(&callback_url);
    let history_only = std::env::var("LOAD_ONLY").as_deref() == Ok("history");
    let cpu_only = std::env::var_os("LOAD_CPU_ONLY").is_some();
    let (live_bytes, live_orders) = if history_only {
        (0.0, 0)
    } else {
        till_day(
            &http,
            &scratch,
            &sandbox,
            &sandbox_url,
            &callback_url,
            callback_port,
            &mut rows,
        )
        .await
    };

    if cpu_only {
        return;
    }

    // --- a store of history -----------------------------------------------------------------
    let history_store = scratch.join("history");
    let (orders, busy_day, first_day, last_day) = build_history(&history_store).await;
    let history_bytes = procs::dir_bytes(&history_store) as f64 / orders as f64;
    rows.push(Row {
        figure: "store size per order",
        measured: format!(
            "{history_bytes:.0} B ({orders} orders of history, {:.0} MB); {live_bytes:.0} B live ({live_orders} sales, {PAID} paid by callback)",
            procs::dir_bytes(&history_store) as f64 / 1e6
        ),
        goal: "≤ 1 KB",
        met: history_bytes <= 1024.0,
    });

    let config = procs::config(&scratch, &history_store, &sandbox_url, procs::free_port());
    let (serve, api, ready) = procs::serve(&config, &scratch.join("history.log"));
    let pid = serve.pid();
    let (rss_started, _) = procs::memory_mb(pid);

    // The manager's page and a busy day's first page, twenty times.
    let page = format!("{api}/api/v1/orders?day={busy_day}&limit=100");
    let manager = http.get(format!("{api}/manager")).send().await.unwrap();
    assert!(manager.status().is_success());
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..20 {
        let t = Instant::now();
        let reply = http
            .get(&page)
            .bearer_auth(procs::MANAGER)
            .send()
            .await
            .unwrap();
        let body = reply.bytes().await.unwrap();
        times.push(t.elapsed());
        size = body.len();
    }
    times.sort();
    let page_time = times[times.len() / 2];
    rows.push(Row {
        figure: "`GET /orders?day=` with 10 000 orders that day",
        measured: format!(
            "{:.1} ms for a page of 100, {:.0} KB (median of 20); totals from the kept sums",
            ms(page_time),
            size as f64 / 1024.0
        ),
        goal: "< 20 ms for a page",
        met: page_time < Duration::from_millis(20),
    });

    // The whole history as CSV, streamed.
    let t = Instant::now();
    let mut csv = http
        .get(format!(
            "{api}/api/v1/orders.csv?from={first_day}&to={last_day}"
        ))
        .bearer_auth(procs::MANAGER)
        .send()
        .await
        .unwrap();
    let mut csv_bytes = 0;
    while let Some(chunk) = csv.chunk().await.unwrap() {
        csv_bytes += chunk.len();
    }
    let csv_time = t.elapsed();
    let (rss, peak) = procs::memory_mb(pid);
    rows.push(Row {
        figure: "RSS while serving a store of 100 000 orders",
        measured: format!(
            "{rss:.1} MB after listing, the manager page and a {:.0} MB CSV of all {orders} ({:.1} s); peak {peak:.1} MB; {rss_started:.1} MB at start",
            csv_bytes as f64 / 1e6,
            csv_time.as_secs_f64()
        ),
        goal: "< 30 MB",
        met: peak < 30.0,
    });
    rows.push(Row {
        figure: "start to ready, 100 000 orders, a few hundred open",
        measured: format!("{:.0} ms ({OPEN} open)", ms(ready)),
        goal: "< 200 ms",
        met: ready < Duration::from_millis(200),
    });
    serve.stop();
    drop(sandbox);

    println!();
    println!(
        "Measured {} on {} cores.",
        chrono::Utc::now().format("%Y-%m-%d"),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!();
    println!("| figure | measured | goal | met |");
    println!("|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} |",
            r.figure,
            r.measured,
            r.goal,
            if r.met { "yes" } else { "no" }
        );
    }
    let _ = std::fs::remove_dir_all(&scratch);
}

/// A till's day on a fresh store: sales, customers paying, callbacks. Adds its rows; returns
/// the store's bytes per order and the number of sales.
async fn till_day(
    http: &reqwest::Client,
    scratch: &std::path::Path,
    sandbox: &procs::Running,
    sandbox_url: &str,
    callback_url: &str,
    callback_port: u16,
    rows: &mut Vec<Row>,
) -> (f64, usize) {
    let live_store = scratch.join("live");
    let config = procs::config(scratch, &live_store, sandbox_url, callback_port);
    let (serve, api, _) = procs::serve(&config, &scratch.join("live.log"));
    let pid = serve.pid();
    drive::sales(http, &api, 10, WARMUP, BackToBack).await;

    let (cpu0, bank0) = (procs::cpu_seconds(pid), procs::cpu_seconds(sandbox.pid()));
    let (_, paid_ids) = drive::sales(http, &api, 10, CPU_SALES, BackToBack).await;
    let cpu = (procs::cpu_seconds(pid) - cpu0) / CPU_SALES as f64;
    let bank = (procs::cpu_seconds(sandbox.pid()) - bank0) / CPU_SALES as f64;
    let store_alone = drive::raw_sale_writes(&scratch.join("raw-sales"), 10, CPU_SALES);
    rows.push(Row {
        figure: "chasti's own CPU per sale",
        measured: format!(
            "{:.2} ms (the sandbox: {:.2} ms per sale; sled alone, the sale's two transactions and two flushes from 10 threads: {:.2} ms)",
            cpu * 1e3,
            bank * 1e3,
            store_alone * 1e3
        ),
        goal: "≤ 0.5 ms",
        met: cpu <= 0.0005,
    });

    if std::env::var_os("LOAD_CPU_ONLY").is_some() {
        // A quick look while working on the sale path: the first row only.
        println!("{}: {}", rows[0].figure, rows[0].measured);
        serve.stop();
        return (0.0, 0);
    }
    let (saturated, _) = drive::sales(http, &api, 64, SATURATION_SALES, BackToBack).await;
    let direct = drive::registers(http, sandbox_url, 64, SATURATION_SALES, BackToBack).await;
    rows.push(Row {
        figure: "sales/s before the till API saturates",
        measured: format!(
            "{:.0} (register.do straight to the sandbox: {:.0}/s)",
            saturated.per_second(),
            direct.per_second()
        ),
        goal: "≥ 2 000",
        met: saturated.per_second() >= 2000.0,
    });

    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampling = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                let rss = procs::memory_mb(pid).0;
                peak.fetch_max((rss * 1024.0) as u64, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    // Tills as they sell: each starts a sale every TILL_EVERY (open loop); then back to back.
    let paced = Every(TILL_EVERY);
    let (tills, _) = drive::sales(http, &api, TILLS, TILL_SALES, paced).await;
    let (flat_out, _) = drive::sales(http, &api, TILLS, TILL_SALES, BackToBack).await;
    sampling.abort();
    let direct = drive::registers(http, sandbox_url, TILLS, TILL_SALES, paced).await;
    let direct_flat_out = drive::registers(http, sandbox_url, TILLS, TILL_SALES, BackToBack).await;
    let overhead = tills
        .percentile(0.99)
        .saturating_sub(direct.percentile(0.99));
    let flat_out_overhead = flat_out
        .percentile(0.99)
        .saturating_sub(direct_flat_out.percentile(0.99));
    rows.push(Row {
        figure: "sale overhead beyond the gateway, 50 tills, p99",
        measured: format!(
            "{:.1} ms with each till selling every {} ms ({:.0} sales/s; sale p99 {:.1} ms, p50 {:.1} ms; register.do p99 {:.1} ms); {:.1} ms with all 50 back to back (sale p99 {:.1} ms vs register.do p99 {:.1} ms)",
            ms(overhead),
            TILL_EVERY.as_millis(),
            tills.per_second(),
            ms(tills.percentile(0.99)),
            ms(tills.percentile(0.5)),
            ms(direct.percentile(0.99)),
            ms(flat_out_overhead),
            ms(flat_out.percentile(0.99)),
            ms(direct_flat_out.percentile(0.99)),
        ),
        goal: "< 5 ms",
        met: overhead < Duration::from_millis(5),
    });
    let till_rss = peak.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1024.0;

    // Customers pay: callbacks, status calls, Paid.
    drive::pay_all(http, sandbox_url, &paid_ids[..PAID]).await;
    let (md, number) = paid_ids[PAID - 1].clone();
    wait_paid(http, &api, &number).await;
    let cbs = drive::callbacks(
        http,
        callback_url,
        &md,
        &number,
        CALLBACK_CLIENTS,
        CALLBACKS,
    )
    .await;
    let raw = drive::raw_sled(&scratch.join("raw8"), CALLBACK_CLIENTS, CALLBACKS);
    let raw_one = drive::raw_sled(&scratch.join("raw1"), 1, CALLBACKS / 4);
    let ratio = cbs.per_second() / raw;
    rows.push(Row {
        figure: "durable callbacks/s vs raw sled insert+flush/s",
        measured: format!(
            "{ratio:.2} ({:.0}/s vs {raw:.0}/s, both {CALLBACK_CLIENTS} at once; raw sled one at a time: {raw_one:.0}/s)",
            cbs.per_second()
        ),
        goal: "≥ 0.8",
        met: ratio >= 0.8,
    });
    rows.push(Row {
        figure: "RSS under 50 concurrent tills",
        measured: format!("{till_rss:.1} MB"),
        goal: "< 30 MB",
        met: till_rss < 30.0,
    });
    serve.stop();
    let live_orders = WARMUP + CPU_SALES + SATURATION_SALES + 2 * TILL_SALES;
    (
        procs::dir_bytes(&live_store) as f64 / live_orders as f64,
        live_orders,
    )
}

/// Waits (bounded) until the order is paid.
async fn wait_paid(http: &reqwest::Client, api: &str, number: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let order: serde_json::Value = http
            .get(format!("{api}/api/v1/orders/{number}"))
            .bearer_auth(procs::CASHIER)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or_default();
        if order["state"]["name"] == "paid" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the payments' callbacks never came"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// 100 000 orders over 30 Moscow days ending yesterday — one day with 10 000 — written straight
/// into a store, `OPEN` of them still awaiting payment. Returns the count and the days.
async fn build_history(path: &std::path::Path) -> (usize, NaiveDate, NaiveDate, NaiveDate) {
    let store = chasti::store::Store::open(path).unwrap();
    let today = chasti::moscow::date(chrono::Utc::now());
    let first = today - chrono::Duration::days(i64::from(HISTORY_DAYS));
    let busy = today - chrono::Duration::days(3);
    let others = (100_000 - BUSY_DAY) / (HISTORY_DAYS as usize - 1);
    let mut count = 0;
    for d in 0..HISTORY_DAYS {
        let day = first + chrono::Duration::days(i64::from(d));
        let (n, open_every) = if day == busy {
            (BUSY_DAY, 0)
        } else {
            (others, others * (HISTORY_DAYS as usize - 1) / OPEN)
        };
        let orders = history::day_of_orders(day, n, "1", open_every);
        store.insert_many(&orders).await.unwrap();
        count += orders.len();
    }
    drop(store);
    (count, busy, first, today - chrono::Duration::days(1))
}
