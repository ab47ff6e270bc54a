//! Kratos' own config fixtures: the schema pass/fail cases, the quickstart configs and the e2e profiles.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use sallyport_config::{ConfigError, KRATOS_CONFIG_SCHEMA, LoadOptions, load, load_with_base};
use serde_json::{Value, json};

fn fixtures(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir)
}

fn files_in(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(fixtures(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {dir}");
    files
}

fn yaml(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap();
    serde_saphyr::from_str::<Value>(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `OIDCClaims.full.yaml` → ("OIDCClaims", "full")
fn split_name(path: &Path) -> (String, String) {
    let name = path.file_name().unwrap().to_str().unwrap();
    let parts: Vec<&str> = name.split('.').collect();
    assert_eq!(
        parts.len(),
        3,
        "fixture names are <definition>.<case>.<ext>: {name}"
    );
    (parts[0].to_owned(), parts[1].to_owned())
}

const SUCCESS: &str = "config-schema-fixtures/config.schema.test.success";
const FAILURE: &str = "config-schema-fixtures/config.schema.test.failure";

/// Kratos' schema test method: every `"$ref"` becomes `"const"`, so a fixture names a definition
/// (`"#/definitions/defaultReturnTo"`) instead of repeating it, and each fixture is validated against the
/// definition its file name names (`root` is the whole schema).
fn schema_for(definition: &str) -> Value {
    let text = KRATOS_CONFIG_SCHEMA.replace("\"$ref\":", "\"const\":");
    let root: Value = serde_json::from_str(&text).unwrap();
    if definition == "root" {
        root
    } else {
        root["definitions"]
            .get(definition)
            .unwrap_or_else(|| panic!("no definition {definition}"))
            .clone()
    }
}

fn schema_accepts(path: &Path) -> bool {
    let (definition, _) = split_name(path);
    let validator = jsonschema::draft7::options()
        .should_validate_formats(true)
        .offline()
        .build(&schema_for(&definition))
        .unwrap();
    validator.is_valid(&yaml(path))
}

#[test]
fn schema_success_fixtures_validate() {
    for path in files_in(SUCCESS) {
        assert!(schema_accepts(&path), "expected {} to validate", path.display());
    }
}

#[test]
fn schema_failure_fixtures_fail() {
    for path in files_in(FAILURE) {
        assert!(
            !schema_accepts(&path),
            "expected {} to fail validation",
            path.display()
        );
    }
}

/// Definitions the fixtures point at but have no fixture of their own.
fn extra_definitions() -> BTreeMap<String, Value> {
    BTreeMap::from([
        ("baseUrl".into(), json!("https://kratos.example.com/")),
        (
            "selfServiceRequireVerifiedAddressHook".into(),
            json!({"hook": "require_verified_address"}),
        ),
        (
            "selfServiceAfterVerification".into(),
            json!({"default_browser_return_url": "https://my-app.com/verified"}),
        ),
        (
            "selfServiceAfterRecovery".into(),
            json!({"default_browser_return_url": "https://my-app.com/recovered"}),
        ),
        (
            "httpRequestConfig".into(),
            json!({"url": "https://sms.example.com/send", "method": "POST"}),
        ),
    ])
}

/// The success fixture standing for each definition (`<def>.full`, else `<def>.required`, else the first).
fn definition_examples() -> BTreeMap<String, Value> {
    let mut out = extra_definitions();
    let mut by_def: BTreeMap<String, Vec<(String, PathBuf)>> = BTreeMap::new();
    for path in files_in(SUCCESS) {
        let (def, case) = split_name(&path);
        by_def.entry(def).or_default().push((case, path));
    }
    for (def, cases) in by_def {
        let pick = ["full", "required"]
            .iter()
            .find_map(|want| cases.iter().find(|(c, _)| c == want))
            .unwrap_or(&cases[0]);
        out.insert(def, yaml(&pick.1));
    }
    out
}

/// Replaces `"#/definitions/X"` strings by an example of X, recursively.
fn substitute(value: &Value, examples: &BTreeMap<String, Value>, depth: usize) -> Value {
    assert!(depth < 16, "definition references loop");
    match value {
        Value::String(s) => match s.strip_prefix("#/definitions/") {
            Some(def) => {
                let example = examples
                    .get(def)
                    .unwrap_or_else(|| panic!("no example for definition {def}"));
                substitute(example, examples, depth + 1)
            }
            None => value.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(|v| substitute(v, examples, depth)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), substitute(v, examples, depth)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Whole-config (`root.*`) success fixtures load through the real loader once references are filled in.
#[test]
fn root_success_fixtures_load() {
    let examples = definition_examples();
    let mut loaded = 0;
    for path in files_in(SUCCESS) {
        if split_name(&path).0 != "root" {
            continue;
        }
        let doc = substitute(&yaml(&path), &examples, 0);
        let config = load_with_base(doc, &LoadOptions::default())
            .unwrap_or_else(|e| panic!("{} should load: {e}", path.display()));
        assert_eq!(config.dsn, "foo");
        loaded += 1;
    }
    assert!(loaded >= 5);
}

#[test]
fn root_full_fixture_is_typed() {
    let examples = definition_examples();
    let doc = substitute(&yaml(&fixtures(SUCCESS).join("root.full.yml")), &examples, 0);
    let c = load_with_base(doc, &LoadOptions::default()).unwrap();
    assert_eq!(c.hashers.argon2.memory.bytes(), 128 * 1024 * 1024);
    assert_eq!(c.hashers.argon2.key_length, 16);
    assert_eq!(c.selfservice.flows.settings.lifespan.as_secs(), 3605);
    assert_eq!(c.identity.default_schema_id, "foo");
    assert_eq!(c.serve.public.host, "foo");
    assert_eq!(c.totp_issuer(), "foobar");
    assert_eq!(c.cookie_secrets(), vec!["cookie secret with a lot of chars"]);
    assert!(c.method_enabled("oidc"));
    assert_eq!(
        c.flow_ui_url(sallyport_config::FlowKind::Settings).path(),
        "/settings"
    );
}

/// Whole-config failure fixtures also fail through the loader (merged over a minimal valid base).
/// `requiresCourier*` are exceptions: Kratos' schema defaults always create `courier`, so those
/// two only fail when the bare file is validated (as `schema_failure_fixtures_fail` does).
#[test]
fn root_failure_fixtures_fail_to_load() {
    for path in files_in(FAILURE) {
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        // `version`'s pattern ends in `|$`, which matches any string, so `invalidVersion` only fails bare.
        let only_fails_bare = name.starts_with("root.requiresCourier") || name == "root.invalidVersion.yaml";
        if !name.starts_with("root.") || only_fails_bare {
            continue;
        }
        let mut doc = minimal();
        merge(&mut doc, yaml(&path));
        match load_with_base(doc, &LoadOptions::default()) {
            Err(ConfigError::Invalid(issues)) => assert!(!issues.0.is_empty()),
            other => panic!("{name} should fail validation, got {other:?}"),
        }
    }
}

fn minimal() -> Value {
    json!({
        "dsn": "memory",
        "selfservice": {"default_browser_return_url": "http://127.0.0.1:4455/"},
        "identity": {"schemas": [{"id": "default", "url": "file:///etc/identity.schema.json"}]},
    })
}

fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

#[test]
fn quickstart_configs_load() {
    for path in files_in("quickstart-configs") {
        // Some quickstarts get their DSN from the environment (docker-compose).
        let has_dsn = fs::read_to_string(&path)
            .unwrap()
            .lines()
            .any(|l| l.starts_with("dsn:"));
        let env = if has_dsn {
            vec![]
        } else {
            vec![("DSN".to_owned(), "memory".to_owned())]
        };
        let opts = LoadOptions {
            files: vec![path.clone()],
            env,
            ..Default::default()
        };
        let config = load(&opts).unwrap_or_else(|e| panic!("{} should load: {e}", path.display()));
        assert!(config.dsn_is_memory(), "{}", path.display());
        assert!(!config.identity.schemas.is_empty());
    }
}

/// The e2e profiles are merged over `kratos.base.yml`, with the DSN from the environment.
#[test]
fn e2e_profiles_load_over_base() {
    let base = fixtures("e2e-profiles").join("kratos.base.yml");
    for path in files_in("e2e-profiles") {
        if path == base {
            continue;
        }
        let opts = LoadOptions {
            files: vec![base.clone(), path.clone()],
            env: vec![("DSN".into(), "memory".into())],
            dev: true,
        };
        let config = load(&opts).unwrap_or_else(|e| panic!("{} should load: {e}", path.display()));
        assert_eq!(config.hashers.argon2.memory.bytes(), 1024, "{}", path.display());
        assert_eq!(config.public_base_url().as_str(), "http://localhost:4455/");
    }
}
