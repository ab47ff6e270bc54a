//! Closed-loop HTTP/1.1 load: N keep-alive connections, each sending the next request as soon as the
//! previous answer is read. `wrk` when available (it costs the machine least), else a minimal client
//! here: requests are pre-encoded bytes and answers are parsed only as far as status and length.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

use crate::LoadgenChoice;

/// How hard and how long: connections, uncounted warm-up, measured window.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub concurrency: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

/// What one load run counted inside its measured window.
#[derive(Debug, Clone, Default)]
pub struct LoadResult {
    pub ok: u64,
    pub non200: u64,
    pub io_errors: u64,
    pub secs: f64,
    /// 200 responses per second.
    pub rps: f64,
    /// The first non-200 status seen, to name in the report.
    pub bad_status: Option<u16>,
    /// Median and 99th percentile latency in ms (in-process client only; `wrk`'s are not parsed).
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl LoadResult {
    pub fn errors(&self) -> u64 {
        self.non200 + self.io_errors
    }
}

#[derive(Debug, Clone)]
pub enum Generator {
    InProcess,
    Wrk(PathBuf),
}

impl Generator {
    pub fn choose(choice: LoadgenChoice) -> anyhow::Result<Generator> {
        let wrk = find_wrk();
        match (choice, wrk) {
            (LoadgenChoice::Inproc, _) | (LoadgenChoice::Auto, None) => Ok(Generator::InProcess),
            (LoadgenChoice::Auto | LoadgenChoice::Wrk, Some(p)) => Ok(Generator::Wrk(p)),
            (LoadgenChoice::Wrk, None) => bail!("--loadgen wrk: `wrk` is not on PATH"),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Generator::InProcess => {
                "in-process HTTP/1.1 keep-alive client (own single-threaded tokio runtime; `wrk` not found)"
                    .into()
            }
            Generator::Wrk(p) => format!("wrk ({})", p.display()),
        }
    }

    /// Warm-up (not counted), then `shape.duration` measured.
    pub fn run(
        &self,
        client_rt: &Runtime,
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
        shape: Shape,
    ) -> anyhow::Result<LoadResult> {
        match self {
            Generator::InProcess => {
                client_rt.block_on(inprocess(addr, vec![request(addr, path, headers)], shape))
            }
            Generator::Wrk(bin) => {
                let url = format!("http://{addr}{path}");
                if !shape.warmup.is_zero() {
                    wrk(bin, &url, headers, shape.concurrency, shape.warmup)?;
                }
                wrk(bin, &url, headers, shape.concurrency, shape.duration)
            }
        }
    }
}

/// Always the in-process client: each connection sends the next of `requests` in turn (starting at
/// its own offset), so many distinct sessions are asked for; `wrk` would need a Lua script for that.
pub fn run_rotating(
    client_rt: &Runtime,
    addr: SocketAddr,
    requests: Vec<Vec<u8>>,
    shape: Shape,
) -> anyhow::Result<LoadResult> {
    if requests.is_empty() {
        bail!("no requests to rotate");
    }
    client_rt.block_on(inprocess(addr, requests, shape))
}

fn find_wrk() -> Option<PathBuf> {
    let out = Command::new("sh").args(["-c", "command -v wrk"]).output().ok()?;
    let path = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
}

/// The bytes of one GET, sent unchanged on every iteration.
pub fn request(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut r = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\n");
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    r.into_bytes()
}

/// One answer's framing, found in the connection's read buffer.
pub(crate) struct Framed {
    pub status: u16,
    pub head_len: usize,
    pub body_len: usize,
    pub keep_alive: bool,
}

/// Reads until one whole response is in `buf` (which may already hold some of it).
pub(crate) async fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<Framed> {
    let head_len = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            bail!("response head larger than 64 KiB");
        }
        fill(s, buf).await?;
    };
    let head = std::str::from_utf8(&buf[..head_len]).context("response head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let mut body_len = None;
    let mut keep_alive = status_line.starts_with("HTTP/1.1");
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("content-length") {
            body_len = Some(v.parse::<usize>().context("bad content-length")?);
        } else if k.eq_ignore_ascii_case("connection") {
            keep_alive = !v.eq_ignore_ascii_case("close");
        } else if k.eq_ignore_ascii_case("transfer-encoding") {
            bail!("chunked responses are not supported by the bench client");
        }
    }
    let body_len = match body_len {
        Some(n) => n,
        // No body, so no length: 204 No Content (a logout) and 304.
        None if status == 204 || status == 304 => 0,
        None => bail!("response without content-length"),
    };
    while buf.len() < head_len + body_len {
        fill(s, buf).await?;
    }
    Ok(Framed {
        status,
        head_len,
        body_len,
        keep_alive,
    })
}

async fn fill(s: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<()> {
    buf.reserve(16 * 1024);
    if s.read_buf(buf).await? == 0 {
        bail!("connection closed mid-response");
    }
    Ok(())
}

/// One request on a fresh connection: status and body. Used to capture the whoami body.
pub async fn get_once(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(&request(addr, path, headers)).await?;
    let mut buf = Vec::new();
    let f = read_response(&mut s, &mut buf).await?;
    Ok((f.status, buf[f.head_len..f.head_len + f.body_len].to_vec()))
}

#[derive(Default)]
struct Counters {
    ok: AtomicU64,
    non200: AtomicU64,
    io_errors: AtomicU64,
    bad_status: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.ok.load(Ordering::Relaxed),
            self.non200.load(Ordering::Relaxed),
            self.io_errors.load(Ordering::Relaxed),
        )
    }
}

async fn worker(
    addr: SocketAddr,
    reqs: Arc<Vec<Vec<u8>>>,
    mut next: usize,
    c: Arc<Counters>,
    stop: Arc<AtomicBool>,
    measuring: Arc<AtomicBool>,
) -> Vec<u32> {
    let mut latencies_us = Vec::new();
    let mut buf = Vec::with_capacity(16 * 1024);
    'connect: while !stop.load(Ordering::Relaxed) {
        let mut s = match TcpStream::connect(addr).await {
            Ok(s) => s,
            Err(_) => {
                c.io_errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = s.set_nodelay(true);
        buf.clear();
        while !stop.load(Ordering::Relaxed) {
            let req = &reqs[next % reqs.len()];
            next = next.wrapping_add(1);
            let sent = Instant::now();
            if s.write_all(req).await.is_err() {
                c.io_errors.fetch_add(1, Ordering::Relaxed);
                continue 'connect;
            }
            match read_response(&mut s, &mut buf).await {
                Ok(f) => {
                    if measuring.load(Ordering::Relaxed) {
                        latencies_us.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    }
                    if f.status == 200 {
                        c.ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        c.non200.fetch_add(1, Ordering::Relaxed);
                        let _ = c.bad_status.compare_exchange(
                            0,
                            f.status.into(),
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                        );
                    }
                    buf.drain(..f.head_len + f.body_len);
                    if !f.keep_alive {
                        continue 'connect;
                    }
                }
                Err(_) => {
                    c.io_errors.fetch_add(1, Ordering::Relaxed);
                    continue 'connect;
                }
            }
        }
    }
    latencies_us
}

/// The `q` quantile (0..=1) of sorted latencies, in ms.
fn quantile_ms(sorted_us: &[u32], q: f64) -> Option<f64> {
    if sorted_us.is_empty() {
        return None;
    }
    let i = ((sorted_us.len() - 1) as f64 * q).round() as usize;
    Some(sorted_us[i] as f64 / 1000.0)
}

async fn inprocess(addr: SocketAddr, reqs: Vec<Vec<u8>>, shape: Shape) -> anyhow::Result<LoadResult> {
    let Shape {
        concurrency,
        warmup,
        duration,
    } = shape;
    let stride = (reqs.len() / concurrency).max(1);
    let reqs = Arc::new(reqs);
    let c = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..concurrency)
        .map(|i| {
            tokio::spawn(worker(
                addr,
                reqs.clone(),
                i * stride,
                c.clone(),
                stop.clone(),
                measuring.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(warmup).await;
    let (ok0, bad0, err0) = c.snapshot();
    measuring.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep(duration).await;
    let (ok1, bad1, err1) = c.snapshot();
    measuring.store(false, Ordering::Relaxed);
    let secs = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for w in workers {
        // A worker stuck on a dead connection is cut off rather than waited for.
        if let Ok(Ok(l)) = tokio::time::timeout(Duration::from_secs(5), w).await {
            latencies.extend(l);
        }
    }
    latencies.sort_unstable();
    let bad = c.bad_status.load(Ordering::Relaxed);
    Ok(LoadResult {
        ok: ok1 - ok0,
        non200: bad1 - bad0,
        io_errors: err1 - err0,
        secs,
        rps: (ok1 - ok0) as f64 / secs,
        bad_status: (bad != 0).then_some(bad as u16),
        p50_ms: quantile_ms(&latencies, 0.50),
        p99_ms: quantile_ms(&latencies, 0.99),
    })
}

fn wrk(
    bin: &PathBuf,
    url: &str,
    headers: &[(&str, &str)],
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<LoadResult> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .min(concurrency);
    let secs = duration.as_secs_f64().ceil().max(1.0) as u64;
    let mut cmd = Command::new(bin);
    cmd.arg(format!("-t{threads}"))
        .arg(format!("-c{concurrency}"))
        .arg(format!("-d{secs}s"))
        .arg("--timeout")
        .arg("5s");
    for (k, v) in headers {
        cmd.arg("-H").arg(format!("{k}: {v}"));
    }
    let out = cmd.arg(url).output().context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("wrk failed: {}{}", text, String::from_utf8_lossy(&out.stderr));
    }
    parse_wrk(&text).with_context(|| format!("unexpected wrk output:\n{text}"))
}

/// Reads `N requests in 5.00s`, `Non-2xx or 3xx responses: N`, `Socket errors: …` and `Requests/sec:`.
fn parse_wrk(text: &str) -> anyhow::Result<LoadResult> {
    let mut total = None;
    let mut secs = None;
    let mut non2xx = 0;
    let mut io_errors = 0;
    let mut rps_line = None;
    for line in text.lines().map(str::trim) {
        if let Some((n, rest)) = line.split_once(" requests in ") {
            total = n.trim().parse::<u64>().ok();
            let d = rest.split(',').next().unwrap_or_default().trim();
            secs = parse_wrk_duration(d);
        } else if let Some(n) = line.strip_prefix("Non-2xx or 3xx responses:") {
            non2xx = n.trim().parse().unwrap_or(0);
        } else if let Some(errs) = line.strip_prefix("Socket errors:") {
            io_errors = errs
                .split(',')
                .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
                .sum();
        } else if let Some(r) = line.strip_prefix("Requests/sec:") {
            rps_line = r.trim().parse::<f64>().ok();
        }
    }
    let total = total.context("no request count")?;
    let ok = total.saturating_sub(non2xx);
    let rps = match (secs, rps_line) {
        (Some(s), _) if s > 0.0 => ok as f64 / s,
        (_, Some(r)) if total > 0 => r * ok as f64 / total as f64,
        _ => bail!("no duration and no Requests/sec"),
    };
    Ok(LoadResult {
        ok,
        non200: non2xx,
        io_errors,
        secs: secs.unwrap_or(0.0),
        rps,
        bad_status: None,
        p50_ms: None,
        p99_ms: None,
    })
}

fn parse_wrk_duration(d: &str) -> Option<f64> {
    let (num, mult) = if let Some(n) = d.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = d.strip_suffix("us") {
        (n, 0.000_001)
    } else if let Some(n) = d.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = d.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = d.strip_suffix('h') {
        (n, 3600.0)
    } else {
        return None;
    };
    num.trim().parse::<f64>().ok().map(|v| v * mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk_output() {
        let out = "Running 5s test @ http://127.0.0.1:1/sessions/whoami
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.00ms  200.00us   5.00ms   90.00%
    Req/Sec     8.00k   500.00     9.00k    70.00%
  80000 requests in 5.00s, 100.00MB read
  Non-2xx or 3xx responses: 10
  Socket errors: connect 1, read 2, write 0, timeout 3
Requests/sec:  16000.00
Transfer/sec:     20.00MB
";
        let r = parse_wrk(out).unwrap();
        assert_eq!((r.ok, r.non200, r.io_errors), (79_990, 10, 6));
        assert_eq!(r.secs, 5.0);
        assert_eq!(r.rps, 79_990.0 / 5.0);
        assert_eq!(parse_wrk_duration("1.00m"), Some(60.0));
    }
}
