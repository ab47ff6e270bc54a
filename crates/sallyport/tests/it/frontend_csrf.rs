//! Issue 8, item 1: every flow a hook or an emailed link creates stores the CSRF token the browser
//! holds once that response is done, so the UI's first `GET …/flows?id=` succeeds.

use serde_json::json;

use crate::both_backends;
use crate::support::client::{browser, create_identity, csrf, flow_id_from, location, message_ids, send};
use crate::support::mail::{MailServer, code_in, link_in};
use crate::support::{Backend, TestServer, UI};

fn cfg(extra: serde_json::Value) -> serde_json::Value {
    let mut v = json!({"selfservice": {"flows": {
        "verification": {"enabled": true, "ui_url": format!("{UI}/verification")},
        "recovery": {"enabled": true, "ui_url": format!("{UI}/recovery")},
        "registration": {"enable_legacy_one_step": true, "after": {"password": {"hooks": [{"hook": "session"}, {"hook": "show_verification_ui"}]}}},
    }}});
    crate::support::deep_merge(&mut v, extra);
    v
}

async fn browser_register(s: &TestServer, c: &reqwest::Client, email: &str) -> reqwest::Response {
    let res = c
        .get(s.public_url("self-service/registration/browser"))
        .send()
        .await
        .unwrap();
    let id = flow_id_from(&location(&res));
    let (_, flow) = send(c.get(s.public_url(&format!("self-service/registration/flows?id={id}")))).await;
    c.post(s.public_url(&format!("self-service/registration?flow={id}")))
        .form(&[
            ("method", "password"),
            ("traits.email", email),
            ("password", "a-strong-passw0rd!"),
            ("csrf_token", &csrf(&flow)),
        ])
        .send()
        .await
        .unwrap()
}

both_backends!(
    verification_flow_after_browser_registration_is_fetchable,
    |b: Backend| async move {
        let mail = MailServer::start().await;
        let s = TestServer::spawn_with(b, mail.config(cfg(json!({})))).await;
        let c = browser();
        let res = browser_register(&s, &c, "ann@example.org").await;
        assert_eq!(res.status(), 303);
        let to = location(&res);
        assert!(to.starts_with(&format!("{UI}/verification?flow=")), "{to}");
        let id = flow_id_from(&to);
        let (st, flow) = send(c.get(s.public_url(&format!("self-service/verification/flows?id={id}")))).await;
        assert_eq!(st, 200, "the UI's first fetch after registration: {flow}");
        // The form posted from it passes the CSRF check, so the code verifies.
        let code = code_in(&mail.next_to("ann@example.org").await.text_body);
        let (st, done) = send(
            c.post(s.public_url(&format!("self-service/verification?flow={id}")))
                .header("Accept", "application/json")
                .json(&json!({"method": "code", "code": code, "csrf_token": csrf(&flow)})),
        )
        .await;
        assert_eq!(st, 200, "{done}");
        assert_eq!(done["state"], "passed_challenge");
        s.shutdown().await;
    }
);

both_backends!(
    verification_flow_after_spa_registration_is_fetchable,
    |b: Backend| async move {
        let mail = MailServer::start().await;
        let s = TestServer::spawn_with(b, mail.config(cfg(json!({})))).await;
        let c = browser();
        let (_, flow) = send(
            c.get(s.public_url("self-service/registration/browser"))
                .header("Accept", "application/json"),
        )
        .await;
        let (st, reg) = send(
            c.post(flow["ui"]["action"].as_str().unwrap())
                .header("Accept", "application/json")
                .json(
                    &json!({"method": "password", "traits": {"email": "bea@example.org"},
                    "password": "a-strong-passw0rd!", "csrf_token": csrf(&flow)}),
                ),
        )
        .await;
        assert_eq!(st, 200, "{reg}");
        let item = reg["continue_with"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["action"] == "show_verification_ui")
            .unwrap()
            .clone();
        let id = item["flow"]["id"].as_str().unwrap();
        let (st, f) = send(c.get(s.public_url(&format!("self-service/verification/flows?id={id}")))).await;
        assert_eq!(st, 200, "{f}");
        s.shutdown().await;
    }
);

both_backends!(
    verification_mail_link_works_in_another_browser,
    |b: Backend| async move {
        let mail = MailServer::start().await;
        let s = TestServer::spawn_with(b, mail.config(cfg(json!({})))).await;
        let res = browser_register(&s, &browser(), "cal@example.org").await;
        assert_eq!(res.status(), 303);
        let m = mail.next_to("cal@example.org").await;
        let link = link_in(&m.text_body, "code=");
        let other = browser();
        let res = other.get(&link).send().await.unwrap();
        assert_eq!(res.status(), 303);
        let id = flow_id_from(&location(&res));
        let (st, flow) =
            send(other.get(s.public_url(&format!("self-service/verification/flows?id={id}")))).await;
        assert_eq!(
            st, 200,
            "a browser that never saw the flow opens the link: {flow}"
        );
        let res = other
            .post(s.public_url(&format!("self-service/verification?flow={id}")))
            .form(&[
                ("method", "code"),
                ("code", &code_in(&m.text_body)),
                ("csrf_token", &csrf(&flow)),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        let (_, done) =
            send(other.get(s.public_url(&format!("self-service/verification/flows?id={id}")))).await;
        assert_eq!(done["state"], "passed_challenge", "{done}");
        assert_eq!(message_ids(&done), vec![1080002]);
        // The used link, opened once more in yet another browser: the replacement flow is fetchable.
        let third = browser();
        let res = third.get(&link).send().await.unwrap();
        assert_eq!(res.status(), 303);
        let new_id = flow_id_from(&location(&res));
        assert_ne!(new_id, id);
        let (st, again) =
            send(third.get(s.public_url(&format!("self-service/verification/flows?id={new_id}")))).await;
        assert_eq!(st, 200, "{again}");
        assert_eq!(message_ids(&again), vec![4070002]);
        s.shutdown().await;
    }
);

both_backends!(
    verification_after_require_verified_address_login_is_fetchable,
    |b: Backend| async move {
        let mail = MailServer::start().await;
        let s = TestServer::spawn_with(
            b,
            mail.config(cfg(json!({"selfservice": {"flows": {"login": {"after": {"password": {"hooks": [{"hook": "require_verified_address"}]}}}}}}))),
        )
        .await;
        create_identity(&s, "dan@example.org", "correct horse battery").await;
        let c = browser();
        let res =
            crate::support::client::browser_login(&s, &c, "dan@example.org", "correct horse battery").await;
        assert_eq!(res.status(), 303);
        let to = location(&res);
        assert!(to.starts_with(&format!("{UI}/verification?flow=")), "{to}");
        let id = flow_id_from(&to);
        let (st, f) = send(c.get(s.public_url(&format!("self-service/verification/flows?id={id}")))).await;
        assert_eq!(st, 200, "{f}");
        s.shutdown().await;
    }
);

both_backends!(
    recovery_flow_stays_fetchable_after_the_session_is_issued,
    |b: Backend| async move {
        let mail = MailServer::start().await;
        let s = TestServer::spawn_with(b, mail.config(cfg(json!({})))).await;
        create_identity(&s, "eve@example.org", "correct horse battery").await;
        let c = browser();
        let res = c
            .get(s.public_url("self-service/recovery/browser"))
            .send()
            .await
            .unwrap();
        let id = flow_id_from(&location(&res));
        let url = s.public_url(&format!("self-service/recovery/flows?id={id}"));
        let (_, flow) = send(c.get(&url)).await;
        let action = s.public_url(&format!("self-service/recovery?flow={id}"));
        let res = c
            .post(&action)
            .form(&[
                ("method", "code"),
                ("email", "eve@example.org"),
                ("csrf_token", &csrf(&flow)),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        let code = code_in(&mail.next_to("eve@example.org").await.text_body);
        let res = c
            .post(&action)
            .form(&[("method", "code"), ("code", &code), ("csrf_token", &csrf(&flow))])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        let (st, f) = send(c.get(&url)).await;
        assert_eq!(
            st, 200,
            "the finished recovery flow as the UI fetches it again: {f}"
        );
        assert_eq!(f["state"], "passed_challenge");
        s.shutdown().await;
    }
);

both_backends!(
    admin_recovery_code_works_in_a_browser_that_never_saw_the_flow,
    |b: Backend| async move {
        let s = TestServer::spawn_with(
            b,
            cfg(json!({"selfservice": {"methods": {"code": {"enabled": true}}}})),
        )
        .await;
        let id = create_identity(&s, "fay@example.org", "correct horse battery").await;
        let (st, made) = send(
            crate::support::client::api()
                .post(s.admin_url("admin/recovery/code"))
                .json(&json!({"identity_id": id})),
        )
        .await;
        assert_eq!(st, 201, "{made}");
        let flow_id = flow_id_from(made["recovery_link"].as_str().unwrap());
        let c = browser();
        let (st, flow) =
            send(c.get(s.public_url(&format!("self-service/recovery/flows?id={flow_id}")))).await;
        assert_eq!(
            st, 200,
            "Kratos skips the CSRF check for admin-created flows: {flow}"
        );
        let res = c
            .post(s.public_url(&format!("self-service/recovery?flow={flow_id}")))
            .form(&[
                ("method", "code"),
                ("code", made["recovery_code"].as_str().unwrap()),
                ("csrf_token", &csrf(&flow)),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        assert!(
            location(&res).starts_with(&format!("{UI}/settings?flow=")),
            "{}",
            location(&res)
        );
        let (st, _) = send(c.get(s.public_url("sessions/whoami"))).await;
        assert_eq!(st, 200);
        s.shutdown().await;
    }
);
