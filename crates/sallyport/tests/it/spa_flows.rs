//! SPAs: browser flows driven with JSON (`Accept: application/json` or `Content-Type: application/json`).

use serde_json::json;

use crate::both_backends;
use crate::support::client::{body, browser, create_identity, csrf, message_ids, send};
use crate::support::{Backend, RETURN, TestServer};

both_backends!(spa_login_gets_json_and_cookie, |b: Backend| async move {
    let s = TestServer::spawn(b).await;
    create_identity(&s, "hal@example.org", "correct horse battery").await;
    let c = browser();
    let (st, flow) = send(
        c.get(s.public_url("self-service/login/browser"))
            .header("Accept", "application/json"),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(flow["type"], "browser");
    assert_eq!(flow["state"], "choose_method");
    assert_eq!(flow["requested_aal"], "aal1");
    let names: Vec<&str> = flow["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["attributes"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["identifier", "csrf_token", "password", "method"]);
    let action = flow["ui"]["action"].as_str().unwrap().to_owned();

    // Missing csrf_token → 403 JSON.
    let (st, e) = send(c.post(&action).json(
        &json!({"method": "password", "identifier": "hal@example.org", "password": "correct horse battery"}),
    ))
    .await;
    assert_eq!(st, 403);
    assert_eq!(e["error"]["id"], "security_csrf_violation");

    let (st, e) = send(
        c.post(&action)
            .json(&json!({"method": "webauthn", "csrf_token": csrf(&flow)})),
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(message_ids(&e), vec![4010002]);

    let res = c
        .post(&action)
        .json(&json!({"method": "password", "identifier": "hal@example.org", "password": "correct horse battery", "csrf_token": csrf(&flow)}))
        .send()
        .await
        .unwrap();
    assert!(
        res.headers()
            .get_all("set-cookie")
            .iter()
            .any(|v| v.to_str().unwrap().starts_with("ory_kratos_session="))
    );
    let (st, ok) = body(res).await;
    assert_eq!(st, 200, "{ok}");
    assert!(
        ok.get("session_token").is_none(),
        "SPAs get a cookie, never a token"
    );
    assert_eq!(
        ok["continue_with"],
        json!([{"action": "redirect_browser_to", "redirect_browser_to": RETURN}])
    );
    let (st, _) = send(c.get(s.public_url("sessions/whoami"))).await;
    assert_eq!(st, 200);
    // Already signed in: init answers 400 session_already_available.
    let (st, e) = send(
        c.get(s.public_url("self-service/login/browser"))
            .header("Accept", "application/json"),
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(e["error"]["id"], "session_already_available");
    // JSON logout answers 204.
    let (_, lo) = send(
        c.get(s.public_url("self-service/logout/browser"))
            .header("Accept", "application/json"),
    )
    .await;
    let res = c
        .get(lo["logout_url"].as_str().unwrap())
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    s.shutdown().await;
});

both_backends!(spa_registration_session_hook, |b: Backend| async move {
    let s = TestServer::spawn_with(
        b,
        json!({"selfservice": {"flows": {"registration": {"enable_legacy_one_step": true}}}}),
    )
    .await;
    let c = browser();
    let (_, flow) = send(
        c.get(s.public_url("self-service/registration/browser"))
            .header("Accept", "application/json"),
    )
    .await;
    let (st, ok) = send(c.post(flow["ui"]["action"].as_str().unwrap())
            .json(&json!({"method": "password", "password": "a-strong-passw0rd!", "traits": {"email": "ivy@example.org"}, "csrf_token": csrf(&flow)}))).await;
    assert_eq!(st, 200, "{ok}");
    assert_eq!(ok["identity"]["traits"]["email"], "ivy@example.org");
    assert_eq!(ok["session"]["identity"]["id"], ok["identity"]["id"]);
    assert_eq!(ok["continue_with"][0]["action"], "redirect_browser_to");
    assert!(ok.get("session_token").is_none());
    let (st, _) = send(c.get(s.public_url("sessions/whoami"))).await;
    assert_eq!(st, 200);
    s.shutdown().await;
});
