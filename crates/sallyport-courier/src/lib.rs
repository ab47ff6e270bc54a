//! Sallyport's courier, compatible with Ory Kratos' `courier.*` configuration.
//!
//! - [`Templates`]: Kratos' built-in message templates (Go templates) plus user overrides; the
//!   flows render a message with them when they queue it.
//! - [`Channels`]: delivery over SMTP (lettre) or HTTP (reqwest + a Jsonnet body template).
//! - [`Dispatcher`]: the worker that claims queued messages from a [`CourierStore`], delivers them
//!   concurrently and records the outcome (sent, retry with backoff, abandoned).
//!
//! [`CourierStore`]: sallyport_core::courier::CourierStore

mod channels;
mod dispatcher;
mod error;
mod fetch;
mod gotmpl;
mod jsonnet;
mod outgoing;
mod templates;

pub use channels::Channels;
pub use dispatcher::{Dispatcher, DispatcherConfig};
pub use error::{CourierError, DeliveryError};
pub use outgoing::{OutgoingHttp, Unrestricted};
pub use templates::{Rendered, Templates, sanitize_header_value};

/// Evaluates a Jsonnet template with `ctx` (as top-level argument and `std.extVar('ctx')`) on a thread
/// of its own with a large stack and a timeout; web hooks share the courier's evaluator.
pub async fn evaluate_jsonnet(
    name: String,
    code: String,
    ctx: serde_json::Value,
) -> Result<serde_json::Value, String> {
    jsonnet::evaluate(name, code, ctx).await
}

/// Loads a `file://` or `base64://` template.
pub fn load_local_template(uri: &str) -> Result<String, String> {
    if uri.starts_with("http://") || uri.starts_with("https://") {
        return Err("not a local URI".into());
    }
    fetch::load_local(uri, false)
}
