//! Printing: a detail block per section as it finishes, then one summary table with raw numbers,
//! baselines, ratios and PASS/MISS against the targets. Misses are reported, never fatal.

use crate::code::{CodeResult, Phase, TARGET_RPS};
use crate::courier::CourierResult;
use crate::login::LoginResult;
use crate::ratelimit::{RateLimitResult, Variant};
use crate::startup::StartupResult;
use crate::whoami::WhoamiResult;
use crate::{Params, Section};

const WHOAMI_TARGET: f64 = 0.7;
const WHOAMI_P99_TARGET: f64 = 1.5;
const IDLE_RSS_TARGET_MIB: f64 = 20.0;
const LOADED_RSS_TARGET_MIB: f64 = 60.0;
/// "No growth": under 0.05 MiB a minute (0.5 MiB over ten minutes) is a few pages of noise.
const SOAK_SLOPE_TARGET: f64 = 0.05;
const LOGIN_TARGET: f64 = 1.10;
const PG_WHOAMI_TARGET: f64 = 0.5;
const REFUSAL_TARGET_MS: f64 = 5.0;
const SCALE_TARGET: f64 = 1.2;

struct Row {
    metric: String,
    sallyport: String,
    baseline: String,
    ratio: String,
    target: String,
    result: String,
}

pub struct Report {
    rows: Vec<Row>,
    mode: &'static str,
}

pub fn median(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Nearest-rank percentile; NaN for no values.
pub fn percentile(xs: &[f64], pct: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((pct / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn list(xs: &[f64], decimals: usize) -> String {
    xs.iter()
        .map(|x| format!("{x:.decimals$}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn verdict(pass: bool) -> String {
    if pass { "PASS" } else { "MISS" }.to_owned()
}

impl Report {
    pub fn new(p: &Params) -> Report {
        Report {
            rows: vec![],
            mode: if p.quick { "quick" } else { "full" },
        }
    }

    pub fn print_header(&self) {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
        // A busy machine skews every number; say so up front.
        let load = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next().map(str::to_owned))
            .unwrap_or_else(|| "?".into());
        println!(
            "Sallyport benchmark ({} run, {cores} cores, 1-min load average {load} at start, {})",
            self.mode,
            profile()
        );
        println!();
    }

    pub fn whoami(&mut self, p: &Params, r: WhoamiResult) {
        println!("== 1. GET /sessions/whoami throughput ==");
        println!(
            "store: file SQLite, {} sessions ({} identities x {}), seeded through the store API in {:.1} s",
            r.sessions, r.identities, p.sessions_per_identity, r.seed_secs
        );
        println!("load generator: {}", r.generator);
        println!(
            "load: {} keep-alive connections, {} distinct sessions rotated per request, {:.1} s warm-up, {:.1} s measured; body {} bytes (baseline serves the same bytes)",
            r.connections,
            r.rotated,
            p.warmup.as_secs_f64(),
            p.duration.as_secs_f64(),
            r.body_bytes
        );
        println!(
            "{} interleaved rounds (baseline, token, cookie back to back, the order rotating); each ratio is against its own round's baseline, the summary takes the median round of each",
            r.rounds.len()
        );
        for (k, round) in r.rounds.iter().enumerate() {
            println!("  round {}:", k + 1);
            for (name, l) in [
                ("sallyport (token) ", &round.sallyport),
                ("sallyport (cookie)", &round.cookie),
                ("baseline          ", &round.baseline),
            ] {
                print_load("    ", name, l);
            }
        }
        let errors: u64 = r
            .rounds
            .iter()
            .map(|x| x.sallyport.errors() + x.cookie.errors() + x.baseline.errors())
            .sum();
        if errors > 0 {
            println!("  ERRORS: {errors} failed requests (see above)");
        }
        println!();
        let with_errors = |pass: bool| {
            if errors > 0 {
                format!("{} +{errors} ERR", verdict(pass))
            } else {
                verdict(pass)
            }
        };
        let token_round = r.median_round(|x| &x.sallyport);
        let cookie_round = r.median_round(|x| &x.cookie);
        for (what, l, base) in [
            ("token", &token_round.sallyport, &token_round.baseline),
            ("cookie", &cookie_round.cookie, &cookie_round.baseline),
        ] {
            let ratio = l.rps / base.rps;
            self.rows.push(Row {
                metric: format!(
                    "whoami {what} req/s ({} conns, {} sessions)",
                    r.connections, r.rotated
                ),
                sallyport: format!("{:.0}", l.rps),
                baseline: format!("{:.0}", base.rps),
                ratio: format!("{ratio:.3}"),
                target: format!(">= {WHOAMI_TARGET:.2}"),
                result: with_errors(ratio >= WHOAMI_TARGET),
            });
            if let (Some(a), Some(b)) = (l.p99_ms, base.p99_ms) {
                let ratio = a / b;
                self.rows.push(Row {
                    metric: format!("whoami {what} p99 ms"),
                    sallyport: format!("{a:.2}"),
                    baseline: format!("{b:.2}"),
                    ratio: format!("{ratio:.3}"),
                    target: format!("<= {WHOAMI_P99_TARGET:.2}"),
                    result: with_errors(ratio <= WHOAMI_P99_TARGET),
                });
            }
        }
    }

    pub fn pg_whoami(&mut self, p: &Params, r: crate::pgwhoami::PgWhoamiResult) {
        println!("== 9. GET /sessions/whoami on PostgreSQL, and refusal across nodes ==");
        println!(
            "store: PostgreSQL (throwaway database), {} sessions seeded through the store API in {:.1} s",
            r.sessions, r.seed_secs
        );
        println!(
            "load: {} keep-alive connections, {} distinct sessions rotated per request, {:.1} s warm-up, {:.1} s measured (in-process client; baseline serves the same bytes)",
            r.connections,
            r.rotated,
            p.warmup.as_secs_f64(),
            p.duration.as_secs_f64()
        );
        for (name, l) in [("sallyport", &r.sallyport), ("baseline ", &r.baseline)] {
            print_load("  ", name, l);
        }
        let errors = r.sallyport.errors() + r.baseline.errors();
        let ratio = r.sallyport.rps / r.baseline.rps;
        self.rows.push(Row {
            metric: format!(
                "PostgreSQL whoami req/s ({} conns, {} sessions)",
                r.connections, r.rotated
            ),
            sallyport: format!("{:.0}", r.sallyport.rps),
            baseline: format!("{:.0}", r.baseline.rps),
            ratio: format!("{ratio:.3}"),
            target: format!(">= {PG_WHOAMI_TARGET:.2}"),
            result: verdict(ratio >= PG_WHOAMI_TARGET && errors == 0),
        });
        let (p50, p99, max) = (
            percentile(&r.refusal_ms, 50.0),
            percentile(&r.refusal_ms, 99.0),
            r.refusal_ms.iter().copied().fold(0.0, f64::max),
        );
        println!(
            "  cross-node: two `sallyport serve` on the database; per trial node B answers the session twice (cached), node A logs it out (DELETE /self-service/logout/api, median {:.2} ms), then B is asked until it answers 401",
            median(&r.logout_ms)
        );
        println!(
            "  from A's 204 to B's first 401 over {} trials: p50 {p50:.3} ms, p90 {:.3} ms, p95 {:.3} ms, p99 {p99:.3} ms, max {max:.3} ms; {} trials over {REFUSAL_TARGET_MS:.0} ms; {} stale 200s from B in all; trials B never refused within 2 s: {}",
            r.refusal_ms.len(),
            percentile(&r.refusal_ms, 90.0),
            percentile(&r.refusal_ms, 95.0),
            r.refusal_ms.iter().filter(|ms| **ms > REFUSAL_TARGET_MS).count(),
            r.stale_answers,
            r.failed_trials
        );
        // The logout itself is one database transaction on A: its tail shows how noisy the machine was.
        println!(
            "  logout on A: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            percentile(&r.logout_ms, 50.0),
            percentile(&r.logout_ms, 99.0),
            r.logout_ms.iter().copied().fold(0.0, f64::max)
        );
        println!();
        self.rows.push(Row {
            metric: format!("cross-node refusal p99 ms ({} trials)", r.refusal_ms.len()),
            sallyport: format!("{p99:.3} (p50 {p50:.3})"),
            baseline: "-".into(),
            ratio: "-".into(),
            target: format!("<= {REFUSAL_TARGET_MS:.0}"),
            result: verdict(p99 <= REFUSAL_TARGET_MS && r.failed_trials == 0),
        });
    }

    pub fn scale(&mut self, _p: &Params, r: crate::scale::ScaleResult) {
        println!("== 10. Scale: latency on a large store against a 1,000-identity store ==");
        println!(
            "each store has 200 probe identities (bcrypt cost 4, one session each) made through the store API, the rest filler rows from set-based SQL; sequential requests on one keep-alive connection, in {} rounds each with freshly started servers (one untimed request first): whoami is each probe session's first request of a round (a cache miss), login is POST /self-service/login for each probe",
            crate::scale::ROUNDS
        );
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        for b in &r.backends {
            for (what, f) in [("small", &b.small), ("large", &b.large)] {
                println!(
                    "  {} {what}: {} identities, {} sessions, {:.1} MiB on disk, {}",
                    b.backend,
                    f.identities,
                    f.sessions,
                    mib(f.bytes),
                    f.build_secs
                        .map(|s| format!("built in {s:.1} s"))
                        .unwrap_or_else(|| "reused (built by an earlier run)".into())
                );
                println!(
                    "    whoami p50 {:.3} ms p99 {:.3} ms; login p50 {:.3} ms p99 {:.3} ms",
                    percentile(&f.lat.whoami_ms, 50.0),
                    percentile(&f.lat.whoami_ms, 99.0),
                    percentile(&f.lat.login_ms, 50.0),
                    percentile(&f.lat.login_ms, 99.0)
                );
            }
            println!("  {} query plans on the large store:", b.backend);
            for (name, plan, indexed) in &b.plans {
                println!(
                    "    {name}: {} [{plan}]",
                    if *indexed { "indexed" } else { "FULL SCAN" }
                );
            }
            println!(
                "  large store {}",
                if b.dropped {
                    "deleted"
                } else {
                    "kept for the next run (--scale-drop deletes it)"
                }
            );
            let all_indexed = b.plans.iter().all(|p| p.2);
            for (what, pct, small, large) in [
                ("whoami p50", 50.0, &b.small.lat.whoami_ms, &b.large.lat.whoami_ms),
                ("whoami p99", 99.0, &b.small.lat.whoami_ms, &b.large.lat.whoami_ms),
                ("login p50", 50.0, &b.small.lat.login_ms, &b.large.lat.login_ms),
                ("login p99", 99.0, &b.small.lat.login_ms, &b.large.lat.login_ms),
            ] {
                let (s, l) = (percentile(small, pct), percentile(large, pct));
                let ratio = l / s;
                self.rows.push(Row {
                    metric: format!(
                        "{} {what} ms, {} vs {} identities",
                        b.backend, b.large.identities, b.small.identities
                    ),
                    sallyport: format!("{l:.3}"),
                    baseline: format!("{s:.3}"),
                    ratio: format!("{ratio:.3}"),
                    target: format!("<= {SCALE_TARGET:.2}"),
                    result: verdict(ratio <= SCALE_TARGET && all_indexed),
                });
            }
        }
        println!();
    }

    pub fn memory(&mut self, _p: &Params, r: crate::memory::MemoryResult) {
        println!("== 8. Memory of the release binary (file SQLite, default cache limits) ==");
        println!(
            "store: {} sessions (100 per identity), seeded in {:.1} s; whoami rotates over all of them",
            r.sessions, r.seed_secs
        );
        println!("  idle: {}", r.idle.describe());
        for (n, rss) in &r.rounds {
            println!("  after {n:>9} whoami: {}", rss.describe());
        }
        println!(
            "  peak RSS (VmHWM) {:.1} MiB; {:.0} whoami/s; errors: {}",
            r.peak_mib, r.rps, r.errors
        );
        self.rows.push(Row {
            metric: "idle RSS MiB (seeded store)".into(),
            sallyport: format!("{:.1}", r.idle.total),
            baseline: "-".into(),
            ratio: "-".into(),
            target: format!("<= {IDLE_RSS_TARGET_MIB:.0}"),
            result: verdict(r.idle.total <= IDLE_RSS_TARGET_MIB),
        });
        let (n, last) = r
            .rounds
            .last()
            .map(|(n, rss)| (*n, rss.total))
            .unwrap_or((0, f64::NAN));
        self.rows.push(Row {
            metric: format!("RSS MiB after {n} whoami / {} sessions", r.sessions),
            sallyport: format!("{last:.1}"),
            baseline: "-".into(),
            ratio: "-".into(),
            target: format!("<= {LOADED_RSS_TARGET_MIB:.0}"),
            result: verdict(last <= LOADED_RSS_TARGET_MIB && r.errors == 0),
        });
        if let Some(soak) = &r.soak {
            let (first, last) = (soak.samples.first(), soak.samples.last());
            let secs = last.map_or(0.0, |s| s.0);
            let slope = soak.slope_mib_per_min();
            println!(
                "  soak: {:.0} s under the same load, {} whoami (errors {}), RSS every {:.0} s:",
                secs,
                soak.requests,
                soak.errors,
                soak.interval.as_secs_f64()
            );
            println!(
                "    {}",
                list(&soak.samples.iter().map(|s| s.1.total).collect::<Vec<_>>(), 1)
            );
            if let (Some(a), Some(b)) = (first, last) {
                println!(
                    "    first {:.1} MiB, last {:.1} MiB, max {:.1} MiB; least-squares slope {slope:+.3} MiB/min",
                    a.1.total,
                    b.1.total,
                    soak.samples.iter().map(|s| s.1.total).fold(0.0, f64::max)
                );
            }
            if soak.heap.len() >= 2 {
                let (in_use, mapped) = soak.heap_slopes();
                println!(
                    "    heap in use (allocator's figures, MiB): {}",
                    list(&soak.heap.iter().map(|h| h.1.in_use).collect::<Vec<_>>(), 1)
                );
                println!(
                    "    least-squares slope of the heap in use {in_use:+.3} MiB/min, of the heap taken from the system {mapped:+.3} MiB/min"
                );
                self.rows.push(Row {
                    metric: "heap in use slope MiB/min over the soak".into(),
                    sallyport: format!("{in_use:+.3}"),
                    baseline: "-".into(),
                    ratio: "-".into(),
                    target: "-".into(),
                    result: "info".into(),
                });
            }
            self.rows.push(Row {
                metric: format!("RSS slope MiB/min over a {:.0} s soak", secs),
                sallyport: format!("{slope:+.3}"),
                baseline: "-".into(),
                ratio: "-".into(),
                target: format!("<= {SOAK_SLOPE_TARGET:.2}"),
                result: verdict(slope <= SOAK_SLOPE_TARGET && soak.errors == 0),
            });
        }
        println!();
    }

    pub fn login(&mut self, _p: &Params, r: LoginResult) {
        println!("== 2. Password login vs raw bcrypt verify ==");
        println!(
            "bcrypt cost {} (stored hash {}…); {} timed rounds after 1 untimed; interleaved login/verify",
            r.cost,
            r.hash_prefix,
            r.login_ms.len()
        );
        println!("  login  ms: {}", list(&r.login_ms, 1));
        println!("  verify ms: {}", list(&r.verify_ms, 1));
        let (l, v) = (median(&r.login_ms), median(&r.verify_ms));
        println!(
            "  medians: login {l:.1} ms, verify {v:.1} ms, overhead {:.1} ms",
            l - v
        );
        println!();
        let ratio = l / v;
        self.rows.push(Row {
            metric: format!("login median ms (n={})", r.login_ms.len()),
            sallyport: format!("{l:.1}"),
            baseline: format!("{v:.1}"),
            ratio: format!("{ratio:.3}"),
            target: format!("<= {LOGIN_TARGET:.2}"),
            result: verdict(ratio <= LOGIN_TARGET),
        });
    }

    pub fn startup(&mut self, _p: &Params, r: StartupResult) {
        println!("== 3. Release binary: time to ready, idle RSS, SIGTERM ==");
        println!("binary: {} ({})", r.binary.display(), r.binary_note);
        let ready: Vec<f64> = r.runs.iter().map(|x| x.ready_ms).collect();
        let rss: Vec<f64> = r.runs.iter().map(|x| x.rss_mib).collect();
        let exits: Vec<String> = r
            .runs
            .iter()
            .map(|x| match x.exit_code {
                Some(c) => format!("{c} in {:.0} ms", x.exit_ms),
                None => "no exit code (timed out or signalled)".into(),
            })
            .collect();
        println!("  ready ms: {}", list(&ready, 1));
        println!("  idle RSS MiB: {}", list(&rss, 1));
        println!("  exit after SIGTERM: {}", exits.join("; "));
        println!();
        let n = r.runs.len();
        let clean = r.runs.iter().filter(|x| x.exit_code == Some(0)).count();
        self.rows.push(Row {
            metric: format!("time to ready ms (median of {n})"),
            sallyport: format!("{:.1}", median(&ready)),
            baseline: "-".into(),
            ratio: "-".into(),
            target: "-".into(),
            result: "info".into(),
        });
        self.rows.push(Row {
            metric: format!("idle RSS MiB (median of {n})"),
            sallyport: format!("{:.1}", median(&rss)),
            baseline: "-".into(),
            ratio: "-".into(),
            target: "-".into(),
            result: "info".into(),
        });
        self.rows.push(Row {
            metric: "SIGTERM -> exit 0 within 10 s".into(),
            sallyport: format!("{clean}/{n}"),
            baseline: "-".into(),
            ratio: "-".into(),
            target: format!("{n}/{n}"),
            result: verdict(clean == n),
        });
    }

    pub fn code(&mut self, _p: &Params, r: CodeResult) {
        println!("== 4. Passwordless code login on SQLite (no courier running: codes stay queued) ==");
        println!(
            "store: file SQLite, {} identities with a verified code address, seeded through the store API in {:.1} s",
            r.identities, r.seed_secs
        );
        println!(
            "client: in-process HTTP/1.1 keep-alive, {} connections (own single-threaded runtime)",
            r.concurrency
        );
        let line = |name: &str, what: &str, ph: &Phase| {
            let get = ph.get_ms.map(|g| format!("GET {g:.2} ms + ")).unwrap_or_default();
            let cpu = ph
                .cpu_ms
                .map(|c| format!("; process CPU {c:.3} ms per {}", what.trim_end_matches('s')))
                .unwrap_or_default();
            println!(
                "  {name}: {:>9.1} {what}/s  ({} ok in {:.2} s; mean latency {get}POST {:.2} ms; failed: {}; I/O errors: {}{cpu})",
                ph.rps, ph.ok, ph.secs, ph.post_ms, ph.failed, ph.io_errors
            );
            if let Some(f) = &ph.first_failure {
                println!("    first failure: {f}");
            }
        };
        println!(
            "(a) GET /self-service/login/api + POST {{method: code, identifier}} -> 400 sent_email, pairs counted after the warm-up"
        );
        line("send-code", "pairs", &r.send);
        println!(
            "    = {:.1} HTTP requests/s (flow creation + send-code POST)",
            r.send.rps * 2.0
        );
        println!(
            "(b) POST {{method: code, identifier, code}} -> 200 with session; {} flows prepared untimed in {:.1} s (codes read from the queued messages)",
            r.flows, r.prep_secs
        );
        line("verify   ", "logins", &r.verify);
        println!();
        for (metric, ph) in [
            (format!("code send-code req/s ({} conns)", r.concurrency), &r.send),
            (format!("code verify req/s ({} conns)", r.concurrency), &r.verify),
        ] {
            let v = verdict(ph.rps >= TARGET_RPS);
            self.rows.push(Row {
                metric,
                sallyport: format!("{:.0}", ph.rps),
                baseline: "-".into(),
                ratio: "-".into(),
                target: format!(">= {TARGET_RPS:.0}/s"),
                result: if ph.errors() > 0 {
                    format!("{v} +{} ERR", ph.errors())
                } else {
                    v
                },
            });
        }
    }

    pub fn courier(&mut self, _p: &Params, r: CourierResult) {
        println!("== 5. Courier: queued emails delivered over SMTP to a loopback sink ==");
        println!(
            "{} rendered login_code_valid emails queued in file SQLite in {:.2} s (untimed); dispatcher: pull_count {}, pull_wait {:?}, concurrency {}",
            r.messages, r.enqueue_secs, r.pull_count, r.pull_wait, r.concurrency
        );
        println!(
            "  delivered {} in {:.2} s = {:.1} msgs/s; SMTP connections: {}; failed attempts: {}; every message arrived exactly once",
            r.messages, r.secs, r.rate, r.connections, r.failed_attempts
        );
        println!();
        self.rows.push(Row {
            metric: format!("courier msgs/s (K={})", r.messages),
            sallyport: format!("{:.0}", r.rate),
            baseline: "-".into(),
            ratio: "-".into(),
            target: "-".into(),
            result: "info".into(),
        });
    }

    pub fn ratelimit(&mut self, _p: &Params, r: RateLimitResult) {
        println!("== 6. Rate limits: limiter on vs. off, same run, interleaved rounds ==");
        println!(
            "(budgets the load would spend are set too large to reach: every request pays for its counters, none is refused)"
        );
        println!(
            "3 servers on file SQLite, bcrypt cost 4 (so the limiter's share is not hidden behind hashing), {} users, {} connections, rounds of {:.1} s; whoami load: {}",
            r.users, r.concurrency, r.round_secs, r.generator
        );
        // Paired: round r of each variant ran back to back with round r of "off".
        let paired =
            |xs: &[f64], off: &[f64]| -> Vec<f64> { xs.iter().zip(off).map(|(x, o)| x / o).collect() };
        for (i, v) in Variant::ALL.iter().enumerate() {
            let lr = paired(&r.logins[i], &r.logins[0]);
            let sr = paired(&r.sends[i], &r.sends[0]);
            let wr = paired(&r.whoami[i], &r.whoami[0]);
            println!("  {}:", v.describe());
            println!(
                "    logins/s [{}] median {:.1}; per-round ratio to off [{}] median {:.3}",
                list(&r.logins[i], 1),
                median(&r.logins[i]),
                list(&lr, 3),
                median(&lr)
            );
            println!(
                "    send-code/s [{}] median {:.1}; per-round ratio to off [{}] median {:.3}",
                list(&r.sends[i], 1),
                median(&r.sends[i]),
                list(&sr, 3),
                median(&sr)
            );
            println!(
                "    whoami/s [{}] median {:.0}; per-round ratio to off [{}] median {:.3}",
                list(&r.whoami[i], 0),
                median(&r.whoami[i]),
                list(&wr, 3),
                median(&wr)
            );
        }
        let (peek, hit, give_back) = r.calls_us;
        println!(
            "  store calls on file SQLite, {} each, one at a time: peek {peek:.1} µs, hit (UPSERT … RETURNING) {hit:.1} µs, give_back {give_back:.1} µs",
            r.calls
        );
        println!();
        self.rows.push(Row {
            metric: "limiter store call µs (peek / hit)".into(),
            sallyport: format!("{peek:.0} / {hit:.0}"),
            baseline: "-".into(),
            ratio: "-".into(),
            target: "-".into(),
            result: "info".into(),
        });
        for (i, v) in Variant::ALL.iter().enumerate().skip(1) {
            for (what, xs, off) in [
                ("logins/s", &r.logins[i], &r.logins[0]),
                ("send-code/s", &r.sends[i], &r.sends[0]),
                ("whoami/s", &r.whoami[i], &r.whoami[0]),
            ] {
                self.rows.push(Row {
                    metric: format!("{what} limiter {}", v.describe()),
                    sallyport: format!("{:.0}", median(xs)),
                    baseline: format!("{:.0}", median(off)),
                    ratio: format!("{:.3}", median(&paired(xs, off))),
                    target: "-".into(),
                    result: "info".into(),
                });
            }
        }
    }

    pub fn import(&mut self, _p: &Params, r: crate::import::ImportResult) {
        println!(
            "== 7. import kratos: PostgreSQL → PostgreSQL, identities with password, identifier, 2 addresses =="
        );
        println!(
            "  {} identities imported in {:.2} s = {:.0} identities/s; --dry-run (read + convert, no writes) {:.2} s = {:.0} identities/s",
            r.identities, r.secs, r.rate, r.dry_secs, r.dry_rate
        );
        println!(
            "  reference: PostgreSQL's own INSERT … SELECT of the same rows into Kratos' five tables {:.0} identities/s (import / that = {:.2})",
            r.seed_rate,
            r.rate / r.seed_rate
        );
        println!();
        self.rows.push(Row {
            metric: format!("import identities/s PG→PG (N={})", r.identities),
            sallyport: format!("{:.0}", r.rate),
            baseline: format!("{:.0}", r.dry_rate),
            ratio: format!("{:.2}", r.rate / r.dry_rate),
            target: ">= 20000".into(),
            result: if r.rate >= 20_000.0 { "PASS" } else { "FAIL" }.into(),
        });
        self.rows.push(Row {
            metric: "import vs PostgreSQL's set-based INSERT of the rows".into(),
            sallyport: format!("{:.0}", r.rate),
            baseline: format!("{:.0}", r.seed_rate),
            ratio: format!("{:.2}", r.rate / r.seed_rate),
            target: "-".into(),
            result: "info".into(),
        });
    }

    pub fn import_identities(&mut self, _p: &Params, r: crate::import_identities::ImportIdentitiesResult) {
        use crate::import_identities::{BATCH, TARGET};
        println!(
            "== 9. identity import, pre-hashed bcrypt passwords: {} identities per measurement, each into an empty store ==",
            r.identities
        );
        println!(
            "  each identity: email trait (password identifier, verifiable and recovery address), hashed_password given"
        );
        println!(
            "  endpoint: PATCH /admin/identities, {BATCH} per request, 4 in flight; CLI: sallyport import identities <file> --format quiet ({})",
            r.cli_note
        );
        println!(
            "  baseline: Store::create_identities with the same identities built in memory, {BATCH} per call, 4 in flight (no HTTP, JSON or validation)"
        );
        for b in &r.backends {
            println!(
                "  {:<12} endpoint {:>8.0}/s  CLI {:>8.0}/s  store floor {:>8.0}/s",
                b.backend, b.endpoint, b.cli, b.floor
            );
            // The database's own write of the same rows, where the bench measured one: no Sallyport code.
            let references = [
                b.reference.map(|rate| {
                    (
                        rate,
                        format!("SQLite's own prepared single-row INSERTs of the same rows, C API, one connection, same settings, {BATCH} per transaction:"),
                        format!("import store floor vs SQLite's own INSERTs, {} (N={})", b.backend, r.identities),
                    )
                }),
                b.copy.map(|rate| {
                    (
                        rate,
                        "PostgreSQL's own COPY of the same rows (encoded before the clock, 4 connections)".to_owned(),
                        format!("import identities/s store floor vs PostgreSQL's own COPY (N={})", r.identities),
                    )
                }),
            ];
            for (rate, what, metric) in references.into_iter().flatten() {
                println!("  {:<12} reference: {what} {rate:>8.0}/s", b.backend);
                self.rows.push(Row {
                    metric,
                    sallyport: format!("{:.0}", b.floor),
                    baseline: format!("{rate:.0}"),
                    ratio: format!("{:.2}", b.floor / rate),
                    target: "-".into(),
                    result: "info".into(),
                });
            }
            for (how, rate) in [("batch endpoint", b.endpoint), ("CLI", b.cli)] {
                self.rows.push(Row {
                    metric: format!("import identities/s {how}, {} (N={})", b.backend, r.identities),
                    sallyport: format!("{rate:.0}"),
                    baseline: format!("{:.0}", b.floor),
                    ratio: format!("{:.2}", rate / b.floor),
                    target: format!(">= {TARGET:.0}/s"),
                    result: verdict(rate >= TARGET),
                });
            }
        }
        println!();
    }

    pub fn error(&mut self, s: Section, e: &anyhow::Error) {
        println!("== {s:?}: ERROR ==\n{e:#}\n");
        self.rows.push(Row {
            metric: format!("{s:?}").to_lowercase(),
            sallyport: "ERROR".into(),
            baseline: "-".into(),
            ratio: "-".into(),
            target: "-".into(),
            result: "ERROR".into(),
        });
    }

    pub fn print_summary(&self) {
        let header = Row {
            metric: "metric".into(),
            sallyport: "sallyport".into(),
            baseline: "baseline".into(),
            ratio: "ratio".into(),
            target: "target".into(),
            result: "result".into(),
        };
        let all: Vec<&Row> = std::iter::once(&header).chain(&self.rows).collect();
        let w = |f: fn(&Row) -> &str| all.iter().map(|r| f(r).chars().count()).max().unwrap_or(0);
        let widths = [
            w(|r| &r.metric),
            w(|r| &r.sallyport),
            w(|r| &r.baseline),
            w(|r| &r.ratio),
            w(|r| &r.target),
            w(|r| &r.result),
        ];
        let line = |r: &Row| {
            format!(
                "| {:<a$} | {:>b$} | {:>c$} | {:>d$} | {:<e$} | {:<f$} |",
                r.metric,
                r.sallyport,
                r.baseline,
                r.ratio,
                r.target,
                r.result,
                a = widths[0],
                b = widths[1],
                c = widths[2],
                d = widths[3],
                e = widths[4],
                f = widths[5],
            )
        };
        let sep = format!(
            "|{}|",
            widths
                .iter()
                .map(|w| "-".repeat(w + 2))
                .collect::<Vec<_>>()
                .join("|")
        );
        println!("== Summary ({} run) ==", self.mode);
        println!("{}", line(&header));
        println!("{sep}");
        for r in &self.rows {
            println!("{}", line(r));
        }
        println!(
            "ratios: whoami = sallyport/baseline (higher is better), login = login/verify (lower is better), rate limits = median of per-round on/off (1.0 = no cost)"
        );
    }
}

fn profile() -> &'static str {
    if cfg!(debug_assertions) {
        "DEBUG build: numbers are meaningless, use --release"
    } else {
        "release build"
    }
}

/// One load run's line: throughput, latency and what failed.
fn print_load(indent: &str, name: &str, l: &crate::loadgen::LoadResult) {
    let ms = |v: Option<f64>| v.map(|x| format!("{x:.2}")).unwrap_or_else(|| "-".into());
    println!(
        "{indent}{name}: {:>10.1} req/s  p50 {} ms  p99 {} ms  ({} x 200 in {:.2} s; non-200: {}{}; I/O errors: {})",
        l.rps,
        ms(l.p50_ms),
        ms(l.p99_ms),
        l.ok,
        l.secs,
        l.non200,
        l.bad_status.map(|s| format!(" e.g. {s}")).unwrap_or_default(),
        l.io_errors
    );
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
