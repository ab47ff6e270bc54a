//! Native apps: `/api` flows, session tokens, no cookies.

use serde_json::json;

use crate::both_backends;
use crate::support::client::{api, body, create_identity, message_ids, native_login, node, send};
use crate::support::{Backend, TestServer};

both_backends!(register_login_whoami_logout, |b: Backend| async move {
    let s = TestServer::spawn_with(
        b,
        json!({"selfservice": {"flows": {"registration": {"enable_legacy_one_step": true}}}}),
    )
    .await;
    let c = api();
    let (st, flow) = send(c.get(s.public_url("self-service/registration/api"))).await;
    assert_eq!(st, 200);
    assert_eq!(flow["type"], "api");
    assert_eq!(
        node(&flow, "csrf_token").unwrap()["attributes"]["value"],
        "",
        "API flows carry an empty csrf_token"
    );
    let url = flow["ui"]["action"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&s.public_url("self-service/registration?flow=")));

    let (st, reg) = send(c.post(&url)
            .json(&json!({"method": "password", "password": "a-strong-passw0rd!", "traits": {"email": "Ann@Example.org"}}))).await;
    assert_eq!(st, 200, "{reg}");
    let token = reg["session_token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("ory_st_"));
    assert_eq!(reg["identity"]["traits"]["email"], "Ann@Example.org");
    assert_eq!(reg["continue_with"][0]["action"], "set_ory_session_token");
    assert_eq!(reg["session"]["authentication_methods"][0]["method"], "password");

    // Log in with a differently-cased identifier: identifiers are normalised.
    let (st, login) = native_login(&s, "ann@example.org", "a-strong-passw0rd!").await;
    assert_eq!(st, 200, "{login}");
    let token2 = login["session_token"].as_str().unwrap().to_owned();
    assert_ne!(token, token2);
    assert_eq!(login["session"]["authenticator_assurance_level"], "aal1");
    assert!(login["continue_with"].is_null());

    let res = c
        .get(s.public_url("sessions/whoami"))
        .header("X-Session-Token", &token2)
        .send()
        .await
        .unwrap();
    let identity_header = res
        .headers()
        .get("x-kratos-authenticated-identity-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let (st, who) = body(res).await;
    assert_eq!(st, 200);
    assert_eq!(who["identity"]["id"], identity_header);
    assert!(who.get("token").is_none());
    // Bearer works as well, on any method.
    let res = c
        .post(s.public_url("sessions/whoami"))
        .bearer_auth(&token2)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let res = c
        .delete(s.public_url("self-service/logout/api"))
        .json(&json!({"session_token": token2}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let (st, err) = send(
        c.get(s.public_url("sessions/whoami"))
            .header("X-Session-Token", &token2),
    )
    .await;
    assert_eq!(st, 401);
    assert_eq!(
        err,
        json!({"error":{"code":401,"status":"Unauthorized","reason":"No valid session credentials found in the request.","message":"The request could not be authorized"}})
    );
    // Logging out twice: the token is gone.
    let res = c
        .delete(s.public_url("self-service/logout/api"))
        .json(&json!({"session_token": token2}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // The first session is still alive.
    let res = c
        .get(s.public_url("sessions/whoami"))
        .header("X-Session-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    s.shutdown().await;
});

both_backends!(
    wrong_password_and_unknown_user_look_the_same,
    |b: Backend| async move {
        let s = TestServer::spawn(b).await;
        create_identity(&s, "bob@example.org", "correct horse battery").await;
        let (st1, f1) = native_login(&s, "bob@example.org", "wrong password!").await;
        let (st2, f2) = native_login(&s, "nobody@example.org", "wrong password!").await;
        assert_eq!((st1.as_u16(), st2.as_u16()), (400, 400));
        assert_eq!(f1["ui"]["messages"], f2["ui"]["messages"]);
        assert_eq!(message_ids(&f1), vec![4000006]);
        assert_eq!(
            node(&f1, "identifier").unwrap()["attributes"]["value"],
            "bob@example.org"
        );
        assert!(
            node(&f1, "password").unwrap()["attributes"]
                .get("value")
                .is_none(),
            "passwords never echo back"
        );
        s.shutdown().await;
    }
);

both_backends!(session_already_available_and_refresh, |b: Backend| async move {
    let s = TestServer::spawn(b).await;
    create_identity(&s, "carl@example.org", "correct horse battery").await;
    let (_, login) = native_login(&s, "carl@example.org", "correct horse battery").await;
    let token = login["session_token"].as_str().unwrap();
    let c = api();
    let (st, e) = send(
        c.get(s.public_url("self-service/login/api"))
            .header("X-Session-Token", token),
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(e["error"]["id"], "session_already_available");
    let (st, flow) = send(
        c.get(s.public_url("self-service/login/api?refresh=true"))
            .header("X-Session-Token", token),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(flow["refresh"], true);
    assert_eq!(message_ids(&flow), vec![1010003]);
    assert_eq!(
        node(&flow, "identifier").unwrap()["attributes"]["value"],
        "carl@example.org"
    );
    let (st, again) = send(c.post(flow["ui"]["action"].as_str().unwrap())
            .header("X-Session-Token", token)
            .json(&json!({"method": "password", "identifier": "carl@example.org", "password": "correct horse battery"}))).await;
    assert_eq!(st, 200, "{again}");
    assert_eq!(
        again["session"]["id"], login["session"]["id"],
        "refresh re-authenticates the same session"
    );
    assert_eq!(again["session_token"], token);
    assert_eq!(
        again["session"]["authentication_methods"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // aal2 without a session is refused.
    let (st, e) = send(c.get(s.public_url("self-service/login/api?aal=aal2"))).await;
    assert_eq!(st, 401);
    assert_eq!(e["error"]["id"], "session_aal1_required");
    let (st, e) = send(c.get(s.public_url("self-service/login/api?aal=aal0"))).await;
    assert_eq!(st, 400);
    assert!(
        e["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("expected one of [aal1, aal2] but got aal0")
    );
    s.shutdown().await;
});

both_backends!(two_step_registration_is_the_default, |b: Backend| async move {
    let s = TestServer::spawn(b).await;
    let c = api();
    let (_, flow) = send(c.get(s.public_url("self-service/registration/api"))).await;
    let method = node(&flow, "method").unwrap();
    assert_eq!(method["attributes"]["value"], "profile");
    assert!(node(&flow, "password").is_none());
    assert!(node(&flow, "traits.email").is_some());
    let action = flow["ui"]["action"].as_str().unwrap().to_owned();
    // Step one with invalid traits: 400 and a message on the field.
    let (st, bad) = send(c.post(&action).json(&json!({"method": "profile", "traits": {}}))).await;
    assert_eq!(st, 400);
    assert_eq!(node(&bad, "traits.email").unwrap()["messages"][0]["id"], 4000002);
    let (st, step2) = send(
        c.post(&action)
            .json(&json!({"method": "profile", "traits": {"email": "dora@example.org"}})),
    )
    .await;
    assert_eq!(
        st, 400,
        "the credential choice is answered with 400 + flow, as Kratos does"
    );
    assert_eq!(message_ids(&step2), vec![1040009]);
    assert_eq!(
        node(&step2, "traits.email").unwrap()["attributes"]["type"],
        "hidden"
    );
    assert_eq!(
        node(&step2, "traits.email").unwrap()["attributes"]["value"],
        "dora@example.org"
    );
    assert_eq!(node(&step2, "screen").unwrap()["attributes"]["value"], "previous");
    assert!(node(&step2, "password").is_some());
    let (st, done) = send(c.post(&action)
            .json(&json!({"method": "password", "password": "a-strong-passw0rd!", "traits": {"email": "dora@example.org"}}))).await;
    assert_eq!(st, 200, "{done}");
    assert!(done["session_token"].as_str().unwrap().starts_with("ory_st_"));
    // Registering the same address again: 4000007.
    let (_, flow) = send(c.get(s.public_url("self-service/registration/api"))).await;
    let (st, dup) = send(c.post(flow["ui"]["action"].as_str().unwrap())
            .json(&json!({"method": "password", "password": "another-passw0rd!", "traits": {"email": "DORA@example.org"}}))).await;
    assert_eq!(st, 400);
    assert_eq!(message_ids(&dup), vec![4000007]);
    s.shutdown().await;
});

both_backends!(password_policy, |b: Backend| async move {
    let s = TestServer::spawn_with(
        b,
        json!({"selfservice": {"flows": {"registration": {"enable_legacy_one_step": true}}}}),
    )
    .await;
    let c = api();
    for (pw, id) in [
        ("short", 4000032),
        ("eve@example.org1", 4000031),
        (&*"x".repeat(73), 4000033),
    ] {
        let (_, flow) = send(c.get(s.public_url("self-service/registration/api"))).await;
        let (st, f) = send(
            c.post(flow["ui"]["action"].as_str().unwrap())
                .json(&json!({"method": "password", "password": pw, "traits": {"email": "eve@example.org"}})),
        )
        .await;
        assert_eq!(st, 400, "{f}");
        assert_eq!(
            node(&f, "password").unwrap()["messages"][0]["id"],
            id,
            "password {pw:?}: {f}"
        );
    }
    s.shutdown().await;
});

both_backends!(imported_hashes_are_upgraded_on_login, |b: Backend| async move {
    let s = TestServer::spawn(b).await;
    let c = api();
    let (st, created) = send(c.post(s.admin_url("admin/identities"))
            .json(&json!({
                "schema_id": "default",
                "traits": {"email": "ola@example.org"},
                "credentials": {"password": {"config": {"hashed_password": "$pbkdf2-sha256$i=1000,l=32$MDEyMzQ1Njc4OWFiY2RlZg$Or3CL4KzDu8rkT9+ZWxfDKJPy9KpNiBZGbbzAuX3AG0"}}}
            }))).await;
    assert_eq!(st, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let (st, _) = native_login(&s, "ola@example.org", "migrated-passw0rd").await;
    assert_eq!(st, 200);
    let (_, got) =
        send(c.get(s.admin_url(&format!("admin/identities/{id}?include_credential=password")))).await;
    let hash = got["credentials"]["password"]["config"]["hashed_password"]
        .as_str()
        .unwrap();
    assert!(
        hash.starts_with("$2a$04$") || hash.starts_with("$2b$04$"),
        "re-hashed with the configured bcrypt: {hash}"
    );
    let (st, _) = native_login(&s, "ola@example.org", "migrated-passw0rd").await;
    assert_eq!(st, 200, "the upgraded hash still verifies");
    s.shutdown().await;
});

both_backends!(revoke_active_sessions_hook, |b: Backend| async move {
    let s = TestServer::spawn_with(b, json!({"selfservice": {"flows": {"login": {"after": {"hooks": [{"hook": "revoke_active_sessions"}]}}}}})).await;
    create_identity(&s, "pia@example.org", "correct horse battery").await;
    let (_, first) = native_login(&s, "pia@example.org", "correct horse battery").await;
    let (_, second) = native_login(&s, "pia@example.org", "correct horse battery").await;
    let c = api();
    let res = c
        .get(s.public_url("sessions/whoami"))
        .header("X-Session-Token", first["session_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "the older session was revoked");
    let res = c
        .get(s.public_url("sessions/whoami"))
        .header("X-Session-Token", second["session_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    s.shutdown().await;
});
