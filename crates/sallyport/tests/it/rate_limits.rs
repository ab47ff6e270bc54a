//! Sallyport's rate limits (`sallyport.rate_limits`, beyond Kratos): codes sent per address, code
//! guesses per identity across flows, password back-off per identifier, second-factor guesses, per-IP
//! budgets behind trusted proxies, windows that end, and budgets shared by two nodes on one database.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::support::client::{
    api, body, browser, create_identity, csrf, flow_id_from, location, message_ids, native_login, send,
};
use crate::support::mail::{MailServer, code_in};
use crate::support::{Backend, TestServer};

fn code_config(rate_limits: Value) -> Value {
    json!({
        "selfservice": {
            "methods": {"code": {"enabled": true, "passwordless_enabled": true}},
            "flows": {"recovery": {"enabled": true, "use": "code"}},
        },
        "identity": {"schemas": [{"id": "default", "url": format!("file://{}", crate::support::fixture("code-email.schema.json").display())}]},
        "sallyport": {"rate_limits": rate_limits},
    })
}

/// A native login flow's action URL.
async fn login_action(s: &TestServer) -> String {
    let (_, flow) = send(api().get(s.public_url("self-service/login/api"))).await;
    flow["ui"]["action"].as_str().unwrap().to_owned()
}

async fn post(action: &str, payload: Value) -> (StatusCode, Value, Option<String>) {
    let res = api().post(action).json(&payload).send().await.unwrap();
    let retry = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let (st, v) = body(res).await;
    (st, v, retry)
}

async fn send_login_code(s: &TestServer, email: &str) -> (String, StatusCode, Value, Option<String>) {
    let action = login_action(s).await;
    let (st, v, retry) = post(&action, json!({"method": "code", "identifier": email})).await;
    (action, st, v, retry)
}

#[track_caller]
fn assert_limited(st: StatusCode, v: &Value, retry: &Option<String>, id: &str) {
    assert_eq!(st, 429, "{v}");
    assert_eq!(v["error"]["id"], id, "{v}");
    assert_eq!(v["error"]["code"], 429);
    assert_eq!(v["error"]["status"], "Too Many Requests");
    assert!(
        v["error"]["reason"].is_string() && v["error"]["message"].is_string(),
        "{v}"
    );
    let secs: u64 = retry.as_deref().expect("Retry-After").parse().unwrap();
    assert!(secs >= 1, "{secs}");
    assert_eq!(v["error"]["details"]["retry_after_seconds"], secs);
}

/// Waits until `n` mails reached `to`, then a little longer to see that no more arrive.
async fn mails_to(mail: &MailServer, to: &str, n: usize) -> usize {
    let count = || {
        mail.sink
            .messages()
            .iter()
            .filter(|m| m.to.iter().any(|t| t == to))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while count() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    count()
}

both_backends!(codes_sent_to_one_address_are_capped, |b: Backend| async move {
    let mail = MailServer::start().await;
    let limits = json!({"codes_sent_per_address": {"limit": 3, "window": "1h"}});
    let s = TestServer::spawn_with(b, mail.config(code_config(limits))).await;
    create_identity(&s, "vic@example.org", "a-strong-passw0rd!").await;
    for n in 0..3 {
        let (_, st, v, _) = send_login_code(&s, "vic@example.org").await;
        assert_eq!(st, 400, "code {n} goes out: {v}");
        assert_eq!(v["state"], "sent_email");
    }
    for _ in 0..5 {
        let (_, st, v, retry) = send_login_code(&s, "Vic@Example.org").await;
        assert_limited(st, &v, &retry, "sallyport_rate_limited_codes_sent");
    }
    // The budget is the address's, whatever the flow: recovery to it is refused too.
    let (_, flow) = send(api().get(s.public_url("self-service/recovery/api"))).await;
    let action = flow["ui"]["action"].as_str().unwrap().to_owned();
    let (st, v, retry) = post(&action, json!({"method": "code", "email": "vic@example.org"})).await;
    assert_limited(st, &v, &retry, "sallyport_rate_limited_codes_sent");
    assert_eq!(
        mails_to(&mail, "vic@example.org", 3).await,
        3,
        "only the budget was mailed"
    );

    // A browser gets the message on its flow (4900001, type error) and is sent back to the UI.
    let c = browser();
    let res = c
        .get(s.public_url("self-service/login/browser"))
        .send()
        .await
        .unwrap();
    let id = flow_id_from(&location(&res));
    let (_, flow) = send(c.get(s.public_url(&format!("self-service/login/flows?id={id}")))).await;
    let res = c
        .post(s.public_url(&format!("self-service/login?flow={id}")))
        .form(&[
            ("method", "code"),
            ("identifier", "vic@example.org"),
            ("csrf_token", &csrf(&flow)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(
        location(&res).starts_with("http://ui.test/login?flow="),
        "{}",
        location(&res)
    );
    let (_, flow) = send(c.get(s.public_url(&format!("self-service/login/flows?id={id}")))).await;
    assert_eq!(message_ids(&flow), vec![4900001], "{flow}");
    assert_eq!(flow["ui"]["messages"][0]["type"], "error");
    assert!(
        flow["ui"]["messages"][0]["context"]["retry_after_seconds"]
            .as_u64()
            .unwrap()
            > 0
    );
    // An address nobody attacked is unaffected.
    create_identity(&s, "other@example.org", "a-strong-passw0rd!").await;
    let (_, st, _, _) = send_login_code(&s, "other@example.org").await;
    assert_eq!(st, 400);
    s.shutdown().await;
});

both_backends!(
    wrong_code_guesses_are_capped_across_flows,
    |b: Backend| async move {
        let mail = MailServer::start().await;
        let limits = json!({"codes_sent_per_address": {"limit": 100}});
        let s = TestServer::spawn_with(b, mail.config(code_config(limits))).await;
        create_identity(&s, "vic@example.org", "a-strong-passw0rd!").await;
        // The victim's own flow, with a code that stays valid throughout.
        let (victim_action, st, _, _) = send_login_code(&s, "vic@example.org").await;
        assert_eq!(st, 400);
        let right = code_in(&mail.next_to("vic@example.org").await.text_body);
        // The attacker spreads 10 wrong guesses over three flows (each flow allows 5 submissions).
        let mut wrong = 0;
        for per_flow in [4, 4, 2] {
            let (action, st, _, _) = send_login_code(&s, "vic@example.org").await;
            assert_eq!(st, 400);
            for _ in 0..per_flow {
                let (st, v, _) = post(
                    &action,
                    json!({"method": "code", "identifier": "vic@example.org", "code": "999999x"}),
                )
                .await;
                assert_eq!(st, 400, "{v}");
                assert_eq!(message_ids(&v), vec![4010008], "a wrong code, evaluated");
                wrong += 1;
            }
        }
        assert_eq!(wrong, 10);
        // Budget spent: no new code is sent for this identity, in any flow…
        let (_, st, v, retry) = send_login_code(&s, "vic@example.org").await;
        assert_limited(st, &v, &retry, "sallyport_rate_limited_code_guesses");
        let (_, flow) = send(api().get(s.public_url("self-service/recovery/api"))).await;
        let action = flow["ui"]["action"].as_str().unwrap().to_owned();
        let (st, v, retry) = post(&action, json!({"method": "code", "email": "vic@example.org"})).await;
        assert_limited(st, &v, &retry, "sallyport_rate_limited_code_guesses");
        // …and not even the right code is accepted until the window ends.
        let (st, v, retry) = post(
            &victim_action,
            json!({"method": "code", "identifier": "vic@example.org", "code": right}),
        )
        .await;
        assert_limited(st, &v, &retry, "sallyport_rate_limited_code_guesses");
        // The victim still signs in with the password: a budget of its own.
        let (st, v) = native_login(&s, "vic@example.org", "a-strong-passw0rd!").await;
        assert_eq!(st, 200, "{v}");
        assert!(v["session_token"].is_string());
        // Another identity's codes are unaffected.
        create_identity(&s, "ann@example.org", "a-strong-passw0rd!").await;
        let (action, st, _, _) = send_login_code(&s, "ann@example.org").await;
        assert_eq!(st, 400);
        let code = code_in(&mail.next_to("ann@example.org").await.text_body);
        let (st, v, _) = post(
            &action,
            json!({"method": "code", "identifier": "ann@example.org", "code": code}),
        )
        .await;
        assert_eq!(st, 200, "{v}");
        s.shutdown().await;
    }
);

both_backends!(
    right_codes_do_not_spend_the_guess_budget,
    |b: Backend| async move {
        let mail = MailServer::start().await;
        let limits =
            json!({"codes_sent_per_address": {"limit": 100}, "code_guesses_per_identity": {"limit": 2}});
        let s = TestServer::spawn_with(b, mail.config(code_config(limits))).await;
        create_identity(&s, "ann@example.org", "a-strong-passw0rd!").await;
        for _ in 0..4 {
            let (action, st, _, _) = send_login_code(&s, "ann@example.org").await;
            assert_eq!(st, 400);
            let code = code_in(&mail.next_to("ann@example.org").await.text_body);
            let (st, v, _) = post(
                &action,
                json!({"method": "code", "identifier": "ann@example.org", "code": code}),
            )
            .await;
            assert_eq!(st, 200, "four right codes in a row, budget 2: {v}");
        }
        s.shutdown().await;
    }
);

both_backends!(wrong_passwords_back_off_per_identifier, |b: Backend| async move {
    let limits = json!({"password_failures_per_identifier": {"limit": 3, "window": "1h", "backoff": "1s", "max_backoff": "4s"}});
    let s = TestServer::spawn_with(b, json!({"sallyport": {"rate_limits": limits}})).await;
    create_identity(&s, "ann@example.org", "a-strong-passw0rd!").await;
    create_identity(&s, "bob@example.org", "a-strong-passw0rd!").await;
    let wrong = |who: &'static str| {
        let s = &s;
        async move {
            let c = api();
            let (_, flow) = send(c.get(s.public_url("self-service/login/api"))).await;
            let action = flow["ui"]["action"].as_str().unwrap().to_owned();
            let started = Instant::now();
            let r = post(
                &action,
                json!({"method": "password", "identifier": who, "password": "wrong-password"}),
            )
            .await;
            (r, started.elapsed())
        }
    };
    for _ in 0..3 {
        let ((st, v, _), _) = wrong("ann@example.org").await;
        assert_eq!(st, 400);
        assert_eq!(message_ids(&v), vec![4000006]);
    }
    // Past the free budget each attempt is still checked, then blocks the identifier for a pause that
    // doubles: 1 s, 2 s, 4 s (the most). Blocked attempts are answered at once, never held.
    for pause in [1u64, 2, 4, 4] {
        let ((st, v, _), _) = wrong("ann@example.org").await;
        assert_eq!(st, 400, "{v}");
        let ((st, v, retry), took) = wrong("ANN@example.org").await;
        assert_limited(st, &v, &retry, "sallyport_rate_limited_password");
        assert_eq!(
            retry.as_deref(),
            Some(pause.to_string().as_str()),
            "back-off grows"
        );
        assert!(took < Duration::from_millis(500), "429 at once, took {took:?}");
        // A different identifier from the same address is unaffected.
        let (st, _) = native_login(&s, "bob@example.org", "a-strong-passw0rd!").await;
        assert_eq!(st, 200);
        tokio::time::sleep(Duration::from_millis(pause * 1000 + 50)).await;
    }
    // No lockout: after the pause the right password works, and it clears the count.
    let (st, v) = native_login(&s, "ann@example.org", "a-strong-passw0rd!").await;
    assert_eq!(st, 200, "{v}");
    for _ in 0..3 {
        let ((st, _, _), _) = wrong("ann@example.org").await;
        assert_eq!(st, 400, "a fresh free budget");
    }

    // Browsers see message 4900003 on the flow.
    let c = browser();
    for n in 0..3 {
        let res = crate::support::client::browser_login(&s, &c, "bob@example.org", "nope-nope-nope").await;
        assert_eq!(res.status(), 303, "attempt {n}");
    }
    let res = crate::support::client::browser_login(&s, &c, "bob@example.org", "nope-nope-nope").await;
    assert_eq!(res.status(), 303);
    let res = crate::support::client::browser_login(&s, &c, "bob@example.org", "a-strong-passw0rd!").await;
    assert_eq!(res.status(), 303);
    let id = flow_id_from(&location(&res));
    let (_, flow) = send(c.get(s.public_url(&format!("self-service/login/flows?id={id}")))).await;
    assert_eq!(message_ids(&flow), vec![4900003], "{flow}");
    assert_eq!(flow["ui"]["messages"][0]["type"], "error");
    s.shutdown().await;
});

both_backends!(
    many_users_from_one_address_are_not_slowed,
    |b: Backend| async move {
        let s = TestServer::spawn(b).await;
        let mut users = vec![];
        for n in 0..25 {
            let email = format!("user{n}@example.org");
            create_identity(&s, &email, "a-strong-passw0rd!").await;
            users.push(email);
        }
        // Every user mistypes once, then signs in: 50 attempts from one address, none refused.
        for email in &users {
            let (st, _) = native_login(&s, email, "typo-typo-typo").await;
            assert_eq!(st, 400);
            let (st, v) = native_login(&s, email, "a-strong-passw0rd!").await;
            assert_eq!(st, 200, "{email}: {v}");
        }
        s.shutdown().await;
    }
);

both_backends!(limits_reset_after_the_window, |b: Backend| async move {
    let mail = MailServer::start().await;
    let limits = json!({
        "codes_sent_per_address": {"limit": 2, "window": "2s"},
        "code_guesses_per_identity": {"limit": 2, "window": "2s"},
    });
    let s = TestServer::spawn_with(b, mail.config(code_config(limits))).await;
    create_identity(&s, "vic@example.org", "a-strong-passw0rd!").await;
    let (action, _, _, _) = send_login_code(&s, "vic@example.org").await;
    let right = code_in(&mail.next_to("vic@example.org").await.text_body);
    for _ in 0..2 {
        let (st, _, _) = post(
            &action,
            json!({"method": "code", "identifier": "vic@example.org", "code": "999999x"}),
        )
        .await;
        assert_eq!(st, 400);
    }
    let (st, v, retry) = post(
        &action,
        json!({"method": "code", "identifier": "vic@example.org", "code": right}),
    )
    .await;
    assert_limited(st, &v, &retry, "sallyport_rate_limited_code_guesses");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (st, v, _) = post(
        &action,
        json!({"method": "code", "identifier": "vic@example.org", "code": right}),
    )
    .await;
    assert_eq!(st, 200, "the window ended: {v}");

    create_identity(&s, "sam@example.org", "a-strong-passw0rd!").await;
    for _ in 0..2 {
        let (_, st, _, _) = send_login_code(&s, "sam@example.org").await;
        assert_eq!(st, 400);
    }
    let (_, st, v, retry) = send_login_code(&s, "sam@example.org").await;
    assert_limited(st, &v, &retry, "sallyport_rate_limited_codes_sent");
    assert!(retry.unwrap().parse::<u64>().unwrap() <= 2);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (_, st, _, _) = send_login_code(&s, "sam@example.org").await;
    assert_eq!(st, 400, "sending again after the window");
    s.shutdown().await;
});

both_backends!(
    two_nodes_on_one_database_share_the_budget,
    |b: Backend| async move {
        let limits = json!({"sallyport": {"rate_limits": {"password_failures_per_identifier": {"limit": 2, "backoff": "30s"}}}});
        let a = TestServer::spawn_with(b, limits.clone()).await;
        let node_b = TestServer::spawn_sharing(&a, limits).await;
        assert_ne!(a.public, node_b.public);
        create_identity(&a, "ann@example.org", "a-strong-passw0rd!").await;
        let (st, _) = native_login(&a, "ann@example.org", "wrong-one").await;
        assert_eq!(st, 400);
        let (st, _) = native_login(&node_b, "ann@example.org", "wrong-two").await;
        assert_eq!(st, 400);
        let (st, _) = native_login(&a, "ann@example.org", "wrong-three").await;
        assert_eq!(
            st, 400,
            "the third attempt, counted across both nodes, starts the back-off"
        );
        let (st, v) = native_login(&node_b, "ann@example.org", "a-strong-passw0rd!").await;
        assert_eq!(st, 429, "node b sees node a's count: {v}");
        assert_eq!(v["error"]["id"], "sallyport_rate_limited_password");
        let (st, _) = native_login(&a, "ann@example.org", "a-strong-passw0rd!").await;
        assert_eq!(st, 429);
        node_b.shutdown().await;
        a.shutdown().await;
    }
);

both_backends!(per_ip_budgets_trust_only_named_proxies, |b: Backend| async move {
    let per_ip = |trusted: Value| {
        json!({"sallyport": {"rate_limits": {"per_ip": {
            "enabled": true,
            "flow_creations": {"limit": 3, "window": "1h"},
            "submissions": {"limit": 2, "window": "1h"},
            "trusted_proxies": trusted,
        }}}})
    };
    let s = TestServer::spawn_with(b, per_ip(json!(["127.0.0.1"]))).await;
    let create = |xff: &'static str| {
        let url = s.public_url("self-service/login/api");
        async move {
            let res = api()
                .get(url)
                .header("x-forwarded-for", xff)
                .send()
                .await
                .unwrap();
            let retry = res
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let (st, v) = body(res).await;
            (st, v, retry)
        }
    };
    for _ in 0..3 {
        assert_eq!(create("198.51.100.1").await.0, 200);
    }
    let (st, v, retry) = create("198.51.100.1").await;
    assert_limited(st, &v, &retry, "sallyport_rate_limited_client_ip");
    // Behind the trusted proxy, another client has its own budget; a forged leftmost hop is ignored.
    assert_eq!(create("198.51.100.2").await.0, 200);
    assert_eq!(
        create("198.51.100.1, 198.51.100.3").await.0,
        200,
        "the proxy appended .3"
    );
    // Flow reads and whoami are not counted.
    for _ in 0..10 {
        let (st, _) = send(
            api()
                .get(s.public_url("sessions/whoami"))
                .header("x-forwarded-for", "198.51.100.1"),
        )
        .await;
        assert_eq!(st, 401);
    }
    // Submissions have their own budget.
    let (_, flow, _) = create("198.51.100.9").await;
    let action = flow["ui"]["action"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        let res = api()
            .post(&action)
            .header("x-forwarded-for", "198.51.100.9")
            .json(&json!({"method": "password", "identifier": "x@example.org", "password": "y"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
    }
    let res = api()
        .post(&action)
        .header("x-forwarded-for", "198.51.100.9")
        .json(&json!({"method": "password", "identifier": "x@example.org", "password": "y"}))
        .send()
        .await
        .unwrap();
    let retry = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let (st, v) = body(res).await;
    assert_limited(st, &v, &retry, "sallyport_rate_limited_client_ip");
    s.shutdown().await;

    // Without trusted proxies the header is the client's own word: ignored, everyone is 127.0.0.1.
    let s = TestServer::spawn_with(b, per_ip(json!([]))).await;
    let create = |xff: &'static str| {
        let url = s.public_url("self-service/registration/api");
        async move {
            api()
                .get(url)
                .header("x-forwarded-for", xff)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    for n in 0..3 {
        assert_eq!(
            create(["203.0.113.1", "203.0.113.2", "203.0.113.3"][n]).await,
            200
        );
    }
    assert_eq!(create("203.0.113.4").await, 429);
    s.shutdown().await;
});

// A sustained attack on one address, with the window shortened to 2 s: codes mailed and wrong guesses
// evaluated per window never exceed the budgets, so with the default 1 h window they are at most 10
// codes and 10 wrong guesses per hour. Prints the figures.
both_backends!(sustained_attack_is_held_to_the_budgets, |b: Backend| async move {
    let mail = MailServer::start().await;
    let window = Duration::from_secs(2);
    let limits = json!({
        "codes_sent_per_address": {"limit": 10, "window": "2s"},
        "code_guesses_per_identity": {"limit": 10, "window": "2s"},
    });
    let s = TestServer::spawn_with(b, mail.config(code_config(limits))).await;
    create_identity(&s, "vic@example.org", "a-strong-passw0rd!").await;
    create_identity(&s, "bomb@example.org", "a-strong-passw0rd!").await;
    let started = Instant::now();
    let (mut flows, mut sent, mut bombs, mut evaluated, mut refused) = (0u64, 0u64, 0u64, 0u64, 0u64);
    while started.elapsed() < window * 3 {
        // Mail bombing: a fresh flow asking for a code, again and again.
        let (_, st, _, _) = send_login_code(&s, "bomb@example.org").await;
        flows += 1;
        match st.as_u16() {
            400 => bombs += 1,
            _ => refused += 1,
        }
        // Guessing: a fresh flow, then its five submissions, all wrong.
        let (action, st, _, _) = send_login_code(&s, "vic@example.org").await;
        flows += 1;
        if st != 400 {
            refused += 1;
            continue;
        }
        sent += 1;
        for _ in 0..5 {
            let (st, v, _) = post(
                &action,
                json!({"method": "code", "identifier": "vic@example.org", "code": "999999x"}),
            )
            .await;
            match st.as_u16() {
                400 if message_ids(&v) == vec![4010008] => evaluated += 1,
                _ => refused += 1,
            }
        }
    }
    let elapsed = started.elapsed();
    let windows = elapsed.as_secs_f64() / window.as_secs_f64();
    let bombed = mails_to(&mail, "bomb@example.org", bombs as usize).await as u64;
    let mailed = mails_to(&mail, "vic@example.org", sent as usize).await as u64;
    println!(
        "sustained attack ({b:?}): {flows} flows in {elapsed:.1?} = {windows:.1} windows of {window:?}; {refused} requests refused with 429"
    );
    println!(
        "  mail bombing: {bombed} codes mailed = {:.1} per window (budget 10); guessing: {evaluated} wrong guesses evaluated = {:.1} per window (budget 10), {mailed} codes mailed",
        bombed as f64 / windows,
        evaluated as f64 / windows,
    );
    println!(
        "  with the default 1h window: at most 10 codes per address per hour and 10 wrong guesses per identity per hour"
    );
    // A window starts at its first hit, so n windows' time touches at most n + 1 windows.
    let most = 10 * (windows.ceil() as u64 + 1);
    assert!(
        bombed <= most && evaluated <= most,
        "{bombed} / {evaluated} > {most}"
    );
    assert!(
        bombed >= 20 && evaluated >= 20,
        "the budgets were used: {bombed} / {evaluated}"
    );
    assert!(refused > 0, "the attacker was refused");
    assert_eq!(
        (bombed, mailed),
        (bombs, sent),
        "every accepted send was mailed, no other"
    );
    s.shutdown().await;
});

both_backends!(
    second_factor_guesses_are_capped_per_identity,
    |b: Backend| async move {
        use crate::settings_mfa::{link_totp, mfa_config};
        use crate::support::totp::code_at;
        let limits =
            json!({"sallyport": {"rate_limits": {"second_factor_guesses_per_identity": {"limit": 3}}}});
        let s = TestServer::spawn_with(b, mfa_config(limits)).await;
        create_identity(&s, "dee@example.org", "correct horse battery").await;
        let (_, login) = native_login(&s, "dee@example.org", "correct horse battery").await;
        let token = login["session_token"].as_str().unwrap().to_owned();
        let secret = link_totp(&s, &token).await;
        let (st, first) = native_login(&s, "dee@example.org", "correct horse battery").await;
        assert_eq!(st, 200);
        let t2 = first["session_token"].as_str().unwrap().to_owned();
        let step_up = || async {
            let (_, flow) = send(
                api()
                    .get(s.public_url("self-service/login/api?aal=aal2"))
                    .header("X-Session-Token", &t2),
            )
            .await;
            flow["ui"]["action"].as_str().unwrap().to_owned()
        };
        let submit = |action: String, payload: Value| {
            let t2 = t2.clone();
            async move {
                let res = api()
                    .post(&action)
                    .header("X-Session-Token", &t2)
                    .json(&payload)
                    .send()
                    .await
                    .unwrap();
                let retry = res
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned());
                let (st, v) = body(res).await;
                (st, v, retry)
            }
        };
        // Three wrong guesses, spread over flows and over TOTP and backup codes alike.
        let (st, _, _) = submit(step_up().await, json!({"method": "totp", "totp_code": "000000x"})).await;
        assert_eq!(st, 400);
        let (st, _, _) = submit(step_up().await, json!({"method": "totp", "totp_code": "111111x"})).await;
        assert_eq!(st, 400);
        let (st, _, _) = submit(
            step_up().await,
            json!({"method": "lookup_secret", "lookup_secret": "nope"}),
        )
        .await;
        assert_eq!(st, 400);
        let code = code_at(&secret, time::OffsetDateTime::now_utc().unix_timestamp());
        let (st, v, retry) = submit(step_up().await, json!({"method": "totp", "totp_code": code})).await;
        assert_limited(st, &v, &retry, "sallyport_rate_limited_second_factor");
        // The first factor is a budget of its own: the password still signs in.
        let (st, v) = native_login(&s, "dee@example.org", "correct horse battery").await;
        assert_eq!(st, 200, "{v}");
        s.shutdown().await;
    }
);

// Parallel bursts: the budgets are checked atomically, so firing many guesses at once gains nothing.
both_backends!(parallel_bursts_stay_within_the_budgets, |b: Backend| async move {
    let mail = MailServer::start().await;
    let mut cfg = code_config(json!({
        "codes_sent_per_address": {"limit": 100},
        "password_failures_per_identifier": {"limit": 3, "backoff": "30s"},
    }));
    cfg = mail.config(cfg);
    let s = TestServer::spawn_with(b, cfg).await;
    create_identity(&s, "vic@example.org", "a-strong-passw0rd!").await;

    // 20 wrong codes at once over four flows (5 each, the per-flow maximum): exactly 10 are checked.
    let mut actions = vec![];
    for _ in 0..4 {
        let (action, st, _, _) = send_login_code(&s, "vic@example.org").await;
        assert_eq!(st, 400);
        actions.push(action);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..20 {
        let action = actions[n % actions.len()].clone();
        tasks.spawn(async move {
            post(
                &action,
                json!({"method": "code", "identifier": "vic@example.org", "code": "999999x"}),
            )
            .await
            .0
        });
    }
    let mut codes = (0, 0);
    while let Some(st) = tasks.join_next().await {
        match st.unwrap().as_u16() {
            400 => codes.0 += 1,
            429 => codes.1 += 1,
            other => panic!("{other}"),
        }
    }
    assert_eq!(codes, (10, 10), "(checked, refused)");

    // 30 wrong passwords at once: the free 3, the one that starts the pause, and at most one more per
    // password permit (one per core) that was already past the check.
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let url = s.public_url("self-service/login/api");
        tasks.spawn(async move {
            let (_, flow) = send(api().get(url)).await;
            let action = flow["ui"]["action"].as_str().unwrap().to_owned();
            post(
                &action,
                json!({"method": "password", "identifier": "vic@example.org", "password": "wrong"}),
            )
            .await
            .0
        });
    }
    let mut checked = 0;
    while let Some(st) = tasks.join_next().await {
        match st.unwrap().as_u16() {
            400 => checked += 1,
            429 => {}
            other => panic!("{other}"),
        }
    }
    assert!(
        (4..=3 + cores).contains(&checked),
        "{checked} passwords checked, cores {cores}"
    );
    s.shutdown().await;
});
