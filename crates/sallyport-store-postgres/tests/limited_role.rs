//! A database role that may not switch triggers off (not a superuser, no `SET` on
//! `session_replication_role`) still imports batches by COPY, with PostgreSQL's per-row foreign-key
//! checks. Its own test binary: which way the first batch went is remembered for the process.
//! Runs only when `TEST_POSTGRES_DSN` points at a server where we may create roles and databases.

use sallyport_core::store::{IdentityStore, MigrationStore};
use sallyport_store_postgres::PgStore;
use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

#[tokio::test]
async fn a_role_without_the_switch_imports_with_the_checks() {
    let Ok(admin_dsn) = std::env::var("TEST_POSTGRES_DSN") else {
        println!("skipped: set TEST_POSTGRES_DSN to run the PostgreSQL tests");
        return;
    };
    let suffix = Uuid::new_v4().simple().to_string();
    let (role, name) = (
        format!("sallyport_limited_{suffix}"),
        format!("sallyport_test_{suffix}"),
    );
    let mut admin = PgConnection::connect(&admin_dsn).await.expect("connect admin");
    for sql in [
        format!(r#"CREATE ROLE "{role}" LOGIN PASSWORD 'limited' NOSUPERUSER"#),
        format!(r#"CREATE DATABASE "{name}" OWNER "{role}""#),
    ] {
        admin
            .execute(sql.as_str())
            .await
            .expect("create role and database");
    }
    let mut url = url::Url::parse(&admin_dsn).expect("TEST_POSTGRES_DSN is a URL");
    url.set_path(&name);
    url.set_username(&role).expect("user");
    url.set_password(Some("limited")).expect("password");
    let dsn = url.to_string();
    let outcome = tokio::spawn(async move {
        let store = PgStore::connect(&dsn).await.expect("connect as the limited role");
        store.migrate_up().await.expect("migrate");
        let now = sallyport_core::time_fmt::now();
        let batch: Vec<_> = (0..30)
            .map(|n| {
                let email = format!("limited{n}@example.org");
                let mut i = sallyport_core::identity::Identity::new(
                    "default",
                    serde_json::json!({ "email": email }),
                    now,
                );
                i.set_credential(
                    sallyport_core::identity::credential_type::PASSWORD,
                    vec![email.clone()],
                    serde_json::json!({"hashed_password": "$2b$04$abcdefghijklmnopqrstuu"}),
                    now,
                );
                i.merge_verifiable_addresses(&[("email".to_owned(), email)], now);
                i
            })
            .collect();
        let results = store.create_identities(&batch).await.expect("batch");
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        for want in &batch {
            assert_eq!(&store.get_identity(want.id).await.expect("stored"), want);
        }
        store.close().await;

        // The batch went by COPY, not by the INSERTs a declined COPY falls back to, with the checks on.
        use sallyport_store_sql::BulkCopy;
        let more: Vec<_> = batch
            .iter()
            .map(|i| {
                let mut i = i.clone();
                i.id = Uuid::new_v4();
                i.external_id = None;
                i.traits = serde_json::json!({});
                i.credentials.clear();
                i.verifiable_addresses.clear();
                i
            })
            .collect();
        let refs: Vec<_> = more.iter().collect();
        let mut conn = PgConnection::connect(&dsn).await.expect("connect");
        let mut tx = conn.begin().await.expect("begin");
        assert!(matches!(tx.copy_new_identities(&refs).await, Ok(true)));
        let role = replication_role(&mut tx).await;
        assert_eq!(role, "origin", "the per-row checks stayed on");
        tx.commit().await.expect("commit");

        // So does a first import (`sallyport import kratos`) of other identities.
        let imported: Vec<_> = more
            .iter()
            .map(|i| {
                let mut i = i.clone();
                i.id = Uuid::new_v4();
                i
            })
            .collect();
        let mut tx = conn.begin().await.expect("begin");
        assert!(matches!(tx.copy_upsert_identities(&imported).await, Ok(true)));
        let role = replication_role(&mut tx).await;
        assert_eq!(role, "origin", "the per-row checks stayed on");
        tx.commit().await.expect("commit");
        let store = PgStore::connect(&dsn).await.expect("connect");
        for want in &imported {
            assert_eq!(&store.get_identity(want.id).await.expect("imported"), want);
        }
        store.close().await;
    })
    .await;
    for sql in [
        format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#),
        format!(r#"DROP ROLE IF EXISTS "{role}""#),
    ] {
        admin.execute(sql.as_str()).await.expect("drop");
    }
    if let Err(err) = outcome {
        std::panic::resume_unwind(err.into_panic());
    }
}

/// `session_replication_role` where `conn` stands: `replica` while the per-row checks are off.
async fn replication_role(conn: &mut PgConnection) -> String {
    sqlx::query_scalar("SHOW session_replication_role")
        .fetch_one(conn)
        .await
        .expect("show")
}
