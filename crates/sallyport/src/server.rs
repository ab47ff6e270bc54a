//! Building the application from settings and running both listeners until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use tokio::net::TcpListener;

use sallyport_core::store::Store;
use sallyport_password::{Hasher, HasherConfig, PasswordPolicy, PolicyConfig};
use sallyport_schema::SchemaRegistry;

use crate::http::cookies::CookieKeys;
use crate::http::csrf;
use crate::settings::{HasherSettings, Settings};
use crate::state::{App, AppState};

/// Opens the store a Kratos DSN names: `memory`, `sqlite://…`, `postgres://…`.
pub async fn open_store(dsn: &str) -> anyhow::Result<Arc<dyn Store>> {
    if dsn.starts_with("postgres://") || dsn.starts_with("postgresql://") {
        let s = sallyport_store_postgres::PgStore::connect(dsn)
            .await
            .context("connecting to PostgreSQL")?;
        Ok(Arc::new(s))
    } else if dsn == "memory" || dsn.starts_with("sqlite") || dsn.starts_with("file:") {
        let s = sallyport_store_sqlite::SqliteStore::connect(dsn)
            .await
            .context("opening SQLite")?;
        Ok(Arc::new(s))
    } else {
        anyhow::bail!(
            "unsupported dsn {:?}: use memory, sqlite://<path> or postgres://…",
            redact_dsn(dsn)
        )
    }
}

/// A DSN with its password replaced, safe to log.
pub fn redact_dsn(dsn: &str) -> String {
    match url::Url::parse(dsn) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => dsn.to_owned(),
    }
}

pub fn hasher_config(h: &HasherSettings) -> HasherConfig {
    match *h {
        HasherSettings::Bcrypt { cost } => HasherConfig::Bcrypt { cost },
        HasherSettings::Argon2 {
            memory_kib,
            iterations,
            parallelism,
            salt_length,
            key_length,
        } => HasherConfig::Argon2 {
            memory_kib,
            iterations,
            parallelism,
            salt_length,
            key_length,
        },
    }
}

pub async fn build_app(
    settings: Settings,
    store: Arc<dyn Store>,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
) -> anyhow::Result<AppState> {
    // Remote identity schemas, courier templates and the breached-password check go through the same
    // outgoing-request policy as social sign-in and web hooks (see `outgoing.rs`).
    let guarded = sallyport_oidc::HttpClient::new(settings.web_hooks.http.clone())
        .map_err(|e| anyhow::anyhow!("building the HTTP client: {e}"))?;
    let remote_get = |url: &str| {
        let url = url::Url::parse(url).map_err(|e| e.to_string())?;
        guarded
            .request(reqwest::Method::GET, &url)
            .map_err(|e| e.to_string())
    };
    let schemas = SchemaRegistry::load(&settings.schemas, &settings.default_schema_id, &remote_get)
        .await
        .context("loading identity schemas")?;
    // Hashing is CPU-bound: at most one hash per core runs at once, the rest queue.
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let hasher = Hasher::new(hasher_config(&settings.hasher), cores);
    let p = &settings.password;
    let policy_config = PolicyConfig {
        min_length: p.min_length,
        identifier_similarity_check_enabled: p.identifier_similarity_check_enabled,
        haveibeenpwned_enabled: p.haveibeenpwned_enabled,
        haveibeenpwned_host: p.haveibeenpwned_host.clone(),
        max_breaches: p.max_breaches,
        ignore_network_errors: p.ignore_network_errors,
    };
    let outgoing = Arc::new(crate::outgoing::Outgoing(guarded));
    let hibp =
        match sallyport_courier::OutgoingHttp::client_for(&*outgoing, &policy_config.range_url("00000")) {
            Ok(client) => client,
            Err(e) if policy_config.haveibeenpwned_enabled => {
                anyhow::bail!("selfservice.methods.password.config.haveibeenpwned_host: {e}")
            }
            // Never used while the check is off.
            Err(_) => reqwest::Client::default(),
        };
    let policy = PasswordPolicy::new(policy_config, hibp);
    let templates = sallyport_courier::Templates::from_config_with(&settings.courier, &*outgoing)
        .map_err(|e| anyhow::anyhow!("loading courier templates: {e}"))?;
    let migrations_applied = pending_migrations(&*store).await.map(|p| p == 0).unwrap_or(false);
    // The dummy hash for unknown identifiers is computed once; do it now so the first such login
    // takes no longer than any other.
    let warm = hasher.clone();
    tokio::spawn(async move { warm.verify_dummy(b"warm-up").await });
    let web_hooks = crate::webhook::WebHooks::new(&settings.web_hooks)?;
    Ok(Arc::new(App {
        web_hooks,
        outgoing,
        cookie_keys: CookieKeys::new(&settings.cookie_secrets),
        csrf_cookie_name: csrf::cookie_name(settings.public_base_url.as_str()),
        methods: crate::selfservice::method::Methods::from_settings(&settings)?,
        whoami_cache: crate::whoami_cache::WhoamiCache::new(settings.whoami_cache_bytes),
        settings,
        store,
        hasher,
        policy,
        schemas,
        templates,
        migrations_applied: AtomicBool::new(migrations_applied),
        metrics,
        password_gate: Arc::new(tokio::sync::Semaphore::new(cores.max(1))),
    }))
}

pub async fn pending_migrations(store: &dyn Store) -> anyhow::Result<usize> {
    let status = store
        .migration_status()
        .await
        .map_err(|e| anyhow::anyhow!("reading migration status: {e}"))?;
    Ok(status.iter().filter(|m| !m.applied).count())
}

/// How often ended rate-limit counters are deleted.
const COUNTER_CLEANUP_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

pub struct Server {
    app: AppState,
    public: TcpListener,
    admin: TcpListener,
    courier: Option<sallyport_courier::Dispatcher>,
}

impl Server {
    pub fn new(app: AppState, public: TcpListener, admin: TcpListener) -> Server {
        Server {
            app,
            public,
            admin,
            courier: None,
        }
    }

    /// Also deliver queued messages from this process (`--watch-courier`).
    pub fn with_courier(mut self) -> anyhow::Result<Server> {
        self.courier = Some(crate::courier_worker::dispatcher(&self.app)?);
        Ok(self)
    }

    pub fn app(&self) -> &AppState {
        &self.app
    }

    pub fn public_addr(&self) -> SocketAddr {
        self.public.local_addr().expect("bound listener has an address")
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.local_addr().expect("bound listener has an address")
    }

    /// Serves until `shutdown` resolves; in-flight requests finish first.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (tx, _) = tokio::sync::broadcast::channel::<()>(1);
        let public_app = crate::router::public_router(self.app.clone());
        let admin_app = crate::router::admin_router(self.app.clone());
        let mut rx1 = tx.subscribe();
        let mut rx2 = tx.subscribe();
        let courier = self.courier.map(|d| {
            let mut rx = tx.subscribe();
            tokio::spawn(async move {
                d.run(async move {
                    let _ = rx.recv().await;
                })
                .await
            })
        });
        let public = axum::serve(
            self.public,
            crate::public::whoami_fast_path::MakePublicService::new(self.app.clone(), public_app),
        )
        .with_graceful_shutdown(async move {
            let _ = rx1.recv().await;
        });
        let admin = axum::serve(
            self.admin,
            admin_app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = rx2.recv().await;
        });
        let tx_outbox = tx.clone();
        let trigger = tokio::spawn(async move {
            shutdown.await;
            let _ = tx.send(());
        });
        let cleanup = crate::rate_limit::spawn_cleanup(self.app.clone(), COUNTER_CLEANUP_EVERY);
        // Every node delivers queued `response.ignore` hooks; leases keep them from delivering one twice.
        let outbox = self.app.web_hooks.table.has_async().then(|| {
            let mut rx = tx_outbox.subscribe();
            tokio::spawn(crate::webhook::outbox::run(self.app.clone(), async move {
                let _ = rx.recv().await;
            }))
        });
        let (a, b) = tokio::join!(public.into_future(), admin.into_future());
        trigger.abort();
        cleanup.abort();
        if let Some(o) = outbox {
            let _ = o.await;
        }
        if let Some(c) = courier {
            let _ = c.await;
        }
        a.context("public listener")?;
        b.context("admin listener")?;
        Ok(())
    }

    pub fn mark_migrated(&self) {
        self.app.migrations_applied.store(true, Ordering::Relaxed);
    }
}
