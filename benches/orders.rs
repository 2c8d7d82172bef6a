//! `cargo bench --bench orders`: what the daemon itself costs.
//!
//! 1. Durable callbacks per second: signed callbacks over real HTTP to the callback route,
//!    each verified, written to sled and flushed before its 200.
//! 2. The engine's own cost per sale: wall time of `create_sale` minus the time spent inside
//!    gateway calls (from the journal), so the sandbox's speed is taken out.

#[path = "../tests/it/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use chasti::gateway::checksum::hmac_sha256_checksum;
use chasti::orders::Mode;
use common::{Harness, HarnessOptions, CALLBACK_KEY};

const SALES: usize = 200;
const CALLBACKS: usize = 1000;
const CONCURRENT_CLIENTS: usize = 8;

#[tokio::main]
async fn main() {
    let h = Harness::new(HarnessOptions {
        poll_first: Duration::from_secs(3600),
        callbacks: false,
        ..HarnessOptions::default()
    })
    .await;

    // --- cost per sale -------------------------------------------------------------------
    let started = Instant::now();
    let mut orders = Vec::with_capacity(SALES);
    for i in 0..SALES {
        orders.push(
            h.engine
                .create_sale(Harness::sale(100 + i as u64, Mode::OneStage))
                .await
                .unwrap(),
        );
    }
    let wall = started.elapsed();
    let gateway_us: u64 = h
        .engine
        .store()
        .journal()
        .unwrap()
        .iter()
        .map(|j| j.duration_us)
        .sum();
    let own = wall.saturating_sub(Duration::from_micros(gateway_us));
    println!(
        "sales: {SALES} in {:.0} ms wall, {:.0} ms of it inside gateway calls",
        wall.as_secs_f64() * 1e3,
        gateway_us as f64 / 1e3
    );
    println!("engine's own cost per sale: {:.2} ms (store writes: 1 counter + 1 insert + 1 transition, each flushed)", own.as_secs_f64() * 1e3 / SALES as f64);

    // --- durable callbacks per second ----------------------------------------------------
    let http = common::http();
    let gid = orders[0].state.bank_id().unwrap().to_string();
    let number = orders[0].order_number.clone();
    let params = [
        ("mdOrder", gid.as_str()),
        ("orderNumber", number.as_str()),
        ("operation", "created"),
        ("status", "1"),
    ];
    let sum = hmac_sha256_checksum(CALLBACK_KEY, params);
    let mut query: Vec<(&str, &str)> = params.to_vec();
    query.push(("checksum", &sum));
    let query: Vec<(String, String)> = query
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();

    let started = Instant::now();
    for _ in 0..CALLBACKS {
        let status = http
            .get(h.callback_url.clone())
            .query(&query)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
    }
    let sequential = CALLBACKS as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENT_CLIENTS {
        let (http, url, query) = (http.clone(), h.callback_url.clone(), query.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..CALLBACKS / CONCURRENT_CLIENTS {
                let status = http
                    .get(url.clone())
                    .query(&query)
                    .send()
                    .await
                    .unwrap()
                    .status();
                assert_eq!(status, 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let concurrent = CALLBACKS as f64 / started.elapsed().as_secs_f64();
    let kept = h.engine.store().callbacks().unwrap().len();
    assert_eq!(
        kept,
        2 * CALLBACKS,
        "every acknowledged callback is on disk"
    );
    println!("durable callbacks: {sequential:.0}/s one client, {concurrent:.0}/s with {CONCURRENT_CLIENTS} clients ({kept} kept)");
}
