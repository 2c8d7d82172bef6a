//! The daemon on a real SQLite store in a temporary directory, talking to a sandbox the test controls.

use std::sync::Arc;
use std::time::Duration;

use chasti::sandbox::{Sandbox, DEFAULT_PASSWORD, DEFAULT_USER};
use chasti::secret::Secret;

use super::{sandbox, store_released};

pub const CALLBACK_KEY: &str = "orders-test-key-0123";
pub const CASHIER: &str = "cashier-token-0123456789";
pub const MANAGER: &str = "manager-token-0123456789";

/// A `chasti::daemon::Daemon` started as `serve` starts it, on free ports, against a sandbox
/// the test drives (payments, faults, clock).
pub struct Harness {
    pub sandbox: Arc<Sandbox>,
    pub engine: chasti::engine::Engine,
    pub callbacks: chasti::callbacks::Callbacks,
    pub daemon: chasti::daemon::DaemonHandle,
    pub dir: Arc<tempfile::TempDir>,
    pub callback_url: url::Url,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    running: Option<tokio::task::JoinHandle<Result<(), chasti::daemon::DaemonError>>>,
}

/// A change to the checked config before a test daemon starts.
pub type Configure = Box<dyn FnOnce(&mut chasti::config::Config) + Send>;

pub struct HarnessOptions {
    pub poll_first: Duration,
    pub callbacks: bool,
    pub template: bool,
    pub auto_deposit: bool,
    pub request_timeout: Duration,
    pub clock: Option<Arc<chasti::engine::ManualClock>>,
    /// False: the poller never gets to an order within a test (it polls once an hour).
    pub run: bool,
    pub recovery_tries: u32,
    pub printer: Option<chasti::devices::printer::Printer>,
    pub display: Option<chasti::devices::pole::Display>,
    /// Extra TOML appended to the config (sections the test needs).
    pub extra_config: String,
    /// The store's folder of an earlier daemon (a restart); a fresh one when None.
    pub dir: Option<Arc<tempfile::TempDir>>,
    /// Wait for recovery before handing the daemon over.
    pub wait_ready: bool,
    /// Changes to the checked config before the daemon starts.
    pub configure: Option<Configure>,
    /// Which of the bank's gateways the daemon speaks to the sandbox (which serves both).
    pub dialect: chasti::gateway::Dialect,
}

impl Default for HarnessOptions {
    fn default() -> Self {
        HarnessOptions {
            poll_first: Duration::from_millis(100),
            callbacks: true,
            template: true,
            auto_deposit: true,
            request_timeout: Duration::from_secs(5),
            clock: None,
            run: true,
            recovery_tries: 5,
            printer: None,
            display: None,
            extra_config: String::new(),
            configure: None,
            dir: None,
            wait_ready: true,
            dialect: chasti::gateway::Dialect::Legacy,
        }
    }
}

/// The config a test daemon runs with: the bank at the sandbox, everything on free ports.
pub fn test_config(
    sandbox: &Sandbox,
    dir: &std::path::Path,
    o: &HarnessOptions,
) -> chasti::config::Config {
    let text = format!(
        r#"
[gateway]
environment = "test"
dialect = "{dialect}"
base_url = "{gateway}"
user_name = "{DEFAULT_USER}"
password = "{DEFAULT_PASSWORD}"
return_url = "https://shop.example/paid"

[store]
path = "{store}"
prefix = "T"

[orders]
deposit = "{deposit}"
{template}

[callback]
listen = "127.0.0.1:0"
path = "/cb"
key = "{CALLBACK_KEY}"

[api]
listen = "127.0.0.1:0"
[[api.tokens]]
name = "till-1"
role = "cashier"
token = "{CASHIER}"
[[api.tokens]]
name = "boss"
role = "manager"
token = "{MANAGER}"
{extra}
"#,
        gateway = match o.dialect {
            chasti::gateway::Dialect::Legacy => sandbox.gateway_url(),
            chasti::gateway::Dialect::Ecom => sandbox.ecom_gateway_url(),
        },
        dialect = match o.dialect {
            chasti::gateway::Dialect::Legacy => "legacy",
            chasti::gateway::Dialect::Ecom => "ecom",
        },
        store = dir.join("orders").display(),
        deposit = if o.auto_deposit { "auto" } else { "manual" },
        template = if o.template {
            format!(
                "payment_page_template = \"{}sandbox/pay/{{orderId}}\"",
                sandbox.url()
            )
        } else {
            String::new()
        },
        extra = o.extra_config,
    );
    let mut config =
        chasti::config::Config::parse(std::path::Path::new("test.toml"), &text, |_| None)
            .expect("the test config parses");
    // Faster than a config file allows: tests wait in milliseconds, not seconds.
    let poll_first = if o.run {
        o.poll_first
    } else {
        Duration::from_secs(3600)
    };
    config.orders.poll_first = poll_first;
    config.orders.poll_max = poll_first * 3;
    config.orders.expiry_grace = Duration::from_secs(60);
    config.orders.recovery_tries = o.recovery_tries;
    config.gateway.request_timeout = o.request_timeout;
    config.fiscal.retry_first = Duration::from_millis(100);
    config.fiscal.scan_every = Duration::from_millis(100);
    config
}

/// The engine's settings a test daemon runs with (for engines a test builds by hand).
pub fn engine_settings(sandbox: &Sandbox, o: &HarnessOptions) -> chasti::engine::EngineSettings {
    let dir = std::env::temp_dir();
    chasti::daemon::engine_settings(&test_config(sandbox, &dir, o))
}

impl Harness {
    pub async fn new(o: HarnessOptions) -> Harness {
        Harness::with_sandbox(Arc::new(sandbox().await), o).await
    }

    /// A daemon against a sandbox the caller keeps (it outlives the daemon).
    pub async fn with_sandbox(sandbox: Arc<Sandbox>, o: HarnessOptions) -> Harness {
        sandbox.set_callback_key(Some(Secret::new(CALLBACK_KEY)));
        sandbox.set_callback_method(match o.dialect {
            chasti::gateway::Dialect::Legacy => chasti::config::CallbackMethod::Get,
            chasti::gateway::Dialect::Ecom => chasti::config::CallbackMethod::Json,
        });
        sandbox.set_callback_retry_delays(vec![
            Duration::from_millis(100),
            Duration::from_millis(100),
        ]);
        let dir = match &o.dir {
            Some(dir) => {
                drop(store_released(&dir.path().join("orders")).await);
                dir.clone()
            }
            None => Arc::new(tempfile::tempdir().unwrap()),
        };
        let mut config = test_config(&sandbox, dir.path(), &o);
        if let Some(configure) = o.configure {
            configure(&mut config);
        }
        let parts = chasti::daemon::Parts {
            clock: o.clock.clone().map(|c| c as Arc<dyn chasti::engine::Clock>),
            printer: o.printer.clone(),
            display: o.display.clone(),
            ..Default::default()
        };
        let daemon = chasti::daemon::Daemon::build_with(config, parts)
            .await
            .expect("the daemon starts");
        let handle = daemon.handle();
        let callback_url = url::Url::parse(&handle.callback_url()).unwrap();
        if o.callbacks {
            sandbox.set_callback_url(Some(callback_url.clone()));
        }
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(daemon.run_until(async move {
            let _ = stopped.await;
        }));
        let engine = handle.engine.clone();
        if o.wait_ready {
            wait_until("the daemon recovers", Duration::from_secs(10), || {
                engine.last_recovery().is_some()
            })
            .await;
        }
        Harness {
            sandbox,
            engine,
            callbacks: handle.callbacks.clone(),
            daemon: handle,
            dir,
            callback_url,
            stop: Some(stop),
            running: Some(running),
        }
    }

    /// The till API's base URL (`http://addr`).
    pub fn api(&self) -> String {
        self.daemon.api_url()
    }

    /// The daemon's `/metrics` text (open on loopback).
    pub async fn metrics(&self) -> String {
        crate::common::http()
            .get(format!("{}/api/v1/metrics", self.api()))
            .send()
            .await
            .expect("the metrics answer")
            .text()
            .await
            .expect("the metrics are text")
    }

    /// Stops the daemon as SIGTERM would, and waits for it to finish.
    pub async fn stop(&mut self) -> Result<(), chasti::daemon::DaemonError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.running.take() {
            Some(running) => running.await.expect("the daemon's task"),
            None => Ok(()),
        }
    }

    /// Waits for the daemon's own end (e.g. after its engine was aborted).
    pub async fn ended(&mut self) -> Result<(), chasti::daemon::DaemonError> {
        let running = self.running.take().expect("running");
        tokio::time::timeout(Duration::from_secs(10), running)
            .await
            .expect("the daemon ends within 10 s")
            .expect("the daemon's task")
    }

    /// A sale of `amount_roubles` through the engine, as the till's POST /sales makes it:
    /// the order, awaiting payment, with its link.
    pub async fn sell(
        &self,
        amount_roubles: u64,
        mode: chasti::orders::Mode,
    ) -> chasti::orders::Order {
        self.engine
            .sell(Harness::sale(amount_roubles, mode))
            .await
            .expect("the sale is registered")
            .order
    }

    /// A sale the customer has paid: sold, paid in the sandbox, and waited for until it is
    /// `settled` (Paid; or Held, for a two-stage sale the shop deposits by hand).
    pub async fn sale_paid_to(
        &self,
        amount_roubles: u64,
        mode: chasti::orders::Mode,
        settled: chasti::orders::StateKind,
    ) -> chasti::orders::Order {
        let order = self.sell(amount_roubles, mode).await;
        self.sandbox
            .pay(Harness::gateway_id(&order))
            .expect("the sandbox takes the payment");
        self.wait_state(&order.id, settled).await
    }

    /// A sale sold, paid and waited for until Paid.
    pub async fn paid_sale(
        &self,
        amount_roubles: u64,
        mode: chasti::orders::Mode,
    ) -> chasti::orders::Order {
        self.sale_paid_to(amount_roubles, mode, chasti::orders::StateKind::Paid)
            .await
    }

    /// A two-stage sale paid and waited for until the amount is held (`orders.deposit = "manual"`).
    pub async fn held_sale(&self, amount_roubles: u64) -> chasti::orders::Order {
        self.sale_paid_to(
            amount_roubles,
            chasti::orders::Mode::TwoStage,
            chasti::orders::StateKind::Held,
        )
        .await
    }

    pub fn sale(amount_roubles: u64, mode: chasti::orders::Mode) -> chasti::engine::SaleRequest {
        chasti::engine::SaleRequest {
            amount: chasti::money::Kopecks::from_roubles(amount_roubles).unwrap(),
            mode,
            description: chasti::domain::Description::parse("Тест").ok(),
            till: None,
            cashier: Some("Иванова".into()),
            idempotency_key: None,
            actor: None,
            cart: None,
            customer: Default::default(),
        }
    }

    /// Waits (bounded) until the order reaches a state with this name, on the engine's updates.
    pub async fn wait_state(
        &self,
        id: &uuid::Uuid,
        state: chasti::orders::StateKind,
    ) -> chasti::orders::Order {
        let mut updates = self.engine.subscribe();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let order = self.engine.get(id).unwrap();
            if order.state.kind() == state {
                return order;
            }
            match tokio::time::timeout_at(deadline, updates.recv()).await {
                Ok(_) => continue,
                Err(_) => panic!(
                    "order {} is {:?}, expected {state:?} within 10 s; history: {:#?}",
                    order.order_number, order.state, order.history
                ),
            }
        }
    }

    /// Waits until every callback follow-up under way has finished.
    pub async fn quiet(&self) {
        let callbacks = self.callbacks.clone();
        wait_until(
            "callback follow-ups finish",
            Duration::from_secs(10),
            || callbacks.in_flight() == 0,
        )
        .await;
    }

    /// Waits until the sandbox has delivered `n` callbacks for this order, then until chasti
    /// has followed every one of them up.
    pub async fn callbacks_handled(&self, order_number: &str, n: usize) {
        wait_ledger(&self.sandbox, "callbacks delivered", |l| {
            l.callbacks
                .iter()
                .filter(|c| c.order_number == order_number && c.outcome == "delivered")
                .count()
                >= n
        })
        .await;
        self.quiet().await;
    }

    pub fn gateway_id(order: &chasti::orders::Order) -> String {
        order.state.bank_id().expect("registered").to_string()
    }

    pub fn link(order: &chasti::orders::Order) -> String {
        order.state.bank().expect("registered").link.to_string()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.abort();
        }
    }
}

/// Waits until `check` holds, checking every 10 ms, failing after `limit`.
pub async fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !check() {
        if tokio::time::Instant::now() >= deadline {
            panic!("{what}: not within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits (bounded) until the sandbox's ledger satisfies `check`.
pub async fn wait_ledger(
    sandbox: &Sandbox,
    what: &str,
    check: impl Fn(&chasti::sandbox::Ledger) -> bool,
) -> chasti::sandbox::Ledger {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ledger = sandbox.ledger();
        if check(&ledger) {
            return ledger;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("{what}: not in the sandbox's ledger within 10 s: {ledger:#?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
