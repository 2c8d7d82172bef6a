//! The daemon as a whole: a SIGTERM while a sale is under way, an engine that dies, one stuck
//! order among many, an order recovery cannot reconcile, and what must not grow with history.

use std::time::Duration;

use chasti::devices::profile;
use chasti::devices::slip::{self, SlipOrder};
use chasti::http::api::types::SaleReply;
use chasti::orders::{Mode, StateKind};
use chasti::sandbox::{Fault, FaultRule};
use serde_json::{json, Value};

use crate::common::{self, FakeDevice, Harness, HarnessOptions, ServeProcess, CASHIER};

/// How long a call is let run before the test cuts it off, as a crash would: long enough for
/// it to leave on a loaded CI machine, well short of the bank's 1.5 s answer.
const CUT: Duration = Duration::from_millis(800);

/// `chasti serve` with a slow serial printer (9600 baud, a ~3 KB raster slip takes ~3 s).
fn config_with_printer(
    dir: &std::path::Path,
    sandbox: &chasti::sandbox::Sandbox,
    printer: &std::path::Path,
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

[callback]
listen = "127.0.0.1:0"

[api]
listen = "127.0.0.1:0"
[[api.tokens]]
name = "till-1"
role = "cashier"
token = "{CASHIER}"

[[printer]]
name = "receipt"
profile = "xprinter-xp58"
port = "{printer}"
baud = 9600
"#,
        gateway = sandbox.gateway_url(),
        store = dir.join("orders").display(),
        printer = printer.display(),
    );
    let path = dir.join("chasti.toml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn post_sale(api: &str, amount: &str, key: &str) -> (u16, Value) {
    let response = common::http()
        .post(format!("{api}/api/v1/sales"))
        .bearer_auth(CASHIER)
        .json(&json!({"amount": amount, "idempotency_key": key}))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_the_sale_under_way_finishes_its_slip_and_exits_0() {
    let sandbox = common::sandbox().await;
    let paper = FakeDevice::start(0x12);
    let dir = tempfile::tempdir().unwrap();
    let config = config_with_printer(dir.path(), &sandbox, &paper.path());
    let mut serve = ServeProcess::start(&config, &dir.path().join("serve.log"), &[]);
    // The bank takes a second to answer register: the sale is under way when the stop comes.
    sandbox.add_fault(FaultRule::new("register.do", Fault::Latency { ms: 1000 }));
    let api = serve.api.clone();
    let sale = tokio::spawn(async move { post_sale(&api, "1499", "under-way").await });
    common::wait_ledger(&sandbox, "the register call reaches the bank", |l| {
        l.operations.iter().any(|o| o.operation == "register.do")
    })
    .await;
    serve.signal_term();
    // A new sale during the stop is refused, in Russian; the health check says stopping.
    let api = serve.api.clone();
    let refused = loop {
        let (status, body) = post_sale(&api, "10", "too-late").await;
        if status == 503 {
            break body;
        }
        assert_eq!(status, 201, "{body}");
    };
    assert_eq!(refused["error_type"], "shutting_down", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("останавливается"),
        "{refused}"
    );

    let (status, body) = sale.await.unwrap();
    assert_eq!(status, 201, "the sale under way is answered: {body}");
    let sale: SaleReply = serde_json::from_value(body).unwrap();
    let exit = serve.wait_exit(Duration::from_secs(20));
    assert!(exit.success(), "a SIGTERM stop exits 0: {exit:?}");

    // Its payment slip printed whole before the exit.
    let profile = profile::printer("xprinter-xp58", None).unwrap();
    let expected = slip::payment_slip(
        &profile,
        &SlipOrder {
            shop_name: "Магазин",
            order_number: sale.order.order_number.as_str(),
            amount: sale.order.amount,
            link_expires_at: sale.order.link_expires_at,
        },
        &sale.payment_url,
    )
    .unwrap();
    assert!(
        expected.len() > 2000,
        "a raster slip of {} bytes",
        expected.len()
    );
    let got = paper.captured();
    // serve's start-up check asks the printer's paper status once (DLE EOT 4, 3 bytes), then
    // the worker's own three queries around the slip (9 bytes).
    const QUERIES: usize = 9 + 3;
    assert_eq!(
        got.len(),
        QUERIES + expected.len(),
        "status queries and the whole slip"
    );
    assert!(
        got[..QUERIES].chunks(3).all(|q| q[..2] == [0x10, 0x04]),
        "{:02x?}",
        &got[..QUERIES]
    );
    assert_eq!(&got[QUERIES..], expected.as_slice());
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(log.contains("chasti stopped cleanly"), "{log}");
}

#[tokio::test]
async fn a_dead_engine_turns_health_503_and_the_daemon_fails() {
    let mut h = Harness::new(HarnessOptions::default()).await;
    let health = format!("{}/api/v1/health", h.api());
    let http = common::http();
    assert_eq!(http.get(&health).send().await.unwrap().status(), 200);
    h.daemon.abort_engine();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let body: Value = loop {
        let r = http.get(&health).send().await.unwrap();
        if r.status() == 503 {
            break r.json().await.unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "health never said 503"
        );
    };
    assert_eq!(body["status"], "engine_stopped");
    let ended = h.ended().await;
    assert!(
        matches!(ended, Err(chasti::daemon::DaemonError::EngineStopped(_))),
        "{ended:?}: the process exits non-zero so systemd restarts it"
    );
}

#[tokio::test]
async fn one_stuck_order_never_holds_up_the_others() {
    let h = Harness::new(HarnessOptions {
        callbacks: false,
        ..HarnessOptions::default()
    })
    .await;
    let stuck = h.sell(10, Mode::OneStage).await;
    // Every status call about this order hangs for 4 s; another one's fails outright.
    h.sandbox.add_fault(
        FaultRule::new("getOrderStatusExtended.do", Fault::Latency { ms: 4000 })
            .before()
            .times(None)
            .for_order(Harness::gateway_id(&stuck)),
    );
    let broken = h.sell(11, Mode::OneStage).await;
    h.sandbox.add_fault(
        FaultRule::new("getOrderStatusExtended.do", Fault::GarbageBody)
            .times(None)
            .for_order(Harness::gateway_id(&broken)),
    );
    let mut others = Vec::new();
    for r in [20, 21, 22] {
        others.push(h.sell(r, Mode::OneStage).await);
    }
    let started = std::time::Instant::now();
    for o in &others {
        h.sandbox.pay(Harness::gateway_id(o)).unwrap();
    }
    for o in &others {
        h.wait_state(&o.id, StateKind::Paid).await;
    }
    assert!(
        started.elapsed() < Duration::from_millis(3500),
        "the others were paid while the stuck order's call still hung ({:?})",
        started.elapsed()
    );
    assert_eq!(
        h.engine.get(&stuck.id).unwrap().state.kind(),
        StateKind::AwaitingPayment
    );
}

#[tokio::test]
async fn recovery_sets_aside_an_order_it_cannot_reconcile_and_opens_sales() {
    let h = Harness::new(HarnessOptions {
        run: false,
        callbacks: false,
        ..HarnessOptions::default()
    })
    .await;
    let poisoned = h.sell(10, Mode::TwoStage).await;
    let healthy = h.sell(20, Mode::TwoStage).await;
    // Both deposits are cut off mid-call: both orders are left Depositing.
    h.sandbox
        .add_fault(FaultRule::new("deposit.do", Fault::Latency { ms: 1500 }).times(Some(2)));
    for o in [&poisoned, &healthy] {
        h.sandbox.pay(Harness::gateway_id(o)).unwrap();
        let cut = tokio::time::timeout(CUT, h.engine.refresh(&o.id)).await;
        assert!(cut.is_err());
    }
    let (sandbox, dir) = (h.sandbox.clone(), h.dir.clone());
    {
        let mut h = h;
        h.stop().await.unwrap();
    }
    // After the restart the bank never answers about the poisoned order.
    sandbox.add_fault(
        FaultRule::new(
            "getOrderStatusExtended.do",
            Fault::HttpStatus { status: 500 },
        )
        .before()
        .times(None)
        .for_order(poisoned.order_number.to_string()),
    );
    sandbox.add_fault(
        FaultRule::new(
            "getOrderStatusExtended.do",
            Fault::HttpStatus { status: 500 },
        )
        .before()
        .times(None)
        .for_order(Harness::gateway_id(&poisoned)),
    );
    let h = Harness::with_sandbox(
        sandbox,
        HarnessOptions {
            dir: Some(dir),
            recovery_tries: 2,
            callbacks: false,
            // Recovery alone settles them (the poller would too, and then count differently).
            run: false,
            ..HarnessOptions::default()
        },
    )
    .await;
    // Recovery ended: sales are open, the healthy order is settled, the other set aside.
    let recovery = h.engine.last_recovery().unwrap();
    assert_eq!(
        (recovery.reconciled, recovery.set_aside),
        (1, 1),
        "{recovery:?}: healthy {:?}, poisoned {:?}",
        h.engine.get(&healthy.id).unwrap().history,
        h.engine.get(&poisoned.id).unwrap().history
    );
    assert_eq!(
        h.engine.get(&healthy.id).unwrap().state.kind(),
        StateKind::Paid
    );
    let set_aside = h.engine.get(&poisoned.id).unwrap();
    assert_eq!(set_aside.state.kind(), StateKind::NeedsAttention);
    assert!(
        set_aside
            .state
            .why()
            .unwrap()
            .what()
            .contains("after 2 tries"),
        "{:?}",
        set_aside.state
    );
    let sale = h.sell(30, Mode::OneStage).await;
    assert_eq!(sale.state.kind(), StateKind::AwaitingPayment);
}

#[tokio::test]
async fn the_lock_map_empties_and_old_diagnostics_are_dropped() {
    let h = Harness::new(HarnessOptions::default()).await;
    for r in 1..=20 {
        h.paid_sale(r, Mode::OneStage).await;
    }
    h.quiet().await;
    assert_eq!(
        h.engine.lock_entries(),
        0,
        "no lock entry outlives its work"
    );
    let store = h.engine.store();
    // The journal is written without waiting; everything handed over so far is committed now.
    store.flush().await.unwrap();
    assert!(!store.journal().unwrap().is_empty());
    let kept = store.callbacks().unwrap().len();
    assert!(kept > 0);
    // Everything so far is older than "now + 91 days minus the 90 days kept".
    let removed = store
        .prune_before(chrono::Utc::now() + chrono::Duration::days(1))
        .await
        .unwrap();
    assert!(removed >= kept);
    assert!(store.journal().unwrap().is_empty());
    assert!(store.callbacks().unwrap().is_empty());
    assert_eq!(store.all().unwrap().len(), 20, "orders are never pruned");
}
