//! Errors: [`CourierError`] for configuration and templates, [`DeliveryError`] for one failed attempt.

use serde_json::{Value, json};

/// Building channels or templates from the configuration, or rendering a template, failed.
#[derive(Debug, thiserror::Error)]
pub enum CourierError {
    #[error("invalid courier configuration: {0}")]
    Config(String),
    #[error("unable to load template {uri}: {reason}")]
    Load { uri: String, reason: String },
    #[error("template {name} is invalid: {reason}")]
    Parse { name: String, reason: String },
    #[error("unable to render template {name}: {reason}")]
    Render { name: String, reason: String },
    #[error("unknown courier template type {template_type} for {medium}")]
    UnknownTemplate {
        template_type: String,
        medium: &'static str,
    },
}

/// One delivery attempt failed. The message never carries credentials (SMTP passwords, auth headers,
/// request URLs with secrets); it is stored with the dispatch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    pub message: String,
    /// The SMTP reply code or HTTP status of the upstream answer, when there was one.
    pub code: Option<u16>,
    /// Retrying cannot help (SMTP 5xx, invalid recipient, unknown channel): abandon at once.
    pub permanent: bool,
}

impl DeliveryError {
    /// A failure worth retrying.
    pub fn transient(message: impl Into<String>) -> DeliveryError {
        DeliveryError {
            message: message.into(),
            code: None,
            permanent: false,
        }
    }

    /// A failure retrying cannot fix.
    pub fn permanent(message: impl Into<String>) -> DeliveryError {
        DeliveryError {
            message: message.into(),
            code: None,
            permanent: true,
        }
    }

    pub fn with_code(mut self, code: u16) -> DeliveryError {
        self.code = Some(code);
        self
    }

    /// The dispatch error document: `{"message": "...", "code": 550}` (`code` is 500 when the
    /// failure had no upstream status, like Kratos' internal-server-error dispatch records).
    pub fn to_json(&self) -> Value {
        json!({ "message": self.message, "code": self.code.unwrap_or(500) })
    }
}
