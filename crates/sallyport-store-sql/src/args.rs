//! SQL text with `$N` placeholders built at run time, for the queries whose filters are optional.

use std::fmt::Write;

use sqlx::query::{Query, QueryAs};
use sqlx::{Database, Encode, Type};
use uuid::Uuid;

use crate::Ts;

/// A value to bind, kept apart from the text until the query is built for a concrete database.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Uuid(Uuid),
    Text(String),
    Ts(Ts),
    Bool(bool),
    Int(i64),
    Json(serde_json::Value),
    OptUuid(Option<Uuid>),
    OptText(Option<String>),
    OptTs(Option<Ts>),
    OptJson(Option<serde_json::Value>),
}

impl From<Uuid> for Arg {
    fn from(v: Uuid) -> Arg {
        Arg::Uuid(v)
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Arg {
        Arg::Text(v.to_string())
    }
}
impl From<Ts> for Arg {
    fn from(v: Ts) -> Arg {
        Arg::Ts(v)
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Arg {
        Arg::Bool(v)
    }
}
impl From<i64> for Arg {
    fn from(v: i64) -> Arg {
        Arg::Int(v)
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sql {
    pub text: String,
    pub args: Vec<Arg>,
}

impl Sql {
    pub fn new(text: &str) -> Sql {
        Sql {
            text: text.to_string(),
            args: vec![],
        }
    }

    pub fn push(&mut self, text: &str) -> &mut Sql {
        self.text.push_str(text);
        self
    }

    /// Appends the next placeholder (`$N`) and remembers its value.
    pub fn bind(&mut self, arg: impl Into<Arg>) -> &mut Sql {
        self.args.push(arg.into());
        let _ = write!(self.text, "${}", self.args.len());
        self
    }

    /// Appends `statement` (numbered `$1…` for its own `args`) as the next statement of a batch,
    /// its placeholders renumbered after those bound already. Only SQLite runs a batch as one
    /// query (one hand-off to its connection's thread); PostgreSQL refuses several statements
    /// with parameters in one query.
    pub fn append_statement(&mut self, statement: &str, args: impl IntoIterator<Item = Arg>) -> &mut Sql {
        let offset = self.args.len();
        if !self.text.is_empty() {
            self.text.push_str("; ");
        }
        let mut rest = statement;
        while let Some(at) = rest.find('$') {
            self.text.push_str(&rest[..=at]);
            rest = &rest[at + 1..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if let Ok(n) = rest[..digits].parse::<usize>() {
                let _ = write!(self.text, "{}", n + offset);
            } else {
                self.text.push_str(&rest[..digits]);
            }
            rest = &rest[digits..];
        }
        self.text.push_str(rest);
        self.args.extend(args);
        self
    }

    /// Appends `($N, $N+1, …)`; callers make sure `args` is not empty (Postgres rejects `IN ()`).
    pub fn bind_list<A: Into<Arg>>(&mut self, args: impl IntoIterator<Item = A>) -> &mut Sql {
        self.push("(");
        for (i, a) in args.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(a);
        }
        self.push(")")
    }
}

/// `LIMIT` value: 0 means no limit (both dialects accept `LIMIT <i64::MAX>`, and SQLite needs a
/// `LIMIT` whenever there is an `OFFSET`).
pub fn limit_arg(limit: u32) -> i64 {
    if limit == 0 { i64::MAX } else { i64::from(limit) }
}

pub fn offset_arg(offset: u64) -> i64 {
    i64::try_from(offset).unwrap_or(i64::MAX)
}

pub fn bind_all<'q, DB, O>(
    mut query: QueryAs<'q, DB, O, <DB as Database>::Arguments<'q>>,
    args: Vec<Arg>,
) -> QueryAs<'q, DB, O, <DB as Database>::Arguments<'q>>
where
    DB: Database,
    Uuid: Encode<'q, DB> + Type<DB>,
    String: Encode<'q, DB> + Type<DB>,
    Ts: Encode<'q, DB> + Type<DB>,
    bool: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
    sqlx::types::Json<serde_json::Value>: Encode<'q, DB> + Type<DB>,
    Option<Uuid>: Encode<'q, DB> + Type<DB>,
    Option<String>: Encode<'q, DB> + Type<DB>,
    Option<Ts>: Encode<'q, DB> + Type<DB>,
    Option<sqlx::types::Json<serde_json::Value>>: Encode<'q, DB> + Type<DB>,
{
    for arg in args {
        query = match arg {
            Arg::Uuid(v) => query.bind(v),
            Arg::Text(v) => query.bind(v),
            Arg::Ts(v) => query.bind(v),
            Arg::Bool(v) => query.bind(v),
            Arg::Int(v) => query.bind(v),
            Arg::Json(v) => query.bind(sqlx::types::Json(v)),
            Arg::OptUuid(v) => query.bind(v),
            Arg::OptText(v) => query.bind(v),
            Arg::OptTs(v) => query.bind(v),
            Arg::OptJson(v) => query.bind(v.map(sqlx::types::Json)),
        };
    }
    query
}

/// [`bind_all`] for statements that return no rows.
pub fn bind_all_query<'q, DB>(
    mut query: Query<'q, DB, <DB as Database>::Arguments<'q>>,
    args: Vec<Arg>,
) -> Query<'q, DB, <DB as Database>::Arguments<'q>>
where
    DB: Database,
    Uuid: Encode<'q, DB> + Type<DB>,
    String: Encode<'q, DB> + Type<DB>,
    Ts: Encode<'q, DB> + Type<DB>,
    bool: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
    sqlx::types::Json<serde_json::Value>: Encode<'q, DB> + Type<DB>,
    Option<Uuid>: Encode<'q, DB> + Type<DB>,
    Option<String>: Encode<'q, DB> + Type<DB>,
    Option<Ts>: Encode<'q, DB> + Type<DB>,
    Option<sqlx::types::Json<serde_json::Value>>: Encode<'q, DB> + Type<DB>,
{
    for arg in args {
        query = match arg {
            Arg::Uuid(v) => query.bind(v),
            Arg::Text(v) => query.bind(v),
            Arg::Ts(v) => query.bind(v),
            Arg::Bool(v) => query.bind(v),
            Arg::Int(v) => query.bind(v),
            Arg::Json(v) => query.bind(sqlx::types::Json(v)),
            Arg::OptUuid(v) => query.bind(v),
            Arg::OptText(v) => query.bind(v),
            Arg::OptTs(v) => query.bind(v),
            Arg::OptJson(v) => query.bind(v.map(sqlx::types::Json)),
        };
    }
    query
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_placeholders_in_order() {
        let mut sql = Sql::new("SELECT 1 WHERE a = ");
        sql.bind(true).push(" AND b IN ").bind_list([1i64, 2, 3]);
        assert_eq!(sql.text, "SELECT 1 WHERE a = $1 AND b IN ($2, $3, $4)");
        assert_eq!(sql.args.len(), 4);
    }

    #[test]
    fn a_batch_renumbers_each_statements_placeholders() {
        let mut batch = Sql::new("");
        batch.append_statement("UPDATE t SET a = $2 WHERE id = $1", [Arg::Int(1), Arg::Int(2)]);
        batch.append_statement("DELETE FROM u WHERE x = $1 AND y = $10", (0..10).map(Arg::Int));
        assert_eq!(
            batch.text,
            "UPDATE t SET a = $2 WHERE id = $1; DELETE FROM u WHERE x = $3 AND y = $12"
        );
        assert_eq!(batch.args.len(), 12);
    }
}
