//! One error shape for every route, carrying the request's id: the same id is in the
//! `x-request-id` header and in the daemon's log line for the request.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::types::{ErrorBody, FieldProblem, OrderView};
use crate::engine::EngineError;

tokio::task_local! {
    /// The id of the request being handled (set by [`request_scope`]).
    static REQUEST_ID: String;
}

/// The current request's id, for error bodies built inside a handler.
pub fn request_id() -> String {
    REQUEST_ID
        .try_with(|id| id.clone())
        .unwrap_or_else(|_| uuid::Uuid::new_v4().to_string())
}

/// Runs the rest of the request with its id (set by tower-http's `SetRequestIdLayer`) in scope.
pub async fn request_scope(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    REQUEST_ID.scope(id, next.run(request)).await
}

/// A request with a body must say it is JSON: a form or text posted by mistake gets 415 with
/// what to send, not a guess at what it meant.
pub async fn require_json(request: Request, next: Next) -> Response {
    let headers = request.headers();
    let has_body = headers.contains_key(axum::http::header::TRANSFER_ENCODING)
        || headers
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0");
    let json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            let v = v.trim();
            v.eq_ignore_ascii_case("application/json")
                || (v.len() > 17
                    && v[..12].eq_ignore_ascii_case("application/")
                    && v.to_ascii_lowercase().ends_with("+json"))
        });
    if has_body && !json {
        return ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Тело запроса должно быть JSON с заголовком Content-Type: application/json.",
        )
        .into_response();
    }
    next.run(request).await
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub error_type: &'static str,
    pub message: String,
    pub errors: Vec<FieldProblem>,
    /// The order the error is about, as it stands, when the caller must see it.
    pub order: Option<Box<OrderView>>,
}

impl ApiError {
    pub fn new(status: StatusCode, error_type: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            error_type,
            message: message.into(),
            errors: Vec::new(),
            order: None,
        }
    }

    /// The same error, carrying the order it is about.
    pub fn with_order(mut self, order: &crate::orders::Order) -> ApiError {
        self.order = Some(Box::new(OrderView::from(order)));
        self
    }

    pub fn validation(errors: Vec<FieldProblem>) -> ApiError {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            error_type: "validation",
            message: "Проверьте данные: есть ошибки в полях.".into(),
            errors,
            order: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            request_id: request_id(),
            error_type: self.error_type.to_string(),
            message: self.message,
            errors: self.errors,
            order: self.order,
        };
        if self.status.is_server_error() {
            tracing::warn!(status = self.status.as_u16(), error_type = %body.error_type, message = %body.message, "request failed");
        }
        (self.status, Json(body)).into_response()
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        let message = e.cashier_text();
        let status = |s: StatusCode, t: &'static str| ApiError::new(s, t, message.clone());
        match &e {
            EngineError::NotFound(_) => status(StatusCode::NOT_FOUND, "not_found"),
            EngineError::Action(_) => status(StatusCode::CONFLICT, "conflict"),
            EngineError::Busy { .. } => status(StatusCode::CONFLICT, "busy"),
            EngineError::StillRegistering { .. } => status(StatusCode::CONFLICT, "registering"),
            EngineError::AlreadyPaid { .. } => status(StatusCode::CONFLICT, "already_paid"),
            EngineError::KeyReused { .. } => ApiError {
                errors: vec![FieldProblem {
                    field: "idempotency_key".into(),
                    problem: "ключ уже использован для другой продажи".into(),
                }],
                ..status(StatusCode::UNPROCESSABLE_ENTITY, "validation")
            },
            EngineError::BankRefused { detail, .. } | EngineError::SaleFailed { detail, .. } => {
                tracing::info!(%detail, "the bank refused");
                status(StatusCode::BAD_GATEWAY, "gateway")
            }
            EngineError::BankUnreachable { detail, .. } => {
                tracing::warn!(%detail, "the bank could not be reached");
                status(StatusCode::SERVICE_UNAVAILABLE, "unreachable")
            }
            EngineError::Pending { detail, .. } => {
                tracing::info!(%detail, "outcome unknown for now");
                status(StatusCode::SERVICE_UNAVAILABLE, "pending")
            }
            EngineError::ShuttingDown => status(StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
            EngineError::Store(detail) => {
                tracing::error!(error = %detail, "store error");
                status(StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
            EngineError::Refused(refused) => {
                tracing::error!(error = %refused, "a transition chasti asked for was refused");
                status(StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        }
    }
}

/// What is wrong with one field, in the words the till is shown (Russian): what was wrong and
/// what is allowed. Parsers of fields answer with it, or with anything that becomes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem(pub String);

impl From<String> for Problem {
    fn from(text: String) -> Problem {
        Problem(text)
    }
}

impl From<&str> for Problem {
    fn from(text: &str) -> Problem {
        Problem(text.to_string())
    }
}

/// Reads a JSON object body field by field, collecting every problem, so one 422 names every
/// bad field at once. Unknown keys are problems too.
pub struct Fields {
    map: serde_json::Map<String, serde_json::Value>,
    pub errors: Vec<FieldProblem>,
}

impl Fields {
    /// An empty body reads as `{}`.
    pub fn read(body: &[u8], known: &[&str]) -> Result<Fields, ApiError> {
        let map = if body.is_empty() {
            serde_json::Map::new()
        } else {
            match serde_json::from_slice::<UniqueKeys>(body) {
                Ok(UniqueKeys(map)) => map,
                Err(e) if e.is_data() => {
                    return Err(ApiError::bad_request(format!(
                        "Тело запроса должно быть JSON-объектом без повторяющихся полей: {e}"
                    )))
                }
                Err(e) => {
                    return Err(ApiError::bad_request(format!(
                        "Тело запроса не является JSON: {e}"
                    )))
                }
            }
        };
        let mut errors = Vec::new();
        for key in map.keys().filter(|k| !known.contains(&k.as_str())) {
            errors.push(problem(
                key,
                format!("неизвестное поле; допустимы: {}", known.join(", ")),
            ));
        }
        Ok(Fields { map, errors })
    }

    pub fn problem(&mut self, field: &str, text: impl Into<String>) {
        self.errors.push(problem(field, text.into()));
    }

    /// A field's JSON value as sent (for fields that are not strings: lists, objects).
    pub fn value(&self, name: &str) -> Option<&serde_json::Value> {
        self.map.get(name)
    }

    /// A whole number field (a JSON integer, or digits in a string) within `allowed`; `None`
    /// when absent or null.
    pub fn integer(
        &mut self,
        name: &str,
        allowed: std::ops::RangeInclusive<u64>,
        what: &str,
    ) -> Option<u64> {
        let value = match self.map.get(name) {
            None | Some(serde_json::Value::Null) => return None,
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.trim().parse::<u64>().ok(),
            Some(_) => None,
        };
        match value.filter(|v| allowed.contains(v)) {
            Some(v) => Some(v),
            None => {
                let text = format!(
                    "{what}: целое число от {} до {}",
                    allowed.start(),
                    allowed.end()
                );
                self.problem(name, text);
                None
            }
        }
    }

    /// A string field; `None` when absent or null. Any other JSON type is a problem.
    pub fn string(&mut self, name: &str, hint: &str) -> Option<String> {
        match self.map.get(name) {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.problem(name, format!("должно быть строкой{hint}"));
                None
            }
        }
    }

    /// An optional string field parsed by `parse` (a problem when it does not parse); `hint`
    /// follows «должно быть строкой» when another JSON type came.
    pub fn optional<T, E: Into<Problem>>(
        &mut self,
        name: &str,
        hint: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        let text = self.string(name, hint)?;
        match parse(&text) {
            Ok(v) => Some(v),
            Err(problem) => {
                self.problem(name, problem.into().0);
                None
            }
        }
    }

    /// A required field: `missing` says what to send when it is absent.
    pub fn required<T, E: Into<Problem>>(
        &mut self,
        name: &str,
        missing: &str,
        hint: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        if matches!(self.map.get(name), None | Some(serde_json::Value::Null)) {
            self.problem(name, format!("обязательное поле: {missing}"));
            return None;
        }
        self.optional(name, hint, parse)
    }

    /// Ok with the parsed values only if nothing was wrong.
    pub fn finish<T>(self, value: impl FnOnce() -> Option<T>) -> Result<T, ApiError> {
        match (self.errors.is_empty(), value()) {
            (true, Some(v)) => Ok(v),
            (_, _) => Err(ApiError::validation(self.errors)),
        }
    }
}

/// A JSON object whose keys are each given once. serde_json keeps the last of repeated keys
/// silently (no option says otherwise), and which of `"amount": "10.00", "amount": "10000.00"`
/// the POS meant is a guess chasti must not make; hence this visitor.
struct UniqueKeys(serde_json::Map<String, serde_json::Value>);

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = UniqueKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<UniqueKeys, A::Error> {
                let mut map = serde_json::Map::new();
                while let Some(key) = a.next_key::<String>()? {
                    if map.contains_key(&key) {
                        return Err(serde::de::Error::custom(format!(
                            "поле «{key}» указано дважды"
                        )));
                    }
                    let value = a.next_value()?;
                    map.insert(key, value);
                }
                Ok(UniqueKeys(map))
            }
        }
        d.deserialize_map(Visitor)
    }
}

fn problem(field: &str, text: String) -> FieldProblem {
    FieldProblem {
        field: field.to_string(),
        problem: text,
    }
}
