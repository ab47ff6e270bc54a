//! The second factors `totp` and `lookup_secret` as plug-ins: login at aal2 and their settings.

use async_trait::async_trait;

use sallyport_core::flow::Flow;
use sallyport_core::identity::Identity;
use sallyport_core::session::Aal;
use sallyport_core::text;

use super::{Body, Cx, LoginMethod, LoginNeeds, LoginStep, SettingsFailure, SettingsMethod, SettingsStep};
use crate::http::body::str_field;
use crate::selfservice::common::{FieldMessage, FlowFailure};
use crate::selfservice::mfa;
use crate::session_manager::Authenticated;
use crate::state::App;

pub struct Totp;
pub struct LookupSecret;

fn handles(id: &str, flow: &Flow, body: &Body) -> bool {
    str_field(body, "method") == Some(id) && flow.requested_aal >= Aal::Aal2
}

async fn login(id: &'static str, cx: &Cx<'_>, flow: &Flow, body: &Body) -> Result<LoginStep, FlowFailure> {
    let Some(auth) = cx.auth else {
        return Err(FlowFailure::Ui(vec![FieldMessage::flow(
            text::login_no_strategy(),
        )]));
    };
    let identity = mfa::login(cx.app, cx.req, flow, body, auth, id).await?;
    Ok(LoginStep::Authenticated {
        identity: Box::new(identity),
        method: id,
        aal: Aal::Aal2,
    })
}

async fn settings(
    id: &'static str,
    cx: &Cx<'_>,
    auth: &Authenticated,
    flow: &mut Flow,
    body: &Body,
) -> Result<SettingsStep, SettingsFailure> {
    mfa::update_settings(cx.app, auth, flow, id, body)
        .await
        .map_err(|e| match e {
            mfa::SettingsError::Flow(f) => SettingsFailure::Flow(f),
            mfa::SettingsError::ReAuth => SettingsFailure::ReAuth,
        })
}

#[async_trait]
impl LoginMethod for Totp {
    fn id(&self) -> &'static str {
        "totp"
    }

    fn populate(&self, app: &App, flow: &mut Flow, needs: &LoginNeeds<'_>) {
        if needs.aal >= Aal::Aal2
            && let Some(a) = needs.auth
        {
            mfa::populate_totp_login(app, flow, &a.identity);
        }
    }

    fn handles(&self, _app: &App, flow: &Flow, body: &Body) -> bool {
        handles("totp", flow, body)
    }

    async fn submit(&self, cx: &Cx<'_>, flow: &mut Flow, body: &Body) -> Result<LoginStep, FlowFailure> {
        login("totp", cx, flow, body).await
    }
}

#[async_trait]
impl LoginMethod for LookupSecret {
    fn id(&self) -> &'static str {
        "lookup_secret"
    }

    fn populate(&self, app: &App, flow: &mut Flow, needs: &LoginNeeds<'_>) {
        if needs.aal >= Aal::Aal2
            && let Some(a) = needs.auth
        {
            mfa::populate_lookup_login(app, flow, &a.identity);
        }
    }

    fn handles(&self, _app: &App, flow: &Flow, body: &Body) -> bool {
        handles("lookup_secret", flow, body)
    }

    async fn submit(&self, cx: &Cx<'_>, flow: &mut Flow, body: &Body) -> Result<LoginStep, FlowFailure> {
        login("lookup_secret", cx, flow, body).await
    }
}

#[async_trait]
impl SettingsMethod for Totp {
    fn id(&self) -> &'static str {
        "totp"
    }

    fn populate(&self, app: &App, flow: &mut Flow, identity: &Identity) {
        mfa::populate_totp_settings(app, flow, identity);
    }

    fn implied_by(&self, body: &Body) -> bool {
        mfa::settings_method(body) == Some("totp")
    }

    async fn submit(
        &self,
        cx: &Cx<'_>,
        auth: &Authenticated,
        flow: &mut Flow,
        body: &Body,
    ) -> Result<SettingsStep, SettingsFailure> {
        settings("totp", cx, auth, flow, body).await
    }
}

#[async_trait]
impl SettingsMethod for LookupSecret {
    fn id(&self) -> &'static str {
        "lookup_secret"
    }

    fn populate(&self, app: &App, flow: &mut Flow, identity: &Identity) {
        if app.settings.lookup_enabled {
            mfa::populate_lookup_settings(app, flow, identity);
        }
    }

    fn implied_by(&self, body: &Body) -> bool {
        mfa::settings_method(body) == Some("lookup_secret")
    }

    async fn submit(
        &self,
        cx: &Cx<'_>,
        auth: &Authenticated,
        flow: &mut Flow,
        body: &Body,
    ) -> Result<SettingsStep, SettingsFailure> {
        settings("lookup_secret", cx, auth, flow, body).await
    }
}
