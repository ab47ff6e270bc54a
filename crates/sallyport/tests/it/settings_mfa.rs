//! Settings, TOTP, backup codes, assurance levels and the per-identity MFA policy.

use serde_json::{Value, json};

use crate::both_backends;
use crate::support::client::{
    api, browser, browser_login, browser_login_at, create_identity, csrf, flow_id_from, location,
    message_ids, native_login, node, send,
};
use crate::support::totp::{code_at, now_code};
use crate::support::{Backend, TestServer, UI};

pub(crate) fn mfa_config(extra: Value) -> Value {
    let mut v = json!({
        "selfservice": {"methods": {"totp": {"enabled": true, "config": {"issuer": "Sallyport Tests"}}, "lookup_secret": {"enabled": true}}},
        "session": {"whoami": {"required_aal": "highest_available"}},
    });
    crate::support::deep_merge(&mut v, extra);
    v
}

fn find_by_id<'a>(flow: &'a Value, id: &str) -> Option<&'a Value> {
    flow["ui"]["nodes"]
        .as_array()?
        .iter()
        .find(|n| n["attributes"]["id"] == id || n["attributes"]["name"] == id)
}

async fn settings_flow(s: &TestServer, token: &str) -> Value {
    let (st, flow) = send(
        api()
            .get(s.public_url("self-service/settings/api"))
            .header("X-Session-Token", token),
    )
    .await;
    assert_eq!(st, 200, "{flow}");
    flow
}

async fn submit(_s: &TestServer, token: &str, flow: &Value, payload: Value) -> (u16, Value) {
    let (st, v) = send(
        api()
            .post(flow["ui"]["action"].as_str().unwrap())
            .header("X-Session-Token", token)
            .json(&payload),
    )
    .await;
    (st.as_u16(), v)
}

/// Links TOTP through settings and returns the secret.
pub(crate) async fn link_totp(s: &TestServer, token: &str) -> String {
    let flow = settings_flow(s, token).await;
    let qr = find_by_id(&flow, "totp_qr").expect("QR node");
    assert_eq!(qr["type"], "img");
    assert!(
        qr["attributes"]["src"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,")
    );
    let secret = find_by_id(&flow, "totp_secret_key").unwrap()["attributes"]["text"]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    let (st, bad) = submit(s, token, &flow, json!({"method": "totp", "totp_code": "000000x"})).await;
    assert_eq!(st, 400);
    assert_eq!(node(&bad, "totp_code").unwrap()["messages"][0]["id"], 4000008);
    let (st, ok) = submit(
        s,
        token,
        &flow,
        json!({"method": "totp", "totp_code": now_code(&secret)}),
    )
    .await;
    assert_eq!(st, 200, "{ok}");
    assert_eq!(ok["state"], "success");
    assert_eq!(message_ids(&ok), vec![1050001]);
    secret
}

both_backends!(profile_and_password_settings, |b: Backend| async move {
    let s = TestServer::spawn(b).await;
    create_identity(&s, "ada@example.org", "correct horse battery").await;
    let (_, login) = native_login(&s, "ada@example.org", "correct horse battery").await;
    let token = login["session_token"].as_str().unwrap().to_owned();
    let flow = settings_flow(&s, &token).await;
    assert_eq!(flow["state"], "show_form");
    assert_eq!(
        flow["identity"]["traits"]["email"], "ada@example.org",
        "settingsFlow.identity is required by the OpenAPI spec"
    );
    assert_eq!(
        node(&flow, "traits.email").unwrap()["attributes"]["value"],
        "ada@example.org"
    );
    let (st, ok) = submit(
        &s,
        &token,
        &flow,
        json!({"method": "profile", "traits": {"email": "ada@example.org", "name": {"first": "Ada"}}}),
    )
    .await;
    assert_eq!(st, 200, "{ok}");
    assert_eq!(message_ids(&ok), vec![1050001]);
    let (st, bad) = submit(
        &s,
        &token,
        &flow,
        json!({"method": "profile", "traits": {"email": "not-an-email"}}),
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(node(&bad, "traits.email").unwrap()["messages"][0]["id"], 4000040);
    let (st, same) = submit(
        &s,
        &token,
        &flow,
        json!({"method": "password", "password": "correct horse battery"}),
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(node(&same, "password").unwrap()["messages"][0]["id"], 4000039);
    let (st, _) = submit(
        &s,
        &token,
        &flow,
        json!({"method": "password", "password": "a-brand-new-passw0rd"}),
    )
    .await;
    assert_eq!(st, 200);
    let (st, _) = native_login(&s, "ada@example.org", "a-brand-new-passw0rd").await;
    assert_eq!(st, 200);
    // Another identity's session cannot see or touch this flow; no session at all is 401.
    create_identity(&s, "bob@example.org", "correct horse battery").await;
    let (_, other) = native_login(&s, "bob@example.org", "correct horse battery").await;
    let other_token = other["session_token"].as_str().unwrap();
    let (st, e) = send(
        api()
            .get(s.public_url(&format!(
                "self-service/settings/flows?id={}",
                flow["id"].as_str().unwrap()
            )))
            .header("X-Session-Token", other_token),
    )
    .await;
    assert_eq!(
        (st.as_u16(), e["error"]["id"].as_str()),
        (403, Some("security_identity_mismatch"))
    );
    let (st, e) = submit(
        &s,
        other_token,
        &flow,
        json!({"method": "profile", "traits": {"email": "bob@example.org"}}),
    )
    .await;
    assert_eq!(
        (st, e["error"]["id"].as_str()),
        (403, Some("security_identity_mismatch"))
    );
    let (st, e) = send(api().get(s.public_url("self-service/settings/api"))).await;
    assert_eq!(
        (st.as_u16(), e["error"]["id"].as_str()),
        (401, Some("session_inactive"))
    );
    s.shutdown().await;
});

both_backends!(privileged_updates_need_a_fresh_login, |b: Backend| async move {
    let s = TestServer::spawn_with(b, json!({"selfservice": {"flows": {"settings": {"privileged_session_max_age": "1s", "ui_url": format!("{UI}/settings")}}}})).await;
    create_identity(&s, "cy@example.org", "correct horse battery").await;
    let (_, login) = native_login(&s, "cy@example.org", "correct horse battery").await;
    let token = login["session_token"].as_str().unwrap().to_owned();
    let flow = settings_flow(&s, &token).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (st, e) = submit(
        &s,
        &token,
        &flow,
        json!({"method": "password", "password": "another-passw0rd-1"}),
    )
    .await;
    assert_eq!(st, 403, "{e}");
    assert_eq!(e["error"]["id"], "session_refresh_required");
    assert!(
        e["redirect_browser_to"]
            .as_str()
            .unwrap()
            .contains("refresh=true")
    );
    // Non-credential traits do not need it.
    let (st, _) = submit(
        &s,
        &token,
        &flow,
        json!({"method": "profile", "traits": {"email": "cy@example.org", "name": {"last": "C"}}}),
    )
    .await;
    assert_eq!(st, 200);

    // Browsers are sent to re-authenticate and the update resumes afterwards.
    let c = browser();
    let res = browser_login(&s, &c, "cy@example.org", "correct horse battery").await;
    assert_eq!(res.status(), 303);
    let res = c
        .get(s.public_url("self-service/settings/browser"))
        .send()
        .await
        .unwrap();
    let sid = flow_id_from(&location(&res));
    let (_, sf) = send(c.get(s.public_url(&format!("self-service/settings/flows?id={sid}")))).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let res = c
        .post(s.public_url(&format!("self-service/settings?flow={sid}")))
        .form(&[
            ("method", "password"),
            ("password", "resumed-passw0rd-2"),
            ("csrf_token", &csrf(&sf)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let to = location(&res);
    assert!(to.contains("/self-service/login/browser?refresh=true"), "{to}");
    let res = browser_login_at(&s, &c, &to, "cy@example.org", "correct horse battery").await;
    let back = location(&res);
    assert!(
        back.contains(&format!("self-service/settings?flow={sid}")),
        "login returns to the update: {back}"
    );
    let res = c.get(&back).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let (st, _) = native_login(&s, "cy@example.org", "resumed-passw0rd-2").await;
    assert_eq!(st, 200, "the update was applied after re-authentication");
    s.shutdown().await;
});

both_backends!(totp_as_second_factor, |b: Backend| async move {
    let s = TestServer::spawn_with(b, mfa_config(json!({}))).await;
    create_identity(&s, "dee@example.org", "correct horse battery").await;
    let (_, login) = native_login(&s, "dee@example.org", "correct horse battery").await;
    let token = login["session_token"].as_str().unwrap().to_owned();
    let secret = link_totp(&s, &token).await;
    // Linking counts as using the factor (Kratos `SessionAddAuthenticationMethods`): the session that
    // enrolled is at aal2 and keeps its access under `highest_available`.
    let (st, who) = send(
        api()
            .get(s.public_url("sessions/whoami"))
            .header("X-Session-Token", &token),
    )
    .await;
    assert_eq!(st, 200, "{who}");
    assert_eq!(who["authenticator_assurance_level"], "aal2");
    assert_eq!(who["authentication_methods"][1]["method"], "totp");
    assert_eq!(who["authentication_methods"][1]["aal"], "aal2");

    let (st, first) = native_login(&s, "dee@example.org", "correct horse battery").await;
    assert_eq!(st, 200);
    assert!(
        first["session"]["identity"].is_null(),
        "aal2 is available, so the first factor alone is not enough"
    );
    let t2 = first["session_token"].as_str().unwrap().to_owned();
    let (st, e) = send(
        api()
            .get(s.public_url("sessions/whoami"))
            .header("X-Session-Token", &t2),
    )
    .await;
    assert_eq!(
        (st.as_u16(), e["error"]["id"].as_str()),
        (403, Some("session_aal2_required"))
    );
    let (_, flow) = send(
        api()
            .get(s.public_url("self-service/login/api?aal=aal2"))
            .header("X-Session-Token", &t2),
    )
    .await;
    assert_eq!(message_ids(&flow), vec![1010004]);
    assert!(
        node(&flow, "password").is_none(),
        "step-up shows second factors only"
    );
    assert!(node(&flow, "totp_code").is_some());
    let action = flow["ui"]["action"].as_str().unwrap().to_owned();
    let (st, bad) = send(
        api()
            .post(&action)
            .header("X-Session-Token", &t2)
            .json(&json!({"method": "totp", "totp_code": "123456x"})),
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(
        message_ids(&bad),
        vec![4000008],
        "on the flow (`#/`), as Kratos: {bad}"
    );
    assert!(
        node(&bad, "totp_code").unwrap()["messages"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Outside the ±1 step window.
    let stale = code_at(&secret, time::OffsetDateTime::now_utc().unix_timestamp() - 120);
    let (st, _) = send(
        api()
            .post(&action)
            .header("X-Session-Token", &t2)
            .json(&json!({"method": "totp", "totp_code": stale})),
    )
    .await;
    assert_eq!(st, 400);
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let code = code_at(&secret, time::OffsetDateTime::now_utc().unix_timestamp() + 30);
    let (st, ok) = send(
        api()
            .post(&action)
            .header("X-Session-Token", &t2)
            .json(&json!({"method": "totp", "totp_code": code})),
    )
    .await;
    assert_eq!(st, 200, "{ok}");
    assert_eq!(ok["session"]["authenticator_assurance_level"], "aal2");
    assert!(!ok["session"]["identity"].is_null());
    // The same code cannot be replayed on another step-up.
    let (_, flow) = send(
        api()
            .get(s.public_url("self-service/login/api?aal=aal2&refresh=true"))
            .header("X-Session-Token", &t2),
    )
    .await;
    let (st, replay) = send(
        api()
            .post(flow["ui"]["action"].as_str().unwrap())
            .header("X-Session-Token", &t2)
            .json(&json!({"method": "totp", "totp_code": code})),
    )
    .await;
    assert_eq!(
        st, 400,
        "a used code is refused within its window (beyond Kratos): {replay}"
    );
    // At aal2 the settings show the linked device, and only unlinking is offered.
    let flow = settings_flow(&s, &t2).await;
    assert!(node(&flow, "totp_unlink").is_some());
    assert!(node(&flow, "totp_code").is_none());
    s.shutdown().await;
});

both_backends!(backup_codes, |b: Backend| async move {
    let s = TestServer::spawn_with(b, mfa_config(json!({}))).await;
    let id = create_identity(&s, "eve@example.org", "correct horse battery").await;
    let (_, login) = native_login(&s, "eve@example.org", "correct horse battery").await;
    let token = login["session_token"].as_str().unwrap().to_owned();
    let flow = settings_flow(&s, &token).await;
    let (st, shown) = submit(
        &s,
        &token,
        &flow,
        json!({"method": "lookup_secret", "lookup_secret_regenerate": true}),
    )
    .await;
    assert_eq!(st, 200, "{shown}");
    let codes: Vec<String> =
        find_by_id(&shown, "lookup_secret_codes").unwrap()["attributes"]["text"]["context"]["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                assert_eq!(c["id"], 1050009, "each code is a text message: {c}");
                assert_eq!(c["text"], c["context"]["secret"]);
                c["context"]["secret"].as_str().unwrap().to_owned()
            })
            .collect();
    assert_eq!(codes.len(), 12);
    assert!(
        codes
            .iter()
            .all(|c| c.len() == 8 && c.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit()))
    );
    let (st, _) = submit(
        &s,
        &token,
        &shown,
        json!({"method": "lookup_secret", "lookup_secret_confirm": true}),
    )
    .await;
    assert_eq!(st, 200);
    let (_, ident) =
        send(api().get(s.admin_url(&format!("admin/identities/{id}?include_credential=lookup_secret"))))
            .await;
    let stored = ident["credentials"]["lookup_secret"]["config"].to_string();
    assert!(
        codes.iter().all(|c| !stored.contains(c.as_str())),
        "backup codes are stored hashed and sealed, never in plaintext (beyond Kratos)"
    );

    let (_, first) = native_login(&s, "eve@example.org", "correct horse battery").await;
    let t2 = first["session_token"].as_str().unwrap().to_owned();
    let step_up = |payload: Value| {
        let (s, t2) = (&s, t2.clone());
        async move {
            let (_, flow) = send(
                api()
                    .get(s.public_url("self-service/login/api?aal=aal2&refresh=true"))
                    .header("X-Session-Token", &t2),
            )
            .await;
            send(
                api()
                    .post(flow["ui"]["action"].as_str().unwrap())
                    .header("X-Session-Token", &t2)
                    .json(&payload),
            )
            .await
        }
    };
    let (st, bad) = step_up(json!({"method": "lookup_secret", "lookup_secret": "zzzzzzzz"})).await;
    assert_eq!(st, 400);
    assert_eq!(message_ids(&bad), vec![4000016], "on the flow, as Kratos");
    let (st, ok) = step_up(json!({"method": "lookup_secret", "lookup_secret": codes[0]})).await;
    assert_eq!(st, 200, "{ok}");
    assert_eq!(ok["session"]["authenticator_assurance_level"], "aal2");
    let (st, used) = step_up(json!({"method": "lookup_secret", "lookup_secret": codes[0]})).await;
    assert_eq!(st, 400);
    assert_eq!(message_ids(&used), vec![4000012]);
    s.shutdown().await;
});

both_backends!(mfa_policy_by_trait_for_spa_and_native, |b: Backend| async move {
    let schema = crate::support::fixture("role.schema.json");
    let s = TestServer::spawn_with(
        b,
        mfa_config(json!({
            "session": {"whoami": {"required_aal": "aal1"}},
            "identity": {"schemas": [{"id": "default", "url": format!("file://{}", schema.display())}]},
            "sallyport": {"mfa_policy": {"require_for": [{"trait": "role", "equals": "admin"}]}},
        })),
    )
    .await;
    for (email, role) in [("root@example.org", "admin"), ("user@example.org", "user")] {
        let res = api()
            .post(s.admin_url("admin/identities"))
            .json(&json!({"schema_id": "default", "traits": {"email": email, "role": role}, "credentials": {"password": {"config": {"password": "correct horse battery"}}}}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    // Users outside the policy: aal1 is fine (required_aal is aal1 here).
    let (_, user) = native_login(&s, "user@example.org", "correct horse battery").await;
    assert!(!user["session"]["identity"].is_null());
    // An admin without a second factor must enrol first.
    let (_, admin) = native_login(&s, "root@example.org", "correct horse battery").await;
    assert!(admin["session"]["identity"].is_null());
    let token = admin["session_token"].as_str().unwrap().to_owned();
    let (st, e) = send(
        api()
            .get(s.public_url("sessions/whoami"))
            .header("X-Session-Token", &token),
    )
    .await;
    assert_eq!(st, 403);
    assert_eq!(e["error"]["id"], "session_mfa_enrollment_required");
    assert!(e["error"]["reason"].as_str().unwrap().contains("second factor"));
    assert!(
        e["redirect_browser_to"]
            .as_str()
            .unwrap()
            .ends_with("/self-service/settings/browser")
    );
    // Settings stay open for enrolment.
    let secret = link_totp(&s, &token).await;
    // Enrolling counts as using the factor: the enrolling session is at aal2, as the policy wants.
    let (st, who) = send(
        api()
            .get(s.public_url("sessions/whoami"))
            .header("X-Session-Token", &token),
    )
    .await;
    assert_eq!(
        st, 200,
        "the forced enrolment does not lock the session out: {who}"
    );
    assert_eq!(who["authenticator_assurance_level"], "aal2");
    // A new login needs the second factor.
    let (_, again) = native_login(&s, "root@example.org", "correct horse battery").await;
    let t2 = again["session_token"].as_str().unwrap().to_owned();
    let (st, e) = send(
        api()
            .get(s.public_url("sessions/whoami"))
            .header("X-Session-Token", &t2),
    )
    .await;
    assert_eq!(
        (st.as_u16(), e["error"]["id"].as_str()),
        (403, Some("session_aal2_required")),
        "once enrolled, aal2 is required for it"
    );
    let (_, flow) = send(
        api()
            .get(s.public_url("self-service/login/api?aal=aal2"))
            .header("X-Session-Token", &t2),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let next = code_at(&secret, time::OffsetDateTime::now_utc().unix_timestamp() + 30);
    let (st, up) = send(
        api()
            .post(flow["ui"]["action"].as_str().unwrap())
            .header("X-Session-Token", &t2)
            .json(&json!({"method": "totp", "totp_code": next})),
    )
    .await;
    assert_eq!(st, 200, "{up}");
    // Removing the only second factor is refused while the policy applies.
    let flow = settings_flow(&s, &token).await;
    let (st, e) = submit(&s, &token, &flow, json!({"method": "totp", "totp_unlink": true})).await;
    assert_eq!(st, 400, "{e}");

    // SPA: the first factor answers 422 to the settings UI when nothing is enrolled yet.
    let res = api()
        .post(s.admin_url("admin/identities"))
        .json(&json!({"schema_id": "default", "traits": {"email": "ops@example.org", "role": "admin"}, "credentials": {"password": {"config": {"password": "correct horse battery"}}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let c = browser();
    let (_, flow) = send(
        c.get(s.public_url("self-service/login/browser"))
            .header("Accept", "application/json"),
    )
    .await;
    let (st, e) = send(c.post(flow["ui"]["action"].as_str().unwrap())
            .json(&json!({"method": "password", "identifier": "ops@example.org", "password": "correct horse battery", "csrf_token": csrf(&flow)}))).await;
    assert_eq!(st, 422, "{e}");
    assert!(
        e["redirect_browser_to"]
            .as_str()
            .unwrap()
            .ends_with("/self-service/settings/browser")
    );
    s.shutdown().await;
});

both_backends!(mfa_policy_per_identity_for_browsers, |b: Backend| async move {
    let s = TestServer::spawn_with(
        b,
        mfa_config(json!({"session": {"whoami": {"required_aal": "aal1"}}})),
    )
    .await;
    let res = api()
        .post(s.admin_url("admin/identities"))
        .json(&json!({"schema_id": "default", "traits": {"email": "fin@example.org"}, "metadata_admin": {"sallyport": {"require_mfa": true}}, "credentials": {"password": {"config": {"password": "correct horse battery"}}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let c = browser();
    let res = browser_login(&s, &c, "fin@example.org", "correct horse battery").await;
    assert_eq!(res.status(), 303);
    assert!(
        location(&res).ends_with("/self-service/settings/browser"),
        "browsers go to enrol: {}",
        location(&res)
    );
    let res = c.get(location(&res)).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(
        location(&res).starts_with(&format!("{UI}/settings?flow="))
            || location(&res).contains("fallback/settings")
    );
    s.shutdown().await;
});
