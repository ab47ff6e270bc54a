//! Section 4: passwordless login by code on a file SQLite store, over HTTP with no courier running
//! (every code stays queued in the store).
//!
//! (a) send-code throughput: closed-loop clients each create a native login flow
//!     (`GET /self-service/login/api`) and ask for a code (`POST /self-service/login?flow=…`
//!     `{"method":"code","identifier":…}`), which answers 400 with `state: sent_email` — success.
//!     Completed pairs per second over a fixed window, after a warm-up.
//! (b) verify throughput: flows in `sent_email` state are prepared untimed, their codes read from the
//!     queued courier messages in the store; then the code submissions alone are timed, each of which
//!     must answer 200 with a session and a session token.
//!
//! The rate limits are on, with budgets too large to reach, so their counters are part of the cost.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio::task::{JoinHandle, JoinSet};
use uuid::Uuid;

use sallyport_core::courier::MessageQuery;
use sallyport_core::identity::{Identity, credential_type};
use sallyport_core::store::Store;
use sallyport_core::time_fmt;

use crate::Params;
use crate::loadgen::{read_response, request};
use crate::server::{Prepared, base64_url, sqlite_dsn};

/// Email is a code identifier (and a password identifier, unused here): the integration tests' fixture.
pub const CODE_SCHEMA_JSON: &str = include_str!("../../sallyport/tests/fixtures/code-email.schema.json");
const LOGIN_API: &str = "/self-service/login/api";
/// Requests per second each phase should reach.
pub const TARGET_RPS: f64 = 2000.0;
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// What one timed phase counted.
#[derive(Debug, Clone, Default)]
pub struct Phase {
    /// Successful operations: send-code pairs in (a), logins in (b).
    pub ok: u64,
    /// Answers that were not what success looks like.
    pub failed: u64,
    pub io_errors: u64,
    pub secs: f64,
    /// `ok` per second.
    pub rps: f64,
    /// The first failure, status and body excerpt.
    pub first_failure: Option<String>,
    /// Mean milliseconds of the flow-creating GET (phase a only) and of the POST.
    pub get_ms: Option<f64>,
    pub post_ms: f64,
    /// CPU time of the whole bench process (server, its database threads and the client) per
    /// successful operation over the timed window, in ms. Other processes on the cores still move
    /// it (context switches and caches cost more under contention), so compare it only between
    /// runs interleaved in the same machine state.
    pub cpu_ms: Option<f64>,
}

impl Phase {
    pub fn errors(&self) -> u64 {
        self.failed + self.io_errors
    }
}

pub struct CodeResult {
    pub identities: usize,
    pub seed_secs: f64,
    pub concurrency: usize,
    pub send: Phase,
    pub flows: usize,
    pub prep_secs: f64,
    pub verify: Phase,
}

pub fn run(
    p: &Params,
    server_rt: &Runtime,
    client_rt: &Runtime,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
) -> anyhow::Result<CodeResult> {
    let dir = tempfile::tempdir()?;
    let dsn = sqlite_dsn(dir.path());
    let n = p.code_identities;
    eprintln!(
        "[code] seeding {n} identities with a code credential into {}",
        dir.path().display()
    );
    let (server, store, emails, seed_secs) = server_rt.block_on(async {
        let prepared = Prepared::with_config(
            &dsn,
            json!({"algorithm": "bcrypt", "bcrypt": {"cost": 12}}),
            |cfg| {
                cfg["selfservice"]["methods"]["code"] =
                    json!({"enabled": true, "passwordless_enabled": true});
                cfg["identity"]["schemas"][0]["url"] = json!(base64_url(CODE_SCHEMA_JSON));
                // Thousands of codes to a few thousand addresses would spend the default budgets at
                // once; with budgets too large to reach, every request still pays for its counters.
                let huge = json!({"limit": 1_000_000_000u64, "window": "1h"});
                cfg["sallyport"] = json!({"rate_limits": {
                    "codes_sent_per_address": huge,
                    "code_guesses_per_identity": huge,
                }});
            },
        )
        .await?;
        if !prepared.settings.code.passwordless_enabled {
            bail!("the code method is not enabled in the bench config");
        }
        let store = prepared.store.clone();
        let t0 = Instant::now();
        let emails = seed(&store, n).await?;
        let seed_secs = t0.elapsed().as_secs_f64();
        let server = prepared.start(metrics).await?;
        anyhow::Ok((server, store, Arc::new(emails), seed_secs))
    })?;
    eprintln!("[code] seeded in {seed_secs:.1} s");

    let measured = (|| {
        eprintln!(
            "[code] send-code: {} connections, {:.1} s warm-up + {:.1} s",
            p.concurrency,
            p.warmup.as_secs_f64(),
            p.duration.as_secs_f64()
        );
        let send = client_rt.block_on(send_phase(
            server.public,
            emails.clone(),
            p.concurrency,
            p.warmup,
            p.duration,
        ));
        eprintln!(
            "[code] preparing {} flows in sent_email state (codes read from the queued messages)",
            p.code_flows
        );
        let t0 = Instant::now();
        let ready = server_rt.block_on(prepare(
            server.public,
            store.clone(),
            emails.clone(),
            p.code_flows,
            p.concurrency,
        ))?;
        let prep_secs = t0.elapsed().as_secs_f64();
        eprintln!(
            "[code] prepared in {prep_secs:.1} s; verify: {} submissions on {} connections",
            ready.len(),
            p.concurrency
        );
        let verify = client_rt.block_on(verify_phase(server.public, ready, p.concurrency));
        anyhow::Ok((send, prep_secs, verify))
    })();
    server_rt.block_on(server.stop())?;
    drop(store);
    drop(dir);
    let (send, prep_secs, verify) = measured?;
    Ok(CodeResult {
        identities: n,
        seed_secs,
        concurrency: p.concurrency,
        send,
        flows: p.code_flows,
        prep_secs,
        verify,
    })
}

fn email(i: usize) -> String {
    format!("code{i:07}@example.org")
}

/// Identities whose email is their code identifier (as `apply_traits` derives it from the schema),
/// with the address already verified: the steady state of repeat logins, where a login writes no
/// identity. Inserted through the store API, a few at a time.
async fn seed(store: &Arc<dyn Store>, n: usize) -> anyhow::Result<Vec<String>> {
    let now = time_fmt::now();
    let emails: Vec<String> = (0..n).map(email).collect();
    let mut inserts = JoinSet::new();
    for e in &emails {
        let mut ident = Identity::new("default", json!({"email": e}), now);
        ident.set_credential(
            credential_type::CODE,
            vec![e.clone()],
            json!({"addresses": [{"channel": "email", "address": e}]}),
            now,
        );
        let addr = [("email".to_owned(), e.clone())];
        ident.merge_verifiable_addresses(&addr, now);
        for a in &mut ident.verifiable_addresses {
            a.verified = true;
            a.verified_at = Some(now);
            a.status = "completed".into();
        }
        ident.merge_recovery_addresses(&addr, now);
        ident.available_aal = ident.compute_available_aal(false);
        let store = store.clone();
        inserts.spawn(async move { store.create_identity(&ident, None).await });
        if inserts.len() >= 32 {
            join_one(&mut inserts).await?;
        }
    }
    while !inserts.is_empty() {
        join_one(&mut inserts).await?;
    }
    Ok(emails)
}

async fn join_one(set: &mut JoinSet<sallyport_core::store::StoreResult<()>>) -> anyhow::Result<()> {
    if let Some(r) = set.join_next().await {
        r?.map_err(|e| anyhow::anyhow!("create_identity: {e}"))?;
    }
    Ok(())
}

/// One keep-alive HTTP/1.1 connection sending pre-encoded requests, reconnecting after an error.
struct Conn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    /// Length of the previous answer, still at the front of `buf`.
    consumed: usize,
}

impl Conn {
    fn new(addr: SocketAddr) -> Conn {
        Conn {
            addr,
            stream: None,
            buf: Vec::with_capacity(16 * 1024),
            consumed: 0,
        }
    }

    /// Status and body of the answer to `req`.
    async fn call(&mut self, req: &[u8]) -> anyhow::Result<(u16, &[u8])> {
        self.buf.drain(..self.consumed);
        self.consumed = 0;
        if self.stream.is_none() {
            let s = TcpStream::connect(self.addr).await?;
            s.set_nodelay(true)?;
            self.stream = Some(s);
            self.buf.clear();
        }
        let Conn { stream, buf, .. } = self;
        let s = stream.as_mut().context("no connection")?;
        let r = tokio::time::timeout(CALL_TIMEOUT, async {
            s.write_all(req).await?;
            read_response(s, buf).await
        })
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within {CALL_TIMEOUT:?}")));
        match r {
            Ok(f) => {
                if !f.keep_alive {
                    self.stream = None;
                }
                self.consumed = f.head_len + f.body_len;
                Ok((f.status, &self.buf[f.head_len..self.consumed]))
            }
            Err(e) => {
                self.stream = None;
                self.buf.clear();
                Err(e)
            }
        }
    }
}

fn post_json(addr: SocketAddr, path: &str, body: &serde_json::Value) -> Vec<u8> {
    let body = body.to_string();
    format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn excerpt(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let mut out: String = s.chars().take(300).collect();
    if s.chars().count() > 300 {
        out.push('…');
    }
    out
}

#[derive(Deserialize)]
struct FlowId<'a> {
    id: &'a str,
}

#[derive(Deserialize)]
struct FlowStateOnly {
    state: Option<String>,
}

#[derive(Deserialize)]
struct LoggedIn {
    session_token: Option<String>,
    session: Option<serde::de::IgnoredAny>,
}

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    io_errors: AtomicU64,
    gets: AtomicU64,
    get_ns: AtomicU64,
    posts: AtomicU64,
    post_ns: AtomicU64,
    first_failure: Mutex<Option<String>>,
}

#[derive(Clone, Copy)]
struct Snapshot {
    ok: u64,
    failed: u64,
    io_errors: u64,
    gets: u64,
    get_ns: u64,
    posts: u64,
    post_ns: u64,
}

impl Tally {
    fn fail(&self, why: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_failure.lock().unwrap();
        if first.is_none() {
            *first = Some(why);
        }
    }

    fn timed(count: &AtomicU64, ns: &AtomicU64, since: Instant) {
        count.fetch_add(1, Ordering::Relaxed);
        ns.fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }

    fn snapshot(&self) -> Snapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Snapshot {
            ok: l(&self.ok),
            failed: l(&self.failed),
            io_errors: l(&self.io_errors),
            gets: l(&self.gets),
            get_ns: l(&self.get_ns),
            posts: l(&self.posts),
            post_ns: l(&self.post_ns),
        }
    }

    /// The phase between two snapshots.
    fn phase(&self, a: Snapshot, b: Snapshot, secs: f64, with_get: bool) -> Phase {
        let mean = |n: u64, ns: u64| {
            if n == 0 {
                f64::NAN
            } else {
                ns as f64 / n as f64 / 1e6
            }
        };
        Phase {
            ok: b.ok - a.ok,
            failed: b.failed - a.failed,
            io_errors: b.io_errors - a.io_errors,
            secs,
            rps: (b.ok - a.ok) as f64 / secs,
            first_failure: self.first_failure.lock().unwrap().clone(),
            get_ms: with_get.then(|| mean(b.gets - a.gets, b.get_ns - a.get_ns)),
            post_ms: mean(b.posts - a.posts, b.post_ns - a.post_ns),
            cpu_ms: None,
        }
    }
}

/// User + system CPU seconds of this process so far (`/proc/self/stat`, in the kernel's fixed
/// 100 Hz user ticks); None where that is not readable.
fn process_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces: state is the
    // 3rd field of the line, utime the 14th, stime the 15th.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

fn cpu_ms_per_op(before: Option<f64>, after: Option<f64>, ok: u64) -> Option<f64> {
    let (before, after) = (before?, after?);
    (ok > 0).then(|| (after - before) * 1000.0 / ok as f64)
}

/// A fresh native login flow, then a code sent to `email` on it. `Ok(Ok(flow id))` on success,
/// `Ok(Err(why))` when the server answered something else, `Err` on a transport error.
async fn send_code(
    c: &mut Conn,
    get: &[u8],
    email: &str,
    t: &Tally,
) -> anyhow::Result<Result<String, String>> {
    let t0 = Instant::now();
    let (st, body) = c.call(get).await?;
    Tally::timed(&t.gets, &t.get_ns, t0);
    if st != 200 {
        return Ok(Err(format!("GET {LOGIN_API} answered {st}: {}", excerpt(body))));
    }
    let flow_id = match serde_json::from_slice::<FlowId>(body) {
        Ok(f) => f.id.to_owned(),
        Err(e) => return Ok(Err(format!("login flow without id ({e}): {}", excerpt(body)))),
    };
    let req = post_json(
        c.addr,
        &format!("/self-service/login?flow={flow_id}"),
        &json!({"method": "code", "identifier": email}),
    );
    let t1 = Instant::now();
    let (st, body) = c.call(&req).await?;
    Tally::timed(&t.posts, &t.post_ns, t1);
    let state = serde_json::from_slice::<FlowStateOnly>(body)
        .ok()
        .and_then(|f| f.state);
    if st == 400 && state.as_deref() == Some("sent_email") {
        Ok(Ok(flow_id))
    } else {
        Ok(Err(format!(
            "send-code POST answered {st} with state {state:?} (want 400, sent_email): {}",
            excerpt(body)
        )))
    }
}

async fn send_worker(
    addr: SocketAddr,
    emails: Arc<Vec<String>>,
    next: Arc<AtomicUsize>,
    t: Arc<Tally>,
    stop: Arc<AtomicBool>,
) {
    let mut c = Conn::new(addr);
    let get = request(addr, LOGIN_API, &[]);
    while !stop.load(Ordering::Relaxed) {
        let email = &emails[next.fetch_add(1, Ordering::Relaxed) % emails.len()];
        match send_code(&mut c, &get, email, &t).await {
            Ok(Ok(_)) => {
                t.ok.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(why)) => t.fail(why),
            Err(_) => {
                t.io_errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Stops `workers`, cutting off any that does not finish within 5 s.
async fn finish(workers: Vec<JoinHandle<()>>) {
    for w in workers {
        let abort = w.abort_handle();
        if tokio::time::timeout(Duration::from_secs(5), w).await.is_err() {
            abort.abort();
        }
    }
}

async fn send_phase(
    addr: SocketAddr,
    emails: Arc<Vec<String>>,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
) -> Phase {
    let t = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            tokio::spawn(send_worker(
                addr,
                emails.clone(),
                next.clone(),
                t.clone(),
                stop.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(warmup).await;
    let a = t.snapshot();
    let cpu0 = process_cpu_secs();
    let t0 = Instant::now();
    tokio::time::sleep(duration).await;
    let b = t.snapshot();
    let cpu1 = process_cpu_secs();
    let secs = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    finish(workers).await;
    let mut phase = t.phase(a, b, secs, true);
    phase.cpu_ms = cpu_ms_per_op(cpu0, cpu1, phase.ok);
    phase
}

/// The 6-digit code in a message body: the first run of exactly six ASCII digits.
fn code_in(body: &str) -> Option<&str> {
    let b = body.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i - start == 6 {
                return body.get(start..i);
            }
        } else {
            i += 1;
        }
    }
    None
}

/// `flows` login flows in `sent_email` state, as pre-encoded code submissions. Flow `j` belongs to
/// identity `j % identities`; each identity's flows are prepared one after another by the same task, so
/// the newest queued message to its address is always the code of the flow just prepared.
async fn prepare(
    addr: SocketAddr,
    store: Arc<dyn Store>,
    emails: Arc<Vec<String>>,
    flows: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<Vec<u8>>> {
    let n = emails.len();
    let tasks = concurrency.min(n).max(1);
    let mut set = JoinSet::new();
    for w in 0..tasks {
        let (store, emails) = (store.clone(), emails.clone());
        set.spawn(async move {
            let mut out = vec![];
            let mut c = Conn::new(addr);
            let get = request(addr, LOGIN_API, &[]);
            let t = Tally::default();
            for i in (w..n.min(flows)).step_by(tasks) {
                let email = &emails[i];
                let mut previous: Option<Uuid> = None;
                for _ in (i..flows).step_by(n) {
                    let flow_id = send_code(&mut c, &get, email, &t)
                        .await
                        .context("preparing a flow")?
                        .map_err(|why| anyhow::anyhow!("preparing a flow: {why}"))?;
                    let q = MessageQuery {
                        recipient: Some(email.clone()),
                        limit: 1,
                        ..MessageQuery::default()
                    };
                    let msgs = store
                        .list_messages(&q)
                        .await
                        .map_err(|e| anyhow::anyhow!("list_messages: {e}"))?;
                    let m = msgs
                        .first()
                        .with_context(|| format!("no queued message to {email}"))?;
                    if Some(m.id) == previous || m.template_type != "login_code_valid" {
                        bail!(
                            "the newest message to {email} is not a new login code ({})",
                            m.template_type
                        );
                    }
                    previous = Some(m.id);
                    let code = code_in(&m.body)
                        .with_context(|| format!("no 6-digit code in the message body {:?}", m.body))?;
                    out.push(post_json(
                        addr,
                        &format!("/self-service/login?flow={flow_id}"),
                        &json!({"method": "code", "identifier": email, "code": code}),
                    ));
                }
            }
            anyhow::Ok(out)
        });
    }
    let mut all = Vec::with_capacity(flows);
    while let Some(r) = set.join_next().await {
        all.extend(r??);
    }
    if all.len() != flows {
        bail!("prepared {} flows, wanted {flows}", all.len());
    }
    // Interleave identities, as real traffic would.
    all.sort_by_cached_key(|r| {
        r.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        })
    });
    Ok(all)
}

async fn verify_worker(addr: SocketAddr, reqs: Arc<Vec<Vec<u8>>>, next: Arc<AtomicUsize>, t: Arc<Tally>) {
    let mut c = Conn::new(addr);
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(req) = reqs.get(i) else {
            break;
        };
        let t0 = Instant::now();
        match c.call(req).await {
            Ok((st, body)) => {
                Tally::timed(&t.posts, &t.post_ns, t0);
                let got = serde_json::from_slice::<LoggedIn>(body).ok();
                let ok = st == 200
                    && got
                        .as_ref()
                        .is_some_and(|g| g.session.is_some() && g.session_token.is_some());
                if ok {
                    t.ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    t.fail(format!(
                        "code POST answered {st} (want 200 with session and session_token): {}",
                        excerpt(body)
                    ));
                }
            }
            Err(_) => {
                t.io_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

async fn verify_phase(addr: SocketAddr, reqs: Vec<Vec<u8>>, concurrency: usize) -> Phase {
    let reqs = Arc::new(reqs);
    let t = Arc::new(Tally::default());
    let next = Arc::new(AtomicUsize::new(0));
    let a = t.snapshot();
    let cpu0 = process_cpu_secs();
    let t0 = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| tokio::spawn(verify_worker(addr, reqs.clone(), next.clone(), t.clone())))
        .collect();
    for w in workers {
        let _ = w.await;
    }
    let secs = t0.elapsed().as_secs_f64();
    let b = t.snapshot();
    let cpu1 = process_cpu_secs();
    let mut phase = t.phase(a, b, secs, false);
    phase.cpu_ms = cpu_ms_per_op(cpu0, cpu1, phase.ok);
    phase
}

#[cfg(test)]
mod tests {
    use super::code_in;

    #[test]
    fn finds_the_code() {
        let body = "Login to your account with the following code:\n\n042137\n\nIt expires in 15 minutes.\n";
        assert_eq!(code_in(body), Some("042137"));
        assert_eq!(code_in("in 1234567 or 12 then 654321."), Some("654321"));
        assert_eq!(code_in("no code, 15 minutes"), None);
    }

    #[test]
    fn reads_this_process_cpu_time() {
        let before = super::process_cpu_secs().expect("cpu time");
        let mut x = 0u64;
        let t0 = std::time::Instant::now();
        while t0.elapsed() < std::time::Duration::from_millis(60) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        let after = super::process_cpu_secs().expect("cpu time");
        assert!(after >= before + 0.02, "{before} -> {after} ({x})");
    }
}
