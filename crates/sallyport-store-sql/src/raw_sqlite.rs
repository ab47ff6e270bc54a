//! Prepared statements stepped through SQLite's C API on an sqlx connection, for the bulk writes
//! where sqlx's per-statement work dominates: every `execute` encodes its arguments into owned
//! values and hands the statement to the connection's worker thread and back. Here the statements
//! are bound and stepped on the calling thread while the connection is locked (sqlx's worker makes
//! no call on it meanwhile), row after row, inside whatever transaction the caller opened.
//!
//! The only `unsafe` of the store. The API is safe: a [`Statements`] owns the lock on the
//! connection and its prepared statements, finalizes them when dropped (sqlx panics on closing a
//! connection with a statement left open), checks every return code and reports failures as the
//! `sqlx::Error::Database` that sqlx itself would have returned, so `db_err` maps them the same way
//! (a unique violation becomes `StoreError::Conflict(<table>)`).

use std::ffi::{c_char, c_int, c_void};
use std::ptr::NonNull;

use libsqlite3_sys as ffi;
use sqlx::sqlite::{LockedSqliteHandle, SqliteConnection};

/// One bound value, stored as sqlx stores the Rust value it stands for (`Uuid` → 16-byte blob, `bool`
/// and integers → integer, `Json` and strings → text, `None` → NULL).
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    Blob(&'a [u8]),
    Text(&'a str),
    Int(i64),
    Null,
}

/// Statements prepared on a locked connection. While it lives, the connection is only reachable
/// through it.
pub struct Statements<'c> {
    handle: LockedSqliteHandle<'c>,
    /// Each statement and its number of parameters.
    prepared: Vec<(NonNull<ffi::sqlite3_stmt>, usize)>,
}

impl<'c> Statements<'c> {
    /// Locks `conn` and prepares each of `sql` (one statement each).
    pub async fn prepare(
        conn: &'c mut SqliteConnection,
        sql: &[&str],
    ) -> Result<Statements<'c>, sqlx::Error> {
        let handle = conn.lock_handle().await?;
        let mut this = Statements {
            handle,
            prepared: Vec::with_capacity(sql.len()),
        };
        for text in sql {
            this.prepare_one(text)?;
        }
        Ok(this)
    }

    fn db(&mut self) -> *mut ffi::sqlite3 {
        self.handle.as_raw_handle().as_ptr()
    }

    fn prepare_one(&mut self, text: &str) -> Result<(), sqlx::Error> {
        let db = self.db();
        // SAFETY: `db` is the open connection the lock in `self.handle` keeps to this thread.
        let (stmt, alone) = match unsafe { prepare_persistent(db, text) } {
            Ok(Some(prepared)) => prepared,
            Ok(None) => return Err(protocol("no statement in the text")),
            Err(rc) => return Err(self.error(rc)),
        };
        // Kept before the check below can fail, so that `Drop` finalizes it.
        // SAFETY: `stmt` was just prepared on `db`.
        let params = unsafe { ffi::sqlite3_bind_parameter_count(stmt.as_ptr()) };
        self.prepared.push((stmt, usize::try_from(params).unwrap_or(0)));
        if !alone {
            return Err(protocol("more than one statement in the text"));
        }
        Ok(())
    }

    /// Binds `values` to statement `k` (as given to [`Statements::prepare`]) and runs it to its end;
    /// rows it would return are not read. The statement is reset whatever happens, ready for the
    /// next call.
    pub fn execute(&mut self, k: usize, values: &[Value<'_>]) -> Result<(), sqlx::Error> {
        let Some(&(stmt, params)) = self.prepared.get(k) else {
            return Err(protocol("no such prepared statement"));
        };
        if values.len() != params {
            return Err(protocol("wrong number of values for the statement"));
        }
        let stmt = stmt.as_ptr();
        // SAFETY: `stmt` is a live statement of the locked connection.
        let mut rc = unsafe { bind_values(stmt, values) };
        if rc == ffi::SQLITE_OK {
            loop {
                // SAFETY: as above.
                rc = unsafe { ffi::sqlite3_step(stmt) };
                if rc != ffi::SQLITE_ROW {
                    break;
                }
            }
        }
        // Read before the reset, which could replace the connection's error state.
        let result = match rc {
            ffi::SQLITE_DONE | ffi::SQLITE_OK => Ok(()),
            rc => Err(self.error(rc)),
        };
        // SAFETY: as above. Its return code repeats the step's error, already taken. The bindings
        // stay (copies SQLite owns); the next call replaces every one of them.
        unsafe { ffi::sqlite3_reset(stmt) };
        result
    }

    /// The connection's last error as sqlx reports it, or `rc` described when SQLite has none.
    fn error(&mut self, rc: c_int) -> sqlx::Error {
        match self.handle.last_error() {
            Some(e) => sqlx::Error::Database(Box::new(e)),
            None => protocol(&format!("SQLite returned {rc}")),
        }
    }
}

impl Drop for Statements<'_> {
    fn drop(&mut self) {
        for (stmt, _) in self.prepared.drain(..) {
            // SAFETY: prepared on the still-locked connection, finalized exactly once. Its return
            // code repeats the statement's last error, already reported.
            unsafe { ffi::sqlite3_finalize(stmt.as_ptr()) };
        }
    }
}

/// Prepares the first statement of `text` on `db`, to be kept (`SQLITE_PREPARE_PERSISTENT`): the
/// statement and whether nothing but white space follows it; `Ok(None)` when the text holds no
/// statement; `Err` with SQLite's return code when it refuses the text.
///
/// # Safety
/// `db` must be an open connection no other thread uses meanwhile. The statement returned is the
/// caller's to finalize.
unsafe fn prepare_persistent(
    db: *mut ffi::sqlite3,
    text: &str,
) -> Result<Option<(NonNull<ffi::sqlite3_stmt>, bool)>, c_int> {
    let Ok(len) = c_int::try_from(text.len()) else {
        return Err(ffi::SQLITE_TOOBIG);
    };
    let mut stmt = std::ptr::null_mut();
    let mut tail: *const c_char = std::ptr::null();
    // SAFETY: per this function's contract; `text` is valid for `len` bytes (no NUL terminator is
    // needed when the length is given).
    let rc = unsafe {
        ffi::sqlite3_prepare_v3(
            db,
            text.as_ptr().cast(),
            len,
            ffi::SQLITE_PREPARE_PERSISTENT,
            &mut stmt,
            &mut tail,
        )
    };
    if rc != ffi::SQLITE_OK {
        return Err(rc);
    }
    let Some(stmt) = NonNull::new(stmt) else {
        return Ok(None);
    };
    // SAFETY: `tail` points into `text` or just past its end, as SQLite documents.
    let consumed = unsafe { tail.offset_from(text.as_ptr().cast::<c_char>()) };
    let rest = usize::try_from(consumed).ok().and_then(|c| text.get(c..));
    Ok(Some((stmt, rest.is_some_and(|r| r.trim().is_empty()))))
}

/// Binds `values` to `stmt`'s parameters 1.. and returns the first failing return code, or `SQLITE_OK`.
///
/// # Safety
/// `stmt` must be a live statement of a connection no other thread uses meanwhile, with at least
/// `values.len()` parameters.
unsafe fn bind_values(stmt: *mut ffi::sqlite3_stmt, values: &[Value<'_>]) -> c_int {
    for (n, v) in values.iter().enumerate() {
        // Parameters count from 1; callers check the count, which fits a c_int.
        let i = n as c_int + 1;
        // SAFETY: per this function's contract. SQLITE_TRANSIENT makes SQLite copy the bytes before
        // the call returns, so nothing borrowed outlives it; the lengths are the slices' own.
        let rc = unsafe {
            match *v {
                Value::Blob(b) => ffi::sqlite3_bind_blob64(
                    stmt,
                    i,
                    b.as_ptr().cast::<c_void>(),
                    b.len() as u64,
                    ffi::SQLITE_TRANSIENT(),
                ),
                Value::Text(s) => ffi::sqlite3_bind_text64(
                    stmt,
                    i,
                    s.as_ptr().cast::<c_char>(),
                    s.len() as u64,
                    ffi::SQLITE_TRANSIENT(),
                    ffi::SQLITE_UTF8 as u8,
                ),
                Value::Int(x) => ffi::sqlite3_bind_int64(stmt, i, x),
                Value::Null => ffi::sqlite3_bind_null(stmt, i),
            }
        };
        if rc != ffi::SQLITE_OK {
            return rc;
        }
    }
    ffi::SQLITE_OK
}

/// A read-only connection of this process's own, used on the calling thread: no worker thread to hand
/// each query to and wake up for its rows. For single-row point reads on request paths, where that
/// hand-off cost more than the read (see `inline::InlineReaders`). Statements are prepared once per
/// connection and kept, keyed by their text.
pub struct ReadConn {
    db: NonNull<ffi::sqlite3>,
    prepared: Vec<(&'static str, NonNull<ffi::sqlite3_stmt>)>,
}

// SAFETY: opened in SQLite's multi-thread mode (`SQLITE_OPEN_NOMUTEX`): a connection may move between
// threads as long as one thread uses it at a time, which `&mut self` on every use guarantees.
unsafe impl Send for ReadConn {}

impl ReadConn {
    /// Opens `path` read-only with a page cache of `cache_kib` KiB; a busy database is waited for at
    /// most `busy_ms` (this runs on the caller's thread, so the wait must stay short).
    pub fn open(path: &std::path::Path, cache_kib: u32, busy_ms: u32) -> Result<ReadConn, sqlx::Error> {
        let name = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| protocol("a NUL in the database path"))?;
        let mut db = std::ptr::null_mut();
        let flags = ffi::SQLITE_OPEN_READONLY | ffi::SQLITE_OPEN_NOMUTEX;
        // SAFETY: `name` is NUL-terminated and outlives the call; `db` receives the handle.
        let rc = unsafe { ffi::sqlite3_open_v2(name.as_ptr(), &mut db, flags, std::ptr::null()) };
        // A handle comes back even when opening fails (to read the error from); either way it is
        // closed by `Drop` once wrapped.
        let Some(db) = NonNull::new(db) else {
            return Err(protocol("SQLite could not allocate a connection"));
        };
        let mut conn = ReadConn { db, prepared: vec![] };
        if rc != ffi::SQLITE_OK {
            return Err(conn.error(rc));
        }
        // SAFETY: the handle is open and used by this thread only.
        unsafe { ffi::sqlite3_busy_timeout(conn.db.as_ptr(), busy_ms.min(i32::MAX as u32) as c_int) };
        let pragma = std::ffi::CString::new(format!("PRAGMA cache_size = -{cache_kib}"))
            .map_err(|_| protocol("pragma"))?;
        // SAFETY: as above; no callback, no error message out-parameter.
        let rc = unsafe {
            ffi::sqlite3_exec(
                conn.db.as_ptr(),
                pragma.as_ptr(),
                None,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(conn.error(rc));
        }
        Ok(conn)
    }

    fn statement(&mut self, sql: &'static str) -> Result<NonNull<ffi::sqlite3_stmt>, sqlx::Error> {
        if let Some((_, stmt)) = self.prepared.iter().find(|(text, _)| *text == sql) {
            return Ok(*stmt);
        }
        // SAFETY: the handle is open and used by this thread only.
        let (stmt, alone) = match unsafe { prepare_persistent(self.db.as_ptr(), sql) } {
            Ok(Some(prepared)) => prepared,
            Ok(None) => return Err(protocol("no statement in the text")),
            Err(rc) => return Err(self.error(rc)),
        };
        // Kept before the check below, so that `Drop` finalizes it.
        self.prepared.push((sql, stmt));
        if !alone {
            return Err(protocol("more than one statement in the text"));
        }
        Ok(stmt)
    }

    /// Runs `sql` with `values` and hands its first row, if any, to `read`; the statement is reset
    /// before this returns, so nothing `read` saw outlives the call.
    pub fn first_row<T>(
        &mut self,
        sql: &'static str,
        values: &[Value<'_>],
        read: impl FnMut(&Row<'_>) -> T,
    ) -> Result<Option<T>, sqlx::Error> {
        Ok(self.step(sql, values, 1, read)?.pop())
    }

    /// Runs `sql` with `values` and hands each of its rows to `read`, in order; the statement is
    /// reset before this returns, so nothing `read` saw outlives the call.
    pub fn rows<T>(
        &mut self,
        sql: &'static str,
        values: &[Value<'_>],
        read: impl FnMut(&Row<'_>) -> T,
    ) -> Result<Vec<T>, sqlx::Error> {
        self.step(sql, values, usize::MAX, read)
    }

    /// The first `most` rows of `sql` with `values`, each read by `read`.
    fn step<T>(
        &mut self,
        sql: &'static str,
        values: &[Value<'_>],
        most: usize,
        mut read: impl FnMut(&Row<'_>) -> T,
    ) -> Result<Vec<T>, sqlx::Error> {
        let stmt = self.statement(sql)?;
        let stmt = stmt.as_ptr();
        // SAFETY: a live statement of this connection, used by this thread only.
        let params = unsafe { ffi::sqlite3_bind_parameter_count(stmt) };
        if usize::try_from(params).ok() != Some(values.len()) {
            return Err(protocol("wrong number of values for the statement"));
        }
        // SAFETY: as above, with as many parameters as values.
        let mut rc = unsafe { bind_values(stmt, values) };
        let mut out = vec![];
        while rc == ffi::SQLITE_OK && out.len() < most {
            // SAFETY: as above.
            rc = unsafe { ffi::sqlite3_step(stmt) };
            if rc == ffi::SQLITE_ROW {
                // SAFETY: as above.
                let columns = unsafe { ffi::sqlite3_column_count(stmt) };
                out.push(read(&Row {
                    stmt,
                    columns,
                    _conn: std::marker::PhantomData,
                }));
                rc = ffi::SQLITE_OK;
            }
        }
        let result = match rc {
            ffi::SQLITE_OK | ffi::SQLITE_DONE => Ok(out),
            rc => Err(self.error(rc)),
        };
        // SAFETY: as above. Ends the statement's read transaction (also when rows were left
        // unread); its return code repeats a step error already taken.
        unsafe { ffi::sqlite3_reset(stmt) };
        result
    }

    fn error(&mut self, rc: c_int) -> sqlx::Error {
        // SAFETY: the handle is valid until drop; SQLite returns a NUL-terminated message it owns,
        // copied here before any other call on the connection.
        let msg = unsafe { std::ffi::CStr::from_ptr(ffi::sqlite3_errmsg(self.db.as_ptr())) };
        protocol(&format!("SQLite error {rc}: {}", msg.to_string_lossy()))
    }
}

impl Drop for ReadConn {
    fn drop(&mut self) {
        for (_, stmt) in self.prepared.drain(..) {
            // SAFETY: prepared on this connection, finalized exactly once.
            unsafe { ffi::sqlite3_finalize(stmt.as_ptr()) };
        }
        // SAFETY: no statement is left; the handle is closed exactly once.
        unsafe { ffi::sqlite3_close(self.db.as_ptr()) };
    }
}

/// The current row of a [`ReadConn::first_row`] or [`ReadConn::rows`]; its values are copied out by
/// the accessors.
pub struct Row<'s> {
    stmt: *mut ffi::sqlite3_stmt,
    columns: c_int,
    _conn: std::marker::PhantomData<&'s mut ReadConn>,
}

impl Row<'_> {
    fn column(&self, i: usize) -> Option<c_int> {
        let i = c_int::try_from(i).ok()?;
        (i < self.columns).then_some(i)
    }

    /// Column `i` as an integer (`None`: NULL, no such column, or not an integer).
    pub fn int(&self, i: usize) -> Option<i64> {
        let i = self.column(i)?;
        // SAFETY: the statement is on a row (this `Row` exists only then) and `i` is in range.
        unsafe {
            (ffi::sqlite3_column_type(self.stmt, i) == ffi::SQLITE_INTEGER)
                .then(|| ffi::sqlite3_column_int64(self.stmt, i))
        }
    }

    /// Whether column `i` is NULL (`false` also when there is no such column).
    pub fn is_null(&self, i: usize) -> bool {
        let Some(i) = self.column(i) else { return false };
        // SAFETY: as in `int`.
        unsafe { ffi::sqlite3_column_type(self.stmt, i) == ffi::SQLITE_NULL }
    }

    /// Column `i`'s blob bytes (`None`: NULL, no such column, or not a blob), copied.
    pub fn blob(&self, i: usize) -> Option<Vec<u8>> {
        // SAFETY (of the closure): `bytes` calls it on a column it checked is a blob.
        self.bytes(i, ffi::SQLITE_BLOB, |s, i| unsafe {
            ffi::sqlite3_column_blob(s, i).cast::<u8>()
        })
    }

    /// Column `i`'s text bytes (`None`: NULL, no such column, or not text), copied.
    pub fn text(&self, i: usize) -> Option<Vec<u8>> {
        // SAFETY (of the closure): `bytes` calls it on a column it checked is text.
        self.bytes(i, ffi::SQLITE_TEXT, |s, i| unsafe {
            ffi::sqlite3_column_text(s, i)
        })
    }

    /// Column `i`'s bytes as `start` points at them, when the column is of type `kind`.
    fn bytes(
        &self,
        i: usize,
        kind: c_int,
        start: impl FnOnce(*mut ffi::sqlite3_stmt, c_int) -> *const u8,
    ) -> Option<Vec<u8>> {
        let i = self.column(i)?;
        // SAFETY: as in `int`. The pointer comes first, then `sqlite3_column_bytes`, as SQLite
        // documents; it is valid until the next call on the statement, and the bytes are copied
        // before that. An empty value may come as a null pointer.
        unsafe {
            if ffi::sqlite3_column_type(self.stmt, i) != kind {
                return None;
            }
            let p = start(self.stmt, i);
            let n = usize::try_from(ffi::sqlite3_column_bytes(self.stmt, i)).ok()?;
            if p.is_null() {
                return Some(vec![]);
            }
            Some(std::slice::from_raw_parts(p, n).to_vec())
        }
    }
}

fn protocol(what: &str) -> sqlx::Error {
    sqlx::Error::Protocol(format!("raw SQLite statement: {what}"))
}

#[cfg(test)]
mod tests {
    use sqlx::{Connection as _, Row as _};

    use super::*;
    use crate::db_err;
    use sallyport_core::store::StoreError;

    const INSERT: &str = "INSERT INTO t (k, v, n) VALUES (?, ?, ?)";
    const MISSING: &str = "INSERT INTO nowhere (k) VALUES (?)";

    async fn conn() -> SqliteConnection {
        let mut c = SqliteConnection::connect("sqlite::memory:").await.expect("open");
        sqlx::query("CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB, n INTEGER NOT NULL)")
            .execute(&mut c)
            .await
            .expect("create");
        c
    }

    async fn rows(c: &mut SqliteConnection) -> Vec<String> {
        sqlx::query("SELECT typeof(k) || ':' || hex(k) || '/' || typeof(v) || ':' || hex(v) || '/' || n FROM t ORDER BY k")
            .fetch_all(c)
            .await
            .expect("select")
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect()
    }

    #[tokio::test]
    async fn values_are_stored_as_given() {
        let mut c = conn().await;
        {
            let mut st = Statements::prepare(&mut c, &[INSERT]).await.expect("prepare");
            st.execute(
                0,
                &[Value::Text("a\0b"), Value::Blob(&[0, 1, 255]), Value::Int(-7)],
            )
            .expect("first");
            st.execute(0, &[Value::Text("é"), Value::Null, Value::Int(i64::MAX)])
                .expect("second");
        }
        assert_eq!(
            rows(&mut c).await,
            [
                "text:610062/blob:0001FF/-7",
                format!("text:C3A9/null:/{}", i64::MAX).as_str()
            ]
        );
        c.close().await.expect("close: no statement left open");
    }

    #[tokio::test]
    async fn a_failed_statement_leaves_the_connection_usable() {
        let mut c = conn().await;
        let mut tx = c.begin().await.expect("begin");
        {
            let mut st = Statements::prepare(&mut tx, &[INSERT]).await.expect("prepare");
            st.execute(0, &[Value::Text("a"), Value::Null, Value::Int(1)])
                .expect("insert");
            let dup = st.execute(0, &[Value::Text("a"), Value::Null, Value::Int(2)]);
            match dup.map_err(db_err) {
                Err(StoreError::Conflict(table)) => assert_eq!(table, "t"),
                other => panic!("expected a conflict on t, got {other:?}"),
            }
            let null = st.execute(0, &[Value::Text("b"), Value::Null, Value::Null]);
            assert!(matches!(null.map_err(db_err), Err(StoreError::Other(_))));
            let short = st.execute(0, &[Value::Text("c")]);
            assert!(matches!(short, Err(sqlx::Error::Protocol(_))));
            assert!(matches!(st.execute(1, &[]), Err(sqlx::Error::Protocol(_))));
            st.execute(0, &[Value::Text("d"), Value::Null, Value::Int(4)])
                .expect("the statement works after its failures");
        }
        sqlx::query("INSERT INTO t (k, n) VALUES ('e', 5)")
            .execute(&mut *tx)
            .await
            .expect("sqlx works after the failures");
        tx.rollback().await.expect("rollback");
        assert!(
            rows(&mut c).await.is_empty(),
            "the rollback took the raw rows too"
        );
        c.close().await.expect("close");
    }

    #[tokio::test]
    async fn statements_are_finalized_when_preparing_fails() {
        let mut c = conn().await;
        let err = Statements::prepare(&mut c, &[INSERT, MISSING]).await.err();
        match err {
            Some(sqlx::Error::Database(e)) => assert!(e.message().contains("nowhere"), "{e}"),
            other => panic!("expected SQLite's error, got {other:?}"),
        }
        let two = Statements::prepare(&mut c, &["SELECT 1; SELECT 2"]).await.err();
        assert!(matches!(two, Some(sqlx::Error::Protocol(_))), "{two:?}");
        let none = Statements::prepare(&mut c, &["  "]).await.err();
        assert!(matches!(none, Some(sqlx::Error::Protocol(_))), "{none:?}");
        let mut st = Statements::prepare(&mut c, &["SELECT 1 ;  "])
            .await
            .expect("trailing space");
        st.execute(0, &[]).expect("rows are stepped over");
        drop(st);
        c.close().await.expect("close: every statement was finalized");
    }
}
