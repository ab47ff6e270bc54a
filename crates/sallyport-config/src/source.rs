//! Reading config files (YAML or JSON, by extension) into JSON values.

use std::path::Path;

use serde_json::{Map, Value};

use crate::ConfigError;

/// Reads one config file; an empty file is an empty object.
pub(crate) fn read_file(path: &Path) -> Result<Value, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => ConfigError::FileNotFound {
            path: path.to_owned(),
        },
        _ => ConfigError::Io {
            path: path.to_owned(),
            source,
        },
    })?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let value = match ext.as_deref() {
        Some("yml" | "yaml") => parse_yaml(path, &text)?,
        Some("json") => parse_json(path, &text)?,
        _ => {
            return Err(ConfigError::UnsupportedFormat {
                path: path.to_owned(),
            });
        }
    };
    match value {
        Value::Null => Ok(Value::Object(Map::new())),
        Value::Object(_) => Ok(value),
        other => Err(ConfigError::Parse {
            path: path.to_owned(),
            line: None,
            column: None,
            message: format!(
                "the top level must be a mapping of config keys, found {}",
                kind(&other)
            ),
        }),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

pub(crate) fn parse_yaml(path: &Path, text: &str) -> Result<Value, ConfigError> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    // Later duplicate keys win, as in the YAML tooling Kratos' e2e profiles are written for.
    let mut options = serde_saphyr::Options::default();
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::LastWins;
    serde_saphyr::from_str_with_options::<Value>(text, options).map_err(|e| {
        let loc = e.location();
        ConfigError::Parse {
            path: path.to_owned(),
            line: loc.map(|l| l.line()),
            column: loc.map(|l| l.column()),
            message: strip_location(&e.to_string()),
        }
    })
}

fn parse_json(path: &Path, text: &str) -> Result<Value, ConfigError> {
    serde_json::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        line: Some(e.line() as u64),
        column: Some(e.column() as u64),
        message: e.to_string(),
    })
}

/// serde-saphyr repeats the location we already print; keep only its message and snippet.
fn strip_location(message: &str) -> String {
    let rest = message.strip_prefix("error: ").unwrap_or(message);
    if let Some(after_line) = rest.strip_prefix("line ")
        && let Some((_, tail)) = after_line.split_once(": ")
    {
        return tail.to_owned();
    }
    rest.to_owned()
}
