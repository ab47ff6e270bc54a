//! The `code` method as a plug-in: one-time codes for login (first factor or 2FA) and registration.

use async_trait::async_trait;
use serde_json::Value;

use sallyport_core::flow::Flow;
use sallyport_core::ui::Node;

use super::{Body, Cx, LoginMethod, LoginNeeds, LoginStep, RegistrationMethod, RegistrationStep, Screen};
use crate::http::body::str_field;
use crate::selfservice::code;
use crate::selfservice::common::FlowFailure;
use crate::selfservice::status_mode::{Step, respond_with_flow};
use crate::state::App;

pub struct Code;

const ID: &str = "code";

#[async_trait]
impl LoginMethod for Code {
    fn id(&self) -> &'static str {
        ID
    }

    fn populate(&self, app: &App, flow: &mut Flow, needs: &LoginNeeds<'_>) {
        code::login::populate(app, flow, needs.auth, needs.via);
    }

    fn handles(&self, app: &App, flow: &Flow, body: &Body) -> bool {
        code::login::responsible(app, flow, body)
    }

    async fn flow_created(
        &self,
        app: &App,
        flow: &mut Flow,
        needs: &LoginNeeds<'_>,
    ) -> Result<(), FlowFailure> {
        match needs.auth {
            Some(auth) => code::login::fast_2fa(app, flow, auth, needs.via)
                .await
                .map(|_| ()),
            None => Ok(()),
        }
    }

    async fn submit(&self, cx: &Cx<'_>, flow: &mut Flow, body: &Body) -> Result<LoginStep, FlowFailure> {
        match code::login::submit(cx.app, cx.req, flow, body, cx.auth).await? {
            code::login::Outcome::Sent => Ok(LoginStep::Respond(respond_with_flow(
                cx.app,
                cx.req,
                flow,
                Step::CodeSent,
            ))),
            code::login::Outcome::Authenticated(identity) => Ok(LoginStep::Authenticated {
                identity,
                method: ID,
                aal: code::login::completed_aal(cx.app),
            }),
        }
    }

    fn keep_input(&self, flow: &mut Flow, body: &Body) {
        if let Some(v) = str_field(body, "identifier").or(str_field(body, "address")) {
            flow.ui.set_value("identifier", Value::String(v.to_owned()));
        }
    }
}

#[async_trait]
impl RegistrationMethod for Code {
    fn id(&self) -> &'static str {
        ID
    }

    fn populate(&self, _app: &App, nodes: &mut Vec<Node>, screen: Screen) {
        if screen != Screen::Profile {
            nodes.push(code::registration::submit_node());
        }
    }

    fn handles(&self, _app: &App, _flow: &Flow, body: &Body) -> bool {
        str_field(body, "method") == Some(ID)
    }

    async fn submit(
        &self,
        cx: &Cx<'_>,
        flow: &mut Flow,
        body: &Body,
        schema_id: &str,
    ) -> Result<RegistrationStep, FlowFailure> {
        match code::registration::submit(cx.app, cx.req, flow, body, schema_id).await? {
            code::registration::Outcome::Sent => Ok(RegistrationStep::Respond(respond_with_flow(
                cx.app,
                cx.req,
                flow,
                Step::CodeSent,
            ))),
            code::registration::Outcome::Verified(identity) => {
                Ok(RegistrationStep::Registered { identity, method: ID })
            }
        }
    }
}
