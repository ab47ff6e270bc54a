//! `return_to` handling as Kratos' `x/redir/secure_redirect.go`: a URL is allowed when it is on the
//! public base URL's `/self-service` paths or matches `selfservice.allowed_return_urls` (scheme, host —
//! with `*.` wildcards — and path prefix). Relative URLs resolve against the default return URL.
//! Sallyport's own pages under `/ui/` count as the server's own, like `/self-service`.

use url::Url;

use sallyport_core::error::ApiError;

fn host_matches(allowed: &str, host: &str) -> bool {
    match allowed.strip_prefix("*.") {
        Some(suffix) => host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}")),
        None => allowed.eq_ignore_ascii_case(host),
    }
}

pub fn is_allowed(target: &Url, allowed: &[Url], public_base: &Url) -> bool {
    let own = [
        public_base.join("self-service").ok(),
        public_base.join("ui/").ok(),
    ];
    allowed.iter().chain(own.iter().flatten()).any(|a| {
        a.scheme() == target.scheme()
            && host_matches(a.host_str().unwrap_or(""), target.host_str().unwrap_or(""))
            && a.port_or_known_default() == target.port_or_known_default()
            && target.path().starts_with(a.path().trim_end_matches('/'))
    })
}

/// Validates a `return_to` from a client; `None` when absent or empty.
pub fn validate_return_to(
    return_to: Option<&str>,
    default: &Url,
    allowed: &[Url],
    public_base: &Url,
) -> Result<Option<Url>, ApiError> {
    let Some(raw) = return_to.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let target = default
        .join(raw)
        .map_err(|_| ApiError::return_to_forbidden(raw))?;
    if is_allowed(&target, allowed, public_base) {
        Ok(Some(target))
    } else {
        Err(ApiError::return_to_forbidden(raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_checks_scheme_host_and_path() {
        let base = Url::parse("http://id.example/").unwrap();
        let default = Url::parse("http://app.example/welcome").unwrap();
        let allowed = vec![
            Url::parse("https://app.example/dash").unwrap(),
            Url::parse("https://*.corp.example/").unwrap(),
        ];
        let ok = |s: &str| validate_return_to(Some(s), &default, &allowed, &base).is_ok();
        assert!(ok("https://app.example/dash/x"));
        assert!(ok("https://a.corp.example/y"));
        assert!(ok("http://id.example/self-service/login/browser"));
        assert!(ok("http://id.example/ui/welcome"));
        assert!(!ok("https://evil.example/dash"));
        assert!(!ok("http://app.example/dash"));
        assert!(!ok("https://app.example/other"));
        assert!(!ok("https://corp.example/"));
        assert!(!ok("//evil.example/dash"));
        assert_eq!(validate_return_to(None, &default, &allowed, &base).unwrap(), None);
    }
}
