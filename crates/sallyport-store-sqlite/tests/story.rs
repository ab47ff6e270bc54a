use std::path::PathBuf;
use std::sync::Arc;

use sallyport_core::identity::Identity;
use sallyport_core::session::Session;
use sallyport_core::store::IdentityStore;
use sallyport_core::store::{MigrationStore, SessionStore};
use sallyport_core::time_fmt;
use sallyport_store_sqlite::SqliteStore;
use serde_json::json;
use uuid::Uuid;

/// A database file under the temp dir, removed with its WAL files on drop.
struct TempDb(PathBuf);

impl TempDb {
    fn new() -> TempDb {
        TempDb(std::env::temp_dir().join(format!("sallyport-test-{}.sqlite", Uuid::new_v4().simple())))
    }

    fn dsn(&self) -> String {
        format!(
            "sqlite://{}?_fk=true&mode=rwc&_journal_mode=WAL",
            self.0.display()
        )
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

#[tokio::test]
async fn story_on_a_file() {
    let db = TempDb::new();
    let store = SqliteStore::connect(&db.dsn()).await.expect("connect");
    sallyport_store_sql::story::run(&store).await;
    store.close().await;
}

#[tokio::test]
async fn story_in_memory() {
    let store = SqliteStore::connect("memory").await.expect("connect");
    sallyport_store_sql::story::run(&store).await;
}

#[tokio::test]
async fn memory_is_one_database() {
    let store = SqliteStore::connect("memory").await.expect("connect");
    store.migrate_up().await.expect("migrate");
    let clone = store.clone();
    let identity = Identity::new("default", json!({}), time_fmt::now());
    store.create_identity(&identity, None).await.expect("create");
    assert_eq!(
        clone
            .get_identity(identity.id)
            .await
            .expect("get through a clone"),
        identity
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_never_see_locked() {
    let db = TempDb::new();
    let store = Arc::new(SqliteStore::connect(&db.dsn()).await.expect("connect"));
    store.migrate_up().await.expect("migrate");
    let tasks: Vec<_> = (0..50)
        .map(|n| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let now = time_fmt::now();
                let identity = Identity::new("default", json!({ "n": n }), now);
                store
                    .create_identity(&identity, None)
                    .await
                    .expect("create identity");
                let session = Session::issue(identity.id, time::Duration::hours(1), now).session;
                store.create_session(&session).await.expect("create session");
                let read = store.get_session_by_token_digest(&session.token_digest).await;
                assert_eq!(read.expect("read session back"), session);
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    assert_eq!(store.count_identities().await.expect("count"), 50);
    store.close().await;
}

/// Two stores on one file, as two server processes would open it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_claim_and_use_codes_once() {
    let db = TempDb::new();
    let a = SqliteStore::connect(&db.dsn()).await.expect("connect a");
    a.migrate_up().await.expect("migrate");
    let b = SqliteStore::connect(&db.dsn()).await.expect("connect b");
    sallyport_store_sql::story::races::claims(&a, &b, 200).await;
    sallyport_store_sql::story::races::code_uses(&a, &b, 25).await;
    sallyport_store_sql::story::races::rate_limit_hits(&a, &b, 25).await;
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_store_uses_a_code_once() {
    let store = SqliteStore::connect("memory").await.expect("connect");
    store.migrate_up().await.expect("migrate");
    sallyport_store_sql::story::races::code_uses(&store, &store, 25).await;
}

#[tokio::test]
async fn status_on_an_empty_file_lists_pending() {
    let db = TempDb::new();
    let store = SqliteStore::connect(&db.dsn()).await.expect("connect");
    let status = store.migration_status().await.expect("status");
    assert!(
        !status.is_empty() && status.iter().all(|m| !m.applied),
        "{status:?}"
    );
    store.close().await;
}

#[tokio::test]
async fn files_run_in_wal_mode() {
    use sqlx::Connection as _;
    let db = TempDb::new();
    let store = SqliteStore::connect(&db.dsn()).await.expect("connect");
    store.migrate_up().await.expect("migrate");
    store.close().await;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.0.display()))
        .await
        .expect("open");
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .expect("pragma");
    assert_eq!(mode, "wal");
    conn.close().await.expect("close");
}
