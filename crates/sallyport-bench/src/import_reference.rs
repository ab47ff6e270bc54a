//! SQLite's own speed for the rows of the identity-import section, as a same-run reference for its
//! store floor: the same five rows per identity (identity, password credential, identifier,
//! verifiable and recovery address, values encoded before the clock starts) inserted with one
//! prepared single-row `INSERT` per table, stepped in a loop through the SQLite C API on one
//! connection with the store's settings (WAL, synchronous=NORMAL, foreign keys), into a freshly
//! migrated database, 1,000 identities per transaction. No sqlx, no async hand-offs, no encoding:
//! what is left is SQLite's parsing-free insert path, its indexes and its commits.

use std::ffi::{CStr, CString, c_int};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use libsqlite3_sys as ffi;
use sallyport_core::identity::Identity;
use sqlx::ConnectOptions as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use time::UtcOffset;
use time::macros::format_description;

enum V {
    Blob([u8; 16]),
    Text(String),
    Int(i64),
    Null,
}

const TABLES: [&str; 5] = [
    "INSERT INTO identities (id, schema_id, traits, state, state_changed_at, metadata_public, \
     metadata_admin, external_id, organization_id, available_aal, created_at, updated_at) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "INSERT INTO identity_credentials (id, identity_id, type, config, version, created_at, updated_at) \
     VALUES (?, ?, ?, ?, ?, ?, ?)",
    "INSERT INTO identity_credential_identifiers (id, identifier, type, identity_id, credential_id, \
     position, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    "INSERT INTO identity_verifiable_addresses (id, identity_id, via, value, verified, status, \
     verified_at, position, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "INSERT INTO identity_recovery_addresses (id, identity_id, via, value, position, created_at, \
     updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
];

fn ts(t: time::OffsetDateTime) -> anyhow::Result<V> {
    let f = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    Ok(V::Text(t.to_offset(UtcOffset::UTC).format(f)?))
}

/// One identity's rows, table by table, encoded as the store encodes them.
fn rows(i: &Identity) -> anyhow::Result<[Vec<Vec<V>>; 5]> {
    let id = || V::Blob(*i.id.as_bytes());
    let mut out: [Vec<Vec<V>>; 5] = Default::default();
    out[0].push(vec![
        id(),
        V::Text(i.schema_id.clone()),
        V::Text(i.traits.to_string()),
        V::Text(i.state.as_str().into()),
        i.state_changed_at.map_or(Ok(V::Null), ts)?,
        V::Null,
        V::Null,
        V::Null,
        V::Null,
        V::Text(i.available_aal.as_str().into()),
        ts(i.created_at)?,
        ts(i.updated_at)?,
    ]);
    for c in i.credentials.values() {
        out[1].push(vec![
            V::Blob(*c.id.as_bytes()),
            id(),
            V::Text(c.cred_type.clone()),
            V::Text(c.config.to_string()),
            V::Int(c.version.into()),
            ts(c.created_at)?,
            ts(c.updated_at)?,
        ]);
        for (p, identifier) in c.identifiers.iter().enumerate() {
            out[2].push(vec![
                V::Blob(*sallyport_core::row_id::new_row_id().as_bytes()),
                V::Text(identifier.clone()),
                V::Text(c.cred_type.clone()),
                id(),
                V::Blob(*c.id.as_bytes()),
                V::Int(p as i64),
                ts(c.created_at)?,
                ts(c.updated_at)?,
            ]);
        }
    }
    for (p, a) in i.verifiable_addresses.iter().enumerate() {
        out[3].push(vec![
            V::Blob(*a.id.as_bytes()),
            id(),
            V::Text(a.via.clone()),
            V::Text(a.value.clone()),
            V::Int(a.verified.into()),
            V::Text(a.status.clone()),
            a.verified_at.map_or(Ok(V::Null), ts)?,
            V::Int(p as i64),
            ts(a.created_at)?,
            ts(a.updated_at)?,
        ]);
    }
    for (p, a) in i.recovery_addresses.iter().enumerate() {
        out[4].push(vec![
            V::Blob(*a.id.as_bytes()),
            id(),
            V::Text(a.via.clone()),
            V::Text(a.value.clone()),
            V::Int(p as i64),
            ts(a.created_at)?,
            ts(a.updated_at)?,
        ]);
    }
    Ok(out)
}

/// Identities per second; `dsn` names a migrated, empty SQLite file no one else writes to.
pub async fn run(dsn: &str, identities: &[Identity], batch: usize) -> anyhow::Result<f64> {
    let path = dsn
        .strip_prefix("sqlite://")
        .and_then(|rest| rest.split('?').next())
        .context("not a sqlite:// DSN")?;
    let encoded = identities.iter().map(rows).collect::<anyhow::Result<Vec<_>>>()?;
    let mut conn = SqliteConnectOptions::new()
        .filename(Path::new(path))
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .connect()
        .await?;
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    let t = Instant::now();
    // SAFETY: `db` is the open connection `handle` keeps locked for this function's whole run;
    // every statement is finalized before it ends.
    unsafe { insert_all(db, &encoded, batch)? };
    Ok(identities.len() as f64 / t.elapsed().as_secs_f64())
}

unsafe fn insert_all(
    db: *mut ffi::sqlite3,
    encoded: &[[Vec<Vec<V>>; 5]],
    batch: usize,
) -> anyhow::Result<()> {
    let mut stmts = Vec::with_capacity(TABLES.len());
    for sql in TABLES {
        let sql = CString::new(sql)?;
        let mut stmt = std::ptr::null_mut();
        // SAFETY: `db` is open (caller) and `sql` NUL-terminated.
        let rc = unsafe { ffi::sqlite3_prepare_v2(db, sql.as_ptr(), -1, &mut stmt, std::ptr::null_mut()) };
        check(db, rc, ffi::SQLITE_OK)?;
        stmts.push(stmt);
    }
    let result = (|| {
        for chunk in encoded.chunks(batch.max(1)) {
            // SAFETY: as above.
            unsafe { exec(db, c"BEGIN")? };
            for identity in chunk {
                for (stmt, rows) in stmts.iter().zip(identity) {
                    for row in rows {
                        // SAFETY: `stmt` was prepared on `db` and is not finalized yet.
                        unsafe { step(db, *stmt, row)? };
                    }
                }
            }
            // SAFETY: as above.
            unsafe { exec(db, c"COMMIT")? };
        }
        Ok(())
    })();
    for stmt in stmts {
        // SAFETY: prepared above, finalized once.
        unsafe { ffi::sqlite3_finalize(stmt) };
    }
    result
}

unsafe fn exec(db: *mut ffi::sqlite3, sql: &CStr) -> anyhow::Result<()> {
    // SAFETY: the caller's `db` is open; `sql` is NUL-terminated.
    let rc = unsafe { ffi::sqlite3_exec(db, sql.as_ptr(), None, std::ptr::null_mut(), std::ptr::null_mut()) };
    check(db, rc, ffi::SQLITE_OK)
}

unsafe fn step(db: *mut ffi::sqlite3, stmt: *mut ffi::sqlite3_stmt, row: &[V]) -> anyhow::Result<()> {
    for (n, v) in row.iter().enumerate() {
        let i = n as c_int + 1;
        // SAFETY: `stmt` is a live statement of `db`; SQLITE_TRANSIENT makes SQLite copy the bytes.
        let rc = unsafe {
            match v {
                V::Blob(b) => ffi::sqlite3_bind_blob(stmt, i, b.as_ptr().cast(), 16, ffi::SQLITE_TRANSIENT()),
                V::Text(s) => ffi::sqlite3_bind_text(
                    stmt,
                    i,
                    s.as_ptr().cast(),
                    s.len() as c_int,
                    ffi::SQLITE_TRANSIENT(),
                ),
                V::Int(x) => ffi::sqlite3_bind_int64(stmt, i, *x),
                V::Null => ffi::sqlite3_bind_null(stmt, i),
            }
        };
        check(db, rc, ffi::SQLITE_OK)?;
    }
    // SAFETY: as above.
    let rc = unsafe { ffi::sqlite3_step(stmt) };
    // SAFETY: as above; reset keeps the statement prepared for the next row.
    unsafe { ffi::sqlite3_reset(stmt) };
    check(db, rc, ffi::SQLITE_DONE)
}

fn check(db: *mut ffi::sqlite3, rc: c_int, want: c_int) -> anyhow::Result<()> {
    if rc == want {
        return Ok(());
    }
    // SAFETY: `db` is open; the message is copied before any other call on it.
    let msg = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db)) }
        .to_string_lossy()
        .into_owned();
    bail!("SQLite reference insert failed ({rc}): {msg}")
}
