#![allow(dead_code)]
//! Helpers shared by the integration tests: a sandbox on 127.0.0.1, a client for it, and a
//! real HTTP receiver for the sandbox's callbacks.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{Method as HttpMethod, StatusCode};
use axum::routing::any;
use axum::Router;
use chasti::gateway::{ClientSettings, Credentials, GatewayClient};
use chasti::sandbox::{Sandbox, SandboxSettings, DEFAULT_PASSWORD, DEFAULT_USER};
use chasti::secret::Secret;

/// A plain HTTP client for tests (reqwest needs chasti's rustls provider even for http://).
pub fn http() -> reqwest::Client {
    let tls = chasti::gateway::tls::client_config(&Default::default()).unwrap();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .build()
        .unwrap()
}

pub async fn sandbox() -> Sandbox {
    sandbox_with(SandboxSettings::default()).await
}

pub async fn sandbox_with(settings: SandboxSettings) -> Sandbox {
    Sandbox::start("127.0.0.1:0".parse().unwrap(), settings)
        .await
        .expect("sandbox starts")
}

pub fn settings_for(sandbox: &Sandbox) -> ClientSettings {
    let mut s = ClientSettings::new(
        sandbox.gateway_url(),
        Credentials::Password {
            user_name: DEFAULT_USER.into(),
            password: Secret::new(DEFAULT_PASSWORD),
        },
        "https://shop.example/paid",
    );
    s.request_timeout = Duration::from_secs(5);
    s
}

pub fn client_for(sandbox: &Sandbox) -> GatewayClient {
    GatewayClient::new(settings_for(sandbox)).expect("client builds")
}

/// One callback as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: HttpMethod,
    pub params: Vec<(String, String)>,
}

impl Received {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct ReceiverState {
    received: Mutex<Vec<Received>>,
    /// Statuses to answer with, in turn; 200 once used up.
    script: Mutex<VecDeque<u16>>,
}

/// A real HTTP server that records what the sandbox sends to it.
pub struct CallbackReceiver {
    state: Arc<ReceiverState>,
    pub addr: SocketAddr,
    _server: tokio::task::JoinHandle<()>,
}

impl CallbackReceiver {
    pub async fn start() -> CallbackReceiver {
        let state = Arc::new(ReceiverState::default());
        let app = Router::new()
            .route("/callback", any(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        CallbackReceiver {
            state,
            addr,
            _server: server,
        }
    }

    pub fn url(&self) -> url::Url {
        url::Url::parse(&format!("http://{}/callback", self.addr)).unwrap()
    }

    /// Answer the next callbacks with these statuses.
    pub fn answer_with(&self, statuses: &[u16]) {
        self.state.script.lock().unwrap().extend(statuses);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Waits (bounded) until at least `n` callbacks arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..200 {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "expected {n} callbacks within 5 s, got {:?}",
            self.received()
        );
    }
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    method: HttpMethod,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> StatusCode {
    let mut params: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).unwrap_or_default();
    params.extend(serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body).unwrap_or_default());
    state
        .received
        .lock()
        .unwrap()
        .push(Received { method, params });
    let status = state.script.lock().unwrap().pop_front().unwrap_or(200);
    StatusCode::from_u16(status).unwrap()
}

// ----- the daemon on a real sled directory, talking to a sandbox the test controls ---------

pub const CALLBACK_KEY: &str = "orders-test-key";
pub const CASHIER: &str = "cashier-token-0123456789";
pub const MANAGER: &str = "manager-token-0123456789";

/// A `chasti::daemon::Daemon` started as `serve` starts it, on free ports, against a sandbox
/// the test drives (payments, faults, clock).
pub struct Harness {
    pub sandbox: Arc<Sandbox>,
    pub engine: chasti::orders::Engine,
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
    pub clock: Option<Arc<chasti::orders::ManualClock>>,
    /// False: the poller never gets to an order within a test (it polls once an hour).
    pub run: bool,
    pub recovery_tries: u32,
    pub printer: Option<chasti::devices::serial::Printer>,
    pub display: Option<chasti::devices::pole::Display>,
    /// Extra TOML appended to the config (sections the test needs).
    pub extra_config: String,
    /// The store's folder of an earlier daemon (a restart); a fresh one when None.
    pub dir: Option<Arc<tempfile::TempDir>>,
    /// Wait for recovery before handing the daemon over.
    pub wait_ready: bool,
    /// Changes to the checked config before the daemon starts.
    pub configure: Option<Configure>,
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
        gateway = sandbox.gateway_url(),
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
    config
}

/// The engine's settings a test daemon runs with (for engines a test builds by hand).
pub fn engine_settings(sandbox: &Sandbox, o: &HarnessOptions) -> chasti::orders::EngineSettings {
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
            clock: o.clock.clone().map(|c| c as Arc<dyn chasti::orders::Clock>),
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
                engine.is_ready()
            })
            .await;
        }
        Harness {
            sandbox,
            engine,
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

    pub fn sale(amount_roubles: u64, mode: chasti::orders::Mode) -> chasti::orders::SaleRequest {
        chasti::orders::SaleRequest {
            amount: chasti::money::Kopecks::from_roubles(amount_roubles).unwrap(),
            mode,
            description: chasti::domain::Description::parse("Тест").ok(),
            till: None,
            cashier: Some("Иванова".into()),
            idempotency_key: None,
        }
    }

    /// Waits (bounded) until the order reaches a state with this name, on the engine's updates.
    pub async fn wait_state(&self, id: &uuid::Uuid, state: &str) -> chasti::orders::Order {
        let mut updates = self.engine.subscribe();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let order = self.engine.get(id).unwrap();
            if order.state.name() == state {
                return order;
            }
            match tokio::time::timeout_at(deadline, updates.recv()).await {
                Ok(_) => continue,
                Err(_) => panic!(
                    "order {} is {:?}, expected {state} within 10 s; history: {:#?}",
                    order.order_number, order.state, order.history
                ),
            }
        }
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

// ----- a real `chasti serve` process --------------------------------------------------------

pub const BIN: &str = env!("CARGO_BIN_EXE_chasti");

/// A `chasti serve` child process on free ports; where it listens is read from its ready line.
pub struct ServeProcess {
    pub child: std::process::Child,
    pub api: String,
    pub callbacks: url::Url,
    pub sandbox: Option<String>,
}

impl ServeProcess {
    /// Starts `chasti serve --config CONFIG` with its log appended to `log`, and waits (bounded)
    /// for its ready line.
    pub fn start(
        config: &std::path::Path,
        log: &std::path::Path,
        env: &[(&str, &str)],
    ) -> ServeProcess {
        use std::io::BufRead;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let mut child = std::process::Command::new(BIN)
            .args(["serve", "--config"])
            .arg(config)
            .envs(env.iter().copied())
            .env("CHASTI_LOG", "info")
            .stdout(std::process::Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = std::io::BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            // Keep reading so the child never blocks on a full pipe.
            for _ in lines {}
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("chasti serve prints its ready line within 30 s");
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .map(str::to_string)
        };
        ServeProcess {
            api: field("api").unwrap_or_else(|| panic!("no api= in {line:?}")),
            callbacks: url::Url::parse(&field("callbacks").unwrap()).unwrap(),
            sandbox: field("sandbox"),
            child,
        }
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then waits (bounded) for the exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.wait_exit(Duration::from_secs(20))
    }

    pub fn signal_term(&self) {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
    }

    /// Waits for the process to exit; kills it after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if std::time::Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("chasti serve did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (bounded) until the sled store at `path` can be opened: its last user has let go.
pub async fn store_released(path: &std::path::Path) -> chasti::orders::Store {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match chasti::orders::Store::open(path) {
            Ok(store) => return store,
            Err(e) if tokio::time::Instant::now() >= deadline => {
                panic!("the store at {} stays locked: {e}", path.display())
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

// ----- a fake printer or display on a real pseudo-terminal -----------------------------------

use serialport::{SerialPort, TTYPort};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// A printer or display played on the master side of a pty.
pub struct FakeDevice {
    captured: Arc<Mutex<Vec<u8>>>,
    pub status: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
    /// Close the master (the device vanishes) after this many bytes; 0 = never.
    pub hang_up_after: Arc<Mutex<usize>>,
    thread: Option<std::thread::JoinHandle<()>>,
    slave: TTYPort,
}

impl FakeDevice {
    pub fn start(status: u8) -> FakeDevice {
        let (mut master, slave) = TTYPort::pair().expect("a pseudo-terminal pair");
        master.set_timeout(Duration::from_millis(20)).unwrap();
        let captured = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU8::new(status));
        let stop = Arc::new(AtomicBool::new(false));
        let hang_up_after = Arc::new(Mutex::new(0usize));
        let (c, s, st, h) = (
            captured.clone(),
            status.clone(),
            stop.clone(),
            hang_up_after.clone(),
        );
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            let mut window: Vec<u8> = Vec::new();
            while !st.load(Ordering::SeqCst) {
                let n = match master.read(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
                    Err(_) => break,
                };
                let mut got = c.lock().unwrap();
                got.extend_from_slice(&buf[..n]);
                // Answer DLE EOT n at once, as a printer does in real time.
                for &b in &buf[..n] {
                    window.push(b);
                    if window.len() > 3 {
                        window.remove(0);
                    }
                    if window.len() == 3 && window[0] == 0x10 && window[1] == 0x04 {
                        let _ = master.write_all(&[s.load(Ordering::SeqCst)]);
                        window.clear();
                    }
                }
                let limit = *h.lock().unwrap();
                if limit > 0 && got.len() >= limit {
                    break; // the master is dropped: the device is gone
                }
            }
        });
        FakeDevice {
            captured,
            status,
            stop,
            hang_up_after,
            thread: Some(thread),
            slave,
        }
    }

    pub fn path(&self) -> std::path::PathBuf {
        std::path::PathBuf::from(self.slave.name().expect("a pty has a name"))
    }

    pub fn captured(&self) -> Vec<u8> {
        self.captured.lock().unwrap().clone()
    }

    pub fn wait_for(&self, n: usize) -> Vec<u8> {
        for _ in 0..400 {
            let got = self.captured();
            if got.len() >= n {
                return got;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("expected {n} bytes, got {}", self.captured().len());
    }
}

impl Drop for FakeDevice {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn settings(path: &std::path::Path) -> chasti::devices::serial::PortSettings {
    chasti::devices::serial::PortSettings {
        path: path.to_path_buf(),
        baud: 115_200,
        flow: chasti::devices::serial::Flow::None,
        retry: Duration::from_millis(100),
    }
}
