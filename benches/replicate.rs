//! `cargo bench --bench replicate`: what shipping to a chain's head office costs (issue 26),
//! on a private PostgreSQL cluster (Debian's binaries, started as the tests start one) and the
//! project's disk (`target/tmp`):
//! - the catch-up rate: a store that noted 100 000 changes while the head office was away,
//!   shipped by chasti's own shipper (`Replicator`) into PostgreSQL;
//! - a sale's latency with replication on and off: two `chasti serve` processes against one
//!   `chasti sandbox` process, sales one after another through the till API, in alternating
//!   rounds so drift on the machine falls on both alike; the goal is a ratio ≤ 1.05;
//! - storing an order with and without its outbox row (10 000 orders, alternating chunks);
//! - the outbox's bytes per change (its table's pages, from SQLite's dbstat);
//! - how long after the last sale the head office has every change.
//!
//! `REPLICATE_CHANGES=N`, `REPLICATE_SALES=N` (a round) and `REPLICATE_ROUNDS=N` (40) change
//! the sizes; `REPLICATE_NOWHERE=1` points the replicating daemon at a port where nothing
//! answers, so its sales pay for the outbox alone and nothing is shipped.

#[allow(dead_code)] // shared with the load bench and the tests
#[path = "load/drive.rs"]
mod drive;
#[allow(dead_code)] // shared with the load bench and the tests
#[path = "../tests/it/common/history.rs"]
mod history;
#[path = "../tests/it/common/process.rs"]
mod process;
#[allow(dead_code)] // shared with the load bench and the tests
#[path = "load/procs.rs"]
mod procs;

#[allow(dead_code)] // shared with the load bench and the tests
#[path = "../tests/it/common/pki.rs"]
mod pki;
#[allow(dead_code)] // shared with the load bench and the tests
#[path = "../tests/it/common/postgres.rs"]
mod postgres;

/// What the tests' PostgreSQL helper takes from its parent module.
use procs::free_port;

use std::time::{Duration, Instant};

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn p95(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[((v.len() as f64 * 0.95).ceil() as usize).clamp(1, v.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(bench());
}

async fn bench() {
    let Some(pg) = postgres::Postgres::start("cargo bench --bench replicate") else {
        return;
    };
    drop(pg.chain_database("chain").await);
    let url = pg.url("chain");
    let central = pg.client("chain").await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tmp");
    std::fs::create_dir_all(&root).unwrap();
    let work = tempfile::tempdir_in(&root).unwrap();

    // 1. The outbox of a store that kept changes while the head office was away.
    let changes = env_number("REPLICATE_CHANGES", 100_000);
    let path = work.path().join("backlog");
    let on = chasti::store::StoreOptions {
        replication: chasti::store::Replication::On {
            outbox_max: 10_000_000,
        },
        ..Default::default()
    };
    let store = chasti::store::Store::open_with(&path, on).unwrap();
    let per_day = 5_000.min(changes);
    let first = chasti::moscow::date(chrono::Utc::now()) - chrono::Duration::days(60);
    let mut made = 0;
    let mut day = first;
    while made < changes {
        let n = per_day.min(changes - made);
        store
            .insert_many(&history::day_of_orders(day, n, "1", 0))
            .await
            .unwrap();
        made += n;
        day += chrono::Duration::days(1);
    }
    let bytes = store.outbox_bytes().unwrap();
    assert_eq!(store.outbox_status().unwrap().pending, changes as u64);

    // The outbox row's own cost: storing orders with and without it, in alternating chunks.
    let per_write = {
        let off_store = chasti::store::Store::open(&work.path().join("plain")).unwrap();
        let on_store = chasti::store::Store::open_with(&work.path().join("noted"), on).unwrap();
        let orders = history::day_of_orders(first - chrono::Duration::days(1), 10_000, "2", 0);
        let (mut t_off, mut t_on) = (Duration::ZERO, Duration::ZERO);
        for chunk in orders.chunks(100) {
            for (store, time) in [(&off_store, &mut t_off), (&on_store, &mut t_on)] {
                let started = Instant::now();
                for o in chunk {
                    store.insert(o).await.unwrap();
                }
                *time += started.elapsed();
            }
        }
        (t_off / orders.len() as u32, t_on / orders.len() as u32)
    };

    // 2. Caught up by the shipper the daemon runs.
    let config = postgres::replicate_config(&url, "bench-store");
    let (wake, rx) = tokio::sync::broadcast::channel(16);
    let shipper = chasti::replicate::Replicator::new(config, store.clone(), rx);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let task = tokio::spawn(shipper.run(async move {
        let _ = stopped.await;
    }));
    while store.outbox_status().unwrap().pending > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let catch_up = started.elapsed();
    let _ = stop.send(());
    task.await.unwrap();
    drop(wake);
    let in_pg: i64 = central
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(in_pg, changes as i64);
    drop(store);

    // 3. A sale with replication on and off.
    let callback_off = procs::free_port();
    let callback_on = procs::free_port();
    let (_sandbox, sandbox_url) = procs::sandbox(&format!("http://127.0.0.1:{callback_off}/cb"));
    let dir_off = work.path().join("off");
    let dir_on = work.path().join("on");
    std::fs::create_dir_all(&dir_off).unwrap();
    std::fs::create_dir_all(&dir_on).unwrap();
    let config_off = procs::config(
        &dir_off,
        &dir_off.join("orders"),
        &sandbox_url,
        callback_off,
    );
    let config_on = procs::config(&dir_on, &dir_on.join("orders"), &sandbox_url, callback_on);
    // Its own order numbers: both sell at the one sandbox.
    let mut text = std::fs::read_to_string(&config_on)
        .unwrap()
        .replace("prefix = \"B\"", "prefix = \"R\"");
    let target = match std::env::var_os("REPLICATE_NOWHERE") {
        // The outbox's cost alone: nothing answers, nothing is shipped.
        Some(_) => format!("postgres://hq:x@127.0.0.1:{}/chain", procs::free_port()),
        None => url.clone(),
    };
    text.push_str(&postgres::replicate_section(&target, "bench-on"));
    std::fs::write(&config_on, text).unwrap();
    let (_serve_off, api_off, _) = procs::serve(&config_off, &dir_off.join("serve.log"));
    let (_serve_on, api_on, _) = procs::serve(&config_on, &dir_on.join("serve.log"));
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(
            chasti::gateway::tls::client_config(&Default::default()).unwrap(),
        )
        .no_proxy()
        .build()
        .unwrap();
    let round = env_number("REPLICATE_SALES", 200);
    // Many short rounds: on this 2-core host one round's ratio wanders by ±20 %.
    let rounds = env_number("REPLICATE_ROUNDS", 40);
    let (mut off, mut on) = (Vec::new(), Vec::new());
    // A warm-up for each, then rounds in turn.
    for api in [&api_off, &api_on] {
        drive::sales(&http, api, 1, 50, drive::Load::BackToBack).await;
    }
    // Which goes first alternates: a machine warming up or cooling down favours neither.
    for i in 0..rounds {
        let order = if i % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for replicating in order {
            let api = if replicating { &api_on } else { &api_off };
            let (run, _) = drive::sales(&http, api, 1, round, drive::Load::BackToBack).await;
            if replicating {
                on.push(run.latencies);
            } else {
                off.push(run.latencies);
            }
        }
    }
    // Each round's ratio of medians; their median is the figure, their spread its noise.
    let mut ratios: Vec<f64> = on
        .iter()
        .zip(&off)
        .map(|(a, b)| median(a.clone()).as_secs_f64() / median(b.clone()).as_secs_f64())
        .collect();
    ratios.sort_by(f64::total_cmp);
    let round_ratio = ratios[ratios.len() / 2];
    let (on, off): (Vec<Duration>, Vec<Duration>) = (
        on.into_iter().flatten().collect(),
        off.into_iter().flatten().collect(),
    );
    // How long after the last sale the head office has them all.
    let last_sale = Instant::now();
    let all = (rounds * round + 50) as i64;
    let nowhere = std::env::var_os("REPLICATE_NOWHERE").is_some();
    let lag = loop {
        if nowhere {
            break Duration::ZERO;
        }
        // Every change shipped (not only every order there at some version).
        let view: serde_json::Value = http
            .get(format!("{api_on}/api/v1/replication"))
            .bearer_auth(procs::MANAGER)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let shipped: i64 = central
            .query_one(
                "SELECT count(*) FROM orders WHERE store_id = 'bench-on'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if view["pending"] == 0 && shipped >= all {
            break last_sale.elapsed();
        }
        assert!(
            last_sale.elapsed() < Duration::from_secs(60),
            "the head office has {shipped} of {all} sales a minute after the last"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let (m_off, m_on) = (median(off.clone()), median(on.clone()));
    let (p_off, p_on) = (p95(off), p95(on));
    let ratio = m_on.as_secs_f64() / m_off.as_secs_f64();
    let ratio95 = p_on.as_secs_f64() / p_off.as_secs_f64();

    println!();
    println!("| figure (issue 26) | measured | goal |");
    println!("|---|---|---|");
    println!(
        "| catch-up into PostgreSQL | {:.0} changes/s ({changes} changes in {:.1} s, batches of 500) | — |",
        changes as f64 / catch_up.as_secs_f64(),
        catch_up.as_secs_f64()
    );
    println!(
        "| sale latency, replication on ÷ off (median of the {rounds} rounds' ratios) | {round_ratio:.3} (rounds from {:.3} to {:.3}) | ≤ 1.05 {} |",
        ratios[0],
        ratios[ratios.len() - 1],
        if round_ratio <= 1.05 { "met" } else { "NOT met" }
    );
    println!(
        "| sale latency, replication on ÷ off (all sales' medians) | {ratio:.3} ({:.2} ms ÷ {:.2} ms; {} sales each) | — |",
        ms(m_on),
        ms(m_off),
        rounds * round,
    );
    println!(
        "| sale latency, replication on ÷ off (p95) | {ratio95:.3} ({:.2} ms ÷ {:.2} ms) | — |",
        ms(p_on),
        ms(p_off)
    );
    println!(
        "| storing an order (one commit, fsynced), with the outbox row ÷ without | {:.3} ({:.0} µs ÷ {:.0} µs) | — |",
        per_write.1.as_secs_f64() / per_write.0.as_secs_f64(),
        per_write.1.as_secs_f64() * 1e6,
        per_write.0.as_secs_f64() * 1e6
    );
    println!(
        "| outbox bytes per change | {:.1} ({bytes} bytes for {changes} changes waiting: the table's pages) | — |",
        bytes as f64 / changes as f64
    );
    println!(
        "| head office has every sale, after the last one | {:.0} ms ({all} sales; the shipper lets changes gather 1 s) | — |",
        ms(lag)
    );
}
