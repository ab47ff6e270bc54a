//! Outbound messages (Kratos `courier/message.go`): queued with the flow change that caused them,
//! delivered by a worker, retried with backoff, abandoned after `courier.message_retries`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    Queued,
    Sent,
    Processing,
    Abandoned,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Queued => "queued",
            MessageStatus::Sent => "sent",
            MessageStatus::Processing => "processing",
            MessageStatus::Abandoned => "abandoned",
        }
    }
    pub fn parse(s: &str) -> Option<MessageStatus> {
        match s {
            "queued" => Some(MessageStatus::Queued),
            "sent" => Some(MessageStatus::Sent),
            "processing" => Some(MessageStatus::Processing),
            "abandoned" => Some(MessageStatus::Abandoned),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageType {
    Email,
    Sms,
}

impl MessageType {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::Email => "email",
            MessageType::Sms => "sms",
        }
    }
    pub fn parse(s: &str) -> Option<MessageType> {
        match s {
            "email" => Some(MessageType::Email),
            "sms" => Some(MessageType::Sms),
            _ => None,
        }
    }
}

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dispatch {
    pub id: Uuid,
    pub message_id: Uuid,
    /// `success` or `failed`.
    pub status: String,
    pub error: Option<Value>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: Uuid,
    pub status: MessageStatus,
    pub kind: MessageType,
    pub recipient: String,
    /// Rendered at queue time from the template; kept for the admin API and retries.
    pub subject: String,
    pub body: String,
    /// Kratos template id, e.g. `login_code_valid`.
    pub template_type: String,
    /// The template model (codes are redacted before storing when `redact` applies).
    pub template_data: Value,
    /// `email`, `sms` or a custom channel id from `courier.channels`.
    pub channel: String,
    pub send_count: i32,
    /// Earliest time the next delivery attempt may start (backoff after failures).
    pub next_attempt_at: OffsetDateTime,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// Filled by `get_message` only.
    pub dispatches: Vec<Dispatch>,
}

impl Message {
    pub fn new(
        kind: MessageType,
        channel: &str,
        recipient: &str,
        template_type: &str,
        template_data: Value,
        now: OffsetDateTime,
    ) -> Message {
        Message {
            id: Uuid::new_v4(),
            status: MessageStatus::Queued,
            kind,
            recipient: recipient.into(),
            subject: String::new(),
            body: String::new(),
            template_type: template_type.into(),
            template_data,
            channel: channel.into(),
            send_count: 0,
            next_attempt_at: now,
            created_at: now,
            updated_at: now,
            dispatches: vec![],
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct MessageQuery {
    pub status: Option<MessageStatus>,
    pub recipient: Option<String>,
    /// Keyset pagination over (created_at, id), newest first: only messages older than this one.
    pub before: Option<Uuid>,
    pub limit: u32,
}

/// What a worker should do with a message after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryOutcome {
    Sent,
    /// Failed; try again not before `retry_at`.
    Retry {
        error: Value,
        retry_at: OffsetDateTime,
    },
    /// Failed for the last time.
    Abandon {
        error: Value,
    },
}

#[async_trait::async_trait]
pub trait CourierStore: Send + Sync {
    async fn enqueue_messages(&self, messages: &[Message]) -> crate::store::StoreResult<()>;
    /// Atomically claims up to `limit` due messages (queued and due, or processing with an expired
    /// lease from a dead worker), marks them processing until `now + lease`, oldest first. Two workers
    /// never claim the same message while its lease runs.
    async fn claim_messages(
        &self,
        limit: u32,
        lease: time::Duration,
        now: OffsetDateTime,
    ) -> crate::store::StoreResult<Vec<Message>>;
    /// Records the attempt (a dispatch row, `send_count + 1`) and the new status in one transaction.
    async fn finish_delivery(
        &self,
        id: Uuid,
        outcome: &DeliveryOutcome,
        now: OffsetDateTime,
    ) -> crate::store::StoreResult<()>;
    /// Newest first.
    async fn list_messages(&self, query: &MessageQuery) -> crate::store::StoreResult<Vec<Message>>;
    /// With its dispatches.
    async fn get_message(&self, id: Uuid) -> crate::store::StoreResult<Message>;
}
