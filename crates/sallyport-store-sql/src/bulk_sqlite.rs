//! SQLite's way of writing a batch of new identities (the admin batch endpoint, `sallyport import
//! identities`): prepared `INSERT`s of [`ROWS`] rows (and one row, for the rest) per table, bound
//! and stepped through the C API (`raw_sqlite`) inside the caller's transaction. The rows and their
//! encoding are those of the multi-row `INSERT`s of `bulk` (same tables, same order, same values as
//! sqlx binds them); what goes away is sqlx's encoding of every argument into owned values and the
//! hand-off of each statement to the connection's worker thread, most of the batch's time.
//!
//! The statements are prepared per batch: ten texts, a rounding error next to a thousand identities'
//! rows, and nothing left prepared when the batch ends (sqlx cannot close a connection that has
//! statements of ours open).

use sallyport_core::identity::Identity;
use sallyport_core::store::StoreResult;
use sqlx::SqliteConnection;

use crate::bulk::{identifier_rows, sql};
use crate::raw_sqlite::{Statements, Value};
use crate::{Ts, db_err, other_err};

/// Rows per multi-row statement: one statement's fixed costs (opening a cursor per index, ending
/// the statement) were a tenth of a row's. A batch's last rows of each table, fewer than this,
/// go through the single-row statement.
const ROWS: usize = 50;

/// Each table's `INSERT` head (from `bulk`) and its number of columns, in insertion order.
const TABLES: [(&str, usize); 5] = [
    (sql::IDENTITIES, 12),
    (sql::CREDENTIALS, 7),
    (sql::IDENTIFIERS, 8),
    (sql::VERIFIABLE_ADDRESSES, 10),
    (sql::RECOVERY_ADDRESSES, 7),
];

/// Per table, a single-row and a [`ROWS`]-row `INSERT`: statements `2 * table` and `2 * table + 1`.
fn statements() -> Vec<String> {
    let mut out = vec![];
    for (head, columns) in TABLES {
        let row = format!("({})", vec!["?"; columns].join(", "));
        out.push(format!("{head}VALUES {row}"));
        out.push(format!("{head}VALUES {}", vec![row.as_str(); ROWS].join(", ")));
    }
    out
}

/// One value to bind, as sqlx binds the Rust value it comes from (`Uuid` → 16-byte blob, `Ts` →
/// fixed-width text, `Json` → compact text, `bool` and integers → integer, `None` → NULL).
pub enum Cell<'a> {
    Blob(&'a [u8]),
    Id([u8; 16]),
    Text(&'a str),
    Owned(String),
    Ts([u8; 27]),
    Int(i64),
    Null,
}

impl Cell<'_> {
    fn value(&self) -> Value<'_> {
        match self {
            Cell::Blob(b) => Value::Blob(b),
            Cell::Id(b) => Value::Blob(b),
            Cell::Text(s) => Value::Text(s),
            Cell::Owned(s) => Value::Text(s),
            // ASCII digits and punctuation: always UTF-8.
            Cell::Ts(b) => Value::Text(std::str::from_utf8(b).unwrap_or_default()),
            Cell::Int(i) => Value::Int(*i),
            Cell::Null => Value::Null,
        }
    }
}

fn ts<'a>(t: time::OffsetDateTime) -> StoreResult<Cell<'a>> {
    match Ts(t).sqlite_fixed() {
        Some(b) => Ok(Cell::Ts(b)),
        None => Ts(t).sqlite_text().map(Cell::Owned).map_err(other_err),
    }
}

fn opt_ts<'a>(t: Option<time::OffsetDateTime>) -> StoreResult<Cell<'a>> {
    t.map_or(Ok(Cell::Null), ts)
}

fn uuid(id: &uuid::Uuid) -> Cell<'_> {
    Cell::Blob(id.as_bytes())
}

fn json<'a>(value: &serde_json::Value) -> StoreResult<Cell<'a>> {
    serde_json::to_string(value).map(Cell::Owned).map_err(other_err)
}

fn opt_json<'a>(value: Option<&serde_json::Value>) -> StoreResult<Cell<'a>> {
    value.map_or(Ok(Cell::Null), json)
}

/// Every row of `identities`, table by table, as flat lists of cells (row after row).
fn encode<'a>(identities: &[&'a Identity]) -> StoreResult<[Vec<Cell<'a>>; 5]> {
    let mut t: [Vec<Cell<'a>>; 5] = Default::default();
    t[0].reserve(identities.len() * TABLES[0].1);
    for &i in identities {
        t[0].extend([
            uuid(&i.id),
            Cell::Text(&i.schema_id),
            json(&i.traits)?,
            Cell::Text(i.state.as_str()),
            opt_ts(i.state_changed_at)?,
            opt_json(i.metadata_public.as_ref())?,
            opt_json(i.metadata_admin.as_ref())?,
            i.external_id.as_deref().map_or(Cell::Null, Cell::Text),
            i.organization_id.as_ref().map_or(Cell::Null, uuid),
            Cell::Text(i.available_aal.as_str()),
            ts(i.created_at)?,
            ts(i.updated_at)?,
        ]);
        for c in i.credentials.values() {
            t[1].extend([
                uuid(&c.id),
                uuid(&i.id),
                Cell::Text(&c.cred_type),
                json(&c.config)?,
                Cell::Int(c.version.into()),
                ts(c.created_at)?,
                ts(c.updated_at)?,
            ]);
        }
        for r in identifier_rows(i) {
            t[2].extend([
                Cell::Id(r.id.into_bytes()),
                Cell::Text(r.identifier),
                Cell::Text(r.cred_type),
                Cell::Id(r.identity_id.into_bytes()),
                Cell::Id(r.credential_id.into_bytes()),
                Cell::Int(r.position),
                ts(r.created_at)?,
                ts(r.updated_at)?,
            ]);
        }
        for (p, a) in i.verifiable_addresses.iter().enumerate() {
            t[3].extend([
                uuid(&a.id),
                uuid(&i.id),
                Cell::Text(&a.via),
                Cell::Text(&a.value),
                Cell::Int(a.verified.into()),
                Cell::Text(&a.status),
                opt_ts(a.verified_at)?,
                Cell::Int(p as i64),
                ts(a.created_at)?,
                ts(a.updated_at)?,
            ]);
        }
        for (p, a) in i.recovery_addresses.iter().enumerate() {
            t[4].extend([
                uuid(&a.id),
                uuid(&i.id),
                Cell::Text(&a.via),
                Cell::Text(&a.value),
                Cell::Int(p as i64),
                ts(a.created_at)?,
                ts(a.updated_at)?,
            ]);
        }
    }
    Ok(t)
}

/// New identities written the backend's own fastest way, in two steps: [`StagedInsert::stage`]
/// does what needs no connection (encoding every row) before the caller's transaction takes the
/// single writer, so that work is not serialised with every other write; then
/// [`StagedInsert::write_staged`] writes the rows in that transaction.
#[async_trait::async_trait]
pub trait StagedInsert {
    type Staged<'a>: Send + Sync;

    fn stage<'a>(identities: &[&'a Identity]) -> StoreResult<Self::Staged<'a>>;

    /// `Ok(false)`: nothing was written, write the identities another way (PostgreSQL: `COPY`).
    /// A unique violation is `StoreError::Conflict(<table>)` as on the sqlx path; on any error some
    /// rows may be written and the caller must roll back.
    async fn write_staged(&mut self, staged: &Self::Staged<'_>) -> StoreResult<bool>;
}

#[async_trait::async_trait]
impl StagedInsert for SqliteConnection {
    type Staged<'a> = [Vec<Cell<'a>>; 5];

    fn stage<'a>(identities: &[&'a Identity]) -> StoreResult<Self::Staged<'a>> {
        encode(identities)
    }

    async fn write_staged(&mut self, staged: &Self::Staged<'_>) -> StoreResult<bool> {
        let texts = statements();
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        let mut st = Statements::prepare(self, &texts).await.map_err(db_err)?;
        blocking(|| insert_rows(&mut st, staged))?;
        Ok(true)
    }
}

#[async_trait::async_trait]
impl StagedInsert for sqlx::PgConnection {
    type Staged<'a> = ();

    fn stage(_: &[&Identity]) -> StoreResult<()> {
        Ok(())
    }

    async fn write_staged(&mut self, _: &Self::Staged<'_>) -> StoreResult<bool> {
        Ok(false)
    }
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

/// Tables in order (parents before children, as the foreign keys want), [`ROWS`] rows per
/// statement, then the rest one by one.
fn insert_rows(st: &mut Statements<'_>, tables: &[Vec<Cell<'_>>; 5]) -> StoreResult<()> {
    let mut values: Vec<Value<'_>> = Vec::with_capacity(ROWS * 12);
    for (k, ((_, columns), cells)) in TABLES.iter().zip(tables).enumerate() {
        let mut chunks = cells.chunks_exact(ROWS * columns);
        for chunk in &mut chunks {
            values.clear();
            values.extend(chunk.iter().map(Cell::value));
            st.execute(2 * k + 1, &values).map_err(db_err)?;
        }
        for row in chunks.remainder().chunks_exact(*columns) {
            values.clear();
            values.extend(row.iter().map(Cell::value));
            st.execute(2 * k, &values).map_err(db_err)?;
        }
    }
    Ok(())
}
