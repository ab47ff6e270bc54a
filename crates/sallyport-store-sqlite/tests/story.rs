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

/// Many writes at once on the single writer connection are group-committed: each caller still gets
/// its own outcome (a conflict or a missing row fails that write alone), and every write answered
/// Ok is committed, visible to the read-only connections at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_keeps_each_writes_outcome() {
    use sallyport_core::code::CodeStore;
    use sallyport_core::flow::{Flow, FlowKind, FlowType};
    use sallyport_core::store::{FlowStore, StoreError};

    let db = TempDb::new();
    let store = Arc::new(SqliteStore::connect(&db.dsn()).await.expect("connect"));
    store.migrate_up().await.expect("migrate");
    let flow = |now| {
        Flow::new(
            FlowKind::Login,
            FlowType::Api,
            "http://127.0.0.1:4433/self-service/login/api".into(),
            "http://127.0.0.1:4433/",
            time::Duration::hours(1),
            "csrf".into(),
            now,
        )
    };
    let first = flow(time_fmt::now());
    store.create_flow(&first).await.expect("first flow");
    for round in 0..5 {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..200 {
            let (store, first) = (store.clone(), first.clone());
            tasks.spawn(async move {
                match i % 4 {
                    // A duplicate id: this write alone fails.
                    0 => match store.create_flow(&first).await {
                        Err(StoreError::Conflict(_)) => None,
                        other => panic!("duplicate flow: {other:?}"),
                    },
                    1 => match store.count_submission(Uuid::new_v4()).await {
                        Err(StoreError::NotFound) => None,
                        other => panic!("counting on a missing flow: {other:?}"),
                    },
                    _ => {
                        let f = flow(time_fmt::now());
                        store.create_flow(&f).await.expect("new flow");
                        // Answered only once committed: the read-only pool sees it now.
                        let got = store.get_flow(FlowKind::Login, f.id).await.expect("read back");
                        assert_eq!(got.id, f.id);
                        Some(f.id)
                    }
                }
            });
        }
        let mut stored = 0;
        while let Some(r) = tasks.join_next().await {
            stored += usize::from(r.expect("task").is_some());
        }
        assert_eq!(stored, 100, "round {round}");
    }
    let n = store.count_submission(first.id).await.expect("count");
    assert_eq!(n, 1, "the first flow is untouched by its failed duplicates");
    store.close().await;
}

/// A write that panics fails alone (its caller hears of it) and the writer keeps serving the writes
/// after it: a bug in one request must not stop every later write of the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_write_does_not_stop_the_writer() {
    use sallyport_store_sql::GroupWriter;

    let db = TempDb::new();
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&format!("sqlite://{}?mode=rwc", db.0.display()))
        .await
        .expect("connect");
    sqlx::query("CREATE TABLE t (v INTEGER NOT NULL)")
        .execute(&pool)
        .await
        .expect("create");
    let writer = Arc::new(GroupWriter::spawn(pool.clone()));
    for round in 0..3 {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..40i64 {
            let writer = writer.clone();
            tasks.spawn(async move {
                let r = writer
                    .write(move |conn| {
                        Box::pin(async move {
                            sqlx::query("INSERT INTO t (v) VALUES (?)")
                                .bind(i)
                                .execute(&mut *conn)
                                .await
                                .map_err(sallyport_store_sql::db_err)?;
                            if i == 7 {
                                panic!("a bug in one write");
                            }
                            Ok(())
                        })
                    })
                    .await;
                (i, r.is_ok())
            });
        }
        let (mut ok, mut failed) = (vec![], vec![]);
        while let Some(r) = tasks.join_next().await {
            match r.expect("task") {
                (i, true) => ok.push(i),
                (i, false) => failed.push(i),
            }
        }
        assert!(
            failed.contains(&7),
            "round {round}: the panicking write is reported failed"
        );
        // Every write answered Ok is stored (a group the panic rolled back answered its writes failed).
        let rows: Vec<i64> = sqlx::query_scalar("SELECT v FROM t")
            .fetch_all(&pool)
            .await
            .expect("read");
        for i in &ok {
            assert!(
                rows.contains(i),
                "round {round}: write {i} was answered Ok but is not stored"
            );
        }
        sqlx::query("DELETE FROM t").execute(&pool).await.expect("clear");
    }
    // And later writes still go through.
    writer
        .write(|conn| {
            Box::pin(async move {
                sqlx::query("INSERT INTO t (v) VALUES (1)")
                    .execute(&mut *conn)
                    .await
                    .map_err(sallyport_store_sql::db_err)?;
                Ok(())
            })
        })
        .await
        .expect("the writer still runs");
    pool.close().await;
}

/// The main database file's length and modification time.
fn file_state(path: &std::path::Path) -> (u64, std::time::SystemTime) {
    let m = std::fs::metadata(path).expect("database file");
    (m.len(), m.modified().expect("mtime"))
}

/// Commits only append to the WAL; the background checkpointer copies them into the database file
/// soon after, although none of these commits reaches SQLite's own automatic-checkpoint threshold.
#[tokio::test]
async fn the_wal_is_checkpointed_in_the_background() {
    let db = TempDb::new();
    let store = SqliteStore::connect(&db.dsn()).await.expect("connect");
    store.migrate_up().await.expect("migrate");
    // Whatever migrating left in the WAL is copied first, so what follows is only the writes below.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let before = file_state(&db.0);
    let mut ids = vec![];
    for n in 0..40 {
        let identity = Identity::new(
            "default",
            json!({ "n": n, "pad": "x".repeat(2000) }),
            time_fmt::now(),
        );
        store.create_identity(&identity, None).await.expect("create");
        ids.push(identity.id);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while file_state(&db.0) == before {
        assert!(
            std::time::Instant::now() < deadline,
            "40 committed identities (~80 KB) never reached the database file: no checkpoint ran"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        file_state(&db.0).0 > before.0,
        "the database file grew by the checkpointed pages"
    );
    for id in ids {
        store
            .get_identity(id)
            .await
            .expect("read back after the checkpoint");
    }
    store.close().await;
}
