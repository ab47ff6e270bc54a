//! The loaded configuration and the accessors that encode Kratos' fallbacks between keys.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

use crate::env::EnvOverride;
use crate::model::*;

/// The effective configuration. Build it with [`crate::load`].
#[derive(Clone, Deserialize)]
#[serde(default)]
pub struct Config {
    /// `dsn`; `memory` means in-memory SQLite (see [`Config::dsn_is_memory`]).
    pub dsn: String,
    pub serve: Serve,
    pub selfservice: SelfService,
    pub session: Session,
    pub cookies: Cookies,
    pub secrets: Secrets,
    pub hashers: Hashers,
    pub identity: Identity,
    pub courier: Courier,
    pub log: Log,
    pub feature_flags: FeatureFlags,
    pub security: Security,
    pub clients: Clients,
    pub database: Database,
    /// Sallyport's own settings (the top-level `sallyport:` key), beyond Kratos.
    #[serde(skip)]
    pub sallyport: Extensions,
    #[serde(skip)]
    pub(crate) raw: Value,
    #[serde(skip)]
    pub(crate) user: Value,
    #[serde(skip)]
    pub(crate) dev: bool,
    #[serde(skip)]
    pub(crate) env_overrides: Vec<EnvOverride>,
    #[serde(skip)]
    pub(crate) public_base_url: Option<Url>,
    #[serde(skip)]
    pub(crate) admin_base_url: Option<Url>,
    #[serde(skip)]
    pub(crate) generated_secret: Option<String>,
    #[serde(skip)]
    pub(crate) warnings: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            dsn: String::new(),
            serve: Serve::default(),
            selfservice: SelfService::default(),
            session: Session::default(),
            cookies: Cookies::default(),
            secrets: Secrets::default(),
            hashers: Hashers::default(),
            identity: Identity::default(),
            courier: Courier::default(),
            log: Log::default(),
            feature_flags: FeatureFlags::default(),
            security: Security::default(),
            clients: Clients::default(),
            database: Database::default(),
            sallyport: Extensions::default(),
            raw: Value::Null,
            user: Value::Null,
            dev: false,
            env_overrides: Vec::new(),
            public_base_url: None,
            admin_base_url: None,
            generated_secret: None,
            warnings: Vec::new(),
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("dsn", &"(hidden)")
            .field("dev", &self.dev)
            .field("serve", &self.serve)
            .field("selfservice", &self.selfservice)
            .field("session", &self.session)
            .field("cookies", &self.cookies)
            .field("secrets", &self.secrets)
            .field("hashers", &self.hashers)
            .field("identity", &self.identity)
            .field("courier", &self.courier)
            .field("log", &self.log)
            .field("feature_flags", &self.feature_flags)
            .field("security", &self.security)
            .field("clients", &self.clients)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

/// The five self-service flows that have a lifespan, a UI and hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowKind {
    Login,
    Registration,
    Settings,
    Recovery,
    Verification,
}

impl FlowKind {
    /// The config key name (`login`, `registration`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            FlowKind::Login => "login",
            FlowKind::Registration => "registration",
            FlowKind::Settings => "settings",
            FlowKind::Recovery => "recovery",
            FlowKind::Verification => "verification",
        }
    }
}

impl FromStr for FlowKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "login" => FlowKind::Login,
            "registration" => FlowKind::Registration,
            "settings" => FlowKind::Settings,
            "recovery" => FlowKind::Recovery,
            "verification" => FlowKind::Verification,
            other => return Err(format!("unknown self-service flow {other:?}")),
        })
    }
}

impl Config {
    /// The effective document: schema defaults, then files, then env (what `/admin/health/config` hashes).
    pub fn raw(&self) -> &Value {
        &self.raw
    }

    /// Only what the user provided (base + files + env), without defaults.
    pub fn user_value(&self) -> &Value {
        &self.user
    }

    /// Env vars that set config keys.
    pub fn env_overrides(&self) -> &[EnvOverride] {
        &self.env_overrides
    }

    /// Things worth a warning log line that are not errors (a guessed base URL, a random secret).
    /// Loading happens before logging is set up, so the server should log these itself.
    pub fn load_warnings(&self) -> &[String] {
        &self.warnings
    }

    /// `--dev` or `dev: true`.
    pub fn is_dev(&self) -> bool {
        self.dev
    }

    /// Hex SHA-256 of the effective config JSON.
    pub fn hash(&self) -> String {
        let bytes = serde_json::to_vec(&self.raw).unwrap_or_default();
        Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Keys the user set that Kratos accepts but Sallyport ignores (log them once as a warning).
    pub fn unimplemented_keys(&self) -> Vec<String> {
        crate::keys::unimplemented(&self.user, crate::keys::IMPLEMENTED_KEYS)
    }

    /// `dsn: memory` (or an explicit in-memory SQLite URL).
    pub fn dsn_is_memory(&self) -> bool {
        let dsn = self.dsn.trim();
        dsn == "memory" || dsn.starts_with("sqlite::memory:") || dsn.contains("file::memory:")
    }

    /// `serve.public.base_url`, or the guess from host and port; always ends with `/`.
    pub fn public_base_url(&self) -> Url {
        self.public_base_url
            .clone()
            .unwrap_or_else(|| Url::parse("http://127.0.0.1:4433/").expect("valid"))
    }

    /// `serve.admin.base_url`, or the guess from host and port; always ends with `/`.
    pub fn admin_base_url(&self) -> Url {
        self.admin_base_url
            .clone()
            .unwrap_or_else(|| Url::parse("http://127.0.0.1:4434/").expect("valid"))
    }

    /// Parses a configured URL; relative ones (`/welcome`) are resolved against the public base URL.
    pub fn resolve_url(&self, text: &str) -> Url {
        let base = self.public_base_url();
        match Url::parse(text) {
            Ok(url) => url,
            Err(_) => base.join(text).unwrap_or(base),
        }
    }

    /// `selfservice.default_browser_return_url`.
    pub fn default_browser_return_url(&self) -> Url {
        self.resolve_url(&self.selfservice.default_browser_return_url)
    }

    /// `selfservice.flows.<flow>.lifespan`.
    pub fn flow_lifespan(&self, kind: FlowKind) -> Duration {
        let flows = &self.selfservice.flows;
        match kind {
            FlowKind::Login => flows.login.lifespan,
            FlowKind::Registration => flows.registration.lifespan,
            FlowKind::Settings => flows.settings.lifespan,
            FlowKind::Recovery => flows.recovery.lifespan,
            FlowKind::Verification => flows.verification.lifespan,
        }
    }

    /// `selfservice.flows.<flow>.ui_url`, resolved against the public base URL when relative.
    pub fn flow_ui_url(&self, kind: FlowKind) -> Url {
        let flows = &self.selfservice.flows;
        let text = match kind {
            FlowKind::Login => &flows.login.ui_url,
            FlowKind::Registration => &flows.registration.ui_url,
            FlowKind::Settings => &flows.settings.ui_url,
            FlowKind::Recovery => &flows.recovery.ui_url,
            FlowKind::Verification => &flows.verification.ui_url,
        };
        self.ui_url_or_builtin(text, kind.as_str())
    }

    /// `selfservice.flows.error.ui_url`.
    pub fn error_ui_url(&self) -> Url {
        self.ui_url_or_builtin(&self.selfservice.flows.error.ui_url, "error")
    }

    /// A `ui_url` the config left at Kratos' fallback (a docs page nobody can sign in on) points at
    /// the built-in pages under `<public base URL>/ui/` instead; a configured one is kept as is.
    fn ui_url_or_builtin(&self, text: &str, page: &str) -> Url {
        if text.starts_with(KRATOS_FALLBACK_UI) {
            let base = self.public_base_url();
            return base.join(&format!("ui/{page}")).unwrap_or(base);
        }
        self.resolve_url(text)
    }

    /// `selfservice.flows.logout.after.default_browser_return_url`, else the global default.
    pub fn logout_return_url(&self) -> Url {
        match &self.selfservice.flows.logout.after.default_browser_return_url {
            Some(u) => self.resolve_url(u),
            None => self.default_browser_return_url(),
        }
    }

    /// Whether `selfservice.methods.<name>.enabled`; unknown methods are disabled.
    pub fn method_enabled(&self, name: &str) -> bool {
        let m = &self.selfservice.methods;
        match name {
            "password" => m.password.enabled,
            "code" => m.code.enabled,
            "link" => m.link.enabled,
            "totp" => m.totp.enabled,
            "lookup_secret" => m.lookup_secret.enabled,
            "webauthn" => m.webauthn.enabled,
            "passkey" => m.passkey.enabled,
            "oidc" => m.oidc.enabled,
            "profile" => m.profile.enabled,
            _ => false,
        }
    }

    fn flow_hooks(&self, flow: &str) -> Option<(&BeforeHooks, &AfterHooks)> {
        let f = &self.selfservice.flows;
        Some(match flow.parse().ok()? {
            FlowKind::Login => (&f.login.before, &f.login.after),
            FlowKind::Registration => (&f.registration.before, &f.registration.after),
            FlowKind::Settings => (&f.settings.before, &f.settings.after),
            FlowKind::Recovery => (&f.recovery.before, &f.recovery.after),
            FlowKind::Verification => (&f.verification.before, &f.verification.after),
        })
    }

    /// `selfservice.flows.<flow>.before.hooks`.
    pub fn before_hooks(&self, flow: &str) -> Vec<Hook> {
        self.flow_hooks(flow)
            .map(|(before, _)| before.hooks.clone())
            .unwrap_or_default()
    }

    /// The after-hooks Kratos runs when `method` completes `flow`: `after.<method>.hooks` when that list is
    /// non-empty (it replaces the flow's hooks, no merging), else `after.hooks`. `method` may be `""`/`"global"`.
    pub fn after_hooks(&self, flow: &str, method: &str) -> Vec<Hook> {
        let Some((_, after)) = self.flow_hooks(flow) else {
            return Vec::new();
        };
        match after.methods.get(method) {
            Some(m) if !m.hooks.is_empty() => m.hooks.clone(),
            _ => after.hooks.clone(),
        }
    }

    /// Where a browser goes after `method` completed `flow`: `after.<method>.default_browser_return_url`,
    /// else `after.default_browser_return_url`, else `selfservice.default_browser_return_url`.
    pub fn after_default_return_url(&self, flow: &str, method: &str) -> Url {
        let Some((_, after)) = self.flow_hooks(flow) else {
            return self.default_browser_return_url();
        };
        after
            .methods
            .get(method)
            .and_then(|m| m.default_browser_return_url.as_deref())
            .or(after.default_browser_return_url.as_deref())
            .map(|u| self.resolve_url(u))
            .unwrap_or_else(|| self.default_browser_return_url())
    }

    /// Secrets for signing/encrypting cookies: `secrets.cookie`, else `secrets.default`, else a random
    /// secret generated at load. The first one signs; all verify.
    pub fn cookie_secrets(&self) -> Vec<String> {
        if self.secrets.cookie.is_empty() {
            self.default_secrets()
        } else {
            self.secrets.cookie.clone()
        }
    }

    /// `secrets.default`, else the random secret generated at load.
    pub fn default_secrets(&self) -> Vec<String> {
        if !self.secrets.default.is_empty() {
            return self.secrets.default.clone();
        }
        self.generated_secret.iter().cloned().collect()
    }

    /// `secrets.cipher` (32-character keys).
    pub fn cipher_secrets(&self) -> Vec<String> {
        self.secrets.cipher.clone()
    }

    /// True when no secret was configured and a random one is in use.
    pub fn uses_generated_secret(&self) -> bool {
        self.generated_secret.is_some()
    }

    /// `session.cookie.name`.
    pub fn session_cookie_name(&self) -> &str {
        &self.session.cookie.name
    }

    /// `session.cookie.domain`, else `cookies.domain`.
    pub fn session_cookie_domain(&self) -> Option<&str> {
        self.session
            .cookie
            .domain
            .as_deref()
            .or(self.cookies.domain.as_deref())
            .filter(|d| !d.is_empty())
    }

    /// `session.cookie.path`, else `cookies.path`.
    pub fn session_cookie_path(&self) -> &str {
        self.session.cookie.path.as_deref().unwrap_or(&self.cookies.path)
    }

    /// `session.cookie.same_site`, else `cookies.same_site`.
    pub fn session_cookie_same_site(&self) -> SameSite {
        self.session.cookie.same_site.unwrap_or(self.cookies.same_site)
    }

    /// `session.cookie.secure`, else `cookies.secure`, else `!dev`.
    pub fn session_cookie_secure(&self, dev: bool) -> bool {
        self.session
            .cookie
            .secure
            .unwrap_or_else(|| self.cookie_secure(dev))
    }

    /// `session.cookie.persistent`.
    pub fn session_cookie_persistent(&self) -> bool {
        self.session.cookie.persistent
    }

    /// `cookies.domain` (CSRF cookie).
    pub fn cookie_domain(&self) -> Option<&str> {
        self.cookies.domain.as_deref().filter(|d| !d.is_empty())
    }

    /// `cookies.path` (CSRF cookie).
    pub fn cookie_path(&self) -> &str {
        &self.cookies.path
    }

    /// `cookies.same_site` (CSRF cookie).
    pub fn cookie_same_site(&self) -> SameSite {
        self.cookies.same_site
    }

    /// `cookies.secure`, else `!dev` (CSRF cookie).
    pub fn cookie_secure(&self, dev: bool) -> bool {
        self.cookies.secure.unwrap_or(!dev)
    }

    /// The bcrypt cost Kratos applies: `hashers.bcrypt.cost`, raised to 12 unless in dev mode.
    pub fn bcrypt_cost(&self) -> u32 {
        let cost = self.hashers.bcrypt.cost;
        if self.dev { cost } else { cost.max(12) }
    }

    /// `selfservice.methods.totp.config.issuer`, else the public base URL's host name.
    pub fn totp_issuer(&self) -> String {
        self.selfservice
            .methods
            .totp
            .config
            .issuer
            .clone()
            .filter(|i| !i.is_empty())
            .unwrap_or_else(|| self.public_base_url().host_str().unwrap_or_default().to_owned())
    }
}
