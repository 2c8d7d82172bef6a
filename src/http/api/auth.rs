//! Who is calling: a bearer token from `[[api.tokens]]`, or the manager page's session cookie
//! (`session.rs`), as an extractor per role. A handler that takes `Manager` cannot run for a
//! cashier; none checks a role by hand, and `may` says the same rules to the page.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::Api;
use crate::config::{ApiToken, Role};
use crate::domain::TillId;

/// The caller behind a token: its name from the config (never the token itself), its role,
/// and the cashier named by the optional `X-Cashier` header.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub role: Role,
    pub cashier: Option<String>,
}

impl Caller {
    /// Who asked, as the order's history records it.
    pub fn actor(&self) -> crate::orders::Actor {
        crate::orders::Actor {
            token: self.name.clone(),
            cashier: self.cashier.clone(),
        }
    }
}

/// Any valid token: a cashier's or a manager's.
#[derive(Debug, Clone)]
pub struct Cashier(pub Caller);

/// A manager's token.
#[derive(Debug, Clone)]
pub struct Manager(pub Caller);

/// What each role may do, as the manager page offers it: the same rules the extractors
/// below enforce (`Cashier` for the first five, `Manager` for the rest).
pub fn may(role: Role) -> &'static [&'static str] {
    match role {
        Role::Manager => &[
            "list",
            "csv",
            "cancel",
            "send_link",
            "reprint",
            "deposit",
            "reverse",
            "refund",
            "backup",
            "close_day",
            "replication",
        ],
        Role::Cashier => &["list", "csv", "cancel", "send_link", "reprint"],
        Role::Screen => &[],
    }
}

/// The token entry a given token is, compared in constant time.
pub fn token_named<'a>(tokens: &'a [ApiToken], given: &str) -> Option<&'a ApiToken> {
    find(tokens, given)
}

/// True when the request carries `Authorization: Bearer …`.
pub fn has_bearer(parts: &Parts) -> bool {
    bearer(parts).is_some()
}

fn find<'a>(tokens: &'a [ApiToken], given: &str) -> Option<&'a ApiToken> {
    // Every token is compared, in constant time, so timing does not tell which came close.
    let mut found = None;
    for t in tokens {
        if bool::from(t.token.expose().as_bytes().ct_eq(given.as_bytes())) {
            found = Some(t);
        }
    }
    found
}

/// Who may read `/metrics` and the customer screen's stream: anyone on a loopback-only API,
/// else any valid token (in `Authorization`, or `access_token` in the query for EventSource).
/// A screen token bound to a till (`till = "2"`) carries it: that screen shows no other till.
#[derive(Debug, Clone, Default)]
pub struct Viewer {
    pub till: Option<TillId>,
}

/// The token a request carries: the bearer header, or `access_token` / `token` in the query
/// (a browser's EventSource and a screen's address cannot send headers).
fn given_token(parts: &Parts) -> Option<String> {
    let from_query = parts.uri.query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "access_token" || k == "token")
            .map(|(_, v)| v.into_owned())
    });
    bearer(parts).map(str::to_string).or(from_query)
}

impl FromRequestParts<Api> for Viewer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, Self::Rejection> {
        let given = given_token(parts);
        let token = given.as_deref().and_then(|g| find(&api.tokens, g));
        match (token, given.is_some()) {
            (Some(token), _) => Ok(Viewer {
                till: token.till.clone(),
            }),
            // On loopback the screen and metrics are open; a wrong token there binds nothing.
            _ if api.open_reads => Ok(Viewer::default()),
            (None, true) => Err(bad_token()),
            (None, false) => Err(no_token()),
        }
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

fn no_token() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Нужен токен доступа (заголовок Authorization: Bearer …).",
    )
}

fn bad_token() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Токен доступа не подходит: проверьте [[api.tokens]] в конфигурации кассы.",
    )
}

/// The caller of a request: its bearer token, else its session cookie.
pub fn caller(parts: &Parts, api: &Api) -> Result<Caller, ApiError> {
    let given = bearer(parts);
    let Some(given) = given else {
        return match super::session::cookie_value(&parts.headers) {
            Some(value) => super::session::caller_from_cookie(parts, api, &value),
            None => Err(no_token()),
        };
    };
    let Some(token) = find(&api.tokens, given) else {
        return Err(bad_token());
    };
    if token.role == Role::Screen {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Этот токен только для экрана покупателя и метрик.",
        ));
    }
    let cashier = match parts.headers.get("x-cashier") {
        Some(value) => cashier_name(value.as_bytes())?,
        None => None,
    };
    Ok(Caller {
        name: token.name.clone(),
        role: token.role,
        cashier,
    })
}

impl FromRequestParts<Api> for Cashier {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, Self::Rejection> {
        caller(parts, api).map(Cashier)
    }
}

impl FromRequestParts<Api> for Manager {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, Self::Rejection> {
        let caller = caller(parts, api)?;
        if caller.role != Role::Manager {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "Это действие доступно только менеджеру.",
            ));
        }
        Ok(Manager(caller))
    }
}

/// A cashier's name as the POS sent it: trimmed, at most [`CASHIER_MAX`] characters, no
/// control characters.
type CashierName = String;

/// The longest cashier name kept (a name on a slip line, not a document).
const CASHIER_MAX: usize = 64;

/// `X-Cashier`: the cashier's name as UTF-8, sent raw or percent-encoded (header values are
/// bytes; a POS may do either). Empty means none; anything unreadable is a 400 that says so.
fn cashier_name(raw: &[u8]) -> Result<Option<CashierName>, ApiError> {
    let decoded: Vec<u8> = percent_encoding::percent_decode(raw).collect();
    let Ok(name) = String::from_utf8(decoded) else {
        return Err(ApiError::bad_request(
            "Заголовок X-Cashier: имя кассира должно быть в UTF-8 (как есть или в %-кодировке).",
        ));
    };
    let name = name.trim();
    if name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "Заголовок X-Cashier: в имени кассира не должно быть управляющих символов.",
        ));
    }
    if name.chars().count() > CASHIER_MAX {
        return Err(ApiError::bad_request(format!(
            "Заголовок X-Cashier: имя кассира длиннее {CASHIER_MAX} символов."
        )));
    }
    Ok((!name.is_empty()).then(|| name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::cashier_name;

    #[test]
    fn the_cashier_header_reads_raw_or_percent_encoded_utf8_and_refuses_the_rest() {
        assert_eq!(
            cashier_name("Петрова".as_bytes()).unwrap().as_deref(),
            Some("Петрова")
        );
        assert_eq!(
            cashier_name(b"%D0%9F%D0%B5%D1%82%D1%80%D0%BE%D0%B2%D0%B0")
                .unwrap()
                .as_deref(),
            Some("Петрова")
        );
        assert_eq!(cashier_name(b"  ").unwrap(), None);
        assert!(cashier_name(b"\xff\xfe").is_err());
        assert!(cashier_name(b"a%0Ab").is_err(), "a line break");
        assert!(cashier_name("я".repeat(65).as_bytes()).is_err());
        assert!(cashier_name("я".repeat(64).as_bytes()).is_ok());
    }
}
