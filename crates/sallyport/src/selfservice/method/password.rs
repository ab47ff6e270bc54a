//! The `password` method as a plug-in: login at aal1, registration, and changing the password in settings.

use async_trait::async_trait;
use serde_json::{Map, Value};

use sallyport_core::flow::Flow;
use sallyport_core::identity::{Identity, credential_type};
use sallyport_core::session::Aal;
use sallyport_core::text;
use sallyport_core::time_fmt;
use sallyport_core::ui::{Group, Node};

use super::{
    Body, Cx, LoginMethod, LoginNeeds, LoginStep, RegistrationMethod, RegistrationStep, Screen,
    SettingsFailure, SettingsMethod, SettingsStep,
};
use crate::http::body::str_field;
use crate::identities::{apply_traits, set_trait_values, trait_errors};
use crate::selfservice::common::{FieldMessage, FlowFailure, ensure_csrf};
use crate::selfservice::password;
use crate::session_manager::Authenticated;
use crate::state::App;

pub struct Password;

const ID: &str = "password";

fn is_mine(body: &Body) -> bool {
    str_field(body, "method") == Some(ID)
}

#[async_trait]
impl LoginMethod for Password {
    fn id(&self) -> &'static str {
        ID
    }

    fn populate(&self, app: &App, flow: &mut Flow, needs: &LoginNeeds<'_>) {
        if needs.aal != Aal::Aal1 {
            return;
        }
        let refresh_identifier = needs.auth.filter(|_| needs.refresh).and_then(|a| {
            a.identity
                .credentials
                .get(credential_type::PASSWORD)
                .and_then(|c| c.identifiers.first().cloned())
        });
        password::populate_login(app, flow, refresh_identifier);
    }

    fn handles(&self, _app: &App, flow: &Flow, body: &Body) -> bool {
        is_mine(body) && flow.requested_aal == Aal::Aal1
    }

    async fn submit(&self, cx: &Cx<'_>, flow: &mut Flow, body: &Body) -> Result<LoginStep, FlowFailure> {
        let identity = password::login(cx.app, cx.req, flow, body).await?;
        Ok(LoginStep::Authenticated {
            identity: Box::new(identity),
            method: ID,
            aal: Aal::Aal1,
        })
    }

    fn keep_input(&self, flow: &mut Flow, body: &Body) {
        if let Some(identifier) = str_field(body, "identifier").or(str_field(body, "password_identifier"))
            && let Some(n) = flow.ui.node_mut("identifier").and_then(Node::input_mut)
            && n.input_type != "hidden"
        {
            n.value = Some(Value::String(identifier.to_owned()));
        }
    }
}

#[async_trait]
impl RegistrationMethod for Password {
    fn id(&self) -> &'static str {
        ID
    }

    /// One step: the password right after the last identifier trait; second screen: after the traits.
    fn populate(&self, _app: &App, nodes: &mut Vec<Node>, screen: Screen) {
        match screen {
            Screen::Profile => {}
            Screen::Credentials => nodes.push(password::password_node_for_registration()),
            Screen::OneStep => {
                let at = nodes
                    .iter()
                    .rposition(|n| {
                        n.input_attrs().is_some_and(|a| {
                            a.autocomplete.as_deref() == Some("username") || a.input_type == "email"
                        })
                    })
                    .map(|i| i + 1)
                    .unwrap_or(nodes.len());
                nodes.insert(at, password::password_node_for_registration());
            }
        }
        if screen != Screen::Profile {
            nodes.push(password::registration_submit());
        }
    }

    fn handles(&self, _app: &App, _flow: &Flow, body: &Body) -> bool {
        is_mine(body)
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
        let traits = body.get("traits").cloned().unwrap_or(Value::Object(Map::new()));
        let mut identity = Identity::new(schema_id, Value::Null, time_fmt::now());
        let extracted =
            apply_traits(app, &mut identity, traits).map_err(|e| FlowFailure::Ui(trait_errors(e)))?;
        let password = str_field(body, "password").unwrap_or("");
        if password.is_empty() {
            return Err(FlowFailure::Ui(vec![FieldMessage::on(
                "password",
                text::validation_required("password"),
            )]));
        }
        if extracted.password_identifiers.is_empty() {
            return Err(FlowFailure::Ui(vec![FieldMessage::flow(
                text::validation_identifier_missing(),
            )]));
        }
        password::set_password(
            app,
            &mut identity,
            extracted.password_identifiers.clone(),
            password,
        )
        .await?;
        identity.available_aal = identity.compute_available_aal(app.settings.code_mfa_enabled);
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

#[async_trait]
impl SettingsMethod for Password {
    fn id(&self) -> &'static str {
        ID
    }

    fn populate(&self, _app: &App, flow: &mut Flow, _identity: &Identity) {
        flow.ui.push(
            Node::input(Group::Password, "password", "password")
                .required()
                .with_autocomplete("new-password")
                .with_label(text::label_password()),
        );
        flow.ui.push(Node::submit(
            Group::Password,
            "method",
            "password",
            text::label_save(),
        ));
    }

    async fn submit(
        &self,
        cx: &Cx<'_>,
        auth: &Authenticated,
        flow: &mut Flow,
        body: &Body,
    ) -> Result<SettingsStep, SettingsFailure> {
        let app = cx.app;
        if !crate::selfservice::settings::privileged(app, auth) {
            return Err(SettingsFailure::ReAuth);
        }
        let new = str_field(body, "password").unwrap_or("");
        if new.is_empty() {
            return Err(SettingsFailure::Flow(FlowFailure::Ui(vec![FieldMessage::on(
                "password",
                text::validation_required("password"),
            )])));
        }
        let mut identity = auth.identity.clone();
        if let Some(old) = identity
            .credentials
            .get(credential_type::PASSWORD)
            .and_then(|c| c.config.get("hashed_password"))
            .and_then(Value::as_str)
            && app.hasher.verify(new.as_bytes(), old).await.unwrap_or(false)
        {
            return Err(SettingsFailure::Flow(FlowFailure::Ui(vec![FieldMessage::on(
                "password",
                text::validation_password_same_as_old(),
            )])));
        }
        let identifiers = identity
            .credentials
            .get(credential_type::PASSWORD)
            .map(|c| c.identifiers.clone())
            .filter(|i| !i.is_empty())
            .or_else(|| {
                app.schemas
                    .get(&identity.schema_id)
                    .and_then(|s| s.validate_traits(&identity.traits).ok())
                    .map(|e| e.password_identifiers)
            })
            .unwrap_or_default();
        password::set_password(app, &mut identity, identifiers, new).await?;
        identity.available_aal = identity.compute_available_aal(app.settings.code_mfa_enabled);
        let point = crate::webhook::Point::PrePersist;
        crate::webhook::after(app, cx.req, flow, "password", point, &mut identity, None, true).await?;
        identity.updated_at = time_fmt::now();
        app.store.update_identity(&identity).await?;
        Ok(SettingsStep::Saved(Box::new(identity)))
    }
}
