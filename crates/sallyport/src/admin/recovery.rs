//! Admin-initiated recovery (Kratos `strategy/code/strategy_recovery_admin.go`, `strategy/link/strategy_recovery_admin.go`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use sallyport_core::code::CodeKind;
use sallyport_core::error::ApiError;
use sallyport_core::flow::{FlowKind, FlowState, FlowType};
use sallyport_core::identity::Identity;
use sallyport_core::store::StoreError;
use sallyport_core::time_fmt::{self, rfc3339};

use crate::http::body::RawBody;
use crate::http::error::{HttpError, json as json_res};
use crate::selfservice::address_flow;
use crate::selfservice::code::{self, Address};
use crate::state::{App, AppState};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    identity_id: Uuid,
    expires_in: Option<String>,
    flow_type: Option<String>,
}

fn parse(body: &[u8]) -> Result<Body, ApiError> {
    crate::http::body::parse_json(body)
}

fn lifespan(app: &App, raw: Option<&str>) -> Result<time::Duration, ApiError> {
    let Some(raw) = raw.filter(|s| !s.is_empty()) else {
        return Ok(time::Duration::try_from(app.settings.recovery.lifespan).unwrap_or(time::Duration::HOUR));
    };
    let negative = raw.starts_with('-');
    let unparsable = || {
        ApiError::bad_request(format!(
            "Unable to parse \"expires_in\" as a duration string (e.g. \"1h\", \"1m30s\", \"500ms\"): {raw}"
        ))
    };
    let d = sallyport_config::parse_go_duration(raw.trim_start_matches('-')).map_err(|_| unparsable())?;
    // Go's time.ParseDuration refuses anything past i64 nanoseconds (about 292 years); accepting more
    // would overflow the flow's expiry date.
    if d.as_nanos() > i64::MAX as u128 {
        return Err(unparsable());
    }
    if negative || d.is_zero() {
        return Err(ApiError::bad_request(format!(
            "Value from \"expires_in\" must result to a future time: {raw}"
        )));
    }
    Ok(time::Duration::try_from(d).unwrap_or(time::Duration::HOUR))
}

async fn identity(app: &App, id: Uuid, status: u16) -> Result<Identity, ApiError> {
    match app.store.get_identity(id).await {
        Ok(i) => Ok(i),
        Err(StoreError::NotFound) => Err(ApiError::new(status)
            .with_reason("could not find identity")
            .with_message(if status == 404 {
                "Unable to locate the resource"
            } else {
                "The request was malformed or contained invalid parameters"
            })),
        Err(e) => Err(crate::http::error::store_error(e)),
    }
}

fn recovery_address(i: &Identity) -> Address {
    i.recovery_addresses
        .first()
        .map(|a| Address {
            via: a.via.clone(),
            to: a.value.clone(),
        })
        .unwrap_or(Address {
            via: "email".into(),
            to: String::new(),
        })
}

/// `POST /admin/recovery/code` — operationId `createRecoveryCodeForIdentity`.
pub async fn create_recovery_code_for_identity(
    State(app): State<AppState>,
    RawBody(body): RawBody,
) -> Result<Response, HttpError> {
    if !app.settings.code.enabled {
        return Err(ApiError::not_found("This endpoint was disabled by system administrator. Please check your url or contact the system administrator to enable it.").into());
    }
    let b = parse(&body)?;
    let flow_type = match b.flow_type.as_deref().unwrap_or("browser") {
        "browser" => FlowType::Browser,
        "api" => FlowType::Api,
        other => {
            return Err(ApiError::bad_request(format!(
                "flow_type \"{other}\" is invalid; expected \"browser\" or \"api\""
            ))
            .into());
        }
    };
    let ttl = lifespan(&app, b.expires_in.as_deref())?;
    let identity = identity(&app, b.identity_id, 404).await?;
    let now = time_fmt::now();
    let request_url = app.public_url("self-service/recovery/browser");
    let mut flow = address_flow::new_flow(
        &app,
        FlowKind::Recovery,
        flow_type,
        request_url,
        None,
        String::new(),
    );
    flow.expires_at = now + ttl;
    flow.state = FlowState::SentEmail;
    flow.active = Some("code".into());
    // The link goes to someone whose browser never saw this flow (Kratos `DangerousSkipCSRFCheck`):
    // fetching it and submitting the code skip the CSRF check; the code itself is the secret.
    crate::selfservice::common::skip_csrf_check(&mut flow);
    let mut code_node = code::code_input(sallyport_core::text::label_recovery_code());
    if let Some(a) = code_node.input_mut() {
        a.pattern = Some("[0-9]+".into());
        a.maxlength = Some(6);
    }
    flow.ui.nodes = vec![
        sallyport_core::ui::Node::csrf(""),
        code_node,
        code::continue_button(),
    ];
    let secret = code::generate();
    let mut c = code::new_code(
        &app,
        &flow,
        CodeKind::Recovery,
        &recovery_address(&identity),
        Some(identity.id),
        &secret,
    );
    c.expires_at = now + ttl;
    app.store.create_flow(&flow).await?;
    app.store.save_codes(&flow, CodeKind::Recovery, &[c], &[]).await?;
    let link = crate::selfservice::common::ui_redirect_url(&app, FlowKind::Recovery, flow.id);
    Ok(json_res(
        StatusCode::CREATED,
        &json!({"recovery_link": link, "recovery_code": secret, "expires_at": rfc3339(now + ttl)}),
    ))
}

/// `POST /admin/recovery/link` — operationId `createRecoveryLinkForIdentity`.
pub async fn create_recovery_link_for_identity(
    State(app): State<AppState>,
    RawBody(body): RawBody,
) -> Result<Response, HttpError> {
    if !app.settings.link_enabled {
        return Err(ApiError::not_found("This endpoint was disabled by system administrator. Please check your url or contact the system administrator to enable it.").into());
    }
    let b = parse(&body)?;
    let ttl = lifespan(&app, b.expires_in.as_deref())?;
    let identity = identity(&app, b.identity_id, 400).await?;
    let now = time_fmt::now();
    let mut flow = address_flow::new_flow(
        &app,
        FlowKind::Recovery,
        FlowType::Browser,
        app.public_url("self-service/recovery/browser"),
        None,
        String::new(),
    );
    flow.expires_at = now + ttl;
    flow.state = FlowState::SentEmail;
    flow.active = Some("link".into());
    let token = code::generate_secret(true);
    let mut c = code::new_code(
        &app,
        &flow,
        CodeKind::RecoveryLink,
        &recovery_address(&identity),
        Some(identity.id),
        &token,
    );
    c.expires_at = now + ttl;
    app.store.create_flow(&flow).await?;
    app.store
        .save_codes(&flow, CodeKind::RecoveryLink, &[c], &[])
        .await?;
    let mut url = url::Url::parse(&app.public_url("self-service/recovery")).expect("valid base URL");
    url.query_pairs_mut()
        .append_pair("flow", &flow.id.to_string())
        .append_pair("token", &token);
    Ok(json_res(
        StatusCode::OK,
        &json!({"recovery_link": url.to_string(), "expires_at": rfc3339(now + ttl)}),
    ))
}
