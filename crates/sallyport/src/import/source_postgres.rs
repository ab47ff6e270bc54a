//! PostgreSQL (and CockroachDB) source.

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};

use super::source::{KratosSource, TextRow, placeholders, text_rows};

pub struct PostgresSource {
    pool: PgPool,
}

impl PostgresSource {
    pub async fn connect(dsn: &str) -> anyhow::Result<PostgresSource> {
        let pool = PgPoolOptions::new()
            .max_connections(6)
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
        text_rows(&self.pool, sql, args).await
    }
}
