//! The built-in pages under `/ui/`: used as every flow's UI when the config names none, rendered
//! from the flow's nodes, escaped, localised, and refusing what a front end must refuse.

use reqwest::Client;
use serde_json::{Value, json};

use crate::both_backends;
use crate::support::client::{browser, browser_login, create_identity, location};
use crate::support::{Backend, TestServer};

/// The test config without any `ui_url`, so the built-in pages are the flows' UI.
fn no_ui_urls() -> Value {
    json!({
        "selfservice": {
            "flows": {
                "login": {"ui_url": null},
                "registration": {"ui_url": null},
                "settings": {"ui_url": null},
                "error": {"ui_url": null},
                "logout": null,
                "recovery": {"enabled": true, "use": "code"},
                "verification": {"enabled": true, "use": "code"}
            }
        }
    })
}

async fn builtin(backend: Backend) -> TestServer {
    TestServer::spawn_with(backend, no_ui_urls()).await
}

/// Follows redirects by hand (the jar keeps the cookies), returning the final response.
async fn follow(c: &Client, mut url: String, lang: &str) -> reqwest::Response {
    for _ in 0..10 {
        let res = c.get(&url).header("Accept-Language", lang).send().await.unwrap();
        if !res.status().is_redirection() {
            return res;
        }
        url = location(&res);
    }
    panic!("too many redirects from {url}");
}

async fn page(c: &Client, url: String, lang: &str) -> (u16, String, reqwest::header::HeaderMap, String) {
    let res = follow(c, url, lang).await;
    let final_url = res.url().to_string();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, res.text().await.unwrap(), headers, final_url)
}

both_backends!(flows_default_to_the_builtin_pages, |backend| async move {
    let s = builtin(backend).await;
    for kind in ["login", "registration", "recovery", "verification"] {
        let c = browser();
        let res = c
            .get(s.public_url(&format!("self-service/{kind}/browser")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        let to = location(&res);
        assert!(
            to.starts_with(&s.public_url(&format!("ui/{kind}?flow="))),
            "{kind}: {to}"
        );
        let (status, html, headers, _) = page(&c, to, "en").await;
        assert_eq!(status, 200, "{kind}: {html}");
        assert_eq!(headers["content-type"], "text/html; charset=utf-8");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert!(html.contains("<form id=\"flow\""), "{kind}: {html}");
        assert!(
            html.contains("name=\"csrf_token\""),
            "{kind}: the CSRF token is in the form"
        );
        assert!(
            !html.contains("<script"),
            "{kind}: no script on a password/code page"
        );
        assert!(!html.contains("style="), "{kind}: no inline style");
        assert!(html.len() < 30 * 1024, "{kind}: {} bytes", html.len());
        // Every label belongs to an input of the form.
        for (i, _) in html.match_indices("<label for=\"") {
            let id = &html[i + 12..][..html[i + 12..].find('"').unwrap()];
            assert!(html.contains(&format!("id=\"{id}\"")), "{kind}: label for {id}");
        }
    }
    // The stylesheet is served, with the brand colour.
    let css = browser()
        .get(s.public_url("ui/assets/style.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert!(css.text().await.unwrap().starts_with(":root{--primary:#1d4ed8}"));
    s.shutdown().await;
});

both_backends!(configured_ui_urls_stay_headless, |backend| async move {
    let s = TestServer::spawn(backend).await;
    let res = browser()
        .get(s.public_url("self-service/login/browser"))
        .send()
        .await
        .unwrap();
    assert!(
        location(&res).starts_with("http://ui.test/login?flow="),
        "{}",
        location(&res)
    );
    s.shutdown().await;
});

both_backends!(login_nodes_render_as_form_fields, |backend| async move {
    let s = builtin(backend).await;
    let c = browser();
    let (_, html, _, url) = page(&c, s.public_url("ui/login"), "en").await;
    assert!(url.contains("/ui/login?flow="), "{url}");
    let flow_id = url.split("flow=").nth(1).unwrap();
    let action = format!(
        "action=\"http:&#x2f;&#x2f;{}self-service&#x2f;login?flow={flow_id}\"",
        s.public.trim_start_matches("http://").replace('/', "&#x2f;")
    );
    assert!(
        html.contains(&action),
        "the form posts to the flow's action: {html}"
    );
    assert!(html.contains("name=\"identifier\""));
    assert!(html.contains("type=\"password\""));
    assert!(html.contains("autocomplete=\"current-password\""));
    assert!(html.contains("<button type=\"submit\" id=\"n3\" name=\"method\" value=\"password\">Sign in with password</button>"), "{html}");
    assert!(html.contains("<legend>Password</legend>"));
    assert!(html.contains("href=\"registration\""), "a link to sign up");
    assert!(
        html.contains("href=\"recovery\""),
        "a link to recover the account"
    );
    s.shutdown().await;
});

both_backends!(unknown_or_bad_flow_ids_start_a_fresh_flow, |backend| async move {
    let s = builtin(backend).await;
    let c = browser();
    for id in [uuid::Uuid::new_v4().to_string(), "not-a-uuid".into()] {
        let res = c
            .get(s.public_url(&format!("ui/login?flow={id}&refresh=true")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303, "{id}");
        assert_eq!(
            location(&res),
            s.public_url("self-service/login/browser?refresh=true"),
            "{id}"
        );
    }
    // No flow id at all: start one, keeping the parameters.
    let res = c
        .get(s.public_url("ui/registration?return_to=http%3A%2F%2Fapp.test%2Fx"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        location(&res),
        s.public_url("self-service/registration/browser?return_to=http%3A%2F%2Fapp.test%2Fx")
    );
    // Unknown pages are a 404 page, not a flow.
    let res = c.get(s.public_url("ui/nonsense")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    s.shutdown().await;
});

both_backends!(markup_in_values_and_messages_is_escaped, |backend| async move {
    let s = builtin(backend).await;
    let c = browser();
    let evil = "<img src=x onerror=alert(1)>\"'";
    let res = browser_login(&s, &c, evil, "wrong-password").await;
    let (status, html, _, _) = page(&c, location(&res), "en").await;
    assert_eq!(status, 200);
    assert!(html.contains("4000006"), "the refusal is shown: {html}");
    assert!(!html.contains("<img src=x"), "{html}");
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;&quot;&#x27;"),
        "{html}"
    );
    // A refused return_to echoes the URL in the reason: escaped too.
    let (_, html, _, _) = page(
        &c,
        s.public_url("ui/login?return_to=https%3A%2F%2Fevil.example%2F%3Cscript%3Ealert(1)%3C%2Fscript%3E"),
        "en",
    )
    .await;
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
        "{html}"
    );
    s.shutdown().await;
});

both_backends!(
    return_to_outside_the_allow_list_is_refused_with_a_page,
    |backend| async move {
        let s = builtin(backend).await;
        let c = browser();
        let (status, html, _, url) = page(
            &c,
            s.public_url("ui/login?return_to=https%3A%2F%2Fevil.example%2Fsteal"),
            "en",
        )
        .await;
        assert!(url.starts_with(&s.public_url("ui/error?id=")), "{url}");
        assert_eq!(status, 400);
        assert!(
            html.contains("not on this server&#x27;s list of allowed return addresses"),
            "{html}"
        );
        assert!(html.contains("self_service_flow_return_to_forbidden"));
        assert!(html.contains("evil.example"));
        assert!(
            !html.contains("<form id=\"flow\""),
            "no sign-in form on the refusal"
        );
        // An allowed one is kept on the flow and on the page's links.
        let (status, html, _, _) = page(
            &c,
            s.public_url("ui/login?return_to=http%3A%2F%2Fapp.test%2Fafter"),
            "en",
        )
        .await;
        assert_eq!(status, 200);
        assert!(
            html.contains("href=\"registration?return_to=http%3A%2F%2Fapp.test%2Fafter\""),
            "{html}"
        );
        // Unknown error ids: a page that says so.
        let (status, html, _, _) = page(
            &c,
            s.public_url(&format!("ui/error?id={}", uuid::Uuid::new_v4())),
            "en",
        )
        .await;
        assert_eq!(status, 404);
        assert!(html.contains("no longer available"));
        s.shutdown().await;
    }
);

both_backends!(language_follows_accept_language, |backend| async move {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("fr.json"),
        r#"{"title.login": "Connexion", "1010022": "Se connecter avec un mot de passe"}"#,
    )
    .unwrap();
    let mut cfg = no_ui_urls();
    crate::support::deep_merge(&mut cfg, json!({"sallyport": {"ui": {"locale_dir": dir.path()}}}));
    let s = TestServer::spawn_with(backend, cfg).await;
    let c = browser();
    let (_, html, headers, _) = page(&c, s.public_url("ui/login"), "de-DE,de;q=0.9,en;q=0.5").await;
    assert_eq!(headers["content-language"], "de");
    let vary: Vec<_> = headers
        .get_all("vary")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(vary.contains(&"Accept-Language"), "{vary:?}");
    assert!(html.contains("<html lang=\"de\""));
    assert!(html.contains("<h1>Anmelden</h1>"), "{html}");
    assert!(html.contains(">Mit Passwort anmelden</button>"), "{html}");
    let (_, html, _, _) = page(&c, s.public_url("ui/login"), "it, en;q=0.8").await;
    assert!(html.contains("<h1>Sign in</h1>"), "{html}");
    let (_, html, _, _) = page(&c, s.public_url("ui/login"), "fr-CA").await;
    assert!(
        html.contains("<h1>Connexion</h1>"),
        "a dropped-in language: {html}"
    );
    assert!(
        html.contains(">Se connecter avec un mot de passe</button>"),
        "{html}"
    );
    // Translated messages keep their context values.
    let res = browser_login(&s, &c, "nobody@example.org", "wrong").await;
    let (_, html, _, _) = page(&c, location(&res), "de").await;
    assert!(html.contains("Die Anmeldedaten sind ungültig"), "{html}");
    s.shutdown().await;
});

both_backends!(
    welcome_page_shows_the_session_and_revokes_others,
    |backend| async move {
        let s = builtin(backend).await;
        create_identity(&s, "wanda@example.org", "a-welcome-passw0rd!").await;
        let (me, other) = (browser(), browser());
        for c in [&me, &other] {
            let res = browser_login(&s, c, "wanda@example.org", "a-welcome-passw0rd!").await;
            assert_eq!(res.status(), 303);
        }
        let (status, html, _, _) = page(&me, s.public_url("ui/welcome"), "en").await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains("wanda@example.org"));
        assert!(html.contains("<dd id=\"aal\">aal1</dd>"), "{html}");
        assert!(
            html.contains("data-method=\"password\">Password (aal1)"),
            "{html}"
        );
        assert!(
            html.contains("id=\"revoke-others\""),
            "another session is listed: {html}"
        );
        // A cross-site form cannot do it.
        let res = me
            .post(s.public_url("ui/sessions/revoke-others"))
            .header("Origin", "https://evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
        let whoami = |c: &Client| c.get(s.public_url("sessions/whoami")).send();
        assert_eq!(whoami(&other).await.unwrap().status(), 200);
        let res = me
            .post(s.public_url("ui/sessions/revoke-others"))
            .header("Sec-Fetch-Site", "same-origin")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        assert_eq!(whoami(&other).await.unwrap().status(), 401);
        assert_eq!(whoami(&me).await.unwrap().status(), 200);
        let (_, html, _, _) = page(&me, s.public_url("ui/welcome"), "en").await;
        assert!(html.contains("id=\"sessions-none\""), "{html}");
        // Signed out: the welcome page sends the browser to sign in.
        let res = browser().get(s.public_url("ui/welcome")).send().await.unwrap();
        assert_eq!(location(&res), s.public_url("self-service/login/browser"));
        s.shutdown().await;
    }
);

both_backends!(branding_and_template_override, |backend| async move {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("error.html"),
        "{% extends \"base.html\" %}{% block content %}<p id=\"custom\">{{ reason }}</p>{% endblock %}",
    )
    .unwrap();
    let mut cfg = no_ui_urls();
    crate::support::deep_merge(
        &mut cfg,
        json!({"sallyport": {"ui": {
            "product_name": "Acme <ID>", "logo_url": "https://cdn.acme.example/logo.svg",
            "primary_color": "#a00", "theme": "dark", "template_dir": dir.path()
        }}}),
    );
    let s = TestServer::spawn_with(backend, cfg).await;
    let c = browser();
    let (_, html, headers, _) = page(&c, s.public_url("ui/login"), "en").await;
    assert!(
        html.contains("<title>Sign in · Acme &lt;ID&gt;</title>"),
        "{html}"
    );
    assert!(html.contains("data-theme=\"dark\""));
    assert!(
        html.contains("src=\"https:&#x2f;&#x2f;cdn.acme.example&#x2f;logo.svg\""),
        "{html}"
    );
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("img-src 'self' data: https://cdn.acme.example;"),
        "{csp}"
    );
    let css = c
        .get(s.public_url("ui/assets/style.css"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(css.starts_with(":root{--primary:#a00}"));
    let (_, html, _, _) = page(
        &c,
        s.public_url("ui/login?return_to=https%3A%2F%2Fevil.example%2F"),
        "en",
    )
    .await;
    assert!(
        html.contains("<p id=\"custom\">Requested return_to URL"),
        "the override renders: {html}"
    );
    s.shutdown().await;
});

#[test]
fn bad_branding_is_refused_at_startup() {
    for (key, value) in [
        ("primary_color", json!("red; } body { display:none")),
        ("logo_url", json!("javascript:alert(1)")),
        ("template_dir", json!("/nonexistent/sallyport-templates")),
    ] {
        let cfg = json!({
            "dsn": "memory",
            "selfservice": {"default_browser_return_url": "http://app.test/"},
            "identity": {"default_schema_id": "default", "schemas": [{"id": "default", "url": "base64://e30="}]},
            "sallyport": {"ui": {key: value}}
        });
        let config = sallyport_config::from_value(cfg, true).unwrap();
        let err = sallyport::config_loader::settings(&config, true).unwrap_err();
        assert!(err.to_string().contains(&format!("sallyport.ui.{key}")), "{err}");
    }
}

both_backends!(
    refresh_and_step_up_pages_say_what_they_ask,
    |backend| async move {
        let s = builtin(backend).await;
        create_identity(&s, "rita@example.org", "a-refresh-passw0rd!").await;
        let c = browser();
        assert_eq!(
            browser_login(&s, &c, "rita@example.org", "a-refresh-passw0rd!")
                .await
                .status(),
            303
        );
        let (status, html, _, url) = page(&c, s.public_url("ui/login?refresh=true"), "en").await;
        assert_eq!(status, 200, "{html}");
        assert!(url.contains("/ui/login?flow="), "{url}");
        assert!(html.contains("<h1>Confirm it is you</h1>"), "{html}");
        assert!(
            html.contains("data-id=\"1010003\""),
            "Kratos' re-auth message: {html}"
        );
        assert!(
            html.contains("href=\"logout\""),
            "a way out instead of sign-up links: {html}"
        );
        assert!(!html.contains("href=\"registration\""));
        let (_, html, _, _) = page(&c, s.public_url("ui/login?refresh=true"), "de").await;
        assert!(
            html.contains("<h1>Bestätigen Sie, dass Sie es sind</h1>"),
            "{html}"
        );
        s.shutdown().await;
    }
);

both_backends!(
    one_step_registration_shows_traits_and_password_together,
    |backend| async move {
        let mut cfg = no_ui_urls();
        crate::support::deep_merge(
            &mut cfg,
            json!({"selfservice": {"flows": {"registration": {"enable_legacy_one_step": true}}}}),
        );
        let s = TestServer::spawn_with(backend, cfg).await;
        let c = browser();
        let (status, html, _, _) = page(&c, s.public_url("ui/registration"), "en").await;
        assert_eq!(status, 200);
        assert!(html.contains("name=\"traits.email\""), "{html}");
        assert!(html.contains("name=\"password\""), "one step: {html}");
        assert!(html.contains("autocomplete=\"new-password\""), "{html}");
        // Two-step (the default) asks for the traits first.
        let s2 = builtin(backend).await;
        let (_, html, _, _) = page(&c, s2.public_url("ui/registration"), "en").await;
        assert!(html.contains("name=\"traits.email\""));
        assert!(!html.contains("name=\"password\""), "two steps: {html}");
        assert!(html.contains("value=\"profile\""), "{html}");
        s.shutdown().await;
        s2.shutdown().await;
    }
);

both_backends!(hostile_page_urls_never_fail_the_server, |backend| async move {
    let s = builtin(backend).await;
    let c = browser();
    let long = "a".repeat(5000);
    for path in [
        "ui/login?flow=%ff".to_string(),
        "ui/error?id=%ff%fe".to_string(),
        format!("ui/login?flow={long}"),
        "ui/settings?flow=..%2F..%2Fadmin".to_string(),
        "ui/verification?flow=1&flow=2&return_to=%0d%0aSet-Cookie:x=y".to_string(),
        "ui/%3Cscript%3E".to_string(),
        "ui/welcome?x=%00".to_string(),
    ] {
        let res = c.get(s.public_url(&path)).send().await.unwrap();
        assert!(res.status().as_u16() < 500, "{path}: {}", res.status());
        let loc = location(&res);
        assert!(!loc.contains('\n') && !loc.contains('\r'), "{path}: {loc}");
        let text = res.text().await.unwrap();
        assert!(!text.contains("<script>"), "{path}: {text}");
    }
    s.shutdown().await;
});
