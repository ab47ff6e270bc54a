//! The conformance story: every storage call in the order an identity lives through them, run by
//! each backend's `tests/story.rs` (atuin's `db_story`). Give it a fresh, unmigrated database: it
//! migrates first and ends by migrating down and up again. It panics at the first difference.

mod attempts;
mod codes;
mod courier;
mod flows;
mod identities;
mod migrations;
pub mod races;
mod rate_limits;
mod sessions;
mod token_exchanges;
mod web_hooks;

use std::fmt::Debug;

use sallyport_core::store::{Store, StoreError, StoreResult};
use uuid::Uuid;

pub async fn run(store: &dyn Store) {
    migrations::up(store).await;
    let cast = identities::run(store).await;
    identities::create_many(store, &cast.ada).await;
    let ada_session = sessions::run(store, &cast).await;
    identities::create_with_session(store).await;
    flows::run(store).await;
    flows::errors(store).await;
    courier::run(store).await;
    codes::run(store).await;
    attempts::run(store).await;
    rate_limits::run(store).await;
    token_exchanges::run(store).await;
    web_hooks::run(store).await;
    identities::delete_cascades(store, &cast.ada, &ada_session).await;
    migrations::down_and_up(store).await;
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", Uuid::new_v4().simple())
}

fn unique_email(name: &str) -> String {
    format!("{}@example.org", unique(name))
}

#[track_caller]
fn not_found<T: Debug>(result: StoreResult<T>, what: &str) {
    match result {
        Err(StoreError::NotFound) => {}
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

#[track_caller]
fn conflict<T: Debug>(result: StoreResult<T>, table: &str, what: &str) {
    match result {
        Err(StoreError::Conflict(t)) if t == table => {}
        other => panic!("{what}: expected Conflict({table}), got {other:?}"),
    }
}
