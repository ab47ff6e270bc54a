//! Logout (Kratos `selfservice/flow/logout`): browser logout URL + token, and native logout.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use sallyport_core::error::ApiError;
use sallyport_core::secret::token_digest;
use sallyport_core::store::StoreError;
use sallyport_core::time_fmt;

use crate::http::body::RawBody;
use crate::http::error::{HttpError, forward, json as json_res, redirect};
use crate::http::redirect::validate_return_to;
use crate::http::request::ReqInfo;
use crate::selfservice::common::with_headers;
use crate::session_manager::{self, extract_token, logout_token_for};
use crate::state::{App, AppState};

#[derive(Debug, Deserialize)]
pub struct LogoutQuery {
    pub token: Option<String>,
    pub return_to: Option<String>,
}

fn logout_return(app: &App) -> &url::Url {
    app.settings
        .logout_return_url
        .as_ref()
        .unwrap_or(&app.settings.default_return_url)
}

/// `GET /self-service/logout/browser` — operationId `createBrowserLogoutFlow`.
pub async fn create_browser_logout_flow(
    State(app): State<AppState>,
    req: ReqInfo,
    Query(q): Query<LogoutQuery>,
) -> Response {
    let auth = match session_manager::fetch(&app, &req.headers).await {
        Ok(Some(a)) => a,
        Ok(None) => return forward(&app, req.is_json, ApiError::session_inactive()).await,
        Err(e) => return forward(&app, req.is_json, e).await,
    };
    let s = &app.settings;
    let return_to = match validate_return_to(
        q.return_to.as_deref(),
        logout_return(&app),
        &s.allowed_return_urls,
        &s.public_base_url,
    ) {
        Ok(r) => r,
        Err(e) => return forward(&app, req.is_json, e).await,
    };
    let Some(token) = extract_token(&app, &req.headers) else {
        return forward(&app, req.is_json, ApiError::session_inactive()).await;
    };
    let logout_token = logout_token_for(&s.cookie_secrets[0], &token);
    if token_digest(&logout_token) != auth.session.logout_token_digest {
        // Issued under a secret that was since rotated out of first place: the old token is unrecoverable.
        return forward(&app, req.is_json, ApiError::session_inactive()).await;
    }
    let mut url = url::Url::parse(&app.public_url("self-service/logout")).expect("base URL is valid");
    url.query_pairs_mut().append_pair("token", &logout_token);
    if let Some(r) = return_to {
        url.query_pairs_mut().append_pair("return_to", r.as_str());
    }
    json_res(
        StatusCode::OK,
        &json!({ "logout_url": url.to_string(), "logout_token": logout_token }),
    )
}

/// `GET /self-service/logout?token=` — operationId `updateLogoutFlow`.
pub async fn update_logout_flow(
    State(app): State<AppState>,
    req: ReqInfo,
    Query(q): Query<LogoutQuery>,
) -> Response {
    let Some(sent) = q.token.filter(|t| !t.is_empty()) else {
        return forward(
            &app,
            req.is_json,
            ApiError::bad_request("Please include a token in the URL query."),
        )
        .await;
    };
    let auth = match session_manager::fetch(&app, &req.headers).await {
        Ok(Some(a)) => a,
        Ok(None) => return forward(&app, req.is_json, ApiError::session_inactive()).await,
        Err(e) => return forward(&app, req.is_json, e).await,
    };
    let token = extract_token(&app, &req.headers).unwrap_or_default();
    if !session_manager::logout_token_matches(&app, &auth.session, &token, &sent) {
        return forward(
            &app,
            req.is_json,
            ApiError::forbidden("Unable to log out because the logout token in the URL query does not match the session cookie."),
        )
        .await;
    }
    let s = &app.settings;
    let return_to = match validate_return_to(
        q.return_to.as_deref(),
        logout_return(&app),
        &s.allowed_return_urls,
        &s.public_base_url,
    ) {
        Ok(r) => r.unwrap_or_else(|| logout_return(&app).clone()),
        Err(e) => return forward(&app, req.is_json, e).await,
    };
    let mut session = auth.session;
    session.active = false;
    session.updated_at = time_fmt::now();
    if let Err(e) = app.store.update_session(&session).await {
        return HttpError::from(e).into_response();
    }
    let cookies = [
        session_manager::clear_session_cookie(&app),
        session_manager::new_csrf_cookie(&app),
    ];
    let res = if req.is_json {
        StatusCode::NO_CONTENT.into_response()
    } else {
        redirect(StatusCode::SEE_OTHER, return_to.as_str())
    };
    with_headers(res, cookies)
}

/// `DELETE /self-service/logout/api` — operationId `performNativeLogout`.
pub async fn perform_native_logout(State(app): State<AppState>, RawBody(body): RawBody) -> Response {
    let token = match crate::http::body::parse_json::<Value>(&body) {
        Ok(v) => v
            .get("session_token")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        Err(e) => return HttpError(e).into_response(),
    };
    let forbidden = || {
        HttpError(ApiError::forbidden(
            "The provided Ory Session Token could not be found, is invalid, or otherwise malformed.",
        ))
        .into_response()
    };
    if token.is_empty() {
        return forbidden();
    }
    let mut session = match app.store.get_session_by_token_digest(&token_digest(&token)).await {
        Ok(s) if s.active => s,
        Ok(_) => return forbidden(),
        Err(StoreError::NotFound) => return forbidden(),
        Err(e) => return HttpError::from(e).into_response(),
    };
    session.active = false;
    session.updated_at = time_fmt::now();
    match app.store.update_session(&session).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => HttpError::from(e).into_response(),
    }
}
