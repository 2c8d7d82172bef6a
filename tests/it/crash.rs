//! A real `chasti serve` process, killed with SIGKILL between steps and restarted, with the
//! host in a time zone far from Moscow: every order converges, none is lost or doubled
//! (checked against the sandbox's ledger). Every daemon binds free ports (port 0) and says
//! where in its ready line.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chasti::orders::{Mode, StateKind};
use chasti::sandbox::{Fault, FaultRule};
use chasti::secret::Secret;

use crate::common::{self, store_released, Harness, HarnessOptions, ServeProcess, CALLBACK_KEY};

/// How long a call is let run before the test cuts it off, as a crash would: long enough for
/// it to leave on a loaded CI machine, well short of the bank's 1.5 s answer.
const CUT: Duration = Duration::from_millis(800);

fn write_config(dir: &Path, gateway: &url::Url, pay_base: &url::Url) -> std::path::PathBuf {
    let text = format!(
        r#"[gateway]
environment = "test"
base_url = "{gateway}"
user_name = "sandbox-api"
password = "sandbox"
return_url = "https://shop.example/paid"
request_timeout_secs = 5

[store]
path = "{store}"
prefix = "T"

[orders]
poll_first_secs = 1
poll_max_secs = 2
payment_page_template = "{pay_base}sandbox/pay/{{orderId}}"

[callback]
listen = "127.0.0.1:0"
path = "/cb"
key = "{CALLBACK_KEY}"

[api]
listen = "127.0.0.1:0"
[[api.tokens]]
name = "till"
role = "cashier"
token = "{TOKEN}"
"#,
        store = dir.join("orders").display(),
    );
    let path = dir.join("chasti.toml");
    std::fs::write(&path, text).unwrap();
    path
}

const TZ: [(&str, &str); 1] = [("TZ", "America/Los_Angeles")];
const TOKEN: &str = "crash-test-token-0123456789";

/// Waits (bounded) until the daemon's API shows every one of these orders settled.
async fn wait_settled(api: &str, numbers: &[String]) {
    let http = common::http();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut open = Vec::new();
        for n in numbers {
            let view: serde_json::Value = http
                .get(format!("{api}/api/v1/orders/{n}"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let state = view["state"]["name"].as_str().unwrap_or("?").to_string();
            if StateKind::parse(&state).is_none_or(|k| k.is_open()) {
                open.push(format!("{n}: {state}"));
            }
        }
        if open.is_empty() {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("orders still open after 30 s: {open:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts `chasti serve` and points the bank's callbacks at it.
fn start(config: &Path, log: &Path, sandbox: &chasti::sandbox::Sandbox) -> ServeProcess {
    let serve = ServeProcess::start(config, log, &TZ);
    sandbox.set_callback_url(Some(serve.callbacks.clone()));
    serve
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_restarted_serve_converges_without_loss_or_doubling() {
    // Orders made by a first daemon (in-process, its poller idle), which then stops.
    let sandbox = Arc::new(common::sandbox().await);
    let sb = sandbox.clone();
    let h = Harness::with_sandbox(
        sandbox.clone(),
        HarnessOptions {
            run: false,
            callbacks: false,
            ..HarnessOptions::default()
        },
    )
    .await;
    let mut holds = Vec::new();
    for r in [11, 12, 13] {
        holds.push(h.sell(r, Mode::TwoStage).await);
    }
    let mut singles = Vec::new();
    for r in [21, 22] {
        singles.push(h.sell(r, Mode::OneStage).await);
    }
    let unpaid = h.sell(31, Mode::OneStage).await;
    // A sale cut off while register.do is under way (the bank answers late).
    sb.add_fault(FaultRule::new("register.do", Fault::Latency { ms: 1500 }));
    let cut = tokio::time::timeout(CUT, h.engine.sell(Harness::sale(41, Mode::OneStage))).await;
    assert!(cut.is_err());
    // A hold whose deposit is cut off while deposit.do is under way.
    sb.pay(Harness::gateway_id(&holds[0])).unwrap();
    sb.add_fault(FaultRule::new("deposit.do", Fault::Latency { ms: 1500 }));
    assert!(tokio::time::timeout(CUT, h.engine.refresh(&holds[0].id))
        .await
        .is_err());
    let dir = h.dir.clone();
    let store_dir = dir.path().to_path_buf();
    {
        let mut h = h;
        h.stop().await.unwrap();
    }
    // The late answers reach the bank's ledger before the restarts begin.
    common::wait_ledger(&sb, "the cut-off register and deposit", |l| {
        l.operations.iter().any(|o| o.operation == "deposit.do") && l.orders.len() == 7
    })
    .await;
    drop(store_released(&store_dir.join("orders")).await);

    sb.set_callback_key(Some(Secret::new(CALLBACK_KEY)));
    let config = write_config(&store_dir, &sb.gateway_url(), &sb.url());
    let log = store_dir.join("serve.log");

    // Customers pay while the daemon is down: their callbacks are lost.
    sb.pay(Harness::gateway_id(&holds[1])).unwrap();
    sb.pay(Harness::gateway_id(&singles[0])).unwrap();

    // Kill 1: during recovery, with the bank slow to answer deposits.
    sb.add_fault(FaultRule::new("deposit.do", Fault::Latency { ms: 1200 }).times(Some(3)));
    let d = start(&config, &log, &sb);
    common::wait_ledger(&sb, "a deposit under way after the restart", |l| {
        l.operations
            .iter()
            .filter(|o| o.operation == "deposit.do")
            .count()
            >= 2
    })
    .await;
    d.kill9();

    // More payments arrive; kill 2 while their callbacks and deposits are being handled.
    sb.pay(Harness::gateway_id(&holds[2])).unwrap();
    sb.pay(Harness::gateway_id(&singles[1])).unwrap();
    let d = start(&config, &log, &sb);
    common::wait_ledger(&sb, "the daemon asks about the new payments", |l| {
        l.operations
            .iter()
            .filter(|o| o.operation == "getOrderStatusExtended.do")
            .count()
            >= 3
    })
    .await;
    d.kill9();

    // Then let it run until everything settles, and stop it as systemd would.
    let d = start(&config, &log, &sb);
    let numbers: Vec<String> = holds
        .iter()
        .chain(&singles)
        .map(|o| o.order_number.to_string())
        .collect();
    wait_settled(&d.api, &numbers).await;
    let status = d.terminate();
    assert!(status.success(), "a SIGTERM stop exits 0: {status:?}");
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(log_text.contains("recovery done"), "{log_text}");
    if std::env::var_os("CHASTI_SHOW_LOG").is_some() {
        eprintln!("{log_text}");
    }

    let store = store_released(&store_dir.join("orders")).await;
    let all = store.all().unwrap();
    let ledger = sb.ledger();
    assert_eq!(all.len(), 7, "no order lost");
    assert_eq!(ledger.orders.len(), 7, "no order registered twice");
    for order in &all {
        assert_eq!(
            ledger.count_ok("register.do", &order.order_number)
                + ledger.count_ok("registerPreAuth.do", &order.order_number),
            1,
            "{}",
            order.order_number
        );
        let at_bank = ledger.order(&order.order_number).unwrap();
        match order.mode {
            Mode::TwoStage => {
                assert_eq!(
                    order.state.kind(),
                    StateKind::Paid,
                    "{}: {:?}",
                    order.order_number,
                    order.history
                );
                assert_eq!(
                    ledger.count_ok("deposit.do", &order.order_number),
                    1,
                    "{}: exactly one deposit",
                    order.order_number
                );
                assert_eq!(at_bank.deposited, order.amount);
            }
            Mode::OneStage if order.amount == unpaid.amount => {
                assert_eq!(order.state.kind(), StateKind::AwaitingPayment);
            }
            Mode::OneStage if at_bank.deposited == order.amount => {
                assert_eq!(
                    order.state.kind(),
                    StateKind::Paid,
                    "{}",
                    order.order_number
                );
            }
            Mode::OneStage => {
                // The sale cut off during register: closed at the bank, never payable.
                assert_eq!(order.state.kind(), StateKind::Failed, "{:?}", order.state);
                assert_eq!(at_bank.order_status, 6);
            }
        }
    }
    // The store can be served again after all this: a fresh daemon finds nothing to recover.
    drop(store);
    let d = start(&config, &log, &sb);
    let status = d.terminate();
    assert!(status.success());
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    let last_recovery = log_text
        .lines()
        .rfind(|l| l.contains("recovery done"))
        .unwrap_or("");
    assert!(
        last_recovery.contains("reconciled=0") && last_recovery.contains("set_aside=0"),
        "{last_recovery}"
    );
}
