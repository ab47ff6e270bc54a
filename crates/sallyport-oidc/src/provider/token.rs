//! The authorization-code grant (RFC 6749 §4.1.3), written out rather than taken from `oauth2` so every
//! provider's quirks sit in one place: GitHub answers form-encoded unless asked for JSON and lists scopes
//! with commas, Apple wants the secret in the body, some providers accept only one client authentication.

use base64::Engine as _;
use serde_json::{Map, Value};
use url::Url;

use crate::error::OidcError;
use crate::http::HttpClient;

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientAuth {
    /// HTTP Basic (`client_secret_basic`), form-urlencoding id and secret first as RFC 6749 §2.3.1 says.
    Basic,
    /// `client_id` + `client_secret` in the body (`client_secret_post`).
    Body,
    /// Basic, and once more with the body if the provider answers `invalid_client` (Go's `AuthStyleAutoDetect`).
    AutoDetect,
}

/// The tokens a provider issued. `Debug` shows none of them.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderTokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    /// Granted scopes as the provider listed them (space- or comma-separated).
    pub scope: Option<String>,
}

impl std::fmt::Debug for ProviderTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderTokens")
            .field("refresh_token", &self.refresh_token.is_some())
            .field("id_token", &self.id_token.is_some())
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl ProviderTokens {
    pub(crate) fn granted_scopes(&self) -> Vec<&str> {
        self.scope
            .as_deref()
            .unwrap_or("")
            .split([',', ' '])
            .filter(|s| !s.is_empty())
            .collect()
    }
}

pub(crate) struct CodeGrant<'a> {
    pub token_url: &'a Url,
    pub client_id: &'a str,
    pub client_secret: &'a str,
    pub code: &'a str,
    pub redirect_uri: &'a str,
    pub pkce_verifier: Option<&'a str>,
    pub auth: ClientAuth,
}

pub(crate) async fn exchange(http: &HttpClient, grant: &CodeGrant<'_>) -> Result<ProviderTokens, OidcError> {
    let first = if grant.auth == ClientAuth::Body {
        ClientAuth::Body
    } else {
        ClientAuth::Basic
    };
    match attempt(http, grant, first).await {
        Err(Attempt::InvalidClient(_)) if grant.auth == ClientAuth::AutoDetect => {
            attempt(http, grant, ClientAuth::Body)
                .await
                .map_err(Attempt::into_error)
        }
        other => other.map_err(Attempt::into_error),
    }
}

enum Attempt {
    InvalidClient(String),
    Failed(OidcError),
}

impl Attempt {
    fn into_error(self) -> OidcError {
        match self {
            Attempt::InvalidClient(m) => OidcError::TokenExchange(m),
            Attempt::Failed(e) => e,
        }
    }
}

fn form_escape(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn attempt(
    http: &HttpClient,
    grant: &CodeGrant<'_>,
    auth: ClientAuth,
) -> Result<ProviderTokens, Attempt> {
    let fail = |m: String| Attempt::Failed(OidcError::TokenExchange(m));
    let mut form: Vec<(&str, &str)> = vec![
        ("grant_type", "authorization_code"),
        ("code", grant.code),
        ("redirect_uri", grant.redirect_uri),
    ];
    if let Some(v) = grant.pkce_verifier {
        form.push(("code_verifier", v));
    }
    let mut req = http
        .request(reqwest::Method::POST, grant.token_url)
        .map_err(|e| fail(e.to_string()))?
        .header("Accept", "application/json");
    if auth == ClientAuth::Body {
        form.push(("client_id", grant.client_id));
        form.push(("client_secret", grant.client_secret));
    } else {
        let credentials = format!(
            "{}:{}",
            form_escape(grant.client_id),
            form_escape(grant.client_secret)
        );
        let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
        req = req.header("Authorization", format!("Basic {encoded}"));
    }
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let res = http
        .send(
            req.header("Content-Type", "application/x-www-form-urlencoded")
                .body(body),
        )
        .await
        .map_err(|e| fail(e.to_string()))?;
    let fields = parse_body(&res.body, &res.headers);
    if let Some(error) = fields.get("error").and_then(Value::as_str) {
        let description = fields
            .get("error_description")
            .and_then(Value::as_str)
            .unwrap_or("");
        let message = format!("the provider answered \"{error}\": {description}");
        return Err(if error == "invalid_client" {
            Attempt::InvalidClient(message)
        } else {
            fail(message)
        });
    }
    if res.status != 200 {
        let message = format!("the token endpoint answered with status {}", res.status);
        return Err(if res.status == 401 {
            Attempt::InvalidClient(message)
        } else {
            fail(message)
        });
    }
    let text = |k: &str| {
        fields
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let access_token =
        text("access_token").ok_or_else(|| fail("the provider returned no access_token".into()))?;
    Ok(ProviderTokens {
        access_token,
        refresh_token: text("refresh_token"),
        id_token: text("id_token"),
        scope: text("scope"),
    })
}

fn parse_body(body: &[u8], headers: &reqwest::header::HeaderMap) -> Map<String, Value> {
    if let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(body) {
        return o;
    }
    let form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded") || c.starts_with("text/plain"));
    if form {
        return url::form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
    }
    Map::new()
}
