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
