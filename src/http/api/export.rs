//! Whole-store exports, streamed from a blocking thread as the client reads them (memory stays
//! a few chunks whatever the range): the orders with their history as JSON lines, and the
//! backup stream (`store::backup`) that `chasti backup` writes into a backup folder.

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::auth::{Cashier, Manager};
use super::error::ApiError;
use super::lists::{read_range, ListQuery};
use super::types::{ErrorBody, OrderView};
use super::Api;
use crate::engine::EngineError;
use crate::orders::{Order, StateKind};

/// Rows gathered before a chunk is sent.
/// Why an export stopped before its last order.
#[derive(Debug, thiserror::Error)]
pub(super) enum ExportError {
    #[error("an order could not be read: {0}")]
    Read(#[source] EngineError),
    #[error("an order could not be written as JSON: {0}")]
    Json(#[source] serde_json::Error),
}

const ROWS_PER_CHUNK: usize = 200;

/// Chunks made by `produce` on a blocking thread, sent as a streamed body. The channel holds a
/// few chunks; `produce` stops when its sender fails (the client went away).
pub(super) fn streamed(
    content_type: &str,
    file_name: &str,
    produce: impl FnOnce(tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>) + Send + 'static,
) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || produce(tx));
    let body = axum::body::Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async {
        rx.recv().await.map(|item| (item, rx))
    }));
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// The orders of a day or a range, one JSON object a line (the order as `GET /orders/{id}`
/// shows it, with its whole history), oldest first: for the accountant's tools and for moving
/// the records elsewhere.
#[utoipa::path(
    get,
    path = "/api/v1/orders.jsonl",
    tag = "orders",
    params(ListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One order a line", content_type = "application/jsonl", body = String),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
pub async fn orders_jsonl(
    State(api): State<Api>,
    _caller: Cashier,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let range = read_range(&api, &q)?;
    let file = format!("chasti-orders-{}-{}.jsonl", range.from, range.to);
    let orders = api.engine.orders_between(range.from, range.to);
    Ok(streamed_orders(
        "application/jsonl",
        &file,
        orders,
        range.state,
        Vec::new(),
        |out, order| {
            serde_json::to_writer(&mut *out, &OrderView::from(order)).map_err(ExportError::Json)?;
            out.push(b'\n');
            Ok(())
        },
    ))
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
    let range = read_range(&api, &q)?;
    let file = format!("chasti-orders-{}-{}.csv", range.from, range.to);
    let orders = api.engine.orders_between(range.from, range.to);
    let with_history = range.history;
    let mut head = String::from("\u{feff}");
    head.push_str(super::csv::CSV_HEADER.trim_end_matches("\r\n"));
    head.push_str(if with_history {
        ";История (МСК)\r\n"
    } else {
        "\r\n"
    });
    Ok(streamed_orders(
        "text/csv; charset=utf-8",
        &file,
        orders,
        range.state,
        head.into_bytes(),
        move |out, order| {
            let mut line = String::new();
            super::csv::csv_row(&mut line, order, with_history);
            out.extend_from_slice(line.as_bytes());
            Ok(())
        },
    ))
}

/// The orders of a range (only those in `state`, when given) streamed as `head` and then one
/// `row` each, a chunk every few hundred rows. An unreadable order ends the stream with an
/// error, so the client sees it cut short rather than complete.
pub(super) fn streamed_orders(
    content_type: &str,
    file_name: &str,
    orders: impl Iterator<Item = Result<Order, EngineError>> + Send + 'static,
    state: Option<StateKind>,
    head: Vec<u8>,
    mut row: impl FnMut(&mut Vec<u8>, &Order) -> Result<(), ExportError> + Send + 'static,
) -> Response {
    streamed(content_type, file_name, move |tx| {
        let mut chunk = head;
        let mut rows = 0;
        for order in orders {
            let written = order
                .map_err(ExportError::Read)
                .and_then(|order| match state {
                    Some(s) if order.state.kind() != s => Ok(false),
                    _ => row(&mut chunk, &order).map(|()| true),
                });
            match written {
                Ok(false) => continue,
                Ok(true) => rows += 1,
                Err(e) => {
                    tracing::error!(error = %e, "an export stopped at an order it could not write");
                    let _ = tx.blocking_send(Err(std::io::Error::other(e)));
                    return;
                }
            }
            if rows % ROWS_PER_CHUNK == 0
                && tx
                    .blocking_send(Ok(Bytes::from(std::mem::take(&mut chunk))))
                    .is_err()
            {
                return; // the client went away
            }
        }
        let _ = tx.blocking_send(Ok(Bytes::from(chunk)));
    })
}

/// A backup of the whole store while the daemon runs (manager): every order with its history,
/// the counters, the journal and the callbacks received, as a checked stream that
/// `chasti backup DIR` writes into a store folder `chasti serve` can open.
#[utoipa::path(
    get,
    path = "/api/v1/backup",
    tag = "service",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The backup stream (format: docs/operating.md, Backups)", content_type = "application/octet-stream", body = String),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not a manager's token", body = ErrorBody),
    )
)]
pub async fn backup(State(api): State<Api>, Manager(caller): Manager) -> Response {
    let at = api
        .engine
        .now()
        .with_timezone(&chrono_tz::Europe::Moscow)
        .format("%Y%m%d-%H%M%S");
    tracing::info!(by = %caller.name, "backup started");
    let store = api.engine.store().clone();
    streamed(
        "application/octet-stream",
        &format!("chasti-{at}.backup"),
        move |tx| {
            // The copy is made here, off the async workers: one read transaction, writers go on.
            let stream = match store.backup_stream() {
                Ok(stream) => stream,
                Err(e) => {
                    tracing::error!(error = %e, "the backup copy could not be made");
                    let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                    return;
                }
            };
            let orders = stream.summary().orders;
            for chunk in stream {
                let item = chunk
                    .map(Bytes::from)
                    .map_err(|e| std::io::Error::other(e.to_string()));
                let failed = item.is_err();
                if tx.blocking_send(item).is_err() || failed {
                    return;
                }
            }
            tracing::info!(orders, "backup sent");
        },
    )
}
