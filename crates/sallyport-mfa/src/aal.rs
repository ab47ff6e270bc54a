//! Authenticator assurance level helpers.

use serde_json::Value;

/// Credential type of TOTP credentials.
pub const CREDENTIAL_TYPE_TOTP: &str = "totp";
/// Credential type of lookup secrets (recovery codes).
pub const CREDENTIAL_TYPE_LOOKUP: &str = "lookup_secret";
/// Credential type of WebAuthn credentials.
pub const CREDENTIAL_TYPE_WEBAUTHN: &str = "webauthn";

/// Whether a credential counts as an active second factor (it makes AAL2 available),
/// following Kratos' `CountActiveMultiFactorCredentials` of each strategy:
///
/// * `totp`: a non-empty `totp_url` (Kratos only requires the URL to parse, so this does
///   not validate the secret either);
/// * `lookup_secret`: a non-empty `recovery_codes` list (even if every code was used, as
///   in Kratos);
/// * `webauthn`: at least one credential that is not passwordless (`is_passwordless`
///   absent or `false`).
///
/// Every other type (`password`, `oidc`, `code`, `passkey`, …) returns `false`; whether
/// the `code` method may be used as a second factor is configuration, not credential data.
pub fn is_second_factor(credential_type: &str, config: &Value) -> bool {
    match credential_type {
        CREDENTIAL_TYPE_TOTP => config.get("totp_url").and_then(Value::as_str).is_some_and(|url| {
            let url = url.trim();
            !url.is_empty() && !url.chars().any(char::is_control)
        }),
        CREDENTIAL_TYPE_LOOKUP => config
            .get("recovery_codes")
            .and_then(Value::as_array)
            .is_some_and(|codes| !codes.is_empty()),
        CREDENTIAL_TYPE_WEBAUTHN => {
            config
                .get("credentials")
                .and_then(Value::as_array)
                .is_some_and(|credentials| {
                    credentials.iter().any(|credential| {
                        credential.is_object()
                            && !credential
                                .get("is_passwordless")
                                .and_then(Value::as_bool)
                                .unwrap_or(false)
                    })
                })
        }
        _ => false,
    }
}
