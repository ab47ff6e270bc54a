//! The courier end to end: SMS over an HTTP channel, the admin messages API, and several workers.

use std::time::Duration;

use base64::Engine;
use serde_json::json;

use crate::both_backends;
use crate::support::client::{api, message_ids, send};
use crate::support::mail::{MailServer, code_in};
use crate::support::{Backend, TestServer, UI};

fn jsonnet_body() -> String {
    let body = "function(ctx) { to: ctx.recipient, text: ctx.body, template: ctx.template_type }";
    format!(
        "base64://{}",
        base64::engine::general_purpose::STANDARD.encode(body)
    )
}

both_backends!(passwordless_login_by_sms, |b: Backend| async move {
    let receiver = sallyport_testkit::HttpReceiver::start().await;
    let s = TestServer::spawn_with(
        b,
        json!({
            "selfservice": {"methods": {"code": {"enabled": true, "passwordless_enabled": true}}},
            "identity": {"schemas": [{"id": "default", "url": format!("file://{}", crate::support::fixture("code-phone.schema.json").display())}]},
            "courier": {
                "worker": {"pull_wait": "50ms"},
                "channels": [{"id": "sms", "type": "http", "request_config": {
                    "url": receiver.url_for("/sms"), "method": "POST", "body": jsonnet_body(),
                    "auth": {"type": "api_key", "config": {"name": "X-Api-Key", "value": "s3cret", "in": "header"}}
                }}]
            }
        }),
    )
    .await;
    let c = api();
    let (_, flow) = send(c.get(s.public_url("self-service/registration/api"))).await;
    let action = flow["ui"]["action"].as_str().unwrap().to_owned();
    let (st, sent) = send(
        c.post(&action)
            .json(&json!({"method": "code", "traits": {"phone": "+1 (415) 555-2671"}})),
    )
    .await;
    assert_eq!(st, 400, "{sent}");
    let reqs = receiver.wait_for(1, Duration::from_secs(15)).await;
    let sms = reqs[0].json().unwrap();
    assert_eq!(sms["to"], "+14155552671", "phone numbers are normalised to E.164");
    assert_eq!(sms["template"], "registration_code_valid");
    assert_eq!(reqs[0].header("x-api-key"), Some("s3cret"));
    let code = code_in(sms["text"].as_str().unwrap());
    let (st, done) = send(
        c.post(&action)
            .json(&json!({"method": "code", "code": code, "traits": {"phone": "+1 (415) 555-2671"}})),
    )
    .await;
    assert_eq!(st, 200, "{done}");
    assert_eq!(done["identity"]["traits"]["phone"], "+14155552671");
    // Log in with the number written differently.
    let (_, flow) = send(c.get(s.public_url("self-service/login/api"))).await;
    let action = flow["ui"]["action"].as_str().unwrap().to_owned();
    let (st, _) = send(
        c.post(&action)
            .json(&json!({"method": "code", "identifier": "+14155552671"})),
    )
    .await;
    assert_eq!(st, 400);
    let reqs = receiver.wait_for(2, Duration::from_secs(15)).await;
    let code = code_in(reqs[1].json().unwrap()["text"].as_str().unwrap());
    let (st, ok) = send(
        c.post(&action)
            .json(&json!({"method": "code", "identifier": "+14155552671", "code": code})),
    )
    .await;
    assert_eq!(st, 200, "{ok}");
    s.shutdown().await;
});

both_backends!(admin_courier_messages, |b: Backend| async move {
    let mail = MailServer::start().await;
    let s = TestServer::spawn_with(b, mail.config(json!({"selfservice": {"flows": {"recovery": {"enabled": true, "ui_url": format!("{UI}/recovery")}}}}))).await;
    crate::support::client::create_identity(&s, "bea@example.org", "correct horse battery").await;
    let c = api();
    let (_, flow) = send(c.get(s.public_url("self-service/recovery/api"))).await;
    let (_, sent) = send(
        c.post(flow["ui"]["action"].as_str().unwrap())
            .json(&json!({"method": "code", "email": "bea@example.org"})),
    )
    .await;
    assert_eq!(message_ids(&sent), vec![1060003]);
    let mail_body = mail.next_to("bea@example.org").await.text_body;
    let (st, list) = send(c.get(s.admin_url("admin/courier/messages?recipient=bea@example.org"))).await;
    assert_eq!(st, 200);
    let m = &list[0];
    assert_eq!(m["template_type"], "recovery_code_valid");
    assert_eq!(m["type"], "email");
    // The test server runs in --dev mode, where Kratos shows bodies; in production they are redacted.
    assert!(
        m["body"].as_str().unwrap().contains(&code_in(&mail_body)),
        "in --dev the admin API shows bodies: {m}"
    );
    let id = m["id"].as_str().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, one) = send(c.get(s.admin_url(&format!("admin/courier/messages/{id}")))).await;
        if one["status"] == "sent" {
            assert_eq!(one["dispatches"][0]["status"], "success");
            assert_eq!(one["send_count"], 1);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never marked sent: {one}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (st, e) = send(c.get(s.admin_url("admin/courier/messages/not-a-uuid"))).await;
    assert_eq!(st, 400, "{e}");
    let (st, e) = send(c.get(s.admin_url(&format!("admin/courier/messages/{}", uuid::Uuid::new_v4())))).await;
    assert_eq!(st, 404);
    assert_eq!(e["error"]["message"], "Unable to locate the resource");
    let (st, _) = send(c.get(s.admin_url("admin/courier/messages?status=bogus"))).await;
    assert_eq!(st, 400);
    s.shutdown().await;
});

/// Two `sallyport courier watch` processes on one PostgreSQL deliver every message exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_courier_processes_deliver_exactly_once() {
    if std::env::var("TEST_POSTGRES_DSN").is_err() {
        eprintln!("skipped: TEST_POSTGRES_DSN is not set");
        return;
    }
    let mail = MailServer::start().await;
    let s = TestServer::spawn_with(Backend::Postgres, json!({"selfservice": {"flows": {"recovery": {"enabled": true, "ui_url": format!("{UI}/recovery")}}}})).await;
    const N: usize = 30;
    for i in 0..N {
        crate::support::client::create_identity(&s, &format!("w{i}@example.org"), "correct horse battery")
            .await;
    }
    let c = api();
    for i in 0..N {
        let (_, flow) = send(c.get(s.public_url("self-service/recovery/api"))).await;
        let (st, _) = send(
            c.post(flow["ui"]["action"].as_str().unwrap())
                .json(&json!({"method": "code", "email": format!("w{i}@example.org")})),
        )
        .await;
        assert_eq!(st, 200);
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("kratos.yml");
    std::fs::write(
        &cfg,
        format!(
            "dsn: \"{}\"\nselfservice: {{ default_browser_return_url: \"http://app.test/\" }}\nidentity: {{ default_schema_id: default, schemas: [ {{ id: default, url: \"file://{}\" }} ] }}\nsecrets: {{ cookie: [\"a-very-secret-cookie-secret-for-tests\"] }}\ncourier: {{ smtp: {{ connection_uri: \"{}\" }}, worker: {{ pull_count: 3, pull_wait: 20ms }} }}\n",
            s.dsn(),
            crate::support::fixture("email-password.schema.json").display(),
            mail.sink.url()
        ),
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_sallyport");
    let spawn = || {
        std::process::Command::new(bin)
            .args(["courier", "watch", "-c", cfg.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (spawn(), spawn());
    let mails = mail.sink.wait_for(N, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = mail.sink.messages();
    let _ = a.kill();
    let _ = b.kill();
    let _ = (a.wait(), b.wait());
    assert!(mails.len() >= N, "only {} of {N} delivered", mails.len());
    let mut recipients: Vec<String> = all.iter().flat_map(|m| m.to.clone()).collect();
    recipients.sort();
    let before = recipients.len();
    recipients.dedup();
    assert_eq!(before, recipients.len(), "a message was delivered twice");
    assert_eq!(recipients.len(), N);
    s.shutdown().await;
}

both_backends!(smtp_outage_is_retried_without_loss, |b: Backend| async move {
    let mail = MailServer::start().await;
    let s = TestServer::spawn_with(b, mail.config(json!({"selfservice": {"flows": {"recovery": {"enabled": true, "ui_url": format!("{UI}/recovery")}}}}))).await;
    crate::support::client::create_identity(&s, "cat@example.org", "correct horse battery").await;
    crate::support::client::create_identity(&s, "dan@example.org", "correct horse battery").await;
    mail.sink.set_down(true);
    let c = api();
    for who in ["cat@example.org", "dan@example.org"] {
        let (_, flow) = send(c.get(s.public_url("self-service/recovery/api"))).await;
        let (st, _) = send(
            c.post(flow["ui"]["action"].as_str().unwrap())
                .json(&json!({"method": "code", "email": who})),
        )
        .await;
        assert_eq!(st, 200);
    }
    // Let at least one delivery attempt fail.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, list) = send(c.get(s.admin_url("admin/courier/messages"))).await;
        if list
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["send_count"].as_i64().unwrap_or(0) >= 1)
        {
            assert!(list.as_array().unwrap().iter().all(|m| m["status"] != "sent"));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no failed attempt was recorded: {list}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    mail.sink.set_down(false);
    let cat = mail.next_to("cat@example.org").await;
    let dan = mail.next_to("dan@example.org").await;
    assert_eq!(code_in(&cat.text_body).len(), 6);
    assert_eq!(code_in(&dan.text_body).len(), 6);
    // The sink has the mail a moment before the worker records the delivery: wait for the record.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let list = loop {
        let (_, list) = send(c.get(s.admin_url("admin/courier/messages?status=sent"))).await;
        if list.as_array().unwrap().len() == 2 || std::time::Instant::now() > deadline {
            break list;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let sent = list.as_array().unwrap();
    assert_eq!(sent.len(), 2, "{list}");
    let id = sent[0]["id"].as_str().unwrap();
    let (_, one) = send(c.get(s.admin_url(&format!("admin/courier/messages/{id}")))).await;
    let statuses: Vec<&str> = one["dispatches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.first(), Some(&"failed"));
    assert_eq!(statuses.last(), Some(&"success"));
    s.shutdown().await;
});
