//! Reading a blocking hook's answer (Kratos `parseWebhookResponse`): a 4xx/5xx with
//! `{"messages":[{"instance_ptr","messages":[{id,text,type,context}]}]}` interrupts the flow with
//! those messages on the named nodes; a 200 with `{"identity":{…}}` changes the identity before it is
//! stored (traits, metadata, state).

use serde::Deserialize;
use serde_json::Value;

use sallyport_core::identity::{Identity, IdentityState};
use sallyport_core::text::{Message, MessageType};

use super::call::Answer;
use super::config::WebHook;
use super::{FlowFailure, upstream_error};
use crate::selfservice::common::FieldMessage;
use crate::state::App;

#[derive(Deserialize)]
struct Detailed {
    #[serde(default)]
    id: u32,
    #[serde(default)]
    text: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    context: Option<Value>,
}

#[derive(Deserialize)]
struct ErrorMessage {
    #[serde(default)]
    instance_ptr: String,
    #[serde(default)]
    messages: Vec<Detailed>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    messages: Vec<ErrorMessage>,
}

/// `#/traits/email` → `traits.email`; `#/`, `#` or `` → the flow itself.
fn node_name(ptr: &str) -> Option<String> {
    let p = ptr.trim_start_matches('#').trim_start_matches('/');
    (!p.is_empty()).then(|| p.replace('/', "."))
}

/// The failure an error answer of an interrupting hook puts on the flow.
pub fn interrupt(answer: &Answer) -> FlowFailure {
    let Ok(body) = serde_json::from_slice::<ErrorBody>(&answer.body) else {
        return upstream_error(
            502,
            "webhook response could not be unmarshalled properly from JSON",
        );
    };
    let mut out = vec![];
    for m in body.messages {
        let field = node_name(&m.instance_ptr);
        for d in m.messages {
            let message = Message {
                id: d.id,
                text: d.text,
                kind: if d.kind == "error" {
                    MessageType::Error
                } else {
                    MessageType::Info
                },
                context: d.context.filter(|c| !c.is_null()),
            };
            out.push(FieldMessage {
                field: field.clone(),
                message,
            });
        }
    }
    if out.is_empty() {
        return upstream_error(
            502,
            "error while parsing webhook response: got no validation errors",
        );
    }
    FlowFailure::Ui(out)
}

#[derive(Deserialize)]
struct ParseBody {
    #[serde(default)]
    identity: Option<IdentityPatch>,
}

#[derive(Deserialize)]
struct IdentityPatch {
    #[serde(default)]
    traits: Option<Value>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    metadata_public: Option<Value>,
    #[serde(default)]
    metadata_admin: Option<Value>,
}

fn non_empty(v: Option<Value>) -> Option<Value> {
    v.filter(|v| match v {
        Value::Null => false,
        Value::Object(o) => !o.is_empty(),
        _ => true,
    })
}

/// Applies a `response.parse` answer (200 with a body; 204 and others change nothing).
pub fn apply(
    app: &App,
    hook: &WebHook,
    answer: Answer,
    identity: Option<&mut Identity>,
) -> Result<(), FlowFailure> {
    let Some(identity) = identity else {
        return Ok(());
    };
    if answer.status != 200 {
        return Ok(());
    }
    let parsed: ParseBody = serde_json::from_slice(&answer.body).map_err(|_| {
        tracing::warn!(hook = %hook.label, "web hook answer is not the expected JSON");
        upstream_error(
            502,
            "webhook response could not be unmarshalled properly from JSON",
        )
    })?;
    let Some(p) = parsed.identity else {
        return Ok(());
    };
    if let Some(traits) = non_empty(p.traits) {
        crate::identities::apply_traits(app, identity, traits)
            .map_err(|e| FlowFailure::Ui(crate::identities::trait_errors(e)))?;
    }
    match p.state.as_deref() {
        Some("active") => identity.state = IdentityState::Active,
        Some("inactive") => identity.state = IdentityState::Inactive,
        Some(s) if !s.is_empty() => {
            return Err(upstream_error(
                502,
                format!("the web hook set an unknown identity state {s:?}"),
            ));
        }
        _ => {}
    }
    if let Some(m) = non_empty(p.metadata_public) {
        identity.metadata_public = Some(m);
    }
    if let Some(m) = non_empty(p.metadata_admin) {
        identity.metadata_admin = Some(m);
    }
    Ok(())
}
