//! HTTP-correct mode (kratos#4052): successful intermediate steps answer 200 instead of Kratos' 400 / 422 when the
//! deployment (`sallyport.http_correct_status`) or the request (`Sallyport-Status-Mode`) asks for it; real client
//! errors keep their 4xx, browsers posting forms keep their 303, and Kratos' statuses stay the default.

use reqwest::Client;
use serde_json::{Value, json};

use crate::both_backends;
use crate::support::client::{api, browser, create_identity, csrf, message_ids, send};
use crate::support::{Backend, TestServer, deep_merge};

const HEADER: &str = "Sallyport-Status-Mode";

fn code_cfg(extra: Value) -> Value {
    let mut v = json!({
        "selfservice": {
            "methods": {"code": {"enabled": true, "passwordless_enabled": true}},
            "flows": {"recovery": {"enabled": true, "use": "code"}},
        },
        "identity": {"schemas": [{"id": "default", "url": format!("file://{}", crate::support::fixture("code-email.schema.json").display())}]},
    });
    deep_merge(&mut v, extra);
    v
}

/// The newest code mailed to `to` (test servers run in dev mode, so the admin API shows bodies).
async fn latest_code(s: &TestServer, to: &str) -> String {
    let (_, list) = send(api().get(s.admin_url(&format!("admin/courier/messages?recipient={to}")))).await;
    let body = list[0]["body"].as_str().unwrap_or_default();
    body.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_else(|| panic!("no code in {body}"))
        .to_owned()
}

/// POSTs a code request on a fresh native login flow, with the mode header if given.
async fn ask_login_code(s: &TestServer, identifier: &str, mode: Option<&str>) -> (u16, Value) {
    let c = api();
    let (_, flow) = send(c.get(s.public_url("self-service/login/api"))).await;
    let mut req = c
        .post(flow["ui"]["action"].as_str().unwrap())
        .json(&json!({"method": "code", "identifier": identifier}));
    if let Some(m) = mode {
        req = req.header(HEADER, m);
    }
    let (st, v) = send(req).await;
    (st.as_u16(), v)
}

both_backends!(login_code_sent_in_both_modes, |b: Backend| async move {
    let s = TestServer::spawn_with(b, code_cfg(json!({}))).await;
    create_identity(&s, "ann@example.org", "a-strong-passw0rd!").await;
    // Kratos' default: "code sent" is a 400 with the flow.
    let (st, f) = ask_login_code(&s, "ann@example.org", None).await;
    assert_eq!((st, f["state"].as_str()), (400, Some("sent_email")), "{f}");
    // Per request: 200 with the same flow.
    let (st, f) = ask_login_code(&s, "ann@example.org", Some("http-correct")).await;
    assert_eq!((st, f["state"].as_str()), (200, Some("sent_email")), "{f}");
    assert_eq!(message_ids(&f), vec![1010014]);
    // A real error stays an error: unknown address (4000035) and a wrong code are 400 in both modes.
    let (st, f) = ask_login_code(&s, "nobody@example.org", Some("http-correct")).await;
    assert_eq!((st, message_ids(&f)), (400, vec![4000035]), "{f}");
    let c = api();
    let (_, flow) = send(c.get(s.public_url("self-service/login/api"))).await;
    let action = flow["ui"]["action"].as_str().unwrap().to_owned();
    let (st, _) = send(
        c.post(&action)
            .header(HEADER, "http-correct")
            .json(&json!({"method": "code", "identifier": "ann@example.org"})),
    )
    .await;
    assert_eq!(st, 200);
    let code = latest_code(&s, "ann@example.org").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (st, f) = send(
        c.post(&action)
            .header(HEADER, "http-correct")
            .json(&json!({"method": "code", "identifier": "ann@example.org", "code": wrong})),
    )
    .await;
    assert_eq!((st.as_u16(), message_ids(&f)), (400, vec![4010008]), "{f}");
    let (st, done) = send(
        c.post(&action)
            .header(HEADER, "http-correct")
            .json(&json!({"method": "code", "identifier": "ann@example.org", "code": code})),
    )
    .await;
    assert_eq!(st, 200, "{done}");
    assert!(done["session_token"].is_string());
    s.shutdown().await;

    // Per deployment: 200 by default, and a request can ask for Kratos' 400 back.
    let s = TestServer::spawn_with(b, code_cfg(json!({"sallyport": {"http_correct_status": true}}))).await;
    create_identity(&s, "ann@example.org", "a-strong-passw0rd!").await;
    let (st, _) = ask_login_code(&s, "ann@example.org", None).await;
    assert_eq!(st, 200);
    let (st, _) = ask_login_code(&s, "ann@example.org", Some("kratos")).await;
    assert_eq!(st, 400);
    s.shutdown().await;
});

both_backends!(registration_steps_in_both_modes, |b: Backend| async move {
    let s = TestServer::spawn_with(b, code_cfg(json!({}))).await;
    let c = api();
    for (mode, want) in [(None, 400), (Some("http-correct"), 200)] {
        // Code registration: "code sent".
        let (_, flow) = send(c.get(s.public_url("self-service/registration/api"))).await;
        let email = format!("reg-{want}@example.org");
        let mut req = c
            .post(flow["ui"]["action"].as_str().unwrap())
            .json(&json!({"method": "code", "traits": {"email": email}}));
        if let Some(m) = mode {
            req = req.header(HEADER, m);
        }
        let (st, f) = send(req).await;
        assert_eq!(st, want, "{f}");
        assert_eq!(
            (f["state"].as_str(), message_ids(&f)),
            (Some("sent_email"), vec![1040005])
        );
        // Two-step registration: the profile is accepted, "choose a method".
        let (_, flow) = send(c.get(s.public_url("self-service/registration/api"))).await;
        let mut req = c
            .post(flow["ui"]["action"].as_str().unwrap())
            .json(&json!({"method": "profile", "traits": {"email": format!("two-{want}@example.org")}}));
        if let Some(m) = mode {
            req = req.header(HEADER, m);
        }
        let (st, f) = send(req).await;
        assert_eq!(st, want, "{f}");
        assert_eq!(message_ids(&f), vec![1040009]);
        // A real validation error keeps its 400 in both modes.
        let (_, flow) = send(c.get(s.public_url("self-service/registration/api"))).await;
        let mut req = c
            .post(flow["ui"]["action"].as_str().unwrap())
            .json(&json!({"method": "profile", "traits": {"email": "not an address"}}));
        if let Some(m) = mode {
            req = req.header(HEADER, m);
        }
        let (st, f) = send(req).await;
        assert_eq!(st, 400, "{f}");
    }
    s.shutdown().await;
});

async fn spa_recover(s: &TestServer, c: &Client, email: &str, mode: Option<&str>) -> (u16, Value) {
    let (_, flow) = send(
        c.get(s.public_url("self-service/recovery/browser"))
            .header("Accept", "application/json"),
    )
    .await;
    let action = flow["ui"]["action"].as_str().unwrap().to_owned();
    let (st, sent) = send(
        c.post(&action)
            .json(&json!({"method": "code", "email": email, "csrf_token": csrf(&flow)})),
    )
    .await;
    assert_eq!(st, 200, "recovery's code sent is 200 in both modes: {sent}");
    let code = latest_code(s, email).await;
    let mut req = c
        .post(&action)
        .json(&json!({"method": "code", "code": code, "csrf_token": csrf(&sent)}));
    if let Some(m) = mode {
        req = req.header(HEADER, m);
    }
    let (st, v) = send(req).await;
    (st.as_u16(), v)
}

both_backends!(recovery_to_settings_in_both_modes, |b: Backend| async move {
    let s = TestServer::spawn_with(b, code_cfg(json!({}))).await;
    create_identity(&s, "ann@example.org", "a-strong-passw0rd!").await;
    // Kratos' default for SPAs: 422 browser_location_change_required to the settings UI.
    let (st, e) = spa_recover(&s, &browser(), "ann@example.org", None).await;
    assert_eq!(st, 422, "{e}");
    assert_eq!(e["error"]["id"], "browser_location_change_required");
    // HTTP-correct: 200 with the recovery flow and continue_with show_settings_ui.
    let c = browser();
    let (st, f) = spa_recover(&s, &c, "ann@example.org", Some("http-correct")).await;
    assert_eq!(st, 200, "{f}");
    assert_eq!(f["state"], "passed_challenge");
    let cw = f["continue_with"].as_array().unwrap();
    assert_eq!(cw.len(), 1, "{f}");
    assert_eq!(cw[0]["action"], "show_settings_ui");
    let settings_id = cw[0]["flow"]["id"].as_str().unwrap();
    let (st, settings) = send(
        c.get(s.public_url(&format!("self-service/settings/flows?id={settings_id}")))
            .header("Accept", "application/json"),
    )
    .await;
    assert_eq!(st, 200, "the session cookie opens the settings flow: {settings}");
    assert_eq!(message_ids(&settings), vec![1060001]);
    // Native apps: 200 with the session token and the settings flow.
    let c = api();
    let (_, flow) = send(c.get(s.public_url("self-service/recovery/api"))).await;
    let action = flow["ui"]["action"].as_str().unwrap().to_owned();
    send(
        c.post(&action)
            .json(&json!({"method": "code", "email": "ann@example.org"})),
    )
    .await;
    let code = latest_code(&s, "ann@example.org").await;
    let (st, f) = send(
        c.post(&action)
            .header(HEADER, "http-correct")
            .json(&json!({"method": "code", "code": code})),
    )
    .await;
    assert_eq!(st, 200, "{f}");
    let actions: Vec<&str> = f["continue_with"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["set_ory_session_token", "show_settings_ui"]);
    // A wrong code is still answered as Kratos does (200 with 4060006) — recovery never used 400 for it.
    s.shutdown().await;
});

both_backends!(browsers_are_redirected_in_both_modes, |b: Backend| async move {
    let s = TestServer::spawn_with(b, code_cfg(json!({"sallyport": {"http_correct_status": true}}))).await;
    create_identity(&s, "ann@example.org", "a-strong-passw0rd!").await;
    let c = browser();
    let (_, flow) = send(
        c.get(s.public_url("self-service/login/browser"))
            .header("Accept", "application/json"),
    )
    .await;
    let res = c
        .post(flow["ui"]["action"].as_str().unwrap())
        .form(&[
            ("method", "code"),
            ("identifier", "ann@example.org"),
            ("csrf_token", &csrf(&flow)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        303,
        "an HTML form post is redirected to the UI in every mode"
    );
    s.shutdown().await;
});
