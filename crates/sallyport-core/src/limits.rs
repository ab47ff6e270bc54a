//! Bounds on what a client may send, checked without recursion so that checking can never be the
//! thing that overflows the stack. `docs/input-limits.md` explains each one.
//!
//! Depth counts containers: `"x"` is 0 levels deep, `{}` 1, `{"a":[{}]}` 3. A form field
//! `traits.name.first` becomes `{"traits":{"name":{"first":…}}}`, 3 levels.

use serde_json::Value;

/// The deepest JSON document (or dotted form field) a request may carry, and the deepest document
/// Sallyport stores. Identity schemas nest traits a handful of levels; 64 leaves ample room while
/// every recursive walk over accepted data (serializing, dropping, schema validation, Jsonnet) stays
/// far from the end of a 2 MiB worker stack, and while every stored document stays well below the
/// 128 levels serde_json accepts when it is read back.
pub const MAX_NESTING_DEPTH: usize = 64;

/// A JSON patch may copy at most this many JSON values (counted recursively) in one request: copying
/// a document into itself doubles it, so a short patch could otherwise build gigabytes.
pub const MAX_PATCH_COPIED_VALUES: usize = 100_000;

/// The longest value Sallyport stores in a uniquely indexed column (external ids, credential
/// identifiers, verifiable and recovery addresses). PostgreSQL refuses a btree entry over 2,704 bytes
/// (after compression); 1,024 bytes keeps every such value well inside that on both backends, and is
/// four times the longest valid email address.
pub const MAX_INDEXED_VALUE_BYTES: usize = 1024;

/// Why `identity` cannot be stored alike on every backend, if it cannot: a uniquely indexed value
/// longer than [`MAX_INDEXED_VALUE_BYTES`]. The answer reads as "The request contains …".
pub fn unstorable_identity(identity: &crate::identity::Identity) -> Option<String> {
    let too_long = |what: &str, v: &str| {
        (v.len() > MAX_INDEXED_VALUE_BYTES)
            .then(|| format!("{what} longer than {MAX_INDEXED_VALUE_BYTES} bytes"))
    };
    if let Some(e) = identity
        .external_id
        .as_deref()
        .and_then(|v| too_long("an external_id", v))
    {
        return Some(e);
    }
    for c in identity.credentials.values() {
        if let Some(e) = c
            .identifiers
            .iter()
            .find_map(|v| too_long("a credential identifier", v))
        {
            return Some(e);
        }
    }
    let addresses = identity
        .verifiable_addresses
        .iter()
        .map(|a| a.value.as_str())
        .chain(identity.recovery_addresses.iter().map(|a| a.value.as_str()));
    for v in addresses {
        if let Some(e) = too_long("an address", v) {
            return Some(e);
        }
    }
    None
}

/// What a byte-level look at a JSON text found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JsonScan {
    /// The deepest nesting seen, capped at `MAX_NESTING_DEPTH + 1` (the scan stops there).
    pub depth: usize,
    /// A `\u0000` escape inside a string (a raw NUL byte is not valid JSON anyway).
    pub has_nul: bool,
}

impl JsonScan {
    pub fn too_deep(&self) -> bool {
        self.depth > MAX_NESTING_DEPTH
    }
}

/// Scans a JSON text for nesting depth and NUL escapes before it is parsed. It does not validate
/// the text; the parser does that afterwards.
pub fn scan_json(bytes: &[u8]) -> JsonScan {
    let mut scan = JsonScan::default();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => {
                    if bytes.get(i + 1) == Some(&b'u') && bytes.get(i + 2..i + 6) == Some(b"0000") {
                        scan.has_nul = true;
                    }
                    i += 1;
                }
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => {
                    depth += 1;
                    if depth > scan.depth {
                        scan.depth = depth;
                        if scan.too_deep() {
                            return scan;
                        }
                    }
                }
                b'}' | b']' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        i += 1;
    }
    scan
}

/// Nesting depth of a value, computed without recursion.
pub fn depth(v: &Value) -> usize {
    let mut max = 0;
    let mut stack = vec![(v, 0usize)];
    while let Some((v, above)) = stack.pop() {
        match v {
            Value::Array(items) => {
                max = max.max(above + 1);
                stack.extend(items.iter().map(|i| (i, above + 1)));
            }
            Value::Object(map) => {
                max = max.max(above + 1);
                stack.extend(map.values().map(|i| (i, above + 1)));
            }
            _ => {}
        }
    }
    max
}

/// The number of JSON values in `v` (itself included), counting stops once past `limit`.
pub fn count_values(v: &Value, limit: usize) -> usize {
    let mut n = 0;
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        n += 1;
        if n > limit {
            return n;
        }
        match v {
            Value::Array(items) => stack.extend(items.iter()),
            Value::Object(map) => stack.extend(map.values()),
            _ => {}
        }
    }
    n
}

/// Whether any string or object key in `v` contains U+0000.
pub fn contains_nul(v: &Value) -> bool {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) if s.contains('\0') => return true,
            Value::Array(items) => stack.extend(items.iter()),
            Value::Object(map) => {
                if map.keys().any(|k| k.contains('\0')) {
                    return true;
                }
                stack.extend(map.values());
            }
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn depths_agree_between_text_and_value() {
        for v in [json!("x"), json!({}), json!({"a": [1, {"b": []}]}), json!([[[]]])] {
            let text = serde_json::to_vec(&v).unwrap();
            assert_eq!(scan_json(&text).depth, depth(&v), "{v}");
        }
        assert_eq!(depth(&json!({"a": [1, {"b": []}]})), 4);
    }

    #[test]
    fn brackets_and_escapes_inside_strings_do_not_count() {
        let s = scan_json(br#"{"a":"[[[{{{\"\\u0000","b":"\\\\u0000"}"#);
        assert_eq!(s.depth, 1);
        assert!(
            !s.has_nul,
            "an escaped backslash followed by u0000 is text, not NUL"
        );
        assert!(scan_json(br#"{"a":"x\u0000"}"#).has_nul);
        assert_eq!(
            scan_json(br#"{"a\u0000":1}"#),
            JsonScan {
                depth: 1,
                has_nul: true
            }
        );
    }

    #[test]
    fn the_scan_stops_past_the_limit() {
        let deep = "[".repeat(1_000_000);
        let s = scan_json(deep.as_bytes());
        assert_eq!(s.depth, MAX_NESTING_DEPTH + 1);
        assert!(s.too_deep());
        let ok = format!(
            "{}{}",
            "[".repeat(MAX_NESTING_DEPTH),
            "]".repeat(MAX_NESTING_DEPTH)
        );
        assert!(!scan_json(ok.as_bytes()).too_deep());
    }

    #[test]
    fn nul_anywhere_is_found() {
        assert!(contains_nul(&json!({"a": [{"b": "x\u{0}"}]})));
        assert!(contains_nul(&json!({"a\u{0}": 1})));
        assert!(!contains_nul(&json!({"a": ["\\u0000"]})));
    }

    #[test]
    fn counting_does_not_recurse() {
        let mut v = json!(1);
        for _ in 0..200_000 {
            v = Value::Array(vec![v]);
        }
        assert_eq!(depth(&v), 200_000);
        assert_eq!(count_values(&v, 10), 11);
        // serde_json's own drop recurses once per level; unwind it level by level.
        while let Value::Array(mut items) = v {
            v = items.pop().unwrap();
        }
    }
}
