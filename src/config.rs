//! The one config file (TOML). Unknown keys are errors: a typo in a payment daemon's config
//! must stop the start, not pass silently. Every error names the file, the key, what was
//! found and what is allowed. Secrets may come from the environment instead of the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::gateway::tls::TrustSettings;
use crate::gateway::{is_loopback, ClientSettings, Credentials};
use crate::secret::Secret;

/// The bank's legacy REST hosts (what the «Плати частями» offline guide names).
pub const TEST_BASE_URL: &str = "https://3dsec.sberbank.ru/payment/rest/";
pub const PRODUCTION_BASE_URL: &str = "https://securepayments.sberbank.ru/payment/rest/";

/// Environment variables that may carry secrets instead of the file.
pub const ENV_GATEWAY_PASSWORD: &str = "CHASTI_GATEWAY_PASSWORD";
pub const ENV_GATEWAY_TOKEN: &str = "CHASTI_GATEWAY_TOKEN";
pub const ENV_CALLBACK_KEY: &str = "CHASTI_CALLBACK_KEY";

/// A config that cannot be used. Displayed as `FILE: KEY: found …; allowed: …`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {key}: {problem}")]
pub struct ConfigError {
    pub file: String,
    pub key: String,
    pub problem: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// The embedded sandbox gateway on this machine (the default: works with no bank account).
    Sandbox,
    /// The bank's test host.
    Test,
    /// The bank's production host.
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CallbackMethod {
    /// GET with query parameters, the bank's default.
    #[default]
    Get,
    /// POST with a form body, configurable at the bank.
    Post,
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    gateway: RawGateway,
    #[serde(default)]
    sandbox: RawSandbox,
    #[serde(default)]
    store: RawStore,
    #[serde(default)]
    orders: RawOrders,
    #[serde(default)]
    callback: RawCallback,
    #[serde(default)]
    api: RawApi,
    #[serde(default)]
    devices: RawDevices,
    #[serde(default)]
    printer: Vec<RawPort>,
    #[serde(default)]
    display: Vec<RawPort>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawApi {
    listen: String,
    tokens: Vec<RawToken>,
}

impl Default for RawApi {
    fn default() -> Self {
        RawApi {
            listen: "127.0.0.1:8080".into(),
            tokens: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    name: String,
    role: Role,
    token: Option<Secret>,
    /// The environment variable that holds the token instead.
    token_env: Option<String>,
}

/// Who may do what on the till API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sales, order lookups, reprints.
    Cashier,
    /// Everything a cashier may, plus reversals and refunds.
    Manager,
}

#[derive(Debug, Clone)]
pub struct ApiToken {
    pub name: String,
    pub role: Role,
    pub token: Secret,
}

#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub listen: SocketAddr,
    pub tokens: Vec<ApiToken>,
}

fn check_api(
    a: RawApi,
    env: &dyn Fn(&str) -> Option<String>,
    fail: &Fail,
) -> Result<ApiConfig, ConfigError> {
    let listen: SocketAddr = a.listen.parse().map_err(|_| {
        fail(
            "api.listen",
            format!(
                "found {:?}; allowed: an address and port such as 127.0.0.1:8080",
                a.listen
            ),
        )
    })?;
    let mut tokens = Vec::new();
    for (i, t) in a.tokens.into_iter().enumerate() {
        let key = format!("api.tokens[{i}]");
        let token = match (&t.token, &t.token_env) {
            (Some(_), Some(_)) => {
                return Err(fail(&key, "found both token and token_env; allowed: one of them".into()))
            }
            (Some(token), None) => token.clone(),
            (None, Some(var)) => Secret::new(env(var).ok_or_else(|| {
                fail(&format!("{key}.token_env"), format!("found {var:?}, which is not set in the environment; allowed: the name of a set variable"))
            })?),
            (None, None) => return Err(fail(&key, "found no token; allowed: token or token_env".into())),
        };
        if token.expose().len() < 16 {
            return Err(fail(&format!("{key}.token"), "found a token shorter than 16 characters; allowed: 16 or more (guessable tokens open the till)".into()));
        }
        tokens.push(ApiToken {
            name: t.name,
            role: t.role,
            token,
        });
    }
    Ok(ApiConfig { listen, tokens })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDevices {
    shop_name: String,
    profiles_dir: Option<PathBuf>,
}

impl Default for RawDevices {
    fn default() -> Self {
        RawDevices {
            shop_name: "Магазин".into(),
            profiles_dir: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPort {
    name: String,
    profile: String,
    port: PathBuf,
    #[serde(default = "default_baud")]
    baud: u32,
    #[serde(default)]
    flow_control: crate::devices::serial::Flow,
}

fn default_baud() -> u32 {
    9600
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawStore {
    path: PathBuf,
    prefix: String,
    till: String,
}

impl Default for RawStore {
    fn default() -> Self {
        RawStore {
            path: PathBuf::from("chasti-data/orders"),
            prefix: "S1".into(),
            till: "1".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DepositMode {
    /// Capture a confirmed hold at once.
    #[default]
    Auto,
    /// Leave holds for a manager to deposit.
    Manual,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawOrders {
    deposit: DepositMode,
    poll_first_secs: u64,
    poll_max_secs: u64,
    expiry_grace_secs: u64,
    hold_max_hours: u64,
    payment_page_template: Option<String>,
}

impl Default for RawOrders {
    fn default() -> Self {
        RawOrders {
            deposit: DepositMode::Auto,
            poll_first_secs: 3,
            poll_max_secs: 60,
            expiry_grace_secs: 120,
            hold_max_hours: 144,
            payment_page_template: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawCallback {
    listen: String,
    path: String,
    key: Option<Secret>,
    public_key_file: Option<PathBuf>,
    allow: Vec<String>,
    trusted_proxies: Vec<String>,
}

impl Default for RawCallback {
    fn default() -> Self {
        RawCallback {
            listen: "127.0.0.1:8081".into(),
            path: "/chasti/callback".into(),
            key: None,
            public_key_file: None,
            allow: Vec::new(),
            trusted_proxies: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGateway {
    environment: Environment,
    base_url: Option<String>,
    user_name: Option<String>,
    password: Option<Secret>,
    token: Option<Secret>,
    return_url: String,
    fail_url: Option<String>,
    #[serde(default = "default_lifetime")]
    order_lifetime_secs: u64,
    #[serde(default = "default_timeout")]
    request_timeout_secs: u64,
    #[serde(default)]
    extra_ca_files: Vec<PathBuf>,
    #[serde(default)]
    extra_ca_dirs: Vec<PathBuf>,
    #[serde(default)]
    use_os_roots: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSandbox {
    #[serde(default = "default_sandbox_listen")]
    listen: String,
    callback_url: Option<String>,
    callback_key: Option<Secret>,
    #[serde(default)]
    callback_method: CallbackMethod,
}

impl Default for RawSandbox {
    fn default() -> Self {
        RawSandbox {
            listen: default_sandbox_listen(),
            callback_url: None,
            callback_key: None,
            callback_method: CallbackMethod::Get,
        }
    }
}

fn default_lifetime() -> u64 {
    1200
}
fn default_timeout() -> u64 {
    30
}
fn default_sandbox_listen() -> String {
    "127.0.0.1:8907".to_string()
}

pub const LIFETIME_RANGE: std::ops::RangeInclusive<u64> = 60..=86_400;
pub const TIMEOUT_RANGE: std::ops::RangeInclusive<u64> = 1..=120;

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub gateway: GatewayConfig,
    pub sandbox: SandboxConfig,
    pub store: StoreConfig,
    pub orders: OrdersConfig,
    pub callback: CallbackConfig,
    pub devices: DevicesConfig,
    pub api: ApiConfig,
}

#[derive(Debug, Clone)]
pub struct DevicesConfig {
    pub shop_name: String,
    pub profiles_dir: Option<PathBuf>,
    pub printers: Vec<PrinterConfig>,
    pub displays: Vec<DisplayConfig>,
}

#[derive(Debug, Clone)]
pub struct PrinterConfig {
    pub name: String,
    pub profile: crate::devices::profile::PrinterProfile,
    pub port: crate::devices::serial::PortSettings,
}

#[derive(Debug, Clone)]
pub struct DisplayConfig {
    pub name: String,
    pub profile: crate::devices::profile::DisplayProfile,
    pub port: crate::devices::serial::PortSettings,
}

impl DevicesConfig {
    pub fn printer(&self, name: &str) -> Option<&PrinterConfig> {
        self.printers.iter().find(|p| p.name == name)
    }
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub path: PathBuf,
    pub prefix: String,
    pub till: String,
}

#[derive(Debug, Clone)]
pub struct OrdersConfig {
    pub deposit: DepositMode,
    pub poll_first: Duration,
    pub poll_max: Duration,
    pub expiry_grace: Duration,
    pub hold_max: Duration,
    pub payment_page_template: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CallbackConfig {
    pub listen: SocketAddr,
    /// Starts with `/`.
    pub path: String,
    pub key: Option<Secret>,
    pub public_key: Option<crate::gateway::checksum::CallbackPublicKey>,
    /// Source networks allowed to call back; empty = any.
    pub allow: Vec<ipnet::IpNet>,
    /// Reverse proxies whose X-Forwarded-For is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub environment: Environment,
    /// Where `<method>.do` lives. For the sandbox: its `listen` address.
    pub base_url: Url,
    pub credentials: Credentials,
    pub return_url: Url,
    pub fail_url: Option<Url>,
    pub order_lifetime: Duration,
    pub request_timeout: Duration,
    pub trust: TrustSettings,
}

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub listen: SocketAddr,
    pub callback_url: Option<Url>,
    pub callback_key: Option<Secret>,
    pub callback_method: CallbackMethod,
}

impl GatewayConfig {
    pub fn client_settings(&self) -> ClientSettings {
        let mut s = ClientSettings::new(
            self.base_url.clone(),
            self.credentials.clone(),
            self.return_url.as_str(),
        );
        s.fail_url = self.fail_url.as_ref().map(|u| u.to_string());
        s.order_lifetime = self.order_lifetime;
        s.request_timeout = self.request_timeout;
        s.trust = self.trust.clone();
        s
    }
}

/// Where the config is looked for when neither `--config` nor `CHASTI_CONFIG` names it.
pub fn default_path() -> PathBuf {
    let system = PathBuf::from("/etc/chasti/chasti.toml");
    if system.is_file() {
        system
    } else {
        PathBuf::from("config/chasti.toml")
    }
}

impl Config {
    /// Reads and checks the file; secrets from the process environment override it.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with_env(path, |name| std::env::var(name).ok())
    }

    pub fn load_with_env(
        path: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            key: "(file)".into(),
            problem: format!("cannot read it: {e}; pass the path with --config or CHASTI_CONFIG"),
        })?;
        Config::parse(path, &text, env)
    }

    pub fn parse(
        path: &Path,
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let fail = |key: &str, problem: String| ConfigError {
            file: file.clone(),
            key: key.to_string(),
            problem,
        };
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| fail("(syntax)", one_line(&e.to_string())))?;
        let raw: RawConfig =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let key = e.path().to_string();
                let key = if key == "." {
                    "(top level)".to_string()
                } else {
                    key
                };
                fail(&key, explain_serde(&e.inner().to_string()))
            })?;
        let gateway = check_gateway(raw.gateway, &raw.sandbox, &env, &fail)?;
        let callback = check_callback(raw.callback, &env, &fail)?;
        let mut sandbox = check_sandbox(raw.sandbox, &env, &fail)?;
        // The embedded sandbox calls the daemon's own callback route unless told otherwise.
        if sandbox.callback_url.is_none() {
            sandbox.callback_url =
                Url::parse(&format!("http://{}{}", callback.listen, callback.path)).ok();
        }
        if sandbox.callback_key.is_none() {
            sandbox.callback_key = callback.key.clone();
        }
        let store = check_store(raw.store, &fail)?;
        let orders = check_orders(raw.orders, &gateway, &fail)?;
        let devices = check_devices(raw.devices, raw.printer, raw.display, &fail)?;
        let api = check_api(raw.api, &env, &fail)?;
        Ok(Config {
            api,
            devices,
            file: path.to_path_buf(),
            gateway,
            sandbox,
            store,
            orders,
            callback,
        })
    }
}

type Fail<'a> = dyn Fn(&str, String) -> ConfigError + 'a;

fn check_gateway(
    g: RawGateway,
    sandbox: &RawSandbox,
    env: &dyn Fn(&str) -> Option<String>,
    fail: &Fail,
) -> Result<GatewayConfig, ConfigError> {
    let base_url = match (&g.base_url, g.environment) {
        (Some(text), _) => {
            let url = Url::parse(text).map_err(|e| {
                fail(
                    "gateway.base_url",
                    format!("found {text:?} ({e}); allowed: an absolute https:// URL, http:// only to 127.0.0.1 or localhost"),
                )
            })?;
            let secure = url.scheme() == "https" || (url.scheme() == "http" && is_loopback(&url));
            if !secure {
                return Err(fail(
                    "gateway.base_url",
                    format!("found {text:?}; allowed: https:// (http:// only to 127.0.0.1 or localhost, for the sandbox)"),
                ));
            }
            url
        }
        (None, Environment::Test) => Url::parse(TEST_BASE_URL).expect("constant URL"),
        (None, Environment::Production) => Url::parse(PRODUCTION_BASE_URL).expect("constant URL"),
        (None, Environment::Sandbox) => {
            let listen: SocketAddr = sandbox.listen.parse().map_err(|_| {
                fail(
                    "sandbox.listen",
                    format!(
                        "found {:?}; allowed: an address and port such as 127.0.0.1:8907",
                        sandbox.listen
                    ),
                )
            })?;
            Url::parse(&format!("http://{listen}/payment/rest/"))
                .expect("built from a socket address")
        }
    };

    let password = env(crate::config::ENV_GATEWAY_PASSWORD)
        .map(Secret::new)
        .or(g.password);
    let token = env(crate::config::ENV_GATEWAY_TOKEN)
        .map(Secret::new)
        .or(g.token);
    let credentials = match (g.user_name, password, token) {
        (_, _, Some(token)) if !token.is_empty() => Credentials::Token(token),
        (Some(user_name), Some(password), None) if !user_name.is_empty() && !password.is_empty() => {
            Credentials::Password {
                user_name,
                password,
            }
        }
        (Some(_), None, None) | (Some(_), Some(_), None) => {
            return Err(fail(
                "gateway.password",
                format!("found nothing; allowed: the API password in the file or in {ENV_GATEWAY_PASSWORD}"),
            ))
        }
        _ => {
            return Err(fail(
                "gateway.user_name",
                format!("found no credentials; allowed: user_name + password (or {ENV_GATEWAY_PASSWORD}), or token (or {ENV_GATEWAY_TOKEN})"),
            ))
        }
    };

    let return_url = absolute_url("gateway.return_url", &g.return_url, fail)?;
    let fail_url = g
        .fail_url
        .as_deref()
        .map(|u| absolute_url("gateway.fail_url", u, fail))
        .transpose()?;
    if !LIFETIME_RANGE.contains(&g.order_lifetime_secs) {
        return Err(fail(
            "gateway.order_lifetime_secs",
            format!(
                "found {}; allowed: {} to {} seconds (the bank's default is 1200)",
                g.order_lifetime_secs,
                LIFETIME_RANGE.start(),
                LIFETIME_RANGE.end()
            ),
        ));
    }
    if !TIMEOUT_RANGE.contains(&g.request_timeout_secs) {
        return Err(fail(
            "gateway.request_timeout_secs",
            format!(
                "found {}; allowed: {} to {} seconds",
                g.request_timeout_secs,
                TIMEOUT_RANGE.start(),
                TIMEOUT_RANGE.end()
            ),
        ));
    }
    for (i, file) in g.extra_ca_files.iter().enumerate() {
        if !file.is_file() {
            return Err(fail(
                &format!("gateway.extra_ca_files[{i}]"),
                format!("found {}, which is not a readable file; allowed: paths of PEM certificate files", file.display()),
            ));
        }
    }
    for (i, dir) in g.extra_ca_dirs.iter().enumerate() {
        if !dir.is_dir() {
            return Err(fail(
                &format!("gateway.extra_ca_dirs[{i}]"),
                format!(
                    "found {}, which is not a folder; allowed: folders holding *.pem / *.crt files",
                    dir.display()
                ),
            ));
        }
    }
    Ok(GatewayConfig {
        environment: g.environment,
        base_url,
        credentials,
        return_url,
        fail_url,
        order_lifetime: Duration::from_secs(g.order_lifetime_secs),
        request_timeout: Duration::from_secs(g.request_timeout_secs),
        trust: TrustSettings {
            extra_ca_files: g.extra_ca_files,
            extra_ca_dirs: g.extra_ca_dirs,
            use_os_roots: g.use_os_roots,
        },
    })
}

fn check_sandbox(
    s: RawSandbox,
    env: &dyn Fn(&str) -> Option<String>,
    fail: &Fail,
) -> Result<SandboxConfig, ConfigError> {
    let listen: SocketAddr = s.listen.parse().map_err(|_| {
        fail(
            "sandbox.listen",
            format!(
                "found {:?}; allowed: an address and port such as 127.0.0.1:8907",
                s.listen
            ),
        )
    })?;
    let callback_url = s
        .callback_url
        .as_deref()
        .map(|u| absolute_url("sandbox.callback_url", u, fail))
        .transpose()?;
    let callback_key = env(ENV_CALLBACK_KEY).map(Secret::new).or(s.callback_key);
    Ok(SandboxConfig {
        listen,
        callback_url,
        callback_key,
        callback_method: s.callback_method,
    })
}

fn plain_id(key: &str, value: &str, max: usize, fail: &Fail) -> Result<String, ConfigError> {
    let ok = (1..=max).contains(&value.len()) && value.chars().all(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(value.to_string())
    } else {
        Err(fail(
            key,
            format!("found {value:?}; allowed: 1 to {max} Latin letters or digits (it goes into every order number)"),
        ))
    }
}

fn check_store(s: RawStore, fail: &Fail) -> Result<StoreConfig, ConfigError> {
    Ok(StoreConfig {
        prefix: plain_id("store.prefix", &s.prefix, 8, fail)?,
        till: plain_id("store.till", &s.till, 4, fail)?,
        path: s.path,
    })
}

fn seconds_in(
    key: &str,
    value: u64,
    range: std::ops::RangeInclusive<u64>,
    fail: &Fail,
) -> Result<Duration, ConfigError> {
    if range.contains(&value) {
        Ok(Duration::from_secs(value))
    } else {
        Err(fail(
            key,
            format!(
                "found {value}; allowed: {} to {}",
                range.start(),
                range.end()
            ),
        ))
    }
}

fn check_orders(
    o: RawOrders,
    gateway: &GatewayConfig,
    fail: &Fail,
) -> Result<OrdersConfig, ConfigError> {
    let poll_first = seconds_in("orders.poll_first_secs", o.poll_first_secs, 1..=300, fail)?;
    let poll_max = seconds_in("orders.poll_max_secs", o.poll_max_secs, 1..=3600, fail)?;
    if poll_max < poll_first {
        return Err(fail(
            "orders.poll_max_secs",
            format!(
                "found {}; allowed: at least orders.poll_first_secs ({})",
                o.poll_max_secs, o.poll_first_secs
            ),
        ));
    }
    let expiry_grace = seconds_in(
        "orders.expiry_grace_secs",
        o.expiry_grace_secs,
        0..=86_400,
        fail,
    )?;
    let hold_max =
        seconds_in("orders.hold_max_hours", o.hold_max_hours, 1..=168, fail).map(|d| d * 3600)?;
    let template = match (o.payment_page_template, gateway.environment) {
        (Some(t), _) if !t.contains("{orderId}") => {
            return Err(fail(
                "orders.payment_page_template",
                format!("found {t:?}; allowed: a URL containing {{orderId}}"),
            ))
        }
        (Some(t), _) => Some(t),
        // The sandbox's payment page is known: /sandbox/pay/{orderId} beside the gateway.
        (None, Environment::Sandbox) => gateway
            .base_url
            .join("/sandbox/pay/")
            .ok()
            .map(|u| format!("{u}{{orderId}}")),
        (None, _) => None,
    };
    Ok(OrdersConfig {
        deposit: o.deposit,
        poll_first,
        poll_max,
        expiry_grace,
        hold_max,
        payment_page_template: template,
    })
}

const BAUD_RATES: [u32; 8] = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200];

fn check_port(
    key: &str,
    raw: &RawPort,
    fail: &Fail,
) -> Result<crate::devices::serial::PortSettings, ConfigError> {
    if !BAUD_RATES.contains(&raw.baud) {
        return Err(fail(
            &format!("{key}.baud"),
            format!("found {}; allowed: {BAUD_RATES:?}", raw.baud),
        ));
    }
    Ok(crate::devices::serial::PortSettings {
        path: raw.port.clone(),
        baud: raw.baud,
        flow: raw.flow_control,
        retry: Duration::from_secs(2),
    })
}

fn check_devices(
    d: RawDevices,
    printers: Vec<RawPort>,
    displays: Vec<RawPort>,
    fail: &Fail,
) -> Result<DevicesConfig, ConfigError> {
    let dir = d.profiles_dir.as_deref();
    let mut out = DevicesConfig {
        shop_name: d.shop_name,
        profiles_dir: d.profiles_dir.clone(),
        printers: Vec::new(),
        displays: Vec::new(),
    };
    for (i, p) in printers.iter().enumerate() {
        let key = format!("printer[{i}]");
        let profile = crate::devices::profile::printer(&p.profile, dir).map_err(|e| {
            fail(
                &format!("{key}.profile"),
                format!("found {:?}; {e}", p.profile),
            )
        })?;
        let port = check_port(&key, p, fail)?;
        if out.printers.iter().any(|x| x.name == p.name) {
            return Err(fail(
                &format!("{key}.name"),
                format!("found {:?} twice; allowed: a name per printer", p.name),
            ));
        }
        out.printers.push(PrinterConfig {
            name: p.name.clone(),
            profile,
            port,
        });
    }
    for (i, p) in displays.iter().enumerate() {
        let key = format!("display[{i}]");
        let profile = crate::devices::profile::display(&p.profile, dir).map_err(|e| {
            fail(
                &format!("{key}.profile"),
                format!("found {:?}; {e}", p.profile),
            )
        })?;
        let port = check_port(&key, p, fail)?;
        out.displays.push(DisplayConfig {
            name: p.name.clone(),
            profile,
            port,
        });
    }
    Ok(out)
}

fn check_callback(
    c: RawCallback,
    env: &dyn Fn(&str) -> Option<String>,
    fail: &Fail,
) -> Result<CallbackConfig, ConfigError> {
    let listen: SocketAddr = c.listen.parse().map_err(|_| {
        fail(
            "callback.listen",
            format!(
                "found {:?}; allowed: an address and port such as 127.0.0.1:8081",
                c.listen
            ),
        )
    })?;
    if !c.path.starts_with('/') || c.path.contains(['?', '#', ' ']) {
        return Err(fail(
            "callback.path",
            format!(
                "found {:?}; allowed: a URL path starting with /, such as /chasti/callback",
                c.path
            ),
        ));
    }
    let key = env(ENV_CALLBACK_KEY)
        .map(Secret::new)
        .or(c.key)
        .filter(|k| !k.is_empty());
    let public_key = match &c.public_key_file {
        None => None,
        Some(file) => {
            let text = std::fs::read_to_string(file).map_err(|e| {
                fail(
                    "callback.public_key_file",
                    format!(
                        "found {} ({e}); allowed: a readable PEM public key or certificate",
                        file.display()
                    ),
                )
            })?;
            Some(crate::gateway::checksum::CallbackPublicKey::from_pem(&text).map_err(|e| {
                fail(
                    "callback.public_key_file",
                    format!("found {} ({e}); allowed: a PEM RSA public key or certificate from the bank", file.display()),
                )
            })?)
        }
    };
    let nets = |key: &str, list: &[String]| -> Result<Vec<ipnet::IpNet>, ConfigError> {
        list.iter()
            .enumerate()
            .map(|(i, text)| {
                text.parse::<ipnet::IpNet>()
                    .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| fail(&format!("{key}[{i}]"), format!("found {text:?}; allowed: an address or network such as 192.0.2.0/24")))
            })
            .collect()
    };
    let allow = nets("callback.allow", &c.allow)?;
    let trusted_proxies = nets("callback.trusted_proxies", &c.trusted_proxies)?;
    Ok(CallbackConfig {
        listen,
        path: c.path,
        key,
        public_key,
        allow,
        trusted_proxies,
    })
}

fn absolute_url(key: &str, text: &str, fail: &Fail) -> Result<Url, ConfigError> {
    match Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(url),
        _ => Err(fail(
            key,
            format!("found {text:?}; allowed: an absolute http:// or https:// URL"),
        )),
    }
}

/// Rewords serde's messages into "found …; allowed: …" where they are about a value.
fn explain_serde(message: &str) -> String {
    let mut message = one_line(message);
    // toml appends " in `key`"; the key is already in front of the message.
    if let Some(at) = message.rfind(" in `") {
        if message.ends_with('`') {
            message.truncate(at);
        }
    }
    let message = message
        .replace("expected u64", "expected a whole number")
        .replace("expected u32", "expected a whole number")
        .replace("expected a boolean", "expected true or false")
        .replace("expected a sequence", "expected a list");
    if let Some(rest) = message.strip_prefix("unknown field ") {
        // "unknown field `pasword`, expected one of `a`, `b`"
        return match rest.split_once(", expected ") {
            Some((found, allowed)) => format!(
                "unknown key {found}; allowed keys here: {}",
                allowed.trim_start_matches("one of ")
            ),
            None => format!("unknown key {rest}"),
        };
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        return match rest.split_once(", expected ") {
            Some((found, allowed)) => format!(
                "found {found}; allowed: {}",
                allowed.trim_start_matches("one of ")
            ),
            None => format!("found {rest}"),
        };
    }
    if let Some(rest) = message.strip_prefix("missing field ") {
        return format!("the required key {rest} is missing");
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        return match rest.split_once(", expected ") {
            Some((found, allowed)) => format!("found {found}; allowed: {allowed}"),
            None => format!("found {rest}"),
        };
    }
    message
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[gateway]
environment = "sandbox"
user_name = "sandbox-api"
password = "sandbox"
return_url = "https://shop.example/paid"
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("chasti.toml"), text, |_| None)
    }

    fn error(text: &str) -> ConfigError {
        parse(text).unwrap_err()
    }

    #[test]
    fn the_shipped_config_loads() {
        let shipped = include_str!("../config/chasti.toml");
        let config = parse(shipped).unwrap();
        assert_eq!(config.gateway.environment, Environment::Sandbox);
        assert_eq!(config.gateway.base_url.scheme(), "http");
    }

    #[test]
    fn a_minimal_config_gets_the_bank_defaults() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.gateway.order_lifetime, Duration::from_secs(1200));
        assert_eq!(c.gateway.request_timeout, Duration::from_secs(30));
        assert_eq!(
            c.gateway.base_url.as_str(),
            "http://127.0.0.1:8907/payment/rest/"
        );
    }

    #[test]
    fn environments_map_to_the_bank_hosts() {
        let test = parse(&GOOD.replace("\"sandbox\"", "\"test\"")).unwrap();
        assert_eq!(test.gateway.base_url.as_str(), TEST_BASE_URL);
        let prod = parse(&GOOD.replace("\"sandbox\"", "\"production\"")).unwrap();
        assert_eq!(prod.gateway.base_url.as_str(), PRODUCTION_BASE_URL);
    }

    #[test]
    fn secrets_come_from_the_environment() {
        let text = GOOD.replace("password = \"sandbox\"\n", "");
        let c = Config::parse(Path::new("c.toml"), &text, |name| {
            (name == ENV_GATEWAY_PASSWORD).then(|| "from-env".to_string())
        })
        .unwrap();
        match c.gateway.credentials {
            Credentials::Password { password, .. } => assert_eq!(password.expose(), "from-env"),
            other => panic!("{other:?}"),
        }
        let c = Config::parse(Path::new("c.toml"), GOOD, |name| {
            (name == ENV_GATEWAY_TOKEN).then(|| "tok".to_string())
        })
        .unwrap();
        assert!(matches!(c.gateway.credentials, Credentials::Token(_)));
    }

    #[test]
    fn each_bad_config_has_its_own_message() {
        let cases: Vec<(String, &str, &str)> = vec![
            (
                GOOD.replace("password =", "pasword ="),
                "gateway.pasword",
                "unknown key `pasword`",
            ),
            (
                GOOD.replace("\"sandbox\"\n", "\"prod\"\n"),
                "gateway.environment",
                "found `prod`; allowed: `sandbox`, `test`, `production`",
            ),
            (
                GOOD.replace(
                    "return_url = \"https://shop.example/paid\"",
                    "return_url = \"/paid\"",
                ),
                "gateway.return_url",
                "found \"/paid\"; allowed: an absolute",
            ),
            (
                format!("{GOOD}order_lifetime_secs = 5\n"),
                "gateway.order_lifetime_secs",
                "found 5; allowed: 60 to 86400",
            ),
            (
                format!("{GOOD}request_timeout_secs = 0\n"),
                "gateway.request_timeout_secs",
                "found 0; allowed: 1 to 120",
            ),
            (
                format!("{GOOD}request_timeout_secs = \"ten\"\n"),
                "gateway.request_timeout_secs",
                "found string \"ten\"; allowed: a whole number",
            ),
            (
                format!("{GOOD}base_url = \"http://securepayments.sberbank.ru/payment/rest/\"\n"),
                "gateway.base_url",
                "allowed: https://",
            ),
            (
                format!("{GOOD}extra_ca_files = [\"/nonexistent/ca.pem\"]\n"),
                "gateway.extra_ca_files[0]",
                "not a readable file",
            ),
            (
                GOOD.replace("password = \"sandbox\"\n", ""),
                "gateway.password",
                "CHASTI_GATEWAY_PASSWORD",
            ),
            (
                GOOD.replace("user_name = \"sandbox-api\"\npassword = \"sandbox\"\n", ""),
                "gateway.user_name",
                "found no credentials",
            ),
            (
                GOOD.replace("return_url = \"https://shop.example/paid\"\n", ""),
                "gateway",
                "required key `return_url` is missing",
            ),
            (
                format!("{GOOD}[sandbox]\nlisten = \"everywhere\"\n"),
                "sandbox.listen",
                "found \"everywhere\"",
            ),
            (
                format!("{GOOD}[sandbox]\ncallback_method = \"put\"\n"),
                "sandbox.callback_method",
                "found `put`; allowed: `get` or `post`",
            ),
            (
                format!("{GOOD}[scanner]\nport = 1\n"),
                "scanner",
                "unknown key `scanner`",
            ),
            ("[gateway\n".to_string(), "(syntax)", ""),
        ];
        let mut seen = std::collections::HashSet::new();
        for (text, key, needle) in cases {
            let e = error(&text);
            assert_eq!(e.key, key, "{e}");
            assert!(e.problem.contains(needle), "{e} should contain {needle:?}");
            assert!(e.to_string().starts_with("chasti.toml: "), "{e}");
            assert!(seen.insert(e.to_string()), "message repeated: {e}");
        }
    }

    #[test]
    fn errors_never_show_a_secret() {
        let text = GOOD.replace(
            "return_url = \"https://shop.example/paid\"",
            "return_url = 5",
        );
        let e = error(&text).to_string();
        assert!(!e.contains("sandbox\""), "{e}");
    }
}
