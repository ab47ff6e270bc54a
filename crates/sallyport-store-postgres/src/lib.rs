//! PostgreSQL backend. Readers and writers share one pool: Postgres has no single-writer limit.

use std::str::FromStr as _;

use sallyport_core::store::StoreError;
use sallyport_store_sql::other_err;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

const DEFAULT_MAX_CONNECTIONS: u32 = 10;

/// Kratos' (pop's) pool options, which sqlx doesn't know: taken out of the DSN before sqlx parses it.
const POOL_PARAMS: [&str; 4] = [
    "max_conns",
    "max_idle_conns",
    "max_conn_lifetime",
    "max_conn_idle_time",
];

/// Every node's change notifications; the payload is unused (any change drops everything).
const CHANGES_CHANNEL: &str = "sallyport_session_changes";
const ANNOUNCE: &str = "SELECT pg_notify('sallyport_session_changes', '')";

/// The PostgreSQL store. Cloning shares the pool.
#[derive(Clone)]
pub struct PgStore {
    writer: PgPool,
    reader: PgPool,
    /// PostgreSQL takes concurrent writers: no group commit.
    group: Option<std::sync::Arc<sallyport_store_sql::GroupWriter<sqlx::Postgres>>>,
    /// Several nodes write one database: trusted only while `listen` hears the others' changes.
    cache: std::sync::Arc<sallyport_store_sql::ReadCache>,
    /// Dropping the last clone stops the listener.
    _listener: std::sync::Arc<ListenerGuard>,
    /// Reads on the calling thread are for SQLite files only.
    inline: Option<std::sync::Arc<sallyport_store_sql::InlineReaders>>,
}

struct ListenerGuard(Option<tokio::sync::oneshot::Sender<()>>);

impl Drop for ListenerGuard {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

/// Drops `cache` on every change any node announces. While not connected the cache is off, and it is
/// dropped again on every reconnect: a notification sent in the gap is lost.
async fn listen(
    pool: PgPool,
    cache: std::sync::Arc<sallyport_store_sql::ReadCache>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    loop {
        let session = async {
            let mut l = sqlx::postgres::PgListener::connect_with(&pool).await?;
            l.listen(CHANGES_CHANNEL).await?;
            cache.set_live(true);
            // `try_recv` answers None when the connection dropped: the gap may have hidden changes.
            while l.try_recv().await?.is_some() {
                cache.invalidate();
            }
            Ok::<(), sqlx::Error>(())
        };
        tokio::select! {
            _ = &mut stop => return,
            r = session => {
                cache.set_live(false);
                if let Err(e) = r {
                    tracing::warn!(error = %e, "session change listener disconnected; cache off until it is back");
                }
            }
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
        }
    }
}

impl PgStore {
    /// Connects to a `postgres://` or `postgresql://` DSN. sqlx handles `sslmode` and the other libpq
    /// parameters; Kratos' `max_conns` sets the pool size (default 10). Doesn't migrate.
    pub async fn connect(dsn: &str) -> Result<PgStore, StoreError> {
        let (dsn, max_connections) = split_pool_params(dsn)?;
        // sqlx's parse errors can quote the DSN, password included.
        let options = PgConnectOptions::from_str(&dsn).map_err(|_| {
            other_err("invalid PostgreSQL DSN (expected postgres://user:pass@host:port/db?…)")
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await
            .map_err(other_err)?;
        let cache = std::sync::Arc::new(sallyport_store_sql::ReadCache::shared(ANNOUNCE));
        let (tx, rx) = tokio::sync::oneshot::channel();
        if cache.announce_sql().is_some() {
            tokio::spawn(listen(pool.clone(), cache.clone(), rx));
        }
        Ok(PgStore {
            writer: pool.clone(),
            reader: pool,
            group: None,
            cache,
            _listener: std::sync::Arc::new(ListenerGuard(Some(tx))),
            inline: None,
        })
    }

    pub async fn close(&self) {
        self.writer.close().await;
    }
}

fn split_pool_params(dsn: &str) -> Result<(String, u32), StoreError> {
    let mut url = url::Url::parse(dsn.trim()).map_err(|_| other_err("invalid PostgreSQL DSN"))?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err(other_err(format!(
            "not a PostgreSQL DSN: scheme {:?}",
            url.scheme()
        )));
    }
    let mut max = DEFAULT_MAX_CONNECTIONS;
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, v)| {
            if k == "max_conns" {
                max = v.parse().ok().filter(|n| *n > 0).unwrap_or(max);
            }
            !POOL_PARAMS.contains(&k.as_ref())
        })
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    Ok((url.into(), max))
}

sallyport_store_sql::impl_sql_store!(
    PgStore,
    sqlx::Postgres,
    MIGRATOR,
    row_lock = "FOR UPDATE SKIP LOCKED"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_pool_params_out() {
        let (dsn, max) =
            split_pool_params("postgres://u:p@h:5432/db?sslmode=disable&max_conns=20&max_idle_conns=4")
                .unwrap();
        assert_eq!(
            (dsn.as_str(), max),
            ("postgres://u:p@h:5432/db?sslmode=disable", 20)
        );
        let (dsn, max) = split_pool_params("postgresql://h/db").unwrap();
        assert_eq!((dsn.as_str(), max), ("postgresql://h/db", 10));
        assert!(split_pool_params("mysql://h/db").is_err());
    }
}
