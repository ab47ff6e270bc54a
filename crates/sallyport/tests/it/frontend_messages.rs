//! Issue 8, item 4: no submission fails without saying why, and messages sit where Kratos puts them.

use serde_json::json;

use crate::both_backends;
use crate::support::client::{api, create_identity, message_ids, native_login, node, send};
use crate::support::{Backend, TestServer};

both_backends!(
    a_message_for_a_field_the_form_does_not_show_gets_a_node,
    |b: Backend| async move {
        let s = TestServer::spawn(b).await;
        let c = api();
        let (_, flow) = send(c.get(s.public_url("self-service/registration/api"))).await;
        assert!(
            node(&flow, "password").is_none(),
            "two-step: the profile form first"
        );
        let (st, bad) = send(c.post(flow["ui"]["action"].as_str().unwrap()).json(
            &json!({"method": "password", "traits": {"email": "kim@example.org"}, "password": "short"}),
        ))
        .await;
        assert_eq!(st, 400, "{bad}");
        let n = node(&bad, "password").expect("Kratos' AddMessage adds an input node for the message");
        assert_eq!(n["type"], "input");
        assert_eq!(n["group"], "default");
        assert_eq!(n["attributes"]["type"], "text");
        let ids: Vec<i64> = n["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_i64().unwrap())
            .collect();
        assert!(!ids.is_empty(), "{bad}");
        assert!(ids.iter().all(|id| (4000000..5000000).contains(id)), "{ids:?}");
        s.shutdown().await;
    }
);

both_backends!(aal2_login_errors_are_flow_messages, |b: Backend| async move {
    let s = TestServer::spawn_with(
        b,
        json!({"selfservice": {"methods": {"totp": {"enabled": true}, "lookup_secret": {"enabled": true}}}}),
    )
    .await;
    create_identity(&s, "lee@example.org", "correct horse battery").await;
    let (_, login) = native_login(&s, "lee@example.org", "correct horse battery").await;
    let token = login["session_token"].as_str().unwrap();
    let c = api();
    let attempt = |payload: serde_json::Value| {
        let c = c.clone();
        let s = &s;
        async move {
            let (_, flow) = send(
                c.get(s.public_url("self-service/login/api?aal=aal2"))
                    .header("X-Session-Token", token),
            )
            .await;
            send(
                c.post(flow["ui"]["action"].as_str().unwrap())
                    .header("X-Session-Token", token)
                    .json(&payload),
            )
            .await
        }
    };
    let (st, e) = attempt(json!({"method": "totp", "totp_code": "123456"})).await;
    assert_eq!(st, 400, "{e}");
    assert_eq!(message_ids(&e), vec![4000011], "no TOTP device, on the flow: {e}");
    let (st, e) = attempt(json!({"method": "lookup_secret", "lookup_secret": "abcdefgh"})).await;
    assert_eq!(st, 400, "{e}");
    assert_eq!(
        message_ids(&e),
        vec![4000014],
        "no backup codes, on the flow: {e}"
    );
    s.shutdown().await;
});

both_backends!(
    login_identifier_is_labelled_with_the_only_identifier_trait,
    |b: Backend| async move {
        let s = TestServer::spawn_with(
            b,
            json!({"selfservice": {"methods": {"code": {"enabled": true, "passwordless_enabled": true}}}}),
        )
        .await;
        let (_, flow) = send(api().get(s.public_url("self-service/login/api"))).await;
        let label = &node(&flow, "identifier").unwrap()["meta"]["label"];
        assert_eq!(
            label,
            &json!({"id": 1070002, "text": "E-Mail", "type": "info", "context": {"title": "E-Mail", "name": "traits.email"}}),
            "{flow}"
        );
        s.shutdown().await;
    }
);
