//! A faithful sandbox of the Sber gateway: the default peer of the demo and the real peer of
//! every test. It speaks `/payment/rest/<method>.do` with the bank's rules (see [`bank`]),
//! serves a Russian payment page at each order's `formUrl` (and a JSON twin for tests), sends
//! signed callbacks, keeps a ledger, and misbehaves on demand (see [`faults`]).

pub mod bank;
pub mod callbacks;
mod ecom;
mod embedded;
pub mod faults;
mod http;
mod page;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use url::Url;

pub use bank::{AttemptFailure, LedgerEntry, LedgerOrder, Refusal, SandboxReceipt};
pub use callbacks::{CallbackDelivery, CallbackFaults, CallbackSettings};
pub use embedded::embedded;
pub use faults::{Fault, FaultRule, Faults, Phase};

use crate::gateway::OrderStatus;
use crate::secret::Secret;
use crate::server::ServerHandle;
use callbacks::lock;

/// The default sandbox merchant login and password: the shipped config's.
pub use crate::config::{SANDBOX_PASSWORD as DEFAULT_PASSWORD, SANDBOX_USER_NAME as DEFAULT_USER};

#[derive(Debug, Clone)]
pub struct SandboxSettings {
    /// Accepted `userName` / `password` pairs.
    pub users: Vec<(String, Secret)>,
    /// Accepted tokens.
    pub tokens: Vec<Secret>,
    pub callbacks: CallbackSettings,
    /// PEM certificate chain and key: the sandbox serves HTTPS when set.
    pub tls: Option<(PathBuf, PathBuf)>,
}

impl Default for SandboxSettings {
    fn default() -> Self {
        SandboxSettings {
            users: vec![(DEFAULT_USER.to_string(), Secret::new(DEFAULT_PASSWORD))],
            tokens: Vec::new(),
            callbacks: CallbackSettings::default(),
            tls: None,
        }
    }
}

/// Everything the bank knows, for tests to check the truth against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    pub orders: Vec<LedgerOrder>,
    pub operations: Vec<LedgerEntry>,
    pub callbacks: Vec<CallbackDelivery>,
}

impl Ledger {
    /// How many calls of `operation` succeeded for an order number.
    pub fn count_ok(&self, operation: &str, order_number: impl AsRef<str>) -> usize {
        let order_number = order_number.as_ref();
        self.operations
            .iter()
            .filter(|e| e.ok() && e.operation == operation)
            .filter(|e| e.order_number.as_deref() == Some(order_number))
            .count()
    }

    pub fn order(&self, order_number: impl AsRef<str>) -> Option<&LedgerOrder> {
        let order_number = order_number.as_ref();
        self.orders.iter().find(|o| o.order_number == order_number)
    }
}

/// The sandbox's time: real time, or a time a test set that then runs on at real speed
/// (for lifetimes and the Moscow-midnight reversal rule). Anchored exactly: a time set to
/// 00:00:00 never reads as 23:59:59.999.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    anchor: Mutex<Option<(DateTime<Utc>, std::time::Instant)>>,
}

impl Clock {
    pub(crate) fn now(&self) -> DateTime<Utc> {
        match *lock(&self.anchor) {
            None => Utc::now(),
            Some((at, since)) => {
                at + chrono::Duration::from_std(since.elapsed()).unwrap_or_default()
            }
        }
    }

    fn advance(&self, by: chrono::Duration) -> DateTime<Utc> {
        let now = self.now() + by;
        self.set(now);
        now
    }

    fn set(&self, at: DateTime<Utc>) {
        *lock(&self.anchor) = Some((at, std::time::Instant::now()));
    }
}

pub(crate) struct Shared {
    pub(crate) bank: Mutex<bank::Bank>,
    pub(crate) settings: SandboxSettings,
    pub(crate) clock: Clock,
    pub(crate) fault_rules: Mutex<Vec<FaultRule>>,
    pub(crate) callbacks: callbacks::CallbackSender,
    /// `http(s)://addr/`: what `formUrl` and the base URL start with.
    pub(crate) public_base: Url,
}

impl Shared {
    pub(crate) fn ledger(&self) -> Ledger {
        let bank = lock(&self.bank);
        Ledger {
            orders: bank.ledger_orders(),
            operations: bank.ledger_operations(),
            callbacks: self.callbacks.log(),
        }
    }

    pub(crate) fn set_faults(&self, faults: Faults) {
        *lock(&self.fault_rules) = faults.rules;
        self.callbacks.set_faults(faults.callbacks);
    }

    pub(crate) fn faults(&self) -> Faults {
        Faults {
            rules: lock(&self.fault_rules).clone(),
            callbacks: self.callbacks.faults(),
        }
    }

    pub(crate) fn customer_pays(&self, order_id: &str) -> Result<OrderStatus, Refusal> {
        self.expire_due();
        let result = lock(&self.bank).customer_pays(order_id, self.clock.now());
        result.map(|(status, notices)| {
            self.callbacks.dispatch(notices);
            status
        })
    }

    pub(crate) fn attempt_fails(
        &self,
        order_id: &str,
        why: AttemptFailure,
    ) -> Result<OrderStatus, Refusal> {
        self.expire_due();
        let result = lock(&self.bank).attempt_fails(order_id, why, self.clock.now());
        result.map(|(status, notices)| {
            self.callbacks.dispatch(notices);
            status
        })
    }

    pub(crate) fn authentication_starts(&self, order_id: &str) -> Result<OrderStatus, Refusal> {
        self.expire_due();
        let result = lock(&self.bank).authentication_starts(order_id, self.clock.now());
        result.map(|(status, _)| status)
    }

    pub(crate) fn expire_due(&self) {
        let notices = lock(&self.bank).expire_due(self.clock.now());
        self.callbacks.dispatch(notices);
    }
}

/// A running sandbox. Dropping it stops the server.
pub struct Sandbox {
    shared: Arc<Shared>,
    server: ServerHandle,
    sweeper: tokio::task::JoinHandle<()>,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.sweeper.abort();
        self.server.stop();
    }
}

/// Why the sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("sandbox cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("sandbox listener has no address: {0}")]
    NoAddress(#[source] std::io::Error),
    #[error("sandbox TLS: {0}")]
    Tls(#[from] crate::gateway::tls::TlsError),
    #[error("sandbox address {addr} makes no URL: {source}")]
    Url {
        addr: SocketAddr,
        #[source]
        source: url::ParseError,
    },
}

impl Sandbox {
    /// Binds `listen` (port 0 picks a free one) and serves.
    pub async fn start(
        listen: SocketAddr,
        settings: SandboxSettings,
    ) -> Result<Sandbox, SandboxError> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| SandboxError::Listen {
                addr: listen,
                source,
            })?;
        Sandbox::start_on(listener, settings)
    }

    pub fn start_on(
        listener: TcpListener,
        settings: SandboxSettings,
    ) -> Result<Sandbox, SandboxError> {
        let addr = listener.local_addr().map_err(SandboxError::NoAddress)?;
        let tls = match &settings.tls {
            Some((cert, key)) => Some(crate::server::tls_acceptor(cert, key)?),
            None => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let public_base = Url::parse(&format!("{scheme}://{addr}/"))
            .map_err(|source| SandboxError::Url { addr, source })?;
        let shared = Arc::new(Shared {
            bank: Mutex::new(bank::Bank::new()),
            callbacks: callbacks::CallbackSender::new(settings.callbacks.clone()),
            settings,
            clock: Clock::default(),
            fault_rules: Mutex::new(Vec::new()),
            public_base,
        });
        let server = crate::server::spawn(
            listener,
            http::router(shared.clone()),
            tls,
            crate::server::Limits::SANDBOX,
        );
        // Lifetimes run out even when nobody asks: the bank sends declinedByTimeout by itself.
        let sweeper = {
            let shared = shared.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(250));
                loop {
                    tick.tick().await;
                    shared.expire_due();
                }
            })
        };
        tracing::info!(%addr, "sandbox gateway listening");
        Ok(Sandbox {
            shared,
            server,
            sweeper,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// `http(s)://addr/`
    pub fn url(&self) -> Url {
        self.shared.public_base.clone()
    }

    /// `http(s)://addr/payment/rest/`: the client's base URL.
    pub fn gateway_url(&self) -> Url {
        self.shared
            .public_base
            .join("payment/rest/")
            .expect("a relative path joins")
    }

    /// Where the ecom dialect's `<method>.do` lives on this sandbox.
    pub fn ecom_gateway_url(&self) -> Url {
        self.shared
            .public_base
            .join(http::ECOM_PATH)
            .expect("a relative path joins")
    }

    pub fn ledger(&self) -> Ledger {
        self.shared.ledger()
    }

    pub fn set_faults(&self, faults: Faults) {
        self.shared.set_faults(faults);
    }

    pub fn add_fault(&self, rule: FaultRule) {
        lock(&self.shared.fault_rules).push(rule);
    }

    pub fn clear_faults(&self) {
        self.shared.set_faults(Faults::default());
    }

    pub fn set_callback_url(&self, url: Option<Url>) {
        self.shared.callbacks.set_url(url);
    }

    pub fn set_callback_key(&self, key: Option<Secret>) {
        self.shared.callbacks.set_key(key);
    }

    /// How callbacks are sent: legacy GET or POST form (signed when a key is set), or the ecom
    /// gateway's unsigned POST JSON.
    pub fn set_callback_method(&self, method: crate::config::CallbackMethod) {
        self.shared.callbacks.set_method(method);
    }

    pub fn set_callback_retry_delays(&self, delays: Vec<Duration>) {
        self.shared.callbacks.set_retry_delays(delays);
    }

    /// Moves the sandbox's clock; returns the new sandbox time.
    pub fn advance_clock(&self, by: chrono::Duration) -> DateTime<Utc> {
        let now = self.shared.clock.advance(by);
        self.shared.expire_due();
        now
    }

    pub fn set_clock(&self, at: DateTime<Utc>) {
        self.shared.clock.set(at);
        self.shared.expire_due();
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.shared.clock.now()
    }

    /// Sends the callbacks the `hold` fault kept back; returns how many.
    pub fn release_callbacks(&self) -> usize {
        self.shared.callbacks.release_held()
    }

    /// The customer pays the order (as the payment page's button does).
    pub fn pay(&self, order_id: impl AsRef<str>) -> Result<OrderStatus, Refusal> {
        self.shared.customer_pays(order_id.as_ref())
    }

    /// A payment attempt fails (the third closes the order, as the bank's does).
    pub fn fail_attempt(
        &self,
        order_id: impl AsRef<str>,
        why: AttemptFailure,
    ) -> Result<OrderStatus, Refusal> {
        self.shared.attempt_fails(order_id.as_ref(), why)
    }

    /// The bank's cloud ККТ fails the next receipt it makes, with `receiptStatus` 4
    /// (processing error), 5 (attempts exhausted) or 6 (invalid data) and the error's text.
    pub fn fail_next_receipt(&self, status: i64, text: &str) {
        lock(&self.shared.bank).fail_next_receipt(status, text);
    }

    /// The customer's bank starts a 3-D Secure check: orderStatus 5.
    pub fn start_3ds(&self, order_id: impl AsRef<str>) -> Result<OrderStatus, Refusal> {
        self.shared.authentication_starts(order_id.as_ref())
    }

    /// The order id of a `formUrl` issued by this sandbox.
    pub fn order_id_of(form_url: &str) -> Option<&str> {
        form_url.rsplit_once("/sandbox/pay/").map(|(_, id)| id)
    }
}
