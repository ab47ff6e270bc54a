//! Helpers shared by the walks over a schema document: local `$ref` resolution, JSON pointers
//! and JSON types.

use serde_json::{Map, Value};

/// One schema document whose `$ref`s may point into itself (`#/definitions/...`, `#`, or the
/// document's own `$id` followed by a fragment).
#[derive(Clone, Copy)]
pub(crate) struct Doc<'a> {
    pub root: &'a Value,
    pub id: Option<&'a str>,
}

impl<'a> Doc<'a> {
    pub fn new(root: &'a Value) -> Doc<'a> {
        let id = root
            .get("$id")
            .and_then(Value::as_str)
            .map(|s| s.split('#').next().unwrap_or(s));
        Doc { root, id }
    }

    /// The fragment of a reference into this document, or `None` for an external reference.
    pub fn local_fragment<'r>(&self, reference: &'r str) -> Option<&'r str> {
        if let Some(fragment) = reference.strip_prefix('#') {
            return Some(fragment);
        }
        if reference.is_empty() {
            return Some("");
        }
        let id = self.id.filter(|id| !id.is_empty())?;
        let rest = reference.strip_prefix(id)?;
        match rest.strip_prefix('#') {
            Some(fragment) => Some(fragment),
            None if rest.is_empty() => Some(""),
            None => None,
        }
    }

    pub fn resolve(&self, reference: &str) -> Option<&'a Value> {
        let fragment = self.local_fragment(reference)?;
        pointer_get(self.root, fragment)
    }
}

/// Follows a URI-fragment JSON pointer (`/definitions/a%20b`, `` or `/`).
pub(crate) fn pointer_get<'a>(root: &'a Value, fragment: &str) -> Option<&'a Value> {
    if fragment.is_empty() || fragment == "/" {
        return Some(root);
    }
    let fragment = fragment.strip_prefix('/')?;
    let mut current = root;
    for raw in fragment.split('/') {
        let token = percent_decode(raw).replace("~1", "/").replace("~0", "~");
        current = match current {
            Value::Object(map) => map.get(&token)?,
            Value::Array(items) => items.get(token.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(current)
}

fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// The schema's `type` keyword as a list.
pub(crate) fn types(node: &Map<String, Value>) -> Vec<&str> {
    match node.get("type") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

/// ory/jsonschema's `jsonType`: numbers are always "number".
pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Whether `v` satisfies the node's `type` (no `type` matches anything).
pub(crate) fn type_matches(node: &Map<String, Value>, v: &Value) -> bool {
    let wanted = types(node);
    if wanted.is_empty() {
        return true;
    }
    let actual = json_type(v);
    wanted.iter().any(|t| {
        *t == actual || (*t == "integer" && matches!(v, Value::Number(n) if n.is_i64() || n.is_u64()))
    })
}

/// A JSON pointer segment list as Kratos' dot notation (`jsonschemax.JSONPointerToDotNotation`):
/// dots inside a segment are escaped so `a.b` stays one key.
pub(crate) fn dot_path<'s>(segments: impl IntoIterator<Item = &'s str>) -> String {
    segments
        .into_iter()
        .map(|s| s.replace('.', "\\."))
        .collect::<Vec<_>>()
        .join(".")
}

/// Nesting depth of a JSON value, computed without recursion.
pub(crate) fn depth(v: &Value) -> usize {
    let mut max = 0;
    let mut stack = vec![(v, 1usize)];
    while let Some((v, d)) = stack.pop() {
        match v {
            Value::Array(items) => {
                max = max.max(d);
                stack.extend(items.iter().map(|i| (i, d + 1)));
            }
            Value::Object(map) => {
                max = max.max(d);
                stack.extend(map.values().map(|i| (i, d + 1)));
            }
            _ => max = max.max(d.saturating_sub(1)),
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refs_and_pointers() {
        let root = json!({"$id": "https://x/s.json", "definitions": {"a b": {"x": 1}, "c/d": 2}});
        let doc = Doc::new(&root);
        assert_eq!(doc.resolve("#/definitions/a%20b"), Some(&json!({"x": 1})));
        assert_eq!(doc.resolve("#/definitions/c~1d"), Some(&json!(2)));
        assert_eq!(doc.resolve("https://x/s.json#/definitions/c~1d"), Some(&json!(2)));
        assert_eq!(doc.resolve("#"), Some(&root));
        assert_eq!(doc.resolve("other.json#/x"), None);
    }

    #[test]
    fn depths() {
        assert_eq!(depth(&json!("x")), 0);
        assert_eq!(depth(&json!({})), 1);
        assert_eq!(depth(&json!({"a": [1, {"b": []}]})), 4);
        assert_eq!(dot_path(["traits", "a.b", "0"]), "traits.a\\.b.0");
    }
}
