//! HTTP wiring: routers for the desk and the inbox, plus health and metrics endpoints on each.

pub mod admin_api;
pub mod auth;
pub mod desk_api;
pub mod inbox_api;
pub mod serve;
pub mod sobjects;
pub mod tls;

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;

/// `/healthz` (the process answers) and `/metrics` (Prometheus text).
pub fn operations(metrics: Option<PrometheusHandle>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ready" }))
        .route(
            "/metrics",
            get(move || {
                let rendered = metrics
                    .as_ref()
                    .map(PrometheusHandle::render)
                    .unwrap_or_default();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4",
                        )],
                        rendered,
                    )
                        .into_response()
                }
            }),
        )
}
