//! Property tests for config loading: whatever bytes a config file holds (deeply nested, huge,
//! mutated from a valid config), `load` answers with a config or an error, never a panic or a
//! stack overflow. Cases are bounded so `cargo test` stays fast.

use std::path::PathBuf;

use proptest::prelude::*;
use sallyport_config::{LoadOptions, load};

const VALID: &str = r#"
version: v1.3.0
dsn: "sqlite:///tmp/sallyport-props.sqlite?mode=rwc"
serve:
  public: { base_url: "http://127.0.0.1:4433/" }
selfservice:
  default_browser_return_url: http://127.0.0.1:4455/
  methods:
    password: { enabled: true }
identity:
  default_schema_id: default
  schemas:
    - { id: default, url: "base64://eyJ0eXBlIjoib2JqZWN0In0=" }
secrets:
  cookie: [ "a-very-secret-cookie-secret-for-tests" ]
"#;

fn load_text(dir: &tempfile::TempDir, name: &str, text: &[u8]) -> Result<(), String> {
    let path: PathBuf = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    load(&LoadOptions {
        files: vec![path],
        env: vec![],
        dev: true,
    })
    .map(|_| ())
    .map_err(|e| e.to_string())
}

#[test]
fn the_valid_base_loads() {
    let dir = tempfile::tempdir().unwrap();
    load_text(&dir, "kratos.yml", VALID.as_bytes()).unwrap();
}

#[test]
fn ten_thousand_levels_of_yaml_or_json_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let n = 10_000;
    let cases = [
        ("flow.yml", format!("dsn: {}1{}\n", "[".repeat(n), "]".repeat(n))),
        (
            "map.yml",
            format!("dsn: {}1{}\n", "{a: ".repeat(n), "}".repeat(n)),
        ),
        (
            "block.yml",
            (0..n)
                .map(|i| format!("{}a:\n", " ".repeat(i)))
                .collect::<String>(),
        ),
        (
            "deep.json",
            format!("{{\"dsn\":{}1{}}}", "[".repeat(n), "]".repeat(n)),
        ),
    ];
    for (name, text) in cases {
        assert!(load_text(&dir, name, text.as_bytes()).is_err(), "{name}");
    }
}

#[test]
fn a_deep_environment_override_is_an_error_or_a_string() {
    let n = 10_000;
    let opts = LoadOptions {
        files: vec![],
        env: vec![(
            "SERVE_PUBLIC_CORS_ALLOWED_ORIGINS".into(),
            format!("{}1{}", "[".repeat(n), "]".repeat(n)),
        )],
        dev: true,
    };
    let _ = load(&opts);
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
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn mutated_configs_load_or_fail_cleanly(
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..24),
        json in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let base = if json {
            serde_json::to_vec(&serde_json::json!({"dsn": "memory", "selfservice": {"default_browser_return_url": "http://127.0.0.1:4455/"}})).unwrap()
        } else {
            VALID.as_bytes().to_vec()
        };
        let _ = load_text(&dir, if json { "c.json" } else { "c.yml" }, &mutate(&base, &edits));
    }

    #[test]
    fn nesting_at_any_depth_loads_or_fails_cleanly(depth in 0usize..3_000, open in prop::sample::select(vec!["[", "{a: ", "- "])) {
        let dir = tempfile::tempdir().unwrap();
        let close = match open { "[" => "]", "{a: " => "}", _ => "" };
        let text = format!("{VALID}\nextra: {}1{}\n", open.repeat(depth), close.repeat(depth));
        let _ = load_text(&dir, "c.yml", text.as_bytes());
    }

    #[test]
    fn arbitrary_bytes_load_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let dir = tempfile::tempdir().unwrap();
        let _ = load_text(&dir, "c.yml", &bytes);
        let _ = load_text(&dir, "c.json", &bytes);
    }
}
