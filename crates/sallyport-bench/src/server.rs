//! The real Sallyport server in this process, built the way the integration tests build it
//! (`crates/sallyport/tests/it/support/mod.rs`), on a file SQLite database in a temp dir.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use sallyport::server::{Server, build_app, open_store};
use sallyport::settings::Settings;
use sallyport_core::store::Store;

/// The identity schema every bench server uses (the integration tests' fixture).
pub const SCHEMA_JSON: &str = include_str!("../../sallyport/tests/fixtures/email-password.schema.json");
pub const COOKIE_SECRET: &str = "a-very-secret-cookie-secret-for-the-bench";

/// `file://` DSN of a fresh SQLite file in `dir`.
pub fn sqlite_dsn(dir: &Path) -> String {
    format!("sqlite://{}?_fk=true&mode=rwc", dir.join("db.sqlite").display())
}

/// The schema as a `base64://` URL, so configs need no file next to them.
pub fn schema_url() -> String {
    base64_url(SCHEMA_JSON)
}

/// Any schema as a `base64://` URL.
pub fn base64_url(schema_json: &str) -> String {
    use base64::Engine as _;
    format!(
        "base64://{}",
        base64::engine::general_purpose::STANDARD.encode(schema_json)
    )
}

/// A kratos.yml (as JSON) like the integration tests', with `hashers` given by the caller.
pub fn config_json(dsn: &str, public: &str, admin: &str, hashers: Value) -> Value {
    json!({
        "dsn": dsn,
        "serve": {"public": {"base_url": public}, "admin": {"base_url": admin}},
        "selfservice": {
            "default_browser_return_url": "http://app.test/welcome",
            "allowed_return_urls": ["http://app.test/"],
            "methods": {"password": {"enabled": true, "config": {"haveibeenpwned_enabled": false}}},
            "flows": {
                "login": {"ui_url": "http://ui.test/login"},
                "registration": {"ui_url": "http://ui.test/registration"},
                "settings": {"ui_url": "http://ui.test/settings"},
                "error": {"ui_url": "http://ui.test/error"},
                "logout": {"after": {"default_browser_return_url": "http://ui.test/login"}}
            }
        },
        "identity": {"default_schema_id": "default", "schemas": [{"id": "default", "url": schema_url()}]},
        "hashers": hashers,
        "secrets": {"cookie": [COOKIE_SECRET]},
        "session": {"whoami": {"required_aal": "aal1"}},
    })
}

/// Listeners bound, settings loaded, store open and migrated; not serving yet.
pub struct Prepared {
    pub settings: Settings,
    pub store: Arc<dyn Store>,
    public: TcpListener,
    admin: TcpListener,
}

impl Prepared {
    /// Must run inside the server runtime: the listeners register with its reactor.
    /// `dev` is false, as under `sallyport serve` without `--dev`.
    pub async fn new(dsn: &str, hashers: Value) -> anyhow::Result<Prepared> {
        Prepared::with_config(dsn, hashers, |_| {}).await
    }

    /// Like [`new`](Self::new), with `patch` applied to the config (as JSON) before it is loaded.
    pub async fn with_config(
        dsn: &str,
        hashers: Value,
        patch: impl FnOnce(&mut Value),
    ) -> anyhow::Result<Prepared> {
        Prepared::build(dsn, hashers, false, patch).await
    }

    /// `dev: true` allows a cheap bcrypt cost, for sections that measure what surrounds hashing.
    pub async fn build(
        dsn: &str,
        hashers: Value,
        dev: bool,
        patch: impl FnOnce(&mut Value),
    ) -> anyhow::Result<Prepared> {
        let public = TcpListener::bind("127.0.0.1:0").await?;
        let admin = TcpListener::bind("127.0.0.1:0").await?;
        let public_url = format!("http://{}/", public.local_addr()?);
        let admin_url = format!("http://{}/", admin.local_addr()?);
        let mut cfg = config_json(dsn, &public_url, &admin_url, hashers);
        patch(&mut cfg);
        let config = sallyport_config::from_value(cfg, dev).context("bench config")?;
        let settings = sallyport::config_loader::settings(&config, dev)?;
        let store = open_store(&settings.dsn).await?;
        store
            .migrate_up()
            .await
            .map_err(|e| anyhow::anyhow!("migrating: {e}"))?;
        Ok(Prepared {
            settings,
            store,
            public,
            admin,
        })
    }

    /// Builds the app and serves both listeners until [`Running::stop`].
    pub async fn start(
        self,
        metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    ) -> anyhow::Result<Running> {
        let app = build_app(self.settings, self.store, metrics).await?;
        let server = Server::new(app.clone(), self.public, self.admin);
        let public = server.public_addr();
        let admin = server.admin_addr();
        let (tx, rx) = oneshot::channel();
        let handle = tokio::spawn(server.run(async move {
            let _ = rx.await;
        }));
        Ok(Running {
            public,
            admin,
            app,
            stop: Some(tx),
            handle,
        })
    }
}

pub struct Running {
    pub public: SocketAddr,
    pub admin: SocketAddr,
    app: Arc<sallyport::state::App>,
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    pub fn public_url(&self, path: &str) -> String {
        format!("http://{}/{}", self.public, path.trim_start_matches('/'))
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}/{}", self.admin, path.trim_start_matches('/'))
    }

    /// Waits for the work a server does once after it starts: the dummy password hash (two hashes at
    /// the configured cost, on the blocking pool) that `build_app` computes in the background. A
    /// measurement of seconds that starts right after `start` shares the cores with it otherwise.
    pub async fn settled(&self) {
        // Waits for the warm-up's hash, then verifies once more, as long as the warm-up's own check.
        self.app.hasher.verify_dummy(b"settled").await;
    }

    /// Graceful shutdown: in-flight requests finish, then both listeners close.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.handle.await.context("server task")?
    }
}
