//! Completing a social sign-up whose mapped traits the identity schema refuses (Kratos' oidc
//! `handleError` for registration flows): the flow is shown again with only the trait fields — filled
//! with what the provider gave, each with the schema's message — and a "Continue" button for the same
//! provider. Submitting it goes through the provider once more, and the typed traits override the
//! provider's.

use serde_json::Value;

use sallyport_core::flow::{Flow, FlowKind};
use sallyport_core::identity::Identity;
use sallyport_core::text;
use sallyport_core::time_fmt;
use sallyport_core::ui::{Group, Node};
use sallyport_oidc::{Authenticated, IdentityContext, Provider, VerifiedAddress};
use time::OffsetDateTime;

use super::{Body, SUBMITTED_TRAITS, api_error};
use crate::identities::{apply_traits, trait_errors};
use crate::selfservice::common::FlowFailure;
use crate::state::App;

/// Keeps the traits a registration form sent with the provider, for the callback to merge.
pub(super) fn keep_submitted(flow: &mut Flow, body: &Body) {
    if flow.kind != FlowKind::Registration {
        return;
    }
    match body.get("traits") {
        Some(t @ Value::Object(_)) => flow.internal_context[SUBMITTED_TRAITS] = t.clone(),
        _ => {
            if let Some(o) = flow.internal_context.as_object_mut() {
                o.remove(SUBMITTED_TRAITS);
            }
        }
    }
}

/// The provider's traits with the submitted ones laid over them: a submitted leaf wins unless it is
/// empty (`""` or null), objects merge key by key (Kratos: mergo with override).
pub(super) fn merge(provider: Value, submitted: Option<&Value>) -> Value {
    match submitted {
        Some(Value::Object(s)) => {
            let mut p = match provider {
                Value::Object(p) => p,
                _ => serde_json::Map::new(),
            };
            for (k, v) in s {
                let merged = merge(p.remove(k).unwrap_or(Value::Null), Some(v));
                if !is_empty(&merged) {
                    p.insert(k.clone(), merged);
                }
            }
            Value::Object(p)
        }
        Some(s) if !is_empty(s) => s.clone(),
        _ => provider,
    }
}

fn is_empty(v: &Value) -> bool {
    matches!(v, Value::Null) || v.as_str() == Some("")
}

/// Replaces the flow's form with the trait fields (filled with `traits`) and the provider's
/// "Continue" button.
pub(super) fn completion_form(
    app: &App,
    flow: &mut Flow,
    provider_id: &str,
    schema_id: &str,
    traits: &Value,
) {
    flow.ui.nodes.clear();
    flow.ui.push(Node::csrf(""));
    flow.ui.push(Node::submit(
        Group::Oidc,
        "provider",
        provider_id,
        text::registration_continue(),
    ));
    if let Some(schema) = app.schemas.get(schema_id) {
        flow.ui
            .nodes
            .extend(schema.trait_nodes(Group::Default, Some(traits)));
    }
}

/// Kratos `UpdateIdentityFromClaims` (`update_identity_on_login: automatic`): the mapper runs again
/// with the identity as it is; its traits win over the stored ones (stored traits it does not output
/// stay), metadata changes only when the mapper outputs it, addresses keep their verification state,
/// and the ones the provider vouches for now become verified. Returns whether anything changed.
pub(super) async fn update_from_claims(
    app: &App,
    provider: &Provider,
    authenticated: &Authenticated,
    identity: &mut Identity,
) -> Result<bool, FlowFailure> {
    let context = IdentityContext {
        traits: identity.traits.clone(),
        metadata_public: identity.metadata_public.clone().unwrap_or(Value::Null),
        metadata_admin: identity.metadata_admin.clone().unwrap_or(Value::Null),
    };
    let mapped = provider
        .map_claims(&authenticated.claims, Some(&context))
        .await
        .map_err(api_error)?;
    let before = fingerprint(identity);
    let traits = merge(identity.traits.clone(), Some(&Value::Object(mapped.traits)));
    apply_traits(app, identity, traits).map_err(|e| FlowFailure::Ui(trait_errors(e)))?;
    if let Some(m) = mapped.metadata_public {
        identity.metadata_public = Some(m);
    }
    if let Some(m) = mapped.metadata_admin {
        identity.metadata_admin = Some(m);
    }
    let now = time_fmt::now();
    verify_vouched(identity, &mapped.verified_addresses, now);
    let changed = fingerprint(identity) != before;
    if changed {
        identity.updated_at = now;
    }
    Ok(changed)
}

/// Marks verified the identity's addresses the provider vouches for (the mapper's `verified_addresses`),
/// as Kratos does at sign-up and when it updates an identity on login.
pub(super) fn verify_vouched(identity: &mut Identity, vouched: &[VerifiedAddress], now: OffsetDateTime) {
    for a in &mut identity.verifiable_addresses {
        let is_vouched = vouched
            .iter()
            .any(|v| v.via == a.via && v.value.eq_ignore_ascii_case(&a.value));
        if is_vouched && !a.verified {
            a.mark_verified(now);
        }
    }
}

/// What a login may change, to tell whether it did.
fn fingerprint(i: &Identity) -> Value {
    let addresses = |list: Vec<(String, String, bool)>| serde_json::json!(list);
    serde_json::json!([
        i.traits,
        i.metadata_public,
        i.metadata_admin,
        addresses(
            i.verifiable_addresses
                .iter()
                .map(|a| (a.via.clone(), a.value.clone(), a.verified))
                .collect()
        ),
        addresses(
            i.recovery_addresses
                .iter()
                .map(|a| (a.via.clone(), a.value.clone(), false))
                .collect()
        ),
    ])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::merge;

    #[test]
    fn submitted_leaves_win_unless_empty() {
        let provider = json!({"email": "p@example.org", "name": {"first": "P", "last": "Q"}, "age": 3});
        let submitted = json!({"email": "", "name": {"first": "Typed"}, "nick": "n", "age": null});
        assert_eq!(
            merge(provider, Some(&submitted)),
            json!({"email": "p@example.org", "name": {"first": "Typed", "last": "Q"}, "nick": "n", "age": 3})
        );
    }

    #[test]
    fn nothing_submitted_keeps_the_provider_traits() {
        let provider = json!({"email": "p@example.org"});
        assert_eq!(merge(provider.clone(), None), provider);
        assert_eq!(
            merge(
                json!({"name": "Ann Example"}),
                Some(&json!({"name": {"first": "Ann"}}))
            ),
            json!({"name": {"first": "Ann"}})
        );
    }
}
