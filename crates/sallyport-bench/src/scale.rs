//! Section 10, `--only scale`: login and whoami latency on a store with many identities and sessions
//! (10 million and 1 million by default) against the same figures on a 1,000-identity store, with the
//! query plans of the hot lookups printed and checked for index use.
//!
//! Each store holds `PROBES` identities and sessions made through the store API (the ones the
//! measurements use; their password hash is real, bcrypt cost 4 so the database's share of a login
//! shows) and filler rows added with set-based SQL in the real table layout (a recursive CTE on
//! SQLite, `generate_series` on PostgreSQL), copying the probes' JSON columns so every row is one the
//! store could have written. The large store is kept between runs (SQLite file under
//! `target/bench-scale/`, PostgreSQL database `sallyport_bench_scale_<n>`) and reused when complete,
//! unless `--scale-drop` deletes it at the end. The 1,000-identity store is rebuilt each run.
//!
//! Latencies are sequential requests on one keep-alive connection, the server in this process: whoami
//! is the first request for each probe session (a cache miss: the token digest, then identity lookups),
//! login is `POST /self-service/login` for each probe identity (the flow is created untimed). Both
//! servers are started afresh for each of `ROUNDS` rounds, so every whoami stays a cache miss, and
//! each answers one untimed request first (its database connections open then, not in a sample):
//! with 200 samples a p99 is the third slowest, which one stray pause of the machine decides.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use sqlx::{Connection, Executor, Row};
use tokio::runtime::Runtime;

use sallyport_core::store::Store;
use sallyport_password::{Hasher, HasherConfig};

use crate::Params;
use crate::server::{Prepared, Running};
use crate::whoami::{bench_identity, bench_session};

/// Identities (one session each) the measurements use, per store.
const PROBES: usize = 200;
const SMALL: usize = 1000;
const PASSWORD: &str = "correct-horse-battery-staple-42";
/// Marks a finished build; holds the probes' tokens and identifiers.
const PROBE_TABLE: &str = "bench_scale_probes";
const CHUNK: usize = 500_000;
/// Measuring rounds, each with freshly started servers: `ROUNDS * PROBES` samples per figure.
pub const ROUNDS: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScaleBackend {
    Sqlite,
    Postgres,
    Both,
}

#[derive(Default)]
pub struct Latencies {
    pub whoami_ms: Vec<f64>,
    pub login_ms: Vec<f64>,
}

pub struct StoreFigures {
    pub identities: usize,
    pub sessions: usize,
    /// None when the store was reused.
    pub build_secs: Option<f64>,
    pub bytes: u64,
    pub lat: Latencies,
}

pub struct BackendResult {
    pub backend: &'static str,
    pub small: StoreFigures,
    pub large: StoreFigures,
    /// (query, plan, uses indexes only) on the large store.
    pub plans: Vec<(String, String, bool)>,
    pub dropped: bool,
}

pub struct ScaleResult {
    pub backends: Vec<BackendResult>,
}

pub fn run(p: &Params, server_rt: &Runtime, client_rt: &Runtime) -> anyhow::Result<ScaleResult> {
    let mut backends = vec![];
    let rts = Rts {
        server: server_rt,
        client: client_rt,
    };
    if matches!(p.scale_backend, ScaleBackend::Sqlite | ScaleBackend::Both) {
        backends.push(sqlite(p, &rts)?);
    }
    if matches!(p.scale_backend, ScaleBackend::Postgres | ScaleBackend::Both) {
        backends.push(postgres(p, &rts)?);
    }
    Ok(ScaleResult { backends })
}

/// The server (and database work) on one runtime, the client on the other, as in the other sections.
struct Rts<'a> {
    server: &'a Runtime,
    client: &'a Runtime,
}

fn scale_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-scale")
}

fn sqlite(p: &Params, rts: &Rts) -> anyhow::Result<BackendResult> {
    let small_dir = tempfile::tempdir()?;
    let small_path = small_dir.path().join("small.sqlite");
    let small = sqlite_store(&small_path, SMALL, SMALL / 10, rts)?;
    std::fs::create_dir_all(scale_dir())?;
    let path = scale_dir().join(format!(
        "scale-{}-{}.sqlite",
        p.scale_identities, p.scale_sessions
    ));
    let result = (|| {
        let large = sqlite_store(&path, p.scale_identities, p.scale_sessions, rts)?;
        let plans = rts.server.block_on(sqlite_plans(&path))?;
        let (small, large) = measure_pair(small, large, rts)?;
        anyhow::Ok((small, large, plans))
    })();
    drop(small_dir);
    let dropped = p.scale_drop || result.is_err();
    if dropped {
        remove_sqlite(&path);
    }
    let (small, large, plans) = result?;
    Ok(BackendResult {
        backend: "SQLite (file)",
        small,
        large,
        plans,
        dropped,
    })
}

fn remove_sqlite(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

fn dsn_of(path: &Path) -> String {
    format!("sqlite://{}?_fk=true&mode=rwc", path.display())
}

/// For sqlx's own connections, which don't take Kratos' DSN options; the file exists by then.
fn raw_dsn(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// A built store, its DSN and its probes (token, email); latencies come later, measured in pairs.
type Built = (StoreFigures, String, Vec<(String, String)>);

fn sqlite_store(path: &Path, identities: usize, sessions: usize, rts: &Rts) -> anyhow::Result<Built> {
    let dsn = dsn_of(path);
    let mut build_secs = None;
    if path.exists() && rts.server.block_on(probes_sqlite(path)).is_err() {
        eprintln!("[scale] {} is incomplete: rebuilding", path.display());
        remove_sqlite(path);
    }
    if !path.exists() {
        eprintln!(
            "[scale] SQLite: building {identities} identities, {sessions} sessions in {}",
            path.display()
        );
        let t0 = Instant::now();
        rts.server
            .block_on(build_sqlite(&dsn, &raw_dsn(path), identities, sessions))?;
        build_secs = Some(t0.elapsed().as_secs_f64());
        eprintln!("[scale] built in {:.1} s", t0.elapsed().as_secs_f64());
    }
    let probes = rts.server.block_on(probes_sqlite(path))?;
    let bytes = ["", "-wal", "-shm"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", path.display())).ok())
        .map(|m| m.len())
        .sum();
    let figures = StoreFigures {
        identities,
        sessions,
        build_secs,
        bytes,
        lat: Latencies::default(),
    };
    Ok((figures, dsn, probes))
}

async fn build_sqlite(dsn: &str, raw: &str, identities: usize, sessions: usize) -> anyhow::Result<()> {
    {
        let prepared = prepare(dsn).await?;
        let probes = make_probes(&prepared.store).await?;
        drop(prepared);
        let mut c = sqlx::SqliteConnection::connect(raw).await?;
        c.execute("PRAGMA synchronous = OFF; PRAGMA cache_size = -262144; PRAGMA foreign_keys = ON")
            .await?;
        fill(&mut c, identities, sessions, &SQLITE_FILL).await?;
        record_probes(&mut c, &probes).await?;
        c.execute("ANALYZE; PRAGMA wal_checkpoint(TRUNCATE)").await?;
        c.close().await?;
    }
    Ok(())
}

async fn probes_sqlite(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let mut c = sqlx::SqliteConnection::connect(&raw_dsn(path)).await?;
    read_probes_sqlite(&mut c).await
}

fn postgres(p: &Params, rts: &Rts) -> anyhow::Result<BackendResult> {
    let admin = crate::pgwhoami::admin_dsn()?;
    let small_name = format!("bench_scale_small_{}", std::process::id());
    let name = format!(
        "sallyport_bench_scale_{}_{}",
        p.scale_identities, p.scale_sessions
    );
    let mut u = url::Url::parse(&admin)?;
    u.set_path(&format!("/{name}"));
    let dsn = u.to_string();
    let result = (|| {
        let small_dsn = rts
            .server
            .block_on(crate::import::create_db(&admin, &small_name))?;
        let small = pg_store(&small_dsn, SMALL, SMALL / 10, true, rts)?;
        let complete = rts.server.block_on(async {
            match sqlx::PgConnection::connect(&dsn).await {
                Ok(mut c) => read_probes_pg(&mut c).await.is_ok(),
                Err(_) => false,
            }
        });
        if !complete {
            rts.server.block_on(async {
                crate::import::drop_db(&admin, &name).await;
                crate::import::create_db(&admin, &name).await
            })?;
        }
        let large = pg_store(&dsn, p.scale_identities, p.scale_sessions, !complete, rts)?;
        let plans = rts.server.block_on(async {
            let mut c = sqlx::PgConnection::connect(&dsn).await?;
            pg_plans(&mut c).await
        })?;
        let (small, large) = measure_pair(small, large, rts)?;
        anyhow::Ok((small, large, plans))
    })();
    rts.server.block_on(crate::import::drop_db(&admin, &small_name));
    let dropped = p.scale_drop || result.is_err();
    if dropped {
        rts.server.block_on(crate::import::drop_db(&admin, &name));
    }
    let (small, large, plans) = result?;
    Ok(BackendResult {
        backend: "PostgreSQL",
        small,
        large,
        plans,
        dropped,
    })
}

fn pg_store(dsn: &str, identities: usize, sessions: usize, build: bool, rts: &Rts) -> anyhow::Result<Built> {
    let mut build_secs = None;
    if build {
        eprintln!("[scale] PostgreSQL: building {identities} identities, {sessions} sessions");
        let t0 = Instant::now();
        rts.server.block_on(async {
            let prepared = prepare(dsn).await?;
            let probes = make_probes(&prepared.store).await?;
            drop(prepared);
            let mut c = sqlx::PgConnection::connect(dsn).await?;
            c.execute("SET synchronous_commit = off").await?;
            fill(&mut c, identities, sessions, &PG_FILL).await?;
            record_probes(&mut c, &probes).await?;
            c.execute("ANALYZE").await?;
            anyhow::Ok(())
        })?;
        build_secs = Some(t0.elapsed().as_secs_f64());
        eprintln!("[scale] built in {:.1} s", t0.elapsed().as_secs_f64());
    }
    let (probes, bytes) = rts.server.block_on(async {
        let mut c = sqlx::PgConnection::connect(dsn).await?;
        let probes = read_probes_pg(&mut c).await?;
        let bytes: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
            .fetch_one(&mut c)
            .await?;
        anyhow::Ok((probes, bytes))
    })?;
    let figures = StoreFigures {
        identities,
        sessions,
        build_secs,
        bytes: bytes as u64,
        lat: Latencies::default(),
    };
    Ok((figures, dsn.to_owned(), probes))
}

/// Bench config with bcrypt cost 4 (dev mode allows it), so logins don't rehash the probes' hash.
async fn prepare(dsn: &str) -> anyhow::Result<Prepared> {
    Prepared::build(
        dsn,
        json!({"algorithm": "bcrypt", "bcrypt": {"cost": 4}}),
        true,
        |_| {},
    )
    .await
}

/// The probe identities and one session each, through the store API: (token, email) pairs.
async fn make_probes(store: &Arc<dyn Store>) -> anyhow::Result<Vec<(String, String)>> {
    let hasher = Hasher::new(HasherConfig::Bcrypt { cost: 4 }, 1);
    let hash = hasher
        .hash(PASSWORD.as_bytes())
        .await
        .map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
    let now = time::OffsetDateTime::now_utc();
    let mut out = vec![];
    for i in 0..PROBES {
        let email = format!("probe{i:05}@example.org");
        let ident = bench_identity(&email, &hash, now);
        store
            .create_identity(&ident, None)
            .await
            .map_err(|e| anyhow::anyhow!("create_identity: {e}"))?;
        let n = bench_session(ident.id, time::Duration::days(30), now);
        store
            .create_session(&n.session)
            .await
            .map_err(|e| anyhow::anyhow!("create_session: {e}"))?;
        out.push((n.token, email));
    }
    Ok(out)
}

/// Set-based filler SQL for one backend. `{lo}`/`{hi}` bound a chunk of row numbers, `{n}` is the
/// identity count; ids are fixed-prefix UUIDs carrying the row number.
struct FillSql {
    /// Creates temp table `probe` (one row): a probe's timestamps and JSON columns to copy.
    probe: &'static str,
    series: &'static str,
    identities: &'static str,
    credentials: &'static str,
    identifiers: &'static str,
    verifiable: &'static str,
    recovery: &'static str,
    sessions: &'static str,
}

const SQLITE_FILL: FillSql = FillSql {
    probe: "CREATE TEMP TABLE probe AS SELECT i.created_at AS ts, c.config AS config, v.status AS status,
              s.expires_at AS expires_at, s.authentication_methods AS methods, s.devices AS devices
            FROM identities i JOIN identity_credentials c ON c.identity_id = i.id
            JOIN identity_verifiable_addresses v ON v.identity_id = i.id
            JOIN sessions s ON s.identity_id = i.id LIMIT 1",
    series: "WITH RECURSIVE g(i) AS (SELECT {lo} UNION ALL SELECT i + 1 FROM g WHERE i < {hi}) ",
    identities: "INSERT INTO identities (id, schema_id, traits, state, available_aal, created_at, updated_at)
        SELECT unhex(printf('a0000000000040008000%012x', i)), 'default',
               json_object('email', 'filler' || i || '@example.org'), 'active', 'aal1', ts, ts FROM g, probe",
    credentials: "INSERT INTO identity_credentials (id, identity_id, type, config, version, created_at, updated_at)
        SELECT unhex(printf('b0000000000040008000%012x', i)), unhex(printf('a0000000000040008000%012x', i)),
               'password', config, 0, ts, ts FROM g, probe",
    identifiers: "INSERT INTO identity_credential_identifiers
          (id, identifier, type, identity_id, credential_id, position, created_at, updated_at)
        SELECT unhex(printf('c0000000000040008000%012x', i)), 'filler' || i || '@example.org', 'password',
               unhex(printf('a0000000000040008000%012x', i)), unhex(printf('b0000000000040008000%012x', i)),
               0, ts, ts FROM g, probe",
    verifiable: "INSERT INTO identity_verifiable_addresses
          (id, identity_id, via, value, verified, status, verified_at, position, created_at, updated_at)
        SELECT unhex(printf('d0000000000040008000%012x', i)), unhex(printf('a0000000000040008000%012x', i)),
               'email', 'filler' || i || '@example.org', 0, status, NULL, 0, ts, ts FROM g, probe",
    recovery: "INSERT INTO identity_recovery_addresses (id, identity_id, via, value, position, created_at, updated_at)
        SELECT unhex(printf('e0000000000040008000%012x', i)), unhex(printf('a0000000000040008000%012x', i)),
               'email', 'filler' || i || '@example.org', 0, ts, ts FROM g, probe",
    sessions: "INSERT INTO sessions (id, identity_id, token_digest, logout_token_digest, active, expires_at,
          authenticated_at, issued_at, aal, authentication_methods, devices, created_at, updated_at)
        SELECT unhex(printf('f0000000000040008000%012x', i)),
               unhex(printf('a0000000000040008000%012x', (i - 1) % {n} + 1)),
               lower(hex(randomblob(32))), lower(hex(randomblob(32))), 1, expires_at, ts, ts, 'aal1',
               methods, devices, ts, ts FROM g, probe",
};

const PG_FILL: FillSql = FillSql {
    probe: "CREATE TEMP TABLE probe AS SELECT i.created_at AS ts, c.config AS config, v.status AS status,
              s.expires_at AS expires_at, s.authentication_methods AS methods, s.devices AS devices
            FROM identities i JOIN identity_credentials c ON c.identity_id = i.id
            JOIN identity_verifiable_addresses v ON v.identity_id = i.id
            JOIN sessions s ON s.identity_id = i.id LIMIT 1",
    series: "WITH g(i) AS (SELECT generate_series({lo}::bigint, {hi}::bigint)) ",
    identities: "INSERT INTO identities (id, schema_id, traits, state, available_aal, created_at, updated_at)
        SELECT ('a0000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, 'default',
               jsonb_build_object('email', 'filler' || i || '@example.org'), 'active', 'aal1', ts, ts
        FROM g, probe",
    credentials: "INSERT INTO identity_credentials (id, identity_id, type, config, version, created_at, updated_at)
        SELECT ('b0000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid,
               ('a0000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, 'password', config, 0, ts, ts
        FROM g, probe",
    identifiers: "INSERT INTO identity_credential_identifiers
          (id, identifier, type, identity_id, credential_id, position, created_at, updated_at)
        SELECT ('c0000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, 'filler' || i || '@example.org',
               'password', ('a0000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid,
               ('b0000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, 0, ts, ts
        FROM g, probe",
    verifiable: "INSERT INTO identity_verifiable_addresses
          (id, identity_id, via, value, verified, status, verified_at, position, created_at, updated_at)
        SELECT ('d0000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid,
               ('a0000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid,
               'email', 'filler' || i || '@example.org', false, status, NULL, 0, ts, ts
        FROM g, probe",
    recovery: "INSERT INTO identity_recovery_addresses (id, identity_id, via, value, position, created_at, updated_at)
        SELECT ('e0000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid,
               ('a0000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid,
               'email', 'filler' || i || '@example.org', 0, ts, ts
        FROM g, probe",
    sessions: "INSERT INTO sessions (id, identity_id, token_digest, logout_token_digest, active, expires_at,
          authenticated_at, issued_at, aal, authentication_methods, devices, created_at, updated_at)
        SELECT ('f0000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid,
               ('a0000000-0000-4000-8000-' || lpad(to_hex((i - 1) % {n} + 1), 12, '0'))::uuid,
               md5(random()::text) || md5(i::text), md5(random()::text) || md5((-i)::text), true, expires_at,
               ts, ts, 'aal1', methods, devices, ts, ts
        FROM g, probe",
};

/// Filler up to `identities` and `sessions` in all (the probes count), in committed chunks.
async fn fill<C>(c: &mut C, identities: usize, sessions: usize, sql: &FillSql) -> anyhow::Result<()>
where
    C: Connection,
    for<'c> &'c mut C: Executor<'c>,
{
    c.execute(sql.probe).await?;
    let (ids, sess) = (identities.saturating_sub(PROBES), sessions.saturating_sub(PROBES));
    let t0 = Instant::now();
    for (what, total, statements) in [
        (
            "identities",
            ids,
            vec![
                sql.identities,
                sql.credentials,
                sql.identifiers,
                sql.verifiable,
                sql.recovery,
            ],
        ),
        ("sessions", sess, vec![sql.sessions]),
    ] {
        let mut lo = 1;
        while lo <= total {
            let hi = (lo + CHUNK - 1).min(total);
            let mut tx = c.begin().await?;
            for s in &statements {
                let q = format!("{}{}", sql.series, s)
                    .replace("{lo}", &lo.to_string())
                    .replace("{hi}", &hi.to_string())
                    .replace("{n}", &ids.max(1).to_string());
                tx.execute(q.as_str())
                    .await
                    .with_context(|| format!("filling {what}"))?;
            }
            tx.commit().await?;
            eprintln!(
                "[scale]   {what}: {hi} of {total} filler rows ({:.0} s)",
                t0.elapsed().as_secs_f64()
            );
            lo = hi + 1;
        }
    }
    Ok(())
}

async fn record_probes<C>(c: &mut C, probes: &[(String, String)]) -> anyhow::Result<()>
where
    C: Connection,
    for<'c> &'c mut C: Executor<'c>,
{
    let rows: Vec<String> = probes
        .iter()
        .map(|(t, e)| format!("('{}', '{}')", t.replace('\'', "''"), e.replace('\'', "''")))
        .collect();
    c.execute(format!("CREATE TABLE {PROBE_TABLE} (token TEXT NOT NULL, email TEXT NOT NULL)").as_str())
        .await?;
    c.execute(
        format!(
            "INSERT INTO {PROBE_TABLE} (token, email) VALUES {}",
            rows.join(", ")
        )
        .as_str(),
    )
    .await?;
    Ok(())
}

async fn read_probes_sqlite(c: &mut sqlx::SqliteConnection) -> anyhow::Result<Vec<(String, String)>> {
    let q = format!("SELECT token, email FROM {PROBE_TABLE}");
    complete(sqlx::query_as(&q).fetch_all(c).await?)
}

async fn read_probes_pg(c: &mut sqlx::PgConnection) -> anyhow::Result<Vec<(String, String)>> {
    let q = format!("SELECT token, email FROM {PROBE_TABLE}");
    complete(sqlx::query_as(&q).fetch_all(c).await?)
}

fn complete(probes: Vec<(String, String)>) -> anyhow::Result<Vec<(String, String)>> {
    if probes.len() != PROBES {
        bail!("{} probes recorded, expected {PROBES}", probes.len());
    }
    Ok(probes)
}

/// Both servers in this process at once, and the requests interleaved (probe i on the small store,
/// then on the large one) so that whatever else the machine does hits both alike: whoami (cold) for
/// every probe session, then a login for every probe identity.
fn measure_pair(small: Built, large: Built, rts: &Rts) -> anyhow::Result<(StoreFigures, StoreFigures)> {
    let (mut small_fig, small_dsn, small_probes) = small;
    let (mut large_fig, large_dsn, large_probes) = large;
    for _ in 0..ROUNDS {
        let servers = rts.server.block_on(async {
            let a = prepare(&small_dsn).await?.start(None).await?;
            let b = prepare(&large_dsn).await?.start(None).await?;
            anyhow::Ok((a, b))
        })?;
        let r = rts.client.block_on(latencies(
            [&servers.0, &servers.1],
            [&small_probes, &large_probes],
        ));
        rts.server.block_on(async {
            servers.0.stop().await?;
            servers.1.stop().await
        })?;
        let [small_lat, large_lat] = r?;
        for (fig, lat) in [(&mut small_fig, small_lat), (&mut large_fig, large_lat)] {
            fig.lat.whoami_ms.extend(lat.whoami_ms);
            fig.lat.login_ms.extend(lat.login_ms);
        }
    }
    Ok((small_fig, large_fig))
}

async fn latencies(
    servers: [&Running; 2],
    probes: [&Vec<(String, String)>; 2],
) -> anyhow::Result<[Latencies; 2]> {
    let c = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()?;
    let mut out = [Latencies::default(), Latencies::default()];
    for server in servers {
        // Untimed: the server opens its database connections here.
        let res = c.get(server.public_url("sessions/whoami")).send().await?;
        res.bytes().await?;
    }
    for pair in probes[0].iter().zip(probes[1].iter()) {
        for (k, (token, _)) in [pair.0, pair.1].into_iter().enumerate() {
            let t0 = Instant::now();
            let res = c
                .get(servers[k].public_url("sessions/whoami"))
                .header("X-Session-Token", token)
                .send()
                .await?;
            let st = res.status();
            res.bytes().await?;
            out[k].whoami_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
            if st != 200 {
                bail!("whoami for a probe answered {st}");
            }
        }
    }
    for pair in probes[0].iter().zip(probes[1].iter()) {
        for (k, (_, email)) in [pair.0, pair.1].into_iter().enumerate() {
            let flow: Value = c
                .get(servers[k].public_url("self-service/login/api"))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let id = flow["id"].as_str().context("login flow has no id")?;
            let body = json!({"method": "password", "identifier": email, "password": PASSWORD});
            let url = servers[k].public_url(&format!("self-service/login?flow={id}"));
            let t0 = Instant::now();
            let res = c.post(url).json(&body).send().await?;
            let st = res.status();
            let bytes = res.bytes().await?;
            out[k].login_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
            if st != 200 {
                bail!("login answered {st}: {}", String::from_utf8_lossy(&bytes));
            }
        }
    }
    Ok(out)
}

/// The hot lookups, as the store words them (`sallyport-store-sql`): session by token digest, identity
/// by id, login's identity by identifier, and the identity's parts by identity id. `{digest}`, `{id}`
/// and `{identifier}` are a filler row's values.
const HOT: [(&str, &str); 6] = [
    (
        "session by token",
        "SELECT * FROM sessions WHERE token_digest = {digest}",
    ),
    ("identity by id", "SELECT * FROM identities WHERE id = {id}"),
    (
        "identity by identifier",
        "SELECT * FROM identities WHERE id = (SELECT identity_id FROM identity_credential_identifiers WHERE type = 'password' AND identifier = {identifier})",
    ),
    (
        "credentials",
        "SELECT * FROM identity_credentials WHERE identity_id IN ({id})",
    ),
    (
        "identifiers",
        "SELECT credential_id, identifier FROM identity_credential_identifiers WHERE identity_id IN ({id}) ORDER BY credential_id, position",
    ),
    (
        "addresses",
        "SELECT * FROM identity_verifiable_addresses WHERE identity_id IN ({id})",
    ),
];

fn hot_query(q: &str, id: &str) -> String {
    q.replace("{digest}", &format!("'{}'", "0".repeat(64)))
        .replace("{id}", id)
        .replace("{identifier}", "'filler1@example.org'")
}

async fn sqlite_plans(path: &Path) -> anyhow::Result<Vec<(String, String, bool)>> {
    let mut c = sqlx::SqliteConnection::connect(&raw_dsn(path)).await?;
    let mut out = vec![];
    for (name, q) in HOT {
        let q = hot_query(q, "x'a0000000000040008000000000000001'");
        let rows = c.fetch_all(format!("EXPLAIN QUERY PLAN {q}").as_str()).await?;
        let plan: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<String, _>("detail"))
            .collect::<Result<_, _>>()?;
        // "SCAN" is a full pass over a table or index; an ORDER BY's temp b-tree is over the few rows found.
        let indexed = plan.iter().all(|l| !l.starts_with("SCAN "));
        out.push((name.to_owned(), plan.join(" | "), indexed));
    }
    Ok(out)
}

async fn pg_plans(c: &mut sqlx::PgConnection) -> anyhow::Result<Vec<(String, String, bool)>> {
    let mut out = vec![];
    for (name, q) in HOT {
        let q = hot_query(q, "'a0000000-0000-4000-8000-000000000001'::uuid");
        let rows = c.fetch_all(format!("EXPLAIN {q}").as_str()).await?;
        let plan: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<String, _>(0).map(|l| l.trim().to_owned()))
            .collect::<Result<_, _>>()?;
        let indexed = plan.iter().all(|l| !l.contains("Seq Scan"));
        out.push((name.to_owned(), plan.join(" | "), indexed));
    }
    Ok(out)
}
