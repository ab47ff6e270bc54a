//! Bad input gets Kratos' status and error, never a 500, and changes nothing.

use serde_json::json;

use crate::both_backends;
use crate::support::client::{api, browser, create_identity, message_ids, native_login, send};
use crate::support::{Backend, TestServer};

both_backends!(malformed_bodies_and_flow_ids, |b: Backend| async move {
    let s = TestServer::spawn(b).await;
    let c = api();
    let (_, flow) = send(c.get(s.public_url("self-service/login/api"))).await;
    let action = flow["ui"]["action"].as_str().unwrap().to_owned();

    let (st, f) = send(
        c.post(&action)
            .header("content-type", "application/json")
            .body("{not json"),
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(message_ids(&f), vec![4000001]);
    let (st, f) = send(
        c.post(&action)
            .header("content-type", "application/json")
            .body(vec![0xff, 0xfe, b'{']),
    )
    .await;
    assert_eq!(st, 400, "invalid UTF-8: {f}");
    let (st, f) = send(
        c.post(&action)
            .header("content-type", "text/plain")
            .body("method=password"),
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(message_ids(&f), vec![4000001]);
    let (st, f) = send(c.post(&action).json(&json!({"method": "carrier-pigeon"}))).await;
    assert_eq!(st, 400);
    assert_eq!(message_ids(&f), vec![4010002]);
    let (st, f) = send(c.post(&action).json(&json!({"method": "password"}))).await;
    assert_eq!(st, 400);
    assert!(message_ids(&f).contains(&4000002));

    let big = vec![b'a'; 6 * 1024 * 1024];
    let (st, e) = send(
        c.post(&action)
            .header("content-type", "application/json")
            .body(big),
    )
    .await;
    assert_eq!(st, 413, "{e}");
    assert_eq!(e["error"]["code"], 413);

    let (st, e) = send(
        c.post(s.public_url("self-service/login?flow=not-a-uuid"))
            .json(&json!({})),
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(
        e["error"]["reason"],
        "The flow query parameter is missing or malformed."
    );
    let (st, _) = send(
        c.post(s.public_url(&format!("self-service/login?flow={}", uuid::Uuid::new_v4())))
            .json(&json!({})),
    )
    .await;
    assert_eq!(st, 404);
    let (st, _) =
        send(c.get(s.public_url(&format!("self-service/login/flows?id={}", uuid::Uuid::new_v4())))).await;
    assert_eq!(st, 404);
    let res = c
        .put(s.public_url("self-service/login/api"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    let (st, e) = send(c.get(s.public_url("no/such/path"))).await;
    assert_eq!(st, 404);
    assert_eq!(e["error"]["code"], 404);
    s.shutdown().await;
});

both_backends!(api_flows_refuse_browser_traits, |b: Backend| async move {
    let s = TestServer::spawn(b).await;
    create_identity(&s, "jo@example.org", "correct horse battery").await;
    let c = api();
    let (_, flow) = send(c.get(s.public_url("self-service/login/api"))).await;
    let action = flow["ui"]["action"].as_str().unwrap().to_owned();
    let creds =
        json!({"method": "password", "identifier": "jo@example.org", "password": "correct horse battery"});
    let (st, f) = send(
        c.post(&action)
            .header("Origin", "http://evil.example")
            .json(&creds),
    )
    .await;
    assert_eq!(st, 400);
    assert!(
        f["ui"]["messages"][0]["text"]
            .as_str()
            .unwrap()
            .contains("\"Origin\"")
    );
    let (st, f) = send(
        c.post(&action)
            .header("Cookie", "foo=bar; __cf_bm=x")
            .json(&creds),
    )
    .await;
    assert_eq!(st, 400);
    assert!(
        f["ui"]["messages"][0]["text"]
            .as_str()
            .unwrap()
            .contains("\"Cookie\"")
    );
    // Cloudflare's own cookies are tolerated.
    let (st, _) = send(
        c.post(&action)
            .header("Cookie", "__cf_bm=x; cf_clearance=y")
            .json(&creds),
    )
    .await;
    assert_eq!(st, 200);
    s.shutdown().await;
});

both_backends!(expired_flows_are_replaced, |b: Backend| async move {
    let s = TestServer::spawn_with(
        b,
        json!({"selfservice": {"flows": {"login": {"lifespan": "1s"}}}}),
    )
    .await;
    let c = api();
    let (_, flow) = send(c.get(s.public_url("self-service/login/api"))).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (st, e) = send(
        c.post(flow["ui"]["action"].as_str().unwrap())
            .json(&json!({"method": "password", "identifier": "x@example.org", "password": "x"})),
    )
    .await;
    assert_eq!(st, 410);
    assert_eq!(e["error"]["id"], "self_service_flow_expired");
    let new_id = e["use_flow_id"].as_str().unwrap();
    assert_ne!(new_id, flow["id"].as_str().unwrap());
    let (st, new_flow) = send(c.get(s.public_url(&format!("self-service/login/flows?id={new_id}")))).await;
    assert_eq!(st, 200);
    assert_eq!(message_ids(&new_flow), vec![4010001]);
    let (st, e) = send(c.get(s.public_url(&format!(
        "self-service/login/flows?id={}",
        flow["id"].as_str().unwrap()
    ))))
    .await;
    assert_eq!(st, 410);
    assert!(
        e["error"]["details"]["api"]
            .as_str()
            .unwrap()
            .ends_with("self-service/login/api")
    );
    // Browsers are sent to the new flow.
    let br = browser();
    let res = br
        .get(s.public_url("self-service/login/browser"))
        .send()
        .await
        .unwrap();
    let old = crate::support::client::flow_id_from(&crate::support::client::location(&res));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let res = br
        .post(s.public_url(&format!("self-service/login?flow={old}")))
        .form(&[("method", "password"), ("identifier", "x"), ("password", "y")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let newer = crate::support::client::flow_id_from(&crate::support::client::location(&res));
    assert_ne!(newer, old);
    s.shutdown().await;
});

both_backends!(inactive_identities_cannot_sign_in, |b: Backend| async move {
    let s = TestServer::spawn(b).await;
    let id = create_identity(&s, "kim@example.org", "correct horse battery").await;
    let res = api()
        .patch(s.admin_url(&format!("admin/identities/{id}")))
        .json(&json!([{"op": "replace", "path": "/state", "value": "inactive"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (st, f) = native_login(&s, "kim@example.org", "correct horse battery").await;
    assert_eq!(st, 400);
    assert_eq!(message_ids(&f), vec![4010011]);
    s.shutdown().await;
});

both_backends!(
    huge_and_deep_traits_are_refused_cleanly,
    |b: Backend| async move {
        let s = TestServer::spawn(b).await;
        let mut deep = json!("x");
        for _ in 0..200 {
            deep = json!({ "a": deep });
        }
        let res = api()
            .post(s.admin_url("admin/identities"))
            .json(&json!({"schema_id": "default", "traits": {"email": "deep@example.org", "name": deep}}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        let (_, list) = send(api().get(s.admin_url("admin/identities"))).await;
        assert_eq!(list.as_array().unwrap().len(), 0, "nothing was written");
        s.shutdown().await;
    }
);

both_backends!(
    recovery_lifespans_past_go_durations_are_400,
    |b: Backend| async move {
        let s = TestServer::spawn_with(
            b,
            json!({"selfservice": {"flows": {"recovery": {"enabled": true, "ui_url": "http://ui.test/recovery"}}}}),
        )
        .await;
        let id = create_identity(&s, "life@example.org", "correct horse battery").await;
        // 99999999999h overflowed the expiry date: a panic, answered 500.
        for expires_in in ["99999999999h", "2562048h"] {
            let (st, e) = send(
                api()
                    .post(s.admin_url("admin/recovery/code"))
                    .json(&json!({"identity_id": id, "expires_in": expires_in})),
            )
            .await;
            assert_eq!(st, 400, "{expires_in}: {e}");
            assert!(
                e["error"]["reason"].as_str().unwrap().contains("Unable to parse"),
                "{e}"
            );
        }
        let (st, e) = send(
            api()
                .post(s.admin_url("admin/recovery/code"))
                .json(&json!({"identity_id": id, "expires_in": "2562047h"})),
        )
        .await;
        assert_eq!(st, 201, "the longest Go duration is fine: {e}");
        s.shutdown().await;
    }
);
