//! JSON renderings of domain objects, field for field as Kratos' OpenAPI models.

use base64::Engine;
use serde_json::{Map, Value, json};

use sallyport_core::flow::{Flow, FlowKind};
use sallyport_core::identity::Identity;
use sallyport_core::session::Session;
use sallyport_core::time_fmt::rfc3339;

use crate::state::App;

pub struct IdentityView<'a> {
    /// Admin API: credentials (without config) and `metadata_admin` are shown.
    pub admin: bool,
    /// Credential types whose `config` is shown (admin `include_credential`).
    pub include_credential: &'a [String],
}

pub const PUBLIC: IdentityView<'static> = IdentityView {
    admin: false,
    include_credential: &[],
};
pub const ADMIN: IdentityView<'static> = IdentityView {
    admin: true,
    include_credential: &[],
};

pub fn schema_url(app: &App, schema_id: &str) -> String {
    let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(schema_id.as_bytes());
    app.public_url(&format!("schemas/{enc}"))
}

pub fn identity(app: &App, i: &Identity, view: &IdentityView) -> Value {
    let mut o = Map::new();
    o.insert("id".into(), json!(i.id));
    if view.admin && !i.credentials.is_empty() {
        let mut creds = Map::new();
        for (t, c) in &i.credentials {
            let mut co = Map::new();
            co.insert("type".into(), json!(c.cred_type));
            co.insert("identifiers".into(), json!(c.identifiers));
            if view.include_credential.iter().any(|x| x == t) {
                let config = match app.methods.oidc() {
                    Some(o) if t == sallyport_core::identity::credential_type::OIDC => {
                        o.declassify(&c.config)
                    }
                    _ => c.config.clone(),
                };
                co.insert("config".into(), config);
            }
            co.insert("version".into(), json!(c.version));
            co.insert("created_at".into(), json!(rfc3339(c.created_at)));
            co.insert("updated_at".into(), json!(rfc3339(c.updated_at)));
            creds.insert(t.clone(), Value::Object(co));
        }
        o.insert("credentials".into(), Value::Object(creds));
    }
    o.insert("schema_id".into(), json!(i.schema_id));
    o.insert("schema_url".into(), json!(schema_url(app, &i.schema_id)));
    o.insert("state".into(), json!(i.state.as_str()));
    if let Some(t) = i.state_changed_at {
        o.insert("state_changed_at".into(), json!(rfc3339(t)));
    }
    o.insert("traits".into(), i.traits.clone());
    if !i.verifiable_addresses.is_empty() {
        o.insert(
            "verifiable_addresses".into(),
            serde_json::to_value(&i.verifiable_addresses).unwrap_or_default(),
        );
    }
    if !i.recovery_addresses.is_empty() {
        o.insert(
            "recovery_addresses".into(),
            serde_json::to_value(&i.recovery_addresses).unwrap_or_default(),
        );
    }
    o.insert(
        "metadata_public".into(),
        i.metadata_public.clone().unwrap_or(Value::Null),
    );
    if view.admin {
        o.insert(
            "metadata_admin".into(),
            i.metadata_admin.clone().unwrap_or(Value::Null),
        );
    }
    if let Some(e) = &i.external_id {
        o.insert("external_id".into(), json!(e));
    }
    o.insert("created_at".into(), json!(rfc3339(i.created_at)));
    o.insert("updated_at".into(), json!(rfc3339(i.updated_at)));
    o.insert("organization_id".into(), json!(i.organization_id));
    Value::Object(o)
}

/// `identity` None renders `"identity": null` (a native login that still needs a second factor).
pub fn session(s: &Session, identity_json: Option<Value>, now: time::OffsetDateTime) -> Value {
    json!({
        "id": s.id,
        "active": s.is_active(now),
        "expires_at": rfc3339(s.expires_at),
        "authenticated_at": rfc3339(s.authenticated_at),
        "authenticator_assurance_level": s.aal.as_str(),
        "authentication_methods": s.authentication_methods,
        "issued_at": rfc3339(s.issued_at),
        "identity": identity_json.unwrap_or(Value::Null),
        "devices": s.devices.iter().map(|d| json!({
            "id": d.id,
            "ip_address": d.ip_address.clone().unwrap_or_default(),
            "user_agent": d.user_agent.clone().unwrap_or_default(),
            "location": d.location.clone().unwrap_or_default(),
        })).collect::<Vec<_>>(),
    })
}

/// A flow as `GET /self-service/<flow>/flows` returns it. `csrf` replaces the csrf node's value
/// (a fresh mask for browser flows, "" for API flows).
pub fn flow(f: &Flow, csrf: &str) -> Value {
    let mut ui = f.ui.clone();
    ui.set_csrf(csrf);
    let mut o = Map::new();
    o.insert("id".into(), json!(f.id));
    o.insert("organization_id".into(), json!(f.organization_id));
    o.insert("type".into(), json!(f.flow_type));
    o.insert("expires_at".into(), json!(rfc3339(f.expires_at)));
    o.insert("issued_at".into(), json!(rfc3339(f.issued_at)));
    o.insert("request_url".into(), json!(f.request_url));
    if let Some(r) = &f.return_to {
        o.insert("return_to".into(), json!(r));
    }
    if let Some(a) = &f.active {
        o.insert("active".into(), json!(a));
    }
    o.insert("ui".into(), serde_json::to_value(&ui).unwrap_or_default());
    if f.kind == FlowKind::Login {
        o.insert("created_at".into(), json!(rfc3339(f.created_at)));
        o.insert("updated_at".into(), json!(rfc3339(f.updated_at)));
        o.insert("refresh".into(), json!(f.refresh));
        o.insert("requested_aal".into(), json!(f.requested_aal));
    }
    if f.kind == FlowKind::Settings {
        o.insert(
            "identity".into(),
            f.internal_context.get("identity").cloned().unwrap_or(Value::Null),
        );
    }
    if matches!(
        f.kind,
        FlowKind::Recovery | FlowKind::Verification | FlowKind::Settings
    ) {
        o.insert("continue_with".into(), json!(f.continue_with));
    }
    if let Some(s) = &f.identity_schema {
        o.insert("identity_schema".into(), json!(s));
    }
    o.insert("state".into(), json!(f.state));
    if let Some(c) = &f.session_token_exchange_code {
        o.insert("session_token_exchange_code".into(), json!(c));
    }
    Value::Object(o)
}
