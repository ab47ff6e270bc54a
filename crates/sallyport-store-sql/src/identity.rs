//! Identities with their credentials, identifiers and addresses.

/// How many identity ids go into one `IN (…)` list when loading their parts (SQLite allows 32766 binds).
pub const ID_CHUNK: usize = 500;

pub mod sql {
    use sallyport_core::store::IdentityQuery;
    use uuid::Uuid;

    use crate::args::{limit_arg, offset_arg};
    use crate::rows::IDENTITY_COLUMNS;
    use crate::{Arg, Sql};

    pub const INSERT_IDENTITY: &str = "INSERT INTO identities (id, schema_id, traits, state, \
         state_changed_at, metadata_public, metadata_admin, external_id, organization_id, available_aal, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
    pub const UPDATE_IDENTITY: &str = "UPDATE identities SET schema_id = $2, traits = $3, state = $4, \
         state_changed_at = $5, metadata_public = $6, metadata_admin = $7, external_id = $8, \
         organization_id = $9, available_aal = $10, updated_at = $11 WHERE id = $1";
    pub const INSERT_CREDENTIAL: &str = "INSERT INTO identity_credentials (id, identity_id, type, config, \
         version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
    pub const INSERT_IDENTIFIER: &str = "INSERT INTO identity_credential_identifiers (id, identifier, type, \
         identity_id, credential_id, position, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    pub const INSERT_VERIFIABLE_ADDRESS: &str = "INSERT INTO identity_verifiable_addresses (id, identity_id, \
         via, value, verified, status, verified_at, position, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
    pub const INSERT_RECOVERY_ADDRESS: &str = "INSERT INTO identity_recovery_addresses (id, identity_id, \
         via, value, position, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
    /// Children first, so nothing relies on `ON DELETE CASCADE` while replacing them.
    pub const DELETE_PARTS: [&str; 4] = [
        "DELETE FROM identity_credential_identifiers WHERE identity_id = $1",
        "DELETE FROM identity_credentials WHERE identity_id = $1",
        "DELETE FROM identity_verifiable_addresses WHERE identity_id = $1",
        "DELETE FROM identity_recovery_addresses WHERE identity_id = $1",
    ];
    /// Credentials, identifiers, addresses and sessions go with it (`ON DELETE CASCADE`).
    pub const DELETE_IDENTITY: &str = "DELETE FROM identities WHERE id = $1";
    pub const COUNT_IDENTITIES: &str = "SELECT COUNT(*) FROM identities";

    /// The one-statement load of the identity `condition` (on `identities`) selects: a `target`
    /// CTE holding its id, then [`parts_union`] of it with its own row as part -1.
    fn select_where(condition: &str, arg: impl Into<Arg>) -> Sql {
        let mut sql = Sql::new(&format!(
            "WITH target AS (SELECT id FROM identities WHERE {condition}"
        ));
        sql.bind(arg);
        sql
    }

    /// Ends a [`select_where`] (after its condition is complete).
    fn finish_one(mut sql: Sql) -> Sql {
        static REST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let rest = REST.get_or_init(|| {
            let own = branch(
                &[
                    ("part", "CAST(-1 AS BIGINT)"),
                    ("id", "id"),
                    ("owner", "id"),
                    ("name", "schema_id"),
                    ("value", "state"),
                    ("status", "available_aal"),
                    ("config", "traits"),
                    ("verified_at", "state_changed_at"),
                    ("metadata_public", "metadata_public"),
                    ("metadata_admin", "metadata_admin"),
                    ("external_id", "external_id"),
                    ("organization_id", "organization_id"),
                    ("num", "CAST(0 AS BIGINT)"),
                ],
                "identities WHERE id IN (SELECT id FROM target)",
            );
            format!(
                ") {own} UNION ALL {}",
                parts_union("identity_id IN (SELECT id FROM target)")
            )
        });
        sql.push(rest);
        sql
    }

    pub fn by_id(id: Uuid) -> Sql {
        finish_one(select_where("id = ", id))
    }

    pub fn by_external_id(external_id: &str) -> Sql {
        finish_one(select_where("external_id = ", external_id))
    }

    pub fn by_identifier(credential_type: &str, identifier: &str) -> Sql {
        let mut sql = select_where(
            "id = (SELECT identity_id FROM identity_credential_identifiers WHERE type = ",
            credential_type,
        );
        sql.push(" AND identifier = ").bind(identifier).push(")");
        finish_one(sql)
    }

    /// [`by_identifier`]'s text, the same for every call: the statement a connection keeps prepared.
    pub fn by_identifier_text() -> &'static str {
        static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        TEXT.get_or_init(|| by_identifier("", "").text)
    }

    /// [`by_address`]'s text of `kind`, as [`by_identifier_text`].
    pub fn by_address_text(kind: sallyport_core::store::AddressKind) -> &'static str {
        use sallyport_core::store::AddressKind;
        static VERIFIABLE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        static RECOVERY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        match kind {
            AddressKind::Verifiable => &VERIFIABLE,
            AddressKind::Recovery => &RECOVERY,
        }
        .get_or_init(|| by_address(kind, "", "").text)
    }

    pub fn by_address(kind: sallyport_core::store::AddressKind, via: &str, value: &str) -> Sql {
        let table = match kind {
            sallyport_core::store::AddressKind::Verifiable => "identity_verifiable_addresses",
            sallyport_core::store::AddressKind::Recovery => "identity_recovery_addresses",
        };
        let mut sql = select_where(
            &format!("id = (SELECT identity_id FROM {table} WHERE via = "),
            via,
        );
        sql.push(" AND value = ").bind(value).push(")");
        finish_one(sql)
    }

    /// `None` when the query can only match nothing (an empty `ids` filter).
    pub fn list(q: &IdentityQuery) -> Option<Sql> {
        let mut sql = Sql::new(&format!("SELECT {IDENTITY_COLUMNS} FROM identities WHERE 1 = 1"));
        if let Some(after) = q.after {
            sql.push(" AND id > ").bind(after);
        }
        if let Some(ids) = &q.ids {
            if ids.is_empty() {
                return None;
            }
            sql.push(" AND id IN ").bind_list(ids.iter().copied());
        }
        if let Some(identifier) = &q.credentials_identifier {
            sql.push(
                " AND id IN (SELECT identity_id FROM identity_credential_identifiers WHERE identifier = ",
            )
            .bind(identifier.as_str())
            .push(")");
        }
        sql.push(" ORDER BY id LIMIT ").bind(limit_arg(q.limit));
        if let Some(offset) = q.offset {
            sql.push(" OFFSET ").bind(offset_arg(offset));
        }
        Some(sql)
    }

    /// The columns of a [`PartRow`](crate::rows::PartRow) and the type each takes; a branch that
    /// has no value for one selects a NULL cast to it, so PostgreSQL can unite the branches.
    const PART_COLUMNS: [(&str, &str); 16] = [
        ("part", "BIGINT"),
        ("id", "UUID"),
        ("owner", "UUID"),
        ("name", "TEXT"),
        ("value", "TEXT"),
        ("status", "TEXT"),
        ("config", "JSONB"),
        ("num", "BIGINT"),
        ("verified", "BOOLEAN"),
        ("verified_at", "TIMESTAMPTZ"),
        ("metadata_public", "JSONB"),
        ("metadata_admin", "JSONB"),
        ("external_id", "TEXT"),
        ("organization_id", "UUID"),
        ("created_at", "TIMESTAMPTZ"),
        ("updated_at", "TIMESTAMPTZ"),
    ];

    /// `SELECT` of the part columns from `from` (a table and its filter), `values` naming the
    /// expression of each column that has one.
    fn branch(values: &[(&str, &str)], from: &str) -> String {
        let columns: Vec<String> = PART_COLUMNS
            .iter()
            .map(|(column, ty)| match values.iter().find(|(c, _)| c == column) {
                Some((_, expr)) => format!("{expr} AS {column}"),
                None if matches!(*column, "created_at" | "updated_at") => (*column).to_owned(),
                None => format!("CAST(NULL AS {ty}) AS {column}"),
            })
            .collect();
        format!("SELECT {} FROM {from}", columns.join(", "))
    }

    /// Credentials (part 0), identifiers (1), verifiable (2) and recovery addresses (3) of the
    /// identities `filter` (on `identity_id`) selects, in one statement instead of four. Unordered:
    /// the rows are sorted when assembled.
    fn parts_union(filter: &str) -> String {
        [
            branch(
                &[
                    ("part", "CAST(0 AS BIGINT)"),
                    ("id", "id"),
                    ("owner", "identity_id"),
                    ("name", "type"),
                    ("config", "config"),
                    ("num", "CAST(version AS BIGINT)"),
                ],
                &format!("identity_credentials WHERE {filter}"),
            ),
            branch(
                &[
                    ("part", "CAST(1 AS BIGINT)"),
                    ("id", "credential_id"),
                    ("owner", "identity_id"),
                    ("name", "identifier"),
                    ("num", "CAST(position AS BIGINT)"),
                ],
                &format!("identity_credential_identifiers WHERE {filter}"),
            ),
            branch(
                &[
                    ("part", "CAST(2 AS BIGINT)"),
                    ("id", "id"),
                    ("owner", "identity_id"),
                    ("name", "via"),
                    ("value", "value"),
                    ("status", "status"),
                    ("num", "CAST(position AS BIGINT)"),
                    ("verified", "verified"),
                    ("verified_at", "verified_at"),
                ],
                &format!("identity_verifiable_addresses WHERE {filter}"),
            ),
            branch(
                &[
                    ("part", "CAST(3 AS BIGINT)"),
                    ("id", "id"),
                    ("owner", "identity_id"),
                    ("name", "via"),
                    ("value", "value"),
                    ("num", "CAST(position AS BIGINT)"),
                ],
                &format!("identity_recovery_addresses WHERE {filter}"),
            ),
        ]
        .join(" UNION ALL ")
    }

    /// The parts of `ids` (see [`parts_union`]); the `$N` of the id list are reused by each branch.
    pub fn all_parts(ids: &[Uuid]) -> Sql {
        let mut sql = Sql::new("");
        sql.bind_list(ids.iter().copied());
        let list = std::mem::take(&mut sql.text);
        sql.text = parts_union(&format!("identity_id IN {list}"));
        sql
    }
}

/// Functions shared by several store impls, defined once per backend inside `impl_sql_store!`.
#[doc(hidden)]
#[macro_export]
macro_rules! __identity_helpers {
    () => {
        /// Refused alike on every backend, before PostgreSQL's index would refuse it alone.
        fn storable(identity: &Identity) -> StoreResult<()> {
            match $crate::__private::sallyport_core::limits::unstorable_identity(identity) {
                Some(why) => Err(StoreError::Unrepresentable(why)),
                None => Ok(()),
            }
        }

        async fn insert_identity(conn: &mut Conn, identity: &Identity) -> StoreResult<()> {
            use sqlx::types::Json;
            use $crate::__private::identity_sql as q;
            use $crate::Ts;
            sqlx::query(q::INSERT_IDENTITY)
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
                .execute(&mut *conn)
                .await
                .map_err($crate::db_err)?;
            insert_identity_parts(conn, identity).await
        }

        async fn insert_identity_parts(conn: &mut Conn, identity: &Identity) -> StoreResult<()> {
            use sqlx::types::Json;
            use $crate::__private::identity_sql as q;
            use $crate::Ts;
            for cred in identity.credentials.values() {
                sqlx::query(q::INSERT_CREDENTIAL)
                    .bind(cred.id)
                    .bind(identity.id)
                    .bind(cred.cred_type.as_str())
                    .bind(Json(&cred.config))
                    .bind(cred.version)
                    .bind(Ts(cred.created_at))
                    .bind(Ts(cred.updated_at))
                    .execute(&mut *conn)
                    .await
                    .map_err($crate::db_err)?;
                // The same identifier listed twice (e.g. as both email and username) is stored once.
                let mut seen = ::std::collections::HashSet::new();
                let mut position: i64 = 0;
                for identifier in cred.identifiers.iter().filter(|i| seen.insert(i.as_str())) {
                    sqlx::query(q::INSERT_IDENTIFIER)
                        .bind($crate::__private::sallyport_core::row_id::new_row_id())
                        .bind(identifier.as_str())
                        .bind(cred.cred_type.as_str())
                        .bind(identity.id)
                        .bind(cred.id)
                        .bind(position)
                        .bind(Ts(cred.created_at))
                        .bind(Ts(cred.updated_at))
                        .execute(&mut *conn)
                        .await
                        .map_err($crate::db_err)?;
                    position += 1;
                }
            }
            let mut position: i64 = 0;
            for a in &identity.verifiable_addresses {
                sqlx::query(q::INSERT_VERIFIABLE_ADDRESS)
                    .bind(a.id)
                    .bind(identity.id)
                    .bind(a.via.as_str())
                    .bind(a.value.as_str())
                    .bind(a.verified)
                    .bind(a.status.as_str())
                    .bind(a.verified_at.map(Ts))
                    .bind(position)
                    .bind(Ts(a.created_at))
                    .bind(Ts(a.updated_at))
                    .execute(&mut *conn)
                    .await
                    .map_err($crate::db_err)?;
                position += 1;
            }
            let mut position: i64 = 0;
            for a in &identity.recovery_addresses {
                sqlx::query(q::INSERT_RECOVERY_ADDRESS)
                    .bind(a.id)
                    .bind(identity.id)
                    .bind(a.via.as_str())
                    .bind(a.value.as_str())
                    .bind(position)
                    .bind(Ts(a.created_at))
                    .bind(Ts(a.updated_at))
                    .execute(&mut *conn)
                    .await
                    .map_err($crate::db_err)?;
                position += 1;
            }
            Ok(())
        }

        async fn insert_session(conn: &mut Conn, s: &Session) -> StoreResult<()> {
            use sqlx::types::Json;
            use $crate::Ts;
            sqlx::query($crate::__private::session_sql::INSERT_SESSION)
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
                .execute(&mut *conn)
                .await
                .map_err($crate::db_err)?;
            Ok(())
        }

        /// Loads the credentials and addresses of `rows` and builds the identities, in `rows`' order.
        async fn load_identities(
            conn: &mut Conn,
            rows: Vec<$crate::__private::IdentityRow>,
        ) -> StoreResult<Vec<Identity>> {
            use $crate::__private::{
                ID_CHUNK, IdentityParts, IdentityRow, PartRow, assemble_identities, identity_sql as q,
            };
            let ids: Vec<_> = rows.iter().map(IdentityRow::id).collect();
            let mut part_rows = vec![];
            for chunk in ids.chunks(ID_CHUNK) {
                let sql = q::all_parts(chunk);
                let found = $crate::bind_all(sqlx::query_as::<Db, PartRow>(&sql.text), sql.args)
                    .fetch_all(&mut *conn)
                    .await;
                part_rows.extend(found.map_err($crate::db_err)?);
            }
            let parts = IdentityParts::from_rows(part_rows)?;
            assemble_identities(rows, parts)
        }

        /// Runs one of `identity_sql`'s single-identity loads: the identity row and all its parts.
        async fn fetch_identity(conn: &mut Conn, sql: $crate::Sql) -> StoreResult<Identity> {
            use $crate::__private::{PartRow, one_identity};
            let rows = $crate::bind_all(sqlx::query_as::<Db, PartRow>(&sql.text), sql.args)
                .fetch_all(&mut *conn)
                .await
                .map_err($crate::db_err)?;
            one_identity(rows)
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __impl_identity_store {
    ($store:ty) => {
        /// One identity by one of `identity_sql`'s single-identity loads: `text` with `values` on the
        /// calling thread when the store reads inline (SQLite files), else `sql` (the same statement,
        /// built with the same values) the usual way.
        async fn find_one(
            store: &$store,
            text: &'static str,
            values: &[$crate::__private::RawValue<'_>],
            sql: impl FnOnce() -> $crate::Sql,
        ) -> StoreResult<Identity> {
            if let Some(found) = $crate::__private::inline_identity(store.inline.as_deref(), text, values) {
                return found;
            }
            fetch_identity(&mut *store.read().await?, sql()).await
        }

        #[$crate::__private::async_trait]
        impl IdentityStore for $store {
            #[tracing::instrument(level = "debug", skip_all)]
            async fn create_identity(
                &self,
                identity: &Identity,
                session: Option<&Session>,
            ) -> StoreResult<()> {
                storable(identity)?;
                let mut tx = self.writer.begin().await.map_err($crate::db_err)?;
                insert_identity(&mut *tx, identity).await?;
                if let Some(session) = session {
                    insert_session(&mut *tx, session).await?;
                }
                tx.commit().await.map_err($crate::db_err)
            }

            #[tracing::instrument(level = "debug", skip_all, fields(n = identities.len()))]
            async fn create_identities(&self, identities: &[Identity]) -> StoreResult<Vec<StoreResult<()>>> {
                let mut results: Vec<StoreResult<()>> = identities.iter().map(storable).collect();
                let fit: Vec<&Identity> = identities
                    .iter()
                    .zip(&results)
                    .filter(|(_, r)| r.is_ok())
                    .map(|(i, _)| i)
                    .collect();
                if fit.is_empty() {
                    return Ok(results);
                }
                let staged = <Conn as $crate::StagedInsert>::stage(&fit)?;
                let mut tx = self.writer.begin().await.map_err($crate::db_err)?;
                let written = match $crate::StagedInsert::write_staged(&mut *tx, &staged).await {
                    Ok(true) => Ok(()),
                    Ok(false) => match $crate::BulkCopy::copy_new_identities(&mut *tx, &fit).await {
                        Ok(true) => Ok(()),
                        Ok(false) => insert_identities_bulk(&mut *tx, &fit).await,
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e),
                };
                match written {
                    Ok(()) => {
                        tx.commit().await.map_err($crate::db_err)?;
                        return Ok(results);
                    }
                    Err(StoreError::Conflict(_) | StoreError::Unrepresentable(_)) => {
                        tx.rollback().await.map_err($crate::db_err)?;
                    }
                    Err(e) => return Err(e),
                }
                // Some identity is refused: one savepoint each finds which, and the others are kept.
                let mut tx = self.writer.begin().await.map_err($crate::db_err)?;
                for (identity, result) in identities.iter().zip(results.iter_mut()) {
                    if result.is_err() {
                        continue;
                    }
                    let mut sp = sqlx::Connection::begin(&mut *tx)
                        .await
                        .map_err($crate::db_err)?;
                    match insert_identity(&mut *sp, identity).await {
                        Ok(()) => sp.commit().await.map_err($crate::db_err)?,
                        Err(e @ (StoreError::Conflict(_) | StoreError::Unrepresentable(_))) => {
                            sp.rollback().await.map_err($crate::db_err)?;
                            *result = Err(e);
                        }
                        Err(e) => return Err(e),
                    }
                }
                tx.commit().await.map_err($crate::db_err)?;
                Ok(results)
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn update_identity(&self, identity: &Identity) -> StoreResult<()> {
                use sqlx::types::Json;
                use $crate::__private::identity_sql as q;
                use $crate::Ts;
                storable(identity)?;
                let mut tx = self.writer.begin().await.map_err($crate::db_err)?;
                let updated = sqlx::query(q::UPDATE_IDENTITY)
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
                    .bind(Ts(identity.updated_at))
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::db_err)?;
                if updated.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                for delete in q::DELETE_PARTS {
                    sqlx::query(delete)
                        .bind(identity.id)
                        .execute(&mut *tx)
                        .await
                        .map_err($crate::db_err)?;
                }
                insert_identity_parts(&mut *tx, identity).await?;
                tx.commit().await.map_err($crate::db_err)?;
                self.cache_changed().await;
                Ok(())
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn get_identity(&self, id: $crate::__private::uuid::Uuid) -> StoreResult<Identity> {
                if let Some(i) = self.cache.identity(id) {
                    return Ok(i);
                }
                let generation = self.cache.generation();
                let identity = fetch_identity(
                    &mut *self.read().await?,
                    $crate::__private::identity_sql::by_id(id),
                )
                .await?;
                self.cache.put_identity(generation, &identity);
                Ok(identity)
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn get_identity_by_external_id(&self, external_id: &str) -> StoreResult<Identity> {
                let sql = $crate::__private::identity_sql::by_external_id(external_id);
                fetch_identity(&mut *self.read().await?, sql).await
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn find_identity_by_identifier(
                &self,
                credential_type: &str,
                identifier: &str,
            ) -> StoreResult<Identity> {
                use $crate::__private::{RawValue, identity_sql as q};
                let values = [RawValue::Text(credential_type), RawValue::Text(identifier)];
                find_one(self, q::by_identifier_text(), &values, || {
                    q::by_identifier(credential_type, identifier)
                })
                .await
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn find_identity_by_address(
                &self,
                kind: sallyport_core::store::AddressKind,
                via: &str,
                value: &str,
            ) -> StoreResult<Identity> {
                use $crate::__private::{RawValue, identity_sql as q};
                let values = [RawValue::Text(via), RawValue::Text(value)];
                find_one(self, q::by_address_text(kind), &values, || {
                    q::by_address(kind, via, value)
                })
                .await
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn list_identities(&self, query: &IdentityQuery) -> StoreResult<Vec<Identity>> {
                let Some(sql) = $crate::__private::identity_sql::list(query) else {
                    return Ok(vec![]);
                };
                let rows = $crate::bind_all(
                    sqlx::query_as::<Db, $crate::__private::IdentityRow>(&sql.text),
                    sql.args,
                )
                .fetch_all(&mut *self.read().await?)
                .await
                .map_err($crate::db_err)?;
                load_identities(&mut *self.read().await?, rows).await
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn count_identities(&self) -> StoreResult<u64> {
                let n: i64 = sqlx::query_scalar($crate::__private::identity_sql::COUNT_IDENTITIES)
                    .fetch_one(&mut *self.read().await?)
                    .await
                    .map_err($crate::db_err)?;
                Ok(n.try_into().unwrap_or(0))
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn delete_identity(&self, id: $crate::__private::uuid::Uuid) -> StoreResult<()> {
                let done = sqlx::query($crate::__private::identity_sql::DELETE_IDENTITY)
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
