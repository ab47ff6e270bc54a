//! sqlx errors to the domain's `StoreError`.

use sallyport_core::store::StoreError;
use sqlx::error::DatabaseError;

/// Unique violations become `Conflict(<table>)`, a missing row `NotFound`, values PostgreSQL cannot
/// hold `Unrepresentable`, anything else `Other`.
pub fn db_err(err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(conflict_table(&*db)),
        sqlx::Error::Database(db) if unrepresentable(&*db).is_some() => {
            StoreError::Unrepresentable(unrepresentable(&*db).unwrap_or_default().to_string())
        }
        other => StoreError::Other(Box::new(other)),
    }
}

pub fn other_err(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StoreError {
    StoreError::Other(err.into())
}

/// PostgreSQL's 22021 (`invalid byte sequence for encoding "UTF8": 0x00`, a NUL in text), 22P05
/// (`unsupported Unicode escape sequence`, `\u0000` in jsonb) and 54000 (an index entry over its
/// size limit), described for the client.
fn unrepresentable(db: &dyn DatabaseError) -> Option<&'static str> {
    match db.code().as_deref() {
        Some("22021" | "22P05") => Some("a NUL character (U+0000)"),
        Some("54000") => Some("a value too long for the database"),
        _ => None,
    }
}

/// Postgres names the table; SQLite only says `UNIQUE constraint failed: <table>.<column>, …`.
fn conflict_table(db: &dyn DatabaseError) -> String {
    if let Some(table) = db.table() {
        return table.to_string();
    }
    db.message()
        .strip_prefix("UNIQUE constraint failed: ")
        .and_then(|cols| cols.split('.').next())
        .or(db.constraint())
        .unwrap_or("unknown")
        .to_string()
}
