//! Parsing and verification of every stored-hash format Kratos accepts.
//!
//! Parsing is split from computing so that cheap checks (format, bounds,
//! encoding) run before a hashing permit is taken and so the admin import
//! API can validate without hashing.

use aes::Aes256;
use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, NO_PAD, PAD, STANDARD, STANDARD_NO_PAD};
use ctr::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};
use sha3::{Sha3_224, Sha3_384};
use subtle::ConstantTimeEq;

use crate::HashError;
use crate::md5crypt::md5_crypt;

/// Bounds mirror Kratos' `hash/hash_limits.go`: they stop an imported hash
/// from making every login attempt exhaust memory or CPU.
pub(crate) const MAX_BCRYPT_COST: u32 = 15;
pub(crate) const MIN_BCRYPT_COST: u32 = 4;
pub(crate) const MAX_ARGON2_MEMORY_KIB: u64 = 1 << 20;
pub(crate) const MAX_ARGON2_ITERATIONS: u64 = 10;
pub(crate) const MAX_ARGON2_PARALLELISM: u64 = 16;
const MAX_PBKDF2_ITERATIONS: u64 = 10_000_000;
const MAX_SCRYPT_N: u64 = 1 << 17;
const MAX_SCRYPT_LOG_N: u64 = 17;
const MAX_SCRYPT_R: u64 = 8;
const MAX_SCRYPT_P: u64 = 10;

/// bcrypt only ever reads this many key bytes; longer passwords are refused
/// rather than silently truncated.
pub const BCRYPT_MAX_PASSWORD_BYTES: usize = 72;

/// Go decodes bcrypt salts without rejecting non-zero trailing bits.
const BCRYPT_SALT_B64: GeneralPurpose =
    GeneralPurpose::new(&alphabet::BCRYPT, NO_PAD.with_decode_allow_trailing_bits(true));
/// `{SSHA}` uses Go's non-strict decoder, which tolerates trailing bits.
const LENIENT_STD_B64: GeneralPurpose =
    GeneralPurpose::new(&alphabet::STANDARD, PAD.with_decode_allow_trailing_bits(true));

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShaAlg {
    Sha1,
    Sha256,
    Sha512,
}

impl ShaAlg {
    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            ShaAlg::Sha1 => Sha1::digest(data).to_vec(),
            ShaAlg::Sha256 => Sha256::digest(data).to_vec(),
            ShaAlg::Sha512 => Sha512::digest(data).to_vec(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pbkdf2Prf {
    Sha1,
    /// Kratos maps `sha224` to SHA3-224 for backwards compatibility.
    Sha3_224,
    Sha256,
    /// Kratos maps `sha384` to SHA3-384 for backwards compatibility.
    Sha3_384,
    Sha512,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HmacAlg {
    Md4,
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

/// A decoded stored hash, ready to be compared against a password.
#[derive(Debug, Clone)]
pub(crate) enum Parsed {
    Bcrypt {
        cost: u32,
        salt: [u8; 16],
        /// Kept encoded: Go compares the encoded strings, so a stored hash
        /// with non-canonical trailing bits must not match.
        hash: String,
    },
    Argon2 {
        algorithm: argon2::Algorithm,
        params: argon2::Params,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    Pbkdf2 {
        prf: Pbkdf2Prf,
        iterations: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    Scrypt {
        params: scrypt::Params,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    FirebaseScrypt {
        params: scrypt::Params,
        salt: Vec<u8>,
        salt_separator: Vec<u8>,
        hash: Vec<u8>,
        signer_key: Vec<u8>,
    },
    Ssha {
        alg: ShaAlg,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    Sha {
        alg: ShaAlg,
        pattern: Vec<u8>,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    Md5 {
        /// Pattern and salt; `None` for the unsalted `$md5$<hash>` form.
        salted: Option<(Vec<u8>, Vec<u8>)>,
        hash: Vec<u8>,
    },
    Md5Crypt {
        salt: String,
        hash: String,
    },
    ShaCrypt {
        sha512: bool,
        rounds: usize,
        salt: String,
        hash: String,
    },
    Hmac {
        alg: HmacAlg,
        hash: Vec<u8>,
        key: Vec<u8>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Md5Crypt,
    Bcrypt,
    Sha256Crypt,
    Sha512Crypt,
    Argon2id,
    Argon2i,
    Pbkdf2,
    Scrypt,
    Ssha,
    Sha,
    FirebaseScrypt,
    Md5,
    Hmac(HmacAlg),
}

/// Same prefixes, in the same order, as Kratos' comparator dispatch.
fn detect(encoded: &str) -> Option<Kind> {
    let s = encoded;
    if s.starts_with("$md5-crypt$") {
        return Some(Kind::Md5Crypt);
    }
    if is_bcrypt_prefix(s) {
        return Some(Kind::Bcrypt);
    }
    if s.starts_with("$sha256-crypt$") {
        return Some(Kind::Sha256Crypt);
    }
    if s.starts_with("$sha512-crypt$") {
        return Some(Kind::Sha512Crypt);
    }
    if s.starts_with("$argon2id$") {
        return Some(Kind::Argon2id);
    }
    if s.starts_with("$argon2i$") {
        return Some(Kind::Argon2i);
    }
    if is_pbkdf2_prefix(s) {
        return Some(Kind::Pbkdf2);
    }
    if s.starts_with("$scrypt$") {
        return Some(Kind::Scrypt);
    }
    if ["{SSHA}", "{SSHA256}", "{SSHA512}"]
        .iter()
        .any(|p| s.starts_with(p))
    {
        return Some(Kind::Ssha);
    }
    if ["$sha1$", "$sha256$", "$sha512$"]
        .iter()
        .any(|p| s.starts_with(p))
    {
        return Some(Kind::Sha);
    }
    if s.starts_with("$firescrypt$") {
        return Some(Kind::FirebaseScrypt);
    }
    if s.starts_with("$md5$") {
        return Some(Kind::Md5);
    }
    let hmac = [
        ("$hmac-md4$", HmacAlg::Md4),
        ("$hmac-md5$", HmacAlg::Md5),
        ("$hmac-sha1$", HmacAlg::Sha1),
        ("$hmac-sha224$", HmacAlg::Sha224),
        ("$hmac-sha256$", HmacAlg::Sha256),
        ("$hmac-sha384$", HmacAlg::Sha384),
        ("$hmac-sha512$", HmacAlg::Sha512),
    ];
    hmac.iter()
        .find(|(p, _)| s.starts_with(p))
        .map(|(_, alg)| Kind::Hmac(*alg))
}

/// `^\$2[abzy]?\$`
fn is_bcrypt_prefix(s: &str) -> bool {
    let b = s.as_bytes();
    b.starts_with(b"$2$") || (b.len() >= 4 && b.starts_with(b"$2") && b"abzy".contains(&b[2]) && b[3] == b'$')
}

/// `^\$pbkdf2-sha[0-9]{1,3}\$`
fn is_pbkdf2_prefix(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("$pbkdf2-sha") else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    (1..=3).contains(&digits) && rest.as_bytes().get(digits) == Some(&b'$')
}

fn malformed(reason: impl Into<String>) -> HashError {
    HashError::Malformed(reason.into())
}

fn decode(engine: &GeneralPurpose, input: &str, what: &str) -> Result<Vec<u8>, HashError> {
    engine
        .decode(input)
        .map_err(|e| malformed(format!("invalid base64 in {what}: {e}")))
}

/// Imitates Go's `fmt.Sscanf` for patterns like `m=%d,t=%d,p=%d`: every
/// literal must match, each number is decimal, and — as with Sscanf —
/// anything after the last number is ignored.
fn scan_numbers(input: &str, literals: &[&str]) -> Option<Vec<u64>> {
    let mut rest = input;
    let mut out = Vec::with_capacity(literals.len());
    for literal in literals {
        rest = rest.strip_prefix(literal)?;
        rest = rest.strip_prefix('+').unwrap_or(rest);
        let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if end == 0 {
            return None;
        }
        out.push(rest[..end].parse().ok()?);
        rest = &rest[end..];
    }
    Some(out)
}

fn check_range(value: u64, min: u64, max: u64, what: &str) -> Result<(), HashError> {
    if value < min || value > max {
        return Err(HashError::Bounds(format!("{what}={value} not in [{min}, {max}]")));
    }
    Ok(())
}

pub(crate) fn parse(encoded: &str) -> Result<Parsed, HashError> {
    match detect(encoded).ok_or(HashError::UnknownFormat)? {
        Kind::Md5Crypt => parse_md5_crypt(encoded),
        Kind::Bcrypt => parse_bcrypt(encoded),
        Kind::Sha256Crypt => parse_sha_crypt(encoded, false),
        Kind::Sha512Crypt => parse_sha_crypt(encoded, true),
        Kind::Argon2id => parse_argon2(encoded, argon2::Algorithm::Argon2id),
        Kind::Argon2i => parse_argon2(encoded, argon2::Algorithm::Argon2i),
        Kind::Pbkdf2 => parse_pbkdf2(encoded),
        Kind::Scrypt => parse_scrypt(encoded),
        Kind::Ssha => parse_ssha(encoded),
        Kind::Sha => parse_sha(encoded),
        Kind::FirebaseScrypt => parse_firebase_scrypt(encoded),
        Kind::Md5 => parse_md5(encoded),
        Kind::Hmac(alg) => parse_hmac(encoded, alg),
    }
}

/// Like Kratos' import check: the format must be known, and formats with
/// cost parameters must decode with parameters inside the bounds. Formats
/// without cost parameters are accepted on their prefix alone, as Kratos
/// does.
pub fn validate_encoded(encoded: &str) -> Result<(), HashError> {
    match detect(encoded).ok_or(HashError::UnknownFormat)? {
        Kind::Bcrypt
        | Kind::Argon2id
        | Kind::Argon2i
        | Kind::Pbkdf2
        | Kind::Scrypt
        | Kind::FirebaseScrypt => parse(encoded).map(|_| ()),
        _ => Ok(()),
    }
}

fn parse_bcrypt(encoded: &str) -> Result<Parsed, HashError> {
    // Go's bcrypt refuses anything shorter than `$2a$NN$` + 53 characters.
    if encoded.len() < 59 {
        return Err(malformed("bcrypt hash too short"));
    }
    let rest = if encoded.as_bytes()[2] == b'$' {
        &encoded[3..]
    } else {
        &encoded[4..]
    };
    let cost_str = rest.get(..2).ok_or_else(|| malformed("bcrypt cost missing"))?;
    if !cost_str.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(format!("invalid bcrypt cost {cost_str:?}")));
    }
    let cost: u32 = cost_str
        .parse()
        .map_err(|_| malformed(format!("invalid bcrypt cost {cost_str:?}")))?;
    if cost < MIN_BCRYPT_COST {
        return Err(malformed(format!(
            "bcrypt cost {cost} below minimum {MIN_BCRYPT_COST}"
        )));
    }
    if cost > MAX_BCRYPT_COST {
        return Err(HashError::Bounds(format!(
            "bcrypt cost={cost} exceeds max {MAX_BCRYPT_COST}"
        )));
    }
    let body = rest[2..]
        .strip_prefix('$')
        .ok_or_else(|| malformed("bcrypt cost not followed by '$'"))?;
    if body.len() != 53 || !body.is_ascii() {
        return Err(malformed("bcrypt salt and hash must be 53 characters"));
    }
    let (salt_b64, hash) = body.split_at(22);
    let salt: [u8; 16] = decode(&BCRYPT_SALT_B64, salt_b64, "bcrypt salt")?
        .try_into()
        .map_err(|_| malformed("bcrypt salt must be 16 bytes"))?;
    Ok(Parsed::Bcrypt {
        cost,
        salt,
        hash: hash.to_owned(),
    })
}

fn parse_argon2(encoded: &str, algorithm: argon2::Algorithm) -> Result<Parsed, HashError> {
    let parts: Vec<&str> = encoded.split('$').collect();
    if parts.len() != 6 {
        return Err(malformed("argon2 hash must have 6 '$'-separated parts"));
    }
    let version = scan_numbers(parts[2], &["v="]).ok_or_else(|| malformed("argon2 version missing"))?[0];
    if version != 19 {
        return Err(malformed(format!("incompatible argon2 version {version}")));
    }
    let nums = scan_numbers(parts[3], &["m=", ",t=", ",p="])
        .ok_or_else(|| malformed("argon2 parameters must look like m=<n>,t=<n>,p=<n>"))?;
    let (m, t, p) = (nums[0], nums[1], nums[2]);
    check_range(m, 1, MAX_ARGON2_MEMORY_KIB, "argon2 m")?;
    check_range(t, 1, MAX_ARGON2_ITERATIONS, "argon2 t")?;
    check_range(p, 1, MAX_ARGON2_PARALLELISM, "argon2 p")?;
    let salt = decode(&STANDARD_NO_PAD, parts[4], "argon2 salt")?;
    let hash = decode(&STANDARD_NO_PAD, parts[5], "argon2 hash")?;
    // The RustCrypto implementation cannot compute these (Go can), so
    // refuse them up front instead of failing on every login.
    if salt.len() < argon2::MIN_SALT_LEN {
        return Err(malformed(format!(
            "argon2 salt shorter than {} bytes is not supported",
            argon2::MIN_SALT_LEN
        )));
    }
    let params = argon2::Params::new(m as u32, t as u32, p as u32, Some(hash.len()))
        .map_err(|e| malformed(format!("unsupported argon2 parameters: {e}")))?;
    Ok(Parsed::Argon2 {
        algorithm,
        params,
        salt,
        hash,
    })
}

fn parse_pbkdf2(encoded: &str) -> Result<Parsed, HashError> {
    let parts: Vec<&str> = encoded.split('$').collect();
    if parts.len() != 5 {
        return Err(malformed("pbkdf2 hash must have 5 '$'-separated parts"));
    }
    let digest = parts[1]
        .split_once('-')
        .map(|(_, d)| d)
        .ok_or_else(|| malformed("pbkdf2 digest missing"))?;
    // Unknown digests fall back to SHA-256, exactly like Kratos.
    let prf = match digest {
        "sha1" => Pbkdf2Prf::Sha1,
        "sha224" => Pbkdf2Prf::Sha3_224,
        "sha384" => Pbkdf2Prf::Sha3_384,
        "sha512" => Pbkdf2Prf::Sha512,
        _ => Pbkdf2Prf::Sha256,
    };
    let nums = scan_numbers(parts[2], &["i=", ",l="])
        .ok_or_else(|| malformed("pbkdf2 parameters must look like i=<n>,l=<n>"))?;
    if nums[1] > u64::from(u32::MAX) {
        return Err(malformed("pbkdf2 key length out of range"));
    }
    check_range(nums[0], 1, MAX_PBKDF2_ITERATIONS, "pbkdf2 i")?;
    let salt = decode(&STANDARD_NO_PAD, parts[3], "pbkdf2 salt")?;
    // Like Kratos, the key length is taken from the stored hash, not `l`.
    let hash = decode(&STANDARD_NO_PAD, parts[4], "pbkdf2 hash")?;
    if hash.is_empty() {
        // An empty digest would compare equal for any password.
        return Err(malformed("pbkdf2 hash is empty"));
    }
    Ok(Parsed::Pbkdf2 {
        prf,
        iterations: nums[0] as u32,
        salt,
        hash,
    })
}

fn scrypt_params(log_n: u64, r: u64, p: u64) -> Result<scrypt::Params, HashError> {
    // Output length is taken from the slice handed to `scrypt::scrypt`; the
    // constructor just insists on a plausible value.
    scrypt::Params::new(log_n as u8, r as u32, p as u32, 32)
        .map_err(|e| malformed(format!("invalid scrypt parameters: {e}")))
}

fn parse_scrypt(encoded: &str) -> Result<Parsed, HashError> {
    let parts: Vec<&str> = encoded.split('$').collect();
    if parts.len() != 5 {
        return Err(malformed("scrypt hash must have 5 '$'-separated parts"));
    }
    // Despite its name, Kratos' `ln` holds N itself, not its logarithm.
    let nums = scan_numbers(parts[2], &["ln=", ",r=", ",p="])
        .ok_or_else(|| malformed("scrypt parameters must look like ln=<N>,r=<n>,p=<n>"))?;
    let (n, r, p) = (nums[0], nums[1], nums[2]);
    check_range(n, 1, MAX_SCRYPT_N, "scrypt N")?;
    check_range(r, 1, MAX_SCRYPT_R, "scrypt r")?;
    check_range(p, 1, MAX_SCRYPT_P, "scrypt p")?;
    let salt = decode(&STANDARD, parts[3], "scrypt salt")?;
    let hash = decode(&STANDARD, parts[4], "scrypt hash")?;
    if n < 2 || !n.is_power_of_two() {
        return Err(malformed(format!("scrypt N={n} must be a power of two > 1")));
    }
    if hash.is_empty() {
        return Err(malformed("scrypt hash is empty"));
    }
    Ok(Parsed::Scrypt {
        params: scrypt_params(u64::from(n.trailing_zeros()), r, p)?,
        salt,
        hash,
    })
}

fn parse_firebase_scrypt(encoded: &str) -> Result<Parsed, HashError> {
    let parts: Vec<&str> = encoded.split('$').collect();
    if parts.len() != 7 {
        return Err(malformed("firescrypt hash must have 7 '$'-separated parts"));
    }
    let nums = scan_numbers(parts[2], &["ln=", ",r=", ",p="])
        .ok_or_else(|| malformed("firescrypt parameters must look like ln=<n>,r=<n>,p=<n>"))?;
    let (log_n, r, p) = (nums[0], nums[1], nums[2]);
    check_range(log_n, 0, MAX_SCRYPT_LOG_N, "firescrypt ln")?;
    check_range(r, 1, MAX_SCRYPT_R, "firescrypt r")?;
    check_range(p, 1, MAX_SCRYPT_P, "firescrypt p")?;
    let salt = decode(&STANDARD, parts[3], "firescrypt salt")?;
    let hash = decode(&STANDARD, parts[4], "firescrypt hash")?;
    let salt_separator = decode(&STANDARD, parts[5], "firescrypt salt separator")?;
    let signer_key = decode(&STANDARD, parts[6], "firescrypt signer key")?;
    if log_n == 0 {
        return Err(malformed("firescrypt ln must be at least 1"));
    }
    if hash.is_empty() {
        return Err(malformed("firescrypt hash is empty"));
    }
    Ok(Parsed::FirebaseScrypt {
        params: scrypt_params(log_n, r, p)?,
        salt,
        salt_separator,
        hash,
        signer_key,
    })
}

fn parse_ssha(encoded: &str) -> Result<Parsed, HashError> {
    let (alg, body, digest_len) = if let Some(b) = encoded.strip_prefix("{SSHA}") {
        (ShaAlg::Sha1, b, 20)
    } else if let Some(b) = encoded.strip_prefix("{SSHA256}") {
        (ShaAlg::Sha256, b, 32)
    } else if let Some(b) = encoded.strip_prefix("{SSHA512}") {
        (ShaAlg::Sha512, b, 64)
    } else {
        return Err(HashError::UnknownFormat);
    };
    let mut decoded = decode(&LENIENT_STD_B64, body, "SSHA value")?;
    // Layout is digest || salt, and the salt must not be empty.
    if decoded.len() <= digest_len {
        return Err(malformed("SSHA value too short"));
    }
    let salt = decoded.split_off(digest_len);
    Ok(Parsed::Ssha {
        alg,
        salt,
        hash: decoded,
    })
}

/// `pf=%s`: Go's `%s` stops at whitespace and must read something.
fn scan_pattern(part: &str) -> Result<&str, HashError> {
    let rest = part
        .strip_prefix("pf=")
        .ok_or_else(|| malformed("salting pattern must look like pf=<base64>"))?;
    let token = rest.split(char::is_whitespace).next().unwrap_or("");
    if token.is_empty() {
        return Err(malformed("salting pattern is empty"));
    }
    Ok(token)
}

fn parse_sha(encoded: &str) -> Result<Parsed, HashError> {
    let parts: Vec<&str> = encoded.split('$').collect();
    if parts.len() != 5 {
        return Err(malformed("sha hash must have 5 '$'-separated parts"));
    }
    let alg = match parts[1] {
        "sha1" => ShaAlg::Sha1,
        "sha256" => ShaAlg::Sha256,
        "sha512" => ShaAlg::Sha512,
        _ => return Err(HashError::UnknownFormat),
    };
    let pattern = decode(&STANDARD, scan_pattern(parts[2])?, "salting pattern")?;
    let salt = decode(&STANDARD, parts[3], "sha salt")?;
    let hash = decode(&STANDARD, parts[4], "sha hash")?;
    Ok(Parsed::Sha {
        alg,
        pattern,
        salt,
        hash,
    })
}

fn parse_md5(encoded: &str) -> Result<Parsed, HashError> {
    let parts: Vec<&str> = encoded.split('$').collect();
    match parts.len() {
        3 => Ok(Parsed::Md5 {
            salted: None,
            hash: decode(&STANDARD, parts[2], "md5 hash")?,
        }),
        5 => {
            let pattern = decode(&STANDARD, scan_pattern(parts[2])?, "salting pattern")?;
            let salt = decode(&STANDARD, parts[3], "md5 salt")?;
            let hash = decode(&STANDARD, parts[4], "md5 hash")?;
            Ok(Parsed::Md5 {
                salted: Some((pattern, salt)),
                hash,
            })
        }
        _ => Err(malformed("md5 hash must have 3 or 5 '$'-separated parts")),
    }
}

fn parse_md5_crypt(encoded: &str) -> Result<Parsed, HashError> {
    let parts: Vec<&str> = encoded.split('$').collect();
    if parts.len() != 4 {
        return Err(malformed(
            "md5-crypt hash must look like $md5-crypt$<salt>$<hash>",
        ));
    }
    Ok(Parsed::Md5Crypt {
        salt: parts[2].to_owned(),
        hash: parts[3].to_owned(),
    })
}

fn parse_sha_crypt(encoded: &str, sha512: bool) -> Result<Parsed, HashError> {
    let parts: Vec<&str> = encoded.split('$').collect();
    let (rounds, salt, hash) = match parts.len() {
        4 => (sha_crypt::ROUNDS_DEFAULT, parts[2], parts[3]),
        5 => {
            let rounds = parts[2]
                .strip_prefix("rounds=")
                .and_then(|r| r.parse::<usize>().ok())
                .ok_or_else(|| malformed("sha-crypt rounds must look like rounds=<n>"))?;
            (rounds, parts[3], parts[4])
        }
        _ => return Err(malformed("sha-crypt hash has the wrong number of parts")),
    };
    if !(sha_crypt::ROUNDS_MIN..=sha_crypt::ROUNDS_MAX).contains(&rounds) {
        return Err(malformed(format!(
            "sha-crypt rounds={rounds} not in [{}, {}]",
            sha_crypt::ROUNDS_MIN,
            sha_crypt::ROUNDS_MAX
        )));
    }
    let expected_len = if sha512 { 86 } else { 43 };
    if hash.len() != expected_len {
        return Err(malformed(format!(
            "sha-crypt hash must be {expected_len} characters"
        )));
    }
    Ok(Parsed::ShaCrypt {
        sha512,
        rounds,
        salt: salt.to_owned(),
        hash: hash.to_owned(),
    })
}

fn parse_hmac(encoded: &str, alg: HmacAlg) -> Result<Parsed, HashError> {
    let parts: Vec<&str> = encoded.split('$').collect();
    if parts.len() != 4 {
        return Err(malformed("hmac hash must look like $hmac-<alg>$<hash>$<key>"));
    }
    Ok(Parsed::Hmac {
        alg,
        hash: decode(&STANDARD, parts[2], "hmac hash")?,
        key: decode(&STANDARD, parts[3], "hmac key")?,
    })
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Single left-to-right pass like Go's `strings.NewReplacer`, so a
/// `{PASSWORD}` inside the salt is not expanded again.
fn apply_pattern(pattern: &[u8], salt: &[u8], password: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pattern.len() + salt.len() + password.len());
    let mut i = 0;
    while i < pattern.len() {
        let rest = &pattern[i..];
        if rest.starts_with(b"{SALT}") {
            out.extend_from_slice(salt);
            i += 6;
        } else if rest.starts_with(b"{PASSWORD}") {
            out.extend_from_slice(password);
            i += 10;
        } else {
            out.push(pattern[i]);
            i += 1;
        }
    }
    out
}

fn hmac_hex<M: Mac + hmac::digest::KeyInit>(key: &[u8], password: &[u8]) -> Vec<u8> {
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(password);
    hex_lower(&mac.finalize().into_bytes())
}

fn hex_lower(bytes: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]])
        .collect()
}

fn pbkdf2_with<M>(password: &[u8], salt: &[u8], iterations: u32, out: &mut [u8])
where
    M: hmac::digest::KeyInit + hmac::digest::Update + hmac::digest::FixedOutput + Clone + Sync,
{
    pbkdf2::pbkdf2::<M>(password, salt, iterations, out).expect("HMAC accepts keys of any length");
}

/// The expensive half: recomputes the digest and compares in constant time.
pub(crate) fn verify_parsed(parsed: &Parsed, password: &[u8]) -> Result<bool, HashError> {
    Ok(match parsed {
        Parsed::Bcrypt { cost, salt, hash } => {
            if password.len() > BCRYPT_MAX_PASSWORD_BYTES {
                return Err(HashError::PasswordTooLong {
                    max: BCRYPT_MAX_PASSWORD_BYTES,
                    actual: password.len(),
                });
            }
            // bcrypt keys include the C string terminator, capped at 72 bytes.
            let mut key = Vec::with_capacity(password.len() + 1);
            key.extend_from_slice(password);
            key.push(0);
            key.truncate(BCRYPT_MAX_PASSWORD_BYTES);
            let raw = bcrypt::bcrypt(*cost, *salt, &key);
            let computed = bcrypt::BASE_64.encode(&raw[..23]);
            ct_eq(computed.as_bytes(), hash.as_bytes())
        }
        Parsed::Argon2 {
            algorithm,
            params,
            salt,
            hash,
        } => {
            let argon = argon2::Argon2::new(*algorithm, argon2::Version::V0x13, params.clone());
            let mut out = vec![0u8; hash.len()];
            argon
                .hash_password_into(password, salt, &mut out)
                .map_err(|e| malformed(format!("argon2: {e}")))?;
            ct_eq(&out, hash)
        }
        Parsed::Pbkdf2 {
            prf,
            iterations,
            salt,
            hash,
        } => {
            let mut out = vec![0u8; hash.len()];
            let (pw, s, i) = (password, salt.as_slice(), *iterations);
            match prf {
                Pbkdf2Prf::Sha1 => pbkdf2_with::<Hmac<Sha1>>(pw, s, i, &mut out),
                Pbkdf2Prf::Sha3_224 => pbkdf2_with::<Hmac<Sha3_224>>(pw, s, i, &mut out),
                Pbkdf2Prf::Sha256 => pbkdf2_with::<Hmac<Sha256>>(pw, s, i, &mut out),
                Pbkdf2Prf::Sha3_384 => pbkdf2_with::<Hmac<Sha3_384>>(pw, s, i, &mut out),
                Pbkdf2Prf::Sha512 => pbkdf2_with::<Hmac<Sha512>>(pw, s, i, &mut out),
            }
            ct_eq(&out, hash)
        }
        Parsed::Scrypt { params, salt, hash } => {
            let mut out = vec![0u8; hash.len()];
            scrypt::scrypt(password, salt, params, &mut out)
                .map_err(|e| malformed(format!("scrypt: {e}")))?;
            ct_eq(&out, hash)
        }
        Parsed::FirebaseScrypt {
            params,
            salt,
            salt_separator,
            hash,
            signer_key,
        } => {
            let mut salted = salt.clone();
            salted.extend_from_slice(salt_separator);
            let mut key = [0u8; 32];
            scrypt::scrypt(password, &salted, params, &mut key)
                .map_err(|e| malformed(format!("firescrypt: {e}")))?;
            // Firebase's scheme: the derived key encrypts the project's
            // signer key with AES-256-CTR and a zero IV.
            let mut encrypted = signer_key.clone();
            let mut cipher = ctr::Ctr128BE::<Aes256>::new(&key.into(), &[0u8; 16].into());
            cipher.apply_keystream(&mut encrypted);
            ct_eq(&encrypted, hash)
        }
        Parsed::Ssha { alg, salt, hash } => {
            let mut raw = password.to_vec();
            raw.extend_from_slice(salt);
            ct_eq(&alg.digest(&raw), hash)
        }
        Parsed::Sha {
            alg,
            pattern,
            salt,
            hash,
        } => ct_eq(&alg.digest(&apply_pattern(pattern, salt, password)), hash),
        Parsed::Md5 { salted, hash } => {
            let digest = match salted {
                None => md5::Md5::digest(password),
                Some((pattern, salt)) => md5::Md5::digest(apply_pattern(pattern, salt, password)),
            };
            ct_eq(&digest, hash)
        }
        Parsed::Md5Crypt { salt, hash } => {
            ct_eq(md5_crypt(password, salt.as_bytes()).as_bytes(), hash.as_bytes())
        }
        Parsed::ShaCrypt {
            sha512,
            rounds,
            salt,
            hash,
        } => {
            let computed = if *sha512 {
                let params = sha_crypt::Sha512Params::new(*rounds)
                    .map_err(|e| malformed(format!("sha512-crypt: {e:?}")))?;
                sha_crypt::sha512_crypt_b64(password, salt.as_bytes(), &params)
            } else {
                let params = sha_crypt::Sha256Params::new(*rounds)
                    .map_err(|e| malformed(format!("sha256-crypt: {e:?}")))?;
                sha_crypt::sha256_crypt_b64(password, salt.as_bytes(), &params)
            }
            .map_err(|e| malformed(format!("sha-crypt: {e:?}")))?;
            ct_eq(computed.as_bytes(), hash.as_bytes())
        }
        Parsed::Hmac { alg, hash, key } => {
            let computed = match alg {
                HmacAlg::Md4 => hmac_hex::<Hmac<md4::Md4>>(key, password),
                HmacAlg::Md5 => hmac_hex::<Hmac<md5::Md5>>(key, password),
                HmacAlg::Sha1 => hmac_hex::<Hmac<Sha1>>(key, password),
                HmacAlg::Sha224 => hmac_hex::<Hmac<Sha224>>(key, password),
                HmacAlg::Sha256 => hmac_hex::<Hmac<Sha256>>(key, password),
                HmacAlg::Sha384 => hmac_hex::<Hmac<Sha384>>(key, password),
                HmacAlg::Sha512 => hmac_hex::<Hmac<Sha512>>(key, password),
            };
            ct_eq(&computed, hash)
        }
    })
}
