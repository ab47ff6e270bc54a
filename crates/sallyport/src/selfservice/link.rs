//! Account linking after a duplicate (Kratos `selfservice/flow/login` "link credentials"): a social
//! registration that collided with an existing account leaves its new credentials on the login flow it
//! sends the person to; signing in there proves the existing account, and only then are they added.
//! Nothing is merged unless the signed-in identity owns the colliding identifier.

use serde_json::{Value, json};

use sallyport_core::flow::Flow;
use sallyport_core::identity::Identity;
use sallyport_core::store::StoreError;
use sallyport_core::text;
use sallyport_core::time_fmt;

use crate::selfservice::common::{FieldMessage, FlowFailure};
use crate::state::App;

const KEY: &str = "link_credentials";

/// Keeps `attempted`'s credentials (types other than password) on the login `flow`.
pub fn stash(flow: &mut Flow, attempted: &Identity, duplicate_identifier: &str) {
    let credentials: Vec<Value> = attempted
        .credentials
        .values()
        .filter(|c| c.cred_type == sallyport_core::identity::credential_type::OIDC)
        .map(|c| json!({"type": c.cred_type, "identifiers": c.identifiers, "config": c.config}))
        .collect();
    if !credentials.is_empty() {
        flow.internal_context[KEY] = json!({
            "credentials": credentials,
            "duplicate_identifier": duplicate_identifier,
        });
    }
}

fn owns(identity: &Identity, identifier: &str) -> bool {
    let same = |v: &str| v.eq_ignore_ascii_case(identifier);
    identity
        .credentials
        .values()
        .any(|c| c.identifiers.iter().any(|i| same(i)))
        || identity.verifiable_addresses.iter().any(|a| same(&a.value))
        || identity.recovery_addresses.iter().any(|a| same(&a.value))
}

/// After a successful login on `flow`: adds the stashed credentials to `identity` if it owns the
/// duplicate identifier, and takes them off the flow either way.
pub async fn apply(app: &App, flow: &mut Flow, mut identity: Identity) -> Result<Identity, FlowFailure> {
    let Some(stashed) = flow.internal_context.as_object_mut().and_then(|o| o.remove(KEY)) else {
        return Ok(identity);
    };
    let duplicate = stashed["duplicate_identifier"].as_str().unwrap_or("");
    if duplicate.is_empty() || !owns(&identity, duplicate) {
        return Ok(identity);
    }
    let now = time_fmt::now();
    for c in stashed["credentials"].as_array().into_iter().flatten() {
        let Some(kind) = c["type"].as_str() else { continue };
        let new_ids: Vec<String> = c["identifiers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect();
        let new_providers = c["config"]["providers"].as_array().cloned().unwrap_or_default();
        let (mut ids, mut providers) = match identity.credentials.get(kind) {
            Some(existing) => (
                existing.identifiers.clone(),
                existing.config["providers"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            ),
            None => (vec![], vec![]),
        };
        ids.extend(
            new_ids
                .into_iter()
                .filter(|i| !identity.credentials.values().any(|c| c.identifiers.contains(i))),
        );
        providers.extend(new_providers);
        identity.set_credential(kind, ids, json!({ "providers": providers }), now);
    }
    identity.updated_at = now;
    match app.store.update_identity(&identity).await {
        Ok(()) => Ok(identity),
        Err(StoreError::Conflict(_)) => Err(FlowFailure::Ui(vec![FieldMessage::flow(
            text::validation_duplicate_credentials(),
        )])),
        Err(e) => Err(e.into()),
    }
}
