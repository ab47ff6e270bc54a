//! Property tests for identity-schema validation: arbitrary, deep and mutated traits against Kratos'
//! example schemas and against recursive schemas, and arbitrary or mutated schema documents. Every
//! case ends in a result, never a panic or a stack overflow. Cases are bounded so `cargo test` stays
//! fast.

use std::path::PathBuf;

use proptest::prelude::*;
use sallyport_schema::IdentitySchema;
use serde_json::{Value, json};

const MAX_TRAITS_DEPTH: usize = 64;

fn example(name: &str) -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/identity-schemas")
        .join(format!("{name}.schema.json"));
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn compiled(name: &str) -> IdentitySchema {
    IdentitySchema::from_value(name, "file:///x", example(name)).unwrap()
}

/// A schema whose traits may nest without end: every object property is the schema again.
fn recursive_schema() -> IdentitySchema {
    let raw = json!({
        "$id": "https://example.org/recursive.schema.json",
        "$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": {"node": {"type": ["object", "array", "string", "number", "boolean", "null"],
            "additionalProperties": {"$ref": "#/definitions/node"},
            "items": {"$ref": "#/definitions/node"}}},
        "type": "object",
        "properties": {"traits": {"type": "object", "properties": {
            "email": {"type": "string", "format": "email", "ory.sh/kratos": {"credentials": {"password": {"identifier": true}}}},
            "tree": {"$ref": "#/definitions/node"}
        }}}
    });
    IdentitySchema::from_value("recursive", "file:///recursive", raw).unwrap()
}

fn nested(levels: usize, array: bool) -> Value {
    (0..levels).fold(json!("leaf"), |acc, _| {
        if array { json!([acc]) } else { json!({ "a": acc }) }
    })
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,16}".prop_map(Value::from),
        "[a-z0-9.+]{1,8}@[a-z]{1,8}\\.[a-z]{2,3}".prop_map(Value::from),
        "\\+[0-9]{6,14}".prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 48, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("email|phone|username|name|tos|[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const EXAMPLES: &[&str] = &[
    "all-strategies",
    "code-email-tos",
    "email-password",
    "passkey",
    "phone-password",
    "username-password",
];

#[test]
fn thousand_level_traits_are_refused_and_the_limit_is_kept() {
    let s = recursive_schema();
    for array in [false, true] {
        let at = json!({"email": "a@example.org", "tree": nested(MAX_TRAITS_DEPTH - 1, array)});
        assert!(
            s.validate_traits(&at).is_ok(),
            "{MAX_TRAITS_DEPTH} levels validate"
        );
        let over = json!({"email": "a@example.org", "tree": nested(MAX_TRAITS_DEPTH, array)});
        assert!(s.validate_traits(&over).is_err());
        let far = json!({"email": "a@example.org", "tree": nested(1_000, array)});
        assert!(s.validate_traits(&far).is_err());
    }
}

#[test]
fn long_ref_chains_and_ref_cycles_load_or_fail_cleanly() {
    let n = 5_000;
    let mut defs = serde_json::Map::new();
    for i in 0..n {
        defs.insert(
            format!("d{i}"),
            json!({"$ref": format!("#/definitions/d{}", i + 1)}),
        );
    }
    defs.insert(format!("d{n}"), json!({"type": "string"}));
    let chain = json!({"definitions": defs, "type": "object",
        "properties": {"traits": {"type": "object", "properties": {"x": {"$ref": "#/definitions/d0"}}}}});
    let e = IdentitySchema::from_value("chain", "file:///chain", chain)
        .err()
        .unwrap();
    assert!(e.to_string().contains("successive $refs"), "{e}");
    let mut defs = serde_json::Map::new();
    for i in 0..n {
        defs.insert(
            format!("d{i}"),
            json!({"type": "object", "properties": {"x": {"$ref": format!("#/definitions/d{}", i + 1)}}}),
        );
    }
    defs.insert(format!("d{n}"), json!({"type": "string"}));
    let nested_chain = json!({"definitions": defs, "type": "object",
        "properties": {"traits": {"$ref": "#/definitions/d0"}}});
    if let Ok(s) = IdentitySchema::from_value("nested", "file:///nested", nested_chain) {
        let along = (0..MAX_TRAITS_DEPTH - 1).fold(json!("leaf"), |acc, _| json!({ "x": acc }));
        let _ = s.validate_traits(&along);
        let _ = s.trait_nodes(sallyport_core::ui::Group::Default, None);
    }
    let cycle = json!({"definitions": {"a": {"$ref": "#/definitions/b"}, "b": {"$ref": "#/definitions/a"}},
        "type": "object", "properties": {"traits": {"$ref": "#/definitions/a"}}});
    assert!(IdentitySchema::from_value("cycle", "file:///cycle", cycle).is_err());
}

fn mutate(base: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut out = base.to_vec();
    for &(pos, kind, byte) in edits {
        if out.is_empty() {
            out.push(byte);
            continue;
        }
        let at = pos % out.len();
        match kind % 3 {
            0 => out[at] = byte,
            1 => out.insert(at, byte),
            _ => {
                out.remove(at);
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_traits_validate_or_fail_cleanly(traits in arb_json(), which in 0..EXAMPLES.len()) {
        let s = compiled(EXAMPLES[which]);
        let _ = s.validate_traits(&traits);
        let _ = s.trait_nodes(sallyport_core::ui::Group::Default, Some(&traits));
    }

    #[test]
    fn deep_traits_past_the_limit_are_always_refused(levels in 0usize..200, array in any::<bool>(), leaf in arb_json()) {
        let s = recursive_schema();
        let tree = (0..levels).fold(leaf, |acc, _| if array { json!([acc]) } else { json!({ "a": acc }) });
        let traits = json!({"email": "a@example.org", "tree": tree});
        let result = s.validate_traits(&traits);
        if depth(&traits) > MAX_TRAITS_DEPTH {
            prop_assert!(result.is_err());
        }
    }

    #[test]
    fn mutated_traits_validate_or_fail_cleanly(
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..16),
        which in 0..EXAMPLES.len(),
    ) {
        let base = br#"{"email":"ann@example.org","phone":"+4915112345678","username":"ann","name":{"first":"Ann","last":"Lee"},"tos":true}"#;
        if let Ok(traits) = serde_json::from_slice::<Value>(&mutate(base, &edits)) {
            let _ = compiled(EXAMPLES[which]).validate_traits(&traits);
        }
    }

    #[test]
    fn mutated_schemas_load_or_fail_cleanly(
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..16),
        which in 0..EXAMPLES.len(),
        traits in arb_json(),
    ) {
        let base = serde_json::to_vec(&example(EXAMPLES[which])).unwrap();
        if let Ok(raw) = serde_json::from_slice::<Value>(&mutate(&base, &edits))
            && let Ok(s) = IdentitySchema::from_value("m", "file:///m", raw)
        {
            let _ = s.validate_traits(&traits);
            let _ = s.trait_nodes(sallyport_core::ui::Group::Default, None);
        }
    }

    #[test]
    fn arbitrary_schema_documents_load_or_fail_cleanly(raw in arb_json()) {
        let _ = IdentitySchema::from_value("a", "file:///a", raw);
    }
}
