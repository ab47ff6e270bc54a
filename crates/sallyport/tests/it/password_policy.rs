//! The HaveIBeenPwned check against a k-anonymity range server on loopback.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::{Path, State};
use serde_json::json;
use sha1::{Digest, Sha1};

use crate::both_backends;
use crate::support::client::{api, node, send};
use crate::support::{Backend, TestServer};

const BREACHED: &str = "breached-but-long-enough";

fn sha1_hex(s: &str) -> String {
    Sha1::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// A range server that knows one breached password; it counts the prefixes it was asked for.
async fn range_server() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new()
        .route(
            "/range/{prefix}",
            axum::routing::get(
                |State(hits): State<Arc<AtomicUsize>>, Path(prefix): Path<String>| async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    let full = sha1_hex(BREACHED);
                    assert_eq!(
                        prefix.len(),
                        5,
                        "only a 5-character prefix ever leaves the server"
                    );
                    if full.starts_with(&prefix) {
                        format!("0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n{}:42\r\n", &full[5..])
                    } else {
                        "0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n".to_owned()
                    }
                },
            ),
        )
        .with_state(hits.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (url, hits)
}

async fn register(s: &TestServer, email: &str, password: &str) -> (u16, serde_json::Value) {
    let c = api();
    let (_, flow) = send(c.get(s.public_url("self-service/registration/api"))).await;
    let (st, v) = send(
        c.post(flow["ui"]["action"].as_str().unwrap())
            .json(&json!({"method": "password", "password": password, "traits": {"email": email}})),
    )
    .await;
    (st.as_u16(), v)
}

both_backends!(breached_passwords_are_refused, |b: Backend| async move {
    let (host, hits) = range_server().await;
    let s = TestServer::spawn_with(
        b,
        json!({"selfservice": {
            "methods": {"password": {"config": {"haveibeenpwned_enabled": true, "haveibeenpwned_host": host}}},
            "flows": {"registration": {"enable_legacy_one_step": true}}
        }}),
    )
    .await;
    let (st, f) = register(&s, "pat@example.org", BREACHED).await;
    assert_eq!(st, 400);
    assert_eq!(node(&f, "password").unwrap()["messages"][0]["id"], 4000034);
    let (st, f) = register(&s, "pat@example.org", "not-in-any-breach-xyz").await;
    assert_eq!(st, 200, "{f}");
    assert!(hits.load(Ordering::SeqCst) >= 2);
    s.shutdown().await;
});

both_backends!(unreachable_breach_service_fails_open, |b: Backend| async move {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let s = TestServer::spawn_with(
        b,
        json!({"selfservice": {
            "methods": {"password": {"config": {"haveibeenpwned_enabled": true, "haveibeenpwned_host": format!("http://{dead}")}}},
            "flows": {"registration": {"enable_legacy_one_step": true}}
        }}),
    )
    .await;
    let (st, f) = register(&s, "quin@example.org", BREACHED).await;
    assert_eq!(
        st, 200,
        "network errors are ignored by default, as in Kratos: {f}"
    );
    s.shutdown().await;
});
