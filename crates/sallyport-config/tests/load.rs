//! Loader behaviour: layering, env overrides, defaults, error messages and accessors.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use sallyport_config::*;
use serde_json::{Value, json};

const MINIMAL: &str = "
dsn: memory
selfservice:
  default_browser_return_url: http://127.0.0.1:4455/
identity:
  schemas:
    - id: default
      url: file:///etc/identity.schema.json
";

/// Writes `content` to a fresh file under the test temp dir.
fn file(name: &str, content: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sallyport-config-tests");
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}-{name}", std::process::id()));
    fs::write(&path, content).unwrap();
    path
}

fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Loads `MINIMAL` merged with `yaml`.
fn load_yaml(name: &str, yaml: &str, vars: &[(&str, &str)], dev: bool) -> Result<Config, ConfigError> {
    let files = vec![file(&format!("minimal-{name}"), MINIMAL), file(name, yaml)];
    load(&LoadOptions {
        files,
        env: env(vars),
        dev,
    })
}

fn load_ok(name: &str, yaml: &str) -> Config {
    load_yaml(name, yaml, &[], false).unwrap_or_else(|e| panic!("{e}"))
}

fn error(name: &str, yaml: &str, vars: &[(&str, &str)]) -> String {
    load_yaml(name, yaml, vars, false)
        .expect_err("should fail")
        .to_string()
}

#[test]
fn kratos_env_overrides() {
    let schemas = r#"[{"id":"default","url":"file:///x.json"}]"#;
    let c = load_yaml(
        "env.yml",
        MINIMAL,
        &[
            ("DSN", "postgres://u:p@db:5432/kratos"),
            ("SERVE_PUBLIC_BASE_URL", "https://auth.example.com"),
            ("SELFSERVICE_FLOWS_LOGIN_UI_URL", "https://app.example.com/login"),
            (
                "SECRETS_COOKIE",
                "first-cookie-secret-0123,second-cookie-secret-0123",
            ),
            ("IDENTITY_SCHEMAS", schemas),
            (
                "COURIER_SMTP_CONNECTION_URI",
                "smtp://mail:25/?disable_starttls=true",
            ),
            ("SELFSERVICE_METHODS_PASSWORD_ENABLED", "false"),
            ("LOG_LEVEL", "debug"),
            ("SERVE_ADMIN_PORT", "9999"),
            ("HOME", "/root"),
            ("PATH", "/usr/bin"),
        ],
        false,
    )
    .unwrap();
    assert_eq!(c.dsn, "postgres://u:p@db:5432/kratos");
    assert_eq!(c.public_base_url().as_str(), "https://auth.example.com/");
    assert_eq!(
        c.flow_ui_url(FlowKind::Login).as_str(),
        "https://app.example.com/login"
    );
    assert_eq!(
        c.cookie_secrets(),
        vec!["first-cookie-secret-0123", "second-cookie-secret-0123"]
    );
    assert_eq!(
        c.identity.schemas,
        vec![IdentitySchema {
            id: "default".into(),
            url: "file:///x.json".into(),
            selfservice_selectable: false
        }]
    );
    assert_eq!(
        c.courier.smtp.connection_uri.as_deref(),
        Some("smtp://mail:25/?disable_starttls=true")
    );
    assert!(!c.method_enabled("password"));
    assert_eq!(c.log.level, LogLevel::Debug);
    assert_eq!(c.serve.admin.port, 9999);
    let vars: Vec<&str> = c.env_overrides().iter().map(|o| o.var.as_str()).collect();
    assert!(vars.contains(&"DSN") && !vars.contains(&"HOME") && !vars.contains(&"PATH"));
}

#[test]
fn env_addresses_array_items_by_index() {
    let yaml = "selfservice:
  default_browser_return_url: http://127.0.0.1:4455/
  methods:
    oidc:
      enabled: true
      config:
        providers:
          - id: github
            provider: github
            client_id: from-file
            client_secret: s
            mapper_url: file:///m.jsonnet
";
    let c = load_yaml(
        "oidc.yml",
        yaml,
        &[
            (
                "SELFSERVICE_METHODS_OIDC_CONFIG_PROVIDERS_0_CLIENT_ID",
                "from-env",
            ),
            ("IDENTITY_SCHEMAS_0_ID", "main"),
        ],
        false,
    )
    .unwrap();
    assert_eq!(
        c.raw()["selfservice"]["methods"]["oidc"]["config"]["providers"][0]["client_id"],
        json!("from-env")
    );
    assert_eq!(
        c.raw()["selfservice"]["methods"]["oidc"]["config"]["providers"][0]["id"],
        json!("github")
    );
    assert_eq!(c.identity.schemas[0].id, "main");
}

#[test]
fn comma_separated_secrets_are_split_and_checked() {
    // `SECRETS_COOKIE=a,b` becomes ["a", "b"], which Kratos' schema rejects (secrets need 16+ characters).
    let err = error("short-secrets.yml", MINIMAL, &[("SECRETS_COOKIE", "a,b")]);
    assert!(err.contains("config key \"secrets.cookie.0\""), "{err}");
    assert!(err.contains("at least 16 characters"), "{err}");
    assert!(
        err.contains("(set by environment variable SECRETS_COOKIE)"),
        "{err}"
    );
    assert!(!err.contains("\"a\""), "secret values must not be echoed: {err}");
}

#[test]
fn env_values_of_the_wrong_type_are_reported_with_the_variable() {
    let err = error("bad-port.yml", MINIMAL, &[("SERVE_PUBLIC_PORT", "http")]);
    assert_eq!(
        err,
        "config key \"serve.public.port\": value \"http\" has the wrong type (string); expected integer \
         (set by environment variable SERVE_PUBLIC_PORT)"
    );
}

#[test]
fn precedence_defaults_then_files_then_env() {
    let base = file("precedence-base.yml", MINIMAL);
    let first = file(
        "first.yml",
        "serve:\n  public:\n    port: 1111\n  admin:\n    port: 2222\n",
    );
    let second = file("second.yml", "serve:\n  public:\n    port: 3333\n");
    let files = vec![base, first, second];
    let opts = LoadOptions {
        files: files.clone(),
        env: vec![],
        dev: false,
    };
    let c = load(&opts).unwrap();
    assert_eq!(c.serve.public.port, 3333); // second file beats first
    assert_eq!(c.serve.admin.port, 2222); // first file beats defaults
    assert_eq!(c.serve.admin.host, "0.0.0.0"); // schema default
    let opts = LoadOptions {
        files,
        env: env(&[("SERVE_PUBLIC_PORT", "4444")]),
        dev: false,
    };
    assert_eq!(load(&opts).unwrap().serve.public.port, 4444); // env beats files
}

#[test]
fn files_merge_deeply_and_replace_lists() {
    let first = file(
        "merge-a.yml",
        "selfservice:
  default_browser_return_url: http://127.0.0.1:4455/
  allowed_return_urls: [http://a.example, http://b.example]
  flows:
    login:
      ui_url: http://127.0.0.1:4455/login
      lifespan: 10m
",
    );
    let second = file(
        "merge-b.json",
        r#"{"selfservice": {"allowed_return_urls": ["http://c.example"], "flows": {"login": {"lifespan": "5m"}}}}"#,
    );
    let c = load(&LoadOptions {
        files: vec![file("merge-base.yml", MINIMAL), first, second],
        env: vec![],
        dev: false,
    })
    .unwrap();
    assert_eq!(c.selfservice.allowed_return_urls, vec!["http://c.example"]);
    assert_eq!(c.selfservice.flows.login.lifespan, Duration::from_secs(300));
    assert_eq!(c.selfservice.flows.login.ui_url, "http://127.0.0.1:4455/login");
    assert_eq!(c.selfservice.default_browser_return_url, "http://127.0.0.1:4455/");
}

#[test]
fn enum_errors_name_key_value_and_allowed_values() {
    let yaml = "\nselfservice:\n  flows:\n    settings:\n      required_aal: aal3\n";
    let err = error("aal.yml", yaml, &[]);
    assert_eq!(
        err,
        "config key \"selfservice.flows.settings.required_aal\": value \"aal3\" is not allowed; expected one of \
         \"aal1\", \"highest_available\""
    );
}

#[test]
fn missing_required_keys_are_named() {
    let err = load(&LoadOptions {
        files: vec![file("empty.yml", "")],
        ..Default::default()
    })
    .unwrap_err()
    .to_string();
    for key in [
        "dsn",
        "selfservice.default_browser_return_url",
        "identity.schemas",
    ] {
        assert!(
            err.contains(&format!("config key \"{key}\": is required but not set")),
            "{err}"
        );
    }
}

#[test]
fn invalid_durations_name_the_key() {
    let yaml = "\nselfservice:\n  flows:\n    login:\n      lifespan: 10\n";
    let err = error("duration.yml", yaml, &[]);
    assert!(
        err.contains("config key \"selfservice.flows.login.lifespan\""),
        "{err}"
    );
    assert!(err.contains("value 10 has the wrong type"), "{err}");
    let yaml = "\nsession:\n  lifespan: 1d\n";
    let err = error("duration2.yml", yaml, &[]);
    assert_eq!(
        err,
        "config key \"session.lifespan\": value \"1d\" is not a valid duration; expected a Go duration such as \
         \"1h\", \"10m\", \"1h30m\" or \"100ms\""
    );
}

#[test]
fn unknown_keys_get_a_suggestion() {
    let yaml = "\nserve:\n  public:\n    base_ulr: http://x/\n";
    let err = error("typo.yml", yaml, &[]);
    assert!(
        err.contains("config key \"serve.public.base_ulr\": unknown key"),
        "{err}"
    );
    assert!(err.contains("did you mean \"base_url\"?"), "{err}");
}

#[test]
fn unknown_hook_lists_the_known_hooks() {
    let yaml = "\nselfservice:\n  flows:\n    registration:\n      after:\n        password:\n          hooks:\n            - hook: sesion\n";
    let err = error("hook.yml", yaml, &[]);
    assert!(
        err.contains("config key \"selfservice.flows.registration.after.password.hooks.0.hook\""),
        "{err}"
    );
    assert!(
        err.contains("value \"sesion\" is not allowed; expected one of"),
        "{err}"
    );
    assert!(err.contains("\"session\""), "{err}");
}

#[test]
fn file_errors_name_the_file_and_line() {
    let missing = PathBuf::from("/nonexistent/kratos.yml");
    let err = load(&LoadOptions {
        files: vec![missing],
        env: vec![],
        dev: false,
    })
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "config file \"/nonexistent/kratos.yml\" not found"
    );

    let err = load_yaml("broken.yml", "dsn: memory\nserve:\n  public: [\n", &[], false).unwrap_err();
    match &err {
        ConfigError::Parse { line, .. } => assert!(line.is_some(), "{err}"),
        other => panic!("expected a parse error, got {other}"),
    }
    assert!(err.to_string().contains("broken.yml"), "{err}");

    let err = load_yaml("list.yml", "- a\n- b\n", &[], false).unwrap_err();
    assert!(err.to_string().contains("top level must be a mapping"), "{err}");

    let err = load_yaml("conf.toml", "dsn = 'memory'", &[], false).unwrap_err();
    assert!(matches!(err, ConfigError::UnsupportedFormat { .. }), "{err}");
}

#[test]
fn kratos_defaults() {
    let c = load_ok("defaults.yml", MINIMAL);
    assert_eq!((c.serve.public.port, c.serve.admin.port), (4433, 4434));
    assert_eq!(c.serve.public.host, "0.0.0.0");
    assert!(c.public_base_url().as_str().starts_with("https://"));
    assert!(c.public_base_url().as_str().ends_with(":4433/"));
    for kind in [
        FlowKind::Login,
        FlowKind::Registration,
        FlowKind::Settings,
        FlowKind::Recovery,
        FlowKind::Verification,
    ] {
        assert_eq!(c.flow_lifespan(kind), Duration::from_secs(3600));
    }
    assert_eq!(c.session.lifespan, Duration::from_secs(24 * 3600));
    assert!(c.session_cookie_persistent());
    assert_eq!(c.session_cookie_name(), "ory_kratos_session");
    assert_eq!(c.session.whoami.required_aal, RequiredAal::HighestAvailable);
    let flows = &c.selfservice.flows;
    assert_eq!(flows.settings.required_aal, RequiredAal::HighestAvailable);
    assert_eq!(
        flows.settings.privileged_session_max_age,
        Duration::from_secs(3600)
    );
    assert!(flows.registration.enabled);
    assert_eq!(flows.registration.style, RegistrationStyle::ProfileFirst);
    assert!(!flows.registration.enable_legacy_one_step);
    assert!(!flows.recovery.enabled && !flows.verification.enabled);
    assert_eq!(
        (flows.recovery.use_, flows.verification.use_),
        (AddressFlowMethod::Code, AddressFlowMethod::Code)
    );
    assert_eq!(c.hashers.algorithm, HashAlgorithm::Bcrypt);
    assert_eq!(c.bcrypt_cost(), 12);
    let argon2 = &c.hashers.argon2;
    assert_eq!(
        (
            argon2.memory.bytes(),
            argon2.iterations,
            argon2.salt_length,
            argon2.key_length
        ),
        (128 << 20, 1, 16, 32)
    );
    let cpus = std::thread::available_parallelism().unwrap().get() as u32;
    assert_eq!(argon2.parallelism, (2 * cpus).min(255));
    let m = &c.selfservice.methods;
    assert!(m.password.enabled && m.code.enabled && m.profile.enabled);
    assert!(!m.link.enabled && !m.totp.enabled && !m.lookup_secret.enabled && !m.webauthn.enabled);
    assert!(!m.passkey.enabled && !m.oidc.enabled);
    let p = &m.password.config;
    assert_eq!((p.min_password_length, p.max_breaches), (8, 0));
    assert!(p.identifier_similarity_check_enabled && p.haveibeenpwned_enabled && p.ignore_network_errors);
    assert_eq!(p.haveibeenpwned_host, "api.pwnedpasswords.com");
    assert!(
        !m.code.passwordless_enabled
            && !m.code.mfa_enabled
            && !m.code.config.missing_credential_fallback_enabled
    );
    assert_eq!(
        (m.code.config.lifespan, m.code.config.max_submissions),
        (Duration::from_secs(3600), 5)
    );
    assert_eq!(c.totp_issuer(), c.public_base_url().host_str().unwrap());
    assert_eq!(c.identity.default_schema_id, "default");
    assert_eq!(c.courier.smtp.from_address, "no-reply@ory.kratos.sh");
    assert_eq!(
        (c.courier.worker.pull_count, c.courier.worker.pull_wait),
        (10, Duration::from_secs(1))
    );
    assert_eq!(c.courier.message_retries, 5);
    assert_eq!(c.courier.delivery_strategy, DeliveryStrategy::Smtp);
    assert_eq!((c.cookie_path(), c.cookie_same_site()), ("/", SameSite::Lax));
    assert_eq!((c.log.level, c.log.format), (LogLevel::Info, LogFormat::Text));
    assert!(!c.feature_flags.use_continue_with_transitions && !c.feature_flags.cacheable_sessions);
    assert!(!c.security.account_enumeration.mitigate);
    assert_eq!(c.database.cleanup.batch_size, 100);
    assert!(c.session_cookie_secure(false) && !c.session_cookie_secure(true));
    assert!(c.uses_generated_secret());
    assert_eq!(c.cookie_secrets().len(), 1);
    assert!(c.cookie_secrets()[0].len() >= 32);
    assert!(c.unimplemented_keys().is_empty(), "{:?}", c.unimplemented_keys());
    let warnings = c.load_warnings().join("\n");
    assert!(
        warnings.contains("\"serve.public.base_url\" is not set"),
        "{warnings}"
    );
    assert!(
        warnings.contains("\"serve.admin.base_url\" is not set"),
        "{warnings}"
    );
    assert!(warnings.contains("random secret"), "{warnings}");
}

#[test]
fn dev_mode_guesses_http_localhost_and_allows_cheap_bcrypt() {
    let yaml = "\nhashers:\n  bcrypt:\n    cost: 4\n";
    let c = load_yaml("dev.yml", yaml, &[], true).unwrap();
    assert!(c.is_dev());
    assert_eq!(c.public_base_url().as_str(), "http://127.0.0.1:4433/");
    assert_eq!(c.admin_base_url().as_str(), "http://127.0.0.1:4434/");
    assert_eq!(c.bcrypt_cost(), 4);
    assert_eq!(load_ok("prod-bcrypt.yml", yaml).bcrypt_cost(), 12);
    let yaml = "\nserve:\n  public:\n    host: 10.1.2.3\n    port: 8080\n";
    let c = load_yaml("dev-host.yml", yaml, &[], true).unwrap();
    assert_eq!(c.public_base_url().as_str(), "http://10.1.2.3:8080/");
    // `DEV=true` is the `dev` key, as in Kratos.
    assert!(
        load_yaml("dev-env.yml", MINIMAL, &[("DEV", "true")], false)
            .unwrap()
            .is_dev()
    );
}

#[test]
fn base_urls_always_end_with_a_slash() {
    let yaml = "\nserve:\n  public:\n    base_url: https://auth.example.com/kratos\n  admin:\n    base_url: http://admin:4434\n";
    let c = load_ok("base-url.yml", yaml);
    assert_eq!(c.public_base_url().as_str(), "https://auth.example.com/kratos/");
    assert_eq!(c.admin_base_url().as_str(), "http://admin:4434/");
}

#[test]
fn dev_defaults_load_without_any_file() {
    let c = load_with_base(
        dev_defaults(),
        &LoadOptions {
            dev: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(c.dsn, "sqlite://sallyport.sqlite?mode=rwc");
    assert_eq!(c.default_browser_return_url().as_str(), "http://127.0.0.1:4455/");
    assert_eq!(c.public_base_url().as_str(), "http://127.0.0.1:4433/");
    let url = &c.identity.schemas[0].url;
    let encoded = url.strip_prefix("base64://").unwrap();
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
    let schema: Value = serde_json::from_slice(&decoded).unwrap();
    assert_eq!(schema["properties"]["traits"]["required"], json!(["email"]));
    assert!(c.unimplemented_keys().is_empty());
    // Env still overrides the base.
    let opts = LoadOptions {
        env: env(&[("DSN", "memory")]),
        dev: true,
        ..Default::default()
    };
    assert!(load_with_base(dev_defaults(), &opts).unwrap().dsn_is_memory());
}

#[test]
fn method_hooks_replace_flow_hooks() {
    let yaml = "selfservice:
  default_browser_return_url: http://127.0.0.1:4455/home
  flows:
    registration:
      after:
        default_browser_return_url: /welcome
        hooks:
          - hook: web_hook
            config:
              url: https://hooks.example.com/registered
              method: POST
        password:
          default_browser_return_url: https://app.example.com/after-password
          hooks:
            - hook: session
        code:
          default_browser_return_url: https://app.example.com/after-code
    login:
      after:
        hooks:
          - hook: require_verified_address
";
    let c = load_ok("hooks.yml", yaml);
    let names = |hooks: Vec<Hook>| hooks.into_iter().map(|h| h.hook).collect::<Vec<_>>();
    assert_eq!(names(c.after_hooks("registration", "password")), ["session"]);
    // `after.code` exists but lists no hooks, so the flow's hooks apply (Kratos only replaces when non-empty).
    assert_eq!(names(c.after_hooks("registration", "code")), ["web_hook"]);
    assert_eq!(names(c.after_hooks("registration", "oidc")), ["web_hook"]);
    assert_eq!(
        names(c.after_hooks("login", "password")),
        ["require_verified_address"]
    );
    assert!(c.after_hooks("settings", "password").is_empty());
    assert!(c.after_hooks("nonsense", "password").is_empty());

    let url = |flow, method| c.after_default_return_url(flow, method).to_string();
    assert_eq!(
        url("registration", "password"),
        "https://app.example.com/after-password"
    );
    assert_eq!(url("registration", "code"), "https://app.example.com/after-code");
    // Relative URLs resolve against the public base URL.
    assert_eq!(
        url("registration", "oidc"),
        format!("{}welcome", c.public_base_url())
    );
    assert_eq!(url("login", "password"), "http://127.0.0.1:4455/home");
    assert_eq!(c.logout_return_url().as_str(), "http://127.0.0.1:4455/home");
}

#[test]
fn cookie_settings_fall_back_and_accept_string_booleans() {
    let yaml = "cookies:
  domain: example.com
  path: /auth
  same_site: Strict
  secure: \"false\"
session:
  cookie:
    same_site: None
";
    let c = load_ok("cookies.yml", yaml);
    assert_eq!(c.session_cookie_domain(), Some("example.com"));
    assert_eq!(c.session_cookie_path(), "/auth");
    assert_eq!(c.session_cookie_same_site(), SameSite::None);
    assert_eq!(c.cookie_same_site(), SameSite::Strict);
    assert!(!c.session_cookie_secure(false));
    let c = load_yaml(
        "cookies-env.yml",
        yaml,
        &[("SESSION_COOKIE_SECURE", "true")],
        false,
    )
    .unwrap();
    assert!(c.session_cookie_secure(true));
    assert!(!c.cookie_secure(false));
}

#[test]
fn secrets_fall_back_to_default() {
    let yaml = "\nsecrets:\n  default:\n    - a-default-secret-of-length\n";
    let c = load_ok("secrets.yml", yaml);
    assert_eq!(c.cookie_secrets(), vec!["a-default-secret-of-length"]);
    assert!(!c.uses_generated_secret());
    assert!(
        !format!("{c:?}").contains("a-default-secret-of-length"),
        "Debug must hide secrets"
    );
}

#[test]
fn unimplemented_keys_are_listed() {
    let yaml = "oauth2_provider:
  url: https://hydra.example.com
session:
  whoami:
    required_aal: aal1
    tokenizer:
      templates:
        jwt:
          jwks_url: https://example.com/jwks.json
ciphers:
  algorithm: noop
";
    let c = load_ok("unimplemented.yml", yaml);
    assert_eq!(
        c.unimplemented_keys(),
        [
            "oauth2_provider.url",
            "session.whoami.tokenizer.templates.jwt.jwks_url",
            "ciphers.algorithm"
        ]
    );
}

#[test]
fn hash_is_stable_and_tracks_changes() {
    let a = load_ok("hash-a.yml", MINIMAL);
    let b = load_ok("hash-b.yml", MINIMAL);
    assert_eq!(a.hash(), b.hash());
    assert_eq!(a.hash().len(), 64);
    let c = load_yaml("hash-c.yml", MINIMAL, &[("LOG_LEVEL", "debug")], false).unwrap();
    assert_ne!(a.hash(), c.hash());
}

#[test]
fn argon2_memory_sizes_are_parsed() {
    let yaml = "\nhashers:\n  algorithm: argon2\n  argon2:\n    memory: 64MB\n    parallelism: 1\n";
    let c = load_ok("argon2.yml", yaml);
    assert_eq!(c.hashers.algorithm, HashAlgorithm::Argon2);
    assert_eq!(c.hashers.argon2.memory.kibibytes(), 65536);
    assert_eq!(c.hashers.argon2.parallelism, 1);
    let yaml = "\nhashers:\n  argon2:\n    memory: lots\n";
    let err = error("argon2-bad.yml", yaml, &[]);
    assert!(
        err.contains("config key \"hashers.argon2.memory\": value \"lots\" is not a valid size"),
        "{err}"
    );
}
