//! What login and registration (and later flows) share on the wire: CSRF handling, rendering a flow
//! per client kind, and Kratos' flow error handler (`selfservice/flow/*/error.go`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use uuid::Uuid;

use sallyport_core::error::{ApiError, ErrorId};
use sallyport_core::flow::{Flow, FlowKind, FlowType};
use sallyport_core::store::StoreError;
use sallyport_core::text::{self, Message};
use sallyport_core::time_fmt;

use crate::http::csrf;
use crate::http::error::{HttpError, forward, json, redirect, store_error};
use crate::http::request::ReqInfo;
use crate::state::App;

/// A problem with a submission that Kratos renders into the flow instead of an error page.
#[derive(Debug)]
pub struct FieldMessage {
    pub field: Option<String>,
    pub message: Message,
}

impl FieldMessage {
    pub fn flow(message: Message) -> FieldMessage {
        FieldMessage { field: None, message }
    }
    pub fn on(field: &str, message: Message) -> FieldMessage {
        FieldMessage {
            field: Some(field.into()),
            message,
        }
    }
}

#[derive(Debug)]
pub enum FlowFailure {
    Ui(Vec<FieldMessage>),
    Api(ApiError),
    Expired,
    /// A `sallyport.rate_limits` budget is spent: 429 for API/SPA clients, a message on the flow for browsers.
    Limited(Box<crate::rate_limit::Limited>),
}

impl From<ApiError> for FlowFailure {
    fn from(e: ApiError) -> Self {
        FlowFailure::Api(e)
    }
}

impl From<StoreError> for FlowFailure {
    fn from(e: StoreError) -> Self {
        FlowFailure::Api(store_error(e))
    }
}

pub fn ui_url(app: &App, kind: FlowKind) -> url::Url {
    match kind {
        FlowKind::Login => app.settings.login.ui_url.clone(),
        FlowKind::Registration => app.settings.registration.ui_url.clone(),
        FlowKind::Recovery => app.settings.recovery.ui_url.clone(),
        FlowKind::Verification => app.settings.verification.ui_url.clone(),
        FlowKind::Settings => app.settings.settings_ui_url.clone(),
    }
}

pub fn ui_redirect_url(app: &App, kind: FlowKind, id: Uuid) -> String {
    let mut u = ui_url(app, kind);
    u.query_pairs_mut().append_pair("flow", &id.to_string());
    u.to_string()
}

/// The browser's CSRF token from its cookie, if it has a valid one.
pub fn request_csrf(app: &App, req: &ReqInfo) -> Option<[u8; csrf::TOKEN_LEN]> {
    csrf::request_cookie(&req.headers, &app.csrf_cookie_name).and_then(|v| csrf::decode_cookie(&v))
}

/// For flow init: the browser's token, or a new one with the `Set-Cookie` that hands it out.
pub fn init_csrf(app: &App, req: &ReqInfo) -> ([u8; csrf::TOKEN_LEN], Option<HeaderValue>) {
    match request_csrf(app, req) {
        Some(t) => (t, None),
        None => {
            let t = csrf::new_token();
            let c = crate::http::cookies::set_cookie(
                &app.settings.csrf_cookie,
                &app.csrf_cookie_name,
                &csrf::encode_cookie(&t),
                Some(31_536_000),
            );
            (t, Some(c))
        }
    }
}

/// The CSRF token a new flow stores ("" for API flows) and the cookie to set when the browser had none.
pub fn new_flow_csrf(app: &App, req: &ReqInfo, flow_type: FlowType) -> (String, Option<HeaderValue>) {
    if flow_type == FlowType::Api {
        return (String::new(), None);
    }
    let (t, c) = init_csrf(app, req);
    (csrf::encode_cookie(&t), c)
}

/// How a flow-init endpoint answers an error: browsers see the error UI, native apps the envelope.
pub async fn init_failure(app: &App, req: &ReqInfo, flow_type: FlowType, e: ApiError) -> Response {
    if flow_type == FlowType::Browser {
        forward(app, req.is_json, e).await
    } else {
        HttpError(e).into_response()
    }
}

/// The csrf node value to render: "" for API flows, a fresh mask of the browser's token otherwise.
pub fn csrf_value(app: &App, req: &ReqInfo, flow: &Flow) -> String {
    if flow.flow_type == FlowType::Api {
        return String::new();
    }
    request_csrf(app, req)
        .or_else(|| csrf::decode_cookie(&flow.csrf_token))
        .map(|t| csrf::mask(&t))
        .unwrap_or_default()
}

const SKIP_CSRF: &str = "dangerous_skip_csrf_check";

/// Marks a flow made for a browser that never saw it (an admin-created recovery code): no CSRF check
/// when it is fetched or submitted, as Kratos' `DangerousSkipCSRFCheck`.
pub fn skip_csrf_check(flow: &mut Flow) {
    flow.internal_context[SKIP_CSRF] = Value::Bool(true);
}

fn skips_csrf_check(flow: &Flow) -> bool {
    flow.internal_context.get(SKIP_CSRF) == Some(&Value::Bool(true))
}

/// Kratos `flow.EnsureCSRF`: browser flows need the body's token to match the cookie; API flows must
/// not look like they come from a browser (no `Origin`, no cookies but Cloudflare's).
pub fn ensure_csrf(app: &App, req: &ReqInfo, flow: &Flow, sent: Option<&str>) -> Result<(), ApiError> {
    if skips_csrf_check(flow) {
        tracing::debug!(flow = %flow.id, "a flow created by the admin API skips the CSRF check");
        return Ok(());
    }
    match flow.flow_type {
        FlowType::Api => {
            if app.settings.disable_api_flow_enforcement {
                return Ok(());
            }
            if req.headers.get(header::ORIGIN).is_some_and(|v| !v.is_empty()) {
                return Err(ApiError::api_flow_origin_header());
            }
            let found: Vec<String> = csrf::request_cookies(&req.headers)
                .into_iter()
                .map(|(n, _)| n)
                .filter(|n| !(n.starts_with("__cf") || n.starts_with("_cf") || n.starts_with("cf_")))
                .collect();
            if !found.is_empty() {
                return Err(ApiError::api_flow_cookie_header(found));
            }
            Ok(())
        }
        FlowType::Browser => {
            let Some(real) = request_csrf(app, req) else {
                return Err(csrf_error(req, "cookie_missing"));
            };
            match sent {
                Some(s) if csrf::verify(&real, s) => Ok(()),
                Some(_) => Err(csrf_error(req, "token_mismatch")),
                None => Err(csrf_error(req, "token_missing")),
            }
        }
    }
}

fn csrf_error(req: &ReqInfo, reason: &str) -> ApiError {
    let hint = if req.is_json {
        "We detected an AJAX call, please ensure that CORS is enabled and configured correctly, and that your AJAX code sends cookies and has credentials enabled. For further debugging, check your Browser's Network Tab to see what cookies are included or excluded."
    } else {
        "The anti-CSRF cookie was found but the CSRF token was not included in the HTTP request body (csrf_token) nor in the HTTP Header (X-CSRF-Token)."
    };
    ApiError::csrf_violation(Some(reason), Some(hint))
}

pub fn with_headers(mut res: Response, cookies: impl IntoIterator<Item = HeaderValue>) -> Response {
    for c in cookies {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}

pub fn flow_json(app: &App, req: &ReqInfo, flow: &Flow, status: StatusCode) -> Response {
    let mut res = json(status, &crate::render::flow(flow, &csrf_value(app, req, flow)));
    if status.is_client_error()
        && let Some(n) = crate::http::error::RefusalNote::of_flow(&flow.ui)
    {
        res.extensions_mut().insert(n);
    }
    res
}

/// How a freshly created flow is answered: browsers go to the UI, SPAs and apps get the flow.
pub fn respond_new_flow(app: &App, req: &ReqInfo, flow: &Flow, set_cookie: Option<HeaderValue>) -> Response {
    let res = if flow.flow_type == FlowType::Browser && !req.is_json {
        redirect(StatusCode::SEE_OTHER, &ui_redirect_url(app, flow.kind, flow.id))
    } else {
        flow_json(app, req, flow, StatusCode::OK)
    };
    with_headers(res, set_cookie)
}

/// Parses `?flow=` (or `?id=`); Kratos answers a missing or malformed one with 400.
pub fn flow_id(raw: Option<&str>) -> Result<Uuid, ApiError> {
    raw.and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(ApiError::flow_param_missing)
}

/// Kratos' flow error handler. `replacement` builds a new flow when the old one expired.
pub async fn write_flow_error(
    app: &App,
    req: &ReqInfo,
    flow: Option<Flow>,
    failure: FlowFailure,
    replacement: impl FnOnce(&Flow) -> Flow,
) -> Response {
    let Some(mut flow) = flow else {
        let e = match failure {
            FlowFailure::Api(e) => e,
            FlowFailure::Ui(m) => {
                ApiError::bad_request(m.first().map(|m| m.message.text.clone()).unwrap_or_default())
            }
            FlowFailure::Expired => ApiError::flow_not_found(),
            FlowFailure::Limited(l) => l.error,
        };
        return forward(app, req.is_json, e).await;
    };
    let now = time_fmt::now();
    let messages = match failure {
        FlowFailure::Expired => {
            let mut new = replacement(&flow);
            let msg = match flow.kind {
                FlowKind::Registration => text::registration_flow_expired(flow.expires_at, now),
                _ => text::login_flow_expired(flow.expires_at, now),
            };
            new.ui.messages.push(msg);
            if let Err(e) = app.store.create_flow(&new).await {
                return HttpError(store_error(e)).into_response();
            }
            if new.flow_type == FlowType::Api || req.is_json {
                let e = ApiError::flow_expired(flow.expires_at, now)
                    .with_top_level("use_flow_id", new.id.to_string());
                return HttpError(e).into_response();
            }
            return redirect(StatusCode::SEE_OTHER, &ui_redirect_url(app, new.kind, new.id));
        }
        FlowFailure::Ui(m) => m,
        FlowFailure::Limited(l) => {
            if flow.flow_type == FlowType::Api || req.is_json {
                return HttpError(l.error).into_response();
            }
            vec![FieldMessage::flow(l.message)]
        }
        FlowFailure::Api(e) if e.code == 400 => {
            let m = if e.id == Some(ErrorId::IdentityDisabled) {
                text::identity_disabled()
            } else {
                text::validation_generic(e.reason.as_deref().unwrap_or(&e.message))
            };
            vec![FieldMessage::flow(m)]
        }
        FlowFailure::Api(e) => {
            if flow.flow_type == FlowType::Api {
                return HttpError(e).into_response();
            }
            return forward(app, req.is_json, e).await;
        }
    };
    flow.ui.reset_messages();
    for m in messages {
        flow.ui.add_message(m.field.as_deref(), m.message);
    }
    flow.ui.clear_secret_values();
    flow.updated_at = now;
    if let Err(e) = app.store.update_flow(&flow).await {
        return HttpError(store_error(e)).into_response();
    }
    if flow.flow_type == FlowType::Browser && !req.is_json {
        // Kratos answers registration form errors with 302, every other flow with 303.
        let status = if flow.kind == FlowKind::Registration {
            StatusCode::FOUND
        } else {
            StatusCode::SEE_OTHER
        };
        let mut res = redirect(status, &ui_redirect_url(app, flow.kind, flow.id));
        if let Some(n) = crate::http::error::RefusalNote::of_flow(&flow.ui) {
            res.extensions_mut().insert(n);
        }
        return res;
    }
    flow_json(app, req, &flow, StatusCode::BAD_REQUEST)
}

/// `GET /self-service/<flow>/flows?id=`.
pub async fn get_flow(app: &App, req: &ReqInfo, kind: FlowKind, id: Option<&str>) -> Response {
    let id = match id.and_then(|s| Uuid::parse_str(s).ok()) {
        Some(id) => id,
        None => return HttpError(ApiError::flow_not_found()).into_response(),
    };
    let flow = match app.store.get_flow(kind, id).await {
        Ok(f) => f,
        Err(e) => return HttpError(store_error(e)).into_response(),
    };
    if flow.flow_type == FlowType::Browser && !skips_csrf_check(&flow) {
        let matches = request_csrf(app, req).is_some_and(|t| csrf::encode_cookie(&t) == flow.csrf_token);
        if !matches {
            return HttpError(csrf_error(req, "token_mismatch")).into_response();
        }
    }
    let now = time_fmt::now();
    if flow.is_expired(now) {
        let name = kind.as_str();
        let e = ApiError::new(410).with_id(ErrorId::SelfServiceFlowExpired);
        let e = if flow.flow_type == FlowType::Browser {
            let mut to = url::Url::parse(&app.public_url(&format!("self-service/{name}/browser")))
                .expect("valid base");
            if let Some(r) = &flow.return_to {
                to.query_pairs_mut().append_pair("return_to", r);
            }
            e.with_reason(format!("The {name} flow has expired. Redirect the user to the {name} flow init endpoint to initialize a new {name} flow."))
                .with_detail("redirect_to", to.to_string())
                .with_detail("return_to", flow.return_to.clone().unwrap_or_default())
        } else {
            e.with_reason(format!("The {name} flow has expired. Call the {name} flow init API endpoint to initialize a new {name} flow."))
                .with_detail("api", app.public_url(&format!("self-service/{name}/api")))
        };
        return HttpError(e).into_response();
    }
    flow_json(app, req, &flow, StatusCode::OK)
}

pub fn continue_with_redirect(to: &str) -> Value {
    serde_json::json!({"action": "redirect_browser_to", "redirect_browser_to": to})
}
