//! Runs only when `TEST_POSTGRES_DSN` points at a server where we may create databases.

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
}

#[tokio::test]
async fn story() {
    let Some(db) = TestDb::create().await else { return };
    let store = PgStore::connect(&db.dsn).await.expect("connect");
    // The story runs in its own task so a failing assertion still lets us drop the database.
    let outcome = tokio::spawn(async move {
        sallyport_store_sql::story::run(&store).await;
        store.close().await;
    })
    .await;
    db.drop_db().await;
    if let Err(err) = outcome {
        std::panic::resume_unwind(err.into_panic());
    }
}
