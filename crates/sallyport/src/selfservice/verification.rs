//! The verification flow (Kratos `selfservice/flow/verification`, `strategy/code/strategy_verification.go`,
//! `strategy/link/strategy_verification.go`): prove control of an address with a code or a link.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use sallyport_core::code::{CodeKind, OneTimeCode};
use sallyport_core::flow::{Flow, FlowKind, FlowState, FlowType};
use sallyport_core::identity::Identity;
use sallyport_core::text;
use sallyport_core::time_fmt;
use sallyport_core::ui::{Group, Node};

use crate::http::body::{RawBody, decode, str_field};
use crate::http::error::{HttpError, redirect};
use crate::http::request::ReqInfo;
use crate::identities::{AddressKind, find_by_address};
use crate::selfservice::address_flow::{self, anchor, respond, write_error};
use crate::selfservice::code::{self, Address};
use crate::selfservice::common::{FieldMessage, FlowFailure, ensure_csrf, flow_id, init_csrf, with_headers};
use crate::state::{App, AppState};

use crate::selfservice::address_flow::{InitQuery, SubmitQuery};

/// `GET /self-service/verification/browser` — operationId `createBrowserVerificationFlow`.
pub async fn create_browser_verification_flow(
    State(app): State<AppState>,
    req: ReqInfo,
    Query(q): Query<InitQuery>,
) -> Response {
    address_flow::init(
        &app,
        &req,
        FlowKind::Verification,
        FlowType::Browser,
        q.return_to.as_deref(),
    )
    .await
}

/// `GET /self-service/verification/api` — operationId `createNativeVerificationFlow`.
pub async fn create_native_verification_flow(
    State(app): State<AppState>,
    req: ReqInfo,
    Query(q): Query<InitQuery>,
) -> Response {
    address_flow::init(
        &app,
        &req,
        FlowKind::Verification,
        FlowType::Api,
        q.return_to.as_deref(),
    )
    .await
}

/// `GET /self-service/verification/flows?id=` — operationId `getVerificationFlow`.
pub async fn get_verification_flow(
    State(app): State<AppState>,
    req: ReqInfo,
    Query(q): Query<SubmitQuery>,
) -> Response {
    crate::selfservice::common::get_flow(&app, &req, FlowKind::Verification, q.id.as_deref()).await
}

fn sent_message(via: &str) -> text::Message {
    if via == "sms" {
        text::verification_code_sent_sms()
    } else {
        text::verification_code_sent_email()
    }
}

fn show_code_form(flow: &mut Flow, to: &str, via: &str) {
    flow.ui.nodes = vec![
        code::hidden_method(),
        code::code_input(text::label_verification_code()),
        code::continue_button(),
        Node::csrf(""),
        Node::submit(Group::Code, "email", to, text::label_resend_code()),
    ];
    flow.ui.messages = vec![sent_message(via)];
}

/// The codes (or link tokens) and messages that verify `address`, if it belongs to someone.
pub fn verification_message(
    app: &App,
    flow: &Flow,
    identity: Option<&Identity>,
    address: &Address,
    use_link: bool,
) -> Result<(Vec<OneTimeCode>, Vec<sallyport_core::courier::Message>), FlowFailure> {
    let Some(identity) = identity else {
        if !app.settings.verification.notify_unknown_recipients || address.via != "email" {
            return Ok((vec![], vec![]));
        }
        let template = if use_link {
            "verification_invalid"
        } else {
            "verification_code_invalid"
        };
        let model = Value::Object(crate::courier::base_model(app, &address.to, &flow.request_url));
        return Ok((
            vec![],
            vec![crate::courier::message(
                app,
                "email",
                &address.to,
                template,
                &model,
            )?],
        ));
    };
    let identity_json = crate::render::identity(app, identity, &crate::render::PUBLIC);
    let secret = code::generate_secret(use_link);
    let kind = if use_link {
        CodeKind::VerificationLink
    } else {
        CodeKind::Verification
    };
    let c = code::new_code(app, flow, kind, address, Some(identity.id), &secret);
    let mut url = url::Url::parse(&app.public_url("self-service/verification")).expect("valid base URL");
    url.query_pairs_mut()
        .append_pair("flow", &flow.id.to_string())
        .append_pair(if use_link { "token" } else { "code" }, &secret);
    let mut m = crate::courier::base_model(app, &address.to, &flow.request_url);
    m.insert("verification_url".into(), json!(url.to_string()));
    m.insert("identity".into(), identity_json);
    let template = if use_link {
        "verification_valid"
    } else {
        m.insert("verification_code".into(), json!(secret));
        "verification_code_valid"
    };
    let msg = crate::courier::message(app, &address.via, &address.to, template, &Value::Object(m))?;
    Ok((vec![c], vec![msg]))
}

/// Sends a verification message for `address` from `flow` and moves the flow to `sent_email`.
/// `use_link` picks the link strategy over the code one.
pub async fn send(app: &App, flow: &mut Flow, address: &Address, use_link: bool) -> Result<(), FlowFailure> {
    let owner = find_by_address(app, AddressKind::Verifiable, &address.via, &address.to).await?;
    let subject = crate::rate_limit::code_subject(owner.as_ref().map(|i| i.id), &address.to);
    crate::rate_limit::before_send(app, Some(&subject), std::slice::from_ref(&address.to)).await?;
    crate::rate_limit::remember_subject(flow, &subject);
    let (codes, messages) = verification_message(app, flow, owner.as_ref(), address, use_link)?;
    flow.state = FlowState::SentEmail;
    flow.active = Some(if use_link { "link" } else { "code" }.into());
    flow.updated_at = time_fmt::now();
    if use_link {
        address_flow::show_link_sent(flow, &address.to, text::verification_link_sent());
    } else {
        show_code_form(flow, &address.to, &address.via);
    }
    let kind = if use_link {
        CodeKind::VerificationLink
    } else {
        CodeKind::Verification
    };
    app.store.save_codes(flow, kind, &codes, &messages).await?;
    Ok(())
}

/// Marks the address the code/token went to as verified and finishes the flow.
async fn complete(app: &App, req: &ReqInfo, flow: &mut Flow, used: &OneTimeCode) -> Result<(), FlowFailure> {
    let Some(identity_id) = used.identity_id else {
        return Err(FlowFailure::Ui(vec![FieldMessage::flow(
            text::verification_code_invalid(),
        )]));
    };
    let mut identity = app.store.get_identity(identity_id).await?;
    let now = time_fmt::now();
    if let Some(a) = identity
        .verifiable_addresses
        .iter_mut()
        .find(|a| a.value == used.address && a.via == used.address_type)
    {
        a.mark_verified(now);
        app.store.update_identity(&identity).await?;
    }
    crate::webhook::after(
        app,
        req,
        flow,
        "",
        crate::webhook::Point::After,
        &mut identity,
        None,
        false,
    )
    .await?;
    let to = flow
        .return_to
        .clone()
        .or_else(|| {
            app.settings
                .verification
                .after
                .default_return_url
                .as_ref()
                .map(|u| u.to_string())
        })
        .unwrap_or_else(|| app.settings.default_return_url.to_string());
    flow.state = FlowState::PassedChallenge;
    flow.ui.method = "GET".into();
    flow.ui.action = to.clone();
    let group = if used.kind == CodeKind::VerificationLink {
        Group::Link
    } else {
        Group::Code
    };
    flow.ui.nodes = vec![
        Node::csrf(""),
        anchor("continue", &to, group, text::label_continue()),
    ];
    flow.ui.messages = vec![if used.address_type == "sms" {
        text::verification_sms_success()
    } else {
        text::verification_email_success()
    }];
    flow.updated_at = now;
    app.store.update_flow(flow).await?;
    Ok(())
}

/// `POST /self-service/verification?flow=` (also `GET` for emailed links) — operationId `updateVerificationFlow`.
pub async fn update_verification_flow(
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
    let mut flow = match app.store.get_flow(FlowKind::Verification, id).await {
        Ok(f) => f,
        Err(e) => return write_error(app, &req, None, e.into()).await,
    };
    if !app.settings.verification.enabled {
        return write_error(
            app,
            &req,
            Some(flow),
            address_flow::disabled(FlowKind::Verification).into(),
        )
        .await;
    }
    if flow.is_expired(time_fmt::now()) {
        return write_error(app, &req, Some(flow), FlowFailure::Expired).await;
    }
    if flow.state == FlowState::PassedChallenge {
        return address_flow::replace_finished(app, &req, &flow).await;
    }
    // An emailed code link pre-fills the form and sends the browser to the UI, which submits it.
    if req.uri.path().ends_with("/verification")
        && body.is_empty()
        && let Some(c) = q.code.as_deref().filter(|c| !c.is_empty())
    {
        flow.ui.set_value("code", json!(c));
        // The link may be opened in another browser, or after the session changed the token: Kratos
        // (`handleLinkClick`) hands out a new CSRF token here and stores it on the flow.
        let (token, cookie) = crate::session_manager::rotate_csrf(app);
        flow.csrf_token = token;
        flow.updated_at = time_fmt::now();
        if let Err(e) = app.store.update_flow(&flow).await {
            return HttpError::from(e).into_response();
        }
        let res = redirect(
            StatusCode::SEE_OTHER,
            &crate::selfservice::common::ui_redirect_url(app, flow.kind, flow.id),
        );
        return with_headers(res, [cookie]);
    }
    if let Some(token) = q.token.as_deref().filter(|t| !t.is_empty()) {
        let used = match app
            .store
            .use_token(
                CodeKind::VerificationLink,
                &code::digests(app, token),
                time_fmt::now(),
            )
            .await
        {
            Ok(u) => u,
            Err(e) => return HttpError::from(e).into_response(),
        };
        // As Kratos (`flow.GetCSRFToken`): the flow keeps the token of the browser that opened the link,
        // handing one out when it has none, so the UI can fetch the flow afterwards.
        let (csrf, cookie) = init_csrf(app, &req);
        if flow.is_browser() {
            flow.csrf_token = crate::http::csrf::encode_cookie(&csrf);
        }
        let result = match used.filter(|u| u.flow_id == flow.id) {
            Some(u) => complete(app, &req, &mut flow, &u).await,
            None => Err(FlowFailure::Ui(vec![FieldMessage::flow(
                text::verification_token_invalid(),
            )])),
        };
        let res = match result {
            Ok(()) => respond(app, &req, &flow, StatusCode::OK),
            Err(f) => write_error(app, &req, Some(flow), f).await,
        };
        return with_headers(res, cookie);
    }
    let body = match decode(&req.headers, &body, None) {
        Ok(b) => b,
        Err(e) => return write_error(app, &req, Some(flow), e.into()).await,
    };
    match submit(app, &req, &mut flow, &body).await {
        Ok(()) => respond(app, &req, &flow, StatusCode::OK),
        Err(f) => write_error(app, &req, Some(flow), f).await,
    }
}

async fn submit(
    app: &App,
    req: &ReqInfo,
    flow: &mut Flow,
    body: &Map<String, Value>,
) -> Result<(), FlowFailure> {
    let m = str_field(body, "method").unwrap_or("");
    let Some(use_link) = address_flow::submitted_strategy(app, m) else {
        return Err(FlowFailure::Ui(vec![FieldMessage::flow(
            text::validation_generic(
                "Could not find a strategy to verify your account with. Did you fill out the form correctly?",
            ),
        )]));
    };
    ensure_csrf(app, req, flow, str_field(body, "csrf_token"))?;
    let code_value = str_field(body, "code").unwrap_or("").trim();
    if flow.state == FlowState::SentEmail && !code_value.is_empty() && m == "code" {
        code::count_attempt(app, flow).await?;
        let subject = crate::rate_limit::remembered_subject(flow);
        let guess = crate::rate_limit::code_guess(app, &subject).await?;
        let used = app
            .store
            .use_code(
                flow.id,
                CodeKind::Verification,
                &code::digests(app, code_value),
                time_fmt::now(),
            )
            .await?;
        if used.is_some()
            && let Some(g) = guess
        {
            g.was_right(app).await;
        }
        let Some(used) = used else {
            flow.ui.reset_messages();
            flow.ui.messages.push(text::verification_code_invalid());
            flow.updated_at = time_fmt::now();
            app.store.update_flow(flow).await?;
            return Ok(());
        };
        return complete(app, req, flow, &used).await;
    }
    let email = str_field(body, "email").unwrap_or("").trim();
    if email.is_empty() {
        return Err(FlowFailure::Ui(vec![FieldMessage::on(
            "email",
            text::validation_required("email"),
        )]));
    }
    let via = if email.contains('@') { "email" } else { "sms" };
    let to = code::normalize(email);
    send(app, flow, &Address { via: via.into(), to }, use_link).await
}
