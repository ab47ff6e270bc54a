//! PostgreSQL (and CockroachDB) source.

use async_trait::async_trait;
use sqlx::Row as _;
use sqlx::postgres::{PgPool, PgPoolOptions};

use super::source::{KratosSource, TextRow, placeholders};

pub struct PostgresSource {
    pool: PgPool,
}

impl PostgresSource {
    pub async fn connect(dsn: &str) -> anyhow::Result<PostgresSource> {
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect(dsn)
            .await
            .map_err(|e| anyhow::anyhow!("connecting to the Kratos PostgreSQL database: {e}"))?;
        Ok(PostgresSource { pool })
    }
}

#[async_trait]
impl KratosSource for PostgresSource {
    fn dialect(&self) -> &'static str {
        "postgres"
    }
    fn uuid_eq(&self, column: &str, n: usize) -> String {
        format!("{column} = CAST(${n} AS uuid)")
    }
    fn uuid_cmp(&self, column: &str, op: &str, n: usize) -> String {
        format!("{column} {op} CAST(${n} AS uuid)")
    }
    fn newer(&self, column: &str, n: usize) -> String {
        format!("{column} > CAST(${n} AS timestamp)")
    }
    fn uuid_list(&self, first: usize, count: usize) -> String {
        placeholders(first, count, |n| format!("CAST(${n} AS uuid)"))
    }
    async fn rows(&self, sql: &str, args: &[String]) -> anyhow::Result<Vec<TextRow>> {
        let mut q = sqlx::query(sql);
        for a in args {
            q = q.bind(a.as_str());
        }
        let rows = q
            .fetch_all(&self.pool)
            .await
            .map_err(|e| anyhow::anyhow!("reading the Kratos database: {e}"))?;
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| r.try_get::<Option<String>, _>(i).map_err(anyhow::Error::from))
                    .collect()
            })
            .collect()
    }
}
