//! Section 6: the cost of `sallyport.rate_limits`, limiter on vs. off in the same run.
//!
//! Three servers on their own SQLite files, identical but for their rate limits: all off; the
//! per-identity budgets on (per-IP off, as by default); per-identity and per-IP budgets on. Budgets the
//! load would spend (codes sent to one address, per-IP counts) are set too large to reach, so every
//! request pays for its counters and none is refused. Password logins per second (cheap bcrypt cost 4,
//! so that the limiter's share is visible rather than hidden behind hashing), send-code requests per
//! second and whoami requests per second are measured round by round, interleaving the servers (each
//! round starting with another) so drift hits all alike.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::runtime::Runtime;

use crate::Params;
use crate::code::CODE_SCHEMA_JSON;
use crate::loadgen::{Generator, Shape};
use crate::server::{Prepared, Running, base64_url, sqlite_dsn};

const PASSWORD: &str = "correct-horse-battery-staple-42";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Off,
    Defaults,
    PerIp,
}

impl Variant {
    pub const ALL: [Variant; 3] = [Variant::Off, Variant::Defaults, Variant::PerIp];

    pub fn describe(self) -> &'static str {
        match self {
            Variant::Off => "limiter off",
            Variant::Defaults => "per-identity on (default)",
            Variant::PerIp => "per-identity + per-IP on",
        }
    }

    fn config(self) -> Value {
        let off = json!({"enabled": false});
        match self {
            Variant::Off => json!({
                "codes_sent_per_address": off,
                "code_guesses_per_identity": off,
                "password_failures_per_identifier": off,
                "second_factor_guesses_per_identity": off,
            }),
            Variant::Defaults => json!({
                "codes_sent_per_address": huge(),
                "code_guesses_per_identity": huge(),
            }),
            Variant::PerIp => json!({
                "codes_sent_per_address": huge(),
                "code_guesses_per_identity": huge(),
                "per_ip": {"enabled": true, "flow_creations": huge(), "submissions": huge()},
            }),
        }
    }
}

fn huge() -> Value {
    json!({"limit": 1_000_000_000u64, "window": "1h"})
}

pub struct RateLimitResult {
    pub concurrency: usize,
    pub users: usize,
    pub round_secs: f64,
    /// Logins per second, one entry per round, per variant in `Variant::ALL` order. Round `r` of every
    /// variant ran back to back, so `on[r] / off[r]` pairs measurements taken under the same load.
    pub logins: [Vec<f64>; 3],
    /// Send-code requests (flow creation + `method: code` POST) per second, likewise.
    pub sends: [Vec<f64>; 3],
    /// Whoami requests per second, likewise.
    pub whoami: [Vec<f64>; 3],
    pub generator: String,
    /// Mean microseconds per store call on file SQLite, one at a time: (peek, hit, give_back).
    pub calls_us: (f64, f64, f64),
    pub calls: usize,
}

pub fn run(
    p: &Params,
    server_rt: &Runtime,
    client_rt: &Runtime,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
) -> anyhow::Result<RateLimitResult> {
    let generator = Generator::choose(p.loadgen)?;
    let rounds = if p.quick { 2 } else { 6 };
    let round = if p.quick {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(2)
    };
    let concurrency = p.concurrency.min(16);
    let users = concurrency * 4;
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir()).collect::<Result<_, _>>()?;
    let mut servers = vec![];
    for (v, dir) in Variant::ALL.iter().zip(&dirs) {
        let dsn = sqlite_dsn(dir.path());
        let limits = v.config();
        let running = server_rt.block_on(async {
            Prepared::build(
                &dsn,
                json!({"algorithm": "bcrypt", "bcrypt": {"cost": 4}}),
                true,
                |c| {
                    c["sallyport"] = json!({"rate_limits": limits});
                    c["selfservice"]["methods"]["code"] =
                        json!({"enabled": true, "passwordless_enabled": true});
                    c["identity"]["schemas"][0]["url"] = json!(base64_url(CODE_SCHEMA_JSON));
                },
            )
            .await?
            .start(metrics.clone())
            .await
        })?;
        servers.push(running);
    }
    eprintln!(
        "[ratelimit] 3 servers (limiter off / per-identity on / per-identity + per-IP on), bcrypt cost 4, {users} users, {concurrency} connections, {rounds} rounds of {:.1} s each",
        round.as_secs_f64()
    );
    let calls = if p.quick { 500 } else { 3000 };
    let calls_us = server_rt.block_on(store_calls(calls))?;
    let outcome = (|| {
        let mut tokens = vec![];
        for s in &servers {
            tokens.push(client_rt.block_on(seed(s, users))?);
        }
        let mut logins: [Vec<f64>; 3] = Default::default();
        let mut sends: [Vec<f64>; 3] = Default::default();
        let mut whoami: [Vec<f64>; 3] = Default::default();
        let shape = Shape {
            concurrency,
            warmup: Duration::from_millis(300),
            duration: round,
        };
        for r in 0..rounds {
            // Each round starts with another variant, so load that drifts during a round hits all alike.
            for k in 0..servers.len() {
                let i = (r + k) % servers.len();
                let s = &servers[i];
                logins[i].push(client_rt.block_on(per_sec(s, users, concurrency, round, Load::Login))?);
                sends[i].push(client_rt.block_on(per_sec(s, users, concurrency, round, Load::SendCode))?);
                let headers = [("X-Session-Token", tokens[i].as_str())];
                let r = generator.run(client_rt, s.public, "/sessions/whoami", &headers, shape)?;
                if r.errors() > 0 {
                    bail!("whoami on {}: {} errors", Variant::ALL[i].describe(), r.errors());
                }
                whoami[i].push(r.rps);
            }
        }
        Ok(RateLimitResult {
            concurrency,
            users,
            round_secs: round.as_secs_f64(),
            logins,
            sends,
            whoami,
            generator: generator.describe(),
            calls_us,
            calls,
        })
    })();
    for s in servers {
        server_rt.block_on(s.stop())?;
    }
    drop(dirs);
    outcome
}

/// Creates `users` identities with one password; returns a session token of the first (for whoami).
async fn seed(s: &Running, users: usize) -> anyhow::Result<String> {
    let c = reqwest::Client::new();
    for n in 0..users {
        let res = c
            .post(s.admin_url("admin/identities"))
            .json(&json!({
                "schema_id": "default",
                "traits": {"email": format!("rl{n}@example.org")},
                "credentials": {"password": {"config": {"password": PASSWORD}}}
            }))
            .send()
            .await?;
        if res.status() != 201 {
            bail!("creating identity {n}: {}", res.status());
        }
    }
    let (st, v) = login(&c, s.public, "rl0@example.org").await?;
    if st != 200 {
        bail!("login answered {st}: {v}");
    }
    v["session_token"]
        .as_str()
        .map(str::to_owned)
        .context("no session_token")
}

async fn login(c: &reqwest::Client, public: SocketAddr, email: &str) -> anyhow::Result<(u16, Value)> {
    let flow: Value = c
        .get(format!("http://{public}/self-service/login/api"))
        .send()
        .await?
        .json()
        .await?;
    let id = flow["id"].as_str().context("no flow id")?;
    let res = c
        .post(format!("http://{public}/self-service/login?flow={id}"))
        .json(&json!({"method": "password", "identifier": email, "password": PASSWORD}))
        .send()
        .await?;
    let st = res.status().as_u16();
    Ok((st, res.json().await?))
}

#[derive(Clone, Copy)]
enum Load {
    Login,
    SendCode,
}

/// A native login flow, then a code sent to `email`; true when it answered 400 `sent_email`.
async fn send_code(c: &reqwest::Client, public: SocketAddr, email: &str) -> anyhow::Result<bool> {
    let flow: Value = c
        .get(format!("http://{public}/self-service/login/api"))
        .send()
        .await?
        .json()
        .await?;
    let id = flow["id"].as_str().context("no flow id")?;
    let res = c
        .post(format!("http://{public}/self-service/login?flow={id}"))
        .json(&json!({"method": "code", "identifier": email}))
        .send()
        .await?;
    let st = res.status().as_u16();
    let v: Value = res.json().await?;
    Ok(st == 400 && v["state"] == "sent_email")
}

/// Closed loop: `concurrency` clients each create a flow and log in (or ask for a code), again and
/// again, round-robin over the users; successes per second.
async fn per_sec(
    s: &Running,
    users: usize,
    concurrency: usize,
    d: Duration,
    load: Load,
) -> anyhow::Result<f64> {
    let c = reqwest::Client::new();
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = vec![];
    for _ in 0..concurrency {
        let (c, ok, failed, stop, next) = (c.clone(), ok.clone(), failed.clone(), stop.clone(), next.clone());
        let public = s.public;
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let n = next.fetch_add(1, Ordering::Relaxed) as usize % users;
                let email = format!("rl{n}@example.org");
                let done = match load {
                    Load::Login => matches!(login(&c, public, &email).await, Ok((200, _))),
                    Load::SendCode => matches!(send_code(&c, public, &email).await, Ok(true)),
                };
                if done {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(d).await;
    stop.store(true, Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    for t in tasks {
        t.await?;
    }
    let failed = failed.load(Ordering::Relaxed);
    if failed > 0 {
        bail!("{failed} requests failed");
    }
    Ok(ok.load(Ordering::Relaxed) as f64 / secs)
}

/// The limiter's own price, free of HTTP and of other load's noise: `calls` sequential `peek`, `hit`
/// and `give_back` calls on a file SQLite store (what a password login, a code sent and a right code
/// pay), mean microseconds each.
async fn store_calls(calls: usize) -> anyhow::Result<(f64, f64, f64)> {
    use sallyport_core::rate_limit::{Bucket, Rule};
    let dir = tempfile::tempdir()?;
    let store = sallyport::server::open_store(&sqlite_dsn(dir.path())).await?;
    store
        .migrate_up()
        .await
        .map_err(|e| anyhow::anyhow!("migrating: {e}"))?;
    let rule = Rule {
        limit: 1_000_000_000,
        window: Duration::from_secs(3600),
        backoff: None,
    };
    let keys: Vec<String> = (0..calls)
        .map(|n| Bucket::CodeGuesses.key(&format!("k{}", n % 64)))
        .collect();
    let now = time::OffsetDateTime::now_utc();
    let err = |e| anyhow::anyhow!("store: {e}");
    let t = Instant::now();
    for k in &keys {
        store.hit(Bucket::CodeGuesses, k, &rule, now).await.map_err(err)?;
    }
    let hit = t.elapsed().as_secs_f64() * 1e6 / calls as f64;
    let t = Instant::now();
    for k in &keys {
        store
            .peek(Bucket::CodeGuesses, k, &rule, now)
            .await
            .map_err(err)?;
    }
    let peek = t.elapsed().as_secs_f64() * 1e6 / calls as f64;
    let t = Instant::now();
    for k in &keys {
        store.give_back(Bucket::CodeGuesses, k, now).await.map_err(err)?;
    }
    let give_back = t.elapsed().as_secs_f64() * 1e6 / calls as f64;
    drop(store);
    drop(dir);
    Ok((peek, hit, give_back))
}
