//! Section 9, identity import with pre-hashed passwords: identities per second through the admin batch
//! endpoint (`PATCH /admin/identities`, 1,000 per request, 4 requests in flight, bodies encoded before
//! the clock starts) and through `sallyport import identities <file> --format quiet` (the release
//! binary: process start, file parsing and its batches included), on a file SQLite store and, when
//! `SALLYPORT_BENCH_POSTGRES_DSN` or `TEST_POSTGRES_DSN` names a server, on PostgreSQL. Both clocks
//! start once the server has settled (`Running::settled`): the dummy password hash every server
//! computes once after starting would otherwise share the cores with the first second of import.
//!
//! Baseline, same run, same identities: the store floor, `Store::create_identities` called directly
//! with the same identities built in memory (batches of 1,000, 4 in flight): the multi-row INSERTs
//! alone, without HTTP, JSON or schema validation. Every measurement starts from an empty, migrated
//! database of its own. On PostgreSQL a second reference says what the server itself takes: `COPY`
//! of the same rows into the same tables, as text encoded before the clock starts, in the same
//! batches and transactions, 4 connections, no Sallyport code (the floor of any client).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

use sallyport_core::identity::{Identity, credential_type};
use sallyport_core::store::Store;
use sallyport_core::time_fmt;

use crate::Params;
use crate::server::{Prepared, sqlite_dsn};

/// bcrypt of "test" at cost 4: its cost is irrelevant, it is stored, never computed.
const HASH: &str = "$2b$04$atf9KHoKrTIsJZ1PpbLWu.LRY6qGB0CW6nfqgFWHTD5PfIG4hOaPq";
pub const BATCH: usize = 1000;
const IN_FLIGHT: usize = 4;
pub const TARGET: f64 = 50_000.0;

pub struct Rates {
    pub backend: &'static str,
    /// Identities per second: batch endpoint, CLI, store floor.
    pub endpoint: f64,
    pub cli: f64,
    pub floor: f64,
    /// SQLite only: its own prepared single-row INSERTs of the same rows (`import_reference`).
    pub reference: Option<f64>,
    /// PostgreSQL only: the server's own `COPY` of the same rows.
    pub copy: Option<f64>,
}

pub struct ImportIdentitiesResult {
    pub identities: usize,
    pub cli_note: String,
    pub backends: Vec<Rates>,
}

fn email(i: usize) -> String {
    format!("import{i:08}@example.org")
}

fn body(i: usize) -> Value {
    json!({
        "schema_id": "default",
        "traits": {"email": email(i)},
        "credentials": {"password": {"config": {"hashed_password": HASH}}},
    })
}

/// What the server builds from [`body`]: a password credential with the email as identifier, a
/// verifiable and a recovery address.
fn identity(i: usize) -> Identity {
    let now = time_fmt::now();
    let e = email(i);
    let mut ident = Identity::new("default", json!({"email": e}), now);
    ident.set_credential(
        credential_type::PASSWORD,
        vec![e.clone()],
        json!({"hashed_password": HASH}),
        now,
    );
    let addr = [("email".to_owned(), e)];
    ident.merge_verifiable_addresses(&addr, now);
    ident.merge_recovery_addresses(&addr, now);
    ident.available_aal = ident.compute_available_aal(false);
    ident
}

pub fn run(p: &Params, rt: &Runtime) -> anyhow::Result<ImportIdentitiesResult> {
    let n = p.batch_import_identities;
    let (bin, cli_note) = crate::startup::binary(p.rebuild)?;
    let mut backends = vec![];
    eprintln!("[import-identities] SQLite: {n} identities, three fresh stores");
    let mut sqlite = rt.block_on(measure_backend("SQLite file", n, &bin, &SqliteDbs))?;
    let reference = rt.block_on(with_db(&SqliteDbs, "reference", |dsn| reference(dsn, n)))?;
    eprintln!("[import-identities] SQLite file: SQLite's own prepared INSERTs {reference:.0}/s");
    sqlite.reference = Some(reference);
    backends.push(sqlite);
    let pg = std::env::var("SALLYPORT_BENCH_POSTGRES_DSN").or_else(|_| std::env::var("TEST_POSTGRES_DSN"));
    match pg {
        Ok(admin) => {
            eprintln!("[import-identities] PostgreSQL: {n} identities, three fresh databases");
            backends.push(rt.block_on(measure_backend("PostgreSQL", n, &bin, &PgDbs { admin }))?);
        }
        Err(_) => eprintln!(
            "[import-identities] PostgreSQL skipped: set SALLYPORT_BENCH_POSTGRES_DSN or TEST_POSTGRES_DSN"
        ),
    }
    Ok(ImportIdentitiesResult {
        identities: n,
        cli_note,
        backends,
    })
}

/// Fresh, empty databases for one backend.
trait Dbs {
    /// A DSN and what to drop afterwards.
    async fn create(&self, tag: &str) -> anyhow::Result<(String, Option<tempfile::TempDir>)>;
    async fn drop(&self, tag: &str);
    /// Whether [`copy_reference`] applies.
    fn copy_reference(&self) -> bool {
        false
    }
}

struct SqliteDbs;

impl Dbs for SqliteDbs {
    async fn create(&self, _tag: &str) -> anyhow::Result<(String, Option<tempfile::TempDir>)> {
        let dir = tempfile::tempdir()?;
        Ok((sqlite_dsn(dir.path()), Some(dir)))
    }

    async fn drop(&self, _tag: &str) {}
}

struct PgDbs {
    admin: String,
}

fn pg_name(tag: &str) -> String {
    format!("bench_import_identities_{}_{tag}", std::process::id())
}

impl Dbs for PgDbs {
    async fn create(&self, tag: &str) -> anyhow::Result<(String, Option<tempfile::TempDir>)> {
        Ok((crate::import::create_db(&self.admin, &pg_name(tag)).await?, None))
    }

    async fn drop(&self, tag: &str) {
        crate::import::drop_db(&self.admin, &pg_name(tag)).await;
    }

    fn copy_reference(&self) -> bool {
        true
    }
}

async fn measure_backend(
    backend: &'static str,
    n: usize,
    bin: &Path,
    dbs: &impl Dbs,
) -> anyhow::Result<Rates> {
    let floor = with_db(dbs, "floor", |dsn| floor(dsn, n)).await?;
    eprintln!("[import-identities] {backend}: store floor {floor:.0}/s");
    let copy = match dbs.copy_reference() {
        true => {
            let rate = with_db(dbs, "copy", |dsn| copy_reference(dsn, n)).await?;
            eprintln!("[import-identities] {backend}: PostgreSQL's own COPY {rate:.0}/s");
            Some(rate)
        }
        false => None,
    };
    let endpoint = with_db(dbs, "endpoint", |dsn| endpoint(dsn, n)).await?;
    eprintln!("[import-identities] {backend}: batch endpoint {endpoint:.0}/s");
    let cli = with_db(dbs, "cli", |dsn| cli(dsn, n, bin)).await?;
    eprintln!("[import-identities] {backend}: CLI {cli:.0}/s");
    Ok(Rates {
        backend,
        endpoint,
        cli,
        floor,
        reference: None,
        copy,
    })
}

async fn with_db<F, Fut>(dbs: &impl Dbs, tag: &str, f: F) -> anyhow::Result<f64>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<f64>>,
{
    let (dsn, dir) = dbs.create(tag).await?;
    let r = f(dsn).await;
    dbs.drop(tag).await;
    drop(dir);
    r
}

async fn prepared(dsn: &str) -> anyhow::Result<Prepared> {
    Prepared::with_config(
        dsn,
        json!({"algorithm": "bcrypt", "bcrypt": {"cost": 12}}),
        |_| {},
    )
    .await
}

async fn ensure_count(store: &Arc<dyn Store>, n: usize) -> anyhow::Result<()> {
    let stored = store
        .count_identities()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(stored as usize == n, "{stored} identities stored, expected {n}");
    Ok(())
}

async fn floor(dsn: String, n: usize) -> anyhow::Result<f64> {
    let store = prepared(&dsn).await?.store;
    let batches: Vec<Arc<Vec<Identity>>> = (0..n)
        .step_by(BATCH)
        .map(|s| Arc::new((s..(s + BATCH).min(n)).map(identity).collect()))
        .collect();
    let t = Instant::now();
    let mut set = JoinSet::new();
    for b in batches {
        if set.len() >= IN_FLIGHT {
            join(&mut set).await?;
        }
        let store = store.clone();
        set.spawn(async move {
            let results = store.create_identities(&b).await?;
            Ok(results.iter().filter(|r| r.is_ok()).count())
        });
    }
    while !set.is_empty() {
        join(&mut set).await?;
    }
    let secs = t.elapsed().as_secs_f64();
    ensure_count(&store, n).await?;
    Ok(n as f64 / secs)
}

async fn reference(dsn: String, n: usize) -> anyhow::Result<f64> {
    let store = prepared(&dsn).await?.store;
    let identities: Vec<Identity> = (0..n).map(identity).collect();
    let rate = crate::import_reference::run(&dsn, &identities, BATCH).await?;
    ensure_count(&store, n).await?;
    Ok(rate)
}

async fn join(set: &mut JoinSet<sallyport_core::store::StoreResult<usize>>) -> anyhow::Result<()> {
    if let Some(r) = set.join_next().await {
        r?.map_err(|e| anyhow::anyhow!("create_identities: {e}"))?;
    }
    Ok(())
}

async fn endpoint(dsn: String, n: usize) -> anyhow::Result<f64> {
    let prepared = prepared(&dsn).await?;
    let store = prepared.store.clone();
    let server = prepared.start(None).await?;
    server.settled().await;
    let url = server.admin_url("admin/identities");
    let bodies: Vec<Vec<u8>> = (0..n)
        .step_by(BATCH)
        .map(|s| {
            let items: Vec<Value> = (s..(s + BATCH).min(n))
                .map(|i| json!({"create": body(i)}))
                .collect();
            json!({"identities": items}).to_string().into_bytes()
        })
        .collect();
    let http = reqwest::Client::new();
    let t = Instant::now();
    let mut set = JoinSet::new();
    let mut created = 0;
    for b in bodies {
        if set.len() >= IN_FLIGHT {
            created += answer(&mut set).await?;
        }
        let (http, url) = (http.clone(), url.clone());
        set.spawn(async move {
            let res = http
                .patch(&url)
                .header("content-type", "application/json")
                .body(b)
                .send()
                .await?;
            let status = res.status();
            let v: Value = res.json().await?;
            if status != 200 {
                bail!("PATCH /admin/identities answered {status}: {v}");
            }
            let list = v["identities"]
                .as_array()
                .context("no identities in the answer")?;
            if let Some(bad) = list.iter().find(|r| r["action"] != "create") {
                bail!("an identity was refused: {bad}");
            }
            Ok(list.len())
        });
    }
    while !set.is_empty() {
        created += answer(&mut set).await?;
    }
    let secs = t.elapsed().as_secs_f64();
    server.stop().await?;
    ensure!(created == n, "{created} created, expected {n}");
    ensure_count(&store, n).await?;
    Ok(n as f64 / secs)
}

async fn answer(set: &mut JoinSet<anyhow::Result<usize>>) -> anyhow::Result<usize> {
    match set.join_next().await {
        Some(r) => r?,
        None => Ok(0),
    }
}

async fn cli(dsn: String, n: usize, bin: &Path) -> anyhow::Result<f64> {
    let prepared = prepared(&dsn).await?;
    let store = prepared.store.clone();
    let server = prepared.start(None).await?;
    server.settled().await;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("identities.json");
    std::fs::write(&file, Value::Array((0..n).map(body).collect()).to_string())?;
    let endpoint = server.admin_url("");
    let mut cmd = tokio::process::Command::new(bin);
    cmd.args(["import", "identities"])
        .arg(&file)
        .args(["-e", &endpoint, "--format", "quiet"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let t = Instant::now();
    let out = cmd
        .output()
        .await
        .context("running sallyport import identities")?;
    let secs = t.elapsed().as_secs_f64();
    server.stop().await?;
    if !out.status.success() {
        bail!(
            "sallyport import identities failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .take(5)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    ensure_count(&store, n).await?;
    Ok(n as f64 / secs)
}

/// The five tables' COPY text for identities `range`: the rows `create_identities` writes for them
/// (every value here is plain ASCII: nothing to escape).
fn copy_text(range: std::ops::Range<usize>) -> [String; 5] {
    use std::fmt::Write as _;
    let ts = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    let mut out: [String; 5] = Default::default();
    for n in range {
        let i = identity(n);
        let (at, e) = (ts(i.created_at), email(n));
        let _ = writeln!(
            out[0],
            "{}\tdefault\t{{\"email\": \"{e}\"}}\tactive\t\\N\t\\N\t\\N\t\\N\t\\N\t{}\t{at}\t{at}",
            i.id,
            i.available_aal.as_str()
        );
        for c in i.credentials.values() {
            let _ = writeln!(
                out[1],
                "{}\t{}\tpassword\t{{\"hashed_password\": \"{HASH}\"}}\t0\t{at}\t{at}",
                c.id, i.id
            );
            let _ = writeln!(
                out[2],
                "{}\t{e}\tpassword\t{}\t{}\t0\t{at}\t{at}",
                uuid::Uuid::new_v4(),
                i.id,
                c.id
            );
        }
        for a in &i.verifiable_addresses {
            let _ = writeln!(
                out[3],
                "{}\t{}\temail\t{e}\tf\t{}\t\\N\t0\t{at}\t{at}",
                a.id, i.id, a.status
            );
        }
        for a in &i.recovery_addresses {
            let _ = writeln!(out[4], "{}\t{}\temail\t{e}\t0\t{at}\t{at}", a.id, i.id);
        }
    }
    out
}

const COPY_INTO: [&str; 5] = [
    "COPY identities (id, schema_id, traits, state, state_changed_at, metadata_public, metadata_admin, \
     external_id, organization_id, available_aal, created_at, updated_at) FROM STDIN",
    "COPY identity_credentials (id, identity_id, type, config, version, created_at, updated_at) FROM STDIN",
    "COPY identity_credential_identifiers (id, identifier, type, identity_id, credential_id, position, \
     created_at, updated_at) FROM STDIN",
    "COPY identity_verifiable_addresses (id, identity_id, via, value, verified, status, verified_at, \
     position, created_at, updated_at) FROM STDIN",
    "COPY identity_recovery_addresses (id, identity_id, via, value, position, created_at, updated_at) FROM STDIN",
];

/// PostgreSQL's own COPY of the rows: batches of [`BATCH`] identities, one transaction each, spread
/// over [`IN_FLIGHT`] connections opened before the clock starts.
async fn copy_reference(dsn: String, n: usize) -> anyhow::Result<f64> {
    use sqlx::Connection as _;
    let store = prepared(&dsn).await?.store;
    let mut lanes: Vec<Vec<[String; 5]>> = (0..IN_FLIGHT).map(|_| vec![]).collect();
    for (k, s) in (0..n).step_by(BATCH).enumerate() {
        lanes[k % IN_FLIGHT].push(copy_text(s..(s + BATCH).min(n)));
    }
    let mut conns = vec![];
    for _ in 0..IN_FLIGHT {
        conns.push(sqlx::PgConnection::connect(&dsn).await?);
    }
    let t = Instant::now();
    let mut set = JoinSet::new();
    for (mut conn, lane) in conns.into_iter().zip(lanes) {
        set.spawn(async move {
            for batch in lane {
                let mut tx = conn.begin().await?;
                for (statement, rows) in COPY_INTO.iter().zip(&batch) {
                    let mut copy = tx.copy_in_raw(statement).await?;
                    copy.send(rows.as_bytes()).await?;
                    copy.finish().await?;
                }
                tx.commit().await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    let secs = t.elapsed().as_secs_f64();
    ensure_count(&store, n).await?;
    Ok(n as f64 / secs)
}
