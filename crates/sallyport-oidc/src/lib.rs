//! Social sign-in (Kratos' `oidc` method) as an engine the flow layer drives:
//!
//! 1. [`OidcConfig::from_value`] parses `selfservice.methods.oidc.config`; [`Providers::new`] builds the
//!    adapters over one guarded [`HttpClient`].
//! 2. On a `{method: oidc, provider}` submission: [`Provider::authorization_request`] gives the provider URL
//!    (303 / 422 `browser_location_change_required`) and a [`PendingAuth`] to store on the flow.
//! 3. On the callback: [`parse_state`] names the flow; load it and its [`PendingAuth`];
//!    [`Provider::complete`] checks state, exchanges the code, verifies the id_token and returns the
//!    [`Claims`]; [`Provider::map_claims`] runs the Jsonnet mapper for traits and verified addresses;
//!    [`ProviderTokens::encrypt`] seals the tokens with [`Cipher`] for the credential.
//! 4. Native apps: [`Provider::verify_id_token_submission`].
//!
//! Errors are [`OidcError`]s with Kratos' status, reason and callback step. No HTTP server, no storage.

pub mod cipher;
pub mod claims;
pub mod config;
pub mod error;
pub mod http;
pub mod mapper;
pub mod provider;
pub mod state;

pub use cipher::{Cipher, CipherAlgorithm};
pub use claims::Claims;
pub use config::{
    ClaimsSource, ConfigError, OidcConfig, PkceMode, ProviderConfig, ProviderKind, SubjectSource,
};
pub use error::{OidcError, Step};
pub use http::{HttpClient, HttpError, HttpPolicy};
pub use mapper::{ClaimsMapper, IdentityContext, MappedIdentity, MapperBudget, VerifiedAddress};
pub use provider::{
    AuthOptions, Authenticated, AuthorizationRequest, EncryptedTokens, Endpoints, Provider, ProviderTokens,
    Providers,
};
pub use state::{CallbackParams, FlowKind, PendingAuth, StateRef, parse_state};
