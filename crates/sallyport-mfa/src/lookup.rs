//! Lookup secrets (recovery codes).
//!
//! Kratos generates 12 codes of 8 characters from `[a-z0-9]` and stores them in
//! plaintext in the `lookup_secret` credential config:
//!
//! ```json
//! {"recovery_codes": [{"code": "abcd1234", "used_at": null}, …]}
//! ```
//!
//! Sallyport stores new codes **hashed** instead:
//!
//! ```json
//! {"recovery_codes": [{"code_hash": "<hex>", "used_at": null}, …], "hashed": true}
//! ```
//!
//! * `code_hash`: lower-case hex of HMAC-SHA256 with a server secret as key over the
//!   normalised code ([`normalize_lookup_code`]).
//! * `used_at`: `null` while unused, else the RFC 3339 UTC time of use (rounded to the
//!   second, like Kratos).
//! * `hashed`: `true` marks the hashed format.
//!
//! [`verify_lookup_code`] accepts both formats (and entry-wise mixtures), so credentials
//! imported from Kratos keep working.
//!
//! Kratos' settings can "reveal" the codes again. A hash alone cannot be shown, so
//! [`lookup_credential_config_sealed`] adds `sealed` to each entry: the code encrypted with
//! AES-256-GCM under a key derived from a server secret (`secrets.cipher`), as base64 of
//! nonce ‖ ciphertext. Verification still only compares hashes; [`reveal_lookup_codes_with`]
//! opens the sealed codes for display. Nothing is plaintext at rest either way.

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Number of codes in a set (Kratos: 12).
pub const LOOKUP_CODE_COUNT: usize = 12;
/// Length of each code (Kratos: 8).
pub const LOOKUP_CODE_LENGTH: usize = 8;
/// Alphabet of generated codes (Kratos' `randx.AlphaLowerNum`).
pub const LOOKUP_CODE_ALPHABET: &str = "abcdefghijklmnopqrstuvwxyz0123456789";

/// Outcome of [`verify_lookup_code`].
#[derive(Debug, Clone, PartialEq)]
pub enum LookupResult {
    /// The code matched an unused entry; `updated_config` marks it used (`used_at` = now)
    /// and must be persisted before the login completes.
    Valid {
        /// The credential config with the code marked as used.
        updated_config: Value,
    },
    /// The code matched, but only entries that were already used (Kratos error 4000012).
    AlreadyUsed,
    /// No entry matched (Kratos error 4000016).
    Invalid,
}

/// A plaintext code as it can be shown by the settings "reveal" action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevealedLookupCode {
    /// The code.
    pub code: String,
    /// Whether the code was used.
    pub used: bool,
    /// When the code was used, if known.
    pub used_at: Option<OffsetDateTime>,
}

/// Generates [`LOOKUP_CODE_COUNT`] codes of [`LOOKUP_CODE_LENGTH`] characters drawn
/// uniformly from [`LOOKUP_CODE_ALPHABET`] with the operating system's RNG.
///
/// # Panics
/// If the operating system's random number generator fails.
pub fn generate_lookup_codes() -> Vec<String> {
    let alphabet = LOOKUP_CODE_ALPHABET.as_bytes();
    // Largest multiple of the alphabet size that fits in a byte: rejection sampling keeps
    // the distribution uniform.
    let limit = (256 / alphabet.len() * alphabet.len()) as u8;
    let mut codes = Vec::with_capacity(LOOKUP_CODE_COUNT);
    let mut pool = [0u8; 64];
    let mut used = pool.len();
    for _ in 0..LOOKUP_CODE_COUNT {
        let mut code = String::with_capacity(LOOKUP_CODE_LENGTH);
        while code.len() < LOOKUP_CODE_LENGTH {
            if used == pool.len() {
                getrandom::fill(&mut pool).expect("operating system RNG failed");
                used = 0;
            }
            let byte = pool[used];
            used += 1;
            if byte < limit {
                code.push(alphabet[usize::from(byte) % alphabet.len()] as char);
            }
        }
        codes.push(code);
    }
    codes
}

/// Normalises user input and stored codes: surrounding whitespace trimmed, lower-cased,
/// inner whitespace and dashes removed (`" ABCD-1234 "` → `"abcd1234"`).
pub fn normalize_lookup_code(code: &str) -> String {
    code.trim()
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Builds the hashed credential config for `codes` (see the [module docs](self)), keyed
/// with `key` (the current secret; older secrets can still be passed to
/// [`verify_lookup_code`] after a rotation).
pub fn lookup_credential_config(codes: &[String], key: &str) -> Value {
    let entries: Vec<Value> = codes
        .iter()
        .map(|code| json!({ "code_hash": code_hash(key, &normalize_lookup_code(code)), "used_at": null }))
        .collect();
    json!({ "recovery_codes": entries, "hashed": true })
}

fn seal_key(secret: &str) -> aes_gcm::Key<aes_gcm::Aes256Gcm> {
    use sha2::Digest;
    let mut h = Sha256::new();
    h.update(b"sallyport lookup secret seal\0");
    h.update(secret.as_bytes());
    h.finalize()
}

fn seal(secret: &str, code: &str) -> String {
    use aes_gcm::aead::{Aead, KeyInit};
    use base64::Engine;
    let cipher = aes_gcm::Aes256Gcm::new(&seal_key(secret));
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut nonce).expect("the operating system's RNG works");
    let ct = cipher
        .encrypt(&nonce.into(), code.as_bytes())
        .expect("AES-GCM encrypts any short input");
    let mut out = nonce.to_vec();
    out.extend(ct);
    base64::engine::general_purpose::STANDARD.encode(out)
}

fn unseal(secrets: &[String], sealed: &str) -> Option<String> {
    use aes_gcm::aead::{Aead, KeyInit};
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD.decode(sealed).ok()?;
    if raw.len() < 12 {
        return None;
    }
    let (nonce, ct) = raw.split_at(12);
    let nonce: [u8; 12] = nonce.try_into().ok()?;
    secrets.iter().find_map(|s| {
        let cipher = aes_gcm::Aes256Gcm::new(&seal_key(s));
        let pt = cipher.decrypt(&nonce.into(), ct).ok()?;
        String::from_utf8(pt).ok()
    })
}

/// Like [`lookup_credential_config`], and each entry also carries its code sealed under
/// `seal_secret`, so [`reveal_lookup_codes_with`] can show it again.
pub fn lookup_credential_config_sealed(codes: &[String], key: &str, seal_secret: &str) -> Value {
    let entries: Vec<Value> = codes
        .iter()
        .map(|code| {
            let code = normalize_lookup_code(code);
            json!({ "code_hash": code_hash(key, &code), "sealed": seal(seal_secret, &code), "used_at": null })
        })
        .collect();
    json!({ "recovery_codes": entries, "hashed": true })
}

/// The codes of `config` for "reveal": plaintext entries as they are, sealed entries opened
/// with any of `seal_secrets`. `None` when some entry can be neither (a hash-only config from
/// before sealing, or a secret that was removed).
pub fn reveal_lookup_codes_with(config: &Value, seal_secrets: &[String]) -> Option<Vec<RevealedLookupCode>> {
    let entries = recovery_codes(config)?;
    let mut revealed = Vec::with_capacity(entries.len());
    for entry in entries {
        let code = match (
            entry.get("code").and_then(Value::as_str),
            entry.get("sealed").and_then(Value::as_str),
        ) {
            (Some(c), _) => c.to_owned(),
            (None, Some(sealed)) => unseal(seal_secrets, sealed)?,
            (None, None) if entry.get("code_hash").is_some() => return None,
            (None, None) => continue,
        };
        revealed.push(RevealedLookupCode {
            code,
            used: is_used(entry),
            used_at: used_at(entry),
        });
    }
    (!revealed.is_empty()).then_some(revealed)
}

/// Checks `candidate` against every entry of `config` (hashed entries under every key in
/// `keys`, plaintext Kratos entries directly), comparing in constant time, and marks the
/// first unused match as used at `now`.
pub fn verify_lookup_code(
    config: &Value,
    candidate: &str,
    keys: &[String],
    now: OffsetDateTime,
) -> LookupResult {
    let candidate = normalize_lookup_code(candidate);
    if candidate.is_empty() {
        return LookupResult::Invalid;
    }
    let Some(entries) = recovery_codes(config) else {
        return LookupResult::Invalid;
    };
    let digests: Vec<String> = keys.iter().map(|key| code_hash(key, &candidate)).collect();

    let mut matched_any = false;
    let mut unused_match = None;
    for (index, entry) in entries.iter().enumerate() {
        let mut matched = Choice::from(0);
        if let Some(stored) = entry.get("code_hash").and_then(Value::as_str) {
            let stored = stored.to_ascii_lowercase();
            for digest in &digests {
                matched |= stored.as_bytes().ct_eq(digest.as_bytes());
            }
        }
        if let Some(stored) = entry.get("code").and_then(Value::as_str) {
            let stored = normalize_lookup_code(stored);
            if !stored.is_empty() {
                matched |= stored.as_bytes().ct_eq(candidate.as_bytes());
            }
        }
        if bool::from(matched) {
            matched_any = true;
            if unused_match.is_none() && !is_used(entry) {
                unused_match = Some(index);
            }
        }
    }

    match unused_match {
        Some(index) => {
            let mut updated_config = config.clone();
            if let Some(entry) = updated_config
                .get_mut("recovery_codes")
                .and_then(|codes| codes.get_mut(index))
                .and_then(Value::as_object_mut)
            {
                entry.insert("used_at".to_owned(), json!(format_used_at(now)));
            }
            LookupResult::Valid { updated_config }
        }
        None if matched_any => LookupResult::AlreadyUsed,
        None => LookupResult::Invalid,
    }
}

/// Number of codes that have not been used yet.
pub fn remaining_lookup_codes(config: &Value) -> usize {
    recovery_codes(config).map_or(0, |entries| {
        entries
            .iter()
            .filter(|entry| has_code(entry) && !is_used(entry))
            .count()
    })
}

/// Whether the settings "reveal" action can show the codes of `config`: only for
/// plaintext (Kratos-format) configs. Hashed configs cannot be revealed by design; the
/// user must regenerate a new set.
pub fn can_reveal(config: &Value) -> bool {
    reveal_lookup_codes(config).is_some_and(|codes| !codes.is_empty())
}

/// The plaintext codes of a Kratos-format config (for "reveal"), or `None` when the config
/// is hashed (or holds any hashed entry).
pub fn reveal_lookup_codes(config: &Value) -> Option<Vec<RevealedLookupCode>> {
    if config.get("hashed").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    let entries = recovery_codes(config)?;
    let mut revealed = Vec::with_capacity(entries.len());
    for entry in entries {
        if entry.get("code_hash").is_some() {
            return None;
        }
        let Some(code) = entry.get("code").and_then(Value::as_str) else {
            continue;
        };
        revealed.push(RevealedLookupCode {
            code: code.to_owned(),
            used: is_used(entry),
            used_at: used_at(entry),
        });
    }
    Some(revealed)
}

/// Converts a plaintext (Kratos-format) config to the hashed format under `key`, keeping
/// `used_at`. Returns `None` if `config` holds no plaintext entries (already hashed or
/// malformed). Already hashed entries of a mixed config are kept as they are.
pub fn hash_plaintext_lookup_config(config: &Value, key: &str) -> Option<Value> {
    let entries = recovery_codes(config)?;
    if !entries
        .iter()
        .any(|entry| entry.get("code").and_then(Value::as_str).is_some())
    {
        return None;
    }
    let hashed: Vec<Value> = entries
        .iter()
        .filter_map(|entry| {
            if let Some(hash) = entry.get("code_hash").and_then(Value::as_str) {
                return Some(json!({ "code_hash": hash, "used_at": entry.get("used_at").cloned().unwrap_or(Value::Null) }));
            }
            let code = normalize_lookup_code(entry.get("code").and_then(Value::as_str)?);
            if code.is_empty() {
                return None;
            }
            let used_at = if is_used(entry) {
                entry.get("used_at").cloned().unwrap_or(Value::Null)
            } else {
                Value::Null
            };
            Some(json!({ "code_hash": code_hash(key, &code), "used_at": used_at }))
        })
        .collect();
    Some(json!({ "recovery_codes": hashed, "hashed": true }))
}

fn recovery_codes(config: &Value) -> Option<&Vec<Value>> {
    config.get("recovery_codes").and_then(Value::as_array)
}

fn has_code(entry: &Value) -> bool {
    entry.get("code_hash").and_then(Value::as_str).is_some()
        || entry.get("code").and_then(Value::as_str).is_some()
}

fn code_hash(key: &str, normalized_code: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(normalized_code.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `used_at` set and not Go's zero time (`0001-01-01T00:00:00Z`, which Kratos treats as
/// unused). Unparseable values count as used (fail closed).
fn is_used(entry: &Value) -> bool {
    match entry.get("used_at") {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) if s.is_empty() => false,
        Some(Value::String(s)) => OffsetDateTime::parse(s, &Rfc3339).map_or(true, |t| t.year() > 1),
        Some(_) => true,
    }
}

fn used_at(entry: &Value) -> Option<OffsetDateTime> {
    let parsed = OffsetDateTime::parse(entry.get("used_at")?.as_str()?, &Rfc3339).ok()?;
    (parsed.year() > 1).then_some(parsed)
}

/// UTC, rounded to the second (like Kratos' `time.Now().UTC().Round(time.Second)`).
fn format_used_at(now: OffsetDateTime) -> String {
    let now = now.to_offset(time::UtcOffset::UTC);
    let rounded = if now.nanosecond() >= 500_000_000 {
        now.replace_nanosecond(0).map(|t| t + time::Duration::SECOND)
    } else {
        now.replace_nanosecond(0)
    }
    .unwrap_or(now);
    rounded
        .format(&Rfc3339)
        .expect("a UTC time with a four-digit year formats as RFC 3339")
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn used_at_rounding() {
        assert_eq!(
            format_used_at(datetime!(2024-05-06 07:08:09.6 +02:00)),
            "2024-05-06T05:08:10Z"
        );
        assert_eq!(
            format_used_at(datetime!(2024-05-06 07:08:09.4 UTC)),
            "2024-05-06T07:08:09Z"
        );
    }

    #[test]
    fn go_zero_time_is_unused() {
        assert!(!is_used(&json!({"code": "x", "used_at": "0001-01-01T00:00:00Z"})));
        assert!(!is_used(&json!({"code": "x"})));
        assert!(is_used(&json!({"code": "x", "used_at": "2024-01-01T00:00:00Z"})));
        assert!(is_used(&json!({"code": "x", "used_at": "garbage"})));
    }
}

#[cfg(test)]
mod seal_tests {
    use super::*;

    #[test]
    fn sealed_codes_reveal_under_any_listed_secret_and_still_verify() {
        let codes = vec!["abcd1234".to_owned(), "efgh5678".to_owned()];
        let config = lookup_credential_config_sealed(&codes, "hash-key", "old-cipher-secret");
        assert!(
            !config.to_string().contains("abcd1234"),
            "nothing plaintext at rest"
        );
        let rotated = ["new-cipher-secret".to_owned(), "old-cipher-secret".to_owned()];
        let shown: Vec<String> = reveal_lookup_codes_with(&config, &rotated)
            .unwrap()
            .into_iter()
            .map(|c| c.code)
            .collect();
        assert_eq!(shown, codes);
        assert_eq!(reveal_lookup_codes_with(&config, &["other".to_owned()]), None);
        assert!(matches!(
            verify_lookup_code(
                &config,
                "efgh5678",
                &["hash-key".to_owned()],
                OffsetDateTime::UNIX_EPOCH
            ),
            LookupResult::Valid { .. }
        ));
        // A hash-only config from before sealing cannot be revealed.
        assert_eq!(
            reveal_lookup_codes_with(&lookup_credential_config(&codes, "hash-key"), &rotated),
            None
        );
    }
}
