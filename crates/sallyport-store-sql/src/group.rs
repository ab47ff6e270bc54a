//! Group commit for a database with one writer connection (SQLite): the writes that queue up while
//! one group runs go into the next group, one transaction for all of them, and each caller hears its
//! result only after that transaction committed. Under load a commit (its WAL frames, its locks, its
//! checkpoint share) is paid once per group instead of once per request; alone, a write runs as it
//! would without the group.
//!
//! A job is a closure over the writer connection. Inside a group it runs within the group's
//! transaction, so a job that needs its own atomicity opens a transaction on the connection it is
//! given (`sqlx::Connection::begin`), which becomes a savepoint there: a job that fails leaves the
//! others' work intact. A failure of the database itself (anything but a conflict, a missing row or a
//! refused value) rolls the whole group back and fails every job in it: nothing is acknowledged that
//! is not durable.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use sallyport_core::store::{StoreError, StoreResult};
use sqlx::pool::PoolConnection;
use sqlx::{Database, Pool};
use tokio::sync::{mpsc, oneshot};

use crate::{db_err, other_err};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The most jobs one transaction takes: bounds how long the first of them waits for its answer.
const MAX_GROUP: usize = 128;

/// Hands a job its result once its group's fate is known: `None` committed, `Some(why)` not.
type Finish = Box<dyn FnOnce(Option<&str>) + Send>;

/// A job ready to run: returns how to finish it and whether it failed the database as a whole.
type Run<DB> =
    Box<dyn for<'c> FnOnce(&'c mut <DB as Database>::Connection) -> BoxFuture<'c, (Finish, bool)> + Send>;

pub struct GroupWriter<DB: Database> {
    jobs: mpsc::UnboundedSender<Run<DB>>,
}

impl<DB: Database> GroupWriter<DB> {
    /// Starts the writer on a thread and runtime of its own; it stops when the last `GroupWriter`
    /// handle is dropped. Groups take `pool`'s connection in turn with everyone else using the pool.
    ///
    /// Why not a task of the server's runtime: a group is a chain of hand-offs to the connection's
    /// thread (begin, each job, commit), and on the server's runtime every link of it waited behind
    /// whatever request handlers were queued on that worker, while the requests in turn waited for
    /// the group; under the code-login load the cores then sat a third idle. Should the thread not
    /// start, the writer runs as a task of the current runtime.
    pub fn spawn(pool: Pool<DB>) -> GroupWriter<DB> {
        let (jobs, rx) = mpsc::unbounded_channel();
        let handed = std::sync::Arc::new(std::sync::Mutex::new(Some((pool, rx))));
        let taken = handed.clone();
        let started = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .and_then(|runtime| {
                std::thread::Builder::new()
                    .name("sallyport-writer".into())
                    .spawn(move || {
                        let parts = taken.lock().unwrap_or_else(|p| p.into_inner()).take();
                        if let Some((pool, rx)) = parts {
                            runtime.block_on(run_groups(pool, rx));
                        }
                    })
            });
        if let Err(e) = started {
            tracing::warn!(error = %e, "the database writer runs on the server's runtime: no thread of its own");
            if let Some((pool, rx)) = handed.lock().unwrap_or_else(|p| p.into_inner()).take() {
                tokio::spawn(run_groups(pool, rx));
            }
        }
        GroupWriter { jobs }
    }

    /// Runs `job` on the writer connection and answers once what it wrote is committed.
    pub async fn write<T, F>(&self, job: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut DB::Connection) -> BoxFuture<'c, StoreResult<T>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<StoreResult<T>>();
        let run: Run<DB> = Box::new(move |conn| {
            Box::pin(async move {
                let result = job(conn).await;
                let fatal = matches!(result, Err(StoreError::Other(_)));
                let finish: Finish = Box::new(move |failed: Option<&str>| {
                    let answer = match failed {
                        None => result,
                        Some(why) => Err(other_err(why.to_owned())),
                    };
                    let _ = tx.send(answer);
                });
                (finish, fatal)
            })
        });
        self.jobs
            .send(run)
            .map_err(|_| other_err("the database writer has stopped"))?;
        rx.await
            .map_err(|_| other_err("the database writer dropped a write"))?
    }
}

/// The most groups in a row that keep the writer connection before it goes back to the pool, so
/// writes outside the group writer (identity changes, the courier) wait for at most this many.
const MAX_HELD_GROUPS: u32 = 32;

async fn run_groups<DB: Database>(pool: Pool<DB>, mut rx: mpsc::UnboundedReceiver<Run<DB>>) {
    let mut pending: Vec<Run<DB>> = vec![];
    // Kept from one group to the next while writes keep coming: every return to the pool costs a
    // ping (for SQLite, a hand-off to the connection's thread) and a task, and the next group
    // waits for both.
    let mut held: Option<PoolConnection<DB>> = None;
    let mut held_groups = 0;
    loop {
        if pending.is_empty() {
            match rx.try_recv() {
                Ok(job) => pending.push(job),
                Err(_) => {
                    held = None;
                    match rx.recv().await {
                        Some(first) => pending.push(first),
                        None => return,
                    }
                }
            }
        }
        while pending.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => pending.push(job),
                Err(_) => break,
            }
        }
        let batch: Vec<Run<DB>> = std::mem::take(&mut pending);
        if held_groups >= MAX_HELD_GROUPS {
            held = None;
        }
        let mut conn = match held.take() {
            Some(c) => {
                held_groups += 1;
                c
            }
            None => match pool.acquire().await {
                Ok(c) => {
                    held_groups = 1;
                    c
                }
                Err(e) => {
                    let why = db_err(e).to_string();
                    for job in batch {
                        fail_unrun::<DB>(job, &why);
                    }
                    continue;
                }
            },
        };
        // A failure goes back to the pool, whose check on return drops a broken connection.
        let mut failed = false;
        if batch.len() == 1 {
            // Alone: no group transaction around it, exactly as a direct write.
            for job in batch {
                match Contained(job(&mut conn)).await {
                    Some((finish, fatal)) => {
                        failed |= fatal;
                        finish(None);
                    }
                    None => failed = true,
                }
            }
        } else {
            let (left, group_failed) = run_group::<DB>(&mut conn, batch).await;
            failed = group_failed;
            pending = left;
        }
        if !failed {
            held = Some(conn);
        }
    }
}

/// Runs `batch` in one transaction and answers every job; returns the jobs a database failure kept
/// from running, for the next group, and whether the group failed.
async fn run_group<DB: Database>(conn: &mut DB::Connection, batch: Vec<Run<DB>>) -> (Vec<Run<DB>>, bool) {
    let mut tx = match sqlx::Connection::begin(&mut *conn).await {
        Ok(tx) => tx,
        Err(e) => {
            let why = db_err(e).to_string();
            for job in batch {
                fail_unrun::<DB>(job, &why);
            }
            return (vec![], true);
        }
    };
    let mut done: Vec<Finish> = Vec::with_capacity(batch.len());
    let mut jobs = batch.into_iter();
    let mut fatal = false;
    for job in jobs.by_ref() {
        let Some((finish, failed)) = Contained(job(&mut *tx)).await else {
            // What the panicking job wrote is in the transaction: none of the group may commit.
            fatal = true;
            break;
        };
        done.push(finish);
        if failed {
            fatal = true;
            break;
        }
    }
    let outcome = if fatal {
        let _ = tx.rollback().await;
        Err("a write in the same transaction failed; nothing of it was stored".to_owned())
    } else {
        tx.commit().await.map_err(|e| db_err(e).to_string())
    };
    let why = outcome.err();
    let failed = why.is_some();
    for finish in done {
        finish(why.as_deref());
    }
    (jobs.collect(), failed)
}

/// Answers a job that never ran.
fn fail_unrun<DB: Database>(job: Run<DB>, why: &str) {
    // Its result is only produced by running it; dropping it drops its sender, which its caller
    // reports as a dropped write. Log why here, once per job.
    tracing::warn!(error = %why, "a queued database write could not run");
    drop(job);
}

/// A job's future with its panic caught: a bug in one write fails that write (its caller hears of a
/// dropped write) and its group, instead of ending the writer task and with it every later write.
struct Contained<'a, T>(BoxFuture<'a, T>);

impl<T> Future for Contained<'_, T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let fut = &mut self.get_mut().0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Some(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => {
                tracing::error!("a database write panicked; its group was rolled back");
                Poll::Ready(None)
            }
        }
    }
}
