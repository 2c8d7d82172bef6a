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

// ----- an engine on a real sled directory, talking to the sandbox -------------------------

pub const CALLBACK_KEY: &str = "orders-test-key";

pub struct Harness {
    pub sandbox: Sandbox,
    pub engine: chasti::orders::Engine,
    pub dir: tempfile::TempDir,
    pub callback_url: url::Url,
    _callbacks: chasti::serve::ServerHandle,
    worker: Option<tokio::task::JoinHandle<()>>,
}

pub struct HarnessOptions {
    pub poll_first: Duration,
    pub callbacks: bool,
    pub template: bool,
    pub auto_deposit: bool,
    pub request_timeout: Duration,
    pub clock: Option<Arc<chasti::orders::ManualClock>>,
    pub run: bool,
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
        }
    }
}

pub fn engine_settings(sandbox: &Sandbox, o: &HarnessOptions) -> chasti::orders::EngineSettings {
    chasti::orders::EngineSettings {
        store_prefix: "T".into(),
        default_till: "1".into(),
        order_lifetime: Duration::from_secs(1200),
        auto_deposit: o.auto_deposit,
        poll_first: o.poll_first,
        poll_max: o.poll_first * 3,
        expiry_grace: Duration::from_secs(60),
        hold_max: Duration::from_secs(6 * 86_400),
        payment_page_template: o
            .template
            .then(|| format!("{}sandbox/pay/{{orderId}}", sandbox.url())),
    }
}

impl Harness {
    pub async fn new(o: HarnessOptions) -> Harness {
        let sandbox = sandbox().await;
        sandbox.set_callback_key(Some(Secret::new(CALLBACK_KEY)));
        sandbox.set_callback_retry_delays(vec![
            Duration::from_millis(100),
            Duration::from_millis(100),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let store = chasti::orders::Store::open(&dir.path().join("orders")).unwrap();
        let mut client_settings = settings_for(&sandbox);
        client_settings.request_timeout = o.request_timeout;
        let client = GatewayClient::new(client_settings).unwrap();
        let clock: Arc<dyn chasti::orders::Clock> = match &o.clock {
            Some(c) => c.clone(),
            None => Arc::new(chasti::orders::SystemClock),
        };
        let engine =
            chasti::orders::Engine::new(store, client, engine_settings(&sandbox, &o), clock);
        let auth = chasti::http::callback::CallbackAuth {
            hmac_key: Some(Secret::new(CALLBACK_KEY)),
            ..Default::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let callbacks = chasti::serve::spawn(
            listener,
            chasti::http::callback::router(engine.clone(), "/cb", auth),
            None,
        );
        let callback_url = url::Url::parse(&format!("http://{addr}/cb")).unwrap();
        if o.callbacks {
            sandbox.set_callback_url(Some(callback_url.clone()));
        }
        let worker = if o.run {
            Some(tokio::spawn(engine.clone().run()))
        } else {
            engine.recover().await.unwrap();
            None
        };
        for _ in 0..100 {
            if engine.is_ready() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Harness {
            sandbox,
            engine,
            dir,
            callback_url,
            _callbacks: callbacks,
            worker,
        }
    }

    pub fn sale(amount_roubles: u64, mode: chasti::orders::Mode) -> chasti::orders::SaleRequest {
        chasti::orders::SaleRequest {
            amount: chasti::money::Kopecks::from_roubles(amount_roubles).unwrap(),
            mode,
            description: Some("Тест".into()),
            till: None,
            cashier: Some("Иванова".into()),
            idempotency_key: None,
        }
    }

    /// Waits (bounded) until the order reaches a state with this name.
    pub async fn wait_state(&self, id: &str, state: &str) -> chasti::orders::Order {
        for _ in 0..200 {
            let order = self.engine.get(id).unwrap();
            if order.state.name() == state {
                return order;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let order = self.engine.get(id).unwrap();
        panic!(
            "order {} is {:?}, expected {state} within 5 s; history: {:#?}",
            order.order_number, order.state, order.history
        );
    }

    pub fn gateway_id(order: &chasti::orders::Order) -> String {
        order.gateway_order_id.clone().expect("registered")
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(w) = &self.worker {
            w.abort();
        }
    }
}
