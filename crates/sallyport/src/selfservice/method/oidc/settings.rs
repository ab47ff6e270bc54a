//! Linking and unlinking providers in the settings flow (Kratos `strategy/oidc/strategy_settings.go`).
//! Linking goes to the provider and finishes in the callback ([`link_identity`]); unlinking is immediate.
//! Both need a privileged session, and the last way to sign in can never be removed.

use async_trait::async_trait;
use serde_json::{Value, json};

use sallyport_core::identity::{Identity, credential_type};
use sallyport_core::text;
use sallyport_core::time_fmt;
use sallyport_core::ui::{Group, Node};
use sallyport_oidc::{Authenticated, Provider};

use super::{ID, Oidc};
use crate::http::body::str_field;
use crate::selfservice::common::{FieldMessage, FlowFailure};
use crate::selfservice::method::{Body, Cx, SettingsFailure, SettingsMethod, SettingsStep};
use crate::session_manager::Authenticated as Session;
use crate::state::App;
use sallyport_core::flow::Flow;

/// The providers `identity` is linked to.
pub(crate) fn linked(identity: &Identity) -> Vec<String> {
    identity
        .credentials
        .get(credential_type::OIDC)
        .and_then(|c| c.config.get("providers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|p| p.get("provider").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Ways to sign in other than the oidc connections: a password, a passwordless code address, …
fn other_first_factors(identity: &Identity) -> bool {
    identity.credentials.iter().any(|(t, c)| {
        t != credential_type::OIDC
            && (t == credential_type::PASSWORD
                || t == credential_type::PASSKEY
                || t == credential_type::WEBAUTHN
                || (t == credential_type::CODE && !c.identifiers.is_empty()))
    })
}

fn can_unlink(identity: &Identity) -> bool {
    linked(identity).len() > 1 || other_first_factors(identity)
}

fn refused(reason: &str) -> SettingsFailure {
    SettingsFailure::Flow(FlowFailure::Ui(vec![FieldMessage::flow(
        text::validation_generic(reason),
    )]))
}

#[async_trait]
impl SettingsMethod for Oidc {
    fn id(&self) -> &'static str {
        ID
    }

    fn populate(&self, _app: &App, flow: &mut Flow, identity: &Identity) {
        let linked = linked(identity);
        let unlinkable = can_unlink(identity);
        for p in self.providers.iter() {
            let c = p.config();
            if !linked.contains(&c.id) {
                flow.ui.push(Node::submit(
                    Group::Oidc,
                    "link",
                    &c.id,
                    text::settings_link_provider(c.display_label()),
                ));
            } else if unlinkable {
                flow.ui.push(Node::submit(
                    Group::Oidc,
                    "unlink",
                    &c.id,
                    text::settings_unlink_provider(c.display_label()),
                ));
            }
        }
    }

    fn implied_by(&self, body: &Body) -> bool {
        let set = |k| str_field(body, k).is_some_and(|v| !v.is_empty());
        match str_field(body, "method") {
            Some(m) if !m.is_empty() => m == ID,
            _ => set("link") || set("unlink"),
        }
    }

    async fn submit(
        &self,
        cx: &Cx<'_>,
        auth: &Session,
        flow: &mut Flow,
        body: &Body,
    ) -> Result<SettingsStep, SettingsFailure> {
        let app = cx.app;
        if !crate::selfservice::settings::privileged(app, auth) {
            return Err(SettingsFailure::ReAuth);
        }
        if let Some(pid) = str_field(body, "unlink").filter(|v| !v.is_empty()) {
            let mut identity = auth.identity.clone();
            if !linked(&identity).iter().any(|p| p == pid) {
                return Err(refused("The provider is not linked to this account."));
            }
            if !can_unlink(&identity) {
                return Err(refused(
                    "This is the last way to sign in to this account; add another one before unlinking it.",
                ));
            }
            unlink(&mut identity, pid);
            identity.updated_at = time_fmt::now();
            app.store.update_identity(&identity).await?;
            return Ok(SettingsStep::Saved(Box::new(identity)));
        }
        let pid = str_field(body, "link").unwrap_or("");
        if linked(&auth.identity).iter().any(|p| p == pid) {
            return Err(refused("The provider is already linked to this account."));
        }
        let res = self
            .start(cx, flow, body, pid, sallyport_oidc::FlowKind::Settings)
            .await?;
        Ok(SettingsStep::Respond(res))
    }
}

fn unlink(identity: &mut Identity, provider_id: &str) {
    let now = time_fmt::now();
    let Some(cred) = identity.credentials.get_mut(credential_type::OIDC) else {
        return;
    };
    let prefix = format!("{provider_id}:");
    cred.identifiers.retain(|i| !i.starts_with(&prefix));
    if let Some(list) = cred.config.get_mut("providers").and_then(Value::as_array_mut) {
        list.retain(|p| p.get("provider").and_then(Value::as_str) != Some(provider_id));
    }
    cred.updated_at = now;
    if cred.identifiers.is_empty() {
        identity.credentials.remove(credential_type::OIDC);
    }
}

/// Adds the provider connection to `identity` (the callback of a settings flow).
pub(crate) fn link_identity(
    oidc: &Oidc,
    identity: &mut Identity,
    provider: &Provider,
    authenticated: &Authenticated,
) -> Result<(), sallyport_oidc::OidcError> {
    let now = time_fmt::now();
    let entry = super::credential_entry(oidc, provider, authenticated)?;
    let identifier = format!("{}:{}", provider.config().id, authenticated.claims.subject);
    let mut identifiers = identity
        .credentials
        .get(credential_type::OIDC)
        .map(|c| c.identifiers.clone())
        .unwrap_or_default();
    let mut providers = identity
        .credentials
        .get(credential_type::OIDC)
        .and_then(|c| c.config.get("providers"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    identifiers.push(identifier);
    providers.push(entry);
    identity.set_credential(
        credential_type::OIDC,
        identifiers,
        json!({ "providers": providers }),
        now,
    );
    Ok(())
}
