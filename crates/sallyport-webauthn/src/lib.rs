//! WebAuthn and passkey ceremonies (Kratos' `passkey` and `webauthn` methods) on webauthn-rs-core,
//! with credentials kept in Kratos' credential config format (`identity/credentials_webauthn.go`),
//! so credentials imported from a Kratos database keep working and ours stay readable by Kratos.
//!
//! The ceremony state (challenge, policy) is plain JSON the caller keeps in the flow's internal
//! context; binding it to the flow and deleting it after use (single use) is the caller's job.

mod ceremony;
mod cose;
mod kratos;

pub use ceremony::{
    Ceremonies, Error, LoginOutcome, Registered, RelyingParty, UserVerification, parse_assertion,
};
pub use kratos::{Authenticator, CredentialFlags, StoredCredential, WebAuthnConfig, random_user_handle};
pub use webauthn_rs_core::proto::PublicKeyCredential as Assertion;

#[cfg(feature = "soft-authenticator")]
pub mod soft;
