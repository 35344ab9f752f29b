//! The desk's delivery-status API (Salesforce's "delivery status" page as JSON):
//!
//! - `GET /admin/queue?action=&endpoint=&state=&older_than=&since=&limit=`: pending and failed
//!   notifications (or the states asked for: `state=pending,failed`, `state=all`);
//! - `GET /admin/queue/failed?action=&since=`: dead letters;
//! - `GET /admin/queue/{id}`: one notification with its attempt log;
//! - `POST /admin/queue/{id}/retry`: send now;
//! - `DELETE /admin/queue/{id}`: remove it, recording who (`X-Casewire-User` header or `who` query
//!   parameter, default `admin`) and when;
//! - `POST /admin/queue/resend` with `{"action": "...", "since": "..."}` (every failed notification of
//!   the action created since then; `since` optional) or `{"id": "..."}`.
//!
//! Errors are `{"error": "..."}` with a 4xx/5xx status. Times are RFC 3339 UTC.

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use delivery::admin::{QueueAdmin, QueueQuery};
use serde::Deserialize;
use serde_json::json;
use store::{Millis, NotificationState, StoreError};

use crate::config::parse_duration;
use crate::queue_cli::parse_since;

pub fn router(admin: QueueAdmin) -> Router {
    Router::new()
        .route("/admin/queue", get(list))
        .route("/admin/queue/failed", get(failed))
        .route("/admin/queue/resend", post(resend))
        .route("/admin/queue/{id}", get(show).delete(remove))
        .route("/admin/queue/{id}/retry", post(retry))
        .with_state(admin)
}

fn now() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::Unavailable(m) => error(StatusCode::SERVICE_UNAVAILABLE, m),
        StoreError::NotFound(m) => error(StatusCode::NOT_FOUND, m),
        other => {
            tracing::error!("admin queue: {other}");
            error(StatusCode::INTERNAL_SERVER_ERROR, other.to_string())
        }
    }
}

/// `state=pending,failed` or `state=all`; empty = the queue proper (pending and failed).
pub fn parse_states(text: Option<&str>) -> Result<Vec<NotificationState>, String> {
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    if text.trim() == "all" {
        return Ok(vec![
            NotificationState::Pending,
            NotificationState::Delivered,
            NotificationState::Failed,
            NotificationState::Dropped,
            NotificationState::Deleted,
        ]);
    }
    text.split(',')
        .map(|s| {
            NotificationState::parse(s.trim()).ok_or_else(|| {
                format!(
                    "state {s:?} is not one of pending, delivered, failed, dropped, deleted, all"
                )
            })
        })
        .collect()
}

#[derive(Debug, Default, Deserialize)]
struct ListParams {
    action: Option<String>,
    endpoint: Option<String>,
    state: Option<String>,
    older_than: Option<String>,
    since: Option<String>,
    limit: Option<usize>,
}

/// Most rows one listing returns unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 1000;

fn query_from(p: ListParams, now: Millis) -> Result<QueueQuery, String> {
    let older_than: Option<Duration> = p
        .older_than
        .as_deref()
        .map(parse_duration)
        .transpose()
        .map_err(|e| format!("older_than: {e}"))?;
    let since = p
        .since
        .as_deref()
        .map(|s| parse_since(s, now))
        .transpose()
        .map_err(|e| format!("since: {e}"))?;
    Ok(QueueQuery {
        action: p.action.filter(|a| !a.is_empty()),
        endpoint: p.endpoint.filter(|e| !e.is_empty()),
        states: parse_states(p.state.as_deref()).map_err(|e| format!("state: {e}"))?,
        older_than,
        since,
        limit: p.limit.unwrap_or(DEFAULT_LIMIT),
    })
}

async fn list(State(admin): State<QueueAdmin>, Query(params): Query<ListParams>) -> Response {
    let now = now();
    let query = match query_from(params, now) {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match admin.list(&query, now).await {
        Ok(entries) => {
            Json(json!({ "count": entries.len(), "notifications": entries })).into_response()
        }
        Err(e) => store_error(e),
    }
}

#[derive(Debug, Default, Deserialize)]
struct FailedParams {
    action: Option<String>,
    since: Option<String>,
}

async fn failed(State(admin): State<QueueAdmin>, Query(p): Query<FailedParams>) -> Response {
    let now = now();
    let since = match p.since.as_deref().map(|s| parse_since(s, now)).transpose() {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("since: {e}")),
    };
    match admin.failed(p.action.as_deref(), since, now).await {
        Ok(entries) => {
            Json(json!({ "count": entries.len(), "notifications": entries })).into_response()
        }
        Err(e) => store_error(e),
    }
}

async fn show(State(admin): State<QueueAdmin>, Path(id): Path<String>) -> Response {
    match admin.show(&id, now()).await {
        Ok(Some(detail)) => Json(detail).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no notification {id}")),
        Err(e) => store_error(e),
    }
}

/// 404 when the notification does not exist, 409 when its state allows no such change.
async fn changed_or_why(
    admin: &QueueAdmin,
    id: &str,
    changed: usize,
    what: &str,
    body: serde_json::Value,
) -> Response {
    if changed > 0 {
        return Json(body).into_response();
    }
    match admin.show(id, now()).await {
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no notification {id}")),
        Ok(Some(detail)) => error(
            StatusCode::CONFLICT,
            format!(
                "notification {id} is {}: only pending or failed notifications can be {what}",
                detail.entry.state.as_str()
            ),
        ),
        Err(e) => store_error(e),
    }
}

async fn retry(State(admin): State<QueueAdmin>, Path(id): Path<String>) -> Response {
    match admin.retry(std::slice::from_ref(&id), now()).await {
        Ok(n) => changed_or_why(&admin, &id, n, "retried", json!({ "retried": n })).await,
        Err(e) => store_error(e),
    }
}

#[derive(Debug, Default, Deserialize)]
struct WhoParams {
    who: Option<String>,
}

/// Who asked for a delete: the `X-Casewire-User` header, else the `who` parameter, else `admin`.
fn who(headers: &HeaderMap, params: &WhoParams) -> String {
    headers
        .get("x-casewire-user")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .or(params
            .who
            .as_deref()
            .map(str::trim)
            .filter(|w| !w.is_empty()))
        .unwrap_or("admin")
        .chars()
        .take(100)
        .collect()
}

async fn remove(
    State(admin): State<QueueAdmin>,
    Path(id): Path<String>,
    Query(params): Query<WhoParams>,
    headers: HeaderMap,
) -> Response {
    let who = who(&headers, &params);
    match admin.delete(std::slice::from_ref(&id), &who, now()).await {
        Ok(n) => {
            if n > 0 {
                tracing::info!(notification = %id, by = %who, "deleted from the delivery queue");
            }
            changed_or_why(
                &admin,
                &id,
                n,
                "deleted",
                json!({ "deleted": n, "by": who }),
            )
            .await
        }
        Err(e) => store_error(e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResendBody {
    id: Option<String>,
    action: Option<String>,
    since: Option<String>,
}

async fn resend(State(admin): State<QueueAdmin>, body: axum::body::Bytes) -> Response {
    let body: ResendBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"action\": ..., \"since\": ...}} or {{\"id\": ...}}: {e}"),
            );
        }
    };
    let now = now();
    match (body.id, body.action) {
        (Some(id), None) => match admin.retry(std::slice::from_ref(&id), now).await {
            Ok(n) => changed_or_why(&admin, &id, n, "resent", json!({ "resent": [id] })).await,
            Err(e) => store_error(e),
        },
        (None, Some(action)) => {
            let since = match body
                .since
                .as_deref()
                .map(|s| parse_since(s, now))
                .transpose()
            {
                Ok(s) => s,
                Err(e) => return error(StatusCode::BAD_REQUEST, format!("since: {e}")),
            };
            match admin.resend_failed(&action, since, now).await {
                Ok(ids) => Json(json!({ "resent": ids })).into_response(),
                Err(e) => store_error(e),
            }
        }
        _ => error(
            StatusCode::BAD_REQUEST,
            "give either \"id\" (one notification) or \"action\" (all its failed notifications, optionally \"since\")",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_parse_with_clear_errors() {
        assert_eq!(parse_states(None).unwrap(), vec![]);
        assert_eq!(
            parse_states(Some("pending, failed")).unwrap(),
            vec![NotificationState::Pending, NotificationState::Failed]
        );
        assert_eq!(parse_states(Some("all")).unwrap().len(), 5);
        assert!(
            parse_states(Some("stuck"))
                .unwrap_err()
                .contains("\"stuck\"")
        );
    }

    #[test]
    fn who_comes_from_the_header_then_the_parameter() {
        let mut headers = HeaderMap::new();
        let params = WhoParams {
            who: Some("bob".into()),
        };
        assert_eq!(who(&headers, &params), "bob");
        headers.insert("x-casewire-user", "alice".parse().unwrap());
        assert_eq!(who(&headers, &params), "alice");
        assert_eq!(who(&HeaderMap::new(), &WhoParams::default()), "admin");
    }
}
