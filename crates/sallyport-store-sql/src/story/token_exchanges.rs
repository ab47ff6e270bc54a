//! Session token exchangers: created with a flow, found by flow and by init code, moved to the flow a
//! registration continues as, settled with a session, consumed once, and cleaned up after expiry.

use sallyport_core::store::Store;
use sallyport_core::time_fmt;
use sallyport_core::token_exchange::Exchanger;
use uuid::Uuid;

use super::{not_found, unique};

pub async fn run(store: &dyn Store) {
    let now = time_fmt::now();
    let flow = Uuid::new_v4();
    let e = Exchanger {
        id: Uuid::new_v4(),
        flow_id: flow,
        init_code_digest: unique("init"),
        return_to_code_digest: unique("return"),
        return_to_code_sealed: unique("sealed"),
        session_id: None,
        session_token_sealed: None,
        created_at: now,
        expires_at: now + time::Duration::HOUR,
    };
    store.create_exchanger(&e).await.expect("create exchanger");
    assert_eq!(store.exchanger_for_flow(flow).await.expect("by flow"), e);
    not_found(
        store.exchanger_for_flow(Uuid::new_v4()).await,
        "exchanger of another flow",
    );
    not_found(
        store.exchanger_by_init_code(&unique("init")).await,
        "exchanger of an unknown init code",
    );

    let next = Uuid::new_v4();
    store.move_exchanger(flow, next).await.expect("move");
    not_found(
        store.exchanger_for_flow(flow).await,
        "exchanger of the moved-from flow",
    );
    let session = Uuid::new_v4();
    store
        .settle_exchanger(next, session, "sealed-token")
        .await
        .expect("settle");
    not_found(
        store.settle_exchanger(flow, session, "x").await,
        "settling a flow without exchanger",
    );
    let got = store
        .exchanger_by_init_code(&e.init_code_digest)
        .await
        .expect("by init code");
    assert_eq!(got.flow_id, next);
    assert_eq!(got.session_id, Some(session));
    assert_eq!(got.session_token_sealed.as_deref(), Some("sealed-token"));

    assert!(store.consume_exchanger(e.id).await.expect("consume"));
    assert!(!store.consume_exchanger(e.id).await.expect("consume twice"));
    not_found(
        store.exchanger_by_init_code(&e.init_code_digest).await,
        "a consumed exchanger",
    );

    let old = Exchanger {
        id: Uuid::new_v4(),
        flow_id: Uuid::new_v4(),
        init_code_digest: unique("init"),
        expires_at: now - time::Duration::SECOND,
        ..e.clone()
    };
    store.create_exchanger(&old).await.expect("create expired");
    assert!(store.delete_expired_exchangers(now).await.expect("cleanup") >= 1);
    not_found(
        store.exchanger_by_init_code(&old.init_code_digest).await,
        "an expired exchanger after cleanup",
    );
}
