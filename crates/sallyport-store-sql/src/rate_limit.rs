//! Rate-limit counters: one UPSERT … RETURNING per hit, so concurrent hits from any node all count.
//! Times are Unix milliseconds in BIGINT columns, so the window and back-off arithmetic is the same
//! SQL on SQLite and PostgreSQL.

/// The head every hit's `INSERT` shares, before its `VALUES` or `SELECT`.
macro_rules! hit_insert {
    () => {
        "INSERT INTO sallyport_rate_limits AS r \
         (bucket, key, count, window_ends_ms, blocked_until_ms, backoff_ms, last_hit) "
    };
}

/// What `HIT` does on a counter that exists.
macro_rules! hit_upsert {
    () => {
        "ON CONFLICT (bucket, key) DO UPDATE SET \
         count = CASE WHEN r.blocked_until_ms > $3 THEN r.count \
             WHEN r.window_ends_ms <= $3 THEN 1 ELSE r.count + 1 END, \
         backoff_ms = CASE WHEN r.blocked_until_ms > $3 THEN r.backoff_ms \
             WHEN r.window_ends_ms <= $3 THEN 0 \
             WHEN $6 > 0 AND r.count + 1 > $5 THEN \
                 (CASE WHEN r.backoff_ms = 0 THEN $6 WHEN r.backoff_ms * 2 > $7 THEN $7 ELSE r.backoff_ms * 2 END) \
             ELSE r.backoff_ms END, \
         blocked_until_ms = CASE WHEN r.blocked_until_ms > $3 THEN r.blocked_until_ms \
             WHEN r.window_ends_ms <= $3 THEN 0 \
             WHEN $6 > 0 AND r.count + 1 > $5 THEN $3 + \
                 (CASE WHEN r.backoff_ms = 0 THEN $6 WHEN r.backoff_ms * 2 > $7 THEN $7 ELSE r.backoff_ms * 2 END) \
             ELSE r.blocked_until_ms END, \
         window_ends_ms = CASE WHEN r.blocked_until_ms > $3 THEN r.window_ends_ms \
             WHEN r.window_ends_ms <= $3 THEN $3 + $4 ELSE r.window_ends_ms END, \
         last_hit = CASE WHEN r.blocked_until_ms > $3 THEN r.last_hit ELSE $8 END \
         RETURNING count, window_ends_ms, blocked_until_ms, last_hit"
    };
}

pub mod sql {
    /// `$1` bucket, `$2` key, `$3` now, `$4` window, `$5` free limit, `$6` initial back-off (0: none),
    /// `$7` longest back-off, `$8` this hit's token (returned as `last_hit` only if the hit counted).
    /// A blocked row is left untouched; an ended window starts over; past the limit a back-off rule
    /// doubles the pause and blocks the key until `now + pause`.
    pub const HIT: &str = concat!(
        hit_insert!(),
        "VALUES ($1, $2, 1, $3 + $4, 0, 0, $8) ",
        hit_upsert!()
    );
    /// `HIT` counted only while the flow `$9` has had at most `$10` code submissions, for the
    /// batched `attempt_code` on SQLite (`WHERE` ahead of `ON CONFLICT`, as SQLite's upsert after
    /// a `SELECT` needs).
    pub const HIT_IF_SUBMISSIONS_LEFT: &str = concat!(
        hit_insert!(),
        "SELECT $1, $2, 1, $3 + $4, 0, 0, $8 \
         WHERE (SELECT code_submit_count FROM selfservice_flows WHERE id = $9) <= $10 ",
        hit_upsert!()
    );

    /// `HIT` for a batch that adds conditions (`AND …`, its binds after `$8`) before `HIT_UPSERT`.
    pub const HIT_SELECT_WHERE: &str = concat!(hit_insert!(), "SELECT $1, $2, 1, $3 + $4, 0, 0, $8 WHERE 1");
    pub const HIT_UPSERT: &str = concat!(" ", hit_upsert!());

    /// What `HIT` binds, `$1` to `$8`.
    pub fn hit_args(
        bucket: sallyport_core::rate_limit::Bucket,
        key: &str,
        rule: &sallyport_core::rate_limit::Rule,
        now: time::OffsetDateTime,
        token: &str,
    ) -> Vec<crate::Arg> {
        use crate::Arg;
        use sallyport_core::rate_limit::{ms, unix_ms};
        let (initial, longest) = rule
            .backoff
            .map(|o| (ms(o.initial).max(1), ms(o.max).max(1)))
            .unwrap_or((0, 0));
        vec![
            Arg::Text(bucket.as_str().to_owned()),
            Arg::Text(key.to_owned()),
            Arg::Int(unix_ms(now)),
            Arg::Int(ms(rule.window).max(1)),
            Arg::Int(i64::from(rule.limit)),
            Arg::Int(initial),
            Arg::Int(longest),
            Arg::Text(token.to_owned()),
        ]
    }

    /// Pushes ` AND` a condition that holds once the hit of `token` on `bucket`/`key` counted and
    /// is allowed, `Rule::judge_hit` in SQL.
    pub fn and_hit_allowed(
        st: &mut crate::Sql,
        bucket: sallyport_core::rate_limit::Bucket,
        key: &str,
        rule: &sallyport_core::rate_limit::Rule,
        token: &str,
    ) {
        st.push(" AND EXISTS (SELECT 1 FROM sallyport_rate_limits WHERE bucket = ")
            .bind(bucket.as_str())
            .push(" AND key = ")
            .bind(key)
            .push(" AND last_hit = ")
            .bind(token)
            .push(" AND (")
            .bind(rule.backoff.is_some())
            .push(" OR count <= ")
            .bind(i64::from(rule.limit))
            .push("))");
    }

    pub const PEEK: &str = "SELECT count, window_ends_ms, blocked_until_ms FROM sallyport_rate_limits \
         WHERE bucket = $1 AND key = $2";
    pub const GIVE_BACK: &str = "UPDATE sallyport_rate_limits SET count = count - 1 \
         WHERE bucket = $1 AND key = $2 AND count > 0 AND window_ends_ms > $3";
    pub const RESET: &str = "DELETE FROM sallyport_rate_limits WHERE bucket = $1 AND key = $2";
    pub const DELETE_EXPIRED: &str =
        "DELETE FROM sallyport_rate_limits WHERE window_ends_ms <= $1 AND blocked_until_ms <= $1";
}

#[doc(hidden)]
#[macro_export]
macro_rules! __impl_rate_limit_store {
    ($store:ty) => {
        /// Counts one hit on the writer connection `conn` (see `sql::HIT`).
        async fn hit_on(
            conn: &mut Conn,
            bucket: $crate::__private::sallyport_core::rate_limit::Bucket,
            key: &str,
            rule: &$crate::__private::sallyport_core::rate_limit::Rule,
            now: $crate::__private::time::OffsetDateTime,
        ) -> StoreResult<$crate::__private::sallyport_core::rate_limit::Verdict> {
            use $crate::__private::sallyport_core::rate_limit::{CounterRow, ms, unix_ms};
            let token = $crate::__private::uuid::Uuid::new_v4().simple().to_string();
            let (initial, max) = rule
                .backoff
                .map(|b| (ms(b.initial).max(1), ms(b.max).max(1)))
                .unwrap_or((0, 0));
            let (count, window_ends_ms, blocked_until_ms, last_hit): (i64, i64, i64, String) =
                sqlx::query_as($crate::__private::rate_limit_sql::HIT)
                    .bind(bucket.as_str())
                    .bind(key)
                    .bind(unix_ms(now))
                    .bind(ms(rule.window).max(1))
                    .bind(i64::from(rule.limit))
                    .bind(initial)
                    .bind(max)
                    .bind(token.as_str())
                    .fetch_one(&mut *conn)
                    .await
                    .map_err($crate::db_err)?;
            let row = CounterRow {
                count,
                window_ends_ms,
                blocked_until_ms,
            };
            Ok(rule.judge_hit(row, last_hit == token, now))
        }

        /// Takes one hit back on the writer connection `conn` (see `sql::GIVE_BACK`).
        async fn give_back_on(
            conn: &mut Conn,
            bucket: $crate::__private::sallyport_core::rate_limit::Bucket,
            key: &str,
            now: $crate::__private::time::OffsetDateTime,
        ) -> StoreResult<()> {
            sqlx::query($crate::__private::rate_limit_sql::GIVE_BACK)
                .bind(bucket.as_str())
                .bind(key)
                .bind($crate::__private::sallyport_core::rate_limit::unix_ms(now))
                .execute(&mut *conn)
                .await
                .map_err($crate::db_err)?;
            Ok(())
        }

        #[$crate::__private::async_trait]
        impl $crate::__private::sallyport_core::rate_limit::RateLimitStore for $store {
            #[tracing::instrument(level = "debug", skip_all)]
            async fn hit(
                &self,
                bucket: $crate::__private::sallyport_core::rate_limit::Bucket,
                key: &str,
                rule: &$crate::__private::sallyport_core::rate_limit::Rule,
                now: $crate::__private::time::OffsetDateTime,
            ) -> StoreResult<$crate::__private::sallyport_core::rate_limit::Verdict> {
                let (key, rule) = (key.to_owned(), *rule);
                self.write(move |conn: &mut Conn| {
                    Box::pin(async move { hit_on(conn, bucket, &key, &rule, now).await })
                })
                .await
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn peek(
                &self,
                bucket: $crate::__private::sallyport_core::rate_limit::Bucket,
                key: &str,
                rule: &$crate::__private::sallyport_core::rate_limit::Rule,
                now: $crate::__private::time::OffsetDateTime,
            ) -> StoreResult<$crate::__private::sallyport_core::rate_limit::Verdict> {
                use $crate::__private::RawValue;
                use $crate::__private::sallyport_core::rate_limit::CounterRow;
                // Not read here, or not all integers: the usual read below decides.
                let args = [RawValue::Text(bucket.as_str()), RawValue::Text(key)];
                let inline = self.inline.as_ref().and_then(|inline| {
                    inline.first_row($crate::__private::rate_limit_sql::PEEK, &args, |r| {
                        Some((r.int(0)?, r.int(1)?, r.int(2)?))
                    })
                });
                // A read: committed hits are visible to it at once (SQLite WAL readers, one PostgreSQL pool).
                let row: Option<(i64, i64, i64)> = match inline {
                    Some(row) => row,
                    None => sqlx::query_as($crate::__private::rate_limit_sql::PEEK)
                        .bind(bucket.as_str())
                        .bind(key)
                        .fetch_optional(&mut *self.read().await?)
                        .await
                        .map_err($crate::db_err)?,
                };
                let row = row.map(|(count, window_ends_ms, blocked_until_ms)| CounterRow {
                    count,
                    window_ends_ms,
                    blocked_until_ms,
                });
                Ok(rule.judge_peek(row, now))
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn give_back(
                &self,
                bucket: $crate::__private::sallyport_core::rate_limit::Bucket,
                key: &str,
                now: $crate::__private::time::OffsetDateTime,
            ) -> StoreResult<()> {
                let key = key.to_owned();
                self.write(move |conn: &mut Conn| {
                    Box::pin(async move { give_back_on(conn, bucket, &key, now).await })
                })
                .await
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn reset(
                &self,
                bucket: $crate::__private::sallyport_core::rate_limit::Bucket,
                key: &str,
            ) -> StoreResult<()> {
                sqlx::query($crate::__private::rate_limit_sql::RESET)
                    .bind(bucket.as_str())
                    .bind(key)
                    .execute(&self.writer)
                    .await
                    .map_err($crate::db_err)?;
                Ok(())
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn delete_expired_counters(
                &self,
                now: $crate::__private::time::OffsetDateTime,
            ) -> StoreResult<u64> {
                let done = sqlx::query($crate::__private::rate_limit_sql::DELETE_EXPIRED)
                    .bind($crate::__private::sallyport_core::rate_limit::unix_ms(now))
                    .execute(&self.writer)
                    .await
                    .map_err($crate::db_err)?;
                Ok(done.rows_affected())
            }
        }
    };
}
