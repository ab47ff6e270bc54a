//! Kratos-style SQLite DSNs, parsed by hand because sqlx rejects Kratos' query options.

use std::path::PathBuf;

use sallyport_core::store::StoreError;
use sallyport_store_sql::other_err;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Memory,
    File(PathBuf),
}

const SCHEMES: [&str; 6] = [
    "sqlite3://",
    "sqlite://",
    "file://",
    "sqlite3:",
    "sqlite:",
    "file:",
];

impl Location {
    pub fn parse(dsn: &str) -> Result<Location, StoreError> {
        let dsn = dsn.trim();
        if dsn == "memory" {
            return Ok(Location::Memory);
        }
        let mut rest = dsn;
        // `sqlite://file:…` nests a SQLite URI filename in the DSN.
        for _ in 0..2 {
            if let Some(stripped) = SCHEMES.iter().find_map(|s| rest.strip_prefix(s)) {
                rest = stripped;
            }
        }
        if rest.len() == dsn.len() {
            return Err(other_err(format!(
                "not a SQLite DSN (expected memory, sqlite://, sqlite3:// or file:): {:?}",
                scheme(dsn)
            )));
        }
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let path = percent_decode(path)?;
        let in_memory = query.split('&').any(|kv| kv == "mode=memory");
        if path.is_empty() || path == ":memory:" || in_memory {
            return Ok(Location::Memory);
        }
        Ok(Location::File(PathBuf::from(path)))
    }
}

/// Only the scheme goes into errors: the rest may be a path the operator doesn't want logged.
fn scheme(dsn: &str) -> &str {
    dsn.split_once(':').map_or("", |(s, _)| s)
}

fn percent_decode(s: &str) -> Result<String, StoreError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| other_err("the SQLite DSN's path is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(p: &str) -> Location {
        Location::File(PathBuf::from(p))
    }

    #[test]
    fn parses_kratos_dsns() {
        let cases = [
            ("memory", Location::Memory),
            ("sqlite://file::memory:?_fk=true&cache=shared", Location::Memory),
            ("sqlite::memory:", Location::Memory),
            ("sqlite://db.sqlite?_fk=true", file("db.sqlite")),
            (
                "sqlite://./data/db.sqlite?_fk=true&mode=rwc",
                file("./data/db.sqlite"),
            ),
            (
                "sqlite:///var/lib/sqlite/db.sqlite?_fk=true&_journal_mode=WAL",
                file("/var/lib/sqlite/db.sqlite"),
            ),
            ("sqlite3:///tmp/x.db?_busy_timeout=5000", file("/tmp/x.db")),
            ("file:/tmp/x.db?cache=shared&mode=rwc", file("/tmp/x.db")),
            ("file:///tmp/x.db", file("/tmp/x.db")),
            ("file:rel.db", file("rel.db")),
            ("sqlite:///tmp/with%20space.db", file("/tmp/with space.db")),
            ("file:x?mode=memory", Location::Memory),
        ];
        for (dsn, want) in cases {
            assert_eq!(Location::parse(dsn).unwrap(), want, "{dsn}");
        }
    }

    #[test]
    fn refuses_other_schemes() {
        assert!(Location::parse("postgres://u:secret@h/db").is_err());
        let err = Location::parse("mysql://u:secret@h/db").unwrap_err().to_string();
        assert!(!err.contains("secret"), "{err}");
    }
}
