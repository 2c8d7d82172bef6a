//! What a cashier or a manager does to an order: cancel an unpaid sale, deposit a hold, reverse,
//! refund, print the slip again. Each records who asked (the token's name, and the cashier in
//! `X-Cashier`). `{id}` is the order's id or the number printed on the slip.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use super::auth::{Cashier, Manager};
use super::error::{ApiError, Fields};
use super::types::{
    CancelReply, DepositBody, ErrorBody, OrderView, RefundBody, Reprinted, SendLinkBody, SmsView,
};
use super::Api;
use crate::domain::IdempotencyKey;
use crate::domain::Phone;
use crate::engine::Cancel;
use crate::money::Kopecks;
use crate::sms::SmsRefused;

/// Cancel a sale that is not paid (decline.do): the link stops working, the customer screen
/// returns to idle, the display says «Продажа отменена», a short slip prints. A sale still
/// registering is cancelled as soon as the bank answers (202).
#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/cancel",
    tag = "orders",
    params(("id" = String, Path, description = "The order's id or its number")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Cancelled at the bank, now or by an earlier cancel (then nothing is sent again)", body = CancelReply),
        (status = 202, description = "Still registering: it is cancelled as soon as the bank answers", body = CancelReply),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Already paid or held (`already_paid`: the order now shows the money), or not cancellable in its state", body = ErrorBody),
        (status = 502, body = ErrorBody),
        (status = 503, description = "The bank's answer is not known yet", body = ErrorBody),
    )
)]
pub async fn cancel(
    State(api): State<Api>,
    Cashier(caller): Cashier,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<CancelReply>), ApiError> {
    let order = api.engine.find(&id)?;
    match api.engine.cancel(&order.id, &caller.actor()).await? {
        Cancel::Done(order) => Ok((
            StatusCode::OK,
            Json(CancelReply {
                message: format!(
                    "Продажа {} на {} отменена: ссылка на оплату больше не действует.",
                    order.order_number, order.amount
                ),
                order: OrderView::from(&order),
            }),
        )),
        Cancel::AlreadyDone(order) => Ok((
            StatusCode::OK,
            Json(CancelReply {
                message: format!(
                    "Продажа {} на {} уже отменена: ссылка на оплату не действует.",
                    order.order_number, order.amount
                ),
                order: OrderView::from(&order),
            }),
        )),
        Cancel::Requested(order) => Ok((
            StatusCode::ACCEPTED,
            Json(CancelReply {
                message: format!(
                    "Продажа {} ещё создаётся в банке; она будет отменена, как только банк ответит.",
                    order.order_number
                ),
                order: OrderView::from(&order),
            }),
        )),
    }
}

/// Take a held amount now (for `orders.deposit = "manual"`): all of it, or `amount` (the
/// rest of the hold is released; the receipt is for what is taken).
#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/deposit",
    tag = "manager",
    params(("id" = String, Path, description = "The order's id or its number")),
    request_body(content = DepositBody, description = "Optional: an empty body takes the whole hold"),
    security(("bearer" = [])),
    responses(
        (status = 200, body = OrderView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Not a held amount, an amount above the hold, or the order is busy", body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 502, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub async fn deposit(
    State(api): State<Api>,
    Manager(caller): Manager,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<OrderView>, ApiError> {
    let mut f = Fields::read(&body, &DepositBody::FIELDS)?;
    let amount = f.optional("amount", ", например \"600.00\"", |s| {
        Kopecks::parse_amount(s).map_err(|e| e.to_string())
    });
    let amount = f.finish(|| Some(amount))?;
    let order = api.engine.find(&id)?;
    let actor = caller.actor();
    Ok(Json(OrderView::from(
        &api.engine.deposit(&order.id, amount, Some(&actor)).await?,
    )))
}

/// Reverse a hold, or a payment on the Moscow day the bank took it (the bank allows one try).
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
    Manager(caller): Manager,
    Path(id): Path<String>,
) -> Result<Json<OrderView>, ApiError> {
    let order = api.engine.find(&id)?;
    let actor = caller.actor();
    Ok(Json(OrderView::from(
        &api.engine.reverse(&order.id, Some(&actor)).await?,
    )))
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
    Manager(caller): Manager,
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
    let actor = caller.actor();
    Ok(Json(OrderView::from(
        &api.engine
            .refund(&order.id, amount, &key, Some(&actor))
            .await?,
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
    Cashier(caller): Cashier,
    Path(id): Path<String>,
) -> Result<Json<Reprinted>, ApiError> {
    let order = api.engine.find(&id)?;
    let Some(devices) = &api.devices else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "Принтер не настроен.",
        ));
    };
    let actor = caller.actor();
    match devices.reprint(&api.engine, &order, Some(&actor)).await {
        Ok(printed) => {
            api.engine
                .note_reprint(&order.id, &printed.label, &printed.russian, Some(&actor))
                .await?;
            Ok(Json(Reprinted {
                printed: format!("Напечатан повторно {}.", printed.russian),
            }))
        }
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

/// Send the order's payment link by SMS (cashier): at once answered `queued` (the history says
/// later whether it was sent, delivered or failed) or `already_sent` (once per order and number).
#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/send-link",
    tag = "orders",
    params(("id" = String, Path, description = "The order's id or its number")),
    request_body = SendLinkBody,
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Queued, or sent before to this number", body = SmsView),
        (status = 400, description = "The body is not a JSON object", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The order has no payable link now", body = ErrorBody),
        (status = 422, description = "Not a Russian mobile number, named", body = ErrorBody),
        (status = 429, description = "Too many SMS to this number or from this till this hour", body = ErrorBody),
        (status = 503, description = "SMS is not set up", body = ErrorBody),
    )
)]
pub async fn send_link(
    State(api): State<Api>,
    Cashier(caller): Cashier,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<SmsView>), ApiError> {
    let mut f = Fields::read(&body, &["phone"])?;
    let phone = f.required(
        "phone",
        "мобильный номер, например +7 912 345-67-89",
        "",
        |s| Phone::parse(s).map_err(|e| e.ru),
    );
    let phone = f.finish(|| phone)?;
    let order = api.engine.find(&id)?;
    let outcome = api.sms_send(&order, &phone).await;
    let view = super::sales::sms_view(&outcome, &phone);
    let (status, kind) = match outcome {
        Ok(_) => {
            tracing::info!(order = %order.order_number, phone = %phone.masked(), by = %caller.name, status = %view.status, "payment link by SMS asked for");
            return Ok((StatusCode::ACCEPTED, Json(view)));
        }
        Err(SmsRefused::NotConfigured) => (StatusCode::SERVICE_UNAVAILABLE, "not_configured"),
        Err(SmsRefused::NoLink(_)) => (StatusCode::CONFLICT, "conflict"),
        Err(SmsRefused::NotKept(_)) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        Err(SmsRefused::TooManyForPhone(..) | SmsRefused::TooManyForTill(..)) => {
            (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
        }
    };
    Err(ApiError::new(status, kind, view.message))
}
