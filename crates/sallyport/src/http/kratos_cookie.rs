//! Reading the session cookies a Kratos server issued, so that browsers stay signed in when Sallyport
//! takes over a Kratos deployment (`sallyport import kratos`). Kratos stores its session cookie with
//! gorilla/securecookie: `base64url(date|value|mac)`, where `value` is `base64url(iv ‖ AES-CTR(gob))`,
//! `mac` is HMAC-SHA256 over `name|date|value`, and the gob payload is a `map[interface{}]interface{}`
//! holding `session_token`. Each configured `secrets.cookie` entry is a (hash key, block key) pair in
//! two generations of Kratos: the secret with SHA-256(secret) as block key (current Kratos), and the raw
//! secrets taken two by two (older Kratos; a lone secret then signs without encrypting). Only read here:
//! Sallyport issues its own cookies.

use aes::cipher::{KeyIvInit, StreamCipher};
use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Browsers keep at most this much per cookie; anything longer is not Kratos'.
const MAX_COOKIE_LEN: usize = 4096;

#[derive(Clone)]
struct Codec {
    hash_key: Vec<u8>,
    block_key: Option<Vec<u8>>,
}

/// The codecs Kratos would decode with, for the configured `secrets.cookie`.
#[derive(Clone, Default)]
pub struct KratosCookies {
    codecs: Vec<Codec>,
}

impl KratosCookies {
    pub fn new(secrets: &[String]) -> KratosCookies {
        let mut codecs: Vec<Codec> = secrets
            .iter()
            .map(|s| Codec {
                hash_key: s.as_bytes().to_vec(),
                block_key: Some(Sha256::digest(s.as_bytes()).to_vec()),
            })
            .collect();
        for pair in secrets.chunks(2) {
            codecs.push(Codec {
                hash_key: pair[0].as_bytes().to_vec(),
                block_key: pair.get(1).map(|b| b.as_bytes().to_vec()),
            });
        }
        KratosCookies { codecs }
    }

    /// The `session_token` of a Kratos session cookie named `name`, if one of the secrets made it.
    /// The cookie's own timestamp is not checked (Kratos bounds it by the session lifespan): the
    /// session it names must still be active in the database, which is what counts.
    pub fn session_token(&self, name: &str, cookie: &str) -> Option<String> {
        if cookie.len() > MAX_COOKIE_LEN {
            return None;
        }
        let raw = URL_SAFE.decode(cookie).ok()?;
        let mut parts = raw.splitn(3, |b| *b == b'|');
        let (date, value, mac) = (parts.next()?, parts.next()?, parts.next()?);
        std::str::from_utf8(date).ok()?.parse::<i64>().ok()?;
        let ciphertext = URL_SAFE
            .decode(value)
            .or_else(|_| URL_SAFE_NO_PAD.decode(value))
            .ok()?;
        self.codecs.iter().find_map(|c| {
            let mut m = Hmac::<Sha256>::new_from_slice(&c.hash_key).ok()?;
            m.update(name.as_bytes());
            m.update(b"|");
            m.update(date);
            m.update(b"|");
            m.update(value);
            m.verify_slice(mac).ok()?;
            let plain = match &c.block_key {
                Some(k) => decrypt(k, &ciphertext)?,
                None => ciphertext.clone(),
            };
            gob_string_map(&plain)?
                .into_iter()
                .find(|(k, _)| k == "session_token")
                .map(|(_, v)| v)
        })
    }
}

/// AES-CTR with the IV in front, as securecookie encrypts (AES-128/192/256 by key length).
fn decrypt(key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    if data.len() < 16 {
        return None;
    }
    let (iv, body) = data.split_at(16);
    let mut out = body.to_vec();
    match key.len() {
        16 => ctr::Ctr128BE::<aes::Aes128>::new_from_slices(key, iv)
            .ok()?
            .apply_keystream(&mut out),
        24 => ctr::Ctr128BE::<aes::Aes192>::new_from_slices(key, iv)
            .ok()?
            .apply_keystream(&mut out),
        32 => ctr::Ctr128BE::<aes::Aes256>::new_from_slices(key, iv)
            .ok()?
            .apply_keystream(&mut out),
        _ => return None,
    }
    Some(out)
}

/// The string entries of a gob-encoded `map[interface{}]interface{}` (what gorilla sessions store).
/// Entries whose key or value is not a string are skipped; anything malformed is `None`.
fn gob_string_map(data: &[u8]) -> Option<Vec<(String, String)>> {
    let mut r = Reader { data, at: 0 };
    while r.at < r.data.len() {
        let len = usize::try_from(r.uint()?).ok()?;
        let end = r.at.checked_add(len).filter(|e| *e <= r.data.len())?;
        let mut msg = Reader {
            data: &r.data[..end],
            at: r.at,
        };
        r.at = end;
        if msg.int()? < 0 {
            continue; // a type definition: the map type, whose shape we know
        }
        if msg.uint()? != 0 {
            return None; // a top-level non-struct value is a singleton field 0
        }
        let count = msg.uint()?;
        let mut out = Vec::new();
        for _ in 0..count.min(1024) {
            let k = msg.interface()?;
            let v = msg.interface()?;
            if let (Some(k), Some(v)) = (k, v) {
                out.push((k, v));
            }
        }
        return Some(out);
    }
    None
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.data.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn bytes(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.data.len())?;
        let s = &self.data[self.at..end];
        self.at = end;
        Some(s)
    }

    /// Gob's unsigned integer: one byte below 128, else the negated byte count then big-endian bytes.
    fn uint(&mut self) -> Option<u64> {
        let b = self.byte()?;
        if b < 0x80 {
            return Some(u64::from(b));
        }
        let n = usize::from(!b) + 1;
        if n > 8 {
            return None;
        }
        Some(self.bytes(n)?.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b)))
    }

    fn int(&mut self) -> Option<i64> {
        let u = self.uint()?;
        let v = (u >> 1) as i64;
        Some(if u & 1 == 1 { !v } else { v })
    }

    /// An interface value: the concrete type's name, its id, then its encoding; Some(string) for strings.
    fn interface(&mut self) -> Option<Option<String>> {
        let name_len = usize::try_from(self.uint()?).ok()?;
        if name_len == 0 {
            return Some(None); // nil
        }
        let name = self.bytes(name_len)?.to_vec();
        self.int()?; // the concrete type's id
        let len = usize::try_from(self.uint()?).ok()?;
        let mut value = Reader {
            data: self.bytes(len)?,
            at: 0,
        };
        if name != b"string" {
            return Some(None);
        }
        if value.uint()? != 0 {
            return None;
        }
        let n = usize::try_from(value.uint()?).ok()?;
        let s = value.bytes(n)?;
        Some(String::from_utf8(s.to_vec()).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::KratosCookies;

    const SECRET: &str = "kratos-cookie-secret-for-tests-0";
    const OTHER: &str = "another-kratos-secret-32-bytes!!";
    const NAME: &str = "ory_kratos_session";
    const TOKEN: &str = "ory_st_kratosissuedcookietoken000000000";
    /// Made by gorilla/securecookie 1.1.1 (Debian's golang-github-gorilla-securecookie-dev) with
    /// `tests/fixtures/kratos-db/kratos-cookie-vectors.go`: the values map Kratos writes (session_token,
    /// expires_at, nonce) under the codecs of each Kratos generation — `current` (secret,
    /// SHA-256(secret)), `signed_only` (older Kratos, one secret: signed, not encrypted), `pair` (older
    /// Kratos, two secrets: the second is the AES key).
    const VECTORS: &str = include_str!("../../tests/fixtures/kratos-db/kratos-cookies.txt");

    fn vector(name: &str) -> &'static str {
        VECTORS
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .unwrap()
    }

    #[test]
    fn reads_what_each_kratos_generation_wrote() {
        let one = KratosCookies::new(&[SECRET.into()]);
        assert_eq!(one.session_token(NAME, vector("current")).as_deref(), Some(TOKEN));
        assert_eq!(
            one.session_token(NAME, vector("signed_only")).as_deref(),
            Some(TOKEN)
        );
        let two = KratosCookies::new(&[SECRET.into(), OTHER.into()]);
        assert_eq!(two.session_token(NAME, vector("pair")).as_deref(), Some(TOKEN));
        assert_eq!(two.session_token(NAME, vector("current")).as_deref(), Some(TOKEN));
        // Rotated: the old secret second still reads the cookie.
        let rotated = KratosCookies::new(&["a-newer-secret-a-newer-secret-00".into(), SECRET.into()]);
        assert_eq!(
            rotated.session_token(NAME, vector("current")).as_deref(),
            Some(TOKEN)
        );
    }

    #[test]
    fn refuses_other_secrets_names_and_tampering() {
        let one = KratosCookies::new(&[SECRET.into()]);
        let stranger = KratosCookies::new(&["not-the-secret-not-the-secret-00".into()]);
        let current = vector("current");
        assert_eq!(stranger.session_token(NAME, current), None);
        assert_eq!(one.session_token("other_cookie", current), None);
        let mut tampered = current.as_bytes().to_vec();
        let i = tampered.len() / 2;
        tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            one.session_token(NAME, std::str::from_utf8(&tampered).unwrap()),
            None
        );
        for junk in ["", "|||", "bm90IGEgY29va2ll", &"A".repeat(5000)] {
            assert_eq!(one.session_token(NAME, junk), None, "{junk:?}");
        }
    }
}
