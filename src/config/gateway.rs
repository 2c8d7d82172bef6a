//! `[gateway]` and `[sandbox]`: which bank host, the credentials, the URLs the payment page
//! returns to, lifetimes and timeouts, whom to trust; and the embedded sandbox.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::{
    absolute_url, ConfigError, Fail, ENV_CALLBACK_KEY, ENV_GATEWAY_PASSWORD, ENV_GATEWAY_TOKEN,
};
use crate::gateway::tls::TrustSettings;
use crate::gateway::{is_loopback, ClientSettings, Credentials, Dialect};
use crate::secret::Secret;

/// The bank's legacy REST hosts (what the «Плати частями» offline guide names).
pub const TEST_BASE_URL: &str = "https://3dsec.sberbank.ru/payment/rest/";
pub const PRODUCTION_BASE_URL: &str = "https://securepayments.sberbank.ru/payment/rest/";
/// The bank's ecom hosts (the newer gateway new merchant accounts are often given).
pub const ECOM_TEST_BASE_URL: &str = "https://ecomtest.sberbank.ru/ecomm/gw/partner/api/v1/";
pub const ECOM_PRODUCTION_BASE_URL: &str = "https://ecommerce.sberbank.ru/ecomm/gw/partner/api/v1/";

/// Which of the bank's environments a host belongs to (both dialects' hosts); None for any other
/// host (the sandbox, a proxy).
pub fn environment_of_host(host: &str) -> Option<Environment> {
    const TEST: [&str; 2] = ["3dsec.sberbank.ru", "ecomtest.sberbank.ru"];
    const PRODUCTION: [&str; 2] = ["securepayments.sberbank.ru", "ecommerce.sberbank.ru"];
    let host = host.to_ascii_lowercase();
    if TEST.contains(&host.as_str()) {
        Some(Environment::Test)
    } else if PRODUCTION.contains(&host.as_str()) {
        Some(Environment::Production)
    } else {
        None
    }
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
    /// POST with a JSON body and no checksum: the ecom gateway's callbacks.
    Json,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGateway {
    environment: Environment,
    #[serde(default)]
    dialect: Dialect,
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
    #[serde(default)]
    extra_params: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    json_params: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSandbox {
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

pub(super) fn default_lifetime() -> u64 {
    1200
}
pub(super) fn default_timeout() -> u64 {
    30
}
pub(super) fn default_sandbox_listen() -> String {
    "127.0.0.1:8907".to_string()
}

/// How long a «Плати частями» payment link may live: the customer signs in with Sber ID,
/// chooses the plan and confirms it while at the till, which takes minutes (under 5 the link
/// dies on customers mid-application); over an hour a link stays payable after the customer has
/// left the shop with nothing bought. The bank's default, 20 minutes, is in between.
pub const LIFETIME_RANGE: std::ops::RangeInclusive<u64> = 300..=3_600;
pub const TIMEOUT_RANGE: std::ops::RangeInclusive<u64> = 1..=120;

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub environment: Environment,
    /// Which of the bank's gateways: legacy REST or ecom (`gateway.dialect`).
    pub dialect: Dialect,
    /// Where `<method>.do` lives. For the sandbox: its `listen` address.
    pub base_url: Url,
    pub credentials: Credentials,
    pub return_url: Url,
    pub fail_url: Option<Url>,
    pub order_lifetime: Duration,
    pub request_timeout: Duration,
    pub trust: TrustSettings,
    /// Merchant-specific parameters of register.do from the bank's welcome letter, sent as
    /// they are (the ecom host refuses names it does not know: `doctor` checks).
    pub extra_params: std::collections::BTreeMap<String, String>,
    /// Merchant-specific `jsonParams` of register.do, beside chasti's own `till`.
    pub json_params: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub listen: SocketAddr,
    /// Where the embedded sandbox sends callbacks; None = the daemon's own callback route.
    pub callback_url: Option<Url>,
    /// What it signs them with; None = `callback.key`.
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
        s.dialect = self.dialect;
        s.extra_params = self.extra_params.clone();
        s.json_params = self.json_params.clone();
        s
    }
}

pub(super) fn check_gateway(
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
        (None, Environment::Test) => builtin(
            match g.dialect {
                Dialect::Legacy => TEST_BASE_URL,
                Dialect::Ecom => ECOM_TEST_BASE_URL,
            },
            fail,
        )?,
        (None, Environment::Production) => builtin(
            match g.dialect {
                Dialect::Legacy => PRODUCTION_BASE_URL,
                Dialect::Ecom => ECOM_PRODUCTION_BASE_URL,
            },
            fail,
        )?,
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
            let path = match g.dialect {
                Dialect::Legacy => "payment/rest/",
                Dialect::Ecom => "ecomm/gw/partner/api/v1/",
            };
            Url::parse(&format!("http://{listen}/{path}")).map_err(|e| {
                fail(
                    "sandbox.listen",
                    format!("found {listen} ({e}); allowed: an address and port"),
                )
            })?
        }
    };

    let password = env(ENV_GATEWAY_PASSWORD).map(Secret::new).or(g.password);
    let token = env(ENV_GATEWAY_TOKEN).map(Secret::new).or(g.token);
    if g.dialect == Dialect::Ecom && token.as_ref().is_some_and(|t| !t.is_empty()) {
        return Err(fail(
            "gateway.token",
            "found a token with dialect = \"ecom\"; allowed: user_name + password (the ecom gateway takes no token)".to_string(),
        ));
    }
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
                "found {}; allowed: {} to {} seconds, the installment product's payment window at the till (the customer signs in and confirms the plan within it; the bank's default is 1200)",
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
    for (key, table) in [
        ("extra_params", &g.extra_params),
        ("json_params", &g.json_params),
    ] {
        for name in table.keys() {
            let plain = !name.is_empty()
                && name.len() <= 64
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !plain {
                return Err(fail(
                    &format!("gateway.{key}"),
                    format!("found the name {name:?}; allowed: 1 to 64 Latin letters, digits or _"),
                ));
            }
            let own = match key {
                "extra_params" => crate::gateway::CHASTI_PARAMS.contains(&name.as_str()),
                _ => name == "till",
            };
            if own {
                return Err(fail(
                    &format!("gateway.{key}.{name}"),
                    "found a parameter chasti sets itself; allowed: only the merchant's own parameters from the bank's welcome letter".into(),
                ));
            }
        }
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
        dialect: g.dialect,
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
        extra_params: g.extra_params,
        json_params: g.json_params,
    })
}

pub(super) fn check_sandbox(
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

/// One of the bank's hosts written above.
fn builtin(url: &str, fail: &Fail) -> Result<Url, ConfigError> {
    Url::parse(url).map_err(|e| {
        fail(
            "gateway.environment",
            format!("the built-in host {url} does not parse ({e}); set gateway.base_url"),
        )
    })
}
