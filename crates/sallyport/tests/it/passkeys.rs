//! Passkeys (Kratos' `passkey` method) with a software authenticator that keeps discoverable
//! credentials: sign up with a passkey only, sign in with no identifier, settings, bad input.

use reqwest::Client;
use serde_json::{Value, json};

use sallyport_webauthn::soft::SoftAuthenticator;

use crate::both_backends;
use crate::support::client::{api, body, browser, create_identity, csrf, message_ids, node, send};
use crate::support::{Backend, TestServer, fixture};

const ORIGIN: &str = "https://id.example.org";

fn config() -> Value {
    json!({
        "selfservice": {
            "methods": {"passkey": {"enabled": true, "config": {"rp": {
                "id": "id.example.org", "display_name": "Example", "origins": [ORIGIN]
            }}}},
            "flows": {
                "registration": {"style": "unified", "after": {"passkey": {"hooks": [{"hook": "session"}]}}},
            },
        },
        "identity": {"default_schema_id": "default", "schemas": [
            {"id": "default", "url": format!("file://{}", fixture("passkey.schema.json").display())}
        ]},
    })
}

async fn spawn(b: Backend) -> TestServer {
    TestServer::spawn_with(b, config()).await
}

fn value_json(flow: &Value, name: &str) -> Value {
    let raw = node(flow, name).unwrap_or_else(|| panic!("no {name} node in {flow}"))["attributes"]["value"]
        .as_str()
        .unwrap_or_else(|| panic!("{name} has no string value"))
        .to_owned();
    serde_json::from_str(&raw).unwrap()
}

fn has_session_cookie(res: &reqwest::Response) -> bool {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .any(|v| v.to_str().unwrap().starts_with("ory_kratos_session="))
}

async fn spa_flow(s: &TestServer, c: &Client, kind: &str) -> Value {
    let (st, flow) = send(
        c.get(s.public_url(&format!("self-service/{kind}/browser")))
            .header("Accept", "application/json"),
    )
    .await;
    assert_eq!(st, 200, "{flow}");
    flow
}

/// SPA sign-up with a passkey only; returns the identity id.
async fn spa_register(s: &TestServer, c: &Client, a: &mut SoftAuthenticator, email: &str) -> String {
    let flow = spa_flow(s, c, "registration").await;
    let create = value_json(&flow, "passkey_create_data");
    assert_eq!(create["displayNameFieldName"], "traits.email");
    let response = a.create(&create["credentialOptions"], ORIGIN);
    let res = c
        .post(flow["ui"]["action"].as_str().unwrap())
        .json(&json!({
            "csrf_token": csrf(&flow),
            "traits": {"email": email},
            "passkey_register": response.to_string(),
        }))
        .send()
        .await
        .unwrap();
    assert!(has_session_cookie(&res));
    let (st, v) = body(res).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["session"]["authentication_methods"][0]["method"], "passkey");
    v["identity"]["id"].as_str().unwrap().to_owned()
}

/// One SPA passkey sign-in attempt on a fresh flow; the assertion is built by `sign`.
async fn spa_login_with(
    s: &TestServer,
    sign: impl FnOnce(&Value) -> Value,
) -> (reqwest::StatusCode, Value, bool) {
    let c = browser();
    let flow = spa_flow(s, &c, "login").await;
    let assertion = sign(&value_json(&flow, "passkey_challenge"));
    let res = c
        .post(flow["ui"]["action"].as_str().unwrap())
        .json(&json!({"csrf_token": csrf(&flow), "passkey_login": assertion.to_string()}))
        .send()
        .await
        .unwrap();
    let cookie = has_session_cookie(&res);
    let (st, v) = body(res).await;
    (st, v, cookie)
}

async fn passkey_config(s: &TestServer, id: &str) -> Value {
    let (st, i) =
        send(api().get(s.admin_url(&format!("admin/identities/{id}?include_credential=passkey")))).await;
    assert_eq!(st, 200, "{i}");
    i["credentials"]["passkey"].clone()
}

both_backends!(
    spa_sign_up_and_sign_in_with_a_passkey_only,
    |b: Backend| async move {
        let s = spawn(b).await;
        let mut a = SoftAuthenticator::new();
        let c = browser();
        let flow = spa_flow(&s, &c, "registration").await;
        let trigger = node(&flow, "passkey_register_trigger").unwrap();
        assert_eq!(trigger["attributes"]["onclickTrigger"], "oryPasskeyRegistration");
        assert_eq!(
            trigger["attributes"]["onclick"],
            "window.oryPasskeyRegistration()"
        );
        assert_eq!(trigger["meta"]["label"]["id"], 1040007);
        let script = flow["ui"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["attributes"]["id"] == "webauthn_script")
            .expect("script node");
        assert!(
            script["attributes"]["src"]
                .as_str()
                .unwrap()
                .ends_with("/.well-known/ory/webauthn.js")
        );
        assert!(
            script["attributes"]["integrity"]
                .as_str()
                .unwrap()
                .starts_with("sha512-")
        );

        let id = spa_register(&s, &c, &mut a, "pia@example.org").await;
        let cred = passkey_config(&s, &id).await;
        let handle = cred["identifiers"][0].as_str().unwrap();
        assert_eq!(handle.len(), 64);
        assert_eq!(cred["version"], 1);
        let cfg = &cred["config"];
        assert_eq!(cfg["credentials"][0]["is_passwordless"], true);
        assert_eq!(cfg["credentials"][0]["attestation_type"], "none");
        // Stored as Kratos stores it: standard base64 of the raw handle.
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(cfg["user_handle"].as_str().unwrap())
            .unwrap();
        assert_eq!(raw, handle.as_bytes());

        // Sign in with no identifier: the authenticator picks the credential, its user handle names the account.
        let (st, v, cookie) = spa_login_with(&s, |o| a.get(o, ORIGIN, None)).await;
        assert_eq!(st, 200, "{v}");
        assert!(cookie);
        assert_eq!(v["session"]["identity"]["id"], id.as_str());
        assert_eq!(v["session"]["authenticator_assurance_level"], "aal1");
        assert_eq!(v["session"]["authentication_methods"][0]["method"], "passkey");
        let cfg = passkey_config(&s, &id).await["config"].clone();
        assert_eq!(cfg["credentials"][0]["authenticator"]["sign_count"], 1);
        assert_eq!(cfg["credentials"][0]["authenticator"]["clone_warning"], false);

        // The script the nodes name is served.
        let res = api()
            .get(s.public_url(".well-known/ory/webauthn.js"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/javascript")
        );
        let js = res.text().await.unwrap();
        for f in [
            "PasskeyLogin",
            "PasskeyLoginAutocompleteInit",
            "PasskeyRegistration",
            "PasskeySettingsRegistration",
            "WebAuthnLogin",
            "WebAuthnRegistration",
        ] {
            assert!(js.contains(f), "{f}");
        }
        s.shutdown().await;
    }
);

both_backends!(browser_form_posts_sign_up_and_sign_in, |b: Backend| async move {
    let s = spawn(b).await;
    let mut a = SoftAuthenticator::new();
    let c = browser();
    let res = c
        .get(s.public_url("self-service/registration/browser"))
        .send()
        .await
        .unwrap();
    let id = crate::support::client::flow_id_from(&crate::support::client::location(&res));
    let (_, flow) = send(c.get(s.public_url(&format!("self-service/registration/flows?id={id}")))).await;
    let create = value_json(&flow, "passkey_create_data");
    let response = a.create(&create["credentialOptions"], ORIGIN);
    let res = c
        .post(flow["ui"]["action"].as_str().unwrap())
        .form(&[
            ("csrf_token", csrf(&flow).as_str()),
            ("traits.email", "bo@example.org"),
            ("passkey_register", response.to_string().as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(has_session_cookie(&res));

    let c = browser();
    let res = c
        .get(s.public_url("self-service/login/browser"))
        .send()
        .await
        .unwrap();
    let id = crate::support::client::flow_id_from(&crate::support::client::location(&res));
    let (_, flow) = send(c.get(s.public_url(&format!("self-service/login/flows?id={id}")))).await;
    let login = node(&flow, "passkey_login").unwrap();
    assert_eq!(
        login["attributes"]["onloadTrigger"],
        "oryPasskeyLoginAutocompleteInit"
    );
    assert_eq!(
        node(&flow, "identifier").unwrap()["attributes"]["autocomplete"],
        "username webauthn"
    );
    let assertion = a.get(&value_json(&flow, "passkey_challenge"), ORIGIN, None);
    let res = c
        .post(flow["ui"]["action"].as_str().unwrap())
        .form(&[
            ("csrf_token", csrf(&flow).as_str()),
            ("passkey_login", assertion.to_string().as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(has_session_cookie(&res));
    let (st, who) = send(c.get(s.public_url("sessions/whoami"))).await;
    assert_eq!(st, 200);
    assert_eq!(who["identity"]["traits"]["email"], "bo@example.org");
    s.shutdown().await;
});

both_backends!(
    native_apps_sign_up_and_sign_in_with_a_passkey,
    |b: Backend| async move {
        let s = spawn(b).await;
        let mut a = SoftAuthenticator::new();
        let c = api();
        let (_, flow) = send(c.get(s.public_url("self-service/registration/api"))).await;
        let trigger = node(&flow, "passkey_register_trigger").unwrap();
        assert_eq!(trigger["attributes"]["onclickTrigger"], "oryPasskeyRegistration");
        assert!(trigger["attributes"].get("onclick").is_none());
        assert!(!flow.to_string().contains("webauthn_script"));
        let create = value_json(&flow, "passkey_create_data");
        let response = a.create(&create["credentialOptions"], ORIGIN);
        let (st, v) = send(c.post(flow["ui"]["action"].as_str().unwrap()).json(&json!({
            "method": "passkey",
            "traits": {"email": "nat@example.org"},
            "passkey_register": response.to_string(),
        })))
        .await;
        assert_eq!(st, 200, "{v}");
        assert!(v["session_token"].is_string());

        let (_, flow) = send(c.get(s.public_url("self-service/login/api"))).await;
        assert!(
            node(&flow, "passkey_login").unwrap()["attributes"]
                .get("onload")
                .is_none()
        );
        let assertion = a.get(&value_json(&flow, "passkey_challenge"), ORIGIN, None);
        let (st, v) = send(c.post(flow["ui"]["action"].as_str().unwrap()).json(&json!({
            "method": "passkey",
            "passkey_login": assertion.to_string(),
        })))
        .await;
        assert_eq!(st, 200, "{v}");
        // The challenge answers once: the same assertion on the same flow again is refused.
        let (st, again) = send(c.post(flow["ui"]["action"].as_str().unwrap()).json(&json!({
            "method": "passkey",
            "passkey_login": assertion.to_string(),
        })))
        .await;
        assert_eq!(st, 400, "{again}");
        assert_eq!(message_ids(&again), vec![4000043]);
        assert!(again.get("session_token").is_none());
        let token = v["session_token"].as_str().unwrap();
        let (st, who) = send(
            c.get(s.public_url("sessions/whoami"))
                .header("X-Session-Token", token),
        )
        .await;
        assert_eq!(st, 200);
        assert_eq!(who["authentication_methods"][0]["method"], "passkey");
        s.shutdown().await;
    }
);

async fn spa_settings(s: &TestServer, c: &Client) -> Value {
    spa_flow(s, c, "settings").await
}

async fn spa_settings_post(c: &Client, flow: &Value, extra: Value) -> (reqwest::StatusCode, Value) {
    let mut b = json!({"csrf_token": csrf(flow)});
    crate::support::deep_merge(&mut b, extra);
    send(c.post(flow["ui"]["action"].as_str().unwrap()).json(&b)).await
}

both_backends!(
    settings_add_and_remove_passkeys_keeping_the_last,
    |b: Backend| async move {
        let s = spawn(b).await;
        create_identity(&s, "sam@example.org", "correct horse battery").await;
        let c = browser();
        let res =
            crate::support::client::browser_login(&s, &c, "sam@example.org", "correct horse battery").await;
        assert_eq!(res.status(), 303);
        let mut a = SoftAuthenticator::new();

        let flow = spa_settings(&s, &c).await;
        let trigger = node(&flow, "passkey_register_trigger").unwrap();
        assert_eq!(
            trigger["attributes"]["onclickTrigger"],
            "oryPasskeySettingsRegistration"
        );
        assert_eq!(trigger["meta"]["label"]["id"], 1050019);
        assert!(node(&flow, "passkey_remove").is_none());
        let options = value_json(&flow, "passkey_create_data");
        assert_eq!(options["publicKey"]["user"]["name"], "sam@example.org");
        let (st, v) = spa_settings_post(
            &c,
            &flow,
            json!({"passkey_settings_register": a.create(&options, ORIGIN).to_string()}),
        )
        .await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["state"], "success");
        let remove = node(&v, "passkey_remove").expect("remove button");
        assert_eq!(remove["attributes"]["disabled"], false);
        assert_eq!(remove["meta"]["label"]["id"], 1050020);
        // The new options exclude the passkey just added.
        let next = value_json(&v, "passkey_create_data");
        assert_eq!(
            next["publicKey"]["excludeCredentials"].as_array().unwrap().len(),
            1
        );

        // The passkey now signs in on its own.
        let (st, v2, _) = spa_login_with(&s, |o| a.get(o, ORIGIN, None)).await;
        assert_eq!(st, 200, "{v2}");
        assert_eq!(v2["session"]["identity"]["traits"]["email"], "sam@example.org");

        // Remove it again: the password remains.
        let hex = remove["attributes"]["value"].as_str().unwrap().to_owned();
        let flow = spa_settings(&s, &c).await;
        let (st, v) = spa_settings_post(&c, &flow, json!({"passkey_remove": hex})).await;
        assert_eq!(st, 200, "{v}");
        assert!(node(&v, "passkey_remove").is_none());
        let (st, _, cookie) = spa_login_with(&s, |o| a.get(o, ORIGIN, None)).await;
        assert_eq!(st, 400);
        assert!(!cookie);
        s.shutdown().await;
    }
);

both_backends!(the_last_passkey_cannot_be_removed, |b: Backend| async move {
    let s = spawn(b).await;
    let c = browser();
    let mut a = SoftAuthenticator::new();
    spa_register(&s, &c, &mut a, "only@example.org").await;
    let flow = spa_settings(&s, &c).await;
    let remove = node(&flow, "passkey_remove").unwrap();
    assert_eq!(remove["attributes"]["disabled"], true);
    let hex = remove["attributes"]["value"].as_str().unwrap().to_owned();
    let (st, v) = spa_settings_post(&c, &flow, json!({"passkey_remove": hex})).await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(message_ids(&v), vec![4000001]);
    let (st, _, _) = spa_login_with(&s, |o| a.get(o, ORIGIN, None)).await;
    assert_eq!(st, 200);
    s.shutdown().await;
});

both_backends!(
    settings_changes_need_a_privileged_session,
    |b: Backend| async move {
        let mut cfg = config();
        crate::support::deep_merge(
            &mut cfg,
            json!({"selfservice": {"flows": {"settings": {"privileged_session_max_age": "1ms"}}}}),
        );
        let s = TestServer::spawn_with(b, cfg).await;
        let c = browser();
        let mut a = SoftAuthenticator::new();
        spa_register(&s, &c, &mut a, "old@example.org").await;
        let flow = spa_settings(&s, &c).await;
        let options = value_json(&flow, "passkey_create_data");
        let (st, v) = spa_settings_post(
            &c,
            &flow,
            json!({"passkey_settings_register": a.create(&options, ORIGIN).to_string()}),
        )
        .await;
        assert_eq!(st, 403, "{v}");
        assert_eq!(v["error"]["id"], "session_refresh_required");
        s.shutdown().await;
    }
);

/// Replaces the assertion's user handle (not covered by the signature) with `handle`.
fn with_user_handle(mut assertion: Value, handle: &[u8]) -> Value {
    use base64::Engine;
    assertion["response"]["userHandle"] =
        json!(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(handle));
    assertion
}

both_backends!(
    bad_assertions_get_kratos_messages_and_no_session,
    |b: Backend| async move {
        let s = spawn(b).await;
        let mut a = SoftAuthenticator::new();
        let id = spa_register(&s, &browser(), &mut a, "amy@example.org").await;
        let mut other = SoftAuthenticator::new();
        spa_register(&s, &browser(), &mut other, "ben@example.org").await;
        let refused = |st: reqwest::StatusCode, v: &Value, cookie: bool, want: i64| {
            assert_eq!(st, 400, "{v}");
            assert_eq!(message_ids(v), vec![want], "{v}");
            assert!(!cookie);
        };

        // Wrong origin, and a wrong RP id (options naming another RP).
        let (st, v, c) = spa_login_with(&s, |o| a.get(o, "https://evil.example", None)).await;
        refused(st, &v, c, 4000043);
        let (st, v, c) = spa_login_with(&s, |o| {
            let mut o = o.clone();
            o["publicKey"]["rpId"] = json!("evil.example");
            a.get(&o, ORIGIN, None)
        })
        .await;
        refused(st, &v, c, 4000043);

        // A challenge from another flow.
        let c0 = browser();
        let foreign = value_json(&spa_flow(&s, &c0, "login").await, "passkey_challenge");
        let (st, v, c) = spa_login_with(&s, |_| a.get(&foreign, ORIGIN, None)).await;
        refused(st, &v, c, 4000043);

        // Another account's user handle with this credential; an unknown user handle; none at all.
        let ben_handle = other.credentials[0].user_handle.clone();
        let (st, v, c) = spa_login_with(&s, |o| with_user_handle(a.get(o, ORIGIN, None), &ben_handle)).await;
        refused(st, &v, c, 4000043);
        let (st, v, c) = spa_login_with(&s, |o| with_user_handle(a.get(o, ORIGIN, None), b"nobody")).await;
        refused(st, &v, c, 4000015);
        let (st, v, c) = spa_login_with(&s, |o| with_user_handle(a.get(o, ORIGIN, None), b"")).await;
        refused(st, &v, c, 4000015);

        // An unknown credential: a fresh key claiming Amy's user handle.
        let mut stranger = SoftAuthenticator::new();
        stranger.create(
            &json!({"publicKey": {"rp": {"id": "id.example.org"}, "challenge": "AA", "user": {"id": "AA"}}}),
            ORIGIN,
        );
        let amy_handle = a.credentials[0].user_handle.clone();
        let (st, v, c) = spa_login_with(&s, |o| {
            with_user_handle(stranger.get(o, ORIGIN, None), &amy_handle)
        })
        .await;
        refused(st, &v, c, 4000043);

        // Malformed JSON: Kratos' 400, no session, never a 500.
        for junk in ["{", "[]", "{\"id\":1}", "null", "\u{0}"] {
            let (st, v, c) = spa_login_with(&s, |_| Value::String(junk.into())).await;
            assert_eq!(st, 400, "{junk:?}: {v}");
            assert!(!c);
        }

        // A replayed assertion: refused on its own (now used) flow, and on any other.
        let cl = browser();
        let flow = spa_flow(&s, &cl, "login").await;
        let assertion = a.get(&value_json(&flow, "passkey_challenge"), ORIGIN, None);
        let (st, v) = send(
            cl.post(flow["ui"]["action"].as_str().unwrap())
                .json(&json!({"csrf_token": csrf(&flow), "passkey_login": assertion.to_string()})),
        )
        .await;
        assert_eq!(st, 200, "{v}");
        // A second browser replays it on the same flow (the CSRF check is the first one's, so use that).
        let res = cl
            .post(flow["ui"]["action"].as_str().unwrap())
            .json(&json!({"csrf_token": csrf(&flow), "passkey_login": assertion.to_string()}))
            .send()
            .await
            .unwrap();
        assert!(!has_session_cookie(&res));
        assert_ne!(res.status(), 200);
        assert!(res.status().as_u16() < 500);
        let (st, v, c) = spa_login_with(&s, |_| assertion.clone()).await;
        refused(st, &v, c, 4000043);

        // A sign counter that does not advance still signs in (as Kratos), and marks a clone warning.
        a.credentials[0].counter = 0;
        let (st, v, c) = spa_login_with(&s, |o| a.get(o, ORIGIN, None)).await;
        assert_eq!(st, 200, "{v}");
        assert!(c);
        let cfg = passkey_config(&s, &id).await["config"].clone();
        assert_eq!(cfg["credentials"][0]["authenticator"]["clone_warning"], true);
        s.shutdown().await;
    }
);

both_backends!(
    bad_registrations_are_refused_without_an_identity,
    |b: Backend| async move {
        let s = spawn(b).await;
        let c = browser();
        let flow = spa_flow(&s, &c, "registration").await;
        let create = value_json(&flow, "passkey_create_data");
        let mut a = SoftAuthenticator::new();
        let action = flow["ui"]["action"].as_str().unwrap().to_owned();
        let post = |register: String| {
            c.post(&action).json(&json!({
                "csrf_token": csrf(&flow),
                "traits": {"email": "eve@example.org"},
                "passkey_register": register,
            }))
        };
        // Malformed JSON and CBOR: 400.
        let (st, v) = send(post("{".into())).await;
        assert_eq!(st, 400, "{v}");
        let mut bad_cbor = a.create(&create["credentialOptions"], ORIGIN);
        bad_cbor["response"]["attestationObject"] = json!("AAAA");
        let (st, v) = send(post(bad_cbor.to_string())).await;
        assert_eq!(st, 400, "{v}");
        // Wrong origin; an attestation format whose statement does not verify: a message on the flow.
        let (st, v) = send(post(
            a.create(&create["credentialOptions"], "https://evil.example")
                .to_string(),
        ))
        .await;
        assert_eq!(st, 400, "{v}");
        assert_eq!(message_ids(&v), vec![4000001]);
        let mut packed = SoftAuthenticator {
            attestation_format: Some("packed".into()),
            ..Default::default()
        };
        let (st, v) = send(post(
            packed.create(&create["credentialOptions"], ORIGIN).to_string(),
        ))
        .await;
        assert_eq!(st, 400, "{v}");
        assert_eq!(message_ids(&v), vec![4000001]);
        let (st, list) = send(api().get(s.admin_url("admin/identities"))).await;
        assert_eq!(st, 200);
        assert_eq!(list.as_array().unwrap().len(), 0, "{list}");
        s.shutdown().await;
    }
);

both_backends!(
    a_passkey_row_as_kratos_wrote_it_signs_in,
    |b: Backend| async move {
        use base64::Engine;
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        let s = spawn(b).await;
        // The user handle and the row of the Kratos sample database (a synced iCloud passkey), with the
        // key pair of this software authenticator.
        let handle = "aJruyTil7eW59lJUXevVvMjGgaZQ5xi1grduuanGHL8Dh7LVTJCEPqRD21LvDvZf";
        let mut a = SoftAuthenticator {
            backup: true,
            ..Default::default()
        };
        a.create(
            &json!({"publicKey": {"rp": {"id": "id.example.org"}, "challenge": "AA",
            "user": {"id": URL_SAFE_NO_PAD.encode(handle)}}}),
            ORIGIN,
        );
        let k = &a.credentials[0];
        let config = json!({"credentials": [{
        "id": STANDARD.encode(&k.id), "public_key": STANDARD.encode(&k.cose), "attestation_type": "none",
        "authenticator": {"aaguid": "+/wwBxVOTsyMC24CBVfXvQ==", "sign_count": 0, "clone_warning": false},
        "display_name": "iCloud Keychain", "added_at": "2025-11-20T09:16:00Z", "is_passwordless": true,
        "flags": {"user_present": true, "user_verified": true, "backup_eligible": true, "backup_state": true},
        "transport": ["hybrid", "internal"]
    }], "user_handle": STANDARD.encode(handle)});
        let now = time::OffsetDateTime::now_utc();
        let mut identity =
            sallyport_core::identity::Identity::new("default", json!({"email": "kim@example.org"}), now);
        identity.set_credential("passkey", vec![handle.into()], config.clone(), now);
        identity.available_aal = identity.compute_available_aal(false);
        s.app.store.create_identity(&identity, None).await.unwrap();

        let (st, v, cookie) = spa_login_with(&s, |o| a.get(o, ORIGIN, None)).await;
        assert_eq!(st, 200, "{v}");
        assert!(cookie);
        assert_eq!(v["session"]["identity"]["id"], identity.id.to_string());
        // Only the counter moved; everything else Kratos wrote is as it was.
        let mut want = config;
        want["credentials"][0]["authenticator"]["sign_count"] = json!(1);
        assert_eq!(passkey_config(&s, &identity.id.to_string()).await["config"], want);

        s.shutdown().await;
    }
);

both_backends!(
    two_step_registration_offers_passkeys_on_the_second_screen,
    |b: Backend| async move {
        let mut cfg = config();
        crate::support::deep_merge(
            &mut cfg,
            json!({"selfservice": {"flows": {"registration": {"style": "profile_first"}}}}),
        );
        let s = TestServer::spawn_with(b, cfg).await;
        let c = api();
        let (_, flow) = send(c.get(s.public_url("self-service/registration/api"))).await;
        assert!(
            node(&flow, "passkey_create_data").is_none(),
            "not on the traits screen"
        );
        let action = flow["ui"]["action"].as_str().unwrap().to_owned();
        let (st, step2) = send(
            c.post(&action)
                .json(&json!({"method": "profile", "traits": {"email": "two@example.org"}})),
        )
        .await;
        assert_eq!(st, 400, "{step2}");
        let create = value_json(&step2, "passkey_create_data");
        assert!(node(&step2, "passkey_register_trigger").is_some());
        let mut a = SoftAuthenticator::new();
        let (st, v) = send(c.post(&action).json(&json!({
            "traits": {"email": "two@example.org"},
            "passkey_register": a.create(&create["credentialOptions"], ORIGIN).to_string(),
        })))
        .await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["identity"]["traits"]["email"], "two@example.org");
        s.shutdown().await;
    }
);
