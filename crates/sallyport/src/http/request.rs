//! What handlers need to know about the caller, read once per request.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Uri};

use crate::http::negotiate::is_json_request;

pub struct ReqInfo {
    pub headers: HeaderMap,
    pub uri: Uri,
    pub is_json: bool,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for ReqInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let headers = parts.headers.clone();
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string());
        let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
        // Same precedence as ory/x httpx.ClientIP: proxies' headers first, then the peer.
        let client_ip = header("true-client-ip")
            .or_else(|| header("x-real-ip"))
            .or_else(|| {
                header("x-forwarded-for").and_then(|v| v.split(',').next().map(|s| s.trim().to_owned()))
            })
            .or(peer);
        Ok(ReqInfo {
            is_json: is_json_request(&headers),
            user_agent: header("user-agent"),
            client_ip,
            uri: parts.uri.clone(),
            headers,
        })
    }
}

impl ReqInfo {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The URL the client called, on the public base URL (Kratos' `request_url`).
    pub fn request_url(&self, public_base: &url::Url) -> String {
        let pq = self.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        format!("{}{}", public_base.as_str().trim_end_matches('/'), pq)
    }
}

/// Whether the path or query, once percent-decoded, would contain U+0000. A raw NUL cannot reach
/// here (hyper refuses it), so `%00` is the only spelling.
pub fn uri_has_nul(uri: &Uri) -> bool {
    uri.path_and_query()
        .is_some_and(|pq| pq.as_str().as_bytes().windows(3).any(|w| w == b"%00"))
}
