//! Section 3: the release binary from spawn to `GET /health/ready` = 200, its idle RSS, and a clean exit
//! on SIGTERM. A migrated file SQLite database and a YAML kratos.yml in a temp dir; ports picked free.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::Params;
use crate::server::{COOKIE_SECRET, schema_url, sqlite_dsn};

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(5);

pub struct StartupRun {
    pub ready_ms: f64,
    pub rss_mib: f64,
    /// Exit code after SIGTERM; None when it did not exit in time (then it was killed) or died by signal.
    pub exit_code: Option<i32>,
    pub exit_ms: f64,
}

pub struct StartupResult {
    pub binary: PathBuf,
    pub binary_note: String,
    pub runs: Vec<StartupRun>,
}

pub fn run(p: &Params) -> anyhow::Result<StartupResult> {
    let (binary, binary_note) = binary(p.rebuild)?;
    let dir = tempfile::tempdir()?;
    let dsn = sqlite_dsn(dir.path());
    let mut runs = vec![];
    for i in 0..p.startup_runs {
        let (public, admin) = (free_port()?, free_port()?);
        let cfg = dir.path().join("kratos.yml");
        std::fs::write(&cfg, kratos_yml(&dsn, public, admin)).context("writing kratos.yml")?;
        // Not timed; applies everything on the first run and nothing afterwards.
        let out = Command::new(&binary)
            .args(["migrate", "sql", "-e", "--yes", "-c"])
            .arg(&cfg)
            .output()
            .context("running `sallyport migrate sql`")?;
        if !out.status.success() {
            bail!(
                "`sallyport migrate sql -e --yes` failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let log = dir.path().join(format!("serve-{i}.log"));
        let r = one_start(&binary, &cfg, &log, public, p.idle)
            .with_context(|| format!("startup run {}; server log:\n{}", i + 1, tail(&log)))?;
        eprintln!(
            "[startup] run {}: ready in {:.1} ms, idle RSS {:.1} MiB, exit {:?} after {:.0} ms",
            i + 1,
            r.ready_ms,
            r.rss_mib,
            r.exit_code,
            r.exit_ms
        );
        runs.push(r);
    }
    Ok(StartupResult {
        binary,
        binary_note,
        runs,
    })
}

fn one_start(
    binary: &Path,
    cfg: &Path,
    log: &Path,
    public: u16,
    idle: Duration,
) -> anyhow::Result<StartupRun> {
    let log_file = std::fs::File::create(log)?;
    let t0 = Instant::now();
    let mut child = Command::new(binary)
        .args(["serve", "-c"])
        .arg(cfg)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()
        .context("spawning `sallyport serve`")?;
    let ready = wait_ready(&mut child, public, t0);
    let ready_ms = match ready {
        Ok(d) => d.as_secs_f64() * 1000.0,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    std::thread::sleep(idle);
    let rss_mib = match vm_rss_kib(child.id()) {
        Ok(k) => k as f64 / 1024.0,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    let (exit_code, exit_ms) = terminate(&mut child)?;
    Ok(StartupRun {
        ready_ms,
        rss_mib,
        exit_code,
        exit_ms,
    })
}

pub(crate) fn wait_ready(child: &mut Child, port: u16, t0: Instant) -> anyhow::Result<Duration> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    loop {
        if let Some(st) = child.try_wait()? {
            bail!("`sallyport serve` exited before it was ready: {st}");
        }
        if health_ready(addr) {
            return Ok(t0.elapsed());
        }
        if t0.elapsed() > READY_TIMEOUT {
            bail!("not ready after {READY_TIMEOUT:?}");
        }
        std::thread::sleep(POLL);
    }
}

/// `GET /health/ready` answered 200.
fn health_ready(addr: SocketAddr) -> bool {
    let Some(mut s) = send_get(addr, "/health/ready", Duration::from_secs(2)) else {
        return false;
    };
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && &head[9..12] == b"200"
}

/// A connection to `addr` (given 200 ms to open) that has sent `GET path` and will close after the
/// answer, read with `read_timeout`; `None` when it could not be opened or sent.
pub(crate) fn send_get(addr: SocketAddr, path: &str, read_timeout: Duration) -> Option<TcpStream> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    s.set_read_timeout(Some(read_timeout)).ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    Some(s)
}

/// SIGTERM through `kill`, then up to 10 s for the exit. Returns the exit code and how long it took.
pub(crate) fn terminate(child: &mut Child) -> anyhow::Result<(Option<i32>, f64)> {
    let t0 = Instant::now();
    let st = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .context("running kill -TERM")?;
    if !st.success() {
        let _ = child.kill();
        let _ = child.wait();
        bail!("kill -TERM failed: {st}");
    }
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok((st.code(), t0.elapsed().as_secs_f64() * 1000.0));
        }
        if t0.elapsed() > EXIT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Ok((None, t0.elapsed().as_secs_f64() * 1000.0));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub(crate) fn vm_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading /proc/<pid>/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc/<pid>/status")
}

/// `sallyport serve` on free ports with [`kratos_yml`] for `dsn`, its config and log as `<name>.yml` and
/// `<name>.log` in `dir`: the child, its public port and the log's path.
pub(crate) fn spawn_serve(
    bin: &Path,
    dir: &Path,
    name: &str,
    dsn: &str,
) -> anyhow::Result<(Child, u16, PathBuf)> {
    spawn_serve_with_admin(bin, dir, name, dsn).map(|(child, public, _, log)| (child, public, log))
}

/// [`spawn_serve`], also answering the admin port.
pub(crate) fn spawn_serve_with_admin(
    bin: &Path,
    dir: &Path,
    name: &str,
    dsn: &str,
) -> anyhow::Result<(Child, u16, u16, PathBuf)> {
    let (public, admin) = (free_port()?, free_port()?);
    let cfg = dir.join(format!("{name}.yml"));
    std::fs::write(&cfg, kratos_yml(dsn, public, admin)).context("writing the config")?;
    let log = dir.join(format!("{name}.log"));
    let log_file = std::fs::File::create(&log)?;
    let child = Command::new(bin)
        .args(["serve", "-c"])
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()
        .context("spawning `sallyport serve`")?;
    Ok((child, public, admin, log))
}

/// Binds port 0 and lets go; the port stays free until the server takes it.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// YAML scalars are written as JSON strings, which YAML reads as double-quoted strings.
fn q(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialize")
}

pub(crate) fn kratos_yml(dsn: &str, public: u16, admin: u16) -> String {
    let public_url = format!("http://127.0.0.1:{public}/");
    let admin_url = format!("http://127.0.0.1:{admin}/");
    format!(
        r#"dsn: {dsn}
serve:
  public:
    host: 127.0.0.1
    port: {public}
    base_url: {public_url}
  admin:
    host: 127.0.0.1
    port: {admin}
    base_url: {admin_url}
selfservice:
  default_browser_return_url: "http://app.test/welcome"
  allowed_return_urls:
    - "http://app.test/"
  methods:
    password:
      enabled: true
  flows:
    login:
      ui_url: "http://ui.test/login"
    registration:
      ui_url: "http://ui.test/registration"
    settings:
      ui_url: "http://ui.test/settings"
    error:
      ui_url: "http://ui.test/error"
identity:
  default_schema_id: default
  schemas:
    - id: default
      url: {schema}
secrets:
  cookie:
    - {secret}
log:
  level: info
"#,
        dsn = q(dsn),
        public_url = q(&public_url),
        admin_url = q(&admin_url),
        schema = q(&schema_url()),
        secret = q(COOKIE_SECRET),
    )
}

/// `target/release/sallyport` next to this binary's target dir; built with cargo when missing.
pub(crate) fn binary(rebuild: bool) -> anyhow::Result<(PathBuf, String)> {
    let exe = std::env::current_exe()?;
    // target/<profile>/sallyport-bench → target
    let target = exe
        .parent()
        .and_then(Path::parent)
        .context("locating the target dir")?;
    let bin = target.join("release").join("sallyport");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let note = if rebuild || !bin.exists() {
        eprintln!("[startup] cargo build --release -p sallyport --bin sallyport");
        let st = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "-p", "sallyport", "--bin", "sallyport"])
            .env("CARGO_TARGET_DIR", target)
            .current_dir(&workspace)
            .status()
            .context("running cargo build")?;
        if !st.success() {
            bail!("cargo build --release -p sallyport failed: {st}");
        }
        "built by this run".to_owned()
    } else {
        let age = std::fs::metadata(&bin)?
            .modified()?
            .elapsed()
            .map(|d| d.as_secs())
            .unwrap_or(0);
        format!("existing build, {} min old; --rebuild to rebuild", age / 60)
    };
    Ok((bin, note))
}

/// The last lines of the server's log, for error messages.
pub(crate) fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
