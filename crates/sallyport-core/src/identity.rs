//! Identities with their credentials and addresses (Kratos `identity/identity.go`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::row_id::new_row_id;
use crate::session::Aal;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentityState {
    Active,
    Inactive,
}

impl IdentityState {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityState::Active => "active",
            IdentityState::Inactive => "inactive",
        }
    }
    pub fn parse(s: &str) -> Option<IdentityState> {
        match s {
            "active" => Some(IdentityState::Active),
            "inactive" => Some(IdentityState::Inactive),
            _ => None,
        }
    }
}

/// Credential types as Kratos names them.
pub mod credential_type {
    pub const PASSWORD: &str = "password";
    pub const OIDC: &str = "oidc";
    pub const TOTP: &str = "totp";
    pub const LOOKUP_SECRET: &str = "lookup_secret";
    pub const WEBAUTHN: &str = "webauthn";
    pub const CODE: &str = "code";
    pub const PASSKEY: &str = "passkey";
    pub const SAML: &str = "saml";
    pub const ALL: &[&str] = &[
        PASSWORD,
        OIDC,
        TOTP,
        LOOKUP_SECRET,
        WEBAUTHN,
        CODE,
        PASSKEY,
        SAML,
        "deviceauthn",
    ];
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Credential {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub cred_type: String,
    pub identifiers: Vec<String>,
    pub config: Value,
    pub version: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifiableAddress {
    pub id: Uuid,
    pub value: String,
    pub verified: bool,
    pub via: String,
    pub status: String,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub verified_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl VerifiableAddress {
    /// Proof of control arrived (a verification or recovery code, a login code, a provider's word).
    pub fn mark_verified(&mut self, now: OffsetDateTime) {
        self.verified = true;
        self.verified_at = Some(now);
        self.status = "completed".into();
        self.updated_at = now;
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoveryAddress {
    pub id: Uuid,
    pub value: String,
    pub via: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub id: Uuid,
    pub schema_id: String,
    pub traits: Value,
    pub state: IdentityState,
    pub state_changed_at: Option<OffsetDateTime>,
    pub metadata_public: Option<Value>,
    pub metadata_admin: Option<Value>,
    pub external_id: Option<String>,
    pub organization_id: Option<Uuid>,
    pub available_aal: Aal,
    pub credentials: BTreeMap<String, Credential>,
    pub verifiable_addresses: Vec<VerifiableAddress>,
    pub recovery_addresses: Vec<RecoveryAddress>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Identity {
    pub fn new(schema_id: impl Into<String>, traits: Value, now: OffsetDateTime) -> Identity {
        Identity {
            id: new_row_id(),
            schema_id: schema_id.into(),
            traits,
            state: IdentityState::Active,
            state_changed_at: Some(now),
            metadata_public: None,
            metadata_admin: None,
            external_id: None,
            organization_id: None,
            available_aal: Aal::Aal0,
            credentials: BTreeMap::new(),
            verifiable_addresses: vec![],
            recovery_addresses: vec![],
            created_at: now,
            updated_at: now,
        }
    }

    pub fn is_active(&self) -> bool {
        self.state == IdentityState::Active
    }

    /// Adds or replaces the credential of `cred_type`, keeping its id and creation time when it exists.
    pub fn set_credential(
        &mut self,
        cred_type: &str,
        identifiers: Vec<String>,
        config: Value,
        now: OffsetDateTime,
    ) {
        let (id, created_at) = match self.credentials.get(cred_type) {
            Some(c) => (c.id, c.created_at),
            None => (new_row_id(), now),
        };
        self.credentials.insert(
            cred_type.to_string(),
            Credential {
                id,
                cred_type: cred_type.to_string(),
                identifiers,
                config,
                version: 1,
                created_at,
                updated_at: now,
            },
        );
    }

    /// Replaces verifiable addresses with `wanted` (via, value), keeping the state of those already known.
    pub fn merge_verifiable_addresses(&mut self, wanted: &[(String, String)], now: OffsetDateTime) {
        let old = std::mem::take(&mut self.verifiable_addresses);
        for (via, value) in wanted {
            if self
                .verifiable_addresses
                .iter()
                .any(|a| &a.via == via && &a.value == value)
            {
                continue;
            }
            match old.iter().find(|a| &a.via == via && &a.value == value) {
                Some(a) => self.verifiable_addresses.push(a.clone()),
                None => self.verifiable_addresses.push(VerifiableAddress {
                    id: new_row_id(),
                    value: value.clone(),
                    verified: false,
                    via: via.clone(),
                    status: "pending".into(),
                    verified_at: None,
                    created_at: now,
                    updated_at: now,
                }),
            }
        }
    }

    pub fn merge_recovery_addresses(&mut self, wanted: &[(String, String)], now: OffsetDateTime) {
        let old = std::mem::take(&mut self.recovery_addresses);
        for (via, value) in wanted {
            if self
                .recovery_addresses
                .iter()
                .any(|a| &a.via == via && &a.value == value)
            {
                continue;
            }
            match old.iter().find(|a| &a.via == via && &a.value == value) {
                Some(a) => self.recovery_addresses.push(a.clone()),
                None => self.recovery_addresses.push(RecoveryAddress {
                    id: new_row_id(),
                    value: value.clone(),
                    via: via.clone(),
                    created_at: now,
                    updated_at: now,
                }),
            }
        }
    }

    /// The highest AAL the identity could reach with its credentials (Kratos `identity.SetAvailableAAL`).
    pub fn compute_available_aal(&self, code_mfa_enabled: bool) -> Aal {
        let has = |t: &str| {
            self.credentials
                .get(t)
                .is_some_and(|c| !c.identifiers.is_empty() || !c.config.is_null())
        };
        let second = has(credential_type::TOTP)
            || has(credential_type::LOOKUP_SECRET)
            || self.credentials.get(credential_type::WEBAUTHN).is_some_and(|c| {
                c.config["credentials"]
                    .as_array()
                    .is_some_and(|cs| cs.iter().any(|c| c["is_passwordless"] != true))
            })
            || (code_mfa_enabled
                && self
                    .credentials
                    .get(credential_type::CODE)
                    .is_some_and(|c| !c.identifiers.is_empty()));
        let first = [
            credential_type::PASSWORD,
            credential_type::OIDC,
            credential_type::PASSKEY,
            credential_type::CODE,
            credential_type::SAML,
        ]
        .iter()
        .any(|t| has(t));
        if second {
            Aal::Aal2
        } else if first {
            Aal::Aal1
        } else {
            Aal::Aal0
        }
    }
}
