//! Power cuts, shared by the power-cut test and the load bench (which includes this file): a
//! real `chasti serve` with its store on LazyFS (`../shared/tools/lazyfs`, a FUSE filesystem
//! that drops every write not yet fsynced when told to, as a power cut does), three tills
//! selling, customers paying (the bank's callbacks), a manager reversing and refunding; then
//! SIGKILL, every unsynced write dropped, and a restart on the same store — again and again.
//! After each cut every answer the daemon gave must still be true: a sale answered 201 is
//! there, an order seen paid is at least paid, a reversal or refund answered 200 is there; no
//! order number may be handed out twice (the bank refuses a used one); the store must open.
//! SIGKILL alone cannot show this: the kernel's page cache survives a kill.
//!
//! Self-contained (chasti and the dev-dependencies only), so that the bench can include it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chasti::secret::Secret;
use serde_json::{json, Value};

const CASHIER: &str = "power-cut-cashier-0123456789";
/// The manager's token of the daemon under cuts (for a caller's last check).
pub const MANAGER: &str = "power-cut-manager-0123456789";
const CALLBACK_KEY: &str = "power-cut-callback-key";

/// LazyFS's control script beside the project's own checkout (never in a user's clone).
pub fn lazyfs_ctl() -> Option<PathBuf> {
    let ctl = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/lazyfs/lazyfs-ctl");
    ctl.exists().then_some(ctl)
}

fn http() -> reqwest::Client {
    let tls = chasti::gateway::tls::client_config(&Default::default()).unwrap();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .build()
        .unwrap()
}

fn run_output(command: &mut std::process::Command) -> (bool, String) {
    let out = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `chasti serve`, killed when dropped.
struct Serve {
    child: std::process::Child,
    api: String,
    callbacks: url::Url,
}

impl Serve {
    fn start(bin: &Path, config: &Path, log: &Path) -> Serve {
        use std::io::BufRead;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let mut child = std::process::Command::new(bin)
            .args(["serve", "--config"])
            .arg(config)
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
            for _ in lines {}
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("chasti serve opens its store and prints its ready line within 30 s");
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .map(str::to_string)
                .unwrap_or_else(|| panic!("no {name}= in {line:?}"))
        };
        Serve {
            api: field("api"),
            callbacks: url::Url::parse(&field("callbacks")).unwrap(),
            child,
        }
    }

    fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM; whether it exited 0 within 20 s.
    fn terminate(mut self) -> bool {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// LazyFS mounted for a run; unmounted when dropped.
struct Lazy {
    ctl: PathBuf,
    base: tempfile::TempDir,
    mnt: PathBuf,
}

impl Lazy {
    fn mount(ctl: PathBuf) -> Lazy {
        let base = tempfile::tempdir().unwrap();
        let (ok, said) = run_output(
            std::process::Command::new("python3")
                .arg(&ctl)
                .arg("mount")
                .arg(base.path()),
        );
        assert!(ok, "LazyFS mounts (needs /dev/fuse, fuse3, root): {said}");
        let mnt = PathBuf::from(said.lines().last().unwrap_or_default().trim());
        assert!(mnt.is_dir(), "{said}");
        Lazy { ctl, base, mnt }
    }

    /// The power cut: every write not fsynced is gone.
    fn cut(&self) {
        let (ok, said) = run_output(
            std::process::Command::new("python3")
                .arg(&self.ctl)
                .arg("cut")
                .arg(self.base.path()),
        );
        assert!(ok, "the cut: {said}");
    }
}

impl Drop for Lazy {
    fn drop(&mut self) {
        let _ = std::process::Command::new("python3")
            .arg(&self.ctl)
            .arg("umount")
            .arg(self.base.path())
            .output();
    }
}

fn write_config(
    dir: &Path,
    store: &Path,
    sandbox: &chasti::sandbox::Sandbox,
    extra: &str,
) -> PathBuf {
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
prefix = "P"

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
{extra}"#,
        gateway = sandbox.gateway_url(),
        pay = sandbox.url(),
        store = store.display(),
    );
    let path = dir.join("chasti.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// What the daemon said about an order, the most it said.
#[derive(Debug, Clone, PartialEq)]
enum Ack {
    /// A sale answered 201, its amount in kopecks.
    Sold(u64),
    /// Seen paid (the API showed it), its amount.
    Paid(u64),
    /// A reversal answered 200.
    Reversed,
    /// A refund answered 200: the refunded total it showed.
    Refunded(u64),
}

type Acks = Arc<Mutex<HashMap<String, Ack>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A small deterministic generator: a failing run can be repeated.
struct Dice(u64);

impl Dice {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below.max(1)
    }
}

/// One till selling until it fails (the daemon died): each sale answered 201 is an ack; half
/// are paid at once by the customer.
async fn till(
    api: String,
    till: &'static str,
    seed: u64,
    acks: Acks,
    sandbox: Arc<chasti::sandbox::Sandbox>,
) {
    let http = http();
    let mut dice = Dice(seed | 1);
    loop {
        let kopecks = 100 + dice.next(500_000);
        let body = json!({
            "amount": format!("{}.{:02}", kopecks / 100, kopecks % 100),
            "till": till,
            "idempotency_key": uuid::Uuid::new_v4().to_string(),
        });
        let Ok(reply) = http
            .post(format!("{api}/api/v1/sales"))
            .bearer_auth(CASHIER)
            .json(&body)
            .send()
            .await
        else {
            return;
        };
        if reply.status() != 201 {
            return;
        }
        let Ok(reply) = reply.json::<Value>().await else {
            return;
        };
        let number = reply["order"]["order_number"].as_str().unwrap().to_string();
        lock(&acks).insert(number, Ack::Sold(kopecks));
        if dice.next(2) == 0 {
            let id = reply["order"]["gateway_order_id"]
                .as_str()
                .unwrap()
                .to_string();
            let _ = sandbox.pay(&id);
        }
    }
}

/// The manager: looks at sold orders; one seen paid is an ack, and is reversed or refunded.
async fn manager(api: String, seed: u64, acks: Acks) {
    let http = http();
    let mut dice = Dice(seed | 1);
    loop {
        let candidates: Vec<(String, u64)> = lock(&acks)
            .iter()
            .filter_map(|(n, a)| match a {
                Ack::Sold(k) => Some((n.clone(), *k)),
                _ => None,
            })
            .collect();
        let Some((number, kopecks)) = candidates
            .get(dice.next(candidates.len() as u64) as usize)
            .cloned()
        else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let Ok(view) = http
            .get(format!("{api}/api/v1/orders/{number}"))
            .bearer_auth(MANAGER)
            .send()
            .await
        else {
            return;
        };
        let Ok(view) = view.json::<Value>().await else {
            return;
        };
        if view["state"]["name"] != "paid" {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        lock(&acks).insert(number.clone(), Ack::Paid(kopecks));
        let (path, body) = if dice.next(2) == 0 {
            ("reverse", json!({}))
        } else {
            let part = (kopecks / 2).max(1);
            let amount = format!("{}.{:02}", part / 100, part % 100);
            (
                "refund",
                json!({"amount": amount, "idempotency_key": uuid::Uuid::new_v4().to_string()}),
            )
        };
        let Ok(reply) = http
            .post(format!("{api}/api/v1/orders/{number}/{path}"))
            .bearer_auth(MANAGER)
            .json(&body)
            .send()
            .await
        else {
            return;
        };
        if reply.status() != 200 {
            continue;
        }
        let Ok(view) = reply.json::<Value>().await else {
            return;
        };
        let ack = match view["state"]["name"].as_str() {
            Some("reversed") => Ack::Reversed,
            _ => Ack::Refunded(view["refunded"].as_u64().unwrap_or(0)),
        };
        lock(&acks).insert(number, ack);
    }
}

/// Every ack still holds on the daemon at `api`: the lost ones, described.
async fn lost_acks(api: &str, acks: &HashMap<String, Ack>) -> Vec<String> {
    let http = http();
    let mut lost = Vec::new();
    for (number, ack) in acks {
        let reply = http
            .get(format!("{api}/api/v1/orders/{number}"))
            .bearer_auth(MANAGER)
            .send()
            .await
            .unwrap();
        if reply.status() == 404 {
            lost.push(format!("{number}: answered {ack:?}, now missing"));
            continue;
        }
        let view: Value = reply.json().await.unwrap();
        let state = view["state"]["name"].as_str().unwrap_or("?").to_string();
        let amount = view["amount"].as_u64().unwrap_or(0);
        let deposited = view["deposited"].as_u64().unwrap_or(0);
        let refunded = view["refunded"].as_u64().unwrap_or(0);
        let ok = match ack {
            Ack::Sold(k) => amount == *k,
            Ack::Paid(k) => {
                deposited == *k
                    && matches!(
                        state.as_str(),
                        "paid"
                            | "reversing"
                            | "reversed"
                            | "refunding"
                            | "refunded"
                            | "partially_refunded"
                    )
            }
            Ack::Reversed => state == "reversed",
            Ack::Refunded(total) => refunded >= *total,
        };
        if !ok {
            lost.push(format!(
                "{number}: answered {ack:?}, now {state} (paid {deposited}, refunded {refunded})"
            ));
        }
    }
    lost
}

/// What a run of power cuts found.
#[derive(Debug, Default)]
pub struct PowerCuts {
    pub cuts: usize,
    /// Orders the daemon answered about (a 201, a paid state, a reversal or refund 200).
    pub answers: usize,
    /// Of them, paid, reversed or refunded.
    pub moved: usize,
    /// Answers found untrue after a cut, each described with its cut.
    pub lost: Vec<String>,
    /// register.do calls the bank refused because the number was used already.
    pub reused: usize,
    /// The last stop (SIGTERM after the last restart) exited 0.
    pub clean_stop: bool,
}

/// `cuts` power cuts of `chasti serve` (`bin`) under load, with LazyFS (`ctl`).
pub async fn run(bin: &Path, ctl: PathBuf, cuts: usize) -> PowerCuts {
    run_with(bin, ctl, cuts, "", async |_| {}).await
}

/// The same, with `extra` appended to the daemon's config, and `last` called with the till
/// API's address after the last restart, before the daemon is stopped.
pub async fn run_with(
    bin: &Path,
    ctl: PathBuf,
    cuts: usize,
    extra: &str,
    last: impl AsyncFnOnce(String),
) -> PowerCuts {
    let lazy = Lazy::mount(ctl);
    let dir = tempfile::tempdir().unwrap();
    let sandbox = chasti::sandbox::Sandbox::start(
        "127.0.0.1:0".parse().unwrap(),
        chasti::sandbox::SandboxSettings::default(),
    )
    .await
    .expect("the sandbox starts");
    let sandbox = Arc::new(sandbox);
    sandbox.set_callback_key(Some(Secret::new(CALLBACK_KEY)));
    sandbox.set_callback_retry_delays(vec![Duration::from_millis(200); 3]);
    let config = write_config(dir.path(), &lazy.mnt.join("orders.db"), &sandbox, extra);
    let log = dir.path().join("serve.log");
    let acks: Acks = Arc::default();
    let mut dice = Dice(0x9e37_79b9_7f4a_7c15);
    let mut report = PowerCuts {
        cuts,
        ..PowerCuts::default()
    };
    let mut checked: HashMap<String, Ack> = HashMap::new();
    for cycle in 0..cuts {
        let serve = Serve::start(bin, &config, &log);
        sandbox.set_callback_url(Some(serve.callbacks.clone()));
        // What the daemon said before this cut (what changed since the last check; everything
        // again at the end), checked against what it has now.
        let fresh: HashMap<String, Ack> = lock(&acks)
            .iter()
            .filter(|(n, a)| checked.get(*n) != Some(*a))
            .map(|(n, a)| (n.clone(), a.clone()))
            .collect();
        for lost in lost_acks(&serve.api, &fresh).await {
            report.lost.push(format!("after cut {cycle}: {lost}"));
        }
        checked.extend(fresh);
        let load = [
            tokio::spawn(till(
                serve.api.clone(),
                "1",
                dice.next(u64::MAX),
                acks.clone(),
                sandbox.clone(),
            )),
            tokio::spawn(till(
                serve.api.clone(),
                "2",
                dice.next(u64::MAX),
                acks.clone(),
                sandbox.clone(),
            )),
            tokio::spawn(till(
                serve.api.clone(),
                "3",
                dice.next(u64::MAX),
                acks.clone(),
                sandbox.clone(),
            )),
            tokio::spawn(manager(
                serve.api.clone(),
                dice.next(u64::MAX),
                acks.clone(),
            )),
        ];
        tokio::time::sleep(Duration::from_millis(300 + dice.next(900))).await;
        serve.kill9();
        lazy.cut();
        for task in load {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
    // The last restart: everything acknowledged is there, and the store serves.
    let serve = Serve::start(bin, &config, &log);
    let all = lock(&acks).clone();
    for lost in lost_acks(&serve.api, &all).await {
        report.lost.push(format!("after the last cut: {lost}"));
    }
    report.answers = all.len();
    report.moved = all.values().filter(|a| !matches!(a, Ack::Sold(_))).count();
    report.reused = sandbox
        .ledger()
        .operations
        .iter()
        .filter(|o| o.operation.starts_with("register") && o.outcome.starts_with("errorCode 1"))
        .count();
    last(serve.api.clone()).await;
    report.clean_stop = serve.terminate();
    report
}
