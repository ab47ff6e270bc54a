//! `/self-service/methods/oidc/callback/{provider}`: the provider sends the browser back here. The state
//! names the flow; its pending sign-in is taken off the flow before anything else (a replayed callback
//! finds nothing), the engine finishes the ceremony, and the flow ends as a login (known subject) or a
//! registration (unknown subject) — switching flow kind as Kratos does.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use sallyport_core::error::ApiError;
use sallyport_core::flow::{Flow, FlowKind};
use sallyport_core::identity::{Identity, credential_type};
use sallyport_core::session::Aal;
use sallyport_core::store::StoreError;
use sallyport_core::time_fmt;
use sallyport_oidc::{Authenticated, CallbackParams, OidcError, PendingAuth, Provider, parse_state};

use super::{Oidc, PENDING, api_error, flow_kind};
use crate::http::body::RawBody;
use crate::http::error::{HttpError, forward, redirect, store_error};
use crate::http::request::ReqInfo;
use crate::identities::{apply_traits, trait_errors};
use crate::selfservice::common::{FlowFailure, write_flow_error};
use crate::selfservice::registration::OnDuplicate;
use crate::selfservice::{login, registration};
use crate::session_manager;
use crate::state::{App, AppState};

/// `GET /self-service/methods/oidc/callback/{provider}`.
pub async fn callback(
    State(app): State<AppState>,
    req: ReqInfo,
    Path(provider): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    handle(&app, &req, Some(&provider), query.as_deref().unwrap_or("")).await
}

/// `GET /self-service/methods/oidc/callback` (providers registered with the generic redirect URI).
pub async fn generic_callback(
    State(app): State<AppState>,
    req: ReqInfo,
    RawQuery(query): RawQuery,
) -> Response {
    handle(&app, &req, None, query.as_deref().unwrap_or("")).await
}

/// `POST` (Apple's `form_post`): the same URL as a GET with the form in the query, so the browser comes
/// back with its cookies (a cross-site POST would not carry `SameSite=Lax` ones).
pub async fn form_post(req: ReqInfo, RawBody(body): RawBody) -> Response {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let mut to = url::Url::parse("http://placeholder/").expect("static URL");
    to.set_path(req.uri.path());
    to.query_pairs_mut().extend_pairs(form);
    let target = match to.query() {
        Some(q) => format!("{}?{q}", req.uri.path()),
        None => req.uri.path().to_owned(),
    };
    redirect(StatusCode::FOUND, &target)
}

async fn handle(app: &App, req: &ReqInfo, provider_in_path: Option<&str>, query: &str) -> Response {
    let Some(oidc) = app.methods.oidc() else {
        return HttpError(ApiError::not_found(
            "This endpoint was disabled by system administrator. Please check your url or contact the system administrator to enable it.",
        ))
        .into_response();
    };
    let params = CallbackParams::from_pairs(
        provider_in_path,
        url::form_urlencoded::parse(query.as_bytes()).into_owned(),
    );
    // Without a flow there is nothing to put a message on: the error page, as Kratos.
    let state = match parse_state(params.state.as_deref()) {
        Ok(s) => s,
        Err(e) => return forward(app, false, oidc_api(e)).await,
    };
    let kind = flow_kind(state.flow_kind);
    let mut flow = match app.store.get_flow(kind, state.flow_id).await {
        Ok(f) => f,
        Err(e) => return forward(app, false, store_error(e)).await,
    };
    // Continuity (Kratos keeps a cookie for this): a browser flow finishes only in the browser that
    // started it, so a callback URL sent to someone else cannot sign them in to the sender's account.
    if flow.is_browser() && !same_browser(app, req, &flow) {
        return fail(app, req, flow, api_error(OidcError::StateMismatch)).await;
    }
    let pending = flow
        .internal_context
        .as_object_mut()
        .and_then(|o| o.remove(PENDING));
    if pending.is_some()
        && let Err(e) = app.store.update_flow(&flow).await
    {
        return HttpError(store_error(e)).into_response();
    }
    let pending: Option<PendingAuth> = pending.and_then(|v| serde_json::from_value(v).ok());
    let Some(pending) = pending else {
        return fail(app, req, flow, api_error(OidcError::StateMismatch)).await;
    };
    if flow.is_expired(time_fmt::now()) {
        return fail(app, req, flow, FlowFailure::Expired).await;
    }
    let provider = match oidc.providers.get(&pending.provider_id) {
        Ok(p) => p,
        Err(e) => return fail(app, req, flow, api_error(e)).await,
    };
    let authenticated = match provider.complete(&pending, &params).await {
        Ok(a) => a,
        Err(e) => return fail(app, req, flow, api_error(e)).await,
    };
    if kind == FlowKind::Settings {
        return link(app, req, oidc, flow, &provider, authenticated).await;
    }
    finish(app, req, oidc, flow, &provider, authenticated).await
}

/// A settings flow's link finishes here: the signed-in owner of the flow gains the connection, unless
/// the provider account already belongs to someone.
async fn link(
    app: &App,
    req: &ReqInfo,
    oidc: &Oidc,
    flow: Flow,
    provider: &Provider,
    authenticated: Authenticated,
) -> Response {
    let fail =
        |f: Flow, failure: FlowFailure| crate::selfservice::settings::finish_error(app, req, f, failure);
    let auth = match session_manager::fetch(app, &req.headers).await {
        Ok(Some(a)) if flow.identity_id == Some(a.identity.id) => a,
        Ok(_) => return HttpError(ApiError::identity_mismatch()).into_response(),
        Err(e) => return HttpError(e).into_response(),
    };
    let identifier = format!("{}:{}", provider.config().id, authenticated.claims.subject);
    match app
        .store
        .find_identity_by_identifier(credential_type::OIDC, &identifier)
        .await
    {
        Err(StoreError::NotFound) => {}
        Ok(_) => {
            let m = crate::selfservice::common::FieldMessage::flow(
                sallyport_core::text::validation_duplicate_credentials(),
            );
            return fail(flow, FlowFailure::Ui(vec![m])).await;
        }
        Err(e) => return fail(flow, store_error(e).into()).await,
    }
    let mut identity = auth.identity.clone();
    if let Err(e) = super::settings::link_identity(oidc, &mut identity, provider, &authenticated) {
        return fail(flow, api_error(e)).await;
    }
    identity.updated_at = time_fmt::now();
    if let Err(e) = app.store.update_identity(&identity).await {
        return fail(flow, store_error(e).into()).await;
    }
    crate::selfservice::settings::saved(app, req, flow, &identity).await
}

fn same_browser(app: &App, req: &ReqInfo, flow: &Flow) -> bool {
    use subtle::ConstantTimeEq;
    match crate::selfservice::common::request_csrf(app, req) {
        Some(t) => {
            let sent = crate::http::csrf::encode_cookie(&t);
            !flow.csrf_token.is_empty() && bool::from(sent.as_bytes().ct_eq(flow.csrf_token.as_bytes()))
        }
        None => false,
    }
}

fn oidc_api(e: OidcError) -> ApiError {
    ApiError::new(e.status()).with_reason(e.reason())
}

async fn fail(app: &App, req: &ReqInfo, flow: Flow, failure: FlowFailure) -> Response {
    let kind = flow.kind;
    if kind == FlowKind::Settings {
        return crate::selfservice::settings::finish_error(app, req, flow, failure).await;
    }
    write_flow_error(app, req, Some(flow), failure, |old| match kind {
        FlowKind::Registration => registration::replacement(app, req, old),
        _ => login::replacement(app, req, old),
    })
    .await
}

/// A new flow of `kind` carrying `old`'s type and return_to, stored.
async fn switch(app: &App, req: &ReqInfo, old: &Flow, kind: FlowKind) -> Result<Flow, StoreError> {
    let mut like = old.clone();
    like.kind = kind;
    like.refresh = false;
    like.requested_aal = Aal::Aal1;
    let new = match kind {
        FlowKind::Registration => registration::replacement(app, req, &like),
        _ => login::replacement(app, req, &like),
    };
    app.store.create_flow(&new).await?;
    // A native app's exchange code follows its flow (Kratos `MoveToNewFlow`).
    app.store.move_exchanger(old.id, new.id).await?;
    Ok(new)
}

pub(super) async fn finish(
    app: &App,
    req: &ReqInfo,
    oidc: &Oidc,
    flow: Flow,
    provider: &Provider,
    authenticated: Authenticated,
) -> Response {
    let provider_id = provider.config().id.clone();
    let subject = authenticated.claims.subject.clone();
    let identifier = format!("{provider_id}:{subject}");
    match app
        .store
        .find_identity_by_identifier(credential_type::OIDC, &identifier)
        .await
    {
        Ok(identity) => {
            // A registration flow whose subject is known signs in instead, as Kratos.
            let flow = if flow.kind == FlowKind::Login {
                flow
            } else {
                match switch(app, req, &flow, FlowKind::Login).await {
                    Ok(f) => f,
                    Err(e) => return fail(app, req, flow, store_error(e).into()).await,
                }
            };
            let mut identity = identity;
            if provider.config().update_identity_on_login {
                match super::traits::update_from_claims(app, provider, &authenticated, &mut identity).await {
                    Ok(false) => {}
                    Ok(true) => {
                        if let Err(e) = app.store.update_identity(&identity).await {
                            return fail(app, req, flow, store_error(e).into()).await;
                        }
                    }
                    Err(f) => return fail(app, req, flow, f).await,
                }
            }
            let auth = session_manager::fetch(app, &req.headers).await.ok().flatten();
            // An upstream sign-in the provider says was multi-factor (`aal2_acr_values`/`aal2_amr_values`) is aal2.
            let aal = if authenticated.upstream_aal2 {
                Aal::Aal2
            } else {
                Aal::Aal1
            };
            let federated = login::Federated {
                provider: provider.config().id.as_str(),
                acr: &authenticated.claims.acr,
                amr: &authenticated.claims.amr,
            };
            login::finish_login(app, req, flow, identity, auth, (super::ID, aal, Some(federated))).await
        }
        Err(StoreError::NotFound) => {
            let flow = if flow.kind == FlowKind::Registration {
                flow
            } else {
                if !app.settings.registration_enabled {
                    return fail(app, req, flow, ApiError::registration_disabled().into()).await;
                }
                match switch(app, req, &flow, FlowKind::Registration).await {
                    Ok(f) => f,
                    Err(e) => return fail(app, req, flow, store_error(e).into()).await,
                }
            };
            register(app, req, oidc, flow, provider, authenticated, identifier).await
        }
        Err(e) => fail(app, req, flow, store_error(e).into()).await,
    }
}

/// A new identity from the mapper's traits, with the addresses the provider vouches for verified.
async fn register(
    app: &App,
    req: &ReqInfo,
    oidc: &Oidc,
    flow: Flow,
    provider: &Provider,
    authenticated: Authenticated,
    identifier: String,
) -> Response {
    let provider_id = provider.config().id.clone();
    let mapped = match provider.map_claims(&authenticated.claims, None).await {
        Ok(m) => m,
        Err(e) => return fail(app, req, flow, api_error(e)).await,
    };
    let now = time_fmt::now();
    let schema_id = flow
        .identity_schema
        .clone()
        .unwrap_or_else(|| app.settings.default_schema_id.clone());
    // Traits the person typed on the form that continues a sign-up override the provider's (Kratos `merge`).
    let traits = super::traits::merge(
        Value::Object(mapped.traits.clone()),
        flow.internal_context.get(super::SUBMITTED_TRAITS),
    );
    let mut identity = Identity::new(&schema_id, Value::Null, now);
    if let Err(e) = apply_traits(app, &mut identity, traits.clone()) {
        let mut flow = flow;
        super::traits::completion_form(app, &mut flow, &provider_id, &schema_id, &traits);
        return fail(app, req, flow, FlowFailure::Ui(trait_errors(e))).await;
    }
    // A new identity's addresses are all unverified until the provider vouches for them.
    super::traits::verify_vouched(&mut identity, &mapped.verified_addresses, now);
    if let Some(m) = mapped.metadata_public.clone() {
        identity.metadata_public = Some(m);
    }
    if let Some(m) = mapped.metadata_admin.clone() {
        identity.metadata_admin = Some(m);
    }
    let entry = match super::credential_entry(oidc, provider, &authenticated) {
        Ok(e) => e,
        Err(e) => return fail(app, req, flow, api_error(e)).await,
    };
    identity.set_credential(
        credential_type::OIDC,
        vec![identifier],
        json!({ "providers": [entry] }),
        now,
    );
    identity.available_aal = identity.compute_available_aal(app.settings.code_mfa_enabled);
    let duplicate = identity
        .verifiable_addresses
        .first()
        .map(|a| a.value.clone())
        .or_else(|| identity.recovery_addresses.first().map(|a| a.value.clone()))
        .unwrap_or_else(|| authenticated.claims.subject.clone());
    let on_duplicate = OnDuplicate::OfferLogin {
        identifier: duplicate,
        provider: provider_id,
    };
    let completed = (super::ID, Some(provider.config().id.as_str()));
    registration::finish_registration(app, req, flow, identity, completed, on_duplicate).await
}
