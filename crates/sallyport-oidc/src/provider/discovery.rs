//! OpenID Connect Discovery + JWKS through `openidconnect` (which checks that the document names the
//! issuer it was fetched for) over the guarded client.

use std::time::Instant;

use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType, CoreJsonWebKey,
    CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreJwsSigningAlgorithm, CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{AdditionalProviderMetadata, DiscoveryError, IssuerUrl, ProviderMetadata};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::OidcError;
use crate::http::{HttpClient, HttpError};

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub(crate) struct ExtraMetadata {
    #[serde(default)]
    code_challenge_methods_supported: Option<Vec<String>>,
}
impl AdditionalProviderMetadata for ExtraMetadata {}

type Metadata = ProviderMetadata<
    ExtraMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// What a provider told us about itself.
#[derive(Debug, Clone)]
pub(crate) struct Discovered {
    pub issuer: IssuerUrl,
    pub auth_url: Url,
    pub token_url: Option<Url>,
    pub userinfo_url: Option<Url>,
    pub jwks: CoreJsonWebKeySet,
    pub signing_algs: Vec<CoreJwsSigningAlgorithm>,
    pub pkce_s256: bool,
    /// `client_secret_basic` unless the provider only lists `client_secret_post`.
    pub secret_in_body: bool,
    pub fetched_at: Instant,
}

pub(crate) async fn discover(http: &HttpClient, issuer: &Url) -> Result<Discovered, OidcError> {
    // The document must name exactly the issuer we asked for. A parsed URL can't tell `https://x` from
    // `https://x/` (Auth0's issuers end in a slash, most others don't), so a bare host tries both.
    let text = issuer.as_str();
    let candidates: Vec<&str> = if issuer.path() == "/" {
        vec![text.trim_end_matches('/'), text]
    } else {
        vec![text]
    };
    let client = |req| async move { http.execute(req).await };
    let mut last = None;
    for candidate in candidates {
        let issuer_url =
            IssuerUrl::new(candidate.to_string()).map_err(|e| OidcError::Discovery(e.to_string()))?;
        match Metadata::discover_async(issuer_url, &client).await {
            Ok(metadata) => return Ok(summarise(metadata)),
            Err(DiscoveryError::Validation(v)) => last = Some(OidcError::Discovery(v)),
            Err(e) => return Err(discovery_error(e)),
        }
    }
    Err(last.unwrap_or_else(|| OidcError::Discovery("no issuer to discover".into())))
}

fn summarise(metadata: Metadata) -> Discovered {
    let methods = metadata.token_endpoint_auth_methods_supported();
    let secret_in_body = methods.is_some_and(|m| {
        !m.contains(&CoreClientAuthMethod::ClientSecretBasic)
            && m.contains(&CoreClientAuthMethod::ClientSecretPost)
    });
    Discovered {
        issuer: metadata.issuer().clone(),
        auth_url: metadata.authorization_endpoint().url().clone(),
        token_url: metadata.token_endpoint().map(|t| t.url().clone()),
        userinfo_url: metadata.userinfo_endpoint().map(|u| u.url().clone()),
        jwks: metadata.jwks().clone(),
        signing_algs: metadata.id_token_signing_alg_values_supported().clone(),
        pkce_s256: metadata
            .additional_metadata()
            .code_challenge_methods_supported
            .as_ref()
            .is_some_and(|m| m.iter().any(|x| x == "S256")),
        secret_in_body,
        fetched_at: Instant::now(),
    }
}

fn discovery_error(e: DiscoveryError<HttpError>) -> OidcError {
    match e {
        DiscoveryError::Request(h) => OidcError::Discovery(h.to_string()),
        DiscoveryError::Response(status, _, msg) => {
            OidcError::Discovery(format!("the provider answered with status {status}: {msg}"))
        }
        DiscoveryError::Parse(p) => OidcError::Discovery(format!("the discovery document is invalid: {p}")),
        DiscoveryError::Validation(v) => OidcError::Discovery(v),
        DiscoveryError::UrlParse(u) => OidcError::Discovery(u.to_string()),
        other => OidcError::Discovery(other.to_string()),
    }
}
