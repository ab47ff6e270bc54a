//! Trait nodes and node ordering against Kratos' fixtures and snapshots.

use std::path::PathBuf;

use sallyport_core::ui::{Group, Node};
use sallyport_schema::sort::{SortOptions, password_login_order, sort_nodes};
use sallyport_schema::{IdentitySchema, keys_in_order, nodes_from_json_schema};
use serde_json::{Value, json};

fn fixture(rel: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn identity_schema(rel: &str) -> IdentitySchema {
    IdentitySchema::from_value("test", "file://x", fixture(rel)).unwrap()
}

fn to_json(nodes: &[Node]) -> Vec<Value> {
    nodes.iter().map(|n| serde_json::to_value(n).unwrap()).collect()
}

fn snapshot_nodes(rel: &str) -> Vec<Value> {
    match fixture(rel) {
        Value::Array(nodes) => nodes,
        other => other["nodes"].as_array().cloned().unwrap(),
    }
}

fn traits_only(nodes: Vec<Value>) -> Vec<Value> {
    nodes
        .into_iter()
        .filter(|n| {
            n["attributes"]["name"]
                .as_str()
                .is_some_and(|s| s.starts_with("traits."))
        })
        .collect()
}

/// Kratos' profile strategy snapshot `PopulateRegistrationMethodProfile` (schema
/// `identity.schema.json`, unsorted NodesFromJSONSchema output, so ListPaths' name order).
#[test]
fn populate_registration_method_profile_snapshot() {
    let schema = identity_schema("ui-node-fixtures/identity.schema.json");
    let expected = traits_only(snapshot_nodes(
        "snapshots/profile-PopulateRegistrationMethodProfile.json",
    ));
    let unsorted = nodes_from_json_schema(&schema.raw, Group::Default, "");
    assert_eq!(to_json(&unsorted), expected);
}

/// The same nodes once the registration flow sorted them: schema key order.
#[test]
fn two_step_registration_snapshot_order() {
    let schema = identity_schema("ui-node-fixtures/identity.schema.json");
    let expected = traits_only(snapshot_nodes(
        "snapshots/profile-TwoStepRegistration-empty_flow.json",
    ));
    assert_eq!(to_json(&schema.trait_nodes(Group::Default, None)), expected);
}

/// Settings hydrate the profile nodes with the identity's traits.
#[test]
fn settings_traits_are_hydrated() {
    let schema = identity_schema("ui-node-fixtures/identity.schema.json");
    let expected = traits_only(snapshot_nodes(
        "snapshots/profile-StrategyTraits-hydrate-api.json",
    ));
    let traits = json!({
        "stringy": "foobar", "numby": 2.5, "booly": false,
        "should_big_number": 2048, "should_long_string": "asdfasdfasdfasdfasfdasdfasdfasdf"
    });
    assert_eq!(
        to_json(&schema.trait_nodes(Group::Profile, Some(&traits))),
        expected
    );
}

#[test]
fn email_password_trait_nodes() {
    let schema = identity_schema("identity-schemas/email-password.schema.json");
    let nodes = to_json(&schema.trait_nodes(
        Group::Default,
        Some(&json!({"email": "a@b.co", "name": {"first": "Ann"}})),
    ));
    assert_eq!(
        nodes,
        [
            json!({"type": "input", "group": "default", "attributes": {"name": "traits.email", "type": "email", "value": "a@b.co", "required": true, "autocomplete": "email", "disabled": false, "node_type": "input"}, "messages": [], "meta": {"label": {"id": 1070002, "text": "E-Mail", "type": "info", "context": {"title": "E-Mail", "name": "traits.email"}}}}),
            json!({"type": "input", "group": "default", "attributes": {"name": "traits.name.first", "type": "text", "value": "Ann", "disabled": false, "node_type": "input"}, "messages": [], "meta": {"label": {"id": 1070002, "text": "First Name", "type": "info", "context": {"title": "First Name", "name": "traits.name.first"}}}}),
            json!({"type": "input", "group": "default", "attributes": {"name": "traits.name.last", "type": "text", "disabled": false, "node_type": "input"}, "messages": [], "meta": {"label": {"id": 1070002, "text": "Last Name", "type": "info", "context": {"title": "Last Name", "name": "traits.name.last"}}}}),
        ]
    );
    assert_eq!(
        schema.keys_in_order(),
        ["traits.email", "traits.name.first", "traits.name.last"]
    );
}

#[test]
fn values_without_a_schema_node_get_a_plain_node() {
    let schema = identity_schema("identity-schemas/username-password.schema.json");
    let nodes = to_json(&schema.trait_nodes(
        Group::Profile,
        Some(&json!({"username": "u", "age": 3, "tags": ["x"], "ok": true})),
    ));
    let names: Vec<&str> = nodes
        .iter()
        .map(|n| n["attributes"]["name"].as_str().unwrap())
        .collect();
    // Nodes outside the schema's keys tie on position; Kratos then orders them by `%v` value.
    assert_eq!(
        names,
        ["traits.username", "traits.age", "traits.ok", "traits.tags.0"]
    );
    assert_eq!(nodes[1]["attributes"]["type"], "number");
    assert_eq!(nodes[2]["attributes"]["type"], "checkbox");
}

/// ory/kratos `ui/node/attributes_input_test.go` over `all_formats.schema.json`: the expected
/// type, autocomplete, pattern and options are annotated in the fixture itself.
#[test]
fn all_formats_fixture() {
    let raw = fixture("ui-node-fixtures/all_formats.schema.json");
    let nodes = nodes_from_json_schema(&raw, Group::Default, "");
    let props = raw["properties"].as_object().unwrap();
    assert_eq!(nodes.len(), props.len());
    for node in &nodes {
        let a = node.input_attrs().unwrap();
        let spec = &props[&a.name];
        assert_eq!(a.input_type, spec["test_expected_type"], "type of {}", a.name);
        if let Some(ac) = spec.get("test_expected_autocomplete") {
            assert_eq!(
                a.autocomplete.as_deref(),
                ac.as_str(),
                "autocomplete of {}",
                a.name
            );
        }
        assert_eq!(
            a.pattern.is_some(),
            spec.get("test_expected_pattern").is_some(),
            "pattern of {}",
            a.name
        );
        match spec.get("test_expected_options") {
            Some(expected) => {
                let got: Vec<Value> = a
                    .options
                    .as_ref()
                    .unwrap()
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|o| o["value"].clone())
                    .collect();
                assert_eq!(&Value::Array(got), expected, "options of {}", a.name);
            }
            None => assert!(a.options.is_none(), "options of {}", a.name),
        }
    }
}

/// ory/kratos `ui/container/container_test.go` NewFromJSONSchema cases.
#[test]
fn simple_and_complex_fixtures() {
    let names = |rel: &str, prefix: &str| -> Vec<(String, String, bool)> {
        nodes_from_json_schema(&fixture(rel), Group::Default, prefix)
            .iter()
            .map(|n| {
                let a = n.input_attrs().unwrap();
                (a.name.clone(), a.input_type.clone(), a.required)
            })
            .collect()
    };
    let t = |n: &str, ty: &str, r: bool| (n.to_string(), ty.to_string(), r);
    assert_eq!(
        names("ui-node-fixtures/simple.schema.json", ""),
        [
            t("numby", "number", false),
            t("objy.numby", "number", false),
            t("objy.stringy", "text", false),
            t("stringy", "text", false)
        ]
    );
    assert_eq!(
        names("ui-node-fixtures/simple.schema.json", "traits")[0],
        t("traits.numby", "number", false)
    );
    assert_eq!(
        names("ui-node-fixtures/complex.schema.json", ""),
        [
            t("fruits", "text", false),
            t("meal.chef", "text", false),
            t("meal.name", "text", true)
        ]
    );
}

/// Kratos' input fixtures lack `node_type` and carry `"messages": null`.
fn parse_nodes(raw: Value) -> Vec<Node> {
    raw.as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let mut n = n.clone();
            n["attributes"]["node_type"] = n["type"].clone();
            if n["messages"].is_null() {
                n["messages"] = json!([]);
            }
            serde_json::from_value(n).unwrap()
        })
        .collect()
}

/// ory/kratos `ui/node/node_test.go` TestNodesSort with its four fixtures.
#[test]
fn sort_fixtures() {
    let keys = |n: u8| keys_in_order(&fixture(&format!("ui-node-fixtures/sort/schema/{n}.json")));
    let cases: Vec<(u8, SortOptions)> = vec![
        (
            1,
            SortOptions {
                use_order: vec!["password_identifier".into()],
                update_order: Some(password_login_order),
                order_by_groups: vec![
                    Group::Default,
                    Group::Profile,
                    Group::Oidc,
                    Group::Password,
                    Group::Link,
                    Group::Link,
                ],
                ..SortOptions::default()
            },
        ),
        (
            2,
            SortOptions {
                schema_keys: keys(2),
                update_order: Some(password_login_order),
                order_by_groups: vec![Group::Default, Group::Oidc, Group::Password],
                ..SortOptions::default()
            },
        ),
        (
            3,
            SortOptions {
                schema_keys: keys(3),
                order_by_groups: vec![Group::Default, Group::Oidc, Group::Password],
                ..SortOptions::default()
            },
        ),
        (
            4,
            SortOptions {
                schema_keys: keys(4),
                order_by_groups: vec![
                    Group::Default,
                    Group::Profile,
                    Group::Password,
                    Group::Oidc,
                    Group::LookupSecret,
                    Group::Webauthn,
                    Group::Totp,
                ],
                append_order: [
                    "lookup_secret_reveal",
                    "lookup_secret_regenerate",
                    "lookup_secret_codes",
                    "lookup_secret_confirm",
                    "webauthn_remove",
                    "webauthn_register_displayname",
                    "webauthn_register",
                    "totp_secret_key",
                    "totp_qr",
                    "totp_unlink",
                    "totp_code",
                ]
                .map(String::from)
                .to_vec(),
                ..SortOptions::default()
            },
        ),
    ];
    for (n, opts) in cases {
        let mut nodes = parse_nodes(fixture(&format!("ui-node-fixtures/sort/input/{n}.json")));
        sort_nodes(&mut nodes, &opts);
        let expected = fixture(&format!("ui-node-fixtures/sort/expected/{n}.json"));
        assert_eq!(Value::Array(to_json(&nodes)), expected, "fixture {n}");
    }
}
