//! One order and its event stream. `{id}` is the order's id or the number printed on the slip.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;

use super::auth::Cashier;
use super::error::ApiError;
use super::types::{ErrorBody, OrderView};
use super::{update_stream, Api};

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

/// Server-sent events (`event: order`): the order now, then at every change (a failed payment
/// attempt included).
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
