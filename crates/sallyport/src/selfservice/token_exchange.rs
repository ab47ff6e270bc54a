//! Kratos' session token exchange for native apps that sign in through a browser: an API login or
//! registration flow created with `return_session_token_exchange_code=true` carries
//! `session_token_exchange_code` (the init code). When the flow is completed in the browser by social
//! sign-in, the browser is sent to `return_to?code=<return_to code>` instead of being shown the session,
//! and the app trades both codes at `GET /sessions/token-exchange` (operationId `exchangeSessionToken`)
//! for `{session_token, session}`.
//!
//! Beyond Kratos: the codes and the parked token are never stored in the clear, and an exchange
//! succeeds once (Kratos would hand the same token out again to anyone holding both codes).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use sallyport_core::error::ApiError;
use sallyport_core::flow::{Flow, FlowKind, FlowType};
use sallyport_core::secret::{constant_time_eq, random_alnum, token_digest};
use sallyport_core::store::StoreError;
use sallyport_core::text::MessageType;
use sallyport_core::time_fmt;
use sallyport_core::token_exchange::Exchanger;

use crate::http::error::{HttpError, json as json_res, redirect, store_error};
use crate::http::request::ReqInfo;
use crate::selfservice::common::flow_json;
use crate::state::{App, AppState};

/// Kratos' query parameter on `GET /self-service/{login,registration}/api`.
pub const PARAM: &str = "return_session_token_exchange_code";
/// Kratos' codes are 64 alphanumerics (≈ 381 bits each).
const CODE_LEN: usize = 64;
/// Seal names: a sealed value opens only under the name it was sealed with.
const SEAL_RETURN_TO: &str = "sallyport_token_exchange_return_to";
const SEAL_TOKEN: &str = "sallyport_token_exchange_session";
/// How long after its flow expires an exchanger may still be collected: the app trades the codes
/// right after the browser comes back, and the flow may have been completed in its last minute.
const GRACE: time::Duration = time::Duration::minutes(10);
/// Kratos' answer for unknown, wrong, consumed and not-yet-settled codes alike.
const NO_SESSION: &str = "no session yet for this \"code\"";

/// Whether an init query asked for an exchange code (Kratos accepts only the literal `true`).
pub fn requested(raw: Option<&str>) -> bool {
    raw == Some("true")
}

/// Creates the flow's exchanger and puts the init code on the flow, to be shown once in the response.
pub async fn start(app: &App, flow: &mut Flow) -> Result<(), ApiError> {
    let init = random_alnum(CODE_LEN);
    let back = random_alnum(CODE_LEN);
    let now = time_fmt::now();
    let e = Exchanger {
        id: Uuid::new_v4(),
        flow_id: flow.id,
        init_code_digest: token_digest(&init),
        return_to_code_digest: token_digest(&back),
        return_to_code_sealed: app.cookie_keys.seal(SEAL_RETURN_TO, &back),
        session_id: None,
        session_token_sealed: None,
        created_at: now,
        expires_at: flow.expires_at + GRACE,
    };
    app.store.create_exchanger(&e).await.map_err(store_error)?;
    flow.session_token_exchange_code = Some(init);
    Ok(())
}

/// Kratos `MaybeRedirectAPICodeFlow`: an API flow completed by social sign-in in a browser whose app
/// asked for an exchange code. The new session is parked for the app and the browser is sent to
/// `return_to` with the return_to code. None when the flow is not such a flow.
pub async fn maybe_redirect(
    app: &App,
    flow: &Flow,
    method: &str,
    session_id: Uuid,
    token: Option<&str>,
) -> Option<Response> {
    if flow.flow_type != FlowType::Api || method != "oidc" {
        return None;
    }
    let token = token?;
    let e = match app.store.exchanger_for_flow(flow.id).await {
        Ok(e) => e,
        Err(StoreError::NotFound) => return None,
        Err(err) => return Some(HttpError(store_error(err)).into_response()),
    };
    let Some(back) = app.cookie_keys.open(SEAL_RETURN_TO, &e.return_to_code_sealed) else {
        // Sealed under a secret no longer configured: the app cannot collect; say so to the browser.
        return Some(HttpError(ApiError::internal()).into_response());
    };
    let sealed = app.cookie_keys.seal(SEAL_TOKEN, token);
    if let Err(err) = app.store.settle_exchanger(flow.id, session_id, &sealed).await {
        return Some(HttpError(store_error(err)).into_response());
    }
    let base = flow
        .return_to
        .clone()
        .unwrap_or_else(|| app.settings.default_return_url.to_string());
    let to = match url::Url::parse(&base) {
        Ok(mut u) => {
            let kept: Vec<(String, String)> = u
                .query_pairs()
                .filter(|(k, _)| k != "code")
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            u.query_pairs_mut()
                .clear()
                .extend_pairs(kept)
                .append_pair("code", &back);
            u.to_string()
        }
        Err(_) => return Some(HttpError(ApiError::internal()).into_response()),
    };
    Some(redirect(StatusCode::SEE_OTHER, &to))
}

#[derive(Debug, Deserialize)]
pub struct ExchangeQuery {
    pub init_code: Option<String>,
    pub return_to_code: Option<String>,
}

/// `GET /sessions/token-exchange` — operationId `exchangeSessionToken`.
pub async fn exchange_session_token(
    State(app): State<AppState>,
    req: ReqInfo,
    Query(q): Query<ExchangeQuery>,
) -> Response {
    let (Some(init), Some(back)) = (
        q.init_code.filter(|c| !c.is_empty()),
        q.return_to_code.filter(|c| !c.is_empty()),
    ) else {
        return HttpError(ApiError::bad_request(
            "\"init_code\" and \"return_to_code\" query params must be set",
        ))
        .into_response();
    };
    let not_found = || HttpError(ApiError::not_found(NO_SESSION)).into_response();
    let e = match app.store.exchanger_by_init_code(&token_digest(&init)).await {
        Ok(e) => e,
        Err(StoreError::NotFound) => return not_found(),
        Err(err) => return HttpError(store_error(err)).into_response(),
    };
    let now = time_fmt::now();
    if !constant_time_eq(token_digest(&back).as_bytes(), e.return_to_code_digest.as_bytes())
        || e.expires_at <= now
    {
        return not_found();
    }
    let (Some(session_id), Some(sealed)) = (e.session_id, e.session_token_sealed.as_deref()) else {
        return pending(&app, &req, e.flow_id).await.unwrap_or_else(not_found);
    };
    let Some(token) = app.cookie_keys.open(SEAL_TOKEN, sealed) else {
        return not_found();
    };
    match app.store.consume_exchanger(e.id).await {
        Ok(true) => {}
        Ok(false) => return not_found(),
        Err(err) => return HttpError(store_error(err)).into_response(),
    }
    let session = match app.store.get_session(session_id).await {
        Ok(s) if s.active && s.expires_at > now => s,
        Ok(_) | Err(StoreError::NotFound) => return not_found(),
        Err(err) => return HttpError(store_error(err)).into_response(),
    };
    let identity = match app.store.get_identity(session.identity_id).await {
        Ok(i) => i,
        Err(err) => return HttpError(store_error(err)).into_response(),
    };
    let identity_json = crate::render::identity(&app, &identity, &crate::render::PUBLIC);
    json_res(
        StatusCode::OK,
        &json!({
            "session_token": token,
            "session": crate::render::session(&session, Some(identity_json), now),
        }),
    )
}

/// Kratos: a flow that ended without a session (a hook or the schema refused it) is shown with its
/// messages, 422, so the app can tell its user why.
async fn pending(app: &App, req: &ReqInfo, flow_id: Uuid) -> Option<Response> {
    for kind in [FlowKind::Login, FlowKind::Registration] {
        if let Ok(f) = app.store.get_flow(kind, flow_id).await {
            let failed = f.ui.messages.iter().any(|m| m.kind == MessageType::Error)
                || f.ui
                    .nodes
                    .iter()
                    .any(|n| n.messages.iter().any(|m| m.kind == MessageType::Error));
            return failed.then(|| flow_json(app, req, &f, StatusCode::UNPROCESSABLE_ENTITY));
        }
    }
    None
}
