//! Section 8: memory of the release binary. A file SQLite store with many sessions is seeded here, then
//! `sallyport serve` runs on it: RSS idle, then after rounds of whoami rotating over every seeded session
//! (each round's RSS is printed, so growth shows), and the peak (`VmHWM`).

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use tokio::runtime::Runtime;

use crate::Params;
use crate::loadgen::{Shape, request, run_rotating};
use crate::server::{Prepared, sqlite_dsn};
use crate::startup::{binary, free_port, kratos_yml, tail, terminate, vm_rss_kib, wait_ready};

const PATH: &str = "/sessions/whoami";

pub struct MemoryResult {
    pub sessions: usize,
    pub seed_secs: f64,
    pub idle_mib: f64,
    /// (requests answered so far, RSS MiB) after each round.
    pub rounds: Vec<(u64, f64)>,
    pub peak_mib: f64,
    pub errors: u64,
    pub rps: f64,
}

pub fn run(p: &Params, server_rt: &Runtime, client_rt: &Runtime) -> anyhow::Result<MemoryResult> {
    let (bin, _) = binary(p.rebuild)?;
    let dir = tempfile::tempdir()?;
    let dsn = sqlite_dsn(dir.path());
    let identities = p.memory_sessions.div_ceil(100).max(1);
    let per = p.memory_sessions.div_ceil(identities).max(1);
    eprintln!(
        "[memory] seeding {} sessions ({identities} identities x {per})",
        identities * per
    );
    let t0 = Instant::now();
    let tokens = server_rt.block_on(async {
        let prepared = Prepared::new(&dsn, json!({"algorithm": "bcrypt", "bcrypt": {"cost": 12}})).await?;
        let tokens = crate::whoami::seed(&prepared.store, identities, per).await?;
        drop(prepared);
        anyhow::Ok(tokens)
    })?;
    let seed_secs = t0.elapsed().as_secs_f64();
    let (public, admin) = (free_port()?, free_port()?);
    let cfg = dir.path().join("kratos.yml");
    std::fs::write(&cfg, kratos_yml(&dsn, public, admin)).context("writing kratos.yml")?;
    let log = dir.path().join("serve.log");
    let log_file = std::fs::File::create(&log)?;
    let mut child = Command::new(&bin)
        .args(["serve", "-c"])
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()
        .context("spawning `sallyport serve`")?;
    let pid = child.id();
    let outcome = (|| {
        wait_ready(&mut child, public, Instant::now())?;
        std::thread::sleep(p.idle);
        let idle_mib = vm_rss_kib(pid)? as f64 / 1024.0;
        eprintln!(
            "[memory] idle RSS {idle_mib:.1} MiB; whoami over {} sessions",
            tokens.len()
        );
        let addr = SocketAddr::from(([127, 0, 0, 1], public));
        let reqs: Vec<Vec<u8>> = tokens
            .iter()
            .map(|t| request(addr, PATH, &[("X-Session-Token", t.as_str())]))
            .collect();
        let shape = Shape {
            concurrency: p.whoami_connections,
            warmup: Duration::ZERO,
            duration: Duration::from_secs(5),
        };
        let (mut done, mut errors, mut secs) = (0u64, 0u64, 0f64);
        let mut rounds = vec![];
        while done < p.memory_requests {
            let r = run_rotating(client_rt, addr, reqs.clone(), shape)?;
            if r.ok == 0 {
                bail!("no whoami answered 200 ({} errors)", r.errors());
            }
            done += r.ok;
            errors += r.errors();
            secs += r.secs;
            let rss = vm_rss_kib(pid)? as f64 / 1024.0;
            eprintln!("[memory] {done} whoami answered, RSS {rss:.1} MiB");
            rounds.push((done, rss));
        }
        let peak_mib = vm_hwm_kib(pid)? as f64 / 1024.0;
        anyhow::Ok((idle_mib, rounds, peak_mib, errors, done as f64 / secs))
    })();
    let _ = terminate(&mut child);
    let (idle_mib, rounds, peak_mib, errors, rps) =
        outcome.with_context(|| format!("server log:\n{}", tail(&log)))?;
    Ok(MemoryResult {
        sessions: tokens.len(),
        seed_secs,
        idle_mib,
        rounds,
        peak_mib,
        errors,
        rps,
    })
}

fn vm_hwm_kib(pid: u32) -> anyhow::Result<u64> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading /proc/<pid>/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc/<pid>/status")
}
