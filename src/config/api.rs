//! `[api]`: where the till API listens and the tokens with their roles.

use std::net::SocketAddr;

use serde::Deserialize;

use super::{check_max_connections, ConfigError, Fail};
use crate::domain::TillId;
use crate::secret::Secret;
use crate::server::Limits;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawApi {
    listen: String,
    max_connections: usize,
    tls_cert: Option<std::path::PathBuf>,
    tls_key: Option<std::path::PathBuf>,
    tokens: Vec<RawToken>,
    people: Vec<RawPerson>,
    session_hours: u32,
}

impl Default for RawApi {
    fn default() -> Self {
        RawApi {
            listen: "127.0.0.1:8080".into(),
            max_connections: Limits::API.max_connections,
            tls_cert: None,
            tls_key: None,
            tokens: Vec::new(),
            people: Vec::new(),
            session_hours: 12,
        }
    }
}

/// `[[api.people]]`: a person who signs in to the manager page with a password of their own
/// (the config holds its argon2 hash, never the password).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPerson {
    name: String,
    role: Role,
    password_hash: Secret,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawToken {
    name: String,
    role: Role,
    token: Option<Secret>,
    /// The environment variable that holds the token instead.
    token_env: Option<String>,
    /// A screen token's till: its customer screen shows that till's sales and no other's.
    till: Option<String>,
}

/// Who may do what on the till API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sales, order lookups, reprints.
    Cashier,
    /// Everything a cashier may, plus reversals and refunds.
    Manager,
    /// Only the customer screen's stream and `/metrics` (a customer screen or a monitor on
    /// another host, when the API listens beyond loopback).
    Screen,
}

impl Role {
    /// The role as the config spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Cashier => "cashier",
            Role::Manager => "manager",
            Role::Screen => "screen",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ApiToken {
    pub name: String,
    pub role: Role,
    pub token: Secret,
    /// A `screen` token bound to one till (`till = "2"`): it opens that till's screen only.
    pub till: Option<TillId>,
}

/// A person who signs in with a password: the name the orders' history shows for their
/// actions, the role, and the password's argon2 hash (a PHC string).
#[derive(Debug, Clone)]
pub struct Person {
    pub name: String,
    pub role: Role,
    pub password_hash: Secret,
}

#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub listen: SocketAddr,
    /// The listener's bounds (`api.max_connections`; timeouts fixed).
    pub limits: Limits,
    /// HTTPS: the certificate chain and key files (PEM), both or neither.
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    pub tokens: Vec<ApiToken>,
    pub people: Vec<Person>,
    /// How long a manager page's sign-in lasts (`api.session_hours`, 12: a shift).
    pub session: std::time::Duration,
}

pub(super) fn check_api(
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
    let limits = Limits {
        max_connections: check_max_connections("api.max_connections", a.max_connections, fail)?,
        ..Limits::API
    };
    let tls = match (a.tls_cert, a.tls_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            // Read now, so a wrong path or a key that does not match fails the config check,
            // not the first browser that connects.
            crate::server::tls_acceptor(&cert, &key).map_err(|problem| {
                fail(
                    "api.tls_cert",
                    format!("{problem}; allowed: a PEM certificate chain and its PEM private key"),
                )
            })?;
            Some((cert, key))
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(fail(
                "api.tls_cert",
                "found only one of tls_cert and tls_key; allowed: both (HTTPS) or neither".into(),
            ))
        }
    };
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
        let till = match (&t.till, t.role) {
            (None, _) => None,
            (Some(till), Role::Screen) => Some(TillId::parse(till).map_err(|e| {
                fail(&format!("{key}.till"), e.to_string())
            })?),
            (Some(_), role) => {
                return Err(fail(
                    &format!("{key}.till"),
                    format!("found a till on a {} token; allowed: a till only on a screen token (role = \"screen\")", role.as_str()),
                ))
            }
        };
        tokens.push(ApiToken {
            name: t.name,
            role: t.role,
            token,
            till,
        });
    }
    let people = check_people(a.people, fail)?;
    if !(1..=24).contains(&a.session_hours) {
        return Err(fail(
            "api.session_hours",
            format!(
                "found {}; allowed: 1 to 24 (hours a sign-in lasts)",
                a.session_hours
            ),
        ));
    }
    Ok(ApiConfig {
        listen,
        limits,
        tls,
        tokens,
        people,
        session: std::time::Duration::from_secs(u64::from(a.session_hours) * 3600),
    })
}

/// The longest name a person signs in with (it is shown in orders' histories).
const PERSON_NAME_MAX: usize = 64;

fn check_people(raw: Vec<RawPerson>, fail: &Fail) -> Result<Vec<Person>, ConfigError> {
    let mut people: Vec<Person> = Vec::new();
    for (i, p) in raw.into_iter().enumerate() {
        let key = format!("api.people[{i}]");
        let name = p.name.trim().to_string();
        if name.is_empty()
            || name.chars().count() > PERSON_NAME_MAX
            || name.chars().any(char::is_control)
        {
            return Err(fail(
                &format!("{key}.name"),
                format!(
                    "found {:?}; allowed: 1 to {PERSON_NAME_MAX} characters, no control characters",
                    p.name
                ),
            ));
        }
        if people
            .iter()
            .any(|q| q.name.to_lowercase() == name.to_lowercase())
        {
            return Err(fail(
                &format!("{key}.name"),
                format!("found {name:?} a second time; allowed: each person once (they sign in by name)"),
            ));
        }
        if p.role == Role::Screen {
            return Err(fail(
                &format!("{key}.role"),
                "found \"screen\"; allowed: \"manager\" or \"cashier\" (a screen signs in with a token)".into(),
            ));
        }
        if !crate::passwords::is_hash(p.password_hash.expose()) {
            return Err(fail(
                &format!("{key}.password_hash"),
                "found something that is not an argon2 hash within a sign-in's cost; allowed: the line `chasti hash-password` prints ($argon2id$v=19$…, at most 64 MiB and 16 passes), never the password itself".into(),
            ));
        }
        people.push(Person {
            name,
            role: p.role,
            password_hash: p.password_hash,
        });
    }
    Ok(people)
}
