//! Rows as both databases return them, and their assembly into domain values.

use std::collections::{BTreeMap, HashMap};

use sallyport_core::identity::{Credential, Identity, IdentityState, RecoveryAddress, VerifiableAddress};
use sallyport_core::session::{Aal, AuthenticationMethod, Device, Session};
use sallyport_core::store::{StoreError, StoreResult};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use crate::raw_sqlite::Row as RawRow;
use crate::{Ts, other_err};

pub const IDENTITY_COLUMNS: &str = "id, schema_id, traits, state, state_changed_at, metadata_public, \
     metadata_admin, external_id, organization_id, available_aal, created_at, updated_at";

#[derive(sqlx::FromRow)]
pub struct IdentityRow {
    id: Uuid,
    schema_id: String,
    traits: Json<Value>,
    state: String,
    state_changed_at: Option<Ts>,
    metadata_public: Option<Json<Value>>,
    metadata_admin: Option<Json<Value>>,
    external_id: Option<String>,
    organization_id: Option<Uuid>,
    available_aal: String,
    created_at: Ts,
    updated_at: Ts,
}

impl IdentityRow {
    pub fn id(&self) -> Uuid {
        self.id
    }
}

#[derive(sqlx::FromRow)]
pub struct CredentialRow {
    id: Uuid,
    identity_id: Uuid,
    #[sqlx(rename = "type")]
    cred_type: String,
    config: Json<Value>,
    version: i32,
    created_at: Ts,
    updated_at: Ts,
}

#[derive(sqlx::FromRow)]
pub struct IdentifierRow {
    credential_id: Uuid,
    identifier: String,
}

#[derive(sqlx::FromRow)]
pub struct VerifiableAddressRow {
    id: Uuid,
    identity_id: Uuid,
    via: String,
    value: String,
    verified: bool,
    status: String,
    verified_at: Option<Ts>,
    created_at: Ts,
    updated_at: Ts,
}

#[derive(sqlx::FromRow)]
pub struct RecoveryAddressRow {
    id: Uuid,
    identity_id: Uuid,
    via: String,
    value: String,
    created_at: Ts,
    updated_at: Ts,
}

/// Everything stored about a set of identities, fetched with one query per table.
#[derive(Default)]
pub struct IdentityParts {
    pub credentials: Vec<CredentialRow>,
    /// Ordered by position.
    pub identifiers: Vec<IdentifierRow>,
    /// Ordered by position.
    pub verifiable: Vec<VerifiableAddressRow>,
    /// Ordered by position.
    pub recovery: Vec<RecoveryAddressRow>,
}

/// One row of `identity_sql::all_parts`: a credential (`part` 0), an identifier (1), a verifiable
/// (2) or a recovery address (3), in the columns that branch fills.
#[derive(sqlx::FromRow)]
pub struct PartRow {
    part: i64,
    /// The credential's or address's id; an identifier's credential id.
    id: Uuid,
    owner: Uuid,
    /// Credential type, identifier, or address channel.
    name: String,
    value: Option<String>,
    status: Option<String>,
    config: Option<Json<Value>>,
    /// Credential version, or position.
    num: i64,
    verified: Option<bool>,
    verified_at: Option<Ts>,
    metadata_public: Option<Json<Value>>,
    metadata_admin: Option<Json<Value>>,
    external_id: Option<String>,
    organization_id: Option<Uuid>,
    created_at: Ts,
    updated_at: Ts,
}

impl PartRow {
    /// A row of the identity load read without sqlx (`InlineReaders`), in the column order of
    /// `identity_sql::PART_COLUMNS`, each value in the form sqlx writes it (ids as 16-byte blobs,
    /// JSON as text, timestamps as [`Ts::sqlite_fixed`]); `None` for anything else, which the usual
    /// read then decodes or reports.
    pub fn from_raw(r: &RawRow<'_>) -> Option<PartRow> {
        fn nullable<T>(r: &RawRow<'_>, i: usize, read: impl Fn(usize) -> Option<T>) -> Option<Option<T>> {
            if r.is_null(i) {
                Some(None)
            } else {
                read(i).map(Some)
            }
        }
        let uuid = |i| Uuid::from_slice(&r.blob(i)?).ok();
        let text = |i| String::from_utf8(r.text(i)?).ok();
        let json = |i| serde_json::from_slice::<Value>(&r.text(i)?).ok().map(Json);
        let ts = |i| Ts::from_sqlite_fixed(&r.text(i)?);
        Some(PartRow {
            part: r.int(0)?,
            id: uuid(1)?,
            owner: uuid(2)?,
            name: text(3)?,
            value: nullable(r, 4, text)?,
            status: nullable(r, 5, text)?,
            config: nullable(r, 6, json)?,
            num: r.int(7)?,
            verified: nullable(r, 8, |i| r.int(i).map(|n| n != 0))?,
            verified_at: nullable(r, 9, ts)?,
            metadata_public: nullable(r, 10, json)?,
            metadata_admin: nullable(r, 11, json)?,
            external_id: nullable(r, 12, text)?,
            organization_id: nullable(r, 13, uuid)?,
            created_at: ts(14)?,
            updated_at: ts(15)?,
        })
    }
}

/// The one identity of a load of one identity's rows (`identity_sql::by_identifier` and the like).
pub fn one_identity(rows: Vec<PartRow>) -> StoreResult<Identity> {
    let (own, parts) = IdentityParts::split_own(rows)?;
    let own = own.ok_or(StoreError::NotFound)?;
    assemble_identities(vec![own], parts)?
        .pop()
        .ok_or(StoreError::NotFound)
}

impl IdentityParts {
    /// The identity's own row (part -1), if the load found it, and its parts.
    pub fn split_own(mut rows: Vec<PartRow>) -> StoreResult<(Option<IdentityRow>, IdentityParts)> {
        let own = rows
            .iter()
            .position(|r| r.part == -1)
            .map(|at| rows.swap_remove(at));
        let own = match own {
            Some(r) => Some(IdentityRow {
                id: r.id,
                schema_id: r.name,
                traits: r
                    .config
                    .ok_or_else(|| other_err("stored identity has no traits"))?,
                state: r.value.unwrap_or_default(),
                state_changed_at: r.verified_at,
                metadata_public: r.metadata_public,
                metadata_admin: r.metadata_admin,
                external_id: r.external_id,
                organization_id: r.organization_id,
                available_aal: r.status.unwrap_or_default(),
                created_at: r.created_at,
                updated_at: r.updated_at,
            }),
            None => None,
        };
        Ok((own, IdentityParts::from_rows(rows)?))
    }

    /// Sorts `rows` into the parts, identifiers per credential and addresses per identity by position.
    pub fn from_rows(mut rows: Vec<PartRow>) -> StoreResult<IdentityParts> {
        // Identifiers in position order per credential, addresses in position order per identity.
        rows.sort_by_key(|r| {
            (
                r.part,
                r.owner,
                if r.part == 1 { r.id } else { Uuid::nil() },
                r.num,
            )
        });
        let mut parts = IdentityParts::default();
        let missing = |what: &str| other_err(format!("stored identity part has no {what}"));
        for r in rows {
            match r.part {
                0 => parts.credentials.push(CredentialRow {
                    id: r.id,
                    identity_id: r.owner,
                    cred_type: r.name,
                    config: r.config.ok_or_else(|| missing("config"))?,
                    version: i32::try_from(r.num).map_err(other_err)?,
                    created_at: r.created_at,
                    updated_at: r.updated_at,
                }),
                1 => parts.identifiers.push(IdentifierRow {
                    credential_id: r.id,
                    identifier: r.name,
                }),
                2 => parts.verifiable.push(VerifiableAddressRow {
                    id: r.id,
                    identity_id: r.owner,
                    via: r.name,
                    value: r.value.ok_or_else(|| missing("value"))?,
                    verified: r.verified.ok_or_else(|| missing("verified"))?,
                    status: r.status.ok_or_else(|| missing("status"))?,
                    verified_at: r.verified_at,
                    created_at: r.created_at,
                    updated_at: r.updated_at,
                }),
                3 => parts.recovery.push(RecoveryAddressRow {
                    id: r.id,
                    identity_id: r.owner,
                    via: r.name,
                    value: r.value.ok_or_else(|| missing("value"))?,
                    created_at: r.created_at,
                    updated_at: r.updated_at,
                }),
                n => return Err(other_err(format!("unknown identity part {n}"))),
            }
        }
        Ok(parts)
    }
}

fn corrupt(what: &str, value: &str) -> StoreError {
    other_err(format!("stored {what} {value:?} is not valid"))
}

/// Builds the identities in `rows`' order from their rows and parts.
pub fn assemble_identities(rows: Vec<IdentityRow>, parts: IdentityParts) -> StoreResult<Vec<Identity>> {
    let mut identifiers: HashMap<Uuid, Vec<String>> = HashMap::new();
    for r in parts.identifiers {
        identifiers.entry(r.credential_id).or_default().push(r.identifier);
    }
    let mut credentials: HashMap<Uuid, BTreeMap<String, Credential>> = HashMap::new();
    for c in parts.credentials {
        let credential = Credential {
            id: c.id,
            cred_type: c.cred_type.clone(),
            identifiers: identifiers.remove(&c.id).unwrap_or_default(),
            config: c.config.0,
            version: c.version,
            created_at: c.created_at.0,
            updated_at: c.updated_at.0,
        };
        credentials
            .entry(c.identity_id)
            .or_default()
            .insert(c.cred_type, credential);
    }
    let mut verifiable: HashMap<Uuid, Vec<VerifiableAddress>> = HashMap::new();
    for a in parts.verifiable {
        verifiable
            .entry(a.identity_id)
            .or_default()
            .push(VerifiableAddress {
                id: a.id,
                value: a.value,
                verified: a.verified,
                via: a.via,
                status: a.status,
                verified_at: a.verified_at.map(|t| t.0),
                created_at: a.created_at.0,
                updated_at: a.updated_at.0,
            });
    }
    let mut recovery: HashMap<Uuid, Vec<RecoveryAddress>> = HashMap::new();
    for a in parts.recovery {
        recovery.entry(a.identity_id).or_default().push(RecoveryAddress {
            id: a.id,
            value: a.value,
            via: a.via,
            created_at: a.created_at.0,
            updated_at: a.updated_at.0,
        });
    }
    rows.into_iter()
        .map(|r| {
            Ok(Identity {
                id: r.id,
                schema_id: r.schema_id,
                traits: r.traits.0,
                state: IdentityState::parse(&r.state).ok_or_else(|| corrupt("identity state", &r.state))?,
                state_changed_at: r.state_changed_at.map(|t| t.0),
                metadata_public: r.metadata_public.map(|j| j.0),
                metadata_admin: r.metadata_admin.map(|j| j.0),
                external_id: r.external_id,
                organization_id: r.organization_id,
                available_aal: Aal::parse(&r.available_aal)
                    .ok_or_else(|| corrupt("aal", &r.available_aal))?,
                credentials: credentials.remove(&r.id).unwrap_or_default(),
                verifiable_addresses: verifiable.remove(&r.id).unwrap_or_default(),
                recovery_addresses: recovery.remove(&r.id).unwrap_or_default(),
                created_at: r.created_at.0,
                updated_at: r.updated_at.0,
            })
        })
        .collect()
}

pub const SESSION_COLUMNS: &str = "id, identity_id, token_digest, logout_token_digest, active, expires_at, \
     authenticated_at, issued_at, aal, authentication_methods, devices, created_at, updated_at";

#[derive(sqlx::FromRow)]
pub struct SessionRow {
    id: Uuid,
    identity_id: Uuid,
    token_digest: String,
    logout_token_digest: String,
    active: bool,
    expires_at: Ts,
    authenticated_at: Ts,
    issued_at: Ts,
    aal: String,
    authentication_methods: Json<Vec<AuthenticationMethod>>,
    devices: Json<Vec<Device>>,
    created_at: Ts,
    updated_at: Ts,
}

impl TryFrom<SessionRow> for Session {
    type Error = StoreError;

    fn try_from(r: SessionRow) -> StoreResult<Session> {
        Ok(Session {
            id: r.id,
            identity_id: r.identity_id,
            token_digest: r.token_digest,
            logout_token_digest: r.logout_token_digest,
            active: r.active,
            expires_at: r.expires_at.0,
            authenticated_at: r.authenticated_at.0,
            issued_at: r.issued_at.0,
            aal: Aal::parse(&r.aal).ok_or_else(|| corrupt("aal", &r.aal))?,
            authentication_methods: r.authentication_methods.0,
            devices: r.devices.0,
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
        })
    }
}
