//! `GET /api/v1/replication`: how far the head office's copy is behind (`[replicate]`), with
//! the line the manager page shows when it is («в центральную базу не отправлено N изменений,
//! последняя связь …»); and the same as `/metrics` lines.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Manager;
use super::error::ApiError;
use super::types::ErrorBody;
use super::Api;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReplicationView {
    /// False when `[replicate]` is not set up (the other fields are then empty).
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_id: Option<String>,
    /// Order changes not yet in the head office's database.
    pub pending: u64,
    /// When the oldest of them changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_change_at: Option<DateTime<Utc>>,
    /// Every order is to be sent again (replication just switched on, or the outbox was full).
    pub resync: bool,
    /// The last time the head office took a batch (or had nothing to take).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ok_at: Option<DateTime<Utc>>,
    /// Why the last attempt failed, while it keeps failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub shipped_total: u64,
    /// The manager page's line, in Russian, when the head office is behind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}

impl Api {
    fn replication_view(&self) -> Result<ReplicationView, ApiError> {
        let Some(watch) = &self.replication else {
            return Ok(ReplicationView {
                enabled: false,
                store_id: None,
                pending: 0,
                oldest_change_at: None,
                resync: false,
                last_ok_at: None,
                last_error: None,
                shipped_total: 0,
                notice: None,
            });
        };
        let outbox = self
            .engine
            .store()
            .outbox_status()
            .map_err(crate::engine::EngineError::from)?;
        let progress = watch.status.get();
        Ok(ReplicationView {
            enabled: true,
            store_id: Some(watch.store_id.clone()),
            pending: outbox.pending,
            oldest_change_at: outbox.oldest,
            resync: outbox.resync.is_some(),
            notice: crate::replicate::notice(
                outbox.pending,
                outbox.resync.is_some(),
                &progress,
                self.engine.now(),
            ),
            last_ok_at: progress.last_ok,
            last_error: progress.last_error,
            shipped_total: progress.shipped_total,
        })
    }

    /// The replication lines of `/metrics` (nothing when it is not set up).
    pub(super) fn replication_metrics(&self) -> String {
        let Ok(view) = self.replication_view() else {
            return String::new();
        };
        let Some(watch) = self.replication.as_ref().filter(|_| view.enabled) else {
            return String::new();
        };
        let progress = watch.status.get();
        format!(
            "# HELP chasti_replicate_pending Order changes not yet in the head office's database.\n\
             # TYPE chasti_replicate_pending gauge\nchasti_replicate_pending {}\n\
             # HELP chasti_replicate_shipped_total Order changes the head office took.\n\
             # TYPE chasti_replicate_shipped_total counter\nchasti_replicate_shipped_total {}\n\
             # HELP chasti_replicate_errors_total Failed attempts to ship to the head office.\n\
             # TYPE chasti_replicate_errors_total counter\nchasti_replicate_errors_total {}\n\
             # HELP chasti_replicate_last_ok_timestamp_seconds When the head office last took a batch.\n\
             # TYPE chasti_replicate_last_ok_timestamp_seconds gauge\nchasti_replicate_last_ok_timestamp_seconds {}\n\
             # HELP chasti_replicate_resync_due 1 while every order is to be sent again (the outbox overflowed, or replication was switched on).\n\
             # TYPE chasti_replicate_resync_due gauge\nchasti_replicate_resync_due {}\n",
            view.pending,
            progress.shipped_total,
            progress.errors_total,
            progress.last_ok.map(|t| t.timestamp()).unwrap_or(0),
            u8::from(view.resync),
        )
    }
}

/// How far the head office's copy is behind.
#[utoipa::path(
    get,
    path = "/api/v1/replication",
    tag = "manager",
    security(("bearer" = [])),
    responses(
        (status = 200, body = ReplicationView),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    )
)]
pub async fn replication(
    State(api): State<Api>,
    _caller: Manager,
) -> Result<Json<ReplicationView>, ApiError> {
    Ok(Json(api.replication_view()?))
}
