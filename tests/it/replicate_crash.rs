//! A real `chasti serve` that dies between shipping a batch to the head office and recording
//! that it did (`CHASTI_TEST_CRASH_AFTER_SHIP`: an abort there, as a SIGKILL or a power cut
//! would): started again, it ships the same batch again, and the head office's upsert makes
//! the repeat harmless — one order row, every history line once.

use std::path::Path;
use std::time::Duration;

use crate::common::postgres::{replicate_section, wait_for, Postgres};
use crate::common::{self, ServeProcess, CALLBACK_KEY, CASHIER, MANAGER};

pub(crate) fn write_config(
    dir: &Path,
    sandbox: &chasti::sandbox::Sandbox,
    url: &str,
) -> std::path::PathBuf {
    let text = format!(
        r#"[gateway]
environment = "test"
base_url = "{gateway}"
user_name = "sandbox-api"
password = "sandbox"
return_url = "https://shop.example/paid"

[store]
path = "{store}"
prefix = "K"

[orders]
poll_first_secs = 1
poll_max_secs = 2
payment_page_template = "{pay}sandbox/pay/{{orderId}}"

[callback]
listen = "127.0.0.1:0"
path = "/cb"
key = "{CALLBACK_KEY}"

[api]
listen = "127.0.0.1:0"
[[api.tokens]]
name = "till"
role = "cashier"
token = "{CASHIER}"
[[api.tokens]]
name = "boss"
role = "manager"
token = "{MANAGER}"
{replicate}"#,
        gateway = sandbox.gateway_url(),
        pay = sandbox.url(),
        store = dir.join("orders").display(),
        replicate = replicate_section(url, "msk-001"),
    );
    let path = dir.join("chasti.toml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn rows(pg: &tokio_postgres::Client) -> (i64, i64, Option<i64>) {
    let r = pg
        .query_one(
            "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM order_events),
                (SELECT max(version) FROM orders)",
            &[],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1), r.get(2))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_shipping_and_acknowledging_ships_again_harmlessly() {
    let Some(pg) = Postgres::start("replicate_crash") else {
        return;
    };
    let central = pg.chain_database("chain").await;
    let sandbox = common::sandbox().await;
    sandbox.set_callback_key(Some(chasti::secret::Secret::new(CALLBACK_KEY)));
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sandbox, &pg.url("chain"));
    let log = dir.path().join("serve.log");

    let mut serve = ServeProcess::start(&config, &log, &[("CHASTI_TEST_CRASH_AFTER_SHIP", "1")]);
    let sale = common::post_json(
        format!("{}/api/v1/sales", serve.api),
        Some(CASHIER),
        &serde_json::json!({"amount": "1499.00", "idempotency_key": "crash-1"}),
    )
    .await;
    let number = sale["order"]["order_number"].as_str().unwrap().to_string();
    let status = serve.wait_exit(Duration::from_secs(30));
    assert!(!status.success(), "chasti died after shipping: {status:?}");
    let shipped = wait_for(
        "the shipped batch is in the head office",
        Duration::from_secs(10),
        async || rows(&central).await,
        |r| r.0 == 1,
    )
    .await;

    // Started again: the unacknowledged change goes again; nothing doubles.
    let serve = ServeProcess::start(&config, &log, &[]);
    sandbox.set_callback_url(Some(serve.callbacks.clone()));
    let api = serve.api.clone();
    wait_for(
        "the outbox is empty again",
        Duration::from_secs(30),
        async || {
            common::get_json(format!("{api}/api/v1/replication"), MANAGER).await["pending"].as_u64()
        },
        |p| *p == Some(0),
    )
    .await;
    let again = rows(&central).await;
    assert_eq!(again.0, 1, "one order row");
    assert!(again.2 >= shipped.2, "never an older version");
    let order = common::get_json(format!("{api}/api/v1/orders/{number}"), CASHIER).await;
    let lines = order["events"].as_array().map(Vec::len).unwrap_or(0) as i64;
    assert_eq!(again.1, lines, "every history line once");

    // The customer pays: the head office sees it.
    let bank_id = order["gateway_order_id"].as_str().unwrap();
    sandbox.pay(bank_id).unwrap();
    wait_for(
        "the payment reaches the head office",
        Duration::from_secs(30),
        async || {
            central
                .query_one("SELECT state FROM orders", &[])
                .await
                .unwrap()
                .get::<_, String>(0)
        },
        |s| s == "paid",
    )
    .await;
    serve.terminate();
}

/// A panic while shipping (a bug, or a row no one foresaw) does not end shipping: the turn
/// counts as failed, the change waits in the outbox, and the next turn ships it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_while_shipping_is_a_failed_turn_and_shipping_goes_on() {
    let Some(pg) = Postgres::start("replicate_panic") else {
        return;
    };
    let central = pg.chain_database("chain").await;
    let sandbox = common::sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sandbox, &pg.url("chain"));
    let log = dir.path().join("serve.log");
    let serve = ServeProcess::start(&config, &log, &[("CHASTI_TEST_PANIC_IN_SHIP", "1")]);
    common::post_json(
        format!("{}/api/v1/sales", serve.api),
        Some(CASHIER),
        &serde_json::json!({"amount": "1499.00", "idempotency_key": "panic-1"}),
    )
    .await;
    let api = serve.api.clone();
    let view = wait_for(
        "the change is shipped after the panic",
        Duration::from_secs(30),
        async || common::get_json(format!("{api}/api/v1/replication"), MANAGER).await,
        |v| v["pending"] == 0 && v["shipped_total"].as_u64().unwrap_or(0) > 0,
    )
    .await;
    assert!(view["last_error"].is_null(), "{view}");
    assert_eq!(rows(&central).await.0, 1);
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(
        said.contains("shipper failed unexpectedly (CHASTI_TEST_PANIC_IN_SHIP)"),
        "{said}"
    );
    serve.terminate();
}
