//! Who is calling: a bearer token from `[[api.tokens]]`, as an extractor per role. A handler
//! that takes `Manager` cannot run for a cashier; none checks a role by hand.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::Api;
use crate::config::{ApiToken, Role};

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

fn caller(parts: &Parts, api: &Api) -> Result<Caller, ApiError> {
    let given = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(given) = given else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Нужен токен доступа (заголовок Authorization: Bearer …).",
        ));
    };
    let Some(token) = find(&api.tokens, given) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Токен доступа не подходит: проверьте [[api.tokens]] в конфигурации кассы.",
        ));
    };
    let cashier = parts
        .headers
        .get("x-cashier")
        .and_then(|v| v.to_str().ok())
        .map(|s| {
            s.chars()
                .filter(|c| !c.is_control())
                .take(64)
                .collect::<String>()
        })
        .filter(|s| !s.trim().is_empty());
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
