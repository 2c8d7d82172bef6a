//! Issue 11's attacks, each reproduced against a real daemon on 127.0.0.1: what anyone who can
//! reach chasti's ports might send, and what the till still does.

use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use crate::common::{Harness, HarnessOptions, TillClient};

/// More silent connections to the callback port than its cap: the ones over the cap are closed
/// at once, and a sale on the till API still answers within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_to_the_callback_port_cannot_starve_the_till_api() {
    let h = Harness::new(HarnessOptions::default()).await;
    let cap = chasti::http::server::Limits::CALLBACK.max_connections;
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
