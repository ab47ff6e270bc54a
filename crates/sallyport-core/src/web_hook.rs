//! The durable outbox of `response.ignore` web hooks (beyond Kratos, which fires them from memory):
//! rows survive restarts, a worker leases due rows so that one node among many delivers each, and
//! failed deliveries are retried with back-off. Times are Unix milliseconds.

use async_trait::async_trait;
use uuid::Uuid;

use crate::store::StoreResult;

/// One queued delivery. The body is rendered when the hook point runs; headers and credentials are
/// not stored: the worker takes them from the hook's configuration (found by `hook_key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    /// Also the Standard Webhooks `webhook-id`, stable across attempts so receivers can de-duplicate.
    pub id: Uuid,
    pub hook_key: String,
    /// The hook URL without credentials or query (for logs and admins).
    pub url: String,
    pub body: String,
    pub attempts: i32,
    pub created_ms: i64,
}

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxOutcome {
    Delivered,
    Retry { at_ms: i64, error: String },
    Abandon { error: String },
}

#[async_trait]
pub trait WebHookOutboxStore: Send + Sync {
    async fn enqueue_web_hook(&self, item: &OutboxItem, now_ms: i64) -> StoreResult<()>;
    /// Leases up to `limit` due rows (queued and due, or processing with an expired lease) until
    /// `now_ms + lease_ms`, oldest first. Two workers never hold the same row while its lease runs.
    async fn claim_web_hooks(&self, limit: u32, lease_ms: i64, now_ms: i64) -> StoreResult<Vec<OutboxItem>>;
    /// Records the attempt; only the holder of a lease that has not run out may record.
    async fn finish_web_hook(&self, id: Uuid, outcome: &OutboxOutcome, now_ms: i64) -> StoreResult<()>;
    /// Rows not yet delivered or abandoned.
    async fn web_hook_outbox_depth(&self) -> StoreResult<i64>;
    /// Deletes delivered and abandoned rows last touched before `before_ms`; returns how many.
    async fn prune_web_hooks(&self, before_ms: i64) -> StoreResult<u64>;
}
