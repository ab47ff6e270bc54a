//! The per-client-IP gate in front of the self-service flow routes (off by default), and which
//! address a request counts for behind trusted proxies.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use sallyport_config::model::Cidr;
use sallyport_core::error::{ApiError, ErrorId};
use sallyport_core::rate_limit::Bucket;

use super::{hit, limited};
use crate::http::error::HttpError;
use crate::selfservice::common::FlowFailure;
use crate::state::AppState;

/// The address a request comes from: the peer, or — only when the peer is a trusted proxy — the
/// nearest address in `X-Forwarded-For` that is not itself a trusted proxy.
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded_for.unwrap_or("").rsplit(',') {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            break;
        };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

enum IpBudget {
    FlowCreation,
    Submission,
}

/// `/self-service/<flow>/{browser,api}` creates a flow, `/self-service/<flow>` submits one; logout,
/// errors and flow reads are not limited.
fn classify(method: &Method, path: &str) -> Option<IpBudget> {
    let rest = path.strip_prefix("/self-service/")?;
    let (flow, tail) = rest.split_once('/').unwrap_or((rest, ""));
    if !matches!(
        flow,
        "login" | "registration" | "recovery" | "verification" | "settings"
    ) {
        return None;
    }
    match tail {
        "browser" | "api" if method == Method::GET => Some(IpBudget::FlowCreation),
        "" if method == Method::POST || method == Method::GET => Some(IpBudget::Submission),
        _ => None,
    }
}

/// The per-IP gate, layered onto the public router only when `per_ip.enabled`.
pub async fn per_ip(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let limits = &app.settings.rate_limits;
    let (bucket, rule) = match classify(req.method(), req.uri().path()) {
        Some(IpBudget::FlowCreation) => (Bucket::IpFlowCreations, &limits.ip_flow_creations),
        Some(IpBudget::Submission) => (Bucket::IpSubmissions, &limits.ip_submissions),
        None => return next.run(req).await,
    };
    let Some(rule) = rule else {
        return next.run(req).await;
    };
    let Some(peer) = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
    else {
        return next.run(req).await;
    };
    let forwarded = req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
    let ip = client_ip(peer, forwarded, &limits.trusted_proxies);
    let key = bucket.key(&ip.to_string());
    match hit(&app, bucket, rule, &key).await {
        Ok(v) if v.allowed => next.run(req).await,
        Ok(v) => match limited(ErrorId::RateLimitedClientIp, &v) {
            FlowFailure::Limited(l) => HttpError(l.error).into_response(),
            _ => unreachable!("limited() builds Limited"),
        },
        Err(FlowFailure::Api(e)) => HttpError(e).into_response(),
        Err(_) => HttpError(ApiError::internal()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|c| c.parse().unwrap()).collect()
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let trusted = cidrs(&["10.0.0.0/8"]);
        // Not from a proxy: the header is the client's word, ignored.
        assert_eq!(
            client_ip(ip("203.0.113.5"), Some("198.51.100.1"), &trusted),
            ip("203.0.113.5")
        );
        // From the proxy: the nearest untrusted hop, not the spoofable leftmost one.
        assert_eq!(
            client_ip(ip("10.0.0.2"), Some("1.1.1.1, 198.51.100.1, 10.0.0.9"), &trusted),
            ip("198.51.100.1")
        );
        assert_eq!(client_ip(ip("10.0.0.2"), None, &trusted), ip("10.0.0.2"));
        assert_eq!(
            client_ip(ip("10.0.0.2"), Some("garbage"), &trusted),
            ip("10.0.0.2")
        );
        assert_eq!(
            client_ip(ip("10.0.0.2"), Some("10.1.1.1"), &trusted),
            ip("10.1.1.1")
        );
        assert_eq!(
            client_ip(ip("127.0.0.1"), Some("198.51.100.1"), &[]),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn only_flow_creation_and_submission_are_limited() {
        let c = |m: Method, p: &str| classify(&m, p).map(|b| matches!(b, IpBudget::FlowCreation));
        assert_eq!(c(Method::GET, "/self-service/login/browser"), Some(true));
        assert_eq!(c(Method::GET, "/self-service/registration/api"), Some(true));
        assert_eq!(c(Method::POST, "/self-service/login"), Some(false));
        assert_eq!(c(Method::GET, "/self-service/verification"), Some(false));
        assert_eq!(c(Method::GET, "/self-service/login/flows"), None);
        assert_eq!(c(Method::GET, "/sessions/whoami"), None);
        assert_eq!(c(Method::GET, "/self-service/logout/browser"), None);
    }
}
