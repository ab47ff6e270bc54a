//! Property tests for the body decoders and form-to-JSON expansion: arbitrary bytes, generated
//! nesting around the limit, byte-level mutations of valid bodies, NUL injection and multipart.
//! Whatever comes in, the answer is a value within the bounds or a 400, never a panic.

use axum::http::HeaderMap;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use sallyport_core::limits::{MAX_NESTING_DEPTH, contains_nul, depth};

use super::{decode, parse_json};

const TYPES: &[&str] = &[
    "application/json",
    "application/json; charset=utf-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "text/plain",
    "",
];

fn headers(ct: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    if !ct.is_empty() {
        h.insert(axum::http::header::CONTENT_TYPE, ct.parse().unwrap());
    }
    h
}

fn schema() -> Value {
    json!({"properties":{"traits":{"properties":{
        "age":{"type":"integer"},"score":{"type":"number"},"tos":{"type":"boolean"},
        "name":{"type":"object","properties":{"first":{"type":"string"}}}}}}})
}

/// The invariant every successful decode keeps.
fn within_bounds(r: &Result<Map<String, Value>, sallyport_core::error::ApiError>) -> bool {
    match r {
        Ok(m) => {
            let v = Value::Object(m.clone());
            depth(&v) <= MAX_NESTING_DEPTH && !contains_nul(&v)
        }
        Err(e) => e.code == 400,
    }
}

fn nest(leaf: Value, shape: &[bool]) -> Value {
    shape.iter().fold(
        leaf,
        |acc, array| if *array { json!([acc]) } else { json!({ "k": acc }) },
    )
}

fn mutate(base: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut out = base.to_vec();
    for &(pos, kind, byte) in edits {
        if out.is_empty() {
            out.push(byte);
            continue;
        }
        let at = pos % out.len();
        match kind % 4 {
            0 => out[at] = byte,
            1 => out.insert(at, byte),
            2 => {
                out.remove(at);
            }
            // Brackets and escapes are what the depth and NUL scans must get right.
            _ => {
                let special = b"[{\\\"u0.%";
                out.insert(at, special[byte as usize % special.len()]);
            }
        }
    }
    out
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(8, 64, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z.]{0,5}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_decode_within_bounds_or_400(
        bytes in prop::collection::vec(any::<u8>(), 0..4096),
        ct in prop::sample::select(TYPES),
    ) {
        let r = decode(&headers(ct), &bytes, Some(&schema()));
        prop_assert!(within_bounds(&r));
        if ct.starts_with("multipart/") || ct == "text/plain" {
            prop_assert!(r.is_err());
        }
    }

    #[test]
    fn json_nesting_is_refused_exactly_past_the_limit(
        shape in prop::collection::vec(any::<bool>(), 0..200),
        leaf in arb_json(),
    ) {
        let body = json!({ "method": "password", "traits": nest(leaf, &shape) });
        let text = serde_json::to_vec(&body).unwrap();
        let r = decode(&headers("application/json"), &text, None);
        prop_assert!(within_bounds(&r));
        let expected_ok = depth(&body) <= MAX_NESTING_DEPTH && !contains_nul(&body);
        prop_assert_eq!(r.is_ok(), expected_ok, "depth {}", depth(&body));
        if let Ok(m) = r {
            prop_assert_eq!(Value::Object(m), body);
        }
    }

    #[test]
    fn mutated_json_bodies_decode_within_bounds_or_400(
        value in arb_json(),
        shape in prop::collection::vec(any::<bool>(), 50..80),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..24),
    ) {
        let text = serde_json::to_vec(&json!({ "traits": nest(value, &shape) })).unwrap();
        let r = decode(&headers("application/json"), &mutate(&text, &edits), None);
        prop_assert!(within_bounds(&r));
    }

    #[test]
    fn parse_json_agrees_with_serde_within_the_bounds(value in arb_json()) {
        let text = serde_json::to_vec(&value).unwrap();
        let ours = parse_json::<Value>(&text);
        if contains_nul(&value) {
            prop_assert!(ours.is_err());
        } else {
            prop_assert_eq!(ours.unwrap(), value);
        }
    }

    #[test]
    fn form_fields_expand_to_their_path_up_to_the_limit(
        segments in prop::collection::vec("[a-z]{1,4}", 1..140),
        value in "[a-zA-Z0-9 ]{0,12}",
        nul in any::<bool>(),
    ) {
        let key = segments.join(".");
        let v = if nul { format!("{value}\0") } else { value.clone() };
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair(&key, &v)
            .finish();
        let r = decode(&headers("application/x-www-form-urlencoded"), body.as_bytes(), None);
        prop_assert!(within_bounds(&r));
        prop_assert_eq!(r.is_ok(), segments.len() <= MAX_NESTING_DEPTH && !nul);
        if let Ok(m) = r {
            let pointer = format!("/{}", segments.join("/"));
            let expanded = Value::Object(m);
            prop_assert_eq!(expanded.pointer(&pointer), Some(&Value::String(value)));
        }
    }

    #[test]
    fn mutated_forms_decode_within_bounds_or_400(
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..32),
        extra_depth in 0usize..100,
    ) {
        let base = format!(
            "method=password&traits.age=42&traits.tos=on&traits.name.first=Ann&password=x&traits{}=1",
            ".a".repeat(extra_depth)
        );
        let r = decode(&headers("application/x-www-form-urlencoded"), &mutate(base.as_bytes(), &edits), Some(&schema()));
        prop_assert!(within_bounds(&r));
    }

    #[test]
    fn form_values_take_the_schema_type_or_stay_strings(raw in "[-+0-9.eEtruefalsonf]{0,10}") {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("traits.age", &raw), ("traits.score", &raw), ("traits.tos", &raw)])
            .finish();
        let m = decode(&headers("application/x-www-form-urlencoded"), body.as_bytes(), Some(&schema())).unwrap();
        let t = &m["traits"];
        match raw.parse::<i64>() {
            Ok(n) => prop_assert_eq!(&t["age"], &json!(n)),
            Err(_) => prop_assert_eq!(&t["age"], &json!(raw)),
        }
        prop_assert!(t["score"].is_number() || t["score"] == json!(raw));
        prop_assert!(t["tos"].is_boolean() || t["tos"] == json!(raw));
    }
}
