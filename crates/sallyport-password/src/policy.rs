//! Password policy applied on registration and settings, modelled on Kratos'
//! `DefaultPasswordValidator`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};

use crate::formats::BCRYPT_MAX_PASSWORD_BYTES;

const MESSAGE_ID_POLICY_VIOLATION_GENERIC: u32 = 4000005;
const MESSAGE_ID_TOO_SIMILAR: u32 = 4000031;
const MESSAGE_ID_MIN_LENGTH: u32 = 4000032;
const MESSAGE_ID_MAX_LENGTH: u32 = 4000033;
const MESSAGE_ID_TOO_MANY_BREACHES: u32 = 4000034;

/// Bounds the O(n·m) similarity check; longer operands skip it, as in Kratos.
const MAX_SIMILARITY_CHECK_LENGTH: usize = 256;
const MIN_IDENTIFIER_PASSWORD_DISTANCE: usize = 5;
const MAX_COMMON_SUBSTRING_RATIO: f32 = 0.5;

const HIBP_TIMEOUT: Duration = Duration::from_secs(10);
const HIBP_CACHE_TTL: Duration = Duration::from_secs(60 * 60);
const HIBP_CACHE_CAPACITY: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyConfig {
    /// Counted in bytes, like Kratos.
    pub min_length: usize,
    pub identifier_similarity_check_enabled: bool,
    pub haveibeenpwned_enabled: bool,
    /// Either a bare host (`api.pwnedpasswords.com`, `host:port`), which is
    /// reached over https as Kratos does, or a full base URL with a scheme.
    pub haveibeenpwned_host: String,
    /// A password found in more breaches than this is rejected.
    pub max_breaches: u64,
    pub ignore_network_errors: bool,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            min_length: 8,
            identifier_similarity_check_enabled: true,
            haveibeenpwned_enabled: true,
            haveibeenpwned_host: "api.pwnedpasswords.com".to_owned(),
            max_breaches: 0,
            ignore_network_errors: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    #[error("The password must be at least {min} characters long, but got {actual}.")]
    TooShort { min: usize, actual: usize },
    #[error("The password must be at most {max} characters long, but got {actual}.")]
    TooLong { max: usize, actual: usize },
    #[error("The password can not be used because it is too similar to the identifier.")]
    TooSimilar,
    #[error("The password has been found in data breaches and must no longer be used.")]
    Breached { count: u64 },
    /// The breach service could not be used. Kratos reports this as an
    /// upstream (502) error rather than a form message.
    #[error("Unable to check if password has been leaked: {0}")]
    NetworkError(String),
}

impl PolicyViolation {
    /// Kratos UI message id. `NetworkError` has no message of its own in
    /// Kratos, so it maps to the generic policy-violation id.
    pub fn message_id(&self) -> u32 {
        match self {
            PolicyViolation::TooShort { .. } => MESSAGE_ID_MIN_LENGTH,
            PolicyViolation::TooLong { .. } => MESSAGE_ID_MAX_LENGTH,
            PolicyViolation::TooSimilar => MESSAGE_ID_TOO_SIMILAR,
            PolicyViolation::Breached { .. } => MESSAGE_ID_TOO_MANY_BREACHES,
            PolicyViolation::NetworkError(_) => MESSAGE_ID_POLICY_VIOLATION_GENERIC,
        }
    }

    /// True for failures of the breach service, which Kratos answers with
    /// an HTTP error instead of a validation message.
    pub fn is_upstream_error(&self) -> bool {
        matches!(self, PolicyViolation::NetworkError(_))
    }
}

/// bcrypt ignores key bytes past 72, so callers hashing with bcrypt reject
/// longer passwords up front (Kratos message 4000033).
pub fn check_bcrypt_length(password: &[u8]) -> Result<(), PolicyViolation> {
    check_max_length(password, BCRYPT_MAX_PASSWORD_BYTES)
}

pub fn check_max_length(password: &[u8], max: usize) -> Result<(), PolicyViolation> {
    if password.len() > max {
        return Err(PolicyViolation::TooLong {
            max,
            actual: password.len(),
        });
    }
    Ok(())
}

impl PolicyConfig {
    /// The Pwned Passwords range API address for a SHA-1 prefix (`haveibeenpwned_host` may carry a scheme).
    pub fn range_url(&self, prefix: &str) -> String {
        let host = self.haveibeenpwned_host.trim_end_matches('/');
        if host.contains("://") {
            format!("{host}/range/{prefix}")
        } else {
            format!("https://{host}/range/{prefix}")
        }
    }
}

pub struct PasswordPolicy {
    config: PolicyConfig,
    http: reqwest::Client,
    breach_cache: Mutex<BreachCache>,
}

impl std::fmt::Debug for PasswordPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordPolicy")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl PasswordPolicy {
    pub fn new(config: PolicyConfig, http: reqwest::Client) -> Self {
        PasswordPolicy {
            config,
            http,
            breach_cache: Mutex::new(BreachCache::default()),
        }
    }

    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// Checks in Kratos' order: length, identifier similarity, breaches.
    pub async fn validate(&self, identifier: &str, password: &str) -> Result<(), PolicyViolation> {
        if password.len() < self.config.min_length {
            return Err(PolicyViolation::TooShort {
                min: self.config.min_length,
                actual: password.len(),
            });
        }

        if self.config.identifier_similarity_check_enabled && is_too_similar(identifier, password) {
            return Err(PolicyViolation::TooSimilar);
        }

        if !self.config.haveibeenpwned_enabled {
            return Ok(());
        }

        let count = match self.breach_count(password).await {
            Ok(count) => count,
            Err(BreachLookupError::Unavailable(reason)) if self.config.ignore_network_errors => {
                tracing::warn!(%reason, "breached-password check skipped");
                return Ok(());
            }
            Err(BreachLookupError::Unavailable(reason) | BreachLookupError::BadResponse(reason)) => {
                return Err(PolicyViolation::NetworkError(reason));
            }
        };
        if count > self.config.max_breaches {
            return Err(PolicyViolation::Breached { count });
        }
        Ok(())
    }

    fn range_url(&self, prefix: &str) -> String {
        self.config.range_url(prefix)
    }

    /// Uses the k-anonymity range API: only the first five hex characters of
    /// the SHA-1 leave the process.
    async fn breach_count(&self, password: &str) -> Result<u64, BreachLookupError> {
        let full = sha1_upper_hex(password.as_bytes());
        if let Some(count) = self.lock_cache().get(&full) {
            return Ok(count);
        }
        let (prefix, suffix) = full.split_at(5);

        let response = self
            .http
            .get(self.range_url(prefix))
            .timeout(HIBP_TIMEOUT)
            .send()
            .await
            .map_err(|e| BreachLookupError::Unavailable(e.to_string()))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(BreachLookupError::Unavailable(format!(
                "unexpected status code {}",
                response.status().as_u16()
            )));
        }
        // A body that fails to arrive is as much a network failure as a
        // failed request.
        let body = response
            .text()
            .await
            .map_err(|e| BreachLookupError::Unavailable(format!("reading response: {e}")))?;

        let count = parse_range_response(&body, suffix)?;
        self.lock_cache().insert(full, count);
        Ok(count)
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, BreachCache> {
        // The cache holds plain data, so a panic elsewhere cannot leave it
        // inconsistent; keep using it.
        self.breach_cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

enum BreachLookupError {
    /// Network failure or non-200: subject to `ignore_network_errors`.
    Unavailable(String),
    /// A malformed count: Kratos fails on this regardless of the setting.
    BadResponse(String),
}

/// Lines are `SUFFIX:COUNT`. Kratos treats a line without a colon as one
/// breach and strips thousands separators from counts.
fn parse_range_response(body: &str, suffix: &str) -> Result<u64, BreachLookupError> {
    let mut found = 0;
    for line in body.lines() {
        let fields: Vec<&str> = line.trim().split(':').collect();
        let count = if fields.len() == 2 {
            fields[1].replace(',', "").parse::<u64>().map_err(|_| {
                BreachLookupError::BadResponse(format!(
                    "Expected password hash to contain a count formatted as int but got: {}",
                    fields[1]
                ))
            })?
        } else {
            1
        };
        if fields[0].eq_ignore_ascii_case(suffix) {
            found = count;
        }
    }
    Ok(found)
}

fn sha1_upper_hex(data: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    Sha1::digest(data)
        .iter()
        .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]])
        .map(char::from)
        .collect()
}

/// Per-rune lowering like Go's `strings.ToLower`, which never expands a
/// rune into several (unlike Rust's `to_lowercase` for U+0130).
fn go_lowercase(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == '\u{130}' {
                'i'
            } else {
                c.to_lowercase().next().unwrap_or(c)
            }
        })
        .collect()
}

/// Kratos' rule: case-insensitive Levenshtein distance below 5, or a common
/// substring longer than half the password. Empty identifiers and oversized
/// operands are not checked.
fn is_too_similar(identifier: &str, password: &str) -> bool {
    if identifier.is_empty()
        || identifier.len() > MAX_SIMILARITY_CHECK_LENGTH
        || password.len() > MAX_SIMILARITY_CHECK_LENGTH
    {
        return false;
    }
    let identifier = go_lowercase(identifier);
    let password = go_lowercase(password);
    // Lowercasing can grow a string, so the bound is checked again.
    if identifier.len() > MAX_SIMILARITY_CHECK_LENGTH || password.len() > MAX_SIMILARITY_CHECK_LENGTH {
        return false;
    }
    if strsim::levenshtein(&identifier, &password) < MIN_IDENTIFIER_PASSWORD_DISTANCE {
        return true;
    }
    if password.is_empty() {
        return false;
    }
    let ratio = longest_common_substring(&identifier, &password) as f32 / password.len() as f32;
    ratio > MAX_COMMON_SUBSTRING_RATIO
}

/// Reproduces Kratos' `lcsLength`, which walks runes but indexes its table
/// by byte offset: a run only continues when the previous characters of
/// both strings are single-byte. Matching that keeps decisions identical for
/// non-ASCII input.
fn longest_common_substring(a: &str, b: &str) -> usize {
    let width = b.len();
    let mut lengths = vec![0u32; a.len() * width];
    let mut greatest = 0u32;
    for (i, x) in a.char_indices() {
        for (j, y) in b.char_indices() {
            if x == y {
                let current = if i != 0 && j != 0 {
                    lengths[(i - 1) * width + j - 1] + 1
                } else {
                    1
                };
                greatest = greatest.max(current);
                lengths[i * width + j] = current;
            }
        }
    }
    greatest as usize
}

#[derive(Default)]
struct BreachCache {
    entries: HashMap<String, (u64, Instant)>,
}

impl BreachCache {
    fn get(&self, key: &str) -> Option<u64> {
        self.entries
            .get(key)
            .filter(|(_, stored)| stored.elapsed() < HIBP_CACHE_TTL)
            .map(|(count, _)| *count)
    }

    fn insert(&mut self, key: String, count: u64) {
        if self.entries.len() >= HIBP_CACHE_CAPACITY && !self.entries.contains_key(&key) {
            self.entries
                .retain(|_, (_, stored)| stored.elapsed() < HIBP_CACHE_TTL);
            if self.entries.len() >= HIBP_CACHE_CAPACITY
                && let Some(evict) = self.entries.keys().next().cloned()
            {
                self.entries.remove(&evict);
            }
        }
        self.entries.insert(key, (count, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::{is_too_similar, longest_common_substring, parse_range_response};

    /// Cases from Kratos' validator tests.
    #[test]
    fn similarity_matches_kratos() {
        let similar = [
            ("l3f9toh1uaf81n21", "l3f9toh1uaf81n21"),
            ("hello@example.com", "hello@example.com12345"),
            ("hello@example.com", "123hello@example.com123"),
            ("hello@example.com", "hello@exam"),
            ("hello@example.com", "HELLO@EXAMPLE.COM"),
            ("hello@example.com", "HELLO@example.com"),
            ("hello@exam", "hello@example.com"),
            ("hello@example.com", "h3ll0@example"),
        ];
        for (id, pw) in similar {
            assert!(is_too_similar(id, pw), "{id} / {pw}");
        }
        let distinct = [
            ("", "l3f9toh1uaf81n21"),
            ("", "x"),
            ("abcd", "9d3c8a1b"),
            ("a", "kjOklafe"),
            ("ab", "0000ab0000123"),
            ("d4f6090b-5a84", "d4f6090b-5a84-2184-4404-8d1b-8da3eb00ebbe"),
            ("asdflasdflasdf", "asdflasdflpiuhefnciluaksdzuföfhg"),
        ];
        for (id, pw) in distinct {
            assert!(!is_too_similar(id, pw), "{id} / {pw}");
        }
        // Oversized operands are not compared at all.
        let long = "0".repeat(300);
        assert!(!is_too_similar(&long, &long));
    }

    #[test]
    fn common_substring_follows_kratos_byte_indexing() {
        assert_eq!(longest_common_substring("abcdef", "zcdez"), 3);
        assert_eq!(longest_common_substring("", "abc"), 0);
        // After a multi-byte character Kratos' table lookup misses, so runs
        // restart; "éab" vs "éab" therefore counts 2 ("ab"), not 3.
        assert_eq!(longest_common_substring("éab", "éab"), 2);
    }

    #[test]
    fn range_response_parsing() {
        let body = "AAAA:1\r\nBBBB:1,234\r\nCCCC\r\n";
        assert_eq!(parse_range_response(body, "BBBB").ok(), Some(1234));
        assert_eq!(parse_range_response(body, "cccc").ok(), Some(1));
        assert_eq!(parse_range_response(body, "DDDD").ok(), Some(0));
        assert!(parse_range_response("AAAA:x", "BBBB").is_err());
    }
}
