//! Login with a code: passwordless (aal1, `passwordless_enabled`) or as a second factor (aal2,
//! `mfa_enabled`), Kratos `selfservice/strategy/code/strategy_login.go`.

use serde_json::{Map, Value, json};

use sallyport_core::code::{AttemptOutcome, CodeAttempt, CodeKind, OneTimeCode};
use sallyport_core::flow::{Flow, FlowState};
use sallyport_core::identity::{Identity, credential_type};
use sallyport_core::rate_limit::{Bucket, Counted};
use sallyport_core::session::Aal;
use sallyport_core::store::StoreError;
use sallyport_core::text;
use sallyport_core::time_fmt;
use sallyport_core::ui::{Group, Node};

use super::{
    Address, code_input, codes_for, continue_button, count_attempt, digests, hidden_method, normalize,
    resend_button, too_often,
};
use crate::http::body::str_field;
use crate::http::error::store_error;
use crate::http::request::ReqInfo;
use crate::selfservice::common::{FieldMessage, FlowFailure, ensure_csrf};
use crate::session_manager::Authenticated;
use crate::state::App;

pub enum Outcome {
    /// Codes went out; the flow (already saved) now waits for one.
    Sent,
    Authenticated(Box<Identity>),
}

/// Whether the code method takes part in a flow asking for `aal`.
pub fn applies(app: &App, aal: Aal) -> bool {
    let c = &app.settings.code;
    if aal >= Aal::Aal2 {
        c.mfa_enabled && !c.passwordless_enabled
    } else {
        c.passwordless_enabled
    }
}

/// The AAL a completed code login counts for: aal2 whenever `mfa_enabled`, as in Kratos.
pub fn completed_aal(app: &App) -> Aal {
    if app.settings.code.mfa_enabled {
        Aal::Aal2
    } else {
        Aal::Aal1
    }
}

pub fn code_addresses(identity: &Identity) -> Vec<Address> {
    identity
        .credentials
        .get(credential_type::CODE)
        .and_then(|c| c.config.get("addresses"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| {
            Some(Address {
                via: a["channel"].as_str()?.to_owned(),
                to: a["address"].as_str()?.to_owned(),
            })
        })
        .collect()
}

/// Second-factor addresses of a signed-in identity; verifiable addresses stand in when the fallback is on.
pub fn mfa_addresses(app: &App, identity: &Identity, via: Option<&str>) -> Vec<Address> {
    let mut list = code_addresses(identity);
    if list.is_empty() && app.settings.code.missing_credential_fallback_enabled {
        list = identity
            .verifiable_addresses
            .iter()
            .map(|a| Address {
                via: a.via.clone(),
                to: a.value.clone(),
            })
            .collect();
    }
    list.retain(|a| via.is_none_or(|v| v.is_empty() || a.via == v));
    list
}

/// Nodes of a fresh login flow.
pub fn populate(app: &App, flow: &mut Flow, auth: Option<&Authenticated>, via: Option<&str>) {
    if !applies(app, flow.requested_aal) {
        return;
    }
    if flow.requested_aal >= Aal::Aal2 {
        if let Some(a) = auth {
            for addr in mfa_addresses(app, &a.identity, via) {
                flow.ui.push(
                    Node::input(Group::Code, "address", "submit")
                        .with_value(json!(addr.to))
                        .with_label(text::login_code_send_to(&addr.via, &addr.to)),
                );
            }
        }
        return;
    }
    if flow.ui.node("identifier").is_none() {
        let n = Node::input(Group::Default, "identifier", "text")
            .required()
            .with_value(json!(""))
            .with_label(crate::selfservice::password::identifier_label(app, flow));
        flow.ui.nodes.insert(0, n);
    }
    flow.ui.push(Node::submit(
        Group::Code,
        "method",
        "code",
        text::login_code_send(),
    ));
}

/// The form once codes went out: the identifier travels hidden, the code is asked for.
fn show_code_form(flow: &mut Flow, identifier: &str, authenticated: bool) {
    let keep_captcha: Vec<Node> = flow
        .ui
        .nodes
        .iter()
        .filter(|n| n.group == Group::Captcha)
        .cloned()
        .collect();
    let identifier_group = flow
        .ui
        .nodes
        .iter()
        .find(|n| n.name() == "identifier" || n.name() == "address")
        .map(|n| n.group)
        .unwrap_or(Group::Default);
    flow.ui.nodes = keep_captcha;
    flow.ui
        .push(Node::input(identifier_group, "identifier", "hidden").with_value(json!(identifier)));
    flow.ui.push(hidden_method());
    flow.ui.push(code_input(text::label_login_code()));
    flow.ui.push(continue_button());
    flow.ui.push(resend_button());
    if flow.is_browser() {
        flow.ui.push(Node::csrf(""));
    }
    flow.ui.messages = vec![if authenticated {
        text::login_code_sent_authenticated()
    } else {
        text::login_code_sent()
    }];
}

/// Whether a submission is for the code method: `method: code`, or (2FA) just an `address`.
pub fn responsible(app: &App, flow: &Flow, body: &Map<String, Value>) -> bool {
    if !applies(app, flow.requested_aal) {
        return false;
    }
    match str_field(body, "method") {
        Some("code") => true,
        None | Some("") => {
            flow.requested_aal >= Aal::Aal2 && str_field(body, "address").is_some_and(|a| !a.is_empty())
        }
        _ => false,
    }
}

/// The code goes to the address the user typed when it is one of the identity's (Kratos' `loginSendCode`): a login
/// with the email must not also text the phone. Only a fallback identifier that matched no address keeps them all.
fn only_the_typed_address(all: Vec<Address>, identifier: &str) -> Vec<Address> {
    match all.iter().find(|a| a.to == identifier) {
        Some(a) => vec![a.clone()],
        None => all,
    }
}

async fn find_identity(app: &App, identifier: &str) -> Result<(Identity, Vec<Address>), FlowFailure> {
    let unknown = || FlowFailure::Ui(vec![FieldMessage::flow(text::validation_no_code_user())]);
    match app
        .store
        .find_identity_by_identifier(credential_type::CODE, identifier)
        .await
    {
        Ok(i) => {
            let addrs = code_addresses(&i);
            if addrs.is_empty() {
                Err(unknown())
            } else {
                Ok((i, addrs))
            }
        }
        Err(StoreError::NotFound) if app.settings.code.missing_credential_fallback_enabled => {
            match app
                .store
                .find_identity_by_identifier(credential_type::PASSWORD, identifier)
                .await
            {
                Ok(i) if identifier.contains('@') => Ok((
                    i,
                    vec![Address {
                        via: "email".into(),
                        to: identifier.into(),
                    }],
                )),
                Ok(_) | Err(StoreError::NotFound) => Err(unknown()),
                Err(e) => Err(store_error(e).into()),
            }
        }
        Err(StoreError::NotFound) => Err(unknown()),
        Err(e) => Err(store_error(e).into()),
    }
}

/// Sends codes for `identity` to `addresses` and saves the flow in the code-sent state, atomically.
pub async fn send(
    app: &App,
    flow: &mut Flow,
    identity: &Identity,
    identifier: &str,
    addresses: &[Address],
) -> Result<(), FlowFailure> {
    let subject = crate::rate_limit::code_subject(Some(identity.id), identifier);
    let to: Vec<String> = addresses.iter().map(|a| a.to.clone()).collect();
    crate::rate_limit::guesses_left(app, Some(&subject)).await?;
    // The send budget is counted in the same write as the codes.
    let budget = crate::rate_limit::send_keys(app, &to);
    let identity_json = crate::render::identity(app, identity, &crate::render::PUBLIC);
    let request_url = flow.request_url.clone();
    let (codes, messages) = codes_for(
        app,
        flow,
        CodeKind::Login,
        Some(identity.id),
        addresses,
        "login_code_valid",
        |a, code| {
            let mut m = crate::courier::base_model(app, &a.to, &request_url);
            m.insert("login_code".into(), json!(code));
            m.insert("identity".into(), identity_json.clone());
            Value::Object(m)
        },
    )?;
    flow.state = FlowState::SentEmail;
    flow.active = Some("code".into());
    flow.updated_at = time_fmt::now();
    show_code_form(flow, identifier, flow.refresh || flow.requested_aal >= Aal::Aal2);
    let budgets: Vec<Counted<'_>> = budget
        .iter()
        .flat_map(|(rule, keys)| {
            keys.iter().map(move |key| Counted {
                bucket: Bucket::CodesSent,
                key,
                rule,
            })
        })
        .collect();
    let refused = app
        .store
        .send_codes(flow, CodeKind::Login, &codes, &messages, &budgets)
        .await?;
    match refused {
        Some(v) => Err(crate::rate_limit::refused_send(&v)),
        None => Ok(()),
    }
}

pub async fn submit(
    app: &App,
    req: &ReqInfo,
    flow: &mut Flow,
    body: &Map<String, Value>,
    auth: Option<&Authenticated>,
) -> Result<Outcome, FlowFailure> {
    ensure_csrf(app, req, flow, str_field(body, "csrf_token"))?;
    if str_field(body, "resend") == Some("code") {
        flow.state = FlowState::ChooseMethod;
    }
    let typed = str_field(body, "address")
        .filter(|a| !a.is_empty())
        .or(str_field(body, "identifier"))
        .unwrap_or("");
    let identifier = normalize(typed);
    match flow.state {
        FlowState::ChooseMethod => {
            if identifier.is_empty() {
                return Err(FlowFailure::Ui(vec![FieldMessage::on(
                    "identifier",
                    text::validation_required("identifier"),
                )]));
            }
            let (identity, addresses) = if flow.requested_aal >= Aal::Aal2 {
                let a = auth.ok_or_else(|| {
                    FlowFailure::Api(sallyport_core::error::ApiError::session_aal1_required())
                })?;
                let all = mfa_addresses(app, &a.identity, None);
                let chosen: Vec<Address> = all.into_iter().filter(|x| x.to == identifier).collect();
                if chosen.is_empty() {
                    return Err(FlowFailure::Ui(vec![FieldMessage::flow(
                        text::validation_no_code_user(),
                    )]));
                }
                (a.identity.clone(), chosen)
            } else {
                let (identity, all) = find_identity(app, &identifier).await?;
                (identity, only_the_typed_address(all, &identifier))
            };
            if flow.refresh && auth.is_some_and(|a| a.identity.id != identity.id) {
                return Err(FlowFailure::Ui(vec![FieldMessage::flow(
                    text::validation_no_code_user(),
                )]));
            }
            send(app, flow, &identity, &identifier, &addresses).await?;
            Ok(Outcome::Sent)
        }
        FlowState::SentEmail => {
            let code = str_field(body, "code").unwrap_or("").trim().to_owned();
            if code.is_empty() {
                return Err(FlowFailure::Ui(vec![FieldMessage::on(
                    "code",
                    text::validation_required("code"),
                )]));
            }
            let invalid = || FlowFailure::Ui(vec![FieldMessage::flow(text::login_code_invalid())]);
            // At aal2 the signed-in identity may come from a cache: re-read before it is written.
            let (identity, reread) = if flow.requested_aal >= Aal::Aal2 {
                (auth.map(|a| a.identity.clone()), true)
            } else {
                (find_identity(app, &identifier).await.ok().map(|f| f.0), false)
            };
            let Some(identity) = identity else {
                // Counted all the same: an unknown identifier is a submission too.
                count_attempt(app, flow).await?;
                return Err(invalid());
            };
            let used = check_code(app, flow, &identifier, identity.id, &code).await?;
            let Some(used) = used.filter(|c| c.identity_id == Some(identity.id)) else {
                return Err(invalid());
            };
            let mut identity = if reread {
                app.store.get_identity(identity.id).await?
            } else {
                identity
            };
            let now = time_fmt::now();
            if let Some(a) = identity
                .verifiable_addresses
                .iter_mut()
                .find(|a| !a.verified && a.value == used.address && a.via == used.address_type)
            {
                a.mark_verified(now);
                app.store.update_identity(&identity).await?;
            }
            flow.state = FlowState::PassedChallenge;
            Ok(Outcome::Authenticated(Box::new(identity)))
        }
        _ => Err(FlowFailure::Ui(vec![FieldMessage::flow(
            text::login_no_strategy(),
        )])),
    }
}

/// Counts the submission and the guess, and uses the code, in one write (`CodeStore::attempt_code`);
/// a right code for `identity_id` takes its guess back. The code used, if any.
async fn check_code(
    app: &App,
    flow: &Flow,
    identifier: &str,
    identity_id: uuid::Uuid,
    code: &str,
) -> Result<Option<OneTimeCode>, FlowFailure> {
    let subject = crate::rate_limit::code_subject(Some(identity_id), identifier);
    let key = Bucket::CodeGuesses.key(&subject);
    let guess = app
        .settings
        .rate_limits
        .code_guesses
        .as_ref()
        .map(|rule| Counted {
            bucket: Bucket::CodeGuesses,
            key: &key,
            rule,
        });
    let digests = digests(app, code);
    let outcome = app
        .store
        .attempt_code(CodeAttempt {
            flow_id: flow.id,
            kind: CodeKind::Login,
            digests: &digests,
            now: time_fmt::now(),
            max_submissions: app.settings.code.max_submissions,
            guess,
            identity_id: Some(identity_id),
        })
        .await?;
    match outcome {
        AttemptOutcome::TooManySubmissions => Err(too_often()),
        AttemptOutcome::Limited(v) => Err(crate::rate_limit::refused_guess(&v)),
        AttemptOutcome::Checked(used) => Ok(used),
    }
}

/// Kratos' fast 2FA path: with exactly one address and no other second factor, the code goes out when
/// the aal2 flow is created. Returns whether it did.
pub async fn fast_2fa(
    app: &App,
    flow: &mut Flow,
    auth: &Authenticated,
    via: Option<&str>,
) -> Result<bool, FlowFailure> {
    if flow.requested_aal < Aal::Aal2 || !applies(app, Aal::Aal2) {
        return Ok(false);
    }
    let addresses = mfa_addresses(app, &auth.identity, via);
    let other_mfa = [
        credential_type::TOTP,
        credential_type::LOOKUP_SECRET,
        credential_type::WEBAUTHN,
    ]
    .iter()
    .any(|t| auth.identity.credentials.contains_key(*t));
    if addresses.len() != 1 || other_mfa {
        return Ok(false);
    }
    let to = addresses[0].to.clone();
    send(app, flow, &auth.identity, &to, &addresses).await?;
    Ok(true)
}
