//! Section 5: courier delivery throughput. K rendered login-code emails are queued in a file SQLite
//! store (untimed), then a `sallyport_courier::Dispatcher` configured as `courier.*` would configure it
//! delivers them over SMTP to a loopback `SmtpSink`. Timed from the dispatcher's start until the K-th
//! delivery is recorded as sent (each is recorded after the sink accepted the mail); then every
//! message must have arrived exactly once, with its own code.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use tokio::runtime::Runtime;
use tokio::sync::{Notify, oneshot};
use uuid::Uuid;

use sallyport_core::courier::{CourierStore, DeliveryOutcome, Message, MessageQuery, MessageType};
use sallyport_core::store::StoreResult;
use sallyport_core::time_fmt;
use sallyport_courier::{Channels, Dispatcher, DispatcherConfig, Templates};
use sallyport_testkit::SmtpSink;

use crate::Params;
use crate::server::{Prepared, sqlite_dsn};

const TEMPLATE: &str = "login_code_valid";
const PULL_COUNT: u32 = 50;
const PULL_WAIT: &str = "10ms";

pub struct CourierResult {
    pub messages: usize,
    pub enqueue_secs: f64,
    pub secs: f64,
    /// Messages delivered per second.
    pub rate: f64,
    pub pull_count: u32,
    pub pull_wait: Duration,
    pub concurrency: usize,
    /// SMTP connections the sink accepted.
    pub connections: usize,
    /// Attempts that did not end in `Sent` (retried or abandoned).
    pub failed_attempts: u64,
}

pub fn run(p: &Params, server_rt: &Runtime) -> anyhow::Result<CourierResult> {
    let dir = tempfile::tempdir()?;
    let dsn = sqlite_dsn(dir.path());
    // Sink, store and dispatcher all run on the server runtime, as `serve --watch-courier` would.
    let r = server_rt.block_on(measure(p.courier_messages, &dsn));
    drop(dir);
    r
}

async fn measure(k: usize, dsn: &str) -> anyhow::Result<CourierResult> {
    let sink = SmtpSink::start().await;
    let prepared = Prepared::with_config(
        dsn,
        json!({"algorithm": "bcrypt", "bcrypt": {"cost": 12}}),
        |cfg| {
            cfg["courier"] = json!({
                "smtp": {"connection_uri": sink.url(), "from_address": "no-reply@sallyport.test"},
                "worker": {"pull_count": PULL_COUNT, "pull_wait": PULL_WAIT},
            });
        },
    )
    .await?;
    let courier = prepared.settings.courier.clone();
    let store: Arc<dyn CourierStore> = prepared.store.clone();
    drop(prepared);

    eprintln!("[courier] rendering and queuing {k} {TEMPLATE} emails");
    let templates = Templates::from_config(&courier).map_err(|e| anyhow::anyhow!("templates: {e}"))?;
    let now = time_fmt::now();
    let mut want: HashMap<String, String> = HashMap::with_capacity(k);
    let mut messages = Vec::with_capacity(k);
    for i in 0..k {
        let to = format!("courier{i:07}@example.org");
        let code = format!("{:06}", (i * 7919 + 104_729) % 1_000_000);
        let data = json!({
            "to": to,
            "login_code": code,
            "identity": {"id": Uuid::new_v4(), "schema_id": "default", "traits": {"email": to}},
            "request_url": "http://127.0.0.1:4433/self-service/login/api",
            "request_url_domain": "127.0.0.1",
            "expires_in_minutes": 15,
            "transient_payload": {},
        });
        let r = templates
            .render(TEMPLATE, MessageType::Email, &data)
            .map_err(|e| anyhow::anyhow!("rendering {TEMPLATE}: {e}"))?;
        let mut m = Message::new(MessageType::Email, "email", &to, TEMPLATE, data, now);
        m.subject = r.subject;
        m.body = r.body;
        if !m.body.contains(&code) {
            bail!("the rendered body does not contain the code: {:?}", m.body);
        }
        want.insert(to, code);
        messages.push(m);
    }
    let t0 = Instant::now();
    for chunk in messages.chunks(100) {
        store
            .enqueue_messages(chunk)
            .await
            .map_err(|e| anyhow::anyhow!("enqueue_messages: {e}"))?;
    }
    let enqueue_secs = t0.elapsed().as_secs_f64();
    drop(messages);

    let counting = Arc::new(Counting {
        inner: store.clone(),
        sent: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        progress: Notify::new(),
    });
    let channels = Channels::from_config(&courier).map_err(|e| anyhow::anyhow!("channels: {e}"))?;
    let dcfg = DispatcherConfig::from(&courier);
    let dispatcher = Dispatcher::new(counting.clone(), channels, &courier);
    eprintln!(
        "[courier] delivering to {} (pull_count {}, pull_wait {:?}, concurrency {})",
        sink.addr(),
        dcfg.pull_count,
        dcfg.pull_wait,
        dcfg.concurrency
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let t0 = Instant::now();
    let worker = tokio::spawn(async move {
        dispatcher
            .run(async {
                let _ = stopped.await;
            })
            .await
    });
    // Generous: failed attempts back off for seconds.
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(60) + Duration::from_millis(k as u64 * 20);
    let done = loop {
        let progress = counting.progress.notified();
        if counting.sent.load(Ordering::SeqCst) >= k as u64 {
            break true;
        }
        if tokio::time::timeout_at(deadline, progress).await.is_err() {
            break false;
        }
    };
    let secs = t0.elapsed().as_secs_f64();
    let _ = stop.send(());
    worker.await.context("dispatcher task")?;
    let sent = counting.sent.load(Ordering::SeqCst);
    let failed_attempts = counting.failed.load(Ordering::SeqCst);
    if !done {
        bail!(
            "only {sent} of {k} messages were delivered within the deadline ({failed_attempts} failed attempts)"
        );
    }

    // Every message exactly once, with its own code; a moment later, still no duplicates.
    let _ = sink.wait_for(k, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mails = sink.messages();
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(k);
    for m in &mails {
        let [to] = m.to.as_slice() else {
            bail!("a mail with {} recipients: {:?}", m.to.len(), m.to);
        };
        let Some(code) = want.get(to.as_str()) else {
            bail!("a mail to an unexpected recipient {to}");
        };
        if !m.text_body.contains(code.as_str()) {
            bail!(
                "the mail to {to} does not carry its code {code}: {:?}",
                m.text_body
            );
        }
        *seen.entry(to.as_str()).or_default() += 1;
    }
    let dups = seen.values().filter(|&&n| n > 1).count();
    let missing = k - seen.len();
    if dups > 0 || missing > 0 || mails.len() != k {
        bail!(
            "{} mails arrived for {k} messages: {missing} missing, {dups} recipients got more than one",
            mails.len()
        );
    }
    let queued = store
        .list_messages(&MessageQuery {
            status: Some(sallyport_core::courier::MessageStatus::Queued),
            limit: 1,
            ..MessageQuery::default()
        })
        .await
        .map_err(|e| anyhow::anyhow!("list_messages: {e}"))?;
    if !queued.is_empty() {
        bail!("messages still queued after delivery");
    }
    Ok(CourierResult {
        messages: k,
        enqueue_secs,
        secs,
        rate: k as f64 / secs,
        pull_count: dcfg.pull_count,
        pull_wait: dcfg.pull_wait,
        concurrency: dcfg.concurrency,
        connections: sink.connections(),
        failed_attempts,
    })
}

/// The store, counting the outcomes the dispatcher records and waking the waiting bench on each.
struct Counting {
    inner: Arc<dyn CourierStore>,
    sent: AtomicU64,
    failed: AtomicU64,
    progress: Notify,
}

#[async_trait::async_trait]
impl CourierStore for Counting {
    async fn enqueue_messages(&self, messages: &[Message]) -> StoreResult<()> {
        self.inner.enqueue_messages(messages).await
    }

    async fn claim_messages(
        &self,
        limit: u32,
        lease: time::Duration,
        now: time::OffsetDateTime,
    ) -> StoreResult<Vec<Message>> {
        self.inner.claim_messages(limit, lease, now).await
    }

    async fn finish_delivery(
        &self,
        id: Uuid,
        outcome: &DeliveryOutcome,
        now: time::OffsetDateTime,
    ) -> StoreResult<()> {
        let r = self.inner.finish_delivery(id, outcome, now).await;
        if r.is_ok() && *outcome == DeliveryOutcome::Sent {
            self.sent.fetch_add(1, Ordering::SeqCst);
        } else {
            self.failed.fetch_add(1, Ordering::SeqCst);
        }
        self.progress.notify_one();
        r
    }

    async fn list_messages(&self, query: &MessageQuery) -> StoreResult<Vec<Message>> {
        self.inner.list_messages(query).await
    }

    async fn get_message(&self, id: Uuid) -> StoreResult<Message> {
        self.inner.get_message(id).await
    }
}
