//! Sallyport's rate limits (`sallyport.rate_limits`, beyond Kratos): the budgets each flow consults,
//! and the per-client-IP gate in front of the self-service endpoints. Counters live in the store
//! (`RateLimitStore`), so every node on one database shares them.
//!
//! Budgets are kept apart on purpose: codes sent per address, code guesses per identity, password
//! attempts per identifier, second-factor guesses per identity. An attacker spending one (say,
//! guessing login codes for a victim) leaves the others untouched, so the victim still signs in with
//! a password or a second factor that was not attacked.

mod per_ip;

use std::time::Duration;

use uuid::Uuid;

use sallyport_config::model::{Cidr, Limit, RateLimits};
use sallyport_core::error::{ApiError, ErrorId};
use sallyport_core::rate_limit::{Backoff, Bucket, Rule, Verdict};
use sallyport_core::text::{self, Message};
use sallyport_core::time_fmt;

use crate::http::error::store_error;
use crate::selfservice::common::FlowFailure;
use crate::state::{App, AppState};

pub use per_ip::{client_ip, per_ip};

/// The budgets in effect; `None` is a budget switched off.
#[derive(Debug, Clone, Default)]
pub struct RateLimitSettings {
    pub codes_sent: Option<Rule>,
    pub code_guesses: Option<Rule>,
    pub password: Option<Rule>,
    pub second_factor: Option<Rule>,
    pub ip_flow_creations: Option<Rule>,
    pub ip_submissions: Option<Rule>,
    pub trusted_proxies: Vec<Cidr>,
}

fn rule(l: Limit) -> Rule {
    Rule {
        limit: l.limit,
        window: l.window,
        backoff: None,
    }
}

impl RateLimitSettings {
    pub fn from_config(r: &RateLimits) -> RateLimitSettings {
        RateLimitSettings {
            codes_sent: r.codes_sent().map(rule),
            code_guesses: r.code_guesses().map(rule),
            password: r.password_failures_per_identifier.resolve().map(|p| Rule {
                backoff: Some(Backoff {
                    initial: p.backoff,
                    max: p.max_backoff,
                }),
                ..rule(p.limit)
            }),
            second_factor: r.second_factor_guesses().map(rule),
            ip_flow_creations: r.per_ip.flow_creations().map(rule),
            ip_submissions: r.per_ip.submissions().map(rule),
            trusted_proxies: r.per_ip.trusted_proxies.clone(),
        }
    }

    pub fn per_ip_enabled(&self) -> bool {
        self.ip_flow_creations.is_some() || self.ip_submissions.is_some()
    }

    /// The numbers in effect, for the startup log.
    pub fn log(&self) {
        fn show(r: &Option<Rule>) -> String {
            match r {
                None => "off".into(),
                Some(r) => {
                    let mut s = format!(
                        "{} per {}",
                        r.limit,
                        sallyport_config::format_go_duration(r.window)
                    );
                    if let Some(b) = r.backoff {
                        s.push_str(&format!(
                            ", then back-off {} doubling to {}",
                            sallyport_config::format_go_duration(b.initial),
                            sallyport_config::format_go_duration(b.max)
                        ));
                    }
                    s
                }
            }
        }
        let proxies: Vec<String> = self.trusted_proxies.iter().map(ToString::to_string).collect();
        tracing::debug!(
            codes_sent_per_address = %show(&self.codes_sent),
            code_guesses_per_identity = %show(&self.code_guesses),
            password_failures_per_identifier = %show(&self.password),
            second_factor_guesses_per_identity = %show(&self.second_factor),
            per_ip_flow_creations = %show(&self.ip_flow_creations),
            per_ip_submissions = %show(&self.ip_submissions),
            trusted_proxies = %proxies.join(","),
            "rate limits in effect"
        );
    }
}

/// What a spent budget answers: the 429 envelope for API and SPA clients, the message for the flow
/// a browser is sent back to.
#[derive(Debug)]
pub struct Limited {
    pub error: ApiError,
    pub message: Message,
}

pub(crate) fn limited(id: ErrorId, v: &Verdict) -> FlowFailure {
    let secs = v.retry_after_secs();
    let message = match id {
        ErrorId::RateLimitedCodesSent => text::rate_limited_codes_sent(secs),
        ErrorId::RateLimitedCodeGuesses => text::rate_limited_code_guesses(secs),
        ErrorId::RateLimitedPassword => text::rate_limited_password(secs),
        ErrorId::RateLimitedSecondFactor => text::rate_limited_second_factor(secs),
        _ => text::rate_limited_client_ip(secs),
    };
    metrics::counter!("sallyport_rate_limited_total", "limit" => id.as_str()).increment(1);
    FlowFailure::Limited(Box::new(Limited {
        error: ApiError::rate_limited(id, secs),
        message,
    }))
}

pub(crate) async fn hit(app: &App, bucket: Bucket, rule: &Rule, key: &str) -> Result<Verdict, FlowFailure> {
    app.store
        .hit(bucket, key, rule, time_fmt::now())
        .await
        .map_err(|e| FlowFailure::Api(store_error(e)))
}

/// The subject whose code guesses are counted: the identity when one is known, else the address.
pub fn code_subject(identity_id: Option<Uuid>, address: &str) -> String {
    match identity_id {
        Some(id) => format!("identity:{id}"),
        None => format!("address:{}", address.trim().to_lowercase()),
    }
}

const SUBJECT_KEY: &str = "sallyport_code_subject";

/// Remembers on the flow whose code it sent, for flows that learn the identity only when sending
/// (recovery, verification); kept in `internal_context`, which clients never see.
pub fn remember_subject(flow: &mut sallyport_core::flow::Flow, subject: &str) {
    if let Some(o) = flow.internal_context.as_object_mut() {
        o.insert(SUBJECT_KEY.into(), subject.into());
    }
}

/// The subject [`remember_subject`] stored, or the flow itself for flows sent before it existed.
pub fn remembered_subject(flow: &sallyport_core::flow::Flow) -> String {
    flow.internal_context
        .get(SUBJECT_KEY)
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("flow:{}", flow.id))
}

/// Before codes or links go to `addresses` for `subject`: no new code for a subject whose code-guess
/// budget is spent, and none past an address's send budget. Counts one send per address.
pub async fn before_send(app: &App, subject: Option<&str>, addresses: &[String]) -> Result<(), FlowFailure> {
    guesses_left(app, subject).await?;
    let Some((rule, keys)) = send_keys(app, addresses) else {
        return Ok(());
    };
    for key in &keys {
        let v = hit(app, Bucket::CodesSent, &rule, key).await?;
        if !v.allowed {
            return Err(refused_send(&v));
        }
    }
    Ok(())
}

/// The send budget and the key of each address it counts, when it is on; counted by the store in the
/// same write as the codes themselves (`CodeStore::send_codes`), or by [`before_send`].
pub fn send_keys(app: &App, addresses: &[String]) -> Option<(Rule, Vec<String>)> {
    let rule = app.settings.rate_limits.codes_sent?;
    let keys = addresses
        .iter()
        .map(|a| Bucket::CodesSent.key(&a.trim().to_lowercase()))
        .collect();
    Some((rule, keys))
}

/// What a send budget that refused answers.
pub fn refused_send(v: &Verdict) -> FlowFailure {
    limited(ErrorId::RateLimitedCodesSent, v)
}

/// What a guess budget that refused answers.
pub fn refused_guess(v: &Verdict) -> FlowFailure {
    limited(ErrorId::RateLimitedCodeGuesses, v)
}

/// The code-guess part of [`before_send`]: no new code for a subject whose guess budget is spent.
pub async fn guesses_left(app: &App, subject: Option<&str>) -> Result<(), FlowFailure> {
    let limits = &app.settings.rate_limits;
    if let (Some(rule), Some(subject)) = (&limits.code_guesses, subject) {
        let key = Bucket::CodeGuesses.key(subject);
        let v = app
            .store
            .peek(Bucket::CodeGuesses, &key, rule, time_fmt::now())
            .await
            .map_err(|e| FlowFailure::Api(store_error(e)))?;
        if !v.allowed {
            return Err(refused_guess(&v));
        }
    }
    Ok(())
}

/// A counted guess; hand it back with [`Guess::was_right`] so that only wrong guesses stay counted.
pub struct Guess {
    bucket: Bucket,
    key: String,
}

impl Guess {
    pub async fn was_right(self, app: &App) {
        if let Err(e) = app.store.give_back(self.bucket, &self.key, time_fmt::now()).await {
            tracing::warn!(error = %e, "could not give back a rate-limit hit");
        }
    }
}

async fn guess(
    app: &App,
    bucket: Bucket,
    rule: Option<&Rule>,
    subject: &str,
    id: ErrorId,
) -> Result<Option<Guess>, FlowFailure> {
    let Some(rule) = rule else { return Ok(None) };
    let key = bucket.key(subject);
    let v = hit(app, bucket, rule, &key).await?;
    if !v.allowed {
        return Err(limited(id, &v));
    }
    Ok(Some(Guess { bucket, key }))
}

/// Counts a code submission for `subject` before it is checked: past the budget no code is checked,
/// not even a right one, until the window ends.
pub async fn code_guess(app: &App, subject: &str) -> Result<Option<Guess>, FlowFailure> {
    let rule = app.settings.rate_limits.code_guesses.as_ref();
    guess(
        app,
        Bucket::CodeGuesses,
        rule,
        subject,
        ErrorId::RateLimitedCodeGuesses,
    )
    .await
}

/// Counts a TOTP or backup-code submission at aal2 for `identity_id`.
pub async fn second_factor_guess(app: &App, identity_id: Uuid) -> Result<Option<Guess>, FlowFailure> {
    let rule = app.settings.rate_limits.second_factor.as_ref();
    let subject = format!("identity:{identity_id}");
    guess(
        app,
        Bucket::SecondFactorGuesses,
        rule,
        &subject,
        ErrorId::RateLimitedSecondFactor,
    )
    .await
}

/// A password attempt for `identifier`. Past the free budget each failure blocks the identifier for
/// a doubling pause; attempts during a pause are answered at once with 429, never held. A right
/// password clears the count; windows end, so nothing locks anyone out for good.
///
/// Login stays cheap: the check before the hash is a read, and only a failure writes. Checks and
/// hashes run under [`App::password_gate`] (one permit per core, as many as hashes can run at once
/// anyway), and a failure is counted before its permit is released, so a burst of parallel guesses
/// for one identifier gets at most one per permit (per node) past a pause that has begun.
pub struct PasswordAttempt {
    key: Option<String>,
    seen: i64,
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl PasswordAttempt {
    pub async fn start(app: &App, identifier: &str) -> Result<PasswordAttempt, FlowFailure> {
        let Some(rule) = &app.settings.rate_limits.password else {
            return Ok(PasswordAttempt {
                key: None,
                seen: 0,
                _permit: None,
            });
        };
        let permit = app.password_gate.clone().acquire_owned().await.ok();
        let key = Bucket::PasswordFailures.key(identifier);
        let v = app
            .store
            .peek(Bucket::PasswordFailures, &key, rule, time_fmt::now())
            .await
            .map_err(|e| FlowFailure::Api(store_error(e)))?;
        if !v.allowed {
            return Err(limited(ErrorId::RateLimitedPassword, &v));
        }
        Ok(PasswordAttempt {
            key: Some(key),
            seen: v.count,
            _permit: permit,
        })
    }

    pub async fn failed(self, app: &App) {
        let (Some(key), Some(rule)) = (&self.key, &app.settings.rate_limits.password) else {
            return;
        };
        if let Err(e) = app
            .store
            .hit(Bucket::PasswordFailures, key, rule, time_fmt::now())
            .await
        {
            tracing::warn!(error = %e, "could not count a password failure");
        }
    }

    pub async fn succeeded(self, app: &App) {
        let Some(key) = self.key.as_deref().filter(|_| self.seen > 0) else {
            return;
        };
        if let Err(e) = app.store.reset(Bucket::PasswordFailures, key).await {
            tracing::warn!(error = %e, "could not reset a password rate limit");
        }
    }
}

/// Deletes ended counters (and expired token exchangers) at start-up and then every `every`, so the
/// tables hold only live rows. The first round runs at once: a server that was stopped for a while
/// catches up straight away, and the store's first write (the writer's page cache and prepared
/// statements) happens at start-up, not `every` into serving, where it showed as a half-MiB step in
/// the memory of a server under a steady read load (the benchmark's soak).
pub fn spawn_cleanup(app: AppState, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match app.store.delete_expired_counters(time_fmt::now()).await {
                Ok(n) if n > 0 => tracing::debug!(deleted = n, "deleted ended rate-limit counters"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not delete ended rate-limit counters"),
            }
            // Native apps' session token exchangers that were never collected (same cadence, same kind of row).
            match app.store.delete_expired_exchangers(time_fmt::now()).await {
                Ok(n) if n > 0 => tracing::debug!(deleted = n, "deleted expired session token exchangers"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not delete expired session token exchangers"),
            }
        }
    })
}
