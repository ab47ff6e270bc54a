//! Secrets from the OS RNG, and how they are kept at rest: only SHA-256 digests of high-entropy
//! tokens are stored, so a database leak yields no usable session or logout token.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the OS random number generator failed");
    b
}

/// `n` characters drawn uniformly from `alphabet` (rejection sampling, so no modulo bias).
pub fn random_string(n: usize, alphabet: &[u8]) -> String {
    let limit = 256 - (256 % alphabet.len());
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for b in random_bytes::<64>() {
            if (b as usize) < limit && out.len() < n {
                out.push(alphabet[b as usize % alphabet.len()] as char);
            }
        }
    }
    out
}

/// 32 alphanumerics carry ~190 bits.
pub fn random_alnum(n: usize) -> String {
    random_string(n, ALNUM)
}

pub fn random_digits(n: usize) -> String {
    random_string(n, b"0123456789")
}

pub fn session_token() -> String {
    format!("ory_st_{}", random_alnum(32))
}

pub fn logout_token() -> String {
    format!("ory_lo_{}", random_alnum(32))
}

/// Lower-case hex of SHA-256; on every authenticated request, so no per-byte formatting.
pub fn token_digest(token: &str) -> String {
    digest_hex(&token_digest_bytes(token))
}

/// The SHA-256 behind [`token_digest`], for in-memory keys that need no hex.
pub fn token_digest_bytes(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A cache key for a sealed session cookie as the browser sent it: SHA-256 over a prefix ending in a
/// NUL, which no header value (so no token) can contain, so a cookie's key never equals a token's.
pub fn sealed_cookie_key(sealed: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"sallyport sealed session cookie\0");
    h.update(sealed.as_bytes());
    h.finalize().into()
}

/// [`token_digest`] from the bytes [`token_digest_bytes`] gave.
pub fn digest_hex(d: &[u8; 32]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(64);
    for b in d {
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 0xf) as usize]);
    }
    String::from_utf8(out).expect("hex is ASCII")
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_kratos_shape_and_differ() {
        let a = session_token();
        assert!(
            a.starts_with("ory_st_") && a.len() == 39 && a[7..].chars().all(|c| c.is_ascii_alphanumeric())
        );
        assert_ne!(a, session_token());
        assert_eq!(random_digits(6).len(), 6);
        assert_eq!(token_digest("x").len(), 64);
        assert!(constant_time_eq(b"abc", b"abc") && !constant_time_eq(b"abc", b"abd"));
    }
}
