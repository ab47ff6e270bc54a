//! Section 8: memory of the release binary. A file SQLite store with many sessions is seeded here, then
//! `sallyport serve` runs on it: RSS idle, then after rounds of whoami rotating over every seeded session
//! (each round's RSS is printed, so growth shows), and the peak (`VmHWM`). Each RSS figure is split into
//! anonymous memory (heap, stacks: what the server allocates) and file-backed pages (the binary's code
//! and constants, mapped from the page cache and shared with it). `--soak` then keeps the same load on
//! for a while, samples RSS at a fixed interval and reports the least-squares slope.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use tokio::runtime::Runtime;

use crate::Params;
use crate::loadgen::{Shape, request, run_rotating};
use crate::server::{Prepared, sqlite_dsn};
use crate::startup::{binary, send_get, spawn_serve_with_admin, tail, terminate, wait_ready};

const PATH: &str = "/sessions/whoami";

/// One reading of `/proc/<pid>/status`, in MiB.
#[derive(Debug, Clone, Copy)]
pub struct Rss {
    pub total: f64,
    pub anon: f64,
    pub file: f64,
    pub threads: u32,
}

impl Rss {
    pub fn read(pid: u32) -> anyhow::Result<Rss> {
        let status =
            std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading /proc/<pid>/status")?;
        let field = |key: &str| -> anyhow::Result<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .with_context(|| format!("no {key} in /proc/<pid>/status"))
        };
        let mib = |key: &str| field(key).map(|k| k as f64 / 1024.0);
        Ok(Rss {
            total: mib("VmRSS:")?,
            anon: mib("RssAnon:")?,
            file: mib("RssFile:")? + mib("RssShmem:").unwrap_or(0.0),
            threads: field("Threads:")? as u32,
        })
    }

    pub fn describe(&self) -> String {
        format!(
            "RSS {:.1} MiB (anonymous {:.1}, file-backed {:.1}; {} threads)",
            self.total, self.anon, self.file, self.threads
        )
    }
}

/// The allocator's own figures, read from the server's `/admin/metrics/prometheus`, in MiB.
#[derive(Debug, Clone, Copy)]
pub struct Heap {
    /// Live allocations (`sallyport_heap_in_use_bytes`).
    pub in_use: f64,
    /// Taken from the system, free space inside included (`sallyport_heap_mapped_bytes`).
    pub mapped: f64,
}

impl Heap {
    /// `None` when the server does not publish them (not glibc) or the admin port does not answer.
    fn read(admin: u16) -> Option<Heap> {
        use std::io::Read;
        let addr = SocketAddr::from(([127, 0, 0, 1], admin));
        let mut s = send_get(addr, "/admin/metrics/prometheus", Duration::from_secs(5))?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        let gauge = |name: &str| -> Option<f64> {
            text.lines()
                .find_map(|l| {
                    l.strip_prefix(name)?
                        .strip_prefix(' ')?
                        .trim()
                        .parse::<f64>()
                        .ok()
                })
                .map(|b| b / (1024.0 * 1024.0))
        };
        Some(Heap {
            in_use: gauge("sallyport_heap_in_use_bytes")?,
            mapped: gauge("sallyport_heap_mapped_bytes")?,
        })
    }
}

pub struct Soak {
    pub interval: Duration,
    /// (seconds since the soak started, RSS) at each sample, the first at 0.
    pub samples: Vec<(f64, Rss)>,
    /// (seconds since the soak started, heap) at each sample the server answered.
    pub heap: Vec<(f64, Heap)>,
    pub requests: u64,
    pub errors: u64,
}

impl Soak {
    /// Least-squares slope of total RSS over the samples, MiB per minute.
    pub fn slope_mib_per_min(&self) -> f64 {
        slope_per_minute(&self.samples, |r| r.total)
    }

    /// Least-squares slopes of the live heap and of the heap taken from the system, MiB per minute.
    pub fn heap_slopes(&self) -> (f64, f64) {
        (
            slope_per_minute(&self.heap, |h| h.in_use),
            slope_per_minute(&self.heap, |h| h.mapped),
        )
    }
}

/// Least-squares slope of `value` over samples taken at (seconds, sample), per minute.
fn slope_per_minute<T>(samples: &[(f64, T)], value: impl Fn(&T) -> f64) -> f64 {
    slope(
        &samples
            .iter()
            .map(|(t, x)| (*t / 60.0, value(x)))
            .collect::<Vec<_>>(),
    )
}

pub struct MemoryResult {
    pub sessions: usize,
    pub seed_secs: f64,
    pub idle: Rss,
    /// (requests answered so far, RSS) after each round.
    pub rounds: Vec<(u64, Rss)>,
    pub peak_mib: f64,
    pub errors: u64,
    pub rps: f64,
    pub soak: Option<Soak>,
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
    let (mut child, public, admin, log) = spawn_serve_with_admin(&bin, dir.path(), "serve", &dsn)?;
    let pid = child.id();
    let outcome = (|| {
        wait_ready(&mut child, public, Instant::now())?;
        std::thread::sleep(p.idle);
        let idle = Rss::read(pid)?;
        eprintln!(
            "[memory] idle {}; whoami over {} sessions",
            idle.describe(),
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
            let rss = Rss::read(pid)?;
            eprintln!("[memory] {done} whoami answered, {}", rss.describe());
            rounds.push((done, rss));
        }
        let peak_mib = vm_hwm_kib(pid)? as f64 / 1024.0;
        let soak = match p.soak {
            Some(total) => Some(soak(client_rt, addr, &reqs, p, total, (pid, admin))?),
            None => None,
        };
        anyhow::Ok((idle, rounds, peak_mib, errors, done as f64 / secs, soak))
    })();
    let _ = terminate(&mut child);
    let (idle, rounds, peak_mib, errors, rps, soak) =
        outcome.with_context(|| format!("server log:\n{}", tail(&log)))?;
    Ok(MemoryResult {
        sessions: tokens.len(),
        seed_secs,
        idle,
        rounds,
        peak_mib,
        errors,
        rps,
        soak,
    })
}

/// The same rotating whoami load for `total`, RSS sampled every `p.soak_interval`.
fn soak(
    client_rt: &Runtime,
    addr: SocketAddr,
    reqs: &[Vec<u8>],
    p: &Params,
    total: Duration,
    (pid, admin): (u32, u16),
) -> anyhow::Result<Soak> {
    let interval = p.soak_interval;
    eprintln!(
        "[memory] soak: {:.0} s of whoami, RSS every {:.0} s",
        total.as_secs_f64(),
        interval.as_secs_f64()
    );
    let shape = Shape {
        concurrency: p.whoami_connections,
        warmup: Duration::ZERO,
        duration: interval,
    };
    let t0 = Instant::now();
    let mut samples = vec![(0.0, Rss::read(pid)?)];
    let mut heap: Vec<(f64, Heap)> = Heap::read(admin).map(|h| (0.0, h)).into_iter().collect();
    let (mut requests, mut errors) = (0u64, 0u64);
    while t0.elapsed() < total {
        let r = run_rotating(client_rt, addr, reqs.to_vec(), shape)?;
        requests += r.ok;
        errors += r.errors();
        let rss = Rss::read(pid)?;
        let t = t0.elapsed().as_secs_f64();
        let h = Heap::read(admin);
        let heap_note = h.map_or(String::new(), |h| {
            format!("; heap in use {:.1} MiB of {:.1}", h.in_use, h.mapped)
        });
        eprintln!(
            "[memory] soak {t:>5.0} s: {requests} whoami, {}{heap_note}",
            rss.describe()
        );
        samples.push((t, rss));
        heap.extend(h.map(|h| (t, h)));
    }
    Ok(Soak {
        interval,
        samples,
        heap,
        requests,
        errors,
    })
}

/// Least-squares slope of y over x; 0 for fewer than two points.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = points.iter().map(|(x, _)| (x - mx).powi(2)).sum();
    if sxx == 0.0 { 0.0 } else { sxy / sxx }
}

/// "600", "600s", "10m", "1h" (whole or fractional).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("not a duration: {s:?} (e.g. 600, 90s, 10m, 1h)"))?;
    let secs = match unit {
        "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("unknown unit {unit:?} in {s:?} (s, m or h)")),
    };
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("duration must be positive: {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_line_and_of_a_flat_series() {
        assert!((slope(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]) - 2.0).abs() < 1e-9);
        assert_eq!(slope(&[(0.0, 7.0), (1.0, 7.0), (2.0, 7.0)]), 0.0);
        assert_eq!(slope(&[(0.0, 7.0)]), 0.0);
    }

    #[test]
    fn durations_with_and_without_units() {
        assert_eq!(parse_duration("600").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("0").is_err());
    }
}
