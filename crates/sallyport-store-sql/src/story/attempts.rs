//! The combined writes of the code-login hot path: `send_codes` (send budget + codes), `attempt_code`
//! (submission count + guess budget + use + give-back) and `create_session_with_flow`. Each must do
//! what its separate calls do, and stop where they would.

use sallyport_core::code::{AttemptOutcome, CodeAttempt, CodeKind};
use sallyport_core::flow::{FlowKind, FlowState};
use sallyport_core::identity::Identity;
use sallyport_core::rate_limit::{Bucket, Counted, Rule};
use sallyport_core::session::Session;
use sallyport_core::store::Store;
use sallyport_core::time_fmt;
use serde_json::json;
use time::Duration;
use uuid::Uuid;

use super::codes::{code, flow};
use super::courier::message;
use super::{not_found, unique, unique_email};

pub async fn run(store: &dyn Store) {
    let now = time_fmt::now();
    let email = unique_email("attempter");
    let person = Identity::new("default", json!({"email": email}), now);
    store
        .create_identity(&person, None)
        .await
        .expect("create identity");
    let mut login = flow(FlowKind::Login, now);
    store.create_flow(&login).await.expect("create flow");

    // send_codes: one send allowed per address; the second is refused and saves nothing.
    let sends = Rule {
        limit: 1,
        window: std::time::Duration::from_secs(60),
        backoff: None,
    };
    let address_key = Bucket::CodesSent.key(&unique("address"));
    let budget = [Counted {
        bucket: Bucket::CodesSent,
        key: &address_key,
        rule: &sends,
    }];
    login.state = FlowState::SentEmail;
    let mut right = code(&login, CodeKind::Login, "135790", now);
    right.identity_id = Some(person.id);
    let mail = message(&email, now);
    let refused = store
        .send_codes(
            &login,
            CodeKind::Login,
            std::slice::from_ref(&right),
            std::slice::from_ref(&mail),
            &budget,
        )
        .await
        .expect("send codes");
    assert_eq!(refused, None, "first send");
    assert_eq!(
        store.get_flow(FlowKind::Login, login.id).await.expect("flow"),
        login
    );
    assert_eq!(store.get_message(mail.id).await.expect("queued"), mail);
    let mut resent = login.clone();
    resent.updated_at = now + Duration::seconds(1);
    let other = code(&resent, CodeKind::Login, "999999", now);
    let refused = store
        .send_codes(
            &resent,
            CodeKind::Login,
            &[other],
            &[message(&email, now)],
            &budget,
        )
        .await
        .expect("second send");
    assert!(refused.is_some_and(|v| !v.allowed), "{refused:?}");
    assert_eq!(
        store.get_flow(FlowKind::Login, login.id).await.expect("flow"),
        login,
        "a refused send leaves the flow"
    );
    // Two addresses: the budgets count in order and stop at the first refusal.
    let fresh_key = Bucket::CodesSent.key(&unique("address"));
    let sent = |key: String| async move {
        store
            .peek(Bucket::CodesSent, &key, &sends, now)
            .await
            .expect("peek")
            .count
    };
    let spent_first = [
        budget[0],
        Counted {
            bucket: Bucket::CodesSent,
            key: &fresh_key,
            rule: &sends,
        },
    ];
    let third = message(&email, now);
    let refused = store
        .send_codes(
            &resent,
            CodeKind::Login,
            &[code(&resent, CodeKind::Login, "888888", now)],
            std::slice::from_ref(&third),
            &spent_first,
        )
        .await
        .expect("send to two addresses");
    assert!(refused.is_some_and(|v| !v.allowed), "{refused:?}");
    assert_eq!(sent(fresh_key.clone()).await, 0, "no count after the refusal");
    not_found(store.get_message(third.id).await, "message of a refused send");
    let spent_last = [spent_first[1], spent_first[0]];
    let refused = store
        .send_codes(
            &resent,
            CodeKind::Login,
            &[code(&resent, CodeKind::Login, "777777", now)],
            std::slice::from_ref(&third),
            &spent_last,
        )
        .await
        .expect("send to two addresses");
    assert!(refused.is_some_and(|v| !v.allowed), "{refused:?}");
    assert_eq!(sent(fresh_key.clone()).await, 1, "counted before the refusal");
    not_found(store.get_message(third.id).await, "message of a refused send");
    assert_eq!(
        store.get_flow(FlowKind::Login, login.id).await.expect("flow"),
        login,
        "refused sends leave the flow"
    );

    // attempt_code: 3 submissions per flow, 2 wrong guesses per identity.
    let guesses = Rule {
        limit: 2,
        window: std::time::Duration::from_secs(60),
        backoff: None,
    };
    let guess_key = Bucket::CodeGuesses.key(&unique("identity"));
    let t = now + Duration::seconds(2);
    let attempt = |code: &str, flow_id: Uuid| {
        let digests = vec![sallyport_core::code::code_digest("story-secret", code)];
        let key = guess_key.clone();
        async move {
            store
                .attempt_code(CodeAttempt {
                    flow_id,
                    kind: CodeKind::Login,
                    digests: &digests,
                    now: t,
                    max_submissions: 3,
                    guess: Some(Counted {
                        bucket: Bucket::CodeGuesses,
                        key: &key,
                        rule: &guesses,
                    }),
                    identity_id: Some(person.id),
                })
                .await
        }
    };
    let guessed = || async {
        store
            .peek(Bucket::CodeGuesses, &guess_key, &guesses, t)
            .await
            .expect("peek")
            .count
    };
    assert_eq!(
        attempt("000000", login.id).await.expect("wrong"),
        AttemptOutcome::Checked(None)
    );
    assert_eq!(guessed().await, 1, "a wrong guess stays counted");
    let used = attempt("135790", login.id).await.expect("right");
    let expected = sallyport_core::code::OneTimeCode {
        used_at: Some(t),
        ..right.clone()
    };
    assert_eq!(used, AttemptOutcome::Checked(Some(expected)));
    assert_eq!(guessed().await, 1, "a right guess is given back");
    assert_eq!(
        attempt("135790", login.id).await.expect("replay"),
        AttemptOutcome::Checked(None),
        "a used code is refused"
    );
    assert_eq!(guessed().await, 2);
    assert!(
        matches!(
            attempt("000000", login.id).await,
            Ok(AttemptOutcome::TooManySubmissions)
        ),
        "the fourth submission on the flow"
    );
    assert_eq!(
        guessed().await,
        2,
        "a submission past the flow's limit is no guess"
    );
    let mut fresh = flow(FlowKind::Login, now);
    store.create_flow(&fresh).await.expect("create flow");
    fresh.state = FlowState::SentEmail;
    let mut waiting = code(&fresh, CodeKind::Login, "246802", now);
    waiting.identity_id = Some(person.id);
    store
        .save_codes(&fresh, CodeKind::Login, std::slice::from_ref(&waiting), &[])
        .await
        .expect("save code");
    assert!(
        matches!(attempt("246802", fresh.id).await, Ok(AttemptOutcome::Limited(v)) if !v.allowed),
        "the third guess of the identity"
    );
    assert_eq!(
        guessed().await,
        3,
        "the refused guess counted, and was not given back"
    );
    let digests = vec![sallyport_core::code::code_digest("story-secret", "246802")];
    assert_eq!(
        store
            .use_code(fresh.id, CodeKind::Login, &digests, t)
            .await
            .expect("use code")
            .map(|c| c.id),
        Some(waiting.id),
        "a refused guess does not use the code"
    );
    not_found(
        attempt("000000", Uuid::new_v4()).await,
        "attempt on an unknown flow",
    );

    // create_session_with_flow: both or, for a flow that is gone, neither.
    let mut done = login.clone();
    done.state = FlowState::PassedChallenge;
    done.updated_at = t;
    let mut session = Session::issue(person.id, Duration::hours(1), t).session;
    session.complete_method("code", sallyport_core::session::Aal::Aal1, t);
    session.devices.push(sallyport_core::session::Device {
        id: Uuid::new_v4(),
        ip_address: Some("192.0.2.1".into()),
        user_agent: Some("story".into()),
        location: None,
    });
    store
        .create_session_with_flow(&session, &done)
        .await
        .expect("session with flow");
    assert_eq!(
        store.get_flow(FlowKind::Login, login.id).await.expect("flow"),
        done
    );
    assert_eq!(
        store.get_session(session.id).await.expect("session").id,
        session.id
    );
    let orphan = Session::issue(person.id, Duration::hours(1), t).session;
    not_found(
        store
            .create_session_with_flow(&orphan, &flow(FlowKind::Login, now))
            .await,
        "session with an unknown flow",
    );
    not_found(store.get_session(orphan.id).await, "session of an unknown flow");

    store.delete_identity(person.id).await.expect("delete identity");
}
