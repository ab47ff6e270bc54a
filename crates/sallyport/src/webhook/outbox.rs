//! `response.ignore` hooks through a durable outbox (Kratos fires them from a goroutine and loses them
//! on restart). The body is rendered when the hook point runs (the request's data is gone later) and
//! stored; the worker every node runs leases due rows, so one node delivers each, and retries failures
//! with exponential back-off. A crash between the receiver's answer and the bookkeeping redelivers the
//! row after its lease: receivers de-duplicate on `webhook-id`, which stays the same across attempts.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

use sallyport_core::web_hook::{OutboxItem, OutboxOutcome};

use super::call::{self, Body};
use super::config::WebHook;
use crate::state::App;

/// Rows one poll leases.
const BATCH: u32 = 16;
/// Delivered and abandoned rows are kept this long (for inspection in the database), then deleted.
const KEEP_FINISHED: Duration = Duration::from_secs(7 * 24 * 3600);
const PRUNE_EVERY: Duration = Duration::from_secs(600);

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Names a hook across restarts without storing its credentials: what it sends where.
pub fn hook_key(hook: &WebHook) -> String {
    let mut h = Sha256::new();
    h.update(hook.method.as_str());
    h.update(b"\n");
    h.update(hook.url.as_str());
    h.update(b"\n");
    h.update(hook.body.as_deref().unwrap_or(""));
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Renders the body and stores the delivery. Failures are logged and counted: the flow goes on.
pub async fn enqueue(app: &App, hook: &WebHook, ctx: &Value) {
    let body = match call::render_body(app, hook, ctx).await {
        Ok(Body::Cancelled) => return,
        Ok(Body::Empty) => String::new(),
        Ok(Body::Bytes(b)) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => {
            metrics::counter!("sallyport_web_hook_calls_total", "hook" => hook.label.clone(), "outcome" => "template_error")
                .increment(1);
            tracing::error!(hook = %hook.label, error = %e, "web hook not queued");
            return;
        }
    };
    let item = OutboxItem {
        id: uuid::Uuid::new_v4(),
        hook_key: hook_key(hook),
        url: hook.label.clone(),
        body,
        attempts: 0,
        created_ms: now_ms(),
    };
    match app.store.enqueue_web_hook(&item, item.created_ms).await {
        Ok(()) => {
            metrics::counter!("sallyport_web_hook_queued_total", "hook" => hook.label.clone()).increment(1);
            app.web_hooks.wake.notify_one();
        }
        Err(e) => {
            metrics::counter!("sallyport_web_hook_calls_total", "hook" => hook.label.clone(), "outcome" => "enqueue_error")
                .increment(1);
            tracing::error!(hook = %hook.label, error = %e, "web hook could not be queued");
        }
    }
}

/// The wait before attempt `attempts + 1`: `initial · 2^attempts`, at most an hour.
pub fn backoff(initial: Duration, attempts: i32) -> Duration {
    let factor = 1u32 << attempts.clamp(0, 20);
    initial.saturating_mul(factor).min(Duration::from_secs(3600))
}

/// Delivers due rows until `shutdown` resolves. Every serving node runs one.
pub async fn run(app: Arc<App>, shutdown: impl std::future::Future<Output = ()>) {
    let poll = app.web_hooks.poll_interval;
    // Longer than any attempt can take (the body is rendered already; the request is bounded by the
    // timeout), so a live worker keeps its lease, and short enough that a dead node's rows move on soon.
    let lease_ms = app.web_hooks.http.policy().timeout.as_millis() as i64 + 10_000;
    tokio::pin!(shutdown);
    let mut last_prune: Option<std::time::Instant> = None;
    loop {
        if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
            last_prune = Some(std::time::Instant::now());
            let before = now_ms() - KEEP_FINISHED.as_millis() as i64;
            if let Err(e) = app.store.prune_web_hooks(before).await {
                tracing::warn!(error = %e, "finished web hook deliveries not pruned");
            }
        }
        match app.store.web_hook_outbox_depth().await {
            Ok(d) => metrics::gauge!("sallyport_web_hook_outbox_depth").set(d as f64),
            Err(e) => tracing::warn!(error = %e, "web hook outbox depth unknown"),
        }
        let claimed = match app.store.claim_web_hooks(BATCH, lease_ms, now_ms()).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "web hook outbox unavailable");
                vec![]
            }
        };
        let full = claimed.len() as u32 == BATCH;
        let mut tasks = tokio::task::JoinSet::new();
        for item in claimed {
            let app = app.clone();
            tasks.spawn(async move { deliver(&app, item).await });
        }
        while tasks.join_next().await.is_some() {}
        if full {
            continue;
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(poll) => {}
            _ = app.web_hooks.wake.notified() => {}
        }
    }
}

async fn deliver(app: &App, item: OutboxItem) {
    let hooks = &app.web_hooks.table;
    let Some(hook) = hooks.all().find(|h| h.ignore && hook_key(h) == item.hook_key) else {
        let error = "the web hook is no longer configured".to_string();
        tracing::error!(hook = %item.url, id = %item.id, "{error}; delivery abandoned");
        let _ = app
            .store
            .finish_web_hook(item.id, &OutboxOutcome::Abandon { error }, now_ms())
            .await;
        return;
    };
    let msg_id = format!("msg_{}", item.id.simple());
    let outcome = match call::send(app, hook, &msg_id, item.body.as_bytes()).await {
        Ok(a) if (200..300).contains(&a.status) => OutboxOutcome::Delivered,
        Ok(a) => retry_or_abandon(app, &item, format!("the receiver answered {}", a.status)),
        Err(e) => retry_or_abandon(app, &item, e.to_string()),
    };
    if let OutboxOutcome::Abandon { error } = &outcome {
        metrics::counter!("sallyport_web_hook_abandoned_total", "hook" => hook.label.clone()).increment(1);
        tracing::error!(hook = %hook.label, id = %item.id, attempts = item.attempts + 1, error = %error, "web hook delivery abandoned");
    }
    if let Err(e) = app.store.finish_web_hook(item.id, &outcome, now_ms()).await {
        tracing::warn!(hook = %hook.label, id = %item.id, error = %e, "web hook outcome not recorded (lease lost)");
    }
}

fn retry_or_abandon(app: &App, item: &OutboxItem, error: String) -> OutboxOutcome {
    if item.attempts + 1 >= app.web_hooks.max_attempts as i32 {
        return OutboxOutcome::Abandon { error };
    }
    let wait = backoff(app.web_hooks.retry_initial, item.attempts);
    OutboxOutcome::Retry {
        at_ms: now_ms() + wait.as_millis() as i64,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let s = Duration::from_secs(1);
        assert_eq!(backoff(s, 0), s);
        assert_eq!(backoff(s, 3), Duration::from_secs(8));
        assert_eq!(backoff(s, 40), Duration::from_secs(3600));
    }
}
