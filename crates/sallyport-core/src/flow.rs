//! What every self-service flow shares (Kratos `selfservice/flow`): kind, client type, state, expiry, UI.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::session::Aal;
use crate::ui::Container;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowKind {
    Login,
    Registration,
    Settings,
    Recovery,
    Verification,
}

impl FlowKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FlowKind::Login => "login",
            FlowKind::Registration => "registration",
            FlowKind::Settings => "settings",
            FlowKind::Recovery => "recovery",
            FlowKind::Verification => "verification",
        }
    }
}

/// `api` flows belong to native apps (session tokens, no cookies); `browser` flows to browsers and SPAs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowType {
    Api,
    Browser,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowState {
    ChooseMethod,
    SentEmail,
    PassedChallenge,
    ShowForm,
    Success,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    pub id: Uuid,
    pub kind: FlowKind,
    pub flow_type: FlowType,
    pub state: FlowState,
    pub request_url: String,
    pub return_to: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub ui: Container,
    /// The method that last acted on the flow (Kratos `active`).
    pub active: Option<String>,
    /// The unmasked CSRF token of the browser that created the flow (checked by `GET …/flows`).
    pub csrf_token: String,
    pub identity_id: Option<Uuid>,
    pub session_id: Option<Uuid>,
    pub requested_aal: Aal,
    pub refresh: bool,
    pub identity_schema: Option<String>,
    pub organization_id: Option<Uuid>,
    /// Strategy state that never goes to the client.
    pub internal_context: Value,
    pub submit_count: i32,
    /// What the client should do next (Kratos `continue_with`); rendered for recovery, verification
    /// and settings flows only.
    #[serde(default)]
    pub continue_with: Vec<Value>,
    /// Kratos `session_token_exchange_code`: shown once, in the answer that creates a native flow
    /// with `return_session_token_exchange_code`; never stored (only its digest is).
    #[serde(skip)]
    pub session_token_exchange_code: Option<String>,
}

impl Flow {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kind: FlowKind,
        flow_type: FlowType,
        request_url: String,
        action_base: &str,
        lifespan: time::Duration,
        csrf_token: String,
        now: OffsetDateTime,
    ) -> Flow {
        let id = Uuid::new_v4();
        let state = if kind == FlowKind::Settings {
            FlowState::ShowForm
        } else {
            FlowState::ChooseMethod
        };
        Flow {
            id,
            kind,
            flow_type,
            state,
            request_url,
            return_to: None,
            issued_at: now,
            expires_at: now + lifespan,
            created_at: now,
            updated_at: now,
            ui: Container::new(format!("{action_base}self-service/{}?flow={id}", kind.as_str())),
            active: None,
            csrf_token,
            identity_id: None,
            session_id: None,
            requested_aal: Aal::Aal1,
            refresh: false,
            identity_schema: None,
            organization_id: None,
            internal_context: Value::Object(Default::default()),
            submit_count: 0,
            continue_with: vec![],
            session_token_exchange_code: None,
        }
    }

    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.expires_at <= now
    }

    pub fn is_browser(&self) -> bool {
        self.flow_type == FlowType::Browser
    }
}
