//! What the `passkey` and `webauthn` methods share: their credential configs on the identity, the
//! ceremony state in the flow's internal context, their nodes, and how ceremony errors read.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde_json::{Value, json};

use sallyport_core::error::ApiError;
use sallyport_core::flow::{Flow, FlowType};
use sallyport_core::identity::{Identity, credential_type};
use sallyport_core::text;
use sallyport_core::ui::{Group, Node};
use sallyport_webauthn::{Error as CeremonyError, WebAuthnConfig};

use crate::selfservice::common::{FieldMessage, FlowFailure};
use crate::state::App;

/// The credential config of `kind` (`passkey` or `webauthn`) on the identity, empty if none.
pub fn config(identity: &Identity, kind: &str) -> WebAuthnConfig {
    identity
        .credentials
        .get(kind)
        .map(|c| WebAuthnConfig::from_value(&c.config))
        .unwrap_or_default()
}

/// Writes `cfg` back as the identity's `kind` credential, or drops the credential when it holds none.
pub fn store_config(identity: &mut Identity, kind: &str, cfg: &WebAuthnConfig, identifiers: Vec<String>) {
    if cfg.credentials.is_empty() {
        identity.credentials.remove(kind);
        return;
    }
    identity.set_credential(kind, identifiers, cfg.to_value(), sallyport_core::time_fmt::now());
}

/// A ceremony's state lives in the flow under `<method>_session_data` (Kratos' internal context
/// key); the user handle it was started for sits beside it.
pub struct Ceremony<'a> {
    pub method: &'a str,
}

impl Ceremony<'_> {
    fn key(&self, suffix: &str) -> String {
        format!("{}_{suffix}", self.method)
    }

    pub fn save(&self, flow: &mut Flow, state: Value, user_handle: Option<&[u8]>) {
        if !flow.internal_context.is_object() {
            flow.internal_context = json!({});
        }
        flow.internal_context[self.key("session_data")] = state;
        if let Some(h) = user_handle {
            flow.internal_context[self.key("user_handle")] = json!(B64URL.encode(h));
        }
    }

    pub fn state(&self, flow: &Flow) -> Option<Value> {
        flow.internal_context
            .get(self.key("session_data"))
            .filter(|v| v.is_object())
            .cloned()
    }

    pub fn user_handle(&self, flow: &Flow) -> Option<Vec<u8>> {
        flow.internal_context
            .get(self.key("user_handle"))
            .and_then(Value::as_str)
            .and_then(|s| B64URL.decode(s).ok())
    }

    /// Options kept so a re-rendered form shows the same challenge.
    pub fn options(&self, flow: &Flow) -> Option<Value> {
        flow.internal_context
            .get(self.key("session_options"))
            .filter(|v| v.is_object())
            .cloned()
    }

    pub fn save_options(&self, flow: &mut Flow, options: Value) {
        flow.internal_context[self.key("session_options")] = options;
    }

    /// A challenge answers once: it is gone after it was used.
    pub fn forget(&self, flow: &mut Flow) {
        if let Some(o) = flow.internal_context.as_object_mut() {
            for k in ["session_data", "user_handle", "session_options"] {
                o.remove(&self.key(k));
            }
        }
    }
}

/// A hidden input carrying `value` (JSON options are sent as a string, as Kratos does).
pub fn hidden(group: Group, name: &str, value: Option<String>) -> Node {
    let mut n = Node::input(group, name, "hidden");
    if let Some(v) = value {
        n = n.with_value(Value::String(v));
    }
    n
}

/// A button naming the `webauthn.js` function to run: the `onclick` code only on browser flows
/// (native apps get the trigger name alone).
pub fn trigger(
    group: Group,
    name: &str,
    flow_type: FlowType,
    function: &str,
    call_args: &str,
    label: text::Message,
) -> Node {
    let mut n = Node::input(group, name, "button").with_label(label);
    if let Some(a) = n.input_mut() {
        a.onclick_trigger = Some(function.into());
        if flow_type == FlowType::Browser {
            a.onclick = Some(format!("window.{function}({call_args})"));
        }
    }
    n
}

pub fn push_script(app: &App, flow: &mut Flow) {
    if flow.flow_type == FlowType::Browser
        && !flow.ui.nodes.iter().any(crate::public::webauthn::is_script_node)
    {
        flow.ui.push(crate::public::webauthn::script_node(
            &app.settings.public_base_url,
        ));
    }
}

/// The trait paths (`traits.email`) a passkey is named after: those flagged `passkey.display_name`,
/// else those flagged `webauthn.identifier` (Kratos `PasskeyDisplayNameFromSchema`).
pub fn display_name_fields(app: &App, schema_id: &str) -> Vec<String> {
    fn walk(v: &Value, path: &str, flag: &str, out: &mut Vec<String>) {
        let Some(props) = v.get("properties").and_then(Value::as_object) else {
            return;
        };
        for (k, p) in props {
            let here = format!("{path}.{k}");
            let flagged = p
                .pointer(&format!("/ory.sh~1kratos/credentials/{flag}"))
                .and_then(Value::as_bool)
                == Some(true);
            if flagged {
                out.push(here.clone());
            }
            walk(p, &here, flag, out);
        }
    }
    let Some(schema) = app.schemas.get(schema_id) else {
        return vec![];
    };
    let Some(traits) = schema.raw.pointer("/properties/traits") else {
        return vec![];
    };
    for flag in ["passkey/display_name", "webauthn/identifier"] {
        let mut out = vec![];
        walk(traits, "traits", flag, &mut out);
        if !out.is_empty() {
            return out;
        }
    }
    vec![]
}

/// The name a new passkey is registered under: the display-name trait, else a WebAuthn identifier.
pub fn display_name(app: &App, identity: &Identity) -> String {
    app.schemas
        .get(&identity.schema_id)
        .and_then(|s| s.validate_traits(&identity.traits).ok())
        .and_then(|e| {
            e.passkey_display_name
                .or_else(|| e.webauthn_identifiers.into_iter().next())
        })
        .unwrap_or_default()
}

/// Kratos `CountActiveFirstFactorCredentials`: what the identity could still sign in with.
pub fn first_factor_count(app: &App, identity: &Identity) -> usize {
    let c = &identity.credentials;
    let password = c
        .get(credential_type::PASSWORD)
        .and_then(|p| p.config.get("hashed_password"))
        .and_then(Value::as_str)
        .is_some_and(|h| !h.is_empty()) as usize;
    let oidc = c
        .get(credential_type::OIDC)
        .and_then(|o| o.config.get("providers"))
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let passkeys = config(identity, credential_type::PASSKEY).credentials.len();
    let webauthn = if app.settings.webauthn.as_ref().is_some_and(|w| w.passwordless) {
        config(identity, credential_type::WEBAUTHN)
            .credentials
            .iter()
            .filter(|c| c.is_passwordless)
            .count()
    } else {
        0
    };
    let code = (app.settings.code.passwordless_enabled
        && c.get(credential_type::CODE)
            .is_some_and(|c| !c.identifiers.is_empty())) as usize;
    password + oidc + passkeys + webauthn + code
}

/// How a failed ceremony reads on the flow. Unparsable input is Kratos' 400; everything else is
/// a message, never a server error.
pub fn login_failure(e: CeremonyError) -> FlowFailure {
    tracing::debug!(reason = %e, "WebAuthn assertion refused");
    match e {
        CeremonyError::Malformed(_) => {
            FlowFailure::Api(ApiError::bad_request("Unable to parse WebAuthn response."))
        }
        CeremonyError::Config(_) => FlowFailure::Api(ApiError::internal()),
        _ => FlowFailure::Ui(vec![FieldMessage::flow(text::webauthn_verifier_wrong())]),
    }
}

pub fn registration_failure(e: CeremonyError) -> FlowFailure {
    tracing::debug!(reason = %e, "WebAuthn registration refused");
    match e {
        CeremonyError::Malformed(reason) => FlowFailure::Api(ApiError::bad_request(format!(
            "Unable to parse WebAuthn response: {reason}"
        ))),
        CeremonyError::Config(_) => FlowFailure::Api(ApiError::internal()),
        CeremonyError::NoCeremony => FlowFailure::Ui(vec![FieldMessage::flow(text::validation_generic(
            "The WebAuthn registration expired or was already used; start again.",
        ))]),
        // Kratos answers 500 here; a refused attestation is the client's doing, so it is a message.
        CeremonyError::Rejected(reason) => FlowFailure::Ui(vec![FieldMessage::flow(
            text::validation_generic(&format!("Unable to create WebAuthn credential: {reason}")),
        )]),
        CeremonyError::UnknownCredential => FlowFailure::Ui(vec![FieldMessage::flow(
            text::validation_generic("Unable to create WebAuthn credential."),
        )]),
    }
}
