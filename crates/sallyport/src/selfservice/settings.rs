//! The settings flow (Kratos `selfservice/flow/settings`). For now it is created by recovery and can be
//! fetched; updating it arrives with the settings issue.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use sallyport_core::error::ApiError;
use sallyport_core::flow::{Flow, FlowKind, FlowType};
use sallyport_core::identity::Identity;
use sallyport_core::text;
use sallyport_core::time_fmt;
use sallyport_core::ui::{Group, Node};

use crate::http::error::HttpError;
use crate::http::request::ReqInfo;
use crate::session_manager;
use crate::state::{App, AppState};

/// A settings flow for `identity`: profile traits and a new password. `csrf` is the browser's token
/// as flows store it ("" for API flows).
pub fn new_flow(app: &App, csrf: String, identity: &Identity, flow_type: FlowType) -> Flow {
    let lifespan = time::Duration::seconds(3600);
    let request_url = app.public_url(if flow_type == FlowType::Api {
        "self-service/settings/api"
    } else {
        "self-service/settings/browser"
    });
    let mut f = Flow::new(
        FlowKind::Settings,
        flow_type,
        request_url,
        app.settings.public_base_url.as_str(),
        lifespan,
        csrf,
        time_fmt::now(),
    );
    f.identity_id = Some(identity.id);
    f.identity_schema = Some(identity.schema_id.clone());
    f.ui.push(Node::csrf(""));
    if let Some(schema) = app.schemas.get(&identity.schema_id) {
        f.ui.nodes
            .extend(schema.trait_nodes(Group::Profile, Some(&identity.traits)));
    }
    f.ui.push(Node::submit(
        Group::Profile,
        "method",
        "profile",
        text::label_save(),
    ));
    if app.settings.password.enabled {
        f.ui.push(
            Node::input(Group::Password, "password", "password")
                .required()
                .with_autocomplete("new-password")
                .with_label(text::label_password()),
        );
        f.ui.push(Node::submit(
            Group::Password,
            "method",
            "password",
            text::label_save(),
        ));
    }
    f
}

#[derive(Debug, Deserialize)]
pub struct FlowQuery {
    pub id: Option<String>,
}

/// `GET /self-service/settings/flows?id=` — operationId `getSettingsFlow`: only for the flow's identity.
pub async fn get_settings_flow(
    State(app): State<AppState>,
    req: ReqInfo,
    Query(q): Query<FlowQuery>,
) -> Response {
    let auth = match session_manager::fetch(&app, &req.headers).await {
        Ok(Some(a)) => a,
        Ok(None) => return HttpError(ApiError::session_inactive()).into_response(),
        Err(e) => return HttpError(e).into_response(),
    };
    let id = q.id.as_deref().and_then(|s| uuid::Uuid::parse_str(s).ok());
    if let Some(id) = id
        && let Ok(f) = app.store.get_flow(FlowKind::Settings, id).await
        && f.identity_id != Some(auth.identity.id)
    {
        return HttpError(ApiError::identity_mismatch()).into_response();
    }
    crate::selfservice::common::get_flow(&app, &req, FlowKind::Settings, q.id.as_deref()).await
}
