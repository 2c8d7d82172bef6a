//! `POST /api/v1/days/{day}/close`: «Сверка итогов». The day's movements by till and for the
//! store (counted on the day each happened), the receipts they still lack, every order of the
//! day checked against the bank once with what disagrees listed (not fixed), printed on the
//! till's printer and kept in the store with who closed the day and when.

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Manager;
use super::error::ApiError;
use super::lists::parse_day;
use super::types::ErrorBody;
use super::Api;
use crate::orders::day_close::Movements;
use crate::store::KeptClose;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TillDay {
    pub till: String,
    #[serde(flatten)]
    pub movements: Movements,
}

/// An order chasti and the bank see differently.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Disagreement {
    pub order_number: String,
    pub till: String,
    /// What differs, in the manager's words.
    pub what: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DayCloseView {
    /// The Moscow day closed.
    pub day: NaiveDate,
    pub tills: Vec<TillDay>,
    pub store: Movements,
    /// Orders checked against the bank.
    pub checked: usize,
    pub disagreements: Vec<Disagreement>,
    /// Orders the bank could not be asked about now, and why.
    pub unchecked: Vec<Disagreement>,
    /// What became of the slip on the till's printer.
    pub slip: String,
    /// The report as text lines (what the slip says), for a POS to print on its own.
    pub report_text: String,
    pub closed_at: DateTime<Utc>,
    pub closed_by: String,
    /// Earlier closes of the same day (a day may be closed again: later changes show on the
    /// day they happen).
    pub closed_before: Vec<DateTime<Utc>>,
}

/// The report's lines for the slip (and `chasti close-day`).
pub fn report_lines(view: &DayCloseView) -> Vec<String> {
    let money = |m: &Movements| {
        vec![
            format!("Оплаты: {} на {}", m.sales.count, m.sales.amount),
            format!("Отмены: {} на {}", m.reversals.count, m.reversals.amount),
            format!("Возвраты: {} на {}", m.refunds.count, m.refunds.amount),
            format!("Итого: {}", m.net),
        ]
    };
    let mut lines = vec![format!("День {}", view.day.format("%d.%m.%Y")), "-".into()];
    for t in &view.tills {
        lines.push(format!("Касса {}", t.till));
        lines.extend(money(&t.movements));
        lines.push("-".into());
    }
    lines.push("Магазин".into());
    lines.extend(money(&view.store));
    if view.store.receipts_missing > 0 {
        lines.push(format!(
            "Чек не пробит: {} (см. страницу менеджера)",
            view.store.receipts_missing
        ));
    }
    lines.push("-".into());
    lines.push(format!("Сверено с банком заказов: {}", view.checked));
    if view.disagreements.is_empty() && view.unchecked.is_empty() {
        lines.push("Расхождений с банком нет".into());
    }
    for d in &view.disagreements {
        lines.push(format!(
            "РАСХОЖДЕНИЕ {} (касса {}): {}",
            d.order_number, d.till, d.what
        ));
    }
    for d in &view.unchecked {
        lines.push(format!("Не сверен {}: {}", d.order_number, d.what));
    }
    lines.push("-".into());
    lines.push(format!(
        "Сверку провёл: {}, {}",
        view.closed_by,
        view.closed_at
            .with_timezone(&chrono_tz::Europe::Moscow)
            .format("%d.%m.%Y %H:%M МСК")
    ));
    lines
}

/// Close a day: its totals by till and for the store, checked against the bank, printed.
#[utoipa::path(
    post,
    path = "/api/v1/days/{day}/close",
    tag = "manager",
    params(("day" = String, Path, description = "The Moscow day: 2026-12-06, 06.12.2026 or `today`")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = DayCloseView),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, description = "Not a day chasti can close", body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub async fn close_day(
    State(api): State<Api>,
    Manager(caller): Manager,
    Path(raw): Path<String>,
) -> Result<Json<DayCloseView>, ApiError> {
    let day = match raw.as_str() {
        "today" => Some(
            api.engine
                .now()
                .with_timezone(&chrono_tz::Europe::Moscow)
                .date_naive(),
        ),
        day => parse_day(day),
    };
    let Some(day) = day else {
        return Err(ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            format!(
                "День «{}» не понят: ожидается ГГГГ-ММ-ДД, ДД.ММ.ГГГГ (2020–2100) или today.",
                raw.chars().take(20).collect::<String>()
            ),
        ));
    };
    let report = api.engine.close_day(day).await?;
    let store = api.engine.store();
    let closed_before = store
        .closes_of(day)
        .map_err(crate::engine::EngineError::from)?
        .into_iter()
        .map(|c| c.at)
        .collect();
    let pair = |(order_number, till, what): (String, String, String)| Disagreement {
        order_number,
        till,
        what,
    };
    let mut view = DayCloseView {
        day,
        tills: report
            .close
            .tills
            .into_iter()
            .map(|(till, movements)| TillDay {
                till: till.to_string(),
                movements,
            })
            .collect(),
        store: report.close.store,
        checked: report.checked,
        disagreements: report.disagreements.into_iter().map(pair).collect(),
        unchecked: report
            .unchecked
            .into_iter()
            .map(|(order_number, what)| Disagreement {
                order_number,
                till: String::new(),
                what,
            })
            .collect(),
        slip: String::new(),
        report_text: String::new(),
        closed_at: api.engine.now(),
        closed_by: caller.actor().to_string(),
        closed_before,
    };
    view.report_text = report_lines(&view)
        .iter()
        .map(|line| match line.as_str() {
            "-" => "-".repeat(32),
            line => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    view.slip = match &api.devices {
        Some(devices) => {
            devices
                .print_report(
                    &format!("day close {day}"),
                    "Сверка итогов",
                    &report_lines(&view),
                )
                .await
        }
        None => "принтер не настроен".into(),
    };
    let kept = KeptClose {
        day,
        at: view.closed_at,
        by: view.closed_by.clone(),
        report: serde_json::to_string(&view).unwrap_or_default(),
    };
    store
        .record_close(kept)
        .await
        .map_err(crate::engine::EngineError::from)?;
    tracing::info!(%day, by = %view.closed_by, net = %view.store.net, disagreements = view.disagreements.len(), "day closed");
    Ok(Json(view))
}
