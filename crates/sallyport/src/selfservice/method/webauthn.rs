//! The `webauthn` method as a plug-in (Kratos `selfservice/strategy/webauthn`): security keys added
//! in settings, then used on `aal=aal2` login flows as a second factor, or — with
//! `config.passwordless` — to sign in at aal1 after naming the account (Kratos' legacy passwordless
//! mode). Browser flows only, as in Kratos: on API flows its nodes are not shown and its submissions
//! are not taken.

use async_trait::async_trait;
use serde_json::json;

use sallyport_core::error::ApiError;
use sallyport_core::flow::{Flow, FlowType};
use sallyport_core::identity::{Identity, credential_type};
use sallyport_core::session::Aal;
use sallyport_core::text;
use sallyport_core::time_fmt;
use sallyport_core::ui::{Group, Node};
use sallyport_webauthn::{Ceremonies, StoredCredential, UserVerification};

use super::{
    Body, Cx, LoginMethod, LoginNeeds, LoginStep, RegistrationMethod, RegistrationStep, Screen,
    SettingsFailure, SettingsMethod, SettingsStep,
};
use crate::http::body::str_field;
use crate::identities::{apply_traits, set_trait_values, trait_errors};
use crate::selfservice::common::{FieldMessage, FlowFailure, ensure_csrf};
use crate::selfservice::keys::{self, Ceremony};
use crate::session_manager::Authenticated;
use crate::settings::WebAuthnSettings;
use crate::state::App;

const ID: &str = credential_type::WEBAUTHN;
const CEREMONY: Ceremony<'static> = Ceremony { method: ID };
/// Kratos asks security keys used as a second factor for presence only.
const UV: UserVerification = UserVerification::Discouraged;

pub struct WebAuthn {
    ceremonies: Ceremonies,
    /// `config.passwordless`: new keys are stored as passwordless (first factor) keys, as Kratos does.
    passwordless: bool,
}

impl WebAuthn {
    pub fn new(s: &WebAuthnSettings) -> anyhow::Result<WebAuthn> {
        Ok(WebAuthn {
            ceremonies: Ceremonies::new(&s.rp)
                .map_err(|e| anyhow::anyhow!("selfservice.methods.webauthn: {e}"))?,
            passwordless: s.passwordless,
        })
    }
}

/// The identity's security keys that count as a second factor.
pub fn mfa_keys(identity: &Identity) -> Vec<StoredCredential> {
    keys::config(identity, ID)
        .credentials
        .into_iter()
        .filter(|c| !c.is_passwordless)
        .collect()
}

impl WebAuthn {
    /// Request options naming `allowed`, kept on the flow, and the trigger and result nodes.
    fn push_login_trigger(
        &self,
        app: &App,
        flow: &mut Flow,
        allowed: &[StoredCredential],
        uv: UserVerification,
        label: text::Message,
    ) -> bool {
        let Ok((options, state)) = self.ceremonies.begin_login(allowed, uv) else {
            return false;
        };
        CEREMONY.save(flow, state, None);
        let options = options.to_string();
        keys::push_script(app, flow);
        flow.ui.push(
            keys::trigger(
                Group::Webauthn,
                "webauthn_login_trigger",
                flow.flow_type,
                "oryWebAuthnLogin",
                &options,
                label,
            )
            .with_value(json!(options)),
        );
        flow.ui
            .push(keys::hidden(Group::Webauthn, "webauthn_login", None));
        true
    }

    /// Kratos' legacy passwordless login: the account by its WebAuthn identifier, then its
    /// passwordless keys at aal1.
    async fn login_passwordless(
        &self,
        cx: &Cx<'_>,
        flow: &mut Flow,
        body: &Body,
    ) -> Result<LoginStep, FlowFailure> {
        let app = cx.app;
        let identifier = str_field(body, "identifier").map(str::trim).unwrap_or_default();
        if identifier.is_empty() {
            return Err(FlowFailure::Api(ApiError::bad_request("identifier is required")));
        }
        let normalized = sallyport_schema::normalize_identifier(identifier, None);
        let no_user = || ui(text::webauthn_no_user());
        let Ok(mut identity) = app.store.find_identity_by_identifier(ID, &normalized).await else {
            return Err(no_user());
        };
        let allowed: Vec<StoredCredential> = keys::config(&identity, ID)
            .credentials
            .into_iter()
            .filter(|c| c.is_passwordless)
            .collect();
        if allowed.is_empty() {
            return Err(no_user());
        }
        let raw = str_field(body, "webauthn_login").unwrap_or_default();
        if raw.is_empty() {
            flow.ui.nodes.retain(|n| n.name() == "csrf_token");
            if !self.push_login_trigger(app, flow, &allowed, PASSWORDLESS_UV, text::login_continue()) {
                return Err(no_user());
            }
            flow.ui.messages = vec![text::login_webauthn_passwordless()];
            flow.ui.push(
                Node::input(Group::Default, "identifier", "hidden")
                    .required()
                    .with_value(json!(identifier)),
            );
            app.store.update_flow(flow).await?;
            return Ok(LoginStep::Respond(super::passkey::show_again(app, cx, flow)));
        }
        self.verify(app, flow, &mut identity, raw, &allowed, PASSWORDLESS_UV)
            .await?;
        Ok(LoginStep::Authenticated {
            identity: Box::new(identity),
            method: ID,
            aal: Aal::Aal1,
        })
    }

    /// Checks the assertion against `allowed` and stores the updated counter.
    async fn verify(
        &self,
        app: &App,
        flow: &mut Flow,
        identity: &mut Identity,
        raw: &str,
        allowed: &[StoredCredential],
        uv: UserVerification,
    ) -> Result<(), FlowFailure> {
        let assertion = sallyport_webauthn::parse_assertion(raw).map_err(keys::login_failure)?;
        let Some(state) = CEREMONY.state(flow) else {
            return Err(ui(text::webauthn_verifier_wrong()));
        };
        let outcome = self
            .ceremonies
            .finish_login(&state, &assertion, allowed, uv)
            .map_err(keys::login_failure)?;
        let mut cfg = keys::config(identity, ID);
        for c in cfg.credentials.iter_mut() {
            if let Some(u) = outcome.credentials.iter().find(|u| u.id == c.id) {
                *c = u.clone();
            }
        }
        let identifiers = identity
            .credentials
            .get(ID)
            .map(|c| c.identifiers.clone())
            .unwrap_or_default();
        keys::store_config(identity, ID, &cfg, identifiers);
        identity.updated_at = time_fmt::now();
        app.store.update_identity(identity).await?;
        CEREMONY.forget(flow);
        Ok(())
    }
}

/// Passwordless keys are asked for user verification, as passkeys are.
const PASSWORDLESS_UV: UserVerification = UserVerification::Preferred;

fn ui(message: text::Message) -> FlowFailure {
    FlowFailure::Ui(vec![FieldMessage::flow(message)])
}

#[async_trait]
impl LoginMethod for WebAuthn {
    fn id(&self) -> &'static str {
        ID
    }

    fn populate(&self, app: &App, flow: &mut Flow, needs: &LoginNeeds<'_>) {
        if flow.flow_type != FlowType::Browser {
            return;
        }
        if self.passwordless && needs.aal == Aal::Aal1 && !needs.refresh {
            match flow.ui.node_mut("identifier").and_then(Node::input_mut) {
                Some(a) => a.autocomplete = Some("username webauthn".into()),
                None => flow.ui.push(
                    Node::input(Group::Default, "identifier", "text")
                        .required()
                        .with_value(json!(""))
                        .with_autocomplete("username webauthn")
                        .with_label(crate::selfservice::password::identifier_label(app, flow)),
                ),
            }
            flow.ui.push(Node::submit(
                Group::Webauthn,
                "method",
                ID,
                text::login_webauthn(),
            ));
            return;
        }
        if needs.aal < Aal::Aal2 || self.passwordless {
            return;
        }
        let Some(auth) = needs.auth else {
            return;
        };
        let allowed = mfa_keys(&auth.identity);
        if allowed.is_empty() {
            return;
        }
        let Ok((options, state)) = self.ceremonies.begin_login(&allowed, UV) else {
            return;
        };
        CEREMONY.save(flow, state, None);
        let options = options.to_string();
        keys::push_script(app, flow);
        flow.ui.push(
            keys::trigger(
                Group::Webauthn,
                "webauthn_login_trigger",
                flow.flow_type,
                "oryWebAuthnLogin",
                &options,
                text::login_webauthn(),
            )
            .with_value(json!(options)),
        );
        flow.ui
            .push(keys::hidden(Group::Webauthn, "webauthn_login", None));
    }

    fn handles(&self, _app: &App, flow: &Flow, body: &Body) -> bool {
        flow.flow_type == FlowType::Browser
            && (str_field(body, "webauthn_login").is_some_and(|s| !s.is_empty())
                || str_field(body, "method") == Some(ID))
    }

    async fn submit(&self, cx: &Cx<'_>, flow: &mut Flow, body: &Body) -> Result<LoginStep, FlowFailure> {
        let app = cx.app;
        ensure_csrf(app, cx.req, flow, str_field(body, "csrf_token"))?;
        if self.passwordless && flow.requested_aal == Aal::Aal1 {
            return self.login_passwordless(cx, flow, body).await;
        }
        let Some(auth) = cx.auth.filter(|_| flow.requested_aal >= Aal::Aal2) else {
            return Err(ui(text::login_no_strategy()));
        };
        let mut identity = app.store.get_identity(auth.identity.id).await?;
        let allowed = mfa_keys(&identity);
        if allowed.is_empty() {
            return Err(ui(text::webauthn_no_device()));
        }
        let raw = str_field(body, "webauthn_login").unwrap_or_default();
        if raw.is_empty() {
            return Err(FlowFailure::Ui(vec![FieldMessage::on(
                "webauthn_login",
                text::validation_required("webauthn_login"),
            )]));
        }
        self.verify(app, flow, &mut identity, raw, &allowed, UV).await?;
        Ok(LoginStep::Authenticated {
            identity: Box::new(identity),
            method: ID,
            aal: Aal::Aal2,
        })
    }
}

#[async_trait]
impl SettingsMethod for WebAuthn {
    fn id(&self) -> &'static str {
        ID
    }

    fn populate(&self, app: &App, flow: &mut Flow, identity: &Identity) {
        if flow.flow_type != FlowType::Browser {
            return;
        }
        let count = keys::first_factor_count(app, identity);
        let cfg = keys::config(identity, ID);
        for c in &cfg.credentials {
            let name = if c.display_name.is_empty() {
                "unnamed"
            } else {
                &c.display_name
            };
            let mut n = Node::submit(
                Group::Webauthn,
                "webauthn_remove",
                &c.hex_id(),
                text::settings_remove_webauthn(name, c.added_at),
            );
            if let Some(a) = n.input_mut() {
                a.disabled = c.is_passwordless && count < 2;
            }
            flow.ui.push(n);
        }
        let handle = identity.id.as_bytes().to_vec();
        let name = keys::display_name(app, identity);
        let name = if name.is_empty() {
            identity.id.to_string()
        } else {
            name
        };
        let Ok((options, state)) =
            self.ceremonies
                .begin_registration(&handle, &name, false, UV, &cfg.credentials)
        else {
            return;
        };
        CEREMONY.save(flow, state, Some(&handle));
        let options = options.to_string();
        keys::push_script(app, flow);
        flow.ui.push(
            Node::input(Group::Webauthn, "webauthn_register_displayname", "text")
                .with_label(text::settings_webauthn_display_name()),
        );
        flow.ui.push(
            keys::trigger(
                Group::Webauthn,
                "webauthn_register_trigger",
                flow.flow_type,
                "oryWebAuthnRegistration",
                &options,
                text::settings_add_webauthn(),
            )
            .with_value(json!(options)),
        );
        flow.ui
            .push(keys::hidden(Group::Webauthn, "webauthn_register", None));
    }

    fn implied_by(&self, body: &Body) -> bool {
        ["webauthn_register", "webauthn_remove"]
            .iter()
            .any(|k| str_field(body, k).is_some_and(|v| !v.is_empty()))
    }

    async fn submit(
        &self,
        cx: &Cx<'_>,
        auth: &Authenticated,
        flow: &mut Flow,
        body: &Body,
    ) -> Result<SettingsStep, SettingsFailure> {
        let app = cx.app;
        let remove = str_field(body, "webauthn_remove").filter(|s| !s.is_empty());
        let register = str_field(body, "webauthn_register").filter(|s| !s.is_empty());
        if flow.flow_type != FlowType::Browser || (remove.is_none() && register.is_none()) {
            return Err(SettingsFailure::Flow(ui(text::validation_generic(
                "Could not find a strategy to update your settings with. Did you fill out the form correctly?",
            ))));
        }
        if !crate::selfservice::settings::privileged(app, auth) {
            return Err(SettingsFailure::ReAuth);
        }
        let now = time_fmt::now();
        let before = app.store.get_identity(auth.identity.id).await?;
        let mut identity = before.clone();
        let mut cfg = keys::config(&identity, ID);
        let identifiers = app
            .schemas
            .get(&identity.schema_id)
            .and_then(|s| s.validate_traits(&identity.traits).ok())
            .map(|e| e.webauthn_identifiers)
            .filter(|i| !i.is_empty())
            .unwrap_or_else(|| vec![identity.id.to_string()]);
        if let Some(hex) = remove {
            let Some(gone) = cfg.credentials.iter().find(|c| c.hex_id() == hex).cloned() else {
                return Err(FlowFailure::Api(ApiError::bad_request(
                    "You tried to remove a WebAuthn credential which does not exist.",
                ))
                .into());
            };
            if gone.is_passwordless && keys::first_factor_count(app, &identity) < 2 {
                return Err(SettingsFailure::Flow(ui(text::validation_generic(
                    "unable to remove this security key because it would lock you out of your account",
                ))));
            }
            cfg.credentials.retain(|c| c.id != gone.id);
            keys::store_config(&mut identity, ID, &cfg, identifiers);
            crate::selfservice::mfa::guard_last_factor(app, &before, &identity).map_err(|e| match e {
                crate::selfservice::mfa::SettingsError::Flow(f) => SettingsFailure::Flow(f),
                crate::selfservice::mfa::SettingsError::ReAuth => SettingsFailure::ReAuth,
            })?;
        } else {
            let raw = register.unwrap_or_default();
            let Some(state) = CEREMONY.state(flow) else {
                return Err(keys::registration_failure(sallyport_webauthn::Error::NoCeremony).into());
            };
            let mut cred = self
                .ceremonies
                .finish_registration(&state, raw, self.passwordless, now)
                .map_err(keys::registration_failure)?;
            if cfg.credentials.iter().any(|c| c.id == cred.id) {
                return Err(SettingsFailure::Flow(FlowFailure::Ui(vec![FieldMessage::on(
                    "webauthn_register",
                    text::validation_generic(
                        "this security key or passkey is already registered with your account",
                    ),
                )])));
            }
            cred.display_name = str_field(body, "webauthn_register_displayname")
                .unwrap_or_default()
                .to_owned();
            cfg.credentials.push(cred);
            cfg.user_handle = identity.id.as_bytes().to_vec();
            keys::store_config(&mut identity, ID, &cfg, identifiers);
            CEREMONY.forget(flow);
            // Kratos `SessionAddAuthenticationMethods`: adding a key counts as using it.
            let aal = if self.passwordless { Aal::Aal1 } else { Aal::Aal2 };
            let mut session = auth.session.clone();
            session.complete_method(ID, aal, now);
            session.updated_at = now;
            app.store.update_session(&session).await?;
        }
        identity.available_aal = identity.compute_available_aal(app.settings.code_mfa_enabled);
        identity.updated_at = now;
        app.store.update_identity(&identity).await?;
        Ok(SettingsStep::Saved(Box::new(identity)))
    }
}

/// Kratos' legacy passwordless sign-up (browser flows, `config.passwordless` only): the traits and a
/// security key; the new identity's key has a random 16-byte user handle.
#[async_trait]
impl RegistrationMethod for WebAuthn {
    fn id(&self) -> &'static str {
        ID
    }

    fn populate(&self, _app: &App, _nodes: &mut Vec<Node>, _screen: Screen) {}

    fn populate_flow(&self, app: &App, flow: &mut Flow, nodes: &mut Vec<Node>, screen: Screen) {
        if !self.passwordless || flow.flow_type != FlowType::Browser || screen == Screen::Profile {
            return;
        }
        let options = match CEREMONY.options(flow) {
            Some(o) => o,
            None => {
                let handle = uuid::Uuid::new_v4().as_bytes().to_vec();
                let Ok((options, state)) =
                    self.ceremonies
                        .begin_registration(&handle, "", false, PASSWORDLESS_UV, &[])
                else {
                    return;
                };
                CEREMONY.save(flow, state, Some(&handle));
                CEREMONY.save_options(flow, options.clone());
                options
            }
        };
        let options = options.to_string();
        nodes.push(
            Node::input(Group::Webauthn, "webauthn_register_displayname", "text")
                .with_label(text::settings_webauthn_display_name()),
        );
        nodes.push(
            keys::trigger(
                Group::Webauthn,
                "webauthn_register_trigger",
                flow.flow_type,
                "oryWebAuthnRegistration",
                &options,
                text::registration_webauthn(),
            )
            .with_value(json!(options)),
        );
        let is_script = crate::public::webauthn::is_script_node;
        if !flow.ui.nodes.iter().any(is_script) && !nodes.iter().any(is_script) {
            nodes.push(crate::public::webauthn::script_node(
                &app.settings.public_base_url,
            ));
        }
        nodes.push(keys::hidden(Group::Webauthn, "webauthn_register", None));
    }

    fn handles(&self, _app: &App, flow: &Flow, body: &Body) -> bool {
        self.passwordless
            && flow.flow_type == FlowType::Browser
            && str_field(body, "webauthn_register").is_some_and(|s| !s.is_empty())
    }

    async fn submit(
        &self,
        cx: &Cx<'_>,
        flow: &mut Flow,
        body: &Body,
        schema_id: &str,
    ) -> Result<RegistrationStep, FlowFailure> {
        let app = cx.app;
        ensure_csrf(app, cx.req, flow, str_field(body, "csrf_token"))?;
        let raw = str_field(body, "webauthn_register").unwrap_or_default();
        let traits = body
            .get("traits")
            .cloned()
            .unwrap_or_else(|| serde_json::Value::Object(Default::default()));
        let now = time_fmt::now();
        let mut identity = Identity::new(schema_id, serde_json::Value::Null, now);
        let extracted =
            apply_traits(app, &mut identity, traits).map_err(|e| FlowFailure::Ui(trait_errors(e)))?;
        if extracted.webauthn_identifiers.is_empty() {
            return Err(ui(text::validation_identifier_missing()));
        }
        let (Some(state), Some(handle)) = (CEREMONY.state(flow), CEREMONY.user_handle(flow)) else {
            return Err(keys::registration_failure(sallyport_webauthn::Error::NoCeremony));
        };
        let mut cred = self
            .ceremonies
            .finish_registration(&state, raw, true, now)
            .map_err(keys::registration_failure)?;
        cred.display_name = str_field(body, "webauthn_register_displayname")
            .unwrap_or_default()
            .to_owned();
        let cfg = sallyport_webauthn::WebAuthnConfig {
            credentials: vec![cred],
            user_handle: handle,
        };
        keys::store_config(&mut identity, ID, &cfg, extracted.webauthn_identifiers);
        identity.available_aal = identity.compute_available_aal(app.settings.code_mfa_enabled);
        CEREMONY.forget(flow);
        Ok(RegistrationStep::Registered {
            identity: Box::new(identity),
            method: ID,
        })
    }

    fn keep_input(&self, flow: &mut Flow, body: &Body) {
        if let Some(t) = body.get("traits") {
            set_trait_values(&mut flow.ui, t);
        }
    }
}
