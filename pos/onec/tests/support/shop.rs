//! chasti as `chasti serve` starts it (`Daemon::build` → `run_until`), on free ports with a
//! SQLite store in a temporary folder, against the sandbox bank on 127.0.0.1; and a customer
//! who pays every sale that waits for payment (or none).

use std::sync::Arc;
use std::time::Duration;

use chasti::sandbox::{Sandbox, SandboxSettings, DEFAULT_PASSWORD, DEFAULT_USER};
use chasti::secret::Secret;

pub const CASHIER: &str = "onec-cashier-token-0123";
pub const MANAGER: &str = "onec-manager-token-0123";
const CALLBACK_KEY: &str = "onec-callback-key-0123";

pub struct Shop {
    pub sandbox: Arc<Sandbox>,
    pub engine: chasti::engine::Engine,
    pub api: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    running: Option<tokio::task::JoinHandle<Result<(), chasti::daemon::DaemonError>>>,
    _dir: tempfile::TempDir,
}

impl Shop {
    pub async fn open() -> Shop {
        let sandbox = Arc::new(
            Sandbox::start("127.0.0.1:0".parse().unwrap(), SandboxSettings::default())
                .await
                .expect("the sandbox starts"),
        );
        sandbox.set_callback_key(Some(Secret::new(CALLBACK_KEY)));
        let dir = tempfile::tempdir().unwrap();
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
prefix = "C"

[orders]
payment_page_template = "{sandbox}sandbox/pay/{{orderId}}"

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
"#,
            gateway = sandbox.gateway_url(),
            sandbox = sandbox.url(),
            store = dir.path().join("orders").display(),
        );
        let mut config =
            chasti::config::Config::parse(std::path::Path::new("chasti.toml"), &text, |_| None)
                .expect("the config parses");
        // Tests wait in milliseconds, not the seconds a config file allows.
        config.orders.poll_first = Duration::from_millis(100);
        config.orders.poll_max = Duration::from_millis(300);
        let daemon = chasti::daemon::Daemon::build(config)
            .await
            .expect("chasti starts");
        let handle = daemon.handle();
        sandbox.set_callback_url(Some(url::Url::parse(&handle.callback_url()).unwrap()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(daemon.run_until(async move {
            let _ = stopped.await;
        }));
        Shop {
            sandbox,
            engine: handle.engine.clone(),
            api: handle.api_url(),
            stop: Some(stop),
            running: Some(running),
            _dir: dir,
        }
    }

    /// A customer who pays each sale as soon as it waits for payment.
    pub fn customer_pays(&self) -> tokio::task::JoinHandle<()> {
        let mut updates = self.engine.subscribe();
        let sandbox = self.sandbox.clone();
        tokio::spawn(async move {
            while let Ok(order) = updates.recv().await {
                if order.state.kind() == chasti::orders::StateKind::AwaitingPayment {
                    if let Some(id) = order.state.bank_id() {
                        let _ = sandbox.pay(id);
                    }
                }
            }
        })
    }

    /// An order by its number, as chasti keeps it.
    pub fn order(&self, number: &str) -> chasti::orders::Order {
        self.engine.find(number).expect("the order is in the store")
    }

    pub async fn close(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(running) = self.running.take() {
            running.await.unwrap().expect("chasti stops cleanly");
        }
    }
}
