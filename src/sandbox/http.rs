//! The sandbox's HTTP side: the gateway methods, the payment page and its JSON twin, and the
//! control API (ledger, faults, clock) that tests and the demo drive.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::bank::{Params, Refusal};
use super::callbacks::lock;
use super::faults::{take, Fault, Faults};
use super::{page, Shared};
use crate::gateway::Method;
use crate::server::ConnectionKill;

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/payment/rest/{method}", any(gateway_method))
        .route(ECOM_ROUTE, any(ecom_method))
        .route(ECOM_RECEIPT_STATUS, any(ecom_receipt_status))
        .route("/sandbox/pay/{id}", get(payment_page).post(payment_form))
        .route("/sandbox/api/ledger", get(ledger))
        .route("/sandbox/api/orders/{id}", get(order))
        .route("/sandbox/api/orders/{id}/pay", post(pay))
        .route("/sandbox/api/orders/{id}/decline", post(decline))
        .route("/sandbox/api/orders/{id}/authenticate", post(start_3ds))
        .route(
            "/sandbox/api/faults",
            get(get_faults).put(put_faults).delete(delete_faults),
        )
        .route("/sandbox/api/callbacks/release", post(release_callbacks))
        .route("/sandbox/api/clock", get(get_clock).post(move_clock))
        .with_state(shared)
}

async fn index() -> Html<&'static str> {
    Html(page::INDEX)
}

fn form_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(bytes).unwrap_or_default()
}

async fn gateway_method(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    kill: Option<Extension<ConnectionKill>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let Some(method) = Method::from_path(&name) else {
        return (StatusCode::NOT_FOUND, format!("unknown method {name}")).into_response();
    };
    // The legacy host takes GET query parameters and POST form bodies alike.
    let mut pairs = query.map(|q| form_pairs(q.as_bytes())).unwrap_or_default();
    pairs.extend(form_pairs(&body));
    let params = Params::new(pairs);
    answer(&shared, method, &params, kill, |reply| reply).await
}

/// The ecom gateway's path for `<method>.do` (the sandbox serves both dialects).
pub(super) const ECOM_PATH: &str = "ecomm/gw/partner/api/v1/";
const ECOM_ROUTE: &str = "/ecomm/gw/partner/api/v1/{method}";

/// The ecom host keeps its fiscal methods under `ofd/v1`, beside the payment ones.
const ECOM_RECEIPT_STATUS: &str = "/ecomm/gw/partner/api/ofd/v1/getReceiptStatus";

async fn ecom_receipt_status(
    State(shared): State<Arc<Shared>>,
    kill: Option<Extension<ConnectionKill>>,
    request_method: axum::http::Method,
    body: Bytes,
) -> Response {
    ecom_call(shared, Method::ReceiptStatus, kill, request_method, body).await
}

async fn ecom_method(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    kill: Option<Extension<ConnectionKill>>,
    request_method: axum::http::Method,
    body: Bytes,
) -> Response {
    let Some(method) = Method::from_path(&name).filter(|m| *m != Method::ReceiptStatus) else {
        return (StatusCode::NOT_FOUND, format!("unknown method {name}")).into_response();
    };
    ecom_call(shared, method, kill, request_method, body).await
}

async fn ecom_call(
    shared: Arc<Shared>,
    method: Method,
    kill: Option<Extension<ConnectionKill>>,
    request_method: axum::http::Method,
    body: Bytes,
) -> Response {
    if request_method != axum::http::Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, "POST JSON only\n").into_response();
    }
    let params = match super::ecom::params(method, &body) {
        Ok(p) => p,
        Err(refusal) => {
            return Json(super::ecom::with_error_code(refusal_json(&refusal))).into_response()
        }
    };
    answer(&shared, method, &params, kill, super::ecom::with_error_code).await
}

/// A gateway method's answer, with the faults set for it applied before or after.
async fn answer(
    shared: &Shared,
    method: Method,
    params: &Params,
    kill: Option<Extension<ConnectionKill>>,
    dialect: fn(serde_json::Value) -> serde_json::Value,
) -> Response {
    let about: Vec<&str> = ["orderId", "mdOrder", "orderNumber"]
        .iter()
        .filter_map(|k| params.value(k))
        .collect();
    let hits = take(&mut lock(&shared.fault_rules), method.path(), &about);
    let kill = kill.map(|Extension(k)| k);
    for fault in hits.before {
        if let Some(response) = apply(fault, kill.as_ref()).await {
            return response;
        }
    }
    let mut response = Json(dialect(process(shared, method, params))).into_response();
    for fault in hits.after {
        if let Some(replaced) = apply(fault, kill.as_ref()).await {
            response = replaced;
        }
    }
    response
}

fn process(shared: &Shared, method: Method, params: &Params) -> serde_json::Value {
    shared.expire_due();
    if let Err(refusal) = authenticate(shared, params) {
        return refusal_json(&refusal);
    }
    let now = shared.clock.now();
    let result = lock(&shared.bank).call(method, params, now, &shared.public_base);
    match result {
        Ok((value, notices)) => {
            shared.callbacks.dispatch(notices);
            value
        }
        Err(refusal) => refusal_json(&refusal),
    }
}

fn authenticate(shared: &Shared, p: &Params) -> Result<(), Refusal> {
    let denied = || Refusal {
        code: 5,
        message: "Access denied".into(),
    };
    if let Some(token) = p.value("token") {
        let known = shared
            .settings
            .tokens
            .iter()
            .any(|t| bool::from(t.expose().as_bytes().ct_eq(token.as_bytes())));
        return if known { Ok(()) } else { Err(denied()) };
    }
    let user = p.value("userName").ok_or_else(denied)?;
    let password = p.value("password").ok_or(Refusal {
        code: 4,
        message: "Password is empty".into(),
    })?;
    let accepted =
        shared.settings.users.iter().any(|(u, pw)| {
            u == user && bool::from(pw.expose().as_bytes().ct_eq(password.as_bytes()))
        });
    if accepted {
        Ok(())
    } else {
        Err(denied())
    }
}

/// Refusals carry errorCode as a string, as the legacy host sends them.
fn refusal_json(r: &Refusal) -> serde_json::Value {
    serde_json::json!({"errorCode": r.code.to_string(), "errorMessage": r.message})
}

async fn apply(fault: Fault, kill: Option<&ConnectionKill>) -> Option<Response> {
    match fault {
        Fault::Latency { ms } => {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            None
        }
        Fault::HttpStatus { status } => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = format!(
                "<html><head><title>{code}</title></head><body><center><h1>{code}</h1></center><hr><center>nginx</center></body></html>"
            );
            Some((code, [(header::CONTENT_TYPE, "text/html")], body).into_response())
        }
        Fault::Refuse { code, message } => Some(
            Json(serde_json::json!({"errorCode": code.to_string(), "errorMessage": message}))
                .into_response(),
        ),
        Fault::GarbageBody => Some(
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "{\"orderId\":\"7f1c\u{0}\u{1}<html>upstream reset",
            )
                .into_response(),
        ),
        Fault::DropConnection => {
            if let Some(kill) = kill {
                kill.kill();
                // The server drops this future with the connection: no reply is ever sent.
                std::future::pending::<()>().await;
            }
            Some(StatusCode::SERVICE_UNAVAILABLE.into_response())
        }
    }
}

async fn payment_page(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    shared.expire_due();
    let order = lock(&shared.bank).page_view(&id);
    page::render(&id, order.as_ref(), None).into_response()
}

#[derive(Deserialize)]
struct PageForm {
    action: String,
    #[serde(default)]
    code: String,
}

async fn payment_form(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form: Option<PageForm> = serde_urlencoded::from_bytes(&body).ok();
    let message = match form {
        None => Some("Не выбрано действие.".to_string()),
        // The bank's test host accepts any phone number with the code 1111.
        Some(f) if f.action == "pay" && f.code.trim() != page::TEST_CODE => Some(format!(
            "Неверный код из SMS. В тестовой среде код — {}.",
            page::TEST_CODE
        )),
        Some(f) if f.action == "pay" => shared.customer_pays(&id).err().map(|r| r.message),
        Some(f) if f.action == "decline" => {
            match shared.attempt_fails(&id, super::bank::AttemptFailure::InsufficientFunds) {
                Ok(_) => None,
                Err(r) => Some(r.message),
            }
        }
        Some(_) => Some("Неизвестное действие.".to_string()),
    };
    let order = lock(&shared.bank).page_view(&id);
    page::render(&id, order.as_ref(), message.as_deref()).into_response()
}

fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({"error": format!("{what} not found")})),
    )
        .into_response()
}

async fn ledger(State(shared): State<Arc<Shared>>) -> Json<super::Ledger> {
    Json(shared.ledger())
}

async fn order(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    shared.expire_due();
    match lock(&shared.bank).report(&id) {
        Some(report) => Json(report).into_response(),
        None => not_found("order"),
    }
}

fn page_action_reply(result: Result<crate::gateway::OrderStatus, Refusal>) -> Response {
    match result {
        Ok(status) => Json(serde_json::json!({"orderStatus": status.code()})).into_response(),
        Err(r) if r.code == 6 => not_found("order"),
        Err(r) => (
            StatusCode::CONFLICT,
            Json(serde_json::json!({"error": r.message})),
        )
            .into_response(),
    }
}

async fn pay(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    page_action_reply(shared.customer_pays(&id))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AttemptBody {
    #[serde(default)]
    reason: super::bank::AttemptFailure,
}

/// A failed payment attempt; the body may name the reason (`insufficient_funds`,
/// `issuer_refused3ds`, `card_expired`).
async fn decline(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let body =
        if body.is_empty() {
            AttemptBody::default()
        } else {
            match serde_json::from_slice::<AttemptBody>(&body) {
                Ok(b) => b,
                Err(e) => return (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Json(
                        serde_json::json!({"error": format!("the attempt is not understood: {e}")}),
                    ),
                )
                    .into_response(),
            }
        };
    page_action_reply(shared.attempt_fails(&id, body.reason))
}

/// The customer's bank starts a 3-D Secure check (orderStatus 5).
async fn start_3ds(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    page_action_reply(shared.authentication_starts(&id))
}

async fn get_faults(State(shared): State<Arc<Shared>>) -> Json<Faults> {
    Json(shared.faults())
}

async fn put_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match serde_json::from_slice::<Faults>(&body) {
        Ok(faults) => {
            shared.set_faults(faults);
            Json(shared.faults()).into_response()
        }
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(serde_json::json!({"error": format!("faults not understood: {e}")})),
        )
            .into_response(),
    }
}

async fn delete_faults(State(shared): State<Arc<Shared>>) -> Json<Faults> {
    shared.set_faults(Faults::default());
    Json(shared.faults())
}

async fn release_callbacks(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({"released": shared.callbacks.release_held()}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockMove {
    #[serde(default)]
    advance_secs: Option<i64>,
    #[serde(default)]
    set: Option<chrono::DateTime<chrono::Utc>>,
}

async fn get_clock(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({"now": shared.clock.now()}))
}

async fn move_clock(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match serde_json::from_slice::<ClockMove>(&body) {
        Ok(ClockMove {
            set: Some(at),
            advance_secs: None,
        }) => shared.clock.set(at),
        Ok(ClockMove {
            advance_secs: Some(secs),
            set: None,
        }) => {
            shared.clock.advance(chrono::Duration::seconds(secs));
        }
        _ => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(serde_json::json!({"error": "give exactly one of advance_secs (seconds) or set (RFC 3339 time)"})),
            )
                .into_response()
        }
    }
    shared.expire_due();
    Json(serde_json::json!({"now": shared.clock.now()})).into_response()
}
