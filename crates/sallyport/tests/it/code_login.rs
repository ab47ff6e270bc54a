//! Passwordless and second-factor login by code, with mail delivered over real SMTP to a loopback sink.

use serde_json::json;

use crate::both_backends;
use crate::support::client::{api, browser, csrf, flow_id_from, location, message_ids, node, send};
use crate::support::mail::{MailServer, code_in};
use crate::support::{Backend, TestServer, UI};

fn code_config() -> serde_json::Value {
    json!({
        "selfservice": {"methods": {"code": {"enabled": true, "passwordless_enabled": true}}},
        "identity": {"schemas": [{"id": "default", "url": format!("file://{}", crate::support::fixture("code-email.schema.json").display())}]},
    })
}

async fn register_by_code(s: &TestServer, mail: &MailServer, email: &str) -> serde_json::Value {
    let c = api();
    let (_, flow) = send(c.get(s.public_url("self-service/registration/api"))).await;
    let action = flow["ui"]["action"].as_str().unwrap().to_owned();
    let (st, sent) = send(
        c.post(&action)
            .json(&json!({"method": "code", "traits": {"email": email}})),
    )
    .await;
    assert_eq!(st, 400, "code sent is answered with 400 + flow: {sent}");
    assert_eq!(sent["state"], "sent_email");
    assert_eq!(message_ids(&sent), vec![1040005]);
    let mail = mail.next_to(email).await;
    let code = code_in(&mail.text_body);
    let (st, done) = send(
        c.post(&action)
            .json(&json!({"method": "code", "code": code, "traits": {"email": email}})),
    )
    .await;
    assert_eq!(st, 200, "{done}");
    done
}

both_backends!(native_passwordless_login, |b: Backend| async move {
    let mail = MailServer::start().await;
    let s = TestServer::spawn_with(b, mail.config(code_config())).await;
    let reg = register_by_code(&s, &mail, "rae@example.org").await;
    assert_eq!(
        reg["identity"]["verifiable_addresses"][0]["verified"], true,
        "the code proved the address"
    );

    let c = api();
    let (_, flow) = send(c.get(s.public_url("self-service/login/api"))).await;
    assert_eq!(node(&flow, "csrf_token").unwrap()["attributes"]["value"], "");
    let has_send_code_button = flow["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["attributes"]["name"] == "method" && n["attributes"]["value"] == "code");
    assert!(has_send_code_button);
    let action = flow["ui"]["action"].as_str().unwrap().to_owned();

    // Unknown identifier: 4000035.
    let (st, f) = send(
        c.post(&action)
            .json(&json!({"method": "code", "identifier": "nobody@example.org"})),
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(message_ids(&f), vec![4000035]);

    let (st, sent) = send(
        c.post(&action)
            .json(&json!({"method": "code", "identifier": "Rae@Example.org"})),
    )
    .await;
    assert_eq!(st, 400, "{sent}");
    assert_eq!(sent["state"], "sent_email");
    assert_eq!(message_ids(&sent), vec![1010014]);
    assert_eq!(node(&sent, "identifier").unwrap()["attributes"]["type"], "hidden");
    assert_eq!(
        node(&sent, "code").unwrap()["attributes"]["autocomplete"],
        "one-time-code"
    );
    let m = mail.next_to("rae@example.org").await;
    assert!(
        m.subject.contains("to log in") || m.subject.to_lowercase().contains("login"),
        "{}",
        m.subject
    );
    let code = code_in(&m.text_body);

    // A wrong code: 4010008, state unchanged.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (st, f) = send(
        c.post(&action)
            .json(&json!({"method": "code", "identifier": "rae@example.org", "code": wrong})),
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(message_ids(&f), vec![4010008]);
    let (st, ok) = send(
        c.post(&action)
            .json(&json!({"method": "code", "identifier": "rae@example.org", "code": code})),
    )
    .await;
    assert_eq!(st, 200, "{ok}");
    assert!(ok["session_token"].as_str().unwrap().starts_with("ory_st_"));
    assert_eq!(ok["session"]["authentication_methods"][0]["method"], "code");
    assert_eq!(ok["session"]["authentication_methods"][0]["aal"], "aal1");
    // Replaying the used code on a new flow fails.
    let (_, flow2) = send(c.get(s.public_url("self-service/login/api"))).await;
    let action2 = flow2["ui"]["action"].as_str().unwrap().to_owned();
    let (st, _) = send(
        c.post(&action2)
            .json(&json!({"method": "code", "identifier": "rae@example.org"})),
    )
    .await;
    assert_eq!(st, 400);
    let _ = mail.next_to("rae@example.org").await;
    let (st, f) = send(
        c.post(&action2)
            .json(&json!({"method": "code", "identifier": "rae@example.org", "code": code})),
    )
    .await;
    assert_eq!(st, 400, "a code from another flow never works: {f}");
    assert_eq!(message_ids(&f), vec![4010008]);
    s.shutdown().await;
});

both_backends!(too_many_attempts_and_resend, |b: Backend| async move {
    let mail = MailServer::start().await;
    let s = TestServer::spawn_with(b, mail.config(code_config())).await;
    register_by_code(&s, &mail, "sam@example.org").await;
    let c = api();
    let (_, flow) = send(c.get(s.public_url("self-service/login/api"))).await;
    let action = flow["ui"]["action"].as_str().unwrap().to_owned();
    let _ = send(
        c.post(&action)
            .json(&json!({"method": "code", "identifier": "sam@example.org"})),
    )
    .await;
    let first = code_in(&mail.next_to("sam@example.org").await.text_body);
    // Resend: a new code, and the old one stops working.
    let (st, _) = send(
        c.post(&action)
            .json(&json!({"method": "code", "identifier": "sam@example.org", "resend": "code"})),
    )
    .await;
    assert_eq!(st, 400);
    let second = code_in(&mail.next_to("sam@example.org").await.text_body);
    if first != second {
        let (_, f) = send(
            c.post(&action)
                .json(&json!({"method": "code", "identifier": "sam@example.org", "code": first})),
        )
        .await;
        assert_eq!(message_ids(&f), vec![4010008]);
    }
    for _ in 0..5 {
        let _ = send(
            c.post(&action)
                .json(&json!({"method": "code", "identifier": "sam@example.org", "code": "999999x"})),
        )
        .await;
    }
    let (st, f) = send(
        c.post(&action)
            .json(&json!({"method": "code", "identifier": "sam@example.org", "code": second})),
    )
    .await;
    assert_eq!(
        st, 400,
        "after max_submissions even the right code is refused: {f}"
    );
    assert_eq!(
        f["ui"]["messages"][0]["text"],
        "The request was submitted too often. Please request another code."
    );
    s.shutdown().await;
});

both_backends!(browser_and_spa_code_login, |b: Backend| async move {
    let mail = MailServer::start().await;
    let s = TestServer::spawn_with(b, mail.config(code_config())).await;
    register_by_code(&s, &mail, "tia@example.org").await;
    // Browser: every step redirects to the UI.
    let c = browser();
    let res = c
        .get(s.public_url("self-service/login/browser"))
        .send()
        .await
        .unwrap();
    let id = flow_id_from(&location(&res));
    let (_, flow) = send(c.get(s.public_url(&format!("self-service/login/flows?id={id}")))).await;
    let token = csrf(&flow);
    let url = s.public_url(&format!("self-service/login?flow={id}"));
    let res = c
        .post(&url)
        .form(&[
            ("method", "code"),
            ("identifier", "tia@example.org"),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), format!("{UI}/login?flow={id}"));
    let code = code_in(&mail.next_to("tia@example.org").await.text_body);
    let res = c
        .post(&url)
        .form(&[
            ("method", "code"),
            ("identifier", "tia@example.org"),
            ("code", &code),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), crate::support::RETURN);
    assert_eq!(
        c.get(s.public_url("sessions/whoami"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // SPA: JSON all the way.
    let c = browser();
    let (_, flow) = send(
        c.get(s.public_url("self-service/login/browser"))
            .header("Accept", "application/json"),
    )
    .await;
    let action = flow["ui"]["action"].as_str().unwrap().to_owned();
    let (st, sent) = send(
        c.post(&action)
            .json(&json!({"method": "code", "identifier": "tia@example.org", "csrf_token": csrf(&flow)})),
    )
    .await;
    assert_eq!(st, 400);
    let code = code_in(&mail.next_to("tia@example.org").await.text_body);
    let (st, ok) = send(c.post(&action).json(
        &json!({"method": "code", "identifier": "tia@example.org", "code": code, "csrf_token": csrf(&sent)}),
    ))
    .await;
    assert_eq!(st, 200, "{ok}");
    assert_eq!(ok["continue_with"][0]["action"], "redirect_browser_to");
    s.shutdown().await;
});

both_backends!(code_as_second_factor, |b: Backend| async move {
    let mail = MailServer::start().await;
    let cfg = json!({
        "selfservice": {"methods": {"code": {"enabled": true, "mfa_enabled": true}}},
        "identity": {"schemas": [{"id": "default", "url": format!("file://{}", crate::support::fixture("code-email.schema.json").display())}]},
        "session": {"whoami": {"required_aal": "highest_available"}},
    });
    let s = TestServer::spawn_with(b, mail.config(cfg)).await;
    let c = api();
    let res = c
        .post(s.admin_url("admin/identities"))
        .json(&json!({"schema_id": "default", "traits": {"email": "uma@example.org"}, "credentials": {"password": {"config": {"password": "correct horse battery"}}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let (st, login) =
        crate::support::client::native_login(&s, "uma@example.org", "correct horse battery").await;
    assert_eq!(st, 200);
    assert!(
        login["session"]["identity"].is_null(),
        "aal2 is available, so the identity is withheld until step-up: {login}"
    );
    let token = login["session_token"].as_str().unwrap().to_owned();
    let (st, e) = send(
        c.get(s.public_url("sessions/whoami"))
            .header("X-Session-Token", &token),
    )
    .await;
    assert_eq!(st, 403);
    assert_eq!(e["error"]["id"], "session_aal2_required");
    // Without a session aal2 is refused.
    let (st, e) = send(c.get(s.public_url("self-service/login/api?aal=aal2"))).await;
    assert_eq!(
        (st.as_u16(), e["error"]["id"].as_str()),
        (401, Some("session_aal1_required"))
    );
    // One address and no other factor: the code goes out when the flow is created (200 + sent_email).
    let (st, flow) = send(
        c.get(s.public_url("self-service/login/api?aal=aal2"))
            .header("X-Session-Token", &token),
    )
    .await;
    assert_eq!(st, 200, "{flow}");
    assert_eq!(flow["state"], "sent_email");
    assert_eq!(message_ids(&flow), vec![1010025]);
    let code = code_in(&mail.next_to("uma@example.org").await.text_body);
    let (st, ok) = send(
        c.post(flow["ui"]["action"].as_str().unwrap())
            .header("X-Session-Token", &token)
            .json(&json!({"method": "code", "code": code, "identifier": "uma@example.org"})),
    )
    .await;
    assert_eq!(st, 200, "{ok}");
    assert_eq!(ok["session"]["authenticator_assurance_level"], "aal2");
    let methods: Vec<&str> = ok["session"]["authentication_methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["password", "code"]);
    let (st, _) = send(
        c.get(s.public_url("sessions/whoami"))
            .header("X-Session-Token", &token),
    )
    .await;
    assert_eq!(st, 200);
    // The `address` request shape without `method` works too.
    let (_, flow) = send(
        c.get(s.public_url("self-service/login/api?aal=aal2&refresh=true"))
            .header("X-Session-Token", &token),
    )
    .await;
    let action = flow["ui"]["action"].as_str().unwrap().to_owned();
    if flow["state"] == "choose_method" {
        let (st, sent) = send(
            c.post(&action)
                .header("X-Session-Token", &token)
                .json(&json!({"address": "uma@example.org"})),
        )
        .await;
        assert_eq!(st, 400, "{sent}");
        assert_eq!(sent["state"], "sent_email");
    }
    s.shutdown().await;
});

both_backends!(browser_and_spa_registration_by_code, |b: Backend| async move {
    let mail = MailServer::start().await;
    let s = TestServer::spawn_with(b, mail.config(code_config())).await;
    // SPA, two-step (the default): profile → credential choice → code.
    let c = browser();
    let (_, flow) = send(
        c.get(s.public_url("self-service/registration/browser"))
            .header("Accept", "application/json"),
    )
    .await;
    let action = flow["ui"]["action"].as_str().unwrap().to_owned();
    let (st, choose) = send(c.post(&action).json(
        &json!({"method": "profile", "traits": {"email": "gus@example.org"}, "csrf_token": csrf(&flow)}),
    ))
    .await;
    assert_eq!(st, 400);
    assert!(
        choose["ui"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["attributes"]["name"] == "method" && n["attributes"]["value"] == "code")
    );
    let (st, sent) = send(c.post(&action).json(
        &json!({"method": "code", "traits": {"email": "gus@example.org"}, "csrf_token": csrf(&choose)}),
    ))
    .await;
    assert_eq!(st, 400, "{sent}");
    assert_eq!(message_ids(&sent), vec![1040005]);
    let code = code_in(&mail.next_to("gus@example.org").await.text_body);
    // Traits changed between the steps: 4000036.
    let (st, f) = send(c.post(&action).json(&json!({"method": "code", "code": code, "traits": {"email": "other@example.org"}, "csrf_token": csrf(&sent)}))).await;
    assert_eq!(st, 400);
    assert_eq!(message_ids(&f), vec![4000036]);
    let (st, ok) = send(c.post(&action).json(&json!({"method": "code", "code": code, "traits": {"email": "gus@example.org"}, "csrf_token": csrf(&sent)}))).await;
    assert_eq!(st, 200, "{ok}");
    assert_eq!(ok["identity"]["verifiable_addresses"][0]["verified"], true);
    // Browser, form posts, one wrong code first.
    let c = browser();
    let res = c
        .get(s.public_url("self-service/registration/browser"))
        .send()
        .await
        .unwrap();
    let id = flow_id_from(&location(&res));
    let (_, flow) = send(c.get(s.public_url(&format!("self-service/registration/flows?id={id}")))).await;
    let url = s.public_url(&format!("self-service/registration?flow={id}"));
    let token = csrf(&flow);
    let res = c
        .post(&url)
        .form(&[
            ("method", "code"),
            ("traits.email", "hal@example.org"),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let code = code_in(&mail.next_to("hal@example.org").await.text_body);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let res = c
        .post(&url)
        .form(&[
            ("method", "code"),
            ("code", wrong),
            ("traits.email", "hal@example.org"),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302, "registration errors redirect with 302");
    let (_, f) = send(c.get(s.public_url(&format!("self-service/registration/flows?id={id}")))).await;
    assert_eq!(message_ids(&f), vec![4040003]);
    let res = c
        .post(&url)
        .form(&[
            ("method", "code"),
            ("code", &code),
            ("traits.email", "hal@example.org"),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), crate::support::RETURN);
    s.shutdown().await;
});

// Kratos' `loginSendCode` narrows the identity's code addresses to the one typed: a login with the email must not
// also text the phone (it did before: every code address got a code).
both_backends!(code_goes_only_to_the_typed_address, |b: Backend| async move {
    let s = TestServer::spawn_with(
        b,
        json!({
            "selfservice": {"methods": {"code": {"enabled": true, "passwordless_enabled": true}}},
            "identity": {"schemas": [{"id": "default", "url": format!("file://{}", crate::support::fixture("code-email-phone.schema.json").display())}]},
        }),
    )
    .await;
    let c = api();
    let (st, _) = send(c.post(s.admin_url("admin/identities")).json(
        &json!({"schema_id": "default", "traits": {"email": "ann@example.org", "phone": "+14155552671"}}),
    ))
    .await;
    assert_eq!(st, 201);
    let recipients = || async {
        let (_, list) = send(c.get(s.admin_url("admin/courier/messages"))).await;
        let mut r: Vec<String> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["recipient"].as_str().unwrap().to_owned())
            .collect();
        r.sort();
        r
    };
    for (typed, expected) in [
        ("ann@example.org", vec!["ann@example.org"]),
        ("+14155552671", vec!["+14155552671", "ann@example.org"]),
    ] {
        let (_, flow) = send(c.get(s.public_url("self-service/login/api"))).await;
        let (st, sent) = send(
            c.post(flow["ui"]["action"].as_str().unwrap())
                .json(&json!({"method": "code", "identifier": typed})),
        )
        .await;
        assert_eq!(st, 400, "{sent}");
        assert_eq!(sent["state"], "sent_email");
        assert_eq!(
            recipients().await,
            expected,
            "after asking for a code for {typed}"
        );
    }
    s.shutdown().await;
});
