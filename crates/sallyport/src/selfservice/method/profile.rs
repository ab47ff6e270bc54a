//! The `profile` method as a plug-in: the traits screen of two-step registration, and traits in settings.

use async_trait::async_trait;
use axum::response::IntoResponse;
use serde_json::{Map, Value};

use sallyport_core::flow::Flow;
use sallyport_core::identity::Identity;
use sallyport_core::store::StoreError;
use sallyport_core::text;
use sallyport_core::time_fmt;
use sallyport_core::ui::{Group, Node};

use super::{
    Body, Cx, RegistrationMethod, RegistrationStep, Screen, SettingsFailure, SettingsMethod, SettingsStep,
};
use crate::http::body::str_field;
use crate::http::error::{HttpError, store_error};
use crate::identities::{apply_traits, set_trait_values, trait_errors};
use crate::selfservice::common::{FieldMessage, FlowFailure};
use crate::selfservice::profile;
use crate::selfservice::status_mode::{Step, respond_with_flow};
use crate::session_manager::Authenticated;
use crate::state::App;

pub struct Profile;

const ID: &str = "profile";

#[async_trait]
impl RegistrationMethod for Profile {
    fn id(&self) -> &'static str {
        ID
    }

    fn populate(&self, _app: &App, nodes: &mut Vec<Node>, screen: Screen) {
        if screen == Screen::Profile {
            nodes.push(profile::profile_submit());
        }
    }

    fn handles(&self, app: &App, _flow: &Flow, body: &Body) -> bool {
        app.settings.registration_two_step
            && (str_field(body, "method") == Some(ID)
                || body
                    .get("screen")
                    .is_some_and(|s| s.as_str().is_some_and(|s| !s.is_empty())))
    }

    async fn submit(
        &self,
        cx: &Cx<'_>,
        flow: &mut Flow,
        body: &Body,
        _schema_id: &str,
    ) -> Result<RegistrationStep, FlowFailure> {
        let (app, req) = (cx.app, cx.req);
        profile::submit(app, req, flow, body)?;
        flow.updated_at = time_fmt::now();
        if let Err(e) = app.store.update_flow(flow).await {
            return Ok(RegistrationStep::Respond(
                HttpError(store_error(e)).into_response(),
            ));
        }
        Ok(RegistrationStep::Respond(respond_with_flow(
            app,
            req,
            flow,
            Step::ChooseMethod,
        )))
    }
}

/// Traits that carry credentials or addresses may only change in a privileged session.
fn touches_credentials(before: &Identity, after: &Identity) -> bool {
    let ids = |i: &Identity| {
        let mut v: Vec<String> = i
            .credentials
            .values()
            .flat_map(|c| c.identifiers.clone())
            .collect();
        v.extend(
            i.verifiable_addresses
                .iter()
                .map(|a| format!("v:{}:{}", a.via, a.value)),
        );
        v.extend(
            i.recovery_addresses
                .iter()
                .map(|a| format!("r:{}:{}", a.via, a.value)),
        );
        v.sort();
        v
    };
    ids(before) != ids(after)
}

#[async_trait]
impl SettingsMethod for Profile {
    fn id(&self) -> &'static str {
        ID
    }

    fn populate(&self, app: &App, flow: &mut Flow, identity: &Identity) {
        if let Some(schema) = app.schemas.get(&identity.schema_id) {
            flow.ui
                .nodes
                .extend(schema.trait_nodes(Group::Profile, Some(&identity.traits)));
        }
        flow.ui.push(Node::submit(
            Group::Profile,
            "method",
            "profile",
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
        let traits = body.get("traits").cloned().unwrap_or(Value::Object(Map::new()));
        let mut identity = auth.identity.clone();
        apply_traits(app, &mut identity, traits.clone()).map_err(|e| {
            set_trait_values(&mut flow.ui, &traits);
            SettingsFailure::Flow(FlowFailure::Ui(trait_errors(e)))
        })?;
        if touches_credentials(&auth.identity, &identity)
            && !crate::selfservice::settings::privileged(app, auth)
        {
            return Err(SettingsFailure::ReAuth);
        }
        let point = crate::webhook::Point::PrePersist;
        crate::webhook::after(app, cx.req, flow, "profile", point, &mut identity, None, true).await?;
        identity.updated_at = time_fmt::now();
        match app.store.update_identity(&identity).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                return Err(SettingsFailure::Flow(FlowFailure::Ui(vec![FieldMessage::flow(
                    text::validation_duplicate_credentials(),
                )])));
            }
            Err(e) => return Err(e.into()),
        }
        // New addresses need verifying, as after registration.
        // Settings keeps the browser's token (Kratos `GenerateCSRFToken`), so the flow stores that one.
        crate::selfservice::hooks::start_verification(app, &identity, flow.flow_type, &flow.csrf_token)
            .await?;
        Ok(SettingsStep::Saved(Box::new(identity)))
    }
}
