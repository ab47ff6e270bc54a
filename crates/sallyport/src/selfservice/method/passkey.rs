//! The `passkey` method as a plug-in (Kratos `selfservice/strategy/passkey`): sign up with a passkey
//! only, sign in with a discoverable credential and no identifier, add and remove passkeys in
//! settings. Browser, SPA and native flows; native flows get trigger names without `onclick` code.

use async_trait::async_trait;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use sallyport_core::error::ApiError;
use sallyport_core::flow::{Flow, FlowType};
use sallyport_core::identity::{Identity, credential_type};
use sallyport_core::session::Aal;
use sallyport_core::text;
use sallyport_core::time_fmt;
use sallyport_core::ui::{Group, Node};
use sallyport_webauthn::{Ceremonies, StoredCredential, UserVerification, WebAuthnConfig};

use super::{
    Body, Cx, LoginMethod, LoginNeeds, LoginStep, RegistrationMethod, RegistrationStep, Screen,
    SettingsFailure, SettingsMethod, SettingsStep,
};
use crate::http::body::str_field;
use crate::http::error::{HttpError, redirect, store_error};
use crate::identities::{apply_traits, set_trait_values, trait_errors};
use crate::selfservice::common::{FieldMessage, FlowFailure, ensure_csrf, ui_redirect_url};
use crate::selfservice::keys::{self, Ceremony};
use crate::session_manager::Authenticated;
use crate::settings::WebAuthnSettings;
use crate::state::App;

const ID: &str = credential_type::PASSKEY;
const CEREMONY: Ceremony<'static> = Ceremony { method: ID };
const UV: UserVerification = UserVerification::Preferred;

pub struct Passkey {
    ceremonies: Ceremonies,
}

impl Passkey {
    pub fn new(s: &WebAuthnSettings) -> anyhow::Result<Passkey> {
        Ok(Passkey {
            ceremonies: Ceremonies::new(&s.rp)
                .map_err(|e| anyhow::anyhow!("selfservice.methods.passkey: {e}"))?,
        })
    }

    /// A discoverable login: request options with no allowed credentials, state kept on the flow.
    fn start_discoverable_login(&self, flow: &mut Flow) -> Option<String> {
        let (options, state) = self.ceremonies.begin_login(&[], UV).ok()?;
        CEREMONY.save(flow, state, None);
        Some(options.to_string())
    }

    fn populate_first_factor(&self, app: &App, flow: &mut Flow) {
        let Some(options) = self.start_discoverable_login(flow) else {
            return;
        };
        let browser = flow.flow_type == FlowType::Browser;
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
        flow.ui
            .push(keys::hidden(Group::Passkey, "passkey_challenge", Some(options)));
        keys::push_script(app, flow);
        let mut login = keys::hidden(Group::Passkey, "passkey_login", None);
        if let Some(a) = login.input_mut() {
            a.onload_trigger = Some("oryPasskeyLoginAutocompleteInit".into());
            if browser {
                a.onload = Some("window.oryPasskeyLoginAutocompleteInit()".into());
            }
        }
        flow.ui.push(login);
        flow.ui.push(self.login_trigger(flow.flow_type));
    }

    fn login_trigger(&self, flow_type: FlowType) -> Node {
        keys::trigger(
            Group::Passkey,
            "passkey_login_trigger",
            flow_type,
            "oryPasskeyLogin",
            "",
            text::login_passkey(),
        )
        .with_value(json!(""))
    }

    /// Re-authentication: the identity's own passkeys are the allowed credentials.
    fn populate_refresh(&self, app: &App, flow: &mut Flow, identity: &Identity) {
        let cfg = keys::config(identity, ID);
        if cfg.credentials.is_empty() {
            return;
        }
        let Ok((options, state)) = self.ceremonies.begin_login(&cfg.credentials, UV) else {
            return;
        };
        CEREMONY.save(flow, state, None);
        flow.ui.push(keys::hidden(
            Group::Passkey,
            "passkey_challenge",
            Some(options.to_string()),
        ));
        keys::push_script(app, flow);
        flow.ui.push(keys::hidden(Group::Passkey, "passkey_login", None));
        flow.ui.push(self.login_trigger(flow.flow_type));
        if flow.ui.node("identifier").is_none() {
            flow.ui.push(
                Node::input(Group::Default, "identifier", "hidden")
                    .with_value(json!(keys::display_name(app, identity))),
            );
        }
    }

    /// Creation options for a new account, reused while the flow lives so a re-rendered form keeps
    /// its challenge. `None` when the schema names no trait to call the passkey by.
    fn registration_options(&self, app: &App, flow: &mut Flow) -> Option<String> {
        if let Some(o) = CEREMONY.options(flow) {
            return Some(o.to_string());
        }
        let schema_id = flow
            .identity_schema
            .clone()
            .unwrap_or_else(|| app.settings.default_schema_id.clone());
        let fields = keys::display_name_fields(app, &schema_id);
        let Some(first) = fields.first().cloned() else {
            tracing::warn!(
                "The passkey method is enabled, but the identity schema marks no trait as a passkey display name (passkey.display_name) or WebAuthn identifier (webauthn.identifier); passkey registration is not offered."
            );
            return None;
        };
        let handle = sallyport_webauthn::random_user_handle();
        let (options, state) = self
            .ceremonies
            .begin_registration(&handle, "", true, UV, &[])
            .ok()?;
        let create = json!({
            "credentialOptions": options,
            "displayNameFieldName": first,
            "displayNameFieldNames": fields,
        });
        CEREMONY.save(flow, state, Some(&handle));
        CEREMONY.save_options(flow, create.clone());
        Some(create.to_string())
    }

    /// Checks the assertion in `passkey_login` and finds who it belongs to.
    async fn authenticate(&self, cx: &Cx<'_>, flow: &mut Flow, raw: &str) -> Result<Identity, FlowFailure> {
        let app = cx.app;
        let assertion = sallyport_webauthn::parse_assertion(raw).map_err(keys::login_failure)?;
        let verifier_wrong = || FlowFailure::Ui(vec![FieldMessage::flow(text::webauthn_verifier_wrong())]);
        let Some(state) = CEREMONY.state(flow) else {
            return Err(verifier_wrong());
        };
        let no_user = || FlowFailure::Ui(vec![FieldMessage::flow(text::webauthn_no_user())]);
        let handle = assertion.response.user_handle.clone().unwrap_or_default();
        if handle.is_empty() {
            return Err(no_user());
        }
        let (mut identity, kind) = match find_by_user_handle(app, &handle).await {
            Some(found) => found,
            None => return Err(no_user()),
        };
        let mut cfg = keys::config(&identity, kind);
        let candidates: Vec<StoredCredential> = cfg
            .credentials
            .iter()
            .filter(|c| c.is_passwordless)
            .cloned()
            .collect();
        if candidates.is_empty() {
            return Err(FlowFailure::Ui(vec![FieldMessage::flow(
                text::webauthn_no_device(),
            )]));
        }
        let outcome = self
            .ceremonies
            .finish_login(&state, &assertion, &candidates, UV)
            .map_err(keys::login_failure)?;
        if outcome.clone_warning {
            tracing::warn!(identity_id = %identity.id, "passkey sign counter did not advance; the credential may be cloned");
        }
        for c in cfg.credentials.iter_mut() {
            if let Some(u) = outcome.credentials.iter().find(|u| u.id == c.id) {
                *c = u.clone();
            }
        }
        let identifiers = identity
            .credentials
            .get(kind)
            .map(|c| c.identifiers.clone())
            .unwrap_or_default();
        keys::store_config(&mut identity, kind, &cfg, identifiers);
        identity.updated_at = time_fmt::now();
        app.store.update_identity(&identity).await?;
        CEREMONY.forget(flow);
        Ok(identity)
    }
}

/// The identity a user handle belongs to: a passkey identifier, or (Kratos' migration path) the
/// user handle of a passwordless `webauthn` credential, which is the identity id's 16 bytes.
async fn find_by_user_handle(app: &App, handle: &[u8]) -> Option<(Identity, &'static str)> {
    if let Ok(h) = std::str::from_utf8(handle)
        && let Ok(i) = app.store.find_identity_by_identifier(ID, h).await
    {
        return Some((i, ID));
    }
    let id = uuid::Uuid::from_slice(handle).ok()?;
    let i = app.store.get_identity(id).await.ok()?;
    let cfg = keys::config(&i, credential_type::WEBAUTHN);
    (cfg.user_handle == handle).then_some((i, credential_type::WEBAUTHN))
}

fn login_value(body: &Body) -> Option<&str> {
    str_field(body, "passkey_login").filter(|s| !s.is_empty())
}

fn register_value(body: &Body) -> Option<&str> {
    // Ory's React SDK sends "true" for an empty field.
    str_field(body, "passkey_register").filter(|s| !s.is_empty() && *s != "true")
}

/// Kratos answers a submission that only chose the method by showing the passkey form again.
pub(super) fn show_again(app: &App, cx: &Cx<'_>, flow: &Flow) -> Response {
    let to = ui_redirect_url(app, flow.kind, flow.id);
    if flow.flow_type == FlowType::Browser && !cx.req.is_json {
        return redirect(StatusCode::SEE_OTHER, &to);
    }
    HttpError(ApiError::browser_location_change_required(&to)).into_response()
}

#[async_trait]
impl LoginMethod for Passkey {
    fn id(&self) -> &'static str {
        ID
    }

    fn populate(&self, app: &App, flow: &mut Flow, needs: &LoginNeeds<'_>) {
        if needs.aal != Aal::Aal1 {
            return;
        }
        match (needs.refresh, needs.auth) {
            (true, Some(a)) => self.populate_refresh(app, flow, &a.identity),
            (true, None) | (false, _) => self.populate_first_factor(app, flow),
        }
    }

    fn handles(&self, _app: &App, _flow: &Flow, body: &Body) -> bool {
        login_value(body).is_some() || str_field(body, "method") == Some(ID)
    }

    async fn submit(&self, cx: &Cx<'_>, flow: &mut Flow, body: &Body) -> Result<LoginStep, FlowFailure> {
        let app = cx.app;
        if flow.requested_aal != Aal::Aal1 {
            return Err(FlowFailure::Ui(vec![FieldMessage::flow(
                text::login_no_strategy(),
            )]));
        }
        ensure_csrf(app, cx.req, flow, str_field(body, "csrf_token"))?;
        let Some(raw) = login_value(body) else {
            flow.ui.nodes.retain(|n| n.name() == "csrf_token");
            self.populate_first_factor(app, flow);
            app.store.update_flow(flow).await?;
            return Ok(LoginStep::Respond(show_again(app, cx, flow)));
        };
        let identity = self.authenticate(cx, flow, raw).await?;
        Ok(LoginStep::Authenticated {
            identity: Box::new(identity),
            method: ID,
            aal: Aal::Aal1,
        })
    }
}

#[async_trait]
impl RegistrationMethod for Passkey {
    fn id(&self) -> &'static str {
        ID
    }

    fn populate(&self, _app: &App, _nodes: &mut Vec<Node>, _screen: Screen) {}

    fn populate_flow(&self, app: &App, flow: &mut Flow, nodes: &mut Vec<Node>, screen: Screen) {
        if screen == Screen::Profile {
            return;
        }
        let Some(create) = self.registration_options(app, flow) else {
            return;
        };
        nodes.push(keys::hidden(Group::Passkey, "passkey_create_data", Some(create)));
        nodes.push(keys::trigger(
            Group::Passkey,
            "passkey_register_trigger",
            flow.flow_type,
            "oryPasskeyRegistration",
            "",
            text::registration_passkey(),
        ));
        let is_script = crate::public::webauthn::is_script_node;
        if flow.flow_type == FlowType::Browser
            && !flow.ui.nodes.iter().any(is_script)
            && !nodes.iter().any(is_script)
        {
            nodes.push(crate::public::webauthn::script_node(
                &app.settings.public_base_url,
            ));
        }
        nodes.push(keys::hidden(Group::Passkey, "passkey_register", None));
    }

    fn handles(&self, _app: &App, _flow: &Flow, body: &Body) -> bool {
        register_value(body).is_some()
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
        let raw = register_value(body).unwrap_or_default();
        let traits = body.get("traits").cloned().unwrap_or(Value::Object(Map::new()));
        let now = time_fmt::now();
        let mut identity = Identity::new(schema_id, Value::Null, now);
        apply_traits(app, &mut identity, traits).map_err(|e| FlowFailure::Ui(trait_errors(e)))?;
        let (Some(state), Some(handle)) = (CEREMONY.state(flow), CEREMONY.user_handle(flow)) else {
            return Err(keys::registration_failure(sallyport_webauthn::Error::NoCeremony));
        };
        let cred = self
            .ceremonies
            .finish_registration(&state, raw, true, now)
            .map_err(keys::registration_failure)?;
        let cfg = WebAuthnConfig {
            credentials: vec![cred],
            user_handle: handle.clone(),
        };
        let identifier = String::from_utf8_lossy(&handle).into_owned();
        keys::store_config(&mut identity, ID, &cfg, vec![identifier]);
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

fn settings_ui(messages: Vec<FieldMessage>) -> SettingsFailure {
    SettingsFailure::Flow(FlowFailure::Ui(messages))
}

#[async_trait]
impl SettingsMethod for Passkey {
    fn id(&self) -> &'static str {
        ID
    }

    fn populate(&self, app: &App, flow: &mut Flow, identity: &Identity) {
        let count = keys::first_factor_count(app, identity);
        let cfg = keys::config(identity, ID);
        for c in &cfg.credentials {
            let name = if c.display_name.is_empty() {
                "unnamed"
            } else {
                &c.display_name
            };
            let mut n = Node::submit(
                Group::Passkey,
                "passkey_remove",
                &c.hex_id(),
                text::settings_remove_passkey(name, c.added_at),
            );
            if let Some(a) = n.input_mut() {
                a.disabled = count < 2;
            }
            flow.ui.push(n);
        }
        let name = keys::display_name(app, identity);
        if name.is_empty() {
            flow.ui.messages.push(text::validation_identifier_missing());
            return;
        }
        let handle = sallyport_webauthn::random_user_handle();
        let Ok((options, state)) =
            self.ceremonies
                .begin_registration(&handle, &name, true, UV, &cfg.credentials)
        else {
            return;
        };
        CEREMONY.save(flow, state, Some(&handle));
        keys::push_script(app, flow);
        flow.ui.push(
            keys::trigger(
                Group::Passkey,
                "passkey_register_trigger",
                flow.flow_type,
                "oryPasskeySettingsRegistration",
                "",
                text::settings_add_passkey(),
            )
            .with_value(json!("")),
        );
        flow.ui
            .push(keys::hidden(Group::Passkey, "passkey_settings_register", None));
        flow.ui.push(keys::hidden(
            Group::Passkey,
            "passkey_create_data",
            Some(options.to_string()),
        ));
    }

    fn implied_by(&self, body: &Body) -> bool {
        ["passkey_settings_register", "passkey_remove"]
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
        let remove = str_field(body, "passkey_remove").filter(|s| !s.is_empty());
        let register = str_field(body, "passkey_settings_register").filter(|s| !s.is_empty());
        if remove.is_none() && register.is_none() {
            return Err(settings_ui(vec![FieldMessage::flow(text::validation_generic(
                "Could not find a strategy to update your settings with. Did you fill out the form correctly?",
            ))]));
        }
        if !crate::selfservice::settings::privileged(app, auth) {
            return Err(SettingsFailure::ReAuth);
        }
        let now = time_fmt::now();
        let mut identity = app.store.get_identity(auth.identity.id).await?;
        let mut cfg = keys::config(&identity, ID);
        let identifiers = identity
            .credentials
            .get(ID)
            .map(|c| c.identifiers.clone())
            .unwrap_or_default();
        if let Some(hex) = remove {
            if cfg.credentials.is_empty() {
                return Err(FlowFailure::Api(ApiError::bad_request(
                    "You tried to remove a WebAuthn but you have no WebAuthn set up.",
                ))
                .into());
            }
            let before = cfg.credentials.len();
            cfg.credentials.retain(|c| c.hex_id() != hex);
            if cfg.credentials.len() == before {
                return Err(FlowFailure::Api(ApiError::bad_request(
                    "You tried to remove a passkey which does not exist.",
                ))
                .into());
            }
            if keys::first_factor_count(app, &identity) < 2 {
                return Err(settings_ui(vec![FieldMessage::flow(text::validation_generic(
                    "unable to remove this security key because it would lock you out of your account",
                ))]));
            }
            keys::store_config(&mut identity, ID, &cfg, identifiers);
        } else {
            let raw = register.unwrap_or_default();
            let (Some(state), Some(handle)) = (CEREMONY.state(flow), CEREMONY.user_handle(flow)) else {
                return Err(keys::registration_failure(sallyport_webauthn::Error::NoCeremony).into());
            };
            let cred = self
                .ceremonies
                .finish_registration(&state, raw, true, now)
                .map_err(keys::registration_failure)?;
            if cfg.credentials.iter().any(|c| c.id == cred.id) {
                return Err(settings_ui(vec![FieldMessage::on(
                    "passkey_settings_register",
                    text::validation_generic(
                        "this security key or passkey is already registered with your account",
                    ),
                )]));
            }
            cfg.credentials.push(cred);
            cfg.user_handle = handle.clone();
            let mut identifiers = identifiers;
            let h = String::from_utf8_lossy(&handle).into_owned();
            if !identifiers.contains(&h) {
                identifiers.push(h);
            }
            keys::store_config(&mut identity, ID, &cfg, identifiers);
            CEREMONY.forget(flow);
            // Kratos `SessionAddAuthenticationMethods`: adding a passkey counts as using it (aal1).
            let mut session = auth.session.clone();
            session.complete_method(ID, Aal::Aal1, now);
            session.updated_at = now;
            app.store.update_session(&session).await?;
        }
        identity.available_aal = identity.compute_available_aal(app.settings.code_mfa_enabled);
        identity.updated_at = now;
        app.store
            .update_identity(&identity)
            .await
            .map_err(|e| SettingsFailure::Flow(FlowFailure::Api(store_error(e))))?;
        Ok(SettingsStep::Saved(Box::new(identity)))
    }
}
