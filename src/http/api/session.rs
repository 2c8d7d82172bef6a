//! The manager page's sign-in. A person gives a token from `[[api.tokens]]` or their name and
//! password from `[[api.people]]` once; the page then holds an HttpOnly, SameSite=Strict
//! session cookie that lasts `api.session_hours`, and every change it asks for carries the
//! session's CSRF token in a header (a cross-site page can neither read that token nor send
//! JSON with it). Sessions live in memory: a restart of the daemon signs everyone out, and
//! nothing about them reaches the store or the logs.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use super::auth::{self, Caller};
use super::error::{ApiError, Fields};
use super::types::ErrorBody;
use super::Api;
use crate::config::{Person, Role};
use crate::engine::Clock;

/// The cookie's name.
pub const COOKIE: &str = "chasti_session";
/// The header a cookie-signed change must carry, with the session's `csrf_token`.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Sessions kept at once; the one nearest its end goes first beyond that (a shop has a few
/// managers; this bounds what a script signing in over and over can make the daemon hold).
const MAX_SESSIONS: usize = 1024;
/// Sign-in attempts one address may make: five at once, then one each twelve seconds.
const ATTEMPTS_BURST: u32 = 5;
const ATTEMPT_EVERY: Duration = Duration::from_secs(12);
/// Addresses the sign-in limiter remembers before it forgets those at rest.
const MAX_ADDRESSES: usize = 4096;

/// One signed-in browser.
#[derive(Clone)]
pub struct Session {
    pub name: String,
    pub role: Role,
    csrf: String,
    pub expires: DateTime<Utc>,
    by_password: bool,
}

/// The open sessions, the people who may sign in with a password, and the sign-in limiter.
pub struct Sessions {
    open: Mutex<HashMap<[u8; 32], Session>>,
    people: Vec<Person>,
    ttl: Duration,
    clock: Arc<dyn Clock>,
    attempts: DefaultKeyedRateLimiter<IpAddr>,
    /// One password check at a time: each costs a core and megabytes for tens of
    /// milliseconds, and a burst of sign-ins must not take the till's CPU or memory.
    checking: Mutex<()>,
}

/// Why a cookie opens nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// Not a session of this daemon (never was, signed out, or the daemon restarted).
    Unknown,
    Expired,
}

impl Sessions {
    pub fn new(people: Vec<Person>, ttl: Duration, clock: Arc<dyn Clock>) -> Sessions {
        let quota = Quota::with_period(ATTEMPT_EVERY)
            .unwrap_or_else(|| Quota::per_minute(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(ATTEMPTS_BURST).unwrap_or(NonZeroU32::MIN));
        Sessions {
            open: Mutex::new(HashMap::new()),
            people,
            ttl,
            clock,
            attempts: RateLimiter::keyed(quota),
            checking: Mutex::new(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new session: the cookie's value (random, 256 bits) and what it opens.
    fn start(&self, name: String, role: Role, by_password: bool) -> (String, Session) {
        let now = self.clock.now();
        let expires = now + chrono::Duration::from_std(self.ttl).unwrap_or_default();
        let session = Session {
            name,
            role,
            csrf: random_hex(),
            expires,
            by_password,
        };
        let value = random_hex();
        let mut open = self.lock();
        open.retain(|_, s| s.expires > now);
        while open.len() >= MAX_SESSIONS {
            let Some(first) = open.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k) else {
                break;
            };
            open.remove(&first);
        }
        open.insert(key(&value), session.clone());
        (value, session)
    }

    /// The session a cookie value opens, while it lasts.
    pub fn find(&self, value: &str) -> Result<Session, Closed> {
        let mut open = self.lock();
        let k = key(value);
        match open.get(&k) {
            None => Err(Closed::Unknown),
            Some(s) if s.expires <= self.clock.now() => {
                open.remove(&k);
                Err(Closed::Expired)
            }
            Some(s) => Ok(s.clone()),
        }
    }

    fn end(&self, value: &str) {
        self.lock().remove(&key(value));
    }

    /// How many sessions are open (for tests and the metrics of a busy shop).
    pub fn count(&self) -> usize {
        let now = self.clock.now();
        self.lock().values().filter(|s| s.expires > now).count()
    }
}

/// Sessions are found by a hash of the cookie: a map lookup then says nothing, by its timing,
/// about how close a guessed cookie came.
fn key(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The session cookie a request carries, if any.
pub fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_string())
}

/// The session a cookie opens, or the 401 that says why it opens none.
fn open_session(api: &Api, value: &str) -> Result<Session, ApiError> {
    api.sessions.find(value).map_err(|closed| match closed {
        Closed::Expired => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "session_expired",
            "Вход истёк: войдите снова.",
        ),
        Closed::Unknown => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Вы не вошли (или вход закрыт перезапуском chasti): войдите снова.",
        ),
    })
}

/// The caller behind a session cookie; a change (anything but GET and HEAD) must also carry
/// the session's CSRF token.
pub fn caller_from_cookie(parts: &Parts, api: &Api, value: &str) -> Result<Caller, ApiError> {
    let session = open_session(api, value)?;
    let safe = parts.method == axum::http::Method::GET || parts.method == axum::http::Method::HEAD;
    if !safe {
        let given = parts
            .headers
            .get(CSRF_HEADER)
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        if !bool::from(given.ct_eq(session.csrf.as_bytes())) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf",
                "Запрос без отметки страницы (X-CSRF-Token): обновите страницу и повторите.",
            ));
        }
    }
    Ok(Caller {
        name: session.name,
        role: session.role,
        cashier: None,
    })
}

/// Who is signed in, and what the page may offer them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionView {
    /// The token's name from `[[api.tokens]]`, or the person's from `[[api.people]]`.
    pub name: String,
    /// `manager` or `cashier`.
    pub role: String,
    /// «Вы вошли: Петрова (менеджер)».
    pub signed_in_as: String,
    /// What this role may do on the page: `list`, `csv`, `cancel`, `send_link`, `reprint`,
    /// and for a manager also `deposit`, `reverse`, `refund`, `backup`.
    pub may: Vec<String>,
    /// When the sign-in ends; absent for a bearer token (it does not end).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// «Вход действует до 23:10 МСК».
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_text: Option<String>,
    /// Send it back as `X-CSRF-Token` with every change made through the cookie.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
}

fn role_text(role: Role) -> &'static str {
    match role {
        Role::Manager => "менеджер",
        Role::Cashier => "кассир",
        Role::Screen => "экран покупателя",
    }
}

fn view(name: &str, role: Role, session: Option<&Session>) -> SessionView {
    SessionView {
        name: name.to_string(),
        role: role.as_str().to_string(),
        signed_in_as: format!("Вы вошли: {name} ({})", role_text(role)),
        may: auth::may(role).iter().map(|a| a.to_string()).collect(),
        expires_at: session.map(|s| s.expires),
        expires_text: session.map(|s| {
            let date = crate::moscow::date(s.expires).format("%d.%m.%Y");
            format!(
                "Вход действует до {date} {} МСК{}",
                crate::moscow::clock_text(s.expires),
                if s.by_password {
                    " (по паролю)"
                } else {
                    ""
                }
            )
        }),
        csrf_token: session.map(|s| s.csrf.clone()),
    }
}

fn cookie(value: &str, max_age: Duration, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        max_age.as_secs()
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn peer(
    parts_ip: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
) -> IpAddr {
    parts_ip.map_or(
        IpAddr::from([127, 0, 0, 1]),
        |axum::Extension(axum::extract::ConnectInfo(a))| a.ip(),
    )
}

/// Sign in: `{"token": "…"}` or `{"name": "…", "password": "…"}`. Answers who is signed in
/// and sets the session cookie. Five attempts from one address, then one each 12 s (429).
#[utoipa::path(
    post,
    path = "/api/v1/session",
    tag = "manager",
    responses(
        (status = 200, description = "Signed in; the `chasti_session` cookie is set", body = SessionView),
        (status = 401, description = "The token, or the name and password, do not match", body = ErrorBody),
        (status = 403, description = "A screen token: it cannot sign in", body = ErrorBody),
        (status = 422, description = "Neither a token nor a name and password", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address", body = ErrorBody),
    )
)]
pub async fn sign_in(
    State(api): State<Api>,
    connect: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let mut fields = Fields::read(&body, &["token", "name", "password"])?;
    let token = fields.string("token", "");
    let name = fields.string("name", "");
    let password = fields.string("password", "");
    let given = match (token, name, password) {
        (Some(t), None, None) if !t.trim().is_empty() => Given::Token(t.trim().to_string()),
        (None, Some(n), Some(p)) if !n.trim().is_empty() && !p.is_empty() => Given::Password(n, p),
        _ => {
            fields.problem(
                "token",
                "нужен токен (поле token) или имя и пароль (поля name и password)",
            );
            return Err(ApiError::validation(fields.errors));
        }
    };
    if !fields.errors.is_empty() {
        return Err(ApiError::validation(fields.errors));
    }
    let attempts = &api.sessions.attempts;
    if attempts.len() > MAX_ADDRESSES {
        // Addresses whose attempts have all been refilled are forgotten: the limiter's memory
        // stays bounded however many addresses try.
        attempts.retain_recent();
    }
    if let Err(not_until) = attempts.check_key(&peer(connect)) {
        let wait = not_until
            .wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ))
            .as_secs()
            .max(1);
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!("Слишком много попыток входа: подождите {wait} с и попробуйте снова."),
        )
        .into_response();
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Ok(response);
    }
    let (name, role, by_password) = match given {
        Given::Token(token) => {
            let found = auth::token_named(&api.tokens, &token).ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "Токен не подходит: проверьте [[api.tokens]] в конфигурации кассы.",
                )
            })?;
            if found.role == Role::Screen {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "Токен экрана покупателя не открывает страницу менеджера.",
                ));
            }
            (found.name.clone(), found.role, false)
        }
        Given::Password(name, password) => {
            let sessions = api.sessions.clone();
            let wanted = name.trim().to_lowercase();
            // argon2 costs tens of milliseconds of CPU by design: off the async threads.
            let matched = tokio::task::spawn_blocking(move || {
                let _one_at_a_time = sessions
                    .checking
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                let person = sessions
                    .people
                    .iter()
                    .find(|p| p.name.to_lowercase() == wanted);
                // A name that is nobody's is checked against a fixed hash all the same, so
                // the answer's timing does not say which names exist.
                let hash =
                    person.map_or(crate::passwords::DUMMY_HASH, |p| p.password_hash.expose());
                let ok = crate::passwords::verify(&password, hash);
                person.filter(|_| ok).map(|p| (p.name.clone(), p.role))
            })
            .await
            .ok()
            .flatten();
            let (name, role) = matched.ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "Имя или пароль не подходят.",
                )
            })?;
            (name, role, true)
        }
    };
    let (value, session) = api.sessions.start(name, role, by_password);
    tracing::info!(name = %session.name, role = role.as_str(), "signed in to the manager page");
    let mut response = Json(view(&session.name, role, Some(&session))).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        cookie(&value, api.sessions.ttl, api.secure_cookies),
    );
    Ok(response)
}

enum Given {
    Token(String),
    Password(String, String),
}

/// Who is signed in: by the session cookie, or by a bearer token (a script's view).
#[utoipa::path(
    get,
    path = "/api/v1/session",
    tag = "manager",
    security(("bearer" = [])),
    responses(
        (status = 200, body = SessionView),
        (status = 401, description = "Not signed in, or the sign-in has ended", body = ErrorBody),
        (status = 403, description = "A screen token", body = ErrorBody),
    )
)]
pub async fn current(State(api): State<Api>, parts: Parts) -> Result<Json<SessionView>, ApiError> {
    if auth::has_bearer(&parts) {
        let caller = auth::caller(&parts, &api)?;
        return Ok(Json(view(&caller.name, caller.role, None)));
    }
    let Some(value) = cookie_value(&parts.headers) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Вы не вошли: войдите токеном или по имени и паролю.",
        ));
    };
    let session = open_session(&api, &value)?;
    Ok(Json(view(&session.name, session.role, Some(&session))))
}

/// Sign out: the session ends on the daemon and the cookie is cleared.
#[utoipa::path(
    delete,
    path = "/api/v1/session",
    tag = "manager",
    responses(
        (status = 204, description = "Signed out (also when there was nothing to end)"),
        (status = 403, description = "A cookie without the page's X-CSRF-Token", body = ErrorBody),
    )
)]
pub async fn sign_out(State(api): State<Api>, parts: Parts) -> Result<Response, ApiError> {
    if let Some(value) = cookie_value(&parts.headers) {
        // A live session ends only with its CSRF token: another site cannot sign a manager
        // out. One already gone (expired, restarted) just has its cookie cleared.
        if api.sessions.find(&value).is_ok() {
            caller_from_cookie(&parts, &api, &value)?;
            api.sessions.end(&value);
        }
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        cookie("", Duration::ZERO, api.secure_cookies),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ManualClock;

    fn sessions(clock: Arc<ManualClock>) -> Sessions {
        Sessions::new(Vec::new(), Duration::from_secs(3600), clock)
    }

    #[test]
    fn a_session_opens_until_it_ends_and_not_after() {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let s = sessions(clock.clone());
        let (value, session) = s.start("Петрова".into(), Role::Manager, true);
        assert_eq!(s.find(&value).unwrap().name, "Петрова");
        assert_eq!(session.csrf.len(), 64);
        assert_eq!(s.find("not-a-session").err(), Some(Closed::Unknown));
        clock.advance(chrono::Duration::seconds(3601));
        assert_eq!(s.find(&value).err(), Some(Closed::Expired));
        assert_eq!(
            s.find(&value).err(),
            Some(Closed::Unknown),
            "gone once expired"
        );
    }

    #[test]
    fn sessions_are_bounded() {
        let s = sessions(Arc::new(ManualClock::new(Utc::now())));
        for i in 0..MAX_SESSIONS + 10 {
            s.start(format!("p{i}"), Role::Cashier, false);
        }
        assert_eq!(s.count(), MAX_SESSIONS);
    }

    #[test]
    fn the_cookie_is_read_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; chasti_session=abc123 ; x=1"),
        );
        assert_eq!(cookie_value(&h).as_deref(), Some("abc123"));
        assert_eq!(cookie_value(&HeaderMap::new()), None);
    }

    #[test]
    fn the_dummy_hash_is_an_argon2_hash() {
        assert!(crate::passwords::is_hash(crate::passwords::DUMMY_HASH));
    }
}
