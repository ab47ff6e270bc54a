//! Kratos rows (every column as text) to Sallyport's domain values. Each function answers a
//! reason when the row cannot be taken; the caller reports it and skips the row.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};
use uuid::Uuid;

use sallyport_core::courier::{Message, MessageStatus, MessageType};
use sallyport_core::identity::{
    Credential, Identity, IdentityState, RecoveryAddress, VerifiableAddress, credential_type,
};
use sallyport_core::session::{Aal, AuthenticationMethod, Device, Session};

use super::source::TextRow;

/// Why a row was not taken.
pub type Reject = String;

/// The columns each query selects, in this order; the converters index rows by them.
pub const IDENTITY_COLUMNS: &[&str] = &[
    "id",
    "schema_id",
    "traits",
    "state",
    "state_changed_at",
    "metadata_public",
    "metadata_admin",
    "external_id",
    "organization_id",
    "available_aal",
    "created_at",
    "updated_at",
];
pub const CREDENTIAL_COLUMNS: &[&str] = &[
    "c.id",
    "c.identity_id",
    "t.name",
    "c.config",
    "c.version",
    "c.created_at",
    "c.updated_at",
];
pub const VERIFIABLE_COLUMNS: &[&str] = &[
    "id",
    "identity_id",
    "via",
    "value",
    "verified",
    "status",
    "verified_at",
    "created_at",
    "updated_at",
];
pub const RECOVERY_COLUMNS: &[&str] = &["id", "identity_id", "via", "value", "created_at", "updated_at"];
pub const SESSION_COLUMNS: &[&str] = &[
    "id",
    "identity_id",
    "token",
    "logout_token",
    "active",
    "expires_at",
    "authenticated_at",
    "issued_at",
    "aal",
    "authentication_methods",
    "created_at",
    "updated_at",
];
pub const DEVICE_COLUMNS: &[&str] = &["id", "session_id", "ip_address", "user_agent", "location"];
pub const MESSAGE_COLUMNS: &[&str] = &[
    "id",
    "type",
    "status",
    "recipient",
    "subject",
    "body",
    "template_type",
    "template_data",
    "channel",
    "send_count",
    "created_at",
    "updated_at",
];

fn col<'r>(row: &'r TextRow, i: usize, name: &str) -> Result<&'r str, Reject> {
    row.get(i)
        .and_then(|v| v.as_deref())
        .ok_or_else(|| format!("{name} is NULL"))
}

fn opt(row: &TextRow, i: usize) -> Option<&str> {
    row.get(i).and_then(|v| v.as_deref())
}

pub fn uuid(s: &str, name: &str) -> Result<Uuid, Reject> {
    Uuid::parse_str(s.trim()).map_err(|_| format!("{name} {s:?} is not a UUID"))
}

fn json(s: &str, name: &str) -> Result<Value, Reject> {
    serde_json::from_str(s).map_err(|e| format!("{name} is not valid JSON ({e})"))
}

fn opt_json(s: Option<&str>, name: &str) -> Result<Option<Value>, Reject> {
    match s {
        None => Ok(None),
        Some(s) => match json(s, name)? {
            Value::Null => Ok(None),
            v => Ok(Some(v)),
        },
    }
}

pub fn boolean(s: &str) -> bool {
    matches!(s, "1" | "t" | "true" | "TRUE")
}

/// Reads every timestamp text Kratos' databases hold: `YYYY-MM-DD HH:MM:SS[.f…]` (UTC), with `T`
/// instead of the space, and with a `Z` or `±HH:MM` suffix.
pub fn timestamp(s: &str, name: &str) -> Result<OffsetDateTime, Reject> {
    let bad = || format!("{name} {s:?} is not a timestamp");
    let s = s.trim();
    if s.len() < 19 || !s.is_char_boundary(10) {
        return Err(bad());
    }
    let (mut body, mut offset) = (s, UtcOffset::UTC);
    if let Some(b) = body.strip_suffix('Z') {
        body = b;
    } else if body.len() > 19 && body.is_char_boundary(body.len() - 6) {
        let (b, tz) = body.split_at(body.len() - 6);
        let tz = tz.as_bytes();
        if (tz[0] == b'+' || tz[0] == b'-') && tz[3] == b':' {
            let h: i8 = std::str::from_utf8(&tz[1..3])
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or_else(bad)?;
            let m: i8 = std::str::from_utf8(&tz[4..6])
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or_else(bad)?;
            let sign = if tz[0] == b'-' { -1 } else { 1 };
            offset = UtcOffset::from_hms(sign * h, sign * m, 0).map_err(|_| bad())?;
            body = b;
        }
    }
    let normal = format!("{} {}", &body[..10], &body[11..]);
    let format =
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second][optional [.[subsecond]]]");
    let t = PrimitiveDateTime::parse(&normal, format).map_err(|_| bad())?;
    Ok(t.assume_offset(offset).to_offset(UtcOffset::UTC))
}

/// The text a source compares timestamps with (`newer`): UTC, microseconds.
pub fn timestamp_param(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:6]");
    t.format(format).unwrap_or_default()
}

/// What a credential import needs beyond the row.
pub struct CredentialRules<'a> {
    /// `secrets.cookie[0]`: the key Sallyport hashes lookup codes with.
    pub lookup_key: &'a str,
    /// `secrets.cipher[0]` (else `secrets.cookie[0]`): seals the codes so settings can reveal them.
    pub seal_secret: &'a str,
}

/// Kratos keeps lookup codes in plain text; Sallyport stores each as a keyed hash plus the code
/// sealed with `secrets.cipher` (as its own settings flow does), keeping which were used and when.
fn lookup_config(config: &Value, rules: &CredentialRules<'_>) -> Result<Value, Reject> {
    let entries = config
        .get("recovery_codes")
        .and_then(Value::as_array)
        .ok_or("no recovery_codes list")?;
    let mut codes = vec![];
    let mut used = vec![];
    for e in entries {
        let code = e
            .get("code")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .ok_or("a recovery code entry has no code")?;
        codes.push(code.to_owned());
        used.push(e.get("used_at").cloned().unwrap_or(Value::Null));
    }
    let mut sealed =
        sallyport_mfa::lookup_credential_config_sealed(&codes, rules.lookup_key, rules.seal_secret);
    if let Some(list) = sealed.get_mut("recovery_codes").and_then(Value::as_array_mut) {
        for (entry, used_at) in list.iter_mut().zip(used) {
            // Kratos writes the zero time for "unused" in some versions.
            let used_at = match used_at {
                Value::String(s) if s.starts_with("0001-01-01") => Value::Null,
                v => v,
            };
            entry["used_at"] = used_at;
        }
    }
    Ok(sealed)
}

/// The parts of one identity, as read.
#[derive(Default)]
pub struct Parts {
    pub credentials: Vec<TextRow>,
    pub identifiers: BTreeMap<String, Vec<String>>,
    pub verifiable: Vec<TextRow>,
    pub recovery: Vec<TextRow>,
}

pub fn identity(
    row: &TextRow,
    parts: &Parts,
    schemas: &HashSet<String>,
    rules: &CredentialRules<'_>,
) -> Result<Identity, Reject> {
    let id = uuid(col(row, 0, "id")?, "id")?;
    let schema_id = col(row, 1, "schema_id")?.to_owned();
    if !schemas.contains(&schema_id) {
        return Err(format!(
            "identity schema {schema_id:?} is not in the config's identity.schemas"
        ));
    }
    let traits = json(col(row, 2, "traits")?, "traits")?;
    let state_text = col(row, 3, "state")?;
    let state = IdentityState::parse(state_text).ok_or_else(|| format!("unknown state {state_text:?}"))?;
    let mut identity = Identity {
        id,
        schema_id,
        traits,
        state,
        state_changed_at: opt(row, 4)
            .map(|s| timestamp(s, "state_changed_at"))
            .transpose()?,
        metadata_public: opt_json(opt(row, 5), "metadata_public")?,
        metadata_admin: opt_json(opt(row, 6), "metadata_admin")?,
        external_id: opt(row, 7).filter(|s| !s.is_empty()).map(str::to_owned),
        organization_id: opt(row, 8).map(|s| uuid(s, "organization_id")).transpose()?,
        available_aal: Aal::Aal0,
        credentials: BTreeMap::new(),
        verifiable_addresses: vec![],
        recovery_addresses: vec![],
        created_at: timestamp(col(row, 10, "created_at")?, "created_at")?,
        updated_at: timestamp(col(row, 11, "updated_at")?, "updated_at")?,
    };
    for c in &parts.credentials {
        let cred = credential(c, parts, rules)?;
        // Kratos' model is a map by type, so a duplicate type is one credential; the newest wins.
        match identity.credentials.get(&cred.cred_type) {
            Some(old) if old.updated_at > cred.updated_at => {}
            _ => {
                identity.credentials.insert(cred.cred_type.clone(), cred);
            }
        }
    }
    for a in &parts.verifiable {
        identity.verifiable_addresses.push(VerifiableAddress {
            id: uuid(col(a, 0, "address id")?, "address id")?,
            via: col(a, 2, "via")?.to_owned(),
            value: col(a, 3, "value")?.to_owned(),
            verified: boolean(col(a, 4, "verified")?),
            status: col(a, 5, "status")?.to_owned(),
            verified_at: opt(a, 6).map(|s| timestamp(s, "verified_at")).transpose()?,
            created_at: timestamp(col(a, 7, "created_at")?, "created_at")?,
            updated_at: timestamp(col(a, 8, "updated_at")?, "updated_at")?,
        });
    }
    for a in &parts.recovery {
        identity.recovery_addresses.push(RecoveryAddress {
            id: uuid(col(a, 0, "address id")?, "address id")?,
            via: col(a, 2, "via")?.to_owned(),
            value: col(a, 3, "value")?.to_owned(),
            created_at: timestamp(col(a, 4, "created_at")?, "created_at")?,
            updated_at: timestamp(col(a, 5, "updated_at")?, "updated_at")?,
        });
    }
    identity.available_aal = match opt(row, 9).and_then(Aal::parse) {
        Some(aal) => aal,
        None => identity.compute_available_aal(false),
    };
    Ok(identity)
}

fn credential(row: &TextRow, parts: &Parts, rules: &CredentialRules<'_>) -> Result<Credential, Reject> {
    let id_text = col(row, 0, "credential id")?;
    let id = uuid(id_text, "credential id")?;
    let cred_type = col(row, 2, "credential type")?.to_owned();
    let what = format!("{cred_type} credential {id}");
    let mut config = json(col(row, 3, "config")?, &format!("config of the {what}"))?;
    match cred_type.as_str() {
        credential_type::PASSWORD => {
            let hash = config
                .get("hashed_password")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let hook = config.get("use_password_migration_hook") == Some(&Value::Bool(true));
            if hash.is_empty() && !hook {
                return Err(format!("{what} has no hashed_password"));
            }
            if !hash.is_empty() {
                sallyport_password::validate_encoded(hash)
                    .map_err(|e| format!("{what}: unknown or broken password hash format ({e})"))?;
            }
        }
        credential_type::TOTP => {
            let url = sallyport_mfa::totp_url_from_config(&config)
                .ok_or_else(|| format!("{what} has no totp_url"))?;
            sallyport_mfa::parse_totp_url(&url).map_err(|e| format!("{what}: bad totp_url ({e})"))?;
        }
        credential_type::LOOKUP_SECRET => {
            config = lookup_config(&config, rules).map_err(|e| format!("{what}: {e}"))?
        }
        _ => {}
    }
    let version = match opt(row, 4) {
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("{what}: version {v:?} is not a number"))?,
        None => 0,
    };
    let mut identifiers = parts.identifiers.get(id_text).cloned().unwrap_or_default();
    let mut version = version;
    if cred_type == credential_type::PASSWORD && version == 0 {
        // Kratos upgrades version-0 password credentials when it reads them: identifiers normalised
        // (lower-cased, trimmed, E.164 phones), version 1. Done here once, as Kratos would.
        let mut seen = HashSet::new();
        identifiers = identifiers
            .iter()
            .map(|i| sallyport_schema::normalize_identifier(i, None))
            .filter(|i| seen.insert(i.clone()))
            .collect();
        version = 1;
    }
    if cred_type == credential_type::WEBAUTHN && version == 0 {
        // Kratos' v0 → v1 upgrade on read: the user handle is the identity id's 16 bytes (what a
        // passwordless key returns at sign-in) and every key is a second factor.
        let identity = uuid(col(row, 1, "identity id")?, "identity id")?;
        upgrade_webauthn_v0(&mut config, identity);
        version = 1;
    }
    Ok(Credential {
        id,
        identifiers,
        cred_type,
        config,
        version,
        created_at: timestamp(col(row, 5, "created_at")?, "created_at")?,
        updated_at: timestamp(col(row, 6, "updated_at")?, "updated_at")?,
    })
}

fn upgrade_webauthn_v0(config: &mut Value, identity: Uuid) {
    use base64::Engine;
    if !config.is_object() {
        *config = serde_json::json!({});
    }
    if config
        .get("user_handle")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        config["user_handle"] =
            Value::String(base64::engine::general_purpose::STANDARD.encode(identity.as_bytes()));
    }
    if let Some(creds) = config.get_mut("credentials").and_then(Value::as_array_mut) {
        for c in creds.iter_mut().filter(|c| c.is_object()) {
            if c.get("is_passwordless").is_none() {
                c["is_passwordless"] = Value::Bool(false);
            }
        }
    }
}

/// A Kratos session: its tokens become digests, as Sallyport keeps its own.
pub fn session(row: &TextRow, devices: Vec<Device>) -> Result<Session, Reject> {
    let id = uuid(col(row, 0, "id")?, "id")?;
    let token = col(row, 2, "token").map_err(|_| "the session has no token".to_owned())?;
    if token.is_empty() {
        return Err("the session has an empty token".into());
    }
    // Kratos' migration gave old sessions logout_token = token; a NULL one can never be used.
    let logout_digest = match opt(row, 3).filter(|t| !t.is_empty()) {
        Some(t) => sallyport_core::secret::token_digest(t),
        None => {
            sallyport_core::secret::token_digest(&format!("{id}:{}", sallyport_core::secret::logout_token()))
        }
    };
    let authenticated_at = timestamp(col(row, 6, "authenticated_at")?, "authenticated_at")?;
    let aal_text = col(row, 8, "aal")?;
    let aal = Aal::parse(aal_text).ok_or_else(|| format!("unknown aal {aal_text:?}"))?;
    let amr = json(col(row, 9, "authentication_methods")?, "authentication_methods")?;
    let amr = amr
        .as_array()
        .ok_or("authentication_methods is not a list")?
        .iter()
        .map(|m| {
            let method = m
                .get("method")
                .and_then(Value::as_str)
                .unwrap_or("v0.6_legacy_session");
            AuthenticationMethod {
                method: method.to_owned(),
                aal: m
                    .get("aal")
                    .and_then(Value::as_str)
                    .and_then(Aal::parse)
                    .unwrap_or(Aal::Aal1),
                completed_at: m
                    .get("completed_at")
                    .and_then(Value::as_str)
                    .and_then(|t| timestamp(t, "completed_at").ok())
                    .unwrap_or(authenticated_at),
                provider: m.get("provider").and_then(Value::as_str).map(str::to_owned),
                upstream_acr: m.get("upstream_acr").and_then(Value::as_str).map(str::to_owned),
                upstream_amr: m
                    .get("upstream_amr")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect()),
            }
        })
        .collect();
    Ok(Session {
        id,
        identity_id: uuid(col(row, 1, "identity_id")?, "identity_id")?,
        token_digest: sallyport_core::secret::token_digest(token),
        logout_token_digest: logout_digest,
        active: opt(row, 4).is_some_and(boolean),
        expires_at: timestamp(col(row, 5, "expires_at")?, "expires_at")?,
        authenticated_at,
        issued_at: timestamp(col(row, 7, "issued_at")?, "issued_at")?,
        aal,
        authentication_methods: amr,
        devices,
        created_at: timestamp(col(row, 10, "created_at")?, "created_at")?,
        updated_at: timestamp(col(row, 11, "updated_at")?, "updated_at")?,
    })
}

pub fn device(row: &TextRow) -> Result<Device, Reject> {
    let text = |i| opt(row, i).filter(|s: &&str| !s.is_empty()).map(str::to_owned);
    Ok(Device {
        id: uuid(col(row, 0, "device id")?, "device id")?,
        ip_address: text(2),
        user_agent: text(3),
        location: text(4),
    })
}

/// A Kratos courier message. Queued and processing ones stay queued for Sallyport's courier;
/// sent and abandoned ones are kept as history.
pub fn message(row: &TextRow) -> Result<Message, Reject> {
    let kind = match col(row, 1, "type")? {
        "1" => MessageType::Email,
        "2" => MessageType::Sms,
        other => return Err(format!("unknown message type {other:?}")),
    };
    let status = match col(row, 2, "status")? {
        "1" | "3" => MessageStatus::Queued,
        "2" => MessageStatus::Sent,
        "4" => MessageStatus::Abandoned,
        other => return Err(format!("unknown message status {other:?}")),
    };
    let template_data = match opt(row, 7) {
        Some(text) => decode_template_data(text)?,
        None => Value::Null,
    };
    let created_at = timestamp(col(row, 10, "created_at")?, "created_at")?;
    Ok(Message {
        id: uuid(col(row, 0, "id")?, "id")?,
        status,
        kind,
        recipient: col(row, 3, "recipient")?.to_owned(),
        subject: col(row, 4, "subject")?.to_owned(),
        body: col(row, 5, "body")?.to_owned(),
        template_type: opt(row, 6).unwrap_or_default().to_owned(),
        template_data,
        channel: opt(row, 8)
            .filter(|c| !c.is_empty())
            .unwrap_or(kind.as_str())
            .to_owned(),
        send_count: opt(row, 9).and_then(|n| n.trim().parse().ok()).unwrap_or(0),
        next_attempt_at: created_at,
        created_at,
        updated_at: timestamp(col(row, 11, "updated_at")?, "updated_at")?,
        dispatches: vec![],
    })
}

/// `template_data` is bytes holding JSON: PostgreSQL's bytea cast to text is `\x<hex>`, SQLite's
/// BLOB cast to text is the JSON itself.
fn decode_template_data(text: &str) -> Result<Value, Reject> {
    let bytes = match text.strip_prefix("\\x") {
        Some(hex) => (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2).unwrap_or("zz"), 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| "template_data is not hex".to_owned())?,
        None => text.as_bytes().to_vec(),
    };
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    // Kratos treats it as opaque bytes (its own tests store `binary_data`): kept as a string then.
    Ok(serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned())))
}

#[cfg(test)]
mod tests {
    #[test]
    fn webauthn_v0_rows_get_kratos_v1_user_handle_and_mfa_flag() {
        let id: Uuid = "4d64fa08-20fc-450d-bebd-ebd7c7b6e249".parse().unwrap();
        let mut config = serde_json::json!({"credentials": [{"id": "AQ==", "public_key": "AQ==", "display_name": "asdf"}]});
        upgrade_webauthn_v0(&mut config, id);
        // The value Kratos' own upgrade produces (snapshot TestUpgradeCredentials-type=webauthn-from=v0).
        assert_eq!(config["user_handle"], "TWT6CCD8RQ2+vevXx7biSQ==");
        assert_eq!(config["credentials"][0]["is_passwordless"], false);
        let mut kept = serde_json::json!({"credentials": [], "user_handle": "AQI="});
        upgrade_webauthn_v0(&mut kept, id);
        assert_eq!(kept["user_handle"], "AQI=");
    }

    use super::*;

    #[test]
    fn reads_every_kratos_timestamp_text() {
        let want = time::macros::datetime!(2022-01-02 10:11:12.5 UTC);
        for s in [
            "2022-01-02 10:11:12.5",
            "2022-01-02T10:11:12.5Z",
            "2022-01-02 12:11:12.500000+02:00",
            "2022-01-02T08:11:12.5-02:00",
        ] {
            assert_eq!(timestamp(s, "t").unwrap(), want, "{s}");
        }
        assert_eq!(
            timestamp("2022-01-02 10:11:12", "t").unwrap(),
            time::macros::datetime!(2022-01-02 10:11:12 UTC)
        );
        assert!(timestamp("yesterday", "t").is_err());
        assert!(timestamp("2022-01-02 10:11:1€", "t").is_err());
    }

    #[test]
    fn lookup_codes_become_sealed_hashes_keeping_use() {
        let rules = CredentialRules {
            lookup_key: "cookie-secret",
            seal_secret: "32-characters-exactly-0123456789",
        };
        let kratos = serde_json::json!({"recovery_codes": [
            {"code": "aaaa1111", "used_at": "2025-02-01T10:00:00Z"},
            {"code": "bbbb2222", "used_at": "0001-01-01T00:00:00Z"},
            {"code": "cccc3333", "used_at": null}
        ]});
        let got = lookup_config(&kratos, &rules).unwrap();
        assert!(!got.to_string().contains("bbbb2222"), "{got}");
        let codes = got["recovery_codes"].as_array().unwrap();
        assert_eq!(codes[0]["used_at"], "2025-02-01T10:00:00Z");
        assert_eq!(codes[1]["used_at"], Value::Null);
        assert!(
            codes
                .iter()
                .all(|c| c["code_hash"].is_string() && c["sealed"].is_string())
        );
        let revealed =
            sallyport_mfa::reveal_lookup_codes_with(&got, &[rules.seal_secret.to_owned()]).unwrap();
        assert_eq!(revealed[2].code, "cccc3333");
        assert!(
            lookup_config(
                &serde_json::json!({"recovery_codes": [{"used_at": null}]}),
                &rules
            )
            .is_err()
        );
        assert!(lookup_config(&serde_json::json!({}), &rules).is_err());
    }

    #[test]
    fn legacy_sessions_get_an_aal_and_a_completion_time() {
        let row: TextRow = [
            Some("5e55a000-0000-4000-8000-000000000001"),
            Some("1d000000-0000-4000-8000-000000000000"),
            Some("legacy-token-without-prefix"),
            None,
            Some("t"),
            Some("2099-01-01 00:00:00"),
            Some("2021-01-01 10:00:00"),
            Some("2021-01-01 10:00:00"),
            Some("aal1"),
            Some("[{\"method\":\"v0.6_legacy_session\"}]"),
            Some("2021-01-01 10:00:00"),
            Some("2021-01-01 10:00:00"),
        ]
        .into_iter()
        .map(|v| v.map(str::to_owned))
        .collect();
        let s = session(&row, vec![]).unwrap();
        assert!(s.active);
        assert_eq!(
            s.token_digest,
            sallyport_core::secret::token_digest("legacy-token-without-prefix")
        );
        assert_ne!(
            s.logout_token_digest, s.token_digest,
            "a missing logout token is never the session token"
        );
        assert_eq!(s.authentication_methods[0].aal, Aal::Aal1);
        assert_eq!(s.authentication_methods[0].completed_at, s.authenticated_at);
        let mut no_token = row.clone();
        no_token[2] = None;
        assert!(session(&no_token, vec![]).is_err());
    }

    #[test]
    fn template_data_from_both_engines() {
        assert_eq!(decode_template_data("\\x7b7d").unwrap(), serde_json::json!({}));
        assert_eq!(
            decode_template_data("{\"a\":1}").unwrap(),
            serde_json::json!({"a": 1})
        );
        assert!(decode_template_data("\\xzz").is_err());
        assert_eq!(
            decode_template_data("binary_data").unwrap(),
            serde_json::json!("binary_data")
        );
    }
}
