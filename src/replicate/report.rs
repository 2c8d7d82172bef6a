//! What a head office reads from the central database (`chasti hq report`): the views chasti
//! creates, as CSV for Excel (Russian headers, amounts as `1499,50`, Moscow times).

use chrono::{DateTime, NaiveDate, Utc};
use tokio_postgres::Client;

use super::ReplicateError;
use crate::csv::{row, text_cell};

/// Which view to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// `store_day_totals`: each store's days in the range.
    Totals,
    /// `orders_needing_attention`.
    Attention,
    /// `receipts_missing`.
    Receipts,
}

impl Report {
    pub fn parse(text: &str) -> Option<Report> {
        match text {
            "totals" => Some(Report::Totals),
            "attention" => Some(Report::Attention),
            "receipts" => Some(Report::Receipts),
            _ => None,
        }
    }
}

fn money(kopecks: i64) -> String {
    let k = kopecks.unsigned_abs();
    let sign = if kopecks < 0 { "-" } else { "" };
    format!("{sign}{},{:02}", k / 100, k % 100)
}

fn moscow(at: DateTime<Utc>) -> String {
    at.with_timezone(&chrono_tz::Europe::Moscow)
        .format("%d.%m.%Y %H:%M")
        .to_string()
}

/// A column of a report's row (an error, not a panic, if the view was altered).
fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a tokio_postgres::Row,
    i: usize,
) -> Result<T, ReplicateError> {
    super::central::cell(row, i, "reading a report")
}

/// A receipt's state as the head office reads it (the central table keeps chasti's codes).
fn status_text(status: &str) -> &str {
    match status {
        "owed" => "не передан на кассу",
        "sent" => "передан, ответа нет",
        "failed" => "ошибка кассы",
        "issued" => "пробит",
        other => other,
    }
}

/// The report as CSV (with a BOM, so Excel reads UTF-8).
pub async fn csv(
    client: &Client,
    report: Report,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<String, ReplicateError> {
    let failed = ReplicateError::query("reading a report");
    let mut out = String::from("\u{feff}");
    match report {
        Report::Totals => {
            out.push_str(&row(&[
                "Магазин".into(),
                "День (МСК)".into(),
                "Оплат".into(),
                "Оплачено".into(),
                "Отмен".into(),
                "Отменено".into(),
                "Возвратов".into(),
                "Возвращено".into(),
                "Итого".into(),
            ]));
            let rows = client
                .query(
                    "SELECT store_id, day, sales, sales_kopecks, reversals, reversals_kopecks,
                        refunds, refunds_kopecks, net_kopecks
                     FROM store_day_totals WHERE day BETWEEN $1 AND $2
                     ORDER BY day, store_id",
                    &[&from, &to],
                )
                .await
                .map_err(failed)?;
            for r in rows {
                let day: NaiveDate = get(&r, 1)?;
                out.push_str(&row(&[
                    text_cell(get::<&str>(&r, 0)?),
                    day.format("%d.%m.%Y").to_string(),
                    get::<i64>(&r, 2)?.to_string(),
                    money(get(&r, 3)?),
                    get::<i64>(&r, 4)?.to_string(),
                    money(get(&r, 5)?),
                    get::<i64>(&r, 6)?.to_string(),
                    money(get(&r, 7)?),
                    money(get(&r, 8)?),
                ]));
            }
        }
        Report::Attention => {
            out.push_str(&row(&[
                "Магазин".into(),
                "Заказ".into(),
                "Касса".into(),
                "Сумма".into(),
                "Оплачено".into(),
                "Почему".into(),
                "Изменён (МСК)".into(),
            ]));
            let rows = client
                .query(
                    "SELECT store_id, order_number, till, amount_kopecks, paid_kopecks, why,
                        updated_at
                     FROM orders_needing_attention
                     WHERE (updated_at AT TIME ZONE 'Europe/Moscow')::date BETWEEN $1 AND $2
                     ORDER BY store_id, updated_at",
                    &[&from, &to],
                )
                .await
                .map_err(failed)?;
            for r in rows {
                out.push_str(&row(&[
                    text_cell(get::<&str>(&r, 0)?),
                    text_cell(get::<&str>(&r, 1)?),
                    text_cell(get::<&str>(&r, 2)?),
                    money(get(&r, 3)?),
                    money(get(&r, 4)?),
                    text_cell(get::<Option<&str>>(&r, 5)?.unwrap_or("")),
                    moscow(get(&r, 6)?),
                ]));
            }
        }
        Report::Receipts => {
            out.push_str(&row(&[
                "Магазин".into(),
                "Заказ".into(),
                "Касса".into(),
                "Чек".into(),
                "Сумма".into(),
                "Состояние".into(),
                "Должен быть к (МСК)".into(),
                "Причина".into(),
            ]));
            let rows = client
                .query(
                    "SELECT store_id, order_number, till, kind, amount_kopecks, status, due_by,
                        problem
                     FROM receipts_missing
                     WHERE (owed_at AT TIME ZONE 'Europe/Moscow')::date BETWEEN $1 AND $2
                     ORDER BY store_id, due_by",
                    &[&from, &to],
                )
                .await
                .map_err(failed)?;
            for r in rows {
                let kind = match get::<&str>(&r, 3)? {
                    "sell" => "приход",
                    "sell_return" => "возврат прихода",
                    other => other,
                };
                out.push_str(&row(&[
                    text_cell(get::<&str>(&r, 0)?),
                    text_cell(get::<&str>(&r, 1)?),
                    text_cell(get::<&str>(&r, 2)?),
                    kind.to_string(),
                    money(get(&r, 4)?),
                    status_text(get::<&str>(&r, 5)?).to_string(),
                    moscow(get(&r, 6)?),
                    text_cell(get::<Option<&str>>(&r, 7)?.unwrap_or("")),
                ]));
            }
        }
    }
    Ok(out)
}
