//! `sallyport.rate_limits`: defaults, every key set, partial overrides, disabling, and clear errors.

use std::path::PathBuf;
use std::time::Duration;

use sallyport_config::*;

const HOUR: Duration = Duration::from_secs(3600);
const MINUTE: Duration = Duration::from_secs(60);

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sallyport")
        .join(name)
}

fn with(rate_limits: serde_json::Value) -> Result<Config, ConfigError> {
    from_value(
        serde_json::json!({
            "dsn": "memory",
            "selfservice": {"default_browser_return_url": "http://127.0.0.1:4455/"},
            "identity": {"schemas": [{"id": "default", "url": "file:///etc/identity.schema.json"}]},
            "sallyport": {"rate_limits": rate_limits},
        }),
        false,
    )
}

#[test]
fn per_identity_budgets_are_on_by_default_and_per_ip_is_off() {
    let c = with(serde_json::json!({})).unwrap();
    let r = &c.sallyport.rate_limits;
    assert_eq!(
        r.codes_sent(),
        Some(Limit {
            limit: 10,
            window: HOUR
        })
    );
    assert_eq!(
        r.code_guesses(),
        Some(Limit {
            limit: 10,
            window: HOUR
        })
    );
    assert_eq!(
        r.second_factor_guesses(),
        Some(Limit {
            limit: 10,
            window: HOUR
        })
    );
    let p = r.password_failures_per_identifier.resolve().unwrap();
    assert_eq!(
        p.limit,
        Limit {
            limit: 10,
            window: HOUR
        }
    );
    assert_eq!(
        (p.backoff, p.max_backoff),
        (Duration::from_secs(1), Duration::from_secs(300))
    );
    assert_eq!(r.per_ip.flow_creations(), None);
    assert_eq!(r.per_ip.submissions(), None);
    assert!(r.per_ip.trusted_proxies.is_empty());
    let none = from_value(
        serde_json::json!({
            "dsn": "memory",
            "selfservice": {"default_browser_return_url": "http://127.0.0.1:4455/"},
            "identity": {"schemas": [{"id": "default", "url": "file:///etc/identity.schema.json"}]},
        }),
        false,
    )
    .unwrap();
    assert_eq!(
        none.sallyport.rate_limits.code_guesses(),
        Some(Limit {
            limit: 10,
            window: HOUR
        })
    );
}

#[test]
fn the_fixture_sets_every_key() {
    let c = load(&LoadOptions {
        files: vec![fixture("rate-limits.yml")],
        env: vec![],
        dev: false,
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let r = &c.sallyport.rate_limits;
    assert_eq!(
        r.codes_sent(),
        Some(Limit {
            limit: 5,
            window: HOUR
        })
    );
    assert_eq!(r.second_factor_guesses(), None, "disabled");
    let p = r.password_failures_per_identifier.resolve().unwrap();
    assert_eq!(
        (p.backoff, p.max_backoff),
        (Duration::from_secs(2), Duration::from_secs(600))
    );
    assert_eq!(
        r.per_ip.flow_creations(),
        Some(Limit {
            limit: 120,
            window: MINUTE
        })
    );
    assert_eq!(
        r.per_ip.submissions(),
        Some(Limit {
            limit: 60,
            window: MINUTE
        })
    );
    let proxies: Vec<String> = r.per_ip.trusted_proxies.iter().map(ToString::to_string).collect();
    assert_eq!(proxies, ["10.0.0.0/8", "192.0.2.7/32", "fd00::/8"]);
}

#[test]
fn one_number_changes_alone() {
    let c = with(serde_json::json!({"code_guesses_per_identity": {"window": "2s"}, "per_ip": {"enabled": true, "submissions": {"enabled": false}}})).unwrap();
    let r = &c.sallyport.rate_limits;
    assert_eq!(
        r.code_guesses(),
        Some(Limit {
            limit: 10,
            window: Duration::from_secs(2)
        })
    );
    assert_eq!(
        r.per_ip.flow_creations(),
        Some(Limit {
            limit: 60,
            window: MINUTE
        })
    );
    assert_eq!(r.per_ip.submissions(), None);
    let c = with(serde_json::json!({"password_failures_per_identifier": {"enabled": false}})).unwrap();
    assert!(
        c.sallyport
            .rate_limits
            .password_failures_per_identifier
            .resolve()
            .is_none()
    );
}

#[test]
fn bad_values_name_the_key() {
    let err = with(serde_json::json!({"codes_sent_per_address": {"limit": 0}}))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("sallyport.rate_limits.codes_sent_per_address.limit"),
        "{err}"
    );
    let err = with(serde_json::json!({"code_guesses_per_identity": {"window": "1 day"}}))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("sallyport.rate_limits.code_guesses_per_identity.window"),
        "{err}"
    );
    assert!(err.contains("not a valid duration"), "{err}");
    let err = with(serde_json::json!({"per_ip": {"trusted_proxies": ["10.0.0.0/33"]}}))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("sallyport.rate_limits.per_ip.trusted_proxies"),
        "{err}"
    );
    assert!(err.contains("not an IP address or CIDR block"), "{err}");
    let err = with(serde_json::json!({"codes_sent": {"limit": 1}}))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `codes_sent`"), "{err}");
}
