//! Environment overrides with Kratos' rules (ory/x configx): an env var name, lower-cased with `_` read as
//! `.`, is compared with every config-schema key path whose own `_` are read as `.` too; array items are
//! addressed by number. Values are cast by the schema type. Names matching no key path are ignored.

use serde_json::Value;

use crate::path::{Seg, dotted};
use crate::schema::{TypeHint, paths};

/// An env var that set a config key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvOverride {
    /// The variable's name as given, e.g. `SERVE_PUBLIC_BASE_URL`.
    pub var: String,
    /// The config key it set, e.g. `serve.public.base_url`.
    pub key: String,
}

/// Finds the config key path an env var name addresses, if any.
pub(crate) fn match_var(name: &str) -> Option<(Vec<Seg>, &'static TypeHint)> {
    let lowered = name.to_ascii_lowercase();
    let tokens: Vec<&str> = lowered.split('_').collect();
    if tokens.iter().any(|t| t.is_empty()) {
        return None;
    }
    paths()
        .iter()
        .find_map(|p| bind(&p.segs, &tokens).map(|segs| (segs, &p.hint)))
}

/// Matches env tokens against one schema path; returns the concrete path (with real indices).
fn bind(pattern: &[Seg], tokens: &[&str]) -> Option<Vec<Seg>> {
    let mut rest = tokens;
    let mut out = Vec::with_capacity(pattern.len());
    for seg in pattern {
        match seg {
            Seg::Key(key) => {
                for part in key.split(['_', '.']) {
                    let (first, tail) = rest.split_first()?;
                    if *first != part {
                        return None;
                    }
                    rest = tail;
                }
                out.push(seg.clone());
            }
            Seg::Index(_) => {
                let (first, tail) = rest.split_first()?;
                if first.is_empty() || !first.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                out.push(Seg::Index(first.parse().ok()?));
                rest = tail;
            }
        }
    }
    rest.is_empty().then_some(out)
}

/// Turns env text into JSON by the schema type. Text that does not fit the type is kept as a string,
/// so that validation reports it with the key path instead of it silently becoming `0` or `false`.
pub(crate) fn cast(text: &str, hint: &TypeHint) -> Value {
    let as_string = || Value::String(text.to_owned());
    match hint {
        TypeHint::String => as_string(),
        TypeHint::Integer => text
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| as_string()),
        TypeHint::Number => text
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or_else(as_string),
        TypeHint::Boolean => parse_bool(text).map(Value::Bool).unwrap_or_else(as_string),
        TypeHint::Array(item) => {
            let trimmed = text.trim();
            if trimmed.starts_with('[') {
                serde_json::from_str(trimmed).unwrap_or_else(|_| as_string())
            } else if trimmed.is_empty() {
                Value::Array(Vec::new())
            } else {
                Value::Array(trimmed.split(',').map(|part| cast(part.trim(), item)).collect())
            }
        }
        TypeHint::Object | TypeHint::Any => {
            let trimmed = text.trim();
            if trimmed.starts_with('{') || trimmed.starts_with('[') {
                serde_json::from_str(trimmed).unwrap_or_else(|_| as_string())
            } else {
                as_string()
            }
        }
    }
}

/// Go's `strconv.ParseBool`.
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    match text.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Applies every matching env var to `doc`, in the order given; returns what was applied.
pub(crate) fn apply(doc: &mut Value, env: &[(String, String)]) -> Vec<EnvOverride> {
    let mut applied = Vec::new();
    for (name, text) in env {
        let Some((segs, hint)) = match_var(name) else {
            continue;
        };
        crate::path::set(doc, &segs, cast(text, hint));
        applied.push(EnvOverride {
            var: name.clone(),
            key: dotted(&segs),
        });
    }
    applied
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(name: &str) -> Option<String> {
        match_var(name).map(|(segs, _)| dotted(&segs))
    }

    #[test]
    fn matches_kratos_env_names() {
        assert_eq!(key("DSN").as_deref(), Some("dsn"));
        assert_eq!(
            key("SERVE_PUBLIC_BASE_URL").as_deref(),
            Some("serve.public.base_url")
        );
        assert_eq!(
            key("SELFSERVICE_FLOWS_LOGIN_UI_URL").as_deref(),
            Some("selfservice.flows.login.ui_url")
        );
        assert_eq!(
            key("COURIER_SMTP_CONNECTION_URI").as_deref(),
            Some("courier.smtp.connection_uri")
        );
        assert_eq!(key("LOG_LEVEL").as_deref(), Some("log.level"));
        assert_eq!(
            key("SELFSERVICE_METHODS_OIDC_CONFIG_PROVIDERS_0_CLIENT_ID").as_deref(),
            Some("selfservice.methods.oidc.config.providers.0.client_id")
        );
        assert_eq!(
            key("IDENTITY_SCHEMAS_2_URL").as_deref(),
            Some("identity.schemas.2.url")
        );
        assert_eq!(key("PATH"), None);
        assert_eq!(key("HOME"), None);
        assert_eq!(key("SERVE__PUBLIC"), None);
        assert_eq!(key("SERVE_PUBLIC_BASE_URL_X"), None);
    }

    #[test]
    fn casts_by_schema_type() {
        let mut doc = json!({});
        let env = [
            ("SECRETS_COOKIE", "a,b"),
            ("SELFSERVICE_METHODS_PASSWORD_ENABLED", "false"),
            ("SERVE_PUBLIC_PORT", "1234"),
            ("IDENTITY_SCHEMAS", r#"[{"id":"default","url":"file:///x.json"}]"#),
            ("COURIER_SMTP_HEADERS", r#"{"X-A":"b"}"#),
            ("SERVE_ADMIN_PORT", "not-a-number"),
            ("UNRELATED_THING", "x"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let applied = apply(&mut doc, &env);
        assert_eq!(applied.len(), 6);
        assert_eq!(
            doc,
            json!({
                "secrets": {"cookie": ["a", "b"]},
                "selfservice": {"methods": {"password": {"enabled": false}}},
                "serve": {"public": {"port": 1234}, "admin": {"port": "not-a-number"}},
                "identity": {"schemas": [{"id": "default", "url": "file:///x.json"}]},
                "courier": {"smtp": {"headers": {"X-A": "b"}}},
            })
        );
    }

    #[test]
    fn json_arrays_and_bools() {
        assert_eq!(
            cast(r#"["a","b"]"#, &TypeHint::Array(Box::new(TypeHint::String))),
            json!(["a", "b"])
        );
        assert_eq!(cast("1", &TypeHint::Boolean), json!(true));
        assert_eq!(cast("yes", &TypeHint::Boolean), json!("yes"));
        assert_eq!(cast("1.5", &TypeHint::Number), json!(1.5));
    }
}
