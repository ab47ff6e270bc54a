//! `create_identities` on SQLite steps its rows through the C API (`sallyport-store-sql`'s
//! `bulk_sqlite`): the rows it writes must be byte for byte those of the sqlx path
//! (`create_identity`), and a refused identity must leave nothing of the raw attempt behind.

use std::path::PathBuf;

use sallyport_core::identity::{Identity, IdentityState, credential_type};
use sallyport_core::store::{IdentityStore, MigrationStore, StoreError};
use sallyport_core::time_fmt;
use sallyport_store_sqlite::SqliteStore;
use serde_json::json;
use sqlx::{Connection as _, Row as _, SqliteConnection};
use time::macros::datetime;
use uuid::Uuid;

const TABLES: [&str; 5] = [
    "identities",
    "identity_credentials",
    "identity_credential_identifiers",
    "identity_verifiable_addresses",
    "identity_recovery_addresses",
];

/// A migrated store on a file of its own, removed with its WAL files on drop.
struct Db {
    path: PathBuf,
    store: SqliteStore,
}

impl Db {
    async fn new() -> Db {
        let path =
            std::env::temp_dir().join(format!("sallyport-bulk-raw-{}.sqlite", Uuid::new_v4().simple()));
        let store = SqliteStore::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("connect");
        store.migrate_up().await.expect("migrate");
        Db { path, store }
    }

    async fn read(&self) -> SqliteConnection {
        SqliteConnection::connect(&format!("sqlite://{}?mode=ro", self.path.display()))
            .await
            .expect("open for reading")
    }

    /// Every column of every identity table as `type:hex`, row by row in a stable order; the
    /// identifier rows' own ids (random per write) left out.
    async fn dump(&self) -> Vec<String> {
        let mut conn = self.read().await;
        let mut out = vec![];
        for table in TABLES {
            let columns: Vec<String> = sqlx::query(&format!("SELECT name FROM pragma_table_info('{table}')"))
                .fetch_all(&mut conn)
                .await
                .expect("columns")
                .iter()
                .map(|r| r.get::<String, _>(0))
                .filter(|c| !(table == "identity_credential_identifiers" && c == "id"))
                .collect();
            let select = columns
                .iter()
                .map(|c| format!("'{c}=' || typeof({c}) || ':' || hex({c})"))
                .collect::<Vec<_>>()
                .join(" || ' ' || ");
            let rows = sqlx::query(&format!("SELECT {select} FROM {table} ORDER BY 1"))
                .fetch_all(&mut conn)
                .await
                .expect("rows");
            out.extend(rows.iter().map(|r| format!("{table}: {}", r.get::<String, _>(0))));
        }
        conn.close().await.expect("close");
        out
    }

    /// Rows of the identity `id` left in each table.
    async fn rows_of(&self, id: Uuid) -> i64 {
        let mut conn = self.read().await;
        let mut n = 0;
        for table in TABLES {
            let column = if table == "identities" {
                "id"
            } else {
                "identity_id"
            };
            let found: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE {column} = ?"))
                .bind(id)
                .fetch_one(&mut conn)
                .await
                .expect("count");
            n += found;
        }
        conn.close().await.expect("close");
        n
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.path.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

fn person(email: &str, now: time::OffsetDateTime) -> Identity {
    let mut i = Identity::new("default", json!({ "email": email }), now);
    i.set_credential(
        credential_type::PASSWORD,
        vec![email.to_owned()],
        json!({"hashed_password": "$2b$04$atf9KHoKrTIsJZ1PpbLWu.LRY6qGB0CW6nfqgFWHTD5PfIG4hOaPq"}),
        now,
    );
    let addr = [("email".to_owned(), email.to_owned())];
    i.merge_verifiable_addresses(&addr, now);
    i.merge_recovery_addresses(&addr, now);
    i
}

/// Every column set, with NULs, quotes, non-ASCII text, a 2 MB trait, timestamps at the ends of the
/// fixed-width form, and two identifiers for one credential.
fn odd() -> Identity {
    let email = "odd\u{0}\"quote\\@exämple.org 🦀";
    let mut i = person(email, datetime!(0001-01-01 00:00:00.000001 UTC));
    i.traits = json!({
        "email": email,
        "name": "tab\t newline\n NUL \u{0} end",
        "big": "x".repeat(2_000_000),
        "list": [1, 2.5, null, true, {"\u{0}": []}],
    });
    i.credentials
        .get_mut(credential_type::PASSWORD)
        .expect("password")
        .identifiers
        .push("second\u{0}name".to_owned());
    i.state = IdentityState::Inactive;
    i.state_changed_at = Some(datetime!(9999-12-31 23:59:59.999999 UTC));
    i.metadata_public = Some(json!({"a": [1, "é"]}));
    i.metadata_admin = Some(json!({"\u{0}": "k"}));
    i.external_id = Some("ext\u{0}é".to_owned());
    i.organization_id = Some(Uuid::new_v4());
    let address = &mut i.verifiable_addresses[0];
    address.verified = true;
    address.status = "completed".to_owned();
    address.verified_at = Some(datetime!(2026-12-07 10:00:00.5 +02:00));
    i.updated_at = datetime!(2026-06-01 12:00:00 -07:00);
    i
}

#[tokio::test]
async fn raw_rows_equal_the_sqlx_rows() {
    let (raw, sqlx_path) = (Db::new().await, Db::new().await);
    let mut identities = vec![odd(), person("plain@example.org", time_fmt::now())];
    // Outside the fixed-width form: the formatter's text on both paths.
    identities[1].created_at = datetime!(-0001-06-15 12:00:00 UTC);
    // Enough for one multi-row statement per table and single-row ones for the rest.
    identities.extend((0..60).map(|n| person(&format!("p{n}@example.org"), time_fmt::now())));
    let results = raw.store.create_identities(&identities).await.expect("batch");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    for i in &identities {
        sqlx_path
            .store
            .create_identity(i, None)
            .await
            .expect("one by one");
    }
    let (a, b) = (raw.dump().await, sqlx_path.dump().await);
    assert_eq!(a.len(), 62 + 62 + 63 + 62 + 62, "{a:#?}");
    assert_eq!(a, b);
    assert_eq!(
        raw.store.get_identity(identities[0].id).await.expect("get"),
        identities[0]
    );
    raw.store.close().await;
    sqlx_path.store.close().await;
}

/// On a multi-threaded runtime, as the server runs: the raw batch goes through `block_in_place`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_rolls_back_the_raw_batch_and_names_the_identity() {
    let db = Db::new().await;
    let now = time_fmt::now();
    let stored = person("taken@example.org", now);
    db.store.create_identity(&stored, None).await.expect("stored");
    let mut batch: Vec<Identity> = (0..300)
        .map(|n| person(&format!("b{n}@example.org"), now))
        .collect();
    // The identifier row comes after every identity and credential row of the batch is written;
    // the address row after every identifier.
    batch[137] = person("taken@example.org", now);
    batch[260]
        .credentials
        .get_mut(credential_type::PASSWORD)
        .expect("password")
        .identifiers = vec!["fresh".into()];
    batch[260].verifiable_addresses = stored.verifiable_addresses.clone();
    batch[260].verifiable_addresses[0].id = Uuid::new_v4();
    let results = db.store.create_identities(&batch).await.expect("batch");
    for (n, result) in results.iter().enumerate() {
        match (n, result) {
            (137, Err(StoreError::Conflict(t))) => assert_eq!(t, "identity_credential_identifiers"),
            (260, Err(StoreError::Conflict(t))) => assert_eq!(t, "identity_verifiable_addresses"),
            (137 | 260, other) => panic!("{n}: expected a conflict, got {other:?}"),
            (_, other) => assert!(other.is_ok(), "{n}: {other:?}"),
        }
    }
    assert_eq!(db.rows_of(batch[137].id).await, 0);
    assert_eq!(db.rows_of(batch[260].id).await, 0);
    assert_eq!(db.rows_of(batch[0].id).await, 5);
    assert_eq!(db.store.count_identities().await.expect("count"), 1 + 298);
    assert_eq!(
        db.store.get_identity(batch[299].id).await.expect("get"),
        batch[299]
    );

    // The writer connection still serves the raw path and the sqlx path.
    let next: Vec<Identity> = (0..3)
        .map(|n| person(&format!("c{n}@example.org"), now))
        .collect();
    let results = db.store.create_identities(&next).await.expect("next batch");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    db.store
        .create_identity(&person("d@example.org", now), None)
        .await
        .expect("one more");
    assert_eq!(db.store.count_identities().await.expect("count"), 1 + 298 + 4);
    db.store.close().await;
}

/// The identity lookups of the request paths read on the caller's thread (`inline_identity`), with
/// their own decoding of the rows: what they load must be what was stored, every column, and a row
/// they cannot decode (a timestamp outside the fixed-width form) leaves the read to sqlx.
#[tokio::test]
async fn inline_identity_loads_equal_what_was_stored() {
    use sallyport_core::store::AddressKind;
    use sallyport_store_sql::__private::{RawValue, identity_sql, inline_identity};
    use sallyport_store_sql::InlineReaders;
    let db = Db::new().await;
    let odd = odd();
    let mut ancient = person("ancient@example.org", time_fmt::now());
    ancient.created_at = datetime!(-0001-06-15 12:00:00 UTC);
    for i in [&odd, &ancient] {
        db.store.create_identity(i, None).await.expect("stored");
    }
    let inline = InlineReaders::new(db.path.clone(), 64, 1);
    let by_identifier = |identifier: &str| {
        let values = [
            RawValue::Text(credential_type::PASSWORD),
            RawValue::Text(identifier),
        ];
        inline_identity(Some(&inline), identity_sql::by_identifier_text(), &values)
    };
    let second = &odd.credentials[credential_type::PASSWORD].identifiers[1];
    assert_eq!(by_identifier(second).expect("read inline").expect("found"), odd);
    for (kind, value) in [
        (AddressKind::Verifiable, &odd.verifiable_addresses[0].value),
        (AddressKind::Recovery, &odd.recovery_addresses[0].value),
    ] {
        let values = [RawValue::Text("email"), RawValue::Text(value)];
        let found = inline_identity(Some(&inline), identity_sql::by_address_text(kind), &values);
        assert_eq!(found.expect("read inline").expect("found"), odd, "{kind:?}");
    }
    assert!(matches!(
        by_identifier("nobody@example.org"),
        Some(Err(StoreError::NotFound))
    ));
    assert!(
        by_identifier("ancient@example.org").is_none(),
        "a year outside four digits is sqlx's to read"
    );
    assert!(inline_identity(None, identity_sql::by_identifier_text(), &[]).is_none());
    // The store itself, whichever way it reads.
    for (identifier, want) in [(second.as_str(), &odd), ("ancient@example.org", &ancient)] {
        let got = db
            .store
            .find_identity_by_identifier(credential_type::PASSWORD, identifier)
            .await
            .expect("found");
        assert_eq!(&got, want);
    }
    db.store.close().await;
}
