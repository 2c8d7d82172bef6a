//! `[replicate]`: every order change shipped to the chain's head office's PostgreSQL. Absent
//! (or without `postgres_url`): nothing is shipped and the store keeps no outbox.

use std::path::PathBuf;

use serde::Deserialize;

use super::{ConfigError, Fail};

/// The PostgreSQL user's password, instead of one in the URL.
pub const ENV_REPLICATE_PASSWORD: &str = "CHASTI_REPLICATE_PASSWORD";

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReplicate {
    postgres_url: Option<String>,
    store_id: Option<String>,
    outbox_max: Option<u64>,
    batch: Option<u64>,
    ca_file: Option<PathBuf>,
}

/// How TLS is used towards PostgreSQL (the URL's `sslmode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgTls {
    /// `sslmode=disable` (or none given): plain TCP, for a database on the same host or a
    /// private network.
    Off,
    /// `sslmode=prefer`: TLS when the server offers it.
    Prefer,
    /// `sslmode=require`, `verify-ca` or `verify-full`: TLS or no connection. The server's
    /// certificate is always verified (rustls has no unverified mode): against `ca_file`, else
    /// the bundled and system roots.
    Require,
}

#[derive(Debug, Clone)]
pub struct ReplicateConfig {
    /// The URL as written, without any password in it (for logs, doctor and errors).
    pub url_shown: String,
    /// The connection settings tokio-postgres reads (password included).
    pub postgres: tokio_postgres::Config,
    pub tls: PgTls,
    pub ca_file: Option<PathBuf>,
    /// This store's name in the head office's tables.
    pub store_id: String,
    /// The most changes the outbox holds before chasti stops noting them one by one and
    /// ships every order again once the link returns (nothing is lost either way).
    pub outbox_max: u64,
    /// Changes shipped in one PostgreSQL transaction.
    pub batch: usize,
}

/// The URL without its password, for what people read.
fn shown(url: &url::Url) -> String {
    let mut url = url.clone();
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    url.to_string()
}

fn store_id_ok(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// What is wrong with a `postgres://` URL: each says what is allowed.
#[derive(Debug, thiserror::Error)]
pub enum PostgresUrlError {
    #[error("found a value that is not a postgres://user@host:port/database URL")]
    NotAUrl,
    #[error("{url}: {source}")]
    Unreadable {
        url: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("{url}: no user; allowed: postgres://USER@host/database")]
    NoUser { url: String },
    #[error("{url}: no database; allowed: postgres://user@host/DATABASE")]
    NoDatabase { url: String },
    #[error("sslmode={found}; allowed: disable, prefer, require, verify-ca, verify-full")]
    SslMode { found: String },
}

/// The connection a `postgres://` URL describes, its password from
/// `CHASTI_REPLICATE_PASSWORD` when set there: for the daemon and for `chasti hq` (a head
/// office with no till config). The error says what is wrong with the URL.
pub fn connection(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, tokio_postgres::Config, PgTls), PostgresUrlError> {
    let url = url::Url::parse(text)
        .ok()
        .filter(|u| matches!(u.scheme(), "postgres" | "postgresql") && u.host_str().is_some())
        .ok_or(PostgresUrlError::NotAUrl)?;
    let url_shown = shown(&url);
    // `sslmode` is read here (tokio-postgres refuses verify-ca and verify-full): the rest of
    // the URL is tokio-postgres's to read.
    let mut rest = url.clone();
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "sslmode")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    rest.set_query(None);
    if !kept.is_empty() {
        rest.query_pairs_mut().extend_pairs(kept);
    }
    let mut postgres: tokio_postgres::Config =
        rest.as_str()
            .parse()
            .map_err(|source| PostgresUrlError::Unreadable {
                url: url_shown.clone(),
                source,
            })?;
    if postgres.get_user().is_none() {
        return Err(PostgresUrlError::NoUser { url: url_shown });
    }
    if postgres.get_dbname().is_none() {
        return Err(PostgresUrlError::NoDatabase { url: url_shown });
    }
    if let Some(password) = env(ENV_REPLICATE_PASSWORD).filter(|p| !p.is_empty()) {
        postgres.password(password.as_bytes());
    }
    let mode = url
        .query_pairs()
        .find(|(k, _)| k == "sslmode")
        .map(|(_, v)| v.to_string());
    let tls = match mode.as_deref() {
        None | Some("disable") => PgTls::Off,
        Some("prefer") | Some("allow") => PgTls::Prefer,
        Some("require") | Some("verify-ca") | Some("verify-full") => PgTls::Require,
        Some(other) => {
            return Err(PostgresUrlError::SslMode {
                found: other.to_string(),
            })
        }
    };
    // tokio-postgres knows disable/prefer/require only; the verification is chasti's.
    postgres.ssl_mode(match tls {
        PgTls::Off => tokio_postgres::config::SslMode::Disable,
        PgTls::Prefer => tokio_postgres::config::SslMode::Prefer,
        PgTls::Require => tokio_postgres::config::SslMode::Require,
    });
    postgres.application_name("chasti");
    if postgres.get_connect_timeout().is_none() {
        postgres.connect_timeout(std::time::Duration::from_secs(10));
    }
    Ok((url_shown, postgres, tls))
}

pub(super) fn check_replicate(
    r: RawReplicate,
    env: &dyn Fn(&str) -> Option<String>,
    fail: &Fail,
) -> Result<Option<ReplicateConfig>, ConfigError> {
    let Some(text) = r.postgres_url else {
        if r.store_id.is_some() || r.ca_file.is_some() {
            return Err(fail(
                "replicate.postgres_url",
                "missing; the [replicate] section needs the head office's postgres://… URL".into(),
            ));
        }
        return Ok(None);
    };
    let (url_shown, postgres, tls) = connection(&text, env)
        .map_err(|problem| fail("replicate.postgres_url", problem.to_string()))?;
    let store_id = r.store_id.ok_or_else(|| {
        fail(
            "replicate.store_id",
            "missing; allowed: this store's name in the head office, 1-64 of A-Z a-z 0-9 . _ -"
                .into(),
        )
    })?;
    if !store_id_ok(&store_id) {
        return Err(fail(
            "replicate.store_id",
            format!("found {store_id:?}; allowed: 1-64 of A-Z a-z 0-9 . _ -"),
        ));
    }
    let outbox_max = r.outbox_max.unwrap_or(1_000_000);
    if !(1_000..=100_000_000).contains(&outbox_max) {
        return Err(fail(
            "replicate.outbox_max",
            format!("found {outbox_max}; allowed: 1000..100000000 changes"),
        ));
    }
    let batch = r.batch.unwrap_or(500);
    if !(1..=10_000).contains(&batch) {
        return Err(fail(
            "replicate.batch",
            format!("found {batch}; allowed: 1..10000 changes a transaction"),
        ));
    }
    if let Some(ca) = &r.ca_file {
        if !ca.is_file() {
            return Err(fail(
                "replicate.ca_file",
                format!("{} is not a file", ca.display()),
            ));
        }
    }
    Ok(Some(ReplicateConfig {
        url_shown,
        postgres,
        tls,
        ca_file: r.ca_file,
        store_id,
        outbox_max,
        batch: batch as usize,
    }))
}
