//! Starts the real server on random ports against a fresh database, and talks HTTP to it.

pub mod client;
pub mod mail;
pub mod totp;

use std::path::PathBuf;

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use sallyport::server::{Server, build_app, open_store};
use sallyport::state::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs the test body once per backend; the PostgreSQL run needs `TEST_POSTGRES_DSN`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                ($body)($crate::support::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if std::env::var("TEST_POSTGRES_DSN").is_err() {
                    eprintln!("skipped: TEST_POSTGRES_DSN is not set");
                    return;
                }
                ($body)($crate::support::Backend::Postgres).await;
            }
        }
    };
}

pub struct TestDb {
    pub dsn: String,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let dsn = format!(
                    "sqlite://{}?_fk=true&mode=rwc",
                    dir.path().join("db.sqlite").display()
                );
                TestDb {
                    dsn,
                    _dir: Some(dir),
                    pg_name: None,
                }
            }
            Backend::Postgres => {
                let admin = std::env::var("TEST_POSTGRES_DSN").unwrap();
                let name = format!("sallyport_it_{}", uuid::Uuid::new_v4().simple());
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
                    .await
                    .unwrap();
                sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
                    .await
                    .unwrap();
                let mut u = url::Url::parse(&admin).unwrap();
                u.set_path(&format!("/{name}"));
                TestDb {
                    dsn: u.to_string(),
                    _dir: None,
                    pg_name: Some(name),
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else { return };
        let admin = std::env::var("TEST_POSTGRES_DSN").unwrap();
        // Drop runs inside the test's runtime, so the cleanup gets a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut c) = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await {
                    let _ = sqlx::Executor::execute(
                        &mut c,
                        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str(),
                    )
                    .await;
                }
            })
        })
        .join();
    }
}

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Merges `b` into `a`; a `null` in `b` removes the key (e.g. a default `ui_url` a test wants unset).
pub fn deep_merge(a: &mut Value, b: Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                if v.is_null() {
                    a.remove(&k);
                } else {
                    deep_merge(a.entry(k).or_insert(Value::Null), v);
                }
            }
        }
        (a, b) => *a = b,
    }
}

pub struct TestServer {
    pub public: String,
    pub admin: String,
    pub app: AppState,
    /// Kept for its Drop: the database lives as long as the server (none when sharing another's).
    _db: Option<TestDb>,
    dsn: String,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub const UI: &str = "http://ui.test";
pub const RETURN: &str = "http://app.test/welcome";

impl TestServer {
    pub async fn spawn(backend: Backend) -> TestServer {
        TestServer::spawn_with(backend, json!({})).await
    }

    /// `overrides` are deep-merged over the default test config (a kratos.yml as JSON).
    pub async fn spawn_with(backend: Backend, overrides: Value) -> TestServer {
        let db = TestDb::new(backend).await;
        let dsn = db.dsn.clone();
        TestServer::spawn_on(Some(db), dsn, overrides).await
    }

    /// A second node on `other`'s database, as two processes behind one load balancer.
    pub async fn spawn_sharing(other: &TestServer, overrides: Value) -> TestServer {
        TestServer::spawn_on(None, other.dsn.clone(), overrides).await
    }

    async fn spawn_on(db: Option<TestDb>, dsn: String, overrides: Value) -> TestServer {
        let with_courier = overrides.get("courier").is_some();
        let public_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let public = format!("http://{}/", public_l.local_addr().unwrap());
        let admin = format!("http://{}/", admin_l.local_addr().unwrap());
        let schema = fixture("email-password.schema.json");
        let mut cfg = json!({
            "dsn": dsn,
            "serve": {"public": {"base_url": public}, "admin": {"base_url": admin}},
            "selfservice": {
                "default_browser_return_url": RETURN,
                "allowed_return_urls": ["http://app.test/"],
                "methods": {"password": {"enabled": true, "config": {"haveibeenpwned_enabled": false}}},
                "flows": {
                    "login": {"ui_url": format!("{UI}/login")},
                    "registration": {"ui_url": format!("{UI}/registration"), "after": {"password": {"hooks": [{"hook": "session"}]}}},
                    "settings": {"ui_url": format!("{UI}/settings")},
                    "error": {"ui_url": format!("{UI}/error")},
                    "logout": {"after": {"default_browser_return_url": format!("{UI}/login")}}
                }
            },
            "identity": {"default_schema_id": "default", "schemas": [{"id": "default", "url": format!("file://{}", schema.display())}]},
            "hashers": {"algorithm": "bcrypt", "bcrypt": {"cost": 4}},
            "secrets": {"cookie": ["a-very-secret-cookie-secret-for-tests"]},
            "session": {"whoami": {"required_aal": "aal1"}},
        });
        deep_merge(&mut cfg, overrides);
        let config = sallyport_config::from_value(cfg, true).expect("test config loads");
        let settings = sallyport::config_loader::settings(&config, true).unwrap();
        let store = open_store(&settings.dsn).await.unwrap();
        store.migrate_up().await.unwrap();
        let app = build_app(settings, store, None).await.unwrap();
        let mut server = Server::new(app.clone(), public_l, admin_l);
        if with_courier {
            server = server.with_courier().unwrap();
        }
        let (tx, rx) = oneshot::channel();
        let handle = tokio::spawn(server.run(async move {
            let _ = rx.await;
        }));
        TestServer {
            public,
            admin,
            app,
            _db: db,
            dsn,
            stop: Some(tx),
            handle: Some(handle),
        }
    }

    pub fn dsn(&self) -> &str {
        &self.dsn
    }

    pub fn public_url(&self, path: &str) -> String {
        format!("{}{}", self.public, path.trim_start_matches('/'))
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("{}{}", self.admin, path.trim_start_matches('/'))
    }

    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}
