//! Methods as plug-ins (Kratos `selfservice/flow/*/strategy.go`): one trait per flow kind, implemented
//! once per method, and the registry of the methods the configuration enables. Flow handlers load the
//! flow, make the checks every method shares, ask the registry which method a submission belongs to,
//! and finish the same way whichever method answered.

mod code;
mod mfa;
pub mod oidc;
mod passkey;
mod password;
mod profile;
mod webauthn;

use std::sync::Arc;

use async_trait::async_trait;
use axum::response::Response;
use serde_json::{Map, Value};

use sallyport_core::flow::Flow;
use sallyport_core::identity::Identity;
use sallyport_core::session::Aal;
use sallyport_core::ui::Node;

use crate::http::body::str_field;
use crate::http::request::ReqInfo;
use crate::selfservice::common::FlowFailure;
use crate::session_manager::Authenticated;
use crate::settings::Settings;
use crate::state::App;

pub use code::Code;
pub use mfa::{LookupSecret, Totp};
pub use oidc::Oidc;
pub use passkey::Passkey;
pub use password::Password;
pub use profile::Profile;
pub use webauthn::{WebAuthn, mfa_keys as webauthn_mfa_keys};

pub type Body = Map<String, Value>;

/// What a request handler hands a method.
pub struct Cx<'a> {
    pub app: &'a App,
    pub req: &'a ReqInfo,
    /// The caller's session, if any.
    pub auth: Option<&'a Authenticated>,
}

/// What a fresh login flow was asked for; methods pick their nodes from it.
pub struct LoginNeeds<'a> {
    pub auth: Option<&'a Authenticated>,
    pub refresh: bool,
    pub aal: Aal,
    pub via: Option<&'a str>,
}

/// How a login submission ended when it did not fail.
pub enum LoginStep {
    /// The credentials checked out: the shared finish issues or upgrades the session.
    Authenticated {
        identity: Box<Identity>,
        method: &'static str,
        aal: Aal,
    },
    /// An intermediate answer the method owns (a code went out, a redirect to a provider).
    Respond(Response),
}

#[async_trait]
pub trait LoginMethod: Send + Sync {
    fn id(&self) -> &'static str;
    /// Adds this method's nodes to a new login flow.
    fn populate(&self, app: &App, flow: &mut Flow, needs: &LoginNeeds<'_>);
    /// Whether this submission is for this method.
    fn handles(&self, app: &App, flow: &Flow, body: &Body) -> bool;
    async fn submit(&self, cx: &Cx<'_>, flow: &mut Flow, body: &Body) -> Result<LoginStep, FlowFailure>;
    /// Puts what the user typed back on the flow after a failed submission.
    fn keep_input(&self, _flow: &mut Flow, _body: &Body) {}
    /// Runs once the new flow is stored (the code method sends its code at once on Kratos' fast 2FA
    /// path); a failure fails the request, the flow stays.
    async fn flow_created(
        &self,
        _app: &App,
        _flow: &mut Flow,
        _needs: &LoginNeeds<'_>,
    ) -> Result<(), FlowFailure> {
        Ok(())
    }
}

/// Which registration screen nodes are built for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Screen {
    /// Traits and credentials on one form.
    OneStep,
    /// Two-step registration, first screen: traits only.
    Profile,
    /// Two-step registration, second screen: the traits are hidden, credentials are chosen.
    Credentials,
}

pub enum RegistrationStep {
    /// A new identity, not yet stored: the shared finish persists it and runs the hooks.
    Registered {
        identity: Box<Identity>,
        method: &'static str,
    },
    Respond(Response),
}

#[async_trait]
pub trait RegistrationMethod: Send + Sync {
    fn id(&self) -> &'static str;
    /// Adds this method's nodes to `nodes` (the schema's trait nodes come first).
    fn populate(&self, app: &App, nodes: &mut Vec<Node>, screen: Screen);
    /// Like `populate`, for methods whose nodes depend on the flow or keep state in it (a WebAuthn
    /// challenge in the internal context, script nodes on browser flows only).
    fn populate_flow(&self, app: &App, _flow: &mut Flow, nodes: &mut Vec<Node>, screen: Screen) {
        self.populate(app, nodes, screen);
    }
    fn handles(&self, app: &App, flow: &Flow, body: &Body) -> bool;
    async fn submit(
        &self,
        cx: &Cx<'_>,
        flow: &mut Flow,
        body: &Body,
        schema_id: &str,
    ) -> Result<RegistrationStep, FlowFailure>;
    fn keep_input(&self, _flow: &mut Flow, _body: &Body) {}
}

/// What a settings method did.
pub enum SettingsStep {
    /// Saved: the flow shows `success` and 1050001.
    Saved(Box<Identity>),
    /// The flow changed but nothing was saved (e.g. TOTP secret shown, codes generated); show it again.
    Shown,
    /// An answer the method owns (the flow is already saved), e.g. the redirect to a provider.
    Respond(Response),
}

pub enum SettingsFailure {
    Flow(FlowFailure),
    /// The update needs a fresh login first.
    ReAuth,
}

impl From<FlowFailure> for SettingsFailure {
    fn from(f: FlowFailure) -> Self {
        SettingsFailure::Flow(f)
    }
}

impl From<sallyport_core::store::StoreError> for SettingsFailure {
    fn from(e: sallyport_core::store::StoreError) -> Self {
        SettingsFailure::Flow(e.into())
    }
}

#[async_trait]
pub trait SettingsMethod: Send + Sync {
    fn id(&self) -> &'static str;
    fn populate(&self, app: &App, flow: &mut Flow, identity: &Identity);
    /// A plain form may send only the clicked button; a method recognising its fields claims the body.
    fn implied_by(&self, _body: &Body) -> bool {
        false
    }
    async fn submit(
        &self,
        cx: &Cx<'_>,
        auth: &Authenticated,
        flow: &mut Flow,
        body: &Body,
    ) -> Result<SettingsStep, SettingsFailure>;
}

/// The methods the configuration enables, in the order their nodes appear.
pub struct Methods {
    login: Vec<Arc<dyn LoginMethod>>,
    registration: Vec<Arc<dyn RegistrationMethod>>,
    settings: Vec<Arc<dyn SettingsMethod>>,
    /// Login methods that exist but are switched off: submitting them answers 404 as Kratos does.
    disabled_login: Vec<&'static str>,
    oidc: Option<Arc<Oidc>>,
}

impl Methods {
    pub fn from_settings(s: &Settings) -> anyhow::Result<Methods> {
        let mut m = Methods {
            login: vec![],
            registration: vec![],
            settings: vec![],
            disabled_login: vec![],
            oidc: None,
        };
        let password = Arc::new(Password);
        let code = Arc::new(Code);
        if s.registration_two_step {
            m.registration.push(Arc::new(Profile));
        }
        m.settings.push(Arc::new(Profile));
        if s.password.enabled {
            m.login.push(password.clone());
            m.registration.push(password.clone());
            m.settings.push(password);
        } else {
            m.disabled_login.push("password");
        }
        if let Some(o) = &s.oidc {
            let oidc = Arc::new(Oidc::new(o, &s.public_base_url)?);
            m.login.push(oidc.clone());
            m.registration.push(oidc.clone());
            m.settings.push(oidc.clone());
            m.oidc = Some(oidc);
        }
        if s.code.passwordless_enabled || s.code.mfa_enabled {
            m.login.push(code.clone());
        }
        if s.code.passwordless_enabled {
            m.registration.push(code);
        }
        // Settings always knows both factors: their updates answer for a disabled factor themselves.
        if s.totp_enabled {
            m.login.push(Arc::new(Totp));
        }
        m.settings.push(Arc::new(Totp));
        if s.lookup_enabled {
            m.login.push(Arc::new(LookupSecret));
        }
        m.settings.push(Arc::new(LookupSecret));
        if let Some(p) = &s.passkey {
            let passkey = Arc::new(Passkey::new(p)?);
            m.login.push(passkey.clone());
            m.registration.push(passkey.clone());
            m.settings.push(passkey);
        } else {
            m.disabled_login.push("passkey");
        }
        if let Some(w) = &s.webauthn {
            let webauthn = Arc::new(WebAuthn::new(w)?);
            m.login.push(webauthn.clone());
            if w.passwordless {
                m.registration.push(webauthn.clone());
            }
            m.settings.push(webauthn);
        }
        Ok(m)
    }

    /// The `oidc` method when enabled (its callback route and the admin API's token view need it).
    pub fn oidc(&self) -> Option<&Oidc> {
        self.oidc.as_deref()
    }

    pub fn login(&self) -> impl Iterator<Item = &dyn LoginMethod> {
        self.login.iter().map(|m| &**m)
    }

    pub fn registration(&self) -> impl Iterator<Item = &dyn RegistrationMethod> {
        self.registration.iter().map(|m| &**m)
    }

    pub fn settings(&self) -> impl Iterator<Item = &dyn SettingsMethod> {
        self.settings.iter().map(|m| &**m)
    }

    pub fn find_login(&self, app: &App, flow: &Flow, body: &Body) -> Option<&dyn LoginMethod> {
        self.login().find(|m| m.handles(app, flow, body))
    }

    pub fn login_disabled(&self, body: &Body) -> bool {
        str_field(body, "method").is_some_and(|m| self.disabled_login.contains(&m))
    }

    pub fn find_registration(&self, app: &App, flow: &Flow, body: &Body) -> Option<&dyn RegistrationMethod> {
        self.registration().find(|m| m.handles(app, flow, body))
    }

    /// The settings method a body addresses: the one whose fields it carries, else its `method`.
    pub fn find_settings(&self, body: &Body) -> Option<&dyn SettingsMethod> {
        if let Some(m) = self.settings().find(|m| m.implied_by(body)) {
            return Some(m);
        }
        let method = str_field(body, "method")?;
        self.settings().find(|m| m.id() == method)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn methods(overrides: Value) -> Methods {
        let mut cfg = json!({
            "dsn": "memory",
            "serve": {"public": {"base_url": "http://127.0.0.1:4433/"}},
            "identity": {"default_schema_id": "d", "schemas": [{"id": "d", "url": "base64://e30="}]},
            "selfservice": {"default_browser_return_url": "http://app.test/"},
        });
        merge(&mut cfg, overrides);
        let config = sallyport_config::from_value(cfg, true).unwrap();
        let settings = crate::config_loader::settings(&config, true).unwrap();
        Methods::from_settings(&settings).unwrap()
    }

    fn merge(a: &mut Value, b: Value) {
        match (a, b) {
            (Value::Object(a), Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k).or_insert(Value::Null), v);
                }
            }
            (a, b) => *a = b,
        }
    }

    fn ids<'a>(it: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
        it.collect()
    }

    #[test]
    fn the_registry_holds_the_enabled_methods_in_kratos_order() {
        let m = methods(json!({"selfservice": {"methods": {
            "code": {"passwordless_enabled": true},
            "totp": {"enabled": true},
            "lookup_secret": {"enabled": true},
            "oidc": {"enabled": true, "config": {"providers": [
                {"id": "op", "provider": "generic", "issuer_url": "http://127.0.0.1:1", "client_id": "c",
                 "client_secret": "s", "mapper_url": "base64://e30="}
            ]}},
        }}}));
        assert_eq!(
            ids(m.login().map(|m| m.id())),
            ["password", "oidc", "code", "totp", "lookup_secret"]
        );
        assert_eq!(
            ids(m.registration().map(|m| m.id())),
            ["profile", "password", "oidc", "code"]
        );
        assert_eq!(
            ids(m.settings().map(|m| m.id())),
            ["profile", "password", "oidc", "totp", "lookup_secret"]
        );
        assert!(m.oidc().is_some());
        assert!(!m.login_disabled(&Map::new()));
    }

    #[test]
    fn passkey_and_webauthn_join_the_registry_when_enabled() {
        let rp = json!({"rp": {"id": "app.test", "display_name": "App", "origins": ["http://app.test"]}});
        let m = methods(json!({"selfservice": {"methods": {
            "passkey": {"enabled": true, "config": rp.clone()},
            "webauthn": {"enabled": true, "config": rp},
        }}}));
        assert_eq!(
            ids(m.login().map(|m| m.id())),
            ["password", "passkey", "webauthn"]
        );
        assert_eq!(
            ids(m.registration().map(|m| m.id())),
            ["profile", "password", "passkey"]
        );
        assert_eq!(
            ids(m.settings().map(|m| m.id())),
            [
                "profile",
                "password",
                "totp",
                "lookup_secret",
                "passkey",
                "webauthn"
            ]
        );
        let find = |v: Value| m.find_settings(v.as_object().unwrap()).map(|m| m.id());
        assert_eq!(find(json!({"passkey_remove": "00"})), Some("passkey"));
        assert_eq!(find(json!({"webauthn_register": "{}"})), Some("webauthn"));
        let mut body = Map::new();
        body.insert("method".into(), json!("passkey"));
        assert!(!m.login_disabled(&body));
        assert!(
            methods(json!({})).login_disabled(&body),
            "a disabled passkey method answers 404"
        );
    }

    #[test]
    fn a_disabled_password_is_known_but_not_offered() {
        let m = methods(json!({"selfservice": {"methods": {"password": {"enabled": false}}}}));
        assert!(!m.login().any(|m| m.id() == "password"));
        assert!(!m.settings().any(|m| m.id() == "password"));
        let mut body = Map::new();
        body.insert("method".into(), json!("password"));
        assert!(m.login_disabled(&body));
        assert!(m.oidc().is_none());
    }

    #[test]
    fn settings_bodies_find_their_method_by_fields_or_name() {
        let m = methods(json!({}));
        let find = |v: Value| m.find_settings(v.as_object().unwrap()).map(|m| m.id());
        assert_eq!(find(json!({"totp_code": "123456"})), Some("totp"));
        assert_eq!(
            find(json!({"lookup_secret_regenerate": true})),
            Some("lookup_secret")
        );
        assert_eq!(find(json!({"method": "profile", "traits": {}})), Some("profile"));
        assert_eq!(find(json!({"method": "nope"})), None);
        assert_eq!(find(json!({})), None);
    }
}
