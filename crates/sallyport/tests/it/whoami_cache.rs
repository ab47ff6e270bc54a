//! The whoami answer cache (`sallyport.cache.whoami_max_bytes`): every change to a session or its
//! identity is seen by the next whoami, although the previous answer was cached.

use serde_json::{Value, json};

use crate::both_backends;
use crate::support::client::{api, browser, browser_login, create_identity, native_login, send};
use crate::support::{Backend, TestServer};

async fn whoami(s: &TestServer, token: &str) -> (u16, Value) {
    let (st, v) = send(
        api()
            .get(s.public_url("sessions/whoami"))
            .header("X-Session-Token", token),
    )
    .await;
    (st.as_u16(), v)
}

/// The `ory_kratos_session=…` pair a browser login of `email` sets.
async fn session_cookie(s: &TestServer, email: &str) -> String {
    let res = browser_login(s, &browser(), email, "correct horse battery").await;
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("ory_kratos_session="))
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_owned()
}

/// Asks twice, so the second answer comes from the cache where there is one.
async fn whoami_twice(s: &TestServer, token: &str) -> Value {
    let (st, first) = whoami(s, token).await;
    assert_eq!(st, 200, "{first}");
    let (st, second) = whoami(s, token).await;
    assert_eq!((st, &second), (200, &first));
    second
}

both_backends!(
    whoami_sees_every_change_after_a_cached_answer,
    |b: Backend| async move {
        let s = TestServer::spawn(b).await;
        let id = create_identity(&s, "cache@example.org", "correct horse battery").await;
        let c = api();
        let login = |_: ()| native_login(&s, "cache@example.org", "correct horse battery");
        let (_, a) = login(()).await;
        let (_, b2) = login(()).await;
        let (_, c3) = login(()).await;
        let (_, d4) = login(()).await;
        let [ta, tb, tc, td] = [&a, &b2, &c3, &d4].map(|x| x["session_token"].as_str().unwrap().to_owned());
        for t in [&ta, &tb, &tc, &td] {
            whoami_twice(&s, t).await;
        }

        // An identity update (admin PATCH of a trait) shows in the next answer.
        let (st, e) = send(
            c.patch(s.admin_url(&format!("admin/identities/{id}")))
                .json(&json!([{"op": "replace", "path": "/metadata_public", "value": {"plan": "gold"}}])),
        )
        .await;
        assert_eq!(st, 200, "{e}");
        let got = whoami_twice(&s, &ta).await;
        assert_eq!(got["identity"]["metadata_public"], json!({"plan": "gold"}));

        // Extending a session shows its new expiry.
        let sid = a["session"]["id"].as_str().unwrap();
        let before = got["expires_at"].as_str().unwrap().to_owned();
        let (st, ext) = send(c.patch(s.admin_url(&format!("admin/sessions/{sid}/extend")))).await;
        assert_eq!(st, 200, "{ext}");
        let got = whoami_twice(&s, &ta).await;
        assert_eq!(got["expires_at"], ext["expires_at"]);
        assert!(got["expires_at"].as_str().unwrap() >= before.as_str());

        // Revoking one of my other sessions.
        let bid = b2["session"]["id"].as_str().unwrap();
        let res = c
            .delete(s.public_url(&format!("sessions/{bid}")))
            .header("X-Session-Token", &ta)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 204);
        assert_eq!(whoami(&s, &tb).await.0, 401);

        // Logging out.
        whoami_twice(&s, &tc).await;
        let res = c
            .delete(s.public_url("self-service/logout/api"))
            .json(&json!({"session_token": tc}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 204);
        assert_eq!(whoami(&s, &tc).await.0, 401);

        // The admin revoking a session.
        whoami_twice(&s, &td).await;
        let did = d4["session"]["id"].as_str().unwrap();
        let res = c
            .delete(s.admin_url(&format!("admin/sessions/{did}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 204);
        assert_eq!(whoami(&s, &td).await.0, 401);

        // Deactivating the identity ends the sessions still active.
        whoami_twice(&s, &ta).await;
        let (st, e) = send(
            c.patch(s.admin_url(&format!("admin/identities/{id}")))
                .json(&json!([{"op": "replace", "path": "/state", "value": "inactive"}])),
        )
        .await;
        assert_eq!(st, 200, "{e}");
        assert_eq!(whoami(&s, &ta).await.0, 401);
        s.shutdown().await;
    }
);

both_backends!(
    deleting_the_identity_ends_cached_sessions,
    |b: Backend| async move {
        let s = TestServer::spawn(b).await;
        let id = create_identity(&s, "gone@example.org", "correct horse battery").await;
        let (_, a) = native_login(&s, "gone@example.org", "correct horse battery").await;
        let t = a["session_token"].as_str().unwrap();
        whoami_twice(&s, t).await;
        let res = api()
            .delete(s.admin_url(&format!("admin/identities/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 204);
        assert_eq!(whoami(&s, t).await.0, 401);
        s.shutdown().await;
    }
);

both_backends!(
    cookie_whoami_is_cached_and_ends_with_browser_logout,
    |b: Backend| async move {
        let s = TestServer::spawn(b).await;
        create_identity(&s, "jar@example.org", "correct horse battery").await;
        let c = browser();
        let res = browser_login(&s, &c, "jar@example.org", "correct horse battery").await;
        assert!(
            res.status().is_redirection() || res.status() == 200,
            "{}",
            res.status()
        );
        let (st, first) = send(c.get(s.public_url("sessions/whoami"))).await;
        assert_eq!(st, 200, "{first}");
        let (st, second) = send(c.get(s.public_url("sessions/whoami"))).await;
        assert_eq!((st.as_u16(), &second), (200, &first));
        // Revoke through the admin API: the cookie's session ends.
        let sid = first["id"].as_str().unwrap();
        let res = api()
            .delete(s.admin_url(&format!("admin/sessions/{sid}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 204);
        let (st, _) = send(c.get(s.public_url("sessions/whoami"))).await;
        assert_eq!(st, 401);
        s.shutdown().await;
    }
);

// A sealed cookie is remembered for the token it opened to, and only when the token came out of that
// cookie: a cookie that does not open, sent beside a valid bearer token, is not remembered as that
// token's session; Kratos' order (token header, cookie, bearer) holds on cached answers too.
both_backends!(
    a_cookie_is_cached_only_for_the_session_it_opens_to,
    |b: Backend| async move {
        let s = TestServer::spawn(b).await;
        create_identity(&s, "jar@example.org", "correct horse battery").await;
        create_identity(&s, "app@example.org", "correct horse battery").await;
        let cookie = session_cookie(&s, "jar@example.org").await;
        let (_, n) = native_login(&s, "app@example.org", "correct horse battery").await;
        let token = n["session_token"].as_str().unwrap().to_owned();
        let ask = |cookie: Option<&str>, bearer: Option<&str>, header: Option<&str>| {
            let mut r = api().get(s.public_url("sessions/whoami"));
            if let Some(c) = cookie {
                r = r.header("Cookie", c);
            }
            if let Some(t) = bearer {
                r = r.header("Authorization", format!("Bearer {t}"));
            }
            if let Some(t) = header {
                r = r.header("X-Session-Token", t);
            }
            send(r)
        };
        let email = |v: &Value| v["identity"]["traits"]["email"].as_str().unwrap_or("").to_owned();
        let forged = "ory_kratos_session=bm90IGEgc2VhbGVkIGNvb2tpZSBhdCBhbGwgYnV0IGxvbmcgZW5vdWdo";
        for _ in 0..2 {
            let (st, v) = ask(Some(forged), Some(&token), None).await;
            assert_eq!((st.as_u16(), email(&v)), (200, "app@example.org".into()), "{v}");
        }
        let (st, v) = ask(Some(forged), None, None).await;
        assert_eq!(
            st.as_u16(),
            401,
            "a cookie that does not open answers 401 alone: {v}"
        );
        for _ in 0..2 {
            let (st, v) = ask(Some(&cookie), Some(&token), None).await;
            assert_eq!(
                (st.as_u16(), email(&v)),
                (200, "jar@example.org".into()),
                "the cookie comes before the bearer: {v}"
            );
            let (st, v) = ask(Some(&cookie), None, Some(&token)).await;
            assert_eq!(
                (st.as_u16(), email(&v)),
                (200, "app@example.org".into()),
                "the token header comes first: {v}"
            );
        }
        s.shutdown().await;
    }
);

/// Status, headers but `Date`, in order, and the body's bytes.
async fn raw(r: reqwest::RequestBuilder) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let res = r.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res
        .headers()
        .iter()
        .filter(|(k, _)| *k != "date")
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    (status, headers, res.bytes().await.unwrap().to_vec())
}

// The first whoami of a session is built by the router's handler; the next ones come from the cache,
// answered before the router (the public port's fast path). Both must be the same answer, byte for
// byte, by token and by cookie, and with CORS on (whose headers only the router adds).
both_backends!(a_cached_answer_is_the_routers_answer, |b: Backend| async move {
    for cors in [false, true] {
        let over = if cors {
            json!({"serve": {"public": {"cors": {"enabled": true, "allowed_origins": ["https://app.example.org"], "allow_credentials": true}}}})
        } else {
            json!({})
        };
        let s = TestServer::spawn_with(b, over).await;
        create_identity(&s, "same@example.org", "correct horse battery").await;
        let (_, n) = native_login(&s, "same@example.org", "correct horse battery").await;
        let token = n["session_token"].as_str().unwrap().to_owned();
        let cookie = session_cookie(&s, "same@example.org").await;
        let by_token = || {
            api()
                .get(s.public_url("sessions/whoami"))
                .header("Origin", "https://app.example.org")
                .header("X-Session-Token", &token)
        };
        let by_cookie = || {
            api()
                .get(s.public_url("sessions/whoami"))
                .header("Origin", "https://app.example.org")
                .header("Cookie", &cookie)
        };
        for ask in [&by_token as &dyn Fn() -> reqwest::RequestBuilder, &by_cookie] {
            // On PostgreSQL the logins' change notifications arrive a moment later and retire what
            // was cached before them: ask again until no change came in between, so the later
            // answers were cache hits.
            let mut first = raw(ask()).await;
            for _ in 0..50 {
                let before = s.app.store.read_generation();
                first = raw(ask()).await;
                let again = [raw(ask()).await, raw(ask()).await];
                assert_eq!(first.0, 200, "{}", String::from_utf8_lossy(&first.2));
                assert_eq!(again, [first.clone(), first.clone()], "cors {cors}");
                if before.is_some() && s.app.store.read_generation() == before {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            assert!(s.app.store.read_generation().is_some(), "the cache is on");
            let names: Vec<&str> = first.1.iter().map(|(k, _)| k.as_str()).collect();
            for h in [
                "content-type",
                "x-kratos-authenticated-identity-id",
                "cache-control",
                "vary",
            ] {
                assert!(names.contains(&h), "{h} in {names:?}");
            }
            assert_eq!(names.contains(&"access-control-allow-origin"), cors, "{names:?}");
        }
        s.shutdown().await;
    }
});

both_backends!(whoami_cache_can_be_turned_off, |b: Backend| async move {
    let s = TestServer::spawn_with(b, json!({"sallyport": {"cache": {"whoami_max_bytes": "0B"}}})).await;
    create_identity(&s, "off@example.org", "correct horse battery").await;
    let (_, a) = native_login(&s, "off@example.org", "correct horse battery").await;
    whoami_twice(&s, a["session_token"].as_str().unwrap()).await;
    s.shutdown().await;
});

/// Two nodes on one PostgreSQL database: a logout on one is refused by the other, which had cached
/// the session, as soon as the change notification arrives (the time it took is printed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_logout_on_one_node_is_refused_on_the_other() {
    if std::env::var("TEST_POSTGRES_DSN").is_err() {
        eprintln!("skipped: TEST_POSTGRES_DSN is not set");
        return;
    }
    let a = TestServer::spawn(Backend::Postgres).await;
    let b = TestServer::spawn_sharing(&a, json!({})).await;
    create_identity(&a, "nodes@example.org", "correct horse battery").await;
    let (_, login) = native_login(&a, "nodes@example.org", "correct horse battery").await;
    let t = login["session_token"].as_str().unwrap();
    // Until b's listener is connected its answers are not cached; give it a moment, then cache.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while b.app.store.read_generation().is_none() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        b.app.store.read_generation().is_some(),
        "node b never heard the change channel"
    );
    whoami_twice(&b, t).await;
    let res = api()
        .delete(a.public_url("self-service/logout/api"))
        .json(&json!({"session_token": t}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let t0 = std::time::Instant::now();
    loop {
        let (st, _) = whoami(&b, t).await;
        if st == 401 {
            break;
        }
        assert_eq!(st, 200);
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(2),
            "node b still answers 200"
        );
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    eprintln!(
        "node b refused the session {:?} after node a's logout answered",
        t0.elapsed()
    );
    b.shutdown().await;
    a.shutdown().await;
}
