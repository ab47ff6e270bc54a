//! The recovery flow (Kratos `selfservice/flow/recovery`, `strategy/code/strategy_recovery.go`,
//! `strategy/link/strategy_recovery.go`): regain access by a code or link to a recovery address, which
//! yields a session and a settings flow to change credentials.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use sallyport_core::code::{CodeKind, OneTimeCode};
use sallyport_core::error::ApiError;
use sallyport_core::flow::{Flow, FlowKind, FlowState, FlowType};
use sallyport_core::identity::Identity;
use sallyport_core::session::{Aal, Device};
use sallyport_core::text;
use sallyport_core::time_fmt;
use sallyport_core::ui::{Group, Node};

use crate::http::body::{RawBody, decode, str_field};
use crate::http::error::{HttpError, redirect};
use crate::http::request::ReqInfo;
use crate::identities::{AddressKind, find_by_address};
use crate::selfservice::address_flow::{self, respond, write_error};
use crate::selfservice::code::{self, Address};
use crate::selfservice::common::{FieldMessage, FlowFailure, ensure_csrf, flow_id, ui_redirect_url};
use crate::selfservice::status_mode::{self, Answer, Step};
use crate::session_manager;
use crate::state::{App, AppState};

use crate::selfservice::address_flow::{InitQuery, SubmitQuery};

/// `GET /self-service/recovery/browser` — operationId `createBrowserRecoveryFlow`.
pub async fn create_browser_recovery_flow(
    State(app): State<AppState>,
    req: ReqInfo,
    Query(q): Query<InitQuery>,
) -> Response {
    address_flow::init(
        &app,
        &req,
        FlowKind::Recovery,
        FlowType::Browser,
        q.return_to.as_deref(),
    )
    .await
}

/// `GET /self-service/recovery/api` — operationId `createNativeRecoveryFlow`.
pub async fn create_native_recovery_flow(
    State(app): State<AppState>,
    req: ReqInfo,
    Query(q): Query<InitQuery>,
) -> Response {
    address_flow::init(
        &app,
        &req,
        FlowKind::Recovery,
        FlowType::Api,
        q.return_to.as_deref(),
    )
    .await
}

/// `GET /self-service/recovery/flows?id=` — operationId `getRecoveryFlow`.
pub async fn get_recovery_flow(
    State(app): State<AppState>,
    req: ReqInfo,
    Query(q): Query<SubmitQuery>,
) -> Response {
    crate::selfservice::common::get_flow(&app, &req, FlowKind::Recovery, q.id.as_deref()).await
}

fn show_code_form(flow: &mut Flow, to: Option<&str>) {
    let mut code = code::code_input(text::label_recovery_code());
    if let Some(a) = code.input_mut() {
        a.pattern = Some("[0-9]+".into());
        a.maxlength = Some(6);
    }
    flow.ui.nodes = vec![
        Node::csrf(""),
        code,
        code::hidden_method(),
        code::continue_button(),
    ];
    if let Some(to) = to {
        flow.ui
            .push(Node::submit(Group::Code, "email", to, text::label_resend_code()));
    }
    flow.ui.messages = vec![text::recovery_code_sent()];
}

/// A recovery code or link for `identity`, stored with `flow`, and its message to `to`.
pub fn recovery_secret(
    app: &App,
    flow: &Flow,
    identity: &Identity,
    to: &Address,
    link: bool,
) -> Result<(OneTimeCode, sallyport_core::courier::Message, String), FlowFailure> {
    let secret = code::generate_secret(link);
    let kind = if link {
        CodeKind::RecoveryLink
    } else {
        CodeKind::Recovery
    };
    let c = code::new_code(app, flow, kind, to, Some(identity.id), &secret);
    let mut m = crate::courier::base_model(app, &to.to, &flow.request_url);
    m.insert(
        "identity".into(),
        crate::render::identity(app, identity, &crate::render::PUBLIC),
    );
    let template = if link {
        let mut url = url::Url::parse(&app.public_url("self-service/recovery")).expect("valid base URL");
        url.query_pairs_mut()
            .append_pair("flow", &flow.id.to_string())
            .append_pair("token", &secret);
        m.insert("recovery_url".into(), json!(url.to_string()));
        "recovery_valid"
    } else {
        m.insert("recovery_code".into(), json!(secret));
        "recovery_code_valid"
    };
    let msg = crate::courier::message(app, &to.via, &to.to, template, &Value::Object(m))?;
    Ok((c, msg, secret))
}

async fn send(app: &App, flow: &mut Flow, address: &Address, link: bool) -> Result<(), FlowFailure> {
    let owner = find_by_address(app, AddressKind::Recovery, &address.via, &address.to).await?;
    // Counted whether or not the address is known, so a 429 tells nothing about accounts.
    let subject = crate::rate_limit::code_subject(owner.as_ref().map(|i| i.id), &address.to);
    crate::rate_limit::before_send(app, Some(&subject), std::slice::from_ref(&address.to)).await?;
    crate::rate_limit::remember_subject(flow, &subject);
    let (codes, messages) = match owner {
        Some(identity) => {
            let (c, m, _) = recovery_secret(app, flow, &identity, address, link)?;
            (vec![c], vec![m])
        }
        // No enumeration: the answer is the same; only the optional "unknown address" mail differs.
        None if app.settings.recovery.notify_unknown_recipients && address.via == "email" => {
            let template = if link {
                "recovery_invalid"
            } else {
                "recovery_code_invalid"
            };
            let model = Value::Object(crate::courier::base_model(app, &address.to, &flow.request_url));
            (
                vec![],
                vec![crate::courier::message(
                    app,
                    "email",
                    &address.to,
                    template,
                    &model,
                )?],
            )
        }
        None => (vec![], vec![]),
    };
    flow.state = FlowState::SentEmail;
    flow.active = Some(if link { "link" } else { "code" }.into());
    flow.updated_at = time_fmt::now();
    if link {
        address_flow::show_link_sent(flow, &address.to, text::recovery_link_sent());
    } else {
        show_code_form(flow, Some(&address.to));
    }
    let kind = if link {
        CodeKind::RecoveryLink
    } else {
        CodeKind::Recovery
    };
    app.store.save_codes(flow, kind, &codes, &messages).await?;
    Ok(())
}

/// `POST /self-service/recovery?flow=` (and `GET …&token=` for links) — operationId `updateRecoveryFlow`.
pub async fn update_recovery_flow(
    State(app): State<AppState>,
    req: ReqInfo,
    Query(q): Query<SubmitQuery>,
    RawBody(body): RawBody,
) -> Response {
    let app = &*app;
    let id = match flow_id(q.flow.as_deref()) {
        Ok(id) => id,
        Err(e) => return write_error(app, &req, None, e.into()).await,
    };
    let mut flow = match app.store.get_flow(FlowKind::Recovery, id).await {
        Ok(f) => f,
        Err(e) => return write_error(app, &req, None, e.into()).await,
    };
    if !app.settings.recovery.enabled {
        return write_error(
            app,
            &req,
            Some(flow),
            address_flow::disabled(FlowKind::Recovery).into(),
        )
        .await;
    }
    match session_manager::fetch(app, &req.headers).await {
        Ok(Some(_)) if flow.is_browser() && !req.is_json => {
            let to = flow
                .return_to
                .clone()
                .unwrap_or_else(|| app.settings.default_return_url.to_string());
            return redirect(StatusCode::FOUND, &to);
        }
        Ok(Some(_)) => return HttpError(ApiError::session_already_available()).into_response(),
        Ok(None) => {}
        Err(e) => return write_error(app, &req, Some(flow), e.into()).await,
    }
    if flow.is_expired(time_fmt::now()) {
        return write_error(app, &req, Some(flow), FlowFailure::Expired).await;
    }
    if flow.state == FlowState::PassedChallenge {
        return address_flow::replace_finished(app, &req, &flow).await;
    }
    if let Some(token) = q.token.as_deref().filter(|t| !t.is_empty()) {
        let used = match app
            .store
            .use_token(
                CodeKind::RecoveryLink,
                &code::digests(app, token),
                time_fmt::now(),
            )
            .await
        {
            Ok(u) => u,
            Err(e) => return HttpError::from(e).into_response(),
        };
        return match used.filter(|u| u.flow_id == flow.id) {
            Some(u) => issue_session(app, &req, flow, &u).await,
            None => {
                // The link may be opened in a browser without our CSRF cookie: the new flow gets a
                // token it holds (Kratos `RegenerateToken` in the link strategy's retry).
                let (token, cookie) = session_manager::rotate_csrf(app);
                let (mut new, _) = address_flow::replacement(app, &req, &flow);
                if new.is_browser() {
                    new.csrf_token = token;
                }
                new.ui.messages.push(text::recovery_token_invalid());
                if let Err(e) = app.store.create_flow(&new).await {
                    return HttpError::from(e).into_response();
                }
                let res = redirect(
                    StatusCode::SEE_OTHER,
                    &ui_redirect_url(app, FlowKind::Recovery, new.id),
                );
                if new.is_browser() {
                    crate::selfservice::common::with_headers(res, [cookie])
                } else {
                    res
                }
            }
        };
    }
    let body = match decode(&req.headers, &body, None) {
        Ok(b) => b,
        Err(e) => return write_error(app, &req, Some(flow), e.into()).await,
    };
    match submit(app, &req, &mut flow, &body).await {
        Ok(Some(used)) => issue_session(app, &req, flow, &used).await,
        Ok(None) => respond(app, &req, &flow, StatusCode::OK),
        Err(f) => write_error(app, &req, Some(flow), f).await,
    }
}

/// Ok(Some(code)) when a valid code was submitted, Ok(None) when the flow was updated and shown again.
async fn submit(
    app: &App,
    req: &ReqInfo,
    flow: &mut Flow,
    body: &Map<String, Value>,
) -> Result<Option<OneTimeCode>, FlowFailure> {
    let m = str_field(body, "method").unwrap_or("");
    let Some(link) = address_flow::submitted_strategy(app, m) else {
        return Err(FlowFailure::Ui(vec![FieldMessage::flow(
            text::validation_generic(
                "Could not find a strategy to recover your account with. Did you fill out the form correctly?",
            ),
        )]));
    };
    ensure_csrf(app, req, flow, str_field(body, "csrf_token"))?;
    let code_value = str_field(body, "code").unwrap_or("").trim();
    let email = str_field(body, "email").unwrap_or("").trim();
    if m == "code" && flow.state == FlowState::SentEmail && email.is_empty() {
        if code_value.is_empty() {
            return Err(FlowFailure::Ui(vec![FieldMessage::on(
                "code",
                text::validation_required("code"),
            )]));
        }
        code::count_attempt(app, flow).await?;
        let subject = crate::rate_limit::remembered_subject(flow);
        let guess = crate::rate_limit::code_guess(app, &subject).await?;
        let used = app
            .store
            .use_code(
                flow.id,
                CodeKind::Recovery,
                &code::digests(app, code_value),
                time_fmt::now(),
            )
            .await?;
        if used.is_some()
            && let Some(g) = guess
        {
            g.was_right(app).await;
        }
        if used.is_none() {
            flow.ui.reset_messages();
            flow.ui.messages.push(text::recovery_code_invalid());
            flow.updated_at = time_fmt::now();
            app.store.update_flow(flow).await?;
        }
        return Ok(used);
    }
    if email.is_empty() {
        return Err(FlowFailure::Ui(vec![FieldMessage::on(
            "email",
            text::validation_required("email"),
        )]));
    }
    let via = if email.contains('@') { "email" } else { "sms" };
    send(
        app,
        flow,
        &Address {
            via: via.into(),
            to: code::normalize(email),
        },
        link,
    )
    .await?;
    Ok(None)
}

/// Kratos `recoveryIssueSession`: the recovered identity gets a session (AMR `code_recovery` /
/// `link_recovery`) and a settings flow to change its credentials.
async fn issue_session(app: &App, req: &ReqInfo, mut flow: Flow, used: &OneTimeCode) -> Response {
    let Some(identity_id) = used.identity_id else {
        return write_error(
            app,
            req,
            Some(flow),
            FlowFailure::Ui(vec![FieldMessage::flow(text::recovery_code_invalid())]),
        )
        .await;
    };
    let mut identity = match app.store.get_identity(identity_id).await {
        Ok(i) => i,
        Err(e) => return write_error(app, req, Some(flow), e.into()).await,
    };
    if !identity.is_active() {
        return write_error(app, req, Some(flow), ApiError::identity_disabled().into()).await;
    }
    let now = time_fmt::now();
    // Receiving the code proves control of the address.
    if let Some(a) = identity
        .verifiable_addresses
        .iter_mut()
        .find(|a| !a.verified && a.value == used.address && a.via == used.address_type)
    {
        a.mark_verified(now);
        if let Err(e) = app.store.update_identity(&identity).await {
            return write_error(app, req, Some(flow), e.into()).await;
        }
    }
    let amr = if used.kind == CodeKind::RecoveryLink {
        "link_recovery"
    } else {
        "code_recovery"
    };
    let mut issued = session_manager::issue(app, identity.id, now);
    issued.session.complete_method(amr, Aal::Aal1, now);
    issued.session.devices.push(Device {
        id: uuid::Uuid::new_v4(),
        ip_address: req.client_ip.clone(),
        user_agent: req.user_agent.clone(),
        location: None,
    });
    if let Err(e) = app.store.create_session(&issued.session).await {
        return write_error(app, req, Some(flow), e.into()).await;
    }
    if let Err(f) = crate::webhook::after(
        app,
        req,
        &flow,
        "",
        crate::webhook::Point::After,
        &mut identity,
        Some(&issued.session),
        false,
    )
    .await
    {
        return write_error(app, req, Some(flow), f).await;
    }
    flow.state = FlowState::PassedChallenge;
    flow.ui.reset_messages();
    let mut cookies = vec![];
    let mut csrf = String::new();
    if flow.is_browser() {
        let (token, cookie) = session_manager::rotate_csrf(app);
        cookies.push(session_manager::session_cookie(
            app,
            &issued.token,
            issued.session.expires_at,
        ));
        cookies.push(cookie);
        // Kratos stores the regenerated token on the recovery flow too (`recoveryIssueSession`).
        flow.csrf_token = token.clone();
        csrf = token;
    } else {
        flow.continue_with
            .push(json!({"action": "set_ory_session_token", "ory_session_token": issued.token}));
    }
    let privileged_until = now
        + time::Duration::try_from(app.settings.privileged_session_max_age).unwrap_or(time::Duration::HOUR);
    let mut settings = crate::selfservice::settings::new_flow(app, csrf, &identity, flow.flow_type);
    settings.ui.messages = vec![text::recovery_success(privileged_until, now)];
    let settings_url = ui_redirect_url(app, FlowKind::Settings, settings.id);
    let answer = status_mode::answer(app, req, flow.flow_type, Step::RecoveryToSettings);
    if matches!(answer, Answer::Flow(_)) {
        flow.continue_with
            .push(json!({"action": "show_settings_ui", "flow": {"id": settings.id, "url": settings_url}}));
    }
    flow.updated_at = now;
    let saved = async {
        app.store.create_flow(&settings).await?;
        app.store.update_flow(&flow).await
    };
    if let Err(e) = saved.await {
        return HttpError::from(e).into_response();
    }
    let res = match answer {
        Answer::Flow(status) => crate::selfservice::common::flow_json(app, req, &flow, status),
        Answer::LocationChange => {
            HttpError(ApiError::browser_location_change_required(&settings_url)).into_response()
        }
        Answer::Redirect => redirect(StatusCode::SEE_OTHER, &settings_url),
    };
    crate::selfservice::common::with_headers(res, cookies)
}
