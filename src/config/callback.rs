//! `[callback]`: where the bank's callbacks arrive, how they are signed, who may send them.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::{check_max_connections, ConfigError, Fail, ENV_CALLBACK_KEY};
use crate::secret::Secret;
use crate::server::Limits;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawCallback {
    listen: String,
    path: String,
    key: Option<Secret>,
    public_key_file: Option<PathBuf>,
    allow: Vec<String>,
    trusted_proxies: Vec<String>,
    allow_unsigned: bool,
    max_connections: usize,
    public_url: Option<String>,
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
            allow_unsigned: false,
            max_connections: Limits::CALLBACK.max_connections,
            public_url: None,
        }
    }
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
    /// Unsigned callbacks accepted on an address other hosts can reach (`callback.allow_unsigned`).
    pub allow_unsigned: bool,
    /// The listener's bounds (`callback.max_connections`; timeouts fixed).
    pub limits: Limits,
    /// The address the bank is told (the merchant cabinet's callback setting): the shop's
    /// HTTPS proxy in front of `listen` and `path`. `chasti doctor` probes it.
    pub public_url: Option<url::Url>,
}

impl CallbackConfig {
    /// No key to check callbacks with: anyone who reaches the port can send one.
    pub fn unsigned(&self) -> bool {
        self.key.is_none() && self.public_key.is_none()
    }
}

/// The shortest and longest symmetric key taken. The bank's cabinet issues keys of about 26
/// letters and digits; a few characters are a typo or a placeholder, which would make every
/// callback fail its checksum (or, worse, be easy to forge).
const KEY_CHARS: std::ops::RangeInclusive<usize> = 16..=256;

/// A symmetric callback key of a usable form. The error never shows the key.
fn check_key(key: &str, fail: &Fail) -> Result<(), ConfigError> {
    if key.contains("-----BEGIN") {
        return Err(fail(
            "callback.key",
            "found a PEM block; allowed: the HMAC key as text here, or the bank's RSA public key in a file named by callback.public_key_file".to_string(),
        ));
    }
    let chars = key.chars().count();
    if !KEY_CHARS.contains(&chars) || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(fail(
            "callback.key",
            format!(
                "found a key of {chars} characters{}; allowed: the callback key from the merchant cabinet, {}–{} characters without spaces (or CHASTI_CALLBACK_KEY)",
                if key.chars().any(|c| c.is_whitespace() || c.is_control()) { " with spaces or control characters" } else { "" },
                KEY_CHARS.start(),
                KEY_CHARS.end()
            ),
        ));
    }
    Ok(())
}

pub(super) fn check_callback(
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
    if let Some(key) = &key {
        check_key(key.expose(), fail)?;
    }
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
    let limits = Limits {
        max_connections: check_max_connections(
            "callback.max_connections",
            c.max_connections,
            fail,
        )?,
        ..Limits::CALLBACK
    };
    let public_url = match &c.public_url {
        None => None,
        Some(text) => {
            Some(public_url(text).map_err(|why| fail("callback.public_url", why.to_string()))?)
        }
    };
    let config = CallbackConfig {
        public_url,
        listen,
        path: c.path,
        key,
        public_key,
        allow,
        trusted_proxies,
        allow_unsigned: c.allow_unsigned,
        limits,
    };
    // Anyone who reaches the port could report payments: on such an address a key is required,
    // unless the integrator says in so many words that they accept the risk.
    if config.unsigned() && !listen.ip().is_loopback() && !config.allow_unsigned {
        return Err(fail(
            "callback.key",
            format!(
                "found no callback.key or callback.public_key_file while callback.listen is {listen}, which other hosts can reach; allowed: the key from the merchant cabinet (or CHASTI_CALLBACK_KEY), or callback.allow_unsigned = true to accept unsigned callbacks knowingly"
            ),
        ));
    }
    Ok(config)
}

/// The bank calls over HTTPS; plain HTTP only to this machine (a proxy on the till itself in a
/// test set-up).
fn public_url(text: &str) -> Result<url::Url, PublicUrlError> {
    let url = url::Url::parse(text).map_err(|source| PublicUrlError::NotUrl {
        found: text.to_string(),
        source,
    })?;
    let loopback = crate::gateway::is_loopback(&url);
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        other => return Err(PublicUrlError::Scheme(other.to_string())),
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(PublicUrlError::Extras(text.to_string()));
    }
    Ok(url)
}

/// What is wrong with `callback.public_url`; each ends with what is allowed.
#[derive(Debug, thiserror::Error)]
enum PublicUrlError {
    #[error("found {found:?} ({source}); {PUBLIC_URL_ALLOWED}")]
    NotUrl {
        found: String,
        source: url::ParseError,
    },
    #[error("found a {0}:// address; {PUBLIC_URL_ALLOWED}")]
    Scheme(String),
    #[error("found {0:?} with a query, fragment or user name; {PUBLIC_URL_ALLOWED}")]
    Extras(String),
}

const PUBLIC_URL_ALLOWED: &str = "allowed: the absolute https:// address the bank calls, such as https://shop.example/chasti/callback";
