//! `GET /admin/courier/messages` and `GET /admin/courier/messages/{id}` (Kratos `courier/handler.go`).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use sallyport_core::courier::{Message, MessageQuery, MessageStatus};
use sallyport_core::error::ApiError;
use sallyport_core::time_fmt::rfc3339;

use crate::http::error::{HttpError, json as json_res};
use crate::pagination::keyset_link;
use crate::state::{App, AppState};

const REDACTED: &str = "<redacted-unless-dev-mode>";

fn render(app: &App, m: &Message, with_dispatches: bool) -> Value {
    let (subject, body) = if app.settings.expose_message_bodies {
        (m.subject.clone(), m.body.clone())
    } else {
        (REDACTED.into(), REDACTED.into())
    };
    let mut v = json!({
        "id": m.id,
        "status": m.status.as_str(),
        "type": m.kind.as_str(),
        "recipient": m.recipient,
        "body": body,
        "subject": subject,
        "template_type": m.template_type,
        "channel": m.channel,
        "send_count": m.send_count,
        "created_at": rfc3339(m.created_at),
        "updated_at": rfc3339(m.updated_at),
    });
    if with_dispatches {
        v["dispatches"] = m
            .dispatches
            .iter()
            .map(|d| {
                json!({"id": d.id, "message_id": d.message_id, "status": d.status, "error": d.error,
                       "created_at": rfc3339(d.created_at), "updated_at": rfc3339(d.updated_at)})
            })
            .collect();
    }
    v
}

#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    page_size: Option<String>,
    page_token: Option<String>,
    status: Option<String>,
    recipient: Option<String>,
}

/// operationId `listCourierMessages`.
pub async fn list_courier_messages(
    State(app): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Response, HttpError> {
    let size: u32 = match q.page_size.as_deref() {
        None | Some("") => 250,
        Some(s) => s
            .parse()
            .map_err(|_| ApiError::bad_request("could not parse parameter page_size"))?,
    };
    let size = size.clamp(1, 1000);
    let status = match q.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(MessageStatus::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "status \"{s}\" is invalid; expected queued, sent, processing or abandoned"
            ))
        })?),
    };
    let before = match q.page_token.as_deref().filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(
            crate::pagination::decode_token(t)
                .ok_or_else(|| ApiError::bad_request("The page token is invalid."))?,
        ),
    };
    let query = MessageQuery {
        status,
        recipient: q.recipient.filter(|r| !r.is_empty()),
        before,
        limit: size,
    };
    let list = app.store.list_messages(&query).await?;
    let mut res = json_res(
        StatusCode::OK,
        &Value::Array(list.iter().map(|m| render(&app, m, false)).collect()),
    );
    keyset_link(
        res.headers_mut(),
        &app.admin_url("admin/courier/messages"),
        size,
        list.last().map(|m| m.id),
        list.len() as u32 == size,
    );
    Ok(res)
}

/// operationId `getCourierMessage`.
pub async fn get_courier_message(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, HttpError> {
    let id = Uuid::parse_str(&id).map_err(|e| ApiError::new(400).with_message(format!("uuid: {e}")))?;
    let m = app.store.get_message(id).await?;
    Ok(json_res(StatusCode::OK, &render(&app, &m, true)))
}
