//! Rate-limit counters: fixed windows, back-off blocks, give-back, reset and clean-up. Time moves by
//! passing a later `now`, so nothing sleeps.

use std::time::Duration;

use sallyport_core::rate_limit::{Backoff, Bucket, Rule};
use sallyport_core::store::Store;
use sallyport_core::time_fmt;

use super::unique;

const MINUTE: Duration = Duration::from_secs(60);

pub async fn run(store: &dyn Store) {
    windows(store).await;
    backoff(store).await;
    give_back_and_reset(store).await;
    cleanup(store).await;
}

async fn windows(store: &dyn Store) {
    let now = time_fmt::now();
    let rule = Rule {
        limit: 3,
        window: MINUTE,
        backoff: None,
    };
    let key = Bucket::CodesSent.key(&unique("window"));
    let other = Bucket::CodesSent.key(&unique("other"));
    let fresh = store
        .peek(Bucket::CodesSent, &key, &rule, now)
        .await
        .expect("peek");
    assert!(fresh.allowed && fresh.count == 0, "{fresh:?}");
    for n in 1..=3 {
        let v = store.hit(Bucket::CodesSent, &key, &rule, now).await.expect("hit");
        assert!(v.allowed && v.count == n, "hit {n}: {v:?}");
    }
    let peek = store
        .peek(Bucket::CodesSent, &key, &rule, now)
        .await
        .expect("peek");
    assert!(!peek.allowed, "the budget is spent: {peek:?}");
    let over = store.hit(Bucket::CodesSent, &key, &rule, now).await.expect("hit");
    assert!(!over.allowed, "{over:?}");
    assert_eq!(over.retry_after, MINUTE, "refused until the window ends");
    let later = now + time::Duration::seconds(30);
    let over = store
        .hit(Bucket::CodesSent, &key, &rule, later)
        .await
        .expect("hit");
    assert!(!over.allowed);
    assert_eq!(over.retry_after, Duration::from_secs(30));
    let v = store
        .hit(Bucket::CodesSent, &other, &rule, now)
        .await
        .expect("hit");
    assert!(v.allowed && v.count == 1, "keys count apart: {v:?}");
    let v = store
        .hit(Bucket::CodeGuesses, &key, &rule, now)
        .await
        .expect("hit");
    assert!(v.allowed && v.count == 1, "buckets count apart: {v:?}");
    let next_window = now + time::Duration::seconds(60);
    let v = store
        .hit(Bucket::CodesSent, &key, &rule, next_window)
        .await
        .expect("hit");
    assert!(v.allowed && v.count == 1, "a new window starts over: {v:?}");
}

async fn backoff(store: &dyn Store) {
    let now = time_fmt::now();
    let rule = Rule {
        limit: 2,
        window: MINUTE * 60,
        backoff: Some(Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(4),
        }),
    };
    let b = Bucket::PasswordFailures;
    let key = b.key(&unique("backoff"));
    for _ in 0..2 {
        assert!(store.hit(b, &key, &rule, now).await.expect("hit").allowed);
    }
    // The third hit is past the free limit: it counts and blocks for 1 s, then 2 s, 4 s, 4 s.
    let mut t = now;
    for pause in [1i64, 2, 4, 4] {
        let v = store.hit(b, &key, &rule, t).await.expect("hit");
        assert!(v.allowed, "the hit that starts a pause counts: {v:?}");
        let blocked = store.hit(b, &key, &rule, t).await.expect("hit");
        assert!(!blocked.allowed);
        assert_eq!(
            blocked.retry_after,
            Duration::from_secs(pause.unsigned_abs()),
            "pause after {v:?}"
        );
        assert_eq!(blocked.count, v.count, "a refused hit changes nothing");
        let peek = store.peek(b, &key, &rule, t).await.expect("peek");
        assert!(!peek.allowed);
        let almost = t + time::Duration::seconds(pause) - time::Duration::milliseconds(1);
        assert!(!store.hit(b, &key, &rule, almost).await.expect("hit").allowed);
        t += time::Duration::seconds(pause);
    }
    store.reset(b, &key).await.expect("reset");
    let v = store.hit(b, &key, &rule, t).await.expect("hit");
    assert!(v.allowed && v.count == 1, "reset forgets: {v:?}");
}

async fn give_back_and_reset(store: &dyn Store) {
    let now = time_fmt::now();
    let rule = Rule {
        limit: 2,
        window: MINUTE,
        backoff: None,
    };
    let b = Bucket::CodeGuesses;
    let key = b.key(&unique("give-back"));
    store
        .give_back(b, &key, now)
        .await
        .expect("give back without a row");
    store.hit(b, &key, &rule, now).await.expect("hit");
    store.hit(b, &key, &rule, now).await.expect("hit");
    store.give_back(b, &key, now).await.expect("give back");
    let v = store.hit(b, &key, &rule, now).await.expect("hit");
    assert!(v.allowed && v.count == 2, "{v:?}");
    for _ in 0..5 {
        store.give_back(b, &key, now).await.expect("give back");
    }
    let v = store.peek(b, &key, &rule, now).await.expect("peek");
    assert_eq!(v.count, 0, "never below zero");
    store.reset(b, &key).await.expect("reset");
    store.reset(b, &key).await.expect("reset twice");
}

async fn cleanup(store: &dyn Store) {
    let now = time_fmt::now();
    let short = Rule {
        limit: 5,
        window: Duration::from_secs(1),
        backoff: None,
    };
    let long = Rule {
        window: MINUTE,
        ..short
    };
    let blocking = Rule {
        limit: 1,
        window: Duration::from_secs(1),
        backoff: Some(Backoff {
            initial: Duration::from_secs(30),
            max: Duration::from_secs(30),
        }),
    };
    let b = Bucket::IpSubmissions;
    let (gone, kept, blocked) = (
        b.key(&unique("gone")),
        b.key(&unique("kept")),
        b.key(&unique("blocked")),
    );
    store.hit(b, &gone, &short, now).await.expect("hit");
    store.hit(b, &kept, &long, now).await.expect("hit");
    store.hit(b, &blocked, &blocking, now).await.expect("hit");
    store
        .hit(b, &blocked, &blocking, now)
        .await
        .expect("hit that blocks");
    let later = now + time::Duration::seconds(2);
    let deleted = store
        .delete_expired_counters(later)
        .await
        .expect("delete expired");
    assert!(deleted >= 1, "{deleted}");
    assert_eq!(store.peek(b, &gone, &long, later).await.expect("peek").count, 0);
    assert_eq!(store.peek(b, &kept, &long, later).await.expect("peek").count, 1);
    let v = store.peek(b, &blocked, &blocking, later).await.expect("peek");
    assert!(!v.allowed, "a block outlives its window: {v:?}");
    let much_later = now + time::Duration::minutes(2);
    store
        .delete_expired_counters(much_later)
        .await
        .expect("delete expired");
    assert_eq!(
        store.peek(b, &kept, &long, much_later).await.expect("peek").count,
        0
    );
    assert!(
        store
            .peek(b, &blocked, &blocking, much_later)
            .await
            .expect("peek")
            .allowed
    );
}
