//! An authenticator app for tests: RFC 6238 (SHA-1, 6 digits, 30 s) over a base32 secret.

use hmac::{Hmac, Mac};

pub fn base32_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits: u64 = 0;
    let mut n = 0;
    let mut out = vec![];
    for c in s.trim_end_matches('=').bytes() {
        let v = ALPHABET
            .iter()
            .position(|a| *a == c.to_ascii_uppercase())
            .expect("base32") as u64;
        bits = (bits << 5) | v;
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    out
}

pub fn code_at(secret_base32: &str, unix: i64) -> String {
    let key = base32_decode(secret_base32);
    let step = (unix / 30) as u64;
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&key).unwrap();
    mac.update(&step.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let off = (h[19] & 0xf) as usize;
    let bin = ((h[off] as u32 & 0x7f) << 24)
        | ((h[off + 1] as u32) << 16)
        | ((h[off + 2] as u32) << 8)
        | h[off + 3] as u32;
    format!("{:06}", bin % 1_000_000)
}

pub fn now_code(secret_base32: &str) -> String {
    code_at(secret_base32, time::OffsetDateTime::now_utc().unix_timestamp())
}
