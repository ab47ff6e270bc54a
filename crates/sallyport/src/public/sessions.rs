//! The caller's own sessions (Kratos `session/handler.go`, public routes).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use uuid::Uuid;

use sallyport_core::error::ApiError;
use sallyport_core::store::{SessionQuery, StoreError};
use sallyport_core::{secret, time_fmt};

use crate::http::error::{HttpError, json as json_res};
use crate::http::request::ReqInfo;
use crate::pagination::{Page, PageQuery, keyset_link, legacy_headers};
use crate::render;
use crate::session_manager::{self, Authenticated, check_aal};
use crate::state::{App, AppState};

fn no_cookie() -> ApiError {
    ApiError::unauthorized("No valid session cookie found.")
}

async fn require(app: &App, req: &ReqInfo, on_missing: fn() -> ApiError) -> Result<Authenticated, HttpError> {
    match session_manager::fetch(app, &req.headers).await {
        Ok(Some(a)) => Ok(a),
        Ok(None) => Err(HttpError(on_missing())),
        Err(e) => Err(HttpError(e)),
    }
}

/// `GET /sessions/whoami` (and every other method) — operationId `toSession`. The hottest endpoint:
/// it reads the headers in place, and a session it answered before is answered from
/// [`WhoamiCache`](crate::whoami_cache::WhoamiCache) while nothing changed in the store (a plain
/// `GET` of a cached session is answered before the router, by [`super::whoami_fast_path`]).
pub async fn to_session(State(app): State<AppState>, request: axum::extract::Request) -> Response {
    let Some(digest) = presented_digest(&app, request.headers()) else {
        return HttpError(ApiError::whoami_unauthorized()).into_response();
    };
    // Read before the store is: a change committed after this point retires what is built below.
    let generation = app.store.read_generation();
    let now = time_fmt::now();
    if let Some(hit) = cached_answer(&app, &digest, generation, now) {
        return hit;
    }
    let auth = match session_manager::fetch_by_digest(&app, &secret::digest_hex(&digest)).await {
        Ok(Some(a)) => a,
        Ok(None) => return HttpError(ApiError::whoami_unauthorized()).into_response(),
        Err(e) => return HttpError(e).into_response(),
    };
    if let Err(e) = check_aal(
        &app,
        &auth.session,
        &auth.identity,
        app.settings.whoami_required_aal,
        None,
    ) {
        return HttpError(e).into_response();
    }
    let ident = render::identity(&app, &auth.identity, &render::PUBLIC);
    // The cache copies the body into an exact-size buffer of its own with the entry's other parts.
    let body = serde_json::to_vec(&render::session(&auth.session, Some(ident), now)).unwrap_or_default();
    let id = auth.identity.id.to_string();
    if let Some(g) = generation
        && let Some(hit) = app
            .whoami_cache
            .put(digest, g, auth.session.expires_at, &body, &id)
    {
        return whoami_response(hit.body, hit.identity_id);
    }
    let Ok(id) = HeaderValue::from_str(&id) else {
        return HttpError(ApiError::internal()).into_response();
    };
    whoami_response(Bytes::from(body), id)
}

/// The digest of the session token a whoami presents, in Kratos' order: the `X-Session-Token`
/// header, the session cookie, a bearer token.
pub(crate) fn presented_digest(app: &App, headers: &axum::http::HeaderMap) -> Option<[u8; 32]> {
    match session_manager::session_token_header(headers) {
        Some(token) => Some(secret::token_digest_bytes(token)),
        None => cookie_or_bearer_digest(app, headers),
    }
}

/// The cached answer for the session with token digest `digest`, if one was built at `generation`
/// (read before anything else of the request) and the session is still active at `now`.
pub(crate) fn cached_answer(
    app: &App,
    digest: &[u8; 32],
    generation: Option<u64>,
    now: time::OffsetDateTime,
) -> Option<Response> {
    let hit = app.whoami_cache.get(digest, generation?, now)?;
    Some(whoami_response(hit.body, hit.identity_id))
}

/// The digest of the session cookie's token, else of a bearer token (Kratos' order after the
/// token header). A browser's sealed cookie, as sent, stands for the digest of the token it opened
/// to once: a known cookie skips opening it (base64, AES-GCM, a copy of the token) and digesting the
/// token. Only a token that came out of that very cookie is remembered for it.
fn cookie_or_bearer_digest(app: &App, headers: &axum::http::HeaderMap) -> Option<[u8; 32]> {
    let cookie_key = session_manager::sealed_session_cookie(app, headers).map(secret::sealed_cookie_key);
    if let Some(d) = cookie_key
        .as_ref()
        .and_then(|k| app.whoami_cache.cookie_digest(k))
    {
        return Some(d);
    }
    let (token, from_cookie) = session_manager::token_without_header(app, headers)?;
    let digest = secret::token_digest_bytes(&token);
    if let (Some(k), true) = (cookie_key, from_cookie) {
        app.whoami_cache.remember_cookie(k, digest);
    }
    Some(digest)
}

fn whoami_response(body: Bytes, identity_id: HeaderValue) -> Response {
    let mut res = Response::new(axum::body::Body::from(body));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    h.insert("x-kratos-authenticated-identity-id", identity_id);
    res
}

/// `GET /sessions` — operationId `listMySessions`: the caller's other active sessions.
pub async fn list_my_sessions(
    State(app): State<AppState>,
    req: ReqInfo,
    Query(pq): Query<PageQuery>,
) -> Response {
    let auth = match require(&app, &req, no_cookie).await {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = check_aal(
        &app,
        &auth.session,
        &auth.identity,
        app.settings.whoami_required_aal,
        None,
    ) {
        return HttpError(e).into_response();
    }
    let now = time_fmt::now();
    let base_query = SessionQuery {
        identity_id: Some(auth.identity.id),
        active: Some(true),
        now: Some(now),
        exclude: Some(auth.session.id),
        ..Default::default()
    };
    let (headers, list) = match page_sessions(&app, &pq, base_query, &app.public_url("sessions")).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let ident = render::identity(&app, &auth.identity, &render::PUBLIC);
    paged_json(
        headers,
        list.iter()
            .map(|s| render::session(s, Some(ident.clone()), now))
            .collect(),
    )
}

/// One page of sessions with its pagination headers; shared by the public and admin lists.
pub async fn page_sessions(
    app: &App,
    pq: &PageQuery,
    mut q: SessionQuery,
    base: &str,
) -> Result<(axum::http::HeaderMap, Vec<sallyport_core::session::Session>), HttpError> {
    let mut h = axum::http::HeaderMap::new();
    match pq.parse(250, 1000)? {
        Page::Keyset { after, size } => {
            q.after = after;
            q.limit = size;
            let list = app.store.list_sessions(&q).await?;
            keyset_link(
                &mut h,
                base,
                size,
                list.last().map(|s| s.id),
                list.len() as u32 == size,
            );
            Ok((h, list))
        }
        Page::Legacy { page, per_page } => {
            let total = app.store.count_sessions(&q).await?;
            q.offset = Some(page * per_page as u64);
            q.limit = per_page;
            let list = app.store.list_sessions(&q).await?;
            legacy_headers(&mut h, base, page, per_page, total);
            Ok((h, list))
        }
    }
}

pub fn paged_json(mut headers: axum::http::HeaderMap, items: Vec<Value>) -> Response {
    let mut res = json_res(StatusCode::OK, &Value::Array(items));
    res.headers_mut()
        .extend(headers.drain().filter_map(|(k, v)| k.map(|k| (k, v))));
    res
}

/// `DELETE /sessions` — operationId `disableMyOtherSessions`.
pub async fn disable_my_other_sessions(State(app): State<AppState>, req: ReqInfo) -> Response {
    let auth = match require(&app, &req, no_cookie).await {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    match app
        .store
        .revoke_sessions_of_identity(auth.identity.id, Some(auth.session.id))
        .await
    {
        Ok(n) => json_res(StatusCode::OK, &json!({ "count": n })),
        Err(e) => HttpError::from(e).into_response(),
    }
}

/// `DELETE /sessions/{id}` — operationId `disableMySession`.
pub async fn disable_my_session(
    State(app): State<AppState>,
    req: ReqInfo,
    Path(id): Path<String>,
) -> Response {
    let auth = match require(&app, &req, no_cookie).await {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return HttpError(
            ApiError::bad_request("The session id is not a valid UUID.").with_message("invalid UUID"),
        )
        .into_response();
    };
    if id == auth.session.id {
        return HttpError(
            ApiError::bad_request(
                "You can not revoke the session you are using; use the logout flow instead.",
            )
            .with_message("cannot revoke current session"),
        )
        .into_response();
    }
    match app.store.get_session(id).await {
        Ok(mut s) if s.identity_id == auth.identity.id => {
            s.active = false;
            s.updated_at = time_fmt::now();
            match app.store.update_session(&s).await {
                Ok(()) => StatusCode::NO_CONTENT.into_response(),
                Err(e) => HttpError::from(e).into_response(),
            }
        }
        Ok(_) | Err(StoreError::NotFound) => {
            HttpError(ApiError::not_found("The session could not be found.")).into_response()
        }
        Err(e) => HttpError::from(e).into_response(),
    }
}
