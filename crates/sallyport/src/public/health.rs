//! `/health/alive` and `/health/ready` (ory/x healthx), on both ports.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use crate::http::error::json;
use crate::state::AppState;

/// `GET /health/alive` — operationId `isAlive`.
pub async fn is_alive() -> Response {
    json(StatusCode::OK, &json!({"status": "ok"}))
}

async fn readiness(app: &AppState, obfuscate: bool) -> Response {
    let mut errors = serde_json::Map::new();
    if let Err(e) = app.store.ping().await {
        errors.insert("database".into(), json!(e.to_string()));
    }
    if !app.migrations_applied.load(Ordering::Relaxed) {
        errors.insert(
            "migrations".into(),
            json!("the database has pending migrations; run `sallyport migrate sql -e --yes`"),
        );
    }
    if errors.is_empty() {
        return json(StatusCode::OK, &json!({"status": "ok"}));
    }
    if obfuscate {
        for v in errors.values_mut() {
            *v = json!("error may contain sensitive information and was obfuscated");
        }
    }
    json(StatusCode::SERVICE_UNAVAILABLE, &json!({ "errors": errors }))
}

/// `GET /health/ready` on the public port — operationId `isReady`; messages obfuscated as Kratos does.
pub async fn is_ready_public(State(app): State<AppState>) -> Response {
    readiness(&app, true).await
}

pub async fn is_ready_admin(State(app): State<AppState>) -> Response {
    readiness(&app, false).await
}

/// `GET /.well-known/change-password`: where password managers send users to change a password.
pub async fn change_password(State(app): State<AppState>) -> Response {
    crate::http::error::redirect(
        StatusCode::SEE_OTHER,
        &app.public_url("self-service/settings/browser"),
    )
}
