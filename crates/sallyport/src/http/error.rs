//! Turning errors into Kratos-shaped responses: the JSON envelope with `Ory-Error-Id`, or, for
//! browsers, a stored error and a 303 to `selfservice.flows.error.ui_url?id=`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use uuid::Uuid;

use sallyport_core::error::ApiError;
use sallyport_core::store::StoreError;

use crate::state::App;

/// An API error as a response.
#[derive(Debug)]
pub struct HttpError(pub ApiError);

impl From<ApiError> for HttpError {
    fn from(e: ApiError) -> Self {
        HttpError(e)
    }
}

impl From<StoreError> for HttpError {
    fn from(e: StoreError) -> Self {
        HttpError(store_error(e))
    }
}

/// NotFound becomes 404, Conflict 409, Unrepresentable 400; anything else is logged here and becomes an opaque 500.
#[track_caller]
pub fn store_error(e: StoreError) -> ApiError {
    match e {
        // Kratos (sqlcon) answers a missing row with a message and no reason.
        StoreError::NotFound => ApiError::new(404).with_message("Unable to locate the resource"),
        StoreError::Conflict(_) => ApiError::identity_conflict(),
        StoreError::Unrepresentable(what) => {
            ApiError::bad_request(format!("The request contains {what}, which cannot be stored."))
        }
        StoreError::Other(err) => {
            let at = std::panic::Location::caller();
            tracing::error!(error = %err, location = %at, "storage failure");
            ApiError::internal()
        }
    }
}

#[track_caller]
pub fn internal(err: impl std::fmt::Display) -> ApiError {
    let at = std::panic::Location::caller();
    tracing::error!(error = %err, location = %at, "internal error");
    ApiError::internal()
}

/// Why a request was refused, for the request log (a response extension, never sent). Kratos
/// front ends see only "403"; the operator's debug log says which error and why.
#[derive(Debug, Clone)]
pub struct RefusalNote {
    pub error_id: String,
    pub reason: String,
}

impl RefusalNote {
    pub fn of(e: &ApiError) -> RefusalNote {
        RefusalNote {
            error_id: e.id_str().unwrap_or("(none)").to_owned(),
            reason: e.reason.clone().unwrap_or_else(|| e.message.clone()),
        }
    }

    /// A flow answered with validation messages: their ids and texts (errors only, no values).
    pub fn of_flow(ui: &sallyport_core::ui::Container) -> Option<RefusalNote> {
        let errors: Vec<String> = ui
            .messages
            .iter()
            .map(|m| (None, m))
            .chain(
                ui.nodes
                    .iter()
                    .flat_map(|n| n.messages.iter().map(move |m| (Some(n.name()), m))),
            )
            .filter(|(_, m)| m.kind == sallyport_core::text::MessageType::Error)
            .map(|(field, m)| match field {
                Some(f) => format!("{f}: {} {}", m.id, m.text),
                None => format!("{} {}", m.id, m.text),
            })
            .collect();
        (!errors.is_empty()).then(|| RefusalNote {
            error_id: "validation".into(),
            reason: errors.join("; "),
        })
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let e = self.0;
        let mut res = json(
            StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            &e.body(),
        );
        res.extensions_mut().insert(RefusalNote::of(&e));
        if let Some(id) = e.id_str() {
            res.headers_mut()
                .insert("ory-error-id", HeaderValue::from_static(id));
        }
        if let Some(secs) = e.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

pub fn json(status: StatusCode, body: &Value) -> Response {
    json_of(status, body)
}

/// [`json`] of any serializable answer, for large ones better written without a `Value` tree.
pub fn json_of<T: serde::Serialize + ?Sized>(status: StatusCode, body: &T) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut res = (status, bytes).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    res
}

pub fn redirect(status: StatusCode, to: &str) -> Response {
    let mut res = status.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

/// Kratos' `errorx.Forward`: JSON clients get the envelope, browsers are sent to the error UI.
pub async fn forward(app: &App, is_json: bool, e: ApiError) -> Response {
    if is_json {
        return HttpError(e).into_response();
    }
    let id = Uuid::new_v4();
    if let Err(err) = app
        .store
        .create_error(id, &e.error_object(), sallyport_core::time_fmt::now())
        .await
    {
        return HttpError(store_error(err)).into_response();
    }
    let mut to = app.settings.error_ui_url.clone();
    to.query_pairs_mut().append_pair("id", &id.to_string());
    let mut res = redirect(StatusCode::SEE_OTHER, to.as_str());
    res.extensions_mut().insert(RefusalNote::of(&e));
    res
}

/// axum's extractor rejections (a query string it cannot deserialize, a bad path parameter) answer 4xx with a
/// `text/plain` body; every refusal must be Kratos' JSON envelope instead, with that text as the reason.
pub async fn envelope_for_plain_rejection(res: Response) -> Response {
    let plain = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/plain"));
    if !res.status().is_client_error() || !plain {
        return res;
    }
    let status = res.status();
    let text = match axum::body::to_bytes(res.into_body(), 64 * 1024).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_owned(),
        Err(_) => String::new(),
    };
    let mut e = ApiError::new(status.as_u16());
    if !text.is_empty() {
        e = e.with_reason(text);
    }
    HttpError(e).into_response()
}
