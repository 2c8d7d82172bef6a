//! The daemon as a library value: built once from the config, run until a shutdown signal,
//! stopped gracefully. `chasti serve`, `chasti demo` and every test start it this one way.
//!
//! ```text
//! till / CLI / pages ─► api server ─► Engine ─► GatewayClient ─► bank (or the embedded sandbox)
//! bank callback ─► callback server ─► Engine (status call, deposit)
//! Engine ─► Store (SQLite)      Engine updates ─► Devices (printer, display)
//! ```

mod startup;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::callbacks::Callbacks;
use crate::config::{Config, DepositMode};
use crate::devices::pole::Display;
use crate::devices::printer::Printer;
use crate::devices::Devices;
use crate::engine::{Clock, Engine, EngineSettings, SystemClock};
use crate::gateway::GatewayClient;
use crate::http::api::Api;
use crate::http::callback::CallbackAuth;
use crate::server::{self, ServerHandle};
use crate::store::Store;

/// Why the daemon could not start, or stopped badly. For the operator: says what and where.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot listen for {what} on {addr}: {error}")]
    Listen {
        what: &'static str,
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("the order store at {path}: {source}{hint}")]
    Store {
        path: String,
        #[source]
        source: crate::store::StoreError,
        /// Whose folder it is and the `chown` that fixes it, when it may not be written.
        hint: String,
    },
    #[error("the order store's folder {folder}: {source}{hint}")]
    StoreFolder {
        folder: String,
        #[source]
        source: std::io::Error,
        hint: String,
    },
    #[error("the gateway client: {0}")]
    Gateway(#[source] crate::gateway::GatewayError),
    #[error("the fiscal receipts' issuer: {0}")]
    Fiscal(#[source] crate::fiscal::FiscalSetupError),
    #[error("the SMS provider's client: {0}")]
    Sms(#[source] crate::sms::SmsSetupError),
    #[error("the till API's TLS: {0}")]
    Tls(#[source] crate::gateway::tls::TlsError),
    /// The engine's task ended on its own: the process must exit non-zero (systemd restarts it).
    #[error("the orders engine stopped: {0}")]
    EngineStopped(String),
}

/// How long /health keeps saying `engine_stopped` before the process exits.
const ENGINE_DOWN_LINGER: Duration = Duration::from_secs(1);

/// Where the bank's gateway is when it is not where the config says: the sandbox that `serve`,
/// `demo` or a test started on the port it could take. The daemon talks to it as to the bank.
#[derive(Debug, Clone)]
pub struct BankAt {
    /// The gateway's base URL (`…/payment/rest/`).
    pub base_url: url::Url,
    /// Its payment page for a gateway orderId (`{orderId}` is replaced), unless the config
    /// names one.
    pub payment_page_template: Option<String>,
}

/// What a caller may supply instead of what the config says (tests, the demo).
#[derive(Default)]
pub struct Parts {
    /// The bank's gateway somewhere else than `gateway.base_url`.
    pub bank: Option<BankAt>,
    pub clock: Option<Arc<dyn Clock>>,
    /// Instead of the config's first `[[printer]]` (the demo's virtual printer, a test's pty).
    pub printer: Option<Printer>,
    /// Instead of the config's first `[[display]]`.
    pub display: Option<Display>,
    /// Already-bound listeners instead of binding the config's addresses.
    pub api_listener: Option<TcpListener>,
    pub callback_listener: Option<TcpListener>,
}

/// A built daemon: listening, recovering, not yet watched. See [`Daemon::run_until`].
pub struct Daemon {
    config: Config,
    handle: DaemonHandle,
    api_server: ServerHandle,
    callback_server: ServerHandle,
    engine_task: JoinHandle<()>,
    devices_task: Option<JoinHandle<()>>,
    /// Sees to the fiscal receipts (`[fiscal] mode` other than `none`).
    fiscal_task: Option<JoinHandle<()>>,
    /// Ships order changes to the head office (`[replicate]`).
    replicate_task: Option<JoinHandle<()>>,
}

/// What a running daemon exposes: its addresses and its engine.
#[derive(Clone)]
pub struct DaemonHandle {
    pub engine: Engine,
    /// The bank's callbacks after their checksum: kept, and followed by looks.
    pub callbacks: Callbacks,
    pub api: Api,
    pub api_addr: SocketAddr,
    /// The till API serves HTTPS (`api.tls_cert`).
    pub api_tls: bool,
    pub callback_addr: SocketAddr,
    pub callback_path: String,
    pub devices: Option<Devices>,
    #[cfg(any(test, feature = "test-hooks"))]
    engine_abort: tokio::task::AbortHandle,
}

impl DaemonHandle {
    /// `http://addr` (or `https://`) of the till API (its routes are under `/api/v1`).
    pub fn api_url(&self) -> String {
        let scheme = if self.api_tls { "https" } else { "http" };
        format!("{scheme}://{}", self.api_addr)
    }

    /// `http://addr/path` of the callback route.
    pub fn callback_url(&self) -> String {
        format!("http://{}{}", self.callback_addr, self.callback_path)
    }

    /// Ends the engine's task as a crash would: health turns 503 and `run_until` returns an
    /// error (tests only).
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn abort_engine(&self) {
        self.engine_abort.abort();
    }
}

/// The engine's settings from the config.
pub fn engine_settings(config: &Config) -> EngineSettings {
    EngineSettings {
        store_prefix: config.store.prefix.clone(),
        default_till: config.store.till.clone(),
        order_lifetime: config.gateway.order_lifetime,
        auto_deposit: config.orders.deposit == DepositMode::Auto,
        poll_first: config.orders.poll_first,
        poll_max: config.orders.poll_max,
        expiry_grace: config.orders.expiry_grace,
        hold_max: config.orders.hold_max,
        payment_page_template: config.orders.payment_page_template.clone(),
        recovery_tries: config.orders.recovery_tries,
        lock_wait: config.orders.busy_wait,
        retention: config.store.retention,
        receipts: config.fiscal.receipt_policy(),
        bank_carts: bank_carts(config),
        ..EngineSettings::default()
    }
}

/// The carts for the bank's cloud fiscalisation, when `[fiscal] mode = "bank"`.
fn bank_carts(config: &Config) -> Option<crate::engine::BankCarts> {
    let bank = config.fiscal.bank.as_ref()?;
    (config.fiscal.mode == crate::config::FiscalMode::Bank).then(|| crate::engine::BankCarts {
        ffd: bank.ffd.clone(),
        company: crate::gateway::BundleCompany {
            email: bank.company_email.clone(),
            sno: config.fiscal.taxation.sno().to_string(),
            inn: bank.company_inn.clone(),
            payment_address: bank.payment_address.clone(),
        },
        tax_system: config.fiscal.taxation.legacy_code(),
        tax_types: bank.tax_types.clone(),
        with_operations: config.gateway.dialect == crate::gateway::Dialect::Ecom,
    })
}

async fn bind(
    what: &'static str,
    addr: SocketAddr,
    given: Option<TcpListener>,
) -> Result<TcpListener, DaemonError> {
    match given {
        Some(listener) => Ok(listener),
        None => TcpListener::bind(addr)
            .await
            .map_err(|error| DaemonError::Listen { what, addr, error }),
    }
}

impl Daemon {
    /// Everything from the config: the store, the gateway client, the engine, the callback
    /// route, the devices and the till API, each on its configured address (port 0 picks a
    /// free one). With `environment = "sandbox"` the bank is whatever `gateway.base_url` (or
    /// [`Parts::bank`]) points at: the caller starts the sandbox (`chasti::sandbox::embedded`).
    pub async fn build(config: Config) -> Result<Daemon, DaemonError> {
        Daemon::build_with(config, Parts::default()).await
    }

    pub async fn build_with(mut config: Config, parts: Parts) -> Result<Daemon, DaemonError> {
        let callback_listener =
            bind("callbacks", config.callback.listen, parts.callback_listener).await?;
        let callback_addr = local_addr(&callback_listener, config.callback.listen);
        if let Some(bank) = parts.bank {
            config.gateway.base_url = bank.base_url;
            if config.orders.payment_page_template.is_none() {
                config.orders.payment_page_template = bank.payment_page_template;
            }
        }
        let store = open_store(&config)?;
        let client =
            GatewayClient::new(config.gateway.client_settings()).map_err(DaemonError::Gateway)?;
        let clock = parts.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let engine = Engine::new(store, client, engine_settings(&config), clock);

        let auth = CallbackAuth {
            hmac_key: config.callback.key.clone(),
            public_key: config.callback.public_key.clone(),
            allow: config.callback.allow.clone(),
            trusted_proxies: config.callback.trusted_proxies.clone(),
            ecom_hints: config.gateway.dialect == crate::gateway::Dialect::Ecom,
        };
        let courier = match &config.sms {
            Some(sms) => Some(
                crate::sms::Courier::new(
                    sms,
                    &config.devices.shop_name,
                    engine.clone(),
                    callback_addr,
                )
                .await
                .map_err(DaemonError::Sms)?,
            ),
            None => None,
        };
        let callbacks = Callbacks::new(engine.clone());
        let mut callback_routes =
            crate::http::callback::router(callbacks.clone(), &config.callback.path, auth);
        if let Some(courier) = courier.as_ref().filter(|c| c.takes_reports()) {
            callback_routes =
                callback_routes.merge(crate::http::sms_report::router(courier.clone()));
        }
        let callback_server = server::spawn(
            callback_listener,
            callback_routes,
            None,
            config.callback.limits,
        );

        let devices = startup::devices(&config, parts.printer, parts.display);
        let devices_task = devices
            .as_ref()
            .map(|d| crate::devices::attach(&engine, d.clone()));
        if let Some(courier) = courier.clone() {
            // What a stop or a crash left requested goes now, beside recovery.
            tokio::spawn(async move { courier.resume().await });
        }
        let replicator = config.replicate.clone().map(|r| {
            crate::replicate::Replicator::new(r, engine.store().clone(), engine.subscribe())
        });
        let mut api = Api::new(&config, engine.clone(), devices.clone(), courier);
        if let (Some(r), Some(c)) = (&replicator, &config.replicate) {
            api = api.with_replication(crate::replicate::Watch {
                store_id: c.store_id.clone(),
                status: r.status(),
            });
        }
        let api_listener = bind("the till API", config.api.listen, parts.api_listener).await?;
        let api_addr = local_addr(&api_listener, config.api.listen);
        let api_tls = match &config.api.tls {
            Some((cert, key)) => Some(server::tls_acceptor(cert, key).map_err(DaemonError::Tls)?),
            None => None,
        };
        let api_server = server::spawn(
            api_listener,
            crate::http::api::router(api.clone()),
            api_tls.clone(),
            config.api.limits,
        );

        let fiscal_task = crate::fiscal::FiscalWorker::new(&config, engine.clone())
            .map_err(DaemonError::Fiscal)?
            .map(|worker| tokio::spawn(worker.run()));
        let replicate_task = replicator.map(|r| {
            let engine = engine.clone();
            tokio::spawn(async move { r.run(async move { engine.stopping().await }).await })
        });
        let engine_task = tokio::spawn(engine.clone().run());
        let handle = DaemonHandle {
            #[cfg(any(test, feature = "test-hooks"))]
            engine_abort: engine_task.abort_handle(),
            engine,
            callbacks,
            api,
            api_addr,
            api_tls: api_tls.is_some(),
            callback_addr,
            callback_path: config.callback.path.clone(),
            devices,
        };
        startup::announce(&config, &handle);
        Ok(Daemon {
            config,
            handle,
            api_server,
            callback_server,
            engine_task,
            devices_task,
            fiscal_task,
            replicate_task,
        })
    }

    pub fn handle(&self) -> DaemonHandle {
        self.handle.clone()
    }

    /// Checks the credentials with a harmless status call and logs the answer (in the
    /// background: the daemon is serving meanwhile).
    pub fn check_credentials_in_background(&self) {
        let handle = self.handle.clone();
        let config = self.config.clone();
        tokio::spawn(async move { startup::check_credentials(&config, &handle).await });
    }

    /// Serves until `shutdown` resolves, then stops gracefully: no new sales (503), the poller
    /// stops, requests, callback follow-ups and the printer's current slip finish within
    /// `daemon.shutdown_grace_secs`, what the store was handed is committed. If the engine's task ends first, the
    /// health check says so and this returns an error (the process must exit non-zero).
    pub async fn run_until(
        mut self,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), DaemonError> {
        tokio::pin!(shutdown);
        let ended = tokio::select! {
            _ = &mut shutdown => None,
            result = &mut self.engine_task => Some(result),
        };
        match ended {
            None => self.stop_gracefully().await,
            Some(result) => {
                let why = match result {
                    Ok(()) => "its task ended".to_string(),
                    Err(e) if e.is_panic() => format!("its task panicked: {}", panic_text(e)),
                    Err(e) => format!("its task was cancelled ({e})"),
                };
                self.handle.api.mark_engine_down();
                tracing::error!(%why, "the orders engine stopped; exiting so the service restarts");
                // A moment for a watchdog polling /health to see the 503 before the exit.
                tokio::time::sleep(ENGINE_DOWN_LINGER).await;
                self.handle.engine.begin_shutdown();
                let quick = Duration::from_secs(2);
                let _ = tokio::join!(
                    self.api_server.shutdown(quick),
                    self.callback_server.shutdown(quick)
                );
                let _ = self.handle.engine.store().flush().await;
                Err(DaemonError::EngineStopped(why))
            }
        }
    }

    async fn stop_gracefully(mut self) -> Result<(), DaemonError> {
        let grace = self.config.daemon.shutdown_grace;
        let deadline = Instant::now() + grace;
        let left = || deadline.saturating_duration_since(Instant::now());
        tracing::info!(
            grace_secs = grace.as_secs(),
            "stopping: no new sales; finishing what is under way"
        );
        let engine = self.handle.engine.clone();
        engine.begin_shutdown();
        let (api, callbacks) = tokio::join!(
            self.api_server.shutdown(left()),
            self.callback_server.shutdown(left())
        );
        let poller = tokio::time::timeout(left(), &mut self.engine_task)
            .await
            .is_ok();
        if !poller {
            self.engine_task.abort();
        }
        let follow_ups = self.handle.callbacks.drain(left()).await;
        // The fiscal worker ends at its next turn once the engine stops; a receipt it was
        // handing over stays owed in the store if it has to be cut short.
        if let Some(task) = self.fiscal_task.as_mut() {
            if tokio::time::timeout(left(), &mut *task).await.is_err() {
                task.abort();
            }
        }
        // The shipper stops at its next turn; what it had not shipped stays in the outbox.
        if let Some(task) = self.replicate_task.as_mut() {
            if tokio::time::timeout(left(), &mut *task).await.is_err() {
                task.abort();
            }
        }
        let printer = match &self.handle.devices {
            Some(d) => d.finish(left()).await,
            None => true,
        };
        if let Some(task) = &self.devices_task {
            task.abort();
        }
        engine
            .store()
            .flush()
            .await
            .map_err(|source| DaemonError::Store {
                path: self.config.store.path.display().to_string(),
                source,
                hint: String::new(),
            })?;
        if api && callbacks && poller && follow_ups && printer {
            tracing::info!("chasti stopped cleanly");
        } else {
            tracing::warn!(
                api,
                callbacks,
                poller,
                follow_ups,
                printer,
                "chasti stopped; some work did not finish within the grace period (it is in the store and resumes at the next start)"
            );
        }
        Ok(())
    }
}

fn local_addr(listener: &TcpListener, configured: SocketAddr) -> SocketAddr {
    listener.local_addr().unwrap_or(configured)
}

fn open_store(config: &Config) -> Result<Store, DaemonError> {
    let path = &config.store.path;
    let folder = crate::store::database_file(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    if let Err(source) = std::fs::create_dir_all(&folder) {
        return Err(DaemonError::StoreFolder {
            hint: not_writable_hint(&folder, &source),
            folder: folder.display().to_string(),
            source,
        });
    }
    let options = crate::store::StoreOptions {
        cache_bytes: config.store.cache_bytes,
        replication: match &config.replicate {
            Some(r) => crate::store::Replication::On {
                outbox_max: r.outbox_max,
            },
            None => crate::store::Replication::Off,
        },
    };
    Store::open_with(path, options).map_err(|source| {
        // The store's file errors carry the io error behind an Arc (shared by waiting writers).
        let denied = std::error::Error::source(&source)
            .and_then(|s| {
                s.downcast_ref::<Arc<std::io::Error>>()
                    .map(|a| a.as_ref())
                    .or_else(|| s.downcast_ref::<std::io::Error>())
            })
            .filter(|io| io.kind() == std::io::ErrorKind::PermissionDenied);
        let hint = denied
            .map(|io| not_writable_hint(&folder, io))
            .unwrap_or_default();
        DaemonError::Store {
            path: path.display().to_string(),
            source,
            hint,
        }
    })
}

/// For a store this process may not write: who owns the folder, who we are, and the `chown`
/// that fixes it (the usual cause: `sudo chasti serve` once made the files root's).
fn not_writable_hint(folder: &Path, e: &std::io::Error) -> String {
    use std::os::unix::fs::MetadataExt;
    if e.kind() != std::io::ErrorKind::PermissionDenied {
        return String::new();
    }
    let Some((existing, meta)) = folder
        .ancestors()
        .find_map(|a| std::fs::metadata(a).ok().map(|m| (a.to_path_buf(), m)))
    else {
        return String::new();
    };
    let me = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    let name = |uid: u32| user_name(uid).unwrap_or_else(|| format!("uid {uid}"));
    format!(
        "; {} belongs to {} and this process runs as {}: run chasti as the user that owns its store (the package's service user is chasti), or give it the folder: sudo chown -R chasti:chasti {}",
        existing.display(),
        name(meta.uid()),
        me.map(name).unwrap_or_else(|| "another user".into()),
        folder.display()
    )
}

/// A user's name from /etc/passwd (no NSS lookups: this is for one line of an error).
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let id: u32 = f.nth(1)?.parse().ok()?;
        (id == uid).then(|| name.to_string())
    })
}

fn panic_text(e: tokio::task::JoinError) -> String {
    crate::replicate::panic_text(&*e.into_panic())
}

/// SIGTERM (systemd's stop) or Ctrl-C.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    // The handlers are installed here, when this is called, not when the future is first
    // polled: a SIGTERM that comes right after the "serving" line (systemd stopping a service
    // it just started, a test) must stop the daemon gracefully, not kill it by default action.
    #[cfg(unix)]
    let (term, interrupt) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        if let (Some(mut term), Some(mut interrupt)) = (term, interrupt) {
            tokio::select! {
                _ = term.recv() => {}
                _ = interrupt.recv() => {}
            }
            return;
        }
        ctrl_c().await;
    }
}

/// Ctrl-C alone.
pub async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        // No signal handling here (unusual): park instead of exiting at once.
        std::future::pending::<()>().await;
    }
}
