//! The one outgoing HTTP client: timeouts, a response size cap, and Kratos'
//! `clients.http.disallow_private_ip_ranges` / `private_ip_exception_urls` (ory/x `httpx`'s
//! `NoInternalIPRoundTripper`: every address a host name resolves to must be public, unless the request URL
//! is on the exception list, matched exactly and case-sensitively).
//!
//! The guard sits in the DNS resolver (so a host name that resolves to both a public and a private address
//! is refused, and redirects are covered) plus a check of IP literals, which never reach a resolver.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde_json::Value;
use url::Url;

/// `clients.http.*` plus the limits Sallyport adds.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpPolicy {
    pub disallow_private_ip_ranges: bool,
    pub private_ip_exception_urls: Vec<String>,
    /// Whole-request timeout (connect, send, read the body).
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Responses larger than this are refused (discovery documents, JWKS, user APIs, mappers).
    pub max_response_bytes: usize,
}

impl Default for HttpPolicy {
    fn default() -> Self {
        HttpPolicy {
            disallow_private_ip_ranges: false,
            private_ip_exception_urls: Vec::new(),
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            max_response_bytes: 2 * 1024 * 1024,
        }
    }
}

impl HttpPolicy {
    /// Reads `clients.http` from the whole Kratos configuration (the config crate's raw JSON).
    pub fn from_config(config: &Value) -> HttpPolicy {
        let http = config.pointer("/clients/http");
        HttpPolicy {
            disallow_private_ip_ranges: http
                .and_then(|h| h.get("disallow_private_ip_ranges"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
            private_ip_exception_urls: http
                .and_then(|h| h.get("private_ip_exception_urls"))
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                .unwrap_or_default(),
            ..HttpPolicy::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The target is (or resolves to) a private, loopback, link-local or otherwise internal address.
    PrivateIp(String),
    Timeout,
    /// Connection refused, DNS failure, TLS failure, …
    Connect(String),
    Status(u16),
    TooLarge,
    InvalidUrl(String),
    Other(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::PrivateIp(what) => write!(
                f,
                "{what} is not a permitted destination: private IP ranges are disallowed"
            ),
            HttpError::Timeout => f.write_str("the request timed out"),
            HttpError::Connect(e) => write!(f, "unable to connect: {e}"),
            HttpError::Status(s) => write!(f, "the server answered with status {s} but 200 is expected"),
            HttpError::TooLarge => f.write_str("the response is too large"),
            HttpError::InvalidUrl(u) => write!(f, "invalid URL: {u}"),
            HttpError::Other(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for HttpError {}

/// Addresses that must not be reached when private ranges are disallowed (ory/x `httpx` uses the same
/// families: private, loopback, link-local, unspecified, CGNAT, multicast, documentation, ULA, …).
pub fn is_internal_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal_v4(v4);
            }
            let seg0 = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg0 & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (seg0 & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (seg0 == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
                || (seg0 == 0x0064 && v6.segments()[1] == 0xff9b) // NAT64 may reach IPv4 internals
                || v6 == Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1)
        }
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // CGNAT 100.64.0.0/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18.0.0/15
        || o[0] >= 240
}

/// Resolves with the system resolver, then drops the whole answer if any address is internal (one bad
/// address is enough for a DNS-rebinding attacker).
struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?
                .collect();
            if let Some(bad) = addrs.iter().find(|a| is_internal_ip(a.ip())) {
                let err = HttpError::PrivateIp(format!("{host} ({})", bad.ip()));
                return Err(Box::new(err) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// A response read in full (bounded by [`HttpPolicy::max_response_bytes`]).
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> Result<Value, HttpError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| HttpError::Other(format!("the response is not JSON: {e}")))
    }
}

/// Cheap to clone; share one per process.
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

struct Inner {
    policy: HttpPolicy,
    guarded: reqwest::Client,
    open: reqwest::Client,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("policy", &self.inner.policy)
            .finish()
    }
}

impl HttpClient {
    pub fn new(policy: HttpPolicy) -> Result<HttpClient, HttpError> {
        let base = || {
            reqwest::Client::builder()
                .timeout(policy.timeout)
                .connect_timeout(policy.connect_timeout)
                .user_agent(concat!("sallyport/", env!("CARGO_PKG_VERSION")))
        };
        let guard_redirects = reqwest::redirect::Policy::custom(|attempt| {
            if attempt.previous().len() >= 5 {
                return attempt.error("too many redirects");
            }
            match attempt.url().host() {
                Some(url::Host::Ipv4(ip)) if is_internal_ip(IpAddr::V4(ip)) => {
                    attempt.error(HttpError::PrivateIp(ip.to_string()))
                }
                Some(url::Host::Ipv6(ip)) if is_internal_ip(IpAddr::V6(ip)) => {
                    attempt.error(HttpError::PrivateIp(ip.to_string()))
                }
                _ => attempt.follow(),
            }
        });
        let guarded = base()
            .dns_resolver(Arc::new(GuardedResolver))
            .redirect(guard_redirects)
            .build()
            .map_err(|e| HttpError::Other(e.to_string()))?;
        let open = base()
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .map_err(|e| HttpError::Other(e.to_string()))?;
        Ok(HttpClient {
            inner: Arc::new(Inner {
                policy,
                guarded,
                open,
            }),
        })
    }

    pub fn policy(&self) -> &HttpPolicy {
        &self.inner.policy
    }

    /// The client a request to `url` must use, or why it may not be sent at all.
    fn client_for(&self, url: &Url) -> Result<&reqwest::Client, HttpError> {
        let policy = &self.inner.policy;
        if !policy.disallow_private_ip_ranges
            || policy.private_ip_exception_urls.iter().any(|u| u == url.as_str())
        {
            return Ok(&self.inner.open);
        }
        match url.host() {
            Some(url::Host::Ipv4(ip)) if is_internal_ip(IpAddr::V4(ip)) => {
                Err(HttpError::PrivateIp(ip.to_string()))
            }
            Some(url::Host::Ipv6(ip)) if is_internal_ip(IpAddr::V6(ip)) => {
                Err(HttpError::PrivateIp(ip.to_string()))
            }
            None => Err(HttpError::InvalidUrl(url.to_string())),
            _ => Ok(&self.inner.guarded),
        }
    }

    /// The client for requests to `url` (for callers that build requests themselves: the courier,
    /// the breached-password check). Same checks as [`HttpClient::request`].
    pub fn client_for_url(&self, url: &Url) -> Result<reqwest::Client, HttpError> {
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(HttpError::InvalidUrl(format!(
                "{} (only http and https are allowed)",
                url.scheme()
            )));
        }
        self.client_for(url).cloned()
    }

    /// Builds a request against the right client (the guard is applied here).
    pub fn request(&self, method: reqwest::Method, url: &Url) -> Result<reqwest::RequestBuilder, HttpError> {
        Ok(self.client_for_url(url)?.request(method, url.clone()))
    }

    /// Sends and reads the whole body, whatever the status.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<Response, HttpError> {
        let mut response = request.send().await.map_err(map_reqwest_error)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let max = self.inner.policy.max_response_bytes;
        if response.content_length().is_some_and(|n| n as usize > max) {
            return Err(HttpError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(map_reqwest_error)? {
            if body.len() + chunk.len() > max {
                return Err(HttpError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    /// GET that expects 200 and JSON.
    pub async fn get_json(&self, url: &Url, bearer: Option<&str>) -> Result<Value, HttpError> {
        let mut req = self
            .request(reqwest::Method::GET, url)?
            .header("Accept", "application/json");
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        let res = self.send(req).await?;
        if res.status != 200 {
            return Err(HttpError::Status(res.status));
        }
        res.json()
    }

    /// GET that expects 200 and text (mappers, templates, schemas).
    pub async fn get_text(&self, url: &Url) -> Result<String, HttpError> {
        let res = self.send(self.request(reqwest::Method::GET, url)?).await?;
        if res.status != 200 {
            return Err(HttpError::Status(res.status));
        }
        String::from_utf8(res.body).map_err(|_| HttpError::Other("the response is not UTF-8".into()))
    }

    /// Runs an `openidconnect` request (discovery, JWKS) through this client.
    pub(crate) async fn execute(
        &self,
        request: openidconnect::HttpRequest,
    ) -> Result<openidconnect::HttpResponse, HttpError> {
        let url = Url::parse(&request.uri().to_string()).map_err(|e| HttpError::InvalidUrl(e.to_string()))?;
        let method = reqwest::Method::from_bytes(request.method().as_str().as_bytes())
            .map_err(|e| HttpError::Other(e.to_string()))?;
        let mut req = self.request(method, &url)?;
        for (name, value) in request.headers() {
            req = req.header(name.as_str(), value.as_bytes());
        }
        let res = self.send(req.body(request.into_body())).await?;
        let mut builder = openidconnect::http::Response::builder().status(res.status);
        for (name, value) in res.headers.iter() {
            builder = builder.header(name.as_str(), value.as_bytes());
        }
        builder
            .body(res.body)
            .map_err(|e| HttpError::Other(e.to_string()))
    }
}

fn map_reqwest_error(e: reqwest::Error) -> HttpError {
    if e.is_timeout() {
        return HttpError::Timeout;
    }
    // The resolver's and the redirect policy's own errors travel inside reqwest's source chain.
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<HttpError>() {
            return h.clone();
        }
        source = s.source();
    }
    let e = e.without_url();
    if e.is_connect() {
        return HttpError::Connect(e.to_string());
    }
    HttpError::Other(e.to_string())
}

/// `openidconnect` drives discovery and JWKS through this client. A named impl rather than a closure: the
/// closure's future is not provably `Send` for every lifetime, which made every caller's future non-`Send`
/// (and so unusable in an axum handler).
impl<'c> openidconnect::AsyncHttpClient<'c> for HttpClient {
    type Error = HttpError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<openidconnect::HttpResponse, HttpError>> + Send + 'c>,
    >;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(self.execute(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_ranges() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_internal_ip(ip.parse().unwrap()), "{ip} should be internal");
        }
        for ip in ["1.1.1.1", "93.184.216.34", "2606:4700:4700::1111"] {
            assert!(!is_internal_ip(ip.parse().unwrap()), "{ip} should be public");
        }
    }

    #[test]
    fn policy_from_kratos_config() {
        let cfg = serde_json::json!({"clients": {"http": {
            "disallow_private_ip_ranges": true,
            "private_ip_exception_urls": ["http://127.0.0.1:1/x"]
        }}});
        let p = HttpPolicy::from_config(&cfg);
        assert!(p.disallow_private_ip_ranges);
        assert_eq!(
            p.private_ip_exception_urls,
            vec!["http://127.0.0.1:1/x".to_string()]
        );
        assert!(!HttpPolicy::from_config(&serde_json::json!({})).disallow_private_ip_ranges);
    }
}
