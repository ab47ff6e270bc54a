//! Section 7, `sallyport import kratos` from PostgreSQL to PostgreSQL: identities per second, each with
//! a bcrypt password credential, its identifier, a verifiable and a recovery address. The baseline,
//! measured in the same run on the same data, is `--dry-run`: reading and converting, writing nothing.
//! A second reference says what the database itself manages: the set-based `INSERT … SELECT` that fills
//! the Kratos source with the same rows (five tables, no client round trips).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use tokio::runtime::Runtime;

use crate::Params;

const NID: &str = "0c4a6f77-5ad6-4f39-8a2f-000000000001";

pub struct ImportResult {
    pub identities: usize,
    pub secs: f64,
    pub rate: f64,
    pub dry_secs: f64,
    pub dry_rate: f64,
    /// Identities per second of PostgreSQL's own `INSERT … SELECT … generate_series` of the source rows.
    pub seed_rate: f64,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sallyport/tests/fixtures")
}

pub fn run(p: &Params, rt: &Runtime) -> anyhow::Result<ImportResult> {
    let admin = std::env::var("SALLYPORT_BENCH_POSTGRES_DSN")
        .or_else(|_| std::env::var("TEST_POSTGRES_DSN"))
        .context(
            "the import section needs PostgreSQL: set SALLYPORT_BENCH_POSTGRES_DSN (or TEST_POSTGRES_DSN)",
        )?;
    rt.block_on(measure(p.import_identities, &admin))
}

pub(crate) async fn create_db(admin: &str, name: &str) -> anyhow::Result<String> {
    let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(admin).await?;
    sqlx::Executor::execute(&mut c, format!("CREATE DATABASE {name}").as_str()).await?;
    let mut u = url::Url::parse(admin)?;
    u.set_path(&format!("/{name}"));
    Ok(u.to_string())
}

pub(crate) async fn drop_db(admin: &str, name: &str) {
    if let Ok(mut c) = <sqlx::PgConnection as sqlx::Connection>::connect(admin).await {
        let _ = sqlx::Executor::execute(
            &mut c,
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str(),
        )
        .await;
    }
}

/// A Kratos database from Kratos' schema, with `n` generated identities; returns how long the rows took.
async fn seed_kratos(dsn: &str, n: usize) -> anyhow::Result<f64> {
    let schema = std::fs::read_to_string(fixtures().join("kratos-db/postgres.schema.sql"))?;
    let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(dsn).await?;
    sqlx::raw_sql(&schema).execute(&mut c).await?;
    let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(dsn).await?;
    let hash = "$2a$12$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL6";
    let ty = "(SELECT id FROM identity_credential_types WHERE name = 'password')";
    let sql = format!(
        "INSERT INTO networks (id, created_at, updated_at) VALUES ('{NID}', now(), now());
         INSERT INTO identities (id, nid, schema_id, traits, state, created_at, updated_at, available_aal)
           SELECT md5('i' || g)::uuid, '{NID}', 'default', jsonb_build_object('email', 'user' || g || '@example.org'),
                  'active', now(), now(), 'aal1' FROM generate_series(1, {n}) g;
         INSERT INTO identity_credentials (id, nid, identity_id, identity_credential_type_id, config, version, created_at, updated_at)
           SELECT md5('c' || g)::uuid, '{NID}', md5('i' || g)::uuid, {ty}, '{{\"hashed_password\": \"{hash}\"}}', 0, now(), now()
           FROM generate_series(1, {n}) g;
         INSERT INTO identity_credential_identifiers (id, nid, identity_id, identity_credential_id, identity_credential_type_id, identifier, created_at, updated_at)
           SELECT md5('x' || g)::uuid, '{NID}', md5('i' || g)::uuid, md5('c' || g)::uuid, {ty}, 'user' || g || '@example.org', now(), now()
           FROM generate_series(1, {n}) g;
         INSERT INTO identity_verifiable_addresses (id, nid, identity_id, via, value, verified, status, verified_at, created_at, updated_at)
           SELECT md5('v' || g)::uuid, '{NID}', md5('i' || g)::uuid, 'email', 'user' || g || '@example.org', true, 'completed', now(), now(), now()
           FROM generate_series(1, {n}) g;
         INSERT INTO identity_recovery_addresses (id, nid, identity_id, via, value, created_at, updated_at)
           SELECT md5('r' || g)::uuid, '{NID}', md5('i' || g)::uuid, 'email', 'user' || g || '@example.org', now(), now()
           FROM generate_series(1, {n}) g;
         ANALYZE;"
    );
    let t = Instant::now();
    sqlx::raw_sql(&sql).execute(&mut c).await?;
    Ok(t.elapsed().as_secs_f64())
}

async fn measure(n: usize, admin: &str) -> anyhow::Result<ImportResult> {
    let tag = std::process::id();
    let (src_name, dst_name) = (format!("bench_kratos_{tag}"), format!("bench_sallyport_{tag}"));
    let src = create_db(admin, &src_name).await?;
    let dst = create_db(admin, &dst_name).await?;
    let result = async {
        let seed_secs = seed_kratos(&src, n).await?;
        let store = sallyport::server::open_store(&dst).await?;
        store.migrate_up().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        drop(store);
        let dir = tempfile::tempdir()?;
        let cfg = dir.path().join("kratos.json");
        let schema = fixtures().join("email-password.schema.json");
        std::fs::write(
            &cfg,
            serde_json::json!({
                "dsn": dst,
                "selfservice": {"default_browser_return_url": "http://app.test/"},
                "identity": {"default_schema_id": "default", "schemas": [{"id": "default", "url": format!("file://{}", schema.display())}]},
                "secrets": {"cookie": ["bench-cookie-secret-0123456789abcdef"]},
            })
            .to_string(),
        )?;
        let opts = |dry_run| sallyport::import::Options {
            from: src.clone(),
            config: vec![cfg.clone()],
            dry_run,
            nid: None,
            prune: false,
        };
        let t = Instant::now();
        sallyport::import::run(opts(true)).await?;
        let dry_secs = t.elapsed().as_secs_f64();
        let t = Instant::now();
        sallyport::import::run(opts(false)).await?;
        let secs = t.elapsed().as_secs_f64();
        let store = sallyport::server::open_store(&dst).await?;
        let copied = store.count_identities().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        anyhow::ensure!(copied as usize == n, "imported {copied} identities, expected {n}");
        Ok(ImportResult {
            identities: n,
            secs,
            rate: n as f64 / secs,
            dry_secs,
            dry_rate: n as f64 / dry_secs,
            seed_rate: n as f64 / seed_secs,
        })
    }
    .await;
    drop_db(admin, &src_name).await;
    drop_db(admin, &dst_name).await;
    result
}
