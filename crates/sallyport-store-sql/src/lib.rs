//! The SQL store implementation, shared by the SQLite and PostgreSQL backends through a macro.
//!
//! Every query is written once here, with `$1, $2…` placeholders (sqlx's SQLite driver accepts them),
//! and [`impl_sql_store!`] stamps the `sallyport_core::store` traits onto a backend's struct for its
//! concrete `sqlx::Database`. Macros instead of generic functions: the bounds a generic
//! `Executor`/`Encode` version needs are long and trip the `Send` checks of `async_trait` futures.
//!
//! The backend struct must have two fields, `writer`, a `sqlx::Pool<DB>`, and `reader`, anything with
//! an `async fn acquire(&self) -> Result<impl DerefMut<Target = DB::Connection>, sqlx::Error>` (a
//! `Pool<DB>`, or the SQLite backend's own `Readers`): reads use `reader`, writes and transactions
//! `writer`; and `group`, an `Option<Arc<GroupWriter<DB>>>`: when
//! set, the writes of the request hot paths (flows, codes, counters, new sessions) go through it and
//! are group-committed (see `group`). Column types differ per dialect (see each backend's
//! `migrations/`) so that the same Rust values bind on both: `Uuid`, [`Ts`], `Json<_>`, `bool`, `i32`/`i64`.
//!
//! Errors: unique violations become `StoreError::Conflict(<table>)` (e.g. `identity_credential_identifiers`,
//! `identity_verifiable_addresses`, `identities` for `external_id`, `sessions`, `courier_messages`),
//! missing rows `NotFound`.

mod args;
mod bulk;
mod bulk_sqlite;
mod cache;
mod code;
mod copy;
mod courier;
mod error;
mod flow;
mod group;
mod identity;
mod import;
mod inline;
mod migration;
mod rate_limit;
mod raw_sqlite;
mod rows;
mod session;
pub mod story;
mod token_exchange;
mod ts;
mod web_hook;

pub use args::{Arg, Sql, bind_all, bind_all_query};
pub use bulk_sqlite::StagedInsert;
pub use cache::ReadCache;
pub use copy::BulkCopy;
pub use error::{db_err, other_err};
pub use group::{BoxFuture, GroupWriter};
pub use inline::InlineReaders;
pub use ts::Ts;

/// The savepoint a batched SQLite write opens and releases within its own query.
#[doc(hidden)]
pub const BATCH_SAVEPOINT: &str = "sallyport_batch";

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

    pub use crate::bulk::{
        MAX_BINDS as BULK_MAX_BINDS, ROWS_PER_STATEMENT as BULK_ROWS_PER_STATEMENT,
        identifier_rows as bulk_identifier_rows, sql as bulk_sql,
    };
    pub use crate::code::{
        AttemptRow, Budget as CodeBudget, CodeRow, attempt_batch, batch as code_batch, sql as code_sql,
    };
    pub use crate::courier::{DispatchRow, MessageRow, sql as courier_sql};
    pub use crate::flow::sql as flow_sql;
    pub use crate::identity::{ID_CHUNK, sql as identity_sql};
    pub use crate::import::sql as import_sql;
    pub use crate::inline::identity as inline_identity;
    pub use crate::migration::{sql as migration_sql, undo_target};
    pub use crate::rate_limit::sql as rate_limit_sql;
    pub use crate::raw_sqlite::Value as RawValue;
    pub use crate::rows::*;
    pub use crate::session::sql as session_sql;
    pub use crate::token_exchange::{ExchangerRow, sql as token_exchange_sql};
    pub use crate::web_hook::{ClaimedRow as WebHookRow, item as web_hook_item, sql as web_hook_sql};
}

/// Implements every trait of `sallyport_core::store::Store` for `$store`, whose `writer` field is a
/// `sqlx::Pool<$db>` and whose `reader` field hands out connections of `$db` (see above), with `$migrator` (a `sqlx::migrate::Migrator`) driving
/// `MigrationStore`. `row_lock` ends the one query that differs per dialect, the courier's claim: the
/// clause that makes concurrent workers skip rows another one is claiming (see `courier::sql::claim`).
///
/// ```ignore
/// static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
/// sallyport_store_sql::impl_sql_store!(SqliteStore, sqlx::Sqlite, MIGRATOR, row_lock = "");
/// sallyport_store_sql::impl_sql_store!(PgStore, sqlx::Postgres, MIGRATOR, row_lock = "FOR UPDATE SKIP LOCKED");
/// ```
#[macro_export]
macro_rules! impl_sql_store {
    ($store:ty, $db:ty, $migrator:expr, row_lock = $row_lock:expr) => {
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

            impl $store {
                /// After a committed change to sessions or identities: this node's caches forget, and
                /// on a shared database (PostgreSQL) every other node is told to forget too.
                async fn cache_changed(&self) {
                    self.cache.invalidate();
                    if let Some(sql) = self.cache.announce_sql() {
                        if let Err(e) = sqlx::query(sql).execute(&self.writer).await {
                            tracing::warn!(error = %e, "unable to announce a session change to other nodes");
                        }
                    }
                }
            }

            impl $store {
                /// A connection to read on: `reader` is anything whose `acquire()` gives a guard of
                /// a connection (a `Pool`, or the SQLite backend's own read-only connections).
                async fn read(&self) -> StoreResult<impl std::ops::DerefMut<Target = Conn> + Send + '_> {
                    self.reader.acquire().await.map_err($crate::db_err)
                }

                /// Runs a write job on the writer connection: through the group writer when there is
                /// one, else directly on a pooled connection.
                async fn write<T, F>(&self, job: F) -> StoreResult<T>
                where
                    T: Send + 'static,
                    F: for<'c> FnOnce(&'c mut Conn) -> $crate::BoxFuture<'c, StoreResult<T>> + Send + 'static,
                {
                    match &self.group {
                        Some(g) => g.write(job).await,
                        None => {
                            let mut conn = self.writer.acquire().await.map_err($crate::db_err)?;
                            job(&mut *conn).await
                        }
                    }
                }
            }

            /// SQLite: runs a batch of statements (see `Sql::append_statement`) as one query, inside
            /// a savepoint that is part of the same query, so it is all or nothing at the cost of
            /// one hand-off to the connection's thread: in a group's transaction it is a nested
            /// savepoint, alone its own transaction. The rows are those its statements return.
            async fn batch_in_savepoint(
                conn: &mut Conn,
                batch: $crate::Sql,
            ) -> StoreResult<Vec<<Db as sqlx::Database>::Row>> {
                let text = format!(
                    "SAVEPOINT {sp}; {}; RELEASE {sp}",
                    batch.text,
                    sp = $crate::BATCH_SAVEPOINT
                );
                let done = $crate::bind_all_query(sqlx::query::<Db>(&text), batch.args)
                    .fetch_all(&mut *conn)
                    .await;
                let failed = match done {
                    Ok(rows) => return Ok(rows),
                    Err(e) => $crate::db_err(e),
                };
                // What ran of it is undone; a transaction around it keeps its other work.
                let undo = format!(
                    "ROLLBACK TO {sp}; RELEASE {sp}",
                    sp = $crate::BATCH_SAVEPOINT
                );
                if let Err(e) = sqlx::query(&undo).execute(&mut *conn).await {
                    return Err($crate::other_err(format!(
                        "{failed}; and undoing it failed: {e}"
                    )));
                }
                Err(failed)
            }

            $crate::__identity_helpers!();
            $crate::__bulk_helpers!();
            $crate::__courier_helpers!();
            $crate::__impl_identity_store!($store);
            $crate::__impl_session_store!($store);
            $crate::__impl_flow_store!($store);
            $crate::__impl_courier_store!($store, $row_lock);
            $crate::__impl_code_store!($store);
            $crate::__impl_rate_limit_store!($store);
            $crate::__impl_migration_store!($store, $migrator);
            $crate::__impl_import_store!($store);
            $crate::__impl_token_exchange_store!($store);
            $crate::__impl_web_hook_store!($store, $row_lock);
        };
    };
}
