//! Security keys as a second factor (Kratos' `webauthn` method): enrol in settings, step up an aal1
//! session on an `aal=aal2` login flow, counted by `highest_available` and the MFA policy.

use reqwest::Client;
use serde_json::{Value, json};

use sallyport_webauthn::soft::SoftAuthenticator;

use crate::both_backends;
use crate::support::client::{api, browser, browser_login, csrf, message_ids, node, send};
use crate::support::{Backend, TestServer, fixture};

const ORIGIN: &str = "https://id.example.org";
const PASSWORD: &str = "correct horse battery";

fn config(whoami: &str) -> Value {
    json!({
        "selfservice": {"methods": {"webauthn": {"enabled": true, "config": {"rp": {
            "id": "id.example.org", "display_name": "Example", "origins": [ORIGIN]
        }}}}},
        "session": {"whoami": {"required_aal": whoami}},
        "identity": {"default_schema_id": "default", "schemas": [
            {"id": "default", "url": format!("file://{}", fixture("passkey.schema.json").display())}
        ]},
    })
}

async fn new_identity(s: &TestServer, email: &str, metadata_admin: Value) -> String {
    let (st, v) = send(api().post(s.admin_url("admin/identities")).json(&json!({
        "schema_id": "default",
        "traits": {"email": email},
        "metadata_admin": metadata_admin,
        "credentials": {"password": {"config": {"password": PASSWORD}}},
    })))
    .await;
    assert_eq!(st, 201, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

async fn spa_get(s: &TestServer, c: &Client, path: &str) -> Value {
    let (st, flow) = send(c.get(s.public_url(path)).header("Accept", "application/json")).await;
    assert_eq!(st, 200, "{flow}");
    flow
}

fn trigger_options(flow: &Value, name: &str) -> Value {
    let n = node(flow, name).unwrap_or_else(|| panic!("no {name} in {flow}"));
    serde_json::from_str(n["attributes"]["value"].as_str().unwrap()).unwrap()
}

/// Adds a security key in settings with an SPA request.
async fn enrol(s: &TestServer, c: &Client, a: &mut SoftAuthenticator) -> Value {
    let flow = spa_get(s, c, "self-service/settings/browser").await;
    let trigger = node(&flow, "webauthn_register_trigger").unwrap();
    assert_eq!(trigger["attributes"]["onclickTrigger"], "oryWebAuthnRegistration");
    assert!(
        trigger["attributes"]["onclick"]
            .as_str()
            .unwrap()
            .starts_with("window.oryWebAuthnRegistration({")
    );
    assert_eq!(trigger["meta"]["label"]["id"], 1050012);
    assert!(node(&flow, "webauthn_register_displayname").is_some());
    let options = trigger_options(&flow, "webauthn_register_trigger");
    let (st, v) = send(c.post(flow["ui"]["action"].as_str().unwrap()).json(&json!({
        "csrf_token": csrf(&flow),
        "webauthn_register_displayname": "Blue key",
        "webauthn_register": a.create(&options, ORIGIN).to_string(),
    })))
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["state"], "success");
    v
}

async fn step_up(
    s: &TestServer,
    c: &Client,
    sign: impl FnOnce(&Value) -> Value,
) -> (reqwest::StatusCode, Value) {
    let flow = spa_get(s, c, "self-service/login/browser?aal=aal2").await;
    let assertion = sign(&trigger_options(&flow, "webauthn_login_trigger"));
    send(c.post(flow["ui"]["action"].as_str().unwrap()).json(&json!({
        "csrf_token": csrf(&flow),
        "webauthn_login": assertion.to_string(),
    })))
    .await
}

both_backends!(
    a_security_key_steps_an_aal1_session_up_to_aal2,
    |b: Backend| async move {
        let s = TestServer::spawn_with(b, config("highest_available")).await;
        let id = new_identity(&s, "kim@example.org", Value::Null).await;
        let mut a = SoftAuthenticator::new();
        let c = browser();
        assert_eq!(
            browser_login(&s, &c, "kim@example.org", PASSWORD).await.status(),
            303
        );
        let saved = enrol(&s, &c, &mut a).await;
        let remove = node(&saved, "webauthn_remove").unwrap();
        assert_eq!(remove["meta"]["label"]["id"], 1050018);
        assert_eq!(remove["meta"]["label"]["context"]["display_name"], "Blue key");
        // Enrolling counts as using the key: this session is aal2 now.
        let (st, who) = send(c.get(s.public_url("sessions/whoami"))).await;
        assert_eq!(st, 200, "{who}");
        assert_eq!(who["authenticator_assurance_level"], "aal2");

        let (_, i) =
            send(api().get(s.admin_url(&format!("admin/identities/{id}?include_credential=webauthn")))).await;
        let cred = &i["credentials"]["webauthn"];
        assert_eq!(cred["identifiers"][0], "kim@example.org");
        assert_eq!(cred["config"]["credentials"][0]["is_passwordless"], false);
        assert_eq!(cred["config"]["credentials"][0]["display_name"], "Blue key");
        use base64::Engine;
        let handle = base64::engine::general_purpose::STANDARD
            .decode(cred["config"]["user_handle"].as_str().unwrap())
            .unwrap();
        assert_eq!(handle, uuid::Uuid::parse_str(&id).unwrap().as_bytes());

        // A new password session is aal1 and highest_available wants aal2.
        let c = browser();
        assert_eq!(
            browser_login(&s, &c, "kim@example.org", PASSWORD).await.status(),
            303
        );
        let (st, e) = send(c.get(s.public_url("sessions/whoami"))).await;
        assert_eq!(st, 403, "{e}");
        assert_eq!(e["error"]["id"], "session_aal2_required");

        // A wrong origin does not step up.
        let (st, v) = step_up(&s, &c, |o| a.get(o, "https://evil.example", None)).await;
        assert_eq!(st, 400, "{v}");
        assert_eq!(message_ids(&v), vec![4000043]);

        let (st, v) = step_up(&s, &c, |o| a.get(o, ORIGIN, None)).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["session"]["authenticator_assurance_level"], "aal2");
        let methods: Vec<&str> = v["session"]["authentication_methods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["method"].as_str().unwrap())
            .collect();
        assert_eq!(methods, ["password", "webauthn"]);
        let (st, _) = send(c.get(s.public_url("sessions/whoami"))).await;
        assert_eq!(st, 200);
        s.shutdown().await;
    }
);

both_backends!(native_flows_get_kratos_answers, |b: Backend| async move {
    let s = TestServer::spawn_with(b, config("aal1")).await;
    new_identity(&s, "nat@example.org", Value::Null).await;
    let (st, v) = crate::support::client::native_login(&s, "nat@example.org", PASSWORD).await;
    assert_eq!(st, 200);
    let token = v["session_token"].as_str().unwrap().to_owned();
    let c = api();
    let (st, flow) = send(
        c.get(s.public_url("self-service/settings/api"))
            .header("X-Session-Token", &token),
    )
    .await;
    assert_eq!(st, 200);
    assert!(
        !flow.to_string().contains("webauthn_register"),
        "no security keys on API flows"
    );
    let (st, v) = send(
        c.post(flow["ui"]["action"].as_str().unwrap())
            .header("X-Session-Token", &token)
            .json(&json!({"method": "webauthn", "webauthn_register": "{}"})),
    )
    .await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(message_ids(&v), vec![4000001]);
    let (st, flow) = send(
        c.get(s.public_url("self-service/login/api?aal=aal2"))
            .header("X-Session-Token", &token),
    )
    .await;
    assert_eq!(st, 200, "{flow}");
    let (st, v) = send(
        c.post(flow["ui"]["action"].as_str().unwrap())
            .header("X-Session-Token", &token)
            .json(&json!({"method": "webauthn", "webauthn_login": "{}"})),
    )
    .await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(message_ids(&v), vec![4010002]);
    s.shutdown().await;
});

both_backends!(the_mfa_policy_counts_security_keys, |b: Backend| async move {
    let s = TestServer::spawn_with(b, config("aal1")).await;
    new_identity(&s, "pol@example.org", json!({"sallyport": {"require_mfa": true}})).await;
    let c = browser();
    browser_login(&s, &c, "pol@example.org", PASSWORD).await;
    let (st, e) = send(c.get(s.public_url("sessions/whoami"))).await;
    assert_eq!(st, 403);
    assert_eq!(e["error"]["id"], "session_mfa_enrollment_required");
    let mut a = SoftAuthenticator::new();
    enrol(&s, &c, &mut a).await;

    // Enrolled: the next password session is asked for the key, not for enrolment.
    let c = browser();
    browser_login(&s, &c, "pol@example.org", PASSWORD).await;
    let (st, e) = send(c.get(s.public_url("sessions/whoami"))).await;
    assert_eq!(st, 403);
    assert_eq!(e["error"]["id"], "session_aal2_required");
    let (st, v) = step_up(&s, &c, |o| a.get(o, ORIGIN, None)).await;
    assert_eq!(st, 200, "{v}");
    let (st, _) = send(c.get(s.public_url("sessions/whoami"))).await;
    assert_eq!(st, 200);

    // Removing the only second factor is refused while the policy binds the identity.
    let flow = spa_get(&s, &c, "self-service/settings/browser").await;
    let hex = node(&flow, "webauthn_remove").unwrap()["attributes"]["value"].clone();
    let (st, v) = send(
        c.post(flow["ui"]["action"].as_str().unwrap())
            .json(&json!({"csrf_token": csrf(&flow), "webauthn_remove": hex})),
    )
    .await;
    assert_eq!(st, 400, "{v}");
    s.shutdown().await;
});

both_backends!(
    legacy_passwordless_keys_sign_in_after_the_identifier,
    |b: Backend| async move {
        let mut cfg = config("aal1");
        crate::support::deep_merge(
            &mut cfg,
            json!({"selfservice": {"methods": {"webauthn": {"config": {"passwordless": true}}}}}),
        );
        let s = TestServer::spawn_with(b, cfg).await;
        let id = new_identity(&s, "lee@example.org", Value::Null).await;
        let mut a = SoftAuthenticator::new();
        let c = browser();
        assert_eq!(
            browser_login(&s, &c, "lee@example.org", PASSWORD).await.status(),
            303
        );
        enrol(&s, &c, &mut a).await;
        let (_, i) =
            send(api().get(s.admin_url(&format!("admin/identities/{id}?include_credential=webauthn")))).await;
        assert_eq!(
            i["credentials"]["webauthn"]["config"]["credentials"][0]["is_passwordless"],
            true
        );

        let c = browser();
        let flow = spa_get(&s, &c, "self-service/login/browser").await;
        let method = flow["ui"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["group"] == "webauthn" && n["attributes"]["value"] == "webauthn")
            .expect("a method=webauthn button");
        assert_eq!(method["meta"]["label"]["id"], 1010008);
        let action = flow["ui"]["action"].as_str().unwrap().to_owned();
        // An identifier nobody has: 4000015.
        let (st, v) = send(c.post(&action).json(&json!({
            "csrf_token": csrf(&flow), "method": "webauthn", "identifier": "nobody@example.org"
        })))
        .await;
        assert_eq!(st, 400, "{v}");
        assert_eq!(message_ids(&v), vec![4000015]);
        // The identifier first: the flow now offers the account's keys.
        let (st, v) = send(c.post(&action).json(&json!({
            "csrf_token": csrf(&flow), "method": "webauthn", "identifier": "lee@example.org"
        })))
        .await;
        assert_eq!(st, 422, "{v}");
        assert_eq!(v["error"]["id"], "browser_location_change_required");
        let flow = spa_get(
            &s,
            &c,
            &format!("self-service/login/flows?id={}", flow["id"].as_str().unwrap()),
        )
        .await;
        assert_eq!(message_ids(&flow), vec![1010012]);
        assert_eq!(
            node(&flow, "identifier").unwrap()["attributes"]["value"],
            "lee@example.org"
        );
        let options = trigger_options(&flow, "webauthn_login_trigger");
        assert_eq!(
            options["publicKey"]["allowCredentials"].as_array().unwrap().len(),
            1
        );
        let (st, v) = send(c.post(&action).json(&json!({
            "csrf_token": csrf(&flow),
            "identifier": "lee@example.org",
            "webauthn_login": a.get(&options, ORIGIN, None).to_string(),
        })))
        .await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["session"]["authenticator_assurance_level"], "aal1");
        assert_eq!(v["session"]["authentication_methods"][0]["method"], "webauthn");
        s.shutdown().await;
    }
);

both_backends!(
    a_changed_identifier_trait_moves_the_key_identifier,
    |b: Backend| async move {
        let mut cfg = config("aal1");
        crate::support::deep_merge(
            &mut cfg,
            json!({"selfservice": {"methods": {"webauthn": {"config": {"passwordless": true}}}}}),
        );
        let s = TestServer::spawn_with(b, cfg).await;
        let id = new_identity(&s, "old@example.org", Value::Null).await;
        let c = browser();
        browser_login(&s, &c, "old@example.org", PASSWORD).await;
        enrol(&s, &c, &mut SoftAuthenticator::new()).await;
        let flow = spa_get(&s, &c, "self-service/settings/browser").await;
        let (st, v) = send(c.post(flow["ui"]["action"].as_str().unwrap()).json(&json!({
            "csrf_token": csrf(&flow), "method": "profile", "traits": {"email": "new@example.org"}
        })))
        .await;
        assert_eq!(st, 200, "{v}");
        let (_, i) =
            send(api().get(s.admin_url(&format!("admin/identities/{id}?include_credential=webauthn")))).await;
        assert_eq!(
            i["credentials"]["webauthn"]["identifiers"],
            json!(["new@example.org"])
        );
        s.shutdown().await;
    }
);

both_backends!(
    legacy_passwordless_sign_up_with_a_security_key,
    |b: Backend| async move {
        let mut cfg = config("aal1");
        crate::support::deep_merge(
            &mut cfg,
            json!({"selfservice": {
                "methods": {"webauthn": {"config": {"passwordless": true}}},
                "flows": {"registration": {"style": "unified", "after": {"webauthn": {"hooks": [{"hook": "session"}]}}}},
            }}),
        );
        let s = TestServer::spawn_with(b, cfg).await;
        let c = browser();
        let flow = spa_get(&s, &c, "self-service/registration/browser").await;
        let trigger = node(&flow, "webauthn_register_trigger").expect("sign up with security key");
        assert_eq!(trigger["meta"]["label"]["id"], 1040004);
        let options = trigger_options(&flow, "webauthn_register_trigger");
        let mut a = SoftAuthenticator::new();
        let (st, v) = send(c.post(flow["ui"]["action"].as_str().unwrap()).json(&json!({
            "csrf_token": csrf(&flow),
            "traits": {"email": "sue@example.org"},
            "webauthn_register_displayname": "Yubi",
            "webauthn_register": a.create(&options, ORIGIN).to_string(),
        })))
        .await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["session"]["authentication_methods"][0]["method"], "webauthn");
        let id = v["identity"]["id"].as_str().unwrap();
        let (_, i) =
            send(api().get(s.admin_url(&format!("admin/identities/{id}?include_credential=webauthn")))).await;
        let cred = &i["credentials"]["webauthn"];
        assert_eq!(cred["identifiers"], json!(["sue@example.org"]));
        assert_eq!(cred["config"]["credentials"][0]["is_passwordless"], true);
        assert_eq!(cred["config"]["credentials"][0]["display_name"], "Yubi");

        // Not on API flows.
        let (_, api_flow) = send(api().get(s.public_url("self-service/registration/api"))).await;
        assert!(node(&api_flow, "webauthn_register_trigger").is_none());
        s.shutdown().await;
    }
);
