//! Storage capabilities the domain needs, one narrow trait per area, composed into [`Store`].
//! Each backend crate implements all of them; transactions live inside the use-case methods.

use async_trait::async_trait;
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::flow::{Flow, FlowKind};
use crate::identity::Identity;
use crate::session::Session;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique constraint was violated (duplicate identifier, address, external id, token).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A value the backends cannot store alike: PostgreSQL text and jsonb cannot hold U+0000, its
    /// indexes refuse long entries. The HTTP layer refuses NUL before it gets here and the store
    /// checks lengths itself; this is the net under both. Carries what was refused, e.g. "a NUL
    /// character (U+0000)".
    #[error("value refused by the database: {0}")]
    Unrepresentable(String),
    #[error("storage failure: {0}")]
    Other(#[from] Box<dyn std::error::Error + Send + Sync>),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone, Default)]
pub struct IdentityQuery {
    /// Keyset pagination: only identities whose id sorts after this one.
    pub after: Option<Uuid>,
    /// Legacy page/per_page pagination.
    pub offset: Option<u64>,
    pub limit: u32,
    pub ids: Option<Vec<Uuid>>,
    /// Exact match on a credential identifier of any credential type.
    pub credentials_identifier: Option<String>,
}

/// Which address table an address lookup searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressKind {
    Verifiable,
    Recovery,
}

#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// Inserts the identity with credentials, identifiers and addresses, and `session` if given, atomically.
    async fn create_identity(&self, identity: &Identity, session: Option<&Session>) -> StoreResult<()>;
    /// Inserts new identities (no sessions) in one transaction, with a few multi-row statements per
    /// table. One result per identity, in order: an identity refused (`Conflict` with a stored one or
    /// with an earlier one in the list, `Unrepresentable`) is left out and the others are stored. `Err`
    /// only when the database failed as a whole, and then nothing is stored.
    async fn create_identities(&self, identities: &[Identity]) -> StoreResult<Vec<StoreResult<()>>>;
    /// Replaces the identity's row, credentials, identifiers and addresses atomically.
    async fn update_identity(&self, identity: &Identity) -> StoreResult<()>;
    async fn get_identity(&self, id: Uuid) -> StoreResult<Identity>;
    async fn get_identity_by_external_id(&self, external_id: &str) -> StoreResult<Identity>;
    async fn find_identity_by_identifier(
        &self,
        credential_type: &str,
        identifier: &str,
    ) -> StoreResult<Identity>;
    /// The identity owning a verifiable or recovery address (`via` + `value`, unique together).
    async fn find_identity_by_address(
        &self,
        kind: AddressKind,
        via: &str,
        value: &str,
    ) -> StoreResult<Identity>;
    /// Ordered by id.
    async fn list_identities(&self, query: &IdentityQuery) -> StoreResult<Vec<Identity>>;
    async fn count_identities(&self) -> StoreResult<u64>;
    async fn delete_identity(&self, id: Uuid) -> StoreResult<()>;
}

#[derive(Debug, Clone, Default)]
pub struct SessionQuery {
    pub identity_id: Option<Uuid>,
    /// Some(true): only sessions with active=true and expires_at > now; Some(false): only the others.
    pub active: Option<bool>,
    pub now: Option<OffsetDateTime>,
    pub exclude: Option<Uuid>,
    pub after: Option<Uuid>,
    pub offset: Option<u64>,
    pub limit: u32,
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn create_session(&self, session: &Session) -> StoreResult<()>;
    /// A new session and the final state of the flow that issued it, in one write. The flow goes
    /// first: `NotFound` when it is gone, and then no session is stored either.
    async fn create_session_with_flow(&self, session: &Session, flow: &Flow) -> StoreResult<()>;
    async fn get_session(&self, id: Uuid) -> StoreResult<Session>;
    async fn get_session_by_token_digest(&self, digest: &str) -> StoreResult<Session>;
    async fn get_session_by_logout_token_digest(&self, digest: &str) -> StoreResult<Session>;
    /// A counter that changes after every committed change to an existing session or identity, when
    /// this process learns of every such change (SQLite; PostgreSQL while its change listener is
    /// connected); None otherwise.
    /// Anything derived from a session and its identity may be kept while the counter stays the same.
    fn read_generation(&self) -> Option<u64> {
        None
    }
    async fn update_session(&self, session: &Session) -> StoreResult<()>;
    /// Ordered by id.
    async fn list_sessions(&self, query: &SessionQuery) -> StoreResult<Vec<Session>>;
    async fn count_sessions(&self, query: &SessionQuery) -> StoreResult<u64>;
    /// Sets active=false on every session of the identity except `except`; returns how many changed.
    async fn revoke_sessions_of_identity(&self, identity_id: Uuid, except: Option<Uuid>) -> StoreResult<u64>;
    async fn delete_sessions_of_identity(&self, identity_id: Uuid) -> StoreResult<u64>;
    async fn delete_session(&self, id: Uuid) -> StoreResult<()>;
}

#[async_trait]
pub trait FlowStore: Send + Sync {
    async fn create_flow(&self, flow: &Flow) -> StoreResult<()>;
    async fn get_flow(&self, kind: FlowKind, id: Uuid) -> StoreResult<Flow>;
    async fn update_flow(&self, flow: &Flow) -> StoreResult<()>;
}

/// Errors shown to browsers through `GET /self-service/errors?id=`.
#[async_trait]
pub trait ErrorStore: Send + Sync {
    async fn create_error(&self, id: Uuid, error: &Value, now: OffsetDateTime) -> StoreResult<()>;
    /// Returns the error and its created_at/updated_at.
    async fn get_error(&self, id: Uuid) -> StoreResult<(Value, OffsetDateTime, OffsetDateTime)>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    pub version: i64,
    pub name: String,
    pub applied: bool,
}

#[async_trait]
pub trait MigrationStore: Send + Sync {
    async fn ping(&self) -> StoreResult<()>;
    async fn migration_status(&self) -> StoreResult<Vec<MigrationStatus>>;
    async fn migrate_up(&self) -> StoreResult<()>;
    /// Reverts the newest `steps` applied migrations.
    async fn migrate_down(&self, steps: u32) -> StoreResult<()>;
}

/// Copying another server's data in (`sallyport import kratos`): upserts keyed by the source's ids,
/// so a rerun replaces what it copied before instead of duplicating it.
#[async_trait]
pub trait ImportStore: Send + Sync {
    /// Takes (or, for the same `owner`, refreshes) the import lock. Refused (`false`) while another
    /// owner holds it with a heartbeat newer than `stale_before`: a crashed run's lock expires.
    async fn acquire_import_lock(
        &self,
        owner: &str,
        now: OffsetDateTime,
        stale_before: OffsetDateTime,
    ) -> StoreResult<bool>;
    async fn release_import_lock(&self, owner: &str) -> StoreResult<()>;
    async fn import_mark(&self, key: &str) -> StoreResult<Option<String>>;
    async fn set_import_mark(&self, key: &str, value: &str, now: OffsetDateTime) -> StoreResult<()>;
    /// Inserts each identity or replaces its row, credentials, identifiers and addresses (its sessions
    /// stay), all in one transaction.
    async fn upsert_identities(&self, identities: &[Identity]) -> StoreResult<()>;
    /// Inserts each session or replaces it, in one transaction.
    async fn upsert_sessions(&self, sessions: &[Session]) -> StoreResult<()>;
    /// Inserts the messages whose id is not stored yet (one already there, perhaps sent, is left
    /// alone); returns how many were new.
    async fn insert_missing_messages(&self, messages: &[crate::courier::Message]) -> StoreResult<u64>;
    /// Ids of the rows of `kind` (`identity` or `session`) an import wrote (kept in the same
    /// transaction as the rows): the only ones `--prune` may delete.
    async fn imported_ids(&self, kind: &str) -> StoreResult<Vec<Uuid>>;
    async fn forget_imported(&self, id: Uuid) -> StoreResult<()>;
}

pub trait Store:
    IdentityStore
    + SessionStore
    + FlowStore
    + ErrorStore
    + MigrationStore
    + crate::courier::CourierStore
    + crate::code::CodeStore
    + crate::rate_limit::RateLimitStore
    + crate::token_exchange::TokenExchangeStore
    + ImportStore
    + crate::web_hook::WebHookOutboxStore
{
}

impl<
    T: IdentityStore
        + SessionStore
        + FlowStore
        + ErrorStore
        + MigrationStore
        + crate::courier::CourierStore
        + crate::code::CodeStore
        + crate::rate_limit::RateLimitStore
        + crate::token_exchange::TokenExchangeStore
        + ImportStore
        + crate::web_hook::WebHookOutboxStore,
> Store for T
{
}
