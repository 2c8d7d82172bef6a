//! The orders of a Moscow day or of a range of days, a page at a time with each day's totals
//! (from the sums kept with every order write), as JSON for the till and the manager's page, and
//! as CSV for the accountant, streamed (UTF-8 with a BOM and `;` between fields, so Excel opens
//! the Cyrillic and the amounts as numbers). Neither holds more than a page of orders.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::NaiveDate;
use serde::Deserialize;

use super::auth::Cashier;
use super::error::ApiError;
use super::types::{ErrorBody, FieldProblem, OrderList, OrderView};
use super::Api;
use crate::engine::PageQuery;
use crate::orders::{DayTotals, StateKind};

/// The longest range a list or an export covers.
const MAX_DAYS: i64 = 366;
/// Orders on a page unless `limit` says otherwise, and the most it may say.
const PAGE: usize = 100;
const MAX_PAGE: usize = 500;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// One Moscow day, `YYYY-MM-DD` or `ДД.ММ.ГГГГ`, 2020–2100; today when neither it nor
    /// `from` is given.
    #[param(
        pattern = r"^((20[2-9][0-9]|2100)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])|(0[1-9]|[12][0-9]|3[01])\.(0[1-9]|1[0-2])\.(20[2-9][0-9]|2100))$"
    )]
    day: Option<String>,
    /// The first day of a range (with `to`).
    #[param(
        pattern = r"^((20[2-9][0-9]|2100)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])|(0[1-9]|[12][0-9]|3[01])\.(0[1-9]|1[0-2])\.(20[2-9][0-9]|2100))$"
    )]
    from: Option<String>,
    /// The last day of a range (with `from`), at most 366 days after it.
    #[param(
        pattern = r"^((20[2-9][0-9]|2100)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])|(0[1-9]|[12][0-9]|3[01])\.(0[1-9]|1[0-2])\.(20[2-9][0-9]|2100))$"
    )]
    to: Option<String>,
    /// Only orders in this state (e.g. `paid`).
    #[param(value_type = Option<StateKind>)]
    state: Option<String>,
    /// Orders on a page: 1–500, 100 when absent (JSON list only).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// `next_cursor` of the previous page (JSON list only).
    #[param(value_type = Option<uuid::Uuid>)]
    cursor: Option<String>,
    /// CSV only: `true` adds a column with each order's whole history (`1`/`0` are read too).
    #[param(value_type = Option<bool>)]
    history: Option<String>,
}

/// The first and the last day a list may name: chasti keeps no orders from before 2020, and a
/// year past 2100 is a typo (or a probe), not a day to look for sales.
pub const FIRST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(2020, 1, 1) {
    Some(d) => d,
    None => panic!("a valid date"),
};
pub const LAST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(2100, 12, 31) {
    Some(d) => d,
    None => panic!("a valid date"),
};

/// A day as people write it here: `2026-11-23` or `23.11.2026`, from 2020 to 2100.
pub fn parse_day(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    // chrono's %Y also reads a signed year (`-0001`): a day people write has none.
    if text.starts_with(['-', '+']) {
        return None;
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(text, "%d.%m.%Y"))
        .ok();
    day.filter(|d| (FIRST_DAY..=LAST_DAY).contains(d))
}

/// A query value; an empty one (`day=`) is the same as none, as a form sends it.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// `history=`: true or false in the usual spellings.
fn read_flag(value: &Option<String>) -> Result<bool, FieldProblem> {
    match given(value) {
        None => Ok(false),
        Some("true" | "1" | "yes" | "on") => Ok(true),
        Some("false" | "0" | "no" | "off") => Ok(false),
        Some(other) => Err(FieldProblem {
            field: "history".into(),
            problem: format!("«{}»: допустимо true или false", shown(other)),
        }),
    }
}

pub(super) struct Range {
    pub(super) from: NaiveDate,
    pub(super) to: NaiveDate,
    pub(super) state: Option<StateKind>,
    limit: usize,
    after: Option<uuid::Uuid>,
    /// CSV: a column with each order's history.
    pub(super) history: bool,
}

pub(super) fn read_range(api: &Api, q: &ListQuery) -> Result<Range, ApiError> {
    let mut errors = Vec::new();
    let mut day = |name: &str, value: &Option<String>| -> Option<NaiveDate> {
        let text = given(value)?;
        let parsed = parse_day(text);
        if parsed.is_none() {
            errors.push(FieldProblem {
                field: name.into(),
                problem: format!(
                    "«{}»: дата в виде ДД.ММ.ГГГГ (или ГГГГ-ММ-ДД), с 01.01.2020 по 31.12.2100",
                    shown(text)
                ),
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
    } else if (to - from).num_days() >= MAX_DAYS {
        errors.push(FieldProblem {
            field: "to".into(),
            problem: format!("диапазон не длиннее {MAX_DAYS} дней"),
        });
    }
    let limit = match given(&q.limit) {
        None => PAGE,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                errors.push(FieldProblem {
                    field: "limit".into(),
                    problem: format!("«{}»: целое число от 1 до {MAX_PAGE}", shown(text)),
                });
                PAGE
            }
        },
    };
    let after = match given(&q.cursor) {
        None => None,
        Some(text) => {
            let cursor = uuid::Uuid::try_parse(text).ok();
            if cursor.is_none() {
                errors.push(FieldProblem {
                    field: "cursor".into(),
                    problem: format!(
                        "«{}»: передайте next_cursor из ответа на предыдущую страницу",
                        shown(text)
                    ),
                });
            }
            cursor
        }
    };
    let state = match given(&q.state) {
        None => None,
        Some(s) => {
            let kind = StateKind::parse(s);
            if kind.is_none() {
                let names: Vec<&str> = StateKind::ALL.iter().map(|k| k.name()).collect();
                errors.push(FieldProblem {
                    field: "state".into(),
                    problem: format!("«{}»: допустимо {}", shown(s), names.join(", ")),
                });
            }
            kind
        }
    };
    let history = read_flag(&q.history).unwrap_or_else(|problem| {
        errors.push(problem);
        false
    });
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    Ok(Range {
        from,
        to,
        state,
        limit,
        after,
        history,
    })
}

/// A value echoed in an error, cut short: it may be huge.
fn shown(text: &str) -> String {
    text.chars().take(40).collect()
}

fn overflow(e: crate::orders::totals::TotalsOverflow) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        format!("Итоги не помещаются в допустимый диапазон сумм ({e})."),
    )
}

/// Each day's money and the range's, from the kept sums.
fn totals(api: &Api, r: &Range) -> Result<(Vec<DayTotals>, DayTotals), ApiError> {
    let days = api.engine.day_totals(r.from, r.to)?;
    let mut total = DayTotals::new(r.from);
    for day in &days {
        total.merge(day).map_err(overflow)?;
    }
    Ok((days, total))
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
    let range = read_range(&api, &q)?;
    let page = api.engine.page(&PageQuery {
        from: range.from,
        to: range.to,
        state: range.state,
        after: range.after,
        limit: range.limit,
    })?;
    let (days, total) = totals(&api, &range)?;
    Ok(Json(OrderList {
        day: range.from,
        to: range.to,
        count: page.orders.len(),
        orders: page.orders.iter().map(OrderView::from).collect(),
        next_cursor: page.next.map(|id| id.to_string()),
        net_paid: total.net,
        net_paid_text: total.net.to_string(),
        days,
        total,
        bank_only: api
            .engine
            .store()
            .bank_only()
            .map_err(crate::engine::EngineError::from)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_in_both_spellings() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        assert_eq!(parse_day("2026-11-23"), Some(d));
        assert_eq!(parse_day("23.11.2026"), Some(d));
        assert_eq!(parse_day("11/23/2026"), None);
        for out_of_range in [
            "-0001-01-01",
            "0000-01-01",
            "2019-12-31",
            "2101-01-01",
            "+2026-11-23",
        ] {
            assert_eq!(parse_day(out_of_range), None, "{out_of_range}");
        }
        assert_eq!(parse_day("01.01.2020"), Some(FIRST_DAY));
        assert_eq!(parse_day("2100-12-31"), Some(LAST_DAY));
    }
}
