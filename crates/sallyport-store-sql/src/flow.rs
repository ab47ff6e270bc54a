//! Self-service flows (stored whole, as the serde form of `Flow`) and self-service errors.

pub mod sql {
    pub const INSERT_FLOW: &str = "INSERT INTO selfservice_flows (id, kind, flow, expires_at, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6)";
    pub const GET_FLOW: &str = "SELECT flow FROM selfservice_flows WHERE id = $1 AND kind = $2";
    pub const UPDATE_FLOW: &str = "UPDATE selfservice_flows SET flow = $3, expires_at = $4, updated_at = $5 \
         WHERE id = $1 AND kind = $2";
    pub const INSERT_ERROR: &str =
        "INSERT INTO selfservice_errors (id, error, created_at, updated_at) VALUES ($1, $2, $3, $4)";
    pub const GET_ERROR: &str = "SELECT error, created_at, updated_at FROM selfservice_errors WHERE id = $1";

    use sallyport_core::flow::Flow;
    use sallyport_core::store::StoreResult;
    use serde_json::value::RawValue;

    /// The flow's JSON, encoded before it goes to the writer so no write waits on it.
    pub fn raw_json(flow: &Flow) -> StoreResult<Box<RawValue>> {
        serde_json::value::to_raw_value(flow).map_err(crate::other_err)
    }

    /// What `UPDATE_FLOW` binds, owned, for a write job.
    pub struct FlowUpdate {
        pub id: uuid::Uuid,
        pub kind: &'static str,
        pub json: Box<RawValue>,
        pub expires_at: time::OffsetDateTime,
        pub updated_at: time::OffsetDateTime,
    }

    impl FlowUpdate {
        pub fn of(flow: &Flow) -> StoreResult<FlowUpdate> {
            Ok(FlowUpdate {
                id: flow.id,
                kind: flow.kind.as_str(),
                json: raw_json(flow)?,
                expires_at: flow.expires_at,
                updated_at: flow.updated_at,
            })
        }

        /// Appends `UPDATE_FLOW … RETURNING id` to a batch (see `Sql::append_statement`): the batched
        /// writes after it insert only when it returned the flow's id, i.e. when the flow still exists.
        pub fn append_returning_id(&self, b: &mut crate::Sql) {
            self.append_returning_id_if(b, |_| {});
        }

        /// `append_returning_id` with more conditions, which `conditions` pushes, each after an
        /// ` AND ` (binding what it needs on the statement it is given).
        pub fn append_returning_id_if(&self, b: &mut crate::Sql, conditions: impl FnOnce(&mut crate::Sql)) {
            use crate::{Arg, Ts};
            let mut st = crate::Sql {
                text: UPDATE_FLOW.to_owned(),
                args: vec![
                    Arg::Uuid(self.id),
                    Arg::Text(self.kind.to_owned()),
                    Arg::Text(self.json.get().to_owned()),
                    Arg::Ts(Ts(self.expires_at)),
                    Arg::Ts(Ts(self.updated_at)),
                ],
            };
            conditions(&mut st);
            st.push(" RETURNING id");
            b.append_statement(&st.text, st.args);
        }
    }
}

#[doc(hidden)]
#[macro_export]
macro_rules! __impl_flow_store {
    ($store:ty) => {
        /// Stores a flow's new state; `NotFound` when there is no such flow.
        async fn update_flow_row(
            conn: &mut Conn,
            u: $crate::__private::flow_sql::FlowUpdate,
        ) -> StoreResult<()> {
            use sqlx::types::Json;
            use $crate::Ts;
            let done = sqlx::query($crate::__private::flow_sql::UPDATE_FLOW)
                .bind(u.id)
                .bind(u.kind)
                .bind(Json(u.json))
                .bind(Ts(u.expires_at))
                .bind(Ts(u.updated_at))
                .execute(&mut *conn)
                .await
                .map_err($crate::db_err)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        }

        #[$crate::__private::async_trait]
        impl FlowStore for $store {
            #[tracing::instrument(level = "debug", skip_all)]
            async fn create_flow(&self, flow: &Flow) -> StoreResult<()> {
                use sqlx::types::Json;
                use $crate::Ts;
                let (id, kind) = (flow.id, flow.kind.as_str());
                let json = Json($crate::__private::flow_sql::raw_json(flow)?);
                let (expires_at, created_at, updated_at) =
                    (flow.expires_at, flow.created_at, flow.updated_at);
                self.write(move |conn: &mut Conn| {
                    Box::pin(async move {
                        sqlx::query($crate::__private::flow_sql::INSERT_FLOW)
                            .bind(id)
                            .bind(kind)
                            .bind(json)
                            .bind(Ts(expires_at))
                            .bind(Ts(created_at))
                            .bind(Ts(updated_at))
                            .execute(&mut *conn)
                            .await
                            .map_err($crate::db_err)?;
                        Ok(())
                    })
                })
                .await
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn get_flow(&self, kind: FlowKind, id: $crate::__private::uuid::Uuid) -> StoreResult<Flow> {
                use $crate::__private::RawValue;
                let args = [RawValue::Blob(id.as_bytes()), RawValue::Text(kind.as_str())];
                // Not read here, or not stored as text: the usual read below decides.
                if let Some(inline) = &self.inline
                    && let Some(found) =
                        inline.first_row($crate::__private::flow_sql::GET_FLOW, &args, |r| r.text(0))
                {
                    let json = found.ok_or(StoreError::NotFound)?;
                    return $crate::__private::serde_json::from_slice(&json).map_err($crate::other_err);
                }
                let flow: sqlx::types::Json<Flow> = sqlx::query_scalar($crate::__private::flow_sql::GET_FLOW)
                    .bind(id)
                    .bind(kind.as_str())
                    .fetch_optional(&mut *self.read().await?)
                    .await
                    .map_err($crate::db_err)?
                    .ok_or(StoreError::NotFound)?;
                Ok(flow.0)
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn update_flow(&self, flow: &Flow) -> StoreResult<()> {
                let update = $crate::__private::flow_sql::FlowUpdate::of(flow)?;
                self.write(move |conn: &mut Conn| {
                    Box::pin(async move { update_flow_row(conn, update).await })
                })
                .await
            }
        }

        #[$crate::__private::async_trait]
        impl ErrorStore for $store {
            #[tracing::instrument(level = "debug", skip_all)]
            async fn create_error(
                &self,
                id: $crate::__private::uuid::Uuid,
                error: &$crate::__private::serde_json::Value,
                now: $crate::__private::time::OffsetDateTime,
            ) -> StoreResult<()> {
                sqlx::query($crate::__private::flow_sql::INSERT_ERROR)
                    .bind(id)
                    .bind(sqlx::types::Json(error))
                    .bind($crate::Ts(now))
                    .bind($crate::Ts(now))
                    .execute(&self.writer)
                    .await
                    .map_err($crate::db_err)?;
                Ok(())
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn get_error(
                &self,
                id: $crate::__private::uuid::Uuid,
            ) -> StoreResult<(
                $crate::__private::serde_json::Value,
                $crate::__private::time::OffsetDateTime,
                $crate::__private::time::OffsetDateTime,
            )> {
                let (error, created_at, updated_at): (
                    sqlx::types::Json<$crate::__private::serde_json::Value>,
                    $crate::Ts,
                    $crate::Ts,
                ) = sqlx::query_as($crate::__private::flow_sql::GET_ERROR)
                    .bind(id)
                    .fetch_optional(&mut *self.read().await?)
                    .await
                    .map_err($crate::db_err)?
                    .ok_or(StoreError::NotFound)?;
                Ok((error.0, created_at.0, updated_at.0))
            }
        }
    };
}
