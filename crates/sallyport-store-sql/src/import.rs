//! `ImportStore`: upserts keyed by the source's ids, and the import lock and watermarks.

pub mod sql {
    use uuid::Uuid;

    use crate::Sql;

    /// Refreshes the lock for its owner, or takes it over once the holder's heartbeat is stale.
    pub const ACQUIRE_LOCK: &str = "INSERT INTO import_state (key, value, updated_at) VALUES ('lock', $1, $2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at \
         WHERE import_state.value = excluded.value OR import_state.updated_at < $3";
    pub const RELEASE_LOCK: &str = "DELETE FROM import_state WHERE key = 'lock' AND value = $1";
    pub const GET_MARK: &str = "SELECT value FROM import_state WHERE key = $1";
    pub const SET_MARK: &str = "INSERT INTO import_state (key, value, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at";
    pub const UPSERT_IDENTITY: &str = "INSERT INTO identities (id, schema_id, traits, state, \
         state_changed_at, metadata_public, metadata_admin, external_id, organization_id, available_aal, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (id) DO UPDATE SET schema_id = excluded.schema_id, traits = excluded.traits, \
         state = excluded.state, state_changed_at = excluded.state_changed_at, \
         metadata_public = excluded.metadata_public, metadata_admin = excluded.metadata_admin, \
         external_id = excluded.external_id, organization_id = excluded.organization_id, \
         available_aal = excluded.available_aal, created_at = excluded.created_at, \
         updated_at = excluded.updated_at";
    pub const UPSERT_SESSION: &str = "INSERT INTO sessions (id, identity_id, token_digest, \
         logout_token_digest, active, expires_at, authenticated_at, issued_at, aal, authentication_methods, \
         devices, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         ON CONFLICT (id) DO UPDATE SET identity_id = excluded.identity_id, \
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
                for chunk in ids.chunks($crate::__private::ID_CHUNK) {
                    for sql in $crate::__private::import_sql::delete_parts(chunk) {
                        $crate::bind_all_query(sqlx::query::<Db>(&sql.text), sql.args)
                            .execute(&mut *tx)
                            .await
                            .map_err($crate::db_err)?;
                    }
                }
                for identity in identities {
                    sqlx::query($crate::__private::import_sql::UPSERT_IDENTITY)
                        .bind(identity.id)
                        .bind(identity.schema_id.as_str())
                        .bind(Json(&identity.traits))
                        .bind(identity.state.as_str())
                        .bind(identity.state_changed_at.map(Ts))
                        .bind(identity.metadata_public.as_ref().map(Json))
                        .bind(identity.metadata_admin.as_ref().map(Json))
                        .bind(identity.external_id.as_deref())
                        .bind(identity.organization_id)
                        .bind(identity.available_aal.as_str())
                        .bind(Ts(identity.created_at))
                        .bind(Ts(identity.updated_at))
                        .execute(&mut *tx)
                        .await
                        .map_err($crate::db_err)?;
                    insert_identity_parts(&mut *tx, identity).await?;
                }
                tx.commit().await.map_err($crate::db_err)?;
                self.cache.invalidate();
                Ok(())
            }

            async fn upsert_sessions(&self, sessions: &[Session]) -> StoreResult<()> {
                use sqlx::types::Json;
                use $crate::Ts;
                if sessions.is_empty() {
                    return Ok(());
                }
                let mut tx = self.writer.begin().await.map_err($crate::db_err)?;
                for s in sessions {
                    sqlx::query($crate::__private::import_sql::UPSERT_SESSION)
                        .bind(s.id)
                        .bind(s.identity_id)
                        .bind(s.token_digest.as_str())
                        .bind(s.logout_token_digest.as_str())
                        .bind(s.active)
                        .bind(Ts(s.expires_at))
                        .bind(Ts(s.authenticated_at))
                        .bind(Ts(s.issued_at))
                        .bind(s.aal.as_str())
                        .bind(Json(&s.authentication_methods))
                        .bind(Json(&s.devices))
                        .bind(Ts(s.created_at))
                        .bind(Ts(s.updated_at))
                        .execute(&mut *tx)
                        .await
                        .map_err($crate::db_err)?;
                }
                tx.commit().await.map_err($crate::db_err)?;
                self.cache.invalidate();
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
