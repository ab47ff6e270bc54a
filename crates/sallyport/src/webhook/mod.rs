//! Kratos' `web_hook` action (`selfservice/hook/web_hook.go`): at every hook point, a request built
//! from a Jsonnet template over the flow's `ctx`. Blocking hooks run in the request and may interrupt
//! the flow or change the identity; `response.ignore` hooks go through a durable outbox instead of
//! Kratos' fire-and-forget goroutine, and every request can carry a Standard Webhooks signature.

pub mod call;
pub mod config;
pub mod ctx;
pub mod outbox;
pub mod response;
pub mod sign;

use std::sync::Arc;
use std::time::Duration;

use sallyport_core::error::ApiError;
use sallyport_core::identity::Identity;

pub use config::{WebHook, WebHookTable};
pub use ctx::HookCtx;

use crate::selfservice::common::FlowFailure;
use crate::state::App;

/// Where in a flow a hook runs: decides which hooks of a list run there (Kratos splits registration's
/// and settings' after-hooks into pre-persist ones, that may interrupt or parse, and the others).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    Before,
    PrePersist,
    PostPersist,
    /// After login, recovery and verification: every hook of the list.
    After,
}

impl Point {
    fn runs(self, h: &WebHook) -> bool {
        match self {
            Point::Before | Point::After => true,
            Point::PrePersist => h.blocks_persist(),
            Point::PostPersist => !h.blocks_persist(),
        }
    }
}

/// Everything web hooks need at run time, built once.
pub struct WebHooks {
    pub table: WebHookTable,
    pub http: sallyport_oidc::HttpClient,
    pub max_attempts: u32,
    /// The first retry's wait; each later one doubles it.
    pub retry_initial: Duration,
    /// How often the outbox worker looks for due rows (a queued row on this node wakes it at once).
    pub poll_interval: Duration,
    pub wake: tokio::sync::Notify,
}

impl WebHooks {
    pub fn new(s: &crate::settings::WebHookSettings) -> anyhow::Result<WebHooks> {
        let mut policy = s.http.clone();
        policy.timeout = s.timeout.unwrap_or(Duration::from_secs(10));
        policy.connect_timeout = policy.connect_timeout.min(policy.timeout);
        policy.max_response_bytes = s.max_response_bytes.unwrap_or(1024 * 1024);
        let http = sallyport_oidc::HttpClient::new(policy).map_err(|e| anyhow::anyhow!("web hooks: {e}"))?;
        Ok(WebHooks {
            table: s.table.clone(),
            http,
            max_attempts: s.max_attempts.unwrap_or(10).max(1),
            retry_initial: s.retry_initial.unwrap_or(Duration::from_secs(1)),
            poll_interval: s.poll_interval.unwrap_or(Duration::from_secs(1)),
            wake: tokio::sync::Notify::new(),
        })
    }
}

/// Runs `hooks` at `point`, in order. Blocking hooks run now (a `parse` answer may change `identity`);
/// `response.ignore` hooks are queued in the outbox and never hold the flow.
pub async fn run(
    app: &App,
    hooks: &[WebHook],
    point: Point,
    ctx: &mut HookCtx,
    mut identity: Option<&mut Identity>,
) -> Result<(), FlowFailure> {
    for hook in hooks.iter().filter(|h| point.runs(h)) {
        if let Some(i) = identity.as_deref() {
            // A `parse` answer of an earlier hook may have changed it.
            ctx.identity = Some(ctx::identity_json(app, i));
        }
        let ctx_json = ctx.to_json();
        if hook.ignore {
            outbox::enqueue(app, hook, &ctx_json).await;
            continue;
        }
        if let Some(answer) = call::blocking(app, hook, &ctx_json).await? {
            response::apply(app, hook, answer, identity.as_deref_mut())?;
        }
    }
    Ok(())
}

/// The error a flow shows when a blocking hook could not be completed (Kratos answers 502 or 504).
pub(crate) fn upstream_error(code: u16, message: impl Into<String>) -> FlowFailure {
    let reason = if code == 504 {
        "A third-party upstream service could not be reached. Please try again later."
    } else {
        "A third-party upstream service responded improperly. Please try again later."
    };
    FlowFailure::Api(ApiError::new(code).with_reason(reason).with_message(message))
}

pub type Shared = Arc<WebHooks>;

/// `before` hooks of a new flow. An interrupt cannot be shown on a flow that does not exist yet, so it
/// becomes a 400 error whose `details.messages` carries the receiver's messages.
pub async fn before(
    app: &App,
    req: &crate::http::request::ReqInfo,
    flow: &sallyport_core::flow::Flow,
) -> Result<(), ApiError> {
    let hooks = app.web_hooks.table.before(flow.kind);
    if hooks.is_empty() {
        return Ok(());
    }
    let mut ctx = HookCtx::new(app, req, "GET", flow);
    run(app, &hooks, Point::Before, &mut ctx, None)
        .await
        .map_err(|f| match f {
            FlowFailure::Api(e) => e,
            FlowFailure::Limited(l) => l.error,
            FlowFailure::Expired => ApiError::flow_not_found(),
            FlowFailure::Ui(messages) => {
                let text = messages
                    .iter()
                    .map(|m| m.message.text.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
                let list: Vec<serde_json::Value> = messages
                    .iter()
                    .map(|m| serde_json::json!({"instance_ptr": m.field, "message": m.message}))
                    .collect();
                ApiError::bad_request(text).with_detail("messages", list)
            }
        })
}

/// The after-hooks of `method` completing `flow` that run at `point`; `identity` may be changed by a
/// `parse` answer (pass it only where the change is stored afterwards).
#[allow(clippy::too_many_arguments)]
pub async fn after(
    app: &App,
    req: &crate::http::request::ReqInfo,
    flow: &sallyport_core::flow::Flow,
    method: &str,
    point: Point,
    identity: &mut Identity,
    session: Option<&sallyport_core::session::Session>,
    may_change: bool,
) -> Result<(), FlowFailure> {
    let hooks = app.web_hooks.table.after(flow.kind, method);
    run_list(app, req, flow, &hooks, point, identity, session, may_change).await
}

/// Like [`after`] over an explicit list (login splits its list around `require_verified_address`).
#[allow(clippy::too_many_arguments)]
pub async fn run_list(
    app: &App,
    req: &crate::http::request::ReqInfo,
    flow: &sallyport_core::flow::Flow,
    hooks: &[WebHook],
    point: Point,
    identity: &mut Identity,
    session: Option<&sallyport_core::session::Session>,
    may_change: bool,
) -> Result<(), FlowFailure> {
    if !hooks.iter().any(|h| point.runs(h)) {
        return Ok(());
    }
    let mut ctx = HookCtx::new(app, req, "POST", flow).with_identity(app, identity);
    if let Some(s) = session {
        ctx = ctx.with_session(s);
    }
    let identity = if may_change { Some(identity) } else { None };
    run(app, hooks, point, &mut ctx, identity).await
}

/// Keeps the submitted `transient_payload` on the flow for the hooks' `ctx.flow.transient_payload`.
pub fn keep_transient_payload(
    app: &App,
    flow: &mut sallyport_core::flow::Flow,
    body: &serde_json::Map<String, serde_json::Value>,
) {
    if app.web_hooks.table.is_empty() {
        return;
    }
    if let (Some(p), Some(o)) = (
        body.get("transient_payload"),
        flow.internal_context.as_object_mut(),
    ) {
        o.insert("transient_payload".into(), p.clone());
    }
}
