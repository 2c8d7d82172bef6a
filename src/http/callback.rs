//! The bank's callbacks: GET query or POST form (legacy), POST JSON (ecom). A callback is
//! checked (checksum), kept durably, answered 200, and only then confirmed with the gateway:
//! it says something moved, never what to believe.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::routing::any;
use axum::Router;

use crate::callbacks::{callback_param, CallbackOutcome, Callbacks};
use crate::gateway::checksum::{verify_hmac_sha256, verify_rsa_sha512, CallbackPublicKey};
use crate::secret::Secret;

/// Callbacks are a handful of short fields; anything bigger is not the bank.
pub const MAX_CALLBACK_BYTES: usize = 16 * 1024;

/// How callbacks prove who sent them.
#[derive(Debug, Clone, Default)]
pub struct CallbackAuth {
    pub hmac_key: Option<Secret>,
    pub public_key: Option<CallbackPublicKey>,
    /// Source networks allowed; empty = any.
    pub allow: Vec<ipnet::IpNet>,
    /// Proxies whose X-Forwarded-For names the real source.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The ecom gateway (`gateway.dialect = "ecom"`): its JSON callbacks carry no checksum, so
    /// an unsigned JSON callback is taken as a hint (confirmed by a status call, never trusted)
    /// even when a key is set for the legacy form.
    pub ecom_hints: bool,
}

impl CallbackAuth {
    /// The caller's address: the peer, or the last X-Forwarded-For hop when the peer is a
    /// trusted proxy (None when a trusted proxy names no one).
    pub fn source(&self, peer: std::net::IpAddr, headers: &HeaderMap) -> Option<std::net::IpAddr> {
        if !self.trusted_proxies.iter().any(|n| n.contains(&peer)) {
            return Some(peer);
        }
        headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse().ok())
    }

    /// May this caller send callbacks?
    pub fn source_allowed(&self, peer: std::net::IpAddr, headers: &HeaderMap) -> bool {
        if self.allow.is_empty() {
            return true;
        }
        self.source(peer, headers)
            .is_some_and(|source| self.allow.iter().any(|n| n.contains(&source)))
    }
}

/// `chasti doctor`'s probe of `callback.public_url`: `GET <path>?chasti_probe=<nonce>` (8 to 64
/// letters, digits or dashes, nothing else in the query). Answered before the source check, so
/// the probe from the till host proves the proxy forwards to this route; the answer names only
/// the nonce, the caller's address as chasti sees it and whether that address may call back.
pub const PROBE_PARAM: &str = "chasti_probe";

fn probe_nonce(query: Option<&str>) -> Option<&str> {
    let nonce = query?.strip_prefix(PROBE_PARAM)?.strip_prefix('=')?;
    let fits = (8..=64).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    fits.then_some(nonce)
}

/// The probe's answer, which `chasti doctor` reads back.
pub fn probe_answer(nonce: &str, caller: Option<std::net::IpAddr>, allowed: bool) -> String {
    let caller = caller.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
    let allowed = if allowed { "yes" } else { "no" };
    format!("chasti-probe {nonce} caller={caller} allowed={allowed}\n")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the callback carries no checksum, but a callback key is configured")]
    Unsigned,
    #[error("the callback's checksum does not verify")]
    BadChecksum,
}

impl CallbackAuth {
    /// `hmac`, `rsa`, or `unsigned` (only when no key is configured).
    pub fn verify(&self, params: &[(String, String)]) -> Result<&'static str, Rejection> {
        if self.hmac_key.is_none() && self.public_key.is_none() {
            return Ok("unsigned");
        }
        let checksum = params
            .iter()
            .find(|(k, _)| k == "checksum")
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.trim().is_empty())
            .ok_or(Rejection::Unsigned)?;
        let pairs = || params.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        if let Some(key) = &self.hmac_key {
            if verify_hmac_sha256(key.expose(), pairs(), checksum) {
                return Ok("hmac");
            }
        }
        if let Some(key) = &self.public_key {
            if verify_rsa_sha512(key, pairs(), checksum) {
                return Ok("rsa");
            }
        }
        Err(Rejection::BadChecksum)
    }
}

#[derive(Clone)]
struct Intake {
    callbacks: Callbacks,
    auth: CallbackAuth,
}

/// The callback route at `path`.
pub fn router(callbacks: Callbacks, path: &str, auth: CallbackAuth) -> Router {
    Router::new()
        .route(path, any(intake))
        .layer(DefaultBodyLimit::max(MAX_CALLBACK_BYTES))
        .with_state(Intake { callbacks, auth })
}

/// A callback's parameters, as strings.
pub type Params = Vec<(String, String)>;

/// Why a callback's parameters cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ParamsError {
    #[error("query: {0}")]
    Query(#[source] serde_urlencoded::de::Error),
    #[error("form body: {0}")]
    Form(#[source] serde_urlencoded::de::Error),
    #[error("JSON body: {0}")]
    Json(#[source] serde_json::Error),
    #[error("JSON body is not an object")]
    NotAnObject,
}

/// Query, form or JSON parameters, as strings. JSON: the top-level scalars (ecom's
/// `additionalParams` object is not part of any checksum).
pub fn callback_params(
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Params, ParamsError> {
    let mut params: Params = match query {
        Some(q) => serde_urlencoded::from_str(q).map_err(ParamsError::Query)?,
        None => Vec::new(),
    };
    if body.is_empty() {
        return Ok(params);
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if json {
        let value: serde_json::Value = serde_json::from_slice(body).map_err(ParamsError::Json)?;
        let object = value.as_object().ok_or(ParamsError::NotAnObject)?;
        for (k, v) in object {
            match v {
                serde_json::Value::String(s) => params.push((k.clone(), s.clone())),
                serde_json::Value::Number(n) => params.push((k.clone(), n.to_string())),
                serde_json::Value::Bool(b) => params.push((k.clone(), b.to_string())),
                _ => {}
            }
        }
    } else {
        let form: Params = serde_urlencoded::from_bytes(body).map_err(ParamsError::Form)?;
        params.extend(form);
    }
    Ok(params)
}

async fn intake(
    State(intake): State<Intake>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> (StatusCode, std::borrow::Cow<'static, str>) {
    if method != Method::GET && method != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, "GET or POST\n".into());
    }
    // The body is capped by the route's limit; the query is capped the same (the listener's
    // header cap stops anything far bigger before it is read).
    if query.as_ref().is_some_and(|q| q.len() > MAX_CALLBACK_BYTES) {
        intake.callbacks.engine().metrics().callback("too_big");
        tracing::warn!("callback with an oversized query refused");
        return (StatusCode::URI_TOO_LONG, "query too long\n".into());
    }
    let peer_ip = peer
        .map(|axum::Extension(axum::extract::ConnectInfo(addr))| addr.ip())
        .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
    if let (&Method::GET, Some(nonce)) = (&method, probe_nonce(query.as_deref())) {
        intake.callbacks.engine().metrics().callback("probe");
        let caller = intake.auth.source(peer_ip, &headers);
        let allowed = intake.auth.source_allowed(peer_ip, &headers);
        tracing::info!(caller = ?caller, allowed, "callback route probed (chasti doctor)");
        return (StatusCode::OK, probe_answer(nonce, caller, allowed).into());
    }
    if !intake.auth.source_allowed(peer_ip, &headers) {
        intake.callbacks.engine().metrics().callback("not_allowed");
        tracing::warn!(peer = %peer_ip, "callback from a source outside callback.allow refused");
        return (StatusCode::FORBIDDEN, "source not allowed\n".into());
    }
    let params = match callback_params(query.as_deref(), &headers, &body) {
        Ok(p) => p,
        Err(problem) => {
            intake.callbacks.engine().metrics().callback("unreadable");
            tracing::warn!(%problem, "unreadable callback refused");
            return (StatusCode::BAD_REQUEST, "unreadable callback\n".into());
        }
    };
    let get = |name: &str| callback_param(&params, name);
    let (md_order, order_number) = (get("mdOrder"), get("orderNumber"));
    if md_order.is_none() && order_number.is_none() {
        intake.callbacks.engine().metrics().callback("unreadable");
        tracing::warn!("callback without mdOrder or orderNumber refused");
        return (
            StatusCode::BAD_REQUEST,
            "mdOrder or orderNumber is required\n".into(),
        );
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let unsigned_ecom =
        intake.auth.ecom_hints && json && callback_param(&params, "checksum").is_none();
    let verified = if unsigned_ecom {
        Ok("unsigned")
    } else {
        intake.auth.verify(&params)
    };
    let signature = match verified {
        Ok(kind) => kind,
        Err(rejection) => {
            intake
                .callbacks
                .engine()
                .metrics()
                .callback(match rejection {
                    Rejection::Unsigned => "unsigned",
                    Rejection::BadChecksum => "bad_checksum",
                });
            tracing::warn!(md_order = ?md_order, order_number = ?order_number, operation = ?get("operation"), %rejection, "callback refused");
            return (
                StatusCode::FORBIDDEN,
                "checksum required and must verify\n".into(),
            );
        }
    };
    let operation = get("operation");
    let status = get("status");
    match intake.callbacks.accept(params, signature).await {
        Ok(CallbackOutcome::Accepted) => {
            intake.callbacks.engine().metrics().callback("accepted");
            tracing::info!(md_order = ?md_order, order_number = ?order_number, operation = ?operation, status = ?status, signature, "callback received");
        }
        Ok(CallbackOutcome::Replayed) => {
            intake.callbacks.engine().metrics().callback("replayed");
            tracing::debug!(md_order = ?md_order, order_number = ?order_number, "a repeated callback ignored");
        }
        Ok(CallbackOutcome::UnknownUnsigned) => {
            intake
                .callbacks
                .engine()
                .metrics()
                .callback("unknown_unsigned");
            tracing::debug!(md_order = ?md_order, order_number = ?order_number, "an unsigned callback for an unknown order ignored");
        }
        Err(e) => {
            // Not kept, so not acknowledged: the bank will try again.
            tracing::error!(error = %e, "callback could not be stored");
            return (StatusCode::SERVICE_UNAVAILABLE, "try again\n".into());
        }
    }
    (StatusCode::OK, "OK\n".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_short_plain_nonce_alone_is_a_probe() {
        assert_eq!(probe_nonce(Some("chasti_probe=abc-1234")), Some("abc-1234"));
        for not_a_probe in [
            None,
            Some(""),
            Some("chasti_probe="),
            Some("chasti_probe=short"),
            Some("chasti_probe=<script>alert(1)</script>"),
            Some("chasti_probe=abcdefgh&mdOrder=1"),
            Some("mdOrder=1&chasti_probe=abcdefgh"),
            Some("chasti_probe=%41%42%43%44%45%46%47%48"),
        ] {
            assert_eq!(probe_nonce(not_a_probe), None, "{not_a_probe:?}");
        }
        let huge = format!("chasti_probe={}", "a".repeat(65));
        assert_eq!(probe_nonce(Some(&huge)), None);
    }

    #[test]
    fn the_probe_answer_names_the_nonce_the_caller_and_whether_it_may_call_back() {
        let caller = "203.0.113.7".parse().ok();
        assert_eq!(
            probe_answer("abcdefgh", caller, false),
            "chasti-probe abcdefgh caller=203.0.113.7 allowed=no\n"
        );
        assert_eq!(
            probe_answer("abcdefgh", None, true),
            "chasti-probe abcdefgh caller=unknown allowed=yes\n"
        );
    }
}
