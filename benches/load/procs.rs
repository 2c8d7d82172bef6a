//! The processes under measurement: a `chasti sandbox` as the bank and a `chasti serve` as the
//! till's daemon (started as the tests start it: `tests/it/common/process.rs`), each its own
//! process as on a till host, and what /proc says about them.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chasti::sandbox::{DEFAULT_PASSWORD, DEFAULT_USER};

pub use crate::process::{first_line, ServeProcess, BIN};
pub const CALLBACK_KEY: &str = "bench-callback-key";
pub const CASHIER: &str = "bench-cashier-token-0123456789";
pub const MANAGER: &str = "bench-manager-token-0123456789";

/// The bank's stand-in, killed when dropped.
pub struct Running {
    pub child: Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// A free port on 127.0.0.1 (for the callback route the sandbox must know in advance).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `chasti sandbox` with signed callbacks to `callback_url`; returns it and its base URL.
pub fn sandbox(callback_url: &str) -> (Running, String) {
    let mut child = Command::new(BIN)
        .args([
            "sandbox",
            "--listen",
            "127.0.0.1:0",
            "--callback-url",
            callback_url,
        ])
        .env("CHASTI_CALLBACK_KEY", CALLBACK_KEY)
        .env("CHASTI_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let line = first_line(&mut child, Duration::from_secs(120));
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .and_then(|u| u.split("/payment/rest/").next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    (Running { child }, format!("{base}/"))
}

/// Writes a config for `chasti serve` against the sandbox at `sandbox` (its base URL).
pub fn config(dir: &Path, store: &Path, sandbox: &str, callback_port: u16) -> std::path::PathBuf {
    let text = format!(
        r#"
[gateway]
environment = "test"
base_url = "{sandbox}payment/rest/"
user_name = "{DEFAULT_USER}"
password = "{DEFAULT_PASSWORD}"
return_url = "https://shop.example/paid"

[store]
path = "{store}"
prefix = "B"

[orders]
deposit = "auto"
poll_first_secs = 300
poll_max_secs = 600
payment_page_template = "{sandbox}sandbox/pay/{{orderId}}"

[callback]
listen = "127.0.0.1:{callback_port}"
path = "/cb"
key = "{CALLBACK_KEY}"

[api]
listen = "127.0.0.1:0"
[[api.tokens]]
name = "till-1"
role = "cashier"
token = "{CASHIER}"
[[api.tokens]]
name = "manager"
role = "manager"
token = "{MANAGER}"
"#,
        store = store.display()
    );
    let path = dir.join("chasti.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `chasti serve` as the tests start it (log at info, or `LOAD_LOG`, to a file, as on a till);
/// returns it, its API base URL and how long it took from spawn to its ready line.
pub fn serve(config: &Path, log: &Path) -> (ServeProcess, String, Duration) {
    let started = Instant::now();
    let level = std::env::var("LOAD_LOG").unwrap_or_else(|_| "info".into());
    let serve = ServeProcess::start(config, log, &[("CHASTI_LOG", &level)]);
    let ready = started.elapsed();
    let api = serve.api.clone();
    (serve, api, ready)
}

/// CPU seconds a process has used (user + system).
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat; here 11 and 12 (after pid, comm, state).
    (ticks(11) + ticks(12)) / 100.0
}

/// (resident, peak resident) in MB.
pub fn memory_mb(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}
