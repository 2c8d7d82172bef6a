//! Kannel's delivery reports for the payment-link SMS, on the callback listener
//! (`GET /chasti/sms-report?order&phone&token&type`). Each report address is signed for its
//! order and number (`sms::Courier`), so only the gateway that was given it can report.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

use crate::sms::{Courier, ReportRefused, REPORT_PATH};

/// A report is a handful of short fields.
const MAX_QUERY: usize = 1024;

pub fn router(courier: Courier) -> Router {
    Router::new()
        .route(REPORT_PATH, get(report))
        .with_state(courier)
}

async fn report(
    State(courier): State<Courier>,
    RawQuery(query): RawQuery,
) -> (StatusCode, &'static str) {
    let query = query.unwrap_or_default();
    if query.len() > MAX_QUERY {
        return (StatusCode::URI_TOO_LONG, "too long\n");
    }
    match courier.report(&query).await {
        Ok(()) => (StatusCode::OK, "OK\n"),
        Err(ReportRefused::BadToken) => {
            tracing::warn!("an SMS delivery report with a wrong token refused");
            (StatusCode::FORBIDDEN, "token\n")
        }
        Err(ReportRefused::Malformed(why)) => {
            tracing::warn!(%why, "a malformed SMS delivery report refused");
            (StatusCode::BAD_REQUEST, "malformed\n")
        }
        Err(ReportRefused::Store(why)) => {
            tracing::error!(%why, "an SMS delivery report could not be kept");
            (StatusCode::SERVICE_UNAVAILABLE, "try again\n")
        }
    }
}
