//! The registration flow (Kratos `selfservice/flow/registration`).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use sallyport_core::error::{ApiError, ErrorId};
use sallyport_core::flow::{Flow, FlowKind, FlowState, FlowType};
use sallyport_core::identity::Identity;
use sallyport_core::session::{Aal, Device};
use sallyport_core::store::StoreError;
use sallyport_core::text;
use sallyport_core::time_fmt;
use sallyport_core::ui::{Group, Node};

use crate::http::body::{RawBody, decode};
use crate::http::error::{HttpError, json as json_res, redirect, store_error};
use crate::http::redirect::validate_return_to;
use crate::http::request::ReqInfo;
use crate::selfservice::common::{
    FieldMessage, FlowFailure, continue_with_redirect, flow_id, init_failure, new_flow_csrf,
    respond_new_flow, with_headers, write_flow_error,
};
use crate::selfservice::login::FlowQuery;
use crate::selfservice::method::{Cx, RegistrationStep, Screen};
use crate::session_manager;
use crate::state::{App, AppState};
use crate::webhook::{self, Point};

#[derive(Debug, Deserialize, Default)]
pub struct InitQuery {
    pub return_to: Option<String>,
    pub identity_schema: Option<String>,
    pub return_session_token_exchange_code: Option<String>,
}

fn already_logged_in() -> ApiError {
    ApiError::bad_request("A valid session was detected and thus registration is not possible.")
        .with_id(ErrorId::SessionAlreadyAvailable)
        .with_message("you are already logged in")
}

fn build_flow(
    app: &App,
    flow_type: FlowType,
    request_url: String,
    return_to: Option<String>,
    schema: Option<String>,
    csrf: String,
) -> Flow {
    let now = time_fmt::now();
    let lifespan =
        time::Duration::try_from(app.settings.registration.lifespan).unwrap_or(time::Duration::HOUR);
    let mut f = Flow::new(
        FlowKind::Registration,
        flow_type,
        request_url,
        app.settings.public_base_url.as_str(),
        lifespan,
        csrf,
        now,
    );
    f.return_to = return_to;
    f.identity_schema = schema;
    let screen = if app.settings.registration_two_step {
        Screen::Profile
    } else {
        Screen::OneStep
    };
    populate_form(app, &mut f, None, screen);
    f
}

/// The form for `screen`: CSRF, the schema's traits, then each method's nodes.
pub fn populate_form(app: &App, flow: &mut Flow, traits: Option<&Value>, screen: Screen) {
    let schema_id = flow
        .identity_schema
        .clone()
        .unwrap_or_else(|| app.settings.default_schema_id.clone());
    flow.ui.nodes.retain(|n| n.name() == "csrf_token");
    if flow.ui.node("csrf_token").is_none() {
        flow.ui.push(Node::csrf(""));
    }
    let mut nodes = app
        .schemas
        .get(&schema_id)
        .map(|s| s.trait_nodes(Group::Default, traits))
        .unwrap_or_default();
    for m in app.methods.registration() {
        m.populate_flow(app, flow, &mut nodes, screen);
    }
    flow.ui.nodes.extend(nodes);
}

/// `GET /self-service/registration/browser` — operationId `createBrowserRegistrationFlow`.
pub async fn create_browser_registration_flow(
    State(app): State<AppState>,
    req: ReqInfo,
    Query(q): Query<InitQuery>,
) -> Response {
    create_flow(&app, &req, FlowType::Browser, q).await
}

/// `GET /self-service/registration/api` — operationId `createNativeRegistrationFlow`.
pub async fn create_native_registration_flow(
    State(app): State<AppState>,
    req: ReqInfo,
    Query(q): Query<InitQuery>,
) -> Response {
    create_flow(&app, &req, FlowType::Api, q).await
}

async fn create_flow(app: &App, req: &ReqInfo, flow_type: FlowType, q: InitQuery) -> Response {
    let browser = flow_type == FlowType::Browser;
    let fail = |e: ApiError| init_failure(app, req, flow_type, e);
    let s = &app.settings;
    if !s.registration_enabled {
        return fail(ApiError::registration_disabled()).await;
    }
    let return_to = match validate_return_to(
        q.return_to.as_deref(),
        &s.default_return_url,
        &s.allowed_return_urls,
        &s.public_base_url,
    ) {
        Ok(r) => r.map(|u| u.to_string()),
        Err(e) => return fail(e).await,
    };
    if let Some(id) = &q.identity_schema
        && app.schemas.get(id).is_none()
    {
        return fail(ApiError::bad_request(format!(
            "The identity schema \"{id}\" is not known."
        )))
        .await;
    }
    match session_manager::fetch(app, &req.headers).await {
        Ok(Some(_)) => {
            if browser && !req.is_json {
                let to = return_to.unwrap_or_else(|| s.default_return_url.to_string());
                return redirect(StatusCode::SEE_OTHER, &to);
            }
            return HttpError(ApiError::session_already_available()).into_response();
        }
        Ok(None) => {}
        Err(e) => return fail(e).await,
    }
    let (csrf, set_cookie) = new_flow_csrf(app, req, flow_type);
    let mut flow = build_flow(
        app,
        flow_type,
        req.request_url(&s.public_base_url),
        return_to,
        q.identity_schema,
        csrf,
    );
    if let Err(e) = crate::webhook::before(app, req, &flow).await {
        return fail(e).await;
    }
    if let Err(e) = app.store.create_flow(&flow).await {
        return fail(store_error(e)).await;
    }
    if flow_type == FlowType::Api
        && crate::selfservice::token_exchange::requested(q.return_session_token_exchange_code.as_deref())
        && let Err(e) = crate::selfservice::token_exchange::start(app, &mut flow).await
    {
        return fail(e).await;
    }
    respond_new_flow(app, req, &flow, set_cookie)
}

/// `GET /self-service/registration/flows?id=` — operationId `getRegistrationFlow`.
pub async fn get_registration_flow(
    State(app): State<AppState>,
    req: ReqInfo,
    Query(q): Query<FlowQuery>,
) -> Response {
    crate::selfservice::common::get_flow(&app, &req, FlowKind::Registration, q.id.as_deref()).await
}

/// A fresh flow like `old` (same type, schema, return_to), with the request's CSRF token.
pub(crate) fn replacement(app: &App, req: &ReqInfo, old: &Flow) -> Flow {
    let csrf = if old.is_browser() {
        crate::selfservice::common::request_csrf(app, req)
            .map(|t| crate::http::csrf::encode_cookie(&t))
            .unwrap_or_default()
    } else {
        String::new()
    };
    build_flow(
        app,
        old.flow_type,
        old.request_url.clone(),
        old.return_to.clone(),
        old.identity_schema.clone(),
        csrf,
    )
}

/// `POST /self-service/registration?flow=` — operationId `updateRegistrationFlow`.
pub async fn update_registration_flow(
    State(app): State<AppState>,
    req: ReqInfo,
    Query(q): Query<FlowQuery>,
    RawBody(body): RawBody,
) -> Response {
    let app = &*app;
    let id = match flow_id(q.flow.as_deref()) {
        Ok(id) => id,
        Err(e) => return write_flow_error(app, &req, None, e.into(), |_| unreachable!()).await,
    };
    let mut flow = match app.store.get_flow(FlowKind::Registration, id).await {
        Ok(f) => f,
        Err(e) => return write_flow_error(app, &req, None, store_error(e).into(), |_| unreachable!()).await,
    };
    let replace = |old: &Flow| replacement(app, &req, old);
    match session_manager::fetch(app, &req.headers).await {
        Ok(Some(_)) => {
            if flow.flow_type == FlowType::Api || req.is_json {
                return write_flow_error(app, &req, Some(flow), already_logged_in().into(), replace).await;
            }
            return redirect(StatusCode::SEE_OTHER, app.settings.default_return_url.as_str());
        }
        Ok(None) => {}
        Err(e) => return write_flow_error(app, &req, Some(flow), e.into(), replace).await,
    }
    if !app.settings.registration_enabled {
        return write_flow_error(
            app,
            &req,
            Some(flow),
            ApiError::registration_disabled().into(),
            replace,
        )
        .await;
    }
    if flow.is_expired(time_fmt::now()) {
        return write_flow_error(app, &req, Some(flow), FlowFailure::Expired, replace).await;
    }
    let schema_id = flow
        .identity_schema
        .clone()
        .unwrap_or_else(|| app.settings.default_schema_id.clone());
    let raw_schema = app.schemas.get(&schema_id).map(|s| s.raw.clone());
    let body = match decode(&req.headers, &body, raw_schema.as_ref()) {
        Ok(b) => b,
        Err(e) => return write_flow_error(app, &req, Some(flow), e.into(), replace).await,
    };
    crate::webhook::keep_transient_payload(app, &mut flow, &body);
    let Some(method) = app.methods.find_registration(app, &flow, &body) else {
        let m = FieldMessage::flow(text::registration_no_strategy());
        return write_flow_error(app, &req, Some(flow), FlowFailure::Ui(vec![m]), replace).await;
    };
    let cx = Cx {
        app,
        req: &req,
        auth: None,
    };
    match method.submit(&cx, &mut flow, &body, &schema_id).await {
        Ok(RegistrationStep::Registered { identity, method }) => {
            finish_registration(app, &req, flow, *identity, (method, None), OnDuplicate::Message).await
        }
        Ok(RegistrationStep::Respond(res)) => res,
        Err(f) => {
            method.keep_input(&mut flow, &body);
            write_flow_error(app, &req, Some(flow), f, replace).await
        }
    }
}

/// What answers a registration whose identifiers belong to another identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnDuplicate {
    /// 4000007 on the registration flow.
    Message,
    /// Kratos' account-linking answer for social sign-in: a fresh login flow with 1010016 and the
    /// identifier filled in, so the person proves the existing account first. Nothing is merged.
    OfferLogin { identifier: String, provider: String },
}

async fn offer_login(
    app: &App,
    req: &ReqInfo,
    flow: &Flow,
    attempted: &Identity,
    on_duplicate: OnDuplicate,
) -> Response {
    let OnDuplicate::OfferLogin { identifier, provider } = on_duplicate else {
        return HttpError(ApiError::internal()).into_response();
    };
    let mut like = flow.clone();
    like.kind = FlowKind::Login;
    like.refresh = false;
    like.requested_aal = Aal::Aal1;
    let mut login = crate::selfservice::login::replacement(app, req, &like);
    login
        .ui
        .set_value("identifier", Value::String(identifier.clone()));
    login.ui.messages = vec![text::login_link(&identifier, &provider)];
    if let Some(o) = app.methods.oidc() {
        o.confirm_labels(&mut login);
    }
    // Whoever proves the existing account on this flow gains the new credentials (Kratos' linking).
    crate::selfservice::link::stash(&mut login, attempted, &identifier);
    if let Err(e) = app.store.create_flow(&login).await {
        return HttpError(store_error(e)).into_response();
    }
    if login.is_browser() && !req.is_json {
        return redirect(
            StatusCode::SEE_OTHER,
            &crate::selfservice::common::ui_redirect_url(app, FlowKind::Login, login.id),
        );
    }
    crate::selfservice::common::flow_json(app, req, &login, StatusCode::BAD_REQUEST)
}

/// Kratos `PostRegistrationHook`: persist, issue a session only with the `session` hook, answer per client.
pub(crate) async fn finish_registration(
    app: &App,
    req: &ReqInfo,
    mut flow: Flow,
    mut identity: Identity,
    (method, provider): (&str, Option<&str>),
    on_duplicate: OnDuplicate,
) -> Response {
    let now = time_fmt::now();
    let replace = |old: &Flow| replacement(app, req, old);
    // Kratos' pre-persist hooks: a `web_hook` that may interrupt or parse runs before anything is stored.
    if let Err(f) = webhook::after(
        app,
        req,
        &flow,
        method,
        Point::PrePersist,
        &mut identity,
        None,
        true,
    )
    .await
    {
        return write_flow_error(app, req, Some(flow), f, replace).await;
    }
    let hooks = app.settings.registration.after.hooks_for(method);
    let issued = hooks.iter().any(|h| h == "session").then(|| {
        let mut n = session_manager::issue(app, identity.id, now);
        n.session.complete_method(method, Aal::Aal1, now);
        if let Some(m) = n.session.authentication_methods.last_mut() {
            m.provider = provider.map(str::to_owned);
        }
        n.session.devices.push(Device {
            id: uuid::Uuid::new_v4(),
            ip_address: req.client_ip.clone(),
            user_agent: req.user_agent.clone(),
            location: None,
        });
        n
    });
    match app
        .store
        .create_identity(&identity, issued.as_ref().map(|n| &n.session))
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) if on_duplicate != OnDuplicate::Message => {
            return offer_login(app, req, &flow, &identity, on_duplicate).await;
        }
        Err(StoreError::Conflict(_)) => {
            return write_flow_error(
                app,
                req,
                Some(flow),
                FlowFailure::Ui(vec![FieldMessage::flow(text::validation_duplicate_credentials())]),
                replace,
            )
            .await;
        }
        Err(e) => return write_flow_error(app, req, Some(flow), store_error(e).into(), replace).await,
    }
    metrics::counter!("sallyport_registrations_total", "method" => method.to_owned()).increment(1);
    let return_to = flow
        .return_to
        .clone()
        .or_else(|| {
            app.settings
                .registration
                .after
                .return_url_for(method)
                .map(|u| u.to_string())
        })
        .unwrap_or_else(|| app.settings.default_return_url.to_string());
    // Both the `verification` hook and issuing a session rotate a browser's CSRF token (Kratos
    // `RegenerateToken`); rotate once, so the verification flow stores the token the browser ends up with.
    let makes_verification_flows =
        app.settings.verification.enabled && identity.verifiable_addresses.iter().any(|a| !a.verified);
    let rotated = (flow.is_browser() && (issued.is_some() || makes_verification_flows))
        .then(|| session_manager::rotate_csrf(app));
    let csrf = rotated.as_ref().map(|(t, _)| t.as_str()).unwrap_or("");
    // Kratos prepends the `verification` hook when verification is enabled; `session` always runs last.
    let verification =
        match crate::selfservice::hooks::start_verification(app, &identity, flow.flow_type, csrf).await {
            Ok(v) => v,
            Err(f) => return write_flow_error(app, req, Some(flow), f, replace).await,
        };
    let show_verification = hooks.iter().any(|h| h == "show_verification_ui");
    // The other web hooks run after persisting, between Kratos' `verification` and `session` hooks.
    if let Err(f) = webhook::after(
        app,
        req,
        &flow,
        method,
        Point::PostPersist,
        &mut identity,
        None,
        false,
    )
    .await
    {
        return write_flow_error(app, req, Some(flow), f, replace).await;
    }
    flow.state = FlowState::PassedChallenge;
    flow.active = Some(method.to_owned());
    flow.updated_at = now;
    if let Err(e) = app.store.update_flow(&flow).await {
        return HttpError(store_error(e)).into_response();
    }
    let identity_json = crate::render::identity(app, &identity, &crate::render::PUBLIC);
    if flow.flow_type == FlowType::Api {
        if let Some(n) = &issued
            && let Some(res) = crate::selfservice::token_exchange::maybe_redirect(
                app,
                &flow,
                method,
                n.session.id,
                Some(&n.token),
            )
            .await
        {
            return res;
        }
        let mut continue_with = verification.clone();
        let body = match &issued {
            Some(n) => {
                continue_with.push(json!({"action": "set_ory_session_token", "ory_session_token": n.token}));
                json!({
                    "session": crate::render::session(&n.session, Some(identity_json.clone()), now),
                    "session_token": n.token,
                    "identity": identity_json,
                    "continue_with": continue_with,
                })
            }
            None => json!({
                "identity": identity_json,
                "continue_with": if continue_with.is_empty() { Value::Null } else { json!(continue_with) },
            }),
        };
        return json_res(StatusCode::OK, &body);
    }
    let mut cookies = vec![];
    if let Some(n) = &issued {
        cookies.push(session_manager::session_cookie(
            app,
            &n.token,
            n.session.expires_at,
        ));
    }
    cookies.extend(rotated.map(|(_, c)| c));
    let res = if req.is_json {
        let mut continue_with = vec![continue_with_redirect(&return_to)];
        continue_with.extend(verification);
        let mut body = Map::new();
        if let Some(n) = &issued {
            body.insert(
                "session".into(),
                crate::render::session(&n.session, Some(identity_json.clone()), now),
            );
        }
        body.insert("identity".into(), identity_json);
        body.insert("continue_with".into(), json!(continue_with));
        json_res(StatusCode::OK, &Value::Object(body))
    } else {
        let to = show_verification
            .then(|| crate::selfservice::hooks::verification_ui_url(&verification))
            .flatten();
        redirect(StatusCode::SEE_OTHER, to.as_deref().unwrap_or(&return_to))
    };
    with_headers(res, cookies)
}
