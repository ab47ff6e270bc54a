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

/// Characters that COPY's text format reads specially, JSON escapes, quotes and non-ASCII.
const ODD: &str = "tab\there new\nline cr\r back\\slash \\N \\. \"dq\" 'sq' é ✓ 𝄞 \u{1} end";

fn odd_identity(n: usize) -> sallyport_core::identity::Identity {
    use sallyport_core::identity::{Identity, credential_type};
    let now = sallyport_core::time_fmt::now();
    let email = format!("copy{n}\t\\{ODD}@example.org");
    let mut i = Identity::new(
        "default",
        serde_json::json!({"email": email, "name": {"first": format!("{ODD}{n}"), "last": ODD},
                           "k\t\\\"ey": [ODD, 1.5, null, true]}),
        now,
    );
    i.metadata_public = Some(serde_json::json!({"note": ODD}));
    i.metadata_admin = Some(serde_json::Value::Null);
    i.external_id = Some(format!("ext\t{n}\\\n{ODD}"));
    i.set_credential(
        credential_type::PASSWORD,
        vec![email.clone(), format!("alias{n}\r\n")],
        serde_json::json!({"hashed_password": format!("$2b$04$\\{ODD}")}),
        now,
    );
    let addr = [("email".to_owned(), email)];
    i.merge_verifiable_addresses(&addr, now);
    i.merge_recovery_addresses(&addr, now);
    i.available_aal = i.compute_available_aal(false);
    i
}

/// The batch goes through COPY (not the INSERT fallback) and comes back exactly as it went in.
#[tokio::test]
async fn copy_round_trips_odd_characters() {
    use sallyport_core::store::IdentityStore;
    use sallyport_store_sql::BulkCopy;
    let Some(db) = TestDb::create().await else { return };
    db.run(|dsn| async move {
        let store = PgStore::connect(&dsn).await.expect("connect");
        store.migrate_up().await.expect("migrate");
        let batch: Vec<_> = (0..3).map(odd_identity).collect();
        let refs: Vec<_> = batch.iter().collect();
        let mut conn = PgConnection::connect(&dsn).await.expect("connect");
        let mut tx = conn.begin().await.expect("begin");
        assert!(matches!(tx.copy_new_identities(&refs).await, Ok(true)));
        tx.commit().await.expect("commit");
        for want in &batch {
            let got = store.get_identity(want.id).await.expect("stored");
            assert_eq!(&got, want);
        }

        // A rerun of the import replaces the identity and its parts.
        let mut changed = batch.clone();
        changed[0].traits["name"]["first"] = serde_json::json!(format!("{ODD} again"));
        changed[0]
            .credentials
            .values_mut()
            .for_each(|c| c.identifiers.truncate(1));
        let mut tx = conn.begin().await.expect("begin");
        assert!(matches!(tx.copy_upsert_identities(&changed).await, Ok(true)));
        let role = replication_role(&mut tx).await;
        assert_eq!(
            role, "origin",
            "a rerun deletes parts: the checks and their cascades stay on"
        );
        tx.commit().await.expect("commit");
        // A first import of other identities: straight in, without the per-row checks.
        let fresh: Vec<_> = (3..5).map(odd_identity).collect();
        let mut tx = conn.begin().await.expect("begin");
        assert!(matches!(tx.copy_upsert_identities(&fresh).await, Ok(true)));
        let role = replication_role(&mut tx).await;
        assert_eq!(role, "replica", "nothing replaced: the checks could only agree");
        tx.commit().await.expect("commit");
        // A fresh store: the first one's cache heard nothing of a write on another connection.
        let store = PgStore::connect(&dsn).await.expect("connect");
        for want in changed.iter().chain(&fresh) {
            let got = store.get_identity(want.id).await.expect("stored");
            assert_eq!(&got, want);
        }
        let recorded: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM imported_rows WHERE kind = 'identity'")
            .fetch_one(&mut conn)
            .await
            .expect("count");
        assert_eq!(recorded, 5);
        store.close().await;
    })
    .await;
}

/// A conflict or a NUL stops COPY; `create_identities` then stores the others and names the refused.
#[tokio::test]
async fn copy_declines_conflicts_and_nul() {
    use sallyport_core::store::{IdentityStore, StoreError};
    use sallyport_store_sql::BulkCopy;
    let Some(db) = TestDb::create().await else { return };
    db.run(|dsn| async move {
        let store = PgStore::connect(&dsn).await.expect("connect");
        store.migrate_up().await.expect("migrate");
        let taken = odd_identity(0);
        store.create_identity(&taken, None).await.expect("create");
        let mut again = odd_identity(0);
        again.id = Uuid::new_v4();
        let mut nul = odd_identity(2);
        nul.traits["name"]["last"] = serde_json::json!("a\u{0}b");
        let (one, three) = (odd_identity(1), odd_identity(3));

        let mut conn = PgConnection::connect(&dsn).await.expect("connect");
        let mut tx = conn.begin().await.expect("begin");
        let copied = tx.copy_new_identities(&[&one, &again]).await;
        assert!(matches!(copied, Err(StoreError::Conflict(_))), "{copied:?}");
        tx.rollback().await.expect("rollback");
        let mut tx = conn.begin().await.expect("begin");
        assert!(matches!(tx.copy_new_identities(&[&one, &nul]).await, Ok(false)));
        tx.rollback().await.expect("rollback");

        let results = store
            .create_identities(&[one.clone(), again, nul, three.clone()])
            .await
            .expect("batch");
        assert!(results[0].is_ok() && results[3].is_ok(), "{results:?}");
        assert!(matches!(&results[1], Err(StoreError::Conflict(_))), "{results:?}");
        assert!(
            matches!(&results[2], Err(StoreError::Unrepresentable(_))),
            "{results:?}"
        );
        for want in [&one, &three] {
            assert_eq!(&store.get_identity(want.id).await.expect("stored"), want);
        }
        assert_eq!(store.count_identities().await.expect("count"), 3);
        store.close().await;
    })
    .await;
}

/// Part rows whose parent is missing, over the four foreign keys of the identity tables.
const ORPHANS: &str = "SELECT \
     (SELECT COUNT(*) FROM identity_credentials c WHERE NOT EXISTS (SELECT 1 FROM identities i WHERE i.id = c.identity_id)) \
   + (SELECT COUNT(*) FROM identity_credential_identifiers x WHERE NOT EXISTS (SELECT 1 FROM identity_credentials c WHERE c.id = x.credential_id)) \
   + (SELECT COUNT(*) FROM identity_verifiable_addresses a WHERE NOT EXISTS (SELECT 1 FROM identities i WHERE i.id = a.identity_id)) \
   + (SELECT COUNT(*) FROM identity_recovery_addresses a WHERE NOT EXISTS (SELECT 1 FROM identities i WHERE i.id = a.identity_id))";

/// A batch of new identities is copied with the foreign keys' per-row checks off (the test server's
/// role is a superuser), for its own transaction only: the rows it wrote all have their parents, and
/// after the commit the same connection has its checks and cascades again.
#[tokio::test]
async fn copy_turns_fk_checks_off_for_its_own_transaction_only() {
    use sallyport_store_sql::BulkCopy;
    let Some(db) = TestDb::create().await else { return };
    db.run(|dsn| async move {
        let store = PgStore::connect(&dsn).await.expect("connect");
        store.migrate_up().await.expect("migrate");
        let batch: Vec<_> = (0..40).map(odd_identity).collect();
        let refs: Vec<_> = batch.iter().collect();
        let mut conn = PgConnection::connect(&dsn).await.expect("connect");
        let mut tx = conn.begin().await.expect("begin");
        assert!(matches!(tx.copy_new_identities(&refs).await, Ok(true)));
        let role = replication_role(&mut tx).await;
        assert_eq!(role, "replica", "the batch ran without the per-row checks");
        tx.commit().await.expect("commit");
        let role = replication_role(&mut conn).await;
        assert_eq!(role, "origin", "the switch ended with the transaction");

        let orphans: i64 = sqlx::query_scalar(ORPHANS).fetch_one(&mut conn).await.expect("orphans");
        assert_eq!(orphans, 0);
        let parts: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM identity_credentials) + (SELECT COUNT(*) FROM identity_credential_identifiers) \
             + (SELECT COUNT(*) FROM identity_verifiable_addresses) + (SELECT COUNT(*) FROM identity_recovery_addresses)",
        )
        .fetch_one(&mut conn)
        .await
        .expect("parts");
        assert_eq!(parts, 40 * 5, "a credential, two identifiers and two addresses each");

        let orphan = sqlx::query(
            "INSERT INTO identity_credentials (id, identity_id, type, config, version, created_at, updated_at) \
             VALUES ($1, $2, 'password', '{}', 0, now(), now())",
        )
        .bind(Uuid::new_v4())
        .bind(Uuid::new_v4())
        .execute(&mut conn)
        .await;
        let refused = orphan.expect_err("a credential of no identity is refused again");
        assert!(
            refused.to_string().contains("foreign key"),
            "{refused}"
        );
        sqlx::query("DELETE FROM identities WHERE id = $1")
            .bind(batch[0].id)
            .execute(&mut conn)
            .await
            .expect("delete");
        let left: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM identity_credentials WHERE identity_id = $1) \
             + (SELECT COUNT(*) FROM identity_credential_identifiers WHERE identity_id = $1) \
             + (SELECT COUNT(*) FROM identity_verifiable_addresses WHERE identity_id = $1) \
             + (SELECT COUNT(*) FROM identity_recovery_addresses WHERE identity_id = $1)",
        )
        .bind(batch[0].id)
        .fetch_one(&mut conn)
        .await
        .expect("left");
        assert_eq!(left, 0, "deleting the identity cascaded to its parts");
        store.close().await;
    })
    .await;
}

/// `session_replication_role` where `conn` stands: `replica` while the per-row checks are off.
async fn replication_role(conn: &mut PgConnection) -> String {
    sqlx::query_scalar("SHOW session_replication_role")
        .fetch_one(conn)
        .await
        .expect("show")
}
