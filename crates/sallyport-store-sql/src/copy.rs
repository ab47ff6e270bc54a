//! PostgreSQL's `COPY … FROM STDIN` for batches of identities (the admin batch endpoint,
//! `sallyport import identities`, `sallyport import kratos`): one stream of rows per table instead of
//! multi-row `INSERT`s that the server must parse and plan, with tens of thousands of binds each.
//!
//! Each attempt runs in a savepoint of the caller's transaction. When COPY cannot take the batch — a
//! value PostgreSQL cannot keep (a NUL in text, `\u0000` in JSON), or any error while copying — the
//! savepoint is rolled back and the caller writes the batch the portable way, which
//! names each refused identity. SQLite has no COPY: its impl always declines.
//!
//! A batch of new identities is copied with PostgreSQL's per-row foreign-key checks switched off for
//! that transaction when the database role may do so (`session_replication_role = replica`, as
//! `pg_restore --disable-triggers` does). Each check is a lookup and a row lock on the parent, written
//! to the WAL: together they were about 44 % of PostgreSQL's work on these rows. What they would check
//! holds by construction here: every part row is encoded from the identity it belongs to, which is in
//! the same COPY (a credential's identifiers from that credential), and the parents are new rows no
//! other transaction can see, let alone delete, before the commit. Unique constraints are indexes,
//! not triggers, and stay on. The constraints stay defined and checked for every other write.

use std::sync::atomic::{AtomicU8, Ordering};

use sallyport_core::identity::Identity;
use sallyport_core::store::{StoreError, StoreResult};
use sqlx::{Connection as _, Executor as _, PgConnection, SqliteConnection};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db_err;

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
    /// Until the end of the transaction (or the savepoint's rollback): no triggers fire, so neither
    /// do the foreign keys' checks (see the module's doc).
    pub const FK_CHECKS_OFF: &str = "SET LOCAL session_replication_role = replica";
    pub const IDENTITY_COLUMNS: &str = "id, schema_id, traits, state, state_changed_at, metadata_public, \
         metadata_admin, external_id, organization_id, available_aal, created_at, updated_at";
    pub const CREDENTIALS: &str = "COPY identity_credentials (id, identity_id, type, config, version, created_at, updated_at) FROM STDIN (FORMAT binary)";
    pub const IDENTIFIERS: &str = "COPY identity_credential_identifiers (id, identifier, type, identity_id, \
         credential_id, position, created_at, updated_at) FROM STDIN (FORMAT binary)";
    pub const VERIFIABLE_ADDRESSES: &str = "COPY identity_verifiable_addresses (id, identity_id, via, value, \
         verified, status, verified_at, position, created_at, updated_at) FROM STDIN (FORMAT binary)";
    pub const RECOVERY_ADDRESSES: &str = "COPY identity_recovery_addresses (id, identity_id, via, value, \
         position, created_at, updated_at) FROM STDIN (FORMAT binary)";

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

/// Rows in PostgreSQL's binary COPY format: each row a field count, each field its length (-1 for
/// NULL) and the value as the type's binary receive function reads it. Binary rather than text: the
/// server then parses no UUIDs, timestamps or integers, about a seventh of its work on these rows.
pub struct CopyRows {
    buf: Vec<u8>,
    rows: usize,
    /// Where the current row's field count goes, and the count so far.
    row_start: usize,
    fields: i16,
    /// Something PostgreSQL cannot take (a NUL in text, `\u0000` in JSON): the batch must go another way.
    unfit: bool,
}

/// The 11-byte signature, then the flags and the header extension length, both 0.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// PostgreSQL counts timestamps in microseconds from 2000-01-01 UTC.
const PG_EPOCH: OffsetDateTime = time::macros::datetime!(2000-01-01 00:00 UTC);

impl Default for CopyRows {
    fn default() -> Self {
        CopyRows {
            buf: HEADER.to_vec(),
            rows: 0,
            row_start: HEADER.len(),
            fields: 0,
            unfit: false,
        }
    }
}

impl CopyRows {
    /// The COPY data, trailer included; `None` when a value cannot go through COPY.
    pub fn into_bytes(mut self) -> Option<Vec<u8>> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        (!self.unfit).then_some(self.buf)
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Counts one more field of the row, opening the row (its count, filled in by `end_row`) first.
    fn start_field(&mut self) {
        if self.fields == 0 {
            self.row_start = self.buf.len();
            self.buf.extend_from_slice(&[0, 0]);
        }
        self.fields += 1;
    }

    fn field(&mut self, len: usize) -> &mut Vec<u8> {
        self.start_field();
        // Values are far below 1 GiB (request bodies are bounded); a longer one fails the COPY.
        let len = i32::try_from(len).unwrap_or(i32::MAX);
        self.buf.extend_from_slice(&len.to_be_bytes());
        &mut self.buf
    }

    pub fn end_row(&mut self) -> &mut Self {
        let count = self.fields.to_be_bytes();
        self.buf[self.row_start..self.row_start + 2].copy_from_slice(&count);
        self.fields = 0;
        self.rows += 1;
        self
    }

    pub fn null(&mut self) -> &mut Self {
        self.start_field();
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
        self
    }

    pub fn text(&mut self, v: &str) -> &mut Self {
        // PostgreSQL keeps no NUL in text: the portable path refuses it with a clear error.
        if v.contains('\0') {
            self.unfit = true;
        }
        self.field(v.len()).extend_from_slice(v.as_bytes());
        self
    }

    pub fn opt_text(&mut self, v: Option<&str>) -> &mut Self {
        match v {
            Some(v) => self.text(v),
            None => self.null(),
        }
    }

    /// jsonb's binary form: a version byte, 1, then the JSON text.
    pub fn json(&mut self, v: &serde_json::Value) -> &mut Self {
        let text = v.to_string();
        // jsonb refuses the `\u0000` escape. An escaped backslash followed by `u0000` matches too:
        // such a batch merely takes the slower path.
        if text.contains("\\u0000") {
            self.unfit = true;
        }
        let buf = self.field(text.len() + 1);
        buf.push(1);
        buf.extend_from_slice(text.as_bytes());
        self
    }

    pub fn opt_json(&mut self, v: Option<&serde_json::Value>) -> &mut Self {
        match v {
            Some(v) => self.json(v),
            None => self.null(),
        }
    }

    pub fn uuid(&mut self, v: Uuid) -> &mut Self {
        self.field(16).extend_from_slice(v.as_bytes());
        self
    }

    pub fn opt_uuid(&mut self, v: Option<Uuid>) -> &mut Self {
        match v {
            Some(v) => self.uuid(v),
            None => self.null(),
        }
    }

    /// An `INTEGER` column.
    pub fn int4(&mut self, v: i32) -> &mut Self {
        self.field(4).extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A `BIGINT` column.
    pub fn int8(&mut self, v: i64) -> &mut Self {
        self.field(8).extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.field(1).push(u8::from(v));
        self
    }

    /// Microseconds from PostgreSQL's epoch, truncated as sqlx encodes a bound timestamp, so both
    /// ways of writing store the same instant.
    pub fn ts(&mut self, v: OffsetDateTime) -> &mut Self {
        let micros = i64::try_from((v - PG_EPOCH).whole_microseconds()).unwrap_or(i64::MAX);
        self.int8(micros)
    }

    pub fn opt_ts(&mut self, v: Option<OffsetDateTime>) -> &mut Self {
        match v {
            Some(v) => self.ts(v),
            None => self.null(),
        }
    }
}

/// A batch's rows, one binary COPY stream per table.
pub struct Encoded {
    pub identities: Vec<u8>,
    pub credentials: Vec<u8>,
    pub identifiers: Vec<u8>,
    pub verifiable: Vec<u8>,
    pub recovery: Vec<u8>,
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
                .int4(c.version)
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
                .int8(r.position)
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
                .int8(position as i64)
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
                .int8(position as i64)
                .ts(a.created_at)
                .ts(a.updated_at)
                .end_row();
        }
    }
    // A table without rows needs no COPY at all.
    let bytes = |r: CopyRows| match r.is_empty() {
        true => (!r.unfit).then(Vec::new),
        false => r.into_bytes(),
    };
    Some(Encoded {
        identities: bytes(rows)?,
        credentials: bytes(creds)?,
        identifiers: bytes(idents)?,
        verifiable: bytes(verifiable)?,
        recovery: bytes(recovery)?,
    })
}

/// The COPY of identity rows into `table` (`identities`, or the upsert's stage).
fn copy_identities_into(table: &str) -> String {
    format!(
        "COPY {table} ({}) FROM STDIN (FORMAT binary)",
        sql::IDENTITY_COLUMNS
    )
}

async fn copy_in(conn: &mut PgConnection, statement: &str, rows: &[u8]) -> sqlx::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut copy = conn.copy_in_raw(statement).await?;
    copy.send(rows).await?;
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

/// Whether this process's database role may switch the foreign keys' checks off for a transaction:
/// learnt from the first batch, then kept (a role's privileges don't change under a running server;
/// if they do, the switch fails inside the batch's savepoint and the batch goes the portable way).
static FK_CHECKS_OFF: AtomicU8 = AtomicU8::new(UNKNOWN);
const UNKNOWN: u8 = 0;
const ALLOWED: u8 = 1;
const REFUSED: u8 = 2;

/// Whether [`sql::FK_CHECKS_OFF`] may run: tried once, in a savepoint rolled back either way.
async fn fk_checks_may_go_off(conn: &mut PgConnection) -> StoreResult<bool> {
    match FK_CHECKS_OFF.load(Ordering::Relaxed) {
        ALLOWED => return Ok(true),
        REFUSED => return Ok(false),
        _ => {}
    }
    let mut sp = conn.begin().await.map_err(db_err)?;
    let tried = sp.execute(sql::FK_CHECKS_OFF).await;
    sp.rollback().await.map_err(db_err)?;
    match tried {
        Ok(_) => {
            FK_CHECKS_OFF.store(ALLOWED, Ordering::Relaxed);
            Ok(true)
        }
        Err(e) => {
            refuse_fk_checks_off(&e);
            Ok(false)
        }
    }
}

/// Switches the per-row foreign-key checks off for the rest of `c`'s transaction, when `allowed`
/// ([`fk_checks_may_go_off`]); a refusal is remembered and reported once.
async fn fk_checks_off(c: &mut PgConnection, allowed: bool) -> sqlx::Result<()> {
    if allowed {
        c.execute(sql::FK_CHECKS_OFF)
            .await
            .inspect_err(refuse_fk_checks_off)?;
    }
    Ok(())
}

fn refuse_fk_checks_off(e: &sqlx::Error) {
    if FK_CHECKS_OFF.swap(REFUSED, Ordering::Relaxed) != REFUSED {
        tracing::info!(
            error = %e,
            "bulk identity writes keep PostgreSQL's per-row foreign-key checks (about 30 % slower): the \
             database role may not set session_replication_role; a superuser may, or on PostgreSQL 15+ \
             GRANT SET ON PARAMETER session_replication_role TO <role>"
        );
    }
}

#[async_trait::async_trait]
impl BulkCopy for PgConnection {
    async fn copy_new_identities(&mut self, identities: &[&Identity]) -> StoreResult<bool> {
        let Some(encoded) = encode(identities.iter().copied()) else {
            return Ok(false);
        };
        let statement = copy_identities_into("identities");
        let refused = |e: &StoreError| matches!(e, StoreError::Conflict(_) | StoreError::Unrepresentable(_));
        let checks_off = fk_checks_may_go_off(self).await?;
        in_savepoint(self, refused, move |c| {
            Box::pin(async move {
                // Inside the savepoint: a batch that falls back to INSERTs has its checks again.
                fk_checks_off(c, checks_off).await?;
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
        let checks_off = fk_checks_may_go_off(self).await?;
        // Any failure: the portable statements run again and report it as they always have.
        in_savepoint(
            self,
            |_| false,
            move |c| Box::pin(async move { upsert(c, &ids, &encoded, checks_off).await }),
        )
        .await
    }
}

async fn upsert(c: &mut PgConnection, ids: &[Uuid], encoded: &Encoded, checks_off: bool) -> sqlx::Result<()> {
    let present: i64 = sqlx::query_scalar(sql::COUNT_PRESENT)
        .bind(ids)
        .fetch_one(&mut *c)
        .await?;
    if present == 0 {
        // A first run: nothing to replace, the rows go straight in. Every part refers to an
        // identity of this batch, written just before it in this transaction, so the per-row
        // foreign-key checks could only agree; with nothing deleted, no cascade is skipped either.
        fk_checks_off(c, checks_off).await?;
        let statement = copy_identities_into("identities");
        copy_in(c, &statement, &encoded.identities).await?;
    } else {
        let statement = copy_identities_into(sql::STAGE_NAME);
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

    /// The field values of the one row in `bytes`, `None` for NULL.
    fn fields(bytes: &[u8]) -> Vec<Option<Vec<u8>>> {
        assert_eq!(&bytes[..HEADER.len()], HEADER);
        let mut at = HEADER.len();
        let take = |at: &mut usize, n: usize| {
            let v = bytes[*at..*at + n].to_vec();
            *at += n;
            v
        };
        let count = i16::from_be_bytes(take(&mut at, 2).try_into().unwrap());
        let mut out = vec![];
        for _ in 0..count {
            let len = i32::from_be_bytes(take(&mut at, 4).try_into().unwrap());
            out.push((len >= 0).then(|| take(&mut at, len as usize)));
        }
        assert_eq!(&bytes[at..], &(-1i16).to_be_bytes(), "one row, then the trailer");
        out
    }

    #[test]
    fn fields_are_length_prefixed_in_network_order() {
        let mut r = CopyRows::default();
        let id = Uuid::from_u128(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10);
        r.text("a\tb\nc\\d é ✓")
            .null()
            .int4(-3)
            .int8(1 << 40)
            .bool(true)
            .uuid(id)
            .json(&serde_json::json!({"k": "tab\t"}))
            .end_row();
        assert!(!r.is_empty());
        assert_eq!(
            fields(&r.into_bytes().unwrap()),
            vec![
                Some("a\tb\nc\\d é ✓".as_bytes().to_vec()),
                None,
                Some(vec![0xff, 0xff, 0xff, 0xfd]),
                Some(vec![0, 0, 1, 0, 0, 0, 0, 0]),
                Some(vec![1]),
                Some(id.as_bytes().to_vec()),
                Some(b"\x01{\"k\":\"tab\\t\"}".to_vec()),
            ]
        );
    }

    #[test]
    fn timestamps_count_microseconds_from_2000_truncated() {
        let micros = |t: OffsetDateTime| {
            let mut r = CopyRows::default();
            r.ts(t).end_row();
            let f = fields(&r.into_bytes().unwrap());
            i64::from_be_bytes(f[0].clone().unwrap().try_into().unwrap())
        };
        assert_eq!(micros(time::macros::datetime!(2000-01-01 00:00 UTC)), 0);
        assert_eq!(
            micros(time::macros::datetime!(2000-01-01 02:00:00.000001999 +02:00)),
            1
        );
        assert_eq!(
            micros(time::macros::datetime!(1999-12-31 23:59:59.9999999 UTC)),
            0,
            "toward zero, as sqlx binds it"
        );
        assert_eq!(
            micros(time::macros::datetime!(-0001-01-01 00:00 UTC)),
            (time::macros::datetime!(-0001-01-01 00:00 UTC) - PG_EPOCH).whole_microseconds() as i64
        );
    }

    #[test]
    fn nul_declines_the_batch() {
        let mut r = CopyRows::default();
        r.text("a\0b").end_row();
        assert!(r.into_bytes().is_none());
        let mut r = CopyRows::default();
        r.json(&serde_json::json!({"k": "a\u{0}b"})).end_row();
        assert!(r.into_bytes().is_none());
    }
}
