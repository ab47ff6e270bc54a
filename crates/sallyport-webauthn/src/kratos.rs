//! Kratos' credential config for `webauthn` and `passkey` credentials: `{"credentials": […],
//! "user_handle": b64}`. Go marshals `[]byte` as standard, padded base64, so binary fields here do too.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use time::OffsetDateTime;

mod b64 {
    use super::*;

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        // Go writes `null` for a nil slice.
        let s = Option::<String>::deserialize(d)?.unwrap_or_default();
        STANDARD.decode(s.as_bytes()).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Authenticator {
    #[serde(with = "b64", default)]
    pub aaguid: Vec<u8>,
    #[serde(default)]
    pub sign_count: u32,
    #[serde(default)]
    pub clone_warning: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CredentialFlags {
    #[serde(default)]
    pub user_present: bool,
    #[serde(default)]
    pub user_verified: bool,
    #[serde(default)]
    pub backup_eligible: bool,
    #[serde(default)]
    pub backup_state: bool,
}

/// One credential as Kratos stores it. Unknown fields (e.g. `attestation`) are kept as they were.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredCredential {
    #[serde(with = "b64")]
    pub id: Vec<u8>,
    /// The COSE_Key of the credential's public key.
    #[serde(with = "b64")]
    pub public_key: Vec<u8>,
    #[serde(default)]
    pub attestation_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticator: Option<Authenticator>,
    #[serde(default)]
    pub display_name: String,
    #[serde(with = "time::serde::rfc3339", default = "epoch")]
    pub added_at: OffsetDateTime,
    #[serde(default)]
    pub is_passwordless: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<CredentialFlags>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transport: Vec<String>,
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

fn epoch() -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH
}

impl StoredCredential {
    /// The value of `passkey_remove` / `webauthn_remove`: the id in lower-case hex (Go `%x`).
    pub fn hex_id(&self) -> String {
        self.id.iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WebAuthnConfig {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub credentials: Vec<StoredCredential>,
    #[serde(with = "b64", default)]
    pub user_handle: Vec<u8>,
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<StoredCredential>, D::Error> {
    Ok(Option::<Vec<StoredCredential>>::deserialize(d)?.unwrap_or_default())
}

impl WebAuthnConfig {
    /// Reads a credential config; a missing or unreadable one counts as empty.
    pub fn from_value(v: &Value) -> WebAuthnConfig {
        serde_json::from_value(v.clone()).unwrap_or_default()
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// A passkey user handle as Kratos makes it: 64 random alphanumeric characters. It is also the
/// credential's identifier, so discoverable login finds the identity by it.
pub fn random_user_handle() -> Vec<u8> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut out = Vec::with_capacity(64);
    while out.len() < 64 {
        let mut buf = [0u8; 64];
        getrandom::fill(&mut buf).expect("the OS random source is available");
        // 62 * 4 = 248: bytes at or above it are dropped so every character is equally likely.
        out.extend(
            buf.iter()
                .filter(|b| **b < 248)
                .map(|b| ALPHABET[(*b % 62) as usize]),
        );
    }
    out.truncate(64);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kratos_row_reads_and_writes_back_the_same() {
        let row = serde_json::json!({"credentials":[{"id":"HQ4LaIJ9NiqS1r0CQpWY+K0gMvhOq4yk5BHuO/YlitcurSpBK7weDXOvBcuN4lvn6DAmjGfmj/J/6bpOmtdT8Q==","public_key":"pQECAyYgASFYILAYFLoH1T8bQMSbPrNBCMMS5U7OFWRwv2U+GkAoiBADIlggBv+8ni7XVZYBB8ufMbP/d9fDxbmOkVVHOgcJifnoOR4=","attestation_type":"none","authenticator":{"aaguid":"AAAAAAAAAAAAAAAAAAAAAA==","sign_count":4,"clone_warning":false},"display_name":"Security key","added_at":"2025-11-20T09:20:00Z","is_passwordless":false,"flags":{"user_present":true,"user_verified":false,"backup_eligible":false,"backup_state":false},"transport":["usb"]}],"user_handle":"go/JSx+FR3ecHz+ZL/P1Dw=="});
        let c = WebAuthnConfig::from_value(&row);
        assert_eq!(c.credentials.len(), 1);
        assert_eq!(c.user_handle.len(), 16);
        assert_eq!(c.credentials[0].authenticator.as_ref().unwrap().sign_count, 4);
        assert_eq!(c.to_value(), row);
    }

    #[test]
    fn user_handles_are_64_alphanumerics() {
        let h = random_user_handle();
        assert_eq!(h.len(), 64);
        assert!(h.iter().all(u8::is_ascii_alphanumeric));
        assert_ne!(h, random_user_handle());
    }
}
