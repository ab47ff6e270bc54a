//! Checks a schema must pass before it is used: the identity meta-schema
//! (`embedx/identity_meta.schema.json`, which includes the `ory.sh/kratos` extension schema)
//! and Kratos' structural pre-validation (`schema/prevalidate.go`: no pure `$ref` cycles).

use std::collections::HashMap;
use std::sync::OnceLock;

use jsonschema::{Retrieve, Uri, Validator};
use serde_json::Value;

use crate::walk::Doc;

pub(crate) const IDENTITY_META: &str = include_str!("../data/identity_meta.schema.json");
pub(crate) const IDENTITY_EXTENSION: &str = include_str!("../data/identity_extension.schema.json");

/// Serves the extension schema the meta-schema refers to; nothing else is fetched.
struct EmbeddedOnly;

impl Retrieve for EmbeddedOnly {
    fn retrieve(&self, uri: &Uri<String>) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        if uri.as_str().trim_end_matches('#') == "ory://identity-extension" {
            return Ok(serde_json::from_str(IDENTITY_EXTENSION)?);
        }
        Err(format!("refusing to retrieve {uri}: only embedded schemas are available").into())
    }
}

fn meta_validator() -> &'static Validator {
    static META: OnceLock<Validator> = OnceLock::new();
    META.get_or_init(|| {
        let meta: Value = serde_json::from_str(IDENTITY_META).expect("embedded meta-schema is JSON");
        jsonschema::options()
            .with_retriever(EmbeddedOnly)
            .should_validate_formats(false)
            .build(&meta)
            .expect("embedded identity meta-schema compiles")
    })
}

/// Validates a schema document against the identity meta-schema; the error lists the first
/// few violations with their locations.
pub(crate) fn check_identity_meta(schema: &Value) -> Result<(), String> {
    let problems: Vec<String> = meta_validator()
        .iter_errors(schema)
        .take(5)
        .map(|e| {
            let at = e.instance_path().as_str();
            let at = if at.is_empty() { "/" } else { at };
            format!("{at}: {e}")
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the schema does not satisfy the identity meta-schema (traits must be an object with properties; ory.sh/kratos must be well-formed; verification needs format email|tel|date|time|date-time|no-validate): {}",
            problems.join("; ")
        ))
    }
}

/// Keywords whose values are data, not subschemas.
const DATA_KEYWORDS: &[&str] = &["enum", "const", "default", "examples"];
/// Keywords whose values map names to subschemas (so their keys are not keywords).
const SCHEMA_MAPS: &[&str] = &[
    "properties",
    "patternProperties",
    "definitions",
    "$defs",
    "dependentSchemas",
];

/// Successive pure `$ref` hops a schema may chain. Real schemas use one or two; every hop is a level
/// of recursion when the validator is compiled, and checking chains costs their length squared.
pub(crate) const MAX_REF_CHAIN: usize = 32;

/// Rejects `$ref`s this implementation cannot follow (other documents), pure `$ref` cycles, which
/// would recurse forever during validation, and chains longer than [`MAX_REF_CHAIN`].
pub(crate) fn prevalidate(schema: &Value) -> Result<(), String> {
    let doc = Doc::new(schema);
    let mut refs: HashMap<String, String> = HashMap::new();
    let mut stack: Vec<(&Value, String, bool)> = vec![(schema, String::new(), false)];
    while let Some((node, path, is_map)) = stack.pop() {
        match node {
            Value::Object(map) => {
                if !is_map && let Some(Value::String(reference)) = map.get("$ref") {
                    match doc.local_fragment(reference) {
                        Some(fragment) => {
                            let target = if fragment == "/" { "" } else { fragment };
                            refs.insert(path.clone(), target.to_string());
                        }
                        None => {
                            return Err(format!(
                                "$ref {reference:?} at #{path} points outside the schema document; only references within the same document are supported"
                            ));
                        }
                    }
                }
                for (k, v) in map {
                    if !is_map && DATA_KEYWORDS.contains(&k.as_str()) {
                        continue;
                    }
                    let child_is_map = !is_map && SCHEMA_MAPS.contains(&k.as_str());
                    let escaped = k.replace('~', "~0").replace('/', "~1");
                    stack.push((v, format!("{path}/{escaped}"), child_is_map));
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    stack.push((v, format!("{path}/{i}"), false));
                }
            }
            _ => {}
        }
    }
    for start in refs.keys() {
        let mut chain: Vec<&str> = Vec::new();
        let mut current = start.as_str();
        loop {
            if let Some(idx) = chain.iter().position(|c| *c == current) {
                let mut cycle: Vec<String> = chain[idx..].iter().map(|p| format!("#{p}")).collect();
                cycle.push(format!("#{current}"));
                return Err(format!(
                    "identity schema rejected: self-referential $ref cycle: {}",
                    cycle.join(" → ")
                ));
            }
            chain.push(current);
            if chain.len() > MAX_REF_CHAIN {
                return Err(format!(
                    "identity schema rejected: more than {MAX_REF_CHAIN} successive $refs starting at #{start}"
                ));
            }
            match refs.get(current) {
                Some(next) => current = next.as_str(),
                None => break,
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ref_cycles_and_external_refs() {
        assert!(
            prevalidate(
                &json!({"definitions": {"a": {"$ref": "#/definitions/b"}, "b": {"$ref": "#/definitions/a"}}})
            )
            .is_err()
        );
        assert!(prevalidate(&json!({"$ref": "#"})).is_err());
        assert!(prevalidate(&json!({"properties": {"x": {"$ref": "http://192.168.178.1/"}}})).is_err());
        assert!(prevalidate(&json!({"definitions": {"n": {"type": "object", "properties": {"c": {"$ref": "#/definitions/n"}}}}})).is_ok());
        assert!(
            prevalidate(&json!({"properties": {"enum": {"type": "string", "default": {"$ref": "x"}}}}))
                .is_ok()
        );
    }

    #[test]
    fn meta_schema_rejects_bad_verification_format() {
        let bad = json!({"properties": {"traits": {"type": "object", "properties": {"email": {
            "type": "string", "format": "unknown",
            "ory.sh/kratos": {"verification": {"via": "email"}}}}}}});
        assert!(check_identity_meta(&bad).is_err());
        let unknown_key = json!({"properties": {"traits": {"type": "object", "properties": {"email": {
            "type": "string", "ory.sh/kratos": {"credentials": {"password": {"identifer": true}}}}}}}});
        assert!(check_identity_meta(&unknown_key).is_err());
        assert!(check_identity_meta(&json!({})).is_err());
        let good = json!({"properties": {"traits": {"type": "object", "properties": {"email": {
            "type": "string", "format": "email",
            "ory.sh/kratos": {"verification": {"via": "email"}}}}}}});
        check_identity_meta(&good).unwrap();
    }
}
