//! What recovery and verification share (Kratos `selfservice/flow/{recovery,verification}`): both start
//! from an address, answer code/link submissions with 200 + flow (validation errors with 400), and
//! replace an expired flow by redirecting to the new one.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use sallyport_core::error::ApiError;
use sallyport_core::flow::{Flow, FlowKind, FlowType};
use sallyport_core::text;
use sallyport_core::time_fmt;
use sallyport_core::ui::{Attributes, Group, Meta, Node};

use crate::http::error::{HttpError, forward, redirect};
use crate::http::redirect::validate_return_to;
use crate::http::request::ReqInfo;
use crate::selfservice::common::{
    FieldMessage, FlowFailure, flow_json, init_failure, new_flow_csrf, respond_new_flow, ui_redirect_url,
    with_headers,
};
use crate::settings::AddressFlowSettings;
use crate::state::App;

#[derive(Debug, serde::Deserialize, Default)]
pub struct InitQuery {
    pub return_to: Option<String>,
}

/// `?flow=` for submissions, `?id=` for fetching; emailed links add `code` or `token`.
#[derive(Debug, serde::Deserialize, Default)]
pub struct SubmitQuery {
    pub flow: Option<String>,
    pub id: Option<String>,
    pub code: Option<String>,
    pub token: Option<String>,
}

pub fn settings(app: &App, kind: FlowKind) -> &AddressFlowSettings {
    if kind == FlowKind::Recovery {
        &app.settings.recovery
    } else {
        &app.settings.verification
    }
}

pub fn method(app: &App, kind: FlowKind) -> &'static str {
    if settings(app, kind).use_link {
        "link"
    } else {
        "code"
    }
}

/// Which strategy a submission addresses: `Some(true)` for link, `Some(false)` for code, None when
/// that method is not enabled. Both enabled strategies answer, whatever `use` says, as in Kratos.
pub fn submitted_strategy(app: &App, method: &str) -> Option<bool> {
    match method {
        "code" if app.settings.code.enabled => Some(false),
        "link" if app.settings.link_enabled => Some(true),
        _ => None,
    }
}

pub fn disabled(kind: FlowKind) -> ApiError {
    let what = if kind == FlowKind::Recovery {
        "Recovery"
    } else {
        "Verification"
    };
    ApiError::bad_request(format!("{what} is not allowed because it was disabled."))
}

/// The address form: CSRF, `email`, and the submit of the configured method.
pub fn populate_choose(app: &App, flow: &mut Flow) {
    let m = method(app, flow.kind);
    let group = if m == "link" { Group::Link } else { Group::Code };
    let label = if m == "link" {
        text::label_submit()
    } else {
        text::label_continue()
    };
    flow.ui.nodes = vec![Node::csrf("")];
    flow.ui.push(
        Node::input(group, "email", "email")
            .required()
            .with_label(text::label_email()),
    );
    flow.ui.push(Node::submit(group, "method", m, label));
}

pub fn new_flow(
    app: &App,
    kind: FlowKind,
    flow_type: FlowType,
    request_url: String,
    return_to: Option<String>,
    csrf: String,
) -> Flow {
    let s = settings(app, kind);
    let lifespan = time::Duration::try_from(s.lifespan).unwrap_or(time::Duration::HOUR);
    let mut f = Flow::new(
        kind,
        flow_type,
        request_url,
        app.settings.public_base_url.as_str(),
        lifespan,
        csrf,
        time_fmt::now(),
    );
    f.return_to = return_to;
    populate_choose(app, &mut f);
    f
}

/// A new flow in place of `old` (expired, finished, or reached by a bad link), and the CSRF cookie to
/// set: links are often opened in a browser without our cookie, and the UI's first fetch of the new
/// flow needs one that matches (Kratos regenerates the token for these retries).
pub fn replacement(app: &App, req: &ReqInfo, old: &Flow) -> (Flow, Option<HeaderValue>) {
    let (csrf, cookie) = new_flow_csrf(app, req, old.flow_type);
    let flow = new_flow(
        app,
        old.kind,
        old.flow_type,
        old.request_url.clone(),
        old.return_to.clone(),
        csrf,
    );
    (flow, cookie)
}

/// `GET /self-service/{recovery,verification}/{browser,api}`.
pub async fn init(
    app: &App,
    req: &ReqInfo,
    kind: FlowKind,
    flow_type: FlowType,
    return_to: Option<&str>,
) -> Response {
    let browser = flow_type == FlowType::Browser;
    let fail = |e: ApiError| init_failure(app, req, flow_type, e);
    let s = &app.settings;
    if !settings(app, kind).enabled {
        return fail(disabled(kind)).await;
    }
    let return_to = match validate_return_to(
        return_to,
        &s.default_return_url,
        &s.allowed_return_urls,
        &s.public_base_url,
    ) {
        Ok(r) => r.map(|u| u.to_string()),
        Err(e) => return fail(e).await,
    };
    if kind == FlowKind::Recovery {
        match crate::session_manager::fetch(app, &req.headers).await {
            Ok(Some(_)) if browser && !req.is_json => {
                let to = return_to.unwrap_or_else(|| s.default_return_url.to_string());
                return redirect(StatusCode::FOUND, &to);
            }
            Ok(Some(_)) => return HttpError(ApiError::session_already_available()).into_response(),
            Ok(None) => {}
            Err(e) => return fail(e).await,
        }
    }
    let (csrf, cookie) = new_flow_csrf(app, req, flow_type);
    let flow = new_flow(
        app,
        kind,
        flow_type,
        req.request_url(&s.public_base_url),
        return_to,
        csrf,
    );
    if let Err(e) = crate::webhook::before(app, req, &flow).await {
        return fail(e).await;
    }
    if let Err(e) = app.store.create_flow(&flow).await {
        return fail(crate::http::error::store_error(e)).await;
    }
    respond_new_flow(app, req, &flow, cookie)
}

/// Browsers go back to the UI; JSON clients get the flow with `status`.
pub fn respond(app: &App, req: &ReqInfo, flow: &Flow, status: StatusCode) -> Response {
    if flow.is_browser() && !req.is_json {
        return redirect(StatusCode::SEE_OTHER, &ui_redirect_url(app, flow.kind, flow.id));
    }
    flow_json(app, req, flow, status)
}

/// Kratos' recovery/verification error handler.
pub async fn write_error(app: &App, req: &ReqInfo, flow: Option<Flow>, failure: FlowFailure) -> Response {
    let Some(mut flow) = flow else {
        let e = match failure {
            FlowFailure::Api(e) => e,
            _ => ApiError::flow_not_found(),
        };
        return forward(app, req.is_json, e).await;
    };
    let now = time_fmt::now();
    let messages = match failure {
        FlowFailure::Expired => {
            let (mut new, cookie) = replacement(app, req, &flow);
            new.ui.messages.push(if flow.kind == FlowKind::Recovery {
                text::recovery_flow_expired(flow.expires_at, now)
            } else {
                text::verification_flow_expired(flow.expires_at, now)
            });
            if let Err(e) = app.store.create_flow(&new).await {
                return HttpError::from(e).into_response();
            }
            let to = if new.is_browser() && !req.is_json {
                ui_redirect_url(app, new.kind, new.id)
            } else {
                app.public_url(&format!("self-service/{}/flows?id={}", new.kind.as_str(), new.id))
            };
            return with_headers(redirect(StatusCode::SEE_OTHER, &to), cookie);
        }
        FlowFailure::Ui(m) => m,
        FlowFailure::Limited(l) => {
            if !flow.is_browser() || req.is_json {
                return HttpError(l.error).into_response();
            }
            vec![FieldMessage::flow(l.message)]
        }
        FlowFailure::Api(e) if e.code == 400 => {
            vec![FieldMessage::flow(text::validation_generic(
                e.reason.as_deref().unwrap_or(&e.message),
            ))]
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
    flow.updated_at = now;
    if let Err(e) = app.store.update_flow(&flow).await {
        return HttpError::from(e).into_response();
    }
    respond(app, req, &flow, StatusCode::BAD_REQUEST)
}

/// The retry a finished flow gets (4060001 / 4070002): a new flow; JSON clients learn its id from a
/// 410 `self_service_flow_replaced`, browsers are redirected.
pub async fn replace_finished(app: &App, req: &ReqInfo, old: &Flow) -> Response {
    let (mut new, cookie) = replacement(app, req, old);
    new.ui.messages.push(if old.kind == FlowKind::Recovery {
        text::recovery_retry_success()
    } else {
        text::verification_retry_success()
    });
    if let Err(e) = app.store.create_flow(&new).await {
        return HttpError::from(e).into_response();
    }
    if new.is_browser() && !req.is_json {
        return with_headers(
            redirect(StatusCode::SEE_OTHER, &ui_redirect_url(app, new.kind, new.id)),
            cookie,
        );
    }
    let e = ApiError::new(410)
        .with_id(sallyport_core::error::ErrorId::SelfServiceFlowReplaced)
        .with_message("self-service flow replaced")
        .with_reason("The self-service flow was replaced by a new one. Please use the new flow ID.")
        .with_top_level("use_flow_id", new.id.to_string());
    HttpError(e).into_response()
}

/// An `a` node, as Kratos' `NewAnchorField`.
pub fn anchor(id: &str, href: &str, group: Group, title: text::Message) -> Node {
    let mut attrs = serde_json::Map::new();
    attrs.insert("href".into(), json!(href));
    attrs.insert(
        "title".into(),
        serde_json::to_value(&title).unwrap_or(Value::Null),
    );
    attrs.insert("id".into(), json!(id));
    Node {
        node_type: "a".into(),
        group,
        attributes: Attributes::Other {
            node_type: "a".into(),
            attributes: attrs,
        },
        messages: vec![],
        meta: Meta { label: Some(title) },
    }
}

/// The form after a link went out: the address again, to resend.
pub fn show_link_sent(flow: &mut Flow, to: &str, message: text::Message) {
    flow.ui.nodes = vec![
        Node::csrf(""),
        Node::input(Group::Link, "email", "email")
            .required()
            .with_value(json!(to))
            .with_label(text::label_email()),
        Node::submit(Group::Link, "method", "link", text::label_submit()),
    ];
    flow.ui.messages = vec![message];
}
