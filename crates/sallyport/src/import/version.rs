//! Which Kratos schemas the importer reads. Kratos records each applied migration in
//! `schema_migration` (versions are 20-digit timestamps, compared as strings like popx does).

use anyhow::bail;

use super::convert;
use super::source::KratosSource;

/// The newest migration of the Kratos schema this importer was built and tested against
/// (Kratos `v26.2.0-202-gb86338da0`). A newer database may have moved columns: refused.
pub const NEWEST_KNOWN_VERSION: &str = "20260703000000000000";
/// Older schemas are read if they have every column the importer reads (checked, see `check`);
/// this is the oldest version whose schema is known to have them all (Kratos' 2025-11 migration
/// that made `identity_credential_identifiers.identity_id` NOT NULL).
pub const OLDEST_KNOWN_VERSION: &str = "20251105000000000002";

/// Returns the database's schema version, or why the importer cannot read it.
pub async fn check(src: &dyn KratosSource) -> anyhow::Result<String> {
    let understood = format!(
        "this importer reads Kratos schemas from migration {OLDEST_KNOWN_VERSION} up to \
         {NEWEST_KNOWN_VERSION} (Kratos v26.2)"
    );
    let rows = match src.rows("SELECT version FROM schema_migration", &[]).await {
        Ok(rows) => rows,
        Err(e) => bail!("not a Kratos database: cannot read its schema_migration table ({e}); {understood}"),
    };
    let versions: Vec<String> = rows
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect();
    if let Some(bad) = versions
        .iter()
        .find(|v| v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()))
    {
        bail!("unknown Kratos schema version {bad:?} in schema_migration; {understood}");
    }
    let Some(newest) = versions.into_iter().max() else {
        bail!("the Kratos database has no applied migrations (schema_migration is empty); {understood}");
    };
    if newest.as_str() > NEWEST_KNOWN_VERSION {
        bail!(
            "the Kratos database is at schema version {newest}, newer than this importer knows; {understood}. \
             Use a Sallyport release that knows this Kratos version"
        );
    }
    for (table, columns) in [
        ("identities", convert::IDENTITY_COLUMNS),
        (
            "identity_credential_identifiers",
            &["identity_credential_id", "identifier", "identity_id", "nid"][..],
        ),
        ("identity_verifiable_addresses", convert::VERIFIABLE_COLUMNS),
        ("identity_recovery_addresses", convert::RECOVERY_COLUMNS),
        ("sessions", convert::SESSION_COLUMNS),
        ("session_devices", convert::DEVICE_COLUMNS),
        ("courier_messages", convert::MESSAGE_COLUMNS),
    ] {
        let sql = format!("SELECT {} FROM {table} WHERE 1 = 0", columns.join(", "));
        if let Err(e) = src.rows(&sql, &[]).await {
            bail!(
                "the Kratos database at schema version {newest} lacks columns the importer reads ({table}: {e}); \
                 {understood}. Upgrade Kratos and run its migrations first"
            );
        }
    }
    Ok(newest)
}
