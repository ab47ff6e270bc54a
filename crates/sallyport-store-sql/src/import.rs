//! `ImportStore`: upserts keyed by the source's ids, and the import lock and watermarks.

pub mod sql {
    use sallyport_core::identity::Identity;
    use sallyport_core::session::Session;
    use uuid::Uuid;

    use crate::{Arg, Sql, Ts};

    /// Refreshes the lock for its owner, or takes it over once the holder's heartbeat is stale.
    pub const ACQUIRE_LOCK: &str = "INSERT INTO import_state (key, value, updated_at) VALUES ('lock', $1, $2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at \
         WHERE import_state.value = excluded.value OR import_state.updated_at < $3";
    pub const RELEASE_LOCK: &str = "DELETE FROM import_state WHERE key = 'lock' AND value = $1";
    pub const GET_MARK: &str = "SELECT value FROM import_state WHERE key = $1";
    pub const SET_MARK: &str = "INSERT INTO import_state (key, value, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at";
    const UPSERT_IDENTITY_TAIL: &str = " ON CONFLICT (id) DO UPDATE SET schema_id = excluded.schema_id, traits = excluded.traits, \
         state = excluded.state, state_changed_at = excluded.state_changed_at, \
         metadata_public = excluded.metadata_public, metadata_admin = excluded.metadata_admin, \
         external_id = excluded.external_id, organization_id = excluded.organization_id, \
         available_aal = excluded.available_aal, created_at = excluded.created_at, \
         updated_at = excluded.updated_at";
    const UPSERT_SESSION_TAIL: &str = " ON CONFLICT (id) DO UPDATE SET identity_id = excluded.identity_id, \
         token_digest = excluded.token_digest, logout_token_digest = excluded.logout_token_digest, \
         active = excluded.active, expires_at = excluded.expires_at, \
         authenticated_at = excluded.authenticated_at, issued_at = excluded.issued_at, aal = excluded.aal, \
         authentication_methods = excluded.authentication_methods, devices = excluded.devices, \
         updated_at = excluded.updated_at";

    /// Children first, as `update_identity` does: the parts of every identity of the batch at once.
    pub fn delete_parts(ids: &[Uuid]) -> Vec<Sql> {
        [
            "identity_credential_identifiers",
            "identity_credentials",
            "identity_verifiable_addresses",
            "identity_recovery_addresses",
        ]
        .iter()
        .map(|table| {
            let mut sql = Sql::new(&format!("DELETE FROM {table} WHERE identity_id IN "));
            sql.bind_list(ids.iter().copied());
            sql
        })
        .collect()
    }

    /// Rows per multi-row statement: well under both engines' bind limits for the widest table (13
    /// columns), and large enough that a batch is a handful of round trips.
    const ROWS_PER_STATEMENT: usize = 400;

    /// `head VALUES (…), (…) tail`, one statement per `ROWS_PER_STATEMENT` rows.
    fn multi(head: &str, rows: Vec<Vec<Arg>>, tail: &str) -> Vec<Sql> {
        let mut out = vec![];
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let mut sql = Sql::new(head);
            sql.push(" VALUES ");
            for (i, row) in rows.by_ref().take(ROWS_PER_STATEMENT).enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.bind_list(row);
            }
            sql.push(tail);
            out.push(sql);
        }
        out
    }

    fn ts(t: time::OffsetDateTime) -> Arg {
        Arg::Ts(Ts(t))
    }

    /// Every statement that writes `identities` with their parts (after `delete_parts`).
    pub fn upsert_identities(identities: &[Identity]) -> Vec<Sql> {
        let (mut rows, mut creds, mut idents, mut verifiable, mut recovery) =
            (vec![], vec![], vec![], vec![], vec![]);
        for i in identities {
            rows.push(vec![
                Arg::Uuid(i.id),
                Arg::Text(i.schema_id.clone()),
                Arg::Json(i.traits.clone()),
                Arg::Text(i.state.as_str().into()),
                Arg::OptTs(i.state_changed_at.map(Ts)),
                Arg::OptJson(i.metadata_public.clone()),
                Arg::OptJson(i.metadata_admin.clone()),
                Arg::OptText(i.external_id.clone()),
                Arg::OptUuid(i.organization_id),
                Arg::Text(i.available_aal.as_str().into()),
                ts(i.created_at),
                ts(i.updated_at),
            ]);
            for c in i.credentials.values() {
                creds.push(vec![
                    Arg::Uuid(c.id),
                    Arg::Uuid(i.id),
                    Arg::Text(c.cred_type.clone()),
                    Arg::Json(c.config.clone()),
                    Arg::Int(c.version.into()),
                    ts(c.created_at),
                    ts(c.updated_at),
                ]);
                // The same identifier listed twice is stored once, as `insert_identity_parts` does.
                let mut seen = std::collections::HashSet::new();
                for (position, identifier) in c
                    .identifiers
                    .iter()
                    .filter(|x| seen.insert(x.as_str()))
                    .enumerate()
                {
                    idents.push(vec![
                        Arg::Uuid(Uuid::new_v4()),
                        Arg::Text(identifier.clone()),
                        Arg::Text(c.cred_type.clone()),
                        Arg::Uuid(i.id),
                        Arg::Uuid(c.id),
                        Arg::Int(position as i64),
                        ts(c.created_at),
                        ts(c.updated_at),
                    ]);
                }
            }
            for (position, a) in i.verifiable_addresses.iter().enumerate() {
                verifiable.push(vec![
                    Arg::Uuid(a.id),
                    Arg::Uuid(i.id),
                    Arg::Text(a.via.clone()),
                    Arg::Text(a.value.clone()),
                    Arg::Bool(a.verified),
                    Arg::Text(a.status.clone()),
                    Arg::OptTs(a.verified_at.map(Ts)),
                    Arg::Int(position as i64),
                    ts(a.created_at),
                    ts(a.updated_at),
                ]);
            }
            for (position, a) in i.recovery_addresses.iter().enumerate() {
                recovery.push(vec![
                    Arg::Uuid(a.id),
                    Arg::Uuid(i.id),
                    Arg::Text(a.via.clone()),
                    Arg::Text(a.value.clone()),
                    Arg::Int(position as i64),
                    ts(a.created_at),
                    ts(a.updated_at),
                ]);
            }
        }
        let mut out = multi(
            "INSERT INTO identities (id, schema_id, traits, state, state_changed_at, metadata_public, \
             metadata_admin, external_id, organization_id, available_aal, created_at, updated_at)",
            rows,
            UPSERT_IDENTITY_TAIL,
        );
        out.extend(multi(
            "INSERT INTO identity_credentials (id, identity_id, type, config, version, created_at, updated_at)",
            creds,
            "",
        ));
        out.extend(multi(
            "INSERT INTO identity_credential_identifiers (id, identifier, type, identity_id, credential_id, \
             position, created_at, updated_at)",
            idents,
            "",
        ));
        out.extend(multi(
            "INSERT INTO identity_verifiable_addresses (id, identity_id, via, value, verified, status, \
             verified_at, position, created_at, updated_at)",
            verifiable,
            "",
        ));
        out.extend(multi(
            "INSERT INTO identity_recovery_addresses (id, identity_id, via, value, position, created_at, updated_at)",
            recovery,
            "",
        ));
        out.extend(origins(identities.iter().map(|i| i.id), "identity"));
        out
    }

    fn origins(ids: impl Iterator<Item = Uuid>, kind: &str) -> Vec<Sql> {
        let rows = ids
            .map(|id| vec![Arg::Uuid(id), Arg::Text(kind.into())])
            .collect();
        multi(
            "INSERT INTO imported_rows (id, kind)",
            rows,
            " ON CONFLICT (id) DO NOTHING",
        )
    }

    pub const IMPORTED_IDS: &str = "SELECT id FROM imported_rows WHERE kind = $1";
    pub const FORGET_IMPORTED: &str = "DELETE FROM imported_rows WHERE id = $1";

    pub fn upsert_sessions(sessions: &[Session]) -> Vec<Sql> {
        let rows = sessions
            .iter()
            .map(|s| {
                vec![
                    Arg::Uuid(s.id),
                    Arg::Uuid(s.identity_id),
                    Arg::Text(s.token_digest.clone()),
                    Arg::Text(s.logout_token_digest.clone()),
                    Arg::Bool(s.active),
                    ts(s.expires_at),
                    ts(s.authenticated_at),
                    ts(s.issued_at),
                    Arg::Text(s.aal.as_str().into()),
                    Arg::Json(serde_json::to_value(&s.authentication_methods).unwrap_or_default()),
                    Arg::Json(serde_json::to_value(&s.devices).unwrap_or_default()),
                    ts(s.created_at),
                    ts(s.updated_at),
                ]
            })
            .collect();
        let mut out = multi(
            "INSERT INTO sessions (id, identity_id, token_digest, logout_token_digest, active, expires_at, \
             authenticated_at, issued_at, aal, authentication_methods, devices, created_at, updated_at)",
            rows,
            UPSERT_SESSION_TAIL,
        );
        out.extend(origins(sessions.iter().map(|s| s.id), "session"));
        out
    }

    pub fn insert_message_if_missing() -> String {
        format!(
            "{} ON CONFLICT (id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at \
             WHERE courier_messages.status = 'queued' AND excluded.status <> 'queued'",
            crate::courier::sql::INSERT_MESSAGE
        )
    }
}

#[doc(hidden)]
#[macro_export]
macro_rules! __impl_import_store {
    ($store:ty) => {
        #[$crate::__private::async_trait]
        impl $crate::__private::sallyport_core::store::ImportStore for $store {
            async fn acquire_import_lock(
                &self,
                owner: &str,
                now: $crate::__private::time::OffsetDateTime,
                stale_before: $crate::__private::time::OffsetDateTime,
            ) -> StoreResult<bool> {
                use $crate::Ts;
                let done = sqlx::query($crate::__private::import_sql::ACQUIRE_LOCK)
                    .bind(owner)
                    .bind(Ts(now))
                    .bind(Ts(stale_before))
                    .execute(&self.writer)
                    .await
                    .map_err($crate::db_err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn release_import_lock(&self, owner: &str) -> StoreResult<()> {
                sqlx::query($crate::__private::import_sql::RELEASE_LOCK)
                    .bind(owner)
                    .execute(&self.writer)
                    .await
                    .map_err($crate::db_err)?;
                Ok(())
            }

            async fn import_mark(&self, key: &str) -> StoreResult<Option<String>> {
                sqlx::query_scalar::<Db, String>($crate::__private::import_sql::GET_MARK)
                    .bind(key)
                    .fetch_optional(&self.writer)
                    .await
                    .map_err($crate::db_err)
            }

            async fn set_import_mark(
                &self,
                key: &str,
                value: &str,
                now: $crate::__private::time::OffsetDateTime,
            ) -> StoreResult<()> {
                sqlx::query($crate::__private::import_sql::SET_MARK)
                    .bind(key)
                    .bind(value)
                    .bind($crate::Ts(now))
                    .execute(&self.writer)
                    .await
                    .map_err($crate::db_err)?;
                Ok(())
            }

            async fn upsert_identities(&self, identities: &[Identity]) -> StoreResult<()> {
                use sqlx::types::Json;
                use $crate::Ts;
                if identities.is_empty() {
                    return Ok(());
                }
                for identity in identities {
                    storable(identity)?;
                }
                let ids: Vec<_> = identities.iter().map(|i| i.id).collect();
                let mut tx = self.writer.begin().await.map_err($crate::db_err)?;
                if $crate::BulkCopy::copy_upsert_identities(&mut *tx, identities).await? {
                    tx.commit().await.map_err($crate::db_err)?;
                    self.cache_changed().await;
                    return Ok(());
                }
                for chunk in ids.chunks($crate::__private::ID_CHUNK) {
                    for sql in $crate::__private::import_sql::delete_parts(chunk) {
                        $crate::bind_all_query(sqlx::query::<Db>(&sql.text), sql.args)
                            .execute(&mut *tx)
                            .await
                            .map_err($crate::db_err)?;
                    }
                }
                for sql in $crate::__private::import_sql::upsert_identities(identities) {
                    $crate::bind_all_query(sqlx::query::<Db>(&sql.text), sql.args)
                        .execute(&mut *tx)
                        .await
                        .map_err($crate::db_err)?;
                }
                tx.commit().await.map_err($crate::db_err)?;
                self.cache_changed().await;
                Ok(())
            }

            async fn upsert_sessions(&self, sessions: &[Session]) -> StoreResult<()> {
                use sqlx::types::Json;
                use $crate::Ts;
                if sessions.is_empty() {
                    return Ok(());
                }
                let mut tx = self.writer.begin().await.map_err($crate::db_err)?;
                for sql in $crate::__private::import_sql::upsert_sessions(sessions) {
                    $crate::bind_all_query(sqlx::query::<Db>(&sql.text), sql.args)
                        .execute(&mut *tx)
                        .await
                        .map_err($crate::db_err)?;
                }
                tx.commit().await.map_err($crate::db_err)?;
                self.cache_changed().await;
                Ok(())
            }

            async fn imported_ids(&self, kind: &str) -> StoreResult<Vec<$crate::__private::uuid::Uuid>> {
                sqlx::query_scalar::<Db, $crate::__private::uuid::Uuid>(
                    $crate::__private::import_sql::IMPORTED_IDS,
                )
                .bind(kind)
                .fetch_all(&self.writer)
                .await
                .map_err($crate::db_err)
            }

            async fn forget_imported(&self, id: $crate::__private::uuid::Uuid) -> StoreResult<()> {
                sqlx::query($crate::__private::import_sql::FORGET_IMPORTED)
                    .bind(id)
                    .execute(&self.writer)
                    .await
                    .map_err($crate::db_err)?;
                Ok(())
            }

            async fn insert_missing_messages(
                &self,
                messages: &[$crate::__private::sallyport_core::courier::Message],
            ) -> StoreResult<u64> {
                use sqlx::types::Json;
                use $crate::Ts;
                let sql = $crate::__private::import_sql::insert_message_if_missing();
                let mut tx = self.writer.begin().await.map_err($crate::db_err)?;
                let mut inserted = 0;
                for m in messages {
                    inserted += sqlx::query(&sql)
                        .bind(m.id)
                        .bind(m.kind.as_str())
                        .bind(m.status.as_str())
                        .bind(m.recipient.as_str())
                        .bind(m.subject.as_str())
                        .bind(m.body.as_str())
                        .bind(m.template_type.as_str())
                        .bind(Json(&m.template_data))
                        .bind(m.channel.as_str())
                        .bind(m.send_count)
                        .bind(Ts(m.next_attempt_at))
                        .bind(Ts(m.created_at))
                        .bind(Ts(m.updated_at))
                        .execute(&mut *tx)
                        .await
                        .map_err($crate::db_err)?
                        .rows_affected();
                }
                tx.commit().await.map_err($crate::db_err)?;
                Ok(inserted)
            }
        }
    };
}
