//! Concurrency checks over two stores on one database, as two server processes would share it. Each
//! gets its own fresh, migrated database.

use std::collections::HashSet;
use std::future::Future;
use std::pin::pin;
use std::task::Poll;

use sallyport_core::code::CodeKind;
use sallyport_core::flow::FlowKind;
use sallyport_core::store::Store;
use sallyport_core::time_fmt;
use time::Duration;
use uuid::Uuid;

use super::codes::{code, flow};
use super::courier::message;
use super::unique_email;

/// Polls both futures together, so both statements are in flight at once (the story crate has no runtime).
pub async fn join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (pin!(a), pin!(b));
    let (mut ra, mut rb) = (None, None);
    std::future::poll_fn(|cx| {
        if ra.is_none()
            && let Poll::Ready(v) = a.as_mut().poll(cx)
        {
            ra = Some(v);
        }
        if rb.is_none()
            && let Poll::Ready(v) = b.as_mut().poll(cx)
        {
            rb = Some(v);
        }
        match (ra.take(), rb.take()) {
            (Some(x), Some(y)) => Poll::Ready((x, y)),
            (x, y) => {
                (ra, rb) = (x, y);
                Poll::Pending
            }
        }
    })
    .await
}

/// Two workers claim in a loop until the queue is empty: every message is claimed exactly once.
pub async fn claims(a: &dyn Store, b: &dyn Store, messages: usize) {
    let now = time_fmt::now();
    let recipient = unique_email("queue");
    let queued: Vec<_> = (0..messages)
        .map(|n| message(&recipient, now + Duration::microseconds(n as i64)))
        .collect();
    a.enqueue_messages(&queued).await.expect("enqueue");
    let claim_at = now + Duration::seconds(1);
    let lease = Duration::hours(1);
    let mut seen = HashSet::new();
    let (mut by_a, mut by_b) = (0, 0);
    loop {
        let (got_a, got_b) = join(
            a.claim_messages(7, lease, claim_at),
            b.claim_messages(7, lease, claim_at),
        )
        .await;
        let (got_a, got_b) = (got_a.expect("claim by a"), got_b.expect("claim by b"));
        if got_a.is_empty() && got_b.is_empty() {
            break;
        }
        by_a += got_a.len();
        by_b += got_b.len();
        for m in got_a.iter().chain(&got_b) {
            assert!(seen.insert(m.id), "message {} claimed twice", m.id);
        }
    }
    let all: HashSet<Uuid> = queued.iter().map(|m| m.id).collect();
    assert_eq!(seen, all, "claimed {by_a} + {by_b}");
}

/// Two uses of the same code at once: exactly one gets it. Likewise the submission counter loses no
/// increment.
pub async fn code_uses(a: &dyn Store, b: &dyn Store, rounds: usize) {
    let now = time_fmt::now();
    let mut login = flow(FlowKind::Login, now);
    a.create_flow(&login).await.expect("create flow");
    let secrets: Vec<String> = (0..rounds).map(|n| format!("{n:06}")).collect();
    let codes: Vec<_> = secrets
        .iter()
        .map(|s| code(&login, CodeKind::Login, s, now))
        .collect();
    login.updated_at = now + Duration::seconds(1);
    a.save_codes(&login, CodeKind::Login, &codes, &[])
        .await
        .expect("save codes");
    let t = now + Duration::seconds(2);
    for c in &codes {
        let digests = std::slice::from_ref(&c.digest);
        let (x, y) = join(
            a.use_code(login.id, CodeKind::Login, digests, t),
            b.use_code(login.id, CodeKind::Login, digests, t),
        )
        .await;
        let winners = [x.expect("use by a"), y.expect("use by b")]
            .into_iter()
            .flatten()
            .count();
        assert_eq!(winners, 1, "code {} used {winners} times", c.id);
    }
    let mut counts = HashSet::new();
    for _ in 0..rounds {
        let (x, y) = join(a.count_submission(login.id), b.count_submission(login.id)).await;
        assert!(counts.insert(x.expect("count by a")), "count repeated");
        assert!(counts.insert(y.expect("count by b")), "count repeated");
    }
    let top = i32::try_from(rounds * 2).expect("few rounds");
    assert_eq!(counts, (1..=top).collect());
}

/// Two nodes counting hits on one key at once: no increment is lost, and exactly `limit` hits are
/// allowed.
pub async fn rate_limit_hits(a: &dyn Store, b: &dyn Store, rounds: usize) {
    use sallyport_core::rate_limit::{Bucket, Rule};
    let now = time_fmt::now();
    let limit = u32::try_from(rounds).expect("few rounds");
    let rule = Rule {
        limit,
        window: std::time::Duration::from_secs(3600),
        backoff: None,
    };
    let key = Bucket::CodeGuesses.key(&unique_email("raced"));
    let mut counts = HashSet::new();
    let mut allowed = 0;
    for _ in 0..rounds {
        let (x, y) = join(
            a.hit(Bucket::CodeGuesses, &key, &rule, now),
            b.hit(Bucket::CodeGuesses, &key, &rule, now),
        )
        .await;
        for v in [x.expect("hit by a"), y.expect("hit by b")] {
            assert!(counts.insert(v.count), "count {} repeated", v.count);
            allowed += usize::from(v.allowed);
        }
    }
    let top = i64::try_from(rounds * 2).expect("few rounds");
    assert_eq!(counts, (1..=top).collect());
    assert_eq!(allowed, rounds, "exactly the limit is allowed");
}
