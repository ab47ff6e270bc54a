//! The slice of kratos.yml the server reads, resolved once at startup into plain values.
//! Built from `sallyport_config::Config` in `settings_from_config.rs`; tests may build it directly.

use std::collections::HashMap;
use std::time::Duration;

use url::Url;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequiredAal {
    Aal1,
    HighestAvailable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    Lax,
    Strict,
    None,
}

#[derive(Debug, Clone)]
pub struct CookieSettings {
    pub name: String,
    pub domain: Option<String>,
    pub path: String,
    pub same_site: SameSite,
    pub secure: bool,
    pub persistent: bool,
}

/// `after` hooks and return URLs of one flow; method-specific entries replace the flow-wide ones.
#[derive(Debug, Clone, Default)]
pub struct AfterSettings {
    pub default_return_url: Option<Url>,
    pub hooks: Vec<String>,
    pub per_method: HashMap<String, MethodAfter>,
}

#[derive(Debug, Clone, Default)]
pub struct MethodAfter {
    pub default_return_url: Option<Url>,
    pub hooks: Option<Vec<String>>,
}

impl AfterSettings {
    pub fn hooks_for(&self, method: &str) -> &[String] {
        match self.per_method.get(method).and_then(|m| m.hooks.as_ref()) {
            Some(h) => h,
            None => &self.hooks,
        }
    }

    pub fn return_url_for(&self, method: &str) -> Option<&Url> {
        self.per_method
            .get(method)
            .and_then(|m| m.default_return_url.as_ref())
            .or(self.default_return_url.as_ref())
    }
}

#[derive(Debug, Clone)]
pub struct FlowSettings {
    pub ui_url: Url,
    pub lifespan: Duration,
    pub after: AfterSettings,
}

#[derive(Debug, Clone)]
pub struct PasswordSettings {
    pub enabled: bool,
    pub min_length: usize,
    pub identifier_similarity_check_enabled: bool,
    pub haveibeenpwned_enabled: bool,
    pub haveibeenpwned_host: String,
    pub max_breaches: u64,
    pub ignore_network_errors: bool,
}

#[derive(Debug, Clone)]
pub enum HasherSettings {
    Bcrypt {
        cost: u32,
    },
    Argon2 {
        memory_kib: u32,
        iterations: u32,
        parallelism: u32,
        salt_length: u32,
        key_length: u32,
    },
}

#[derive(Debug, Clone)]
pub struct CodeSettings {
    pub enabled: bool,
    pub passwordless_enabled: bool,
    pub mfa_enabled: bool,
    pub lifespan: Duration,
    pub max_submissions: u32,
    pub missing_credential_fallback_enabled: bool,
}

/// Recovery and verification share a shape: enabled, `use: code|link`, a UI, hooks.
#[derive(Debug, Clone)]
pub struct AddressFlowSettings {
    pub enabled: bool,
    pub use_link: bool,
    pub ui_url: Url,
    pub lifespan: Duration,
    pub notify_unknown_recipients: bool,
    pub after: AfterSettings,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// `selfservice.methods.oidc` when enabled: providers, outgoing HTTP policy, token cipher.
    pub oidc: Option<OidcSettings>,
    pub dev: bool,
    pub dsn: String,
    pub public_base_url: Url,
    pub admin_base_url: Url,
    pub public_listen: String,
    pub admin_listen: String,
    pub default_return_url: Url,
    pub allowed_return_urls: Vec<Url>,
    pub login: FlowSettings,
    pub registration: FlowSettings,
    pub registration_enabled: bool,
    /// Kratos' default `profile_first`: traits first, credentials second.
    pub registration_two_step: bool,
    pub settings_ui_url: Url,
    pub error_ui_url: Url,
    pub logout_return_url: Option<Url>,
    pub password: PasswordSettings,
    pub code_mfa_enabled: bool,
    pub code: CodeSettings,
    pub link_enabled: bool,
    pub link_lifespan: Duration,
    pub recovery: AddressFlowSettings,
    pub verification: AddressFlowSettings,
    pub privileged_session_max_age: Duration,
    pub settings_lifespan: Duration,
    pub settings_required_aal: RequiredAal,
    pub totp_enabled: bool,
    pub totp_issuer: String,
    pub lookup_enabled: bool,
    /// `selfservice.methods.passkey`, when enabled.
    pub passkey: Option<WebAuthnSettings>,
    /// `selfservice.methods.webauthn`, when enabled.
    pub webauthn: Option<WebAuthnSettings>,
    pub mfa_policy: sallyport_config::model::MfaPolicy,
    /// `sallyport.cache.whoami_max_bytes`.
    pub whoami_cache_bytes: usize,
    pub rate_limits: crate::rate_limit::RateLimitSettings,
    /// `sallyport.ui`: branding and overrides of the built-in pages.
    pub ui: sallyport_config::model::UiBranding,
    pub use_continue_with_transitions: bool,
    /// `sallyport.http_correct_status`: the deployment's default for [`crate::selfservice::status_mode`].
    pub http_correct_status: bool,
    pub legacy_require_verified_login_error: bool,
    pub courier: sallyport_config::model::Courier,
    /// SHA-256 of the effective config, for `/admin/health/config` (Kratos' e2e suite polls it).
    pub config_hash: String,
    /// Whether courier admin responses may show message bodies (`--dev`).
    pub expose_message_bodies: bool,
    pub session_lifespan: Duration,
    pub session_earliest_possible_extend: Option<Duration>,
    pub session_cookie: CookieSettings,
    pub whoami_required_aal: RequiredAal,
    pub csrf_cookie: CookieSettings,
    pub cookie_secrets: Vec<String>,
    /// Keys that seal backup codes for "reveal": `secrets.cipher`, else `secrets.cookie`.
    pub cipher_secrets: Vec<String>,
    pub hasher: HasherSettings,
    pub schemas: Vec<(String, String)>,
    pub default_schema_id: String,
    pub cors: Option<CorsSettings>,
    pub disable_api_flow_enforcement: bool,
    /// Every `web_hook` of the configuration and `sallyport.web_hooks`.
    pub web_hooks: WebHookSettings,
}

#[derive(Debug, Clone, Default)]
pub struct WebHookSettings {
    pub table: crate::webhook::WebHookTable,
    pub http: sallyport_oidc::HttpPolicy,
    pub timeout: Option<Duration>,
    pub max_response_bytes: Option<usize>,
    pub max_attempts: Option<u32>,
    pub retry_initial: Option<Duration>,
    pub poll_interval: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct CorsSettings {
    pub allowed_origins: Vec<String>,
    pub allowed_methods: Vec<String>,
    pub allowed_headers: Vec<String>,
    pub exposed_headers: Vec<String>,
    pub allow_credentials: bool,
    pub max_age: Option<u64>,
}

impl Settings {
    pub fn flow(&self, kind: sallyport_core::flow::FlowKind) -> Option<&FlowSettings> {
        use sallyport_core::flow::FlowKind;
        match kind {
            FlowKind::Login => Some(&self.login),
            FlowKind::Registration => Some(&self.registration),
            _ => None,
        }
    }
}

/// `config` of the `passkey` and `webauthn` methods.
#[derive(Debug, Clone)]
pub struct WebAuthnSettings {
    pub rp: sallyport_webauthn::RelyingParty,
    /// `webauthn.config.passwordless`: security keys sign in on their own (aal1) instead of as a second factor.
    pub passwordless: bool,
}

/// What the `oidc` method needs from the configuration.
#[derive(Clone)]
pub struct OidcSettings {
    pub config: sallyport_oidc::OidcConfig,
    pub http: sallyport_oidc::HttpPolicy,
    pub cipher: sallyport_oidc::Cipher,
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.config.providers.iter().map(|p| p.id.as_str()).collect();
        f.debug_struct("OidcSettings")
            .field("providers", &ids)
            .finish_non_exhaustive()
    }
}
