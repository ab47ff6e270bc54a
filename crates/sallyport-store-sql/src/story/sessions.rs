use sallyport_core::session::{Aal, Device, Session};
use sallyport_core::store::{SessionQuery, Store};
use sallyport_core::time_fmt;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::identities::Cast;
use super::{conflict, not_found};

fn device(agent: &str) -> Device {
    Device {
        id: Uuid::new_v4(),
        ip_address: Some("192.0.2.7".into()),
        user_agent: Some(agent.into()),
        location: Some("Berlin, DE".into()),
    }
}

fn session(identity_id: Uuid, now: OffsetDateTime) -> Session {
    let mut s = Session::issue(identity_id, Duration::hours(1), now).session;
    s.complete_method("password", Aal::Aal1, now);
    s
}

fn sorted(sessions: &[&Session]) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = sessions.iter().map(|s| s.id).collect();
    ids.sort();
    ids
}

async fn listed(store: &dyn Store, query: SessionQuery) -> Vec<Uuid> {
    let sessions = store.list_sessions(&query).await.expect("list sessions");
    sessions.iter().map(|s| s.id).collect()
}

async fn count(store: &dyn Store, query: SessionQuery) -> u64 {
    store.count_sessions(&query).await.expect("count sessions")
}

/// Returns a session of ada that is still stored, for the cascade check.
pub async fn run(store: &dyn Store, cast: &Cast) -> Session {
    let now = time_fmt::now();
    let (ada, bob) = (cast.ada.id, cast.bob.id);
    let mut s1 = session(ada, now);
    s1.devices.push(device("story/1"));
    store.create_session(&s1).await.expect("create session");
    assert_eq!(store.get_session(s1.id).await.expect("get"), s1);
    let by_token = store.get_session_by_token_digest(&s1.token_digest).await;
    assert_eq!(by_token.expect("by token digest"), s1);
    let by_logout = store
        .get_session_by_logout_token_digest(&s1.logout_token_digest)
        .await;
    assert_eq!(by_logout.expect("by logout token digest"), s1);
    not_found(store.get_session(Uuid::new_v4()).await, "unknown session");
    not_found(store.get_session_by_token_digest("nope").await, "unknown token");
    not_found(
        store.get_session_by_logout_token_digest(&s1.token_digest).await,
        "token as logout token",
    );

    let mut twin = session(bob, now);
    twin.token_digest = s1.token_digest.clone();
    conflict(
        store.create_session(&twin).await,
        "sessions",
        "duplicate token digest",
    );

    let later = now + Duration::minutes(3);
    s1.expires_at = later + Duration::hours(2);
    s1.complete_method("totp", Aal::Aal2, later);
    s1.devices.push(device("story/2"));
    s1.updated_at = later;
    store.update_session(&s1).await.expect("extend session");
    assert_eq!(store.get_session(s1.id).await.expect("get extended"), s1);
    not_found(
        store.update_session(&session(bob, now)).await,
        "update of unknown session",
    );

    let s2 = session(ada, now);
    let mut s3 = session(ada, now - Duration::hours(2));
    s3.expires_at = now - Duration::minutes(1);
    let mut s4 = session(ada, now);
    s4.active = false;
    let s5 = session(bob, now);
    for s in [&s2, &s3, &s4, &s5] {
        store.create_session(s).await.expect("create session");
    }
    let of_ada = |q: SessionQuery| SessionQuery {
        identity_id: Some(ada),
        ..q
    };
    let all_of_ada = store
        .list_sessions(&of_ada(SessionQuery {
            limit: 10,
            ..Default::default()
        }))
        .await
        .expect("list");
    let mut expected = vec![s1.clone(), s2.clone(), s3.clone(), s4.clone()];
    expected.sort_by_key(|s| s.id);
    assert_eq!(all_of_ada, expected);

    let active = |active| SessionQuery {
        active: Some(active),
        now: Some(now),
        ..Default::default()
    };
    assert_eq!(listed(store, of_ada(active(true))).await, sorted(&[&s1, &s2]));
    assert_eq!(listed(store, of_ada(active(false))).await, sorted(&[&s3, &s4]));
    assert_eq!(listed(store, active(true)).await, sorted(&[&s1, &s2, &s5]));
    let without_s1 = of_ada(SessionQuery {
        exclude: Some(s1.id),
        ..Default::default()
    });
    assert_eq!(listed(store, without_s1.clone()).await, sorted(&[&s2, &s3, &s4]));

    let mut paged = vec![];
    let mut after = None;
    loop {
        let page = listed(
            store,
            of_ada(SessionQuery {
                after,
                limit: 1,
                ..Default::default()
            }),
        )
        .await;
        let Some(last) = page.last() else { break };
        after = Some(*last);
        paged.extend(page);
    }
    assert_eq!(paged, sorted(&[&s1, &s2, &s3, &s4]), "keyset pages");
    let offset = of_ada(SessionQuery {
        offset: Some(2),
        limit: 10,
        ..Default::default()
    });
    assert_eq!(listed(store, offset).await, sorted(&[&s1, &s2, &s3, &s4])[2..]);

    assert_eq!(count(store, of_ada(SessionQuery::default())).await, 4);
    assert_eq!(count(store, of_ada(active(true))).await, 2);
    assert_eq!(count(store, of_ada(active(false))).await, 2);
    assert_eq!(count(store, without_s1).await, 3);
    assert_eq!(count(store, SessionQuery::default()).await, 5);

    // s2 and the expired-but-active s3 change; s4 already is inactive.
    assert_eq!(
        store
            .revoke_sessions_of_identity(ada, Some(s1.id))
            .await
            .expect("revoke"),
        2
    );
    assert!(store.get_session(s1.id).await.expect("s1").active);
    for s in [&s2, &s3] {
        let revoked = store.get_session(s.id).await.expect("revoked");
        assert!(!revoked.active);
        assert!(revoked.updated_at >= s.updated_at);
    }
    assert_eq!(
        store
            .revoke_sessions_of_identity(ada, Some(s1.id))
            .await
            .expect("revoke"),
        0
    );
    assert_eq!(
        store
            .revoke_sessions_of_identity(bob, None)
            .await
            .expect("revoke bob"),
        1
    );

    store.delete_session(s4.id).await.expect("delete session");
    not_found(store.get_session(s4.id).await, "deleted session");
    not_found(store.delete_session(s4.id).await, "second delete");
    assert_eq!(
        store
            .delete_sessions_of_identity(bob)
            .await
            .expect("delete bob's"),
        1
    );
    assert_eq!(
        count(
            store,
            SessionQuery {
                identity_id: Some(bob),
                ..Default::default()
            }
        )
        .await,
        0
    );
    assert_eq!(count(store, SessionQuery::default()).await, 3);
    s1
}
