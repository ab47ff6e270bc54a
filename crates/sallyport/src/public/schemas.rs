//! Identity schemas on the public port (Kratos `schema/handler.go`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use sallyport_core::error::ApiError;

use crate::http::error::{HttpError, json as json_res};
use crate::state::AppState;

/// `GET /schemas` — operationId `listIdentitySchemas`.
pub async fn list_identity_schemas(State(app): State<AppState>) -> Response {
    let list: Vec<Value> = app
        .schemas
        .all()
        .map(|s| json!({ "id": s.id, "schema": s.raw }))
        .collect();
    json_res(StatusCode::OK, &Value::Array(list))
}

/// `GET /schemas/{id}` — operationId `getIdentitySchema`; the id may be raw or base64url-encoded.
pub async fn get_identity_schema(State(app): State<AppState>, Path(id): Path<String>) -> Response {
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(id.trim_end_matches('='))
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    let found = app
        .schemas
        .get(&id)
        .or_else(|| decoded.as_deref().and_then(|d| app.schemas.get(d)));
    match found {
        Some(s) => json_res(StatusCode::OK, &s.raw),
        None => HttpError(ApiError::not_found(format!(
            "Identity schema `{id}` could not be found."
        )))
        .into_response(),
    }
}
