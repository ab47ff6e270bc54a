use sallyport_core::identity::{Identity, IdentityState, credential_type::*};
use sallyport_core::session::{Device, Session};
use sallyport_core::store::{IdentityQuery, Store};
use sallyport_core::time_fmt;
use serde_json::json;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::{conflict, not_found, unique, unique_email};

/// The identities the later chapters use.
pub struct Cast {
    pub ada: Identity,
    pub bob: Identity,
}

fn hash() -> serde_json::Value {
    json!({"hashed_password": "$argon2id$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g"})
}

/// An identity with password and code credentials, a pending email and a verified phone address.
fn person(email: &str, username: &str, now: OffsetDateTime) -> Identity {
    // Ten random digits: with seven, the few hundred people of one story run shared a number about
    // once in sixty runs (a birthday collision), and the unique address refused the second.
    let phone = format!("+1555{:010}", Uuid::new_v4().as_u128() % 10_000_000_000);
    let traits = json!({"email": email, "username": username, "phone": phone, "name": {"first": "Ada"}});
    let mut i = Identity::new("default", traits, now);
    i.metadata_public = Some(json!({"plan": "free", "tags": ["a", "b"]}));
    i.metadata_admin = Some(json!({"note": "vip", "score": 1.5}));
    i.external_id = Some(unique("ext"));
    i.organization_id = Some(Uuid::new_v4());
    // Username first: identifiers keep their order.
    i.set_credential(PASSWORD, vec![username.into(), email.into()], hash(), now);
    let addresses = json!({"addresses": [{"channel": "email", "address": email}]});
    i.set_credential(CODE, vec![email.into()], addresses, now);
    i.merge_verifiable_addresses(&[("email".into(), email.into()), ("sms".into(), phone)], now);
    let phone = &mut i.verifiable_addresses[1];
    phone.verified = true;
    phone.status = "completed".into();
    phone.verified_at = Some(now);
    i.merge_recovery_addresses(&[("email".into(), email.into())], now);
    i.available_aal = i.compute_available_aal(false);
    i
}

#[track_caller]
fn ids(identities: &[Identity]) -> Vec<Uuid> {
    identities.iter().map(|i| i.id).collect()
}

async fn list(store: &dyn Store, query: IdentityQuery) -> Vec<Identity> {
    store.list_identities(&query).await.expect("list identities")
}

pub async fn run(store: &dyn Store) -> Cast {
    let now = time_fmt::now();
    let (ada_email, ada_name) = (unique_email("ada"), unique("ada"));
    let mut ada = person(&ada_email, &ada_name, now);
    store.create_identity(&ada, None).await.expect("create ada");
    assert_eq!(store.get_identity(ada.id).await.expect("get ada"), ada);
    not_found(store.get_identity(Uuid::new_v4()).await, "unknown id");

    for (cred, identifier) in [(PASSWORD, &ada_name), (PASSWORD, &ada_email), (CODE, &ada_email)] {
        let found = store.find_identity_by_identifier(cred, identifier).await;
        assert_eq!(
            found.expect("find by identifier").id,
            ada.id,
            "{cred} {identifier}"
        );
    }
    not_found(
        store.find_identity_by_identifier(CODE, &ada_name).await,
        "identifier of another type",
    );
    not_found(
        store.find_identity_by_identifier(PASSWORD, "nobody").await,
        "unknown identifier",
    );
    use sallyport_core::store::AddressKind;
    for kind in [AddressKind::Verifiable, AddressKind::Recovery] {
        let found = store.find_identity_by_address(kind, "email", &ada_email).await;
        assert_eq!(found.expect("find by address").id, ada.id, "{kind:?}");
        not_found(
            store.find_identity_by_address(kind, "sms", &ada_email).await,
            "address on another channel",
        );
        not_found(
            store
                .find_identity_by_address(kind, "email", "nobody@example.org")
                .await,
            "unknown address",
        );
    }

    let external_id = ada.external_id.clone().expect("external id");
    assert_eq!(
        store
            .get_identity_by_external_id(&external_id)
            .await
            .expect("by external id"),
        ada
    );
    not_found(
        store.get_identity_by_external_id("nope").await,
        "unknown external id",
    );

    duplicates_write_nothing(store, &ada, now).await;
    let bob = update(store, &mut ada, &ada_email, &ada_name).await;
    listing(store, &ada, &bob).await;
    Cast { ada, bob }
}

/// Makes a fresh identity clash with ada on one unique column.
type Clash = fn(&mut Identity, &Identity, &str);

/// Each unique column refuses a second owner, and the refused identity leaves no row behind.
async fn duplicates_write_nothing(store: &dyn Store, ada: &Identity, now: OffsetDateTime) {
    let ada_email = ada.traits["email"].as_str().expect("email").to_string();
    let cases: [(&str, Clash); 4] = [
        ("identity_credential_identifiers", |eve, _, email| {
            let fresh = eve.credentials[PASSWORD].identifiers[0].clone();
            eve.set_credential(PASSWORD, vec![fresh, email.into()], hash(), eve.created_at);
        }),
        ("identity_verifiable_addresses", |eve, _, email| {
            eve.merge_verifiable_addresses(&[("email".into(), email.into())], eve.created_at);
        }),
        ("identity_recovery_addresses", |eve, _, email| {
            eve.merge_recovery_addresses(&[("email".into(), email.into())], eve.created_at);
        }),
        ("identities", |eve, ada, _| {
            eve.external_id = ada.external_id.clone()
        }),
    ];
    for (table, clash) in cases {
        let mut eve = person(&unique_email("eve"), &unique("eve"), now);
        clash(&mut eve, ada, &ada_email);
        let session = Session::issue(eve.id, Duration::hours(1), now).session;
        let created = store.create_identity(&eve, Some(&session)).await;
        conflict(created, table, "duplicate on create");
        not_found(store.get_identity(eve.id).await, "refused identity");
        not_found(store.get_session(session.id).await, "session of refused identity");
        let own = eve.credentials[PASSWORD].identifiers[0].clone();
        not_found(
            store.find_identity_by_identifier(PASSWORD, &own).await,
            "identifier of refused identity",
        );
    }
    assert_eq!(store.count_identities().await.expect("count"), 1);
}

/// Replaces ada's credentials and addresses; her old identifiers and addresses go to bob.
async fn update(store: &dyn Store, ada: &mut Identity, old_email: &str, old_name: &str) -> Identity {
    let later = time_fmt::now() + Duration::seconds(5);
    let new_email = unique_email("ada");
    ada.traits = json!({"email": new_email, "username": old_name, "name": {"first": "Ada", "last": "L"}});
    ada.state = IdentityState::Inactive;
    ada.state_changed_at = Some(later);
    ada.metadata_admin = None;
    ada.external_id = None;
    ada.credentials.remove(CODE);
    ada.set_credential(PASSWORD, vec![new_email.clone()], hash(), later);
    ada.merge_verifiable_addresses(&[("email".into(), new_email.clone())], later);
    ada.merge_recovery_addresses(&[("email".into(), new_email.clone())], later);
    ada.available_aal = ada.compute_available_aal(false);
    ada.updated_at = later;
    store.update_identity(ada).await.expect("update ada");
    assert_eq!(&store.get_identity(ada.id).await.expect("get ada"), ada);
    let found = store.find_identity_by_identifier(PASSWORD, &new_email).await;
    assert_eq!(found.expect("new identifier").id, ada.id);
    not_found(
        store.find_identity_by_identifier(PASSWORD, old_name).await,
        "replaced identifier",
    );
    not_found(
        store.find_identity_by_identifier(CODE, old_email).await,
        "removed credential",
    );

    let bob = person(old_email, old_name, later);
    store
        .create_identity(&bob, None)
        .await
        .expect("bob reuses freed identifiers and addresses");
    assert_eq!(store.get_identity(bob.id).await.expect("get bob"), bob);

    let mut clash = ada.clone();
    clash.set_credential(PASSWORD, vec![old_name.into()], hash(), later);
    clash.traits = json!({"changed": true});
    conflict(
        store.update_identity(&clash).await,
        "identity_credential_identifiers",
        "update clash",
    );
    assert_eq!(&store.get_identity(ada.id).await.expect("ada after clash"), ada);

    let ghost = person(&unique_email("ghost"), &unique("ghost"), later);
    not_found(store.update_identity(&ghost).await, "update of unknown identity");
    bob
}

async fn listing(store: &dyn Store, ada: &Identity, bob: &Identity) {
    let now = time_fmt::now();
    let mut all = vec![ada.clone(), bob.clone()];
    for n in 0..3 {
        let mut extra = person(&unique_email("extra"), &unique("extra"), now);
        if n == 1 {
            extra.credentials.clear();
            extra.verifiable_addresses.clear();
            extra.recovery_addresses.clear();
            extra.metadata_public = None;
        }
        store.create_identity(&extra, None).await.expect("create extra");
        all.push(extra);
    }
    all.sort_by_key(|i| i.id);
    assert_eq!(store.count_identities().await.expect("count"), 5);
    let limit = |limit| IdentityQuery {
        limit,
        ..Default::default()
    };
    assert_eq!(list(store, limit(100)).await, all);
    assert_eq!(list(store, limit(0)).await, all, "limit 0 means no limit");

    let mut paged = vec![];
    let mut after = None;
    loop {
        let page = list(
            store,
            IdentityQuery {
                after,
                limit: 2,
                ..Default::default()
            },
        )
        .await;
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        paged.extend(ids(&page));
    }
    assert_eq!(paged, ids(&all), "keyset pages");

    let offset = list(
        store,
        IdentityQuery {
            offset: Some(1),
            limit: 2,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(ids(&offset), ids(&all[1..3]));
    let beyond = list(
        store,
        IdentityQuery {
            offset: Some(9),
            ..Default::default()
        },
    )
    .await;
    assert!(beyond.is_empty());

    let by_ids = |ids| IdentityQuery {
        ids: Some(ids),
        limit: 10,
        ..Default::default()
    };
    let mut pair = vec![ada.id, bob.id];
    assert_eq!(ids(&list(store, by_ids(pair.clone())).await), {
        pair.sort();
        pair
    });
    assert!(list(store, by_ids(vec![])).await.is_empty());

    let old_name = bob.credentials[PASSWORD].identifiers[0].clone();
    let by_identifier = |s: &str| IdentityQuery {
        credentials_identifier: Some(s.into()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(list(store, by_identifier(&old_name)).await, vec![bob.clone()]);
    assert!(list(store, by_identifier("nobody")).await.is_empty());
}

/// An identity and its first session land together.
pub async fn create_with_session(store: &dyn Store) {
    let now = time_fmt::now();
    let carol = person(&unique_email("carol"), &unique("carol"), now);
    let mut session = Session::issue(carol.id, Duration::days(1), now).session;
    session.complete_method(PASSWORD, sallyport_core::session::Aal::Aal1, now);
    session.devices.push(Device {
        id: Uuid::new_v4(),
        ip_address: None,
        user_agent: Some("story".into()),
        location: None,
    });
    store
        .create_identity(&carol, Some(&session))
        .await
        .expect("create carol with session");
    assert_eq!(store.get_identity(carol.id).await.expect("get carol"), carol);
    assert_eq!(
        store.get_session(session.id).await.expect("carol's session"),
        session
    );
}

/// Deleting an identity takes its sessions, credentials, identifiers and addresses with it.
pub async fn delete_cascades(store: &dyn Store, ada: &Identity, ada_session: &Session) {
    let before = store.count_identities().await.expect("count");
    store.delete_identity(ada.id).await.expect("delete ada");
    not_found(store.get_identity(ada.id).await, "deleted identity");
    not_found(store.delete_identity(ada.id).await, "second delete");
    not_found(
        store.get_session(ada_session.id).await,
        "session of deleted identity",
    );
    let email = ada.traits["email"].as_str().expect("email");
    not_found(
        store.find_identity_by_identifier(PASSWORD, email).await,
        "identifier of deleted identity",
    );
    assert_eq!(store.count_identities().await.expect("count"), before - 1);

    let dora = person(email, &unique("dora"), time_fmt::now());
    store
        .create_identity(&dora, None)
        .await
        .expect("dora reuses what ada left");
}

/// A batch (`create_identities`) is stored in one go, except the identities whose identifier is taken,
/// by a stored identity or by an earlier one in the same batch: those are reported and left out.
pub async fn create_many(store: &dyn Store, ada: &Identity) {
    let now = time_fmt::now();
    let ada_name = ada.credentials[PASSWORD].identifiers[0].clone();
    let a_name = unique("batch-a");
    let a = person(&unique_email("batch-a"), &a_name, now);
    let b = person(&unique_email("batch-b"), &unique("batch-b"), now);
    let takes_adas = person(&unique_email("batch-c"), &ada_name, now);
    let takes_as = person(&unique_email("batch-d"), &a_name, now);
    let batch = [a.clone(), takes_adas.clone(), b.clone(), takes_as.clone()];
    let mut results = store
        .create_identities(&batch)
        .await
        .expect("create a batch")
        .into_iter();
    assert!(matches!(results.next(), Some(Ok(()))));
    let table = "identity_credential_identifiers";
    conflict(
        results.next().expect("4 results"),
        table,
        "identifier of a stored identity",
    );
    assert!(matches!(results.next(), Some(Ok(()))));
    conflict(
        results.next().expect("4 results"),
        table,
        "identifier taken earlier in the batch",
    );
    assert!(results.next().is_none());
    for stored in [&a, &b] {
        assert_eq!(
            &store.get_identity(stored.id).await.expect("get batch member"),
            stored
        );
    }
    for refused in [&takes_adas, &takes_as] {
        not_found(store.get_identity(refused.id).await, "refused batch member");
    }
    let (c, d) = (
        person(&unique_email("batch-e"), &unique("batch-e"), now),
        person(&unique_email("batch-f"), &unique("batch-f"), now),
    );
    let results = store
        .create_identities(&[c.clone(), d.clone()])
        .await
        .expect("create a clean batch");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(store.get_identity(d.id).await.expect("get d"), d);
    let found = store
        .find_identity_by_identifier(CODE, c.traits["email"].as_str().unwrap_or_default())
        .await;
    assert_eq!(found.expect("find batch member by identifier").id, c.id);
    assert!(
        store
            .create_identities(&[])
            .await
            .expect("empty batch")
            .is_empty()
    );
    full_statements(store, &ada_name, now).await;
}

/// Batches longer than one multi-row statement: a conflict inside a full (cached) statement still
/// leaves the rest stored, and the cached statements serve the next batch after that failure.
async fn full_statements(store: &dyn Store, ada_name: &str, now: OffsetDateTime) {
    let batch = |tag: &str| -> Vec<Identity> {
        (0..250)
            .map(|n| {
                person(
                    &unique_email(&format!("{tag}{n}")),
                    &unique(&format!("{tag}{n}")),
                    now,
                )
            })
            .collect()
    };
    let mut first = batch("full-a");
    first[150] = person(&unique_email("full-taken"), ada_name, now);
    let results = store.create_identities(&first).await.expect("a long batch");
    assert_eq!(results.len(), 250);
    for (n, result) in results.into_iter().enumerate() {
        match n {
            150 => conflict(
                result,
                "identity_credential_identifiers",
                "taken in a full statement",
            ),
            _ => assert!(result.is_ok(), "{n}: {result:?}"),
        }
    }
    not_found(
        store.get_identity(first[150].id).await,
        "refused long-batch member",
    );
    for n in [0, 99, 100, 151, 249] {
        assert_eq!(&store.get_identity(first[n].id).await.expect("get"), &first[n]);
    }
    let second = batch("full-b");
    let results = store
        .create_identities(&second)
        .await
        .expect("the next long batch");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    for n in [0, 100, 249] {
        assert_eq!(&store.get_identity(second[n].id).await.expect("get"), &second[n]);
    }
}
