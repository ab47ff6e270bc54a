//! SQLite backend, the default. One writer connection so concurrent requests queue in the pool
//! instead of failing with `database is locked`; a few read-only connections read alongside it (WAL).

mod checkpoints;
mod dsn;
mod readers;

use std::str::FromStr as _;
use std::time::Duration;

use sallyport_core::store::StoreError;
use sallyport_store_sql::other_err;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use dsn::Location;
pub use readers::{Reader, Readers};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

const READERS: usize = 4;
/// Page cache of each read-only connection, in KiB (SQLite's default is 2,000 KiB per connection). The
/// hot reads are single-row index lookups that find their pages in the OS page cache anyway; at the
/// default the four readers held about 8 MiB of a loaded server's heap (docs/caches.md).
const READER_CACHE_KIB: u32 = 256;
/// Connections for reads on the calling thread: one per runtime thread that reads at the same time.
const INLINE_READERS: usize = 4;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The SQLite store. Cloning shares the pools.
#[derive(Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: std::sync::Arc<Readers>,
    /// The single writer connection's writes on request hot paths, group-committed.
    group: Option<std::sync::Arc<sallyport_store_sql::GroupWriter<sqlx::Sqlite>>>,
    /// One process owns an SQLite file, so its reads can be cached exactly.
    cache: std::sync::Arc<sallyport_store_sql::ReadCache>,
    /// A file's WAL checkpoints, run beside the writer instead of inside its commits.
    checkpoints: Option<std::sync::Arc<checkpoints::Checkpoints>>,
    /// A file's point reads on the calling thread (`sallyport_store_sql::InlineReaders`).
    inline: Option<std::sync::Arc<sallyport_store_sql::InlineReaders>>,
}

impl SqliteStore {
    /// Opens the database named by a Kratos DSN: `memory`, `sqlite://path?…`, `sqlite3://…`,
    /// `sqlite:///abs/path`, `file:…`. Query options (`_fk`, `mode`, `_journal_mode`, …) are ignored:
    /// the file is created if missing and always runs WAL, synchronous=NORMAL, foreign keys on.
    /// Doesn't migrate; see `MigrationStore`.
    pub async fn connect(dsn: &str) -> Result<SqliteStore, StoreError> {
        match Location::parse(dsn)? {
            Location::Memory => Self::memory().await,
            Location::File(path) => Self::file(&path).await,
        }
    }

    /// One connection that never closes, shared by readers and writers: an in-memory database lives
    /// and dies with its connection.
    async fn memory() -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(other_err)?
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            // A local file can't drop the connection; pinging it on every checkout only costs a round trip.
            .test_before_acquire(false)
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(other_err)?;
        Ok(SqliteStore {
            group: Some(std::sync::Arc::new(sallyport_store_sql::GroupWriter::spawn(
                pool.clone(),
            ))),
            writer: pool.clone(),
            reader: std::sync::Arc::new(Readers::Shared(pool)),
            cache: std::sync::Arc::new(sallyport_store_sql::ReadCache::enabled()),
            checkpoints: None,
            inline: None,
        })
    }

    async fn file(path: &std::path::Path) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        // The writer stays open so the WAL files the read-only connections rely on stay too.
        let writer = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(
                options
                    .clone()
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .pragma("wal_autocheckpoint", checkpoints::BACKSTOP_PAGES.to_string()),
            )
            .await
            .map_err(other_err)?;
        let checkpoints = checkpoints::Checkpoints::start(
            options
                .clone()
                .synchronous(SqliteSynchronous::Normal)
                // A checkpoint copies WAL frames through a buffer of its own, not the page cache.
                .pragma("cache_size", "-64"),
            path,
        )
        .await
        .map_err(other_err)?;
        let reader = Readers::open(
            options
                .read_only(true)
                .pragma("cache_size", format!("-{READER_CACHE_KIB}")),
            READERS,
        )
        .await
        .map_err(other_err)?;
        Ok(SqliteStore {
            group: Some(std::sync::Arc::new(sallyport_store_sql::GroupWriter::spawn(
                writer.clone(),
            ))),
            writer,
            reader: std::sync::Arc::new(reader),
            cache: std::sync::Arc::new(sallyport_store_sql::ReadCache::enabled()),
            checkpoints: Some(std::sync::Arc::new(checkpoints)),
            inline: Some(std::sync::Arc::new(sallyport_store_sql::InlineReaders::new(
                path.to_owned(),
                READER_CACHE_KIB,
                INLINE_READERS,
            ))),
        })
    }

    /// Closes the readers and the writer pool, waiting for connections in use to come back.
    pub async fn close(&self) {
        if let Some(c) = &self.checkpoints {
            c.stop().await;
        }
        self.reader.close().await;
        self.writer.close().await;
    }
}

sallyport_store_sql::impl_sql_store!(SqliteStore, sqlx::Sqlite, MIGRATOR, row_lock = "");
