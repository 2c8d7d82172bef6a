//! The till API under `/api/v1`: JSON, bearer tokens with roles (cashier, manager), one error
//! shape everywhere, and server-sent events so the till sees «оплачено» the moment it is known.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use crate::config::{ApiToken, Role};
use crate::devices::qr::QrSymbol;
use crate::devices::Devices;
use crate::money::Kopecks;
use crate::orders::domain::{description_problem, till_problem};
use crate::orders::{Engine, EngineError, Mode, Order, SaleRequest, State as OrderState};

/// Every route, as the OpenAPI document must list it (a test holds the two together).
pub const ROUTES: [(&str, &str); 11] = [
    ("post", "/api/v1/sales"),
    ("get", "/api/v1/orders"),
    ("get", "/api/v1/orders/{id}"),
    ("get", "/api/v1/orders/{id}/events"),
    ("post", "/api/v1/orders/{id}/reverse"),
    ("post", "/api/v1/orders/{id}/refund"),
    ("post", "/api/v1/orders/{id}/reprint"),
    ("get", "/api/v1/health"),
    ("get", "/api/v1/metrics"),
    ("get", "/api/v1/openapi.json"),
    ("get", "/api/v1/screen/events"),
];

/// The web pages, embedded: no build step, no files to install.
const SCREEN_PAGE: &str = include_str!("pages/screen.html");
const MANAGER_PAGE: &str = include_str!("pages/manager.html");

pub const OPENAPI: &str = include_str!("openapi.json");

#[derive(Clone)]
pub struct Api {
    pub engine: Engine,
    pub tokens: Arc<Vec<ApiToken>>,
    pub devices: Option<Devices>,
}

/// `{request_id, error_type, message, errors: [{field, problem}]}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    error_type: &'static str,
    message: String,
    errors: Vec<(String, String)>,
}

impl ApiError {
    fn new(status: StatusCode, error_type: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error_type,
            message: message.into(),
            errors: Vec::new(),
        }
    }

    fn validation(errors: Vec<(String, String)>) -> ApiError {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            error_type: "validation",
            message: "Проверьте данные: есть ошибки в полях.".into(),
            errors,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = uuid::Uuid::new_v4().to_string();
        let body = json!({
            "request_id": request_id,
            "error_type": self.error_type,
            "message": self.message,
            "errors": self.errors.iter().map(|(f, p)| json!({"field": f, "problem": p})).collect::<Vec<_>>(),
        });
        let mut response = (self.status, Json(body)).into_response();
        if let Ok(v) = request_id.parse() {
            response.headers_mut().insert("x-request-id", v);
        }
        response
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        let message = e.to_string();
        match e {
            EngineError::Invalid { field, problem } => {
                ApiError::validation(vec![(field.to_string(), problem)])
            }
            EngineError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "not_found", message),
            EngineError::Action(_) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            EngineError::Refused { .. } => {
                ApiError::new(StatusCode::BAD_GATEWAY, "gateway", message)
            }
            EngineError::Pending { .. } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "pending", message)
            }
            EngineError::NotReady => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", message)
            }
            EngineError::Store(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
            }
        }
    }
}

fn authorize(api: &Api, headers: &HeaderMap, need: Role) -> Result<Role, ApiError> {
    let given = headers
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
    let known = api
        .tokens
        .iter()
        .find(|t| bool::from(t.token.expose().as_bytes().ct_eq(given.as_bytes())));
    let Some(token) = known else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Токен доступа не подходит.",
        ));
    };
    if need == Role::Manager && token.role != Role::Manager {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Это действие доступно только менеджеру.",
        ));
    }
    Ok(token.role)
}

/// The order as the API shows it: the stored order plus what a person reads.
pub fn order_view(order: &Order) -> Value {
    let mut v = serde_json::to_value(order).unwrap_or_default();
    if let Some(map) = v.as_object_mut() {
        map.insert("amount_text".into(), order.amount.to_string().into());
        map.insert("state_text".into(), order.state.russian().into());
        map.remove("history");
        map.insert(
            "events".into(),
            serde_json::to_value(&order.history).unwrap_or_default(),
        );
    }
    v
}

pub fn router(api: Api) -> Router {
    Router::new()
        .route("/api/v1/sales", post(create_sale))
        .route("/api/v1/orders", get(list_orders))
        .route("/api/v1/orders/{id}", get(get_order))
        .route("/api/v1/orders/{id}/events", get(order_events))
        .route("/api/v1/orders/{id}/reverse", post(reverse))
        .route("/api/v1/orders/{id}/refund", post(refund))
        .route("/api/v1/orders/{id}/reprint", post(reprint))
        .route("/api/v1/health", get(health))
        .route("/api/v1/metrics", get(metrics))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/screen/events", get(screen_events))
        .route(
            "/screen",
            get(|| async { axum::response::Html(SCREEN_PAGE) }),
        )
        .route(
            "/manager",
            get(|| async { axum::response::Html(MANAGER_PAGE) }),
        )
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .with_state(api)
}

fn parse_object(body: &Bytes) -> Result<serde_json::Map<String, Value>, ApiError> {
    if body.is_empty() {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "Тело запроса должно быть JSON-объектом.",
        )),
        Err(e) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("Тело запроса не является JSON: {e}"),
        )),
    }
}

fn string_field(
    map: &serde_json::Map<String, Value>,
    name: &str,
    errors: &mut Vec<(String, String)>,
) -> Option<String> {
    match map.get(name) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errors.push((name.into(), "должно быть строкой".into()));
            None
        }
    }
}

/// Reads a sale, naming every bad field at once.
fn read_sale(map: &serde_json::Map<String, Value>) -> Result<SaleRequest, ApiError> {
    let mut errors = Vec::new();
    const KNOWN: [&str; 5] = ["amount", "mode", "description", "till", "idempotency_key"];
    for key in map.keys().filter(|k| !KNOWN.contains(&k.as_str())) {
        errors.push((
            key.clone(),
            format!("неизвестное поле; допустимы: {}", KNOWN.join(", ")),
        ));
    }
    let amount = match map.get("amount") {
        None | Some(Value::Null) => {
            errors.push((
                "amount".into(),
                "обязательное поле: сумма в рублях строкой, например \"1499.00\"".into(),
            ));
            None
        }
        Some(Value::String(s)) => match Kopecks::parse_amount(s) {
            Ok(k) => Some(k),
            Err(e) => {
                errors.push(("amount".into(), e.to_string()));
                None
            }
        },
        Some(_) => {
            errors.push((
                "amount".into(),
                "передайте сумму строкой, например \"1499.00\" (без дробных чисел JSON)".into(),
            ));
            None
        }
    };
    let mode = match string_field(map, "mode", &mut errors).as_deref() {
        None | Some("one-stage") => Some(Mode::OneStage),
        Some("two-stage") => Some(Mode::TwoStage),
        Some(other) => {
            errors.push((
                "mode".into(),
                format!("«{other}»: допустимо one-stage или two-stage"),
            ));
            None
        }
    };
    let description = string_field(map, "description", &mut errors);
    if let Some(problem) = description.as_deref().and_then(description_problem) {
        errors.push(("description".into(), problem));
    }
    let till = string_field(map, "till", &mut errors);
    if let Some(problem) = till.as_deref().and_then(till_problem) {
        errors.push(("till".into(), problem));
    }
    let key = string_field(map, "idempotency_key", &mut errors);
    match &key {
        None if !errors.iter().any(|(f, _)| f == "idempotency_key") => errors.push((
            "idempotency_key".into(),
            "обязательное поле: ключ, одинаковый для повторов одной продажи (1–128 символов)"
                .into(),
        )),
        Some(k) if k.is_empty() || k.len() > 128 => {
            errors.push(("idempotency_key".into(), "от 1 до 128 символов".into()))
        }
        _ => {}
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    Ok(SaleRequest {
        amount: amount.unwrap_or_default(),
        mode: mode.unwrap_or(Mode::OneStage),
        description,
        till,
        cashier: None,
        idempotency_key: key,
    })
}

async fn create_sale(
    State(api): State<Api>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize(&api, &headers, Role::Cashier)?;
    let map = parse_object(&body)?;
    let mut sale = read_sale(&map)?;
    sale.cashier = headers
        .get("x-cashier")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(64).collect());
    let order = api.engine.create_sale(sale).await?;
    let link = order.payment_url.clone().unwrap_or_default();
    let qr_svg = QrSymbol::encode(&link).map(|q| q.to_svg()).ok();
    let devices = match &api.devices {
        Some(d) => d.wait_outcome(&order.id, Duration::from_secs(3)).await,
        None => json!({"printer": "не настроен", "display": "не настроен"}),
    };
    let body = json!({
        "order": order_view(&order),
        "payment_url": link,
        "qr_svg": qr_svg,
        "devices": devices,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(Deserialize)]
struct ListQuery {
    day: Option<String>,
    state: Option<String>,
}

async fn list_orders(
    State(api): State<Api>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    authorize(&api, &headers, Role::Cashier)?;
    let mut errors = Vec::new();
    let day = match &q.day {
        None => crate::moscow::date(api.engine.now()),
        Some(d) => match chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d") {
            Ok(day) => day,
            Err(_) => {
                errors.push(("day".into(), format!("«{d}»: дата в виде ГГГГ-ММ-ДД")));
                chrono::NaiveDate::default()
            }
        },
    };
    if let Some(s) = &q.state {
        if !OrderState::NAMES.contains(&s.as_str()) {
            errors.push((
                "state".into(),
                format!("«{s}»: допустимо {}", OrderState::NAMES.join(", ")),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let orders = api.engine.list(day, q.state.as_deref())?;
    let paid: u64 = orders.iter().map(|o| o.net_paid().get()).sum();
    let paid = Kopecks::new(paid).unwrap_or_default();
    Ok(Json(json!({
        "day": day.to_string(),
        "orders": orders.iter().map(order_view).collect::<Vec<_>>(),
        "count": orders.len(),
        "net_paid": paid.get(),
        "net_paid_text": paid.to_string(),
    })))
}

async fn get_order(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    authorize(&api, &headers, Role::Cashier)?;
    Ok(Json(order_view(&api.engine.get(&id)?)))
}

async fn order_events(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&api, &headers, Role::Cashier)?;
    let updates = api.engine.subscribe();
    let current = api.engine.get(&id)?;
    Ok(update_stream(
        "order",
        updates,
        order_view(&current),
        move |order| (order.id == id).then(|| order_view(order)),
    ))
}

/// Server-sent events named `name`: `first`, then one for every order update `pick` maps to
/// a value (the others are skipped). Subscribed before `first` is read, so nothing is missed.
fn update_stream(
    name: &'static str,
    updates: tokio::sync::broadcast::Receiver<Order>,
    first: Value,
    pick: impl Fn(&Order) -> Option<Value> + Send + 'static,
) -> Response {
    use futures_util::StreamExt;
    let event = move |v: Value| {
        Ok::<Event, Infallible>(
            Event::default()
                .event(name)
                .json_data(v)
                .unwrap_or_default(),
        )
    };
    let head = futures_util::stream::once(std::future::ready(event(first)));
    let tail =
        futures_util::stream::unfold((updates, pick), move |(mut updates, pick)| async move {
            loop {
                match updates.recv().await {
                    Ok(order) => {
                        if let Some(v) = pick(&order) {
                            return Some((event(v), (updates, pick)));
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
    Sse::new(head.chain(tail))
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn reverse(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    authorize(&api, &headers, Role::Manager)?;
    Ok(Json(order_view(&api.engine.reverse(&id).await?)))
}

async fn refund(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    authorize(&api, &headers, Role::Manager)?;
    let map = parse_object(&body)?;
    let mut errors = Vec::new();
    for key in map
        .keys()
        .filter(|k| !["amount", "idempotency_key"].contains(&k.as_str()))
    {
        errors.push((
            key.clone(),
            "неизвестное поле; допустимы: amount, idempotency_key".into(),
        ));
    }
    let amount = match string_field(&map, "amount", &mut errors) {
        None => None,
        Some(s) => match Kopecks::parse_amount(&s) {
            Ok(k) => Some(k),
            Err(e) => {
                errors.push(("amount".into(), e.to_string()));
                None
            }
        },
    };
    let key = string_field(&map, "idempotency_key", &mut errors);
    if key.is_none() && !errors.iter().any(|(f, _)| f == "idempotency_key") {
        errors.push((
            "idempotency_key".into(),
            "обязательное поле: ключ этого возврата (1–64 символа)".into(),
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let order = api
        .engine
        .refund(&id, amount, &key.unwrap_or_default())
        .await?;
    Ok(Json(order_view(&order)))
}

async fn reprint(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    authorize(&api, &headers, Role::Cashier)?;
    let order = api.engine.get(&id)?;
    let Some(devices) = &api.devices else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "Принтер не настроен.",
        ));
    };
    match devices.reprint(&order).await {
        Ok(what) => Ok(Json(json!({"printed": what}))),
        Err(message) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "device",
            message,
        )),
    }
}

async fn health(State(api): State<Api>) -> Response {
    if api.engine.is_ready() {
        (StatusCode::OK, Json(json!({"status": "ready"}))).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "recovering"})),
        )
            .into_response()
    }
}

async fn metrics(State(api): State<Api>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        api.engine.metrics().render(),
    )
        .into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// What the customer screen shows for an order (or for none: idle).
pub fn screen_state(order: Option<&Order>) -> Value {
    let Some(o) = order else {
        return json!({"state": "idle", "title": "Добро пожаловать!"});
    };
    let amount = o.amount.to_string();
    match &o.state {
        OrderState::AwaitingPayment => {
            let link = o.payment_url.clone().unwrap_or_default();
            json!({
                "state": "awaiting",
                "title": "Оплата частями",
                "amount_text": amount,
                "qr_svg": QrSymbol::encode(&link).map(|q| q.to_svg()).unwrap_or_default(),
                "hint": "Наведите камеру телефона на QR-код и оплатите частями в приложении банка",
            })
        }
        OrderState::Held | OrderState::Depositing => {
            json!({"state": "processing", "title": "Оплата обрабатывается…", "amount_text": amount})
        }
        OrderState::Paid => {
            json!({"state": "paid", "title": "Оплачено", "amount_text": amount, "hint": "Спасибо за покупку!"})
        }
        OrderState::Declined { .. } | OrderState::Expired | OrderState::Failed { .. } => {
            json!({"state": "declined", "title": "Оплата не прошла", "hint": "Обратитесь к кассиру"})
        }
        _ => json!({"state": "idle", "title": "Добро пожаловать!"}),
    }
}

#[derive(Deserialize)]
struct ScreenQuery {
    till: Option<String>,
}

/// The customer screen's stream: the till's current sale, then every change of it. Open
/// without a token: it shows only what the customer sees anyway, and the API listens on
/// loopback unless configured otherwise.
async fn screen_events(
    State(api): State<Api>,
    Query(q): Query<ScreenQuery>,
) -> Result<Response, ApiError> {
    let till = q.till.filter(|t| !t.is_empty());
    let updates = api.engine.subscribe();
    let today = api
        .engine
        .list(crate::moscow::date(api.engine.now()), None)?;
    let current = today
        .iter()
        .rev()
        .find(|o| till.as_deref().is_none_or(|t| o.till == t))
        .filter(|o| {
            matches!(
                o.state,
                OrderState::AwaitingPayment | OrderState::Held | OrderState::Depositing
            )
        });
    Ok(update_stream(
        "screen",
        updates,
        screen_state(current),
        move |order| {
            let ours = till.as_deref().is_none_or(|t| order.till == t);
            let shown = matches!(
                order.state,
                OrderState::AwaitingPayment
                    | OrderState::Held
                    | OrderState::Depositing
                    | OrderState::Paid
                    | OrderState::Declined { .. }
                    | OrderState::Expired
                    | OrderState::Failed { .. }
            );
            (ours && shown).then(|| screen_state(Some(order)))
        },
    ))
}
