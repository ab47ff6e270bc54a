//! `sallyport import kratos`: a Kratos database built from Kratos' own schema and sample files
//! (`shared/reference/kratos/db`) plus generated rows, imported by the real binary into a running
//! server's database; then users log in, step up and keep their sessions through the HTTP API.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::both_backends;
use crate::cli::BIN;
use crate::support::client::{api, native_login, node, send};
use crate::support::mail::MailServer;
use crate::support::totp::now_code;
use crate::support::{Backend, TestServer, fixture};

const NID: &str = "884f556e-eb3a-4b9f-bee3-11345642c6c0";
const COOKIE_SECRET: &str = "a-very-secret-cookie-secret-for-tests";
const TOTP_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const SESSION_ID: &str = "5e55a000-0000-4000-8000-000000000001";
const TOTP_IDENTITY: &str = "1d000000-0000-4000-8000-0000000000f1";
const LOOKUP_IDENTITY: &str = "1d000000-0000-4000-8000-0000000000f2";

fn reference(file: &str) -> PathBuf {
    fixture("kratos-db").join(file)
}

/// Passwords hashed in every format the test covers: (email, password, hash). Vectors from
/// `sallyport-password`'s tests, which check them against Kratos' own.
const PASSWORDS: &[(&str, &str, &str)] = &[
    (
        "bcrypt@example.org",
        "test",
        "$2a$12$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL6",
    ),
    (
        "argon2id@example.org",
        "test",
        "$argon2id$v=19$m=32,t=2,p=4$cm94YnRVOW5jZzFzcVE4bQ$MNzk5BtR2vUhrp6qQEjRNw",
    ),
    (
        "pbkdf2@example.org",
        "test",
        "$pbkdf2-sha256$i=100000,l=32$1jP+5Zxpxgtee/iPxGgOz0RfE9/KJuDElP1ley4VxXc$QJxzfvdbHYBpydCbHoFg3GJEqMFULwskiuqiJctoYpI",
    ),
    (
        "scrypt@example.org",
        "test",
        "$scrypt$ln=16384,r=8,p=1$2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=$MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYE=",
    ),
    (
        "ssha@example.org",
        "test123",
        "{SSHA}JFZFs0oHzxbMwkSJmYVeI8MnTDy/276a",
    ),
    ("md5@example.org", "test", "$md5$CY9rzUYh03PK3k6DJie09g=="),
];

fn session_token() -> String {
    format!("ory_st_{:0<32}", "kratosimported")
}

#[derive(Clone, Copy, PartialEq)]
pub enum Source {
    Sqlite,
    Postgres,
    /// MySQL or MariaDB at `TEST_MYSQL_DSN` (`mysql://user:password@host:port`, no database).
    Mysql,
}

/// A throwaway Kratos database: Kratos' schema, its sample rows and the generated ones.
pub struct KratosDb {
    pub dsn: String,
    pub kind: Source,
    _dir: Option<tempfile::TempDir>,
    _pg: Option<crate::support::TestDb>,
}

impl KratosDb {
    pub async fn new(kind: Source) -> KratosDb {
        let (schema, sample) = match kind {
            Source::Sqlite => ("sqlite.schema.sql", "sqlite.sample.sql"),
            Source::Postgres => ("postgres.schema.sql", "postgres.sample.sql"),
            Source::Mysql => ("mysql.schema.sql", "mysql.sample.sql"),
        };
        let db = match kind {
            Source::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let dsn = format!("sqlite://{}", dir.path().join("kratos.sqlite").display());
                KratosDb {
                    dsn,
                    kind,
                    _dir: Some(dir),
                    _pg: None,
                }
            }
            Source::Postgres => {
                let pg = crate::support::TestDb::new(Backend::Postgres).await;
                KratosDb {
                    dsn: pg.dsn.clone(),
                    kind,
                    _dir: None,
                    _pg: Some(pg),
                }
            }
            Source::Mysql => {
                let base = std::env::var("TEST_MYSQL_DSN").expect("TEST_MYSQL_DSN");
                let base = base.trim_end_matches('/').to_owned();
                let name = format!("kratos_{}", uuid::Uuid::new_v4().simple());
                let mut c = <sqlx::MySqlConnection as sqlx::Connection>::connect(&base)
                    .await
                    .unwrap();
                sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
                    .execute(&mut c)
                    .await
                    .unwrap();
                KratosDb {
                    dsn: format!("{base}/{name}"),
                    kind,
                    _dir: None,
                    _pg: None,
                }
            }
        };
        let schema = std::fs::read_to_string(reference(schema)).unwrap();
        let sample = std::fs::read_to_string(reference(sample)).unwrap();
        let script = match kind {
            Source::Sqlite => format!("{schema}\nPRAGMA foreign_keys=ON;\n{sample}"),
            Source::Postgres | Source::Mysql => format!("{schema}\n{sample}"),
        };
        db.exec(&script).await;
        db.exec(&generated_rows()).await;
        db
    }

    pub async fn exec(&self, sql: &str) {
        match self.kind {
            Source::Sqlite => {
                let opts: sqlx::sqlite::SqliteConnectOptions = self
                    .dsn
                    .parse::<sqlx::sqlite::SqliteConnectOptions>()
                    .unwrap()
                    .create_if_missing(true);
                let mut c = sqlx::ConnectOptions::connect(&opts).await.unwrap();
                sqlx::raw_sql(sql)
                    .execute(&mut c as &mut sqlx::SqliteConnection)
                    .await
                    .unwrap();
            }
            Source::Postgres => {
                let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&self.dsn)
                    .await
                    .unwrap();
                sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
            }
            Source::Mysql => {
                let mut c = <sqlx::MySqlConnection as sqlx::Connection>::connect(&self.dsn)
                    .await
                    .unwrap();
                sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
            }
        }
    }
}

fn identity_sql(id: &str, email: &str, updated: &str) -> String {
    format!(
        "INSERT INTO identities (id, nid, schema_id, traits, state, created_at, updated_at) VALUES \
         ('{id}', '{NID}', 'default', '{{\"email\":\"{email}\"}}', 'active', '2025-01-01 10:00:00', '{updated}');\n\
         INSERT INTO identity_verifiable_addresses (id, nid, identity_id, via, value, verified, status, verified_at, created_at, updated_at) VALUES \
         ('{}', '{NID}', '{id}', 'email', '{email}', true, 'completed', '2025-01-01 10:05:00', '2025-01-01 10:00:00', '2025-01-01 10:00:00');\n\
         INSERT INTO identity_recovery_addresses (id, nid, identity_id, via, value, created_at, updated_at) VALUES \
         ('{}', '{NID}', '{id}', 'email', '{email}', '2025-01-01 10:00:00', '2025-01-01 10:00:00');\n",
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4()
    )
}

fn credential_sql(identity: &str, kind: &str, config: &Value, identifier: &str) -> String {
    let cred = uuid::Uuid::new_v4();
    let config = config.to_string().replace('\'', "''");
    format!(
        "INSERT INTO identity_credentials (id, nid, identity_id, identity_credential_type_id, config, version, created_at, updated_at) VALUES \
         ('{cred}', '{NID}', '{identity}', (SELECT id FROM identity_credential_types WHERE name = '{kind}'), '{config}', 0, '2025-01-01 10:00:00', '2025-01-01 10:00:00');\n\
         INSERT INTO identity_credential_identifiers (id, nid, identity_id, identity_credential_id, identity_credential_type_id, identifier, created_at, updated_at) VALUES \
         ('{}', '{NID}', '{identity}', '{cred}', (SELECT id FROM identity_credential_types WHERE name = '{kind}'), '{identifier}', '2025-01-01 10:00:00', '2025-01-01 10:00:00');\n",
        uuid::Uuid::new_v4()
    )
}

/// Identities with each hash format, a TOTP and a lookup-secret user, a live session with a known
/// token, and two courier messages (one queued, one already sent).
fn generated_rows() -> String {
    let mut sql = String::new();
    for (i, (email, _, hash)) in PASSWORDS.iter().enumerate() {
        let id = format!("1d000000-0000-4000-8000-00000000000{i}");
        sql += &identity_sql(&id, email, "2025-01-01 10:00:00");
        // Version-0 credentials from old Kratos versions may hold identifiers as typed; Kratos
        // normalises them when it reads them, and so does the import.
        let identifier = if email.starts_with("ssha") {
            email.to_uppercase()
        } else {
            email.to_string()
        };
        sql += &credential_sql(&id, "password", &json!({"hashed_password": hash}), &identifier);
    }
    let bcrypt = PASSWORDS[0].2;
    sql += &identity_sql(TOTP_IDENTITY, "totp@example.org", "2025-01-01 10:00:00");
    sql += &credential_sql(
        TOTP_IDENTITY,
        "password",
        &json!({"hashed_password": bcrypt}),
        "totp@example.org",
    );
    let url = format!(
        "otpauth://totp/Kratos:totp@example.org?algorithm=SHA1&digits=6&issuer=Kratos&period=30&secret={TOTP_SECRET}"
    );
    sql += &credential_sql(TOTP_IDENTITY, "totp", &json!({"totp_url": url}), TOTP_IDENTITY);
    sql += &identity_sql(LOOKUP_IDENTITY, "lookup@example.org", "2025-01-01 10:00:00");
    sql += &credential_sql(
        LOOKUP_IDENTITY,
        "password",
        &json!({"hashed_password": bcrypt}),
        "lookup@example.org",
    );
    let codes = json!({"recovery_codes": [
        {"code": "usedcode", "used_at": "2025-02-01T10:00:00Z"},
        {"code": "abcd2345", "used_at": null},
        {"code": "zz99yy88", "used_at": null}
    ]});
    sql += &credential_sql(LOOKUP_IDENTITY, "lookup_secret", &codes, LOOKUP_IDENTITY);
    let owner = "1d000000-0000-4000-8000-000000000000";
    sql += &format!(
        "INSERT INTO sessions (id, nid, identity_id, token, logout_token, active, issued_at, expires_at, authenticated_at, aal, authentication_methods, created_at, updated_at) VALUES \
         ('{SESSION_ID}', '{NID}', '{owner}', '{}', 'ory_lo_{:0<32}', true, '2025-06-01 10:00:00', '2099-01-01 00:00:00', '2025-06-01 10:00:00', 'aal1', \
         '[{{\"method\":\"password\",\"aal\":\"aal1\",\"completed_at\":\"2025-06-01T10:00:00Z\"}}]', '2025-06-01 10:00:00', '2025-06-01 10:00:00');\n\
         INSERT INTO session_devices (id, nid, session_id, identity_id, ip_address, user_agent, location, created_at, updated_at) VALUES \
         ('{}', '{NID}', '{SESSION_ID}', '{owner}', '192.0.2.7', 'KratosApp/1.0', 'Berlin, DE', '2025-06-01 10:00:00', '2025-06-01 10:00:00');\n",
        session_token(),
        "kratosimported",
        uuid::Uuid::new_v4()
    );
    for (status, to) in [(1, "pending@example.org"), (2, "already-sent@example.org")] {
        sql += &format!(
            "INSERT INTO courier_messages (id, nid, type, status, recipient, subject, body, template_type, channel, send_count, created_at, updated_at) VALUES \
             ('{}', '{NID}', 1, {status}, '{to}', 'Your code', 'Your code is 424242', 'login_code_valid', 'email', 0, '2025-06-01 10:00:00', '2025-06-01 10:00:00');\n",
            uuid::Uuid::new_v4()
        );
    }
    sql
}

/// The config the import reads: the server's database and the same schemas and secrets.
fn write_config(dir: &Path, dsn: &str) -> PathBuf {
    let schema = fixture("email-password.schema.json");
    let cfg = json!({
        "dsn": dsn,
        "selfservice": {"default_browser_return_url": "http://app.test/welcome"},
        "identity": {"default_schema_id": "default", "schemas": [{"id": "default", "url": format!("file://{}", schema.display())}]},
        "secrets": {"cookie": [COOKIE_SECRET]},
    });
    let path = dir.join("kratos.json");
    std::fs::write(&path, cfg.to_string()).unwrap();
    path
}

pub async fn import(from: &str, config: &Path, extra: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(BIN)
        .args(["import", "kratos", "--from", from, "-c"])
        .arg(config)
        .args(extra)
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn server(target: Backend, mail: &MailServer) -> TestServer {
    TestServer::spawn_with(
        target,
        mail.config(json!({
            "selfservice": {"methods": {"totp": {"enabled": true, "config": {"issuer": "Kratos"}}, "lookup_secret": {"enabled": true}}},
            "session": {"whoami": {"required_aal": "aal1"}},
        })),
    )
    .await
}

/// A second-factor step-up on a native session; returns the answer.
async fn step_up(s: &TestServer, token: &str, payload: Value) -> (reqwest::StatusCode, Value) {
    let (_, flow) = send(
        api()
            .get(s.public_url("self-service/login/api?aal=aal2"))
            .header("X-Session-Token", token),
    )
    .await;
    send(
        api()
            .post(flow["ui"]["action"].as_str().unwrap())
            .header("X-Session-Token", token)
            .json(&payload),
    )
    .await
}

async fn takeover(target: Backend, source: Source) {
    let mail = MailServer::start().await;
    let s = server(target, &mail).await;
    let kratos = KratosDb::new(source).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), s.dsn());

    let (ok, out, err) = import(&kratos.dsn, &cfg, &["--dry-run"]).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("would import"), "{out}");
    assert!(
        err.contains("schema version 20260703000000000000: supported"),
        "{err}"
    );
    let (_, list) = send(api().get(s.admin_url("admin/identities"))).await;
    assert_eq!(list.as_array().unwrap().len(), 0, "a dry run writes nothing");

    let (ok, out, err) = import(&kratos.dsn, &cfg, &[]).await;
    assert!(ok, "{out}{err}");
    // 12 sample identities + 8 generated, 7 sample sessions + 1, 8 sample messages + 2.
    assert_eq!(
        counts(&out, "identities (with credentials, addresses)"),
        (20, 20, 0),
        "{out}"
    );
    assert_eq!(counts(&out, "sessions (with devices)"), (8, 8, 0), "{out}");

    // Every hash format: the same password logs in.
    for (email, password, _) in PASSWORDS {
        let (st, v) = native_login(&s, email, password).await;
        assert_eq!(st, 200, "{email}: {v}");
        assert_eq!(v["session"]["identity"]["traits"]["email"], *email);
        let (st, _) = native_login(&s, email, "wrong-password").await;
        assert_eq!(st, 400, "{email} with a wrong password");
    }
    // Addresses keep their verification status.
    let (_, who) = native_login(&s, PASSWORDS[0].0, PASSWORDS[0].1).await;
    let addr = &who["session"]["identity"]["verifiable_addresses"][0];
    assert_eq!(
        (addr["verified"].as_bool(), addr["status"].as_str()),
        (Some(true), Some("completed"))
    );

    // TOTP as second factor with the secret Kratos stored.
    let (st, first) = native_login(&s, "totp@example.org", "test").await;
    assert_eq!(st, 200, "{first}");
    let token = first["session_token"].as_str().unwrap().to_owned();
    let (st, bad) = step_up(&s, &token, json!({"method": "totp", "totp_code": "000000"})).await;
    assert_eq!(st, 400, "{bad}");
    let (st, ok) = step_up(
        &s,
        &token,
        json!({"method": "totp", "totp_code": now_code(TOTP_SECRET)}),
    )
    .await;
    assert_eq!(st, 200, "{ok}");
    assert_eq!(ok["session"]["authenticator_assurance_level"], "aal2");

    // Lookup secrets: unused codes work once, the one Kratos marked used does not.
    let (_, first) = native_login(&s, "lookup@example.org", "test").await;
    let token = first["session_token"].as_str().unwrap().to_owned();
    let (st, used) = step_up(
        &s,
        &token,
        json!({"method": "lookup_secret", "lookup_secret": "usedcode"}),
    )
    .await;
    assert_eq!(st, 400);
    // Kratos shows it on the field or, in newer versions, on the flow.
    let field = &node(&used, "lookup_secret").unwrap()["messages"][0]["id"];
    assert!(
        field == 4000012 || used["ui"]["messages"][0]["id"] == 4000012,
        "{used}"
    );
    let (st, ok) = step_up(
        &s,
        &token,
        json!({"method": "lookup_secret", "lookup_secret": "abcd2345"}),
    )
    .await;
    assert_eq!(st, 200, "{ok}");
    assert_eq!(ok["session"]["authenticator_assurance_level"], "aal2");
    let (_, stored) = send(api().get(s.admin_url(&format!(
        "admin/identities/{LOOKUP_IDENTITY}?include_credential=lookup_secret"
    ))))
    .await;
    assert!(
        !stored.to_string().contains("zz99yy88"),
        "lookup codes are not kept in plain text"
    );
    let entries = stored["credentials"]["lookup_secret"]["config"]["recovery_codes"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(entries.len(), 3);
    assert!(
        entries
            .iter()
            .all(|e| e["code_hash"].is_string() && e["sealed"].is_string()),
        "{stored}"
    );
    assert_eq!(entries[0]["used_at"], "2025-02-01T10:00:00Z");

    // The Kratos session token keeps working: whoami, admin listing (with its device), logout.
    let (st, me) = send(
        api()
            .get(s.public_url("sessions/whoami"))
            .header("X-Session-Token", session_token()),
    )
    .await;
    assert_eq!(st, 200, "{me}");
    assert_eq!(me["id"], SESSION_ID);
    assert_eq!(me["authentication_methods"][0]["method"], "password");
    let (st, settings) = send(
        api()
            .get(s.public_url("self-service/settings/api"))
            .header("X-Session-Token", session_token()),
    )
    .await;
    assert_eq!(st, 200, "{settings}");
    assert_eq!(settings["identity"]["id"], "1d000000-0000-4000-8000-000000000000");
    let (st, list) =
        send(api().get(s.admin_url("admin/identities/1d000000-0000-4000-8000-000000000000/sessions"))).await;
    assert_eq!(st, 200, "{list}");
    let imported = list
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == SESSION_ID)
        .unwrap_or_else(|| panic!("imported session listed: {list}"));
    assert_eq!(imported["devices"][0]["ip_address"], "192.0.2.7");
    assert_eq!(imported["devices"][0]["user_agent"], "KratosApp/1.0");
    assert_eq!(imported["authenticator_assurance_level"], "aal1");

    // Pending mail is delivered once; the mail Kratos already sent is not sent again.
    let got = mail.next_to("pending@example.org").await;
    assert!(got.data.contains("424242"), "{}", got.data);

    // A rerun copies only what changed: nothing, so the mail is not queued again.
    let (ok, out, err) = import(&kratos.dsn, &cfg, &[]).await;
    assert!(ok, "{out}{err}");
    assert!(err.contains("since"), "the second run is incremental: {err}");
    assert_eq!(
        counts(&out, "identities (with credentials, addresses)"),
        (0, 0, 0),
        "{out}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let to = |who: &str| {
        mail.sink
            .messages()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t == who))
            .count()
    };
    assert_eq!(to("pending@example.org"), 1, "delivered once");
    assert_eq!(to("already-sent@example.org"), 0, "sent by Kratos already");

    // A change in Kratos after the bulk copy reaches Sallyport in the next run.
    kratos
        .exec(
            "UPDATE identities SET traits = '{\"email\":\"bcrypt-renamed@example.org\"}', updated_at = '2099-01-01 00:00:00' \
             WHERE id = '1d000000-0000-4000-8000-000000000000'",
        )
        .await;
    let (ok, out, err) = import(&kratos.dsn, &cfg, &[]).await;
    assert!(ok, "{out}{err}");
    assert_eq!(
        counts(&out, "identities (with credentials, addresses)"),
        (1, 1, 0),
        "{out}"
    );
    // Read through a store of its own: a running SQLite server caches reads and only learns of
    // another process's writes when restarted (docs/migrate-from-kratos.md says so).
    let fresh = sallyport::server::open_store(s.dsn()).await.unwrap();
    let i = fresh
        .get_identity("1d000000-0000-4000-8000-000000000000".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(i.traits["email"], "bcrypt-renamed@example.org");
    if target == Backend::Postgres {
        let (_, i) =
            send(api().get(s.admin_url("admin/identities/1d000000-0000-4000-8000-000000000000"))).await;
        assert_eq!(i["traits"]["email"], "bcrypt-renamed@example.org");
    }
    // Its sessions survive the identity's replacement.
    let (st, _) = send(
        api()
            .get(s.public_url("sessions/whoami"))
            .header("X-Session-Token", session_token()),
    )
    .await;
    assert_eq!(st, 200);

    // The final sync with --prune removes what Kratos deleted after the bulk copy.
    kratos
        .exec(
            "DELETE FROM identities WHERE id = '1d000000-0000-4000-8000-000000000005'; \
             DELETE FROM sessions WHERE id = '63a74500-c294-4cdd-a381-0bdffc398196'",
        )
        .await;
    let (ok, out, err) = import(&kratos.dsn, &cfg, &[]).await;
    assert!(ok, "{out}{err}");
    assert!(
        err.contains("1 identities exist in Sallyport but no longer in Kratos; rerun with --prune"),
        "{err}"
    );
    assert_eq!(counts(&out, "identities gone from Kratos"), (1, 0, 0), "{out}");
    let (ok, out, err) = import(&kratos.dsn, &cfg, &["--prune"]).await;
    assert!(ok, "{out}{err}");
    assert_eq!(counts(&out, "identities gone from Kratos"), (1, 1, 0), "{out}");
    assert_eq!(counts(&out, "sessions gone from Kratos"), (1, 1, 0), "{out}");
    let (st, _) = native_login(&s, "md5@example.org", "test").await;
    assert_eq!(st, 400, "a user deleted in Kratos cannot log in");
    let (st, _) = send(api().get(s.admin_url("admin/sessions/63a74500-c294-4cdd-a381-0bdffc398196"))).await;
    assert_eq!(st, 404, "a session Kratos deleted is gone");

    // Logout with the Kratos token ends the imported session.
    let (st, _) = send(
        api()
            .delete(s.public_url("self-service/logout/api"))
            .json(&json!({"session_token": session_token()})),
    )
    .await;
    assert_eq!(st, 204);
    let (st, _) = send(
        api()
            .get(s.public_url("sessions/whoami"))
            .header("X-Session-Token", session_token()),
    )
    .await;
    assert_eq!(st, 401);
    s.shutdown().await;
}

both_backends!(takeover_from_sqlite, |b| takeover(b, Source::Sqlite));

mod takeover_from_postgres {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn into_sqlite() {
        if std::env::var("TEST_POSTGRES_DSN").is_err() {
            eprintln!("skipped: TEST_POSTGRES_DSN is not set");
            return;
        }
        takeover(Backend::Sqlite, Source::Postgres).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn into_postgres() {
        if std::env::var("TEST_POSTGRES_DSN").is_err() {
            eprintln!("skipped: TEST_POSTGRES_DSN is not set");
            return;
        }
        takeover(Backend::Postgres, Source::Postgres).await;
    }
}

/// Kratos on MySQL/MariaDB (CI starts MariaDB; `TEST_MYSQL_DSN` names the server).
mod takeover_from_mysql {
    use super::*;

    fn available() -> bool {
        if std::env::var("TEST_MYSQL_DSN").is_ok() {
            return true;
        }
        assert!(std::env::var("CI").is_err(), "CI must set TEST_MYSQL_DSN");
        eprintln!("skipped: TEST_MYSQL_DSN is not set");
        false
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn into_sqlite() {
        if available() {
            takeover(Backend::Sqlite, Source::Mysql).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn into_postgres() {
        if available() && std::env::var("TEST_POSTGRES_DSN").is_ok() {
            takeover(Backend::Postgres, Source::Mysql).await;
        }
    }
}

/// (read, imported, rejected) of a table in the import's summary.
fn counts(out: &str, table: &str) -> (u64, u64, u64) {
    let line = out
        .lines()
        .find(|l| l.starts_with(table))
        .unwrap_or_else(|| panic!("no line for {table}: {out}"));
    let n: Vec<u64> = line[table.len()..]
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    (n[0], n[1], n[2])
}

/// Identities in the target, read through a store of its own.
async fn identity_count(dsn: &str) -> u64 {
    let store = sallyport::server::open_store(dsn).await.unwrap();
    store.count_identities().await.unwrap()
}

async fn refusals(target: Backend) {
    let mail = MailServer::start().await;
    let s = server(target, &mail).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), s.dsn());

    // A Kratos newer than the importer knows: refused before anything is read, naming what it reads.
    let kratos = KratosDb::new(Source::Sqlite).await;
    kratos
        .exec("INSERT INTO schema_migration (version) VALUES ('20990101000000000000')")
        .await;
    let (ok, out, err) = import(&kratos.dsn, &cfg, &[]).await;
    assert!(!ok, "{out}");
    assert!(
        err.contains("schema version 20990101000000000000, newer than this importer knows")
            && err.contains("up to 20260703000000000000"),
        "{err}"
    );
    // Not a Kratos database at all.
    let other = dir.path().join("other.sqlite");
    std::fs::File::create(&other).unwrap();
    let (ok, _, err) = import(&format!("sqlite://{}", other.display()), &cfg, &[]).await;
    assert!(!ok);
    assert!(err.contains("not a Kratos database"), "{err}");

    // Identity schemas missing from the config: every missing id listed, nothing written.
    let kratos = KratosDb::new(Source::Sqlite).await;
    kratos
        .exec(
            "UPDATE identities SET schema_id = 'customer' WHERE id = '1d000000-0000-4000-8000-000000000001'; \
             UPDATE identities SET schema_id = 'employee' WHERE id = '1d000000-0000-4000-8000-000000000002'",
        )
        .await;
    let (ok, out, err) = import(&kratos.dsn, &cfg, &[]).await;
    assert!(!ok, "{out}");
    assert!(
        err.contains("missing from the config's identity.schemas: customer, employee"),
        "{err}"
    );
    assert_eq!(identity_count(s.dsn()).await, 0, "nothing written");
    // The dry run lists them per row instead.
    let (ok, out, err) = import(&kratos.dsn, &cfg, &["--dry-run"]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("1d000000-0000-4000-8000-000000000001: identity schema \"customer\" is not in the config's identity.schemas"),
        "{out}"
    );

    // Corrupt credential rows: the dry run names each and why; the real run imports everyone else
    // and leaves those identities out whole (no identity without its password).
    let kratos = KratosDb::new(Source::Sqlite).await;
    kratos
        .exec(
            "UPDATE identity_credentials SET config = '{\"hashed_password\":\"$rot13$abc\"}' \
               WHERE identity_id = '1d000000-0000-4000-8000-000000000003' \
               AND identity_credential_type_id = (SELECT id FROM identity_credential_types WHERE name = 'password'); \
             UPDATE identity_credentials SET config = '{\"totp_url\": ' \
               WHERE identity_id = '1d000000-0000-4000-8000-0000000000f1' \
               AND identity_credential_type_id = (SELECT id FROM identity_credential_types WHERE name = 'totp')",
        )
        .await;
    let (ok, out, err) = import(&kratos.dsn, &cfg, &["--dry-run"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("Rejected rows (2):"), "{out}");
    assert!(
        out.contains("identities (with credentials, addresses) 1d000000-0000-4000-8000-000000000003: password credential")
            && out.contains("unknown or broken password hash format"),
        "{out}"
    );
    assert!(
        out.contains("1d000000-0000-4000-8000-0000000000f1: config of the totp credential"),
        "{out}"
    );
    assert!(out.contains("is not valid JSON"), "{out}");
    let (ok, out, err) = import(&kratos.dsn, &cfg, &[]).await;
    assert!(ok, "{err}");
    assert_eq!(
        counts(&out, "identities (with credentials, addresses)"),
        (20, 18, 2),
        "{out}"
    );
    let store = sallyport::server::open_store(s.dsn()).await.unwrap();
    assert!(
        store
            .get_identity("1d000000-0000-4000-8000-000000000003".parse().unwrap())
            .await
            .is_err(),
        "the identity with the corrupt credential is not half-written"
    );
    assert!(err.contains("Some rows were rejected"), "{err}");

    // A second import while one runs is refused. A running import holds the lock row and renews
    // its heartbeat with every batch; this one was renewed just now.
    store
        .acquire_import_lock(
            "4242:another-run",
            time::OffsetDateTime::now_utc(),
            time::OffsetDateTime::UNIX_EPOCH,
        )
        .await
        .unwrap();
    let (ok, out, err) = import(&kratos.dsn, &cfg, &[]).await;
    assert!(!ok, "{out}");
    assert!(
        err.contains("another import into this Sallyport database is running"),
        "{err}"
    );
    // Once its heartbeat is older than two minutes (the run died), the lock is taken over.
    store.release_import_lock("4242:another-run").await.unwrap();
    store
        .acquire_import_lock(
            "4242:another-run",
            time::OffsetDateTime::now_utc() - time::Duration::minutes(3),
            time::OffsetDateTime::UNIX_EPOCH,
        )
        .await
        .unwrap();
    let (ok, out, err) = import(&kratos.dsn, &cfg, &[]).await;
    assert!(ok, "{out}{err}");
    s.shutdown().await;
}

both_backends!(refuses_what_it_cannot_take, refusals);

// kill -9 in the middle of a run loses nothing: each batch is one transaction, the watermark moves only
// after a clean run, and the rerun takes over the dead run's lock at once (same machine, process gone)
// and copies everything.
async fn crash(target: Backend) {
    const N: usize = 6000;
    let mail = MailServer::start().await;
    let s = server(target, &mail).await;
    let kratos = KratosDb::new(Source::Sqlite).await;
    let mut sql = String::from("BEGIN;\n");
    for i in 0..N {
        let id = format!("2c000000-0000-4000-8000-{i:012}");
        sql += &identity_sql(&id, &format!("bulk{i}@example.org"), "2025-01-01 10:00:00");
    }
    sql += "COMMIT;\n";
    kratos.exec(&sql).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), s.dsn());
    let store = sallyport::server::open_store(s.dsn()).await.unwrap();

    let mut run = tokio::process::Command::new(BIN)
        .args(["import", "kratos", "--from", &kratos.dsn, "-c"])
        .arg(&cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        if store.count_identities().await.unwrap() > 0 {
            break;
        }
        assert!(
            run.try_wait().unwrap().is_none(),
            "the import ended before a batch was seen"
        );
        assert!(std::time::Instant::now() < deadline, "no batch within 120 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    run.start_kill().unwrap();
    run.wait().await.unwrap();
    let partial = store.count_identities().await.unwrap();
    let total = (N + 20) as u64;
    assert!(
        partial > 0 && partial < total,
        "killed mid-run: {partial} of {total} copied (raise N if the run finished first)"
    );

    let (ok, out, err) = import(&kratos.dsn, &cfg, &[]).await;
    assert!(ok, "{out}{err}");
    assert!(
        err.contains("taking over the lock of an import that died"),
        "{err}"
    );
    assert_eq!(
        counts(&out, "identities (with credentials, addresses)"),
        (total, total, 0),
        "{out}"
    );
    let fresh = sallyport::server::open_store(s.dsn()).await.unwrap();
    assert_eq!(fresh.count_identities().await.unwrap(), total);
    let last = fresh
        .get_identity(format!("2c000000-0000-4000-8000-{:012}", N - 1).parse().unwrap())
        .await
        .unwrap();
    assert_eq!(
        last.verifiable_addresses.len(),
        1,
        "whole identities, addresses included"
    );
    assert_eq!(last.recovery_addresses.len(), 1);
    s.shutdown().await;
}

both_backends!(a_killed_import_is_completed_by_the_next_run, crash);

/// `docs/migrate-from-kratos.md` is run as written: its `sh run` blocks, in order, in one shell, with the
/// real binary on `PATH`, `$KRATOS_DSN` naming a Kratos SQLite database built as above and `kratos.yml`
/// pointing at a new Sallyport database on free ports (the doc's 4433/4434 are rewritten to them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_guide_runs() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/migrate-from-kratos.md");
    let md = std::fs::read_to_string(&path).unwrap();
    let guide = crate::guides::parse("docs/migrate-from-kratos.md", &md).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(guide.setup.as_deref(), Some("kratos-import"));
    assert!(
        guide.blocks.len() >= 10,
        "the walkthrough lost its runnable steps: {} blocks",
        guide.blocks.len()
    );
    let kratos = KratosDb::new(Source::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let (public, admin) = (crate::cli::free_port(), crate::cli::free_port());
    let dsn = format!(
        "sqlite://{}?_fk=true&mode=rwc",
        dir.path().join("sallyport.sqlite").display()
    );
    crate::cli::write_config(dir.path(), &dsn, public, admin);
    let bin_dir = Path::new(BIN).parent().unwrap().display().to_string();
    let env = [
        ("KRATOS_DSN", kratos.dsn.clone()),
        (
            "PATH",
            format!("{bin_dir}:{}", std::env::var("PATH").unwrap_or_default()),
        ),
    ];
    let ran = crate::guides::run_blocks(
        "docs/migrate-from-kratos.md",
        &guide,
        (
            &format!("http://127.0.0.1:{public}"),
            &format!("http://127.0.0.1:{admin}"),
        ),
        dir.path(),
        &env,
    )
    .await;
    if let Err(e) = ran {
        let log = std::fs::read_to_string(dir.path().join("sallyport.log")).unwrap_or_default();
        panic!(
            "{e}\n(sallyport.log tail: {})",
            log.chars()
                .rev()
                .take(2000)
                .collect::<String>()
                .chars()
                .rev()
                .collect::<String>()
        );
    }
}
