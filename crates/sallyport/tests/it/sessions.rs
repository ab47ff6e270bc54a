//! Sessions: listing, revoking, admin management, tokens stored only as digests.

use serde_json::json;

use crate::both_backends;
use crate::support::client::{api, create_identity, native_login, send};
use crate::support::{Backend, TestServer};

both_backends!(my_sessions_and_admin_sessions, |b: Backend| async move {
    let s = TestServer::spawn(b).await;
    let id = create_identity(&s, "max@example.org", "correct horse battery").await;
    let (_, a) = native_login(&s, "max@example.org", "correct horse battery").await;
    let (_, b2) = native_login(&s, "max@example.org", "correct horse battery").await;
    let (_, c3) = native_login(&s, "max@example.org", "correct horse battery").await;
    let ta = a["session_token"].as_str().unwrap();
    let c = api();
    let (st, mine) = send(c.get(s.public_url("sessions")).header("X-Session-Token", ta)).await;
    assert_eq!(st, 200);
    assert_eq!(
        mine.as_array().unwrap().len(),
        2,
        "the current session is excluded"
    );
    let (st, e) = send(
        c.delete(s.public_url(&format!("sessions/{}", a["session"]["id"].as_str().unwrap())))
            .header("X-Session-Token", ta),
    )
    .await;
    assert_eq!(st, 400, "{e}");
    let res = c
        .delete(s.public_url(&format!("sessions/{}", b2["session"]["id"].as_str().unwrap())))
        .header("X-Session-Token", ta)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = c
        .get(s.public_url("sessions/whoami"))
        .header("X-Session-Token", b2["session_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let (st, count) = send(c.delete(s.public_url("sessions")).header("X-Session-Token", ta)).await;
    assert_eq!((st.as_u16(), count["count"].as_u64()), (200, Some(1)));
    let res = c
        .get(s.public_url("sessions/whoami"))
        .header("X-Session-Token", c3["session_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // Admin side.
    let (st, list) = send(c.get(s.admin_url(&format!("admin/identities/{id}/sessions?active=true")))).await;
    assert_eq!(st, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let sid = a["session"]["id"].as_str().unwrap();
    let (st, got) = send(c.get(s.admin_url(&format!("admin/sessions/{sid}?expand=identity")))).await;
    assert_eq!(st, 200);
    assert_eq!(got["identity"]["id"], id.as_str());
    let (st, ext) = send(c.patch(s.admin_url(&format!("admin/sessions/{sid}/extend")))).await;
    assert_eq!(st, 200);
    assert!(ext["expires_at"].as_str().unwrap() >= got["expires_at"].as_str().unwrap());
    let res = c
        .delete(s.admin_url(&format!("admin/sessions/{sid}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = c
        .get(s.public_url("sessions/whoami"))
        .header("X-Session-Token", ta)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let (st, _) = send(c.get(s.admin_url("admin/sessions/not-a-uuid"))).await;
    assert_eq!(st, 400);
    let (st, all) = send(c.get(s.admin_url("admin/sessions?page_size=2"))).await;
    assert_eq!(st, 200);
    assert_eq!(all.as_array().unwrap().len(), 2);
    let (st, managed) = send(
        c.post(s.admin_url("admin/sessions"))
            .json(&json!({"action": "delete", "identities": [id]})),
    )
    .await;
    assert_eq!(st, 200, "{managed}");
    assert_eq!(managed["processed"], 3);
    s.shutdown().await;
});

both_backends!(tokens_are_stored_as_digests, |b: Backend| async move {
    let s = TestServer::spawn(b).await;
    create_identity(&s, "ned@example.org", "correct horse battery").await;
    let (_, login) = native_login(&s, "ned@example.org", "correct horse battery").await;
    let token = login["session_token"].as_str().unwrap();
    let sid = uuid::Uuid::parse_str(login["session"]["id"].as_str().unwrap()).unwrap();
    let stored = s.app.store.get_session(sid).await.unwrap();
    assert_ne!(stored.token_digest, token);
    assert!(!stored.token_digest.contains("ory_st_"));
    assert_eq!(stored.token_digest, sallyport_core::secret::token_digest(token));
    s.shutdown().await;
});

both_backends!(health_version_metrics_schemas, |b: Backend| async move {
    let s = TestServer::spawn(b).await;
    let c = api();
    for base in [&s.public, &s.admin] {
        let (st, v) = send(c.get(format!("{base}health/alive"))).await;
        assert_eq!((st.as_u16(), v), (200, json!({"status": "ok"})));
        let (st, _) = send(c.get(format!("{base}health/ready"))).await;
        assert_eq!(st, 200);
    }
    let (st, v) = send(c.get(s.admin_url("admin/version"))).await;
    assert_eq!(st, 200);
    assert!(v["version"].is_string());
    let (st, schemas) = send(c.get(s.public_url("schemas"))).await;
    assert_eq!(st, 200);
    assert_eq!(schemas[0]["id"], "default");
    let (st, one) = send(c.get(s.public_url("schemas/ZGVmYXVsdA"))).await;
    assert_eq!(st, 200);
    assert_eq!(one["title"], "Person");
    let (st, e) = send(c.get(s.public_url("schemas/unknown"))).await;
    assert_eq!(st, 404, "{e}");
    let res = c.get(s.public_url("admin/identities")).send().await.unwrap();
    assert_eq!(res.status(), 307, "public forwards admin paths to the admin port");
    let res = c
        .get(s.public_url(".well-known/change-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(crate::support::client::location(&res).ends_with("/self-service/settings/browser"));
    let res = c.get(s.admin_url("admin/health/config")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.text().await.unwrap().len(),
        64,
        "a SHA-256 hex digest of the effective config"
    );
    s.shutdown().await;
});

// After a takeover, the session cookies browsers got from Kratos (gorilla/securecookie, made with the
// same `secrets.cookie`) keep working: the cookie names a session imported from Kratos' database.
both_backends!(kratos_session_cookies_are_read, |b: Backend| async move {
    const SECRET: &str = "kratos-cookie-secret-for-tests-0";
    const TOKEN: &str = "ory_st_kratosissuedcookietoken000000000";
    let vectors = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kratos-db/kratos-cookies.txt"),
    )
    .unwrap();
    let cookie = |name: &str| {
        vectors
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .unwrap()
            .to_owned()
    };
    let s = TestServer::spawn_with(b, json!({"secrets": {"cookie": [SECRET]}})).await;
    let id: uuid::Uuid = create_identity(&s, "kratos-user@example.org", "a-strong-passw0rd!")
        .await
        .parse()
        .unwrap();
    let now = sallyport_core::time_fmt::now();
    let mut imported = sallyport_core::session::Session::issue(id, time::Duration::HOUR, now).session;
    imported.token_digest = sallyport_core::secret::token_digest(TOKEN);
    imported.complete_method("password", sallyport_core::session::Aal::Aal1, now);
    s.app.store.create_session(&imported).await.unwrap();
    for generation in ["current", "signed_only"] {
        let (st, who) = send(
            api()
                .get(s.public_url("sessions/whoami"))
                .header("Cookie", format!("ory_kratos_session={}", cookie(generation))),
        )
        .await;
        assert_eq!(st, 200, "{generation}: {who}");
        assert_eq!(who["id"], imported.id.to_string(), "{generation}");
    }
    // Revoked in the database: the cookie no longer signs anyone in.
    imported.active = false;
    s.app.store.update_session(&imported).await.unwrap();
    let (st, _) = send(
        api()
            .get(s.public_url("sessions/whoami"))
            .header("Cookie", format!("ory_kratos_session={}", cookie("current"))),
    )
    .await;
    assert_eq!(st, 401);
    s.shutdown().await;
});
