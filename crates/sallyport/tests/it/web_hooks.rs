//! Kratos' `web_hook` action: a loopback receiver records what each hook point sends and answers as the
//! test programs it.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use sallyport_testkit::HttpReceiver;

use crate::both_backends;
use crate::support::client::{api, browser, csrf, location, native_login, node, send};
use crate::support::{Backend, TestServer, UI};

fn jsonnet(code: &str) -> String {
    format!(
        "base64://{}",
        base64::engine::general_purpose::STANDARD.encode(code)
    )
}

/// A hook on `path` of `rx` whose body is the whole ctx.
fn hook(rx: &HttpReceiver, path: &str, extra: Value) -> Value {
    let mut c = json!({"url": rx.url_for(path), "method": "POST", "body": jsonnet("function(ctx) ctx")});
    crate::support::deep_merge(&mut c, extra);
    json!({"hook": "web_hook", "config": c})
}

fn registration_hooks(hooks: Vec<Value>) -> Value {
    json!({"selfservice": {"flows": {"registration": {"after": {"password": {"hooks": hooks}}}}}})
}

async fn identities(s: &TestServer) -> Vec<Value> {
    let (st, list) = send(api().get(s.admin_url("admin/identities"))).await;
    assert_eq!(st, 200);
    list.as_array().unwrap().clone()
}

fn veto_answer() -> Value {
    json!({"messages": [{
        "instance_ptr": "#/traits/email",
        "messages": [{"id": 4000123, "text": "This email is not welcome here.", "type": "error", "context": {"reason": "blocked"}}]
    }]})
}

fn node_message_ids(flow: &Value, name: &str) -> Vec<i64> {
    node(flow, name)
        .and_then(|n| n["messages"].as_array())
        .map(|m| m.iter().filter_map(|m| m["id"].as_i64()).collect())
        .unwrap_or_default()
}

async fn native_register(s: &TestServer, email: &str, extra: Value) -> (reqwest::StatusCode, Value) {
    let c = api();
    let (_, flow) = send(c.get(s.public_url("self-service/registration/api"))).await;
    let mut b = json!({"method": "password", "traits": {"email": email}, "password": "a-strong-passw0rd!"});
    crate::support::deep_merge(&mut b, extra);
    send(
        c.post(s.public_url(&format!(
            "self-service/registration?flow={}",
            flow["id"].as_str().unwrap()
        )))
        .json(&b),
    )
    .await
}

both_backends!(
    interrupting_hook_vetoes_sign_up_for_every_client,
    |b: Backend| async move {
        let rx = HttpReceiver::start().await;
        rx.set_answer_for_path("/veto", 400, veto_answer().to_string(), &[]);
        let s = TestServer::spawn_with(
        b,
        registration_hooks(vec![
            hook(
                &rx,
                "/veto",
                json!({"can_interrupt": true, "auth": {"type": "api_key", "config": {"name": "X-Hook-Key", "value": "k-123", "in": "header"}}}),
            ),
            json!({"hook": "session"}),
        ]),
    )
    .await;

        // Native: 400 with the flow, the message on the email node, nothing stored.
        let (st, flow) = native_register(
            &s,
            "eve@example.org",
            json!({"transient_payload": {"invite": "abc"}}),
        )
        .await;
        assert_eq!(st, 400, "{flow}");
        assert_eq!(node_message_ids(&flow, "traits.email"), vec![4000123]);
        let m = &node(&flow, "traits.email").unwrap()["messages"][0];
        assert_eq!(m["text"], "This email is not welcome here.");
        assert_eq!(m["type"], "error");
        assert_eq!(m["context"]["reason"], "blocked");
        assert!(identities(&s).await.is_empty(), "a vetoed sign-up stores nothing");
        let got = rx.requests();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].header("x-hook-key"), Some("k-123"));
        let ctx = got[0].json().unwrap();
        assert_eq!(ctx["identity"]["traits"]["email"], "eve@example.org");
        assert_eq!(ctx["flow"]["type"], "api");
        assert_eq!(ctx["flow"]["transient_payload"]["invite"], "abc");
        assert_eq!(ctx["request_method"], "POST");
        assert!(
            ctx["request_url"]
                .as_str()
                .unwrap()
                .contains("/self-service/registration?flow=")
        );
        assert!(
            ctx.get("session").is_none(),
            "no session exists before persisting"
        );

        // SPA: 400 JSON flow with the message.
        let c = browser();
        let (_, flow) = send(
            c.get(s.public_url("self-service/registration/browser"))
                .header("Accept", "application/json"),
        )
        .await;
        let action = flow["ui"]["action"].as_str().unwrap().to_owned();
        let (st, f) = send(c.post(&action).json(&json!({
        "method": "password", "traits": {"email": "eve@example.org"}, "password": "a-strong-passw0rd!", "csrf_token": csrf(&flow)
    })))
    .await;
        assert_eq!(st, 400, "{f}");
        assert_eq!(node_message_ids(&f, "traits.email"), vec![4000123]);
        assert_eq!(
            rx.requests()[1].json().unwrap()["request_cookies"]
                .as_object()
                .map(|o| !o.is_empty()),
            Some(true)
        );

        // Browser form: back to the UI, where the flow shows the message.
        let c = browser();
        let res = c
            .get(s.public_url("self-service/registration/browser"))
            .send()
            .await
            .unwrap();
        let id = crate::support::client::flow_id_from(&location(&res));
        let (_, flow) = send(c.get(s.public_url(&format!("self-service/registration/flows?id={id}")))).await;
        let res = c
            .post(flow["ui"]["action"].as_str().unwrap())
            .form(&[
                ("method", "password"),
                ("traits.email", "eve@example.org"),
                ("password", "a-strong-passw0rd!"),
                ("csrf_token", &csrf(&flow)),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 302);
        assert!(location(&res).starts_with(&format!("{UI}/registration?flow=")));
        let (_, f) = send(c.get(s.public_url(&format!("self-service/registration/flows?id={id}")))).await;
        assert_eq!(node_message_ids(&f, "traits.email"), vec![4000123]);
        assert!(identities(&s).await.is_empty());

        // The receiver says yes: the sign-up goes through.
        rx.set_answer_for_path("/veto", 200, "{}", &[]);
        let (st, ok) = native_register(&s, "eve@example.org", json!({})).await;
        assert_eq!(st, 200, "{ok}");
        assert!(ok["session_token"].is_string());
        assert_eq!(identities(&s).await.len(), 1);
        s.shutdown().await;
    }
);

both_backends!(
    parse_changes_traits_and_metadata_before_persisting,
    |b: Backend| async move {
        let rx = HttpReceiver::start().await;
        rx.set_answer_for_path(
        "/enrich",
        200,
        json!({"identity": {"traits": {"email": "Changed@Example.org"}, "metadata_public": {"plan": "free"}, "metadata_admin": {"crm": 42}}}).to_string(),
        &[],
    );
        let s = TestServer::spawn_with(
        b,
        registration_hooks(vec![hook(&rx, "/enrich", json!({"response": {"parse": true}, "auth": {"type": "basic_auth", "config": {"user": "u", "password": "p"}}})), json!({"hook": "session"})]),
    )
    .await;
        let (st, ok) = native_register(&s, "orig@example.org", json!({})).await;
        assert_eq!(st, 200, "{ok}");
        assert_eq!(ok["identity"]["traits"]["email"], "Changed@Example.org");
        assert_eq!(ok["identity"]["metadata_public"]["plan"], "free");
        let list = identities(&s).await;
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["metadata_admin"]["crm"], 42);
        assert_eq!(rx.requests()[0].header("authorization"), Some("Basic dTpw"));
        // The password credential follows the new email.
        let (st, _) = native_login(&s, "changed@example.org", "a-strong-passw0rd!").await;
        assert_eq!(st, 200);

        // An answer that breaks the schema is a validation error on the flow, and nothing is stored.
        rx.set_answer_for_path(
            "/enrich",
            200,
            json!({"identity": {"traits": {"email": "not an email"}}}).to_string(),
            &[],
        );
        let (st, f) = native_register(&s, "second@example.org", json!({})).await;
        assert_eq!(st, 400, "{f}");
        assert!(!node_message_ids(&f, "traits.email").is_empty(), "{f}");
        assert_eq!(identities(&s).await.len(), 1);
        s.shutdown().await;
    }
);

both_backends!(
    post_persist_and_login_hooks_see_identity_and_session,
    |b: Backend| async move {
        let rx = HttpReceiver::start().await;
        let mut cfg = registration_hooks(vec![hook(&rx, "/sync", json!({})), json!({"hook": "session"})]);
        crate::support::deep_merge(
            &mut cfg,
            json!({"selfservice": {"flows": {"login": {"after": {"hooks": [hook(&rx, "/login", json!({}))]}}}}}),
        );
        let s = TestServer::spawn_with(b, cfg).await;
        let (st, ok) = native_register(&s, "sam@example.org", json!({})).await;
        assert_eq!(st, 200, "{ok}");
        let got = rx.wait_for(1, Duration::from_secs(5)).await;
        assert_eq!(got[0].path, "/sync");
        let ctx = got[0].json().unwrap();
        assert_eq!(ctx["identity"]["id"], ok["identity"]["id"]);

        let (st, login) = native_login(&s, "sam@example.org", "a-strong-passw0rd!").await;
        assert_eq!(st, 200, "{login}");
        let got = rx.requests();
        assert_eq!(got[1].path, "/login");
        let ctx = got[1].json().unwrap();
        assert_eq!(ctx["session"]["id"], login["session"]["id"]);
        let headers = ctx["request_headers"].as_object().unwrap();
        assert!(headers.contains_key("Content-Type"), "{headers:?}");
        assert!(
            !headers.keys().any(|k| k.eq_ignore_ascii_case("host")),
            "only allow-listed headers: {headers:?}"
        );
        assert_eq!(ctx["identity"]["traits"]["email"], "sam@example.org");
        assert_eq!(ctx["flow"]["type"], "api");

        // A failing blocking login hook fails the login: no session.
        rx.set_status_for_path("/login", 500);
        let (st, e) = native_login(&s, "sam@example.org", "a-strong-passw0rd!").await;
        assert_eq!(st, 502, "{e}");
        assert_eq!(
            e["error"]["reason"],
            "A third-party upstream service responded improperly. Please try again later."
        );
        assert!(e["error"]["message"].as_str().unwrap().contains("500"));
        s.shutdown().await;
    }
);

both_backends!(every_hook_point_of_every_flow_fires, |b: Backend| async move {
    use crate::support::mail::{MailServer, code_in};
    let rx = HttpReceiver::start().await;
    let mail = MailServer::start().await;
    let h = |p: &str| hook(&rx, p, json!({}));
    let flows = ["login", "registration", "settings", "recovery", "verification"];
    let mut cfg = json!({"selfservice": {
        "methods": {"code": {"enabled": true}},
        "flows": {
            "verification": {"enabled": true, "use": "code", "ui_url": format!("{UI}/verification"), "after": {"hooks": [h("/after/verification")]}},
            "recovery": {"enabled": true, "use": "code", "ui_url": format!("{UI}/recovery"), "after": {"hooks": [h("/after/recovery")]}},
            "registration": {"enable_legacy_one_step": true, "after": {"password": {"hooks": [h("/after/registration/password"), {"hook": "session"}]}}},
            "login": {"after": {"hooks": [h("/after/login")], "password": {"hooks": [h("/after/login/password")]}}},
            "settings": {"privileged_session_max_age": "1h", "after": {
                "hooks": [h("/after/settings")],
                "password": {"hooks": [hook(&rx, "/after/settings/password", json!({"can_interrupt": true}))]}
            }},
        }
    }});
    for f in flows {
        crate::support::deep_merge(
            &mut cfg,
            json!({"selfservice": {"flows": {f: {"before": {"hooks": [h(&format!("/before/{f}"))]}}}}}),
        );
    }
    let s = TestServer::spawn_with(b, mail.config(cfg)).await;
    let paths = || rx.requests().into_iter().map(|r| r.path).collect::<Vec<_>>();

    let (st, reg) = native_register(&s, "pat@example.org", json!({})).await;
    assert_eq!(st, 200, "{reg}");
    assert_eq!(paths(), ["/before/registration", "/after/registration/password"]);
    rx.clear();

    // Verification: the flow the registration made; its success runs the after hooks.
    let vflow = reg["continue_with"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["action"] == "show_verification_ui")
        .unwrap()["flow"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = code_in(&mail.next_to("pat@example.org").await.text_body);
    let c = api();
    let (_, f) = send(c.get(s.public_url(&format!("self-service/verification/flows?id={vflow}")))).await;
    let (st, ok) = send(
        c.post(f["ui"]["action"].as_str().unwrap())
            .json(&json!({"method": "code", "code": code})),
    )
    .await;
    assert_eq!(st, 200, "{ok}");
    assert_eq!(ok["state"], "passed_challenge");
    let (_, _) = send(c.get(s.public_url("self-service/verification/api"))).await;
    assert_eq!(paths(), ["/after/verification", "/before/verification"]);
    let v = rx.requests()[0].json().unwrap();
    assert_eq!(v["identity"]["verifiable_addresses"][0]["verified"], true);
    rx.clear();

    // Login: the per-method list replaces the flow's list.
    let (st, login) = native_login(&s, "pat@example.org", "a-strong-passw0rd!").await;
    assert_eq!(st, 200, "{login}");
    assert_eq!(paths(), ["/before/login", "/after/login/password"]);
    rx.clear();
    let token = login["session_token"].as_str().unwrap().to_owned();

    // Settings: before; profile runs the flow's (post-persist) list; password's interrupting hook vetoes.
    let (st, sf) = send(
        c.get(s.public_url("self-service/settings/api"))
            .header("X-Session-Token", &token),
    )
    .await;
    assert_eq!(st, 200, "{sf}");
    let action = sf["ui"]["action"].as_str().unwrap().to_owned();
    let (st, saved) = send(
        c.post(&action)
            .header("X-Session-Token", &token)
            .json(&json!({"method": "profile", "traits": {"email": "pat@example.org"}})),
    )
    .await;
    assert_eq!(st, 200, "{saved}");
    rx.set_answer_for_path(
        "/after/settings/password",
        403,
        json!({"messages": [{"instance_ptr": "#/password", "messages": [{"id": 4000500, "text": "Passwords are managed elsewhere.", "type": "error"}]}]}).to_string(),
        &[],
    );
    let (st, vetoed) = send(
        c.post(&action)
            .header("X-Session-Token", &token)
            .json(&json!({"method": "password", "password": "another-strong-passw0rd"})),
    )
    .await;
    assert_eq!(st, 400, "{vetoed}");
    assert_eq!(node_message_ids(&vetoed, "password"), vec![4000500]);
    assert_eq!(
        paths(),
        ["/before/settings", "/after/settings", "/after/settings/password"]
    );
    let (st, _) = native_login(&s, "pat@example.org", "another-strong-passw0rd").await;
    assert_eq!(st, 400, "the vetoed password was not stored");
    rx.clear();

    // Recovery by code: before and after.
    let (_, rf) = send(c.get(s.public_url("self-service/recovery/api"))).await;
    let action = rf["ui"]["action"].as_str().unwrap().to_owned();
    let (st, sent) = send(
        c.post(&action)
            .json(&json!({"method": "code", "email": "pat@example.org"})),
    )
    .await;
    assert_eq!(st, 200, "{sent}");
    let code = code_in(&mail.next_to("pat@example.org").await.text_body);
    let (st, done) = send(c.post(&action).json(&json!({"method": "code", "code": code}))).await;
    assert!(st == 200 || st == 422, "{st} {done}");
    let p = paths();
    assert_eq!(p[0], "/before/recovery");
    assert!(p.contains(&"/after/recovery".to_string()), "{p:?}");
    let after = rx
        .requests()
        .into_iter()
        .find(|r| r.path == "/after/recovery")
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(after["identity"]["traits"]["email"], "pat@example.org");
    assert!(after["session"]["id"].is_string(), "{after}");
    s.shutdown().await;
});

both_backends!(before_hook_interrupt_and_cancel, |b: Backend| async move {
    let rx = HttpReceiver::start().await;
    rx.set_answer_for_path("/before", 400, veto_answer().to_string(), &[]);
    let cfg = json!({"selfservice": {"flows": {
        "login": {"before": {"hooks": [hook(&rx, "/before", json!({"can_interrupt": true}))]}},
        // `error 'cancel'` skips the hook (Kratos `request.ErrCancel`).
        "registration": {"before": {"hooks": [hook(&rx, "/never", json!({"body": jsonnet("function(ctx) error 'cancel'")}))]}},
    }}});
    let s = TestServer::spawn_with(b, cfg).await;
    let (st, e) = send(api().get(s.public_url("self-service/login/api"))).await;
    assert_eq!(st, 400, "{e}");
    assert_eq!(e["error"]["details"]["messages"][0]["message"]["id"], 4000123);
    let c = browser();
    let res = c
        .get(s.public_url("self-service/login/browser"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(
        location(&res).starts_with(&format!("{UI}/error?id=")),
        "{}",
        location(&res)
    );
    let (st, f) = send(api().get(s.public_url("self-service/registration/api"))).await;
    assert_eq!(st, 200, "{f}");
    assert!(rx.requests().iter().all(|r| r.path != "/never"));
    s.shutdown().await;
});

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// `sallyport.web_hooks` with fast retries, so outbox tests take seconds.
fn fast_outbox(extra: Value) -> Value {
    let mut v = json!({"sallyport": {"web_hooks": {
        "retry_initial": "100ms", "poll_interval": "100ms", "max_attempts": 50, "signing_secret": SECRET
    }}});
    crate::support::deep_merge(&mut v, extra);
    v
}

fn webhook_ids(rx: &HttpReceiver) -> Vec<String> {
    rx.requests()
        .iter()
        .map(|r| r.header("webhook-id").unwrap_or("").to_string())
        .collect()
}

both_backends!(
    ignored_hook_is_queued_retried_and_delivered_once,
    |b: Backend| async move {
        let rx = HttpReceiver::start().await;
        rx.set_status_for_path("/async", 503);
        let cfg = fast_outbox(registration_hooks(vec![
            hook(&rx, "/async", json!({"response": {"ignore": true}})),
            json!({"hook": "session"}),
        ]));
        let s = TestServer::spawn_with(b, cfg).await;
        // The receiver is down: the sign-up does not wait for it.
        let (st, ok) = native_register(&s, "ada@example.org", json!({})).await;
        assert_eq!(st, 200, "{ok}");
        let tries = rx.wait_for(3, Duration::from_secs(10)).await;
        assert!(tries.len() >= 3, "retried: {}", tries.len());
        let ids = webhook_ids(&rx);
        assert!(
            ids[0].starts_with("msg_") && ids.iter().all(|i| *i == ids[0]),
            "one webhook-id across attempts: {ids:?}"
        );
        assert_eq!(tries[0].json().unwrap()["identity"]["id"], ok["identity"]["id"]);
        // Back up: delivered exactly once, then never again.
        rx.clear();
        rx.set_status_for_path("/async", 200);
        let got = rx.wait_for(1, Duration::from_secs(10)).await;
        assert_eq!(got.len(), 1);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(rx.requests().len(), 1, "delivered once");
        assert_eq!(s.app.store.web_hook_outbox_depth().await.unwrap(), 0);
        s.shutdown().await;
    }
);

both_backends!(two_nodes_deliver_each_hook_once, |b: Backend| async move {
    let rx = HttpReceiver::start().await;
    rx.set_delay_for_path("/async", Duration::from_millis(150));
    let cfg = fast_outbox(registration_hooks(vec![
        hook(&rx, "/async", json!({"response": {"ignore": true}})),
        json!({"hook": "session"}),
    ]));
    let a = TestServer::spawn_with(b, cfg.clone()).await;
    let node_b = TestServer::spawn_sharing(&a, cfg).await;
    let n = 12;
    for i in 0..n {
        let s = if i % 2 == 0 { &a } else { &node_b };
        let (st, ok) = native_register(s, &format!("user{i}@example.org"), json!({})).await;
        assert_eq!(st, 200, "{ok}");
    }
    let got = rx.wait_for(n, Duration::from_secs(20)).await;
    assert_eq!(got.len(), n);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut ids = webhook_ids(&rx);
    assert_eq!(ids.len(), n, "no duplicates: {ids:?}");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "one delivery per hook");
    let mut who: Vec<String> = rx
        .requests()
        .iter()
        .map(|r| r.json().unwrap()["identity"]["id"].as_str().unwrap().to_string())
        .collect();
    who.sort();
    who.dedup();
    assert_eq!(who.len(), n, "every registration delivered once");
    node_b.shutdown().await;
    a.shutdown().await;
});

both_backends!(
    queued_hook_survives_kill_9_of_the_binary,
    |b: Backend| async move {
        use crate::cli::{BIN, free_port, run, wait_for};
        use std::process::{Command, Stdio};
        let rx = HttpReceiver::start().await;
        rx.set_status_for_path("/async", 503);
        let db = crate::support::TestDb::new(b).await;
        let dir = tempfile::tempdir().unwrap();
        let (public, admin) = (free_port(), free_port());
        let mut cfg = json!({
            "dsn": db.dsn,
            "serve": {
                "public": {"base_url": format!("http://127.0.0.1:{public}/"), "host": "127.0.0.1", "port": public},
                "admin": {"base_url": format!("http://127.0.0.1:{admin}/"), "host": "127.0.0.1", "port": admin},
            },
            "selfservice": {
                "default_browser_return_url": "http://127.0.0.1:4455/",
                "methods": {"password": {"enabled": true, "config": {"haveibeenpwned_enabled": false}}},
                "flows": {"registration": {"after": {"password": {"hooks": [hook(&rx, "/async", json!({"response": {"ignore": true}}))]}}}},
            },
            "identity": {"default_schema_id": "default", "schemas": [{"id": "default", "url": format!("file://{}", crate::support::fixture("email-password.schema.json").display())}]},
            "secrets": {"cookie": ["a-very-secret-cookie-secret-for-tests"]},
            "hashers": {"algorithm": "bcrypt", "bcrypt": {"cost": 4}},
        });
        // A short timeout keeps the lease short: were the kill to land mid-attempt, the row moves on within 12s.
        crate::support::deep_merge(
            &mut cfg,
            fast_outbox(json!({"sallyport": {"web_hooks": {"timeout": "2s"}}})),
        );
        let path = dir.path().join("kratos.yml");
        std::fs::write(&path, cfg.to_string()).unwrap();
        let cfg_s = path.to_str().unwrap();
        let (ok, out, err) = run(&["migrate", "sql", "-e", "--yes", "-c", cfg_s], &[]);
        assert!(ok, "{out}{err}");
        let start = || {
            Command::new(BIN)
                .args(["serve", "-c", cfg_s])
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.path().join("server.log")).unwrap())
                .spawn()
                .unwrap()
        };
        let ready = format!("http://127.0.0.1:{public}/health/ready");
        let mut child = start();
        assert_eq!(wait_for(&ready, 200, Duration::from_secs(20)).await.0, 200);
        let c = api();
        let (_, flow) = send(c.get(format!("http://127.0.0.1:{public}/self-service/registration/api"))).await;
        let (st, reg) = send(c.post(flow["ui"]["action"].as_str().unwrap()).json(
        &json!({"method": "password", "traits": {"email": "kim@example.org"}, "password": "a-strong-passw0rd!"}),
    ))
    .await;
        assert_eq!(st, 200, "{reg}");
        assert_eq!(
            rx.wait_for(1, Duration::from_secs(10)).await.len(),
            1,
            "a first attempt failed"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        child.kill().unwrap(); // SIGKILL: no shutdown code runs
        child.wait().unwrap();
        let first_id = webhook_ids(&rx)[0].clone();

        rx.clear();
        rx.set_status_for_path("/async", 200);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            rx.requests().is_empty(),
            "nobody delivers while the server is down"
        );
        let mut child = start();
        assert_eq!(wait_for(&ready, 200, Duration::from_secs(20)).await.0, 200);
        let got = rx.wait_for(1, Duration::from_secs(30)).await;
        assert_eq!(got.len(), 1, "delivered after the restart");
        assert_eq!(got[0].header("webhook-id"), Some(first_id.as_str()));
        assert_eq!(got[0].json().unwrap()["identity"]["id"], reg["identity"]["id"]);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(rx.requests().len(), 1, "exactly once");
        child.kill().unwrap();
        child.wait().unwrap();
    }
);

/// The interpreter with PyPI `standardwebhooks` (`.ci/run` installs it and sets the variable).
fn python_with_standardwebhooks() -> Option<String> {
    let py = std::env::var("SALLYPORT_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = std::process::Command::new(&py)
        .args(["-c", "import standardwebhooks"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(py);
    }
    assert!(
        std::env::var("CI").is_err(),
        "CI is set but {py} cannot import standardwebhooks (pip install standardwebhooks)"
    );
    eprintln!("SKIPPED: {py} cannot import standardwebhooks; set SALLYPORT_TEST_PYTHON");
    None
}

both_backends!(
    signatures_verify_with_the_reference_library,
    |b: Backend| async move {
        let Some(py) = python_with_standardwebhooks() else {
            return;
        };
        let rx = HttpReceiver::start().await;
        let mut cfg = fast_outbox(registration_hooks(vec![
            hook(&rx, "/blocking", json!({"can_interrupt": true})),
            hook(&rx, "/async", json!({"response": {"ignore": true}})),
            json!({"hook": "session"}),
        ]));
        crate::support::deep_merge(
            &mut cfg,
            json!({"selfservice": {"flows": {"login": {"before": {"hooks": [hook(&rx, "/get", json!({"method": "GET"}))]}}}}}),
        );
        let s = TestServer::spawn_with(b, cfg).await;
        let (st, ok) = native_register(&s, "sig@example.org", json!({})).await;
        assert_eq!(st, 200, "{ok}");
        let (st, _) = send(api().get(s.public_url("self-service/login/api"))).await;
        assert_eq!(st, 200);
        let got = rx.wait_for(3, Duration::from_secs(10)).await;
        assert_eq!(got.len(), 3);
        let mut cases = vec![];
        for r in &got {
            let headers: serde_json::Map<String, Value> =
                r.headers.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            assert!(
                r.header("webhook-signature").unwrap().starts_with("v1,"),
                "{:?}",
                r.path
            );
            cases.push(json!({"headers": headers, "body": r.body_str(), "expect": "valid"}));
            // The same request with a changed body or an old timestamp must not verify.
            cases
                .push(json!({"headers": headers, "body": format!("{} ", r.body_str()), "expect": "invalid"}));
            let mut old = headers.clone();
            let ts: i64 = r.header("webhook-timestamp").unwrap().parse().unwrap();
            old.insert("webhook-timestamp".into(), json!((ts - 600).to_string()));
            cases.push(json!({"headers": old, "body": r.body_str(), "expect": "invalid"}));
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("requests.json");
        std::fs::write(&file, serde_json::to_vec(&cases).unwrap()).unwrap();
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/webhooks/verify_signature.py");
        let out = std::process::Command::new(&py)
            .arg(&script)
            .arg(SECRET)
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        s.shutdown().await;
    }
);

both_backends!(
    bad_receivers_and_templates_fail_the_flow_cleanly,
    |b: Backend| async move {
        let rx = HttpReceiver::start().await;
        // A redirect loop.
        rx.set_answer_for_path("/loop", 302, "", &[("location", "/loop")]);
        rx.set_answer_for_path(
            "/garbage",
            200,
            "<html>not json",
            &[("content-type", "text/html")],
        );
        rx.set_answer_for_path("/huge", 200, vec![b' '; 300 * 1024], &[]);
        rx.set_answer_for_path("/bad-interrupt", 422, "{\"messages\": 7}", &[]);
        rx.set_delay_for_path("/slow", Duration::from_secs(3));
        let cases: Vec<(&str, Value, u16)> = vec![
            (
                "/ok",
                json!({"body": jsonnet("function(ctx) error 'boom: ' + ctx.identity.traits.email")}),
                502,
            ),
            ("/ok", json!({"body": "file:///nonexistent/body.jsonnet"}), 502),
            ("/loop", json!({}), 502),
            ("/garbage", json!({"response": {"parse": true}}), 502),
            ("/huge", json!({"response": {"parse": true}}), 502),
            ("/bad-interrupt", json!({"can_interrupt": true}), 502),
            ("/slow", json!({"can_interrupt": true}), 504),
        ];
        for (path, extra, want) in cases {
            let mut config = json!({"can_interrupt": true});
            crate::support::deep_merge(&mut config, extra.clone());
            let cfg = json!({
                "sallyport": {"web_hooks": {"timeout": "1s", "max_response_bytes": 100_000}},
                "selfservice": {"flows": {"registration": {"after": {"password": {"hooks": [
                    hook(&rx, path, config), {"hook": "session"}
                ]}}}}},
            });
            let s = TestServer::spawn_with(b, cfg).await;
            let (st, e) = native_register(&s, "bad@example.org", json!({})).await;
            assert_eq!(st.as_u16(), want, "{path} {extra}: {e}");
            assert!(
                e["error"]["reason"]
                    .as_str()
                    .unwrap()
                    .contains("third-party upstream service"),
                "{e}"
            );
            assert!(identities(&s).await.is_empty(), "{path}: nothing persisted");
            // Browsers land on the error page, not a 500.
            let c = browser();
            let res = c
                .get(s.public_url("self-service/registration/browser"))
                .send()
                .await
                .unwrap();
            let id = crate::support::client::flow_id_from(&location(&res));
            let (_, flow) =
                send(c.get(s.public_url(&format!("self-service/registration/flows?id={id}")))).await;
            let res = c
                .post(flow["ui"]["action"].as_str().unwrap())
                .form(&[
                    ("method", "password"),
                    ("traits.email", "bad@example.org"),
                    ("password", "a-strong-passw0rd!"),
                    ("csrf_token", &csrf(&flow)),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 303, "{path}");
            assert!(
                location(&res).starts_with(&format!("{UI}/error?id=")),
                "{}",
                location(&res)
            );
            s.shutdown().await;
        }
    }
);

both_backends!(
    private_targets_are_refused_when_configured,
    |b: Backend| async move {
        let rx = HttpReceiver::start().await;
        let cfg = fast_outbox(json!({
            "clients": {"http": {"disallow_private_ip_ranges": true}},
            "sallyport": {"web_hooks": {"max_attempts": 2}},
            "selfservice": {"flows": {
                "registration": {"after": {"password": {"hooks": [hook(&rx, "/async", json!({"response": {"ignore": true}})), {"hook": "session"}]}}},
                "login": {"after": {"hooks": [hook(&rx, "/blocking", json!({}))]}},
            }},
        }));
        let s = TestServer::spawn_with(b, cfg).await;
        // The async hook never reaches the loopback receiver; the sign-up itself succeeds.
        let (st, ok) = native_register(&s, "priv@example.org", json!({})).await;
        assert_eq!(st, 200, "{ok}");
        let (st, e) = native_login(&s, "priv@example.org", "a-strong-passw0rd!").await;
        assert_eq!(st, 502, "{e}");
        assert!(
            e["error"]["message"].as_str().unwrap().contains("private IP"),
            "{e}"
        );
        // Given up after max_attempts: the outbox empties without a single request.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while s.app.store.web_hook_outbox_depth().await.unwrap() > 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(s.app.store.web_hook_outbox_depth().await.unwrap(), 0);
        assert!(rx.requests().is_empty());
        s.shutdown().await;
    }
);

both_backends!(
    login_hook_interrupts_browser_and_spa_logins,
    |b: Backend| async move {
        let rx = HttpReceiver::start().await;
        rx.set_answer_for_path(
        "/login",
        403,
        json!({"messages": [{"instance_ptr": "#/", "messages": [{"id": 4000777, "text": "Logins are paused.", "type": "error"}]}]}).to_string(),
        &[],
    );
        let cfg = json!({"selfservice": {"flows": {"login": {"after": {"password": {"hooks": [hook(&rx, "/login", json!({"can_interrupt": true}))]}}}}}});
        let s = TestServer::spawn_with(b, cfg).await;
        crate::support::client::create_identity(&s, "liz@example.org", "a-strong-passw0rd!").await;

        // SPA: 400 with the flow and the message on the flow; no session cookie.
        let c = browser();
        let (_, flow) = send(
            c.get(s.public_url("self-service/login/browser"))
                .header("Accept", "application/json"),
        )
        .await;
        let res = c
        .post(flow["ui"]["action"].as_str().unwrap())
        .json(&json!({"method": "password", "identifier": "liz@example.org", "password": "a-strong-passw0rd!", "csrf_token": csrf(&flow)}))
        .send()
        .await
        .unwrap();
        assert!(
            res.headers()
                .get_all("set-cookie")
                .iter()
                .all(|v| !v.to_str().unwrap().starts_with("ory_kratos_session="))
        );
        let (st, f) = crate::support::client::body(res).await;
        assert_eq!(st, 400, "{f}");
        assert_eq!(f["ui"]["messages"][0]["id"], 4000777);
        let (st, _) = send(c.get(s.public_url("sessions/whoami"))).await;
        assert_eq!(st, 401);

        // Browser form: back to the login UI with the message.
        let c = browser();
        let res = c
            .get(s.public_url("self-service/login/browser"))
            .send()
            .await
            .unwrap();
        let id = crate::support::client::flow_id_from(&location(&res));
        let (_, flow) = send(c.get(s.public_url(&format!("self-service/login/flows?id={id}")))).await;
        let res = c
            .post(flow["ui"]["action"].as_str().unwrap())
            .form(&[
                ("method", "password"),
                ("identifier", "liz@example.org"),
                ("password", "a-strong-passw0rd!"),
                ("csrf_token", &csrf(&flow)),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        assert!(
            location(&res).starts_with(&format!("{UI}/login?flow=")),
            "{}",
            location(&res)
        );
        let (_, f) = send(c.get(s.public_url(&format!("self-service/login/flows?id={id}")))).await;
        assert_eq!(f["ui"]["messages"][0]["id"], 4000777, "{f}");
        let (st, _) = send(c.get(s.public_url("sessions/whoami"))).await;
        assert_eq!(st, 401);

        // Native: the same 400; the receiver saw three logins.
        let (st, f) = native_login(&s, "liz@example.org", "a-strong-passw0rd!").await;
        assert_eq!(st, 400, "{f}");
        assert_eq!(rx.requests().len(), 3);
        let (st, list) = send(api().get(s.admin_url("admin/sessions"))).await;
        assert_eq!(st, 200, "{list}");
        assert_eq!(list.as_array().unwrap().len(), 0, "no session stored: {list}");
        s.shutdown().await;
    }
);
