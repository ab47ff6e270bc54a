//! Queuing messages: render a Kratos template now, store the result with the flow change that caused it.

use serde_json::Value;

use sallyport_core::courier::{Message, MessageType};
use sallyport_core::error::ApiError;
use sallyport_core::time_fmt;

use crate::http::error::internal;
use crate::state::App;

/// A rendered message for `to` over `via` (`email` / `sms`) from template `<template>` (e.g. `login_code_valid`).
pub fn message(
    app: &App,
    via: &str,
    to: &str,
    template_type: &str,
    data: &Value,
) -> Result<Message, ApiError> {
    let kind = if via == "sms" {
        MessageType::Sms
    } else {
        MessageType::Email
    };
    // Subject and text only: the HTML body is rendered at delivery (`render_html`), as in Kratos.
    let rendered = app
        .templates
        .render_queued(template_type, kind, data)
        .map_err(internal)?;
    let mut m = Message::new(
        kind,
        kind.as_str(),
        to,
        template_type,
        data.clone(),
        time_fmt::now(),
    );
    m.subject = rendered.subject;
    m.body = rendered.body;
    if prints_messages(app, via) {
        // `--dev` without a way to deliver: the codes and links go to the log so that a local
        // code login or verification works without a mail server.
        let secrets: Vec<String> = data
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| (k.ends_with("_code") || k.ends_with("_url")) && k.as_str() != "request_url")
            .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
            .collect();
        tracing::info!(
            recipient = to,
            template = template_type,
            content = %secrets.join(" "),
            "--dev: outgoing message (no {} delivery configured, so it is printed here)",
            kind.as_str()
        );
    }
    Ok(m)
}

/// Whether outgoing messages over `via` are printed to the log: only with `--dev` and nothing
/// configured to deliver them (no SMTP URI for email, no courier channel for SMS).
pub fn prints_messages(app: &App, via: &str) -> bool {
    let c = &app.settings.courier;
    app.settings.dev
        && if via == "sms" {
            c.channels.is_empty()
        } else {
            c.smtp.connection_uri.as_deref().is_none_or(str::is_empty)
        }
}

/// The template model keys shared by every code/link template.
pub fn base_model(app: &App, to: &str, request_url: &str) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("to".into(), Value::String(to.into()));
    m.insert("request_url".into(), Value::String(request_url.into()));
    let domain = url::Url::parse(request_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    m.insert("request_url_domain".into(), Value::String(domain));
    m.insert(
        "expires_in_minutes".into(),
        Value::from(app.settings.code.lifespan.as_secs() / 60),
    );
    m.insert("transient_payload".into(), Value::Object(Default::default()));
    m
}
