//! The one config file (TOML). Unknown keys are errors: a typo in a payment daemon's config
//! must stop the start, not pass silently. Every error names the file, the key, what was
//! found and what is allowed. Secrets may come from the environment instead of the file.

mod api;
mod callback;
mod daemon;
mod devices;
pub mod env_file;
mod fiscal;
mod gateway;
mod orders;
mod replicate;
mod sms;
mod store;
#[cfg(test)]
mod tests;

pub use api::{ApiConfig, ApiToken, Person, Role};
pub use callback::CallbackConfig;
pub use daemon::DaemonConfig;
pub use devices::{DevicesConfig, DisplayConfig, PrinterConfig};
pub use fiscal::{
    AtolFiscal, BankFiscal, FiscalConfig, FiscalMode, PosFiscal, ReceiptMoment, Taxation,
    ENV_FISCAL_KEY,
};
pub use gateway::{
    environment_of_host, CallbackMethod, Environment, GatewayConfig, SandboxConfig, LIFETIME_RANGE,
    PRODUCTION_BASE_URL, TEST_BASE_URL, TIMEOUT_RANGE,
};
pub use orders::{DepositMode, OrdersConfig};
pub use replicate::{
    connection as postgres_connection, PgTls, PostgresUrlError, ReplicateConfig,
    ENV_REPLICATE_PASSWORD,
};
pub use sms::{SmsConfig, SmsProviderConfig, ENV_SMS_API_ID, ENV_SMS_PASSWORD, ENV_SMS_TOKEN};
pub use store::StoreConfig;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use api::{check_api, RawApi};
use callback::{check_callback, RawCallback};
use daemon::{check_daemon, RawDaemon};
use devices::{check_devices, RawDevices, RawPort};
use fiscal::{check_fiscal, RawFiscal};
use gateway::{check_gateway, check_sandbox, RawGateway, RawSandbox};
use orders::{check_orders, RawOrders};
use replicate::{check_replicate, RawReplicate};
use sms::{check_sms, RawSms};
use store::{check_store, RawStore};

/// The sandbox's merchant login and password: what the shipped config says until the
/// integrator puts the bank's in (`doctor` fails them for the bank's hosts).
pub const SANDBOX_USER_NAME: &str = "sandbox-api";
pub const SANDBOX_PASSWORD: &str = "sandbox";

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
    #[serde(default)]
    daemon: RawDaemon,
    sms: Option<RawSms>,
    #[serde(default)]
    fiscal: RawFiscal,
    #[serde(default)]
    replicate: RawReplicate,
}

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
    pub daemon: DaemonConfig,
    /// `[sms]`: the payment link by SMS; None = not set up.
    pub sms: Option<SmsConfig>,
    /// `[fiscal]`: who issues the receipts (54-ФЗ).
    pub fiscal: FiscalConfig,
    /// `[replicate]`: the head office's PostgreSQL; None = not set up.
    pub replicate: Option<ReplicateConfig>,
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
        let sandbox = check_sandbox(raw.sandbox, &env, &fail)?;
        let store = check_store(raw.store, &fail)?;
        let orders = check_orders(raw.orders, &fail)?;
        let devices = check_devices(raw.devices, raw.printer, raw.display, &fail)?;
        let api = check_api(raw.api, &env, &fail)?;
        let daemon = check_daemon(raw.daemon, &fail)?;
        let sms = check_sms(raw.sms, &env, &fail)?;
        let fiscal = check_fiscal(raw.fiscal, &env, &fail)?;
        let replicate = check_replicate(raw.replicate, &env, &fail)?;
        Ok(Config {
            replicate,
            sms,
            fiscal,
            api,
            daemon,
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

pub(crate) type Fail<'a> = dyn Fn(&str, String) -> ConfigError + 'a;

pub(crate) fn seconds_in(
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

pub(crate) fn absolute_url(key: &str, text: &str, fail: &Fail) -> Result<Url, ConfigError> {
    match Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(url),
        _ => Err(fail(
            key,
            format!("found {text:?}; allowed: an absolute http:// or https:// URL"),
        )),
    }
}

/// A listener's cap on open connections: enough for a shop, and far below the descriptors the
/// systemd unit allows (`LimitNOFILE=65536`).
pub(crate) fn check_max_connections(
    key: &str,
    value: usize,
    fail: &Fail,
) -> Result<usize, ConfigError> {
    if (1..=4096).contains(&value) {
        Ok(value)
    } else {
        Err(fail(key, format!("found {value}; allowed: 1..4096")))
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
