//! One error shape for every route, carrying the request's id: the same id is in the
//! `x-request-id` header and in the daemon's log line for the request.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::types::{ErrorBody, FieldProblem};
use crate::orders::EngineError;

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

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub error_type: &'static str,
    pub message: String,
    pub errors: Vec<FieldProblem>,
}

impl ApiError {
    pub fn new(status: StatusCode, error_type: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            error_type,
            message: message.into(),
            errors: Vec::new(),
        }
    }

    pub fn validation(errors: Vec<FieldProblem>) -> ApiError {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            error_type: "validation",
            message: "Проверьте данные: есть ошибки в полях.".into(),
            errors,
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
        };
        if self.status.is_server_error() {
            tracing::warn!(status = self.status.as_u16(), error_type = %body.error_type, message = %body.message, "request failed");
        }
        (self.status, Json(body)).into_response()
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        let message = e.to_string();
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
        }
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
            match serde_json::from_slice::<serde_json::Value>(body) {
                Ok(serde_json::Value::Object(map)) => map,
                Ok(_) => {
                    return Err(ApiError::bad_request(
                        "Тело запроса должно быть JSON-объектом.",
                    ))
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
    pub fn optional<T>(
        &mut self,
        name: &str,
        hint: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let text = self.string(name, hint)?;
        match parse(&text) {
            Ok(v) => Some(v),
            Err(problem) => {
                self.problem(name, problem);
                None
            }
        }
    }

    /// A required field: `missing` says what to send when it is absent.
    pub fn required<T>(
        &mut self,
        name: &str,
        missing: &str,
        hint: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
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

fn problem(field: &str, text: String) -> FieldProblem {
    FieldProblem {
        field: field.to_string(),
        problem: text,
    }
}
