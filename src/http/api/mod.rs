//! The till API under `/api/v1`: typed requests and replies, bearer tokens with roles, one error
//! shape everywhere with the request's id, server-sent events, and an OpenAPI document generated
//! from the handlers themselves (served at `/api/v1/openapi.json`), so the two cannot drift.

mod actions;
pub mod auth;
pub mod cart;
pub mod close;
mod csv;
pub mod error;
mod export;
pub mod lists;
mod orders;
pub mod receipts;
pub mod replication;
pub mod sales;
pub mod screen;
pub mod session;
pub mod terminal;
pub mod types;

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::ApiToken;
use crate::devices::Devices;
use crate::engine::Engine;
use crate::orders::Order;
use types::Health;

/// Everything the handlers share. Built complete by [`Api::new`] from the config and the
/// daemon's parts; its handlers (this module's children) read the fields, nothing else does.
#[derive(Clone)]
pub struct Api {
    engine: Engine,
    tokens: Arc<Vec<ApiToken>>,
    devices: Option<Devices>,
    /// What a sale must have: its amount's bounds, and for the bank's cloud receipts a contact
    /// and a code for each VAT rate.
    sale_rules: sales::SaleRules,
    /// How long a fresh sale's reply waits for the printer's answer.
    device_wait: Duration,
    /// Set by the daemon when the engine's task has ended: health says so.
    engine_down: Arc<AtomicBool>,
    /// `/metrics` and the customer screen's stream answer without a token: true when the API
    /// listens on loopback only (`api.listen`).
    open_reads: bool,
    /// Sends payment links by SMS (`[sms]`); None when not set up.
    sms: Option<crate::sms::Courier>,
    /// The manager page's sign-ins (`[[api.people]]`, `api.session_hours`).
    sessions: Arc<session::Sessions>,
    /// The session cookie is marked `Secure`: the API speaks HTTPS (`api.tls_cert`).
    secure_cookies: bool,
    /// The shop's name on the terminal-shaped calls' slip text (`devices.shop_name`).
    shop_name: String,
    /// A hold is the sale's outcome at the till (`orders.deposit = "manual"`).
    holds_are_outcomes: bool,
    /// Shipping to the head office (`[replicate]`); None when not set up.
    replication: Option<crate::replicate::Watch>,
}

impl Api {
    /// The till API of a daemon: tokens, people, the sign-in's length, loopback or not and
    /// TLS from `[api]`, the largest sale from `orders.max_amount`, and the daemon's engine,
    /// devices and SMS courier.
    pub fn new(
        config: &crate::config::Config,
        engine: Engine,
        devices: Option<Devices>,
        sms: Option<crate::sms::Courier>,
    ) -> Api {
        Api {
            sessions: Arc::new(session::Sessions::new(
                config.api.people.clone(),
                config.api.session,
                engine.clock(),
            )),
            engine,
            tokens: Arc::new(config.api.tokens.clone()),
            devices,
            sale_rules: sales::SaleRules::of(config),
            device_wait: Duration::from_secs(3),
            engine_down: Arc::new(AtomicBool::new(false)),
            open_reads: config.api.listen.ip().is_loopback(),
            sms,
            secure_cookies: config.api.tls.is_some(),
            shop_name: config.devices.shop_name.clone(),
            holds_are_outcomes: config.orders.deposit == crate::config::DepositMode::Manual,
            replication: None,
        }
    }

    /// Reports on shipping to the head office (`GET /api/v1/replication`, `/metrics`).
    pub fn with_replication(mut self, watch: crate::replicate::Watch) -> Api {
        self.replication = Some(watch);
        self
    }

    /// Health turns `engine_stopped` (the daemon says so when the engine's task has ended).
    pub fn mark_engine_down(&self) {
        self.engine_down.store(true, Ordering::SeqCst);
    }

    /// The manager page's open sign-ins.
    pub fn sessions(&self) -> &session::Sessions {
        &self.sessions
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "chasti till API",
        description = "Sell through Sber's «Плати частями» from a shop's till. Every error is an ErrorBody with a Russian message fit to show a cashier.",
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "sales", description = "The till's one call"),
        (name = "orders", description = "Orders, their history and events"),
        (name = "manager", description = "Deposits, reversals and refunds (manager token)"),
        (name = "terminal", description = "One synchronous call per operation, as a card terminal: pay, return"),
        (name = "screen", description = "The customer-facing screen"),
        (name = "service", description = "Health, metrics, this document"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API's routes and their generated OpenAPI document.
pub fn routes() -> (Router<Api>, utoipa::openapi::OpenApi) {
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(sales::create_sale))
        .routes(routes!(lists::list_orders))
        .routes(routes!(export::orders_csv))
        .routes(routes!(export::orders_jsonl))
        .routes(routes!(export::backup))
        .routes(routes!(orders::get_order))
        .routes(routes!(orders::order_events))
        .routes(routes!(actions::cancel))
        .routes(routes!(actions::deposit))
        .routes(routes!(actions::reverse))
        .routes(routes!(actions::refund))
        .routes(routes!(actions::reprint))
        .routes(routes!(actions::send_link))
        .routes(routes!(receipts::report_receipt))
        .routes(routes!(close::close_day))
        .routes(routes!(replication::replication))
        .routes(routes!(terminal::pay))
        .routes(routes!(terminal::return_payment))
        .routes(routes!(screen::screen_events))
        .routes(routes!(
            session::sign_in,
            session::current,
            session::sign_out
        ))
        .routes(routes!(health))
        .routes(routes!(metrics))
        .routes(routes!(openapi_json))
        .split_for_parts();
    (router, with_session_security(doc))
}

/// Every operation a bearer token opens also opens with the manager page's session cookie
/// (`session.rs`): the document says so once here rather than on each handler.
fn with_session_security(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement};
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "session",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            session::COOKIE,
            "The manager page's sign-in (POST /api/v1/session); a change also needs X-CSRF-Token",
        ))),
    );
    for item in doc.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            if let Some(security) = op.security.as_mut().filter(|s| !s.is_empty()) {
                security.push(SecurityRequirement::new("session", Vec::<String>::new()));
            }
        }
    }
    doc
}

/// The generated OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().1
}

/// The whole router: the API, its document, the pages, request ids and logging.
pub fn router(api: Api) -> Router {
    let (routes, doc) = routes();
    let doc = Arc::new(doc);
    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &axum::http::Request<_>| {
            let id = request
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
        })
        .on_response(
            |response: &Response, latency: Duration, _span: &tracing::Span| {
                tracing::info!(status = response.status().as_u16(), ms = latency.as_millis() as u64, "answered");
            },
        );
    routes
        .route("/screen", get(screen::screen_page))
        .route("/manager", get(screen::manager_page))
        .layer(axum::Extension(doc))
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .layer(axum::middleware::from_fn(error::require_json))
        .layer(axum::middleware::from_fn(error::request_scope))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(trace)
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(api)
}

/// `ready` as soon as the store is open and sales are taken (interrupted orders are reconciled
/// meanwhile: `recovering`); 503 while stopping, or when the engine has stopped (the
/// process then exits non-zero for systemd to restart it).
#[utoipa::path(
    get,
    path = "/api/v1/health",
    tag = "service",
    responses(
        (status = 200, body = Health),
        (status = 503, description = "Stopping, or the engine has stopped", body = Health),
    )
)]
pub async fn health(State(api): State<Api>) -> (StatusCode, Json<Health>) {
    let status = if api.engine_down.load(Ordering::SeqCst) {
        "engine_stopped"
    } else if api.engine.is_stopping() {
        "stopping"
    } else {
        "ready"
    };
    let code = match status {
        "ready" => StatusCode::OK,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    (
        code,
        Json(Health {
            status: status.into(),
            recovering: api.engine.recovering(),
        }),
    )
}

/// Prometheus text: sales by outcome, callbacks, gateway latency and errors, device errors.
#[utoipa::path(
    get,
    path = "/api/v1/metrics",
    tag = "service",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String))
)]
pub async fn metrics(State(api): State<Api>, _viewer: auth::Viewer) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        api.engine.metrics().render() + &api.replication_metrics(),
    )
        .into_response()
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "service",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json"))
)]
pub async fn openapi_json(
    axum::Extension(doc): axum::Extension<Arc<utoipa::openapi::OpenApi>>,
) -> Json<utoipa::openapi::OpenApi> {
    Json((*doc).clone())
}

/// Server-sent events named `name`: `first`, then one for every order update `pick` maps to
/// a value (the others are skipped). Subscribed before `first` is read, so nothing is missed;
/// the stream ends when the daemon begins to stop, so shutdown never waits on it.
pub(crate) fn update_stream<T: Serialize + Send + 'static>(
    engine: &Engine,
    name: &'static str,
    updates: tokio::sync::broadcast::Receiver<Order>,
    first: T,
    pick: impl Fn(&Order) -> Option<T> + Send + 'static,
) -> Response {
    use futures_util::StreamExt;
    let event = move |v: T| {
        Ok::<Event, Infallible>(
            Event::default()
                .event(name)
                .json_data(v)
                .unwrap_or_default(),
        )
    };
    let head = futures_util::stream::once(std::future::ready(event(first)));
    let engine = engine.clone();
    let tail = futures_util::stream::unfold(
        (updates, pick, engine),
        move |(mut updates, pick, engine)| async move {
            loop {
                let received = tokio::select! {
                    r = updates.recv() => r,
                    _ = engine.stopping() => return None,
                };
                match received {
                    Ok(order) => {
                        if let Some(v) = pick(&order) {
                            return Some((event(v), (updates, pick, engine)));
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        },
    );
    Sse::new(head.chain(tail))
        .keep_alive(KeepAlive::default())
        .into_response()
}
