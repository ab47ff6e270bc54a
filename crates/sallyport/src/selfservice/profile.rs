//! Step one of Kratos' default two-step (`profile_first`) registration: traits first, then credentials.

use serde_json::{Map, Value};

use sallyport_core::flow::Flow;
use sallyport_core::identity::Identity;
use sallyport_core::text;
use sallyport_core::time_fmt;
use sallyport_core::ui::{Group, Node};

use crate::http::body::str_field;
use crate::http::request::ReqInfo;
use crate::identities::{apply_traits, set_trait_values, trait_errors};
use crate::selfservice::common::{FlowFailure, ensure_csrf};
use crate::selfservice::method::Screen;
use crate::state::App;

pub fn profile_submit() -> Node {
    Node::submit(Group::Profile, "method", "profile", text::registration_sign_up())
}

fn previous_screen() -> Node {
    Node::submit(Group::Profile, "screen", "previous", text::registration_back())
}

/// The profile form: CSRF, trait inputs, and the profile submit button.
pub fn populate_profile_form(app: &App, flow: &mut Flow, traits: Option<&Value>) {
    crate::selfservice::registration::populate_form(app, flow, traits, Screen::Profile);
}

/// Handles `{method: "profile", traits}` and `{screen: "previous"}`. Ok(()) means the flow was updated
/// and must be answered like a validation result (400 for JSON clients, a redirect for browsers).
pub fn submit(
    app: &App,
    req: &ReqInfo,
    flow: &mut Flow,
    body: &Map<String, Value>,
) -> Result<(), FlowFailure> {
    let traits = body.get("traits").cloned().unwrap_or(Value::Object(Map::new()));
    if str_field(body, "screen") == Some("previous") {
        flow.ui.reset_messages();
        populate_profile_form(app, flow, Some(&traits));
        return Ok(());
    }
    ensure_csrf(app, req, flow, str_field(body, "csrf_token"))?;
    let schema_id = flow
        .identity_schema
        .clone()
        .unwrap_or_else(|| app.settings.default_schema_id.clone());
    let mut probe = Identity::new(schema_id, Value::Null, time_fmt::now());
    if let Err(errors) = apply_traits(app, &mut probe, traits.clone()) {
        set_trait_values(&mut flow.ui, &traits);
        return Err(FlowFailure::Ui(trait_errors(errors)));
    }
    show_credentials(app, flow, &traits);
    Ok(())
}

fn show_credentials(app: &App, flow: &mut Flow, traits: &Value) {
    flow.ui.reset_messages();
    flow.active = None;
    flow.state = sallyport_core::flow::FlowState::ChooseMethod;
    set_trait_values(&mut flow.ui, traits);
    flow.ui.nodes.retain(|n| {
        !matches!(
            n.group,
            Group::Password | Group::Profile | Group::Passkey | Group::Webauthn
        )
    });
    for n in &mut flow.ui.nodes {
        if n.group == Group::Default
            && n.name() != "csrf_token"
            && let Some(a) = n.input_mut()
        {
            a.input_type = "hidden".into();
        }
    }
    let mut nodes = vec![];
    for m in app.methods.registration() {
        m.populate_flow(app, flow, &mut nodes, Screen::Credentials);
    }
    flow.ui.nodes.extend(nodes);
    flow.ui.push(previous_screen());
    flow.ui.messages.push(text::registration_choose_credentials());
}
