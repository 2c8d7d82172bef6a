//! What the subcommands do. Each returns a message for the operator on failure.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use chasti::config::{CallbackMethod, Config, DepositMode, Environment, ENV_CALLBACK_KEY};
use chasti::devices::profile::{self, PrinterProfile};
use chasti::devices::serial::{PortSettings, Printer};
use chasti::devices::slip::{self, Outcome, SlipOrder};
use chasti::gateway::{ClientSettings, Credentials, GatewayClient, OrderRef, RegisterRequest};
use chasti::http::callback::CallbackAuth;
use chasti::money::Kopecks;
use chasti::orders::{Engine, EngineSettings, Store, SystemClock};
use chasti::sandbox::{CallbackSettings, Sandbox, SandboxSettings, DEFAULT_PASSWORD, DEFAULT_USER};
use chasti::secret::Secret;
use url::Url;

#[derive(clap::Args)]
pub struct SandboxArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8907")]
    listen: SocketAddr,
    /// The merchant login the sandbox accepts.
    #[arg(long, default_value = DEFAULT_USER)]
    user: String,
    /// Its password.
    #[arg(long, env = "CHASTI_SANDBOX_PASSWORD", default_value = DEFAULT_PASSWORD, hide_env_values = true)]
    password: String,
    /// A token the sandbox accepts instead of login and password.
    #[arg(long, env = "CHASTI_SANDBOX_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Where to send callbacks.
    #[arg(long)]
    callback_url: Option<Url>,
    /// HMAC-SHA256 key to sign callbacks with.
    #[arg(long, env = ENV_CALLBACK_KEY, hide_env_values = true)]
    callback_key: Option<String>,
    /// Send callbacks as POST forms instead of GET queries.
    #[arg(long)]
    callback_post: bool,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

pub async fn sandbox(args: SandboxArgs) -> Result<(), String> {
    let settings = SandboxSettings {
        users: vec![(args.user, Secret::new(args.password))],
        tokens: args.token.map(Secret::new).into_iter().collect(),
        callbacks: CallbackSettings {
            url: args.callback_url,
            key: args.callback_key.map(Secret::new),
            method: if args.callback_post {
                CallbackMethod::Post
            } else {
                CallbackMethod::Get
            },
            ..CallbackSettings::default()
        },
        tls: args.tls_cert.zip(args.tls_key),
    };
    let sandbox = Sandbox::start(args.listen, settings).await?;
    println!("sandbox gateway: {}", sandbox.gateway_url());
    println!("ledger:          {}sandbox/api/ledger", sandbox.url());
    wait_for_ctrl_c().await;
    Ok(())
}

pub async fn demo(listen: SocketAddr, no_wait: bool) -> Result<(), String> {
    let sandbox = Sandbox::start(listen, SandboxSettings::default()).await?;
    let base = sandbox.gateway_url();
    let client = GatewayClient::new(ClientSettings::new(
        base.clone(),
        Credentials::Password {
            user_name: DEFAULT_USER.into(),
            password: Secret::new(DEFAULT_PASSWORD),
        },
        "https://shop.example/chasti/paid",
    ))
    .map_err(|e| e.to_string())?;

    let number = format!("demo-{}", chrono::Utc::now().format("%H%M%S"));
    let amount = Kopecks::parse_amount("1 499,50").map_err(|e| e.to_string())?;
    let mut request = RegisterRequest::new(&number, amount);
    request.description = Some("Демо-заказ chasti".into());
    let registered = client.register(&request).await.map_err(|e| e.to_string())?;
    let status = client
        .order_status(&OrderRef::OrderId(registered.order_id.clone()))
        .await
        .map_err(|e| e.to_string())?;

    println!("chasti demo: the sandbox gateway is at {base}");
    println!();
    println!("A test order went through the real client:");
    println!("  orderNumber {number}, amount {amount}");
    println!("  orderId     {}", registered.order_id);
    let shown = status
        .order_status
        .map(|s| s.to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("  orderStatus {shown}");
    println!("  payment link (open it, sign in with any phone and the code 1111):");
    println!("    {}", registered.form_url);
    println!();
    println!("Make another order with curl:");
    println!(
        "  curl -s {base}register.do -d userName={DEFAULT_USER} -d password={DEFAULT_PASSWORD} \\\n    -d orderNumber=curl-1 -d amount=149950 -d returnUrl=https://shop.example/paid"
    );
    println!("Pay it without a browser, then ask its status:");
    println!(
        "  curl -s -X POST {}sandbox/api/orders/ORDER_ID/pay",
        sandbox.url()
    );
    println!(
        "  curl -s {base}getOrderStatusExtended.do -d userName={DEFAULT_USER} -d password={DEFAULT_PASSWORD} -d orderId=ORDER_ID"
    );
    println!(
        "Everything the bank saw: {}sandbox/api/ledger",
        sandbox.url()
    );
    if !no_wait {
        println!();
        println!("Serving until Ctrl-C.");
        wait_for_ctrl_c().await;
    }
    Ok(())
}

pub fn check_config(path: &Path) -> Result<(), String> {
    let config = Config::load(path).map_err(|e| e.to_string())?;
    let g = &config.gateway;
    println!("{}: ok", config.file.display());
    println!("  environment   {:?}", g.environment);
    println!("  gateway       {}", g.base_url);
    let who = match &g.credentials {
        Credentials::Password { user_name, .. } => format!("{user_name} (password set)"),
        Credentials::Token(_) => "token (set)".to_string(),
    };
    println!("  credentials   {who}");
    println!("  return_url    {}", g.return_url);
    println!("  lifetime      {} s", g.order_lifetime.as_secs());
    println!("  timeout       {} s", g.request_timeout.as_secs());
    Ok(())
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum SlipKind {
    Payment,
    Paid,
    Reversal,
    Refund,
}

/// A realistic sample: the bank's links are about 110 characters.
const SAMPLE_LINK: &str = "https://securepayments.sberbank.ru/payment/merchants/sbersafe_sberid/payment_ru.html?mdOrder=2f5bd8e8-3b3e-7c46-9a8f-4a1e00a8b38b";

pub fn sample_slip(
    profile: &PrinterProfile,
    shop: &str,
    kind: SlipKind,
) -> Result<Vec<u8>, String> {
    let now = chrono::Utc::now();
    let order = SlipOrder {
        shop_name: shop,
        order_number: "S1-1-261123-0001",
        amount: Kopecks::new(149_950).unwrap_or_default(),
        payment_url: SAMPLE_LINK,
        link_expires_at: now + chrono::Duration::minutes(20),
    };
    Ok(match kind {
        SlipKind::Payment => slip::payment_slip(profile, &order)?,
        SlipKind::Paid => slip::outcome_slip(profile, &order, Outcome::Paid, now),
        SlipKind::Reversal => slip::outcome_slip(profile, &order, Outcome::Reversed, now),
        SlipKind::Refund => slip::outcome_slip(
            profile,
            &order,
            Outcome::Refunded(Kopecks::new(50_000).unwrap_or_default()),
            now,
        ),
    })
}

/// A configured printer by name, or else a bundled profile by name.
fn resolve_printer(
    config_path: &Path,
    name: &str,
) -> Result<(PrinterProfile, Option<PortSettings>, String), String> {
    match Config::load(config_path) {
        Ok(config) => match config.devices.printer(name) {
            Some(p) => Ok((
                p.profile.clone(),
                Some(p.port.clone()),
                config.devices.shop_name.clone(),
            )),
            None => profile::printer(name, config.devices.profiles_dir.as_deref())
                .map(|p| (p, None, config.devices.shop_name.clone()))
                .map_err(|e| format!("no printer {name:?} in {} and {e}", config.file.display())),
        },
        Err(config_error) => profile::printer(name, None)
            .map(|p| (p, None, "Магазин".to_string()))
            .map_err(|e| format!("{e} (and the config did not load: {config_error})")),
    }
}

pub fn render(
    config_path: &Path,
    name: &str,
    kind: SlipKind,
    out: Option<PathBuf>,
    png: Option<PathBuf>,
) -> Result<(), String> {
    let (profile, _, shop) = resolve_printer(config_path, name)?;
    let bytes = sample_slip(&profile, &shop, kind)?;
    if let Some(out) = out {
        std::fs::write(&out, &bytes).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
        println!(
            "{}: {} bytes for {} ({})",
            out.display(),
            bytes.len(),
            profile.model,
            profile.name
        );
    }
    if let Some(png) = png {
        let picture = chasti::devices::render::render(&profile, &bytes)?;
        picture
            .save(&png)
            .map_err(|e| format!("cannot write {}: {e}", png.display()))?;
        println!(
            "{}: {}x{} dots, as {} prints it",
            png.display(),
            picture.width(),
            picture.height(),
            profile.model
        );
    }
    Ok(())
}

pub async fn print_test(config_path: &Path, name: &str) -> Result<(), String> {
    let (profile, port, shop) = resolve_printer(config_path, name)?;
    let port = port.ok_or_else(|| format!("{name:?} is a profile, not a configured printer: add a [[printer]] with name = {name:?} and its port to the config"))?;
    let bytes = sample_slip(&profile, &shop, SlipKind::Payment)?;
    let printer = Printer::spawn(port.clone(), profile);
    println!(
        "printing a test slip on {} ({} bytes)…",
        port.path.display(),
        bytes.len()
    );
    match tokio::time::timeout(
        std::time::Duration::from_secs(30),
        printer.print("test slip", bytes),
    )
    .await
    {
        Ok(Ok(())) => {
            println!("printed");
            Ok(())
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the printer took longer than 30 s".into()),
    }
}

pub async fn doctor(path: &Path) -> Result<(), String> {
    use chasti::doctor::{self, Verdict};
    let config = match Config::load(path) {
        Ok(c) => {
            println!("ok    config       {}", c.file.display());
            c
        }
        Err(e) => {
            println!("FAIL  config       {e}");
            return Err("the config must be fixed first".into());
        }
    };
    let now = chrono::Utc::now();
    // With the sandbox, doctor starts it for the checks when the daemon is not running.
    let _sandbox = match config.gateway.environment {
        Environment::Sandbox if std::net::TcpListener::bind(config.sandbox.listen).is_ok() => {
            Some(embedded_sandbox(&config).await?)
        }
        _ => None,
    };
    let mut checks = doctor::certificates(now);
    checks.extend(doctor::gateway(&config, now).await);
    checks.extend(doctor::devices(&config));
    checks.extend(doctor::callback(&config));
    checks.push(doctor::clock(&config, now).await);
    let mut failed = 0;
    for c in &checks {
        let mark = match c.verdict {
            Verdict::Ok => "ok  ",
            Verdict::Warn => "WARN",
            Verdict::Fail => {
                failed += 1;
                "FAIL"
            }
        };
        println!("{mark}  {:<12} {}", c.name, c.detail);
    }
    if failed > 0 {
        Err(format!("{failed} check(s) failed"))
    } else {
        Ok(())
    }
}

/// Where the daemon is and who the command line is.
#[derive(clap::Args, Debug)]
pub struct ApiArgs {
    /// The daemon's API (default: http://api.listen from the config).
    #[arg(long, env = "CHASTI_API")]
    api_url: Option<String>,
    /// A token (default: the config's first token of the role the command needs).
    #[arg(long, env = "CHASTI_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

pub fn api_client(
    config_path: &Path,
    args: &ApiArgs,
    role: chasti::config::Role,
) -> Result<chasti::client::ApiClient, String> {
    let config = Config::load(config_path).ok();
    let url = args
        .api_url
        .clone()
        .or_else(|| config.as_ref().map(|c| format!("http://{}", c.api.listen)))
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let token = match &args.token {
        Some(t) => t.clone(),
        None => config
            .as_ref()
            .and_then(|c| c.api.tokens.iter().find(|t| t.role == role))
            .map(|t| t.token.expose().to_string())
            .ok_or_else(|| format!("нужен токен: --token, CHASTI_TOKEN или [[api.tokens]] с ролью {role:?} в конфигурации"))?,
    };
    chasti::client::ApiClient::new(url, token)
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
    }
}

/// The embedded sandbox, set up to accept the config's own credentials.
async fn embedded_sandbox(config: &Config) -> Result<Sandbox, String> {
    let (users, tokens) = match &config.gateway.credentials {
        Credentials::Password {
            user_name,
            password,
        } => (vec![(user_name.clone(), password.clone())], Vec::new()),
        Credentials::Token(token) => (Vec::new(), vec![token.clone()]),
    };
    let settings = SandboxSettings {
        users,
        tokens,
        callbacks: CallbackSettings {
            url: config.sandbox.callback_url.clone(),
            key: config.sandbox.callback_key.clone(),
            method: config.sandbox.callback_method,
            ..CallbackSettings::default()
        },
        tls: None,
    };
    Sandbox::start(config.sandbox.listen, settings).await
}

pub async fn serve(path: &Path) -> Result<(), String> {
    let config = Config::load(path).map_err(|e| e.to_string())?;
    let _sandbox = match config.gateway.environment {
        Environment::Sandbox => Some(embedded_sandbox(&config).await?),
        _ => None,
    };
    if let Some(dir) = config.store.path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let store = Store::open(&config.store.path).map_err(|e| e.to_string())?;
    let client = GatewayClient::new(config.gateway.client_settings()).map_err(|e| e.to_string())?;
    let engine = Engine::new(
        store,
        client,
        engine_settings(&config),
        Arc::new(SystemClock),
    );

    let auth = CallbackAuth {
        hmac_key: config.callback.key.clone(),
        public_key: config.callback.public_key.clone(),
        allow: config.callback.allow.clone(),
        trusted_proxies: config.callback.trusted_proxies.clone(),
    };
    let listener = tokio::net::TcpListener::bind(config.callback.listen)
        .await
        .map_err(|e| {
            format!(
                "cannot listen for callbacks on {}: {e}",
                config.callback.listen
            )
        })?;
    let _callbacks = chasti::serve::spawn(
        listener,
        chasti::http::callback::router(engine.clone(), &config.callback.path, auth),
        None,
    );
    tracing::info!(
        api = %format!("http://{}/api/v1", config.api.listen),
        gateway = %config.gateway.base_url,
        callbacks = %format!("http://{}{}", config.callback.listen, config.callback.path),
        store = %config.store.path.display(),
        "chasti serving"
    );
    let devices = start_devices(&config);
    let _devices = chasti::devices::attach(&engine, devices.clone());
    let api = chasti::http::api::Api {
        engine: engine.clone(),
        tokens: Arc::new(config.api.tokens.clone()),
        devices: Some(devices),
    };
    let api_listener = tokio::net::TcpListener::bind(config.api.listen)
        .await
        .map_err(|e| {
            format!(
                "cannot listen for the till API on {}: {e}",
                config.api.listen
            )
        })?;
    let _api = chasti::serve::spawn(api_listener, chasti::http::api::router(api), None);
    if config.api.tokens.is_empty() {
        tracing::warn!(
            "no [[api.tokens]] configured: every till API call will be refused with 401"
        );
    }
    let worker = tokio::spawn(engine.run());
    wait_for_shutdown().await;
    worker.abort();
    tracing::info!("chasti stopped");
    Ok(())
}

/// The first configured printer and display, each on its own thread.
fn start_devices(config: &Config) -> chasti::devices::Devices {
    let printer = config.devices.printers.first().map(|p| {
        tracing::info!(printer = %p.name, port = %p.port.path.display(), profile = %p.profile.name, "receipt printer");
        Printer::spawn(p.port.clone(), p.profile.clone())
    });
    let display = config.devices.displays.first().map(|d| {
        tracing::info!(display = %d.name, port = %d.port.path.display(), profile = %d.profile.name, "customer display");
        chasti::devices::serial::Display::spawn(d.port.clone(), d.profile.clone())
    });
    chasti::devices::Devices::new(config.devices.shop_name.clone(), printer, display)
}

/// Ctrl-C, or SIGTERM from systemd.
async fn wait_for_shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = wait_for_ctrl_c() => {}
            }
            return;
        }
    }
    wait_for_ctrl_c().await;
}

async fn wait_for_ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        // No signal handling here (unusual): park instead of exiting at once.
        std::future::pending::<()>().await;
    }
}
