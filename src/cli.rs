//! What the subcommands do. Each returns a message for the operator on failure.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use chasti::config::{CallbackMethod, Config, DepositMode, Environment, ENV_CALLBACK_KEY};
use chasti::devices::profile::{self, PrinterProfile};
use chasti::devices::serial::{PortSettings, Printer};
use chasti::devices::slip::{self, Outcome, SlipOrder};
use chasti::gateway::{ClientSettings, Credentials, GatewayClient};
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

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Walk through a sale, its payment, the deposit and a reversal, then exit.
    #[arg(long)]
    walkthrough: bool,
    /// Free ports instead of 8907 (sandbox), 8080 (till API) and 8081 (callbacks).
    #[arg(long)]
    any_ports: bool,
    /// Where the demo keeps its order store and the printed slips (.bin and .png).
    #[arg(long, default_value = "chasti-demo")]
    dir: PathBuf,
}

const DEMO_CASHIER: &str = "demo-cashier-token-0001";
const DEMO_MANAGER: &str = "demo-manager-token-0001";

pub async fn demo(args: DemoArgs) -> Result<(), String> {
    let port = |p: u16| if args.any_ports { 0 } else { p };
    let bind = |p: u16| async move {
        tokio::net::TcpListener::bind(("127.0.0.1", p))
            .await
            .map_err(|e| format!("cannot listen on 127.0.0.1:{p}: {e} (is another chasti running? try --any-ports)"))
    };
    let sandbox = Sandbox::start_on(bind(port(8907)).await?, SandboxSettings::default())?;
    let callback_listener = bind(port(8081)).await?;
    let api_listener = bind(port(8080)).await?;
    let callback_addr = callback_listener.local_addr().map_err(|e| e.to_string())?;
    let api_addr = api_listener.local_addr().map_err(|e| e.to_string())?;
    let key = Secret::new("demo-callback-key");
    sandbox.set_callback_url(Url::parse(&format!("http://{callback_addr}/chasti/callback")).ok());
    sandbox.set_callback_key(Some(key.clone()));
    sandbox.set_callback_retry_delays(vec![
        std::time::Duration::from_secs(2),
        std::time::Duration::from_secs(5),
    ]);

    // A fresh store each run: the in-memory sandbox does not remember earlier demos' orders.
    let store_dir = args.dir.join("orders");
    let _ = std::fs::remove_dir_all(&store_dir);
    let slips = args.dir.join("slips");
    let _ = std::fs::remove_dir_all(&slips);
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| format!("cannot create {}: {e}", args.dir.display()))?;
    let store = Store::open(&store_dir).map_err(|e| e.to_string())?;
    let client = GatewayClient::new(ClientSettings::new(
        sandbox.gateway_url(),
        Credentials::Password {
            user_name: DEFAULT_USER.into(),
            password: Secret::new(DEFAULT_PASSWORD),
        },
        "https://shop.example/chasti/paid",
    ))
    .map_err(|e| e.to_string())?;
    let settings = EngineSettings {
        poll_first: std::time::Duration::from_secs(2),
        poll_max: std::time::Duration::from_secs(10),
        payment_page_template: Some(format!("{}sandbox/pay/{{orderId}}", sandbox.url())),
        ..EngineSettings::default()
    };
    let engine = Engine::new(store, client, settings, Arc::new(SystemClock));
    let auth = CallbackAuth {
        hmac_key: Some(key),
        ..Default::default()
    };
    let _callbacks = chasti::serve::spawn(
        callback_listener,
        chasti::http::callback::router(engine.clone(), "/chasti/callback", auth),
        None,
    );
    let printer_profile = profile::printer("epson-tm-t20iii", None)?;
    let devices = chasti::devices::Devices::new(
        "Демо-магазин «Частями»",
        Some(Printer::virtual_to(slips.clone(), printer_profile)),
        None,
    );
    let _devices = chasti::devices::attach(&engine, devices.clone());
    let api = chasti::http::api::Api {
        engine: engine.clone(),
        tokens: Arc::new(vec![
            chasti::config::ApiToken {
                name: "demo-till".into(),
                role: chasti::config::Role::Cashier,
                token: Secret::new(DEMO_CASHIER),
            },
            chasti::config::ApiToken {
                name: "demo-manager".into(),
                role: chasti::config::Role::Manager,
                token: Secret::new(DEMO_MANAGER),
            },
        ]),
        devices: Some(devices),
    };
    let _api = chasti::serve::spawn(api_listener, chasti::http::api::router(api), None);
    let worker = tokio::spawn(engine.clone().run());
    for _ in 0..100 {
        if engine.is_ready() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let api_url = format!("http://{api_addr}");
    println!("chasti demo: everything on this machine, nothing leaves it");
    println!("  till API        {api_url}/api/v1   (cashier token {DEMO_CASHIER}, manager token {DEMO_MANAGER})");
    println!("  customer screen {api_url}/screen   (for a second monitor)");
    println!("  manager page    {api_url}/manager  (manager token above)");
    println!("  sandbox bank    {}", sandbox.gateway_url());
    println!("  bank's ledger   {}sandbox/api/ledger", sandbox.url());
    println!(
        "  printed slips   {}/ (ESC/POS bytes and PNG pictures)",
        slips.display()
    );
    println!();
    println!("Sell from another terminal:");
    println!("  CHASTI_API={api_url} CHASTI_TOKEN={DEMO_CASHIER} cargo run --release -- sale 1499");
    println!("  curl -s -H 'Authorization: Bearer {DEMO_CASHIER}' -H 'Content-Type: application/json' \\");
    println!(
        "       -d '{{\"amount\":\"1499\",\"idempotency_key\":\"demo-1\"}}' {api_url}/api/v1/sales"
    );
    println!("Open the payment link and pay with any phone number and the code 1111.");

    let result = if args.walkthrough {
        walkthrough(&api_url, &sandbox, &slips).await
    } else {
        println!();
        println!("Serving until Ctrl-C.");
        wait_for_shutdown().await;
        Ok(())
    };
    worker.abort();
    result
}

async fn walkthrough(api_url: &str, sandbox: &Sandbox, slips: &Path) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(chasti::gateway::tls::client_config(&Default::default())?)
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let call = |method: &'static str,
                path: String,
                token: &'static str,
                body: Option<serde_json::Value>| {
        let http = http.clone();
        let url = format!("{api_url}{path}");
        async move {
            let mut req = if method == "GET" {
                http.get(url)
            } else {
                http.post(url)
            };
            req = req.bearer_auth(token);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let resp = req.send().await.map_err(|e| e.to_string())?;
            let status = resp.status();
            let body: serde_json::Value = resp.json().await.map_err(|e| e.to_string())?;
            if status.is_success() {
                Ok(body)
            } else {
                Err(format!("HTTP {status}: {}", body["message"]))
            }
        }
    };
    let state_of = |o: &serde_json::Value| o["state"]["name"].as_str().unwrap_or("").to_string();
    println!();
    println!("Walkthrough:");
    let sale = call("POST", "/api/v1/sales".into(), DEMO_CASHIER, Some(serde_json::json!({
        "amount": "1 499,50", "mode": "two-stage", "description": "Демо: кофемашина", "idempotency_key": uuid::Uuid::new_v4().to_string()
    }))).await?;
    let id = sale["order"]["id"].as_str().unwrap_or_default().to_string();
    println!(
        "1. sale {} for {} (two-stage), state «{}»",
        sale["order"]["order_number"].as_str().unwrap_or("?"),
        sale["order"]["amount_text"].as_str().unwrap_or("?"),
        sale["order"]["state_text"].as_str().unwrap_or("?")
    );
    println!(
        "   payment link {}",
        sale["payment_url"].as_str().unwrap_or("?")
    );
    println!(
        "   printer: {}",
        sale["devices"]["printer"].as_str().unwrap_or("?")
    );
    let gateway_id = sale["order"]["gateway_order_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    sandbox.pay(&gateway_id).map_err(|e| e.message)?;
    println!("2. the customer pays in installments on the sandbox's page");
    let mut order = serde_json::Value::Null;
    for _ in 0..100 {
        order = call("GET", format!("/api/v1/orders/{id}"), DEMO_CASHIER, None).await?;
        if state_of(&order) == "paid" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    if state_of(&order) != "paid" {
        return Err(format!(
            "the order did not become paid: {}",
            state_of(&order)
        ));
    }
    for e in order["events"].as_array().into_iter().flatten() {
        println!(
            "   {} → {}: {}",
            e["from"].as_str().unwrap_or(""),
            e["to"].as_str().unwrap_or(""),
            e["what"].as_str().unwrap_or("")
        );
    }
    let ledger = sandbox.ledger();
    let deposits = ledger
        .operations
        .iter()
        .filter(|o| o.operation == "deposit.do" && o.ok())
        .count();
    println!(
        "3. the bank's ledger shows {deposits} deposit of {}",
        order["amount_text"].as_str().unwrap_or("?")
    );
    let reversed = call(
        "POST",
        format!("/api/v1/orders/{id}/reverse"),
        DEMO_MANAGER,
        None,
    )
    .await?;
    println!(
        "4. the manager reverses it the same day: «{}»",
        reversed["state_text"].as_str().unwrap_or("?")
    );
    if state_of(&reversed) != "reversed" {
        return Err("the reversal did not go through".into());
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mut files: Vec<String> = std::fs::read_dir(slips)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    println!(
        "5. slips printed to {}: {}",
        slips.display(),
        files.join(", ")
    );
    if deposits != 1 {
        return Err(format!(
            "expected one deposit at the bank, found {deposits}"
        ));
    }
    println!("Walkthrough done.");
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
    checks.push(doctor::api_tokens(&config));
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
