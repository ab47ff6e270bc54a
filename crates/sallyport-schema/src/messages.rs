//! Validation errors as Kratos renders them (`ui/container/container.go` translateValidationError,
//! `text/message_validation.go`). The message ids, texts and context keys are interface facts
//! (see `ui-messages.json`); the texts reproduce ory/jsonschema's wording because Kratos parses
//! its messages back into numbers before re-rendering them.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use jsonschema::{ValidationError, error::TypeKind, error::ValidationErrorKind};
use sallyport_core::text::{self, Message, MessageType};
use serde_json::{Value, json};

use crate::TraitError;
use crate::gofmt::{float_v, json_float, quote, sharp_v};
use crate::walk::{dot_path, json_type, pointer_get};

fn error(id: u32, text: String, context: Option<Value>) -> Message {
    Message {
        id,
        text,
        kind: MessageType::Error,
        context,
    }
}

pub(crate) fn generic(reason: &str) -> Message {
    text::validation_generic(reason)
}

fn minimum(id: u32, op: &str, key: &str, limit: f64, actual: f64) -> Message {
    error(
        id,
        format!("must be {op} {} but found {}", float_v(limit), float_v(actual)),
        Some(json!({ key: json_float(limit), "actual": json_float(actual) })),
    )
}

/// The message for a failed `format` check, as Kratos derives it from ory/jsonschema's
/// `"<value>" is not valid "<format>"`.
pub(crate) fn format_error(value: &str, format: &str) -> Message {
    match format {
        "email" | "email_loose" => text::validation_email().with_context(json!({ "value": value })),
        "tel" => error(
            4000041,
            "Enter a valid phone number".into(),
            Some(json!({ "value": value })),
        ),
        _ => generic(&format!("{} is not valid {}", quote(value), quote(format))),
    }
}

/// Where a message goes: the dotted instance path, except that the document root and the
/// `traits` object itself (which has no node) are reported on the flow.
pub(crate) fn field_for(segments: &[String]) -> Option<String> {
    match segments {
        [] => None,
        [only] if only == "traits" => None,
        _ => Some(dot_path(segments.iter().map(String::as_str))),
    }
}

fn segments_of(err: &ValidationError<'_>) -> Vec<String> {
    let path = err.instance_path().as_str();
    if path.is_empty() {
        return vec![];
    }
    path.trim_start_matches('/')
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect()
}

fn as_f64(v: &Value) -> f64 {
    v.as_f64().unwrap_or(-1.0)
}

/// Translates one error from the `jsonschema` crate into Kratos' messages, appending to `out`.
/// Composite errors (`anyOf`, `oneOf`) contribute their causes, as Kratos' `ParseError` does.
pub(crate) fn translate(err: &ValidationError<'_>, schema: &Value, out: &mut Vec<TraitError>) {
    let segments = segments_of(err);
    let instance = err.instance().as_ref();
    let push = |out: &mut Vec<TraitError>, message: Message| {
        out.push(TraitError {
            field: field_for(&segments),
            message,
        });
    };
    match err.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property
                .as_str()
                .map_or_else(|| property.to_string(), str::to_string);
            if let Some(owner) = dependency_owner(err, schema, &name) {
                push(
                    out,
                    generic(&format!(
                        "property {} is required, if {} property exists",
                        quote(&name),
                        quote(&owner)
                    )),
                );
                return;
            }
            let mut missing = segments.clone();
            missing.push(name.clone());
            out.push(TraitError {
                field: field_for(&missing),
                message: text::validation_required(&name),
            });
        }
        ValidationErrorKind::MinLength { limit } => {
            let actual = instance.as_str().map_or(0, |s| s.chars().count()) as u64;
            push(out, text::validation_min_length(*limit, actual));
        }
        ValidationErrorKind::MaxLength { limit } => {
            let actual = instance.as_str().map_or(0, |s| s.chars().count()) as u64;
            push(out, text::validation_max_length(*limit, actual));
        }
        ValidationErrorKind::Pattern { pattern } => push(out, text::validation_pattern(pattern)),
        ValidationErrorKind::Minimum { limit } => push(
            out,
            minimum(4000018, ">=", "minimum", as_f64(limit), as_f64(instance)),
        ),
        ValidationErrorKind::ExclusiveMinimum { limit } => push(
            out,
            minimum(4000019, ">", "minimum", as_f64(limit), as_f64(instance)),
        ),
        ValidationErrorKind::Maximum { limit } => push(
            out,
            minimum(4000020, "<=", "maximum", as_f64(limit), as_f64(instance)),
        ),
        ValidationErrorKind::ExclusiveMaximum { limit } => push(
            out,
            minimum(4000021, "<", "maximum", as_f64(limit), as_f64(instance)),
        ),
        ValidationErrorKind::MultipleOf { multiple_of } => {
            let (base, actual) = (*multiple_of, as_f64(instance));
            push(
                out,
                error(
                    4000022,
                    format!("{} not multipleOf {}", float_v(actual), float_v(base)),
                    Some(json!({ "base": json_float(base), "actual": json_float(actual) })),
                ),
            );
        }
        ValidationErrorKind::MaxItems { limit } => {
            let actual = instance.as_array().map_or(0, Vec::len);
            push(
                out,
                error(
                    4000023,
                    format!("maximum {limit} items allowed, but found {actual} items"),
                    Some(json!({ "max_items": limit, "actual_items": actual })),
                ),
            );
        }
        ValidationErrorKind::MinItems { limit } => {
            let actual = instance.as_array().map_or(0, Vec::len);
            push(
                out,
                error(
                    4000024,
                    format!("minimum {limit} items allowed, but found {actual} items"),
                    Some(json!({ "min_items": limit, "actual_items": actual })),
                ),
            );
        }
        ValidationErrorKind::UniqueItems => {
            let (a, b) = first_duplicate(instance).unwrap_or((-1, -1));
            push(
                out,
                error(
                    4000025,
                    format!("items at index {a} and {b} are equal"),
                    Some(json!({ "index_a": a, "index_b": b })),
                ),
            );
        }
        ValidationErrorKind::Type { kind } => {
            let allowed = allowed_types(err, schema, kind);
            let actual = json_type(instance);
            push(
                out,
                error(
                    4000026,
                    format!("expected {}, but got {actual}", allowed.join(" or ")),
                    Some(json!({ "allowed_types": allowed, "actual_type": actual })),
                ),
            );
        }
        ValidationErrorKind::Constant { expected_value } => {
            let message = match expected_value.as_ref() {
                Value::Object(_) | Value::Array(_) => error(4000030, "const failed".into(), None),
                other => {
                    let expected = sharp_v(other);
                    error(
                        4000029,
                        format!("must be equal to constant {expected}"),
                        Some(json!({ "expected": expected })),
                    )
                }
            };
            push(out, message);
        }
        ValidationErrorKind::Format { format } => {
            let value = match instance {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            push(out, format_error(&value, format));
        }
        ValidationErrorKind::Enum { options } => push(out, generic(&enum_message(options))),
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let names: Vec<String> = unexpected.iter().map(|n| quote(n)).collect();
            push(
                out,
                generic(&format!("additionalProperties {} not allowed", names.join(", "))),
            );
        }
        ValidationErrorKind::MinProperties { limit } => {
            let actual = instance.as_object().map_or(0, |m| m.len());
            push(
                out,
                generic(&format!(
                    "minimum {limit} properties allowed, but found {actual} properties"
                )),
            );
        }
        ValidationErrorKind::MaxProperties { limit } => {
            let actual = instance.as_object().map_or(0, |m| m.len());
            push(
                out,
                generic(&format!(
                    "maximum {limit} properties allowed, but found {actual} properties"
                )),
            );
        }
        ValidationErrorKind::FalseSchema => push(out, generic("always fail")),
        ValidationErrorKind::Not { .. } => push(out, generic("not failed")),
        ValidationErrorKind::Contains => push(out, generic("contains failed")),
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            let before = out.len();
            for branch in context {
                for cause in branch {
                    translate(cause, schema, out);
                }
            }
            if out.len() == before {
                let what = if matches!(err.kind(), ValidationErrorKind::AnyOf { .. }) {
                    "anyOf failed"
                } else {
                    "oneOf failed"
                };
                push(out, generic(what));
            }
        }
        ValidationErrorKind::PropertyNames { error } => translate(error, schema, out),
        _ => push(out, generic(&err.to_string())),
    }
}

/// For a `required` error raised by `dependencies` / `dependentRequired`, the present property
/// that demanded the missing one (ory/jsonschema words these differently from `required`).
fn dependency_owner(err: &ValidationError<'_>, schema: &Value, missing: &str) -> Option<String> {
    let path = err.schema_path().as_str();
    let keyword_at = path
        .rfind("/dependencies")
        .or_else(|| path.rfind("/dependentRequired"))?;
    let keyword_end = path[keyword_at + 1..]
        .find('/')
        .map_or(path.len(), |i| keyword_at + 1 + i);
    let dependencies = pointer_get(schema, &path[..keyword_end])?.as_object()?;
    let instance = err.instance().as_ref().as_object()?;
    dependencies
        .iter()
        .find(|(owner, wanted)| {
            instance.contains_key(*owner)
                && wanted
                    .as_array()
                    .is_some_and(|w| w.iter().any(|p| p.as_str() == Some(missing)))
        })
        .map(|(owner, _)| owner.clone())
}

/// ory/jsonschema's enum message: `value must be "a"` or `value must be one of "a", "b"`
/// (numbers are `json.Number`, hence quoted), `enum failed` when an option is not primitive.
fn enum_message(options: &Value) -> String {
    let Some(items) = options.as_array() else {
        return "enum failed".into();
    };
    if items.iter().any(|i| i.is_object() || i.is_array()) {
        return "enum failed".into();
    }
    let rendered: Vec<String> = items.iter().map(sharp_v).collect();
    match rendered.as_slice() {
        [one] => format!("value must be {one}"),
        _ => format!("value must be one of {}", rendered.join(", ")),
    }
}

/// The first pair (j, i), j < i, of equal items in ory/jsonschema's scan order (smallest i,
/// then smallest j), found by hashing a canonical form so hostile arrays stay linear.
fn first_duplicate(v: &Value) -> Option<(i64, i64)> {
    let items = v.as_array()?;
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match seen.entry(canonical(item)) {
            Entry::Occupied(j) => return Some((*j.get() as i64, i as i64)),
            Entry::Vacant(slot) => {
                slot.insert(i);
            }
        }
    }
    None
}

/// A rendering under which JSON-equal values (1 and 1.0, objects in any key order) coincide.
fn canonical(v: &Value) -> String {
    match v {
        Value::Number(n) => n.as_f64().map_or_else(|| n.to_string(), |f| format!("{f:e}")),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", inner.join(","))
        }
        Value::Object(map) => {
            let mut entries: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}:{}", quote(k), canonical(v)))
                .collect();
            entries.sort();
            format!("{{{}}}", entries.join(","))
        }
        other => other.to_string(),
    }
}

/// The `type` keyword's values in schema order (ory joins them as written); the crate's own
/// type set is the fallback when the keyword cannot be found again.
fn allowed_types(err: &ValidationError<'_>, schema: &Value, kind: &TypeKind) -> Vec<String> {
    if let Some(fragment) = err.schema_path().as_str().strip_suffix("/type")
        && let Some(node) = pointer_get(schema, fragment)
        && let Some(map) = node.as_object()
    {
        let listed = crate::walk::types(map);
        if !listed.is_empty() {
            return listed.into_iter().map(str::to_string).collect();
        }
    }
    match kind {
        TypeKind::Single(t) => vec![t.to_string()],
        TypeKind::Multiple(set) => set.iter().map(|t| t.to_string()).collect(),
    }
}
