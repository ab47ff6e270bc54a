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

/// The PostgreSQL store. Cloning shares the pool.
#[derive(Clone)]
pub struct PgStore {
    writer: PgPool,
    reader: PgPool,
    /// Off: several nodes write one PostgreSQL database, so no node may trust its own copy.
    cache: std::sync::Arc<sallyport_store_sql::ReadCache>,
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
        Ok(PgStore {
            writer: pool.clone(),
            reader: pool,
            cache: std::sync::Arc::new(sallyport_store_sql::ReadCache::disabled()),
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
