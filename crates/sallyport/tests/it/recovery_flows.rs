//! Account recovery by code and by link, for native apps, SPAs and browsers.

use serde_json::json;

use crate::both_backends;
use crate::support::client::{
    api, body, browser, create_identity, csrf, flow_id_from, location, message_ids, node, send,
};
use crate::support::mail::{MailServer, code_in, link_in};
use crate::support::{Backend, TestServer, UI};

fn cfg(extra: serde_json::Value) -> serde_json::Value {
    let mut v = json!({"selfservice": {"flows": {"recovery": {"enabled": true, "ui_url": format!("{UI}/recovery")}}}});
    crate::support::deep_merge(&mut v, extra);
    v
}

both_backends!(spa_recovery_by_code_legacy_422, |b: Backend| async move {
    let mail = MailServer::start().await;
    let s = TestServer::spawn_with(b, mail.config(cfg(json!({})))).await;
    create_identity(&s, "vic@example.org", "correct horse battery").await;
    let c = browser();
    let (st, flow) = send(
        c.get(s.public_url("self-service/recovery/browser"))
            .header("Accept", "application/json"),
    )
    .await;
    assert_eq!(st, 200, "{flow}");
    assert_eq!(node(&flow, "email").unwrap()["attributes"]["type"], "email");
    let action = flow["ui"]["action"].as_str().unwrap().to_owned();
    let (st, sent) = send(
        c.post(&action)
            .json(&json!({"method": "code", "email": "vic@example.org", "csrf_token": csrf(&flow)})),
    )
    .await;
    assert_eq!(st, 200, "recovery answers 'sent' with 200, unlike login: {sent}");
    assert_eq!(sent["state"], "sent_email");
    assert_eq!(message_ids(&sent), vec![1060003]);
    let code = code_in(&mail.next_to("vic@example.org").await.text_body);
    // A wrong code: 200 with 4060006.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (st, f) = send(
        c.post(&action)
            .json(&json!({"method": "code", "code": wrong, "csrf_token": csrf(&sent)})),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(message_ids(&f), vec![4060006]);
    let res = c
        .post(&action)
        .json(&json!({"method": "code", "code": code, "csrf_token": csrf(&sent)}))
        .send()
        .await
        .unwrap();
    assert!(
        res.headers()
            .get_all("set-cookie")
            .iter()
            .any(|v| v.to_str().unwrap().starts_with("ory_kratos_session="))
    );
    let (st, e) = body(res).await;
    assert_eq!(st, 422, "the legacy answer to SPAs: {e}");
    assert_eq!(e["error"]["id"], "browser_location_change_required");
    let to = e["redirect_browser_to"].as_str().unwrap();
    assert!(to.starts_with(&format!("{UI}/settings?flow=")), "{to}");
    let settings_id = flow_id_from(to);
    let (st, who) = send(c.get(s.public_url("sessions/whoami"))).await;
    assert_eq!(st, 200);
    assert_eq!(who["authentication_methods"][0]["method"], "code_recovery");
    let (st, settings) =
        send(c.get(s.public_url(&format!("self-service/settings/flows?id={settings_id}")))).await;
    assert_eq!(st, 200, "{settings}");
    assert_eq!(message_ids(&settings), vec![1060001]);
    s.shutdown().await;
});

both_backends!(native_recovery_with_continue_with, |b: Backend| async move {
    let mail = MailServer::start().await;
    let s = TestServer::spawn_with(
        b,
        mail.config(cfg(
            json!({"feature_flags": {"use_continue_with_transitions": true}}),
        )),
    )
    .await;
    create_identity(&s, "wes@example.org", "correct horse battery").await;
    let c = api();
    let (_, flow) = send(c.get(s.public_url("self-service/recovery/api"))).await;
    let action = flow["ui"]["action"].as_str().unwrap().to_owned();
    // Unknown addresses get the same answer (no enumeration) and no mail.
    let (st, unknown) = send(
        c.post(&action)
            .json(&json!({"method": "code", "email": "nobody@example.org"})),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(message_ids(&unknown), vec![1060003]);
    let (st, _) = send(
        c.post(&action)
            .json(&json!({"method": "code", "email": "wes@example.org"})),
    )
    .await;
    assert_eq!(st, 200);
    let code = code_in(&mail.next_to("wes@example.org").await.text_body);
    assert!(
        mail.sink
            .messages()
            .iter()
            .all(|m| !m.to.iter().any(|t| t == "nobody@example.org"))
    );
    let (st, done) = send(c.post(&action).json(&json!({"method": "code", "code": code}))).await;
    assert_eq!(st, 200, "{done}");
    let actions: Vec<&str> = done["continue_with"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["set_ory_session_token", "show_settings_ui"]);
    let token = done["continue_with"][0]["ory_session_token"].as_str().unwrap();
    let res = c
        .get(s.public_url("sessions/whoami"))
        .header("X-Session-Token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Replaying the finished flow: 410 self_service_flow_replaced.
    let (st, e) = send(c.post(&action).json(&json!({"method": "code", "code": code}))).await;
    assert_eq!(st, 410, "{e}");
    assert_eq!(e["error"]["id"], "self_service_flow_replaced");
    s.shutdown().await;
});

both_backends!(
    browser_recovery_by_link_and_admin_links,
    |b: Backend| async move {
        let mail = MailServer::start().await;
        let s = TestServer::spawn_with(
        b,
        mail.config(cfg(json!({"selfservice": {"methods": {"link": {"enabled": true}}, "flows": {"recovery": {"use": "link"}}}}))),
    )
    .await;
        let id = create_identity(&s, "xia@example.org", "correct horse battery").await;
        let c = browser();
        let res = c
            .get(s.public_url("self-service/recovery/browser"))
            .send()
            .await
            .unwrap();
        let flow_id = flow_id_from(&location(&res));
        let (_, flow) = send(c.get(s.public_url(&format!("self-service/recovery/flows?id={flow_id}")))).await;
        let res = c
            .post(s.public_url(&format!("self-service/recovery?flow={flow_id}")))
            .form(&[
                ("method", "link"),
                ("email", "xia@example.org"),
                ("csrf_token", &csrf(&flow)),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        let m = mail.next_to("xia@example.org").await;
        let link = link_in(&m.text_body, "token=");
        let res = c.get(&link).send().await.unwrap();
        assert_eq!(res.status(), 303);
        assert!(location(&res).starts_with(&format!("{UI}/settings?flow=")));
        assert_eq!(
            c.get(s.public_url("sessions/whoami"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        // The link works once.
        let res = browser().get(&link).send().await.unwrap();
        assert!(location(&res).starts_with(&format!("{UI}/recovery?flow=")));

        // Admin-created links and codes.
        let (st, l) = send(
            api()
                .post(s.admin_url("admin/recovery/link"))
                .json(&json!({"identity_id": id, "expires_in": "10m"})),
        )
        .await;
        assert_eq!(st, 200, "{l}");
        let res = browser()
            .get(l["recovery_link"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert!(location(&res).starts_with(&format!("{UI}/settings?flow=")));
        let (st, e) = send(
            api()
                .post(s.admin_url("admin/recovery/link"))
                .json(&json!({"identity_id": uuid::Uuid::new_v4()})),
        )
        .await;
        assert_eq!(st, 400, "{e}");
        let (st, e) = send(
            api()
                .post(s.admin_url("admin/recovery/code"))
                .json(&json!({"identity_id": id, "expires_in": "not-a-valid-value"})),
        )
        .await;
        assert_eq!(st, 400);
        assert!(e["error"]["reason"].as_str().unwrap().contains("expires_in"));
        let (st, code) = send(
            api()
                .post(s.admin_url("admin/recovery/code"))
                .json(&json!({"identity_id": id, "flow_type": "api"})),
        )
        .await;
        assert_eq!(st, 201, "{code}");
        let flow = flow_id_from(code["recovery_link"].as_str().unwrap());
        let (st, redeemed) = send(
            api()
                .post(s.public_url(&format!("self-service/recovery?flow={flow}")))
                .header("content-type", "application/json")
                .json(&json!({"method": "code", "code": code["recovery_code"]})),
        )
        .await;
        assert_eq!(
            st, 422,
            "the admin code redeems like an emailed one (legacy answer for JSON): {redeemed}"
        );
        let (st, e) = send(
            api()
                .post(s.admin_url("admin/recovery/code"))
                .json(&json!({"identity_id": uuid::Uuid::new_v4()})),
        )
        .await;
        assert_eq!(st, 404);
        assert_eq!(e["error"]["reason"], "could not find identity");
        s.shutdown().await;
    }
);
