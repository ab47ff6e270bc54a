//! Address verification by code and link, and the hooks that start it after registration and login.

use serde_json::json;

use crate::both_backends;
use crate::support::client::{
    api, browser, create_identity, csrf, flow_id_from, location, message_ids, native_login, node, send,
};
use crate::support::mail::{MailServer, code_in, link_in};
use crate::support::{Backend, TestServer, UI};

fn cfg(extra: serde_json::Value) -> serde_json::Value {
    let mut v = json!({"selfservice": {"flows": {
        "verification": {"enabled": true, "ui_url": format!("{UI}/verification")},
        "registration": {"enable_legacy_one_step": true},
    }}});
    crate::support::deep_merge(&mut v, extra);
    v
}

both_backends!(
    registration_sends_verification_and_code_verifies,
    |b: Backend| async move {
        let mail = MailServer::start().await;
        let s = TestServer::spawn_with(b, mail.config(cfg(json!({})))).await;
        let c = api();
        let (_, flow) = send(c.get(s.public_url("self-service/registration/api"))).await;
        let (st, reg) = send(c.post(flow["ui"]["action"].as_str().unwrap())
            .json(&json!({"method": "password", "password": "a-strong-passw0rd!", "traits": {"email": "yan@example.org"}}))).await;
        assert_eq!(st, 200, "{reg}");
        let item = reg["continue_with"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["action"] == "show_verification_ui")
            .expect("verification continue_with")
            .clone();
        assert_eq!(item["flow"]["verifiable_address"], "yan@example.org");
        let vflow = item["flow"]["id"].as_str().unwrap().to_owned();
        let m = mail.next_to("yan@example.org").await;
        let code = code_in(&m.text_body);
        assert!(
            m.text_body.contains(&format!("flow={vflow}")),
            "the mail carries the verification URL: {}",
            m.text_body
        );
        let (st, f) = send(c.get(s.public_url(&format!("self-service/verification/flows?id={vflow}")))).await;
        assert_eq!(st, 200);
        assert_eq!(f["state"], "sent_email");
        let action = f["ui"]["action"].as_str().unwrap().to_owned();
        let (st, wrong) = send(c.post(&action).json(&json!({"method": "code", "code": "12345x"}))).await;
        assert_eq!(st, 200);
        assert_eq!(message_ids(&wrong), vec![4070006]);
        let (st, ok) = send(c.post(&action).json(&json!({"method": "code", "code": code}))).await;
        assert_eq!(st, 200, "{ok}");
        assert_eq!(ok["state"], "passed_challenge");
        assert_eq!(message_ids(&ok), vec![1080002]);
        assert_eq!(ok["ui"]["method"], "GET");
        assert!(
            ok["ui"]["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["type"] == "a" && n["attributes"]["id"] == "continue")
        );
        let id = reg["identity"]["id"].as_str().unwrap();
        let (_, ident) = send(c.get(s.admin_url(&format!("admin/identities/{id}")))).await;
        assert_eq!(ident["verifiable_addresses"][0]["verified"], true);
        assert_eq!(ident["verifiable_addresses"][0]["status"], "completed");
        let (st, e) = send(c.post(&action).json(&json!({"method": "code", "code": code}))).await;
        assert_eq!(st, 410);
        assert_eq!(e["error"]["id"], "self_service_flow_replaced");
        s.shutdown().await;
    }
);

both_backends!(
    browser_verification_link_and_code_link_prefill,
    |b: Backend| async move {
        let mail = MailServer::start().await;
        let s = TestServer::spawn_with(b, mail.config(cfg(json!({})))).await;
        create_identity(&s, "zed@example.org", "correct horse battery").await;
        let c = browser();
        let res = c
            .get(s.public_url("self-service/verification/browser"))
            .send()
            .await
            .unwrap();
        let id = flow_id_from(&location(&res));
        let (_, flow) = send(c.get(s.public_url(&format!("self-service/verification/flows?id={id}")))).await;
        let res = c
            .post(s.public_url(&format!("self-service/verification?flow={id}")))
            .form(&[
                ("method", "code"),
                ("email", "zed@example.org"),
                ("csrf_token", &csrf(&flow)),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        let m = mail.next_to("zed@example.org").await;
        let link = link_in(&m.text_body, "code=");
        let res = c.get(&link).send().await.unwrap();
        assert_eq!(res.status(), 303);
        assert_eq!(location(&res), format!("{UI}/verification?flow={id}"));
        let (_, flow) = send(c.get(s.public_url(&format!("self-service/verification/flows?id={id}")))).await;
        assert_eq!(
            node(&flow, "code").unwrap()["attributes"]["value"],
            code_in(&m.text_body),
            "the link pre-fills the code"
        );
        s.shutdown().await;
    }
);

both_backends!(require_verified_address_on_login, |b: Backend| async move {
    let mail = MailServer::start().await;
    let s = TestServer::spawn_with(b, mail.config(cfg(json!({"selfservice": {"flows": {"login": {"after": {"password": {"hooks": [{"hook": "require_verified_address"}]}}}}}})))).await;
    create_identity(&s, "amy@example.org", "correct horse battery").await;
    let (st, e) = native_login(&s, "amy@example.org", "correct horse battery").await;
    assert_eq!(st, 403, "{e}");
    assert_eq!(e["error"]["id"], "session_verified_address_required");
    let item = &e["error"]["details"]["continue_with"][0];
    assert_eq!(item["action"], "show_verification_ui");
    let code = code_in(&mail.next_to("amy@example.org").await.text_body);
    let c = api();
    let vflow = item["flow"]["id"].as_str().unwrap();
    let (st, _) = send(
        c.post(s.public_url(&format!("self-service/verification?flow={vflow}")))
            .json(&json!({"method": "code", "code": code})),
    )
    .await;
    assert_eq!(st, 200);
    let (st, ok) = native_login(&s, "amy@example.org", "correct horse battery").await;
    assert_eq!(st, 200, "{ok}");
    s.shutdown().await;
});
