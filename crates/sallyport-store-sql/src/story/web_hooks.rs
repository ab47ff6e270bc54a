//! The web hook outbox: enqueue, exclusive leases, retry due times, expired leases, depth.

use sallyport_core::store::Store;
use sallyport_core::web_hook::{OutboxItem, OutboxOutcome};
use uuid::Uuid;

use super::not_found;

fn item(n: i64) -> OutboxItem {
    OutboxItem {
        id: Uuid::new_v4(),
        hook_key: "key".into(),
        url: "https://hooks.example.org/sync".into(),
        body: format!("{{\"n\":{n}}}"),
        attempts: 0,
        created_ms: 1_000 + n,
    }
}

pub async fn run(store: &dyn Store) {
    let depth0 = store.web_hook_outbox_depth().await.unwrap();
    let (a, b) = (item(1), item(2));
    store.enqueue_web_hook(&a, 1_001).await.unwrap();
    store.enqueue_web_hook(&b, 1_002).await.unwrap();
    assert_eq!(store.web_hook_outbox_depth().await.unwrap(), depth0 + 2);

    // Not due before it was queued; then both, oldest first; a second claim gets nothing while leased.
    assert!(store.claim_web_hooks(10, 500, 1_000).await.unwrap().is_empty());
    let got = store.claim_web_hooks(10, 500, 2_000).await.unwrap();
    assert_eq!(got.iter().map(|i| i.id).collect::<Vec<_>>(), [a.id, b.id]);
    assert_eq!(got[0].body, a.body);
    assert_eq!(got[0].attempts, 0);
    assert!(
        store.claim_web_hooks(10, 500, 2_100).await.unwrap().is_empty(),
        "leased"
    );

    store
        .finish_web_hook(a.id, &OutboxOutcome::Delivered, 2_200)
        .await
        .unwrap();
    not_found(
        store
            .finish_web_hook(a.id, &OutboxOutcome::Delivered, 2_300)
            .await,
        "a delivered row is not leased any more",
    );
    store
        .finish_web_hook(
            b.id,
            &OutboxOutcome::Retry {
                at_ms: 5_000,
                error: "503".into(),
            },
            2_200,
        )
        .await
        .unwrap();
    assert!(
        store.claim_web_hooks(10, 500, 4_999).await.unwrap().is_empty(),
        "not due yet"
    );
    let got = store.claim_web_hooks(10, 500, 5_000).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].attempts, 1);
    // A worker that died: its lease runs out and another claims the row.
    let again = store.claim_web_hooks(10, 500, 5_501).await.unwrap();
    assert_eq!(again.iter().map(|i| i.id).collect::<Vec<_>>(), [b.id]);
    store
        .finish_web_hook(b.id, &OutboxOutcome::Abandon { error: "gone".into() }, 5_600)
        .await
        .unwrap();
    assert!(store.claim_web_hooks(10, 500, 100_000).await.unwrap().is_empty());
    assert_eq!(store.web_hook_outbox_depth().await.unwrap(), depth0);
    assert!(store.claim_web_hooks(0, 500, 100_000).await.unwrap().is_empty());

    // Finished rows are pruned once old enough; queued ones never.
    let c = item(3);
    store.enqueue_web_hook(&c, 1_003).await.unwrap();
    assert_eq!(
        store.prune_web_hooks(5_600).await.unwrap(),
        1,
        "a, delivered at 2_200"
    );
    assert_eq!(
        store.prune_web_hooks(1_000_000).await.unwrap(),
        1,
        "b, abandoned at 5_600"
    );
    assert_eq!(store.web_hook_outbox_depth().await.unwrap(), depth0 + 1);
    let got = store.claim_web_hooks(10, 500, 1_000_000).await.unwrap();
    assert_eq!(got.iter().map(|i| i.id).collect::<Vec<_>>(), [c.id]);
    store
        .finish_web_hook(c.id, &OutboxOutcome::Delivered, 1_000_001)
        .await
        .unwrap();
}
