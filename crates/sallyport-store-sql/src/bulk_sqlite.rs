//! SQLite's way of writing a batch of new identities (the admin batch endpoint, `sallyport import
//! identities`): one prepared single-row `INSERT` per table, bound and stepped row by row through the
//! C API (`raw_sqlite`) inside the caller's transaction. The rows and their encoding are those of
//! the multi-row `INSERT`s of `bulk` (same tables, same order, same values as sqlx binds them); what
//! goes away is sqlx's encoding of every argument into owned values and the hand-off of each
//! statement to the connection's worker thread, most of the batch's time.
//!
//! The statements are prepared per batch: five short texts, a rounding error next to a thousand
//! identities' rows, and nothing left prepared when the batch ends (sqlx cannot close a connection
//! that has statements of ours open).

use sallyport_core::identity::Identity;
use sallyport_core::store::StoreResult;
use sqlx::SqliteConnection;
use uuid::Uuid;

use crate::bulk::{identifier_rows, sql};
use crate::raw_sqlite::{Statements, Value};
use crate::{Ts, db_err, other_err};

const IDENTITIES: usize = 0;
const CREDENTIALS: usize = 1;
const IDENTIFIERS: usize = 2;
const VERIFIABLE_ADDRESSES: usize = 3;
const RECOVERY_ADDRESSES: usize = 4;

/// Each table's single-row `INSERT`: `bulk`'s column list and one `VALUES` row of `columns` binds.
fn statements() -> [String; 5] {
    let insert = |head: &str, columns: usize| format!("{head}VALUES ({})", vec!["?"; columns].join(", "));
    [
        insert(sql::IDENTITIES, 12),
        insert(sql::CREDENTIALS, 7),
        insert(sql::IDENTIFIERS, 8),
        insert(sql::VERIFIABLE_ADDRESSES, 10),
        insert(sql::RECOVERY_ADDRESSES, 7),
    ]
}

/// A timestamp's text as `Ts` binds it, without an allocation for years 0–9999.
enum TsText {
    Fixed([u8; 27]),
    Formatted(String),
}

impl TsText {
    fn new(t: time::OffsetDateTime) -> StoreResult<TsText> {
        match Ts(t).sqlite_fixed() {
            Some(b) => Ok(TsText::Fixed(b)),
            None => Ts(t).sqlite_text().map(TsText::Formatted).map_err(other_err),
        }
    }

    fn value(&self) -> Value<'_> {
        match self {
            // ASCII digits and punctuation: always UTF-8.
            TsText::Fixed(b) => Value::Text(std::str::from_utf8(b).unwrap_or_default()),
            TsText::Formatted(s) => Value::Text(s),
        }
    }
}

fn ts(t: time::OffsetDateTime) -> StoreResult<TsText> {
    TsText::new(t)
}

fn opt_ts(t: Option<time::OffsetDateTime>) -> StoreResult<Option<TsText>> {
    t.map(ts).transpose()
}

fn opt(v: &Option<TsText>) -> Value<'_> {
    v.as_ref().map_or(Value::Null, TsText::value)
}

fn uuid(id: &Uuid) -> Value<'_> {
    Value::Blob(id.as_bytes())
}

/// `value` as compact JSON text (what sqlx's `Json` binds), in `buf`.
fn json<'b>(buf: &'b mut Vec<u8>, value: &serde_json::Value) -> StoreResult<Value<'b>> {
    buf.clear();
    serde_json::to_writer(&mut *buf, value).map_err(other_err)?;
    std::str::from_utf8(buf).map(Value::Text).map_err(other_err)
}

/// Inserts `identities` and their parts on `conn`, in its open transaction. A unique violation is
/// `StoreError::Conflict(<table>)` as on the sqlx path; on any error some rows may be written and
/// the caller must roll back.
pub async fn insert_new_identities(conn: &mut SqliteConnection, identities: &[&Identity]) -> StoreResult<()> {
    let texts = statements();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let mut st = Statements::prepare(conn, &texts).await.map_err(db_err)?;
    blocking(|| insert_rows(&mut st, identities))
}

/// Runs `f`, SQLite calls of a whole batch (milliseconds), on this thread. On a multi-threaded
/// runtime the worker first hands its other tasks to another thread (`block_in_place`): a task
/// queued behind the batch would otherwise wait for it even with a core free.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

fn insert_rows(st: &mut Statements<'_>, identities: &[&Identity]) -> StoreResult<()> {
    let (mut buf, mut buf2, mut buf3) = (vec![], vec![], vec![]);
    for i in identities {
        let (created, updated, changed) = (ts(i.created_at)?, ts(i.updated_at)?, opt_ts(i.state_changed_at)?);
        let traits = json(&mut buf, &i.traits)?;
        let public = match &i.metadata_public {
            Some(v) => json(&mut buf2, v)?,
            None => Value::Null,
        };
        let admin = match &i.metadata_admin {
            Some(v) => json(&mut buf3, v)?,
            None => Value::Null,
        };
        st.execute(
            IDENTITIES,
            &[
                uuid(&i.id),
                Value::Text(&i.schema_id),
                traits,
                Value::Text(i.state.as_str()),
                opt(&changed),
                public,
                admin,
                i.external_id.as_deref().map_or(Value::Null, Value::Text),
                i.organization_id.as_ref().map_or(Value::Null, uuid),
                Value::Text(i.available_aal.as_str()),
                created.value(),
                updated.value(),
            ],
        )
        .map_err(db_err)?;
    }
    for i in identities {
        for c in i.credentials.values() {
            let (created, updated) = (ts(c.created_at)?, ts(c.updated_at)?);
            let config = json(&mut buf, &c.config)?;
            st.execute(
                CREDENTIALS,
                &[
                    uuid(&c.id),
                    uuid(&i.id),
                    Value::Text(&c.cred_type),
                    config,
                    Value::Int(c.version.into()),
                    created.value(),
                    updated.value(),
                ],
            )
            .map_err(db_err)?;
        }
    }
    for i in identities {
        for r in identifier_rows(i) {
            let (created, updated) = (ts(r.created_at)?, ts(r.updated_at)?);
            st.execute(
                IDENTIFIERS,
                &[
                    uuid(&r.id),
                    Value::Text(r.identifier),
                    Value::Text(r.cred_type),
                    uuid(&r.identity_id),
                    uuid(&r.credential_id),
                    Value::Int(r.position),
                    created.value(),
                    updated.value(),
                ],
            )
            .map_err(db_err)?;
        }
    }
    for i in identities {
        for (p, a) in i.verifiable_addresses.iter().enumerate() {
            let (created, updated, verified_at) =
                (ts(a.created_at)?, ts(a.updated_at)?, opt_ts(a.verified_at)?);
            st.execute(
                VERIFIABLE_ADDRESSES,
                &[
                    uuid(&a.id),
                    uuid(&i.id),
                    Value::Text(&a.via),
                    Value::Text(&a.value),
                    Value::Int(a.verified.into()),
                    Value::Text(&a.status),
                    opt(&verified_at),
                    Value::Int(p as i64),
                    created.value(),
                    updated.value(),
                ],
            )
            .map_err(db_err)?;
        }
    }
    for i in identities {
        for (p, a) in i.recovery_addresses.iter().enumerate() {
            let (created, updated) = (ts(a.created_at)?, ts(a.updated_at)?);
            st.execute(
                RECOVERY_ADDRESSES,
                &[
                    uuid(&a.id),
                    uuid(&i.id),
                    Value::Text(&a.via),
                    Value::Text(&a.value),
                    Value::Int(p as i64),
                    created.value(),
                    updated.value(),
                ],
            )
            .map_err(db_err)?;
        }
    }
    Ok(())
}
