//! A real `chasti serve` process, killed with SIGKILL between steps and restarted, with the
//! host in a time zone far from Moscow: every order converges, none is lost or doubled
//! (checked against the sandbox's ledger).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crate::common::{Harness, HarnessOptions, CALLBACK_KEY};
use chasti::orders::{Engine, Mode, State, Store, SystemClock};
use chasti::sandbox::{Fault, FaultRule};
use chasti::secret::Secret;

const BIN: &str = env!("CARGO_BIN_EXE_chasti");

/// The first daemon, in-process.
struct Running {
    engine: Engine,
}

struct Daemon(Child);

impl Daemon {
    fn start(config: &Path, log: &Path) -> Daemon {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(config)
            .env("TZ", "America/Los_Angeles")
            .env("CHASTI_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Daemon(child)
    }

    /// SIGKILL: no shutdown code runs.
    fn kill9(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }

    fn terminate(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill9();
    }
}

fn write_config(
    dir: &Path,
    gateway: &url::Url,
    pay_base: &url::Url,
    callback_port: u16,
) -> std::path::PathBuf {
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
listen = "127.0.0.1:{callback_port}"
path = "/cb"
key = "{CALLBACK_KEY}"
"#,
        store = dir.join("orders").display(),
    );
    let path = dir.join("chasti.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_restarted_serve_converges_without_loss_or_doubling() {
    // Orders made by a first "daemon" (an in-process engine), which then stops abruptly.
    let sandbox = crate::common::sandbox().await;
    let sb = &sandbox;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::new(
        Store::open(&dir.path().join("orders")).unwrap(),
        crate::common::client_for(sb),
        crate::common::engine_settings(sb, &HarnessOptions::default()),
        Arc::new(SystemClock),
    );
    engine.recover().await.unwrap();
    let h = Running { engine };
    let mut holds = Vec::new();
    for r in [11, 12, 13] {
        holds.push(
            h.engine
                .create_sale(Harness::sale(r, Mode::TwoStage))
                .await
                .unwrap(),
        );
    }
    let mut singles = Vec::new();
    for r in [21, 22] {
        singles.push(
            h.engine
                .create_sale(Harness::sale(r, Mode::OneStage))
                .await
                .unwrap(),
        );
    }
    let unpaid = h
        .engine
        .create_sale(Harness::sale(31, Mode::OneStage))
        .await
        .unwrap();
    // A sale cut off while register.do is under way (the bank answers late).
    sb.add_fault(FaultRule::new("register.do", Fault::Latency { ms: 1500 }));
    let cut = tokio::time::timeout(
        Duration::from_millis(300),
        h.engine.create_sale(Harness::sale(41, Mode::OneStage)),
    )
    .await;
    assert!(cut.is_err());
    // A hold whose deposit is cut off while deposit.do is under way.
    sb.pay(&Harness::gateway_id(&holds[0])).unwrap();
    sb.add_fault(FaultRule::new("deposit.do", Fault::Latency { ms: 1500 }));
    assert!(
        tokio::time::timeout(Duration::from_millis(300), h.engine.refresh(&holds[0].id))
            .await
            .is_err()
    );
    tokio::time::sleep(Duration::from_millis(1600)).await;

    let store_dir = dir.path().to_path_buf();
    let pay_base = sb.url();
    let gateway = sb.gateway_url();
    drop(h.engine);

    // The daemon's callback route; the bank learns it now.
    let port = free_port();
    let callback_url = url::Url::parse(&format!("http://127.0.0.1:{port}/cb")).unwrap();
    sb.set_callback_url(Some(callback_url));
    sb.set_callback_key(Some(Secret::new(CALLBACK_KEY)));
    let config = write_config(&store_dir, &gateway, &pay_base, port);
    let log = store_dir.join("serve.log");

    // Customers pay while the daemon is down: their callbacks are lost.
    sb.pay(&Harness::gateway_id(&holds[1])).unwrap();
    sb.pay(&Harness::gateway_id(&singles[0])).unwrap();

    // Kill 1: during recovery, with the bank slow to answer deposits.
    sb.add_fault(FaultRule::new("deposit.do", Fault::Latency { ms: 1200 }).times(Some(3)));
    let d = Daemon::start(&config, &log);
    tokio::time::sleep(Duration::from_millis(700)).await;
    d.kill9();

    // More payments arrive; kill 2 while their callbacks and deposits are being handled.
    sb.pay(&Harness::gateway_id(&holds[2])).unwrap();
    sb.pay(&Harness::gateway_id(&singles[1])).unwrap();
    let d = Daemon::start(&config, &log);
    tokio::time::sleep(Duration::from_millis(900)).await;
    d.kill9();

    // Then let it run until everything settles, restarting a few times if need be.
    let mut converged = false;
    for _ in 0..6 {
        let d = Daemon::start(&config, &log);
        tokio::time::sleep(Duration::from_millis(3000)).await;
        d.terminate();
        let store = Store::open(&store_dir.join("orders")).unwrap();
        let all = store.all().unwrap();
        let settled = all
            .iter()
            .filter(|o| o.amount != unpaid.amount)
            .all(|o| !o.state.is_open());
        drop(store);
        if settled {
            converged = true;
            break;
        }
    }
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(converged, "orders did not settle; daemon log:\n{log_text}");
    assert!(log_text.contains("recovery done"), "{log_text}");
    if std::env::var_os("CHASTI_SHOW_LOG").is_some() {
        eprintln!("{log_text}");
    }

    let store = Store::open(&store_dir.join("orders")).unwrap();
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
                    order.state,
                    State::Paid,
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
                assert_eq!(order.state, State::AwaitingPayment);
            }
            Mode::OneStage if at_bank.deposited == order.amount => {
                assert_eq!(order.state, State::Paid, "{}", order.order_number);
            }
            Mode::OneStage => {
                // The sale cut off during register: closed at the bank, never payable.
                assert!(
                    matches!(order.state, State::Failed { .. }),
                    "{:?}",
                    order.state
                );
                assert_eq!(at_bank.order_status, 6);
            }
        }
    }
    // The daemon can be used again after all this: a fresh engine on the store recovers.
    let engine = Engine::new(
        store,
        crate::common::client_for(sb),
        crate::common::engine_settings(sb, &HarnessOptions::default()),
        Arc::new(SystemClock),
    );
    assert_eq!(engine.recover().await.unwrap(), 0);
}
