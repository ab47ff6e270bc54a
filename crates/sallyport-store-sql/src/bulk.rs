//! Many new identities in one transaction with multi-row `INSERT`s (the admin batch endpoint and
//! `sallyport import identities`): a handful of statements per table for a whole batch instead of
//! five or more round trips per identity.

/// Binds per statement: under SQLite's 32,766 and PostgreSQL's 65,535.
pub const MAX_BINDS: usize = 30_000;

/// Rows per multi-row statement. Every full chunk has the same statement text, so each connection
/// prepares it once and keeps it (a batch of 1,000 is ten executions of one cached statement per
/// table); re-parsing a new statement of thousands of binds for every batch was a sixth of the
/// SQLite writer's time. Only a batch's last, shorter chunk is prepared for one use. A hundred rows
/// keep the five cached statements small while the per-execution cost stays a rounding error.
pub const ROWS_PER_STATEMENT: usize = 100;

pub mod sql {
    pub const IDENTITIES: &str = "INSERT INTO identities (id, schema_id, traits, state, state_changed_at, \
         metadata_public, metadata_admin, external_id, organization_id, available_aal, created_at, updated_at) ";
    pub const CREDENTIALS: &str =
        "INSERT INTO identity_credentials (id, identity_id, type, config, version, created_at, updated_at) ";
    pub const IDENTIFIERS: &str = "INSERT INTO identity_credential_identifiers (id, identifier, type, \
         identity_id, credential_id, position, created_at, updated_at) ";
    pub const VERIFIABLE_ADDRESSES: &str = "INSERT INTO identity_verifiable_addresses (id, identity_id, via, \
         value, verified, status, verified_at, position, created_at, updated_at) ";
    pub const RECOVERY_ADDRESSES: &str = "INSERT INTO identity_recovery_addresses (id, identity_id, via, value, \
         position, created_at, updated_at) ";
}

/// One `identity_credential_identifiers` row.
pub struct IdentifierRow<'a> {
    pub id: uuid::Uuid,
    pub identifier: &'a str,
    pub cred_type: &'a str,
    pub identity_id: uuid::Uuid,
    pub credential_id: uuid::Uuid,
    pub position: i64,
    pub created_at: time::OffsetDateTime,
    pub updated_at: time::OffsetDateTime,
}

/// The identifier rows of `identity`, each identifier once per credential (as `insert_identity_parts`
/// stores them).
pub fn identifier_rows(identity: &sallyport_core::identity::Identity) -> Vec<IdentifierRow<'_>> {
    let mut out = vec![];
    for cred in identity.credentials.values() {
        let mut seen = std::collections::HashSet::new();
        for (position, identifier) in cred
            .identifiers
            .iter()
            .filter(|i| seen.insert(i.as_str()))
            .enumerate()
        {
            out.push(IdentifierRow {
                id: sallyport_core::row_id::new_row_id(),
                identifier,
                cred_type: &cred.cred_type,
                identity_id: identity.id,
                credential_id: cred.id,
                position: position as i64,
                created_at: cred.created_at,
                updated_at: cred.updated_at,
            });
        }
    }
    out
}

#[doc(hidden)]
#[macro_export]
macro_rules! __bulk_helpers {
    () => {
        /// `head` followed by `VALUES (…), (…)` for `rows`, in statements of at most `MAX_BINDS` binds.
        async fn insert_rows<'a, T, F>(
            conn: &mut Conn,
            head: &str,
            columns: usize,
            rows: &'a [T],
            mut bind: F,
        ) -> StoreResult<()>
        where
            F: FnMut(&mut sqlx::query_builder::Separated<'_, 'a, Db, &'static str>, &'a T),
        {
            let per_statement = ($crate::__private::BULK_MAX_BINDS / columns)
                .clamp(1, $crate::__private::BULK_ROWS_PER_STATEMENT);
            for chunk in rows.chunks(per_statement) {
                let mut qb = sqlx::QueryBuilder::<Db>::new(head);
                qb.push_values(chunk, |mut b, row| bind(&mut b, row));
                // A shorter chunk's text is one of many: not worth a slot in the statement cache.
                qb.build()
                    .persistent(chunk.len() == per_statement)
                    .execute(&mut *conn)
                    .await
                    .map_err($crate::db_err)?;
            }
            Ok(())
        }

        /// Inserts `identities` and their parts with one multi-row statement per table (and chunk).
        async fn insert_identities_bulk(conn: &mut Conn, identities: &[&Identity]) -> StoreResult<()> {
            use sqlx::types::Json;
            use $crate::__private::bulk_sql as q;
            use $crate::Ts;
            insert_rows(conn, q::IDENTITIES, 12, identities, |b, i| {
                b.push_bind(i.id)
                    .push_bind(i.schema_id.as_str())
                    .push_bind(Json(&i.traits))
                    .push_bind(i.state.as_str())
                    .push_bind(i.state_changed_at.map(Ts))
                    .push_bind(i.metadata_public.as_ref().map(Json))
                    .push_bind(i.metadata_admin.as_ref().map(Json))
                    .push_bind(i.external_id.as_deref())
                    .push_bind(i.organization_id)
                    .push_bind(i.available_aal.as_str())
                    .push_bind(Ts(i.created_at))
                    .push_bind(Ts(i.updated_at));
            })
            .await?;
            let credentials: Vec<_> = identities
                .iter()
                .flat_map(|i| i.credentials.values().map(move |c| (i.id, c)))
                .collect();
            insert_rows(
                conn,
                q::CREDENTIALS,
                7,
                &credentials,
                |b, (identity_id, c)| {
                    b.push_bind(c.id)
                        .push_bind(*identity_id)
                        .push_bind(c.cred_type.as_str())
                        .push_bind(Json(&c.config))
                        .push_bind(c.version)
                        .push_bind(Ts(c.created_at))
                        .push_bind(Ts(c.updated_at));
                },
            )
            .await?;
            let identifiers: Vec<_> = identities
                .iter()
                .flat_map(|i| $crate::__private::bulk_identifier_rows(i))
                .collect();
            insert_rows(conn, q::IDENTIFIERS, 8, &identifiers, |b, r| {
                b.push_bind(r.id)
                    .push_bind(r.identifier)
                    .push_bind(r.cred_type)
                    .push_bind(r.identity_id)
                    .push_bind(r.credential_id)
                    .push_bind(r.position)
                    .push_bind(Ts(r.created_at))
                    .push_bind(Ts(r.updated_at));
            })
            .await?;
            let verifiable: Vec<_> = identities
                .iter()
                .flat_map(|i| {
                    i.verifiable_addresses
                        .iter()
                        .enumerate()
                        .map(move |(p, a)| (i.id, p as i64, a))
                })
                .collect();
            insert_rows(
                conn,
                q::VERIFIABLE_ADDRESSES,
                10,
                &verifiable,
                |b, (identity_id, p, a)| {
                    b.push_bind(a.id)
                        .push_bind(*identity_id)
                        .push_bind(a.via.as_str())
                        .push_bind(a.value.as_str())
                        .push_bind(a.verified)
                        .push_bind(a.status.as_str())
                        .push_bind(a.verified_at.map(Ts))
                        .push_bind(*p)
                        .push_bind(Ts(a.created_at))
                        .push_bind(Ts(a.updated_at));
                },
            )
            .await?;
            let recovery: Vec<_> = identities
                .iter()
                .flat_map(|i| {
                    i.recovery_addresses
                        .iter()
                        .enumerate()
                        .map(move |(p, a)| (i.id, p as i64, a))
                })
                .collect();
            insert_rows(
                conn,
                q::RECOVERY_ADDRESSES,
                7,
                &recovery,
                |b, (identity_id, p, a)| {
                    b.push_bind(a.id)
                        .push_bind(*identity_id)
                        .push_bind(a.via.as_str())
                        .push_bind(a.value.as_str())
                        .push_bind(*p)
                        .push_bind(Ts(a.created_at))
                        .push_bind(Ts(a.updated_at));
                },
            )
            .await
        }
    };
}
