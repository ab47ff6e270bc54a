//! The settings flow (Kratos `selfservice/flow/settings`, strategies `profile`, `password`, `totp`,
//! `lookup_secret`): a signed-in identity changes its traits and credentials.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value};

use sallyport_core::error::ApiError;
use sallyport_core::flow::{Flow, FlowKind, FlowState, FlowType};
use sallyport_core::identity::Identity;
use sallyport_core::text;
use sallyport_core::time_fmt;
use sallyport_core::ui::Node;

use crate::http::body::{RawBody, decode, str_field};
use crate::http::error::{HttpError, forward, redirect, store_error};
use crate::http::redirect::validate_return_to;
use crate::http::request::ReqInfo;
use crate::identities::set_trait_values;
use crate::selfservice::common::{
    FieldMessage, FlowFailure, continue_with_redirect, ensure_csrf, flow_id, flow_json, new_flow_csrf,
    respond_new_flow, ui_redirect_url,
};
use crate::selfservice::method::{Cx, SettingsFailure as Failure, SettingsStep as Outcome};
use crate::session_manager::{self, Authenticated};
use crate::state::{App, AppState};

/// Nodes for `identity`'s settings: traits, password, and the second factors.
pub fn populate(app: &App, flow: &mut Flow, identity: &Identity) {
    // The settings flow carries its identity (OpenAPI `settingsFlow.identity` is required).
    flow.internal_context["identity"] = crate::render::identity(app, identity, &crate::render::PUBLIC);
    flow.ui.nodes = vec![Node::csrf("")];
    for m in app.methods.settings() {
        m.populate(app, flow, identity);
    }
}

/// A settings flow for `identity`. `csrf` is the browser's token as flows store it ("" for API flows).
pub fn new_flow(app: &App, csrf: String, identity: &Identity, flow_type: FlowType) -> Flow {
    let lifespan = time::Duration::try_from(app.settings.settings_lifespan).unwrap_or(time::Duration::HOUR);
    let request_url = app.public_url(if flow_type == FlowType::Api {
        "self-service/settings/api"
    } else {
        "self-service/settings/browser"
    });
    let mut f = Flow::new(
        FlowKind::Settings,
        flow_type,
        request_url,
        app.settings.public_base_url.as_str(),
        lifespan,
        csrf,
        time_fmt::now(),
    );
    f.identity_id = Some(identity.id);
    f.identity_schema = Some(identity.schema_id.clone());
    populate(app, &mut f, identity);
    f
}

fn login_url(app: &App, refresh: bool, return_to: &str) -> String {
    let mut u = url::Url::parse(&app.public_url("self-service/login/browser")).expect("valid base URL");
    if refresh {
        u.query_pairs_mut().append_pair("refresh", "true");
    }
    u.query_pairs_mut().append_pair("return_to", return_to);
    u.to_string()
}

/// Session and assurance checks every settings endpoint makes; Err is the finished response.
async fn authenticate(app: &App, req: &ReqInfo, json: bool, here: &str) -> Result<Authenticated, Response> {
    let auth = match session_manager::fetch(app, &req.headers).await {
        Ok(Some(a)) => a,
        Ok(None) if json => return Err(HttpError(ApiError::session_inactive()).into_response()),
        Ok(None) => return Err(redirect(StatusCode::SEE_OTHER, &login_url(app, false, here))),
        Err(e) => return Err(HttpError(e).into_response()),
    };
    if let Err(e) = session_manager::check_settings_aal(app, &auth.session, &auth.identity, Some(here)) {
        if json {
            return Err(HttpError(e).into_response());
        }
        let to = e
            .top_level
            .get("redirect_browser_to")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        return Err(redirect(StatusCode::SEE_OTHER, &to));
    }
    Ok(auth)
}

#[derive(Debug, Deserialize, Default)]
pub struct InitQuery {
    pub return_to: Option<String>,
}

/// `GET /self-service/settings/browser` — operationId `createBrowserSettingsFlow`.
pub async fn create_browser_settings_flow(
    State(app): State<AppState>,
    req: ReqInfo,
    Query(q): Query<InitQuery>,
) -> Response {
    create(&app, &req, FlowType::Browser, q.return_to.as_deref()).await
}

/// `GET /self-service/settings/api` — operationId `createNativeSettingsFlow`.
pub async fn create_native_settings_flow(State(app): State<AppState>, req: ReqInfo) -> Response {
    create(&app, &req, FlowType::Api, None).await
}

async fn create(app: &App, req: &ReqInfo, flow_type: FlowType, return_to: Option<&str>) -> Response {
    let json = flow_type == FlowType::Api || req.is_json;
    let here = req.request_url(&app.settings.public_base_url);
    let auth = match authenticate(app, req, json, &here).await {
        Ok(a) => a,
        Err(res) => return res,
    };
    let s = &app.settings;
    let return_to = match validate_return_to(
        return_to,
        &s.default_return_url,
        &s.allowed_return_urls,
        &s.public_base_url,
    ) {
        Ok(r) => r.map(|u| u.to_string()),
        Err(e) if flow_type == FlowType::Browser => return forward(app, req.is_json, e).await,
        Err(e) => return HttpError(e).into_response(),
    };
    let (csrf, cookie) = new_flow_csrf(app, req, flow_type);
    let mut flow = new_flow(app, csrf, &auth.identity, flow_type);
    flow.request_url = here;
    flow.return_to = return_to;
    flow.session_id = Some(auth.session.id);
    if let Err(e) = crate::webhook::before(app, req, &flow).await {
        if flow_type == FlowType::Browser {
            return forward(app, req.is_json, e).await;
        }
        return HttpError(e).into_response();
    }
    if let Err(e) = app.store.create_flow(&flow).await {
        return HttpError(store_error(e)).into_response();
    }
    respond_new_flow(app, req, &flow, cookie)
}

#[derive(Debug, Deserialize, Default)]
pub struct FlowQuery {
    pub id: Option<String>,
    pub flow: Option<String>,
}

/// `GET /self-service/settings/flows?id=` — operationId `getSettingsFlow`: only for the flow's identity.
pub async fn get_settings_flow(
    State(app): State<AppState>,
    req: ReqInfo,
    Query(q): Query<FlowQuery>,
) -> Response {
    let here = app.public_url("self-service/settings/browser");
    let auth = match authenticate(&app, &req, true, &here).await {
        Ok(a) => a,
        Err(res) => return res,
    };
    if let Some(id) = q.id.as_deref().and_then(|s| uuid::Uuid::parse_str(s).ok())
        && let Ok(f) = app.store.get_flow(FlowKind::Settings, id).await
        && f.identity_id != Some(auth.identity.id)
    {
        return HttpError(ApiError::identity_mismatch()).into_response();
    }
    crate::selfservice::common::get_flow(&app, &req, FlowKind::Settings, q.id.as_deref()).await
}

/// Whether the session is recent enough for credential changes (`privileged_session_max_age`).
pub(crate) fn privileged(app: &App, auth: &Authenticated) -> bool {
    let max =
        time::Duration::try_from(app.settings.privileged_session_max_age).unwrap_or(time::Duration::HOUR);
    auth.session.authenticated_at + max > time_fmt::now()
}

/// `POST /self-service/settings?flow=` (and the `GET` that resumes an update after re-authentication) —
/// operationId `updateSettingsFlow`.
pub async fn update_settings_flow(
    State(app): State<AppState>,
    req: ReqInfo,
    Query(q): Query<FlowQuery>,
    RawBody(raw): RawBody,
) -> Response {
    let app = &*app;
    let id = match flow_id(q.flow.as_deref()) {
        Ok(id) => id,
        Err(e) => return forward(app, req.is_json, e).await,
    };
    let mut flow = match app.store.get_flow(FlowKind::Settings, id).await {
        Ok(f) => f,
        Err(e) => return forward(app, req.is_json, store_error(e)).await,
    };
    let json = flow.flow_type == FlowType::Api || req.is_json;
    let submit_url = app.public_url(&format!("self-service/settings?flow={}", flow.id));
    let auth = match authenticate(app, &req, json, &submit_url).await {
        Ok(a) => a,
        Err(res) => return res,
    };
    if flow.identity_id != Some(auth.identity.id) {
        return HttpError(ApiError::identity_mismatch()).into_response();
    }
    let now = time_fmt::now();
    if flow.is_expired(now) {
        let mut new = new_flow(app, flow.csrf_token.clone(), &auth.identity, flow.flow_type);
        new.return_to = flow.return_to.clone();
        new.ui
            .messages
            .push(text::settings_flow_expired(flow.expires_at, now));
        if let Err(e) = app.store.create_flow(&new).await {
            return HttpError(store_error(e)).into_response();
        }
        if json {
            let e = ApiError::flow_expired(flow.expires_at, now)
                .with_top_level("use_flow_id", new.id.to_string());
            return HttpError(e).into_response();
        }
        return redirect(
            StatusCode::SEE_OTHER,
            &ui_redirect_url(app, FlowKind::Settings, new.id),
        );
    }
    let raw_schema = app.schemas.get(&auth.identity.schema_id).map(|s| s.raw.clone());
    // A browser sent to re-authenticate comes back here with GET; its update waits in the flow.
    let resumed = raw.is_empty() && flow.internal_context.get("pending_update").is_some();
    let body = if resumed {
        match flow.internal_context.get("pending_update").cloned() {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        }
    } else {
        match decode(&req.headers, &raw, raw_schema.as_ref()) {
            Ok(b) => b,
            Err(e) => return finish_error(app, &req, flow, FlowFailure::Api(e)).await,
        }
    };
    if !resumed && let Err(e) = ensure_csrf(app, &req, &flow, str_field(&body, "csrf_token")) {
        return finish_error(app, &req, flow, FlowFailure::Api(e)).await;
    }
    if let Some(o) = flow.internal_context.as_object_mut() {
        o.remove("pending_update");
    }
    crate::webhook::keep_transient_payload(app, &mut flow, &body);
    let outcome = match app.methods.find_settings(&body) {
        Some(m) => {
            let cx = Cx {
                app,
                req: &req,
                auth: Some(&auth),
            };
            m.submit(&cx, &auth, &mut flow, &body).await
        }
        None => Err(Failure::Flow(FlowFailure::Ui(vec![FieldMessage::flow(
            text::validation_generic(
                "Could not find a strategy to update your settings with. Did you fill out the form correctly?",
            ),
        )]))),
    };
    match outcome {
        Ok(Outcome::Saved(mut identity)) => {
            let method = str_field(&body, "method").unwrap_or("profile").to_owned();
            let point = crate::webhook::Point::PostPersist;
            let session = Some(&auth.session);
            match crate::webhook::after(app, &req, &flow, &method, point, &mut identity, session, false).await
            {
                Ok(()) => saved(app, &req, flow, &identity).await,
                Err(f) => finish_error(app, &req, flow, f).await,
            }
        }
        Ok(Outcome::Respond(res)) => res,
        Ok(Outcome::Shown) => {
            flow.updated_at = time_fmt::now();
            if let Err(e) = app.store.update_flow(&flow).await {
                return HttpError(store_error(e)).into_response();
            }
            show(app, &req, &flow, StatusCode::OK)
        }
        Err(Failure::ReAuth) => {
            let to = login_url(app, true, &submit_url);
            if json {
                return HttpError(ApiError::session_refresh_required(&to)).into_response();
            }
            flow.internal_context["pending_update"] = Value::Object(body);
            if let Err(e) = app.store.update_flow(&flow).await {
                return HttpError(store_error(e)).into_response();
            }
            redirect(StatusCode::SEE_OTHER, &to)
        }
        Err(Failure::Flow(f)) => {
            if let Some(t) = body.get("traits") {
                set_trait_values(&mut flow.ui, t);
            }
            finish_error(app, &req, flow, f).await
        }
    }
}

fn show(app: &App, req: &ReqInfo, flow: &Flow, status: StatusCode) -> Response {
    if flow.is_browser() && !req.is_json {
        return redirect(
            StatusCode::SEE_OTHER,
            &ui_redirect_url(app, FlowKind::Settings, flow.id),
        );
    }
    flow_json(app, req, flow, status)
}

pub(crate) async fn finish_error(app: &App, req: &ReqInfo, mut flow: Flow, failure: FlowFailure) -> Response {
    let messages = match failure {
        FlowFailure::Ui(m) => m,
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
        FlowFailure::Expired => vec![],
        FlowFailure::Limited(l) => {
            if flow.flow_type == FlowType::Api || req.is_json {
                return HttpError(l.error).into_response();
            }
            vec![FieldMessage::flow(l.message)]
        }
    };
    flow.ui.reset_messages();
    for m in messages {
        flow.ui.add_message(m.field.as_deref(), m.message);
    }
    flow.ui.clear_secret_values();
    flow.updated_at = time_fmt::now();
    if let Err(e) = app.store.update_flow(&flow).await {
        return HttpError(store_error(e)).into_response();
    }
    show(app, req, &flow, StatusCode::BAD_REQUEST)
}

pub(crate) async fn saved(app: &App, req: &ReqInfo, mut flow: Flow, identity: &Identity) -> Response {
    flow.state = FlowState::Success;
    // Revealed backup codes stay on screen only until the next saved change.
    if let Some(o) = flow.internal_context.as_object_mut() {
        o.remove("lookup_revealed");
    }
    populate(app, &mut flow, identity);
    flow.ui.messages = vec![text::settings_saved()];
    flow.updated_at = time_fmt::now();
    let to = flow
        .return_to
        .clone()
        .unwrap_or_else(|| ui_redirect_url(app, FlowKind::Settings, flow.id));
    if flow.is_browser() && req.is_json {
        flow.continue_with = vec![continue_with_redirect(&to)];
    }
    if let Err(e) = app.store.update_flow(&flow).await {
        return HttpError(store_error(e)).into_response();
    }
    if flow.is_browser() && !req.is_json {
        return redirect(StatusCode::SEE_OTHER, &to);
    }
    flow_json(app, req, &flow, StatusCode::OK)
}
