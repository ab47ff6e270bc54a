//! RFC 4648 base32 (standard alphabet), as used in `otpauth://` URLs.

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Encodes without padding (like pquerna/otp's `b32NoPadding`).
pub(crate) fn encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for &byte in data {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 0x1f) as usize] as char);
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 0x1f) as usize] as char);
    }
    out
}

/// Normalises a secret the way authenticator apps and pquerna/otp read it: whitespace is
/// dropped, letters are upper-cased and trailing `=` padding is removed.
pub(crate) fn normalize(secret: &str) -> String {
    secret
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect::<String>()
        .trim_end_matches('=')
        .to_owned()
}

/// Decodes a normalised secret (see [`normalize`]). Padding is optional, but the
/// length must be one that standard base32 can produce (a final group of 2, 4, 5 or 7
/// characters), as Go's decoder requires after pquerna pads the secret.
pub(crate) fn decode(normalized: &str) -> Option<Vec<u8>> {
    if !matches!(normalized.len() % 8, 0 | 2 | 4 | 5 | 7) {
        return None;
    }
    let mut out = Vec::with_capacity(normalized.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for c in normalized.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        buffer = (buffer << 5) | u32::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(encode(plain.as_bytes()), encoded);
            assert_eq!(decode(encoded).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn normalize_and_reject() {
        assert_eq!(normalize(" mzxw 6ytb oi== "), "MZXW6YTBOI");
        assert_eq!(decode("MZXW6YTB1"), None); // invalid length
        assert_eq!(decode("MZXW6YT1"), None); // invalid character
        assert_eq!(decode("NEWSECRET"), None); // 9 chars: Go refuses it too
        assert_eq!(decode("JBSWY3DPEHPK3PXP").unwrap().len(), 10);
    }
}
