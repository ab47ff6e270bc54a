//! SQLite source, opened read-only. Kratos writes SQLite timestamps in three text formats, so
//! they are compared through `julianday`, which reads all of them.

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

use super::source::{KratosSource, TextRow, placeholders, text_rows};

pub struct SqliteSource {
    pool: SqlitePool,
}

impl SqliteSource {
    pub async fn open(dsn: &str) -> anyhow::Result<SqliteSource> {
        let path =
            match sallyport_store_sqlite::Location::parse(dsn).map_err(|e| anyhow::anyhow!("--from: {e}"))? {
                sallyport_store_sqlite::Location::File(path) => path,
                sallyport_store_sqlite::Location::Memory => {
                    anyhow::bail!("--from names an in-memory SQLite database, which holds nothing to import")
                }
            };
        if !std::path::Path::new(&path).exists() {
            anyhow::bail!("--from: the SQLite file {path:?} does not exist");
        }
        let options = SqliteConnectOptions::new().filename(&path).read_only(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(|e| anyhow::anyhow!("opening the Kratos SQLite database {path:?}: {e}"))?;
        Ok(SqliteSource { pool })
    }
}

#[async_trait]
impl KratosSource for SqliteSource {
    fn dialect(&self) -> &'static str {
        "sqlite"
    }
    fn uuid_eq(&self, column: &str, n: usize) -> String {
        format!("{column} = ${n}")
    }
    fn uuid_cmp(&self, column: &str, op: &str, n: usize) -> String {
        format!("{column} {op} ${n}")
    }
    fn newer(&self, column: &str, n: usize) -> String {
        format!("julianday({column}) > julianday(${n})")
    }
    fn uuid_list(&self, first: usize, count: usize) -> String {
        placeholders(first, count, |n| format!("${n}"))
    }
    async fn rows(&self, sql: &str, args: &[String]) -> anyhow::Result<Vec<TextRow>> {
        text_rows(&self.pool, sql, args).await
    }
}
