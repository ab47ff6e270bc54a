//! The typed view of `kratos.yml`. Deserialized from the effective document (schema defaults applied),
//! so serde defaults here only carry the runtime defaults Kratos does not write into its schema.

mod rate_limits;
mod selfservice;
mod server;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::bytesize::ByteSize;
use crate::duration::{go_duration, opt_go_duration};

pub use rate_limits::*;
pub use selfservice::*;
pub use server::*;

pub(crate) fn default_true() -> bool {
    true
}

/// `"Strict" | "Lax" | "None"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum SameSite {
    Strict,
    #[default]
    Lax,
    None,
}

/// `aal1 | highest_available`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RequiredAal {
    Aal1,
    #[default]
    HighestAvailable,
}

/// A boolean that may be written as a string (`cookies.secure` is typed as a string in Kratos' schema).
pub(crate) fn lenient_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => crate::env::parse_bool(&s).map(Some).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "value {s:?} is not a boolean; expected \"true\" or \"false\""
            ))
        }),
        Some(other) => Err(serde::de::Error::custom(format!(
            "value {other} is not a boolean; expected true or false"
        ))),
    }
}

/// `session.*`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Session {
    #[serde(deserialize_with = "go_duration")]
    pub lifespan: Duration,
    #[serde(deserialize_with = "opt_go_duration")]
    pub earliest_possible_extend: Option<Duration>,
    pub cookie: SessionCookie,
    pub whoami: Whoami,
}

impl Default for Session {
    fn default() -> Self {
        Session {
            lifespan: Duration::from_secs(24 * 3600),
            earliest_possible_extend: None,
            cookie: SessionCookie::default(),
            whoami: Whoami::default(),
        }
    }
}

/// `session.cookie.*`; unset fields fall back to `cookies.*` (see the accessors on `Config`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SessionCookie {
    pub name: String,
    pub domain: Option<String>,
    pub path: Option<String>,
    pub same_site: Option<SameSite>,
    #[serde(deserialize_with = "lenient_bool")]
    pub secure: Option<bool>,
    pub persistent: bool,
}

impl Default for SessionCookie {
    fn default() -> Self {
        SessionCookie {
            name: "ory_kratos_session".into(),
            domain: None,
            path: None,
            same_site: None,
            secure: None,
            persistent: true,
        }
    }
}

/// `session.whoami.*`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Whoami {
    pub required_aal: RequiredAal,
}

/// `cookies.*` (CSRF and session cookies).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Cookies {
    pub domain: Option<String>,
    pub path: String,
    pub same_site: SameSite,
    #[serde(deserialize_with = "lenient_bool")]
    pub secure: Option<bool>,
}

impl Default for Cookies {
    fn default() -> Self {
        Cookies {
            domain: None,
            path: "/".into(),
            same_site: SameSite::Lax,
            secure: None,
        }
    }
}

/// `secrets.*`. Debug output hides the values.
#[derive(Clone, Default, Deserialize)]
#[serde(default)]
pub struct Secrets {
    pub default: Vec<String>,
    pub cookie: Vec<String>,
    pub cipher: Vec<String>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("default", &format_args!("[{} hidden]", self.default.len()))
            .field("cookie", &format_args!("[{} hidden]", self.cookie.len()))
            .field("cipher", &format_args!("[{} hidden]", self.cipher.len()))
            .finish()
    }
}

/// `argon2 | bcrypt`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HashAlgorithm {
    Argon2,
    #[default]
    Bcrypt,
}

/// `hashers.*`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Hashers {
    pub algorithm: HashAlgorithm,
    pub bcrypt: Bcrypt,
    pub argon2: Argon2,
}

/// `hashers.bcrypt.*`; use `Config::bcrypt_cost()` for the cost Kratos really applies.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Bcrypt {
    pub cost: u32,
}

impl Default for Bcrypt {
    fn default() -> Self {
        Bcrypt { cost: 12 }
    }
}

/// `hashers.argon2.*`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Argon2 {
    pub memory: ByteSize,
    pub iterations: u32,
    pub parallelism: u32,
    pub salt_length: u32,
    pub key_length: u32,
}

impl Default for Argon2 {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        Argon2 {
            memory: ByteSize(128 * ByteSize::MB),
            iterations: 1,
            parallelism: u32::try_from(cpus * 2).unwrap_or(u32::MAX).min(255),
            salt_length: 16,
            key_length: 32,
        }
    }
}

/// `identity.*`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Identity {
    pub default_schema_id: String,
    pub schemas: Vec<IdentitySchema>,
}

impl Default for Identity {
    fn default() -> Self {
        Identity {
            default_schema_id: "default".into(),
            schemas: Vec::new(),
        }
    }
}

/// One entry of `identity.schemas`; `url` is `file://`, `http(s)://` or `base64://`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IdentitySchema {
    pub id: String,
    pub url: String,
    #[serde(default)]
    pub selfservice_selectable: bool,
}

/// `courier.*`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Courier {
    pub smtp: Smtp,
    pub channels: Vec<CourierChannel>,
    /// Template overrides as written (`courier.templates`).
    pub templates: Value,
    pub template_override_path: Option<String>,
    pub message_retries: u32,
    pub worker: CourierWorker,
    pub delivery_strategy: DeliveryStrategy,
    /// `courier.http` as written (HTTP delivery request config).
    pub http: Value,
}

impl Default for Courier {
    fn default() -> Self {
        Courier {
            smtp: Smtp::default(),
            channels: Vec::new(),
            templates: Value::Null,
            template_override_path: None,
            message_retries: 5,
            worker: CourierWorker::default(),
            delivery_strategy: DeliveryStrategy::Smtp,
            http: Value::Null,
        }
    }
}

/// `smtp | http`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStrategy {
    #[default]
    Smtp,
    Http,
}

/// `courier.smtp.*`. Debug output hides the connection URI (it holds the password).
#[derive(Clone, Deserialize)]
#[serde(default)]
pub struct Smtp {
    pub connection_uri: Option<String>,
    pub from_address: String,
    pub from_name: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub local_name: String,
}

impl Default for Smtp {
    fn default() -> Self {
        Smtp {
            connection_uri: None,
            from_address: "no-reply@ory.kratos.sh".into(),
            from_name: None,
            headers: BTreeMap::new(),
            local_name: "localhost".into(),
        }
    }
}

impl fmt::Debug for Smtp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Smtp")
            .field(
                "connection_uri",
                &self.connection_uri.as_ref().map(|_| "(hidden)"),
            )
            .field("from_address", &self.from_address)
            .field("from_name", &self.from_name)
            .field("headers", &self.headers)
            .field("local_name", &self.local_name)
            .finish()
    }
}

/// One entry of `courier.channels` (e.g. `{id: sms, type: http, request_config: …}`).
#[derive(Debug, Clone, Deserialize)]
pub struct CourierChannel {
    pub id: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub request_config: Value,
}

/// `courier.worker.*`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CourierWorker {
    pub pull_count: u32,
    #[serde(deserialize_with = "go_duration")]
    pub pull_wait: Duration,
}

impl Default for CourierWorker {
    fn default() -> Self {
        CourierWorker {
            pull_count: 10,
            pull_wait: Duration::from_secs(1),
        }
    }
}

/// `trace | debug | info | warning | error | fatal | panic`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    #[default]
    Info,
    Warning,
    Error,
    Fatal,
    Panic,
}

/// `json | text`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    #[default]
    Text,
}

/// `log.*`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Log {
    pub level: LogLevel,
    pub format: LogFormat,
    pub leak_sensitive_values: bool,
}

/// `feature_flags.*` (all off by default).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct FeatureFlags {
    pub cacheable_sessions: bool,
    #[serde(deserialize_with = "opt_go_duration")]
    pub cacheable_sessions_max_age: Option<Duration>,
    pub use_continue_with_transitions: bool,
    pub choose_recovery_address: bool,
    pub legacy_continue_with_verification_ui: bool,
    pub legacy_require_verified_login_error: bool,
    pub faster_session_extend: bool,
    /// `"default"` or `"password"`.
    pub password_profile_registration_node_group: String,
    pub legacy_oidc_registration_node_group: bool,
    pub legacy_allow_insecure_origins: bool,
    pub refresh_login_choose_address: bool,
}

impl Default for FeatureFlags {
    fn default() -> Self {
        FeatureFlags {
            cacheable_sessions: false,
            cacheable_sessions_max_age: None,
            use_continue_with_transitions: false,
            choose_recovery_address: false,
            legacy_continue_with_verification_ui: false,
            legacy_require_verified_login_error: false,
            faster_session_extend: false,
            password_profile_registration_node_group: "default".into(),
            legacy_oidc_registration_node_group: false,
            legacy_allow_insecure_origins: false,
            refresh_login_choose_address: false,
        }
    }
}

/// `security.*`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Security {
    pub account_enumeration: AccountEnumeration,
}

/// `security.account_enumeration.*`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AccountEnumeration {
    pub mitigate: bool,
}

/// `clients.*`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Clients {
    pub http: HttpClient,
}

/// `clients.http.*`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct HttpClient {
    pub disallow_private_ip_ranges: bool,
}

/// `database.*`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Database {
    pub cleanup: Cleanup,
}

/// `database.cleanup.*` (used by `cleanup sql`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Cleanup {
    pub batch_size: u32,
    pub sleep: CleanupSleep,
    #[serde(deserialize_with = "go_duration")]
    pub older_than: Duration,
}

impl Default for Cleanup {
    fn default() -> Self {
        Cleanup {
            batch_size: 100,
            sleep: CleanupSleep::default(),
            older_than: Duration::ZERO,
        }
    }
}

/// `database.cleanup.sleep.*`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CleanupSleep {
    #[serde(deserialize_with = "go_duration")]
    pub tables: Duration,
}

impl Default for CleanupSleep {
    fn default() -> Self {
        CleanupSleep {
            tables: Duration::from_secs(60),
        }
    }
}

/// `sallyport.*`: features Kratos lacks.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Extensions {
    /// Answer successful intermediate steps ("code sent", "choose a method", recovery → settings) to JSON
    /// clients with 200 instead of Kratos' 400 / 422 (kratos#4052). Off by default: Kratos' statuses.
    pub http_correct_status: bool,
    pub mfa_policy: MfaPolicy,
    pub rate_limits: RateLimits,
    pub ui: UiBranding,
    pub web_hooks: WebHooks,
    pub cache: CacheLimits,
}

/// `sallyport.web_hooks`: what Sallyport adds to Kratos' `web_hook` action.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebHooks {
    /// `whsec_<base64>`: signs every hook request with Standard Webhooks headers.
    pub signing_secret: Option<String>,
    /// Attempts for `response.ignore` hooks before the outbox gives a delivery up (default 10).
    pub max_attempts: Option<u32>,
    /// Whole-request timeout of one hook call (default `10s`).
    #[serde(deserialize_with = "crate::duration::opt_go_duration")]
    pub timeout: Option<std::time::Duration>,
    /// Largest answer read from a receiver (default 1 MiB; Kratos reads 5 MB).
    pub max_response_bytes: Option<usize>,
    /// Wait before the first retry of an undelivered `response.ignore` hook; doubles each time (default `1s`).
    #[serde(deserialize_with = "crate::duration::opt_go_duration")]
    pub retry_initial: Option<std::time::Duration>,
    /// How often each node's outbox worker looks for due deliveries (default `1s`).
    #[serde(deserialize_with = "crate::duration::opt_go_duration")]
    pub poll_interval: Option<std::time::Duration>,
}

/// `sallyport.cache`: memory the in-process caches may hold.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheLimits {
    /// Finished `GET /sessions/whoami` answers (about 1.3 KB each for a typical identity); `"0B"` turns
    /// the cache off. On PostgreSQL it is trusted only while this node hears the change notifications
    /// every node sends (LISTEN/NOTIFY); otherwise every answer is read from the database.
    pub whoami_max_bytes: crate::bytesize::ByteSize,
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits {
            whoami_max_bytes: crate::bytesize::ByteSize(16 * crate::bytesize::ByteSize::MB),
        }
    }
}

/// `sallyport.ui`: the built-in self-service pages under `/ui/` (used wherever a flow names no `ui_url`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UiBranding {
    /// Shown in the page title and header.
    pub product_name: String,
    /// An `http(s)` or `/path` image shown in the header; its origin is added to the pages' `img-src`.
    pub logo_url: Option<String>,
    /// `#rgb` or `#rrggbb`: buttons, links and the focus ring.
    pub primary_color: String,
    pub theme: UiTheme,
    /// Files named like the built-in templates (`base.html`, `flow.html`, …) replace them.
    pub template_dir: Option<std::path::PathBuf>,
    /// `<lang>.json` files (message id or UI key → text) add languages or override shipped texts.
    pub locale_dir: Option<std::path::PathBuf>,
}

impl Default for UiBranding {
    fn default() -> Self {
        UiBranding {
            product_name: "Sallyport".into(),
            logo_url: None,
            primary_color: "#1d4ed8".into(),
            theme: UiTheme::Auto,
            template_dir: None,
            locale_dir: None,
        }
    }
}

/// `auto` follows the browser's `prefers-color-scheme`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UiTheme {
    #[default]
    Auto,
    Light,
    Dark,
}

/// `sallyport.mfa_policy`: which identities must use a second factor.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MfaPolicy {
    pub require_for: Vec<MfaRule>,
}

/// One rule: every identity of `schema_id`, and/or every identity whose trait at `trait` (a dotted
/// path such as `role` or `org.tier`) equals `equals`. All fields given must match.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MfaRule {
    pub schema_id: Option<String>,
    #[serde(rename = "trait")]
    pub trait_path: Option<String>,
    pub equals: Option<Value>,
}
