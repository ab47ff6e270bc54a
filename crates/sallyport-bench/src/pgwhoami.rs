//! Section 9, PostgreSQL: `GET /sessions/whoami` throughput on a PostgreSQL store against the same-run
//! bare axum baseline (same bytes, client and concurrency as section 1), then the cross-node refusal
//! latency: two `sallyport serve` processes (the release binary) on one database; node B has a session's
//! answer cached, node A logs that session out, and B is asked again and again on a keep-alive
//! connection until it answers 401. The time from A's 204 to B's first 401 is what a client could still
//! do with a logged-out session elsewhere. Needs `SALLYPORT_BENCH_POSTGRES_DSN` or `TEST_POSTGRES_DSN`
//! (a throwaway database is created and dropped).

use std::net::SocketAddr;
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

use crate::Params;
use crate::import::{create_db, drop_db};
use crate::loadgen::{LoadResult, Shape, get_once, read_response, request, run_rotating};
use crate::server::Prepared;
use crate::startup::{binary, spawn_serve, tail, terminate, wait_ready};

const PATH: &str = "/sessions/whoami";
/// A node that has not refused after this long counts as a failed trial.
const GIVE_UP: Duration = Duration::from_secs(2);

pub struct PgWhoamiResult {
    pub sessions: usize,
    pub seed_secs: f64,
    pub rotated: usize,
    pub connections: usize,
    pub sallyport: LoadResult,
    pub baseline: LoadResult,
    /// Per trial: ms from node A's logout answer to node B's first 401.
    pub refusal_ms: Vec<f64>,
    /// Per trial: ms the logout on A took (request written to 204 read).
    pub logout_ms: Vec<f64>,
    /// Whoami requests B answered 200 after A's logout had answered, over all trials.
    pub stale_answers: u64,
    pub failed_trials: usize,
}

pub fn admin_dsn() -> anyhow::Result<String> {
    std::env::var("SALLYPORT_BENCH_POSTGRES_DSN")
        .or_else(|_| std::env::var("TEST_POSTGRES_DSN"))
        .context("this section needs PostgreSQL: set SALLYPORT_BENCH_POSTGRES_DSN (or TEST_POSTGRES_DSN)")
}

pub fn run(
    p: &Params,
    server_rt: &Runtime,
    client_rt: &Runtime,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
) -> anyhow::Result<PgWhoamiResult> {
    let admin = admin_dsn()?;
    let (bin, _) = binary(p.rebuild)?;
    let name = format!("bench_pgwhoami_{}", std::process::id());
    let dsn = server_rt.block_on(create_db(&admin, &name))?;
    let outcome = measure(p, server_rt, client_rt, metrics, &dsn, &bin);
    server_rt.block_on(drop_db(&admin, &name));
    outcome
}

fn measure(
    p: &Params,
    server_rt: &Runtime,
    client_rt: &Runtime,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    dsn: &str,
    bin: &std::path::Path,
) -> anyhow::Result<PgWhoamiResult> {
    let rotated = p.whoami_sessions.max(1);
    let trials = p.refusal_trials.max(1);
    let per = 100.min(rotated);
    let identities = (rotated + trials).div_ceil(per);
    eprintln!(
        "[pg-whoami] seeding {} sessions ({identities} identities x {per}) into PostgreSQL",
        identities * per
    );
    let (server, tokens, seed_secs) = server_rt.block_on(async {
        let prepared = Prepared::new(dsn, json!({"algorithm": "bcrypt", "bcrypt": {"cost": 12}})).await?;
        let t0 = Instant::now();
        let tokens = crate::whoami::seed(&prepared.store, identities, per).await?;
        let seed_secs = t0.elapsed().as_secs_f64();
        let server = prepared.start(metrics).await?;
        anyhow::Ok((server, tokens, seed_secs))
    })?;
    let (hot, revoked) = tokens.split_at(rotated.min(tokens.len() - trials));
    let by_token: Vec<Vec<u8>> = hot
        .iter()
        .map(|t| request(server.public, PATH, &[("X-Session-Token", t.as_str())]))
        .collect();
    let shape = Shape {
        concurrency: p.whoami_connections,
        warmup: p.warmup,
        duration: p.duration,
    };
    let first = [("X-Session-Token", hot[0].as_str())];
    let measured = (|| {
        let (status, body) = client_rt.block_on(get_once(server.public, PATH, &first))?;
        if status != 200 {
            bail!("whoami answered {status}: {}", String::from_utf8_lossy(&body));
        }
        eprintln!(
            "[pg-whoami] sallyport: {} sessions rotated, {} connections, {:.1} s warm-up + {:.1} s",
            hot.len(),
            p.whoami_connections,
            p.warmup.as_secs_f64(),
            p.duration.as_secs_f64()
        );
        Ok((body, run_rotating(client_rt, server.public, by_token, shape)?))
    })();
    server_rt.block_on(server.stop())?;
    let (body, sallyport) = measured?;

    let baseline = crate::whoami::measure_baseline(server_rt, client_rt, body, hot, shape, "pg-whoami")?;

    let refusal = cross_node(client_rt, dsn, bin, revoked)?;
    Ok(PgWhoamiResult {
        sessions: tokens.len(),
        seed_secs,
        rotated: hot.len(),
        connections: p.whoami_connections,
        sallyport,
        baseline,
        refusal_ms: refusal.refusal_ms,
        logout_ms: refusal.logout_ms,
        stale_answers: refusal.stale,
        failed_trials: refusal.failed,
    })
}

struct Refusal {
    refusal_ms: Vec<f64>,
    logout_ms: Vec<f64>,
    stale: u64,
    failed: usize,
}

/// Node A and node B: `sallyport serve` each, on the same database and configuration.
fn cross_node(
    client_rt: &Runtime,
    dsn: &str,
    bin: &std::path::Path,
    tokens: &[String],
) -> anyhow::Result<Refusal> {
    let dir = tempfile::tempdir()?;
    let mut nodes: Vec<(Child, u16, std::path::PathBuf)> = vec![];
    let started = (|| {
        for name in ["a", "b"] {
            nodes.push(spawn_serve(bin, dir.path(), &format!("serve-{name}"), dsn)?);
            let (child, public, _) = nodes.last_mut().expect("just pushed");
            wait_ready(child, *public, Instant::now())?;
        }
        // Each node's change listener connects in the background after readiness, and until it does the
        // node caches nothing (which would flatter the figure): give it time.
        std::thread::sleep(Duration::from_millis(500));
        anyhow::Ok(())
    })();
    let outcome = started.and_then(|()| {
        let a = SocketAddr::from(([127, 0, 0, 1], nodes[0].1));
        let b = SocketAddr::from(([127, 0, 0, 1], nodes[1].1));
        eprintln!(
            "[pg-whoami] cross-node: {} trials, logout on node A, whoami on node B until 401",
            tokens.len()
        );
        client_rt.block_on(trials(a, b, tokens))
    });
    let logs: Vec<String> = nodes.iter().map(|n| tail(&n.2)).collect();
    for (child, _, _) in &mut nodes {
        let _ = terminate(child);
    }
    outcome.with_context(|| format!("node logs:\n{}", logs.join("\n---\n")))
}

async fn trials(a: SocketAddr, b: SocketAddr, tokens: &[String]) -> anyhow::Result<Refusal> {
    let mut on_a = connect(a).await?;
    let mut on_b = connect(b).await?;
    let mut buf_a = Vec::new();
    let mut buf_b = Vec::new();
    let mut out = Refusal {
        refusal_ms: vec![],
        logout_ms: vec![],
        stale: 0,
        failed: 0,
    };
    for token in tokens {
        let whoami_b = request(b, PATH, &[("X-Session-Token", token.as_str())]);
        // Twice: the first fills B's caches, the second is answered from them.
        for _ in 0..2 {
            let status = exchange(&mut on_b, &mut buf_b, &whoami_b).await?;
            if status != 200 {
                bail!("node B answered {status} to a live session");
            }
        }
        let body = json!({"session_token": token}).to_string();
        let logout = format!(
            "DELETE /self-service/logout/api HTTP/1.1\r\nHost: {a}\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes();
        let t0 = Instant::now();
        let status = exchange(&mut on_a, &mut buf_a, &logout).await?;
        let acked = Instant::now();
        if status != 204 {
            bail!("logout on node A answered {status}");
        }
        loop {
            let status = exchange(&mut on_b, &mut buf_b, &whoami_b).await?;
            if status == 401 {
                out.refusal_ms.push(acked.elapsed().as_secs_f64() * 1000.0);
                break;
            }
            if status != 200 {
                bail!("node B answered {status} while the logout propagated");
            }
            out.stale += 1;
            if acked.elapsed() > GIVE_UP {
                out.failed += 1;
                break;
            }
        }
        out.logout_ms.push((acked - t0).as_secs_f64() * 1000.0);
    }
    Ok(out)
}

async fn connect(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// One request on a keep-alive connection; the status of its answer.
async fn exchange(s: &mut TcpStream, buf: &mut Vec<u8>, req: &[u8]) -> anyhow::Result<u16> {
    s.write_all(req).await?;
    let f = read_response(s, buf).await?;
    if !f.keep_alive {
        bail!("the server closed a keep-alive connection");
    }
    buf.drain(..f.head_len + f.body_len);
    Ok(f.status)
}
