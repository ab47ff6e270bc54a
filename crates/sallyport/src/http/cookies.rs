//! Cookie writing for the session and CSRF cookies. The session cookie carries the session token
//! encrypted and authenticated (AES-256-GCM via the `cookie` crate's private jar) with the first of
//! `secrets.cookie`; every listed secret is tried when reading, so secrets can be rotated.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use axum::http::HeaderValue;
use base64::Engine;
use cookie::{Cookie, CookieJar, Key, SameSite as CSameSite};
use sha2::{Digest, Sha512};

use crate::settings::{CookieSettings, SameSite};

pub struct CookieKeys {
    keys: Vec<Key>,
    /// The AES-256-GCM ciphers of `keys`, expanded once: every cookie-authenticated request opens one.
    openers: Vec<Aes256Gcm>,
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
            .collect::<Vec<Key>>();
        let openers = keys
            .iter()
            .filter_map(|k| Aes256Gcm::new_from_slice(k.encryption()).ok())
            .collect();
        CookieKeys {
            keys,
            openers,
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

    /// Reads what [`seal`](Self::seal) wrote — the `cookie` crate's private-jar format: base64 of a 12-byte
    /// nonce, the ciphertext and its tag, the cookie's name as associated data — without building a jar
    /// and copying the name and value into it for every request.
    pub fn open(&self, name: &str, sealed: &str) -> Option<String> {
        const NONCE: usize = 12;
        let data = base64::engine::general_purpose::STANDARD.decode(sealed).ok()?;
        if data.len() <= NONCE {
            return None;
        }
        let (nonce, msg) = data.split_at(NONCE);
        let plain = self.openers.iter().find_map(|c| {
            c.decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg,
                    aad: name.as_bytes(),
                },
            )
            .ok()
        })?;
        String::from_utf8(plain).ok()
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
        // What the `cookie` crate's own private jar reads, this reads, and nothing else.
        let mut jar = CookieJar::new();
        jar.add_original(Cookie::new("ory_kratos_session", sealed.clone()));
        let key = Key::from(Sha512::digest(b"old-secret-old-secret").as_slice());
        assert_eq!(
            jar.private(&key)
                .get("ory_kratos_session")
                .map(|c| c.value().to_owned())
                .as_deref(),
            Some("ory_st_abc")
        );
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(rotated.open("ory_kratos_session", &tampered), None);
        for junk in ["", "AAAA", "not base64!", &"A".repeat(16)] {
            assert_eq!(rotated.open("ory_kratos_session", junk), None);
        }
    }
}
