//! The orders of a Moscow day or of a range of days, with each day's totals, as JSON for the till
//! and the manager's page, and as CSV for the accountant (UTF-8 with a BOM and `;` between fields,
//! so Excel opens the Cyrillic and the amounts as they are in Russia).

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::NaiveDate;
use serde::Deserialize;

use super::auth::Cashier;
use super::error::ApiError;
use super::types::{ErrorBody, FieldProblem, OrderList, OrderView};
use super::Api;
use crate::orders::{DayTotals, Order, StateKind};

/// The longest range the JSON list gives at once, and the CSV export.
const LIST_DAYS: i64 = 92;
const CSV_DAYS: i64 = 366;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// One Moscow day, `YYYY-MM-DD` or `ДД.ММ.ГГГГ`; today when neither it nor `from` is given.
    day: Option<String>,
    /// The first day of a range (with `to`).
    from: Option<String>,
    /// The last day of a range (with `from`).
    to: Option<String>,
    /// Only orders in this state (e.g. `paid`).
    state: Option<String>,
}

/// A day as people write it here: `2026-11-23` or `23.11.2026`.
pub fn parse_day(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(text, "%d.%m.%Y"))
        .ok()
}

struct Range {
    from: NaiveDate,
    to: NaiveDate,
    state: Option<StateKind>,
}

fn read_range(api: &Api, q: &ListQuery, max_days: i64) -> Result<Range, ApiError> {
    let mut errors = Vec::new();
    let mut day = |name: &str, value: &Option<String>| -> Option<NaiveDate> {
        let text = value.as_deref()?;
        let parsed = parse_day(text);
        if parsed.is_none() {
            errors.push(FieldProblem {
                field: name.into(),
                problem: format!("«{text}»: дата в виде ДД.ММ.ГГГГ (или ГГГГ-ММ-ДД)"),
            });
        }
        parsed
    };
    let today = crate::moscow::date(api.engine.now());
    let single = day("day", &q.day);
    let from = day("from", &q.from);
    let to = day("to", &q.to);
    let (from, to) = match (single, from, to) {
        (Some(d), None, None) => (d, d),
        (None, Some(f), Some(t)) => (f, t),
        (None, Some(f), None) => (f, today),
        (None, None, None) => (today, today),
        (None, None, Some(t)) => (t, t),
        _ => {
            errors.push(FieldProblem {
                field: "day".into(),
                problem: "укажите либо day, либо диапазон from и to".into(),
            });
            (today, today)
        }
    };
    if to < from {
        errors.push(FieldProblem {
            field: "to".into(),
            problem: "конец диапазона раньше его начала".into(),
        });
    } else if (to - from).num_days() >= max_days {
        errors.push(FieldProblem {
            field: "to".into(),
            problem: format!("диапазон не длиннее {max_days} дней"),
        });
    }
    let state = match &q.state {
        None => None,
        Some(s) => {
            let kind = StateKind::parse(s);
            if kind.is_none() {
                let names: Vec<&str> = StateKind::ALL.iter().map(|k| k.name()).collect();
                errors.push(FieldProblem {
                    field: "state".into(),
                    problem: format!("«{s}»: допустимо {}", names.join(", ")),
                });
            }
            kind
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    Ok(Range { from, to, state })
}

fn overflow(e: crate::orders::totals::TotalsOverflow) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        format!("Итоги не помещаются в допустимый диапазон сумм ({e})."),
    )
}

/// The orders of the range, oldest first, and the totals of each day and of all.
fn collect(api: &Api, r: &Range) -> Result<(Vec<Order>, Vec<DayTotals>, DayTotals), ApiError> {
    let mut orders = Vec::new();
    let mut days = Vec::new();
    let mut total = DayTotals::new(r.from);
    let mut day = r.from;
    while day <= r.to {
        let listed = api.engine.list(day, r.state)?;
        let mut totals = DayTotals::new(day);
        for o in &listed {
            totals.add(o).map_err(overflow)?;
        }
        total.merge(&totals).map_err(overflow)?;
        days.push(totals);
        orders.extend(listed);
        day = match day.succ_opt() {
            Some(next) => next,
            None => break,
        };
    }
    Ok((orders, days, total))
}

/// The orders of a Moscow day or a range, with each day's totals.
#[utoipa::path(
    get,
    path = "/api/v1/orders",
    tag = "orders",
    params(ListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = OrderList),
        (status = 401, body = ErrorBody),
        (status = 422, description = "A bad day, range or state, named", body = ErrorBody),
    )
)]
pub async fn list_orders(
    State(api): State<Api>,
    _caller: Cashier,
    Query(q): Query<ListQuery>,
) -> Result<Json<OrderList>, ApiError> {
    let range = read_range(&api, &q, LIST_DAYS)?;
    let (orders, days, total) = collect(&api, &range)?;
    Ok(Json(OrderList {
        day: range.from,
        to: range.to,
        count: orders.len(),
        orders: orders.iter().map(OrderView::from).collect(),
        net_paid: total.net,
        net_paid_text: total.net.to_string(),
        days,
        total,
    }))
}

/// The orders of a day or a range as CSV for Excel: UTF-8 with a BOM, `;` between fields, amounts
/// as `1499,50`, times in Moscow time.
#[utoipa::path(
    get,
    path = "/api/v1/orders.csv",
    tag = "orders",
    params(ListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The orders as CSV", content_type = "text/csv", body = String),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
pub async fn orders_csv(
    State(api): State<Api>,
    _caller: Cashier,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let range = read_range(&api, &q, CSV_DAYS)?;
    let (orders, _, _) = collect(&api, &range)?;
    let mut out = String::from("\u{feff}");
    out.push_str("Дата (МСК);Время (МСК);Заказ;Касса;Способ;Сумма;Оплачено;Возвращено;Можно вернуть;Состояние;Кто продал;Описание\r\n");
    for o in &orders {
        let at = o.created_at.with_timezone(&chrono_tz::Europe::Moscow);
        let seller = o
            .history
            .first()
            .and_then(|e| e.actor.as_ref())
            .map(|a| a.to_string())
            .unwrap_or_default();
        let fields = [
            at.format("%d.%m.%Y").to_string(),
            at.format("%H:%M:%S").to_string(),
            o.order_number.to_string(),
            o.till.to_string(),
            match o.mode {
                crate::orders::Mode::OneStage => "одностадийная".into(),
                crate::orders::Mode::TwoStage => "двухстадийная".into(),
            },
            o.amount.format_plain(),
            o.deposited.format_plain(),
            o.refunded.format_plain(),
            o.refundable().format_plain(),
            o.state.russian().to_string(),
            text_cell(&seller),
            text_cell(o.description.as_ref().map(|d| d.as_str()).unwrap_or("")),
        ];
        let row: Vec<String> = fields.iter().map(|f| quoted(f)).collect();
        out.push_str(&row.join(";"));
        out.push_str("\r\n");
    }
    let file = format!("chasti-orders-{}-{}.csv", range.from, range.to);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        out,
    )
        .into_response())
}

/// Free text never starts a formula in a spreadsheet (`=`, `+`, `-`, `@`).
fn text_cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_string()
    }
}

/// A field quoted when it holds the separator, a quote or a line break (RFC 4180).
fn quoted(field: &str) -> String {
    if field.contains([';', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_in_both_spellings_and_csv_fields() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        assert_eq!(parse_day("2026-11-23"), Some(d));
        assert_eq!(parse_day("23.11.2026"), Some(d));
        assert_eq!(parse_day("11/23/2026"), None);
        assert_eq!(quoted("a;b"), "\"a;b\"");
        assert_eq!(quoted("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(text_cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
    }
}
