//! id_token verification: signature against the provider's JWKS, issuer, expiry (by `openidconnect`), then
//! audience (the client id, or for native submissions also `additional_id_token_audiences`, as Kratos'
//! `verifyToken` does) and the nonce here.

use std::str::FromStr;

use base64::Engine as _;
use openidconnect::core::{CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJwsSigningAlgorithm};
use openidconnect::{ClaimsVerificationError, ClientId, ClientSecret, IssuerUrl, Nonce};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use crate::claims::Claims;
use crate::error::OidcError;

/// What to demand of the `nonce` claim.
pub(crate) enum NonceRule<'a> {
    /// The browser ceremony: the token must carry exactly this nonce.
    Exact(&'a str),
    /// A native submission (Kratos' `ProcessIDToken`): a nonce in the token must match the submitted one;
    /// a token without one passes only if the provider may omit it (`skip_allowed`).
    Submitted {
        submitted: Option<&'a str>,
        skip_allowed: fn(&Claims) -> bool,
    },
}

pub(crate) struct Expectation<'a> {
    pub issuer: &'a IssuerUrl,
    pub jwks: &'a CoreJsonWebKeySet,
    pub algs: &'a [CoreJwsSigningAlgorithm],
    pub client_id: &'a str,
    pub client_secret: &'a str,
    pub audiences: &'a [String],
}

/// Verifies `raw` and returns its claims; the error says which check failed (without the token).
pub(crate) fn verify(raw: &str, expect: &Expectation<'_>, nonce: NonceRule<'_>) -> Result<Claims, OidcError> {
    let token = CoreIdToken::from_str(raw.trim())
        .map_err(|e| OidcError::IdTokenInvalid(format!("the id_token is malformed: {e}")))?;
    let client_id = ClientId::new(expect.client_id.to_string());
    let verifier = if expect.client_secret.is_empty() {
        CoreIdTokenVerifier::new_public_client(client_id, expect.issuer.clone(), expect.jwks.clone())
    } else {
        CoreIdTokenVerifier::new_confidential_client(
            client_id,
            ClientSecret::new(expect.client_secret.to_string()),
            expect.issuer.clone(),
            expect.jwks.clone(),
        )
    };
    let mut algs: Vec<CoreJwsSigningAlgorithm> = expect
        .algs
        .iter()
        .filter(|a| **a != CoreJwsSigningAlgorithm::None)
        .cloned()
        .collect();
    if algs.is_empty() {
        algs.push(CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256);
    }
    // Audience is checked below against the whole allow-list; openidconnect would only know the client id.
    let verifier = verifier
        .set_allowed_algs(algs)
        .require_audience_match(false)
        .set_other_audience_verifier_fn(|_| true);
    let verified = token
        .claims(&verifier, |_: Option<&Nonce>| Ok(()))
        .map_err(claims_error)?;

    let allowed: Vec<&str> = std::iter::once(expect.client_id)
        .chain(expect.audiences.iter().map(String::as_str))
        .collect();
    if !verified.audiences().iter().any(|a| allowed.contains(&a.as_str())) {
        return Err(OidcError::IdTokenInvalid(format!(
            "token audience didn't match allowed audiences: {allowed:?}"
        )));
    }

    let claims = Claims::from_raw(payload(raw)?);
    match nonce {
        NonceRule::Exact(expected) => {
            if !bool::from(claims.nonce.as_bytes().ct_eq(expected.as_bytes())) || claims.nonce.is_empty() {
                return Err(OidcError::NonceMismatch);
            }
        }
        NonceRule::Submitted {
            submitted,
            skip_allowed,
        } => {
            if claims.nonce.is_empty() {
                if !skip_allowed(&claims) {
                    return Err(OidcError::NonceMissingInToken);
                }
            } else {
                let submitted = submitted
                    .filter(|s| !s.is_empty())
                    .ok_or(OidcError::NonceMissingInSubmission)?;
                if !bool::from(claims.nonce.as_bytes().ct_eq(submitted.as_bytes())) {
                    return Err(OidcError::NonceMismatch);
                }
            }
        }
    }
    Ok(claims)
}

/// The payload as JSON (already verified by the caller) — openidconnect's typed claims drop what they don't know.
fn payload(raw: &str) -> Result<Map<String, Value>, OidcError> {
    let part = raw
        .trim()
        .split('.')
        .nth(1)
        .ok_or_else(|| OidcError::IdTokenInvalid("the id_token is malformed".into()))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| OidcError::IdTokenInvalid("the id_token payload is not base64url".into()))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(o)) => Ok(o),
        _ => Err(OidcError::IdTokenInvalid(
            "the id_token payload is not a JSON object".into(),
        )),
    }
}

/// Reads an id_token's payload without verifying it (Microsoft: the tenant decides which issuer to trust).
pub(crate) fn unverified_payload(raw: &str) -> Result<Map<String, Value>, OidcError> {
    payload(raw)
}

fn claims_error(e: ClaimsVerificationError) -> OidcError {
    let text = match &e {
        ClaimsVerificationError::Expired(m) => format!("the id_token is expired: {m}"),
        ClaimsVerificationError::InvalidIssuer(m) => {
            format!("the id_token was issued by another issuer: {m}")
        }
        ClaimsVerificationError::InvalidAudience(m) => format!("the id_token is for another audience: {m}"),
        ClaimsVerificationError::SignatureVerification(s) => {
            format!("the id_token signature is invalid: {s}")
        }
        other => other.to_string(),
    };
    OidcError::IdTokenInvalid(text)
}

/// Whether a failure may be a key the cached JWKS doesn't have yet (rotation): worth one re-discovery.
pub(crate) fn may_be_key_rotation(e: &OidcError) -> bool {
    matches!(e, OidcError::IdTokenInvalid(m) if m.contains("signature"))
}
