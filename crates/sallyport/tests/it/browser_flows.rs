//! Plain browsers: HTML form posts, cookies, 303 redirects to the UI.

use serde_json::json;

use crate::both_backends;
use crate::support::client::{browser, create_identity, flow_id_from, location, send};
use crate::support::{Backend, RETURN, TestServer, UI};

both_backends!(browser_login_sets_cookie_and_redirects, |b: Backend| async move {
    let s = TestServer::spawn(b).await;
    create_identity(&s, "fay@example.org", "correct horse battery").await;
    let c = browser();
    let res = c
        .get(s.public_url("self-service/login/browser"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let loc = location(&res);
    assert!(loc.starts_with(&format!("{UI}/login?flow=")), "{loc}");
    let set_cookie: Vec<String> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        set_cookie
            .iter()
            .any(|c| c.starts_with("csrf_token_") && c.contains("HttpOnly")),
        "{set_cookie:?}"
    );
    let id = flow_id_from(&loc);

    // The UI fetches the flow with the browser's cookies.
    let (st, flow) = send(c.get(s.public_url(&format!("self-service/login/flows?id={id}")))).await;
    assert_eq!(st, 200, "{flow}");
    let token = crate::support::client::csrf(&flow);
    assert!(!token.is_empty());

    // Wrong password: back to the UI with the same flow.
    let res = c
        .post(s.public_url(&format!("self-service/login?flow={id}")))
        .form(&[
            ("method", "password"),
            ("identifier", "fay@example.org"),
            ("password", "nope-nope-nope"),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), format!("{UI}/login?flow={id}"));
    let (_, flow) = send(c.get(s.public_url(&format!("self-service/login/flows?id={id}")))).await;
    assert_eq!(flow["ui"]["messages"][0]["id"], 4000006);

    let res = c
        .post(s.public_url(&format!("self-service/login?flow={id}")))
        .form(&[
            ("method", "password"),
            ("identifier", "fay@example.org"),
            ("password", "correct horse battery"),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), RETURN);
    let cookies: Vec<String> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let session_cookie = cookies
        .iter()
        .find(|c| c.starts_with("ory_kratos_session="))
        .expect("session cookie");
    assert!(
        session_cookie.contains("HttpOnly") && session_cookie.contains("Max-Age="),
        "{session_cookie}"
    );
    assert!(
        !session_cookie.contains("ory_st_"),
        "the cookie carries the token encrypted"
    );

    let (st, who) = send(c.get(s.public_url("sessions/whoami"))).await;
    assert_eq!(st, 200);
    assert_eq!(who["identity"]["traits"]["email"], "fay@example.org");

    // Signed in: a new login flow sends the browser back to the app.
    let res = c
        .get(s.public_url("self-service/login/browser"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), RETURN);

    // Logout: fetch the URL, follow it.
    let (st, lo) = send(c.get(s.public_url("self-service/logout/browser"))).await;
    assert_eq!(st, 200, "{lo}");
    assert!(lo["logout_token"].as_str().unwrap().starts_with("ory_lo_"));
    let res = c.get(lo["logout_url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), format!("{UI}/login"));
    let res = c.get(s.public_url("sessions/whoami")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    s.shutdown().await;
});

both_backends!(browser_csrf_mismatch_goes_to_error_ui, |b: Backend| async move {
    let s = TestServer::spawn(b).await;
    let c = browser();
    let res = c
        .get(s.public_url("self-service/login/browser"))
        .send()
        .await
        .unwrap();
    let id = flow_id_from(&location(&res));
    let res = c
        .post(s.public_url(&format!("self-service/login?flow={id}")))
        .form(&[
            ("method", "password"),
            ("identifier", "x@example.org"),
            ("password", "whatever-12345"),
            ("csrf_token", "bm90LXRoZS10b2tlbg=="),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let loc = location(&res);
    assert!(loc.starts_with(&format!("{UI}/error?id=")), "{loc}");
    let err_id = url::Url::parse(&loc)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "id")
        .unwrap()
        .1
        .into_owned();
    let (st, e) = send(c.get(s.public_url(&format!("self-service/errors?id={err_id}")))).await;
    assert_eq!(st, 200);
    assert_eq!(e["error"]["id"], "security_csrf_violation");
    assert_eq!(e["error"]["code"], 403);
    // A browser without the CSRF cookie cannot fetch the flow either.
    let res = browser()
        .get(s.public_url(&format!("self-service/login/flows?id={id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    s.shutdown().await;
});

both_backends!(
    browser_registration_two_steps_with_form_posts,
    |b: Backend| async move {
        let s = TestServer::spawn(b).await;
        let c = browser();
        let res = c
            .get(s.public_url("self-service/registration/browser?return_to=http://app.test/after"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        let id = flow_id_from(&location(&res));
        let (_, flow) = send(c.get(s.public_url(&format!("self-service/registration/flows?id={id}")))).await;
        assert_eq!(flow["return_to"], "http://app.test/after");
        let token = crate::support::client::csrf(&flow);
        let url = s.public_url(&format!("self-service/registration?flow={id}"));
        let res = c
            .post(&url)
            .form(&[
                ("method", "profile"),
                ("traits.email", "gil@example.org"),
                ("csrf_token", &token),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        let res = c
            .post(&url)
            .form(&[
                ("method", "password"),
                ("traits.email", "gil@example.org"),
                ("password", "a-strong-passw0rd!"),
                ("csrf_token", &token),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        assert_eq!(location(&res), "http://app.test/after");
        let (st, who) = send(c.get(s.public_url("sessions/whoami"))).await;
        assert_eq!(st, 200, "the session hook signed the new identity in");
        assert_eq!(who["identity"]["traits"]["email"], "gil@example.org");
        // Validation errors on registration redirect with 302, as Kratos does.
        let c2 = browser();
        let res = c2
            .get(s.public_url("self-service/registration/browser"))
            .send()
            .await
            .unwrap();
        let id = flow_id_from(&location(&res));
        let (_, flow) = send(c2.get(s.public_url(&format!("self-service/registration/flows?id={id}")))).await;
        let token = crate::support::client::csrf(&flow);
        let res = c2
            .post(s.public_url(&format!("self-service/registration?flow={id}")))
            .form(&[
                ("method", "profile"),
                ("traits.email", "not-an-email"),
                ("csrf_token", &token),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 302);
        s.shutdown().await;
    }
);

both_backends!(return_to_must_be_allow_listed, |b: Backend| async move {
    let s = TestServer::spawn(b).await;
    let c = browser();
    let (st, e) = send(
        c.get(s.public_url("self-service/login/browser?return_to=https://evil.example/steal"))
            .header("Accept", "application/json"),
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(e["error"]["id"], "self_service_flow_return_to_forbidden");
    let res = c
        .get(s.public_url("self-service/login/browser?return_to=https://evil.example/steal"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with(&format!("{UI}/error?id=")));
    let _ = json!({});
    s.shutdown().await;
});
