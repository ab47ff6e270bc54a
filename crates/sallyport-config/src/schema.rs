//! The embedded Kratos config JSON schema: validation, defaults and the key paths used for env overrides.

use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::path::Seg;

/// Kratos' `embedx/config.schema.json`, verbatim (interface data, Apache-2.0, see `schema/NOTICE.md`).
pub const KRATOS_CONFIG_SCHEMA: &str = include_str!("../schema/kratos-config.schema.json");

/// Kratos references its tracing block as `ory://tracing-config`, which lives in another repository.
/// We must not fetch it, so it is replaced by this local, permissive description of the same keys.
const TRACING_REF: &str = "ory://tracing-config";
const TRACING_SCHEMA: &str = r#"{
  "type": "object",
  "properties": {
    "provider": {"type": "string"},
    "service_name": {"type": "string"},
    "deployment_environment": {"type": "string"},
    "providers": {
      "type": "object",
      "properties": {
        "jaeger": {"type": "object", "properties": {
          "local_agent_address": {"type": "string"},
          "sampling": {"type": "object", "properties": {
            "server_url": {"type": "string"}, "trace_id_ratio": {"type": "number"}}}}},
        "zipkin": {"type": "object", "properties": {
          "server_url": {"type": "string"},
          "sampling": {"type": "object", "properties": {"sampling_ratio": {"type": "number"}}}}},
        "otlp": {"type": "object", "properties": {
          "server_url": {"type": "string"},
          "insecure": {"type": "boolean"},
          "authorization_header": {"type": "string"},
          "sampling": {"type": "object", "properties": {"sampling_ratio": {"type": "number"}}}}}
      }
    }
  }
}"#;

/// The schema as Sallyport validates it (the remote tracing `$ref` inlined).
pub(crate) fn schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let mut schema: Value = serde_json::from_str(KRATOS_CONFIG_SCHEMA).expect("embedded schema is JSON");
        let tracing: Value = serde_json::from_str(TRACING_SCHEMA).expect("tracing schema is JSON");
        replace_ref(&mut schema, TRACING_REF, &tracing);
        schema
    })
}

fn replace_ref(node: &mut Value, reference: &str, with: &Value) {
    match node {
        Value::Object(map) => {
            if map.get("$ref").and_then(Value::as_str) == Some(reference) {
                *node = with.clone();
                return;
            }
            map.values_mut().for_each(|v| replace_ref(v, reference, with));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| replace_ref(v, reference, with)),
        _ => {}
    }
}

/// The compiled validator (draft-07, formats asserted like Kratos' validator does, no network).
pub(crate) fn validator() -> Result<&'static jsonschema::Validator, String> {
    static VALIDATOR: OnceLock<Result<jsonschema::Validator, String>> = OnceLock::new();
    VALIDATOR
        .get_or_init(|| {
            jsonschema::draft7::options()
                .should_validate_formats(true)
                .offline()
                .build(schema())
                .map_err(|e| format!("the embedded Kratos config schema does not compile: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// How an environment variable's text is turned into a JSON value for a schema path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TypeHint {
    String,
    Integer,
    Number,
    Boolean,
    Array(Box<TypeHint>),
    Object,
    Any,
}

/// One key path of the schema; array items are `Seg::Index(0)` placeholders that match any index.
#[derive(Debug, Clone)]
pub(crate) struct SchemaPath {
    pub segs: Vec<Seg>,
    pub hint: TypeHint,
}

/// Every key path the schema describes (through local `$ref`s, combinators and array items).
pub(crate) fn paths() -> &'static [SchemaPath] {
    static PATHS: OnceLock<Vec<SchemaPath>> = OnceLock::new();
    PATHS.get_or_init(|| {
        let root = schema();
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        walk_paths(root, root, &mut Vec::new(), &mut Vec::new(), &mut out, &mut seen);
        out
    })
}

fn resolve<'a>(root: &'a Value, node: &'a Value, stack: &mut Vec<&'a str>) -> Option<&'a Value> {
    let mut node = node;
    for _ in 0..16 {
        match node.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let pointer = r.strip_prefix('#')?;
                if stack.contains(&r) {
                    return None;
                }
                stack.push(r);
                node = root.pointer(pointer)?;
            }
            None => return Some(node),
        }
    }
    None
}

/// The node itself plus the sub-schemas of its combinators, each resolved.
fn facets<'a>(root: &'a Value, node: &'a Value, stack: &mut Vec<&'a str>, out: &mut Vec<&'a Value>) {
    let Some(node) = resolve(root, node, stack) else {
        return;
    };
    if out.len() > 64 {
        return;
    }
    out.push(node);
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(subs) = node.get(key).and_then(Value::as_array) {
            for sub in subs {
                facets(root, sub, stack, out);
            }
        }
    }
    for key in ["then", "else"] {
        if let Some(sub) = node.get(key) {
            facets(root, sub, stack, out);
        }
    }
}

fn hint_of<'a>(root: &'a Value, nodes: &[&'a Value], stack: &mut Vec<&'a str>) -> TypeHint {
    for node in nodes {
        let ty = match node.get("type") {
            Some(Value::String(t)) => Some(t.as_str()),
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null"),
            _ => None,
        };
        match ty {
            Some("string") => return TypeHint::String,
            Some("integer") => return TypeHint::Integer,
            Some("number") => return TypeHint::Number,
            Some("boolean") => return TypeHint::Boolean,
            Some("object") => return TypeHint::Object,
            Some("array") => {
                let mut items = Vec::new();
                if let Some(item) = node.get("items").filter(|i| i.is_object()) {
                    facets(root, item, &mut stack.clone(), &mut items);
                }
                return TypeHint::Array(Box::new(hint_of(root, &items, stack)));
            }
            _ => {}
        }
    }
    let example = nodes.iter().find_map(|n| {
        n.get("const")
            .or_else(|| n.get("enum").and_then(Value::as_array).and_then(|e| e.first()))
    });
    match example {
        Some(Value::String(_)) => TypeHint::String,
        Some(Value::Bool(_)) => TypeHint::Boolean,
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => TypeHint::Integer,
        Some(Value::Number(_)) => TypeHint::Number,
        _ if nodes.iter().any(|n| n.get("properties").is_some()) => TypeHint::Object,
        _ => TypeHint::Any,
    }
}

fn walk_paths<'a>(
    root: &'a Value,
    node: &'a Value,
    path: &mut Vec<Seg>,
    stack: &mut Vec<&'a str>,
    out: &mut Vec<SchemaPath>,
    seen: &mut std::collections::HashSet<Vec<Seg>>,
) {
    if path.len() > 24 {
        return;
    }
    let depth = stack.len();
    let mut nodes = Vec::new();
    facets(root, node, stack, &mut nodes);
    if !path.is_empty() && seen.insert(path.clone()) {
        out.push(SchemaPath {
            segs: path.clone(),
            hint: hint_of(root, &nodes, stack),
        });
    }
    let mut children: Vec<(&str, &Value)> = Vec::new();
    for n in &nodes {
        if let Some(props) = n.get("properties").and_then(Value::as_object) {
            for (k, v) in props {
                if !children.iter().any(|(ck, _)| *ck == k) {
                    children.push((k, v));
                }
            }
        }
    }
    for (key, child) in children {
        path.push(Seg::Key(key.to_owned()));
        walk_paths(root, child, path, stack, out, seen);
        path.pop();
    }
    if let Some(items) = nodes
        .iter()
        .find_map(|n| n.get("items").filter(|i| i.is_object()))
    {
        path.push(Seg::Index(0));
        walk_paths(root, items, path, stack, out, seen);
        path.pop();
    }
    stack.truncate(depth);
}

/// The schema's `default` values as one document (objects only; nothing inside arrays or combinators).
pub(crate) fn defaults() -> &'static Value {
    static DEFAULTS: OnceLock<Value> = OnceLock::new();
    DEFAULTS.get_or_init(|| {
        let root = schema();
        let mut doc = Value::Object(Map::new());
        collect_defaults(root, root, &mut Vec::new(), &mut doc, &mut Vec::new());
        doc
    })
}

fn collect_defaults<'a>(
    root: &'a Value,
    node: &'a Value,
    path: &mut Vec<Seg>,
    doc: &mut Value,
    stack: &mut Vec<&'a str>,
) {
    let depth = stack.len();
    let Some(node) = resolve(root, node, stack) else {
        return;
    };
    if let Some(default) = node.get("default")
        && !path.is_empty()
        && crate::path::get(doc, path).is_none()
    {
        crate::path::set(doc, path, default.clone());
    }
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        for (key, child) in props {
            path.push(Seg::Key(key.clone()));
            collect_defaults(root, child, path, doc, stack);
            path.pop();
        }
    }
    stack.truncate(depth);
}

/// Direct child keys the schema allows at `path` (for "did you mean" hints).
pub(crate) fn allowed_children(path: &[Seg]) -> Vec<&'static str> {
    paths()
        .iter()
        .filter(|p| {
            p.segs.len() == path.len() + 1 && crate::path::matches_pattern(&p.segs[..path.len()], path)
        })
        .filter_map(|p| match p.segs.last() {
            Some(Seg::Key(k)) => Some(k.as_str()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(dotted: &str) -> Option<&'static SchemaPath> {
        paths().iter().find(|p| crate::path::dotted(&p.segs) == dotted)
    }

    #[test]
    fn validator_compiles_offline() {
        validator().unwrap();
    }

    #[test]
    fn lists_paths_with_types() {
        assert_eq!(find("dsn").unwrap().hint, TypeHint::String);
        assert_eq!(find("serve.public.port").unwrap().hint, TypeHint::Integer);
        assert_eq!(
            find("selfservice.methods.password.enabled").unwrap().hint,
            TypeHint::Boolean
        );
        assert_eq!(
            find("secrets.cookie").unwrap().hint,
            TypeHint::Array(Box::new(TypeHint::String))
        );
        assert_eq!(
            find("identity.schemas").unwrap().hint,
            TypeHint::Array(Box::new(TypeHint::Object))
        );
        assert_eq!(find("identity.schemas.0.url").unwrap().hint, TypeHint::String);
        assert_eq!(
            find("selfservice.methods.oidc.config.providers.0.client_id")
                .unwrap()
                .hint,
            TypeHint::String
        );
        assert_eq!(
            find("selfservice.flows.login.after.password.hooks.0.hook")
                .unwrap()
                .hint,
            TypeHint::String
        );
        assert_eq!(find("cookies.secure").unwrap().hint, TypeHint::String);
        assert_eq!(find("tracing.provider").unwrap().hint, TypeHint::String);
        assert_eq!(find("courier.smtp.headers").unwrap().hint, TypeHint::Object);
    }

    #[test]
    fn collects_defaults() {
        let d = defaults();
        assert_eq!(d.pointer("/serve/public/port"), Some(&Value::from(4433)));
        assert_eq!(d.pointer("/serve/admin/port"), Some(&Value::from(4434)));
        assert_eq!(d.pointer("/session/lifespan"), Some(&Value::from("24h")));
        assert_eq!(d.pointer("/hashers/algorithm"), Some(&Value::from("bcrypt")));
        assert_eq!(
            d.pointer("/selfservice/methods/password/enabled"),
            Some(&Value::Bool(true))
        );
        assert_eq!(
            d.pointer("/selfservice/methods/code/enabled"),
            Some(&Value::Bool(true))
        );
        assert_eq!(
            d.pointer("/selfservice/methods/totp/enabled"),
            Some(&Value::Bool(false))
        );
        assert_eq!(
            d.pointer("/selfservice/flows/registration/style"),
            Some(&Value::from("profile_first"))
        );
    }
}
