//! Cookie writing for the session and CSRF cookies. The session cookie carries the session token
//! encrypted and authenticated (AES-256-GCM via the `cookie` crate's private jar) with the first of
//! `secrets.cookie`; every listed secret is tried when reading, so secrets can be rotated.

use axum::http::HeaderValue;
use cookie::{Cookie, CookieJar, Key, SameSite as CSameSite};
use sha2::{Digest, Sha512};

use crate::settings::{CookieSettings, SameSite};

pub struct CookieKeys {
    keys: Vec<Key>,
    /// Session cookies a Kratos server issued with the same secrets (read after a takeover).
    kratos: crate::http::kratos_cookie::KratosCookies,
}

impl CookieKeys {
    pub fn new(secrets: &[String]) -> CookieKeys {
        let keys = secrets
            .iter()
            .map(|s| {
                let d = Sha512::digest(s.as_bytes());
                Key::from(d.as_slice())
            })
            .collect();
        CookieKeys {
            keys,
            kratos: crate::http::kratos_cookie::KratosCookies::new(secrets),
        }
    }

    /// The session token in a session cookie Kratos issued (gorilla/securecookie), if it is one.
    pub fn open_kratos_session(&self, name: &str, value: &str) -> Option<String> {
        self.kratos.session_token(name, value)
    }

    pub fn seal(&self, name: &str, value: &str) -> String {
        let mut jar = CookieJar::new();
        jar.private_mut(&self.keys[0])
            .add(Cookie::new(name.to_owned(), value.to_owned()));
        jar.get(name).map(|c| c.value().to_owned()).unwrap_or_default()
    }

    pub fn open(&self, name: &str, sealed: &str) -> Option<String> {
        self.keys.iter().find_map(|k| {
            let mut jar = CookieJar::new();
            jar.add_original(Cookie::new(name.to_owned(), sealed.to_owned()));
            jar.private(k).get(name).map(|c| c.value().to_owned())
        })
    }
}

fn same_site(s: SameSite) -> CSameSite {
    match s {
        SameSite::Lax => CSameSite::Lax,
        SameSite::Strict => CSameSite::Strict,
        SameSite::None => CSameSite::None,
    }
}

/// A `Set-Cookie` value; `max_age` None makes a browser-session cookie, Some(0) deletes it.
pub fn set_cookie(s: &CookieSettings, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let mut c = Cookie::build((name.to_owned(), value.to_owned()))
        .path(s.path.clone())
        .http_only(true)
        .secure(s.secure)
        // Browsers drop SameSite=None cookies that are not Secure; Kratos forces Lax then.
        .same_site(if !s.secure && s.same_site == SameSite::None {
            CSameSite::Lax
        } else {
            same_site(s.same_site)
        });
    if let Some(d) = &s.domain {
        c = c.domain(d.clone());
    }
    if let Some(age) = max_age {
        c = c.max_age(cookie::time::Duration::seconds(age));
        if age <= 0 {
            c = c.expires(cookie::time::OffsetDateTime::UNIX_EPOCH);
        }
    }
    HeaderValue::from_str(&c.build().to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_with_any_configured_secret() {
        let old = CookieKeys::new(&["old-secret-old-secret".into()]);
        let rotated = CookieKeys::new(&["new-secret-new-secret".into(), "old-secret-old-secret".into()]);
        let sealed = old.seal("ory_kratos_session", "ory_st_abc");
        assert_eq!(
            rotated.open("ory_kratos_session", &sealed).as_deref(),
            Some("ory_st_abc")
        );
        assert_eq!(rotated.open("other", &sealed), None);
        assert_eq!(
            CookieKeys::new(&["x".repeat(20)]).open("ory_kratos_session", &sealed),
            None
        );
    }
}
