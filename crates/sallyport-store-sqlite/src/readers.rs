//! The read-only connections, kept outside sqlx's `Pool`. A pooled connection costs, on every
//! release, a spawned task and a ping (a round trip to the connection's own thread, sqlx-core 0.8's
//! `return_to_pool`), whatever `test_before_acquire` says; a hot read is one such round trip
//! itself, so the release doubled it. Here a connection goes back to a short-locked stack when its
//! guard drops, synchronously.
//!
//! Why skipping the ping is safe for these connections: sqlx's SQLite driver runs one command at a
//! time on the connection's thread, in order, and a query whose caller went away (a request future
//! dropped mid-read) stops at its next row and resets its statement, so the next user's query simply
//! runs after it, with no snapshot left open. What a read could still be hurt by is a transaction
//! left open on the connection; a connection in one is closed instead of reused.

use std::ops::{Deref, DerefMut};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqlitePool};
use sqlx::{ConnectOptions as _, Connection as _, Sqlite};
use tokio::sync::{Semaphore, SemaphorePermit};

/// Where reads run: own read-only connections (a file), or the one connection of an in-memory
/// database, shared with the writer through its pool.
pub enum Readers {
    Own(Box<Own>),
    Shared(SqlitePool),
}

pub struct Own {
    options: SqliteConnectOptions,
    /// Connections opened and not in use. Opened on demand, up to the permits.
    idle: Mutex<Vec<SqliteConnection>>,
    /// One per connection that may exist.
    permits: Semaphore,
    closed: AtomicBool,
}

impl Readers {
    /// At most `max` connections opened with `options`, the first one at once so that a database
    /// that can't be opened fails here, not at the first read.
    pub async fn open(options: SqliteConnectOptions, max: usize) -> Result<Readers, sqlx::Error> {
        let first = options.connect().await?;
        Ok(Readers::Own(Box::new(Own {
            options,
            idle: Mutex::new(vec![first]),
            permits: Semaphore::new(max.max(1)),
            closed: AtomicBool::new(false),
        })))
    }

    /// A connection to read on, waiting while all of them are in use.
    pub async fn acquire(&self) -> Result<Reader<'_>, sqlx::Error> {
        let own = match self {
            Readers::Shared(pool) => return Ok(Reader::Pooled(pool.acquire().await?)),
            Readers::Own(own) => own,
        };
        let permit = own.permits.acquire().await.map_err(|_| sqlx::Error::PoolClosed)?;
        let idle = own.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match idle {
            Some(c) => c,
            None => own.options.connect().await?,
        };
        Ok(Reader::Own(Held {
            conn: Some(conn),
            own,
            _permit: permit,
        }))
    }

    /// Closes the idle connections and refuses new reads; connections in use close when given back.
    pub async fn close(&self) {
        match self {
            Readers::Shared(pool) => pool.close().await,
            Readers::Own(own) => {
                own.closed.store(true, Ordering::Release);
                own.permits.close();
                let idle = std::mem::take(&mut *own.idle.lock().unwrap_or_else(|p| p.into_inner()));
                for conn in idle {
                    let _ = conn.close().await;
                }
            }
        }
    }
}

/// A connection in use; back to its stack when dropped.
pub enum Reader<'a> {
    Own(Held<'a>),
    Pooled(PoolConnection<Sqlite>),
}

pub struct Held<'a> {
    conn: Option<SqliteConnection>,
    own: &'a Own,
    // Dropped after `Drop::drop` put the connection back, so a waiter finds it there.
    _permit: SemaphorePermit<'a>,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if conn.is_in_transaction() || self.own.closed.load(Ordering::Acquire) {
            // Dropping it ends its thread, which closes it (rolling back what it had open); the
            // next acquire opens a fresh one in its place.
            return;
        }
        self.own.idle.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
    }
}

impl Deref for Reader<'_> {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        match self {
            Reader::Own(h) => h
                .conn
                .as_ref()
                .expect("a held reader has its connection until dropped"),
            Reader::Pooled(c) => c,
        }
    }
}

impl DerefMut for Reader<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        match self {
            Reader::Own(h) => h
                .conn
                .as_mut()
                .expect("a held reader has its connection until dropped"),
            Reader::Pooled(c) => c,
        }
    }
}
