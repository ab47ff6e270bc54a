//! Building and sending one hook request (Kratos `request.Builder` + the guarded HTTP client), with the
//! optional Standard Webhooks signature, timing and metrics.

use std::time::Instant;

use base64::Engine as _;
use serde_json::Value;

use super::config::{Auth, WebHook};
use super::{FlowFailure, upstream_error};
use crate::state::App;

/// What the receiver answered (the body bounded by the client's size limit).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// The rendered request body.
pub enum Body {
    /// The template ran `error 'cancel'`: Kratos skips the hook.
    Cancelled,
    Empty,
    Bytes(Vec<u8>),
}

/// Why a call did not get an answer.
#[derive(Debug)]
pub enum CallError {
    Timeout,
    /// Connection refused, private address refused, too large, too many redirects, …
    Failed(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Timeout => f.write_str("the web hook did not answer in time"),
            CallError::Failed(e) => f.write_str(e),
        }
    }
}

fn content_type(hook: &WebHook) -> &str {
    hook.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.as_str())
        .unwrap_or("application/json")
}

async fn template(app: &App, uri: &str) -> Result<String, String> {
    if uri.starts_with("http://") || uri.starts_with("https://") {
        let url = url::Url::parse(uri).map_err(|e| e.to_string())?;
        return app.web_hooks.http.get_text(&url).await.map_err(|e| e.to_string());
    }
    sallyport_courier::load_local_template(uri)
}

/// Evaluates the hook's body template over `ctx`. `Err` is fit for the log and the flow's error.
pub async fn render_body(app: &App, hook: &WebHook, ctx: &Value) -> Result<Body, String> {
    let Some(uri) = &hook.body else {
        return Ok(Body::Empty);
    };
    if matches!(
        hook.method,
        reqwest::Method::GET | reqwest::Method::HEAD | reqwest::Method::TRACE
    ) {
        return Ok(Body::Empty);
    }
    let code = template(app, uri)
        .await
        .map_err(|e| format!("unable to load the web hook body template: {e}"))?;
    let name = if uri.starts_with("base64://") {
        "body.jsonnet".to_string()
    } else {
        uri.clone()
    };
    // The function is called here rather than through jrsonnet's top-level arguments, which fail on
    // `function(ctx) ctx` ("parameter ctx is not defined").
    let code = format!(
        "local sallyport_template = (\n{code}\n);\nif std.isFunction(sallyport_template) then sallyport_template(std.extVar('ctx')) else sallyport_template\n"
    );
    let out = match sallyport_courier::evaluate_jsonnet(name, code, ctx.clone()).await {
        Ok(v) => v,
        Err(e) if is_cancel(&e) => return Ok(Body::Cancelled),
        Err(e) => return Err(format!("the web hook body template failed: {e}")),
    };
    let bytes = match content_type(hook) {
        "application/x-www-form-urlencoded" => {
            let obj = out
                .as_object()
                .ok_or("the web hook body template must produce an object for form requests")?;
            let mut ser = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in obj {
                match v {
                    Value::String(s) => ser.append_pair(k, s),
                    other => ser.append_pair(k, &other.to_string()),
                };
            }
            ser.finish().into_bytes()
        }
        _ => serde_json::to_vec(&out).map_err(|e| e.to_string())?,
    };
    Ok(Body::Bytes(bytes))
}

/// Jsonnet's `error 'cancel'` (Kratos `request.ErrCancel`).
fn is_cancel(e: &str) -> bool {
    e.lines().next().is_some_and(|l| {
        l.trim_end().ends_with("runtime error: cancel") || l.trim_end().ends_with(": cancel")
    })
}

/// Sends one request. `msg_id` is the Standard Webhooks `webhook-id` (stable across retries).
pub async fn send(app: &App, hook: &WebHook, msg_id: &str, body: &[u8]) -> Result<Answer, CallError> {
    let started = Instant::now();
    let result = send_inner(app, hook, msg_id, body).await;
    let outcome = match &result {
        Ok(a) if a.status < 400 => "ok",
        Ok(_) => "error_status",
        Err(CallError::Timeout) => "timeout",
        Err(CallError::Failed(_)) => "failed",
    };
    metrics::counter!("sallyport_web_hook_calls_total", "hook" => hook.label.clone(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!("sallyport_web_hook_duration_seconds", "hook" => hook.label.clone())
        .record(started.elapsed().as_secs_f64());
    match &result {
        Ok(a) if a.status >= 400 => {
            tracing::warn!(hook = %hook.label, status = a.status, "web hook answered with an error status")
        }
        Ok(a) => tracing::debug!(hook = %hook.label, status = a.status, "web hook delivered"),
        Err(e) => tracing::warn!(hook = %hook.label, error = %e, "web hook request failed"),
    }
    result
}

async fn send_inner(app: &App, hook: &WebHook, msg_id: &str, body: &[u8]) -> Result<Answer, CallError> {
    let http = &app.web_hooks.http;
    let mut req = http
        .request(hook.method.clone(), &hook.url)
        .map_err(|e| CallError::Failed(e.to_string()))?;
    let mut has_content_type = false;
    for (k, v) in &hook.headers {
        has_content_type |= k.eq_ignore_ascii_case("content-type");
        req = req.header(k.as_str(), v.as_str());
    }
    if !has_content_type && !body.is_empty() {
        req = req.header("Content-Type", "application/json");
    }
    req = match &hook.auth {
        Auth::None => req,
        Auth::Basic { user, password } => req.header(
            "Authorization",
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            ),
        ),
        Auth::ApiKeyHeader { name, value } => req.header(name.as_str(), value.as_str()),
        Auth::ApiKeyCookie { name, value } => req.header("Cookie", format!("{name}={value}")),
    };
    if let Some(key) = &app.web_hooks.table.signing_key {
        let ts = time::OffsetDateTime::now_utc().unix_timestamp();
        req = req
            .header("webhook-id", msg_id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", super::sign::signature(key, msg_id, ts, body));
    }
    if !body.is_empty() {
        req = req.body(body.to_vec());
    }
    match http.send(req).await {
        Ok(r) => Ok(Answer {
            status: r.status,
            body: r.body,
        }),
        Err(sallyport_oidc::HttpError::Timeout) => Err(CallError::Timeout),
        Err(e) => Err(CallError::Failed(e.to_string())),
    }
}

/// Runs a blocking hook: `Ok(Some)` carries a 2xx answer to parse, `Err` the flow's failure (an
/// interrupt with the receiver's messages, or why the hook could not be completed).
pub async fn blocking(app: &App, hook: &WebHook, ctx: &Value) -> Result<Option<Answer>, FlowFailure> {
    let body = match render_body(app, hook, ctx).await {
        Ok(Body::Cancelled) => return Ok(None),
        Ok(Body::Empty) => vec![],
        Ok(Body::Bytes(b)) => b,
        Err(e) => {
            metrics::counter!("sallyport_web_hook_calls_total", "hook" => hook.label.clone(), "outcome" => "template_error")
                .increment(1);
            tracing::warn!(hook = %hook.label, error = %e, "web hook not sent");
            return Err(upstream_error(502, e));
        }
    };
    let msg_id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let answer = match send(app, hook, &msg_id, &body).await {
        Ok(a) => a,
        Err(CallError::Timeout) => return Err(upstream_error(504, CallError::Timeout.to_string())),
        Err(e) => return Err(upstream_error(502, format!("web hook failed: {e}"))),
    };
    if answer.status >= 400 {
        if hook.blocks_persist() {
            return Err(super::response::interrupt(&answer));
        }
        return Err(upstream_error(
            502,
            format!("webhook failed with status code {}", answer.status),
        ));
    }
    Ok(hook.parse.then_some(answer))
}
