//! WAL checkpoints off the request path. SQLite's own automatic checkpoint runs inside the commit that
//! crosses its threshold (1,000 pages): that commit, and every write queued behind the one writer,
//! waits while the checkpoint copies pages into the database file and syncs it. On a large database the
//! pages are scattered and the sync is slow: at 10 million identities one login in a hundred took
//! 14-17 ms instead of 2. Here a connection of its own checkpoints in the background whenever the WAL
//! has changed, so commits only append; the writer's automatic checkpoint stays as a backstop, at a
//! threshold this task normally keeps the WAL far below.
//!
//! A `PASSIVE` checkpoint takes no lock that writers or readers wait for: it copies what no reader
//! still needs and leaves the rest for the next round. Durability is unchanged: a commit is in the WAL
//! before it is acknowledged, and the WAL is the database until it is checkpointed.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions as _, Connection as _};
use tokio::task::JoinHandle;

/// How often the WAL file is looked at (one `stat`, no database call unless it changed).
const EVERY: Duration = Duration::from_millis(100);
/// The writer's own automatic checkpoint, in pages: only reached when this task falls behind.
pub const BACKSTOP_PAGES: u32 = 8000;

/// The background checkpointer of one database file; stopped by [`Checkpoints::stop`] or when dropped.
pub struct Checkpoints {
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Checkpoints {
    /// Opens the checkpointer's connection (so that a database it can't open fails here) and starts it.
    pub async fn start(options: SqliteConnectOptions, db_path: &Path) -> Result<Checkpoints, sqlx::Error> {
        let conn = options.connect().await?;
        let wal = wal_path(db_path);
        Ok(Checkpoints {
            task: Mutex::new(Some(tokio::spawn(run(conn, wal)))),
        })
    }

    /// Stops the task and closes its connection.
    pub async fn stop(&self) {
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        if let Some(task) = self.task.get_mut().unwrap_or_else(|p| p.into_inner()).take() {
            task.abort();
        }
    }
}

fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// The WAL file's modification time and length: either moves when a commit appends to it.
fn wal_state(wal: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(wal).ok()?;
    Some((m.modified().ok()?, m.len()))
}

async fn run(mut conn: SqliteConnection, wal: PathBuf) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen = None;
    loop {
        tick.tick().await;
        let now = wal_state(&wal);
        if now.is_none() || now == seen {
            continue;
        }
        match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&mut conn)
            .await
        {
            // `now` was read before the checkpoint: a commit that raced it moves the WAL again.
            Ok(_) => seen = now,
            Err(e) => {
                tracing::warn!(error = %e, "background WAL checkpoint failed; retrying");
                if conn.ping().await.is_err() {
                    tracing::warn!("the checkpoint connection is gone; SQLite's own checkpoints take over");
                    return;
                }
            }
        }
    }
}
