//! Reading a Kratos database: one [`KratosSource`] per database engine. Every value is selected as
//! text (`CAST(… AS TEXT)`), so the readers differ only in how they connect, bind uuids and compare
//! timestamps, and the conversion (`convert.rs`) is written once.

use async_trait::async_trait;

use super::source_mysql::MysqlSource;
use super::source_postgres::PostgresSource;
use super::source_sqlite::SqliteSource;

/// A row with every column as text, NULL as `None`, in select order.
pub type TextRow = Vec<Option<String>>;

#[async_trait]
pub trait KratosSource: Send + Sync {
    /// `postgres`, `mysql` or `sqlite`, for messages.
    fn dialect(&self) -> &'static str;
    /// `column` as text.
    fn text(&self, column: &str) -> String {
        format!("CAST({column} AS TEXT)")
    }
    /// A condition: uuid `column` equals parameter `$n`.
    fn uuid_eq(&self, column: &str, n: usize) -> String;
    /// A condition: uuid `column` compares with parameter `$n` by `op` (`>`, `>=`, `<=`).
    fn uuid_cmp(&self, column: &str, op: &str, n: usize) -> String;
    /// A condition: timestamp `column` is later than parameter `$n` (`YYYY-MM-DD HH:MM:SS.ffffff`, UTC).
    fn newer(&self, column: &str, n: usize) -> String;
    /// A uuid parameter list `($first, …)` of `count` parameters.
    fn uuid_list(&self, first: usize, count: usize) -> String;
    async fn rows(&self, sql: &str, args: &[String]) -> anyhow::Result<Vec<TextRow>>;
}

/// Opens the Kratos database a DSN names, read-only where the engine allows it.
pub async fn open(dsn: &str) -> anyhow::Result<Box<dyn KratosSource>> {
    let scheme = dsn.split("://").next().unwrap_or_default();
    match scheme {
        "postgres" | "postgresql" => Ok(Box::new(PostgresSource::connect(dsn).await?)),
        // CockroachDB speaks PostgreSQL's wire protocol; Kratos names it by its own scheme.
        "cockroach" | "cockroachdb" | "crdb" => {
            let rest = &dsn[scheme.len()..];
            Ok(Box::new(
                PostgresSource::connect(&format!("postgres{rest}")).await?,
            ))
        }
        "sqlite" | "sqlite3" => Ok(Box::new(SqliteSource::open(dsn).await?)),
        _ if dsn.starts_with("file:") => Ok(Box::new(SqliteSource::open(dsn).await?)),
        "mysql" | "mariadb" => {
            let rest = &dsn[scheme.len()..];
            Ok(Box::new(MysqlSource::connect(&format!("mysql{rest}")).await?))
        }
        _ => anyhow::bail!(
            "--from {:?}: use postgres://…, cockroach://…, mysql://…, sqlite://<path> or file:<path>",
            crate::server::redact_dsn(dsn)
        ),
    }
}

/// `($first, $first+1, …)` with each placeholder wrapped by `wrap`.
pub fn placeholders(first: usize, count: usize, wrap: impl Fn(usize) -> String) -> String {
    let list: Vec<String> = (first..first + count).map(wrap).collect();
    format!("({})", list.join(", "))
}

/// The source database's clock, as the text `convert::timestamp` reads.
pub fn now_sql(dialect: &str) -> &'static str {
    match dialect {
        "sqlite" => "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')",
        "mysql" => "SELECT CAST(UTC_TIMESTAMP(6) AS CHAR)",
        _ => "SELECT CAST(timezone('UTC', now()) AS TEXT)",
    }
}

/// Runs `sql` with text arguments and reads every column of every row as optional text: the one
/// row shape both source backends hand to the converters.
pub async fn text_rows<DB>(pool: &sqlx::Pool<DB>, sql: &str, args: &[String]) -> anyhow::Result<Vec<TextRow>>
where
    DB: sqlx::Database,
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'r> Option<String>: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    for<'c> &'c sqlx::Pool<DB>: sqlx::Executor<'c, Database = DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    use sqlx::Row as _;
    let mut q = sqlx::query::<DB>(sql);
    for a in args {
        q = q.bind(a.as_str());
    }
    let rows = q
        .fetch_all(pool)
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
