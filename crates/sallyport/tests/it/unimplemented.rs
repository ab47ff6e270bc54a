//! Found by schemathesis against Kratos' OpenAPI document: an endpoint Sallyport does not implement, a method a
//! path does not serve, or a query string the framework cannot read answers Kratos' JSON error envelope — never an
//! empty or plain-text body.

use crate::both_backends;
use crate::support::client::api;
use crate::support::{Backend, TestServer};

both_backends!(
    unimplemented_and_wrong_method_answer_the_envelope,
    |b: Backend| async move {
        let s = TestServer::spawn(b).await;
        let c = api();
        for (method, url, status) in [
            (
                "GET",
                s.public_url("sessions/token-exchange?init_code=a&return_to_code=b"),
                404,
            ),
            ("PUT", s.public_url("self-service/login/api"), 405),
            ("POST", s.public_url("sessions/whoami/nothing-here"), 404),
            ("PATCH", s.admin_url("admin/courier/messages"), 405),
            // axum's own query rejection (a repeated field) was a text/plain body.
            (
                "GET",
                s.admin_url("admin/courier/messages?page_size=1&page_size=2"),
                400,
            ),
            ("GET", s.public_url("sessions?page_size=1&page_size=2"), 400),
        ] {
            let res = c.request(method.parse().unwrap(), &url).send().await.unwrap();
            assert_eq!(res.status(), status, "{method} {url}");
            let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
            assert!(ct.starts_with("application/json"), "{method} {url}: {ct}");
            let v: serde_json::Value = res.json().await.unwrap();
            assert_eq!(v["error"]["code"], status, "{method} {url}: {v}");
            assert!(v["error"]["message"].is_string());
        }
        s.shutdown().await;
    }
);
