use sallyport_core::store::Store;

pub async fn up(store: &dyn Store) {
    let status = store
        .migration_status()
        .await
        .expect("status of an empty database");
    assert!(!status.is_empty(), "no migrations embedded");
    assert!(
        status.iter().all(|m| !m.applied),
        "fresh database has applied migrations: {status:?}"
    );
    assert!(
        status.windows(2).all(|w| w[0].version < w[1].version),
        "{status:?}"
    );
    store.migrate_up().await.expect("migrate up");
    store.migrate_up().await.expect("migrate up twice");
    let status = store.migration_status().await.expect("status");
    assert!(
        status.iter().all(|m| m.applied),
        "pending after migrate up: {status:?}"
    );
    store.ping().await.expect("ping");
}

pub async fn down_and_up(store: &dyn Store) {
    let all = store.migration_status().await.expect("status");
    store.migrate_down(0).await.expect("migrate down 0");
    assert_eq!(store.migration_status().await.expect("status"), all);

    store.migrate_down(1).await.expect("migrate down 1");
    let status = store.migration_status().await.expect("status");
    let (newest, older) = status.split_last().expect("migrations");
    assert!(!newest.applied, "{status:?}");
    assert!(older.iter().all(|m| m.applied), "{status:?}");

    store.migrate_down(u32::MAX).await.expect("migrate all down");
    let status = store.migration_status().await.expect("status");
    assert!(status.iter().all(|m| !m.applied), "{status:?}");

    store.migrate_up().await.expect("migrate up again");
    assert_eq!(store.migration_status().await.expect("status"), all);
    assert_eq!(store.count_identities().await.expect("count"), 0);
}
