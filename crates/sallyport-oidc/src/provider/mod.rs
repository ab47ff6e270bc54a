//! One configured provider and its ceremony: the authorization URL, the callback (code exchange, id_token,
//! claims), and native id_token submissions.

pub mod apple;
mod discovery;
mod id_token;
mod token;
mod user_api;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;
use uuid::Uuid;

use crate::cipher::Cipher;
use crate::claims::Claims;
use crate::config::{ClaimsSource, OidcConfig, PkceMode, ProviderConfig, ProviderKind, SubjectSource};
use crate::error::OidcError;
use crate::http::HttpClient;
use crate::mapper::{ClaimsMapper, IdentityContext, MappedIdentity};
use crate::state::{CallbackParams, FlowKind, PendingAuth, new_state, random_token};

use discovery::Discovered;
use id_token::{Expectation, NonceRule};
pub use token::ProviderTokens;
use token::{ClientAuth, CodeGrant};

/// Authorization codes are short; anything longer is not worth sending to the provider.
const MAX_CODE_LEN: usize = 4096;
/// How long discovery documents and key sets are reused before being fetched again.
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
/// A signature failure re-fetches the key set (rotation), but not more often than this.
const REDISCOVER_AFTER: Duration = Duration::from_secs(30);

/// Where a provider lives. Filled from the provider kind's well-known addresses and the config; public so
/// tests and private deployments (GitHub Enterprise, a proxy) can point an adapter elsewhere.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoints {
    /// OpenID Connect issuer (discovery + JWKS), for the kinds that speak OpenID Connect.
    pub issuer: Option<Url>,
    /// Overrides the discovered authorization endpoint (required for plain OAuth2 kinds).
    pub auth_url: Option<Url>,
    /// Overrides the discovered token endpoint (required for plain OAuth2 kinds).
    pub token_url: Option<Url>,
    /// Base of the user API (plain OAuth2 kinds) or Microsoft Graph.
    pub api_base: Option<Url>,
    /// Microsoft: `https://login.microsoftonline.com`; the tenant's issuer is `<base>/<tid>/v2.0`.
    pub microsoft_login_base: Url,
}

fn url(s: &str) -> Option<Url> {
    Url::parse(s).ok()
}

impl Endpoints {
    fn for_config(c: &ProviderConfig) -> Endpoints {
        let mut e = Endpoints {
            issuer: None,
            auth_url: None,
            token_url: None,
            api_base: None,
            microsoft_login_base: Url::parse("https://login.microsoftonline.com").expect("static URL"),
        };
        match c.kind {
            ProviderKind::Generic => e.issuer = c.issuer_url.clone(),
            ProviderKind::Google => e.issuer = url("https://accounts.google.com"),
            ProviderKind::LinkedinV2 => e.issuer = url("https://www.linkedin.com/oauth"),
            ProviderKind::Apple => {
                e.issuer = url(apple::ISSUER);
                e.auth_url = url("https://appleid.apple.com/auth/authorize");
                e.token_url = url("https://appleid.apple.com/auth/token");
            }
            ProviderKind::Microsoft => {
                let tenant = c.microsoft_tenant.as_deref().unwrap_or("common");
                e.auth_url = url(&format!(
                    "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize"
                ));
                e.token_url = url(&format!(
                    "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"
                ));
                e.api_base = url("https://graph.microsoft.com/v1.0");
            }
            ProviderKind::Github | ProviderKind::GithubApp => {
                e.auth_url = url("https://github.com/login/oauth/authorize");
                e.token_url = url("https://github.com/login/oauth/access_token");
                e.api_base = url("https://api.github.com");
            }
            ProviderKind::Gitlab => {
                let base = c.issuer_url.clone().or_else(|| url("https://gitlab.com"));
                e.auth_url = base.as_ref().and_then(|b| b.join_path("oauth/authorize"));
                e.token_url = base.as_ref().and_then(|b| b.join_path("oauth/token"));
                e.api_base = base;
            }
            ProviderKind::Auth0 => {
                let base = c.issuer_url.clone();
                e.auth_url = base.as_ref().and_then(|b| b.join_path("authorize"));
                e.token_url = base.as_ref().and_then(|b| b.join_path("oauth/token"));
                e.api_base = base;
            }
            ProviderKind::Discord => {
                e.auth_url = url("https://discord.com/api/oauth2/authorize");
                e.token_url = url("https://discord.com/api/oauth2/token");
                e.api_base = url("https://discord.com/api");
            }
            ProviderKind::Slack => {
                e.auth_url = url("https://slack.com/oauth/authorize");
                e.token_url = url("https://slack.com/api/oauth.access");
                e.api_base = url("https://slack.com/api");
            }
            ProviderKind::Facebook => {
                e.auth_url = url("https://facebook.com/dialog/oauth");
                e.token_url = url("https://graph.facebook.com/oauth/access_token");
                e.api_base = url("https://graph.facebook.com");
            }
            ProviderKind::Spotify => {
                e.auth_url = url("https://accounts.spotify.com/authorize");
                e.token_url = url("https://accounts.spotify.com/api/token");
                e.api_base = url("https://api.spotify.com/v1");
            }
            _ => {}
        }
        // An explicit auth_url/token_url in the config wins (Kratos documents them for generic providers).
        if let Some(a) = &c.auth_url {
            e.auth_url = Some(a.clone());
        }
        if let Some(t) = &c.token_url {
            e.token_url = Some(t.clone());
        }
        e
    }
}

trait JoinPath {
    fn join_path(&self, path: &str) -> Option<Url>;
}

impl JoinPath for Url {
    fn join_path(&self, path: &str) -> Option<Url> {
        let mut u = self.clone();
        u.set_path(&format!("{}/{}", self.path().trim_end_matches('/'), path));
        Some(u)
    }
}

/// Options of one authorization request.
#[derive(Debug, Clone, Default)]
pub struct AuthOptions {
    /// The submission's `upstream_parameters`. Only `hd`, `prompt`, `auth_type` and `acr_values` are
    /// forwarded (Kratos' allow-list; `login_hint` is dropped on purpose, see Kratos' `UpstreamParameters`).
    pub upstream_parameters: Vec<(String, String)>,
    /// A refresh (re-authentication) login: asks the provider to prompt again.
    pub refresh: bool,
}

impl AuthOptions {
    /// Reads `upstream_parameters` from a submission body (an object of strings; other values are ignored).
    pub fn with_upstream_parameters(mut self, value: Option<&Value>) -> AuthOptions {
        if let Some(Value::Object(o)) = value {
            for (k, v) in o {
                if let Value::String(s) = v {
                    self.upstream_parameters.push((k.clone(), s.clone()));
                }
            }
        }
        self
    }
}

const UPSTREAM_ALLOWED: &[&str] = &["hd", "prompt", "auth_type", "acr_values"];

/// Where to send the browser, and what to keep on the flow until it comes back.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub url: Url,
    pub pending: PendingAuth,
}

/// A finished callback or id_token submission.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub claims: Claims,
    /// `None` for an id_token submission (nothing was exchanged).
    pub tokens: Option<ProviderTokens>,
    /// The provider's `acr`/`amr` match `aal2_acr_values`/`aal2_amr_values`.
    pub upstream_aal2: bool,
}

/// Kratos' `identityCredentialsOidcProvider` token fields, encrypted with `secrets.cipher`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptedTokens {
    #[serde(default)]
    pub initial_id_token: String,
    #[serde(default)]
    pub initial_access_token: String,
    #[serde(default)]
    pub initial_refresh_token: String,
}

impl ProviderTokens {
    pub fn encrypt(&self, cipher: &Cipher) -> Result<EncryptedTokens, OidcError> {
        Ok(EncryptedTokens {
            initial_id_token: cipher.encrypt(self.id_token.as_deref().unwrap_or("").as_bytes())?,
            initial_access_token: cipher.encrypt(self.access_token.as_bytes())?,
            initial_refresh_token: cipher.encrypt(self.refresh_token.as_deref().unwrap_or("").as_bytes())?,
        })
    }
}

impl EncryptedTokens {
    /// Reverses [`ProviderTokens::encrypt`] (the admin API's `include_credential=oidc` shows them decrypted).
    pub fn decrypt(&self, cipher: &Cipher) -> Result<ProviderTokens, OidcError> {
        let text = |s: &str| -> Result<Option<String>, OidcError> {
            let bytes = cipher.decrypt(s)?;
            let s = String::from_utf8(bytes)
                .map_err(|_| OidcError::Cipher("the decrypted token is not UTF-8".into()))?;
            Ok(Some(s).filter(|s| !s.is_empty()))
        };
        Ok(ProviderTokens {
            access_token: text(&self.initial_access_token)?.unwrap_or_default(),
            refresh_token: text(&self.initial_refresh_token)?,
            id_token: text(&self.initial_id_token)?,
            scope: None,
        })
    }
}

/// One configured provider, ready to sign people in.
pub struct Provider {
    config: ProviderConfig,
    redirect_uri: Url,
    endpoints: Endpoints,
    http: HttpClient,
    mapper: ClaimsMapper,
    discovered: Mutex<HashMap<String, Arc<Discovered>>>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("config", &self.config)
            .field("redirect_uri", &self.redirect_uri.as_str())
            .finish_non_exhaustive()
    }
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn speaks_oidc(kind: ProviderKind) -> bool {
    matches!(
        kind,
        ProviderKind::Generic
            | ProviderKind::Google
            | ProviderKind::Apple
            | ProviderKind::Microsoft
            | ProviderKind::LinkedinV2
    )
}

impl Provider {
    /// `redirect_base` is `selfservice.methods.oidc.config.base_redirect_uri` or the public base URL.
    pub fn new(config: ProviderConfig, redirect_base: &Url, http: HttpClient) -> Provider {
        let redirect_uri = config.redirect_uri(redirect_base);
        let endpoints = Endpoints::for_config(&config);
        let mapper = ClaimsMapper::new(config.mapper_url.clone());
        Provider {
            config,
            redirect_uri,
            endpoints,
            http,
            mapper,
            discovered: Mutex::new(HashMap::new()),
        }
    }

    /// Points the adapter at other addresses (tests, GitHub Enterprise, proxies).
    pub fn with_endpoints(mut self, change: impl FnOnce(&mut Endpoints)) -> Provider {
        change(&mut self.endpoints);
        self
    }

    pub fn config(&self) -> &ProviderConfig {
        &self.config
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    pub fn redirect_uri(&self) -> &Url {
        &self.redirect_uri
    }

    pub fn mapper(&self) -> &ClaimsMapper {
        &self.mapper
    }

    /// Whether a callback for this provider arrives as a form POST (Apple asks for `form_post` when it is
    /// to send the user's name or email).
    pub fn uses_form_post(&self) -> bool {
        self.config.kind == ProviderKind::Apple
            && self.config.scope.iter().any(|s| s == "email" || s == "name")
    }

    /// The scopes sent (OpenID Connect kinds always ask for `openid`; Google moves `offline_access` into
    /// `access_type=offline`).
    fn scopes(&self) -> Vec<String> {
        let mut scopes = self.config.scope.clone();
        if speaks_oidc(self.config.kind) && !scopes.iter().any(|s| s == "openid") {
            scopes.push("openid".into());
        }
        if self.config.kind == ProviderKind::Google {
            scopes.retain(|s| s != "offline_access");
        }
        scopes
    }

    async fn discovery(&self, issuer: &Url, fresh: bool) -> Result<Arc<Discovered>, OidcError> {
        let key = issuer.as_str().to_string();
        if let Some(d) = self.discovered.lock().ok().and_then(|m| m.get(&key).cloned()) {
            let age = d.fetched_at.elapsed();
            if age < DISCOVERY_TTL && !(fresh && age >= REDISCOVER_AFTER) {
                return Ok(d);
            }
        }
        let d = Arc::new(discovery::discover(&self.http, issuer).await?);
        if let Ok(mut m) = self.discovered.lock() {
            m.insert(key, d.clone());
        }
        Ok(d)
    }

    async fn own_discovery(&self) -> Result<Option<Arc<Discovered>>, OidcError> {
        match &self.endpoints.issuer {
            Some(issuer) if speaks_oidc(self.config.kind) => Ok(Some(self.discovery(issuer, false).await?)),
            _ => Ok(None),
        }
    }

    /// Builds the URL to send the browser to and the record to keep on the flow.
    pub async fn authorization_request(
        &self,
        flow_id: Uuid,
        flow_kind: FlowKind,
        options: &AuthOptions,
    ) -> Result<AuthorizationRequest, OidcError> {
        // Discovery is needed for the endpoint or for PKCE auto-detection, not otherwise.
        let discovered = if self.endpoints.auth_url.is_none() || self.config.pkce == PkceMode::Auto {
            self.own_discovery().await?
        } else {
            None
        };
        let auth_url = self
            .endpoints
            .auth_url
            .clone()
            .or_else(|| discovered.as_ref().map(|d| d.auth_url.clone()))
            .ok_or_else(|| {
                OidcError::Misconfiguration(format!("provider {} has no authorization URL", self.config.id))
            })?;
        let pkce = match self.config.pkce {
            PkceMode::Never => false,
            PkceMode::Force => true,
            PkceMode::Auto => match (&discovered, &self.config.issuer_url) {
                (Some(d), _) => d.pkce_s256,
                // Plain OAuth2 kinds with an `issuer_url` (GitLab, Auth0): Kratos probes discovery for PKCE
                // support and goes on without PKCE if the probe fails.
                (None, Some(issuer)) => match self.discovery(issuer, false).await {
                    Ok(d) => d.pkce_s256,
                    Err(e) => {
                        tracing::warn!(provider = %self.config.id, error = %e, "PKCE auto-detection failed; continuing without PKCE");
                        false
                    }
                },
                (None, None) => false,
            },
        };
        let pkce_verifier = if pkce { Some(random_token(32)?) } else { None };
        let nonce = if speaks_oidc(self.config.kind) {
            Some(random_token(24)?)
        } else {
            None
        };
        let state = new_state(flow_kind, flow_id)?;

        let mut url = auth_url;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_id", &self.config.client_id);
            q.append_pair("redirect_uri", self.redirect_uri.as_str());
            q.append_pair("response_type", "code");
            let scopes = self.scopes();
            if !scopes.is_empty() {
                q.append_pair("scope", &scopes.join(" "));
            }
            q.append_pair("state", &state);
            if let Some(n) = &nonce {
                q.append_pair("nonce", n);
            }
            if let Some(v) = &pkce_verifier {
                let challenge =
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes()));
                q.append_pair("code_challenge", &challenge);
                q.append_pair("code_challenge_method", "S256");
            }
            let oidc_like = speaks_oidc(self.config.kind);
            if let Some(claims) = &self.config.requested_claims
                && oidc_like
            {
                q.append_pair("claims", &claims.to_string());
            }
            let mut prompt_set = false;
            match self.config.kind {
                ProviderKind::Discord => {
                    q.append_pair("prompt", if options.refresh { "consent" } else { "none" });
                    prompt_set = true;
                }
                _ if options.refresh && oidc_like => {
                    q.append_pair("prompt", "login");
                    prompt_set = true;
                }
                _ => {}
            }
            if self.config.kind == ProviderKind::Google
                && self.config.scope.iter().any(|s| s == "offline_access")
            {
                q.append_pair("access_type", "offline");
            }
            if self.uses_form_post() {
                q.append_pair("response_mode", "form_post");
            }
            for (k, v) in &options.upstream_parameters {
                if UPSTREAM_ALLOWED.contains(&k.as_str()) && !(prompt_set && k == "prompt") {
                    q.append_pair(k, v);
                }
            }
        }
        Ok(AuthorizationRequest {
            url,
            pending: PendingAuth {
                provider_id: self.config.id.clone(),
                flow_id,
                flow_kind,
                state,
                nonce,
                pkce_verifier,
                redirect_uri: self.redirect_uri.to_string(),
                created_at: now_unix(),
            },
        })
    }

    /// Finishes a callback: checks it against the flow's record, exchanges the code, verifies the id_token
    /// and reads the claims. The caller must drop `pending` from the flow whatever the outcome.
    pub async fn complete(
        &self,
        pending: &PendingAuth,
        callback: &CallbackParams,
    ) -> Result<Authenticated, OidcError> {
        if pending.provider_id != self.config.id {
            return Err(OidcError::ProviderMismatch);
        }
        let code = pending.verify_callback(callback)?;
        if code.len() > MAX_CODE_LEN {
            return Err(OidcError::TokenExchange(
                "the authorization code is too long".into(),
            ));
        }
        let discovered = self.own_discovery().await?;
        let token_url = self
            .endpoints
            .token_url
            .clone()
            .or_else(|| discovered.as_ref().and_then(|d| d.token_url.clone()))
            .ok_or_else(|| {
                OidcError::Misconfiguration(format!("provider {} has no token URL", self.config.id))
            })?;
        let (secret, auth) = match self.config.kind {
            ProviderKind::Apple => (self.apple_client_secret()?, ClientAuth::Body),
            _ if discovered.as_ref().is_some_and(|d| d.secret_in_body) => {
                (self.config.client_secret.clone(), ClientAuth::Body)
            }
            _ if speaks_oidc(self.config.kind) => (self.config.client_secret.clone(), ClientAuth::Basic),
            _ => (self.config.client_secret.clone(), ClientAuth::AutoDetect),
        };
        let tokens = token::exchange(
            &self.http,
            &CodeGrant {
                token_url: &token_url,
                client_id: &self.config.client_id,
                client_secret: &secret,
                code,
                redirect_uri: &pending.redirect_uri,
                pkce_verifier: pending.pkce_verifier.as_deref(),
                auth,
            },
        )
        .await?;

        let mut claims = match self.config.kind {
            k if speaks_oidc(k) => {
                let nonce = pending.nonce.as_deref().ok_or(OidcError::StateInvalid)?;
                self.oidc_claims(discovered.as_deref(), &tokens, nonce).await?
            }
            kind => {
                let api = self.endpoints.api_base.as_ref().ok_or_else(|| {
                    OidcError::Misconfiguration(format!("provider {} has no user API URL", self.config.id))
                })?;
                let issuer = match kind {
                    ProviderKind::Discord => "https://discord.com/api/oauth2/".to_string(),
                    ProviderKind::Slack => "https://slack.com/oauth/".to_string(),
                    ProviderKind::Facebook => "https://graph.facebook.com/me".to_string(),
                    ProviderKind::Gitlab | ProviderKind::Auth0 => api.to_string(),
                    _ => token_url.to_string(),
                };
                user_api::claims(
                    kind,
                    &self.http,
                    api,
                    &issuer,
                    &self.config.scope,
                    &secret,
                    &tokens,
                )
                .await?
            }
        };
        if self.config.kind == ProviderKind::Apple {
            apple::apply_user_field(callback.user.as_deref(), &mut claims);
        }
        claims.validate()?;
        let upstream_aal2 = self.config.aal2_from_upstream(Some(&claims.acr), &claims.amr);
        Ok(Authenticated {
            claims,
            tokens: Some(tokens),
            upstream_aal2,
        })
    }

    fn apple_client_secret(&self) -> Result<String, OidcError> {
        let c = &self.config;
        apple::client_secret(
            c.apple_team_id.as_deref().unwrap_or(""),
            c.apple_private_key_id.as_deref().unwrap_or(""),
            &c.client_id,
            c.apple_private_key.as_deref().unwrap_or(""),
        )
        .map_err(OidcError::Misconfiguration)
    }

    /// Verifies `raw` against `discovered` (and once more after re-fetching the keys if the signature fails).
    async fn verify_with<'n>(
        &self,
        issuer: &Url,
        raw: &str,
        audiences: &[String],
        rule: impl Fn() -> NonceRule<'n>,
    ) -> Result<Claims, OidcError> {
        let mut discovered = self.discovery(issuer, false).await?;
        for attempt in 0..2 {
            let secret = if self.config.kind == ProviderKind::Apple {
                ""
            } else {
                self.config.client_secret.as_str()
            };
            let expect = Expectation {
                issuer: &discovered.issuer,
                jwks: &discovered.jwks,
                algs: &discovered.signing_algs,
                client_id: &self.config.client_id,
                client_secret: secret,
                audiences,
            };
            match id_token::verify(raw, &expect, rule()) {
                Err(e) if attempt == 0 && id_token::may_be_key_rotation(&e) => {
                    discovered = self.discovery(issuer, true).await?;
                }
                other => return other,
            }
        }
        unreachable!("the loop returns on its second pass")
    }

    async fn oidc_claims(
        &self,
        discovered: Option<&Discovered>,
        tokens: &ProviderTokens,
        nonce: &str,
    ) -> Result<Claims, OidcError> {
        let raw = tokens.id_token.as_deref().ok_or(OidcError::IdTokenMissing)?;
        let issuer = match self.config.kind {
            ProviderKind::Microsoft => self.microsoft_issuer(raw)?,
            _ => self.endpoints.issuer.clone().ok_or_else(|| {
                OidcError::Misconfiguration(format!("provider {} has no issuer", self.config.id))
            })?,
        };
        let mut claims = self
            .verify_with(&issuer, raw, &[], || NonceRule::Exact(nonce))
            .await?;
        if self.config.claims_source == ClaimsSource::UserInfo && self.config.kind == ProviderKind::Generic {
            let userinfo_url = discovered
                .and_then(|d| d.userinfo_url.clone())
                .ok_or_else(|| OidcError::UserInfo("the provider has no userinfo endpoint".into()))?;
            let info = self
                .http
                .get_json(&userinfo_url, Some(&tokens.access_token))
                .await
                .map_err(|e| OidcError::UserInfo(e.to_string()))?;
            let Value::Object(info) = info else {
                return Err(OidcError::UserInfo(
                    "the userinfo response is not a JSON object".into(),
                ));
            };
            let mut from_userinfo = Claims::from_raw(info);
            // OpenID Connect Core §5.3.2: a userinfo `sub` other than the id_token's must not be used.
            if from_userinfo.subject != claims.subject {
                return Err(OidcError::SubjectMismatch);
            }
            if from_userinfo.issuer.is_empty() {
                from_userinfo.issuer = claims.issuer.clone();
            }
            claims = from_userinfo;
        }
        if self.config.kind == ProviderKind::Microsoft {
            self.microsoft_subject(&mut claims, tokens).await?;
        }
        Ok(claims)
    }

    /// Microsoft multi-tenant apps: the issuer is the signing tenant's (`tid`), which must be a UUID.
    fn microsoft_issuer(&self, raw: &str) -> Result<Url, OidcError> {
        let payload = id_token::unverified_payload(raw)?;
        let tid = payload.get("tid").and_then(Value::as_str).unwrap_or("");
        let tid = Uuid::try_parse(tid)
            .map_err(|e| OidcError::IdTokenInvalid(format!("TenantID claim is not a valid UUID: {e}")))?;
        self.endpoints
            .microsoft_login_base
            .join_path(&format!("{}/v2.0", tid.hyphenated()))
            .ok_or_else(|| OidcError::Misconfiguration("invalid Microsoft login URL".into()))
    }

    async fn microsoft_subject(&self, claims: &mut Claims, tokens: &ProviderTokens) -> Result<(), OidcError> {
        match self.config.subject_source {
            SubjectSource::UserInfo => {}
            SubjectSource::Oid => claims.subject = claims.object_id.clone(),
            SubjectSource::Me => {
                let base = self
                    .endpoints
                    .api_base
                    .as_ref()
                    .ok_or_else(|| OidcError::Misconfiguration("no Graph URL".into()))?;
                let me = base
                    .join_path("me")
                    .ok_or_else(|| OidcError::Misconfiguration("invalid Graph URL".into()))?;
                let user = self
                    .http
                    .get_json(&me, Some(&tokens.access_token))
                    .await
                    .map_err(|e| OidcError::UserInfo(format!("Unable to fetch from `{me}`: {e}")))?;
                claims.subject = user.get("id").and_then(Value::as_str).unwrap_or("").to_string();
            }
        }
        Ok(())
    }

    /// Verifies an id_token a native app obtained itself (`id_token` + `id_token_nonce` on an API flow), as
    /// Kratos' `ProcessIDToken`: Apple, Google and generic providers; the audience may also be one of
    /// `additional_id_token_audiences`.
    pub async fn verify_id_token_submission(
        &self,
        id_token: &str,
        id_token_nonce: Option<&str>,
    ) -> Result<Authenticated, OidcError> {
        let skip: fn(&Claims) -> bool = match self.config.kind {
            ProviderKind::Apple => apple::can_skip_nonce,
            ProviderKind::Google => |_| true,
            ProviderKind::Generic => |_| false,
            other => return Err(OidcError::IdTokenSubmissionUnsupported(other.to_string())),
        };
        let issuer = self.endpoints.issuer.clone().ok_or_else(|| {
            OidcError::Misconfiguration(format!("provider {} has no issuer", self.config.id))
        })?;
        if id_token.len() > 16 * 1024 {
            return Err(OidcError::IdTokenInvalid("the id_token is too large".into()));
        }
        let audiences = self.config.additional_id_token_audiences.clone();
        let claims = self
            .verify_with(&issuer, id_token, &audiences, || NonceRule::Submitted {
                submitted: id_token_nonce,
                skip_allowed: skip,
            })
            .await?;
        claims.validate()?;
        let upstream_aal2 = self.config.aal2_from_upstream(Some(&claims.acr), &claims.amr);
        Ok(Authenticated {
            claims,
            tokens: None,
            upstream_aal2,
        })
    }

    /// Runs this provider's Jsonnet mapper over `claims` (`identity` is the current identity when updating).
    pub async fn map_claims(
        &self,
        claims: &Claims,
        identity: Option<&IdentityContext>,
    ) -> Result<MappedIdentity, OidcError> {
        self.mapper.map(&self.http, claims, identity).await
    }
}

/// All configured providers, looked up by id.
#[derive(Debug, Clone)]
pub struct Providers {
    providers: Vec<Arc<Provider>>,
}

impl Providers {
    /// `public_base` is the public URL (`serve.public.base_url`); `base_redirect_uri` overrides it.
    pub fn new(config: &OidcConfig, public_base: &Url, http: HttpClient) -> Providers {
        let base = config
            .base_redirect_uri
            .clone()
            .unwrap_or_else(|| public_base.clone());
        Providers {
            providers: config
                .providers
                .iter()
                .map(|p| Arc::new(Provider::new(p.clone(), &base, http.clone())))
                .collect(),
        }
    }

    pub fn from_providers(providers: Vec<Provider>) -> Providers {
        Providers {
            providers: providers.into_iter().map(Arc::new).collect(),
        }
    }

    /// Kratos answers an unknown provider with 404 `OpenID Connect Provider "x" is unknown …`.
    pub fn get(&self, id: &str) -> Result<Arc<Provider>, OidcError> {
        self.providers
            .iter()
            .find(|p| p.config.id == id)
            .cloned()
            .ok_or_else(|| OidcError::UnknownProvider(id.to_string()))
    }

    /// In configuration order (the order of the buttons).
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Provider>> {
        self.providers.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn provider(p: Value) -> Provider {
        let config = OidcConfig::from_value(&json!({"providers": [p]})).unwrap();
        let base = Url::parse("https://auth.example.org/").unwrap();
        Provider::new(
            config.providers[0].clone(),
            &base,
            HttpClient::new(Default::default()).unwrap(),
        )
    }

    #[tokio::test]
    async fn apple_asks_for_form_post_and_signs_its_secret() {
        let p = provider(
            json!({"id": "apple", "provider": "apple", "client_id": "com.example", "pkce": "never",
            "mapper_url": "base64://e30=", "scope": ["email", "name"], "apple_team_id": "T",
            "apple_private_key_id": "K", "apple_private_key": apple::tests::test_key_pem()}),
        );
        assert!(p.uses_form_post());
        let req = p
            .authorization_request(Uuid::new_v4(), FlowKind::Login, &AuthOptions::default())
            .await
            .unwrap();
        assert!(
            req.url
                .as_str()
                .starts_with("https://appleid.apple.com/auth/authorize?")
        );
        let q: HashMap<String, String> = req.url.query_pairs().into_owned().collect();
        assert_eq!(q["response_mode"], "form_post");
        assert_eq!(q["scope"], "email name openid");
        assert_eq!(q.get("nonce"), req.pending.nonce.as_ref());
        assert!(!q.contains_key("code_challenge"));
        assert_eq!(p.apple_client_secret().unwrap().split('.').count(), 3);
    }

    #[test]
    fn google_moves_offline_access_and_microsoft_derives_the_tenant_issuer() {
        let g = provider(
            json!({"id": "google", "provider": "google", "client_id": "c", "client_secret": "s",
            "mapper_url": "base64://e30=", "scope": ["email", "offline_access"]}),
        );
        assert_eq!(g.scopes(), vec!["email".to_string(), "openid".to_string()]);
        assert_eq!(
            g.endpoints().issuer.as_ref().unwrap().as_str(),
            "https://accounts.google.com/"
        );

        let m = provider(
            json!({"id": "ms", "provider": "microsoft", "client_id": "c", "client_secret": "s",
            "mapper_url": "base64://e30=", "microsoft_tenant": "common", "subject_source": "oid"}),
        );
        assert_eq!(
            m.endpoints().auth_url.as_ref().unwrap().as_str(),
            "https://login.microsoftonline.com/common/oauth2/v2.0/authorize"
        );
        let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let token = |tid: &str| {
            format!(
                "{}.{}.sig",
                b64(json!({"alg": "RS256"})),
                b64(json!({"tid": tid}))
            )
        };
        let tid = "8eaef023-2b34-4da1-9baa-8bc8c9d6a490";
        assert_eq!(
            m.microsoft_issuer(&token(tid)).unwrap().as_str(),
            format!("https://login.microsoftonline.com/{tid}/v2.0")
        );
        assert!(matches!(
            m.microsoft_issuer(&token("../evil")),
            Err(OidcError::IdTokenInvalid(_))
        ));
    }

    #[test]
    fn unknown_provider_is_kratos_404() {
        let providers = Providers::new(
            &OidcConfig::default(),
            &Url::parse("https://a.example/").unwrap(),
            HttpClient::new(Default::default()).unwrap(),
        );
        let err = providers.get("nope").unwrap_err();
        assert_eq!(err.status(), 404);
        assert_eq!(
            err.reason(),
            "OpenID Connect Provider \"nope\" is unknown or has not been configured"
        );
    }

    #[test]
    fn tokens_keep_kratos_field_names() {
        let cipher = Cipher::new(crate::CipherAlgorithm::Noop, &[]).unwrap();
        let t = ProviderTokens {
            access_token: "at-secret".into(),
            refresh_token: None,
            id_token: Some("i".into()),
            scope: None,
        };
        let sealed = t.encrypt(&cipher).unwrap();
        assert_eq!(
            serde_json::to_value(&sealed).unwrap(),
            json!({"initial_id_token": "69", "initial_access_token": hex::encode("at-secret"), "initial_refresh_token": ""})
        );
        assert_eq!(sealed.decrypt(&cipher).unwrap(), t);
        assert!(
            !format!("{t:?}").contains("at-secret"),
            "Debug must not show tokens"
        );
    }
}
