//! Section 1: `GET /sessions/whoami` throughput on a SQLite store holding many sessions, against a bare
//! axum server answering the same bytes. Same client, concurrency and duration for both.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::routing::get;
use serde_json::json;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use sallyport_core::identity::Identity;
use sallyport_core::session::{Aal, Device, Session};
use sallyport_core::store::Store;

use crate::Params;
use crate::loadgen::{LoadResult, Shape, get_once, request, run_rotating};
use crate::server::{COOKIE_SECRET, Prepared, sqlite_dsn};

/// A well-formed bcrypt hash; the seeded identities never log in.
const SEED_HASH: &str = "$2b$04$atf9KHoKrTIsJZ1PpbLWu.LRY6qGB0CW6nfqgFWHTD5PfIG4hOaPq";
const PATH: &str = "/sessions/whoami";
/// The default `session.cookie.name`.
const COOKIE_NAME: &str = "ory_kratos_session";

pub struct WhoamiResult {
    pub sessions: usize,
    pub identities: usize,
    pub seed_secs: f64,
    pub body_bytes: usize,
    pub rotated: usize,
    pub connections: usize,
    pub generator: String,
    /// Interleaved rounds, each measuring the baseline, Sallyport by token and by cookie back to back.
    pub rounds: Vec<Round>,
}

/// One round of the whoami section: the three runs, back to back, in an order that rotates.
pub struct Round {
    pub sallyport: LoadResult,
    pub cookie: LoadResult,
    pub baseline: LoadResult,
}

/// Rounds of the whoami section: a ratio taken from runs a quarter of a minute apart moved with whatever
/// else the machine did in between (the same build measured 0.69-0.79 from one run to the next).
pub const ROUNDS: usize = 3;

pub fn run(
    p: &Params,
    server_rt: &Runtime,
    client_rt: &Runtime,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
) -> anyhow::Result<WhoamiResult> {
    let dir = tempfile::tempdir()?;
    let dsn = sqlite_dsn(dir.path());
    let total = p.identities * p.sessions_per_identity;
    eprintln!(
        "[whoami] seeding {total} sessions ({} identities x {}) into {}",
        p.identities,
        p.sessions_per_identity,
        dir.path().display()
    );
    let (server, tokens, seed_secs) = server_rt.block_on(async {
        let prepared = Prepared::new(&dsn, json!({"algorithm": "bcrypt", "bcrypt": {"cost": 12}})).await?;
        let t0 = Instant::now();
        let tokens = seed(&prepared.store, p.identities, p.sessions_per_identity).await?;
        let seed_secs = t0.elapsed().as_secs_f64();
        let server = prepared.start(metrics).await?;
        anyhow::Ok((server, tokens, seed_secs))
    })?;
    // Spread the rotated sessions over all identities: every identity's sessions are adjacent in `tokens`.
    let rotated = p.whoami_sessions.min(tokens.len()).max(1);
    let step = (tokens.len() / rotated).max(1);
    let picked: Vec<&String> = tokens.iter().step_by(step).take(rotated).collect();
    let rotated = picked.len();
    let keys = sallyport::http::cookies::CookieKeys::new(&[COOKIE_SECRET.to_owned()]);
    let by_token: Vec<Vec<u8>> = picked
        .iter()
        .map(|t| request(server.public, PATH, &[("X-Session-Token", t.as_str())]))
        .collect();
    let by_cookie: Vec<Vec<u8>> = picked
        .iter()
        .map(|t| {
            let cookie = format!("{COOKIE_NAME}={}", keys.seal(COOKIE_NAME, t));
            request(server.public, PATH, &[("Cookie", cookie.as_str())])
        })
        .collect();
    eprintln!("[whoami] seeded in {seed_secs:.1} s; {rotated} sessions rotated per request");
    let shape = Shape {
        concurrency: p.whoami_connections,
        warmup: p.warmup,
        duration: p.duration,
    };
    let first = [("X-Session-Token", picked[0].as_str())];

    let rounds = if p.quick { 1 } else { ROUNDS };
    let measured = (|| {
        let (status, body) = client_rt.block_on(get_once(server.public, PATH, &first))?;
        if status != 200 {
            bail!("whoami answered {status}: {}", String::from_utf8_lossy(&body));
        }
        let body_bytes = body.len();
        let (addr, stop, handle) = server_rt.block_on(baseline(Bytes::from(body)))?;
        let by_token_baseline: Vec<Vec<u8>> = picked
            .iter()
            .map(|t| request(addr, PATH, &[("X-Session-Token", t.as_str())]))
            .collect();
        eprintln!(
            "[whoami] {rounds} rounds of baseline, sallyport by token and by cookie, in rotating order: {} connections, {:.1} s warm-up + {:.1} s each",
            p.whoami_connections,
            p.warmup.as_secs_f64(),
            p.duration.as_secs_f64()
        );
        let mut out = vec![];
        let run_rounds = (|| {
            for k in 0..rounds {
                let mut got: [Option<LoadResult>; 3] = [None, None, None];
                for i in 0..3 {
                    let which = (i + k) % 3;
                    let (to, reqs) = match which {
                        0 => (addr, by_token_baseline.clone()),
                        1 => (server.public, by_token.clone()),
                        _ => (server.public, by_cookie.clone()),
                    };
                    got[which] = Some(run_rotating(client_rt, to, reqs, shape)?);
                }
                let [Some(baseline), Some(sallyport), Some(cookie)] = got else {
                    bail!("a whoami round missed a run");
                };
                eprintln!(
                    "[whoami] round {}: token {:.3}, cookie {:.3} of the baseline's {:.0} req/s",
                    k + 1,
                    sallyport.rps / baseline.rps,
                    cookie.rps / baseline.rps,
                    baseline.rps
                );
                out.push(Round {
                    sallyport,
                    cookie,
                    baseline,
                });
            }
            anyhow::Ok(())
        })();
        let _ = stop.send(());
        server_rt.block_on(handle).context("baseline server task")??;
        run_rounds?;
        Ok((body_bytes, out))
    })();
    server_rt.block_on(server.stop())?;
    let (body_bytes, rounds) = measured?;
    drop(dir);
    Ok(WhoamiResult {
        sessions: total,
        identities: p.identities,
        seed_secs,
        body_bytes,
        rotated,
        connections: p.whoami_connections,
        generator: "in-process HTTP/1.1 keep-alive client (own single-threaded tokio runtime), one request per rotated session in turn".into(),
        rounds,
    })
}

impl WhoamiResult {
    /// The round whose ratio `of` (token or cookie run against its round's baseline) is the median.
    pub fn median_round(&self, of: impl Fn(&Round) -> &LoadResult) -> &Round {
        let mut by_ratio: Vec<&Round> = self.rounds.iter().collect();
        by_ratio.sort_by(|a, b| (of(a).rps / a.baseline.rps).total_cmp(&(of(b).rps / b.baseline.rps)));
        by_ratio[by_ratio.len() / 2]
    }
}

/// Identities with a password credential and addresses, each with `per` active aal1 sessions carrying a
/// device, inserted through the store API. Returns every session's token, identity by identity.
pub async fn seed(store: &Arc<dyn Store>, identities: usize, per: usize) -> anyhow::Result<Vec<String>> {
    let now = time::OffsetDateTime::now_utc();
    let lifespan = time::Duration::days(30);
    let mut tokens = Vec::with_capacity(identities * per);
    for i in 0..identities {
        let ident = bench_identity(&format!("user{i:07}@example.org"), SEED_HASH, now);
        store
            .create_identity(&ident, None)
            .await
            .map_err(|e| anyhow::anyhow!("create_identity: {e}"))?;
        // The single writer connection serializes these anyway; keeping several queued hides the
        // round trip to its worker thread.
        let mut inserts = JoinSet::new();
        for _ in 0..per {
            let n = bench_session(ident.id, lifespan, now);
            tokens.push(n.token.clone());
            let store = store.clone();
            inserts.spawn(async move { store.create_session(&n.session).await });
        }
        while let Some(r) = inserts.join_next().await {
            r?.map_err(|e| anyhow::anyhow!("create_session: {e}"))?;
        }
    }
    Ok(tokens)
}

/// An identity as the benchmarks store it: email trait, password credential with `hash`, a verifiable
/// and a recovery address.
pub(crate) fn bench_identity(email: &str, hash: &str, now: time::OffsetDateTime) -> Identity {
    let mut ident = Identity::new("default", json!({"email": email}), now);
    ident.set_credential(
        "password",
        vec![email.to_owned()],
        json!({"hashed_password": hash}),
        now,
    );
    let addr = [("email".to_owned(), email.to_owned())];
    ident.merge_verifiable_addresses(&addr, now);
    ident.merge_recovery_addresses(&addr, now);
    ident.available_aal = ident.compute_available_aal(false);
    ident
}

/// An active aal1 password session with one device, as the benchmarks store it.
pub(crate) fn bench_session(
    identity_id: uuid::Uuid,
    lifespan: time::Duration,
    now: time::OffsetDateTime,
) -> sallyport_core::session::NewSession {
    let mut n = Session::issue(identity_id, lifespan, now);
    n.session.complete_method("password", Aal::Aal1, now);
    n.session.devices.push(Device {
        id: uuid::Uuid::new_v4(),
        ip_address: Some("127.0.0.1".into()),
        user_agent: Some("sallyport-bench/1.0".into()),
        location: None,
    });
    n
}

pub(crate) type Baseline = (
    SocketAddr,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
);

/// Serves `body` from the bare baseline and drives it with the same client, concurrency and token
/// headers as Sallyport was (only the Host differs); `section` names the log line.
pub(crate) fn measure_baseline(
    server_rt: &Runtime,
    client_rt: &Runtime,
    body: Vec<u8>,
    tokens: &[impl AsRef<str>],
    shape: Shape,
    section: &str,
) -> anyhow::Result<LoadResult> {
    let body_len = body.len();
    let (addr, stop, handle) = server_rt.block_on(baseline(Bytes::from(body)))?;
    let measured = (|| {
        let first = [("X-Session-Token", tokens[0].as_ref())];
        let (status, got) = client_rt.block_on(get_once(addr, PATH, &first))?;
        if status != 200 || got.len() != body_len {
            bail!("baseline answered {status} with {} bytes", got.len());
        }
        eprintln!("[{section}] baseline: same client, concurrency and duration");
        let reqs = tokens
            .iter()
            .map(|t| request(addr, PATH, &[("X-Session-Token", t.as_ref())]))
            .collect();
        run_rotating(client_rt, addr, reqs, shape)
    })();
    let _ = stop.send(());
    server_rt.block_on(handle).context("baseline server task")??;
    measured
}

/// A bare axum server with one handler answering `body` as application/json.
pub(crate) async fn baseline(body: Bytes) -> anyhow::Result<Baseline> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    let app = Router::new().route(
        PATH,
        get(move || {
            let body = body.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], body) }
        }),
    );
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(
        axum::serve(l, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .into_future(),
    );
    Ok((addr, tx, handle))
}
