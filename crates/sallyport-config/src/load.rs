//! Layering: schema defaults < `base` < files (in order) < environment; then validation and typing.

use std::path::PathBuf;

use base64::Engine as _;
use serde_json::{Map, Value, json};
use url::Url;

use crate::env::{EnvOverride, apply};
use crate::error::{ConfigError, Issues};
use crate::path::{Seg, merge, set};
use crate::{Config, schema, source, validate};

/// What to load.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Config files, merged in order (later files win; objects merge deeply, lists are replaced).
    pub files: Vec<PathBuf>,
    /// Environment variables to consider, e.g. `std::env::vars().collect()`; unrelated ones are ignored.
    pub env: Vec<(String, String)>,
    /// `--dev`: plain-HTTP base URLs, non-secure cookies by default, weak bcrypt costs allowed.
    pub dev: bool,
}

impl LoadOptions {
    /// Options that read the given files and this process' environment.
    pub fn from_process_env(files: Vec<PathBuf>, dev: bool) -> Self {
        LoadOptions {
            files,
            env: std::env::vars().collect(),
            dev,
        }
    }
}

/// The Kratos quickstart identity schema (email + password), used by [`dev_defaults`].
pub const DEFAULT_IDENTITY_SCHEMA: &str = include_str!("../schema/default-identity.schema.json");

/// A config that lets `serve --dev` start without any file: an SQLite file in the working directory,
/// a return URL on the usual UI port, and the email + password identity schema.
pub fn dev_defaults() -> Value {
    let schema = base64::engine::general_purpose::STANDARD.encode(DEFAULT_IDENTITY_SCHEMA);
    json!({
        "dsn": "sqlite://sallyport.sqlite?mode=rwc",
        "selfservice": {"default_browser_return_url": "http://127.0.0.1:4455/"},
        "identity": {
            "default_schema_id": "default",
            "schemas": [{"id": "default", "url": format!("base64://{schema}")}],
        },
    })
}

/// Loads, merges, validates and types the configuration.
pub fn load(opts: &LoadOptions) -> Result<Config, ConfigError> {
    load_with_base(Value::Object(Map::new()), opts)
}

/// Like [`load`], with `base` as the first config layer (below the files), e.g. [`dev_defaults`].
pub fn load_with_base(base: Value, opts: &LoadOptions) -> Result<Config, ConfigError> {
    let mut user = base;
    for file in &opts.files {
        merge(&mut user, source::read_file(file)?);
    }
    let env_overrides = apply(&mut user, &opts.env);
    from_user_value(user, env_overrides, opts.dev)
}

/// Builds a `Config` from an already merged user document (files + env, no defaults).
pub fn from_value(user: Value, dev: bool) -> Result<Config, ConfigError> {
    from_user_value(user, Vec::new(), dev)
}

fn from_user_value(
    mut user: Value,
    env_overrides: Vec<EnvOverride>,
    dev: bool,
) -> Result<Config, ConfigError> {
    // `sallyport:` holds features Kratos lacks; Kratos' schema would reject the key, so it is validated
    // on its own.
    let extensions = user.as_object_mut().and_then(|o| o.remove("sallyport"));
    let mut raw = schema::defaults().clone();
    merge(&mut raw, user.clone());
    let dev = dev || raw.get("dev").and_then(Value::as_bool).unwrap_or(false);
    if dev {
        set(&mut raw, &[Seg::Key("dev".into())], Value::Bool(true));
    }

    if let Err(mut issues) = validate::validate(&raw).map_err(ConfigError::Schema)? {
        for issue in &mut issues {
            issue.env_var = env_var_for(&issue.key, &env_overrides);
        }
        return Err(ConfigError::Invalid(Issues(issues)));
    }

    let mut config: Config = serde_path_to_error::deserialize(&raw).map_err(|e| {
        let key = typed_path(e.path());
        let message = e.inner().to_string();
        ConfigError::InvalidValue { key, message }
    })?;
    if let Some(ext) = extensions {
        config.sallyport = serde_path_to_error::deserialize(&ext).map_err(|e| ConfigError::InvalidValue {
            key: format!("sallyport.{}", typed_path(e.path())),
            message: e.inner().to_string(),
        })?;
    }
    config.raw = raw;
    config.user = user;
    config.dev = dev;
    config.env_overrides = env_overrides;
    finish(&mut config)?;
    Ok(config)
}

fn env_var_for(key: &str, applied: &[EnvOverride]) -> Option<String> {
    applied
        .iter()
        .rev()
        .find(|o| key == o.key || key.starts_with(&format!("{}.", o.key)))
        .map(|o| o.var.clone())
}

fn typed_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|s| match s {
            Segment::Map { key } => Some(key.clone()),
            Segment::Seq { index } => Some(index.to_string()),
            Segment::Enum { variant } => Some(variant.clone()),
            Segment::Unknown => None,
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Runtime defaults that depend on other keys or on the machine.
fn finish(config: &mut Config) -> Result<(), ConfigError> {
    let dev = config.dev;
    let mut warnings = Vec::new();
    let public = &config.serve.public;
    let (configured, host, port) = (public.base_url.as_deref(), public.host.as_str(), public.port);
    let url = base_url(
        "serve.public.base_url",
        configured,
        host,
        port,
        dev,
        &mut warnings,
    )?;
    config.public_base_url = Some(url);
    let admin = &config.serve.admin;
    let (configured, host, port) = (admin.base_url.as_deref(), admin.host.as_str(), admin.port);
    let url = base_url("serve.admin.base_url", configured, host, port, dev, &mut warnings)?;
    config.admin_base_url = Some(url);
    config.warnings = warnings;

    if config.secrets.cookie.is_empty() && config.secrets.default.is_empty() {
        config.warnings.push(
            "no secrets.cookie or secrets.default configured; using a random secret, so sessions and CSRF \
             cookies will not survive a restart"
                .into(),
        );
        config.generated_secret = Some(random_secret()?);
    }
    Ok(())
}

/// A configured base URL (made to end with `/`), or Kratos' guess from host and port.
fn base_url(
    key: &str,
    configured: Option<&str>,
    host: &str,
    port: u16,
    dev: bool,
    warnings: &mut Vec<String>,
) -> Result<Url, ConfigError> {
    if let Some(text) = configured.filter(|t| !t.trim().is_empty()) {
        match Url::parse(text) {
            Ok(mut url) if url.has_host() => {
                if !url.path().ends_with('/') {
                    let path = format!("{}/", url.path());
                    url.set_path(&path);
                }
                return Ok(url);
            }
            _ => warnings.push(format!(
                "config key \"{key}\": value {text:?} is not an absolute URL; guessing the base URL from \
                 host and port instead"
            )),
        }
    } else {
        warnings.push(format!(
            "config key \"{key}\" is not set; guessing the base URL from host and port"
        ));
    }
    let unspecified = host.is_empty() || host == "0.0.0.0" || host == "::" || host == "[::]";
    let (scheme, host) = match (dev, unspecified) {
        (_, false) => (if dev { "http" } else { "https" }, host.to_owned()),
        (true, true) => ("http", "127.0.0.1".to_owned()),
        (false, true) => ("https", system_hostname()),
    };
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host
    };
    Url::parse(&format!("{scheme}://{host}:{port}/")).map_err(|e| ConfigError::InvalidValue {
        key: key.to_owned(),
        message: format!(
            "cannot build a base URL from host {host:?} and port {port}: {e}; set {key} explicitly"
        ),
    })
}

fn system_hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "127.0.0.1".to_owned())
}

fn random_secret() -> Result<String, ConfigError> {
    // 64 symbols, so `byte % 64` is unbiased.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ConfigError::InvalidValue {
        key: "secrets.default".into(),
        message: format!("no secret configured and the OS random generator failed: {e}"),
    })?;
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect())
}
