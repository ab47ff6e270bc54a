//! CSRF protection as Kratos does it with nosurf: a random 32-byte token in the cookie
//! `csrf_token_<sha256-hex(public base URL)>`, and a freshly masked copy (pad ‖ token⊕pad, 64 bytes) in
//! every rendered form. Browser-flow submissions must echo a masked copy matching the cookie.

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use sallyport_core::secret::{constant_time_eq, random_bytes};

pub const TOKEN_LEN: usize = 32;

pub fn cookie_name(public_base_url: &str) -> String {
    let digest = Sha256::digest(public_base_url.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("csrf_token_{hex}")
}

pub fn new_token() -> [u8; TOKEN_LEN] {
    random_bytes::<TOKEN_LEN>()
}

pub fn encode_cookie(token: &[u8; TOKEN_LEN]) -> String {
    STANDARD.encode(token)
}

pub fn decode_cookie(value: &str) -> Option<[u8; TOKEN_LEN]> {
    STANDARD.decode(value).ok()?.try_into().ok()
}

pub fn mask(token: &[u8; TOKEN_LEN]) -> String {
    let pad = random_bytes::<TOKEN_LEN>();
    let mut out = Vec::with_capacity(2 * TOKEN_LEN);
    out.extend_from_slice(&pad);
    out.extend(token.iter().zip(pad.iter()).map(|(t, p)| t ^ p));
    STANDARD.encode(out)
}

/// Accepts a masked (64-byte) or plain (32-byte) token, like nosurf's `VerifyToken`.
pub fn verify(real: &[u8; TOKEN_LEN], sent: &str) -> bool {
    let Ok(sent) = STANDARD.decode(sent.trim()) else {
        return false;
    };
    let unmasked: Vec<u8> = match sent.len() {
        n if n == 2 * TOKEN_LEN => sent[TOKEN_LEN..]
            .iter()
            .zip(&sent[..TOKEN_LEN])
            .map(|(t, p)| t ^ p)
            .collect(),
        TOKEN_LEN => sent,
        _ => return false,
    };
    constant_time_eq(&unmasked, real)
}

/// The raw value of cookie `name` from the request's `Cookie` headers.
pub fn request_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    request_cookie_ref(headers, name).map(str::to_owned)
}

/// The first cookie called `name`, read in place: every cookie-authenticated request (whoami above all)
/// looks one up, and parsing the whole header into owned pairs cost several allocations each time.
/// Reads pairs as the `cookie` crate's `split_parse` does (split on `;`, name and value trimmed, pairs
/// without `=` or with an empty name skipped, no percent-decoding).
pub fn request_cookie_ref<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|s| s.split(';'))
        .filter_map(|pair| pair.split_once('='))
        .find(|(n, _)| n.trim() == name && !name.is_empty())
        .map(|(_, v)| v.trim())
}

pub fn request_cookies(headers: &HeaderMap) -> Vec<(String, String)> {
    let mut out = vec![];
    for h in headers.get_all(axum::http::header::COOKIE) {
        let Ok(s) = h.to_str() else { continue };
        for c in cookie::Cookie::split_parse(s.to_owned()).flatten() {
            out.push((c.name().to_owned(), c.value().to_owned()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_tokens_verify_and_differ() {
        let t = new_token();
        let a = mask(&t);
        let b = mask(&t);
        assert_ne!(a, b);
        assert!(verify(&t, &a) && verify(&t, &b) && verify(&t, &encode_cookie(&t)));
        assert!(!verify(&new_token(), &a));
        assert!(!verify(&t, "not base64!"));
        assert!(cookie_name("http://127.0.0.1:4433/").starts_with("csrf_token_"));
    }

    #[test]
    fn cookies_read_in_place_match_the_cookie_crate() {
        let headers_of = |values: &[&str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append(axum::http::header::COOKIE, v.parse().unwrap());
            }
            h
        };
        let cases: &[&[&str]] = &[
            &["ory_kratos_session=abc"],
            &["a=1; ory_kratos_session=MTIz+/=; b=2"],
            &["  ory_kratos_session  =  spaced  ;x=y"],
            &["a=1", "ory_kratos_session=second-header"],
            &["ory_kratos_session=first; ory_kratos_session=second"],
            &["novalue; ory_kratos_session=after-a-pair-without-equals"],
            &["=nameless; ory_kratos_session=\"quoted\""],
            &["ory_kratos_session="],
            &["other=1"],
            &[""],
        ];
        for values in cases {
            let h = headers_of(values);
            let expected = request_cookies(&h)
                .into_iter()
                .find(|(n, _)| n == "ory_kratos_session")
                .map(|(_, v)| v);
            assert_eq!(
                request_cookie_ref(&h, "ory_kratos_session").map(str::to_owned),
                expected,
                "{values:?}"
            );
        }
    }
}
