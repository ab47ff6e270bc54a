//! What can go wrong in a social sign-in, as Kratos reports it.
//!
//! Kratos raises herodot errors from its OIDC strategy (`selfservice/strategy/oidc/strategy.go`, `error.go`,
//! `provider_*.go`) and tags each with the callback step that failed (`oidcerr`). [`OidcError::status`] and
//! [`OidcError::reason`] give the envelope fields the flow layer puts on the flow or the error page;
//! [`OidcError::step`] gives Kratos' step. Texts are Kratos' where it has one. Nothing here carries a token,
//! a client secret or a code.

use thiserror::Error;

/// Kratos' `oidcerr.Step`: the phase of the callback that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    StateValidate,
    ProviderDenied,
    TokenExchange,
    IdTokenVerify,
    ClaimsDecode,
    Callback,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::StateValidate => "state_validate",
            Step::ProviderDenied => "provider_denied",
            Step::TokenExchange => "token_exchange",
            Step::IdTokenVerify => "id_token_verify",
            Step::ClaimsDecode => "claims_decode",
            Step::Callback => "callback",
        }
    }
}

#[derive(Debug, Error, Clone, PartialEq)]
pub enum OidcError {
    #[error("OpenID Connect Provider \"{0}\" is unknown or has not been configured")]
    UnknownProvider(String),
    #[error(
        "Unable to complete OpenID Connect flow because the OpenID Provider did not return the state query parameter."
    )]
    StateMissing,
    #[error("Unable to complete OpenID Connect flow because the state parameter is invalid.")]
    StateInvalid,
    #[error(
        "Unable to complete OpenID Connect flow because the query state parameter does not match the state parameter from the session cookie."
    )]
    StateMismatch,
    #[error("Unable to complete OpenID Connect flow: provider mismatch between internal state and URL.")]
    ProviderMismatch,
    #[error(
        "Unable to complete OpenID Connect flow because the OpenID Provider returned error \"{error}\": {description}"
    )]
    ProviderDenied { error: String, description: String },
    #[error(
        "Unable to complete OpenID Connect flow because the OpenID Provider did not return the code query parameter."
    )]
    CodeMissing,
    /// Discovery failed: the issuer is unreachable, answers garbage, or names another issuer.
    #[error("Unable to initialize OpenID Connect Provider: {0}")]
    Discovery(String),
    #[error("Unable to exchange the authorization code for tokens: {0}")]
    TokenExchange(String),
    #[error(
        "Authentication failed because no id_token was returned. Please accept the \"openid\" permission and try again."
    )]
    IdTokenMissing,
    /// Signature, issuer, audience, expiry or shape of an id_token.
    #[error("Could not verify id_token: {0}")]
    IdTokenInvalid(String),
    #[error("The supplied nonce does not match the nonce from the id_token")]
    NonceMismatch,
    #[error("No nonce was included in the id_token but is required by the provider")]
    NonceMissingInToken,
    #[error("No nonce was provided but is required by the provider")]
    NonceMissingInSubmission,
    #[error("The provider {0} does not support id_token verification")]
    IdTokenSubmissionUnsupported(String),
    #[error(
        "Unable to finish because one or more permissions were not granted. Please retry and accept all permissions."
    )]
    ScopeMissing,
    #[error("Unable to fetch the user's claims from the provider: {0}")]
    UserInfo(String),
    #[error("sub (Subject) claim mismatch between ID token and UserInfo endpoint")]
    SubjectMismatch,
    #[error("{0}")]
    ClaimsInvalid(String),
    #[error("{0}")]
    Mapper(String),
    #[error("{0}")]
    Misconfiguration(String),
    #[error("{0}")]
    Cipher(String),
}

impl OidcError {
    /// The HTTP status Kratos answers with (herodot's `code`).
    pub fn status(&self) -> u16 {
        match self {
            OidcError::UnknownProvider(_) => 404,
            OidcError::StateMissing
            | OidcError::StateInvalid
            | OidcError::StateMismatch
            | OidcError::ProviderMismatch
            | OidcError::ProviderDenied { .. }
            | OidcError::CodeMissing
            | OidcError::IdTokenMissing
            | OidcError::IdTokenInvalid(_)
            | OidcError::ScopeMissing
            | OidcError::SubjectMismatch
            | OidcError::Mapper(_) => 400,
            OidcError::Discovery(_)
            | OidcError::TokenExchange(_)
            | OidcError::UserInfo(_)
            | OidcError::ClaimsInvalid(_)
            | OidcError::NonceMismatch
            | OidcError::NonceMissingInToken
            | OidcError::NonceMissingInSubmission
            | OidcError::IdTokenSubmissionUnsupported(_) => 502,
            OidcError::Cipher(_) => 403,
            OidcError::Misconfiguration(_) => 500,
        }
    }

    /// herodot's `reason` (the sentence Kratos shows).
    pub fn reason(&self) -> String {
        self.to_string()
    }

    pub fn step(&self) -> Step {
        match self {
            OidcError::StateMissing
            | OidcError::StateInvalid
            | OidcError::StateMismatch
            | OidcError::ProviderMismatch => Step::StateValidate,
            OidcError::ProviderDenied { .. } => Step::ProviderDenied,
            OidcError::Discovery(_) | OidcError::TokenExchange(_) => Step::TokenExchange,
            OidcError::IdTokenMissing
            | OidcError::IdTokenInvalid(_)
            | OidcError::NonceMismatch
            | OidcError::NonceMissingInToken
            | OidcError::NonceMissingInSubmission
            | OidcError::IdTokenSubmissionUnsupported(_) => Step::IdTokenVerify,
            OidcError::ScopeMissing
            | OidcError::UserInfo(_)
            | OidcError::SubjectMismatch
            | OidcError::ClaimsInvalid(_)
            | OidcError::Mapper(_) => Step::ClaimsDecode,
            OidcError::UnknownProvider(_)
            | OidcError::Misconfiguration(_)
            | OidcError::Cipher(_)
            | OidcError::CodeMissing => Step::Callback,
        }
    }
}

/// UI message ids (`ui-messages.json`) the OIDC method puts on flows. The flow layer renders them; the texts
/// live in `sallyport-core`'s catalogue.
pub mod message_id {
    /// "Sign in with {provider}" — one per provider button on login flows.
    pub const LOGIN_WITH: u32 = 1010002;
    /// "You tried to sign in with … already used by another account …" (account linking).
    pub const LOGIN_LINK: u32 = 1010016;
    /// "Sign in and link".
    pub const LOGIN_AND_LINK: u32 = 1010017;
    /// "Confirm with {provider}".
    pub const LOGIN_WITH_AND_LINK: u32 = 1010018;
    /// "Sign up with {provider}" — one per provider button on registration flows.
    pub const REGISTRATION_WITH: u32 = 1040002;
    /// "Continue" — the button left on a registration flow whose mapped traits the schema rejected.
    pub const REGISTRATION_CONTINUE: u32 = 1040003;
    /// "Link {provider}" (settings).
    pub const SETTINGS_LINK: u32 = 1050002;
    /// "Unlink {provider}" (settings).
    pub const SETTINGS_UNLINK: u32 = 1050003;
    /// "An account with the same identifier … exists already. Please sign in to your existing account to link
    /// your social profile."
    pub const DUPLICATE_CREDENTIALS_ON_OIDC_LINK: u32 = 4000027;
    /// "You tried signing in with {credential_identifier_hint} which is already in use …"
    pub const DUPLICATE_CREDENTIALS_WITH_HINTS: u32 = 4000028;
}
