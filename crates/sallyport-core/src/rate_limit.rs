//! Budgets that hold across flows, methods and nodes (beyond Kratos, which has none: kratos#3037).
//!
//! A budget is a counter per `(bucket, key)` that lives in the store, so every node sharing one
//! database shares it. Windows are fixed: they start at the first counted hit and end `window` later,
//! when the counter starts again from zero. A rule with a back-off additionally blocks the key for a
//! growing time after each hit past the free `limit` (password failures): the block is set in the
//! same atomic statement that counts the hit, so parallel requests cannot slip past it.

use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::store::StoreResult;

/// What a budget counts. The names are stored in the `bucket` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// Codes and links mailed or texted, per recipient address.
    CodesSent,
    /// Code submissions (login, registration, recovery, verification, MFA code), per identity or address.
    CodeGuesses,
    /// Password attempts that were not followed by a success, per identifier.
    PasswordFailures,
    /// TOTP and backup-code submissions at aal2, per identity.
    SecondFactorGuesses,
    /// Self-service flow creations per client IP.
    IpFlowCreations,
    /// Self-service flow submissions per client IP.
    IpSubmissions,
}

impl Bucket {
    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::CodesSent => "codes_sent",
            Bucket::CodeGuesses => "code_guesses",
            Bucket::PasswordFailures => "password_failures",
            Bucket::SecondFactorGuesses => "second_factor_guesses",
            Bucket::IpFlowCreations => "ip_flow_creations",
            Bucket::IpSubmissions => "ip_submissions",
        }
    }

    /// The stored key for `subject`: a SHA-256 digest, so the table holds no addresses or identifiers
    /// and every key has the same length whatever a client sent (NUL bytes included).
    pub fn key(self, subject: &str) -> String {
        crate::secret::token_digest(&format!("{}\u{1f}{subject}", self.as_str()))
    }
}

/// Growing pause after each hit past the free limit: `initial`, then doubling up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Hits allowed per window (with a back-off: hits before the back-off starts). At least 1.
    pub limit: u32,
    pub window: Duration,
    pub backoff: Option<Backoff>,
}

/// The outcome of a hit or a peek.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    /// Hits counted in the current window (after this one, for a hit).
    pub count: i64,
    /// When a refused caller may try again; zero when allowed.
    pub retry_after: Duration,
}

impl Verdict {
    pub fn allow(count: i64) -> Verdict {
        Verdict {
            allowed: true,
            count,
            retry_after: Duration::ZERO,
        }
    }

    /// Whole seconds for a `Retry-After` header, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        let s = self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0);
        s.max(1)
    }
}

/// A counter row as the store keeps it, times in Unix milliseconds (integer arithmetic is the same in
/// every SQL dialect).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterRow {
    pub count: i64,
    pub window_ends_ms: i64,
    pub blocked_until_ms: i64,
}

pub fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

fn until(now_ms: i64, at_ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(at_ms.saturating_sub(now_ms)).unwrap_or(0))
}

impl Rule {
    /// Judges a counter as returned by a hit. `counted` is false when the row was blocked and the hit
    /// changed nothing.
    pub fn judge_hit(&self, row: CounterRow, counted: bool, now: OffsetDateTime) -> Verdict {
        let now_ms = unix_ms(now);
        if !counted {
            return Verdict {
                allowed: false,
                count: row.count,
                retry_after: until(now_ms, row.blocked_until_ms),
            };
        }
        if self.backoff.is_some() || row.count <= i64::from(self.limit) {
            return Verdict::allow(row.count);
        }
        Verdict {
            allowed: false,
            count: row.count,
            retry_after: until(now_ms, row.window_ends_ms),
        }
    }

    /// Whether a hit now would be allowed, without counting one.
    pub fn judge_peek(&self, row: Option<CounterRow>, now: OffsetDateTime) -> Verdict {
        let now_ms = unix_ms(now);
        let Some(row) = row else { return Verdict::allow(0) };
        if row.blocked_until_ms > now_ms {
            return Verdict {
                allowed: false,
                count: row.count,
                retry_after: until(now_ms, row.blocked_until_ms),
            };
        }
        if row.window_ends_ms <= now_ms {
            return Verdict::allow(0);
        }
        if self.backoff.is_none() && row.count >= i64::from(self.limit) {
            return Verdict {
                allowed: false,
                count: row.count,
                retry_after: until(now_ms, row.window_ends_ms),
            };
        }
        Verdict::allow(row.count)
    }
}

/// A hit to count as part of a larger write (see `CodeStore::attempt_code`, `CodeStore::send_codes`).
#[derive(Debug, Clone, Copy)]
pub struct Counted<'a> {
    pub bucket: Bucket,
    /// The stored key, [`Bucket::key`] of the subject.
    pub key: &'a str,
    pub rule: &'a Rule,
}

#[async_trait]
pub trait RateLimitStore: Send + Sync {
    /// Counts one hit on `(bucket, key)` under `rule` atomically (one statement, so nodes sharing the
    /// database never lose an increment): a blocked key is left as it is and the hit refused; an
    /// expired window starts over.
    async fn hit(&self, bucket: Bucket, key: &str, rule: &Rule, now: OffsetDateTime) -> StoreResult<Verdict>;
    /// What a hit would get now, without counting.
    async fn peek(&self, bucket: Bucket, key: &str, rule: &Rule, now: OffsetDateTime)
    -> StoreResult<Verdict>;
    /// Takes one counted hit back (a code guess that was right); never below zero.
    async fn give_back(&self, bucket: Bucket, key: &str, now: OffsetDateTime) -> StoreResult<()>;
    /// Forgets the counter (a password that was right).
    async fn reset(&self, bucket: Bucket, key: &str) -> StoreResult<()>;
    /// Deletes counters whose window and block both ended; returns how many.
    async fn delete_expired_counters(&self, now: OffsetDateTime) -> StoreResult<u64>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(backoff: bool) -> Rule {
        Rule {
            limit: 3,
            window: Duration::from_secs(60),
            backoff: backoff.then_some(Backoff {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(8),
            }),
        }
    }

    #[test]
    fn judges_counts_against_the_limit() {
        let now = OffsetDateTime::from_unix_timestamp(1_000).unwrap();
        let row = |count| CounterRow {
            count,
            window_ends_ms: 1_030_000,
            blocked_until_ms: 0,
        };
        assert!(rule(false).judge_hit(row(3), true, now).allowed);
        let over = rule(false).judge_hit(row(4), true, now);
        assert!(!over.allowed);
        assert_eq!(over.retry_after_secs(), 30);
        assert!(
            rule(true).judge_hit(row(9), true, now).allowed,
            "back-off rules gate by block"
        );
        assert!(!rule(false).judge_peek(Some(row(3)), now).allowed);
        assert!(rule(false).judge_peek(Some(row(2)), now).allowed);
        let expired = CounterRow {
            window_ends_ms: 1_000_000,
            ..row(9)
        };
        assert!(rule(false).judge_peek(Some(expired), now).allowed);
        let blocked = CounterRow {
            blocked_until_ms: 1_000_500,
            ..row(1)
        };
        let v = rule(true).judge_peek(Some(blocked), now);
        assert!(!v.allowed);
        assert_eq!(v.retry_after, Duration::from_millis(500));
        assert_eq!(v.retry_after_secs(), 1);
    }

    #[test]
    fn keys_hide_the_subject_and_differ_per_bucket() {
        let a = Bucket::CodesSent.key("ann@example.org");
        assert_eq!(a.len(), 64);
        assert!(!a.contains("ann"));
        assert_ne!(a, Bucket::CodeGuesses.key("ann@example.org"));
        assert_eq!(Bucket::CodesSent.key("x\0y").len(), 64);
    }
}
