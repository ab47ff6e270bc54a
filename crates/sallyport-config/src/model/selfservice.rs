//! `selfservice.*`

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::{RequiredAal, default_true};
use crate::duration::go_duration;

const HOUR: Duration = Duration::from_secs(3600);

/// `selfservice.*`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SelfService {
    /// May be relative (`/welcome`); see `Config::default_browser_return_url()`.
    pub default_browser_return_url: String,
    pub allowed_return_urls: Vec<String>,
    pub methods: Methods,
    pub flows: Flows,
}

/// A post-flow hook: `{hook: session}`, `{hook: web_hook, config: {...}}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Hook {
    pub hook: String,
    /// The hook's `config` as written (`Value::Null` when absent).
    #[serde(default)]
    pub config: Value,
}

/// `<flow>.before`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BeforeHooks {
    pub hooks: Vec<Hook>,
}

/// `<flow>.after`: flow-level settings plus per-method overrides (`after.password`, `after.code`, …).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AfterHooks {
    pub default_browser_return_url: Option<String>,
    pub hooks: Vec<Hook>,
    /// Keyed by method name.
    #[serde(flatten)]
    pub methods: BTreeMap<String, MethodAfter>,
}

/// `<flow>.after.<method>`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MethodAfter {
    pub default_browser_return_url: Option<String>,
    pub hooks: Vec<Hook>,
}

/// `selfservice.methods.*`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Methods {
    pub password: Method<PasswordConfig>,
    pub code: CodeMethod,
    pub link: Method<LinkConfig>,
    pub totp: Method<TotpConfig>,
    pub lookup_secret: Method<Value>,
    pub webauthn: Method<Value>,
    pub passkey: Method<Value>,
    pub oidc: Method<Value>,
    pub profile: Method<Value>,
}

impl Default for Methods {
    fn default() -> Self {
        Methods {
            password: Method {
                enabled: true,
                config: PasswordConfig::default(),
            },
            code: CodeMethod::default(),
            link: Method::default(),
            totp: Method::default(),
            lookup_secret: Method::default(),
            webauthn: Method::default(),
            passkey: Method::default(),
            oidc: Method::default(),
            profile: Method {
                enabled: true,
                config: Value::Null,
            },
        }
    }
}

/// `selfservice.methods.<method>`: `enabled` plus its `config`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Method<C: Default> {
    pub enabled: bool,
    pub config: C,
}

/// `selfservice.methods.password.config`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PasswordConfig {
    pub min_password_length: u32,
    pub identifier_similarity_check_enabled: bool,
    pub haveibeenpwned_enabled: bool,
    pub haveibeenpwned_host: String,
    pub max_breaches: u32,
    pub ignore_network_errors: bool,
}

impl Default for PasswordConfig {
    fn default() -> Self {
        PasswordConfig {
            min_password_length: 8,
            identifier_similarity_check_enabled: true,
            haveibeenpwned_enabled: true,
            haveibeenpwned_host: "api.pwnedpasswords.com".into(),
            max_breaches: 0,
            ignore_network_errors: true,
        }
    }
}

/// `selfservice.methods.code`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CodeMethod {
    pub enabled: bool,
    pub passwordless_enabled: bool,
    pub mfa_enabled: bool,
    pub config: CodeConfig,
}

impl Default for CodeMethod {
    fn default() -> Self {
        CodeMethod {
            enabled: true,
            passwordless_enabled: false,
            mfa_enabled: false,
            config: CodeConfig::default(),
        }
    }
}

/// `selfservice.methods.code.config`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CodeConfig {
    #[serde(deserialize_with = "go_duration")]
    pub lifespan: Duration,
    pub max_submissions: u32,
    pub missing_credential_fallback_enabled: bool,
}

impl Default for CodeConfig {
    fn default() -> Self {
        CodeConfig {
            lifespan: HOUR,
            max_submissions: 5,
            missing_credential_fallback_enabled: false,
        }
    }
}

/// `selfservice.methods.link.config`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LinkConfig {
    pub base_url: Option<String>,
    #[serde(deserialize_with = "go_duration")]
    pub lifespan: Duration,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            base_url: None,
            lifespan: HOUR,
        }
    }
}

/// `selfservice.methods.totp.config`; see `Config::totp_issuer()` for the default issuer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TotpConfig {
    pub issuer: Option<String>,
}

/// `selfservice.flows.*`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Flows {
    pub login: LoginFlow,
    pub registration: RegistrationFlow,
    pub settings: SettingsFlow,
    pub recovery: RecoveryFlow,
    pub verification: VerificationFlow,
    pub logout: LogoutFlow,
    pub error: ErrorFlow,
}

/// Kratos' default `ui_url` prefix: a docs page, which Sallyport replaces with its built-in pages.
pub const KRATOS_FALLBACK_UI: &str = "https://www.ory.com/kratos/docs/fallback/";

fn fallback(flow: &str) -> String {
    format!("{KRATOS_FALLBACK_UI}{flow}")
}

/// `unified | identifier_first`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginStyle {
    #[default]
    Unified,
    IdentifierFirst,
}

/// `selfservice.flows.login.*`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LoginFlow {
    pub ui_url: String,
    #[serde(deserialize_with = "go_duration")]
    pub lifespan: Duration,
    pub style: LoginStyle,
    pub before: BeforeHooks,
    pub after: AfterHooks,
}

impl Default for LoginFlow {
    fn default() -> Self {
        LoginFlow {
            ui_url: fallback("login"),
            lifespan: HOUR,
            style: LoginStyle::Unified,
            before: BeforeHooks::default(),
            after: AfterHooks::default(),
        }
    }
}

/// `unified | profile_first`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationStyle {
    Unified,
    #[default]
    ProfileFirst,
}

/// `selfservice.flows.registration.*`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RegistrationFlow {
    #[serde(default = "default_true")]
    pub enabled: bool,
    pub ui_url: String,
    #[serde(deserialize_with = "go_duration")]
    pub lifespan: Duration,
    pub style: RegistrationStyle,
    pub enable_legacy_one_step: bool,
    pub login_hints: bool,
    pub before: BeforeHooks,
    pub after: AfterHooks,
}

impl Default for RegistrationFlow {
    fn default() -> Self {
        RegistrationFlow {
            enabled: true,
            ui_url: fallback("registration"),
            lifespan: HOUR,
            style: RegistrationStyle::ProfileFirst,
            enable_legacy_one_step: false,
            login_hints: false,
            before: BeforeHooks::default(),
            after: AfterHooks::default(),
        }
    }
}

/// `selfservice.flows.settings.*`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SettingsFlow {
    pub ui_url: String,
    #[serde(deserialize_with = "go_duration")]
    pub lifespan: Duration,
    #[serde(deserialize_with = "go_duration")]
    pub privileged_session_max_age: Duration,
    pub required_aal: RequiredAal,
    pub before: BeforeHooks,
    pub after: AfterHooks,
}

impl Default for SettingsFlow {
    fn default() -> Self {
        SettingsFlow {
            ui_url: fallback("settings"),
            lifespan: HOUR,
            privileged_session_max_age: HOUR,
            required_aal: RequiredAal::HighestAvailable,
            before: BeforeHooks::default(),
            after: AfterHooks::default(),
        }
    }
}

/// `code | link`: which method recovery/verification messages use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressFlowMethod {
    #[default]
    Code,
    Link,
}

/// `selfservice.flows.recovery.*`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RecoveryFlow {
    pub enabled: bool,
    pub ui_url: String,
    #[serde(deserialize_with = "go_duration")]
    pub lifespan: Duration,
    #[serde(rename = "use")]
    pub use_: AddressFlowMethod,
    pub notify_unknown_recipients: bool,
    pub before: BeforeHooks,
    pub after: AfterHooks,
}

impl Default for RecoveryFlow {
    fn default() -> Self {
        RecoveryFlow {
            enabled: false,
            ui_url: fallback("recovery"),
            lifespan: HOUR,
            use_: AddressFlowMethod::Code,
            notify_unknown_recipients: false,
            before: BeforeHooks::default(),
            after: AfterHooks::default(),
        }
    }
}

/// `selfservice.flows.verification.*`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct VerificationFlow {
    pub enabled: bool,
    pub ui_url: String,
    #[serde(deserialize_with = "go_duration")]
    pub lifespan: Duration,
    #[serde(rename = "use")]
    pub use_: AddressFlowMethod,
    pub notify_unknown_recipients: bool,
    pub before: BeforeHooks,
    pub after: AfterHooks,
}

impl Default for VerificationFlow {
    fn default() -> Self {
        VerificationFlow {
            enabled: false,
            ui_url: fallback("verification"),
            lifespan: HOUR,
            use_: AddressFlowMethod::Code,
            notify_unknown_recipients: false,
            before: BeforeHooks::default(),
            after: AfterHooks::default(),
        }
    }
}

/// `selfservice.flows.logout.*`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LogoutFlow {
    pub after: LogoutAfter,
}

/// `selfservice.flows.logout.after.*`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LogoutAfter {
    pub default_browser_return_url: Option<String>,
}

/// `selfservice.flows.error.*`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ErrorFlow {
    pub ui_url: String,
}

impl Default for ErrorFlow {
    fn default() -> Self {
        ErrorFlow {
            ui_url: fallback("error"),
        }
    }
}
