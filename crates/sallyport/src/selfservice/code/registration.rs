//! Registration with a code (`passwordless_enabled`): traits → a code to every code address → the code
//! creates the identity with those addresses verified (Kratos `strategy_registration.go`).

use serde_json::{Map, Value, json};

use sallyport_core::code::CodeKind;
use sallyport_core::flow::{Flow, FlowState};
use sallyport_core::identity::Identity;
use sallyport_core::text;
use sallyport_core::time_fmt;
use sallyport_core::ui::{Group, Node};

use super::{
    Address, code_input, codes_for, continue_button, count_attempt, digests, hidden_method, resend_button,
};
use crate::http::body::str_field;
use crate::http::request::ReqInfo;
use crate::identities::{apply_traits, set_trait_values, trait_errors};
use crate::selfservice::common::{FieldMessage, FlowFailure, ensure_csrf};
use crate::state::App;

pub enum Outcome {
    Sent,
    Verified(Box<Identity>),
}

pub fn enabled(app: &App) -> bool {
    app.settings.code.passwordless_enabled
}

pub fn submit_node() -> Node {
    Node::submit(Group::Code, "method", "code", text::registration_code_send())
}

fn show_code_form(app: &App, flow: &mut Flow) {
    let mut nodes: Vec<Node> = vec![];
    for n in &flow.ui.nodes {
        let is_submit = n.input_attrs().is_some_and(|a| a.input_type == "submit");
        if n.group == Group::Default && !is_submit {
            let mut n = n.clone();
            if n.messages.is_empty()
                && n.name() != "csrf_token"
                && let Some(a) = n.input_mut()
            {
                a.input_type = "hidden".into();
            }
            nodes.push(n);
        }
    }
    flow.ui.nodes = nodes;
    flow.ui.push(hidden_method());
    flow.ui.push(code_input(text::label_registration_code()));
    flow.ui.push(continue_button());
    flow.ui.push(resend_button());
    if app.settings.registration_two_step {
        flow.ui.push(Node::submit(
            Group::Profile,
            "screen",
            "credential-selection",
            text::registration_back(),
        ));
    }
    flow.ui.messages = vec![text::registration_code_sent()];
}

pub async fn submit(
    app: &App,
    req: &ReqInfo,
    flow: &mut Flow,
    body: &Map<String, Value>,
    schema_id: &str,
) -> Result<Outcome, FlowFailure> {
    ensure_csrf(app, req, flow, str_field(body, "csrf_token"))?;
    if str_field(body, "resend") == Some("code") {
        flow.state = FlowState::ChooseMethod;
    }
    let traits = body.get("traits").cloned().unwrap_or(Value::Object(Map::new()));
    let mut identity = Identity::new(schema_id, Value::Null, time_fmt::now());
    let extracted = match apply_traits(app, &mut identity, traits.clone()) {
        Ok(e) => e,
        Err(errors) => {
            set_trait_values(&mut flow.ui, &traits);
            return Err(FlowFailure::Ui(trait_errors(errors)));
        }
    };
    match flow.state {
        FlowState::ChooseMethod => {
            let addresses: Vec<Address> = extracted
                .code_identifiers
                .iter()
                .map(|a| Address {
                    via: a.via.clone(),
                    to: a.address.clone(),
                })
                .collect();
            if addresses.is_empty() {
                return Err(FlowFailure::Ui(vec![FieldMessage::flow(
                    text::validation_identifier_missing(),
                )]));
            }
            let subject = crate::rate_limit::code_subject(None, &addresses[0].to);
            let to: Vec<String> = addresses.iter().map(|a| a.to.clone()).collect();
            crate::rate_limit::before_send(app, Some(&subject), &to).await?;
            let request_url = flow.request_url.clone();
            let stored_traits = extracted.traits.clone();
            let (codes, messages) = codes_for(
                app,
                flow,
                CodeKind::Registration,
                None,
                &addresses,
                "registration_code_valid",
                |a, code| {
                    let mut m = crate::courier::base_model(app, &a.to, &request_url);
                    m.insert("registration_code".into(), json!(code));
                    m.insert("traits".into(), stored_traits.clone());
                    m.insert("identity".into(), json!({ "traits": stored_traits }));
                    Value::Object(m)
                },
            )?;
            flow.internal_context["code_traits"] = extracted.traits.clone();
            set_trait_values(&mut flow.ui, &extracted.traits);
            flow.state = FlowState::SentEmail;
            flow.active = Some("code".into());
            flow.updated_at = time_fmt::now();
            show_code_form(app, flow);
            app.store
                .save_codes(flow, CodeKind::Registration, &codes, &messages)
                .await?;
            Ok(Outcome::Sent)
        }
        FlowState::SentEmail => {
            if flow.internal_context.get("code_traits") != Some(&extracted.traits) {
                return Err(FlowFailure::Ui(vec![FieldMessage::flow(
                    text::validation_traits_mismatch(),
                )]));
            }
            let code = str_field(body, "code").unwrap_or("").trim().to_owned();
            if code.is_empty() {
                return Err(FlowFailure::Ui(vec![FieldMessage::on(
                    "code",
                    text::validation_required("code"),
                )]));
            }
            count_attempt(app, flow).await?;
            let first = extracted.code_identifiers.first().map(|a| a.address.as_str());
            let subject = crate::rate_limit::code_subject(None, first.unwrap_or_default());
            let guess = crate::rate_limit::code_guess(app, &subject).await?;
            let used = app
                .store
                .use_code(
                    flow.id,
                    CodeKind::Registration,
                    &digests(app, &code),
                    time_fmt::now(),
                )
                .await?;
            let Some(used) = used else {
                return Err(FlowFailure::Ui(vec![FieldMessage::flow(
                    text::registration_code_invalid(),
                )]));
            };
            if let Some(g) = guess {
                g.was_right(app).await;
            }
            let now = time_fmt::now();
            for a in identity.verifiable_addresses.iter_mut() {
                if a.value == used.address && a.via == used.address_type {
                    a.mark_verified(now);
                }
            }
            flow.state = FlowState::PassedChallenge;
            Ok(Outcome::Verified(Box::new(identity)))
        }
        _ => Err(FlowFailure::Ui(vec![FieldMessage::flow(
            text::registration_no_strategy(),
        )])),
    }
}
