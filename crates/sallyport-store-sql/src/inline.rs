//! Reads of an SQLite file run on the calling thread, for the point lookups of the request paths (a
//! flow by id, a rate-limit counter, an identity and its parts by an identifier or address). sqlx runs every statement of an SQLite connection on
//! that connection's own thread: each read is a hand-off there and a wake-up back, and under the code
//! login load those thread switches took more CPU than SQLite's own work. An indexed lookup of a page
//! in the OS cache takes microseconds, less than a hand-off, so blocking the runtime's thread for it
//! costs nothing the hand-off did not.
//!
//! A read that cannot run here — every connection busy on other threads, the database busy, any error
//! — answers `None`, and the caller reads the usual way, which waits and reports properly. A
//! connection that failed is closed rather than reused.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use sallyport_core::identity::Identity;
use sallyport_core::store::StoreResult;

use crate::raw_sqlite::{ReadConn, Row, Value};
use crate::rows::{PartRow, one_identity};

/// Longest wait for a busy database on the caller's thread; past it the read goes the usual way.
const BUSY_MS: u32 = 20;

/// Read-only connections to one SQLite file, opened on first use, at most `max` of them.
pub struct InlineReaders {
    path: PathBuf,
    cache_kib: u32,
    max: usize,
    opened: AtomicUsize,
    idle: Mutex<Vec<ReadConn>>,
}

impl InlineReaders {
    pub fn new(path: PathBuf, cache_kib: u32, max: usize) -> InlineReaders {
        InlineReaders {
            path,
            cache_kib,
            max,
            opened: AtomicUsize::new(0),
            idle: Mutex::new(vec![]),
        }
    }

    fn take(&self) -> Option<ReadConn> {
        if let Some(c) = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Some(c);
        }
        if self.opened.fetch_add(1, Ordering::Relaxed) >= self.max {
            self.opened.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        match ReadConn::open(&self.path, self.cache_kib, BUSY_MS) {
            Ok(c) => Some(c),
            Err(e) => {
                self.opened.fetch_sub(1, Ordering::Relaxed);
                tracing::debug!(error = %e, "could not open an inline SQLite reader");
                None
            }
        }
    }

    /// The first row of `sql` with `values`, read by `read`: `Some(None)` when there is none, `None`
    /// when the read could not run here (see the module's doc) or `read` answered `None` (the row
    /// is not of the shape it reads: the usual read, which decodes more forms, decides).
    pub fn first_row<T>(
        &self,
        sql: &'static str,
        values: &[Value<'_>],
        read: impl FnMut(&Row<'_>) -> Option<T>,
    ) -> Option<Option<T>> {
        // No row: `Some(None)`; a row `read` took: `Some(Some(v))`; one it did not: `None`.
        self.with_conn(|conn| conn.first_row(sql, values, read))?
            .map_or(Some(None), |taken| taken.map(Some))
    }

    /// Every row of `sql` with `values`, each read by `read`; `None` as for [`Self::first_row`],
    /// and when `read` answered `None` for any row.
    pub fn all_rows<T>(
        &self,
        sql: &'static str,
        values: &[Value<'_>],
        read: impl FnMut(&Row<'_>) -> Option<T>,
    ) -> Option<Vec<T>> {
        self.with_conn(|conn| conn.rows(sql, values, read))?
            .into_iter()
            .collect()
    }

    fn with_conn<R>(&self, run: impl FnOnce(&mut ReadConn) -> Result<R, sqlx::Error>) -> Option<R> {
        let mut conn = self.take()?;
        match run(&mut conn) {
            Ok(found) => {
                self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
                Some(found)
            }
            Err(e) => {
                drop(conn);
                self.opened.fetch_sub(1, Ordering::Relaxed);
                tracing::debug!(error = %e, "an inline SQLite read failed; reading the usual way");
                None
            }
        }
    }
}

/// One identity with its parts, loaded by `sql` (one of `identity_sql`'s single-identity loads) with
/// `values`; `None` when there are no inline readers or the read could not run here.
pub fn identity(
    inline: Option<&InlineReaders>,
    sql: &'static str,
    values: &[Value<'_>],
) -> Option<StoreResult<Identity>> {
    let rows = inline?.all_rows(sql, values, PartRow::from_raw)?;
    Some(one_identity(rows))
}

#[cfg(test)]
mod tests {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
    use sqlx::{ConnectOptions as _, Connection as _, SqliteConnection};

    use super::*;

    /// A WAL file with a table `t(k TEXT, v, n)`, removed on drop, and its writer connection.
    struct Db(PathBuf);

    impl Drop for Db {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let mut p = self.0.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
        }
    }

    async fn db() -> (Db, SqliteConnection) {
        let db = Db(std::env::temp_dir().join(format!(
            "sallyport-inline-{}.sqlite",
            uuid::Uuid::new_v4().simple()
        )));
        let mut w = SqliteConnectOptions::new()
            .filename(&db.0)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .connect()
            .await
            .expect("open writer");
        sqlx::query("CREATE TABLE t (k TEXT PRIMARY KEY, v, n INTEGER)")
            .execute(&mut w)
            .await
            .expect("create");
        (db, w)
    }

    const GET: &str = "SELECT v, n FROM t WHERE k = $1";

    /// A row's `v` as text and `n` as an integer.
    type Got = (Option<Vec<u8>>, Option<i64>);

    fn get(r: &InlineReaders, k: &str) -> Option<Option<Got>> {
        r.first_row(GET, &[Value::Text(k)], |row| Some((row.text(0), row.int(1))))
    }

    #[tokio::test]
    async fn reads_what_the_writer_committed_and_nothing_else() {
        let (db, mut w) = db().await;
        let r = InlineReaders::new(db.0.clone(), 64, 2);
        assert_eq!(get(&r, "a"), Some(None), "no row yet");
        sqlx::query("INSERT INTO t VALUES ('a', '{\"x\":\"é\"}', 7), ('b', x'00ff', NULL)")
            .execute(&mut w)
            .await
            .expect("insert");
        assert_eq!(
            get(&r, "a"),
            Some(Some((Some("{\"x\":\"é\"}".as_bytes().to_vec()), Some(7))))
        );
        // A blob is not text, NULL is no integer: the caller tells "no row" from "not this shape".
        assert_eq!(get(&r, "b"), Some(Some((None, None))));
        let mut tx = w.begin().await.expect("begin");
        sqlx::query("UPDATE t SET n = 8 WHERE k = 'a'")
            .execute(&mut *tx)
            .await
            .expect("update");
        assert_eq!(
            get(&r, "a").and_then(|f| f?.1),
            Some(7),
            "uncommitted is not seen"
        );
        tx.commit().await.expect("commit");
        assert_eq!(
            get(&r, "a").and_then(|f| f?.1),
            Some(8),
            "committed is seen at once"
        );
        assert_eq!(r.opened.load(Ordering::Relaxed), 1, "one connection, reused");
    }

    #[tokio::test]
    async fn a_failing_read_answers_none_and_closes_its_connection() {
        let (db, _w) = db().await;
        let r = InlineReaders::new(db.0.clone(), 64, 2);
        assert_eq!(get(&r, "a"), Some(None));
        assert_eq!(r.first_row("SELECT * FROM nowhere", &[], |_| Some(())), None);
        assert_eq!(
            r.first_row(GET, &[], |_| Some(())),
            None,
            "a missing value is refused"
        );
        assert_eq!(r.first_row("SELECT 1; SELECT 2", &[], |_| Some(())), None);
        assert_eq!(
            r.opened.load(Ordering::Relaxed),
            0,
            "the failed connections were closed"
        );
        assert_eq!(get(&r, "a"), Some(None), "a fresh connection reads again");
    }

    #[tokio::test]
    async fn no_free_connection_or_no_database_means_the_usual_way() {
        let (db, _w) = db().await;
        let r = InlineReaders::new(db.0.clone(), 64, 1);
        let held = r.take().expect("the only connection");
        assert_eq!(get(&r, "a"), None, "the only connection is in use");
        r.idle.lock().unwrap().push(held);
        assert_eq!(get(&r, "a"), Some(None));
        let missing = InlineReaders::new(std::env::temp_dir().join("sallyport-inline-none/x.sqlite"), 64, 1);
        assert_eq!(get(&missing, "a"), None, "read-only never creates the file");
        assert_eq!(missing.opened.load(Ordering::Relaxed), 0);
    }
}
