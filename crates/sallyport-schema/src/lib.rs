//! Identity schemas: loading, traits validation, the ory.sh/kratos extension, UI nodes for traits.
//!
//! Kratos validates traits with ory/jsonschema and collects credential identifiers and addresses
//! through extension hooks that fire while validating. Here the `jsonschema` crate does the
//! validation (the `ory.sh/kratos` keyword is registered as a no-op so it is accepted), and a
//! separate walk over schema + traits collects what the extension would have collected.

mod extension;
mod gofmt;
mod load;
mod messages;
mod meta;
mod nodes;
mod normalize;
mod registry;
pub mod sort;
mod walk;

pub use extension::{
    CodeConfig, CredentialsConfig, ExtensionConfig, IdentifierFlag, OrganizationsConfig, PasskeyConfig,
    TotpConfig, ViaConfig,
};
pub use load::{RemoteGet, plain};
pub use nodes::{keys_in_order, nodes_from_json_schema};
pub use normalize::{is_valid_email, is_valid_phone, normalize_address, normalize_identifier};
pub use registry::{IdentitySchema, SchemaRegistry};

use sallyport_core::text::Message;

/// Everything the `ory.sh/kratos` extension collects from valid traits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extracted {
    /// Normalized (`x.GracefulNormalization`), unique, in schema order.
    pub password_identifiers: Vec<String>,
    pub webauthn_identifiers: Vec<String>,
    /// Sorted by address then channel, deduplicated, as Kratos stores them in the code credential.
    pub code_identifiers: Vec<CodeAddress>,
    /// The last flagged trait wins, as in Kratos' TOTP extension.
    pub totp_account_name: Option<String>,
    /// The first non-empty flagged trait wins, as in Kratos' passkey extension.
    pub passkey_display_name: Option<String>,
    /// `(via, normalized value)`, unique by via + value.
    pub verifiable_addresses: Vec<(String, String)>,
    pub recovery_addresses: Vec<(String, String)>,
    /// The traits to store: Kratos rewrites phone numbers used as SMS identifiers or
    /// addresses to E.164 before validating, so stored traits match the stored identifiers.
    pub traits: serde_json::Value,
}

impl Extracted {
    /// The code credential's `identifiers`: the unique addresses in `code_identifiers` order.
    pub fn code_identifier_values(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for a in &self.code_identifiers {
            if !out.contains(&a.address) {
                out.push(a.address.clone());
            }
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CodeAddress {
    /// `"email"` or `"sms"`.
    pub via: String,
    pub address: String,
}

/// One validation message, placed on a node (`traits.email`) or on the flow (`None`).
#[derive(Debug, Clone, PartialEq)]
pub struct TraitError {
    pub field: Option<String>,
    pub message: Message,
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("identity schema {id:?} ({}) could not be loaded: {reason}", short_url(.url))]
    Load { id: String, url: String, reason: String },
    #[error("identity schema {id:?} ({}) is invalid: {reason}", short_url(.url))]
    Invalid { id: String, url: String, reason: String },
    #[error("identity.default_schema_id {0:?} does not name a configured identity schema")]
    UnknownDefault(String),
    #[error("no identity schemas are configured (identity.schemas is empty)")]
    Empty,
}

/// `base64://` URLs carry the whole schema; error messages only need enough to recognize it.
fn short_url(url: &str) -> String {
    const MAX: usize = 80;
    match url.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &url[..cut]),
        None => url.to_string(),
    }
}
