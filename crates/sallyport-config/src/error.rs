//! Config errors that say which key is wrong, what it holds, and what is allowed.

use std::fmt;
use std::path::PathBuf;

/// Everything that can go wrong while loading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A `-c` file does not exist.
    #[error("config file \"{}\" not found", path.display())]
    FileNotFound { path: PathBuf },

    /// A config file could not be read.
    #[error("config file \"{}\" could not be read: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A config file is not valid YAML/JSON.
    #[error("config file \"{}\"{}: {message}", path.display(), location(*line, *column))]
    Parse {
        path: PathBuf,
        line: Option<u64>,
        column: Option<u64>,
        message: String,
    },

    /// The file extension is not one we can parse.
    #[error("config file \"{}\" has an unsupported format; use .yml, .yaml or .json", path.display())]
    UnsupportedFormat { path: PathBuf },

    /// The merged configuration does not satisfy the Kratos config schema.
    #[error("{0}")]
    Invalid(Issues),

    /// A value passed the schema but Sallyport cannot use it.
    #[error("config key \"{key}\": {message}")]
    InvalidValue { key: String, message: String },

    /// The embedded schema itself is broken (a bug, not a user error).
    #[error("{0}")]
    Schema(String),
}

impl ConfigError {
    /// The individual problems, when this is a validation failure.
    pub fn issues(&self) -> &[Issue] {
        match self {
            ConfigError::Invalid(issues) => &issues.0,
            _ => &[],
        }
    }
}

fn location(line: Option<u64>, column: Option<u64>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" line {l} column {c}"),
        (Some(l), None) => format!(" line {l}"),
        _ => String::new(),
    }
}

/// One problem with one config key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Dotted key path (`selfservice.flows.settings.required_aal`); empty for the document root.
    pub key: String,
    /// What is wrong and what is allowed.
    pub message: String,
    /// The env var that set this key, if one did.
    pub env_var: Option<String>,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "config: {}", self.message)?;
        } else {
            write!(f, "config key \"{}\": {}", self.key, self.message)?;
        }
        if let Some(var) = &self.env_var {
            write!(f, " (set by environment variable {var})")?;
        }
        Ok(())
    }
}

/// A non-empty list of issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issues(pub Vec<Issue>);

impl fmt::Display for Issues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{one}"),
            many => {
                write!(f, "invalid configuration ({} problems):", many.len())?;
                for issue in many {
                    write!(f, "\n  - {issue}")?;
                }
                Ok(())
            }
        }
    }
}
