//! NUL characters (issue 7.2): PostgreSQL text and jsonb cannot hold U+0000, so a `\u0000` or `%00`
//! that reached the database answered 500 there and something else on SQLite. Every entry point now
//! refuses it with the same 400 on both backends, and the store maps a refusal that slips through to
//! a typed error.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::support::client::{api, create_identity, message_ids, native_login, send};
use crate::support::mail::MailServer;
use crate::support::{Backend, TestServer, UI};

const BODY_REASON: &str = "The JSON request body contains a NUL character (U+0000), which is not allowed.";
const URL_REASON: &str = "The request URL contains a NUL character (U+0000), which is not allowed.";

fn cfg() -> Value {
    json!({"selfservice": {
        "methods": {"code": {"enabled": true}},
        "flows": {
            "recovery": {"enabled": true, "ui_url": format!("{UI}/recovery")},
            "verification": {"enabled": true, "ui_url": format!("{UI}/verification")},
        }
    }})
}

/// A flow submission refused for a NUL: Kratos' answer to a 400 during submission (the flow, with
/// the reason as message 4000001), never a 500.
fn assert_flow_refused(what: &str, st: StatusCode, f: &Value, reason: &str) {
    assert_eq!(st, 400, "{what}: {f}");
    assert_eq!(message_ids(f), vec![4000001], "{what}: {f}");
    assert_eq!(f["ui"]["messages"][0]["text"], reason, "{what}");
}

fn assert_envelope(what: &str, st: StatusCode, e: &Value, reason: &str) {
    assert_eq!(st, 400, "{what}: {e}");
    assert_eq!(e["error"]["code"], 400, "{what}");
    assert_eq!(e["error"]["status"], "Bad Request", "{what}");
    assert_eq!(e["error"]["reason"], reason, "{what}");
}

async fn submit(action: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
    let mut req = api().post(action).json(&body);
    if let Some(t) = token {
        req = req.header("X-Session-Token", t);
    }
    send(req).await
}

async fn api_flow(s: &TestServer, kind: &str, token: Option<&str>) -> String {
    let mut req = api().get(s.public_url(&format!("self-service/{kind}/api")));
    if let Some(t) = token {
        req = req.header("X-Session-Token", t);
    }
    let (st, flow) = send(req).await;
    assert_eq!(st, 200, "{kind}: {flow}");
    flow["ui"]["action"].as_str().unwrap().to_owned()
}

both_backends!(nul_in_self_service_submissions_is_400, |b: Backend| async move {
    let mail = MailServer::start().await;
    let s = TestServer::spawn_with(b, mail.config(cfg())).await;
    create_identity(&s, "nul@example.org", "correct horse battery").await;

    let login = api_flow(&s, "login", None).await;
    for body in [
        json!({"method": "password", "identifier": "nul\u{0}@example.org", "password": "x"}),
        json!({"method": "password", "identifier": "nul@example.org", "password": "correct horse\u{0}"}),
        json!({"method": "code", "identifier": "nul@example.org\u{0}"}),
        json!({"method": "password", "identifier\u{0}": "x", "password": "y"}),
    ] {
        let (st, f) = submit(&login, None, body.clone()).await;
        assert_flow_refused(&format!("login {body}"), st, &f, BODY_REASON);
    }
    let (st, f) = send(
        api()
            .post(&login)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("method=password&identifier=nul%40example.org&password=x%00y"),
    )
    .await;
    assert_flow_refused(
        "login form",
        st,
        &f,
        "The form field \"password\" contains a NUL character (U+0000), which is not allowed.",
    );

    let registration = api_flow(&s, "registration", None).await;
    for body in [
        json!({"method": "password", "traits": {"email": "new\u{0}@example.org"}, "password": "correct horse battery"}),
        json!({"method": "password", "traits": {"email": "new@example.org"}, "password": "correct\u{0}horse battery"}),
        json!({"method": "code", "traits": {"email": "new@example.org\u{0}"}}),
    ] {
        let (st, f) = submit(&registration, None, body.clone()).await;
        assert_flow_refused(&format!("registration {body}"), st, &f, BODY_REASON);
    }

    let recovery = api_flow(&s, "recovery", None).await;
    let (st, f) = submit(
        &recovery,
        None,
        json!({"method": "code", "email": "nul@example.org\u{0}"}),
    )
    .await;
    assert_flow_refused("recovery address", st, &f, BODY_REASON);
    let (st, sent) = submit(
        &recovery,
        None,
        json!({"method": "code", "email": "nul@example.org"}),
    )
    .await;
    assert_eq!(st, 200, "{sent}");
    let (st, f) = submit(&recovery, None, json!({"method": "code", "code": "12\u{0}456"})).await;
    assert_flow_refused("recovery code", st, &f, BODY_REASON);

    let verification = api_flow(&s, "verification", None).await;
    let (st, f) = submit(&verification, None, json!({"method": "code", "email": "\u{0}"})).await;
    assert_flow_refused("verification address", st, &f, BODY_REASON);
    let (st, f) = submit(&verification, None, json!({"method": "code", "code": "\u{0}"})).await;
    assert_flow_refused("verification code", st, &f, BODY_REASON);

    let (st, ok) = native_login(&s, "nul@example.org", "correct horse battery").await;
    assert_eq!(st, 200, "{ok}");
    let token = ok["session_token"].as_str().unwrap().to_owned();
    let settings = api_flow(&s, "settings", Some(&token)).await;
    for body in [
        json!({"method": "password", "password": "another\u{0}long password"}),
        json!({"method": "profile", "traits": {"email": "nul@example.org\u{0}"}}),
    ] {
        let (st, f) = submit(&settings, Some(&token), body.clone()).await;
        assert_flow_refused(&format!("settings {body}"), st, &f, BODY_REASON);
    }

    // Flow ids, return_to and other query values.
    for path in [
        "self-service/login?flow=%00",
        "self-service/login/flows?id=%00",
        "self-service/login/browser?return_to=http://app.test/%00",
        "self-service/registration/api?return_to=%00",
        "self-service/errors?id=%00",
        "sessions/whoami?x=%00",
        "schemas/%00",
    ] {
        let (st, e) = send(api().get(s.public_url(path))).await;
        assert_envelope(path, st, &e, URL_REASON);
    }
    let (st, e) = send(
        api()
            .delete(s.public_url("self-service/logout/api"))
            .header("content-type", "application/json")
            .body(r#"{"session_token":"ory_st_\u0000"}"#),
    )
    .await;
    assert_envelope("native logout", st, &e, BODY_REASON);

    // Nothing changed: the one identity, still able to sign in with its password.
    let (_, list) = send(api().get(s.admin_url("admin/identities"))).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    s.shutdown().await;
});

both_backends!(nul_on_the_admin_api_is_400, |b: Backend| async move {
    let s = TestServer::spawn(b).await;
    let c = api();
    let id = create_identity(&s, "adm@example.org", "correct horse battery").await;
    let bodies = [
        json!({"schema_id": "default", "traits": {"email": "a\u{0}@example.org"}}),
        json!({"schema_id": "default", "traits": {"email": "b@example.org"}, "metadata_public": {"k": "\u{0}"}}),
        json!({"schema_id": "default", "traits": {"email": "c@example.org"}, "metadata_admin": {"k\u{0}": 1}}),
        json!({"schema_id": "default", "traits": {"email": "d@example.org"}, "external_id": "\u{202e}\u{0}"}),
        json!({"schema_id": "default", "traits": {"email": "e@example.org"}, "credentials": {"password": {"config": {"password": "pw\u{0}"}}}}),
        json!({"schema_id": "default\u{0}", "traits": {"email": "f@example.org"}}),
    ];
    for body in &bodies {
        let (st, e) = send(c.post(s.admin_url("admin/identities")).json(body)).await;
        assert_envelope(&format!("create {body}"), st, &e, BODY_REASON);
        let (st, e) = send(c.put(s.admin_url(&format!("admin/identities/{id}"))).json(body)).await;
        assert_envelope(&format!("update {body}"), st, &e, BODY_REASON);
    }
    let (st, e) = send(
        c.patch(s.admin_url("admin/identities"))
            .json(&json!({"identities": [{"create": bodies[1]}]})),
    )
    .await;
    assert_envelope("batch", st, &e, BODY_REASON);
    for op in [
        json!({"op": "replace", "path": "/metadata_public", "value": {"k": "\u{0}"}}),
        json!({"op": "replace", "path": "/external_id", "value": "\u{0}"}),
        json!({"op": "add", "path": "/traits/e\u{0}", "value": 1}),
    ] {
        let (st, e) = send(
            c.patch(s.admin_url(&format!("admin/identities/{id}")))
                .json(&json!([op])),
        )
        .await;
        assert_envelope(&format!("patch {op}"), st, &e, BODY_REASON);
    }
    let (st, e) = send(
        c.post(s.admin_url("admin/recovery/code"))
            .json(&json!({"identity_id": id, "expires_in": "1h\u{0}"})),
    )
    .await;
    assert_envelope("admin recovery code", st, &e, BODY_REASON);
    let (st, e) = send(
        c.post(s.admin_url("admin/sessions"))
            .json(&json!({"action": "disable\u{0}"})),
    )
    .await;
    assert_envelope("admin sessions", st, &e, BODY_REASON);

    for path in [
        "admin/courier/messages?recipient=%00",
        "admin/identities/by/external/%E2%80%AE%00",
        "admin/identities?credentials_identifier=%00",
        "admin/identities?ids=%00",
        "admin/identities?page_token=%00",
        "admin/sessions?page_token=%00",
        "admin/identities/%00",
    ] {
        let (st, e) = send(c.get(s.admin_url(path))).await;
        assert_envelope(path, st, &e, URL_REASON);
    }
    for path in ["admin/identities/by/external/%FF", "admin/identities/%E2%80"] {
        let (st, e) = send(c.get(s.admin_url(path))).await;
        assert_envelope(
            path,
            st,
            &e,
            "The request URL path is not valid UTF-8 once percent-decoded.",
        );
    }
    // Lookups of other unknown values still answer as before.
    let (st, _) = send(c.get(s.admin_url("admin/identities/by/external/%E2%80%AE"))).await;
    assert_eq!(st, 404);
    let (st, list) = send(c.get(s.admin_url("admin/courier/messages?recipient=nobody%40example.org"))).await;
    assert_eq!(st, 200, "{list}");

    let (_, got) = send(c.get(s.admin_url(&format!("admin/identities/{id}")))).await;
    assert_eq!(got["traits"]["email"], "adm@example.org");
    assert_eq!(got["metadata_public"], Value::Null, "nothing was written");
    let (_, list) = send(c.get(s.admin_url("admin/identities"))).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    s.shutdown().await;
});

both_backends!(
    the_store_turns_a_refused_nul_into_a_typed_error,
    |b: Backend| async move {
        let s = TestServer::spawn(b).await;
        let got = s.app.store.get_identity_by_external_id("x\u{0}").await;
        match (b, got) {
            (Backend::Postgres, Err(sallyport_core::store::StoreError::Unrepresentable(m))) => {
                assert_eq!(m, "a NUL character (U+0000)")
            }
            (Backend::Sqlite, Err(sallyport_core::store::StoreError::NotFound)) => {}
            (b, other) => panic!("{b:?}: {:?}", other.map(|i| i.id)),
        }
        let e = sallyport_core::store::StoreError::Unrepresentable("a NUL character (U+0000)".into());
        let e = sallyport::http::error::store_error(e);
        assert_eq!(e.code, 400);
        assert_eq!(
            e.reason.as_deref(),
            Some("The request contains a NUL character (U+0000), which cannot be stored.")
        );
        s.shutdown().await;
    }
);

// Long values in uniquely indexed columns: PostgreSQL refuses btree entries over 2,704 bytes (500
// before), SQLite stores them. Both now answer the same 400, checked before the database is asked.
both_backends!(overlong_indexed_values_are_400_on_both, |b: Backend| async move {
    let s = TestServer::spawn_with(
        b,
        json!({"identity": {"schemas": [{"id": "default", "url": format!("file://{}", crate::support::fixture("username-password.schema.json").display())}]}}),
    )
    .await;
    let c = api();
    // Random text: PostgreSQL would compress a repetitive value below its limit.
    let random = |bytes: usize| -> String {
        (0..bytes.div_ceil(32))
            .map(|_| uuid::Uuid::new_v4().simple().to_string())
            .collect::<String>()[..bytes]
            .to_owned()
    };
    let limit = sallyport_core::limits::MAX_INDEXED_VALUE_BYTES;
    let (st, e) =
        send(c.post(s.admin_url("admin/identities")).json(
            &json!({"schema_id": "default", "traits": {"username": "u1"}, "external_id": random(20_000)}),
        ))
        .await;
    assert_envelope(
        "external_id",
        st,
        &e,
        "The request contains an external_id longer than 1024 bytes, which cannot be stored.",
    );
    let (st, ok) =
        send(c.post(s.admin_url("admin/identities")).json(
            &json!({"schema_id": "default", "traits": {"username": "u2"}, "external_id": random(limit)}),
        ))
        .await;
    assert_eq!(st, 201, "{ok}");

    let registration = api_flow(&s, "registration", None).await;
    let (st, f) = submit(
        &registration,
        None,
        json!({"method": "password", "traits": {"username": random(20_000)}, "password": "correct horse battery staple"}),
    )
    .await;
    assert_flow_refused(
        "registration identifier",
        st,
        &f,
        "The request contains a credential identifier longer than 1024 bytes, which cannot be stored.",
    );
    let id = ok["id"].as_str().unwrap();
    let (st, e) = send(
        c.patch(s.admin_url(&format!("admin/identities/{id}")))
            .json(&json!([{"op": "replace", "path": "/external_id", "value": random(5_000)}])),
    )
    .await;
    assert_envelope(
        "patched external_id",
        st,
        &e,
        "The request contains an external_id longer than 1024 bytes, which cannot be stored.",
    );
    let (_, list) = send(c.get(s.admin_url("admin/identities"))).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    s.shutdown().await;
});
