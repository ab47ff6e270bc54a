//! MySQL / MariaDB source. The importer writes its queries with PostgreSQL's numbered `$n`
//! parameters; MySQL has only positional `?`, so each query is rewritten once here, with the
//! arguments put in the order their placeholders appear (a `$n` used twice is bound twice).
//! sqlx sets the session time zone to UTC, so Kratos' `timestamp` columns read back as stored.

use async_trait::async_trait;
use sqlx::mysql::{MySqlPool, MySqlPoolOptions};

use super::source::{KratosSource, TextRow, placeholders, text_rows};

pub struct MysqlSource {
    pool: MySqlPool,
}

impl MysqlSource {
    pub async fn connect(dsn: &str) -> anyhow::Result<MysqlSource> {
        let pool = MySqlPoolOptions::new()
            .max_connections(4)
            .connect(dsn)
            .await
            .map_err(|e| anyhow::anyhow!("connecting to the Kratos MySQL database: {e}"))?;
        Ok(MysqlSource { pool })
    }
}

#[async_trait]
impl KratosSource for MysqlSource {
    fn dialect(&self) -> &'static str {
        "mysql"
    }
    fn text(&self, column: &str) -> String {
        format!("CAST({column} AS CHAR)")
    }
    fn uuid_eq(&self, column: &str, n: usize) -> String {
        format!("{column} = ${n}")
    }
    fn uuid_cmp(&self, column: &str, op: &str, n: usize) -> String {
        format!("{column} {op} ${n}")
    }
    fn newer(&self, column: &str, n: usize) -> String {
        format!("{column} > CAST(${n} AS DATETIME(6))")
    }
    fn uuid_list(&self, first: usize, count: usize) -> String {
        placeholders(first, count, |n| format!("${n}"))
    }
    async fn rows(&self, sql: &str, args: &[String]) -> anyhow::Result<Vec<TextRow>> {
        let (sql, args) = positional(sql, args)?;
        text_rows(&self.pool, &sql, &args).await
    }
}

/// `$n` placeholders outside quoted text become `?`, with `args` reordered to match.
fn positional(sql: &str, args: &[String]) -> anyhow::Result<(String, Vec<String>)> {
    let mut out = String::with_capacity(sql.len());
    let mut ordered = Vec::with_capacity(args.len());
    let mut chars = sql.char_indices().peekable();
    let mut quote: Option<char> = None;
    while let Some((_, c)) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                out.push(c);
            }
            (Some(_), c) => out.push(c),
            (None, '\'' | '"' | '`') => {
                quote = Some(c);
                out.push(c);
            }
            (None, '$') if chars.peek().is_some_and(|(_, d)| d.is_ascii_digit()) => {
                let mut n = 0usize;
                while let Some((_, d)) = chars.peek().copied().filter(|(_, d)| d.is_ascii_digit()) {
                    n = n * 10 + (d as usize - '0' as usize);
                    chars.next();
                }
                let arg = n
                    .checked_sub(1)
                    .and_then(|i| args.get(i))
                    .ok_or_else(|| anyhow::anyhow!("query parameter ${n} has no argument"))?;
                ordered.push(arg.clone());
                out.push('?');
            }
            (None, c) => out.push(c),
        }
    }
    Ok((out, ordered))
}

#[cfg(test)]
mod tests {
    use super::positional;

    #[test]
    fn numbered_parameters_become_positional_in_order_of_use() {
        let args = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let (sql, ordered) = positional(
            "SELECT '$1' FROM t WHERE x = $2 AND y > $1 AND z IN ($3, $2)",
            &args,
        )
        .unwrap();
        assert_eq!(sql, "SELECT '$1' FROM t WHERE x = ? AND y > ? AND z IN (?, ?)");
        assert_eq!(ordered, ["b", "a", "c", "b"]);
        assert!(positional("SELECT $4", &args).is_err());
        assert!(positional("SELECT $0", &args).is_err());
    }
}
