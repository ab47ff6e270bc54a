//! Session token exchangers (`sallyport_core::token_exchange`): one row per native flow started with
//! `return_session_token_exchange_code`.

use sallyport_core::token_exchange::Exchanger;
use uuid::Uuid;

use crate::Ts;

pub mod sql {
    const COLUMNS: &str = "id, flow_id, init_code_digest, return_to_code_digest, return_to_code_sealed, \
         session_id, session_token_sealed, created_at, expires_at";

    pub const INSERT: &str = "INSERT INTO sallyport_session_token_exchanges (id, flow_id, init_code_digest, \
         return_to_code_digest, return_to_code_sealed, session_id, session_token_sealed, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
    pub fn by_flow() -> String {
        format!("SELECT {COLUMNS} FROM sallyport_session_token_exchanges WHERE flow_id = $1")
    }
    pub fn by_init_code() -> String {
        format!("SELECT {COLUMNS} FROM sallyport_session_token_exchanges WHERE init_code_digest = $1")
    }
    pub const MOVE: &str = "UPDATE sallyport_session_token_exchanges SET flow_id = $2 WHERE flow_id = $1";
    pub const SETTLE: &str = "UPDATE sallyport_session_token_exchanges \
         SET session_id = $2, session_token_sealed = $3 WHERE flow_id = $1";
    pub const CONSUME: &str = "DELETE FROM sallyport_session_token_exchanges WHERE id = $1";
    pub const DELETE_EXPIRED: &str = "DELETE FROM sallyport_session_token_exchanges WHERE expires_at <= $1";
}

#[derive(sqlx::FromRow)]
pub struct ExchangerRow {
    id: Uuid,
    flow_id: Uuid,
    init_code_digest: String,
    return_to_code_digest: String,
    return_to_code_sealed: String,
    session_id: Option<Uuid>,
    session_token_sealed: Option<String>,
    created_at: Ts,
    expires_at: Ts,
}

impl From<ExchangerRow> for Exchanger {
    fn from(r: ExchangerRow) -> Exchanger {
        Exchanger {
            id: r.id,
            flow_id: r.flow_id,
            init_code_digest: r.init_code_digest,
            return_to_code_digest: r.return_to_code_digest,
            return_to_code_sealed: r.return_to_code_sealed,
            session_id: r.session_id,
            session_token_sealed: r.session_token_sealed,
            created_at: r.created_at.0,
            expires_at: r.expires_at.0,
        }
    }
}

#[doc(hidden)]
#[macro_export]
macro_rules! __impl_token_exchange_store {
    ($store:ty) => {
        #[$crate::__private::async_trait]
        impl $crate::__private::sallyport_core::token_exchange::TokenExchangeStore for $store {
            #[tracing::instrument(level = "debug", skip_all)]
            async fn create_exchanger(
                &self,
                e: &$crate::__private::sallyport_core::token_exchange::Exchanger,
            ) -> StoreResult<()> {
                use $crate::Ts;
                sqlx::query($crate::__private::token_exchange_sql::INSERT)
                    .bind(e.id)
                    .bind(e.flow_id)
                    .bind(e.init_code_digest.as_str())
                    .bind(e.return_to_code_digest.as_str())
                    .bind(e.return_to_code_sealed.as_str())
                    .bind(e.session_id)
                    .bind(e.session_token_sealed.as_deref())
                    .bind(Ts(e.created_at))
                    .bind(Ts(e.expires_at))
                    .execute(&self.writer)
                    .await
                    .map_err($crate::db_err)?;
                Ok(())
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn exchanger_for_flow(
                &self,
                flow_id: $crate::__private::uuid::Uuid,
            ) -> StoreResult<$crate::__private::sallyport_core::token_exchange::Exchanger> {
                use $crate::__private::ExchangerRow;
                // The writer: the flow that reads it may have been settled a moment ago on this node.
                sqlx::query_as::<Db, ExchangerRow>(&$crate::__private::token_exchange_sql::by_flow())
                    .bind(flow_id)
                    .fetch_optional(&self.writer)
                    .await
                    .map_err($crate::db_err)?
                    .map(Into::into)
                    .ok_or(StoreError::NotFound)
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn move_exchanger(
                &self,
                from_flow: $crate::__private::uuid::Uuid,
                to_flow: $crate::__private::uuid::Uuid,
            ) -> StoreResult<()> {
                sqlx::query($crate::__private::token_exchange_sql::MOVE)
                    .bind(from_flow)
                    .bind(to_flow)
                    .execute(&self.writer)
                    .await
                    .map_err($crate::db_err)?;
                Ok(())
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn settle_exchanger(
                &self,
                flow_id: $crate::__private::uuid::Uuid,
                session_id: $crate::__private::uuid::Uuid,
                session_token_sealed: &str,
            ) -> StoreResult<()> {
                let done = sqlx::query($crate::__private::token_exchange_sql::SETTLE)
                    .bind(flow_id)
                    .bind(session_id)
                    .bind(session_token_sealed)
                    .execute(&self.writer)
                    .await
                    .map_err($crate::db_err)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn exchanger_by_init_code(
                &self,
                init_code_digest: &str,
            ) -> StoreResult<$crate::__private::sallyport_core::token_exchange::Exchanger> {
                use $crate::__private::ExchangerRow;
                sqlx::query_as::<Db, ExchangerRow>(&$crate::__private::token_exchange_sql::by_init_code())
                    .bind(init_code_digest)
                    .fetch_optional(&self.writer)
                    .await
                    .map_err($crate::db_err)?
                    .map(Into::into)
                    .ok_or(StoreError::NotFound)
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn consume_exchanger(&self, id: $crate::__private::uuid::Uuid) -> StoreResult<bool> {
                let done = sqlx::query($crate::__private::token_exchange_sql::CONSUME)
                    .bind(id)
                    .execute(&self.writer)
                    .await
                    .map_err($crate::db_err)?;
                Ok(done.rows_affected() == 1)
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn delete_expired_exchangers(
                &self,
                now: $crate::__private::time::OffsetDateTime,
            ) -> StoreResult<u64> {
                let done = sqlx::query($crate::__private::token_exchange_sql::DELETE_EXPIRED)
                    .bind($crate::Ts(now))
                    .execute(&self.writer)
                    .await
                    .map_err($crate::db_err)?;
                Ok(done.rows_affected())
            }
        }
    };
}
