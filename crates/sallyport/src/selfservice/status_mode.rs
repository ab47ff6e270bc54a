//! How a successful step that does not finish a flow is answered to a JSON client — the one place that decides it.
//!
//! Kratos answers "a code was sent" and "now choose a credential" with **400** and the flow, and hands a recovered
//! SPA over to settings with **422** `browser_location_change_required` (kratos#4052): clients and SDKs have to treat
//! those errors as progress. By default Sallyport does the same. In *HTTP-correct* mode — per deployment
//! (`sallyport.http_correct_status: true`) or per request (header `Sallyport-Status-Mode: http-correct`, and
//! `kratos` to opt a request back out) — these steps answer **200** with the flow (and, for recovery, its
//! `continue_with`), while real client errors keep their 4xx. Browsers posting HTML forms are redirected in both
//! modes.

use axum::http::StatusCode;
use axum::response::Response;

use sallyport_core::flow::{Flow, FlowType};

use crate::http::error::redirect;
use crate::http::request::ReqInfo;
use crate::selfservice::common::{flow_json, ui_redirect_url};
use crate::state::App;

/// The request header that chooses the mode for one request.
pub const HEADER: &str = "sallyport-status-mode";

/// A successful step that leaves the flow open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Login, registration or MFA code sent (`state: sent_email`).
    CodeSent,
    /// Two-step registration: the profile was accepted, a credential must be chosen (1040009).
    ChooseMethod,
    /// Recovery succeeded; the client must continue in the settings flow created for it.
    RecoveryToSettings,
}

/// What the step answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The flow as JSON with this status.
    Flow(StatusCode),
    /// 422 `browser_location_change_required` (Kratos' legacy recovery hand-over for SPAs).
    LocationChange,
    /// 303 to the UI (browsers posting forms).
    Redirect,
}

/// Whether this request gets HTTP-correct statuses: the header wins, else the deployment's setting.
pub fn http_correct(app: &App, req: &ReqInfo) -> bool {
    match req
        .headers
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        Some("http-correct") => true,
        Some("kratos") => false,
        _ => app.settings.http_correct_status,
    }
}

pub fn answer(app: &App, req: &ReqInfo, flow_type: FlowType, step: Step) -> Answer {
    decide(
        http_correct(app, req),
        app.settings.use_continue_with_transitions,
        flow_type,
        req.is_json,
        step,
    )
}

/// The answer to a step that leaves the flow open and is answered with the flow itself (code sent, choose a method).
pub fn respond_with_flow(app: &App, req: &ReqInfo, flow: &Flow, step: Step) -> Response {
    match answer(app, req, flow.flow_type, step) {
        Answer::Flow(status) => flow_json(app, req, flow, status),
        Answer::Redirect | Answer::LocationChange => {
            redirect(StatusCode::SEE_OTHER, &ui_redirect_url(app, flow.kind, flow.id))
        }
    }
}

fn decide(
    http_correct: bool,
    continue_with_transitions: bool,
    flow_type: FlowType,
    is_json: bool,
    step: Step,
) -> Answer {
    let form_post = flow_type == FlowType::Browser && !is_json;
    match step {
        Step::CodeSent | Step::ChooseMethod if form_post => Answer::Redirect,
        Step::CodeSent | Step::ChooseMethod if http_correct => Answer::Flow(StatusCode::OK),
        Step::CodeSent | Step::ChooseMethod => Answer::Flow(StatusCode::BAD_REQUEST),
        Step::RecoveryToSettings => {
            if (continue_with_transitions || http_correct) && (flow_type == FlowType::Api || is_json) {
                Answer::Flow(StatusCode::OK)
            } else if is_json {
                Answer::LocationChange
            } else {
                Answer::Redirect
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kratos_statuses_by_default_and_200_when_http_correct() {
        use Answer::*;
        use FlowType::*;
        for step in [Step::CodeSent, Step::ChooseMethod] {
            assert_eq!(
                decide(false, false, Api, true, step),
                Flow(StatusCode::BAD_REQUEST)
            );
            assert_eq!(
                decide(false, false, Browser, true, step),
                Flow(StatusCode::BAD_REQUEST)
            );
            assert_eq!(decide(true, false, Api, true, step), Flow(StatusCode::OK));
            assert_eq!(decide(true, false, Browser, true, step), Flow(StatusCode::OK));
            assert_eq!(decide(true, false, Browser, false, step), Redirect);
            assert_eq!(decide(false, false, Browser, false, step), Redirect);
        }
        let r = Step::RecoveryToSettings;
        assert_eq!(decide(false, false, Browser, true, r), LocationChange);
        assert_eq!(decide(false, true, Browser, true, r), Flow(StatusCode::OK));
        assert_eq!(decide(true, false, Browser, true, r), Flow(StatusCode::OK));
        assert_eq!(decide(true, false, Api, true, r), Flow(StatusCode::OK));
        assert_eq!(decide(true, false, Browser, false, r), Redirect);
        assert_eq!(decide(false, false, Browser, false, r), Redirect);
    }
}
