//! `POST /api/v1/orders/{id}/receipts`: the POS reports the fiscal receipt it printed for a
//! movement chasti told it of (`[fiscal] mode = "pos"`). The same report twice is answered the
//! same; a report for a receipt the order does not owe is refused, saying which it does owe.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Cashier;
use super::error::{ApiError, Fields, Problem};
use super::types::{ErrorBody, OrderView};
use super::Api;
use crate::money::Kopecks;
use crate::orders::receipt::{reported, Fiscal, ReceiptKind, ReportProblem, Reported};
use crate::orders::transition::Input;

/// What the POS printed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReceiptReport {
    /// The webhook's `event_id`, when the POS kept it; else the receipt is found by kind and
    /// amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<uuid::Uuid>,
    /// `sell` or `sell_return`.
    pub kind: String,
    /// Roubles as a string, as every amount the till sends: `"1499.50"`.
    pub amount: String,
    /// ФД: the fiscal document's number (digits).
    pub fiscal_document_number: String,
    /// ФП: the fiscal sign (digits).
    pub fiscal_sign: String,
    /// The ФН's number (16 digits).
    pub fn_number: String,
}

impl ReceiptReport {
    pub const FIELDS: [&'static str; 6] = [
        "event_id",
        "kind",
        "amount",
        "fiscal_document_number",
        "fiscal_sign",
        "fn_number",
    ];
}

fn digits(what: &str, max: usize) -> impl Fn(&str) -> Result<String, Problem> + '_ {
    move |s: &str| {
        let s = s.trim();
        if !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(s.to_string())
        } else {
            Err(Problem(format!("{what}: от 1 до {max} цифр")))
        }
    }
}

/// Report a printed fiscal receipt.
#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/receipts",
    tag = "orders",
    params(("id" = String, Path, description = "The order's id or its number")),
    request_body = ReceiptReport,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The order with the receipt issued (the same for a repeated report)", body = OrderView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The receipt is issued already with another number", body = ErrorBody),
        (status = 422, description = "Bad fields, or the order owes no such receipt (the message says which it owes)", body = ErrorBody),
    )
)]
pub async fn report_receipt(
    State(api): State<Api>,
    Cashier(caller): Cashier,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<OrderView>, ApiError> {
    let mut f = Fields::read(&body, &ReceiptReport::FIELDS)?;
    let event_id = f.optional("event_id", "", |s| {
        uuid::Uuid::parse_str(s.trim()).map_err(|_| "ожидается event_id из уведомления (UUID)")
    });
    let kind = f.required("kind", "sell или sell_return", "", |s| {
        ReceiptKind::parse(s).ok_or("допустимо sell (приход) или sell_return (возврат прихода)")
    });
    let amount = f.required(
        "amount",
        "сумма чека в рублях строкой, например \"1499.00\"",
        "",
        |s| Kopecks::parse_amount(s).map_err(|e| e.to_string()),
    );
    let number = f.required("fiscal_document_number", "номер ФД", "", |s| {
        digits("номер ФД", 10)(s).and_then(|n| {
            n.parse::<u64>()
                .map_err(|_| Problem::from("номер ФД: от 1 до 10 цифр"))
        })
    });
    let sign = f.required("fiscal_sign", "ФП (ФПД)", "", digits("ФП", 10));
    let fn_number = f.required("fn_number", "номер ФН", "", digits("номер ФН", 16));
    let (event_id, kind, amount, number, sign, fn_number) =
        f.finish(|| Some((event_id, kind?, amount?, number?, sign?, fn_number?)))?;
    let order = api.engine.find(&id)?;
    let receipt = match reported(&order, event_id, kind, amount, number) {
        Ok(Reported::Repeated(_)) => return Ok(Json(OrderView::from(&order))),
        Ok(Reported::Open(receipt)) => receipt,
        Err(problem @ ReportProblem::IssuedOtherwise(_)) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                problem.to_string(),
            ))
        }
        Err(problem) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "no_such_receipt",
                format!("Чек не принят: {problem}."),
            ))
        }
    };
    let fiscal = Fiscal {
        document_number: number,
        sign,
        fn_number,
        at: api.engine.now(),
    };
    let actor = caller.actor();
    let order = api
        .engine
        .receipt_step(
            &order.id,
            Input::ReceiptIssued {
                id: receipt,
                fiscal,
            },
            Some(&actor),
        )
        .await?;
    api.engine.metrics().fiscal_receipt("issued");
    Ok(Json(OrderView::from(&order)))
}
