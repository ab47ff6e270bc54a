//! Schema validation, with every validator error turned into an [`Issue`] a person can act on.

use jsonschema::ValidationError;
use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::Value;

use crate::error::Issue;
use crate::path::{Seg, dotted, from_location};

const DURATION_PATTERNS: &[&str] = &[
    "^([0-9]+(ns|us|ms|s|m|h))+$",
    "^[0-9]+(ns|us|ms|s|m|h)$",
    "^([1-9][0-9]*(ns|us|ms|s|m|h))+$",
];
const BYTESIZE_PATTERN: &str = "^[0-9]+(B|KB|MB|GB|TB|PB|EB)";

/// Keys whose values must never be echoed in messages.
fn is_sensitive(key: &str) -> bool {
    key == "dsn"
        || key.starts_with("secrets.")
        || key == "secrets"
        || key.ends_with("connection_uri")
        || key.ends_with("password")
        || key.ends_with("client_secret")
        || key.ends_with("private_key")
}

/// Validates `doc` against the embedded Kratos config schema.
pub(crate) fn validate(doc: &Value) -> Result<Result<(), Vec<Issue>>, String> {
    let validator = crate::schema::validator()?;
    let mut issues = Vec::new();
    for error in validator.iter_errors(doc) {
        describe(&error, &mut issues);
    }
    issues.sort_by(|a, b| a.key.cmp(&b.key));
    issues.dedup();
    // A wrong type explains everything else wrong with the same key (e.g. its enum).
    let mistyped: Vec<String> = issues
        .iter()
        .filter(|i| i.message.contains("has the wrong type"))
        .map(|i| i.key.clone())
        .collect();
    issues.retain(|i| !mistyped.contains(&i.key) || i.message.contains("has the wrong type"));
    Ok(if issues.is_empty() { Ok(()) } else { Err(issues) })
}

fn show(key: &str, value: &Value) -> String {
    if is_sensitive(key) {
        return "(hidden)".into();
    }
    let text = value.to_string();
    if text.chars().count() > 80 {
        let cut: String = text.chars().take(77).collect();
        format!("{cut}...")
    } else {
        text
    }
}

fn quoted_list(values: &[Value]) -> String {
    values.iter().map(Value::to_string).collect::<Vec<_>>().join(", ")
}

fn issue(key: String, message: String) -> Issue {
    Issue {
        key,
        message,
        env_var: None,
    }
}

/// Appends the issue(s) for one validator error.
fn describe(error: &ValidationError<'_>, out: &mut Vec<Issue>) {
    let segs = from_location(error.instance_path());
    let key = dotted(&segs);
    let value = error.instance();
    let shown = show(&key, value);
    let message = match error.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| property.to_string());
            let mut required = segs.clone();
            required.push(Seg::Key(name));
            out.push(issue(dotted(&required), "is required but not set".into()));
            return;
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let allowed = crate::schema::allowed_children(&segs);
            for name in unexpected {
                let mut child = segs.clone();
                child.push(Seg::Key(name.clone()));
                let hint = allowed
                    .iter()
                    .map(|a| (strsim::levenshtein(a, name), *a))
                    .filter(|(d, _)| *d <= (name.chars().count() / 3).max(1))
                    .min()
                    .map(|(_, a)| format!("; did you mean \"{a}\"?"))
                    .unwrap_or_default();
                let place = if key.is_empty() {
                    "at the top level".to_owned()
                } else {
                    format!("under \"{key}\"")
                };
                out.push(issue(
                    dotted(&child),
                    format!("unknown key; it is not allowed {place}{hint}"),
                ));
            }
            return;
        }
        ValidationErrorKind::Enum { options } => {
            let options = options
                .as_array()
                .map(|o| quoted_list(o))
                .unwrap_or_else(|| options.to_string());
            format!("value {shown} is not allowed; expected one of {options}")
        }
        ValidationErrorKind::Constant { expected_value } => {
            format!("value {shown} is not allowed; expected {expected_value}")
        }
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => t.to_string(),
                TypeKind::Multiple(set) => set.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(" or "),
            };
            format!(
                "value {shown} has the wrong type ({}); expected {expected}",
                json_type(value)
            )
        }
        ValidationErrorKind::Pattern { pattern } => {
            if DURATION_PATTERNS.contains(&pattern.as_str()) {
                format!(
                    "value {shown} is not a valid duration; expected a Go duration such as \"1h\", \"10m\", \"1h30m\" or \"100ms\""
                )
            } else if pattern == BYTESIZE_PATTERN {
                format!(
                    "value {shown} is not a valid size; expected a number with a unit (B, KB, MB, GB, TB, PB, EB) such as \"128MB\""
                )
            } else if pattern.starts_with("^smtps?://") {
                format!("value {shown} is not allowed; expected a URL starting with smtp:// or smtps://")
            } else if pattern.starts_with("^https?://") {
                format!("value {shown} is not allowed; expected a URL starting with http:// or https://")
            } else {
                format!("value {shown} does not match the required pattern {pattern:?}")
            }
        }
        ValidationErrorKind::Format { format } => {
            let expected = match format.as_str() {
                "uri" => "an absolute URL such as \"https://example.com/path\"".to_owned(),
                "uri-reference" => "a URL or a path such as \"/welcome\"".to_owned(),
                "email" => "an email address".to_owned(),
                other => format!("a valid {other}"),
            };
            format!("value {shown} is not a valid {format}; expected {expected}")
        }
        ValidationErrorKind::MinLength { limit } => {
            format!("value {shown} is too short; it must be at least {limit} characters long")
        }
        ValidationErrorKind::MaxLength { limit } => {
            format!("value {shown} is too long; it must be at most {limit} characters long")
        }
        ValidationErrorKind::MinItems { limit } => format!("must list at least {limit} item(s)"),
        ValidationErrorKind::MaxItems { limit } => format!("must list at most {limit} item(s)"),
        ValidationErrorKind::UniqueItems => "must not list the same value twice".into(),
        ValidationErrorKind::Minimum { limit } => format!("value {shown} is too small; minimum is {limit}"),
        ValidationErrorKind::Maximum { limit } => format!("value {shown} is too large; maximum is {limit}"),
        ValidationErrorKind::ExclusiveMinimum { limit } => {
            format!("value {shown} must be greater than {limit}")
        }
        ValidationErrorKind::ExclusiveMaximum { limit } => format!("value {shown} must be less than {limit}"),
        ValidationErrorKind::Not { .. } | ValidationErrorKind::FalseSchema => {
            "this key is not allowed here (it conflicts with another setting)".into()
        }
        ValidationErrorKind::OneOfMultipleValid { .. } => {
            format!("value {shown} is ambiguous; it matches more than one of the allowed shapes")
        }
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            describe_alternatives(&key, &shown, context, out);
            return;
        }
        _ => format!("{error}"),
    };
    out.push(issue(key, message));
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `anyOf`/`oneOf` failed: explain the alternative that came closest, or, when every alternative
/// rejected the same discriminator key (like `hook` or `provider`), list the values that key may take.
fn describe_alternatives(
    key: &str,
    shown: &str,
    context: &[Vec<ValidationError<'static>>],
    out: &mut Vec<Issue>,
) {
    struct Alt {
        issues: Vec<Issue>,
        /// Keys rejected by `const`/`enum`: (key, allowed values, the value found).
        rejected: Vec<(String, Vec<Value>, String)>,
    }
    let alts: Vec<Alt> = context
        .iter()
        .map(|alternative| {
            let mut alt = Alt {
                issues: Vec::new(),
                rejected: Vec::new(),
            };
            for e in alternative {
                describe(e, &mut alt.issues);
                let allowed = match e.kind() {
                    ValidationErrorKind::Constant { expected_value } => vec![(**expected_value).clone()],
                    ValidationErrorKind::Enum { options } => options.as_array().cloned().unwrap_or_default(),
                    _ => continue,
                };
                let at = dotted(&from_location(e.instance_path()));
                let found = show(&at, e.instance());
                alt.rejected.push((at, allowed, found));
            }
            alt
        })
        .collect();
    let Some(first) = alts.first() else {
        out.push(issue(
            key.to_owned(),
            format!("value {shown} does not match any of the allowed shapes"),
        ));
        return;
    };
    // A key that every alternative rejected with const/enum is the discriminator.
    let shared = first
        .rejected
        .iter()
        .find(|(at, _, _)| alts.iter().all(|a| a.rejected.iter().any(|(k, _, _)| k == at)));
    if let Some((at, _, found)) = shared {
        let mut allowed: Vec<Value> = Vec::new();
        for (_, values, _) in alts
            .iter()
            .flat_map(|a| a.rejected.iter().filter(|(k, _, _)| k == at))
        {
            for v in values {
                if !allowed.contains(v) {
                    allowed.push(v.clone());
                }
            }
        }
        out.push(issue(
            at.clone(),
            format!(
                "value {found} is not allowed; expected one of {}",
                quoted_list(&allowed)
            ),
        ));
        return;
    }
    // Otherwise the alternative with the fewest problems, preferring ones whose discriminator matched.
    let best = alts
        .into_iter()
        .filter(|a| !a.issues.is_empty())
        .min_by_key(|a| (!a.rejected.is_empty(), a.issues.len()));
    match best {
        Some(alt) => out.extend(alt.issues),
        None => out.push(issue(
            key.to_owned(),
            format!("value {shown} does not match any of the allowed shapes"),
        )),
    }
}
