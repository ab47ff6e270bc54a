//! Runs only when `TEST_POSTGRES_DSN` points at a server where we may create databases.

use sallyport_core::store::MigrationStore;
use sallyport_store_postgres::PgStore;
use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

/// A fresh database on the test server, dropped by [`TestDb::drop_db`].
struct TestDb {
    admin_dsn: String,
    name: String,
    dsn: String,
}

impl TestDb {
    async fn create() -> Option<TestDb> {
        let Ok(admin_dsn) = std::env::var("TEST_POSTGRES_DSN") else {
            println!("skipped: set TEST_POSTGRES_DSN to run the PostgreSQL story");
            return None;
        };
        let name = format!("sallyport_test_{}", Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_dsn).await.expect("connect admin");
        admin
            .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
            .await
            .expect("create database");
        admin.close().await.expect("close admin");
        let mut url = url::Url::parse(&admin_dsn).expect("TEST_POSTGRES_DSN is a URL");
        url.set_path(&name);
        Some(TestDb {
            admin_dsn,
            name,
            dsn: url.into(),
        })
    }

    async fn drop_db(self) {
        let mut admin = PgConnection::connect(&self.admin_dsn)
            .await
            .expect("connect admin");
        let sql = format!(r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#, self.name);
        admin.execute(sql.as_str()).await.expect("drop database");
    }

    /// Runs `test` in its own task so that a failing assertion still lets us drop the database.
    async fn run<F, Fut>(self, test: F)
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let outcome = tokio::spawn(test(self.dsn.clone())).await;
        self.drop_db().await;
        if let Err(err) = outcome {
            std::panic::resume_unwind(err.into_panic());
        }
    }
}

#[tokio::test]
async fn story() {
    let Some(db) = TestDb::create().await else { return };
    db.run(|dsn| async move {
        let store = PgStore::connect(&dsn).await.expect("connect");
        sallyport_store_sql::story::run(&store).await;
        store.close().await;
    })
    .await;
}

/// Two pools, as two worker processes would have: each queued message is claimed exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_claim_each_message_once() {
    let Some(db) = TestDb::create().await else { return };
    db.run(|dsn| async move {
        let (a, b) = two_stores(&dsn).await;
        sallyport_store_sql::story::races::claims(&a, &b, 200).await;
        a.close().await;
        b.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_use_a_code_once() {
    let Some(db) = TestDb::create().await else { return };
    db.run(|dsn| async move {
        let (a, b) = two_stores(&dsn).await;
        sallyport_store_sql::story::races::code_uses(&a, &b, 25).await;
        a.close().await;
        b.close().await;
    })
    .await;
}

/// Two nodes on one PostgreSQL share rate-limit counters and lose no increment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_rate_limits() {
    let Some(db) = TestDb::create().await else { return };
    db.run(|dsn| async move {
        let (a, b) = two_stores(&dsn).await;
        sallyport_store_sql::story::races::rate_limit_hits(&a, &b, 25).await;
        a.close().await;
        b.close().await;
    })
    .await;
}

async fn two_stores(dsn: &str) -> (PgStore, PgStore) {
    let a = PgStore::connect(dsn).await.expect("connect a");
    a.migrate_up().await.expect("migrate");
    let b = PgStore::connect(dsn).await.expect("connect b");
    (a, b)
}
