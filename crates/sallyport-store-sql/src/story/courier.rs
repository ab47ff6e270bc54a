use sallyport_core::courier::{DeliveryOutcome, Message, MessageQuery, MessageStatus, MessageType};
use sallyport_core::store::Store;
use sallyport_core::time_fmt;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::{conflict, not_found, unique_email};

const LEASE: Duration = Duration::seconds(60);

pub fn message(recipient: &str, created_at: OffsetDateTime) -> Message {
    let data = json!({"to": recipient, "login_code": "******", "identity": {"traits": {"email": recipient}}});
    let mut m = Message::new(
        MessageType::Email,
        "email",
        recipient,
        "login_code_valid",
        data,
        created_at,
    );
    m.subject = "Login to your account".into();
    m.body = format!("Hi {recipient}, your code is ******");
    m
}

async fn claim(store: &dyn Store, limit: u32, now: OffsetDateTime) -> Vec<Message> {
    store
        .claim_messages(limit, LEASE, now)
        .await
        .expect("claim messages")
}

#[track_caller]
fn ids(messages: &[Message]) -> Vec<Uuid> {
    messages.iter().map(|m| m.id).collect()
}

/// `messages` as a claim at `now` returns them.
fn claimed(messages: &[&Message], now: OffsetDateTime) -> Vec<Message> {
    messages
        .iter()
        .map(|m| Message {
            status: MessageStatus::Processing,
            updated_at: now,
            ..(*m).clone()
        })
        .collect()
}

/// `message` after `outcomes` (attempt time, dispatch status, error), as `get_message` returns it.
async fn assert_delivered(
    store: &dyn Store,
    message: &Message,
    outcomes: &[(OffsetDateTime, &str, Option<Value>)],
) {
    let got = store.get_message(message.id).await.expect("get message");
    let dispatches: Vec<_> = got
        .dispatches
        .iter()
        .map(|d| {
            assert_eq!(d.message_id, message.id);
            assert_eq!(d.updated_at, d.created_at);
            (d.created_at, d.status.as_str(), d.error.clone())
        })
        .collect();
    let want: Vec<_> = outcomes.iter().map(|(t, s, e)| (*t, *s, e.clone())).collect();
    assert_eq!(dispatches, want, "dispatches of {}", message.id);
    let last = outcomes.last().map_or(message.updated_at, |(t, _, _)| *t);
    let expected = Message {
        send_count: i32::try_from(outcomes.len()).expect("few attempts"),
        updated_at: last,
        dispatches: got.dispatches.clone(),
        ..message.clone()
    };
    assert_eq!(got, expected);
}

async fn listed(store: &dyn Store, query: MessageQuery) -> Vec<Uuid> {
    ids(&store.list_messages(&query).await.expect("list messages"))
}

pub async fn run(store: &dyn Store) {
    let t0 = time_fmt::now();
    let (ada, bob) = (unique_email("ada"), unique_email("bob"));
    let at = |s: i64| t0 + Duration::seconds(s);
    let mut m: Vec<Message> = (0..5)
        .map(|n| message(if n % 2 == 0 && n > 0 { &bob } else { &ada }, at(n)))
        .collect();
    m[4].kind = MessageType::Sms;
    m[4].channel = "sms".into();
    // Scheduled for later, and two created in the same microsecond (ordered by id).
    let mut later = message(&ada, at(5));
    later.next_attempt_at = at(3600);
    let twins: Vec<Message> = (0..2)
        .map(|_| {
            let mut t = message(&bob, at(6));
            t.next_attempt_at = at(7200);
            t
        })
        .collect();
    store.enqueue_messages(&m).await.expect("enqueue");
    store
        .enqueue_messages(&[later.clone(), twins[0].clone(), twins[1].clone()])
        .await
        .expect("enqueue more");
    store.enqueue_messages(&[]).await.expect("enqueue nothing");
    for msg in m.iter().chain([&later]) {
        assert_eq!(store.get_message(msg.id).await.expect("get message"), *msg);
    }
    let fresh = message(&ada, t0);
    conflict(
        store.enqueue_messages(&[fresh.clone(), m[0].clone()]).await,
        "courier_messages",
        "duplicate message",
    );
    not_found(store.get_message(fresh.id).await, "message of a failed batch");
    not_found(store.get_message(Uuid::new_v4()).await, "unknown message");

    // Claims: oldest first, up to the limit, nothing while the leases run.
    let c = at(10);
    assert!(claim(store, 0, c).await.is_empty(), "claim of zero");
    assert_eq!(claim(store, 2, c).await, claimed(&[&m[0], &m[1]], c));
    assert_eq!(claim(store, 10, c).await, claimed(&[&m[2], &m[3], &m[4]], c));
    assert!(claim(store, 10, c).await.is_empty(), "claimed twice");
    assert!(
        claim(store, 10, c + Duration::seconds(59)).await.is_empty(),
        "claimed under lease"
    );
    let got = store.get_message(m[0].id).await.expect("get claimed");
    assert_eq!((got.status, got.send_count), (MessageStatus::Processing, 0));

    // A worker that died: its leases run out and another takes the messages, oldest first.
    let c2 = c + LEASE + Duration::seconds(1);
    assert_eq!(claim(store, 1, c2).await, claimed(&[&m[0]], c2));

    // Outcomes: sent, retry later, abandoned.
    let f = c2 + Duration::seconds(1);
    let boom = json!({"reason": "connection refused", "code": 421});
    let retry_at = f + Duration::minutes(5);
    store
        .finish_delivery(m[0].id, &DeliveryOutcome::Sent, f)
        .await
        .expect("finish sent");
    let retry = DeliveryOutcome::Retry {
        error: boom.clone(),
        retry_at,
    };
    store
        .finish_delivery(m[1].id, &retry, f)
        .await
        .expect("finish retry");
    let abandon = DeliveryOutcome::Abandon { error: boom.clone() };
    store
        .finish_delivery(m[2].id, &abandon, f)
        .await
        .expect("finish abandon");
    not_found(
        store
            .finish_delivery(Uuid::new_v4(), &DeliveryOutcome::Sent, f)
            .await,
        "finish of unknown message",
    );

    // m[3] and m[4] were left by the dead worker; m[1] waits for its retry time.
    let c3 = f + Duration::seconds(1);
    assert_eq!(claim(store, 10, c3).await, claimed(&[&m[3], &m[4]], c3));
    let f2 = c3 + Duration::seconds(1);
    store
        .finish_delivery(m[3].id, &DeliveryOutcome::Sent, f2)
        .await
        .expect("finish");
    store
        .finish_delivery(m[4].id, &abandon, f2)
        .await
        .expect("finish");
    assert!(
        claim(store, 10, retry_at - Duration::microseconds(1))
            .await
            .is_empty(),
        "retried early"
    );
    let mut m1 = m[1].clone();
    m1.next_attempt_at = retry_at;
    m1.send_count = 1;
    assert_eq!(claim(store, 10, retry_at).await, claimed(&[&m1], retry_at));
    let f3 = retry_at + Duration::seconds(1);
    store
        .finish_delivery(m[1].id, &DeliveryOutcome::Sent, f3)
        .await
        .expect("finish");
    assert_eq!(claim(store, 10, at(3600)).await, claimed(&[&later], at(3600)));
    store
        .finish_delivery(later.id, &DeliveryOutcome::Sent, at(3601))
        .await
        .expect("finish");

    let sent = |m: &Message| Message {
        status: MessageStatus::Sent,
        ..m.clone()
    };
    let abandoned = |m: &Message| Message {
        status: MessageStatus::Abandoned,
        ..m.clone()
    };
    assert_delivered(store, &sent(&m[0]), &[(f, "success", None)]).await;
    let failed = Some(boom.clone());
    assert_delivered(
        store,
        &sent(&m1),
        &[(f, "failed", failed.clone()), (f3, "success", None)],
    )
    .await;
    assert_delivered(store, &abandoned(&m[2]), &[(f, "failed", failed.clone())]).await;
    assert_delivered(store, &sent(&m[3]), &[(f2, "success", None)]).await;
    assert_delivered(store, &abandoned(&m[4]), &[(f2, "failed", failed)]).await;
    assert_delivered(store, &sent(&later), &[(at(3601), "success", None)]).await;
    assert_delivered(store, &twins[0], &[]).await;

    // Listing: newest first, filters, keyset pages.
    let mut newest_first: Vec<&Message> = m.iter().chain([&later]).chain(&twins).collect();
    newest_first.sort_by_key(|m| std::cmp::Reverse((m.created_at, m.id)));
    let all: Vec<Uuid> = newest_first.iter().map(|m| m.id).collect();
    assert_eq!(listed(store, MessageQuery::default()).await, all);
    let of = |status: MessageStatus| MessageQuery {
        status: Some(status),
        ..Default::default()
    };
    let want = vec![later.id, m[3].id, m[1].id, m[0].id];
    assert_eq!(listed(store, of(MessageStatus::Sent)).await, want);
    assert_eq!(
        listed(store, of(MessageStatus::Abandoned)).await,
        vec![m[4].id, m[2].id]
    );
    assert!(listed(store, of(MessageStatus::Processing)).await.is_empty());
    let to_bob = MessageQuery {
        recipient: Some(bob.clone()),
        ..Default::default()
    };
    let mut want: Vec<Uuid> = all.iter().take(2).copied().collect();
    want.extend([m[4].id, m[2].id]);
    assert_eq!(listed(store, to_bob.clone()).await, want);
    let bob_abandoned = MessageQuery {
        status: Some(MessageStatus::Abandoned),
        before: Some(m[4].id),
        ..to_bob
    };
    assert_eq!(listed(store, bob_abandoned).await, vec![m[2].id]);
    for page_size in [1, 3] {
        let mut walked = vec![];
        let mut before = None;
        loop {
            let query = MessageQuery {
                before,
                limit: page_size,
                ..Default::default()
            };
            let page = listed(store, query).await;
            assert!(page.len() <= page_size as usize);
            let Some(last) = page.last() else { break };
            before = Some(*last);
            walked.extend(page);
        }
        assert_eq!(walked, all, "pages of {page_size}");
    }
    let unknown = MessageQuery {
        before: Some(Uuid::new_v4()),
        ..Default::default()
    };
    assert!(
        listed(store, unknown).await.is_empty(),
        "before an unknown message"
    );
}
