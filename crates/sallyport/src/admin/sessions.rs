//! The admin session API (Kratos `session/handler.go`, admin routes).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use sallyport_core::error::ApiError;
use sallyport_core::session::Session;
use sallyport_core::store::SessionQuery;
use sallyport_core::time_fmt;

use crate::http::body::RawBody;
use crate::http::error::{HttpError, json as json_res};
use crate::http::request::ReqInfo;
use crate::pagination::PageQuery;
use crate::public::sessions::{page_sessions, paged_json};
use crate::render;
use crate::state::{App, AppState};

#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    #[serde(flatten)]
    page: PageQuery,
    active: Option<String>,
}

fn bad_uuid() -> HttpError {
    HttpError(ApiError::bad_request("The id is not a valid UUID.").with_message("could not parse UUID"))
}

fn expands_identity(req: &ReqInfo) -> bool {
    url::form_urlencoded::parse(req.uri.query().unwrap_or("").as_bytes())
        .any(|(k, v)| k == "expand" && v == "identity")
}

fn parse_active(raw: &Option<String>) -> Result<Option<bool>, HttpError> {
    match raw.as_deref() {
        None | Some("") => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(HttpError(ApiError::bad_request(
            "could not parse parameter active",
        ))),
    }
}

async fn render_admin(app: &App, s: &Session, with_identity: bool) -> Value {
    let ident = if with_identity {
        app.store
            .get_identity(s.identity_id)
            .await
            .ok()
            .map(|i| render::identity(app, &i, &render::ADMIN))
    } else {
        None
    };
    let mut v = render::session(s, ident, time_fmt::now());
    if !with_identity && let Some(o) = v.as_object_mut() {
        o.remove("identity");
    }
    v
}

/// `GET /admin/sessions` — operationId `listSessions`.
pub async fn list_sessions(
    State(app): State<AppState>,
    req: ReqInfo,
    Query(q): Query<ListQuery>,
) -> Result<Response, HttpError> {
    let active = parse_active(&q.active)?;
    let sq = SessionQuery {
        active,
        now: Some(time_fmt::now()),
        ..Default::default()
    };
    let (headers, list) = page_sessions(&app, &q.page, sq, &app.admin_url("admin/sessions")).await?;
    let with_identity = expands_identity(&req);
    let mut items = Vec::with_capacity(list.len());
    for s in &list {
        items.push(render_admin(&app, s, with_identity).await);
    }
    Ok(paged_json(headers, items))
}

/// `GET /admin/sessions/{id}` — operationId `getSession`.
pub async fn get_session(
    State(app): State<AppState>,
    req: ReqInfo,
    Path(id): Path<String>,
) -> Result<Response, HttpError> {
    let id = Uuid::parse_str(&id).map_err(|_| bad_uuid())?;
    let s = app.store.get_session(id).await?;
    Ok(json_res(
        StatusCode::OK,
        &render_admin(&app, &s, expands_identity(&req)).await,
    ))
}

/// `DELETE /admin/sessions/{id}` — operationId `disableSession`.
pub async fn disable_session(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, HttpError> {
    let id = Uuid::parse_str(&id).map_err(|_| bad_uuid())?;
    let mut s = app.store.get_session(id).await?;
    s.active = false;
    s.updated_at = time_fmt::now();
    app.store.update_session(&s).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PATCH /admin/sessions/{id}/extend` — operationId `extendSession`.
pub async fn extend_session(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, HttpError> {
    let id = Uuid::parse_str(&id).map_err(|_| bad_uuid())?;
    let mut s = app.store.get_session(id).await?;
    let now = time_fmt::now();
    let lifespan = time::Duration::try_from(app.settings.session_lifespan).unwrap_or(time::Duration::DAY);
    let earliest = app
        .settings
        .session_earliest_possible_extend
        .and_then(|d| time::Duration::try_from(d).ok())
        .unwrap_or(lifespan);
    if s.expires_at - earliest <= now {
        s.expires_at = now + lifespan;
        s.updated_at = now;
        app.store.update_session(&s).await?;
    }
    Ok(json_res(StatusCode::OK, &render_admin(&app, &s, true).await))
}

/// `GET /admin/identities/{id}/sessions` — operationId `listIdentitySessions`.
pub async fn list_identity_sessions(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Response {
    let Ok(id) = Uuid::parse_str(&id) else {
        return bad_uuid().into_response();
    };
    let active = match parse_active(&q.active) {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let identity = match app.store.get_identity(id).await {
        Ok(i) => i,
        Err(e) => return HttpError::from(e).into_response(),
    };
    let sq = SessionQuery {
        identity_id: Some(id),
        active,
        now: Some(time_fmt::now()),
        ..Default::default()
    };
    let (headers, list) = match page_sessions(
        &app,
        &q.page,
        sq,
        &app.admin_url(&format!("admin/identities/{id}/sessions")),
    )
    .await
    {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let ident = render::identity(&app, &identity, &render::ADMIN);
    paged_json(
        headers,
        list.iter()
            .map(|s| render::session(s, Some(ident.clone()), time_fmt::now()))
            .collect(),
    )
}

/// `DELETE /admin/identities/{id}/sessions` — operationId `deleteIdentitySessions`.
pub async fn delete_identity_sessions(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, HttpError> {
    let id = Uuid::parse_str(&id).map_err(|_| bad_uuid())?;
    app.store.get_identity(id).await?;
    app.store.delete_sessions_of_identity(id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
struct ManageBody {
    action: String,
    identities: Option<Vec<String>>,
    sessions: Option<Vec<String>>,
}

/// `POST /admin/sessions` — bulk disable/delete by identities or sessions.
pub async fn manage_sessions(
    State(app): State<AppState>,
    RawBody(body): RawBody,
) -> Result<Response, HttpError> {
    let b: ManageBody = crate::http::body::parse_json(&body)?;
    let delete = match b.action.as_str() {
        "disable" => false,
        "delete" => true,
        other => {
            return Err(ApiError::bad_request(format!(
                "Unknown action \"{other}\"; expected \"disable\" or \"delete\"."
            ))
            .into());
        }
    };
    let parse = |raw: &[String], what: &str| -> Result<Vec<Uuid>, ApiError> {
        if raw.len() > 500 {
            return Err(ApiError::bad_request(format!(
                "At most 500 {what} can be processed at once."
            )));
        }
        raw.iter()
            .map(|s| {
                Uuid::parse_str(s).map_err(|_| {
                    ApiError::bad_request(format!("Could not parse '{what}' field: {s} is not a UUID"))
                })
            })
            .collect()
    };
    let mut processed = 0u64;
    match (b.identities, b.sessions) {
        (Some(ids), None) if ids.len() == 1 && ids[0] == "*" => {
            let q = SessionQuery {
                limit: 5000,
                ..Default::default()
            };
            for s in app.store.list_sessions(&q).await? {
                processed += apply(&app, s, delete).await?;
            }
            let more =
                app.store.count_sessions(&SessionQuery::default()).await? > 0 && delete && processed == 5000;
            return Ok(json_res(
                StatusCode::OK,
                &json!({ "processed": processed, "more": more }),
            ));
        }
        (Some(ids), None) => {
            for id in parse(&ids, "identities")? {
                processed += if delete {
                    app.store.delete_sessions_of_identity(id).await?
                } else {
                    app.store.revoke_sessions_of_identity(id, None).await?
                };
            }
        }
        (None, Some(sessions)) => {
            for id in parse(&sessions, "sessions")? {
                if let Ok(s) = app.store.get_session(id).await {
                    processed += apply(&app, s, delete).await?;
                }
            }
        }
        _ => {
            return Err(ApiError::bad_request(
                "Exactly one of \"identities\" or \"sessions\" must be provided.",
            )
            .into());
        }
    }
    Ok(json_res(
        StatusCode::OK,
        &json!({ "processed": processed, "more": false }),
    ))
}

async fn apply(app: &App, mut s: Session, delete: bool) -> Result<u64, HttpError> {
    if delete {
        app.store.delete_session(s.id).await?;
    } else {
        s.active = false;
        s.updated_at = time_fmt::now();
        app.store.update_session(&s).await?;
    }
    Ok(1)
}
