//! One-time codes and link tokens, stored as keyed digests, and the per-flow submission counter.

use sallyport_core::code::{CodeKind, OneTimeCode};
use sallyport_core::store::{StoreError, StoreResult};
use uuid::Uuid;

use crate::{Ts, other_err};

pub mod sql {
    use sallyport_core::code::CodeKind;
    use time::OffsetDateTime;
    use uuid::Uuid;

    use crate::{Sql, Ts};

    pub(crate) const CODE_COLUMNS: &str =
        "id, flow_id, kind, digest, address, address_type, identity_id, expires_at, used_at, created_at";

    pub const DELETE_CODES: &str = "DELETE FROM identity_one_time_codes WHERE flow_id = $1 AND kind = $2";
    pub const INSERT_CODE: &str = "INSERT INTO identity_one_time_codes (id, flow_id, kind, digest, address, \
         address_type, identity_id, expires_at, used_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
    /// The statements of `save_codes`' batch after its flow update change nothing unless that update
    /// found its flow (the same id and kind): the batch commits as a whole either way, so a flow
    /// that is gone leaves no codes and no messages behind. `DELETE_CODES`, `$3` the flow's kind.
    pub const DELETE_CODES_IF_FLOW: &str = "DELETE FROM identity_one_time_codes WHERE flow_id = $1 AND kind = $2 \
         AND EXISTS (SELECT 1 FROM selfservice_flows WHERE id = $1 AND kind = $3)";
    /// `INSERT_CODE` if its flow exists, `$11` the flow's kind (see `DELETE_CODES_IF_FLOW`).
    pub const INSERT_CODE_IF_FLOW: &str = "INSERT INTO identity_one_time_codes (id, flow_id, kind, digest, \
         address, address_type, identity_id, expires_at, used_at, created_at) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 \
         WHERE EXISTS (SELECT 1 FROM selfservice_flows WHERE id = $2 AND kind = $11)";
    /// The courier's `INSERT_MESSAGE` if the flow `$14` of kind `$15` exists (see `DELETE_CODES_IF_FLOW`).
    pub const INSERT_MESSAGE_IF_FLOW: &str = "INSERT INTO courier_messages (id, type, status, recipient, \
         subject, body, template_type, template_data, channel, send_count, next_attempt_at, lease_until, \
         created_at, updated_at) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, $12, $13 \
         WHERE EXISTS (SELECT 1 FROM selfservice_flows WHERE id = $14 AND kind = $15)";
    pub const COUNT_SUBMISSION: &str = "UPDATE selfservice_flows SET code_submit_count = code_submit_count + 1 \
         WHERE id = $1 RETURNING code_submit_count";

    /// Marks the matching unused, unexpired codes used in one statement. The conditions sit in the
    /// UPDATE itself, not in a subquery: PostgreSQL re-checks them on a row a concurrent use just
    /// changed, so of two racing uses only one matches. `None` when `digests` is empty.
    pub fn use_code(
        flow_id: Option<Uuid>,
        kind: CodeKind,
        digests: &[String],
        now: OffsetDateTime,
    ) -> Option<Sql> {
        if digests.is_empty() {
            return None;
        }
        let mut sql = Sql::new("UPDATE identity_one_time_codes SET used_at = ");
        sql.bind(Ts(now)).push(" WHERE kind = ").bind(kind.as_str());
        if let Some(flow_id) = flow_id {
            sql.push(" AND flow_id = ").bind(flow_id);
        }
        sql.push(" AND digest IN ")
            .bind_list(digests.iter().map(String::as_str))
            .push(" AND used_at IS NULL AND expires_at > ")
            .bind(Ts(now))
            .push(&format!(" RETURNING {CODE_COLUMNS}"));
        Some(sql)
    }
}

/// A send budget counted in the batch of `send_codes`: bucket, key, rule.
pub type Budget = (
    sallyport_core::rate_limit::Bucket,
    String,
    sallyport_core::rate_limit::Rule,
);

/// `save_codes` (and `send_codes`) as one batch of statements (see `Sql::append_statement`), for
/// SQLite: the hits on `budgets` (token `token`), each only while those before it allow, as the
/// separate writes stop at the first refusal; the flow's update (returning its id, none when the
/// flow is gone); the deletion of its codes of `kind`; the new codes and the messages. All after
/// the hits only if every budget allows, the last three only if the flow is there. JSON goes as
/// the text SQLite stores it. The rows: one counter (4 columns) per hit that ran, then the id.
pub fn batch(
    update: crate::flow::sql::FlowUpdate,
    kind: CodeKind,
    codes: &[OneTimeCode],
    messages: &[sallyport_core::courier::Message],
    budgets: &[Budget],
    now: time::OffsetDateTime,
    token: &str,
) -> StoreResult<crate::Sql> {
    use crate::Arg;
    use crate::rate_limit::sql::{HIT_SELECT_WHERE, HIT_UPSERT, and_hit_allowed, hit_args};
    let allowed = |st: &mut crate::Sql, upto: usize| {
        for (bucket, key, rule) in &budgets[..upto] {
            and_hit_allowed(st, *bucket, key, rule, token);
        }
    };
    let statement = |text: &str, args: Vec<Arg>| {
        let mut st = crate::Sql {
            text: text.to_owned(),
            args,
        };
        allowed(&mut st, budgets.len());
        st
    };
    let mut b = crate::Sql::new("");
    for (i, (bucket, key, rule)) in budgets.iter().enumerate() {
        let mut hit = crate::Sql {
            text: HIT_SELECT_WHERE.to_owned(),
            args: hit_args(*bucket, key, rule, now, token),
        };
        allowed(&mut hit, i);
        hit.push(HIT_UPSERT);
        b.append_statement(&hit.text, hit.args);
    }
    let (flow_id, flow_kind) = (update.id, update.kind);
    update.append_returning_id_if(&mut b, |st| allowed(st, budgets.len()));
    let st = statement(
        sql::DELETE_CODES_IF_FLOW,
        vec![
            Arg::Uuid(flow_id),
            Arg::Text(kind.as_str().to_owned()),
            Arg::Text(flow_kind.to_owned()),
        ],
    );
    b.append_statement(&st.text, st.args);
    for c in codes {
        let st = statement(
            sql::INSERT_CODE_IF_FLOW,
            vec![
                Arg::Uuid(c.id),
                Arg::Uuid(c.flow_id),
                Arg::Text(c.kind.as_str().to_owned()),
                Arg::Text(c.digest.clone()),
                Arg::Text(c.address.clone()),
                Arg::Text(c.address_type.clone()),
                Arg::OptUuid(c.identity_id),
                Arg::Ts(Ts(c.expires_at)),
                Arg::OptTs(c.used_at.map(Ts)),
                Arg::Ts(Ts(c.created_at)),
                Arg::Text(flow_kind.to_owned()),
            ],
        );
        b.append_statement(&st.text, st.args);
    }
    for m in messages {
        let st = statement(
            sql::INSERT_MESSAGE_IF_FLOW,
            vec![
                Arg::Uuid(m.id),
                Arg::Text(m.kind.as_str().to_owned()),
                Arg::Text(m.status.as_str().to_owned()),
                Arg::Text(m.recipient.clone()),
                Arg::Text(m.subject.clone()),
                Arg::Text(m.body.clone()),
                Arg::Text(m.template_type.clone()),
                Arg::Text(serde_json::to_string(&m.template_data).map_err(other_err)?),
                Arg::Text(m.channel.as_str().to_owned()),
                Arg::Int(i64::from(m.send_count)),
                Arg::Ts(Ts(m.next_attempt_at)),
                Arg::Ts(Ts(m.created_at)),
                Arg::Ts(Ts(m.updated_at)),
                Arg::Uuid(flow_id),
                Arg::Text(flow_kind.to_owned()),
            ],
        );
        b.append_statement(&st.text, st.args);
    }
    Ok(b)
}

/// `attempt_code` as one batch of statements for SQLite, each later one conditioned in SQL on what
/// the separate writes would have checked in between: the submission count (always; no row: no
/// flow), then, while the flow has submissions left, the guess (token `token`, so that the batch
/// can tell whether it counted), then the use of the code while the guess is allowed
/// (`Rule::judge_hit` as SQL), then the guess given back if the oldest code used belongs to
/// `owner`. The rows tell them apart by width: 1 column the count, 4 the counter, more a code.
#[allow(clippy::too_many_arguments)]
pub fn attempt_batch(
    flow_id: Uuid,
    kind: CodeKind,
    digests: &[String],
    now: time::OffsetDateTime,
    max_submissions: u32,
    guess: Option<(
        sallyport_core::rate_limit::Bucket,
        &str,
        &sallyport_core::rate_limit::Rule,
    )>,
    owner: Option<Uuid>,
    token: &str,
) -> crate::Sql {
    use crate::{Arg, Sql};
    use sallyport_core::rate_limit::unix_ms;
    let max = i64::from(max_submissions);
    let mut b = Sql::new("");
    b.append_statement(sql::COUNT_SUBMISSION, [Arg::Uuid(flow_id)]);
    if let Some((bucket, key, rule)) = guess {
        let mut args = crate::rate_limit::sql::hit_args(bucket, key, rule, now, token);
        args.extend([Arg::Uuid(flow_id), Arg::Int(max)]);
        b.append_statement(crate::rate_limit::sql::HIT_IF_SUBMISSIONS_LEFT, args);
    }
    if digests.is_empty() {
        return b;
    }
    let mut used = Sql::new("UPDATE identity_one_time_codes SET used_at = ");
    used.bind(Ts(now))
        .push(" WHERE kind = ")
        .bind(kind.as_str())
        .push(" AND flow_id = ")
        .bind(flow_id)
        .push(" AND digest IN ")
        .bind_list(digests.iter().map(String::as_str))
        .push(" AND used_at IS NULL AND expires_at > ")
        .bind(Ts(now))
        .push(" AND (SELECT code_submit_count FROM selfservice_flows WHERE id = ")
        .bind(flow_id)
        .push(") <= ")
        .bind(max);
    if let Some((bucket, key, rule)) = guess {
        crate::rate_limit::sql::and_hit_allowed(&mut used, bucket, key, rule, token);
    }
    used.push(&format!(" RETURNING {}", sql::CODE_COLUMNS));
    b.append_statement(&used.text, used.args);
    if let (Some((bucket, key, _)), Some(owner)) = (guess, owner) {
        let mut back = Sql::new("UPDATE sallyport_rate_limits SET count = count - 1 WHERE bucket = ");
        back.bind(bucket.as_str())
            .push(" AND key = ")
            .bind(key)
            .push(" AND count > 0 AND window_ends_ms > ")
            .bind(unix_ms(now))
            // `changes()`: the rows the use just before changed. Without it a code used earlier
            // at the same instant would count as used by this submission.
            .push(" AND changes() > 0 AND ")
            .bind(owner)
            .push(" = (SELECT identity_id FROM identity_one_time_codes WHERE flow_id = ")
            .bind(flow_id)
            .push(" AND kind = ")
            .bind(kind.as_str())
            .push(" AND used_at = ")
            .bind(Ts(now))
            .push(" AND digest IN ")
            .bind_list(digests.iter().map(String::as_str))
            .push(" ORDER BY created_at, id LIMIT 1)");
        b.append_statement(&back.text, back.args);
    }
    b
}

#[derive(sqlx::FromRow)]
pub struct CodeRow {
    id: Uuid,
    flow_id: Uuid,
    kind: String,
    digest: String,
    address: String,
    address_type: String,
    identity_id: Option<Uuid>,
    expires_at: Ts,
    used_at: Option<Ts>,
    created_at: Ts,
}

impl CodeRow {
    /// Several rows can match one use (the same code sent to two addresses); the oldest is returned.
    pub fn sort_key(&self) -> (Ts, Uuid) {
        (self.created_at, self.id)
    }

    pub fn identity_id(&self) -> Option<Uuid> {
        self.identity_id
    }
}

/// What the write job of `attempt_code` found; the code row is converted after the write, so a
/// row that does not convert fails this request only, not the group it was written in.
pub enum AttemptRow {
    TooManySubmissions,
    Limited(sallyport_core::rate_limit::Verdict),
    Checked(Option<CodeRow>),
}

impl TryFrom<CodeRow> for OneTimeCode {
    type Error = StoreError;

    fn try_from(r: CodeRow) -> StoreResult<OneTimeCode> {
        Ok(OneTimeCode {
            id: r.id,
            flow_id: r.flow_id,
            kind: CodeKind::parse(&r.kind)
                .ok_or_else(|| other_err(format!("stored code kind {:?} is not valid", r.kind)))?,
            digest: r.digest,
            address: r.address,
            address_type: r.address_type,
            identity_id: r.identity_id,
            expires_at: r.expires_at.0,
            used_at: r.used_at.map(|t| t.0),
            created_at: r.created_at.0,
        })
    }
}

#[doc(hidden)]
#[macro_export]
macro_rules! __impl_code_store {
    ($store:ty) => {
        async fn use_code_where(
            store: &$store,
            sql: Option<$crate::Sql>,
        ) -> StoreResult<Option<$crate::__private::sallyport_core::code::OneTimeCode>> {
            use $crate::__private::CodeRow;
            let Some(sql) = sql else { return Ok(None) };
            let rows = store
                .write(move |conn: &mut Conn| {
                    Box::pin(async move {
                        $crate::bind_all(sqlx::query_as::<Db, CodeRow>(&sql.text), sql.args)
                            .fetch_all(&mut *conn)
                            .await
                            .map_err($crate::db_err)
                    })
                })
                .await?;
            rows.into_iter()
                .min_by_key(CodeRow::sort_key)
                .map(TryInto::try_into)
                .transpose()
        }

        /// SQLite's `attempt_code`: one query on the writer instead of up to four (see
        /// `code::attempt_batch`), decided from the rows it returns.
        async fn attempt_code_batched(
            store: &$store,
            a: $crate::__private::sallyport_core::code::CodeAttempt<'_>,
        ) -> StoreResult<$crate::__private::sallyport_core::code::AttemptOutcome> {
            use sqlx::Row as _;
            use $crate::__private::CodeRow;
            use $crate::__private::sallyport_core::code::AttemptOutcome;
            use $crate::__private::sallyport_core::rate_limit::CounterRow;
            let token = $crate::__private::uuid::Uuid::new_v4().simple().to_string();
            let guess = a.guess.map(|g| (g.bucket, g.key, g.rule));
            let batch = $crate::__private::attempt_batch(
                a.flow_id,
                a.kind,
                a.digests,
                a.now,
                a.max_submissions,
                guess,
                a.identity_id,
                &token,
            );
            let rows = store
                .write(move |conn: &mut Conn| Box::pin(batch_in_savepoint(conn, batch)))
                .await?;
            let (mut submissions, mut counter, mut used) = (None, None, vec![]);
            for row in &rows {
                match row.len() {
                    1 => submissions = Some(row.try_get::<i32, _>(0).map_err($crate::db_err)?),
                    4 => {
                        counter = Some(
                            <(i64, i64, i64, String) as sqlx::FromRow<_>>::from_row(row)
                                .map_err($crate::db_err)?,
                        )
                    }
                    _ => used.push(<CodeRow as sqlx::FromRow<_>>::from_row(row).map_err($crate::db_err)?),
                }
            }
            let n = submissions.ok_or(StoreError::NotFound)?;
            if i64::from(n) > i64::from(a.max_submissions) {
                return Ok(AttemptOutcome::TooManySubmissions);
            }
            if let Some(g) = a.guess {
                let (count, window_ends_ms, blocked_until_ms, last_hit) =
                    counter.ok_or_else(|| $crate::other_err("the guess was not counted"))?;
                let row = CounterRow {
                    count,
                    window_ends_ms,
                    blocked_until_ms,
                };
                let v = g.rule.judge_hit(row, last_hit == token, a.now);
                if !v.allowed {
                    return Ok(AttemptOutcome::Limited(v));
                }
            }
            let code = used.into_iter().min_by_key(CodeRow::sort_key);
            Ok(AttemptOutcome::Checked(
                code.map(TryInto::try_into).transpose()?,
            ))
        }

        /// SQLite's `send_codes`: `batch` (`code::batch`: the send budgets' hits and `save_codes_on`
        /// in one query, built by the caller with `token`) run, and judged from the counters it
        /// returns.
        async fn send_codes_batched(
            conn: &mut Conn,
            batch: $crate::Sql,
            budgets: &[$crate::__private::CodeBudget],
            token: &str,
            now: $crate::__private::time::OffsetDateTime,
        ) -> StoreResult<Option<$crate::__private::sallyport_core::rate_limit::Verdict>> {
            use sqlx::Row as _;
            use $crate::__private::sallyport_core::rate_limit::CounterRow;
            let rows = batch_in_savepoint(conn, batch).await?;
            let mut found = false;
            let mut rules = budgets.iter().map(|b| b.2);
            for row in &rows {
                if row.len() == 1 {
                    found = true;
                    continue;
                }
                let (count, window_ends_ms, blocked_until_ms, last_hit) =
                    <(i64, i64, i64, String) as sqlx::FromRow<_>>::from_row(row).map_err($crate::db_err)?;
                let rule = rules
                    .next()
                    .ok_or_else(|| $crate::other_err("a send batch returned a counter it did not count"))?;
                let row = CounterRow {
                    count,
                    window_ends_ms,
                    blocked_until_ms,
                };
                let v = rule.judge_hit(row, last_hit == token, now);
                if !v.allowed {
                    return Ok(Some(v));
                }
            }
            if !found {
                return Err(StoreError::NotFound);
            }
            Ok(None)
        }

        /// One transaction (a savepoint inside a group): delete the flow's codes of `kind`, insert
        /// `codes`, save the flow, queue `messages`.
        async fn save_codes_on(
            conn: &mut Conn,
            update: $crate::__private::flow_sql::FlowUpdate,
            kind: $crate::__private::sallyport_core::code::CodeKind,
            codes: &[$crate::__private::sallyport_core::code::OneTimeCode],
            messages: &[$crate::__private::sallyport_core::courier::Message],
        ) -> StoreResult<()> {
            use $crate::__private::code_sql as q;
            use $crate::Ts;
            let flow_id = update.id;
            if <Db as sqlx::Database>::NAME == "SQLite" {
                // One query for the four kinds of statement and its savepoint: each query is a
                // hand-off to the connection's thread, and this runs on the one writer everybody
                // waits for.
                let now = $crate::__private::sallyport_core::time_fmt::now();
                let batch = $crate::__private::code_batch(update, kind, codes, messages, &[], now, "")?;
                let found = batch_in_savepoint(conn, batch).await?;
                if found.is_empty() {
                    return Err(StoreError::NotFound);
                }
                return Ok(());
            }
            let mut tx = sqlx::Connection::begin(&mut *conn)
                .await
                .map_err($crate::db_err)?;
            update_flow_row(&mut *tx, update).await?;
            sqlx::query(q::DELETE_CODES)
                .bind(flow_id)
                .bind(kind.as_str())
                .execute(&mut *tx)
                .await
                .map_err($crate::db_err)?;
            for c in codes {
                sqlx::query(q::INSERT_CODE)
                    .bind(c.id)
                    .bind(c.flow_id)
                    .bind(c.kind.as_str())
                    .bind(c.digest.as_str())
                    .bind(c.address.as_str())
                    .bind(c.address_type.as_str())
                    .bind(c.identity_id)
                    .bind(Ts(c.expires_at))
                    .bind(c.used_at.map(Ts))
                    .bind(Ts(c.created_at))
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::db_err)?;
            }
            insert_messages(&mut *tx, messages).await?;
            tx.commit().await.map_err($crate::db_err)
        }

        #[$crate::__private::async_trait]
        impl $crate::__private::sallyport_core::code::CodeStore for $store {
            #[tracing::instrument(level = "debug", skip_all)]
            async fn save_codes(
                &self,
                flow: &Flow,
                kind: $crate::__private::sallyport_core::code::CodeKind,
                codes: &[$crate::__private::sallyport_core::code::OneTimeCode],
                messages: &[$crate::__private::sallyport_core::courier::Message],
            ) -> StoreResult<()> {
                let update = $crate::__private::flow_sql::FlowUpdate::of(flow)?;
                let (codes, messages) = (codes.to_vec(), messages.to_vec());
                self.write(move |conn: &mut Conn| {
                    Box::pin(async move { save_codes_on(conn, update, kind, &codes, &messages).await })
                })
                .await
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn send_codes(
                &self,
                flow: &Flow,
                kind: $crate::__private::sallyport_core::code::CodeKind,
                codes: &[$crate::__private::sallyport_core::code::OneTimeCode],
                messages: &[$crate::__private::sallyport_core::courier::Message],
                budgets: &[$crate::__private::sallyport_core::rate_limit::Counted<'_>],
            ) -> StoreResult<Option<$crate::__private::sallyport_core::rate_limit::Verdict>> {
                let update = $crate::__private::flow_sql::FlowUpdate::of(flow)?;
                let budgets: Vec<_> = budgets
                    .iter()
                    .map(|b| (b.bucket, b.key.to_owned(), *b.rule))
                    .collect();
                let now = $crate::__private::sallyport_core::time_fmt::now();
                if <Db as sqlx::Database>::NAME == "SQLite" {
                    // Built here, on the request's thread: the writer, which every write waits for,
                    // only runs it.
                    let token = $crate::__private::uuid::Uuid::new_v4().simple().to_string();
                    let batch =
                        $crate::__private::code_batch(update, kind, codes, messages, &budgets, now, &token)?;
                    return self
                        .write(move |conn: &mut Conn| {
                            Box::pin(
                                async move { send_codes_batched(conn, batch, &budgets, &token, now).await },
                            )
                        })
                        .await;
                }
                let (codes, messages) = (codes.to_vec(), messages.to_vec());
                self.write(move |conn: &mut Conn| {
                    Box::pin(async move {
                        for (bucket, key, rule) in &budgets {
                            let v = hit_on(&mut *conn, *bucket, key, rule, now).await?;
                            if !v.allowed {
                                return Ok(Some(v));
                            }
                        }
                        save_codes_on(conn, update, kind, &codes, &messages).await?;
                        Ok(None)
                    })
                })
                .await
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn attempt_code(
                &self,
                a: $crate::__private::sallyport_core::code::CodeAttempt<'_>,
            ) -> StoreResult<$crate::__private::sallyport_core::code::AttemptOutcome> {
                use $crate::__private::sallyport_core::code::AttemptOutcome;
                use $crate::__private::{AttemptRow, CodeRow};
                if <Db as sqlx::Database>::NAME == "SQLite" {
                    return attempt_code_batched(self, a).await;
                }
                let sql = $crate::__private::code_sql::use_code(Some(a.flow_id), a.kind, a.digests, a.now);
                let guess = a.guess.map(|g| (g.bucket, g.key.to_owned(), *g.rule));
                let (flow_id, now, max, owner) = (a.flow_id, a.now, a.max_submissions, a.identity_id);
                let found = self
                    .write(move |conn: &mut Conn| {
                        Box::pin(async move {
                            let n =
                                sqlx::query_scalar::<Db, i32>($crate::__private::code_sql::COUNT_SUBMISSION)
                                    .bind(flow_id)
                                    .fetch_optional(&mut *conn)
                                    .await
                                    .map_err($crate::db_err)?
                                    .ok_or(StoreError::NotFound)?;
                            if i64::from(n) > i64::from(max) {
                                return Ok(AttemptRow::TooManySubmissions);
                            }
                            if let Some((bucket, key, rule)) = &guess {
                                let v = hit_on(&mut *conn, *bucket, key, rule, now).await?;
                                if !v.allowed {
                                    return Ok(AttemptRow::Limited(v));
                                }
                            }
                            let Some(sql) = sql else {
                                return Ok(AttemptRow::Checked(None));
                            };
                            let used = $crate::bind_all(sqlx::query_as::<Db, CodeRow>(&sql.text), sql.args)
                                .fetch_all(&mut *conn)
                                .await
                                .map_err($crate::db_err)?
                                .into_iter()
                                .min_by_key(CodeRow::sort_key);
                            if let (Some(code), Some((bucket, key, _))) = (&used, &guess)
                                && owner.is_some()
                                && code.identity_id() == owner
                            {
                                give_back_on(&mut *conn, *bucket, key, now).await?;
                            }
                            Ok(AttemptRow::Checked(used))
                        })
                    })
                    .await?;
                Ok(match found {
                    AttemptRow::TooManySubmissions => AttemptOutcome::TooManySubmissions,
                    AttemptRow::Limited(v) => AttemptOutcome::Limited(v),
                    AttemptRow::Checked(row) => {
                        AttemptOutcome::Checked(row.map(TryInto::try_into).transpose()?)
                    }
                })
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn use_code(
                &self,
                flow_id: $crate::__private::uuid::Uuid,
                kind: $crate::__private::sallyport_core::code::CodeKind,
                digests: &[String],
                now: $crate::__private::time::OffsetDateTime,
            ) -> StoreResult<Option<$crate::__private::sallyport_core::code::OneTimeCode>> {
                let sql = $crate::__private::code_sql::use_code(Some(flow_id), kind, digests, now);
                use_code_where(self, sql).await
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn use_token(
                &self,
                kind: $crate::__private::sallyport_core::code::CodeKind,
                digests: &[String],
                now: $crate::__private::time::OffsetDateTime,
            ) -> StoreResult<Option<$crate::__private::sallyport_core::code::OneTimeCode>> {
                let sql = $crate::__private::code_sql::use_code(None, kind, digests, now);
                use_code_where(self, sql).await
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn count_submission(&self, flow_id: $crate::__private::uuid::Uuid) -> StoreResult<i32> {
                self.write(move |conn: &mut Conn| {
                    Box::pin(async move {
                        sqlx::query_scalar::<Db, i32>($crate::__private::code_sql::COUNT_SUBMISSION)
                            .bind(flow_id)
                            .fetch_optional(&mut *conn)
                            .await
                            .map_err($crate::db_err)?
                            .ok_or(StoreError::NotFound)
                    })
                })
                .await
            }
        }
    };
}
