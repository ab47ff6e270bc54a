//! Identifier normalization (Kratos `x/normalize.go`) and the `email` / `tel` format checks
//! (ory/jsonschema `formats.go`).
//!
//! Kratos runs identifiers through a PRECIS FreeformClass profile (width folding, lower case,
//! NFKC, no control/format/ignorable/private-use code points). This module approximates that
//! profile with NFKC + Unicode lower-casing + an explicit list of disallowed code points; the
//! RFC 5893 bidi rule is not enforced.

use unicode_normalization::UnicodeNormalization;

/// Longer inputs are never phone numbers; keeps libphonenumber parsing cheap on hostile input.
const MAX_PHONE_INPUT: usize = 64;

/// Code points the identifier profile rejects (strict) or strips (graceful): controls, format
/// characters, default-ignorables (zero-width joiners, bidi controls, variation selectors,
/// tags), private use and noncharacters.
fn disallowed(c: char) -> bool {
    let cp = c as u32;
    c.is_control()
        || matches!(cp,
            0x00AD | 0x034F | 0x061C | 0x0600..=0x0605 | 0x06DD | 0x070F | 0x08E2
            | 0x115F..=0x1160 | 0x17B4..=0x17B5 | 0x180B..=0x180F
            | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F
            | 0x3164 | 0xFE00..=0xFE0F | 0xFEFF | 0xFFA0 | 0xFFF0..=0xFFFB
            | 0x110BD | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF
            | 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD
            | 0xFDD0..=0xFDEF)
        || (cp & 0xFFFE) == 0xFFFE
}

fn fold(value: &str) -> String {
    // NFKC leaves ASCII as it is, and ASCII lower-cases to ASCII: the common case skips both passes.
    if value.is_ascii() {
        return value.to_ascii_lowercase();
    }
    let lowered: String = value.nfkc().collect::<String>().to_lowercase();
    // Lower-casing can produce sequences that NFKC composes differently.
    lowered.nfkc().collect()
}

/// The email/identifier profile. Strict mode refuses empty input and disallowed code points;
/// graceful mode strips them instead.
fn precis_identifier(value: &str, graceful: bool) -> Result<String, &'static str> {
    let value = value.trim();
    if !graceful {
        if value.is_empty() {
            return Err("the identifier is empty");
        }
        if value.chars().any(disallowed) {
            return Err("the identifier contains disallowed characters");
        }
        return Ok(fold(value));
    }
    if !value.chars().any(disallowed) {
        // The common case: nothing to strip, no copy of the value char by char.
        return Ok(fold(value));
    }
    let stripped: String = value.chars().filter(|c| !disallowed(*c)).collect();
    Ok(fold(&stripped))
}

/// The phone profile: width folding only; libphonenumber canonicalizes the rest.
fn precis_phone(value: &str) -> String {
    value
        .trim()
        .chars()
        .map(|c| match c as u32 {
            // Fullwidth ASCII variants (e.g. "＋４９") to their ASCII forms.
            0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            0x3000 => ' ',
            _ => c,
        })
        .collect()
}

/// Parses an international number (no default region, so it must start with `+`) and returns
/// its E.164 form when libphonenumber considers it valid.
fn parse_phone_e164(value: &str) -> Option<String> {
    if value.is_empty() || value.len() > MAX_PHONE_INPUT || !could_be_international(value) {
        return None;
    }
    // A parser bug must not take a request down with it.
    std::panic::catch_unwind(|| {
        let number = phonenumber::parse(None, value).ok()?;
        phonenumber::is_valid(&number).then(|| number.format().mode(phonenumber::Mode::E164).to_string())
    })
    .ok()
    .flatten()
}

/// Without a default region libphonenumber only takes a number whose country code follows a plus
/// sign (ASCII or fullwidth) or comes in an RFC 3966 `;phone-context=` parameter: anything else
/// (most identifiers: emails, user names) is refused without running the parser.
fn could_be_international(value: &str) -> bool {
    value.contains(['+', '\u{FF0B}', ';'])
}

/// Kratos `x.GracefulNormalization`: the identifier profile, then E.164 for anything that is
/// a valid international phone number.
pub(crate) fn graceful(value: &str) -> String {
    let canonical = precis_identifier(value, true).unwrap_or_default();
    match parse_phone_e164(&canonical) {
        Some(e164) => e164,
        None => canonical,
    }
}

/// Kratos `x.NormalizeEmailIdentifier`.
pub(crate) fn email_graceful(value: &str) -> String {
    precis_identifier(value, true).unwrap_or_default()
}

/// Kratos `x.NormalizePhoneIdentifier`: E.164 when valid, else the width-folded input.
pub(crate) fn phone_graceful(value: &str) -> String {
    let folded = precis_phone(value);
    parse_phone_e164(&folded).unwrap_or(folded)
}

/// Normalizes an identifier the way Kratos stores and looks it up.
///
/// * `None` (or any other format, e.g. a username): `x.GracefulNormalization` — trimmed,
///   NFKC, lower-cased, disallowed code points stripped, and valid international phone
///   numbers rewritten to E.164. This is what password, code and WebAuthn identifiers use
///   both when stored and when looked up at login.
/// * `Some("email")`: `x.NormalizeEmailIdentifier` — the same without the phone rewrite.
/// * `Some("tel")` / `Some("sms")`: `x.NormalizePhoneIdentifier` — E.164 when parsable.
pub fn normalize_identifier(value: &str, format: Option<&str>) -> String {
    match format {
        Some("email") => email_graceful(value),
        Some("tel") | Some("sms") => phone_graceful(value),
        _ => graceful(value),
    }
}

/// Kratos `x.NormalizeIdentifier(value, via)` for an address channel: `"email"` must be a
/// valid address after normalization, `"sms"` a valid international phone number (returned in
/// E.164). Any other channel gets the graceful identifier profile.
pub fn normalize_address(value: &str, via: &str) -> Result<String, String> {
    match via {
        "email" => {
            let v = precis_identifier(value, false).map_err(str::to_string)?;
            if is_addr_spec(&v) {
                Ok(v)
            } else {
                Err(format!(
                    "mail: {} is not a valid address",
                    crate::gofmt::quote(&v)
                ))
            }
        }
        "sms" => {
            let v = precis_phone(value);
            if v.chars().any(disallowed) {
                return Err("the phone number contains disallowed characters".into());
            }
            parse_phone_e164(&v).ok_or_else(|| "the provided number is not a valid phone number".into())
        }
        _ => precis_identifier(value, true).map_err(str::to_string),
    }
}

/// The `email` format as ory/jsonschema checks it: at most 254 bytes, a local part of at most
/// 64 bytes that parses as an RFC 5322 addr-spec local part, and an ASCII host name domain.
pub fn is_valid_email(s: &str) -> bool {
    if s.len() > 254 {
        return false;
    }
    let Some(at) = s.rfind('@') else {
        return false;
    };
    if at > 64 {
        return false;
    }
    is_hostname(&s[at + 1..]) && is_addr_spec(s)
}

/// The `tel` format: a valid international number (libphonenumber, no default region).
pub fn is_valid_phone(s: &str) -> bool {
    parse_phone_e164(s).is_some()
}

/// Kratos `x.IsEmailAddress` (`email_loose`): lenient local part, one `@`, a host-name domain.
pub(crate) fn is_loose_email(s: &str) -> bool {
    if s.is_empty() || s.len() > 320 {
        return false;
    }
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    if local.is_empty() || domain.is_empty() || domain.contains('@') {
        return false;
    }
    let local_ok = local
        .chars()
        .all(|c| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
    local_ok && (is_hostname(domain) || is_idn_hostname(domain))
}

fn is_idn_hostname(domain: &str) -> bool {
    !domain.is_ascii()
        && domain
            .split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_alphanumeric() || c == '-'))
}

/// RFC 1123 host name, ASCII only, as ory/jsonschema's `hostname` format.
fn is_hostname(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.is_empty() || s.len() > 253 || s.starts_with('-') {
        return false;
    }
    s.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.ends_with('-')
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

/// `local@domain` where local is a dot-atom (atext incl. non-ASCII, as Go's net/mail allows)
/// or a quoted string, and domain is a dot-atom.
fn is_addr_spec(s: &str) -> bool {
    let Some(at) = s.rfind('@') else {
        return false;
    };
    let (local, domain) = (&s[..at], &s[at + 1..]);
    let local_ok = if local.len() >= 2 && local.starts_with('"') && local.ends_with('"') {
        is_quoted_content(&local[1..local.len() - 1])
    } else {
        is_dot_atom(local)
    };
    local_ok && is_dot_atom(domain)
}

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii()
}

fn is_dot_atom(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(|a| !a.is_empty() && a.chars().all(is_atext))
}

fn is_quoted_content(s: &str) -> bool {
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.next().is_none() => return false,
            '"' => return false,
            c if c.is_control() && c != '\t' => return false,
            _ => {}
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graceful_normalization_matches_kratos_examples() {
        assert_eq!(normalize_identifier("  FOO@ory.sh ", None), "foo@ory.sh");
        assert_eq!(normalize_identifier("FÖÖ@ory.sh", None), "föö@ory.sh");
        assert_eq!(normalize_identifier("Foo🥳🖐baR", None), "foo🥳🖐bar");
        assert_eq!(normalize_identifier("alice\u{200b}Smith", None), "alicesmith");
        assert_eq!(normalize_identifier("+49 176 671 11 638", None), "+4917667111638");
        assert_eq!(normalize_identifier("ＡＢＣ", None), "abc");
        assert_eq!(
            normalize_identifier("+49 176 671 11 638", Some("tel")),
            "+4917667111638"
        );
        assert_eq!(
            normalize_identifier("＋４９ 176 671 11 638", Some("sms")),
            "+4917667111638"
        );
        assert_eq!(normalize_identifier("not a phone", Some("tel")), "not a phone");
        assert_eq!(
            normalize_identifier("User@Example.COM", Some("email")),
            "user@example.com"
        );
    }

    #[test]
    fn shortcuts_agree_with_the_full_normalization() {
        let full_fold = |v: &str| -> String {
            let lowered: String = v.nfkc().collect::<String>().to_lowercase();
            lowered.nfkc().collect()
        };
        let full_phone = |v: &str| {
            phonenumber::parse(None, v)
                .ok()
                .filter(phonenumber::is_valid)
                .map(|n| n.format().mode(phonenumber::Mode::E164).to_string())
        };
        let inputs = [
            "User@Example.COM",
            "import00000001@example.org",
            "alice+tag@example.org",
            "+49 176 671 11 638",
            "\u{FF0B}49 176 671 11 638",
            "03-331-6005;phone-context=64",
            "tel:03-331-6005;phone-context=+64",
            "0049 176 671 11 638",
            "4917667111638",
            "foo@+4917667111638",
            "MiXeD 123 ~!#$%^&*()",
        ];
        for v in inputs {
            assert_eq!(fold(v), full_fold(v), "{v:?}");
            assert_eq!(parse_phone_e164(v), full_phone(v), "{v:?}");
        }
        assert_eq!(
            parse_phone_e164("03-331-6005;phone-context=64").as_deref(),
            Some("+6433316005")
        );
    }

    #[test]
    fn strict_addresses() {
        assert_eq!(normalize_address("FOO@ory.sh", "email").unwrap(), "foo@ory.sh");
        assert!(normalize_address("not-an-email", "email").is_err());
        assert!(normalize_address("foo\u{200b}@ory.sh", "email").is_err());
        assert_eq!(
            normalize_address("+1 415 555 2671", "sms").unwrap(),
            "+14155552671"
        );
        assert!(normalize_address("12345", "sms").is_err());
    }

    #[test]
    fn formats() {
        assert!(is_valid_email("foo@ory.sh"));
        assert!(is_valid_email("foo.bar+baz@sub.example.com"));
        assert!(is_valid_email("\"quoted local\"@example.com"));
        assert!(!is_valid_email("not-an-email"));
        assert!(!is_valid_email("foo@bar@baz"));
        assert!(!is_valid_email("foo..bar@example.com"));
        assert!(!is_valid_email("foo@exa_mple.com"));
        assert!(!is_valid_email("Foo <foo@example.com>"));
        assert!(!is_valid_email(&format!("{}@example.com", "a".repeat(65))));
        assert!(is_valid_phone("+4917667111638"));
        assert!(is_valid_phone("+1 415 555 2671"));
        assert!(!is_valid_phone("4155552671"));
        assert!(!is_valid_phone("+1"));
        assert!(is_loose_email("foo.@docomo.ne.jp"));
        assert!(!is_loose_email("foo bar@example.com"));
    }
}
