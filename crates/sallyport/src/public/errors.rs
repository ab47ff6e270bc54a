//! `GET /self-service/errors?id=` — errors that were shown to browsers (Kratos `selfservice/errorx`).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use sallyport_core::error::ApiError;
use sallyport_core::time_fmt::{now, rfc3339};

use crate::http::error::{HttpError, json as json_res};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct ErrorQuery {
    id: Option<String>,
    error: Option<String>,
}

/// operationId `getFlowError`.
pub async fn get_flow_error(State(app): State<AppState>, Query(q): Query<ErrorQuery>) -> Response {
    let raw = q.id.or(q.error).unwrap_or_default();
    if raw == "stub:500" {
        let t = rfc3339(now());
        let e = ApiError::internal().with_reason("This is a stub error.");
        return json_res(
            StatusCode::OK,
            &json!({"id": raw, "error": e.error_object(), "created_at": t, "updated_at": t}),
        );
    }
    let Ok(id) = Uuid::parse_str(&raw) else {
        return HttpError(ApiError::not_found("The requested resource could not be found")).into_response();
    };
    match app.store.get_error(id).await {
        Ok((error, created, updated)) => json_res(
            StatusCode::OK,
            &json!({"id": id, "error": error, "created_at": rfc3339(created), "updated_at": rfc3339(updated)}),
        ),
        Err(e) => HttpError::from(e).into_response(),
    }
}
