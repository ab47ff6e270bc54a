//! Delivery through real protocol peers: the SMTP sink and HTTP receiver of `sallyport-testkit`, and
//! an in-memory `CourierStore` double (the SQL stores are tested with their own crates).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sallyport_config::model::{Courier, CourierChannel, DeliveryStrategy, Smtp};
use sallyport_core::courier::{
    CourierStore, DeliveryOutcome, Dispatch, Message, MessageQuery, MessageStatus, MessageType,
};
use sallyport_core::store::{StoreError, StoreResult};
use sallyport_courier::{Channels, Dispatcher, DispatcherConfig, Templates};
use sallyport_testkit::{HttpReceiver, SmtpSink};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

// ------------------------------------------------------------------------------------------------
// Test double

#[derive(Default)]
struct MemStore {
    messages: Mutex<Vec<Message>>,
}

#[async_trait::async_trait]
impl CourierStore for MemStore {
    async fn enqueue_messages(&self, messages: &[Message]) -> StoreResult<()> {
        self.messages.lock().unwrap().extend_from_slice(messages);
        Ok(())
    }

    async fn claim_messages(
        &self,
        limit: u32,
        lease: time::Duration,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<Message>> {
        let mut all = self.messages.lock().unwrap();
        let mut due: Vec<usize> = (0..all.len())
            .filter(|&i| {
                let m = &all[i];
                matches!(m.status, MessageStatus::Queued | MessageStatus::Processing)
                    && m.next_attempt_at <= now
            })
            .collect();
        due.sort_by_key(|&i| (all[i].created_at, all[i].id));
        due.truncate(limit as usize);
        let mut out = Vec::new();
        for i in due {
            let m = &mut all[i];
            m.status = MessageStatus::Processing;
            m.next_attempt_at = now + lease;
            out.push(m.clone());
        }
        Ok(out)
    }

    async fn finish_delivery(
        &self,
        id: Uuid,
        outcome: &DeliveryOutcome,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        let mut all = self.messages.lock().unwrap();
        let m = all.iter_mut().find(|m| m.id == id).ok_or(StoreError::NotFound)?;
        m.send_count += 1;
        m.updated_at = now;
        let (status, error) = match outcome {
            DeliveryOutcome::Sent => {
                m.status = MessageStatus::Sent;
                ("success", None)
            }
            DeliveryOutcome::Retry { error, retry_at } => {
                m.status = MessageStatus::Queued;
                m.next_attempt_at = *retry_at;
                ("failed", Some(error.clone()))
            }
            DeliveryOutcome::Abandon { error } => {
                m.status = MessageStatus::Abandoned;
                ("failed", Some(error.clone()))
            }
        };
        m.dispatches.push(Dispatch {
            id: Uuid::new_v4(),
            message_id: id,
            status: status.into(),
            error,
            created_at: now,
            updated_at: now,
        });
        Ok(())
    }

    async fn list_messages(&self, _query: &MessageQuery) -> StoreResult<Vec<Message>> {
        Ok(self.messages.lock().unwrap().clone())
    }

    async fn get_message(&self, id: Uuid) -> StoreResult<Message> {
        self.messages
            .lock()
            .unwrap()
            .iter()
            .find(|m| m.id == id)
            .cloned()
            .ok_or(StoreError::NotFound)
    }
}

// ------------------------------------------------------------------------------------------------
// Helpers

const WAIT: Duration = Duration::from_secs(5);

fn smtp_config(uri: &str) -> Courier {
    Courier {
        smtp: Smtp {
            connection_uri: Some(uri.to_string()),
            from_address: "no-reply@example.org".into(),
            from_name: Some("Example Auth".into()),
            ..Smtp::default()
        },
        ..Courier::default()
    }
}

fn b64(s: &str) -> String {
    format!("base64://{}", STANDARD.encode(s))
}

/// A queued email rendered with the built-in templates, as the flows enqueue it.
fn email(to: &str, template_type: &str, data: Value) -> Message {
    let now = OffsetDateTime::now_utc();
    let rendered = Templates::builtin()
        .render(template_type, MessageType::Email, &data)
        .unwrap();
    let mut m = Message::new(MessageType::Email, "email", to, template_type, data, now);
    m.subject = rendered.subject;
    m.body = rendered.body;
    m
}

fn login_code_email(to: &str, code: &str) -> Message {
    email(
        to,
        "login_code_valid",
        json!({"to": to, "login_code": code, "expires_in_minutes": 15}),
    )
}

fn sms(to: &str, code: &str) -> Message {
    let data = json!({"to": to, "login_code": code, "expires_in_minutes": 15, "request_url_domain": "auth.example.org"});
    let rendered = Templates::builtin()
        .render("login_code_valid", MessageType::Sms, &data)
        .unwrap();
    let mut m = Message::new(
        MessageType::Sms,
        "sms",
        to,
        "login_code_valid",
        data,
        OffsetDateTime::now_utc(),
    );
    m.body = rendered.body;
    m
}

async fn dispatcher(store: &Arc<MemStore>, cfg: &Courier) -> Dispatcher {
    let channels = Channels::from_config(cfg).unwrap();
    Dispatcher::new(store.clone(), channels, cfg)
}

async fn message(store: &MemStore, id: Uuid) -> Message {
    store.get_message(id).await.unwrap()
}

// ------------------------------------------------------------------------------------------------
// SMTP

#[tokio::test]
async fn smtp_delivers_subject_body_from_to_and_html() {
    let sink = SmtpSink::start().await;
    let channels = Channels::from_config(&smtp_config(&sink.url())).unwrap();
    let msg = login_code_email("ann@example.org", "123456");
    channels.send(&msg).await.unwrap();

    let mails = sink.wait_for(1, WAIT).await;
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.from, "no-reply@example.org");
    assert_eq!(mail.to, vec!["ann@example.org".to_string()]);
    assert_eq!(mail.subject, "Use code 123456 to log in");
    assert_eq!(mail.header("To"), Some("ann@example.org"));
    assert!(
        mail.header("From").unwrap().contains("Example Auth"),
        "{:?}",
        mail.header("From")
    );
    assert!(mail.header("From").unwrap().contains("<no-reply@example.org>"));
    assert_eq!(
        mail.text_body,
        "Login to your account with the following code:\n\n123456\n\nIt expires in 15 minutes.\n"
    );
    assert!(mail.html_body.as_deref().unwrap().contains("123456"));
    assert!(
        mail.header("Content-Type")
            .unwrap()
            .starts_with("multipart/alternative")
    );
}

#[tokio::test]
async fn smtp_custom_headers_local_name_and_non_ascii_subject() {
    let sink = SmtpSink::start().await;
    let mut cfg = smtp_config(&sink.url());
    cfg.smtp.headers.insert("X-Sallyport-Test".into(), "yes".into());
    cfg.smtp.local_name = "courier.example.org".into();
    let channels = Channels::from_config(&cfg).unwrap();
    let mut msg = email(
        "ann@example.org",
        "stub",
        json!({"to": "ann@example.org", "subject": "Grüße 👋", "body": "Hallo"}),
    );
    msg.subject = "Grüße 👋".into();
    channels.send(&msg).await.unwrap();
    let mail = &sink.wait_for(1, WAIT).await[0];
    assert_eq!(mail.subject, "Grüße 👋");
    assert_eq!(mail.header("X-Sallyport-Test"), Some("yes"));
    assert_eq!(mail.text_body, "Hallo");
}

#[tokio::test]
async fn smtp_auth_credentials_are_passed() {
    let sink = SmtpSink::start().await;
    let uri = format!(
        "smtp://mailer%40example.org:p%40ss%3Aword@{}/?disable_starttls=true",
        sink.addr()
    );
    let channels = Channels::from_config(&smtp_config(&uri)).unwrap();
    channels
        .send(&login_code_email("ann@example.org", "1"))
        .await
        .unwrap();
    let mails = sink.wait_for(1, WAIT).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].auth_username.as_deref(), Some("mailer@example.org"));
    let auths = sink.auths();
    assert_eq!(auths.len(), 1);
    assert_eq!(auths[0].username, "mailer@example.org");
    assert_eq!(auths[0].password, "p@ss:word");
}

#[tokio::test]
async fn smtp_requires_starttls_unless_disabled() {
    let sink = SmtpSink::start().await;
    let uri = format!("smtp://user:hunter2@{}/", sink.addr());
    let channels = Channels::from_config(&smtp_config(&uri)).unwrap();
    let err = channels
        .send(&login_code_email("ann@example.org", "1"))
        .await
        .unwrap_err();
    assert!(
        err.message.to_ascii_lowercase().contains("starttls"),
        "{}",
        err.message
    );
    assert!(!err.message.contains("hunter2"));
    assert!(!err.to_json().to_string().contains("hunter2"));
    // Nothing was sent in clear text, not even the credentials.
    assert!(sink.messages().is_empty());
    assert!(sink.auths().is_empty());
    assert!(sink.connections() >= 1);
}

#[tokio::test]
async fn smtps_against_a_clear_text_server_fails() {
    let sink = SmtpSink::start().await;
    let channels = Channels::from_config(&smtp_config(&format!("smtps://{}/", sink.addr()))).unwrap();
    assert!(
        channels
            .send(&login_code_email("ann@example.org", "1"))
            .await
            .is_err()
    );
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn smtp_header_injection_in_recipient_or_subject_never_adds_a_header() {
    let sink = SmtpSink::start().await;
    let channels = Channels::from_config(&smtp_config(&sink.url())).unwrap();

    // Recipient: rejected for good, nothing sent.
    let mut msg = login_code_email("ann@example.org", "1");
    msg.recipient = "a@b.c\r\nBcc: evil@x".into();
    let err = channels.send(&msg).await.unwrap_err();
    assert!(err.permanent);
    assert!(sink.messages().is_empty());

    // Subject built from a trait: the template output loses its line breaks, and even a stored
    // subject with CR/LF cannot start a header line.
    let mut cfg = smtp_config(&sink.url());
    cfg.templates =
        json!({"login_code": {"valid": {"email": {"subject": b64("Hi {{ .Identity.traits.name }}")}}}});
    let templates = Templates::from_config(&cfg).unwrap();
    let data = json!({"identity": {"traits": {"name": "x\r\nBcc: evil@x"}}, "login_code": "1"});
    let rendered = templates
        .render("login_code_valid", MessageType::Email, &data)
        .unwrap();
    assert_eq!(rendered.subject, "Hi x Bcc: evil@x");
    let mut msg = login_code_email("ann@example.org", "1");
    msg.subject = "Hi x\r\nBcc: evil@x".into();
    channels.send(&msg).await.unwrap();
    let mail = &sink.wait_for(1, WAIT).await[0];
    assert_eq!(mail.to, vec!["ann@example.org".to_string()]);
    assert!(mail.header_all("Bcc").is_empty());
    assert!(
        !mail
            .headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("bcc") || v.starts_with("evil"))
    );
    assert!(mail.subject.contains("Bcc: evil@x"));
}

#[tokio::test]
async fn smtp_without_connection_uri_is_retried() {
    let store = Arc::new(MemStore::default());
    let d = dispatcher(&store, &Courier::default()).await;
    let msg = login_code_email("ann@example.org", "1");
    store.enqueue_messages(std::slice::from_ref(&msg)).await.unwrap();
    let now = OffsetDateTime::now_utc();
    assert_eq!(d.run_once(now).await, 1);
    let m = message(&store, msg.id).await;
    assert_eq!(m.status, MessageStatus::Queued);
    assert!(
        m.dispatches[0].error.as_ref().unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("connection_uri is not set")
    );
}

// ------------------------------------------------------------------------------------------------
// HTTP channels

fn sms_channel(url: &str, auth: Value) -> CourierChannel {
    let body = "function(ctx) { to: ctx.recipient, text: ctx.body, type: ctx.message_type, tpl: ctx.template_type, code: ctx.template_data.login_code }";
    serde_json::from_value(json!({
        "id": "sms",
        "type": "http",
        "request_config": {"url": url, "method": "POST", "body": b64(body), "headers": {"X-Tenant": "t1"}, "auth": auth},
    }))
    .unwrap()
}

#[tokio::test]
async fn http_channel_with_jsonnet_body_and_basic_auth() {
    let rx = HttpReceiver::start().await;
    let cfg = Courier {
        channels: vec![sms_channel(
            &rx.url_for("/sms"),
            json!({"type": "basic_auth", "config": {"user": "sally", "password": "s3cret"}}),
        )],
        ..Courier::default()
    };
    let channels = Channels::from_config(&cfg).unwrap();
    channels.send(&sms("+4915112345678", "654321")).await.unwrap();
    let reqs = rx.wait_for(1, WAIT).await;
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/sms"));
    assert_eq!(
        r.header("authorization"),
        Some(format!("Basic {}", STANDARD.encode("sally:s3cret")).as_str())
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-tenant"), Some("t1"));
    assert_eq!(
        r.json().unwrap(),
        json!({
            "to": "+4915112345678",
            "text": "Your login code is: 654321\n\nIt expires in 15 minutes.\n\n@auth.example.org #654321\n",
            "type": "sms",
            "tpl": "login_code_valid",
            "code": "654321",
        })
    );
}

#[tokio::test]
async fn http_channel_api_key_header_and_cookie() {
    let rx = HttpReceiver::start().await;
    let cfg = Courier {
        channels: vec![sms_channel(
            &rx.url_for("/sms"),
            json!({"type": "api_key", "config": {"name": "X-Api-Key", "value": "k-123", "in": "header"}}),
        )],
        ..Courier::default()
    };
    Channels::from_config(&cfg)
        .unwrap()
        .send(&sms("+1555", "1"))
        .await
        .unwrap();
    let cfg = Courier {
        channels: vec![sms_channel(
            &rx.url_for("/sms"),
            json!({"type": "api_key", "config": {"name": "session", "value": "c-456", "in": "cookie"}}),
        )],
        ..Courier::default()
    };
    Channels::from_config(&cfg)
        .unwrap()
        .send(&sms("+1555", "1"))
        .await
        .unwrap();
    let reqs = rx.wait_for(2, WAIT).await;
    assert_eq!(reqs[0].header("x-api-key"), Some("k-123"));
    assert_eq!(reqs[1].header("cookie"), Some("session=c-456"));
}

#[tokio::test]
async fn email_over_http_delivery_strategy_gets_html_body_and_default_jsonnet() {
    let rx = HttpReceiver::start().await;
    let cfg = Courier {
        delivery_strategy: DeliveryStrategy::Http,
        http: json!({"request_config": {"url": rx.url_for("/mail"),
            "body": b64("function(ctx) { to: ctx.recipient, subject: ctx.subject, html: ctx.html_body, data: ctx.template_data, headers: ctx.request_headers }")}}),
        ..Courier::default()
    };
    let channels = Channels::from_config(&cfg).unwrap();
    let msg = email(
        "ann@example.org",
        "verification_code_valid",
        json!({"to": "ann@example.org", "verification_code": "777", "verification_url": "https://x/v?a=1&b=2", "expires_in_minutes": 5}),
    );
    channels.send(&msg).await.unwrap();
    let body = rx.wait_for(1, WAIT).await[0].json().unwrap();
    assert_eq!(body["to"], "ann@example.org");
    assert_eq!(body["subject"], "Use code 777 to verify your account");
    assert!(
        body["html"]
            .as_str()
            .unwrap()
            .contains("<a href=\"https://x/v?a=1&amp;b=2\">")
    );
    assert_eq!(body["data"]["verification_code"], "777");
    // The model as Kratos serializes it: absent fields carry zero values.
    assert_eq!(body["data"]["request_url"], "");
    assert_eq!(body["data"]["identity"], Value::Null);
    assert_eq!(body["headers"], json!({}));

    // Without `body`, Kratos' default mailer payload is sent.
    let cfg = Courier {
        delivery_strategy: DeliveryStrategy::Http,
        http: json!({"request_config": {"url": rx.url_for("/default")}}),
        ..Courier::default()
    };
    Channels::from_config(&cfg).unwrap().send(&msg).await.unwrap();
    let body = rx.wait_for(2, WAIT).await[1].json().unwrap();
    assert_eq!(body["recipient"], "ann@example.org");
    assert_eq!(body["verification_code"], "777");
    assert_eq!(body["template_type"], "verification_code_valid");
}

#[tokio::test]
async fn unknown_channel_is_a_permanent_error_and_is_abandoned() {
    let store = Arc::new(MemStore::default());
    let d = dispatcher(&store, &Courier::default()).await;
    let mut msg = sms("+1555", "1");
    msg.channel = "pigeon".into();
    store.enqueue_messages(std::slice::from_ref(&msg)).await.unwrap();
    d.run_once(OffsetDateTime::now_utc()).await;
    let m = message(&store, msg.id).await;
    assert_eq!(m.status, MessageStatus::Abandoned);
    assert_eq!(m.send_count, 1);
    assert!(
        m.dispatches[0].error.as_ref().unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("pigeon")
    );
}

// ------------------------------------------------------------------------------------------------
// Dispatcher

#[tokio::test]
async fn http_2xx_is_sent_and_500_is_retried_with_backoff() {
    let rx = HttpReceiver::start().await;
    rx.set_status(500);
    let store = Arc::new(MemStore::default());
    let cfg = Courier {
        channels: vec![sms_channel(
            &rx.url_for("/sms"),
            json!({"type": "basic_auth", "config": {"user": "sally", "password": "s3cret"}}),
        )],
        ..Courier::default()
    };
    let d = dispatcher(&store, &cfg).await;
    let msg = sms("+1555", "1");
    store.enqueue_messages(std::slice::from_ref(&msg)).await.unwrap();

    let t0 = OffsetDateTime::now_utc();
    assert_eq!(d.run_once(t0).await, 1);
    let m = message(&store, msg.id).await;
    assert_eq!((m.status, m.send_count), (MessageStatus::Queued, 1));
    assert_eq!(m.next_attempt_at, t0 + time::Duration::seconds(1));
    let error = m.dispatches[0].error.clone().unwrap();
    assert_eq!(error["code"], 500);
    assert!(!error.to_string().contains("s3cret"));
    assert!(!error.to_string().contains(&STANDARD.encode("sally:s3cret")));

    // Not due yet.
    assert_eq!(d.run_once(t0).await, 0);

    rx.set_status(202);
    assert_eq!(d.run_once(t0 + time::Duration::seconds(1)).await, 1);
    let m = message(&store, msg.id).await;
    assert_eq!((m.status, m.send_count), (MessageStatus::Sent, 2));
    assert_eq!(
        m.dispatches.iter().map(|d| d.status.as_str()).collect::<Vec<_>>(),
        vec!["failed", "success"]
    );
    assert_eq!(rx.requests().len(), 2);
}

#[tokio::test]
async fn smtp_outage_then_recovery_loses_nothing() {
    let sink = SmtpSink::start().await;
    sink.set_down(true);
    let store = Arc::new(MemStore::default());
    let d = dispatcher(&store, &smtp_config(&sink.url())).await;
    let msgs: Vec<Message> = (0..3)
        .map(|i| login_code_email(&format!("user{i}@example.org"), &format!("{i}")))
        .collect();
    store.enqueue_messages(&msgs).await.unwrap();

    let t0 = OffsetDateTime::now_utc();
    assert_eq!(d.run_once(t0).await, 3);
    for m in &msgs {
        let m = message(&store, m.id).await;
        assert_eq!((m.status, m.send_count), (MessageStatus::Queued, 1));
        assert_eq!(m.dispatches[0].status, "failed");
    }
    assert!(sink.messages().is_empty());

    sink.set_down(false);
    assert_eq!(d.run_once(t0 + time::Duration::seconds(1)).await, 3);
    let mails = sink.wait_for(3, WAIT).await;
    assert_eq!(mails.len(), 3);
    let mut to: Vec<String> = mails.iter().map(|m| m.to[0].clone()).collect();
    to.sort();
    assert_eq!(
        to,
        vec!["user0@example.org", "user1@example.org", "user2@example.org"]
    );
    for m in &msgs {
        assert_eq!(message(&store, m.id).await.status, MessageStatus::Sent);
    }
    assert_eq!(d.run_once(t0 + time::Duration::hours(1)).await, 0);
}

#[tokio::test]
async fn abandoned_after_message_retries() {
    let rx = HttpReceiver::start().await;
    rx.set_status(503);
    let store = Arc::new(MemStore::default());
    let cfg = Courier {
        channels: vec![sms_channel(&rx.url_for("/sms"), Value::Null)],
        message_retries: 2,
        ..Courier::default()
    };
    let d = dispatcher(&store, &cfg).await;
    let msg = sms("+1555", "1");
    store.enqueue_messages(std::slice::from_ref(&msg)).await.unwrap();
    let mut now = OffsetDateTime::now_utc();
    for _ in 0..5 {
        d.run_once(now).await;
        now += time::Duration::minutes(10);
    }
    let m = message(&store, msg.id).await;
    assert_eq!(m.status, MessageStatus::Abandoned);
    // The first attempt plus `message_retries` retries.
    assert_eq!(m.send_count, 3);
    assert_eq!(m.dispatches.len(), 3);
    assert!(
        m.dispatches
            .iter()
            .all(|d| d.status == "failed" && d.error.as_ref().unwrap()["code"] == 503)
    );
    assert_eq!(rx.requests().len(), 3);
}

#[tokio::test]
async fn smtp_5xx_for_one_recipient_abandons_it_and_delivers_the_rest() {
    let sink = SmtpSink::start().await;
    sink.reject_recipient("bounce@example.org");
    let store = Arc::new(MemStore::default());
    let d = dispatcher(&store, &smtp_config(&sink.url())).await;
    let bad = login_code_email("bounce@example.org", "0");
    let good: Vec<Message> = (1..4)
        .map(|i| login_code_email(&format!("ok{i}@example.org"), "1"))
        .collect();
    store.enqueue_messages(std::slice::from_ref(&bad)).await.unwrap();
    store.enqueue_messages(&good).await.unwrap();

    assert_eq!(d.run_once(OffsetDateTime::now_utc()).await, 4);
    let b = message(&store, bad.id).await;
    assert_eq!(b.status, MessageStatus::Abandoned);
    assert_eq!(b.dispatches[0].error.as_ref().unwrap()["code"], 550);
    for m in &good {
        assert_eq!(message(&store, m.id).await.status, MessageStatus::Sent);
    }
    assert_eq!(sink.wait_for(3, WAIT).await.len(), 3);
}

#[tokio::test]
async fn a_slow_recipient_does_not_hold_back_the_others() {
    let sink = SmtpSink::start().await;
    sink.delay_recipient("slow@example.org", Duration::from_secs(6));
    let store = Arc::new(MemStore::default());
    let mut cfg = smtp_config(&sink.url());
    cfg.worker.pull_wait = Duration::from_millis(50);
    let d = Arc::new(dispatcher(&store, &cfg).await);

    // The slow message is the oldest: first in every batch.
    let slow = login_code_email("slow@example.org", "0");
    store.enqueue_messages(std::slice::from_ref(&slow)).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = {
        let d = d.clone();
        tokio::spawn(async move {
            d.run(async {
                let _ = stopped.await;
            })
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Messages queued while the slow one is in flight still go out at once.
    let fast: Vec<Message> = (0..5)
        .map(|i| login_code_email(&format!("fast{i}@example.org"), "1"))
        .collect();
    store.enqueue_messages(&fast).await.unwrap();
    let started = std::time::Instant::now();
    let mails = sink.wait_for(5, WAIT).await;
    assert_eq!(mails.len(), 5, "the fast messages were held back");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert!(mails.iter().all(|m| m.to[0].starts_with("fast")));
    assert_eq!(message(&store, slow.id).await.status, MessageStatus::Processing);

    // The slow one arrives in the end; shutdown waits for it.
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(15), runner)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(message(&store, slow.id).await.status, MessageStatus::Sent);
    assert_eq!(sink.messages().len(), 6);
}

#[tokio::test]
async fn batches_are_bounded_by_pull_count() {
    let rx = HttpReceiver::start().await;
    let store = Arc::new(MemStore::default());
    let mut cfg = Courier {
        channels: vec![sms_channel(&rx.url_for("/sms"), Value::Null)],
        ..Courier::default()
    };
    cfg.worker.pull_count = 2;
    let d = dispatcher(&store, &cfg).await;
    let msgs: Vec<Message> = (0..5).map(|i| sms(&format!("+1555{i}"), "1")).collect();
    store.enqueue_messages(&msgs).await.unwrap();
    let now = OffsetDateTime::now_utc();
    assert_eq!(d.run_once(now).await, 2);
    assert_eq!(d.run_once(now).await, 2);
    assert_eq!(d.run_once(now).await, 1);
    assert_eq!(d.run_once(now).await, 0);
    assert_eq!(rx.requests().len(), 5);
    let config: &DispatcherConfig = d.config();
    assert_eq!(config.pull_count, 2);
}
