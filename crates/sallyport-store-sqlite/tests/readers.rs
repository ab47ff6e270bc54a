//! The read-only connections outside sqlx's pool (`Readers`): reuse without the pool's ping, and
//! what a cancelled read or a forgotten transaction must not leave behind.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sallyport_store_sqlite::Readers;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode};
use sqlx::{ConnectOptions as _, Connection as _};
use uuid::Uuid;

/// A WAL database file with a one-row table `t(x)` holding 1, removed on drop.
struct Db(PathBuf);

impl Db {
    async fn new() -> (Db, SqliteConnection) {
        let db =
            Db(std::env::temp_dir().join(format!("sallyport-readers-{}.sqlite", Uuid::new_v4().simple())));
        let mut writer = db
            .options()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .connect()
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (x INTEGER NOT NULL); INSERT INTO t VALUES (1)")
            .execute(&mut writer)
            .await
            .unwrap();
        (db, writer)
    }

    fn options(&self) -> SqliteConnectOptions {
        SqliteConnectOptions::new().filename(&self.0)
    }

    async fn readers(&self, max: usize) -> Readers {
        Readers::open(self.options().read_only(true), max).await.unwrap()
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A setting only this connection has, to tell it from a fresh one.
const MARK: &str = "PRAGMA cache_size = -123";

async fn marked(conn: &mut SqliteConnection) -> bool {
    let size: i64 = sqlx::query_scalar("PRAGMA cache_size")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    size == -123
}

async fn x(conn: &mut SqliteConnection) -> i64 {
    sqlx::query_scalar("SELECT x FROM t")
        .fetch_one(conn)
        .await
        .unwrap()
}

async fn set_x(writer: &mut SqliteConnection, v: i64) {
    sqlx::query("UPDATE t SET x = $1")
        .bind(v)
        .execute(writer)
        .await
        .unwrap();
}

/// Rows enough to be still running when its reader gives up.
const ENDLESS: &str = "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 100000000) \
     SELECT n, (SELECT x FROM t) FROM c";

#[tokio::test]
async fn a_connection_given_back_is_reused() {
    let (db, _writer) = Db::new().await;
    let readers = db.readers(1).await;
    {
        let mut c = readers.acquire().await.unwrap();
        sqlx::query(MARK).execute(&mut *c).await.unwrap();
    }
    let mut c = readers.acquire().await.unwrap();
    assert!(marked(&mut c).await, "the one connection was not reused");
    assert_eq!(x(&mut c).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_reads_than_connections_take_turns() {
    let (db, mut writer) = Db::new().await;
    set_x(&mut writer, 7).await;
    let readers = Arc::new(db.readers(2).await);
    let (in_use, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut tasks = vec![];
    for _ in 0..24 {
        let (readers, in_use, most) = (readers.clone(), in_use.clone(), most.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = readers.acquire().await.unwrap();
            let now = in_use.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            let v = x(&mut c).await;
            tokio::time::sleep(Duration::from_millis(5)).await;
            in_use.fetch_sub(1, Ordering::SeqCst);
            v
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 7);
    }
    assert_eq!(
        most.load(Ordering::SeqCst),
        2,
        "two connections, both used, never more"
    );
    readers.close().await;
    assert!(
        readers.acquire().await.is_err(),
        "a closed set of readers hands out nothing"
    );
}

#[tokio::test]
async fn a_read_cancelled_mid_query_leaves_no_old_snapshot() {
    let (db, mut writer) = Db::new().await;
    let readers = db.readers(1).await;
    {
        let mut c = readers.acquire().await.unwrap();
        sqlx::query(MARK).execute(&mut *c).await.unwrap();
        // The request that read this went away after the first rows: its future is dropped
        // with the statement still stepping, inside the read transaction it opened.
        let cancelled = tokio::time::timeout(
            Duration::from_millis(20),
            sqlx::query_as::<_, (i64, i64)>(ENDLESS).fetch_all(&mut *c),
        )
        .await;
        assert!(cancelled.is_err(), "the endless read finished");
    }
    set_x(&mut writer, 2).await;
    let mut c = tokio::time::timeout(Duration::from_secs(10), readers.acquire())
        .await
        .expect("the connection came back")
        .unwrap();
    assert!(marked(&mut c).await, "the same connection is reused");
    let seen = tokio::time::timeout(Duration::from_secs(10), x(&mut c))
        .await
        .expect("the next read does not wait for the cancelled one's rows");
    assert_eq!(seen, 2, "the cancelled read's snapshot is gone");
}

#[tokio::test]
async fn a_connection_left_in_a_transaction_is_not_reused() {
    let (db, mut writer) = Db::new().await;
    let readers = db.readers(1).await;
    {
        let mut c = readers.acquire().await.unwrap();
        sqlx::query(MARK).execute(&mut *c).await.unwrap();
        let mut tx = c.begin().await.unwrap();
        assert_eq!(x(&mut tx).await, 1);
        // Never committed nor rolled back: the transaction and its snapshot stay open.
        std::mem::forget(tx);
    }
    set_x(&mut writer, 3).await;
    let mut c = readers.acquire().await.unwrap();
    assert!(
        !marked(&mut c).await,
        "the connection in a transaction was handed out again"
    );
    assert_eq!(x(&mut c).await, 3);
}
