//! Second-factor domain logic for Sallyport.
//!
//! This crate is pure domain logic (no HTTP, no SQL). It provides:
//!
//! * **TOTP** ([`new_totp`], [`parse_totp_url`], [`verify_totp`], [`qr_png_data_uri`], …),
//!   compatible with Ory Kratos (pquerna/otp defaults: SHA-1, 6 digits, 30 s period,
//!   ±1 step skew, 160-bit secret). Credential config: `{"totp_url": "otpauth://totp/…"}`.
//! * **Lookup secrets** (recovery codes: [`generate_lookup_codes`],
//!   [`lookup_credential_config`], [`verify_lookup_code`], …). Unlike Kratos, new codes are
//!   stored as keyed HMAC-SHA256 hashes; Kratos' plaintext format is still accepted.
//! * **AAL helpers** ([`is_second_factor`]).
//!
//! # Differences from Kratos
//!
//! * TOTP codes cannot be replayed: [`verify_totp`] returns the matched time step and
//!   refuses any step `<=` the last one used (Kratos accepts the same code for its whole
//!   ±1-step window). The caller persists that step, e.g. with
//!   [`totp_config_with_last_used_step`] (an extra `last_used_step` field in the credential
//!   config, ignored by Kratos).
//! * Lookup codes are stored hashed (see [`lookup`] for the format), each with an encrypted
//!   copy ([`lookup_credential_config_sealed`]) so that settings can reveal them as Kratos does
//!   ([`reveal_lookup_codes_with`]); a hash-only config ([`lookup_credential_config`]) cannot
//!   be revealed ([`can_reveal`] is `false`).
//! * Lookup code input is normalised (trimmed, lower-cased, spaces and dashes removed);
//!   Kratos compares the raw input.
//! * TOTP secrets that are empty or not valid base32 are rejected by [`parse_totp_url`]
//!   (Kratos accepts any URL and then never validates a code for them).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod aal;
mod base32;
pub mod lookup;
mod png;
mod qr;
mod totp;

pub use aal::{CREDENTIAL_TYPE_LOOKUP, CREDENTIAL_TYPE_TOTP, CREDENTIAL_TYPE_WEBAUTHN, is_second_factor};
pub use lookup::{
    LOOKUP_CODE_ALPHABET, LOOKUP_CODE_COUNT, LOOKUP_CODE_LENGTH, LookupResult, RevealedLookupCode,
    can_reveal, generate_lookup_codes, hash_plaintext_lookup_config, lookup_credential_config,
    lookup_credential_config_sealed, normalize_lookup_code, remaining_lookup_codes, reveal_lookup_codes,
    reveal_lookup_codes_with, verify_lookup_code,
};
pub use qr::{QR_IMAGE_SIZE, qr_png, qr_png_data_uri, try_qr_png_data_uri};
pub use totp::{
    TOTP_DIGITS, TOTP_PERIOD_SECONDS, TOTP_SECRET_BYTES, TOTP_SKEW_STEPS, TotpKey, generate_totp_code,
    new_totp, parse_totp_url, totp_config_with_last_used_step, totp_credential_config,
    totp_last_used_step_from_config, totp_step, totp_url_from_config, verify_totp,
};

/// Errors of this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MfaError {
    /// The `otpauth://` URL could not be understood.
    #[error("invalid TOTP URL: {0}")]
    InvalidTotpUrl(String),
    /// The TOTP secret is missing, empty or not valid base32.
    #[error("invalid TOTP secret: {0}")]
    InvalidTotpSecret(String),
    /// The QR code could not be generated (the payload is too long).
    #[error("could not render QR code: {0}")]
    Qr(String),
}
