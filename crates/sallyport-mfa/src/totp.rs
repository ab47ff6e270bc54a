//! TOTP (RFC 6238) compatible with Ory Kratos, which uses pquerna/otp with its defaults.
//!
//! Parameters are fixed like Kratos: HMAC-SHA-1, 6 digits, 30 s period, ±1 step skew and
//! a 160-bit secret for new keys. As in Kratos only the `secret` of a stored URL is used
//! for validation; `algorithm`, `digits` and `period` query parameters are ignored.

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha1::Sha1;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::{MfaError, base32};

/// Number of digits of a code.
pub const TOTP_DIGITS: usize = 6;
/// Length of a time step in seconds.
pub const TOTP_PERIOD_SECONDS: i64 = 30;
/// Accepted clock skew, in steps, on either side of the current step.
pub const TOTP_SKEW_STEPS: i64 = 1;
/// Size of newly generated secrets in bytes (160 bits, as recommended by RFC 4226).
pub const TOTP_SECRET_BYTES: usize = 20;

/// A TOTP key: its `otpauth://` URL (stored in the credential config as `totp_url`) and
/// the base32 secret (shown to the user as `totp_secret_key` during enrolment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpKey {
    /// `otpauth://totp/<issuer>:<account>?algorithm=SHA1&digits=6&issuer=<issuer>&period=30&secret=<secret>`
    pub url: String,
    /// Upper-case base32 secret without padding.
    pub secret_base32: String,
}

impl TotpKey {
    /// The issuer: the `issuer` query parameter, else the label part before `:`
    /// (same rules as pquerna/otp).
    pub fn issuer(&self) -> String {
        let parts = UrlParts::split(self.url.trim());
        if let Some(issuer) = parts.as_ref().and_then(|p| p.query_param("issuer"))
            && !issuer.is_empty()
        {
            return issuer;
        }
        let label = parts.map(|p| p.label()).unwrap_or_default();
        match label.split_once(':') {
            Some((issuer, _)) => issuer.to_owned(),
            None => String::new(),
        }
    }

    /// The account name: the label after the first `:` (or the whole label).
    pub fn account_name(&self) -> String {
        let label = UrlParts::split(self.url.trim())
            .map(|p| p.label())
            .unwrap_or_default();
        match label.split_once(':') {
            Some((_, account)) => account.to_owned(),
            None => label,
        }
    }

    fn secret_bytes(&self) -> Option<Vec<u8>> {
        let secret = base32::decode(&base32::normalize(&self.secret_base32))?;
        (!secret.is_empty()).then_some(secret)
    }
}

/// Generates a new key with a random 160-bit secret, formatted like pquerna/otp
/// (query parameters sorted, spaces as `%20`).
///
/// # Panics
/// If the operating system's random number generator fails.
pub fn new_totp(issuer: &str, account_name: &str) -> TotpKey {
    let mut secret = [0u8; TOTP_SECRET_BYTES];
    getrandom::fill(&mut secret).expect("operating system RNG failed");
    let secret_base32 = base32::encode(&secret);
    let label = format!("{issuer}:{account_name}");
    let url = format!(
        "otpauth://totp/{}?algorithm=SHA1&digits={TOTP_DIGITS}&issuer={}&period={TOTP_PERIOD_SECONDS}&secret={secret_base32}",
        escape(&label, keep_in_path),
        escape(issuer, keep_in_query_value),
    );
    TotpKey { url, secret_base32 }
}

/// Parses a stored `totp_url` (as Kratos or another system wrote it).
///
/// Requires the `otpauth` scheme, the `totp` type and a non-empty base32 `secret`
/// (case-insensitive, whitespace and `=` padding tolerated, any length including
/// secrets shorter than 128 bits). Surrounding whitespace is trimmed, like pquerna/otp.
pub fn parse_totp_url(url: &str) -> Result<TotpKey, MfaError> {
    let url = url.trim();
    let parts = UrlParts::split(url)
        .ok_or_else(|| MfaError::InvalidTotpUrl("expected otpauth://totp/…".to_owned()))?;
    if !parts.scheme.eq_ignore_ascii_case("otpauth") {
        return Err(MfaError::InvalidTotpUrl(format!(
            "unsupported scheme {:?}",
            parts.scheme
        )));
    }
    if !parts.host.eq_ignore_ascii_case("totp") {
        return Err(MfaError::InvalidTotpUrl(format!(
            "unsupported OTP type {:?}",
            parts.host
        )));
    }
    let secret = parts
        .query_param("secret")
        .ok_or_else(|| MfaError::InvalidTotpSecret("missing secret parameter".to_owned()))?;
    let secret_base32 = base32::normalize(&secret);
    match base32::decode(&secret_base32) {
        Some(bytes) if !bytes.is_empty() => Ok(TotpKey {
            url: url.to_owned(),
            secret_base32,
        }),
        Some(_) => Err(MfaError::InvalidTotpSecret("empty secret".to_owned())),
        None => Err(MfaError::InvalidTotpSecret("not valid base32".to_owned())),
    }
}

/// The RFC 6238 time step of `at` (Unix time divided by 30 s, rounded down).
pub fn totp_step(at: OffsetDateTime) -> i64 {
    at.unix_timestamp().div_euclid(TOTP_PERIOD_SECONDS)
}

/// The 6-digit code for the time `at` (e.g. for tests or an authenticator simulator).
pub fn generate_totp_code(key: &TotpKey, at: OffsetDateTime) -> Result<String, MfaError> {
    let secret = key
        .secret_bytes()
        .ok_or_else(|| MfaError::InvalidTotpSecret("not valid base32".to_owned()))?;
    let step = u64::try_from(totp_step(at))
        .map_err(|_| MfaError::InvalidTotpSecret("time before the Unix epoch".to_owned()))?;
    Ok(hotp(&secret, step))
}

/// Verifies `code` at time `now`, accepting the current step and one step on either side.
///
/// Returns the matched time step, which the caller must persist and pass back as
/// `last_used_step` next time: steps `<= last_used_step` are refused so that a code cannot
/// be replayed within its validity window (Kratos allows such replays).
///
/// The code is trimmed and may contain spaces (`"123 456"`); anything else than exactly
/// six ASCII digits is refused. Codes are compared in constant time. A key whose secret
/// is not valid base32 never verifies.
pub fn verify_totp(
    key: &TotpKey,
    code: &str,
    now: OffsetDateTime,
    last_used_step: Option<i64>,
) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != TOTP_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secret = key.secret_bytes()?;
    let current = totp_step(now);

    // Prefer the current step, then the previous, then the next one. All candidates are
    // computed and compared so the timing does not depend on which one matched.
    let mut matched = None;
    for offset in [0, -TOTP_SKEW_STEPS, TOTP_SKEW_STEPS] {
        let step = current + offset;
        let Ok(counter) = u64::try_from(step) else {
            continue;
        };
        let expected = hotp(&secret, counter);
        let equal: bool = expected.as_bytes().ct_eq(code.as_bytes()).into();
        let fresh = last_used_step.is_none_or(|last| step > last);
        if equal && fresh && matched.is_none() {
            matched = Some(step);
        }
    }
    matched
}

/// Credential config for a TOTP credential: `{"totp_url": url}` (Kratos' format).
pub fn totp_credential_config(url: &str) -> Value {
    json!({ "totp_url": url })
}

/// Reads the non-empty `totp_url` from a TOTP credential config.
pub fn totp_url_from_config(config: &Value) -> Option<String> {
    config
        .get("totp_url")
        .and_then(Value::as_str)
        .filter(|url| !url.trim().is_empty())
        .map(str::to_owned)
}

/// Reads the last accepted time step (`last_used_step`, a Sallyport extension of the
/// TOTP credential config; Kratos ignores the field).
pub fn totp_last_used_step_from_config(config: &Value) -> Option<i64> {
    config.get("last_used_step").and_then(Value::as_i64)
}

/// Returns `config` with `last_used_step` set to `step` (never lowered).
pub fn totp_config_with_last_used_step(config: &Value, step: i64) -> Value {
    let mut config = config.clone();
    if !config.is_object() {
        config = json!({});
    }
    let step = totp_last_used_step_from_config(&config).map_or(step, |old| old.max(step));
    if let Some(object) = config.as_object_mut() {
        object.insert("last_used_step".to_owned(), json!(step));
    }
    config
}

/// RFC 4226 HOTP with HMAC-SHA-1 and 6 digits.
fn hotp(secret: &[u8], counter: u64) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    format!(
        "{:0width$}",
        binary % 10u32.pow(TOTP_DIGITS as u32),
        width = TOTP_DIGITS
    )
}

/// The pieces of an `otpauth://type/label?query#fragment` URL we need.
struct UrlParts<'a> {
    scheme: &'a str,
    host: &'a str,
    path: &'a str,
    query: &'a str,
}

impl<'a> UrlParts<'a> {
    fn split(url: &'a str) -> Option<Self> {
        let url = url.split_once('#').map_or(url, |(before, _)| before);
        let (scheme, rest) = url.split_once("://")?;
        let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (host, path) = match before_query.find('/') {
            Some(i) => before_query.split_at(i),
            None => (before_query, ""),
        };
        Some(Self {
            scheme,
            host,
            path,
            query,
        })
    }

    /// The decoded label (path without its leading `/`).
    fn label(&self) -> String {
        percent_decode(self.path.strip_prefix('/').unwrap_or(self.path), false)
            .unwrap_or_else(|| self.path.trim_start_matches('/').to_owned())
    }

    /// First value of `name`; like Go's `url.Values.Get`, pairs that fail to decode are
    /// skipped and `+` means a space.
    fn query_param(&self, name: &str) -> Option<String> {
        self.query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .filter_map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                Some((percent_decode(key, true)?, percent_decode(value, true)?))
            })
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }
}

fn percent_decode(input: &str, plus_is_space: bool) -> Option<String> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// Characters Go's `url.URL.String()` leaves alone in a path.
fn keep_in_path(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'@')
}

/// Characters left alone in query values. pquerna uses Go's `url.PathEscape`, which also
/// keeps `&`, `+` and `=`; those would corrupt the query, so they are escaped here.
fn keep_in_query_value(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'$' | b':' | b'@')
}

fn escape(input: &str, keep: fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(input.len());
    for &b in input.as_bytes() {
        if keep(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_matches_go() {
        assert_eq!(escape("My App:a b@x.io", keep_in_path), "My%20App:a%20b@x.io");
        assert_eq!(escape("a&b+c=d e", keep_in_query_value), "a%26b%2Bc%3Dd%20e");
        assert_eq!(escape("ü?#", keep_in_path), "%C3%BC%3F%23");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c", true).unwrap(), "a b c");
        assert_eq!(percent_decode("a%20b+c", false).unwrap(), "a b+c");
        assert_eq!(percent_decode("%zz", true), None);
        assert_eq!(percent_decode("%2", true), None);
    }

    #[test]
    fn query_param_skips_bad_pairs() {
        let parts = UrlParts::split("otpauth://totp/x?secret=%zz&secret=ABCD&b").unwrap();
        assert_eq!(parts.query_param("secret").unwrap(), "ABCD");
        assert_eq!(parts.query_param("b").unwrap(), "");
        assert_eq!(parts.query_param("c"), None);
    }
}
