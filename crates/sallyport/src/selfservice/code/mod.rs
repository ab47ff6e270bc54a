//! The `code` method (Kratos `selfservice/strategy/code`): six-digit codes by email or SMS for login,
//! registration, recovery and verification. Codes are stored only as keyed digests and used once.

pub mod login;
pub mod registration;

use serde_json::{Value, json};

use sallyport_core::code::{CodeKind, OneTimeCode, code_digest};
use sallyport_core::courier::Message;
use sallyport_core::flow::Flow;
use sallyport_core::secret::random_digits;
use sallyport_core::text::{self, Message as UiMessage};
use sallyport_core::time_fmt;
use sallyport_core::ui::{Group, Node};
use uuid::Uuid;

use crate::selfservice::common::{FieldMessage, FlowFailure};
use crate::state::App;

pub const CODE_LENGTH: usize = 6;

/// Where a code goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub via: String,
    pub to: String,
}

pub fn generate() -> String {
    random_digits(CODE_LENGTH)
}

/// A six-digit code, or for the `link` method a 32-character token (~190 bits).
pub fn generate_secret(link: bool) -> String {
    if link {
        sallyport_core::secret::random_alnum(32)
    } else {
        generate()
    }
}

/// The digests a submitted code may have been stored under (one per configured secret).
pub fn digests(app: &App, code: &str) -> Vec<String> {
    app.settings
        .cookie_secrets
        .iter()
        .map(|s| code_digest(s, code.trim()))
        .collect()
}

pub fn new_code(
    app: &App,
    flow: &Flow,
    kind: CodeKind,
    to: &Address,
    identity_id: Option<Uuid>,
    code: &str,
) -> OneTimeCode {
    let now = time_fmt::now();
    let lifespan = time::Duration::try_from(app.settings.code.lifespan).unwrap_or(time::Duration::HOUR);
    OneTimeCode {
        id: Uuid::new_v4(),
        flow_id: flow.id,
        kind,
        digest: code_digest(&app.settings.cookie_secrets[0], code),
        address: to.to.clone(),
        address_type: to.via.clone(),
        identity_id,
        expires_at: now + lifespan,
        used_at: None,
        created_at: now,
    }
}

/// Codes and their messages for every address: one code per address, as Kratos does.
pub fn codes_for(
    app: &App,
    flow: &Flow,
    kind: CodeKind,
    identity_id: Option<Uuid>,
    addresses: &[Address],
    template: &str,
    model: impl Fn(&Address, &str) -> Value,
) -> Result<(Vec<OneTimeCode>, Vec<Message>), FlowFailure> {
    let mut codes = vec![];
    let mut messages = vec![];
    for a in addresses {
        let code = generate();
        codes.push(new_code(app, flow, kind, a, identity_id, &code));
        messages.push(crate::courier::message(
            app,
            &a.via,
            &a.to,
            template,
            &model(a, &code),
        )?);
    }
    Ok((codes, messages))
}

pub fn code_input(label: UiMessage) -> Node {
    Node::input(Group::Code, "code", "text")
        .required()
        .with_autocomplete("one-time-code")
        .with_label(label)
}

pub fn hidden_method() -> Node {
    Node::input(Group::Code, "method", "hidden").with_value(json!("code"))
}

pub fn continue_button() -> Node {
    Node::submit(Group::Code, "method", "code", text::label_continue())
}

pub fn resend_button() -> Node {
    Node::submit(Group::Code, "resend", "code", text::label_resend_code())
}

pub fn too_often() -> FlowFailure {
    FlowFailure::Ui(vec![FieldMessage::flow(text::submitted_too_often())])
}

/// Counts a code submission against `max_submissions`; Kratos never resets the count on resend.
pub async fn count_attempt(app: &App, flow: &Flow) -> Result<(), FlowFailure> {
    let n = app.store.count_submission(flow.id).await?;
    if n as u32 > app.settings.code.max_submissions {
        Err(too_often())
    } else {
        Ok(())
    }
}

/// Normalises what a user typed as an address: emails are lower-cased, phone numbers go to E.164.
pub fn normalize(identifier: &str) -> String {
    let t = identifier.trim();
    if t.contains('@') {
        t.to_lowercase()
    } else {
        sallyport_schema::normalize_identifier(t, None)
    }
}
