//! Second factors: TOTP and lookup secrets in settings and at aal2 login (Kratos
//! `selfservice/strategy/{totp,lookup}`), and Sallyport's per-identity MFA policy.

use serde_json::{Map, Value, json};

use sallyport_core::flow::Flow;
use sallyport_core::identity::{Identity, credential_type};
use sallyport_core::text::{self, Message};
use sallyport_core::time_fmt;
use sallyport_core::ui::{Attributes, Group, Meta, Node};

use crate::http::body::str_field;
use crate::http::request::ReqInfo;
use crate::selfservice::common::{FieldMessage, FlowFailure, ensure_csrf};
use crate::session_manager::Authenticated;
use crate::state::App;

fn other_node(node_type: &str, group: Group, id: &str, attrs: Map<String, Value>, label: Message) -> Node {
    let mut attributes = attrs;
    attributes.insert("id".into(), json!(id));
    Node {
        node_type: node_type.into(),
        group,
        attributes: Attributes::Other {
            node_type: node_type.into(),
            attributes,
        },
        messages: vec![],
        meta: Meta { label: Some(label) },
    }
}

fn text_node(group: Group, id: &str, text: Message, label: Message) -> Node {
    let mut a = Map::new();
    a.insert("text".into(), serde_json::to_value(&text).unwrap_or(Value::Null));
    other_node("text", group, id, a, label)
}

fn flag(body: &Map<String, Value>, key: &str) -> bool {
    matches!(body.get(key), Some(Value::Bool(true)))
        || matches!(str_field(body, key), Some("true" | "1" | "on"))
}

pub fn has_totp(identity: &Identity) -> bool {
    identity
        .credentials
        .get(credential_type::TOTP)
        .and_then(|c| sallyport_mfa::totp_url_from_config(&c.config))
        .is_some()
}

pub fn has_lookup(identity: &Identity) -> bool {
    identity
        .credentials
        .get(credential_type::LOOKUP_SECRET)
        .is_some_and(|c| sallyport_mfa::remaining_lookup_codes(&c.config) > 0)
}

/// Whether the identity has a set of backup codes at all, used or not (Kratos `identityHasLookup`):
/// settings then offer reveal and disable.
fn has_lookup_set(identity: &Identity) -> bool {
    identity
        .credentials
        .get(credential_type::LOOKUP_SECRET)
        .and_then(|c| c.config.get("recovery_codes"))
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
}

// ---------------- the per-identity MFA policy (beyond Kratos) ----------------

fn trait_at<'a>(traits: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(traits, |v, seg| v.get(seg))
}

/// Whether policy makes `identity` use a second factor: `metadata_admin.sallyport.require_mfa`, or a
/// `sallyport.mfa_policy.require_for` rule on its schema id or traits.
pub fn requires_mfa(app: &App, identity: &Identity) -> bool {
    if let Some(v) = identity
        .metadata_admin
        .as_ref()
        .and_then(|m| m.get("sallyport"))
        .and_then(|s| s.get("require_mfa"))
    {
        return v == &Value::Bool(true);
    }
    app.settings.mfa_policy.require_for.iter().any(|rule| {
        let schema_ok = rule.schema_id.as_ref().is_none_or(|s| s == &identity.schema_id);
        let trait_ok = match (&rule.trait_path, &rule.equals) {
            (Some(path), Some(want)) => trait_at(&identity.traits, path) == Some(want),
            (Some(path), None) => trait_at(&identity.traits, path).is_some_and(|v| !v.is_null()),
            (None, _) => true,
        };
        (rule.schema_id.is_some() || rule.trait_path.is_some()) && schema_ok && trait_ok
    })
}

/// A second factor the identity can use right now (what enrolment means for the policy).
pub fn has_second_factor(app: &App, identity: &Identity) -> bool {
    (app.settings.totp_enabled && has_totp(identity))
        || (app.settings.lookup_enabled && has_lookup(identity))
        || (app.settings.code_mfa_enabled
            && !crate::selfservice::code::login::code_addresses(identity).is_empty())
        || (app.settings.webauthn.is_some()
            && !crate::selfservice::method::webauthn_mfa_keys(identity).is_empty())
}

// ---------------- settings ----------------

pub fn populate_totp_settings(app: &App, flow: &mut Flow, identity: &Identity) {
    if app.settings.totp_enabled {
        if has_totp(identity) {
            flow.ui.push(Node::submit(
                Group::Totp,
                "totp_unlink",
                "true",
                text::totp_unlink(),
            ));
        } else {
            let account = app
                .schemas
                .get(&identity.schema_id)
                .and_then(|s| s.validate_traits(&identity.traits).ok())
                .and_then(|e| e.totp_account_name)
                .unwrap_or_else(|| identity.id.to_string());
            let key = match flow
                .internal_context
                .get("totp_url")
                .and_then(Value::as_str)
                .map(sallyport_mfa::parse_totp_url)
            {
                Some(Ok(k)) => k,
                _ => sallyport_mfa::new_totp(&app.settings.totp_issuer, &account),
            };
            flow.internal_context["totp_url"] = json!(key.url);
            let mut img = Map::new();
            img.insert("src".into(), json!(sallyport_mfa::qr_png_data_uri(&key.url)));
            img.insert("width".into(), json!(256));
            img.insert("height".into(), json!(256));
            flow.ui
                .push(other_node("img", Group::Totp, "totp_qr", img, text::totp_qr()));
            flow.ui.push(text_node(
                Group::Totp,
                "totp_secret_key",
                text::totp_secret(&key.secret_base32),
                text::totp_secret_label(),
            ));
            flow.ui.push(
                Node::input(Group::Totp, "totp_code", "text")
                    .required()
                    .with_label(text::label_verify_code()),
            );
            flow.ui
                .push(Node::submit(Group::Totp, "method", "totp", text::label_save()));
        }
    }
}

/// Kratos' lookup settings nodes: [regenerate] without codes, [reveal, disable] with codes,
/// [codes, confirm] after regenerating, [codes, disable, regenerate] after revealing.
pub fn populate_lookup_settings(app: &App, flow: &mut Flow, identity: &Identity) {
    let submit = |name: &str, label: Message| Node::submit(Group::LookupSecret, name, "true", label);
    let regenerated: Vec<String> = flow
        .internal_context
        .get("lookup_codes")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    if !regenerated.is_empty() {
        let shown: Vec<Message> = regenerated.iter().map(|c| text::lookup_secret(c)).collect();
        flow.ui.push(codes_node(&shown));
        flow.ui
            .push(submit("lookup_secret_confirm", text::lookup_confirm()));
        return;
    }
    let revealed = flow.internal_context.get("lookup_revealed") == Some(&Value::Bool(true));
    if revealed && let Some(codes) = revealed_codes(app, identity) {
        flow.ui.push(codes_node(&codes));
        flow.ui
            .push(submit("lookup_secret_disable", text::lookup_disable()));
        flow.ui
            .push(submit("lookup_secret_regenerate", text::lookup_regenerate()));
        return;
    }
    if has_lookup_set(identity) {
        flow.ui
            .push(submit("lookup_secret_reveal", text::lookup_reveal()));
        flow.ui
            .push(submit("lookup_secret_disable", text::lookup_disable()));
    } else {
        flow.ui
            .push(submit("lookup_secret_regenerate", text::lookup_regenerate()));
    }
}

fn codes_node(codes: &[Message]) -> Node {
    text_node(
        Group::LookupSecret,
        "lookup_secret_codes",
        text::lookup_codes_list(codes),
        text::lookup_codes_hint(),
    )
}

/// The identity's backup codes as the reveal shows them, if they can be opened.
fn revealed_codes(app: &App, identity: &Identity) -> Option<Vec<Message>> {
    let cred = identity.credentials.get(credential_type::LOOKUP_SECRET)?;
    let codes = sallyport_mfa::reveal_lookup_codes_with(&cred.config, &app.settings.cipher_secrets)?;
    Some(
        codes
            .into_iter()
            .map(|c| match (c.used, c.used_at) {
                (false, _) => text::lookup_secret(&c.code),
                (true, at) => text::lookup_secret_used(at.unwrap_or(time::OffsetDateTime::UNIX_EPOCH)),
            })
            .collect(),
    )
}

pub enum SettingsError {
    Flow(FlowFailure),
    ReAuth,
}

impl From<sallyport_core::store::StoreError> for SettingsError {
    fn from(e: sallyport_core::store::StoreError) -> Self {
        SettingsError::Flow(e.into())
    }
}

/// Which second-factor setting a body addresses, also when a plain form sent only the clicked button.
pub fn settings_method(body: &Map<String, Value>) -> Option<&'static str> {
    match str_field(body, "method") {
        Some("totp") => Some("totp"),
        Some("lookup_secret") => Some("lookup_secret"),
        Some(_) => None,
        None if flag(body, "totp_unlink") || body.contains_key("totp_code") => Some("totp"),
        None if [
            "lookup_secret_regenerate",
            "lookup_secret_confirm",
            "lookup_secret_disable",
            "lookup_secret_reveal",
        ]
        .iter()
        .any(|k| flag(body, k)) =>
        {
            Some("lookup_secret")
        }
        None => None,
    }
}

fn ui(messages: Vec<FieldMessage>) -> SettingsError {
    SettingsError::Flow(FlowFailure::Ui(messages))
}

/// Removing `removed` must not leave a policy-bound identity without any second factor.
pub(crate) fn guard_last_factor(app: &App, before: &Identity, after: &Identity) -> Result<(), SettingsError> {
    if requires_mfa(app, before) && has_second_factor(app, before) && !has_second_factor(app, after) {
        return Err(ui(vec![FieldMessage::flow(text::validation_generic(
            "Your account requires a second factor; set up another one before removing this one.",
        ))]));
    }
    Ok(())
}

pub(crate) async fn update_settings(
    app: &App,
    auth: &Authenticated,
    flow: &mut Flow,
    method: &str,
    body: &Map<String, Value>,
) -> Result<super::method::SettingsStep, SettingsError> {
    use super::method::SettingsStep as Outcome;
    if !super::settings::privileged(app, auth) {
        return Err(SettingsError::ReAuth);
    }
    let now = time_fmt::now();
    let mut identity = auth.identity.clone();
    // The factor this update enrols, if any: Kratos counts enrolling as using it.
    let mut enrolled = None;
    match method {
        "totp" if app.settings.totp_enabled => {
            if flag(body, "totp_unlink") {
                if !has_totp(&identity) {
                    return Err(ui(vec![FieldMessage::flow(text::validation_generic(
                        "You have no TOTP device set up.",
                    ))]));
                }
                identity.credentials.remove(credential_type::TOTP);
                guard_last_factor(app, &auth.identity, &identity)?;
            } else {
                if has_totp(&identity) {
                    return Err(ui(vec![FieldMessage::flow(text::validation_generic(
                        "A TOTP device is already linked; unlink it before linking another.",
                    ))]));
                }
                let code = str_field(body, "totp_code").unwrap_or("").trim();
                if code.is_empty() {
                    return Err(ui(vec![FieldMessage::on(
                        "totp_code",
                        text::validation_required("totp_code"),
                    )]));
                }
                let url = flow
                    .internal_context
                    .get("totp_url")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let key = sallyport_mfa::parse_totp_url(&url).map_err(|_| {
                    ui(vec![FieldMessage::flow(text::validation_generic(
                        "The TOTP setup expired; reload the settings.",
                    ))])
                })?;
                let Some(step) = sallyport_mfa::verify_totp(&key, code, now, None) else {
                    return Err(ui(vec![FieldMessage::on("totp_code", text::totp_invalid())]));
                };
                let mut config = sallyport_mfa::totp_credential_config(&key.url);
                config["last_used_step"] = json!(step);
                identity.set_credential(credential_type::TOTP, vec![identity.id.to_string()], config, now);
                if let Some(o) = flow.internal_context.as_object_mut() {
                    o.remove("totp_url");
                }
                enrolled = Some(credential_type::TOTP);
            }
        }
        "lookup_secret" if app.settings.lookup_enabled => {
            if let Some(o) = flow.internal_context.as_object_mut() {
                o.remove("lookup_revealed");
            }
            if flag(body, "lookup_secret_regenerate") {
                flow.internal_context["lookup_codes"] = json!(sallyport_mfa::generate_lookup_codes());
                super::settings::populate(app, flow, &identity);
                flow.ui.messages.clear();
                return Ok(Outcome::Shown);
            }
            if flag(body, "lookup_secret_reveal") {
                if !has_lookup_set(&identity) {
                    return Err(ui(vec![FieldMessage::flow(text::validation_generic(
                        "Can not reveal lookup codes because you have none.",
                    ))]));
                }
                if revealed_codes(app, &identity).is_none() {
                    // Codes confirmed before they were stored sealed exist only as hashes.
                    return Err(ui(vec![FieldMessage::flow(text::validation_generic(
                        "These backup recovery codes were stored hashed only and cannot be shown again; generate new ones.",
                    ))]));
                }
                flow.internal_context["lookup_revealed"] = json!(true);
                super::settings::populate(app, flow, &identity);
                flow.ui.messages.clear();
                return Ok(Outcome::Shown);
            }
            if flag(body, "lookup_secret_confirm") {
                let codes: Vec<String> = flow
                    .internal_context
                    .get("lookup_codes")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_owned)).collect())
                    .unwrap_or_default();
                if codes.is_empty() {
                    return Err(ui(vec![FieldMessage::flow(text::validation_generic(
                        "Generate new backup recovery codes first.",
                    ))]));
                }
                let config = sallyport_mfa::lookup_credential_config_sealed(
                    &codes,
                    &app.settings.cookie_secrets[0],
                    &app.settings.cipher_secrets[0],
                );
                identity.set_credential(
                    credential_type::LOOKUP_SECRET,
                    vec![identity.id.to_string()],
                    config,
                    now,
                );
                if let Some(o) = flow.internal_context.as_object_mut() {
                    o.remove("lookup_codes");
                }
                enrolled = Some(credential_type::LOOKUP_SECRET);
            } else if flag(body, "lookup_secret_disable") {
                identity.credentials.remove(credential_type::LOOKUP_SECRET);
                guard_last_factor(app, &auth.identity, &identity)?;
            } else {
                return Err(ui(vec![FieldMessage::flow(text::validation_generic(
                    "Choose what to do with your backup recovery codes.",
                ))]));
            }
        }
        _ => {
            return Err(ui(vec![FieldMessage::flow(text::validation_generic(
                "Could not find a strategy to update your settings with. Did you fill out the form correctly?",
            ))]));
        }
    }
    identity.available_aal = identity.compute_available_aal(app.settings.code_mfa_enabled);
    identity.updated_at = now;
    app.store.update_identity(&identity).await?;
    if let Some(m) = enrolled {
        // Kratos `SessionAddAuthenticationMethods`: the current session gains the factor at aal2, so
        // `highest_available` (or the MFA policy) does not send the user to a second-factor prompt
        // right after enrolling.
        let mut session = auth.session.clone();
        session.complete_method(m, sallyport_core::session::Aal::Aal2, now);
        session.updated_at = now;
        app.store.update_session(&session).await?;
    }
    Ok(Outcome::Saved(Box::new(identity)))
}

// ---------------- login at aal2 ----------------

pub fn populate_totp_login(app: &App, flow: &mut Flow, identity: &Identity) {
    if app.settings.totp_enabled && has_totp(identity) {
        flow.ui.push(
            Node::input(Group::Totp, "totp_code", "text")
                .required()
                .with_autocomplete("one-time-code")
                .with_label(text::label_auth_code()),
        );
        flow.ui.push(Node::submit(
            Group::Totp,
            "method",
            "totp",
            text::login_use_authenticator(),
        ));
    }
}

pub fn populate_lookup_login(app: &App, flow: &mut Flow, identity: &Identity) {
    if app.settings.lookup_enabled && has_lookup(identity) {
        flow.ui.push(
            Node::input(Group::LookupSecret, "lookup_secret", "text")
                .required()
                .with_label(text::label_backup_code()),
        );
        flow.ui.push(Node::submit(
            Group::LookupSecret,
            "method",
            "lookup_secret",
            text::login_use_backup_code(),
        ));
    }
}

/// `{method: totp|lookup_secret}` on an aal2 login flow: the identity when the factor checks out.
pub async fn login(
    app: &App,
    req: &ReqInfo,
    flow: &Flow,
    body: &Map<String, Value>,
    auth: &Authenticated,
    method: &str,
) -> Result<Identity, FlowFailure> {
    ensure_csrf(app, req, flow, str_field(body, "csrf_token"))?;
    let now = time_fmt::now();
    let mut identity = app.store.get_identity(auth.identity.id).await?;
    let field = if method == "totp" {
        "totp_code"
    } else {
        "lookup_secret"
    };
    // Counted before it is checked, apart from code and password budgets (Sallyport's own limit).
    let guess = if str_field(body, field).is_some_and(|c| !c.trim().is_empty()) {
        crate::rate_limit::second_factor_guess(app, identity.id).await?
    } else {
        None
    };
    match method {
        "totp" => {
            let code = str_field(body, "totp_code").unwrap_or("").trim();
            if code.is_empty() {
                return Err(FlowFailure::Ui(vec![FieldMessage::on(
                    "totp_code",
                    text::validation_required("totp_code"),
                )]));
            }
            // Kratos (`strategy/totp/login.go`) reports these on the flow (`#/`), not on `totp_code`.
            let cred = identity.credentials.get(credential_type::TOTP).cloned();
            let invalid = || FlowFailure::Ui(vec![FieldMessage::flow(text::totp_invalid())]);
            let Some(mut cred) = cred.filter(|_| has_totp(&identity)) else {
                return Err(FlowFailure::Ui(vec![FieldMessage::flow(text::totp_no_device())]));
            };
            let key = sallyport_mfa::totp_url_from_config(&cred.config)
                .and_then(|u| sallyport_mfa::parse_totp_url(&u).ok())
                .ok_or_else(invalid)?;
            let last = cred.config.get("last_used_step").and_then(Value::as_i64);
            // Beyond Kratos: a code is refused once its time step was used, so it cannot be replayed.
            let step = sallyport_mfa::verify_totp(&key, code, now, last).ok_or_else(invalid)?;
            cred.config["last_used_step"] = json!(step);
            cred.updated_at = now;
            identity.credentials.insert(credential_type::TOTP.into(), cred);
        }
        _ => {
            let candidate = str_field(body, "lookup_secret").unwrap_or("").trim();
            if candidate.is_empty() {
                return Err(FlowFailure::Ui(vec![FieldMessage::on(
                    "lookup_secret",
                    text::validation_required("lookup_secret"),
                )]));
            }
            // As Kratos (`strategy/lookup/login.go`): every outcome is a flow message (`#/`).
            let Some(mut cred) = identity.credentials.get(credential_type::LOOKUP_SECRET).cloned() else {
                return Err(FlowFailure::Ui(vec![FieldMessage::flow(text::lookup_none())]));
            };
            match sallyport_mfa::verify_lookup_code(
                &cred.config,
                candidate,
                &app.settings.cookie_secrets,
                now,
            ) {
                sallyport_mfa::LookupResult::Valid { updated_config } => {
                    cred.config = updated_config;
                    cred.updated_at = now;
                    identity
                        .credentials
                        .insert(credential_type::LOOKUP_SECRET.into(), cred);
                }
                sallyport_mfa::LookupResult::AlreadyUsed => {
                    return Err(FlowFailure::Ui(vec![FieldMessage::flow(text::lookup_used())]));
                }
                sallyport_mfa::LookupResult::Invalid => {
                    return Err(FlowFailure::Ui(vec![FieldMessage::flow(text::lookup_invalid())]));
                }
            }
        }
    }
    if let Some(g) = guess {
        g.was_right(app).await;
    }
    identity.updated_at = now;
    app.store.update_identity(&identity).await?;
    Ok(identity)
}
