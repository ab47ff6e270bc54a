//! Post-flow hooks that involve verification (Kratos `selfservice/hook/verification.go`,
//! `show_verification_ui.go`, `require_verified_address.go`).

use serde_json::{Value, json};

use sallyport_core::flow::{Flow, FlowKind, FlowType};
use sallyport_core::identity::Identity;

use crate::selfservice::address_flow;
use crate::selfservice::code::Address;
use crate::selfservice::common::{FlowFailure, ui_redirect_url};
use crate::state::App;

/// Starts a verification flow for every unverified address of `identity` and sends its message.
/// Returns the `show_verification_ui` items for the parent flow's `continue_with`.
///
/// `csrf` is the CSRF token (as flows store it) the browser holds once the response that runs this hook
/// is done: after registration or login that is the rotated token the response hands out, not the one
/// the request came with, or the UI's first fetch of the new flow fails with `security_csrf_violation`.
pub async fn start_verification(
    app: &App,
    identity: &Identity,
    flow_type: FlowType,
    csrf: &str,
) -> Result<Vec<Value>, FlowFailure> {
    if !app.settings.verification.enabled {
        return Ok(vec![]);
    }
    let mut items = vec![];
    for a in identity.verifiable_addresses.iter().filter(|a| !a.verified) {
        let csrf = if flow_type == FlowType::Browser {
            csrf.to_owned()
        } else {
            String::new()
        };
        let request_url = app.public_url(&format!(
            "self-service/verification/{}",
            if flow_type == FlowType::Api {
                "api"
            } else {
                "browser"
            }
        ));
        let mut flow: Flow =
            address_flow::new_flow(app, FlowKind::Verification, flow_type, request_url, None, csrf);
        app.store.create_flow(&flow).await?;
        let address = Address {
            via: a.via.clone(),
            to: a.value.clone(),
        };
        match crate::selfservice::verification::send(
            app,
            &mut flow,
            &address,
            app.settings.verification.use_link,
        )
        .await
        {
            // The registration or settings change itself succeeded; only this mail waits for its budget.
            Err(FlowFailure::Limited(_)) => {
                tracing::info!("verification message not sent: the address's send budget is spent");
            }
            other => other?,
        }
        let mut f = json!({"id": flow.id, "verifiable_address": a.value});
        if flow_type == FlowType::Browser {
            f["url"] = json!(ui_redirect_url(app, FlowKind::Verification, flow.id));
        }
        items.push(json!({"action": "show_verification_ui", "flow": f}));
    }
    Ok(items)
}

/// Where a browser goes for `show_verification_ui`: the first verification flow's UI.
pub fn verification_ui_url(items: &[Value]) -> Option<String> {
    items
        .iter()
        .find_map(|i| i["flow"]["url"].as_str().map(str::to_owned))
}
