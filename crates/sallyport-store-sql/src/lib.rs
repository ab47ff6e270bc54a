//! The SQL store implementation, shared by the SQLite and PostgreSQL backends through a macro.
//!
//! Every query is written once here, with `$1, $2…` placeholders (sqlx's SQLite driver accepts them),
//! and [`impl_sql_store!`] stamps the `sallyport_core::store` traits onto a backend's struct for its
//! concrete `sqlx::Database`. Macros instead of generic functions: the bounds a generic
//! `Executor`/`Encode` version needs are long and trip the `Send` checks of `async_trait` futures.
//!
//! The backend struct must have two fields, `writer` and `reader`, both `sqlx::Pool<DB>`: reads use
//! `reader`, writes and transactions `writer`. Column types differ per dialect (see each backend's
//! `migrations/`) so that the same Rust values bind on both: `Uuid`, [`Ts`], `Json<_>`, `bool`, `i32`/`i64`.
//!
//! Errors: unique violations become `StoreError::Conflict(<table>)` (e.g. `identity_credential_identifiers`,
//! `identity_verifiable_addresses`, `identities` for `external_id`, `sessions`), missing rows `NotFound`.

mod args;
mod error;
mod flow;
mod identity;
mod migration;
mod rows;
mod session;
pub mod story;
mod ts;

pub use args::{Arg, Sql, bind_all, bind_all_query};
pub use error::{db_err, other_err};
pub use ts::Ts;

/// What the macros need at their call site, so backend crates don't have to name these crates.
#[doc(hidden)]
pub mod __private {
    pub use async_trait::async_trait;
    pub use sallyport_core;
    pub use serde_json;
    pub use sqlx;
    pub use time;
    pub use tracing;
    pub use uuid;

    pub use crate::flow::sql as flow_sql;
    pub use crate::identity::{ID_CHUNK, sql as identity_sql};
    pub use crate::migration::{sql as migration_sql, undo_target};
    pub use crate::rows::*;
    pub use crate::session::sql as session_sql;
}

/// Implements every trait of `sallyport_core::store` for `$store`, whose `writer` and `reader` fields
/// are `sqlx::Pool<$db>`, with `$migrator` (a `sqlx::migrate::Migrator`) driving `MigrationStore`.
///
/// ```ignore
/// static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
/// sallyport_store_sql::impl_sql_store!(SqliteStore, sqlx::Sqlite, MIGRATOR);
/// ```
#[macro_export]
macro_rules! impl_sql_store {
    ($store:ty, $db:ty, $migrator:expr) => {
        const _: () = {
            #[allow(unused_imports)]
            use $crate::__private::sallyport_core::{
                flow::{Flow, FlowKind},
                identity::Identity,
                session::Session,
                store::{
                    ErrorStore, FlowStore, IdentityQuery, IdentityStore, MigrationStatus, MigrationStore,
                    SessionQuery, SessionStore, StoreError, StoreResult,
                },
            };
            use $crate::__private::sqlx;
            use $crate::__private::tracing;

            type Db = $db;
            type Conn = <$db as $crate::__private::sqlx::Database>::Connection;
            type DbPool = $crate::__private::sqlx::Pool<$db>;

            $crate::__identity_helpers!();
            $crate::__impl_identity_store!($store);
            $crate::__impl_session_store!($store);
            $crate::__impl_flow_store!($store);
            $crate::__impl_migration_store!($store, $migrator);
        };
    };
}
