//! The pages' view of the public API: an in-process request through the same router a browser
//! front end would reach over HTTP, carrying the browser's cookies both ways.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt;

/// Flow documents are small; anything larger is not one.
const MAX_BODY: usize = 2 * 1024 * 1024;

/// Headers of the browser's request the API may read (session and CSRF cookies, device info).
const FORWARDED: [&str; 6] = [
    "cookie",
    "host",
    "user-agent",
    "x-forwarded-for",
    "x-forwarded-proto",
    "accept-language",
];

#[derive(Clone)]
pub struct Api(Router);

pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub set_cookies: Vec<HeaderValue>,
}

impl Reply {
    pub fn error_id(&self) -> &str {
        self.body
            .pointer("/error/id")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    pub fn redirect_browser_to(&self) -> Option<&str> {
        self.body
            .get("redirect_browser_to")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }
}

/// Who is asking: the browser's headers and address.
pub struct Caller {
    pub headers: HeaderMap,
    pub addr: Option<ConnectInfo<SocketAddr>>,
}

impl Api {
    pub fn new(router: Router) -> Self {
        Api(router)
    }

    pub async fn call(&self, method: Method, path_and_query: &str, caller: &Caller) -> Reply {
        let mut req = Request::builder().method(method).uri(path_and_query);
        for name in FORWARDED {
            for v in caller.headers.get_all(name) {
                req = req.header(name, v);
            }
        }
        req = req.header(header::ACCEPT, "application/json");
        let Ok(mut req) = req.body(Body::empty()) else {
            return Reply::failed();
        };
        if let Some(addr) = caller.addr {
            req.extensions_mut().insert(addr);
        }
        let Ok(res) = self.0.clone().oneshot(req).await;
        let status = res.status();
        let set_cookies = res
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .cloned()
            .collect();
        let body = axum::body::to_bytes(res.into_body(), MAX_BODY)
            .await
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        Reply {
            status,
            body,
            set_cookies,
        }
    }
}

impl Reply {
    fn failed() -> Reply {
        Reply {
            status: StatusCode::BAD_REQUEST,
            body: Value::Null,
            set_cookies: vec![],
        }
    }
}
