//! The login flow (Kratos `selfservice/flow/login`): init for browsers and native apps, fetch, submit,
//! and what happens after a strategy accepted the credentials.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use sallyport_core::error::ApiError;
use sallyport_core::flow::{Flow, FlowKind, FlowState, FlowType};
use sallyport_core::identity::Identity;
use sallyport_core::session::{Aal, Device};
use sallyport_core::text;
use sallyport_core::time_fmt;
use sallyport_core::ui::Node;

use crate::http::body::{RawBody, decode};
use crate::http::error::{HttpError, json as json_res, redirect, store_error};
use crate::http::redirect::validate_return_to;
use crate::http::request::ReqInfo;
use crate::selfservice::common::{
    FlowFailure, continue_with_redirect, flow_id, init_failure, new_flow_csrf, respond_new_flow,
    with_headers, write_flow_error,
};
use crate::selfservice::method::{Cx, LoginNeeds, LoginStep};
use crate::selfservice::token_exchange;
use crate::session_manager::{self, Authenticated, check_aal};
use crate::state::{App, AppState};

#[derive(Debug, Deserialize, Default)]
pub struct InitQuery {
    pub refresh: Option<String>,
    pub aal: Option<String>,
    pub return_to: Option<String>,
    pub via: Option<String>,
    pub return_session_token_exchange_code: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct FlowQuery {
    pub flow: Option<String>,
    pub id: Option<String>,
}

struct LoginParams {
    refresh: bool,
    aal: Aal,
    return_to: Option<String>,
    request_url: String,
    via: Option<String>,
}

fn parse_aal(raw: Option<&str>) -> Result<Aal, ApiError> {
    match raw.unwrap_or("") {
        "" | "aal1" => Ok(Aal::Aal1),
        "aal2" => Ok(Aal::Aal2),
        other => Err(ApiError::bad_request(format!(
            "Unable to parse AuthenticationMethod Assurance Level (AAL): expected one of [aal1, aal2] but got {other}"
        ))),
    }
}

fn build_flow(
    app: &App,
    flow_type: FlowType,
    p: &LoginParams,
    csrf_token: String,
    auth: Option<&Authenticated>,
) -> Flow {
    let now = time_fmt::now();
    let lifespan = time::Duration::try_from(app.settings.login.lifespan).unwrap_or(time::Duration::HOUR);
    let base = app.settings.public_base_url.as_str();
    let mut f = Flow::new(
        FlowKind::Login,
        flow_type,
        p.request_url.clone(),
        base,
        lifespan,
        csrf_token,
        now,
    );
    f.refresh = p.refresh;
    f.requested_aal = p.aal;
    f.return_to = p.return_to.clone();
    f.ui.push(Node::csrf(""));
    let needs = LoginNeeds {
        auth,
        refresh: p.refresh,
        aal: p.aal,
        via: p.via.as_deref(),
    };
    for m in app.methods.login() {
        m.populate(app, &mut f, &needs);
    }
    if p.refresh {
        f.ui.messages.push(text::login_reauth());
    } else if p.aal == Aal::Aal2 {
        f.ui.messages.push(text::login_mfa());
    }
    f
}

/// `GET /self-service/login/browser` — operationId `createBrowserLoginFlow`.
pub async fn create_browser_login_flow(
    State(app): State<AppState>,
    req: ReqInfo,
    Query(q): Query<InitQuery>,
) -> Response {
    create_flow(&app, &req, FlowType::Browser, q).await
}

/// `GET /self-service/login/api` — operationId `createNativeLoginFlow`.
pub async fn create_native_login_flow(
    State(app): State<AppState>,
    req: ReqInfo,
    Query(q): Query<InitQuery>,
) -> Response {
    create_flow(&app, &req, FlowType::Api, q).await
}

async fn create_flow(app: &App, req: &ReqInfo, flow_type: FlowType, q: InitQuery) -> Response {
    let browser = flow_type == FlowType::Browser;
    let fail = |e: ApiError| init_failure(app, req, flow_type, e);
    let aal = match parse_aal(q.aal.as_deref()) {
        Ok(a) => a,
        Err(e) => return fail(e).await,
    };
    let s = &app.settings;
    let return_to = match validate_return_to(
        q.return_to.as_deref(),
        &s.default_return_url,
        &s.allowed_return_urls,
        &s.public_base_url,
    ) {
        Ok(r) => r.map(|u| u.to_string()),
        Err(e) => return fail(e).await,
    };
    let auth = match session_manager::fetch(app, &req.headers).await {
        Ok(a) => a,
        Err(e) => return fail(e).await,
    };
    let mut refresh = matches!(q.refresh.as_deref(), Some("true" | "1"));
    match &auth {
        Some(a) if !refresh && aal <= a.session.aal => {
            if browser && !req.is_json {
                let to = return_to.unwrap_or_else(|| s.default_return_url.to_string());
                return redirect(StatusCode::SEE_OTHER, &to);
            }
            return HttpError(ApiError::session_already_available()).into_response();
        }
        Some(_) => {}
        None => {
            if aal > Aal::Aal1 {
                return fail(ApiError::session_aal1_required()).await;
            }
            refresh = false;
        }
    }
    let (csrf, set_cookie) = new_flow_csrf(app, req, flow_type);
    let params = LoginParams {
        refresh,
        aal,
        return_to,
        request_url: req.request_url(&s.public_base_url),
        via: q.via,
    };
    let mut flow = build_flow(app, flow_type, &params, csrf, auth.as_ref());
    if let Err(e) = crate::webhook::before(app, req, &flow).await {
        return fail(e).await;
    }
    if let Err(e) = app.store.create_flow(&flow).await {
        return fail(store_error(e)).await;
    }
    if flow_type == FlowType::Api
        && auth.is_none()
        && token_exchange::requested(q.return_session_token_exchange_code.as_deref())
        && let Err(e) = token_exchange::start(app, &mut flow).await
    {
        return fail(e).await;
    }
    let needs = LoginNeeds {
        auth: auth.as_ref(),
        refresh: params.refresh,
        aal: params.aal,
        via: params.via.as_deref(),
    };
    for m in app.methods.login() {
        match m.flow_created(app, &mut flow, &needs).await {
            Ok(()) => {}
            Err(FlowFailure::Api(e)) => return fail(e).await,
            // The flow exists already; a code just did not go out (its address or identity is over budget).
            Err(FlowFailure::Limited(l)) => return fail(l.error).await,
            Err(_) => return fail(ApiError::internal()).await,
        }
    }
    respond_new_flow(app, req, &flow, set_cookie)
}

/// `GET /self-service/login/flows?id=` — operationId `getLoginFlow`.
pub async fn get_login_flow(
    State(app): State<AppState>,
    req: ReqInfo,
    Query(q): Query<FlowQuery>,
) -> Response {
    crate::selfservice::common::get_flow(&app, &req, FlowKind::Login, q.id.as_deref()).await
}

/// A fresh flow like `old` (same type, AAL, return_to), with the request's CSRF token.
pub(crate) fn replacement(app: &App, req: &ReqInfo, old: &Flow) -> Flow {
    let params = LoginParams {
        refresh: old.refresh,
        aal: old.requested_aal,
        return_to: old.return_to.clone(),
        request_url: old.request_url.clone(),
        via: None,
    };
    let csrf = if old.is_browser() {
        crate::selfservice::common::request_csrf(app, req)
            .map(|t| crate::http::csrf::encode_cookie(&t))
            .unwrap_or_default()
    } else {
        String::new()
    };
    build_flow(app, old.flow_type, &params, csrf, None)
}

/// `POST /self-service/login?flow=` — operationId `updateLoginFlow`.
pub async fn update_login_flow(
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
    let flow = match app.store.get_flow(FlowKind::Login, id).await {
        Ok(f) => f,
        Err(e) => return write_flow_error(app, &req, None, store_error(e).into(), |_| unreachable!()).await,
    };
    let replace = |old: &Flow| replacement(app, &req, old);
    let auth = match session_manager::fetch(app, &req.headers).await {
        Ok(a) => a,
        Err(e) => return write_flow_error(app, &req, Some(flow), e.into(), replace).await,
    };
    if let Some(a) = &auth
        && !flow.refresh
        && flow.requested_aal <= a.session.aal
    {
        if flow.flow_type == FlowType::Api || req.is_json {
            return write_flow_error(
                app,
                &req,
                Some(flow),
                ApiError::session_already_available().into(),
                replace,
            )
            .await;
        }
        return redirect(StatusCode::SEE_OTHER, app.settings.default_return_url.as_str());
    }
    if auth.is_none() && flow.requested_aal > Aal::Aal1 {
        return write_flow_error(
            app,
            &req,
            Some(flow),
            ApiError::session_aal1_required().into(),
            replace,
        )
        .await;
    }
    if flow.is_expired(time_fmt::now()) {
        return write_flow_error(app, &req, Some(flow), FlowFailure::Expired, replace).await;
    }
    let body = match decode(&req.headers, &body, None) {
        Ok(b) => b,
        Err(e) => return write_flow_error(app, &req, Some(flow), e.into(), replace).await,
    };
    let mut flow = flow;
    crate::webhook::keep_transient_payload(app, &mut flow, &body);
    let Some(method) = app.methods.find_login(app, &flow, &body) else {
        let failure = if app.methods.login_disabled(&body) {
            FlowFailure::Api(ApiError::not_found(
                "This endpoint was disabled by system administrator. Please check your url or contact the system administrator to enable it.",
            ))
        } else {
            FlowFailure::Ui(vec![crate::selfservice::common::FieldMessage::flow(
                text::login_no_strategy(),
            )])
        };
        return write_flow_error(app, &req, Some(flow), failure, replace).await;
    };
    let cx = Cx {
        app,
        req: &req,
        auth: auth.as_ref(),
    };
    match method.submit(&cx, &mut flow, &body).await {
        Ok(LoginStep::Authenticated {
            identity,
            method,
            aal,
        }) => finish_login(app, &req, flow, *identity, auth, (method, aal, None)).await,
        Ok(LoginStep::Respond(res)) => res,
        Err(f) => {
            method.keep_input(&mut flow, &body);
            write_flow_error(app, &req, Some(flow), f, replace).await
        }
    }
}

/// Kratos' `require_verified_address` hook: no session until an address is verified; a verification
/// code goes out and the client is sent to verify.
async fn require_verified_address(app: &App, req: &ReqInfo, flow: Flow, identity: &Identity) -> Response {
    let replace = |old: &Flow| replacement(app, req, old);
    if app.settings.legacy_require_verified_login_error {
        let m = crate::selfservice::common::FieldMessage::flow(text::address_not_verified());
        return write_flow_error(app, req, Some(flow), FlowFailure::Ui(vec![m]), replace).await;
    }
    // Kratos' verification hook regenerates a login's CSRF token; the new flow stores the new one.
    let rotated = flow.is_browser().then(|| session_manager::rotate_csrf(app));
    let csrf = rotated.as_ref().map(|(t, _)| t.as_str()).unwrap_or("");
    let items = match crate::selfservice::hooks::start_verification(app, identity, flow.flow_type, csrf).await
    {
        Ok(i) => i,
        Err(f) => return write_flow_error(app, req, Some(flow), f, replace).await,
    };
    let cookies = rotated.map(|(_, c)| c);
    if flow.is_browser()
        && !req.is_json
        && let Some(to) = crate::selfservice::hooks::verification_ui_url(&items)
    {
        return with_headers(redirect(StatusCode::SEE_OTHER, &to), cookies);
    }
    let e = ApiError::forbidden("Your account's email or phone address are not verified yet. Please check your email or phone inbox or re-request verification.")
        .with_id(sallyport_core::error::ErrorId::SessionVerifiedAddressRequired)
        .with_message("your email or phone address is not yet verified")
        .with_detail("continue_with", items);
    with_headers(HttpError(e).into_response(), cookies)
}

/// After codes went out: browsers back to the UI, JSON clients get the flow — with 400, because the
/// login is not complete yet (Kratos: "SPAs need to be informed that the login has not yet completed").
/// The provider a federated sign-in came through, and what it said about how the person authenticated.
pub(crate) struct Federated<'a> {
    pub provider: &'a str,
    pub acr: &'a str,
    pub amr: &'a [String],
}

/// Kratos `PostLoginHook` for a completed (method, AAL, provider): activate the session, run the `after` hooks, answer per client kind.
pub(crate) async fn finish_login(
    app: &App,
    req: &ReqInfo,
    mut flow: Flow,
    identity: Identity,
    auth: Option<Authenticated>,
    (method, aal, federated): (&str, Aal, Option<Federated<'_>>),
) -> Response {
    let now = time_fmt::now();
    let replace = |old: &Flow| replacement(app, req, old);
    if !identity.is_active() {
        return write_flow_error(
            app,
            req,
            Some(flow),
            ApiError::identity_disabled().into(),
            replace,
        )
        .await;
    }
    let identity = match crate::selfservice::link::apply(app, &mut flow, identity).await {
        Ok(i) => i,
        Err(f) => return write_flow_error(app, req, Some(flow), f, replace).await,
    };
    let (mut session, token, is_new) = match auth {
        Some(a) if a.identity.id == identity.id => (a.session, None, false),
        _ => {
            let n = session_manager::issue(app, identity.id, now);
            (n.session, Some(n.token), true)
        }
    };
    session.complete_method(method, aal, now);
    if let (Some(m), Some(f)) = (session.authentication_methods.last_mut(), &federated) {
        // Kratos names the provider of a social sign-in, and its acr/amr, in the session's authentication methods.
        m.provider = Some(f.provider.to_owned());
        m.upstream_acr = (!f.acr.is_empty()).then(|| f.acr.to_owned());
        m.upstream_amr = (!f.amr.is_empty()).then(|| f.amr.to_vec());
    }
    if is_new {
        session.devices.push(Device {
            id: uuid::Uuid::new_v4(),
            ip_address: req.client_ip.clone(),
            user_agent: req.user_agent.clone(),
            location: None,
        });
    }
    session.updated_at = now;
    let hooks = app.settings.login.after.hooks_for(method).to_vec();
    // Kratos runs the list in order: web hooks listed before `require_verified_address` run first.
    let web_hooks = app.web_hooks.table.after(FlowKind::Login, method);
    let rva = hooks.iter().position(|h| h == "require_verified_address");
    let split = rva.map_or(web_hooks.len(), |at| {
        hooks[..at]
            .iter()
            .filter(|h| *h == "web_hook")
            .count()
            .min(web_hooks.len())
    });
    let mut hook_identity = identity.clone();
    let (early, late) = web_hooks.split_at(split);
    if let Err(f) = crate::webhook::run_list(
        app,
        req,
        &flow,
        early,
        crate::webhook::Point::After,
        &mut hook_identity,
        Some(&session),
        false,
    )
    .await
    {
        return write_flow_error(app, req, Some(flow), f, replace).await;
    }
    if rva.is_some() && !identity.verifiable_addresses.iter().any(|a| a.verified) {
        return require_verified_address(app, req, flow, &identity).await;
    }
    if let Err(f) = crate::webhook::run_list(
        app,
        req,
        &flow,
        late,
        crate::webhook::Point::After,
        &mut hook_identity,
        Some(&session),
        false,
    )
    .await
    {
        return write_flow_error(app, req, Some(flow), f, replace).await;
    }
    let revoke = hooks.iter().any(|h| h == "revoke_active_sessions");
    let mut done = flow.clone();
    done.state = FlowState::PassedChallenge;
    done.active = Some(method.to_owned());
    done.updated_at = now;
    // The common case, a new session and no other session to revoke, is one write with the flow.
    let together = is_new && !revoke;
    let stored = if together {
        app.store.create_session_with_flow(&session, &done).await
    } else if is_new {
        app.store.create_session(&session).await
    } else {
        app.store.update_session(&session).await
    };
    if let Err(e) = stored {
        return write_flow_error(app, req, Some(flow), store_error(e).into(), replace).await;
    }
    if revoke
        && let Err(e) = app
            .store
            .revoke_sessions_of_identity(identity.id, Some(session.id))
            .await
    {
        return write_flow_error(app, req, Some(flow), store_error(e).into(), replace).await;
    }
    let flow = done;
    let return_to = flow
        .return_to
        .clone()
        .or_else(|| {
            app.settings
                .login
                .after
                .return_url_for(method)
                .map(|u| u.to_string())
        })
        .unwrap_or_else(|| app.settings.default_return_url.to_string());
    if !together && let Err(e) = app.store.update_flow(&flow).await {
        return HttpError(store_error(e)).into_response();
    }
    metrics::counter!("sallyport_logins_total", "method" => method.to_owned()).increment(1);

    let aal_ok = check_aal(
        app,
        &session,
        &identity,
        app.settings.whoami_required_aal,
        Some(&return_to),
    );
    let identity_json = crate::render::identity(app, &identity, &crate::render::PUBLIC);
    if flow.flow_type == FlowType::Api {
        if let Some(res) =
            token_exchange::maybe_redirect(app, &flow, method, session.id, token.as_deref()).await
        {
            return res;
        }
        let ident = aal_ok.is_ok().then_some(identity_json);
        let mut body = Map::new();
        body.insert("session".into(), crate::render::session(&session, ident, now));
        // A refreshed native session keeps the token the app already holds; only its digest is stored.
        if let Some(t) = token
            .clone()
            .or_else(|| session_manager::extract_token(app, &req.headers))
        {
            body.insert("session_token".into(), json!(t));
        }
        body.insert("continue_with".into(), Value::Null);
        return json_res(StatusCode::OK, &Value::Object(body));
    }
    let mut cookies = vec![];
    if let Some(t) = &token {
        cookies.push(session_manager::session_cookie(app, t, session.expires_at));
        cookies.push(session_manager::new_csrf_cookie(app));
    }
    let res = match (req.is_json, aal_ok) {
        (true, Err(e)) => {
            let to = e
                .top_level
                .get("redirect_browser_to")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            HttpError(ApiError::browser_location_change_required(&to)).into_response()
        }
        (true, Ok(())) => json_res(
            StatusCode::OK,
            &json!({
                "session": crate::render::session(&session, Some(identity_json), now),
                "continue_with": [continue_with_redirect(&return_to)],
            }),
        ),
        (false, Err(e)) => {
            let to = e
                .top_level
                .get("redirect_browser_to")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            redirect(StatusCode::SEE_OTHER, &to)
        }
        (false, Ok(())) => redirect(StatusCode::SEE_OTHER, &return_to),
    };
    with_headers(res, cookies)
}
