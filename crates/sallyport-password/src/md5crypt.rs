//! FreeBSD/glibc `$1$` md5-crypt.
//!
//! Written by hand because no maintained crate provides it; only used to
//! verify imported `$md5-crypt$` hashes, never to create new ones.

use md5::{Digest, Md5};

const MAGIC: &[u8] = b"$1$";
const MAX_SALT_LEN: usize = 8;
const CRYPT_ALPHABET: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Returns the 22-character encoded digest (the part after the salt).
pub(crate) fn md5_crypt(password: &[u8], salt: &[u8]) -> String {
    // Implementations only ever read the first 8 salt bytes.
    let salt = &salt[..salt.len().min(MAX_SALT_LEN)];

    let alternate = Md5::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize();

    let mut ctx = Md5::new();
    ctx.update(password);
    ctx.update(MAGIC);
    ctx.update(salt);
    let mut remaining = password.len();
    while remaining > 0 {
        let n = remaining.min(16);
        ctx.update(&alternate[..n]);
        remaining -= n;
    }
    // The reference C code feeds a byte of a zeroed buffer for set bits and
    // the first password byte for clear bits; reproduce that quirk exactly.
    let mut bits = password.len();
    while bits != 0 {
        if bits & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&password[..1]);
        }
        bits >>= 1;
    }
    let mut digest = ctx.finalize();

    for round in 0..1000 {
        let mut ctx = Md5::new();
        if round & 1 == 1 {
            ctx.update(password);
        } else {
            ctx.update(digest);
        }
        if round % 3 != 0 {
            ctx.update(salt);
        }
        if round % 7 != 0 {
            ctx.update(password);
        }
        if round & 1 == 1 {
            ctx.update(digest);
        } else {
            ctx.update(password);
        }
        digest = ctx.finalize();
    }

    let d = digest;
    let mut out = String::with_capacity(22);
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        let group = (u32::from(d[a]) << 16) | (u32::from(d[b]) << 8) | u32::from(d[c]);
        push_crypt64(&mut out, group, 4);
    }
    push_crypt64(&mut out, u32::from(d[11]), 2);
    out
}

fn push_crypt64(out: &mut String, mut value: u32, chars: usize) {
    for _ in 0..chars {
        out.push(char::from(CRYPT_ALPHABET[(value & 0x3f) as usize]));
        value >>= 6;
    }
}

#[cfg(test)]
mod tests {
    use super::md5_crypt;

    #[test]
    fn matches_known_vectors() {
        // Cross-checked with `openssl passwd -1 -salt saltsalt password`.
        assert_eq!(md5_crypt(b"password", b"saltsalt"), "qjXMvbEw8oaL.CzflDtaK/");
        // Salts longer than 8 characters are cut, as in the reference code.
        assert_eq!(md5_crypt(b"password", b"saltsaltEXTRA"), "qjXMvbEw8oaL.CzflDtaK/");
        assert_eq!(md5_crypt(b"test", b"TVEiiKNb"), "SN6/pUaRQS/E8Jh46As2C/");
        assert_eq!(md5_crypt(b"test", b""), "whuMjZj.HMFoaTaZRRtkO0");
    }
}
