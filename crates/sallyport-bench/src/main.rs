//! `cargo run --release -p sallyport-bench [-- --quick]`: measures Sallyport and, in the same run, a baseline
//! for each number, and prints both with their ratio.
//!
//! 1. `GET /sessions/whoami` throughput against a bare axum server answering the same bytes;
//! 2. password login latency against a raw bcrypt verification of the same hash;
//! 3. time to ready, idle RSS and SIGTERM exit of the release binary (no baseline, reported as is);
//! 4. passwordless code login on SQLite: send-code and code-verify requests per second (target 2,000/s each);
//! 5. courier: queued emails delivered per second over SMTP to a loopback sink (reported as is);
//! 6. rate limits: password logins and whoami per second with the limiter off, on (defaults) and on
//!    with per-IP budgets, interleaved in the same run; the ratio is on/off;
//! 7. `import kratos` PostgreSQL → PostgreSQL: identities per second against its own `--dry-run` (needs
//!    `SALLYPORT_BENCH_POSTGRES_DSN` or `TEST_POSTGRES_DSN`; not in the default set).
//! 8. memory: RSS of the release binary idle and after whoami rotating over 100,000 sessions (anonymous
//!    and file-backed apart), and with `--soak 10m` the RSS slope under that load;
//! 9. identity import with pre-hashed passwords (`--only import-identities`): identities per second
//!    through `PATCH /admin/identities` and `sallyport import identities` on SQLite (and PostgreSQL
//!    when a DSN is set) against the store's own `create_identities` of the same identities.
//! 10. PostgreSQL whoami against the same baseline, and how long after a logout on one node another
//!     node (a second `sallyport serve` on the same database) still accepts the session (needs
//!     `SALLYPORT_BENCH_POSTGRES_DSN` or `TEST_POSTGRES_DSN`; not in the default set);
//! 11. `--only scale`: login and whoami latency (p50/p99) on 10 M identities and 1 M sessions against
//!     a 1,000-identity store, with the hot queries' plans checked for index use (builds the large
//!     store once and keeps it under target/bench-scale or as a PostgreSQL database; `--scale-drop`
//!     removes it);
//!
//! Every duration and count has a flag and an environment variable; `--quick` shrinks them all for a smoke run.

mod code;
mod courier;
mod import;
mod import_identities;
mod import_reference;
mod loadgen;
mod login;
mod memory;
mod pgwhoami;
mod ratelimit;
mod report;
mod scale;
mod server;
mod startup;
mod whoami;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::report::Report;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Section {
    Whoami,
    Login,
    Startup,
    Code,
    Courier,
    Ratelimit,
    Import,
    Memory,
    ImportIdentities,
    /// Whoami on PostgreSQL and the cross-node refusal latency (needs a PostgreSQL DSN).
    PgWhoami,
    /// Login and whoami latency on a store of 10 M identities vs 1,000 (builds or reuses the large store).
    Scale,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LoadgenChoice {
    /// `wrk` when it is on PATH, else the in-process client.
    Auto,
    /// Always the in-process HTTP/1.1 client.
    Inproc,
    /// Always `wrk` (fails when it is missing).
    Wrk,
}

#[derive(Debug, Parser)]
#[command(
    name = "sallyport-bench",
    about = "Sallyport vs. same-run baselines: whoami, password login, startup, code login, courier, rate limits"
)]
struct Opts {
    /// Short run for a smoke test: small store, short durations, fewer repetitions.
    #[arg(long, env = "SALLYPORT_BENCH_QUICK")]
    quick: bool,
    /// Sections to run, comma-separated.
    #[arg(long, value_delimiter = ',', env = "SALLYPORT_BENCH_ONLY")]
    only: Vec<Section>,
    /// Identities seeded for whoami [full: 1000, quick: 20].
    #[arg(long, env = "SALLYPORT_BENCH_IDENTITIES")]
    identities: Option<usize>,
    /// Sessions per seeded identity [full: 100, quick: 50].
    #[arg(long, env = "SALLYPORT_BENCH_SESSIONS_PER_IDENTITY")]
    sessions_per_identity: Option<usize>,
    /// Concurrent keep-alive connections hammering whoami and code login [32].
    #[arg(long, env = "SALLYPORT_BENCH_CONCURRENCY")]
    concurrency: Option<usize>,
    /// Distinct sessions whoami rotates through, one per request [full: 10000, quick: 1000].
    #[arg(long, env = "SALLYPORT_BENCH_WHOAMI_SESSIONS")]
    whoami_sessions: Option<usize>,
    /// Keep-alive connections for whoami [64].
    #[arg(long, env = "SALLYPORT_BENCH_WHOAMI_CONNECTIONS")]
    whoami_connections: Option<usize>,
    /// Sessions seeded for the memory section, all rotated through [full: 100000, quick: 5000].
    #[arg(long, env = "SALLYPORT_BENCH_MEMORY_SESSIONS")]
    memory_sessions: Option<usize>,
    /// Whoami requests the memory section sends (at least; in 5 s rounds) [full: 1000000, quick: 50000].
    #[arg(long, env = "SALLYPORT_BENCH_MEMORY_REQUESTS")]
    memory_requests: Option<u64>,
    /// After the memory section's rounds, keep its whoami load on this long and report the RSS slope
    /// (e.g. 600, 10m) [off].
    #[arg(long, value_parser = memory::parse_duration, env = "SALLYPORT_BENCH_SOAK")]
    soak: Option<Duration>,
    /// Seconds between RSS samples during `--soak` [10].
    #[arg(long, env = "SALLYPORT_BENCH_SOAK_INTERVAL")]
    soak_interval: Option<f64>,
    /// Cross-node refusal trials in the pg-whoami section [full: 200, quick: 20].
    #[arg(long, env = "SALLYPORT_BENCH_REFUSAL_TRIALS")]
    refusal_trials: Option<usize>,
    /// Identities in the large store of the scale section [full: 10000000, quick: 20000].
    #[arg(long, env = "SALLYPORT_BENCH_SCALE_IDENTITIES")]
    scale_identities: Option<usize>,
    /// Sessions in the large store of the scale section [full: 1000000, quick: 2000].
    #[arg(long, env = "SALLYPORT_BENCH_SCALE_SESSIONS")]
    scale_sessions: Option<usize>,
    /// Backends the scale section builds and measures (PostgreSQL needs a DSN as for pg-whoami).
    #[arg(
        long,
        value_enum,
        default_value = "sqlite",
        env = "SALLYPORT_BENCH_SCALE_BACKEND"
    )]
    scale_backend: scale::ScaleBackend,
    /// Delete the large scale store after measuring instead of keeping it for the next run.
    #[arg(long, env = "SALLYPORT_BENCH_SCALE_DROP")]
    scale_drop: bool,
    /// Whoami and code send-code warm-up, seconds [full: 1, quick: 0.5].
    #[arg(long, env = "SALLYPORT_BENCH_WARMUP")]
    warmup: Option<f64>,
    /// Whoami and code send-code measured duration, seconds [full: 5, quick: 1.5].
    #[arg(long, env = "SALLYPORT_BENCH_DURATION")]
    duration: Option<f64>,
    /// Timed password logins (and raw verifications) [full: 7, quick: 3].
    #[arg(long, env = "SALLYPORT_BENCH_LOGIN_ROUNDS")]
    login_rounds: Option<usize>,
    /// Bcrypt cost for the login section (at least 12 outside dev mode) [12].
    #[arg(long, env = "SALLYPORT_BENCH_BCRYPT_COST")]
    bcrypt_cost: Option<u32>,
    /// Binary starts measured [full: 3, quick: 2].
    #[arg(long, env = "SALLYPORT_BENCH_STARTUP_RUNS")]
    startup_runs: Option<usize>,
    /// Idle time before reading RSS, seconds [full: 2, quick: 0.5].
    #[arg(long, env = "SALLYPORT_BENCH_IDLE")]
    idle: Option<f64>,
    /// Identities seeded for code login [full: 2000, quick: 200].
    #[arg(long, env = "SALLYPORT_BENCH_CODE_IDENTITIES")]
    code_identities: Option<usize>,
    /// Code-login flows prepared (untimed) and then verified (timed) [full: 4000, quick: 400].
    #[arg(long, env = "SALLYPORT_BENCH_CODE_FLOWS")]
    code_flows: Option<usize>,
    /// Messages queued and delivered in the courier section [full: 2000, quick: 200].
    #[arg(long, env = "SALLYPORT_BENCH_COURIER_MESSAGES")]
    courier_messages: Option<usize>,
    /// Identities in the Kratos database the import section copies [full: 50000, quick: 2000].
    #[arg(long, env = "SALLYPORT_BENCH_IMPORT_IDENTITIES")]
    import_identities: Option<usize>,
    /// Identities the identity-import section creates per measurement [full: 100000, quick: 3000].
    #[arg(long, env = "SALLYPORT_BENCH_BATCH_IMPORT_IDENTITIES")]
    batch_import_identities: Option<usize>,
    /// Load generator for whoami.
    #[arg(long, value_enum, default_value = "auto", env = "SALLYPORT_BENCH_LOADGEN")]
    loadgen: LoadgenChoice,
    /// Run `cargo build --release -p sallyport --bin sallyport` even when the binary exists.
    #[arg(long, env = "SALLYPORT_BENCH_REBUILD")]
    rebuild: bool,
}

/// The resolved knobs every section reads.
#[derive(Debug, Clone)]
pub struct Params {
    pub quick: bool,
    pub identities: usize,
    pub sessions_per_identity: usize,
    pub concurrency: usize,
    pub whoami_sessions: usize,
    pub whoami_connections: usize,
    pub memory_sessions: usize,
    pub memory_requests: u64,
    pub soak: Option<Duration>,
    pub soak_interval: Duration,
    pub refusal_trials: usize,
    pub scale_identities: usize,
    pub scale_sessions: usize,
    pub scale_backend: scale::ScaleBackend,
    pub scale_drop: bool,
    pub warmup: Duration,
    pub duration: Duration,
    pub login_rounds: usize,
    pub bcrypt_cost: u32,
    pub startup_runs: usize,
    pub idle: Duration,
    pub code_identities: usize,
    pub code_flows: usize,
    pub courier_messages: usize,
    pub import_identities: usize,
    pub batch_import_identities: usize,
    pub loadgen: LoadgenChoice,
    pub rebuild: bool,
}

impl Params {
    fn from(o: &Opts) -> Params {
        let q = o.quick;
        let pick = |v: Option<f64>, full: f64, quick: f64| {
            Duration::from_secs_f64(v.unwrap_or(if q { quick } else { full }).max(0.0))
        };
        Params {
            quick: q,
            identities: o.identities.unwrap_or(if q { 20 } else { 1000 }).max(1),
            sessions_per_identity: o.sessions_per_identity.unwrap_or(if q { 50 } else { 100 }).max(1),
            concurrency: o.concurrency.unwrap_or(32).max(1),
            whoami_sessions: o.whoami_sessions.unwrap_or(if q { 1000 } else { 10_000 }).max(1),
            whoami_connections: o.whoami_connections.unwrap_or(64).max(1),
            memory_sessions: o.memory_sessions.unwrap_or(if q { 5000 } else { 100_000 }).max(1),
            memory_requests: o
                .memory_requests
                .unwrap_or(if q { 50_000 } else { 1_000_000 })
                .max(1),
            soak: o.soak,
            soak_interval: Duration::from_secs_f64(o.soak_interval.unwrap_or(10.0).max(1.0)),
            refusal_trials: o.refusal_trials.unwrap_or(if q { 20 } else { 200 }).max(1),
            scale_identities: o
                .scale_identities
                .unwrap_or(if q { 20_000 } else { 10_000_000 })
                .max(1000),
            scale_sessions: o
                .scale_sessions
                .unwrap_or(if q { 2000 } else { 1_000_000 })
                .max(200),
            scale_backend: o.scale_backend,
            scale_drop: o.scale_drop,
            warmup: pick(o.warmup, 1.0, 0.5),
            duration: pick(o.duration, 5.0, 1.5).max(Duration::from_millis(100)),
            login_rounds: o.login_rounds.unwrap_or(if q { 3 } else { 7 }).max(1),
            bcrypt_cost: o.bcrypt_cost.unwrap_or(12),
            startup_runs: o.startup_runs.unwrap_or(if q { 2 } else { 3 }).max(1),
            idle: pick(o.idle, 2.0, 0.5),
            code_identities: o.code_identities.unwrap_or(if q { 200 } else { 2000 }).max(1),
            code_flows: o.code_flows.unwrap_or(if q { 400 } else { 4000 }).max(1),
            courier_messages: o.courier_messages.unwrap_or(if q { 200 } else { 2000 }).max(1),
            import_identities: o
                .import_identities
                .unwrap_or(if q { 2000 } else { 50_000 })
                .max(1),
            batch_import_identities: o
                .batch_import_identities
                .unwrap_or(if q { 3000 } else { 100_000 })
                .max(1),
            loadgen: o.loadgen,
            rebuild: o.rebuild,
        }
    }
}

fn main() -> ExitCode {
    // `serve`'s periodic trim of the heap, but not its arena limit (`process::limit_malloc_arenas`):
    // the load generators share this process, and two arenas for their allocations and the server's
    // together made the server wait on the client's arena locks (code send 2,150 -> 1,780/s), a
    // contention `serve` never has.
    sallyport::process::trim_malloc_periodically();
    let opts = Opts::parse();
    let p = Params::from(&opts);
    let sections = if opts.only.is_empty() {
        vec![
            Section::Whoami,
            Section::Login,
            Section::Startup,
            Section::Code,
            Section::Courier,
            Section::Ratelimit,
            Section::Memory,
        ]
    } else {
        opts.only.clone()
    };
    // Warnings and errors only: per-request events are debug and cost the same as under `serve`'s info filter.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_writer(std::io::stderr)
        .try_init();

    // The servers run on a multi-threaded runtime sized like `sallyport serve`'s; clients run on their
    // own single-threaded runtime on the main thread, so they share the machine but not the scheduler.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bench-server")
        .build()
        .expect("server runtime");
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    // `serve` records per-request metrics into a Prometheus recorder, drained by an upkeep task; so
    // does the in-process server here. Without the upkeep every request of a section stayed in the
    // recorder's buckets, and the sections after whoami measured a heap of millions of samples.
    let metrics = {
        let _g = server_rt.enter();
        sallyport::process::install_metrics()
    };

    let mut report = Report::new(&p);
    report.print_header();
    let mut failed = false;
    for s in sections {
        let outcome =
            match s {
                Section::Whoami => {
                    whoami::run(&p, &server_rt, &client_rt, metrics.clone()).map(|r| report.whoami(&p, r))
                }
                Section::Login => {
                    login::run(&p, &server_rt, &client_rt, metrics.clone()).map(|r| report.login(&p, r))
                }
                Section::Startup => startup::run(&p).map(|r| report.startup(&p, r)),
                Section::Code => {
                    code::run(&p, &server_rt, &client_rt, metrics.clone()).map(|r| report.code(&p, r))
                }
                Section::Courier => courier::run(&p, &server_rt).map(|r| report.courier(&p, r)),
                Section::Ratelimit => ratelimit::run(&p, &server_rt, &client_rt, metrics.clone())
                    .map(|r| report.ratelimit(&p, r)),
                Section::Import => import::run(&p, &server_rt).map(|r| report.import(&p, r)),
                Section::Memory => memory::run(&p, &server_rt, &client_rt).map(|r| report.memory(&p, r)),
                Section::ImportIdentities => {
                    import_identities::run(&p, &server_rt).map(|r| report.import_identities(&p, r))
                }
                Section::PgWhoami => pgwhoami::run(&p, &server_rt, &client_rt, metrics.clone())
                    .map(|r| report.pg_whoami(&p, r)),
                Section::Scale => scale::run(&p, &server_rt, &client_rt).map(|r| report.scale(&p, r)),
            };
        if let Err(e) = outcome {
            failed = true;
            report.error(s, &e);
        }
    }
    report.print_summary();
    server_rt.shutdown_timeout(Duration::from_secs(5));
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
