//! Social sign-in (`oidc`) against a real OpenID Provider (npm `oidc-provider` on loopback): provider
//! buttons, the redirect, the callback, and everything that must end without a session.

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::both_backends;
use crate::support::client::{body, browser, create_identity, csrf, location, message_ids, send};
use crate::support::op::{self, Op, Person};
use crate::support::{Backend, RETURN, TestServer, UI};
use sallyport_oidc::CallbackParams;

/// Email only (the test schema's `name` is an object); the provider's `email_verified` is passed on.
const MAPPER: &str = r#"
local claims = std.extVar('claims');
{
  identity: {
    traits: { email: claims.email },
    verified_addresses: if 'email_verified' in claims && claims.email_verified
      then [{ value: claims.email, via: 'email' }] else [],
  },
}
"#;

const CIPHER_SECRET: &str = "0123456789abcdef0123456789abcdef";

async fn setup(backend: Backend) -> Option<(Op, TestServer)> {
    setup_with_mapper(backend, MAPPER).await
}

async fn setup_with_mapper(backend: Backend, mapper: &str) -> Option<(Op, TestServer)> {
    setup_full(backend, mapper, json!({}), json!({})).await
}

/// `op_settings` go to the provider script, `provider` is merged into Sallyport's provider entry.
async fn setup_full(
    backend: Backend,
    mapper: &str,
    op_settings: Value,
    provider: Value,
) -> Option<(Op, TestServer)> {
    let op = Op::start(op_settings).await?;
    let mut entry = json!({
        "id": "op", "provider": "generic", "label": "Test OP", "issuer_url": op.issuer(),
        "client_id": op::CLIENT_ID, "client_secret": op::CLIENT_SECRET,
        "mapper_url": format!("base64://{}", op::b64(mapper)), "scope": ["email", "profile"],
    });
    crate::support::deep_merge(&mut entry, provider);
    let s = TestServer::spawn_with(
        backend,
        json!({
            "selfservice": {
                "methods": {"oidc": {"enabled": true, "config": {
                    // The provider knows the fixed redirect URI; the test carries the browser to this server.
                    "base_redirect_uri": op::PUBLIC_BASE,
                    "providers": [entry],
                }}},
                "flows": {"registration": {"after": {"oidc": {"hooks": [{"hook": "session"}]}}}},
            },
            "ciphers": {"algorithm": "xchacha20-poly1305"},
            "secrets": {"cipher": [CIPHER_SECRET]},
        }),
    )
    .await;
    Some((op, s))
}

/// The callback the provider sent the browser to, on this server.
fn callback_url(s: &TestServer, p: &CallbackParams) -> String {
    // Providers with `pkce: force` use the generic callback, without the provider in the path.
    let path = match &p.provider_in_path {
        Some(id) => format!("self-service/methods/oidc/callback/{id}"),
        None => "self-service/methods/oidc/callback".to_owned(),
    };
    let mut u = url::Url::parse(&s.public_url(&path)).unwrap();
    {
        let mut q = u.query_pairs_mut();
        for (k, v) in [
            ("state", &p.state),
            ("code", &p.code),
            ("error", &p.error),
            ("error_description", &p.error_description),
        ] {
            if let Some(v) = v {
                q.append_pair(k, v);
            }
        }
    }
    u.to_string()
}

async fn new_flow(s: &TestServer, c: &Client, kind: &str) -> Value {
    let (st, flow) = send(
        c.get(s.public_url(&format!("self-service/{kind}/browser")))
            .header("Accept", "application/json"),
    )
    .await;
    assert_eq!(st, 200, "{flow}");
    flow
}

/// Clicks the provider button as a plain HTML form does (only `provider` and the CSRF token).
async fn click_provider(c: &Client, flow: &Value, provider: &str) -> reqwest::Response {
    c.post(flow["ui"]["action"].as_str().unwrap())
        .form(&[("csrf_token", csrf(flow).as_str()), ("provider", provider)])
        .send()
        .await
        .unwrap()
}

/// Submits the flow, signs in at the provider as `person`, and returns the callback URL on this server.
async fn through_provider(s: &TestServer, c: &Client, flow: &Value, person: Person) -> String {
    let res = click_provider(c, flow, "op").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let to = url::Url::parse(&location(&res)).unwrap();
    let params = op::browse(&to, person).await;
    callback_url(s, &params)
}

async fn whoami(s: &TestServer, c: &Client) -> (StatusCode, Value) {
    send(c.get(s.public_url("sessions/whoami"))).await
}

async fn flow_of(s: &TestServer, c: &Client, kind: &str, ui_location: &str) -> Value {
    let id = crate::support::client::flow_id_from(ui_location);
    let (st, flow) = send(c.get(s.public_url(&format!("self-service/{kind}/flows?id={id}")))).await;
    assert_eq!(st, 200, "{flow}");
    flow
}

fn messages(flow: &Value) -> String {
    flow["ui"]["messages"].to_string()
}

both_backends!(
    registration_then_login_via_provider,
    |backend: Backend| async move {
        let Some((_op, s)) = setup(backend).await else {
            return;
        };
        let c = browser();
        let flow = new_flow(&s, &c, "registration").await;
        let button = flow["ui"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["attributes"]["name"] == "provider")
            .expect("a provider button");
        assert_eq!(button["group"], "oidc");
        assert_eq!(button["attributes"]["type"], "submit");
        assert_eq!(button["attributes"]["value"], "op");
        assert_eq!(button["meta"]["label"]["id"], 1040002);
        assert_eq!(button["meta"]["label"]["text"], "Sign up with Test OP");
        assert_eq!(button["meta"]["label"]["context"]["provider_id"], "op");

        let res = click_provider(&c, &flow, "op").await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let to = url::Url::parse(&location(&res)).unwrap();
        let q: std::collections::HashMap<String, String> = to.query_pairs().into_owned().collect();
        assert!(q.contains_key("state") && q.contains_key("nonce"), "{to}");
        assert_eq!(q["client_id"], op::CLIENT_ID);
        // The pending sign-in (with its PKCE verifier) never reaches the client.
        let (_, fetched) = send(c.get(s.public_url(&format!(
            "self-service/registration/flows?id={}",
            flow["id"].as_str().unwrap()
        ))))
        .await;
        let text = fetched.to_string();
        assert!(
            !text.contains("oidc_pending") && !text.contains(&q["state"]),
            "{text}"
        );

        let params = op::browse(&to, Person::SignsInAndConsents("ann")).await;
        let res = c.get(callback_url(&s, &params)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&res), RETURN);
        let (st, session) = whoami(&s, &c).await;
        assert_eq!(st, 200, "{session}");
        let identity = &session["identity"];
        assert_eq!(identity["traits"]["email"], "ann@example.org");
        // The provider asserted `email_verified`: stored verified, no verification needed.
        assert_eq!(
            identity["verifiable_addresses"][0]["verified"], true,
            "{identity}"
        );
        assert_eq!(identity["verifiable_addresses"][0]["status"], "completed");
        assert_eq!(session["authentication_methods"][0]["method"], "oidc");
        assert_eq!(session["authentication_methods"][0]["provider"], "op");
        let id = identity["id"].as_str().unwrap().to_owned();

        // Tokens: encrypted at rest, readable in plain text through include_credential=oidc.
        let stored = s.app.store.get_identity(id.parse().unwrap()).await.unwrap();
        let cred = &stored.credentials["oidc"];
        assert_eq!(cred.identifiers, vec!["op:ann".to_owned()]);
        let sealed = cred.config["providers"][0]["initial_access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(!sealed.is_empty());
        let (st, admin) = send(
            crate::support::client::api()
                .get(s.admin_url(&format!("admin/identities/{id}?include_credential=oidc"))),
        )
        .await;
        assert_eq!(st, 200);
        let p = &admin["credentials"]["oidc"]["config"]["providers"][0];
        assert_eq!(p["subject"], "ann");
        assert_eq!(p["provider"], "op");
        let access = p["initial_access_token"].as_str().unwrap();
        assert!(!access.is_empty() && access != sealed, "{p}");
        assert_eq!(
            p["initial_id_token"].as_str().unwrap().split('.').count(),
            3,
            "a JWT"
        );

        // The same person signs in again from another browser: the same identity, no second one.
        let c2 = browser();
        let flow = new_flow(&s, &c2, "login").await;
        let button = crate::support::client::node(&flow, "provider").unwrap();
        assert_eq!(button["meta"]["label"]["id"], 1010002);
        assert_eq!(button["meta"]["label"]["text"], "Sign in with Test OP");
        let cb = through_provider(&s, &c2, &flow, Person::SignsInAndConsents("ann")).await;
        let res = c2.get(&cb).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&res), RETURN);
        let (st, session) = whoami(&s, &c2).await;
        assert_eq!(st, 200);
        assert_eq!(session["identity"]["id"], id.as_str());

        // The callback URL opened in another browser (a login-CSRF attempt): refused, no session there.
        let c3 = browser();
        let res = c3.get(&cb).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert!(
            location(&res).starts_with(&format!("{UI}/login?flow=")),
            "{}",
            location(&res)
        );
        assert_eq!(whoami(&s, &c3).await.0, 401);
        s.shutdown().await;
    }
);

both_backends!(
    login_with_unknown_subject_registers,
    |backend: Backend| async move {
        let Some((_op, s)) = setup(backend).await else {
            return;
        };
        let c = browser();
        let flow = new_flow(&s, &c, "login").await;
        let cb = through_provider(&s, &c, &flow, Person::SignsInAndConsents("bob")).await;
        // Opened in another browser first (login CSRF): refused there, and the pending sign-in stays
        // for the browser that started it.
        let other = browser();
        let res = other.get(&cb).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert!(location(&res).starts_with(&format!("{UI}/login?flow=")));
        assert_eq!(whoami(&s, &other).await.0, 401);
        let res = c.get(&cb).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&res), RETURN);
        let (st, session) = whoami(&s, &c).await;
        assert_eq!(st, 200, "{session}");
        assert_eq!(session["identity"]["traits"]["email"], "bob@example.org");
        // bob's provider does not vouch for the address: it stays unverified.
        assert_eq!(session["identity"]["verifiable_addresses"][0]["verified"], false);
        s.shutdown().await;
    }
);

both_backends!(
    ajax_submit_answers_422_with_the_provider_url,
    |backend: Backend| async move {
        let Some((_op, s)) = setup(backend).await else {
            return;
        };
        let c = browser();
        let flow = new_flow(&s, &c, "login").await;
        let (st, err) = send(
            c.post(flow["ui"]["action"].as_str().unwrap())
                .header("Accept", "application/json")
                .json(&json!({"method": "oidc", "provider": "op", "csrf_token": csrf(&flow)})),
        )
        .await;
        assert_eq!(st, 422, "{err}");
        assert_eq!(err["error"]["id"], "browser_location_change_required");
        assert!(
            err["redirect_browser_to"].as_str().unwrap().contains("/auth?"),
            "{err}"
        );
        s.shutdown().await;
    }
);

both_backends!(
    forged_state_and_denial_leave_no_session,
    |backend: Backend| async move {
        let Some((_op, s)) = setup(backend).await else {
            return;
        };
        // Forged: well-formed, naming the flow, wrong random part.
        let c = browser();
        let flow = new_flow(&s, &c, "login").await;
        let res_click = click_provider(&c, &flow, "op").await;
        assert_eq!(res_click.status(), StatusCode::SEE_OTHER);
        let flow_id = flow["id"].as_str().unwrap().replace('-', "");
        let forged = format!("l.{flow_id}.{}", op::b64(&"x".repeat(32)).replace('=', ""));
        let url = format!(
            "{}?state={forged}&code=whatever",
            s.public_url("self-service/methods/oidc/callback/op")
        );
        let res = c.get(&url).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let to = location(&res);
        assert!(to.starts_with(&format!("{UI}/login?flow=")), "{to}");
        let shown = flow_of(&s, &c, "login", &to).await;
        assert!(messages(&shown).contains("state parameter"), "{shown}");
        assert_eq!(whoami(&s, &c).await.0, 401);
        // The genuine callback comes too late: the forged one used up the pending sign-in (one try
        // per redirect, so no callback can be replayed).
        let params = op::browse(
            &url::Url::parse(&location(&res_click)).unwrap(),
            Person::SignsInAndConsents("ann"),
        )
        .await;
        let res = c.get(callback_url(&s, &params)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert!(location(&res).starts_with(&format!("{UI}/login?flow=")));
        assert_eq!(whoami(&s, &c).await.0, 401);

        // No state at all: nothing names a flow, so the error page.
        let res = c
            .get(s.public_url("self-service/methods/oidc/callback/op?code=x"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert!(
            location(&res).starts_with(&format!("{UI}/error?id=")),
            "{}",
            location(&res)
        );

        // The person cancels at the provider: `error=access_denied` lands on the flow.
        let flow = new_flow(&s, &c, "login").await;
        let cb = through_provider(&s, &c, &flow, Person::Cancels).await;
        assert!(cb.contains("error=access_denied"), "{cb}");
        let res = c.get(&cb).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let shown = flow_of(&s, &c, "login", &location(&res)).await;
        assert_eq!(message_ids(&shown), vec![4000001], "{shown}");
        assert!(messages(&shown).contains("access_denied"), "{shown}");
        assert_eq!(whoami(&s, &c).await.0, 401);
        s.shutdown().await;
    }
);

both_backends!(unknown_provider_is_refused, |backend: Backend| async move {
    let Some((_op, s)) = setup(backend).await else {
        return;
    };
    let c = browser();
    let flow = new_flow(&s, &c, "login").await;
    let (st, err) = send(
        c.post(flow["ui"]["action"].as_str().unwrap())
            .header("Accept", "application/json")
            .json(&json!({"method": "oidc", "provider": "nope", "csrf_token": csrf(&flow)})),
    )
    .await;
    assert_eq!(st, 404, "{err}");
    assert!(
        err["error"]["reason"].as_str().unwrap().contains("\"nope\""),
        "{err}"
    );
    let res = click_provider(&c, &new_flow(&s, &c, "registration").await, "nope").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(
        location(&res).starts_with(&format!("{UI}/error?id=")),
        "{}",
        location(&res)
    );
    assert_eq!(whoami(&s, &c).await.0, 401);
    s.shutdown().await;
});

both_backends!(
    duplicate_email_is_not_merged_but_linked_after_sign_in,
    |backend: Backend| async move {
        let Some((_op, s)) = setup(backend).await else {
            return;
        };
        let existing = create_identity(&s, "ann@example.org", "a-strong-passw0rd!").await;
        let c = browser();
        let flow = new_flow(&s, &c, "registration").await;
        let cb = through_provider(&s, &c, &flow, Person::SignsInAndConsents("ann")).await;
        let res = c.get(&cb).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let to = location(&res);
        assert!(to.starts_with(&format!("{UI}/login?flow=")), "{to}");
        assert_eq!(whoami(&s, &c).await.0, 401);
        // Kratos' answer: a fresh login flow asking to sign in to the existing account first.
        let login = flow_of(&s, &c, "login", &to).await;
        assert_eq!(login["ui"]["messages"][0]["id"], 1010016, "{login}");
        assert_eq!(
            login["ui"]["messages"][0]["context"]["duplicateIdentifier"],
            "ann@example.org"
        );
        assert_eq!(
            crate::support::client::node(&login, "identifier").unwrap()["attributes"]["value"],
            "ann@example.org"
        );
        let confirm = crate::support::client::node(&login, "provider").unwrap();
        assert_eq!(confirm["meta"]["label"]["id"], 1010018, "{login}");
        assert_eq!(confirm["meta"]["label"]["text"], "Confirm with Test OP");
        // Nothing merged: one identity, still without an oidc credential.
        let (_, list) = send(crate::support::client::api().get(s.admin_url("admin/identities"))).await;
        assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
        let stored = s.app.store.get_identity(existing.parse().unwrap()).await.unwrap();
        assert!(!stored.credentials.contains_key("oidc"));
        // Signing in to the existing account on that flow proves it; only then is the provider linked.
        let res = c
            .post(login["ui"]["action"].as_str().unwrap())
            .form(&[
                ("csrf_token", csrf(&login).as_str()),
                ("method", "password"),
                ("identifier", "ann@example.org"),
                ("password", "a-strong-passw0rd!"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&res), RETURN);
        let stored = s.app.store.get_identity(existing.parse().unwrap()).await.unwrap();
        assert_eq!(stored.credentials["oidc"].identifiers, vec!["op:ann".to_owned()]);
        assert!(stored.credentials.contains_key("password"));
        let c2 = browser();
        let flow = new_flow(&s, &c2, "login").await;
        let cb = through_provider(&s, &c2, &flow, Person::SignsInAndConsents("ann")).await;
        assert_eq!(c2.get(&cb).send().await.unwrap().status(), StatusCode::SEE_OTHER);
        assert_eq!(whoami(&s, &c2).await.1["identity"]["id"], existing.as_str());
        s.shutdown().await;
    }
);

both_backends!(
    mapper_traits_the_schema_rejects_stay_on_the_flow,
    |backend: Backend| async move {
        // The crate's default test mapper maps `name` to a string; this schema wants an object.
        let Some((_op, s)) = setup_with_mapper(backend, op::MAPPER).await else {
            return;
        };
        let c = browser();
        let flow = new_flow(&s, &c, "registration").await;
        let cb = through_provider(&s, &c, &flow, Person::SignsInAndConsents("ann")).await;
        let res = c.get(&cb).send().await.unwrap();
        let to = location(&res);
        assert!(to.starts_with(&format!("{UI}/registration?flow=")), "{to}");
        assert_eq!(whoami(&s, &c).await.0, 401);
        let shown = flow_of(&s, &c, "registration", &to).await;
        assert!(!message_ids(&shown).is_empty(), "{shown}");
        let (_, list) = body(
            crate::support::client::api()
                .get(s.admin_url("admin/identities"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(list.as_array().unwrap().len(), 0, "{list}");
        // Kratos' completion form: only the traits, filled with what the provider gave, and
        // "Continue" (1040003) with the same provider.
        let nodes = shown["ui"]["nodes"].as_array().unwrap();
        let named = |n: &str| nodes.iter().find(|x| x["attributes"]["name"] == n);
        let cont = named("provider").expect("continue button");
        assert_eq!(cont["attributes"]["value"], "op", "{cont}");
        assert_eq!(cont["meta"]["label"]["id"], 1040003, "{cont}");
        assert_eq!(
            named("traits.email").unwrap()["attributes"]["value"],
            "ann@example.org"
        );
        assert!(named("traits.name.first").is_some(), "{shown}");
        assert!(named("password").is_none(), "{shown}");
        // Continuing goes through the provider again; the typed traits win over the provider's.
        let res = c
            .post(shown["ui"]["action"].as_str().unwrap())
            .form(&[
                ("csrf_token", csrf(&shown).as_str()),
                ("provider", "op"),
                ("traits.email", "ann@example.org"),
                ("traits.name.first", "Ann"),
                ("traits.name.last", "Typed"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let to = url::Url::parse(&location(&res)).unwrap();
        let params = op::browse(&to, Person::SignsInAndConsents("ann")).await;
        let res = c.get(callback_url(&s, &params)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let (st, who) = whoami(&s, &c).await;
        assert_eq!(st, 200, "{who}");
        assert_eq!(who["identity"]["traits"]["name"]["last"], "Typed", "{who}");
        assert_eq!(who["identity"]["traits"]["email"], "ann@example.org", "{who}");
        s.shutdown().await;
    }
);

both_backends!(form_post_callback_and_return_to, |backend: Backend| async move {
    let Some((_op, s)) = setup(backend).await else {
        return;
    };
    let c = browser();
    let (st, flow) = send(
        c.get(s.public_url("self-service/registration/browser?return_to=http://app.test/after"))
            .header("Accept", "application/json"),
    )
    .await;
    assert_eq!(st, 200, "{flow}");
    let res = click_provider(&c, &flow, "op").await;
    let params = op::browse(
        &url::Url::parse(&location(&res)).unwrap(),
        Person::SignsInAndConsents("ann"),
    )
    .await;
    // Apple's `form_post`: the provider makes the browser POST the result; it becomes a GET.
    let res = c
        .post(s.public_url("self-service/methods/oidc/callback/op"))
        .form(&[
            ("state", params.state.clone().unwrap()),
            ("code", params.code.clone().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let to = url::Url::parse(&s.public).unwrap().join(&location(&res)).unwrap();
    assert_eq!(to.path(), "/self-service/methods/oidc/callback/op");
    let res = c.get(to).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "http://app.test/after");
    assert_eq!(whoami(&s, &c).await.0, 200);
    s.shutdown().await;
});

fn settings_node<'a>(flow: &'a Value, name: &str, value: &str) -> Option<&'a Value> {
    flow["ui"]["nodes"]
        .as_array()?
        .iter()
        .find(|n| n["attributes"]["name"] == name && n["attributes"]["value"] == value)
}

both_backends!(settings_link_and_unlink, |backend: Backend| async move {
    let Some((_op, s)) = setup(backend).await else {
        return;
    };
    let id = create_identity(&s, "ann@example.org", "a-strong-passw0rd!").await;
    let c = browser();
    let res = crate::support::client::browser_login(&s, &c, "ann@example.org", "a-strong-passw0rd!").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let refresh = |c: &Client| {
        let c = c.clone();
        let url = s.public_url("self-service/login/browser?refresh=true");
        async move { send(c.get(url).header("Accept", "application/json")).await.1 }
    };
    // Re-authentication offers only linked providers: none yet.
    assert!(crate::support::client::node(&refresh(&c).await, "provider").is_none());
    let flow = new_flow(&s, &c, "settings").await;
    let link = settings_node(&flow, "link", "op").expect("a link node");
    assert_eq!(link["group"], "oidc");
    assert_eq!(link["meta"]["label"]["id"], 1050002);
    assert_eq!(link["meta"]["label"]["text"], "Link Test OP");
    // A plain form: only the clicked button and the CSRF token.
    let res = c
        .post(flow["ui"]["action"].as_str().unwrap())
        .form(&[("csrf_token", csrf(&flow).as_str()), ("link", "op")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let params = op::browse(
        &url::Url::parse(&location(&res)).unwrap(),
        Person::SignsInAndConsents("ann"),
    )
    .await;
    let res = c.get(callback_url(&s, &params)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(
        location(&res).starts_with(&format!("{UI}/settings?flow=")),
        "{}",
        location(&res)
    );
    let stored = s.app.store.get_identity(id.parse().unwrap()).await.unwrap();
    assert_eq!(stored.credentials["oidc"].identifiers, vec!["op:ann".to_owned()]);

    assert!(crate::support::client::node(&refresh(&c).await, "provider").is_some());

    // Linked: the provider now signs this identity in.
    let c2 = browser();
    let flow2 = new_flow(&s, &c2, "login").await;
    let cb = through_provider(&s, &c2, &flow2, Person::SignsInAndConsents("ann")).await;
    assert_eq!(c2.get(&cb).send().await.unwrap().status(), StatusCode::SEE_OTHER);
    assert_eq!(whoami(&s, &c2).await.1["identity"]["id"], id.as_str());

    // Unlink (the password remains, so it is allowed).
    let flow = new_flow(&s, &c, "settings").await;
    let unlink = settings_node(&flow, "unlink", "op").expect("an unlink node");
    assert_eq!(unlink["meta"]["label"]["id"], 1050003);
    let (st, saved) = send(
        c.post(flow["ui"]["action"].as_str().unwrap())
            .header("Accept", "application/json")
            .json(&json!({"csrf_token": csrf(&flow), "unlink": "op"})),
    )
    .await;
    assert_eq!(st, 200, "{saved}");
    assert_eq!(saved["state"], "success");
    assert!(settings_node(&saved, "link", "op").is_some(), "{saved}");
    let stored = s.app.store.get_identity(id.parse().unwrap()).await.unwrap();
    assert!(!stored.credentials.contains_key("oidc"));
    s.shutdown().await;
});

both_backends!(
    the_last_connection_cannot_be_unlinked,
    |backend: Backend| async move {
        let Some((_op, s)) = setup(backend).await else {
            return;
        };
        let c = browser();
        let flow = new_flow(&s, &c, "registration").await;
        let cb = through_provider(&s, &c, &flow, Person::SignsInAndConsents("ann")).await;
        assert_eq!(c.get(&cb).send().await.unwrap().status(), StatusCode::SEE_OTHER);
        let flow = new_flow(&s, &c, "settings").await;
        assert!(settings_node(&flow, "unlink", "op").is_none(), "{flow}");
        let (st, shown) = send(
            c.post(flow["ui"]["action"].as_str().unwrap())
                .header("Accept", "application/json")
                .json(&json!({"csrf_token": csrf(&flow), "unlink": "op"})),
        )
        .await;
        assert_eq!(st, 400, "{shown}");
        assert!(messages(&shown).contains("last way to sign in"), "{shown}");
        let id = whoami(&s, &c).await.1["identity"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let stored = s.app.store.get_identity(id.parse().unwrap()).await.unwrap();
        assert_eq!(stored.credentials["oidc"].identifiers, vec!["op:ann".to_owned()]);
        s.shutdown().await;
    }
);

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

both_backends!(native_app_submits_an_id_token, |backend: Backend| async move {
    let Some((op, s)) = setup(backend).await else {
        return;
    };
    let claims = json!({"iss": op.issuer(), "sub": "carl", "aud": op::CLIENT_ID, "iat": unix_now(),
                            "exp": unix_now() + 300, "nonce": "n1", "email": "carl@example.org",
                            "email_verified": true});
    let api = crate::support::client::api();
    let submit = |token: String, nonce: &'static str| {
        let s = &s;
        let api = api.clone();
        async move {
            let (_, flow) = send(api.get(s.public_url("self-service/login/api"))).await;
            send(api.post(flow["ui"]["action"].as_str().unwrap()).json(&json!({
                "method": "oidc", "provider": "op", "id_token": token, "id_token_nonce": nonce,
            })))
            .await
        }
    };
    // Unknown subject on a login flow: registered (registration hooks: a session), as Kratos.
    let (st, first) = submit(op.sign(claims.clone(), false).await, "n1").await;
    assert_eq!(st, 200, "{first}");
    assert!(
        first["session_token"].as_str().is_some_and(|t| !t.is_empty()),
        "{first}"
    );
    let id = first["identity"]["id"].as_str().unwrap().to_owned();
    assert_eq!(first["identity"]["verifiable_addresses"][0]["verified"], true);
    // Known subject: a login of the same identity.
    let (st, second) = submit(op.sign(claims.clone(), false).await, "n1").await;
    assert_eq!(st, 200, "{second}");
    assert_eq!(second["session"]["identity"]["id"], id.as_str());
    // Signed by a key the provider does not publish, or the wrong nonce: no session.
    let (st, forged) = submit(op.sign(claims.clone(), true).await, "n1").await;
    assert_eq!(st, 400, "{forged}");
    assert!(forged.get("session_token").is_none(), "{forged}");
    assert!(messages(&forged).contains("id_token"), "{forged}");
    let (st, wrong) = submit(op.sign(claims, false).await, "other").await;
    assert!(st.is_client_error() || st.is_server_error(), "{wrong}");
    assert_ne!(st, 500, "{wrong}");
    assert!(wrong.get("session_token").is_none(), "{wrong}");
    s.shutdown().await;
});

both_backends!(
    linking_needs_the_owner_of_the_duplicate_address,
    |backend: Backend| async move {
        let Some((_op, s)) = setup(backend).await else {
            return;
        };
        create_identity(&s, "ann@example.org", "a-strong-passw0rd!").await;
        let zed = create_identity(&s, "zed@example.org", "another-strong-passw0rd!").await;
        let c = browser();
        let flow = new_flow(&s, &c, "registration").await;
        let cb = through_provider(&s, &c, &flow, Person::SignsInAndConsents("ann")).await;
        let to = location(&c.get(&cb).send().await.unwrap());
        let login = flow_of(&s, &c, "login", &to).await;
        // Someone else signs in on the linking flow: signed in, but nothing is linked to them.
        let res = c
            .post(login["ui"]["action"].as_str().unwrap())
            .form(&[
                ("csrf_token", csrf(&login).as_str()),
                ("method", "password"),
                ("identifier", "zed@example.org"),
                ("password", "another-strong-passw0rd!"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let stored = s.app.store.get_identity(zed.parse().unwrap()).await.unwrap();
        assert!(!stored.credentials.contains_key("oidc"));
        s.shutdown().await;
    }
);

both_backends!(
    pkce_forced_by_the_provider_and_the_generic_callback,
    |backend: Backend| async move {
        let Some((_op, s)) = setup_full(
            backend,
            MAPPER,
            json!({"pkce_required": true}),
            json!({"pkce": "force"}),
        )
        .await
        else {
            return;
        };
        let c = browser();
        let flow = new_flow(&s, &c, "registration").await;
        let res = click_provider(&c, &flow, "op").await;
        let to = url::Url::parse(&location(&res)).unwrap();
        let q: std::collections::HashMap<String, String> = to.query_pairs().into_owned().collect();
        assert_eq!(q["code_challenge_method"], "S256");
        assert!(
            q["redirect_uri"].ends_with("/self-service/methods/oidc/callback"),
            "{to}"
        );
        let params = op::browse(&to, Person::SignsInAndConsents("ann")).await;
        assert!(params.provider_in_path.is_none());
        let res = c.get(callback_url(&s, &params)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&res), RETURN);
        assert_eq!(whoami(&s, &c).await.0, 200);
        s.shutdown().await;
    }
);

both_backends!(a_provider_that_is_down_is_no_500, |backend: Backend| async move {
    let Some((op, s)) = setup(backend).await else {
        return;
    };
    drop(op); // the provider process ends: discovery cannot connect
    let c = browser();
    let flow = new_flow(&s, &c, "login").await;
    let (st, err) = send(
        c.post(flow["ui"]["action"].as_str().unwrap())
            .header("Accept", "application/json")
            .json(&json!({"method": "oidc", "provider": "op", "csrf_token": csrf(&flow)})),
    )
    .await;
    assert_eq!(st, 502, "{err}");
    assert!(
        err["error"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("Unable to initialize OpenID Connect Provider"),
        "{err}"
    );
    let res = click_provider(&c, &flow, "op").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(
        location(&res).starts_with(&format!("{UI}/error?id=")),
        "{}",
        location(&res)
    );
    assert_eq!(whoami(&s, &c).await.0, 401);
    s.shutdown().await;
});

// Kratos' native social sign-in through the system browser: the app starts an API flow with
// `return_session_token_exchange_code`, the browser does the provider round trip and lands on
// `return_to?code=…`, and the app trades both codes for the session token — once.
both_backends!(
    native_app_exchanges_codes_after_the_browser_round_trip,
    |backend: Backend| async move {
        let Some((_op, s)) = setup(backend).await else {
            return;
        };
        let app = crate::support::client::api();
        let exchange = |init: &str, back: &str| {
            app.get(s.public_url("sessions/token-exchange"))
                .query(&[("init_code", init), ("return_to_code", back)])
        };
        // Only API flows that ask get a code; browser flows never.
        let (_, plain) = send(app.get(s.public_url("self-service/login/api"))).await;
        assert!(plain.get("session_token_exchange_code").is_none(), "{plain}");
        let (_, browser_flow) = send(
            browser()
                .get(s.public_url("self-service/login/browser?return_session_token_exchange_code=true"))
                .header("Accept", "application/json"),
        )
        .await;
        assert!(
            browser_flow.get("session_token_exchange_code").is_none(),
            "{browser_flow}"
        );
        let (st, missing) = send(app.get(s.public_url("sessions/token-exchange"))).await;
        assert_eq!(st, 400, "{missing}");

        // First sign-in of an unknown subject: the login flow continues as a registration, and the
        // exchange code follows it.
        for (kind, round) in [("login", "registers"), ("registration", "signs in")] {
            let (st, flow) = send(app.get(s.public_url(&format!(
                "self-service/{kind}/api?return_session_token_exchange_code=true&return_to=http://app.test/native-done?x=1"
            ))))
            .await;
            assert_eq!(st, 200, "{flow}");
            let init = flow["session_token_exchange_code"].as_str().unwrap().to_owned();
            assert_eq!(init.len(), 64, "{flow}");
            assert!(init.chars().all(|c| c.is_ascii_alphanumeric()), "{init}");
            let (st, err) = send(
                app.post(flow["ui"]["action"].as_str().unwrap())
                    .json(&json!({"method": "oidc", "provider": "op"})),
            )
            .await;
            assert_eq!(st, 422, "{err}");
            assert_eq!(err["error"]["id"], "browser_location_change_required", "{err}");
            let to = url::Url::parse(err["redirect_browser_to"].as_str().unwrap()).unwrap();
            // Nothing to collect before the browser comes back.
            let (st, early) = send(exchange(&init, "not-yet")).await;
            assert_eq!(st, 404, "{round}: {early}");

            let params = op::browse(&to, Person::SignsInAndConsents("ann")).await;
            let res = browser().get(callback_url(&s, &params)).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::SEE_OTHER, "{round}");
            let back = url::Url::parse(&location(&res)).unwrap();
            assert_eq!(back.path(), "/native-done", "{round}: {back}");
            let pairs: std::collections::HashMap<_, _> = back.query_pairs().into_owned().collect();
            assert_eq!(pairs.get("x").map(String::as_str), Some("1"), "{back}");
            let code = pairs.get("code").expect("return_to code").clone();
            assert_ne!(code, init);

            // Both halves are needed; a wrong one reveals nothing.
            let (st, _) = send(exchange(&init, &init)).await;
            assert_eq!(st, 404, "{round}");
            let (st, _) = send(exchange(&code, &code)).await;
            assert_eq!(st, 404, "{round}");
            let (st, got) = send(exchange(&init, &code)).await;
            assert_eq!(st, 200, "{round}: {got}");
            let token = got["session_token"].as_str().unwrap();
            assert_eq!(got["session"]["active"], true, "{got}");
            assert_eq!(
                got["session"]["authentication_methods"][0]["method"], "oidc",
                "{got}"
            );
            let (st, who) = send(
                app.get(s.public_url("sessions/whoami"))
                    .header("X-Session-Token", token),
            )
            .await;
            assert_eq!(st, 200, "{who}");
            assert_eq!(who["identity"]["id"], got["session"]["identity"]["id"]);
            // Used once.
            let (st, again) = send(exchange(&init, &code)).await;
            assert_eq!(st, 404, "{round}: {again}");
        }
        s.shutdown().await;
    }
);

// `aal2_acr_values` / `aal2_amr_values`: a sign-in the provider says was multi-factor makes an aal2
// session by itself, and the session names the upstream acr/amr (Kratos `upstream_acr`/`upstream_amr`).
both_backends!(
    upstream_mfa_claims_make_an_aal2_session,
    |backend: Backend| async move {
        let Some((op, s)) = setup_full(
            backend,
            MAPPER,
            json!({}),
            json!({"aal2_acr_values": ["silver"], "aal2_amr_values": ["mfa"]}),
        )
        .await
        else {
            return;
        };
        let api = crate::support::client::api();
        let sign_in = |extra: Value| {
            let (s, op, api) = (&s, &op, api.clone());
            async move {
                let mut claims = json!({"iss": op.issuer(), "sub": "dee", "aud": op::CLIENT_ID,
                "iat": unix_now(), "exp": unix_now() + 300, "nonce": "n1", "email": "dee@example.org"});
                crate::support::deep_merge(&mut claims, extra);
                let (_, flow) = send(api.get(s.public_url("self-service/login/api"))).await;
                send(api.post(flow["ui"]["action"].as_str().unwrap()).json(&json!({
                    "method": "oidc", "provider": "op", "id_token": op.sign(claims, false).await,
                    "id_token_nonce": "n1",
                })))
                .await
            }
        };
        // Registers dee (aal1: no upstream claim), then three logins.
        let (st, first) = sign_in(json!({})).await;
        assert_eq!(st, 200, "{first}");
        for (extra, aal) in [
            (json!({}), "aal1"),
            (json!({"amr": ["pwd", "mfa"]}), "aal2"),
            (json!({"acr": "silver"}), "aal2"),
            (json!({"acr": "bronze", "amr": ["pwd"]}), "aal1"),
        ] {
            let (st, got) = sign_in(extra.clone()).await;
            assert_eq!(st, 200, "{extra}: {got}");
            assert_eq!(
                got["session"]["authenticator_assurance_level"], aal,
                "{extra}: {got}"
            );
            let m = &got["session"]["authentication_methods"][0];
            assert_eq!(m["method"], "oidc", "{got}");
            assert_eq!(m["provider"], "op", "{got}");
            if let Some(amr) = extra.get("amr") {
                assert_eq!(&m["upstream_amr"], amr, "{got}");
            }
            if let Some(acr) = extra.get("acr") {
                assert_eq!(&m["upstream_acr"], acr, "{got}");
            }
        }
        s.shutdown().await;
    }
);

// `update_identity_on_login: automatic` (Kratos `UpdateIdentityFromClaims`): each login runs the mapper
// again; what it outputs wins, stored traits it does not output stay. `never` (the default) leaves the
// identity alone.
both_backends!(
    update_identity_on_login_takes_the_providers_changes,
    |backend: Backend| async move {
        const NAMES: &str = r#"
local claims = std.extVar('claims');
{ identity: { traits: { email: claims.email, name: { first: claims.given_name } } } }
"#;
        for (mode, follows) in [("automatic", true), ("never", false)] {
            let Some((op, s)) = setup_full(
                backend,
                NAMES,
                json!({}),
                json!({"update_identity_on_login": mode}),
            )
            .await
            else {
                return;
            };
            let api = crate::support::client::api();
            let sign_in = |given: &'static str| {
                let (s, op, api) = (&s, &op, api.clone());
                async move {
                    let claims = json!({"iss": op.issuer(), "sub": "eve", "aud": op::CLIENT_ID,
                    "iat": unix_now(), "exp": unix_now() + 300, "nonce": "n1",
                    "email": "eve@example.org", "given_name": given});
                    let (_, flow) = send(api.get(s.public_url("self-service/login/api"))).await;
                    send(api.post(flow["ui"]["action"].as_str().unwrap()).json(&json!({
                        "method": "oidc", "provider": "op", "id_token": op.sign(claims, false).await,
                        "id_token_nonce": "n1",
                    })))
                    .await
                }
            };
            let (st, first) = sign_in("Eve").await;
            assert_eq!(st, 200, "{first}");
            let id: uuid::Uuid = first["identity"]["id"].as_str().unwrap().parse().unwrap();
            // A trait the mapper never outputs, set by the application.
            let mut stored = s.app.store.get_identity(id).await.unwrap();
            stored.traits["name"]["last"] = json!("Kept");
            s.app.store.update_identity(&stored).await.unwrap();
            let (st, second) = sign_in("Evelyn").await;
            assert_eq!(st, 200, "{mode}: {second}");
            let after = s.app.store.get_identity(id).await.unwrap();
            let want = if follows { "Evelyn" } else { "Eve" };
            assert_eq!(after.traits["name"]["first"], want, "{mode}: {:?}", after.traits);
            assert_eq!(after.traits["name"]["last"], "Kept", "{mode}: {:?}", after.traits);
            assert_eq!(
                second["session"]["identity"]["traits"]["name"]["first"], want,
                "{mode}: {second}"
            );
            s.shutdown().await;
        }
    }
);
