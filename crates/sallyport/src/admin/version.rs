//! `/admin/version`, `/admin/metrics/prometheus` and `/admin/health/config`.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::http::error::json;
use crate::state::AppState;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `GET /admin/version` — operationId `getVersion`.
pub async fn get_version() -> Response {
    json(StatusCode::OK, &json!({ "version": VERSION }))
}

pub async fn prometheus(State(app): State<AppState>) -> Response {
    let body = app.metrics.as_ref().map(|h| h.render()).unwrap_or_default();
    let mut res = (StatusCode::OK, body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    res
}

/// `GET /admin/health/config`: the effective config's hash as text (not in the OpenAPI spec; Kratos' e2e
/// suite uses it to notice config changes).
pub async fn config_hash(State(app): State<AppState>) -> Response {
    let mut res = (StatusCode::OK, app.settings.config_hash.clone()).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}
