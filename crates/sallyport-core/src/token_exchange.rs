//! Kratos' session token exchange (`return_session_token_exchange_code`, `GET /sessions/token-exchange`):
//! a native app that signs in through a browser (social sign-in) cannot read the session the browser
//! ends with, so the flow hands the app one half of a code when it starts and the browser the other half
//! when it finishes; the app trades both halves for the session token.
//!
//! Unlike Kratos, neither half is stored in the clear: the lookup half is kept as a digest, the half the
//! browser is sent back with and the session token are kept sealed (the HTTP layer seals them), and an
//! exchanger is used once.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::store::StoreResult;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchanger {
    pub id: Uuid,
    pub flow_id: Uuid,
    /// `token_digest` of the init code the app received with the flow.
    pub init_code_digest: String,
    /// `token_digest` of the code appended to `return_to`.
    pub return_to_code_digest: String,
    /// The return_to code itself, sealed: the browser must be sent it when the flow completes.
    pub return_to_code_sealed: String,
    pub session_id: Option<Uuid>,
    /// The token of the session the flow created, sealed, until the app collects it.
    pub session_token_sealed: Option<String>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

#[async_trait]
pub trait TokenExchangeStore: Send + Sync {
    async fn create_exchanger(&self, exchanger: &Exchanger) -> StoreResult<()>;
    /// `NotFound` when the flow was not started with `return_session_token_exchange_code`.
    async fn exchanger_for_flow(&self, flow_id: Uuid) -> StoreResult<Exchanger>;
    /// A flow that continues as another (registration → login when the subject is known) keeps its
    /// exchanger.
    async fn move_exchanger(&self, from_flow: Uuid, to_flow: Uuid) -> StoreResult<()>;
    async fn settle_exchanger(
        &self,
        flow_id: Uuid,
        session_id: Uuid,
        session_token_sealed: &str,
    ) -> StoreResult<()>;
    async fn exchanger_by_init_code(&self, init_code_digest: &str) -> StoreResult<Exchanger>;
    /// Deletes the exchanger; true only for the one caller whose delete removed it.
    async fn consume_exchanger(&self, id: Uuid) -> StoreResult<bool>;
    async fn delete_expired_exchangers(&self, now: OffsetDateTime) -> StoreResult<u64>;
}
