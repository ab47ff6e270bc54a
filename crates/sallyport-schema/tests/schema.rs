//! Loading, validation and extension collection against Kratos' example identity schemas.

use std::path::PathBuf;

use base64::Engine;
use sallyport_schema::{CodeAddress, IdentitySchema, SchemaError, SchemaRegistry, TraitError};
use serde_json::{Value, json};

fn fixture_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn fixture(rel: &str) -> Value {
    let raw = std::fs::read(fixture_path(rel)).unwrap();
    serde_json::from_slice(&raw).unwrap()
}

const EXAMPLES: &[&str] = &[
    "all-strategies",
    "code-email-tos",
    "email-password",
    "passkey",
    "phone-password",
    "username-password",
];

fn schema(name: &str) -> IdentitySchema {
    let rel = format!("identity-schemas/{name}.schema.json");
    IdentitySchema::from_value(name, &format!("file://{rel}"), fixture(&rel)).unwrap()
}

/// The traits-only stub from Kratos' credentials tests, wrapped into an identity schema.
fn code_phone_email() -> IdentitySchema {
    let traits = fixture("identity-schemas/code-phone-email.traits-only.schema.json");
    let raw = json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "properties": {"traits": traits}});
    IdentitySchema::from_value("code-phone-email", "base64://", raw).unwrap()
}

fn errors(s: &IdentitySchema, traits: Value) -> Vec<TraitError> {
    s.validate_traits(&traits).expect_err("traits should be rejected")
}

fn only_error(s: &IdentitySchema, traits: Value) -> TraitError {
    let errs = errors(s, traits);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    errs.into_iter().next().unwrap()
}

#[tokio::test]
async fn every_example_schema_loads_from_file_and_base64() {
    let http = reqwest::Client::new();
    let mut config = Vec::new();
    for name in EXAMPLES {
        let path = fixture_path(&format!("identity-schemas/{name}.schema.json"));
        config.push((format!("{name}-file"), format!("file://{}", path.display())));
        let encoded = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&path).unwrap());
        config.push((format!("{name}-b64"), format!("base64://{encoded}")));
    }
    let registry = SchemaRegistry::load(&config, "email-password-file", &sallyport_schema::plain(&http))
        .await
        .unwrap();
    let ids: Vec<&str> = registry.all().map(|s| s.id.as_str()).collect();
    let expected: Vec<&str> = config.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, expected);
    assert_eq!(registry.default_id(), "email-password-file");
    assert_eq!(registry.default_schema().id, "email-password-file");
    assert_eq!(registry.get("").unwrap().id, "email-password-file");
    assert_eq!(
        registry.get("passkey-b64").unwrap().raw,
        fixture("identity-schemas/passkey.schema.json")
    );
    // `/schemas/{id}` uses the base64url form of the id.
    let encoded_id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("passkey-file");
    assert_eq!(registry.get(&encoded_id).unwrap().id, "passkey-file");
    assert!(registry.get("nope").is_none());
}

#[tokio::test]
async fn relative_paths_are_accepted() {
    let http = reqwest::Client::new();
    // cargo runs tests from the crate directory.
    let config = vec![
        (
            "a".to_string(),
            "file://tests/fixtures/identity-schemas/email-password.schema.json".to_string(),
        ),
        (
            "b".to_string(),
            "tests/fixtures/identity-schemas/email-password.schema.json".to_string(),
        ),
    ];
    let registry = SchemaRegistry::load(&config, "a", &sallyport_schema::plain(&http))
        .await
        .unwrap();
    assert_eq!(registry.all().count(), 2);
}

#[tokio::test]
async fn load_failures_name_the_schema() {
    let http = reqwest::Client::new();
    let missing = vec![("default".to_string(), "file:///does/not/exist.json".to_string())];
    let err = SchemaRegistry::load(&missing, "default", &sallyport_schema::plain(&http))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SchemaError::Load { ref id, .. } if id == "default"),
        "{err}"
    );
    assert!(err.to_string().contains("/does/not/exist.json"), "{err}");

    let not_json = vec![(
        "x".to_string(),
        format!(
            "base64://{}",
            base64::engine::general_purpose::STANDARD.encode("{nope")
        ),
    )];
    let err = SchemaRegistry::load(&not_json, "x", &sallyport_schema::plain(&http))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not valid JSON"), "{err}");

    let bad_b64 = vec![("x".to_string(), "base64://%%%".to_string())];
    assert!(matches!(
        SchemaRegistry::load(&bad_b64, "x", &sallyport_schema::plain(&http)).await,
        Err(SchemaError::Load { .. })
    ));

    let ok = vec![(
        "x".to_string(),
        fixture_path("identity-schemas/passkey.schema.json")
            .display()
            .to_string(),
    )];
    assert!(matches!(
        SchemaRegistry::load(&ok, "y", &sallyport_schema::plain(&http)).await,
        Err(SchemaError::UnknownDefault(_))
    ));
    assert!(matches!(
        SchemaRegistry::load(&[], "x", &sallyport_schema::plain(&http)).await,
        Err(SchemaError::Empty)
    ));
}

#[test]
fn meta_schema_testdata() {
    IdentitySchema::from_value("ok", "x", fixture("meta/identity_meta.simple.valid.schema.json")).unwrap();
    for bad in [
        "meta/identity_meta.no_traits.invalid.schema.json",
        "meta/identity_meta.verification_format.invalid.schema.json",
    ] {
        let err = IdentitySchema::from_value("bad", "file://bad.json", fixture(bad)).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, SchemaError::Invalid { .. }), "{text}");
        assert!(
            text.contains("\"bad\"") && text.contains("file://bad.json"),
            "{text}"
        );
    }
    // A non-schema (invalid keyword value) is rejected even when the meta-schema passes.
    let broken = json!({"properties": {"traits": {"type": "object", "properties": {"a": {"type": "string", "minLength": "three"}}}}});
    assert!(IdentitySchema::from_value("x", "x", broken).is_err());
    let external = json!({"properties": {"traits": {"type": "object", "properties": {"a": {"$ref": "http://192.168.178.1/"}}}}});
    let err = IdentitySchema::from_value("ref", "x", external)
        .unwrap_err()
        .to_string();
    assert!(err.contains("outside the schema document"), "{err}");
}

#[test]
fn valid_traits_are_extracted() {
    let s = schema("all-strategies");
    let ex = s
        .validate_traits(&json!({"email": " Foo@Example.COM ", "name": {"first": "A", "last": "B"}}))
        .unwrap_err();
    // Leading/trailing spaces are not a valid email format.
    assert_eq!(ex[0].message.id, 4000040);

    let ex = s
        .validate_traits(&json!({"email": "Foo@Example.COM", "name": {"first": "A"}}))
        .unwrap();
    assert_eq!(ex.password_identifiers, ["foo@example.com"]);
    assert_eq!(ex.webauthn_identifiers, ["foo@example.com"]);
    assert_eq!(
        ex.code_identifiers,
        [CodeAddress {
            via: "email".into(),
            address: "foo@example.com".into()
        }]
    );
    assert_eq!(ex.code_identifier_values(), ["foo@example.com"]);
    assert_eq!(ex.passkey_display_name.as_deref(), Some("Foo@Example.COM"));
    assert_eq!(ex.totp_account_name, None);
    assert_eq!(
        ex.verifiable_addresses,
        [("email".to_string(), "foo@example.com".to_string())]
    );
    assert_eq!(
        ex.recovery_addresses,
        [("email".to_string(), "foo@example.com".to_string())]
    );
    // Email traits keep their case (Kratos issue 3187); only identifiers are normalized.
    assert_eq!(
        ex.traits,
        json!({"email": "Foo@Example.COM", "name": {"first": "A"}})
    );

    let ex = schema("username-password")
        .validate_traits(&json!({"username": "  JohnDoe "}))
        .unwrap();
    assert_eq!(ex.password_identifiers, ["johndoe"]);
    assert!(ex.verifiable_addresses.is_empty() && ex.code_identifiers.is_empty());

    let ex = schema("code-email-tos")
        .validate_traits(&json!({"email": "a@b.co", "tos": true}))
        .unwrap();
    assert_eq!(ex.code_identifiers[0].via, "email");
    assert_eq!(ex.password_identifiers, ["a@b.co"]);
}

#[test]
fn phone_numbers_are_normalized_to_e164() {
    let s = schema("phone-password");
    let ex = s
        .validate_traits(&json!({"email": "FOO@ory.sh", "phone": "+49 176 671 11 638"}))
        .unwrap();
    assert_eq!(ex.password_identifiers, ["foo@ory.sh", "+4917667111638"]);
    assert_eq!(
        ex.verifiable_addresses,
        [
            ("email".to_string(), "foo@ory.sh".to_string()),
            ("sms".to_string(), "+4917667111638".to_string())
        ]
    );
    // The SMS verification trait is stored in E.164 as Kratos rewrites it before validating.
    assert_eq!(ex.traits["phone"], "+4917667111638");
    assert_eq!(ex.traits["email"], "FOO@ory.sh");

    let err = only_error(&s, json!({"email": "foo@ory.sh", "phone": "12345"}));
    assert_eq!(err.field.as_deref(), Some("traits.phone"));
    assert_eq!(err.message.id, 4000041);
    assert_eq!(err.message.text, "Enter a valid phone number");
    assert_eq!(err.message.context, Some(json!({"value": "12345"})));
}

#[test]
fn code_addresses_are_sorted_and_unique() {
    let s = code_phone_email();
    let ex = s
        .validate_traits(&json!({"email": "FOO@ory.sh", "email2": "FOO@ory.sh", "email3": "bar@ory.sh", "phone": "+49 176 671 11 638"}))
        .unwrap();
    assert_eq!(
        ex.code_identifier_values(),
        ["+4917667111638", "bar@ory.sh", "foo@ory.sh"]
    );
    assert_eq!(
        ex.code_identifiers[0],
        CodeAddress {
            via: "sms".into(),
            address: "+4917667111638".into()
        }
    );
    assert_eq!(
        ex.password_identifiers,
        ["foo@ory.sh", "bar@ory.sh", "+4917667111638"]
    );
    assert_eq!(ex.traits["phone"], "+4917667111638");
}

#[test]
fn missing_required_property() {
    let s = schema("email-password");
    let err = only_error(&s, json!({}));
    assert_eq!(err.field.as_deref(), Some("traits.email"));
    assert_eq!(err.message.id, 4000002);
    assert_eq!(err.message.text, "Property email is missing.");
    assert_eq!(err.message.context, Some(json!({"property": "email"})));

    let errs = errors(&schema("phone-password"), json!({}));
    let fields: Vec<_> = errs.iter().map(|e| e.field.as_deref().unwrap()).collect();
    assert_eq!(fields, ["traits.email", "traits.phone"]);
}

#[test]
fn too_short_and_bad_email() {
    let s = schema("email-password");
    // "a@" is both too short and not an email; Kratos reports both on the node.
    let errs = errors(&s, json!({"email": "a@"}));
    let ids: Vec<u32> = errs.iter().map(|e| e.message.id).collect();
    assert!(ids.contains(&4000003) && ids.contains(&4000040), "{errs:#?}");

    let errs = errors(&s, json!({"email": "ab"}));
    let short = errs.iter().find(|e| e.message.id == 4000003).unwrap();
    assert_eq!(short.field.as_deref(), Some("traits.email"));
    assert_eq!(short.message.text, "length must be >= 3, but got 2");
    assert_eq!(
        short.message.context,
        Some(json!({"min_length": 3, "actual_length": 2}))
    );

    let err = only_error(&s, json!({"email": "not-an-email"}));
    assert_eq!(err.field.as_deref(), Some("traits.email"));
    assert_eq!(err.message.id, 4000040);
    assert_eq!(err.message.text, "Enter a valid email address");
    assert_eq!(err.message.context, Some(json!({"value": "not-an-email"})));
}

#[test]
fn other_keyword_messages() {
    let raw = json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {"traits": {"type": "object", "additionalProperties": false, "properties": {
            "age": {"type": "integer", "minimum": 18, "maximum": 1000000},
            "score": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 10, "multipleOf": 0.5},
            "code": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 4},
            "tags": {"type": "array", "minItems": 2, "maxItems": 3, "uniqueItems": true, "items": {"type": "string"}},
            "plan": {"type": "string", "enum": ["free", "pro"]},
            "kind": {"const": "user"},
            "name": {"type": ["string", "null"]}
        }}}
    });
    let s = IdentitySchema::from_value("x", "x", raw).unwrap();
    let check = |traits: Value, field: &str, id: u32, text: &str, context: Option<Value>| {
        let errs = errors(&s, traits);
        let e = errs
            .iter()
            .find(|e| e.message.id == id)
            .unwrap_or_else(|| panic!("no {id} in {errs:#?}"));
        assert_eq!(e.field.as_deref(), Some(field));
        assert_eq!(e.message.text, text);
        if context.is_some() {
            assert_eq!(e.message.context, context);
        }
    };
    check(
        json!({"age": 17}),
        "traits.age",
        4000018,
        "must be >= 18 but found 17",
        Some(json!({"minimum": 18, "actual": 17})),
    );
    check(
        json!({"age": 2000000}),
        "traits.age",
        4000020,
        "must be <= 1e+06 but found 2e+06",
        None,
    );
    check(
        json!({"score": 0}),
        "traits.score",
        4000019,
        "must be > 0 but found 0",
        None,
    );
    check(
        json!({"score": 10}),
        "traits.score",
        4000021,
        "must be < 10 but found 10",
        None,
    );
    check(
        json!({"score": 1.25}),
        "traits.score",
        4000022,
        "1.25 not multipleOf 0.5",
        Some(json!({"base": 0.5, "actual": 1.25})),
    );
    check(
        json!({"code": "ABC"}),
        "traits.code",
        4000004,
        "does not match pattern \"^[a-z]+$\"",
        Some(json!({"pattern": "^[a-z]+$"})),
    );
    check(
        json!({"code": "abcdef"}),
        "traits.code",
        4000017,
        "length must be <= 4, but got 6",
        None,
    );
    check(
        json!({"tags": ["a"]}),
        "traits.tags",
        4000024,
        "minimum 2 items allowed, but found 1 items",
        None,
    );
    check(
        json!({"tags": ["a", "b", "c", "d"]}),
        "traits.tags",
        4000023,
        "maximum 3 items allowed, but found 4 items",
        None,
    );
    check(
        json!({"tags": ["a", "b", "a"]}),
        "traits.tags",
        4000025,
        "items at index 0 and 2 are equal",
        Some(json!({"index_a": 0, "index_b": 2})),
    );
    check(
        json!({"age": "x"}),
        "traits.age",
        4000026,
        "expected integer, but got string",
        Some(json!({"allowed_types": ["integer"], "actual_type": "string"})),
    );
    check(
        json!({"name": 1}),
        "traits.name",
        4000026,
        "expected string or null, but got number",
        None,
    );
    check(
        json!({"kind": "admin"}),
        "traits.kind",
        4000029,
        "must be equal to constant \"user\"",
        None,
    );
    check(
        json!({"plan": "x"}),
        "traits.plan",
        4000001,
        "value must be one of \"free\", \"pro\"",
        None,
    );
    check(
        json!({"tags": [1, "a"]}),
        "traits.tags.0",
        4000026,
        "expected string, but got number",
        None,
    );
    let e = only_error(&s, json!({"extra": 1}));
    assert_eq!(e.message.id, 4000001);
    assert_eq!(e.message.text, "additionalProperties \"extra\" not allowed");
    assert_eq!(e.field, None);
}

#[test]
fn non_object_traits_are_a_flow_message() {
    let s = schema("email-password");
    let e = only_error(&s, json!("nope"));
    assert_eq!(e.field, None);
    assert_eq!(e.message.id, 4000026);
    assert_eq!(e.message.text, "expected object, but got string");
    let e = only_error(&s, Value::Null);
    assert_eq!(e.field, None);
}

#[test]
fn deeply_nested_traits_are_refused() {
    let s = schema("username-password");
    let mut deep = json!("leaf");
    for _ in 0..100 {
        deep = json!([deep]);
    }
    let e = only_error(&s, json!({"username": "x", "nested": deep}));
    assert_eq!(e.field, None);
    assert_eq!(e.message.id, 4000001);
    assert_eq!(e.message.text, "traits nest too deeply");

    let mut ok = json!("leaf");
    for _ in 0..30 {
        ok = json!({"a": ok});
    }
    // username-password allows additional properties.
    s.validate_traits(&json!({"username": "x", "nested": ok}))
        .unwrap();
}

#[test]
fn refs_nested_objects_and_2020_12() {
    let raw = json!({
        "$id": "https://example.com/refs.schema.json",
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {
            "email": {"type": "string", "format": "email", "title": "Mail",
                "ory.sh/kratos": {"credentials": {"password": {"identifier": true}, "totp": {"account_name": true}}, "recovery": {"via": "email"}}},
            "phone": {"type": "string", "format": "tel",
                "ory.sh/kratos": {"credentials": {"code": {"identifier": true, "via": "sms"}}, "verification": {"via": "sms"}}}
        },
        "properties": {"traits": {"type": "object", "properties": {
            "contact": {"type": "object", "properties": {
                "email": {"$ref": "#/$defs/email"},
                "phones": {"type": "array", "items": {"$ref": "https://example.com/refs.schema.json#/$defs/phone"}}
            }, "required": ["email"]},
            "birthday": {"type": "string", "format": "date"},
            "nick": {"type": "string", "format": "no-validate"}
        }}}
    });
    let s = IdentitySchema::from_value("refs", "x", raw).unwrap();
    let ex = s
        .validate_traits(&json!({"contact": {"email": "Me@Example.org", "phones": ["+1 415 555 2671", "+4917667111638"]}, "birthday": "2000-01-31", "nick": "!!"}))
        .unwrap();
    assert_eq!(ex.password_identifiers, ["me@example.org"]);
    assert_eq!(ex.totp_account_name.as_deref(), Some("Me@Example.org"));
    assert_eq!(
        ex.recovery_addresses,
        [("email".to_string(), "me@example.org".to_string())]
    );
    assert_eq!(ex.code_identifier_values(), ["+14155552671", "+4917667111638"]);
    assert_eq!(ex.verifiable_addresses.len(), 2);
    assert_eq!(
        ex.traits["contact"]["phones"],
        json!(["+14155552671", "+4917667111638"])
    );

    let errs = errors(
        &s,
        json!({"contact": {"phones": ["nope"]}, "birthday": "31.01.2000"}),
    );
    let mut got: Vec<(String, u32)> = errs
        .iter()
        .map(|e| (e.field.clone().unwrap_or_default(), e.message.id))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("traits.birthday".to_string(), 4000001),
            ("traits.contact.email".to_string(), 4000002),
            ("traits.contact.phones.0".to_string(), 4000041)
        ]
    );
    let birthday = errs.iter().find(|e| e.message.id == 4000001).unwrap();
    assert_eq!(birthday.message.text, "\"31.01.2000\" is not valid \"date\"");
}

#[test]
fn verification_without_format() {
    let raw = json!({"properties": {"traits": {"type": "object", "properties": {
        "email": {"type": "string", "ory.sh/kratos": {"verification": {"via": "email"}, "recovery": {"via": "email"}}},
        "phone": {"type": "string", "ory.sh/kratos": {"verification": {"via": "sms"}}}
    }}}});
    let s = IdentitySchema::from_value("x", "x", raw).unwrap();
    let e = only_error(&s, json!({"email": "nope"}));
    assert_eq!(e.field.as_deref(), Some("traits.email"));
    assert_eq!(e.message.id, 4000040);
    let e = only_error(&s, json!({"phone": "+14155552671"}));
    assert_eq!(e.message.id, 4000001);
    assert!(
        e.message.text.starts_with("no format specified"),
        "{}",
        e.message.text
    );
    let ex = s.validate_traits(&json!({"email": "A@b.co"})).unwrap();
    assert_eq!(
        ex.verifiable_addresses,
        [("email".to_string(), "a@b.co".to_string())]
    );
}

#[test]
fn identifier_label() {
    let label = schema("email-password").identifier_label();
    assert_eq!(label.id, 1070002);
    assert_eq!(label.text, "E-Mail");
    assert_eq!(
        label.context,
        Some(json!({"title": "E-Mail", "name": "traits.email"}))
    );
    assert_eq!(schema("phone-password").identifier_label().id, 1070004);
    assert_eq!(schema("username-password").identifier_label().text, "Username");
}

#[tokio::test]
async fn http_schemas_are_fetched() {
    use axum::{Router, http::StatusCode, routing::get};

    let body = std::fs::read_to_string(fixture_path("identity-schemas/email-password.schema.json")).unwrap();
    let app = Router::new()
        .route("/identity.schema.json", get(move || async move { body }))
        .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
        .route("/huge", get(|| async { " ".repeat(2 << 20) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let http = reqwest::Client::new();
    let url = format!("http://{addr}/identity.schema.json");
    let registry = SchemaRegistry::load(
        &[("default".into(), url.clone())],
        "default",
        &sallyport_schema::plain(&http),
    )
    .await
    .unwrap();
    assert_eq!(registry.default_schema().url, url);
    assert_eq!(
        registry.default_schema().raw,
        fixture("identity-schemas/email-password.schema.json")
    );

    let err = SchemaRegistry::load(
        &[("m".into(), format!("http://{addr}/missing"))],
        "m",
        &sallyport_schema::plain(&http),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("404"), "{err}");
    let err = SchemaRegistry::load(
        &[("h".into(), format!("http://{addr}/huge"))],
        "h",
        &sallyport_schema::plain(&http),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("exceeds"), "{err}");
    server.abort();
}

#[test]
fn dependencies_and_hostile_arrays() {
    let raw = json!({"properties": {"traits": {"type": "object", "properties": {
        "a": {"type": "string"}, "b": {"type": "string"},
        "list": {"type": "array", "uniqueItems": true}
    }, "dependencies": {"a": ["b"]}}}});
    let s = IdentitySchema::from_value("x", "x", raw).unwrap();
    let e = only_error(&s, json!({"a": "x"}));
    assert_eq!(e.message.id, 4000001);
    assert_eq!(
        e.message.text,
        "property \"b\" is required, if \"a\" property exists"
    );

    let mut list: Vec<Value> = (0..50_000).map(|i| json!({"n": i, "k": [i]})).collect();
    list.push(json!({"k": [7], "n": 7.0}));
    let started = std::time::Instant::now();
    let e = only_error(&s, json!({"list": list}));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(e.message.id, 4000025);
    assert_eq!(e.message.text, "items at index 7 and 50000 are equal");
}
