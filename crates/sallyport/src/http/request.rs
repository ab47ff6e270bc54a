//! What handlers need to know about the caller, read once per request.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Uri};

use sallyport_core::error::ApiError;

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

/// What is wrong with the URL before any handler sees it: a NUL in the path or query once
/// percent-decoded (PostgreSQL text cannot hold one; a raw NUL cannot reach here, hyper refuses it,
/// so `%00` is the only spelling), or a path that is not UTF-8 once percent-decoded (axum would
/// answer that in plain text instead of the error envelope).
pub fn uri_problem(uri: &Uri) -> Option<ApiError> {
    let pq = uri.path_and_query()?.as_str();
    if pq.as_bytes().windows(3).any(|w| w == b"%00") {
        return Some(ApiError::nul_character("The request URL"));
    }
    // The path is valid UTF-8 as received (`Uri` holds a `str`): only an escape can make it otherwise,
    // and most requests have none, so they skip the decoded copy.
    let path = uri.path();
    if path.contains('%') && std::str::from_utf8(&percent_decode(path.as_bytes())).is_err() {
        return Some(ApiError::bad_request(
            "The request URL path is not valid UTF-8 once percent-decoded.",
        ));
    }
    None
}

fn percent_decode(s: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%'
            && let (Some(h), Some(l)) = (
                s.get(i + 1).and_then(|b| hex(*b)),
                s.get(i + 2).and_then(|b| hex(*b)),
            )
        {
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_and_broken_utf8_are_found_anywhere() {
        let problem = |u: &str| uri_problem(&u.parse().unwrap()).map(|e| e.reason.unwrap());
        assert_eq!(problem("/a/b?c=d%2500"), None, "%25 is a percent sign");
        assert_eq!(problem("/a/%E2%80%AE"), None);
        assert!(problem("/a?x=%00").unwrap().contains("NUL"));
        assert!(problem("/a/%E2%80%AE%00").unwrap().contains("NUL"));
        assert!(problem("/a/%FF").unwrap().contains("UTF-8"));
        assert!(problem("/a/%E2%80").unwrap().contains("UTF-8"));
        assert_eq!(problem("/a/%zz%4"), None, "not an escape, kept as is");
    }
}
