//! The routes about orders: the day's list, one order, its event stream, and what a manager or
//! a cashier does to it. `{id}` is the order's id or the number printed on the slip.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::Json;
use serde::Deserialize;

use super::auth::{Cashier, Manager};
use super::error::{ApiError, Fields};
use super::types::{ErrorBody, FieldProblem, OrderList, OrderView, RefundBody, Reprinted};
use super::{update_stream, Api};
use crate::domain::IdempotencyKey;
use crate::money::Kopecks;
use crate::orders::StateKind;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// The Moscow day, `YYYY-MM-DD`; today when absent.
    day: Option<String>,
    /// Only orders in this state (e.g. `paid`).
    state: Option<String>,
}

/// The orders of a Moscow day with the net paid total.
#[utoipa::path(
    get,
    path = "/api/v1/orders",
    tag = "orders",
    params(ListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = OrderList),
        (status = 401, body = ErrorBody),
        (status = 422, description = "A bad day or state, named", body = ErrorBody),
    )
)]
pub async fn list_orders(
    State(api): State<Api>,
    _caller: Cashier,
    Query(q): Query<ListQuery>,
) -> Result<Json<OrderList>, ApiError> {
    let mut errors = Vec::new();
    let day = match &q.day {
        None => Some(crate::moscow::date(api.engine.now())),
        Some(d) => match chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d") {
            Ok(day) => Some(day),
            Err(_) => {
                errors.push(FieldProblem {
                    field: "day".into(),
                    problem: format!("«{d}»: дата в виде ГГГГ-ММ-ДД"),
                });
                None
            }
        },
    };
    let state = match &q.state {
        None => None,
        Some(s) => match StateKind::parse(s) {
            Some(kind) => Some(kind),
            None => {
                let names: Vec<&str> = StateKind::ALL.iter().map(|k| k.name()).collect();
                errors.push(FieldProblem {
                    field: "state".into(),
                    problem: format!("«{s}»: допустимо {}", names.join(", ")),
                });
                None
            }
        },
    };
    let Some(day) = day.filter(|_| errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };
    let orders = api.engine.list(day, state)?;
    let net_paid = Kopecks::checked_sum(orders.iter().map(|o| o.net_paid())).ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Сумма за день не помещается в допустимый диапазон.",
        )
    })?;
    Ok(Json(OrderList {
        day,
        count: orders.len(),
        orders: orders.iter().map(OrderView::from).collect(),
        net_paid,
        net_paid_text: net_paid.to_string(),
    }))
}

/// One order with its history.
#[utoipa::path(
    get,
    path = "/api/v1/orders/{id}",
    tag = "orders",
    params(("id" = String, Path, description = "The order's id or its number (S1-1-261123-0006)")),
    security(("bearer" = [])),
    responses((status = 200, body = OrderView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody))
)]
pub async fn get_order(
    State(api): State<Api>,
    _caller: Cashier,
    Path(id): Path<String>,
) -> Result<Json<OrderView>, ApiError> {
    Ok(Json(OrderView::from(&api.engine.find(&id)?)))
}

/// Server-sent events (`event: order`): the order now, then at every change.
#[utoipa::path(
    get,
    path = "/api/v1/orders/{id}/events",
    tag = "orders",
    params(("id" = String, Path, description = "The order's id or its number")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A stream of `event: order` with an OrderView as data", content_type = "text/event-stream", body = OrderView),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn order_events(
    State(api): State<Api>,
    _caller: Cashier,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let updates = api.engine.subscribe();
    let current = api.engine.find(&id)?;
    let id = current.id;
    Ok(update_stream(
        &api.engine,
        "order",
        updates,
        OrderView::from(&current),
        move |order| (order.id == id).then(|| OrderView::from(order)),
    ))
}

/// Reverse a hold, or a payment on the Moscow day it was paid (the bank allows one try).
#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/reverse",
    tag = "manager",
    params(("id" = String, Path, description = "The order's id or its number")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = OrderView),
        (status = 401, body = ErrorBody),
        (status = 403, description = "A cashier's token", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Not reversible now (after midnight: refund), or the order is busy", body = ErrorBody),
        (status = 502, description = "The bank refused", body = ErrorBody),
        (status = 503, description = "The bank's answer is not known yet", body = ErrorBody),
    )
)]
pub async fn reverse(
    State(api): State<Api>,
    _manager: Manager,
    Path(id): Path<String>,
) -> Result<Json<OrderView>, ApiError> {
    let order = api.engine.find(&id)?;
    Ok(Json(OrderView::from(&api.engine.reverse(&order.id).await?)))
}

/// Refund all that is left, or an amount. The same key refunds once.
#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/refund",
    tag = "manager",
    params(("id" = String, Path, description = "The order's id or its number")),
    request_body = RefundBody,
    security(("bearer" = [])),
    responses(
        (status = 200, body = OrderView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Not refundable, or above what is left", body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 502, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub async fn refund(
    State(api): State<Api>,
    _manager: Manager,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<OrderView>, ApiError> {
    let mut f = Fields::read(&body, &RefundBody::FIELDS)?;
    let amount = f.optional("amount", ", например \"500.00\"", |s| {
        Kopecks::parse_amount(s).map_err(|e| e.to_string())
    });
    let key = f.required(
        "idempotency_key",
        "ключ этого возврата (1–64 символа, например UUID)",
        "",
        |s| IdempotencyKey::parse(s).map_err(|e| e.ru),
    );
    let (amount, key) = f.finish(|| Some((amount, key?)))?;
    let order = api.engine.find(&id)?;
    Ok(Json(OrderView::from(
        &api.engine.refund(&order.id, amount, &key).await?,
    )))
}

/// Print the slip of the order's current state again (the payment slip while unpaid).
#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/reprint",
    tag = "orders",
    params(("id" = String, Path, description = "The order's id or its number")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Reprinted),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "No printer, or no slip for this state", body = ErrorBody),
        (status = 503, description = "The printer cannot print now", body = ErrorBody),
    )
)]
pub async fn reprint(
    State(api): State<Api>,
    _caller: Cashier,
    Path(id): Path<String>,
) -> Result<Json<Reprinted>, ApiError> {
    use axum::http::StatusCode;
    let order = api.engine.find(&id)?;
    let Some(devices) = &api.devices else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "Принтер не настроен.",
        ));
    };
    match devices.reprint(&api.engine, &order).await {
        Ok(printed) => Ok(Json(Reprinted { printed })),
        Err(crate::devices::ReprintError::Nothing(message)) => {
            Err(ApiError::new(StatusCode::CONFLICT, "conflict", message))
        }
        Err(crate::devices::ReprintError::Device(message)) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "device",
            message,
        )),
    }
}
