//! PostgreSQL's `COPY … FROM STDIN` for batches of identities (the admin batch endpoint,
//! `sallyport import identities`, `sallyport import kratos`): one stream of rows per table instead of
//! multi-row `INSERT`s that the server must parse and plan, with tens of thousands of binds each.
//!
//! Each attempt runs in a savepoint of the caller's transaction. When COPY cannot take the batch — a
//! value its text format cannot carry (a NUL), a timestamp outside years 1–9999, or any error while
//! copying — the savepoint is rolled back and the caller writes the batch the portable way, which
//! names each refused identity. SQLite has no COPY: its impl always declines.

use std::fmt::Write as _;

use sallyport_core::identity::Identity;
use sallyport_core::store::{StoreError, StoreResult};
use sqlx::{Connection as _, PgConnection, SqliteConnection};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Ts, db_err};

/// Writes batches of identities in bulk where the backend has a faster way than `INSERT`s.
#[async_trait::async_trait]
pub trait BulkCopy {
    /// Inserts new `identities` with their parts. `Ok(false)`: nothing was written (the transaction is
    /// as before), write them another way. A unique violation or a value the database refuses is
    /// returned as such (the transaction must then be rolled back).
    async fn copy_new_identities(&mut self, identities: &[&Identity]) -> StoreResult<bool>;

    /// Inserts or replaces `identities` (their parts are replaced whole) and records them in
    /// `imported_rows`, as `ImportStore::upsert_identities` does. `Ok(false)`: nothing was written.
    async fn copy_upsert_identities(&mut self, identities: &[Identity]) -> StoreResult<bool>;
}

#[async_trait::async_trait]
impl BulkCopy for SqliteConnection {
    async fn copy_new_identities(&mut self, _: &[&Identity]) -> StoreResult<bool> {
        Ok(false)
    }

    async fn copy_upsert_identities(&mut self, _: &[Identity]) -> StoreResult<bool> {
        Ok(false)
    }
}

pub mod sql {
    pub const IDENTITY_COLUMNS: &str = "id, schema_id, traits, state, state_changed_at, metadata_public, \
         metadata_admin, external_id, organization_id, available_aal, created_at, updated_at";
    pub const CREDENTIALS: &str = "COPY identity_credentials (id, identity_id, type, config, version, created_at, updated_at) FROM STDIN";
    pub const IDENTIFIERS: &str = "COPY identity_credential_identifiers (id, identifier, type, identity_id, \
         credential_id, position, created_at, updated_at) FROM STDIN";
    pub const VERIFIABLE_ADDRESSES: &str = "COPY identity_verifiable_addresses (id, identity_id, via, value, \
         verified, status, verified_at, position, created_at, updated_at) FROM STDIN";
    pub const RECOVERY_ADDRESSES: &str = "COPY identity_recovery_addresses (id, identity_id, via, value, \
         position, created_at, updated_at) FROM STDIN";

    /// The identity rows of an upsert go through an unindexed table of this transaction, from which one
    /// statement inserts or updates them all.
    pub const STAGE: &str = "CREATE TEMP TABLE sallyport_identities_stage \
         (LIKE identities INCLUDING DEFAULTS) ON COMMIT DROP";
    pub const STAGE_NAME: &str = "sallyport_identities_stage";
    pub const UPSERT_FROM_STAGE: &str = "INSERT INTO identities (id, schema_id, traits, state, \
         state_changed_at, metadata_public, metadata_admin, external_id, organization_id, available_aal, \
         created_at, updated_at) SELECT id, schema_id, traits, state, state_changed_at, metadata_public, \
         metadata_admin, external_id, organization_id, available_aal, created_at, updated_at \
         FROM sallyport_identities_stage \
         ON CONFLICT (id) DO UPDATE SET schema_id = excluded.schema_id, traits = excluded.traits, \
         state = excluded.state, state_changed_at = excluded.state_changed_at, \
         metadata_public = excluded.metadata_public, metadata_admin = excluded.metadata_admin, \
         external_id = excluded.external_id, organization_id = excluded.organization_id, \
         available_aal = excluded.available_aal, created_at = excluded.created_at, \
         updated_at = excluded.updated_at";
    /// Children first, as `update_identity` does. An id array rather than a join with the stage: the
    /// plan is an index scan whatever the (unanalysed) stage holds.
    pub const DELETE_PARTS: [&str; 4] = [
        "DELETE FROM identity_credential_identifiers WHERE identity_id = ANY($1)",
        "DELETE FROM identity_credentials WHERE identity_id = ANY($1)",
        "DELETE FROM identity_verifiable_addresses WHERE identity_id = ANY($1)",
        "DELETE FROM identity_recovery_addresses WHERE identity_id = ANY($1)",
    ];
    /// Parts exist only for stored identities (foreign keys): none of these stored, nothing to replace.
    pub const COUNT_PRESENT: &str = "SELECT COUNT(*) FROM identities WHERE id = ANY($1)";
    pub const RECORD_IMPORTED: &str = "INSERT INTO imported_rows (id, kind) \
         SELECT unnest($1::uuid[]), 'identity' ON CONFLICT (id) DO NOTHING";
}

/// Rows in PostgreSQL's COPY text format: columns split by tabs, rows ended by newlines, `\N` for
/// NULL, and backslash, tab, newline and carriage return escaped with a backslash.
#[derive(Default)]
pub struct CopyRows {
    buf: String,
    row_started: bool,
    /// Something the text format (or PostgreSQL) cannot take: the batch must go another way.
    unfit: bool,
}

impl CopyRows {
    pub fn into_text(self) -> Option<String> {
        (!self.unfit).then_some(self.buf)
    }

    fn column(&mut self) -> &mut String {
        if self.row_started {
            self.buf.push('\t');
        }
        self.row_started = true;
        &mut self.buf
    }

    pub fn end_row(&mut self) -> &mut Self {
        self.buf.push('\n');
        self.row_started = false;
        self
    }

    pub fn null(&mut self) -> &mut Self {
        self.column().push_str("\\N");
        self
    }

    pub fn text(&mut self, v: &str) -> &mut Self {
        // PostgreSQL keeps no NUL in text: the portable path refuses it with a clear error.
        if v.contains('\0') {
            self.unfit = true;
        }
        let buf = self.column();
        if !v.contains(['\\', '\t', '\n', '\r']) {
            buf.push_str(v);
            return self;
        }
        for c in v.chars() {
            match c {
                '\\' => buf.push_str("\\\\"),
                '\t' => buf.push_str("\\t"),
                '\n' => buf.push_str("\\n"),
                '\r' => buf.push_str("\\r"),
                c => buf.push(c),
            }
        }
        self
    }

    pub fn opt_text(&mut self, v: Option<&str>) -> &mut Self {
        match v {
            Some(v) => self.text(v),
            None => self.null(),
        }
    }

    pub fn json(&mut self, v: &serde_json::Value) -> &mut Self {
        let text = v.to_string();
        // jsonb refuses the `\u0000` escape. An escaped backslash followed by `u0000` matches too:
        // such a batch merely takes the slower path.
        if text.contains("\\u0000") {
            self.unfit = true;
        }
        self.text(&text)
    }

    pub fn opt_json(&mut self, v: Option<&serde_json::Value>) -> &mut Self {
        match v {
            Some(v) => self.json(v),
            None => self.null(),
        }
    }

    pub fn uuid(&mut self, v: Uuid) -> &mut Self {
        let mut b = Uuid::encode_buffer();
        let s = v.hyphenated().encode_lower(&mut b);
        self.column().push_str(s);
        self
    }

    pub fn opt_uuid(&mut self, v: Option<Uuid>) -> &mut Self {
        match v {
            Some(v) => self.uuid(v),
            None => self.null(),
        }
    }

    pub fn int(&mut self, v: i64) -> &mut Self {
        let _ = write!(self.column(), "{v}");
        self
    }

    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.column().push(if v { 't' } else { 'f' });
        self
    }

    /// ISO 8601 in UTC with microseconds, as the binary encoding keeps them. Years outside 1–9999
    /// would need PostgreSQL's `BC` or more digits: such a batch takes the slower path.
    pub fn ts(&mut self, v: OffsetDateTime) -> &mut Self {
        match Ts(v).sqlite_text() {
            Ok(text) if (1..=9999).contains(&v.to_offset(time::UtcOffset::UTC).year()) => {
                self.column().push_str(&text);
            }
            _ => {
                self.unfit = true;
                self.null();
            }
        }
        self
    }

    pub fn opt_ts(&mut self, v: Option<OffsetDateTime>) -> &mut Self {
        match v {
            Some(v) => self.ts(v),
            None => self.null(),
        }
    }
}

/// A batch's rows, one COPY text per table; `None` when some value cannot go through COPY.
pub struct Encoded {
    pub identities: String,
    pub credentials: String,
    pub identifiers: String,
    pub verifiable: String,
    pub recovery: String,
}

/// The same rows `insert_identities_bulk` writes, in the column order of `sql::IDENTITY_COLUMNS` and
/// of the other tables' COPY statements.
pub fn encode<'a>(identities: impl Iterator<Item = &'a Identity> + Clone) -> Option<Encoded> {
    let mut rows = CopyRows::default();
    let (mut creds, mut idents) = (CopyRows::default(), CopyRows::default());
    let (mut verifiable, mut recovery) = (CopyRows::default(), CopyRows::default());
    for i in identities {
        rows.uuid(i.id)
            .text(&i.schema_id)
            .json(&i.traits)
            .text(i.state.as_str())
            .opt_ts(i.state_changed_at)
            .opt_json(i.metadata_public.as_ref())
            .opt_json(i.metadata_admin.as_ref())
            .opt_text(i.external_id.as_deref())
            .opt_uuid(i.organization_id)
            .text(i.available_aal.as_str())
            .ts(i.created_at)
            .ts(i.updated_at)
            .end_row();
        for c in i.credentials.values() {
            creds
                .uuid(c.id)
                .uuid(i.id)
                .text(&c.cred_type)
                .json(&c.config)
                .int(c.version.into())
                .ts(c.created_at)
                .ts(c.updated_at)
                .end_row();
        }
        for r in crate::bulk::identifier_rows(i) {
            idents
                .uuid(r.id)
                .text(r.identifier)
                .text(r.cred_type)
                .uuid(r.identity_id)
                .uuid(r.credential_id)
                .int(r.position)
                .ts(r.created_at)
                .ts(r.updated_at)
                .end_row();
        }
        for (position, a) in i.verifiable_addresses.iter().enumerate() {
            verifiable
                .uuid(a.id)
                .uuid(i.id)
                .text(&a.via)
                .text(&a.value)
                .bool(a.verified)
                .text(&a.status)
                .opt_ts(a.verified_at)
                .int(position as i64)
                .ts(a.created_at)
                .ts(a.updated_at)
                .end_row();
        }
        for (position, a) in i.recovery_addresses.iter().enumerate() {
            recovery
                .uuid(a.id)
                .uuid(i.id)
                .text(&a.via)
                .text(&a.value)
                .int(position as i64)
                .ts(a.created_at)
                .ts(a.updated_at)
                .end_row();
        }
    }
    Some(Encoded {
        identities: rows.into_text()?,
        credentials: creds.into_text()?,
        identifiers: idents.into_text()?,
        verifiable: verifiable.into_text()?,
        recovery: recovery.into_text()?,
    })
}

async fn copy_in(conn: &mut PgConnection, statement: &str, rows: &str) -> sqlx::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut copy = conn.copy_in_raw(statement).await?;
    copy.send(rows.as_bytes()).await?;
    copy.finish().await?;
    Ok(())
}

/// The parts' tables, after the identities.
async fn copy_parts(conn: &mut PgConnection, e: &Encoded) -> sqlx::Result<()> {
    copy_in(conn, sql::CREDENTIALS, &e.credentials).await?;
    copy_in(conn, sql::IDENTIFIERS, &e.identifiers).await?;
    copy_in(conn, sql::VERIFIABLE_ADDRESSES, &e.verifiable).await?;
    copy_in(conn, sql::RECOVERY_ADDRESSES, &e.recovery).await
}

/// Runs `write` in a savepoint: kept when it succeeds, rolled back (and `Ok(false)`) when it fails
/// with an error `keep_error` doesn't want returned.
async fn in_savepoint<F>(
    conn: &mut PgConnection,
    keep_error: fn(&StoreError) -> bool,
    write: F,
) -> StoreResult<bool>
where
    F: for<'c> FnOnce(&'c mut PgConnection) -> crate::BoxFuture<'c, sqlx::Result<()>>,
{
    let mut sp = conn.begin().await.map_err(db_err)?;
    match write(&mut sp).await {
        Ok(()) => {
            sp.commit().await.map_err(db_err)?;
            Ok(true)
        }
        Err(e) => {
            sp.rollback().await.map_err(db_err)?;
            let e = db_err(e);
            if keep_error(&e) {
                return Err(e);
            }
            tracing::debug!(error = %e, "COPY declined the batch; writing it with INSERTs");
            Ok(false)
        }
    }
}

#[async_trait::async_trait]
impl BulkCopy for PgConnection {
    async fn copy_new_identities(&mut self, identities: &[&Identity]) -> StoreResult<bool> {
        let Some(encoded) = encode(identities.iter().copied()) else {
            return Ok(false);
        };
        let statement = format!("COPY identities ({}) FROM STDIN", sql::IDENTITY_COLUMNS);
        let refused = |e: &StoreError| matches!(e, StoreError::Conflict(_) | StoreError::Unrepresentable(_));
        in_savepoint(self, refused, move |c| {
            Box::pin(async move {
                copy_in(c, &statement, &encoded.identities).await?;
                copy_parts(c, &encoded).await
            })
        })
        .await
    }

    async fn copy_upsert_identities(&mut self, identities: &[Identity]) -> StoreResult<bool> {
        let Some(encoded) = encode(identities.iter()) else {
            return Ok(false);
        };
        let ids: Vec<Uuid> = identities.iter().map(|i| i.id).collect();
        // Any failure: the portable statements run again and report it as they always have.
        in_savepoint(
            self,
            |_| false,
            move |c| Box::pin(async move { upsert(c, &ids, &encoded).await }),
        )
        .await
    }
}

async fn upsert(c: &mut PgConnection, ids: &[Uuid], encoded: &Encoded) -> sqlx::Result<()> {
    let present: i64 = sqlx::query_scalar(sql::COUNT_PRESENT)
        .bind(ids)
        .fetch_one(&mut *c)
        .await?;
    if present == 0 {
        // A first run: nothing to replace, the rows go straight in.
        let statement = format!("COPY identities ({}) FROM STDIN", sql::IDENTITY_COLUMNS);
        copy_in(c, &statement, &encoded.identities).await?;
    } else {
        let statement = format!("COPY {} ({}) FROM STDIN", sql::STAGE_NAME, sql::IDENTITY_COLUMNS);
        sqlx::query(sql::STAGE).persistent(false).execute(&mut *c).await?;
        copy_in(c, &statement, &encoded.identities).await?;
        for delete in sql::DELETE_PARTS {
            sqlx::query(delete).bind(ids).execute(&mut *c).await?;
        }
        sqlx::query(sql::UPSERT_FROM_STAGE)
            .persistent(false)
            .execute(&mut *c)
            .await?;
    }
    copy_parts(c, encoded).await?;
    sqlx::query(sql::RECORD_IMPORTED)
        .bind(ids)
        .execute(&mut *c)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_the_text_format_reads_specially() {
        let mut r = CopyRows::default();
        r.text("a\tb\nc\\d\re \"q\" é ✓")
            .null()
            .int(-3)
            .bool(true)
            .end_row();
        assert_eq!(
            r.into_text().unwrap(),
            "a\\tb\\nc\\\\d\\re \"q\" é ✓\t\\N\t-3\tt\n"
        );
    }

    #[test]
    fn json_backslashes_are_doubled() {
        let mut r = CopyRows::default();
        r.json(&serde_json::json!({"k": "tab\there \\ \"q\""})).end_row();
        assert_eq!(
            r.into_text().unwrap(),
            concat!(r#"{"k":"tab\\there \\\\ \\"q\\""}"#, "\n")
        );
    }

    #[test]
    fn nul_and_far_years_decline_the_batch() {
        let mut r = CopyRows::default();
        r.text("a\0b");
        assert!(r.into_text().is_none());
        let mut r = CopyRows::default();
        r.json(&serde_json::json!({"k": "a\u{0}b"}));
        assert!(r.into_text().is_none());
        let mut r = CopyRows::default();
        r.ts(time::macros::datetime!(-0001-01-01 00:00 UTC));
        assert!(r.into_text().is_none());
        let mut r = CopyRows::default();
        r.ts(time::macros::datetime!(2025-01-02 03:04:05.123456 +02:00));
        assert_eq!(r.into_text().unwrap(), "2025-01-02T01:04:05.123456Z");
    }
}
