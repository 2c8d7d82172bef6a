//! What the gateway client is built from: credentials, the dialect, the merchant's own
//! register.do parameters and the names chasti keeps for itself.

use std::time::Duration;

use url::Url;

use crate::gateway::tls::TrustSettings;
use crate::secret::Secret;

/// How the client proves who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    Password { user_name: String, password: Secret },
    Token(Secret),
}

/// Which of the bank's two gateways the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// The legacy REST host (`/payment/rest/`): form POST, JSON reply.
    #[default]
    Legacy,
    /// The newer ecom host (`/ecomm/gw/partner/api/v1/`): strict JSON both ways, `errorCode`
    /// always present, no token login.
    Ecom,
}

/// Everything the client needs; built from the config, or directly by tests.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Where `<method>.do` lives, e.g. `https://3dsec.sberbank.ru/payment/rest/`.
    pub base_url: Url,
    pub credentials: Credentials,
    pub return_url: String,
    pub fail_url: Option<String>,
    pub order_lifetime: Duration,
    pub request_timeout: Duration,
    pub trust: TrustSettings,
    pub dialect: Dialect,
    /// Merchant-specific register.do parameters (`gateway.extra_params`).
    pub extra_params: std::collections::BTreeMap<String, String>,
    /// Merchant-specific `jsonParams` of register.do (`gateway.json_params`).
    pub json_params: std::collections::BTreeMap<String, String>,
}

/// A merchant parameter's name as the form takes it. The names come from the config, once per
/// process and a handful: leaking them to get `&'static str` keys keeps one parameter type for
/// every call (interned, so repeated registers do not leak more).
pub(super) fn merchant_param(name: &str) -> &'static str {
    use std::sync::{Mutex, OnceLock};
    static NAMES: OnceLock<Mutex<Vec<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(known) = names.iter().find(|n| **n == name) {
        return known;
    }
    let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.push(leaked);
    leaked
}

/// The register.do parameters chasti sets itself: `gateway.extra_params` may not name them.
pub const CHASTI_PARAMS: [&str; 21] = [
    "userName",
    "password",
    "token",
    "orderNumber",
    "amount",
    "currency",
    "returnUrl",
    "failUrl",
    "description",
    "language",
    "pageView",
    "clientId",
    "sessionTimeoutSecs",
    "expirationDate",
    "features",
    "jsonParams",
    "orderBundle",
    "taxSystem",
    "email",
    "phone",
    "dynamicCallbackUrl",
];

/// The register.do fields the ecom host takes (it refuses any other name).
pub const ECOM_REGISTER_FIELDS: [&str; 17] = [
    "orderNumber",
    "amount",
    "currency",
    "returnUrl",
    "failUrl",
    "description",
    "language",
    "pageView",
    "clientId",
    "merchantLogin",
    "jsonParams",
    "sessionTimeoutSecs",
    "expirationDate",
    "features",
    "orderBundle",
    "email",
    "phone",
];

impl ClientSettings {
    /// Settings with the bank's defaults (20 min lifetime, 30 s timeout, bundled CAs only).
    pub fn new(base_url: Url, credentials: Credentials, return_url: impl Into<String>) -> Self {
        ClientSettings {
            base_url,
            credentials,
            return_url: return_url.into(),
            fail_url: None,
            order_lifetime: Duration::from_secs(1200),
            request_timeout: Duration::from_secs(30),
            trust: TrustSettings::default(),
            dialect: Dialect::Legacy,
            extra_params: Default::default(),
            json_params: Default::default(),
        }
    }
}
