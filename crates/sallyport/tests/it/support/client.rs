//! HTTP clients shaped like Kratos' three kinds of callers: a native app, a browser, and an SPA.

use reqwest::redirect::Policy;
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

use super::TestServer;

/// No cookies, no redirects: a native app.
pub fn api() -> Client {
    Client::builder().redirect(Policy::none()).build().unwrap()
}

/// Cookie jar, no automatic redirects (tests assert on each 303): a browser or an SPA.
pub fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap()
}

pub async fn body(res: Response) -> (StatusCode, Value) {
    let status = res.status();
    let text = res.text().await.unwrap();
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, v)
}

/// Sends the request and reads the answer as JSON (`Value::Null` for an empty body).
pub async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    body(req.send().await.unwrap()).await
}

pub fn location(res: &Response) -> String {
    res.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

pub fn flow_id_from(location: &str) -> String {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "flow")
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

pub fn node<'a>(flow: &'a Value, name: &str) -> Option<&'a Value> {
    flow["ui"]["nodes"]
        .as_array()?
        .iter()
        .find(|n| n["attributes"]["name"] == name)
}

pub fn csrf(flow: &Value) -> String {
    node(flow, "csrf_token")
        .and_then(|n| n["attributes"]["value"].as_str())
        .unwrap_or_default()
        .to_owned()
}

pub fn message_ids(flow: &Value) -> Vec<i64> {
    let mut ids: Vec<i64> = flow["ui"]["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["id"].as_i64())
        .collect();
    for n in flow["ui"]["nodes"].as_array().into_iter().flatten() {
        ids.extend(
            n["messages"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m["id"].as_i64()),
        );
    }
    ids
}

/// A native (api) registration in one step via the admin API, returning the identity id.
pub async fn create_identity(s: &TestServer, email: &str, password: &str) -> String {
    let res = api()
        .post(s.admin_url("admin/identities"))
        .json(&json!({
            "schema_id": "default",
            "traits": {"email": email},
            "credentials": {"password": {"config": {"password": password}}}
        }))
        .send()
        .await
        .unwrap();
    let (st, v) = body(res).await;
    assert_eq!(st, 201, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

/// Native login; returns (status, body).
pub async fn native_login(s: &TestServer, identifier: &str, password: &str) -> (StatusCode, Value) {
    let c = api();
    let (_, flow) = body(
        c.get(s.public_url("self-service/login/api"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let res = c
        .post(s.public_url(&format!(
            "self-service/login?flow={}",
            flow["id"].as_str().unwrap()
        )))
        .json(&json!({"method": "password", "identifier": identifier, "password": password}))
        .send()
        .await
        .unwrap();
    body(res).await
}

/// A browser's password login through the UI round trip (init → fetch flow → form post); returns the
/// final response (a 303) for the test to inspect.
pub async fn browser_login(s: &TestServer, c: &Client, identifier: &str, password: &str) -> Response {
    browser_login_at(
        s,
        c,
        &s.public_url("self-service/login/browser"),
        identifier,
        password,
    )
    .await
}

/// Like `browser_login`, starting from `init` (e.g. a `?refresh=true&return_to=…` URL).
pub async fn browser_login_at(
    s: &TestServer,
    c: &Client,
    init: &str,
    identifier: &str,
    password: &str,
) -> Response {
    let res = c.get(init).send().await.unwrap();
    let id = flow_id_from(&location(&res));
    let (_, flow) = body(
        c.get(s.public_url(&format!("self-service/login/flows?id={id}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    c.post(s.public_url(&format!("self-service/login?flow={id}")))
        .form(&[
            ("method", "password"),
            ("identifier", identifier),
            ("password", password),
            ("csrf_token", &csrf(&flow)),
        ])
        .send()
        .await
        .unwrap()
}
