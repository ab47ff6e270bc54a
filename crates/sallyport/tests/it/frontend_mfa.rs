//! Issue 8, items 2 and 3: enrolling a second factor in a browser keeps the session usable, and
//! backup codes look as Kratos shows them (text messages, reveal/disable/regenerate buttons).

use serde_json::{Value, json};

use crate::both_backends;
use crate::support::client::{
    browser, browser_login, create_identity, csrf, flow_id_from, location, message_ids, send,
};
use crate::support::totp::now_code;
use crate::support::{Backend, TestServer, UI};

fn cfg() -> Value {
    json!({
        "selfservice": {"methods": {"totp": {"enabled": true, "config": {"issuer": "Sallyport Tests"}}, "lookup_secret": {"enabled": true}}},
        "session": {"whoami": {"required_aal": "highest_available"}},
    })
}

fn by_name<'a>(flow: &'a Value, name: &str) -> Option<&'a Value> {
    flow["ui"]["nodes"]
        .as_array()?
        .iter()
        .find(|n| n["attributes"]["name"] == name || n["attributes"]["id"] == name)
}

fn lookup_names(flow: &Value) -> Vec<String> {
    flow["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["group"] == "lookup_secret")
        .map(|n| {
            n["attributes"]["name"]
                .as_str()
                .or(n["attributes"]["id"].as_str())
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// A signed-in browser on its settings flow: (client, flow id, flow).
async fn settings_browser(s: &TestServer, email: &str) -> (reqwest::Client, String, Value) {
    create_identity(s, email, "correct horse battery").await;
    let c = browser();
    let res = browser_login(s, &c, email, "correct horse battery").await;
    assert_eq!(res.status(), 303);
    let res = c
        .get(s.public_url("self-service/settings/browser"))
        .send()
        .await
        .unwrap();
    let id = flow_id_from(&location(&res));
    let (st, flow) = send(c.get(s.public_url(&format!("self-service/settings/flows?id={id}")))).await;
    assert_eq!(st, 200, "{flow}");
    (c, id, flow)
}

/// Posts a settings form as a browser does and follows the 303 back to the flow, as the UI would.
async fn post_and_reload(
    s: &TestServer,
    c: &reqwest::Client,
    id: &str,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let res = c
        .post(s.public_url(&format!("self-service/settings?flow={id}")))
        .form(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(
        location(&res).starts_with(&format!("{UI}/settings?flow=")),
        "{}",
        location(&res)
    );
    let (st, flow) = send(c.get(s.public_url(&format!("self-service/settings/flows?id={id}")))).await;
    (st.as_u16(), flow)
}

both_backends!(
    browser_totp_enrolment_keeps_the_session,
    |b: Backend| async move {
        let s = TestServer::spawn_with(b, cfg()).await;
        let (c, id, flow) = settings_browser(&s, "tom@example.org").await;
        let secret = by_name(&flow, "totp_secret_key").unwrap()["attributes"]["text"]["text"]
            .as_str()
            .unwrap()
            .to_owned();
        let (st, saved) = post_and_reload(
            &s,
            &c,
            &id,
            &[
                ("method", "totp"),
                ("totp_code", &now_code(&secret)),
                ("csrf_token", &csrf(&flow)),
            ],
        )
        .await;
        assert_eq!(
            st, 200,
            "the UI shows the saved flow, not a second-factor prompt: {saved}"
        );
        assert_eq!(saved["state"], "success");
        assert_eq!(message_ids(&saved), vec![1050001]);
        let (st, who) = send(c.get(s.public_url("sessions/whoami"))).await;
        assert_eq!(st, 200, "{who}");
        assert_eq!(who["authenticator_assurance_level"], "aal2");
        s.shutdown().await;
    }
);

both_backends!(
    browser_backup_codes_as_kratos_shows_them,
    |b: Backend| async move {
        let s = TestServer::spawn_with(b, cfg()).await;
        let (c, id, flow) = settings_browser(&s, "una@example.org").await;
        assert_eq!(lookup_names(&flow), ["lookup_secret_regenerate"]);
        let (st, shown) = post_and_reload(
            &s,
            &c,
            &id,
            &[("lookup_secret_regenerate", "true"), ("csrf_token", &csrf(&flow))],
        )
        .await;
        assert_eq!(st, 200);
        assert_eq!(
            lookup_names(&shown),
            ["lookup_secret_codes", "lookup_secret_confirm"]
        );
        let list = &by_name(&shown, "lookup_secret_codes").unwrap()["attributes"]["text"];
        assert_eq!(list["id"], 1050015);
        let codes: Vec<String> = list["context"]["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                assert_eq!(m["id"], 1050009, "{m}");
                assert_eq!(m["type"], "info");
                assert_eq!(m["text"], m["context"]["secret"]);
                m["text"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(codes.len(), 12);
        assert_eq!(list["text"], codes.join(", "));
        let (st, saved) = post_and_reload(
            &s,
            &c,
            &id,
            &[("lookup_secret_confirm", "true"), ("csrf_token", &csrf(&shown))],
        )
        .await;
        assert_eq!(st, 200, "confirming codes keeps the session usable: {saved}");
        assert_eq!(message_ids(&saved), vec![1050001]);
        assert_eq!(
            lookup_names(&saved),
            ["lookup_secret_reveal", "lookup_secret_disable"]
        );
        let (_, who) = send(c.get(s.public_url("sessions/whoami"))).await;
        assert_eq!(who["authenticator_assurance_level"], "aal2");

        // Use one code at a step-up, then reveal: the used one shows as 1050014.
        let res = c
            .get(s.public_url("self-service/login/browser?aal=aal2&refresh=true"))
            .send()
            .await
            .unwrap();
        let lid = flow_id_from(&location(&res));
        let (_, login) = send(c.get(s.public_url(&format!("self-service/login/flows?id={lid}")))).await;
        let res = c
            .post(s.public_url(&format!("self-service/login?flow={lid}")))
            .form(&[
                ("method", "lookup_secret"),
                ("lookup_secret", &codes[0]),
                ("csrf_token", &csrf(&login)),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        let res = c
            .get(s.public_url("self-service/settings/browser"))
            .send()
            .await
            .unwrap();
        let id = flow_id_from(&location(&res));
        let (_, flow) = send(c.get(s.public_url(&format!("self-service/settings/flows?id={id}")))).await;
        let (st, revealed) = post_and_reload(
            &s,
            &c,
            &id,
            &[("lookup_secret_reveal", "true"), ("csrf_token", &csrf(&flow))],
        )
        .await;
        assert_eq!(st, 200);
        assert_eq!(
            lookup_names(&revealed),
            [
                "lookup_secret_codes",
                "lookup_secret_disable",
                "lookup_secret_regenerate"
            ]
        );
        let list = &by_name(&revealed, "lookup_secret_codes").unwrap()["attributes"]["text"];
        let secrets = list["context"]["secrets"].as_array().unwrap();
        assert_eq!(secrets[0]["id"], 1050014, "{}", secrets[0]);
        assert!(
            secrets[0]["text"]
                .as_str()
                .unwrap()
                .starts_with("Secret was used at ")
        );
        assert!(secrets[0]["context"]["used_at_unix"].is_i64());
        let rest: Vec<&str> = secrets[1..].iter().map(|m| m["text"].as_str().unwrap()).collect();
        assert_eq!(
            rest,
            codes[1..].iter().map(String::as_str).collect::<Vec<_>>(),
            "reveal shows the codes"
        );
        assert!(list["text"].as_str().unwrap().starts_with("used, "));
        s.shutdown().await;
    }
);
