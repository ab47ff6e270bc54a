//! Sessions.

pub mod sql {
    use sallyport_core::store::SessionQuery;
    use time::OffsetDateTime;
    use uuid::Uuid;

    use crate::Sql;
    use crate::Ts;
    use crate::args::{limit_arg, offset_arg};
    use crate::rows::SESSION_COLUMNS;

    pub const INSERT_SESSION: &str = "INSERT INTO sessions (id, identity_id, token_digest, \
         logout_token_digest, active, expires_at, authenticated_at, issued_at, aal, authentication_methods, \
         devices, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";
    /// `INSERT_SESSION` that inserts nothing unless the flow `$14` of kind `$15` exists, for a batch
    /// that updates that flow first (see `with_flow_batch`).
    pub const INSERT_SESSION_IF_FLOW: &str = "INSERT INTO sessions (id, identity_id, token_digest, \
         logout_token_digest, active, expires_at, authenticated_at, issued_at, aal, authentication_methods, \
         devices, created_at, updated_at) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 \
         WHERE EXISTS (SELECT 1 FROM selfservice_flows WHERE id = $14 AND kind = $15)";

    /// For SQLite: a new session and its flow's update as one batched query (see
    /// `Sql::append_statement`): the update returns the flow's id (nothing when it is gone), and
    /// then the session is not inserted either. JSON goes as the text SQLite stores it.
    pub fn with_flow_batch(
        session: &sallyport_core::session::Session,
        update: crate::flow::sql::FlowUpdate,
    ) -> sallyport_core::store::StoreResult<crate::Sql> {
        use crate::{Arg, Ts};
        let mut b = crate::Sql::new("");
        let (flow_id, kind) = (update.id, update.kind);
        update.append_returning_id(&mut b);
        let s = session;
        b.append_statement(
            INSERT_SESSION_IF_FLOW,
            [
                Arg::Uuid(s.id),
                Arg::Uuid(s.identity_id),
                Arg::Text(s.token_digest.clone()),
                Arg::Text(s.logout_token_digest.clone()),
                Arg::Bool(s.active),
                Arg::Ts(Ts(s.expires_at)),
                Arg::Ts(Ts(s.authenticated_at)),
                Arg::Ts(Ts(s.issued_at)),
                Arg::Text(s.aal.as_str().to_owned()),
                Arg::Text(serde_json::to_string(&s.authentication_methods).map_err(crate::other_err)?),
                Arg::Text(serde_json::to_string(&s.devices).map_err(crate::other_err)?),
                Arg::Ts(Ts(s.created_at)),
                Arg::Ts(Ts(s.updated_at)),
                Arg::Uuid(flow_id),
                Arg::Text(kind.to_owned()),
            ],
        );
        Ok(b)
    }

    /// The owner and creation time never change.
    pub const UPDATE_SESSION: &str = "UPDATE sessions SET token_digest = $2, logout_token_digest = $3, \
         active = $4, expires_at = $5, authenticated_at = $6, issued_at = $7, aal = $8, \
         authentication_methods = $9, devices = $10, updated_at = $11 WHERE id = $1";
    pub const DELETE_SESSION: &str = "DELETE FROM sessions WHERE id = $1";
    pub const DELETE_SESSIONS_OF_IDENTITY: &str = "DELETE FROM sessions WHERE identity_id = $1";

    fn select_where(column: &str, value: impl Into<crate::Arg>) -> Sql {
        let mut sql = Sql::new(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE {column} = "
        ));
        sql.bind(value);
        sql
    }

    pub fn by_id(id: Uuid) -> Sql {
        select_where("id", id)
    }

    pub fn by_token_digest(digest: &str) -> Sql {
        select_where("token_digest", digest)
    }

    pub fn by_logout_token_digest(digest: &str) -> Sql {
        select_where("logout_token_digest", digest)
    }

    fn filter(sql: &mut Sql, q: &SessionQuery) {
        if let Some(identity_id) = q.identity_id {
            sql.push(" AND identity_id = ").bind(identity_id);
        }
        if let Some(active) = q.active {
            let now = Ts(q.now.unwrap_or_else(sallyport_core::time_fmt::now));
            if active {
                sql.push(" AND active = ")
                    .bind(true)
                    .push(" AND expires_at > ")
                    .bind(now);
            } else {
                sql.push(" AND (active = ")
                    .bind(false)
                    .push(" OR expires_at <= ")
                    .bind(now)
                    .push(")");
            }
        }
        if let Some(exclude) = q.exclude {
            sql.push(" AND id <> ").bind(exclude);
        }
    }

    pub fn list(q: &SessionQuery) -> Sql {
        let mut sql = Sql::new(&format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE 1 = 1"));
        filter(&mut sql, q);
        if let Some(after) = q.after {
            sql.push(" AND id > ").bind(after);
        }
        sql.push(" ORDER BY id LIMIT ").bind(limit_arg(q.limit));
        if let Some(offset) = q.offset {
            sql.push(" OFFSET ").bind(offset_arg(offset));
        }
        sql
    }

    /// Counts what `list` would return over all pages (`after`, `offset` and `limit` are ignored).
    pub fn count(q: &SessionQuery) -> Sql {
        let mut sql = Sql::new("SELECT COUNT(*) FROM sessions WHERE 1 = 1");
        filter(&mut sql, q);
        sql
    }

    pub fn revoke(identity_id: Uuid, except: Option<Uuid>, now: OffsetDateTime) -> Sql {
        let mut sql = Sql::new("UPDATE sessions SET active = ");
        sql.bind(false)
            .push(", updated_at = ")
            .bind(Ts(now))
            .push(" WHERE identity_id = ")
            .bind(identity_id)
            .push(" AND active = ")
            .bind(true);
        if let Some(except) = except {
            sql.push(" AND id <> ").bind(except);
        }
        sql
    }
}

#[doc(hidden)]
#[macro_export]
macro_rules! __impl_session_store {
    ($store:ty) => {
        async fn fetch_session(conn: &mut Conn, sql: $crate::Sql) -> StoreResult<Session> {
            let row = $crate::bind_all(
                sqlx::query_as::<Db, $crate::__private::SessionRow>(&sql.text),
                sql.args,
            )
            .fetch_optional(&mut *conn)
            .await
            .map_err($crate::db_err)?
            .ok_or(StoreError::NotFound)?;
            Session::try_from(row)
        }

        #[$crate::__private::async_trait]
        impl SessionStore for $store {
            #[tracing::instrument(level = "debug", skip_all)]
            async fn create_session(&self, session: &Session) -> StoreResult<()> {
                let session = session.clone();
                self.write(move |conn: &mut Conn| {
                    Box::pin(async move { insert_session(conn, &session).await })
                })
                .await
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn create_session_with_flow(&self, session: &Session, flow: &Flow) -> StoreResult<()> {
                let session = session.clone();
                let update = $crate::__private::flow_sql::FlowUpdate::of(flow)?;
                if <Db as sqlx::Database>::NAME == "SQLite" {
                    // One query instead of two: a hand-off less on the writer everybody waits for.
                    let batch = $crate::__private::session_sql::with_flow_batch(&session, update)?;
                    let found = self
                        .write(move |conn: &mut Conn| Box::pin(batch_in_savepoint(conn, batch)))
                        .await?;
                    return if found.is_empty() {
                        Err(StoreError::NotFound)
                    } else {
                        Ok(())
                    };
                }
                self.write(move |conn: &mut Conn| {
                    Box::pin(async move {
                        update_flow_row(&mut *conn, update).await?;
                        insert_session(conn, &session).await
                    })
                })
                .await
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn get_session(&self, id: $crate::__private::uuid::Uuid) -> StoreResult<Session> {
                fetch_session(
                    &mut *self.read().await?,
                    $crate::__private::session_sql::by_id(id),
                )
                .await
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn get_session_by_token_digest(&self, digest: &str) -> StoreResult<Session> {
                if let Some(s) = self.cache.session(digest) {
                    return Ok(s);
                }
                let generation = self.cache.generation();
                let session = fetch_session(
                    &mut *self.read().await?,
                    $crate::__private::session_sql::by_token_digest(digest),
                )
                .await?;
                self.cache.put_session(generation, &session);
                Ok(session)
            }

            fn read_generation(&self) -> Option<u64> {
                self.cache.current()
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn get_session_by_logout_token_digest(&self, digest: &str) -> StoreResult<Session> {
                let sql = $crate::__private::session_sql::by_logout_token_digest(digest);
                fetch_session(&mut *self.read().await?, sql).await
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn update_session(&self, s: &Session) -> StoreResult<()> {
                use sqlx::types::Json;
                use $crate::Ts;
                let done = sqlx::query($crate::__private::session_sql::UPDATE_SESSION)
                    .bind(s.id)
                    .bind(s.token_digest.as_str())
                    .bind(s.logout_token_digest.as_str())
                    .bind(s.active)
                    .bind(Ts(s.expires_at))
                    .bind(Ts(s.authenticated_at))
                    .bind(Ts(s.issued_at))
                    .bind(s.aal.as_str())
                    .bind(Json(&s.authentication_methods))
                    .bind(Json(&s.devices))
                    .bind(Ts(s.updated_at))
                    .execute(&self.writer)
                    .await
                    .map_err($crate::db_err)?;
                self.cache_changed().await;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn list_sessions(&self, query: &SessionQuery) -> StoreResult<Vec<Session>> {
                let sql = $crate::__private::session_sql::list(query);
                let rows = $crate::bind_all(
                    sqlx::query_as::<Db, $crate::__private::SessionRow>(&sql.text),
                    sql.args,
                )
                .fetch_all(&mut *self.read().await?)
                .await
                .map_err($crate::db_err)?;
                rows.into_iter().map(Session::try_from).collect()
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn count_sessions(&self, query: &SessionQuery) -> StoreResult<u64> {
                let sql = $crate::__private::session_sql::count(query);
                let (n,): (i64,) = $crate::bind_all(sqlx::query_as::<Db, (i64,)>(&sql.text), sql.args)
                    .fetch_one(&mut *self.read().await?)
                    .await
                    .map_err($crate::db_err)?;
                Ok(n.try_into().unwrap_or(0))
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn revoke_sessions_of_identity(
                &self,
                identity_id: $crate::__private::uuid::Uuid,
                except: Option<$crate::__private::uuid::Uuid>,
            ) -> StoreResult<u64> {
                let now = $crate::__private::sallyport_core::time_fmt::now();
                let sql = $crate::__private::session_sql::revoke(identity_id, except, now);
                let query = $crate::bind_all_query(sqlx::query::<Db>(&sql.text), sql.args);
                let done = query.execute(&self.writer).await.map_err($crate::db_err)?;
                self.cache_changed().await;
                Ok(done.rows_affected())
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn delete_sessions_of_identity(
                &self,
                identity_id: $crate::__private::uuid::Uuid,
            ) -> StoreResult<u64> {
                let done = sqlx::query($crate::__private::session_sql::DELETE_SESSIONS_OF_IDENTITY)
                    .bind(identity_id)
                    .execute(&self.writer)
                    .await
                    .map_err($crate::db_err)?;
                self.cache_changed().await;
                Ok(done.rows_affected())
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn delete_session(&self, id: $crate::__private::uuid::Uuid) -> StoreResult<()> {
                let done = sqlx::query($crate::__private::session_sql::DELETE_SESSION)
                    .bind(id)
                    .execute(&self.writer)
                    .await
                    .map_err($crate::db_err)?;
                self.cache_changed().await;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            }
        }
    };
}
