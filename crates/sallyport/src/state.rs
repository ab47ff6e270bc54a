//! Everything a request handler can reach.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use sallyport_core::store::Store;
use sallyport_password::{Hasher, PasswordPolicy};
use sallyport_schema::SchemaRegistry;

use crate::http::cookies::CookieKeys;
use crate::settings::Settings;

pub struct App {
    pub settings: Settings,
    pub store: Arc<dyn Store>,
    pub hasher: Hasher,
    pub policy: PasswordPolicy,
    pub schemas: SchemaRegistry,
    pub templates: sallyport_courier::Templates,
    pub cookie_keys: CookieKeys,
    pub csrf_cookie_name: String,
    /// Set once every embedded migration is applied; `/health/ready` answers 503 until then.
    pub migrations_applied: AtomicBool,
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// One permit per core: password checks and their rate-limit bookkeeping (`rate_limit::PasswordAttempt`).
    pub password_gate: Arc<tokio::sync::Semaphore>,
    /// The self-service methods the configuration enables, built once.
    pub methods: crate::selfservice::method::Methods,
    pub web_hooks: crate::webhook::WebHooks,
    /// The outgoing-request policy's clients, for the courier's HTTP requests.
    pub outgoing: Arc<crate::outgoing::Outgoing>,
    /// Finished whoami answers, bounded by `sallyport.cache.whoami_max_bytes`.
    pub whoami_cache: crate::whoami_cache::WhoamiCache,
}

pub type AppState = Arc<App>;

impl App {
    /// `<public base URL><path>`, the base URL always ending in `/`.
    pub fn public_url(&self, path: &str) -> String {
        format!(
            "{}{}",
            self.settings.public_base_url,
            path.trim_start_matches('/')
        )
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("{}{}", self.settings.admin_base_url, path.trim_start_matches('/'))
    }
}
