//! The delivery worker (Kratos `courier_dispatcher.go`, `courier.go`).
//!
//! Every `courier.worker.pull_wait` it claims up to `courier.worker.pull_count` due messages (a lease
//! keeps other workers off them) and delivers each in its own task, at most `concurrency` at a time:
//! a slow or failing recipient never holds back the others, and a batch does not wait for its slowest
//! message before the next claim. Each attempt ends in `finish_delivery`: `Sent`; `Retry` with an
//! exponential backoff (1 s, 2 s, 4 s … capped at 5 min); or `Abandon` once `send_count + 1` exceeds
//! `courier.message_retries` or the failure is permanent (SMTP 5xx, invalid recipient, unknown channel).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sallyport_config::model::Courier;
use sallyport_core::courier::{CourierStore, DeliveryOutcome, Message};
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::channels::Channels;
use crate::error::DeliveryError;

/// Worker settings; `From<&Courier>` takes `worker.pull_count`, `worker.pull_wait` and
/// `message_retries` and fills the rest with defaults.
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    pub pull_count: u32,
    pub pull_wait: Duration,
    /// Attempts after the first before a message is abandoned (Kratos `message_retries`, default 5).
    pub message_retries: u32,
    /// How long a claim keeps other workers away; longer than `attempt_timeout`.
    pub lease: Duration,
    /// Messages delivered at the same time.
    pub concurrency: usize,
    /// Upper bound for one delivery attempt.
    pub attempt_timeout: Duration,
    /// First retry delay; doubles per failed attempt.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        DispatcherConfig {
            pull_count: 10,
            pull_wait: Duration::from_secs(1),
            message_retries: 5,
            lease: Duration::from_secs(60),
            concurrency: 16,
            attempt_timeout: Duration::from_secs(30),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(5 * 60),
        }
    }
}

impl From<&Courier> for DispatcherConfig {
    fn from(c: &Courier) -> Self {
        DispatcherConfig {
            pull_count: c.worker.pull_count.max(1),
            pull_wait: c.worker.pull_wait,
            message_retries: c.message_retries,
            ..DispatcherConfig::default()
        }
    }
}

impl From<Courier> for DispatcherConfig {
    fn from(c: Courier) -> Self {
        DispatcherConfig::from(&c)
    }
}

/// Delivers queued messages from a [`CourierStore`] through [`Channels`].
pub struct Dispatcher {
    store: Arc<dyn CourierStore>,
    channels: Arc<Channels>,
    cfg: Arc<DispatcherConfig>,
}

impl Dispatcher {
    pub fn new(
        store: Arc<dyn CourierStore>,
        channels: Channels,
        cfg: impl Into<DispatcherConfig>,
    ) -> Dispatcher {
        Dispatcher::with_shared_channels(store, Arc::new(channels), cfg)
    }

    /// Like [`new`](Self::new) with channels shared with other users.
    pub fn with_shared_channels(
        store: Arc<dyn CourierStore>,
        channels: Arc<Channels>,
        cfg: impl Into<DispatcherConfig>,
    ) -> Dispatcher {
        let mut cfg = cfg.into();
        cfg.concurrency = cfg.concurrency.max(1);
        cfg.pull_count = cfg.pull_count.max(1);
        Dispatcher {
            store,
            channels,
            cfg: Arc::new(cfg),
        }
    }

    pub fn config(&self) -> &DispatcherConfig {
        &self.cfg
    }

    /// One round for tests and `courier watch`-like callers: claims up to `pull_count` messages due at
    /// `now`, delivers them (concurrently, bounded) and records every outcome as of `now`. Returns how
    /// many messages were claimed.
    pub async fn run_once(&self, now: OffsetDateTime) -> usize {
        let messages = match self.claim(self.cfg.pull_count, now).await {
            Some(m) => m,
            None => return 0,
        };
        let claimed = messages.len();
        let semaphore = Arc::new(Semaphore::new(self.cfg.concurrency));
        let mut tasks = JoinSet::new();
        for msg in messages {
            let worker = self.worker();
            let semaphore = semaphore.clone();
            tasks.spawn(async move {
                let _permit = semaphore.acquire_owned().await;
                worker.deliver(msg, Some(now)).await;
            });
        }
        while let Some(joined) = tasks.join_next().await {
            if let Err(e) = joined {
                tracing::error!(error = %e, "courier delivery task failed");
            }
        }
        claimed
    }

    /// Runs until `shutdown` completes, then waits for the deliveries in flight.
    pub async fn run<F>(&self, shutdown: F)
    where
        F: Future<Output = ()> + Send,
    {
        let semaphore = Arc::new(Semaphore::new(self.cfg.concurrency));
        let mut tasks: JoinSet<()> = JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            while let Some(joined) = tasks.try_join_next() {
                if let Err(e) = joined {
                    tracing::error!(error = %e, "courier delivery task failed");
                }
            }
            let free = semaphore.available_permits().min(self.cfg.pull_count as usize);
            let mut claimed_full_batch = false;
            if free > 0
                && let Some(messages) = self.claim(free as u32, OffsetDateTime::now_utc()).await
            {
                claimed_full_batch = messages.len() == free;
                for msg in messages {
                    // Free permits were counted above and only this loop takes them.
                    let Ok(permit) = semaphore.clone().acquire_owned().await else {
                        break;
                    };
                    let worker = self.worker();
                    tasks.spawn(async move {
                        worker.deliver(msg, None).await;
                        drop(permit);
                    });
                }
            }
            // A full batch may mean a backlog: claim again at once while there is room.
            let wait = if claimed_full_batch && semaphore.available_permits() > 0 {
                Duration::ZERO
            } else {
                self.cfg.pull_wait
            };
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        while let Some(joined) = tasks.join_next().await {
            if let Err(e) = joined {
                tracing::error!(error = %e, "courier delivery task failed");
            }
        }
    }

    async fn claim(&self, limit: u32, now: OffsetDateTime) -> Option<Vec<Message>> {
        let lease = time::Duration::try_from(self.cfg.lease).unwrap_or(time::Duration::minutes(1));
        match self.store.claim_messages(limit, lease, now).await {
            Ok(messages) => Some(messages),
            Err(e) => {
                tracing::error!(error = %e, "unable to claim courier messages");
                None
            }
        }
    }

    fn worker(&self) -> Worker {
        Worker {
            store: self.store.clone(),
            channels: self.channels.clone(),
            cfg: self.cfg.clone(),
        }
    }

    /// The outcome of an attempt of `msg` that ended with `result` at `now`.
    pub fn outcome(
        &self,
        msg: &Message,
        result: &Result<(), DeliveryError>,
        now: OffsetDateTime,
    ) -> DeliveryOutcome {
        outcome(&self.cfg, msg, result, now)
    }
}

struct Worker {
    store: Arc<dyn CourierStore>,
    channels: Arc<Channels>,
    cfg: Arc<DispatcherConfig>,
}

impl Worker {
    /// `at`: the clock for retry times and the record (`None`: the wall clock after the attempt).
    async fn deliver(self, msg: Message, at: Option<OffsetDateTime>) {
        let outcome = if i64::from(msg.send_count) > i64::from(self.cfg.message_retries) {
            // Retries were lowered, or a worker died after its last attempt.
            DeliveryOutcome::Abandon {
                error: json!({
                    "message": format!("message was abandoned because it did not deliver after {} attempts", msg.send_count),
                    "code": 500,
                }),
            }
        } else {
            let result = match tokio::time::timeout(self.cfg.attempt_timeout, self.channels.send(&msg)).await
            {
                Ok(result) => result,
                Err(_) => Err(DeliveryError::transient("delivery attempt timed out")),
            };
            let now = at.unwrap_or_else(OffsetDateTime::now_utc);
            match &result {
                Ok(()) => {
                    tracing::debug!(message_id = %msg.id, channel = %msg.channel, "courier sent out message")
                }
                Err(e) => tracing::warn!(message_id = %msg.id, channel = %msg.channel,
                    template_type = %msg.template_type, send_count = msg.send_count, error = %e,
                    "unable to dispatch message"),
            }
            outcome(&self.cfg, &msg, &result, now)
        };
        if let DeliveryOutcome::Abandon { .. } = outcome {
            tracing::warn!(message_id = %msg.id, "courier message abandoned");
        }
        let now = at.unwrap_or_else(OffsetDateTime::now_utc);
        if let Err(e) = self.store.finish_delivery(msg.id, &outcome, now).await {
            tracing::error!(message_id = %msg.id, error = %e, "unable to record the courier delivery outcome");
        }
    }
}

fn outcome(
    cfg: &DispatcherConfig,
    msg: &Message,
    result: &Result<(), DeliveryError>,
    now: OffsetDateTime,
) -> DeliveryOutcome {
    let err = match result {
        Ok(()) => return DeliveryOutcome::Sent,
        Err(e) => e,
    };
    let attempts = i64::from(msg.send_count) + 1;
    if err.permanent || attempts > i64::from(cfg.message_retries) {
        return DeliveryOutcome::Abandon { error: err.to_json() };
    }
    DeliveryOutcome::Retry {
        error: err.to_json(),
        retry_at: now + backoff(cfg, attempts),
    }
}

/// `base * 2^(attempts-1)`, capped.
fn backoff(cfg: &DispatcherConfig, attempts: i64) -> time::Duration {
    let exp = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(u32::MAX)
        .min(30);
    let delay = cfg.backoff_base.saturating_mul(1u32 << exp).min(cfg.backoff_max);
    time::Duration::try_from(delay).unwrap_or(time::Duration::minutes(5))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sallyport_core::courier::MessageType;

    #[test]
    fn backoff_doubles_and_caps() {
        let cfg = DispatcherConfig::default();
        let secs: Vec<i64> = (1..=12).map(|a| backoff(&cfg, a).whole_seconds()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
    }

    #[test]
    fn outcomes() {
        let cfg = DispatcherConfig {
            message_retries: 2,
            ..DispatcherConfig::default()
        };
        let now = OffsetDateTime::UNIX_EPOCH;
        let mut msg = Message::new(MessageType::Email, "email", "a@b.c", "stub", json!({}), now);
        assert_eq!(outcome(&cfg, &msg, &Ok(()), now), DeliveryOutcome::Sent);
        let err = Err(DeliveryError::transient("boom"));
        assert_eq!(
            outcome(&cfg, &msg, &err, now),
            DeliveryOutcome::Retry {
                error: json!({"message": "boom", "code": 500}),
                retry_at: now + time::Duration::seconds(1)
            }
        );
        msg.send_count = 1;
        assert!(matches!(
            outcome(&cfg, &msg, &err, now),
            DeliveryOutcome::Retry { .. }
        ));
        msg.send_count = 2;
        assert!(matches!(
            outcome(&cfg, &msg, &err, now),
            DeliveryOutcome::Abandon { .. }
        ));
        msg.send_count = 0;
        let permanent = Err(DeliveryError::permanent("550").with_code(550));
        assert_eq!(
            outcome(&cfg, &msg, &permanent, now),
            DeliveryOutcome::Abandon {
                error: json!({"message": "550", "code": 550})
            }
        );
    }
}
