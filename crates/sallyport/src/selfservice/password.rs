//! The `password` method (Kratos `selfservice/strategy/password`): its nodes, login and registration.

use serde_json::{Map, Value, json};

use sallyport_core::flow::Flow;
use sallyport_core::identity::{Identity, credential_type};
use sallyport_core::store::StoreError;
use sallyport_core::text;
use sallyport_core::time_fmt;
use sallyport_core::ui::{Group, Node};
use sallyport_password::PolicyViolation;

use crate::http::body::str_field;
use crate::http::error::store_error;
use crate::http::request::ReqInfo;
use crate::selfservice::common::{FieldMessage, FlowFailure, ensure_csrf};
use crate::state::App;

/// Login nodes; on `refresh` the identifier is fixed to the signed-in identity's.
pub fn populate_login(app: &App, flow: &mut Flow, refresh_identifier: Option<String>) {
    let identifier = match &refresh_identifier {
        Some(id) => Node::input(Group::Default, "identifier", "hidden").with_value(json!(id)),
        None => Node::input(Group::Default, "identifier", "text")
            .required()
            .with_value(json!(""))
            .with_label(identifier_label(app, flow)),
    };
    // Kratos renders the identifier before the CSRF token on a first-factor login.
    let at = if refresh_identifier.is_some() {
        flow.ui.nodes.len()
    } else {
        0
    };
    flow.ui.nodes.insert(at, identifier);
    flow.ui.push(
        Node::input(Group::Password, "password", "password")
            .required()
            .with_autocomplete("current-password")
            .with_label(text::label_password()),
    );
    let label = if refresh_identifier.is_some() {
        text::login_sign_in()
    } else {
        text::login_with_password()
    };
    flow.ui
        .push(Node::submit(Group::Password, "method", "password", label));
}

pub fn password_node_for_registration() -> Node {
    Node::input(Group::Password, "password", "password")
        .required()
        .with_autocomplete("new-password")
        .with_label(text::label_password())
}

pub fn registration_submit() -> Node {
    Node::submit(
        Group::Password,
        "method",
        "password",
        text::registration_sign_up(),
    )
}

fn required(field: &str) -> FieldMessage {
    FieldMessage::on(field, text::validation_required(field))
}

/// Checks identifier and password; unknown identifiers cost as much time as wrong passwords.
pub async fn login(
    app: &App,
    req: &ReqInfo,
    flow: &Flow,
    body: &Map<String, Value>,
) -> Result<Identity, FlowFailure> {
    let identifier = str_field(body, "identifier")
        .or(str_field(body, "password_identifier"))
        .unwrap_or("");
    let password = str_field(body, "password").unwrap_or("");
    let mut missing = vec![];
    if identifier.is_empty() {
        missing.push(required("identifier"));
    }
    if password.is_empty() {
        missing.push(required("password"));
    }
    if !missing.is_empty() {
        return Err(FlowFailure::Ui(missing));
    }
    ensure_csrf(app, req, flow, str_field(body, "csrf_token"))?;
    let key = sallyport_schema::normalize_identifier(identifier.trim(), None).to_lowercase();
    let attempt = crate::rate_limit::PasswordAttempt::start(app, &key).await?;

    let invalid = || FlowFailure::Ui(vec![FieldMessage::flow(text::validation_invalid_credentials())]);
    let identity = match find_by_identifier(app, identifier).await? {
        Some(i) => i,
        None => {
            app.hasher.verify_dummy(password.as_bytes()).await;
            attempt.failed(app).await;
            return Err(invalid());
        }
    };
    let Some(hash) = identity
        .credentials
        .get(credential_type::PASSWORD)
        .and_then(|c| c.config.get("hashed_password"))
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        app.hasher.verify_dummy(password.as_bytes()).await;
        attempt.failed(app).await;
        return Err(invalid());
    };
    let started = std::time::Instant::now();
    let ok = app
        .hasher
        .verify(password.as_bytes(), &hash)
        .await
        .unwrap_or(false);
    metrics::histogram!("sallyport_password_hash_seconds", "op" => "verify")
        .record(started.elapsed().as_secs_f64());
    if !ok {
        attempt.failed(app).await;
        return Err(invalid());
    }
    attempt.succeeded(app).await;
    if app.hasher.needs_rehash(&hash) {
        rehash(app, identity.clone(), password).await;
    }
    Ok(identity)
}

/// Upgrades an imported or outdated hash after a successful login; failure only costs the upgrade.
async fn rehash(app: &App, mut identity: Identity, password: &str) {
    let Ok(new_hash) = app.hasher.hash(password.as_bytes()).await else {
        return;
    };
    if let Some(c) = identity.credentials.get_mut(credential_type::PASSWORD) {
        c.config = json!({ "hashed_password": new_hash });
        c.updated_at = time_fmt::now();
    }
    if let Err(e) = app.store.update_identity(&identity).await {
        tracing::warn!(error = %e, identity_id = %identity.id, "could not store the re-hashed password");
    }
}

async fn find_by_identifier(app: &App, identifier: &str) -> Result<Option<Identity>, FlowFailure> {
    let candidates = [
        identifier.to_owned(),
        sallyport_schema::normalize_identifier(identifier, None),
    ];
    for c in candidates.iter() {
        match app
            .store
            .find_identity_by_identifier(credential_type::PASSWORD, c)
            .await
        {
            Ok(i) => return Ok(Some(i)),
            Err(StoreError::NotFound) => continue,
            Err(e) => return Err(FlowFailure::Api(store_error(e))),
        }
    }
    Ok(None)
}

pub fn policy_message(v: &PolicyViolation) -> text::Message {
    match v {
        PolicyViolation::TooShort { min, actual } => {
            text::validation_password_min_length(*min as u64, *actual as u64)
        }
        PolicyViolation::TooLong { max, actual } => {
            text::validation_password_max_length(*max as u64, *actual as u64)
        }
        PolicyViolation::TooSimilar => text::validation_password_too_similar(),
        PolicyViolation::Breached { count } => text::validation_password_breached(*count),
        other => text::validation_password_policy_generic(&other.to_string()),
    }
}

/// Validates the password against the policy and hashes it into a `password` credential on `identity`.
pub async fn set_password(
    app: &App,
    identity: &mut Identity,
    identifiers: Vec<String>,
    password: &str,
) -> Result<(), FlowFailure> {
    if password.is_empty() {
        return Err(FlowFailure::Ui(vec![required("password")]));
    }
    let first = identifiers.first().cloned().unwrap_or_default();
    if let Err(v) = app.policy.validate(&first, password).await {
        return Err(FlowFailure::Ui(vec![FieldMessage::on(
            "password",
            policy_message(&v),
        )]));
    }
    let started = std::time::Instant::now();
    let hash = match app.hasher.hash(password.as_bytes()).await {
        Ok(h) => h,
        Err(sallyport_password::HashError::PasswordTooLong { max, actual }) => {
            return Err(FlowFailure::Ui(vec![FieldMessage::on(
                "password",
                text::validation_password_max_length(max as u64, actual as u64),
            )]));
        }
        Err(e) => return Err(FlowFailure::Api(crate::http::error::internal(e))),
    };
    metrics::histogram!("sallyport_password_hash_seconds", "op" => "hash")
        .record(started.elapsed().as_secs_f64());
    identity.set_credential(
        credential_type::PASSWORD,
        identifiers,
        json!({ "hashed_password": hash }),
        time_fmt::now(),
    );
    Ok(())
}

/// Kratos `login.GetIdentifierLabelFromSchema`: the title of the flow schema's only identifier trait
/// (1070002), else "ID" (1070004).
pub fn identifier_label(app: &App, flow: &Flow) -> text::Message {
    let id = flow
        .identity_schema
        .as_deref()
        .unwrap_or(&app.settings.default_schema_id);
    app.schemas
        .get(id)
        .map(|s| s.identifier_label())
        .unwrap_or_else(text::label_id)
}
