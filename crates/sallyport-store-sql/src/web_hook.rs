//! The web hook outbox (`sallyport_core::web_hook`): the same lease-and-retry scheme as the courier.

pub mod sql {
    pub const INSERT: &str = "INSERT INTO sallyport_web_hook_outbox (id, hook_key, url, body, status, attempts, \
         next_attempt_ms, lease_until_ms, last_error, created_ms, updated_ms) \
         VALUES ($1, $2, $3, $4, 'queued', 0, $5, NULL, NULL, $5, $5)";

    /// `$1` lease end, `$2` now, `$3` limit. `row_lock` as in the courier's claim: concurrent PostgreSQL
    /// workers skip each other's rows; SQLite's single writer runs the statement alone.
    pub fn claim(row_lock: &str) -> String {
        format!(
            "UPDATE sallyport_web_hook_outbox SET status = 'processing', lease_until_ms = $1, updated_ms = $2 \
             WHERE id IN (SELECT id FROM sallyport_web_hook_outbox \
             WHERE (status = 'queued' AND next_attempt_ms <= $2) OR (status = 'processing' AND lease_until_ms < $2) \
             ORDER BY created_ms, id LIMIT $3 {row_lock}) \
             RETURNING id, hook_key, url, body, attempts, created_ms"
        )
    }

    /// `$3` is NULL unless the attempt is retried.
    pub const FINISH: &str = "UPDATE sallyport_web_hook_outbox SET status = $2, attempts = attempts + 1, \
         next_attempt_ms = COALESCE($3, next_attempt_ms), lease_until_ms = NULL, last_error = $4, updated_ms = $5 \
         WHERE id = $1 AND status = 'processing'";

    pub const PRUNE: &str = "DELETE FROM sallyport_web_hook_outbox \
         WHERE status IN ('delivered', 'abandoned') AND updated_ms < $1";

    pub const DEPTH: &str =
        "SELECT COUNT(*) FROM sallyport_web_hook_outbox WHERE status IN ('queued', 'processing')";
}

/// A claimed row as stored.
pub type ClaimedRow = (String, String, String, String, i64, i64);

pub fn item(r: ClaimedRow) -> sallyport_core::store::StoreResult<sallyport_core::web_hook::OutboxItem> {
    let (id, hook_key, url, body, attempts, created_ms) = r;
    Ok(sallyport_core::web_hook::OutboxItem {
        id: uuid::Uuid::parse_str(&id).map_err(|e| crate::other_err(format!("outbox id {id:?}: {e}")))?,
        hook_key,
        url,
        body,
        attempts: i32::try_from(attempts).unwrap_or(i32::MAX),
        created_ms,
    })
}

#[doc(hidden)]
#[macro_export]
macro_rules! __impl_web_hook_store {
    ($store:ty, $row_lock:expr) => {
        #[$crate::__private::async_trait]
        impl $crate::__private::sallyport_core::web_hook::WebHookOutboxStore for $store {
            #[tracing::instrument(level = "debug", skip_all)]
            async fn enqueue_web_hook(
                &self,
                item: &$crate::__private::sallyport_core::web_hook::OutboxItem,
                now_ms: i64,
            ) -> StoreResult<()> {
                sqlx::query($crate::__private::web_hook_sql::INSERT)
                    .bind(item.id.to_string())
                    .bind(item.hook_key.as_str())
                    .bind(item.url.as_str())
                    .bind(item.body.as_str())
                    .bind(now_ms)
                    .execute(&self.writer)
                    .await
                    .map_err($crate::db_err)?;
                Ok(())
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn claim_web_hooks(
                &self,
                limit: u32,
                lease_ms: i64,
                now_ms: i64,
            ) -> StoreResult<Vec<$crate::__private::sallyport_core::web_hook::OutboxItem>> {
                if limit == 0 {
                    return Ok(vec![]);
                }
                let sql = $crate::__private::web_hook_sql::claim($row_lock);
                let mut rows: Vec<$crate::__private::WebHookRow> = sqlx::query_as(&sql)
                    .bind(now_ms + lease_ms)
                    .bind(now_ms)
                    .bind(i64::from(limit))
                    .fetch_all(&self.writer)
                    .await
                    .map_err($crate::db_err)?;
                rows.sort_by(|a, b| (a.5, &a.0).cmp(&(b.5, &b.0)));
                rows.into_iter()
                    .map($crate::__private::web_hook_item)
                    .collect()
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn finish_web_hook(
                &self,
                id: $crate::__private::uuid::Uuid,
                outcome: &$crate::__private::sallyport_core::web_hook::OutboxOutcome,
                now_ms: i64,
            ) -> StoreResult<()> {
                use $crate::__private::sallyport_core::web_hook::OutboxOutcome;
                let (status, retry_at, error) = match outcome {
                    OutboxOutcome::Delivered => ("delivered", None, None),
                    OutboxOutcome::Retry { at_ms, error } => ("queued", Some(*at_ms), Some(error.as_str())),
                    OutboxOutcome::Abandon { error } => ("abandoned", None, Some(error.as_str())),
                };
                let done = sqlx::query($crate::__private::web_hook_sql::FINISH)
                    .bind(id.to_string())
                    .bind(status)
                    .bind(retry_at)
                    .bind(error)
                    .bind(now_ms)
                    .execute(&self.writer)
                    .await
                    .map_err($crate::db_err)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn prune_web_hooks(&self, before_ms: i64) -> StoreResult<u64> {
                let done = sqlx::query($crate::__private::web_hook_sql::PRUNE)
                    .bind(before_ms)
                    .execute(&self.writer)
                    .await
                    .map_err($crate::db_err)?;
                Ok(done.rows_affected())
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn web_hook_outbox_depth(&self) -> StoreResult<i64> {
                sqlx::query_scalar($crate::__private::web_hook_sql::DEPTH)
                    .fetch_one(&mut *self.read().await?)
                    .await
                    .map_err($crate::db_err)
            }
        }
    };
}
