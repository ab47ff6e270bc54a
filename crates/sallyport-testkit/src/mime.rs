//! Just enough MIME to read what an SMTP client sent: header unfolding, RFC 2047 encoded words,
//! quoted-printable / base64 bodies and multipart traversal.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Splits a raw message (or MIME part) into its header section and body.
pub(crate) fn split_message(raw: &str) -> (&str, &str) {
    if let Some(i) = raw.find("\r\n\r\n") {
        return (&raw[..i], &raw[i + 4..]);
    }
    if let Some(i) = raw.find("\n\n") {
        return (&raw[..i], &raw[i + 2..]);
    }
    // Only headers, or only a body.
    if raw.lines().next().is_some_and(|l| l.contains(':')) {
        (raw, "")
    } else {
        ("", raw)
    }
}

/// Parses a header section into `(name, raw value)` pairs, unfolding continuation lines. Values are
/// left encoded (see [`decode_words`]).
pub(crate) fn parse_headers(section: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in section.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim_start());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            out.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    out
}

pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Decodes RFC 2047 encoded words (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`); whitespace between two
/// adjacent encoded words is dropped as the RFC says.
pub(crate) fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut last_was_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, after) = rest.split_at(start);
        let Some((word, tail)) = parse_encoded_word(after) else {
            out.push_str(before);
            out.push_str("=?");
            rest = &after[2..];
            last_was_word = false;
            continue;
        };
        if !(last_was_word && before.chars().all(char::is_whitespace)) {
            out.push_str(before);
        }
        out.push_str(&word);
        rest = tail;
        last_was_word = true;
    }
    out.push_str(rest);
    out
}

fn parse_encoded_word(s: &str) -> Option<(String, &str)> {
    let inner = s.strip_prefix("=?")?;
    let (_charset, inner) = inner.split_once('?')?;
    let (enc, inner) = inner.split_once('?')?;
    let end = inner.find("?=")?;
    let text = &inner[..end];
    let tail = &inner[end + 2..];
    let bytes = match enc {
        "b" | "B" => STANDARD.decode(text.trim()).ok()?,
        "q" | "Q" => decode_qp_bytes(&text.replace('_', " "), false),
        _ => return None,
    };
    Some((String::from_utf8_lossy(&bytes).into_owned(), tail))
}

/// Quoted-printable decoding; `soft_breaks` handles `=` at line end (bodies, not headers).
fn decode_qp_bytes(s: &str, soft_breaks: bool) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'=' {
            if soft_breaks && bytes.get(i + 1) == Some(&b'\r') && bytes.get(i + 2) == Some(&b'\n') {
                i += 3;
                continue;
            }
            if soft_breaks && bytes.get(i + 1) == Some(&b'\n') {
                i += 2;
                continue;
            }
            if let (Some(h), Some(l)) = (bytes.get(i + 1), bytes.get(i + 2))
                && let (Some(h), Some(l)) = ((*h as char).to_digit(16), (*l as char).to_digit(16))
            {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

/// Decodes a part body according to its `Content-Transfer-Encoding`; line endings become `\n`.
pub(crate) fn decode_body(encoding: Option<&str>, body: &str) -> String {
    let bytes = match encoding.map(|e| e.trim().to_ascii_lowercase()) {
        Some(e) if e == "base64" => {
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            STANDARD
                .decode(compact)
                .unwrap_or_else(|_| body.as_bytes().to_vec())
        }
        Some(e) if e == "quoted-printable" => decode_qp_bytes(body, true),
        _ => body.as_bytes().to_vec(),
    };
    String::from_utf8_lossy(&bytes).replace("\r\n", "\n")
}

/// A header parameter such as `boundary` in `multipart/alternative; boundary="x"`.
pub(crate) fn header_param(value: &str, param: &str) -> Option<String> {
    for piece in value.split(';').skip(1) {
        let (k, v) = piece.split_once('=')?;
        if k.trim().eq_ignore_ascii_case(param) {
            return Some(v.trim().trim_matches('"').to_string());
        }
    }
    None
}

/// Text and HTML bodies found in a message or part (first `text/plain`, first `text/html`).
#[derive(Default)]
pub(crate) struct Bodies {
    pub text: Option<String>,
    pub html: Option<String>,
}

pub(crate) fn extract_bodies(headers: &[(String, String)], body: &str, out: &mut Bodies) {
    let content_type = header(headers, "Content-Type").unwrap_or("text/plain");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime.starts_with("multipart/") {
        let Some(boundary) = header_param(content_type, "boundary") else {
            return;
        };
        for part in split_multipart(body, &boundary) {
            let (h, b) = split_message(part);
            let part_headers = parse_headers(h);
            extract_bodies(&part_headers, b, out);
        }
        return;
    }
    let decoded = decode_body(header(headers, "Content-Transfer-Encoding"), body);
    if mime == "text/html" {
        if out.html.is_none() {
            out.html = Some(decoded);
        }
    } else if out.text.is_none() {
        out.text = Some(decoded);
    }
}

fn split_multipart<'a>(body: &'a str, boundary: &str) -> Vec<&'a str> {
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut chunks = body.split(delimiter.as_str());
    chunks.next(); // preamble
    for chunk in chunks {
        if chunk.starts_with("--") {
            break; // closing delimiter
        }
        let chunk = chunk
            .strip_prefix("\r\n")
            .or_else(|| chunk.strip_prefix('\n'))
            .unwrap_or(chunk);
        let chunk = chunk
            .strip_suffix("\r\n")
            .or_else(|| chunk.strip_suffix('\n'))
            .unwrap_or(chunk);
        parts.push(chunk);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_words() {
        assert_eq!(decode_words("=?utf-8?b?SGVsbG8gV8O2cmxk?="), "Hello Wörld");
        assert_eq!(decode_words("=?UTF-8?Q?a_b=C3=B6?= =?UTF-8?Q?c?="), "a böc");
        assert_eq!(decode_words("plain =? text"), "plain =? text");
    }

    #[test]
    fn quoted_printable_soft_breaks() {
        assert_eq!(
            decode_body(Some("quoted-printable"), "a=3Db=\r\nc\r\nd"),
            "a=bc\nd"
        );
    }

    #[test]
    fn multipart_alternative() {
        let raw = "Content-Type: multipart/alternative; boundary=\"XX\"\r\n\r\n--XX\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--XX\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n--XX--\r\n";
        let (h, b) = split_message(raw);
        let headers = parse_headers(h);
        let mut bodies = Bodies::default();
        extract_bodies(&headers, b, &mut bodies);
        assert_eq!(bodies.text.as_deref(), Some("hello"));
        assert_eq!(bodies.html.as_deref(), Some("<p>hi</p>"));
    }

    #[test]
    fn folded_headers() {
        let headers = parse_headers("Subject: a\r\n b\r\nTo: x@y.z");
        assert_eq!(header(&headers, "subject"), Some("a b"));
        assert_eq!(header(&headers, "TO"), Some("x@y.z"));
    }
}
