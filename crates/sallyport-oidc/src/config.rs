//! `selfservice.methods.oidc.config` (Kratos' `selfServiceOIDCProvider` in its config schema, and
//! `provider_config.go`), parsed and checked with errors that name the offending key.

use std::collections::HashSet;
use std::fmt;

use serde::Deserialize;
use serde_json::{Map, Value};
use url::Url;

/// Every `provider` value Kratos' config schema accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    Generic,
    Google,
    Github,
    GithubApp,
    Gitlab,
    Microsoft,
    Discord,
    Salesforce,
    Slack,
    Facebook,
    Auth0,
    Vk,
    Yandex,
    Apple,
    Spotify,
    Netid,
    Dingtalk,
    Patreon,
    Line,
    Linkedin,
    LinkedinV2,
    Lark,
    X,
    FedcmTest,
    Amazon,
    Uaepass,
}

const ALL_KINDS: &[(&str, ProviderKind)] = &[
    ("generic", ProviderKind::Generic),
    ("google", ProviderKind::Google),
    ("github", ProviderKind::Github),
    ("github-app", ProviderKind::GithubApp),
    ("gitlab", ProviderKind::Gitlab),
    ("microsoft", ProviderKind::Microsoft),
    ("discord", ProviderKind::Discord),
    ("salesforce", ProviderKind::Salesforce),
    ("slack", ProviderKind::Slack),
    ("facebook", ProviderKind::Facebook),
    ("auth0", ProviderKind::Auth0),
    ("vk", ProviderKind::Vk),
    ("yandex", ProviderKind::Yandex),
    ("apple", ProviderKind::Apple),
    ("spotify", ProviderKind::Spotify),
    ("netid", ProviderKind::Netid),
    ("dingtalk", ProviderKind::Dingtalk),
    ("patreon", ProviderKind::Patreon),
    ("line", ProviderKind::Line),
    ("linkedin", ProviderKind::Linkedin),
    ("linkedin_v2", ProviderKind::LinkedinV2),
    ("lark", ProviderKind::Lark),
    ("x", ProviderKind::X),
    ("fedcm-test", ProviderKind::FedcmTest),
    ("amazon", ProviderKind::Amazon),
    ("uaepass", ProviderKind::Uaepass),
];

impl ProviderKind {
    pub fn parse(s: &str) -> Option<ProviderKind> {
        ALL_KINDS.iter().find(|(n, _)| *n == s).map(|(_, k)| *k)
    }

    pub fn as_str(self) -> &'static str {
        ALL_KINDS
            .iter()
            .find(|(_, k)| *k == self)
            .map(|(n, _)| *n)
            .unwrap_or("generic")
    }

    /// Whether Sallyport has an adapter for this provider. The others are accepted by Kratos' schema but
    /// refused here at start-up with a clear message rather than failing at the first sign-in.
    pub fn is_supported(self) -> bool {
        SUPPORTED.contains(&self)
    }

    /// The providers Sallyport implements.
    pub fn supported() -> &'static [ProviderKind] {
        SUPPORTED
    }
}

const SUPPORTED: &[ProviderKind] = &[
    ProviderKind::Generic,
    ProviderKind::Google,
    ProviderKind::Github,
    ProviderKind::GithubApp,
    ProviderKind::Gitlab,
    ProviderKind::Microsoft,
    ProviderKind::Apple,
    ProviderKind::Auth0,
    ProviderKind::Discord,
    ProviderKind::Slack,
    ProviderKind::Facebook,
    ProviderKind::Spotify,
    ProviderKind::LinkedinV2,
];

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `pkce`: `auto` uses PKCE when discovery advertises S256, `force` always, `never` never.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PkceMode {
    #[default]
    Auto,
    Force,
    Never,
}

/// `claims_source`: where a generic provider's claims come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClaimsSource {
    #[default]
    IdToken,
    UserInfo,
}

/// `subject_source` (Microsoft): `userinfo` (the `sub` claim), `me` (Graph's `/me` id), `oid` (object id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SubjectSource {
    #[default]
    UserInfo,
    Me,
    Oid,
}

/// One entry of `providers[]`.
#[derive(Clone, PartialEq)]
pub struct ProviderConfig {
    pub id: String,
    pub kind: ProviderKind,
    pub label: Option<String>,
    pub client_id: String,
    /// Empty for Apple, whose secret is a JWT minted from `apple_private_key`.
    pub client_secret: String,
    pub issuer_url: Option<Url>,
    pub auth_url: Option<Url>,
    pub token_url: Option<Url>,
    pub mapper_url: String,
    pub scope: Vec<String>,
    pub microsoft_tenant: Option<String>,
    pub subject_source: SubjectSource,
    pub apple_team_id: Option<String>,
    pub apple_private_key_id: Option<String>,
    pub apple_private_key: Option<String>,
    /// The OpenID Connect `claims` request parameter, sent as JSON.
    pub requested_claims: Option<Value>,
    pub organization_id: Option<String>,
    pub additional_id_token_audiences: Vec<String>,
    pub claims_source: ClaimsSource,
    pub pkce: PkceMode,
    pub aal2_acr_values: Vec<String>,
    pub aal2_amr_values: Vec<String>,
    /// `update_identity_on_login: automatic`: the mapper runs again on every login and the identity
    /// takes what changed.
    pub update_identity_on_login: bool,
}

impl fmt::Debug for ProviderConfig {
    // Written out so that `client_secret` and the Apple key never reach a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("issuer_url", &self.issuer_url.as_ref().map(Url::as_str))
            .field("mapper_url", &self.mapper_url)
            .field("scope", &self.scope)
            .field("pkce", &self.pkce)
            .field("claims_source", &self.claims_source)
            .finish_non_exhaustive()
    }
}

impl ProviderConfig {
    /// The text on the provider's button: `label`, else the provider id (Kratos' `AddProvider`).
    pub fn display_label(&self) -> &str {
        self.label
            .as_deref()
            .filter(|l| !l.is_empty())
            .unwrap_or(&self.id)
    }

    /// The redirect URI registered at the provider: `<base>/self-service/methods/oidc/callback/<id>`, or
    /// without the id when `pkce: force` (Kratos' `Configuration.Redir`).
    pub fn redirect_uri(&self, base: &Url) -> Url {
        let mut path = base.path().trim_end_matches('/').to_string();
        path.push_str("/self-service/methods/oidc/callback");
        if self.pkce != PkceMode::Force {
            path.push('/');
            path.push_str(&self.id);
        }
        let mut url = base.clone();
        url.set_path(&path);
        url.set_query(None);
        url.set_fragment(None);
        url
    }

    /// Kratos' `AALForClaims`: `aal2` when the upstream `acr` or one of the `amr` values is allow-listed.
    pub fn aal2_from_upstream(&self, acr: Option<&str>, amr: &[String]) -> bool {
        if let Some(acr) = acr.filter(|a| !a.is_empty())
            && self.aal2_acr_values.iter().any(|v| v == acr)
        {
            return true;
        }
        self.aal2_amr_values.iter().any(|want| amr.contains(want))
    }
}

/// `selfservice.methods.oidc.config`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OidcConfig {
    pub base_redirect_uri: Option<Url>,
    pub providers: Vec<ProviderConfig>,
}

impl OidcConfig {
    /// Parses `selfservice.methods.oidc.config` (`null` or absent means no providers).
    pub fn from_value(value: &Value) -> Result<OidcConfig, ConfigError> {
        let root = "selfservice.methods.oidc.config";
        let obj = match value {
            Value::Null => return Ok(OidcConfig::default()),
            Value::Object(o) => o,
            _ => return Err(ConfigError::new(root, "must be an object")),
        };
        for key in obj.keys() {
            if key != "base_redirect_uri" && key != "providers" {
                return Err(ConfigError::new(
                    format!("{root}.{key}"),
                    "is not allowed (expected base_redirect_uri or providers)",
                ));
            }
        }
        let base_redirect_uri = match obj.get("base_redirect_uri") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(parse_url(&format!("{root}.base_redirect_uri"), s)?),
            Some(_) => {
                return Err(ConfigError::new(
                    format!("{root}.base_redirect_uri"),
                    "must be a string",
                ));
            }
        };
        let providers = match obj.get("providers") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                let mut seen = HashSet::new();
                for (i, item) in items.iter().enumerate() {
                    let path = format!("{root}.providers.{i}");
                    let p = parse_provider(&path, item)?;
                    if !seen.insert(p.id.clone()) {
                        return Err(ConfigError::new(
                            format!("{path}.id"),
                            format!("the provider id \"{}\" is used twice; ids must be unique", p.id),
                        ));
                    }
                    out.push(p);
                }
                out
            }
            Some(_) => return Err(ConfigError::new(format!("{root}.providers"), "must be an array")),
        };
        Ok(OidcConfig {
            base_redirect_uri,
            providers,
        })
    }

    pub fn provider(&self, id: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.id == id)
    }
}

/// A configuration mistake, with the dotted path of the key at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl ConfigError {
    fn new(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for ConfigError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    id: Option<String>,
    provider: Option<String>,
    label: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    issuer_url: Option<String>,
    auth_url: Option<String>,
    token_url: Option<String>,
    mapper_url: Option<String>,
    scope: Option<Vec<String>>,
    microsoft_tenant: Option<String>,
    subject_source: Option<String>,
    apple_team_id: Option<String>,
    apple_private_key_id: Option<String>,
    apple_private_key: Option<String>,
    requested_claims: Option<Value>,
    organization_id: Option<String>,
    additional_id_token_audiences: Option<Vec<String>>,
    aal2_acr_values: Option<Vec<String>>,
    aal2_amr_values: Option<Vec<String>>,
    claims_source: Option<String>,
    pkce: Option<String>,
    // Accepted for Kratos compatibility; only effective in the Ory Network.
    #[allow(dead_code)]
    fedcm_config_url: Option<String>,
    #[allow(dead_code)]
    net_id_token_origin_header: Option<String>,
    #[allow(dead_code)]
    account_linking_mode: Option<String>,
    update_identity_on_login: Option<String>,
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

fn parse_url(path: &str, s: &str) -> Result<Url, ConfigError> {
    let url =
        Url::parse(s).map_err(|e| ConfigError::new(path, format!("\"{s}\" is not a valid URL: {e}")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(ConfigError::new(
            path,
            format!("\"{s}\" must be an http:// or https:// URL"),
        ));
    }
    Ok(url)
}

fn parse_provider(path: &str, item: &Value) -> Result<ProviderConfig, ConfigError> {
    if !item.is_object() {
        return Err(ConfigError::new(path, "must be an object"));
    }
    let raw: RawProvider =
        serde_json::from_value(item.clone()).map_err(|e| ConfigError::new(path, e.to_string()))?;
    let field = |name: &str| format!("{path}.{name}");
    let required = |v: Option<String>, name: &str| {
        non_empty(v).ok_or_else(|| ConfigError::new(field(name), "is required"))
    };

    let id = required(raw.id, "id")?;
    if id.contains(['/', '?', '#', '%']) || id.chars().any(char::is_whitespace) {
        return Err(ConfigError::new(
            field("id"),
            format!("\"{id}\" can not be used in the callback URL; use letters, digits, '-', '_' or '.'"),
        ));
    }
    let kind_text = required(raw.provider, "provider")?;
    let kind = ProviderKind::parse(&kind_text).ok_or_else(|| {
        let all: Vec<&str> = ALL_KINDS.iter().map(|(n, _)| *n).collect();
        ConfigError::new(
            field("provider"),
            format!("\"{kind_text}\" is not one of {}", all.join(", ")),
        )
    })?;
    if !kind.is_supported() {
        let names: Vec<&str> = SUPPORTED.iter().map(|k| k.as_str()).collect();
        return Err(ConfigError::new(
            field("provider"),
            format!(
                "Sallyport does not implement the \"{kind}\" provider yet; supported are {}",
                names.join(", ")
            ),
        ));
    }
    let client_id = required(raw.client_id, "client_id")?;
    let mapper_url = required(raw.mapper_url, "mapper_url")?;
    if !["file://", "base64://", "http://", "https://"]
        .iter()
        .any(|s| mapper_url.starts_with(s))
    {
        return Err(ConfigError::new(
            field("mapper_url"),
            "must be a file://, base64://, http:// or https:// URL",
        ));
    }

    let client_secret = non_empty(raw.client_secret);
    let apple = kind == ProviderKind::Apple;
    let (team, key_id, key) = (
        non_empty(raw.apple_team_id),
        non_empty(raw.apple_private_key_id),
        non_empty(raw.apple_private_key),
    );
    if apple {
        if client_secret.is_some() {
            return Err(ConfigError::new(
                field("client_secret"),
                "must not be set for provider \"apple\"; the secret is generated from apple_private_key",
            ));
        }
        for (v, name) in [
            (&team, "apple_team_id"),
            (&key_id, "apple_private_key_id"),
            (&key, "apple_private_key"),
        ] {
            if v.is_none() {
                return Err(ConfigError::new(
                    field(name),
                    "is required for provider \"apple\"",
                ));
            }
        }
        if let Some(pem) = &key {
            crate::provider::apple::check_private_key(pem)
                .map_err(|e| ConfigError::new(field("apple_private_key"), e))?;
        }
    } else {
        if client_secret.is_none() {
            return Err(ConfigError::new(
                field("client_secret"),
                format!("is required for provider \"{kind}\""),
            ));
        }
        for (v, name) in [
            (&team, "apple_team_id"),
            (&key_id, "apple_private_key_id"),
            (&key, "apple_private_key"),
        ] {
            if v.is_some() {
                return Err(ConfigError::new(
                    field(name),
                    "is only allowed for provider \"apple\"",
                ));
            }
        }
    }

    let tenant = non_empty(raw.microsoft_tenant);
    match (kind == ProviderKind::Microsoft, &tenant) {
        (true, None) => {
            return Err(ConfigError::new(
                field("microsoft_tenant"),
                "is required for provider \"microsoft\"",
            ));
        }
        (false, Some(_)) => {
            return Err(ConfigError::new(
                field("microsoft_tenant"),
                "is only allowed for provider \"microsoft\"",
            ));
        }
        _ => {}
    }
    if let Some(t) = &tenant
        && !t
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        return Err(ConfigError::new(
            field("microsoft_tenant"),
            format!("\"{t}\" is not a valid tenant"),
        ));
    }

    let url_opt = |v: Option<String>, name: &str| -> Result<Option<Url>, ConfigError> {
        non_empty(v).map(|s| parse_url(&field(name), &s)).transpose()
    };
    let issuer_url = url_opt(raw.issuer_url, "issuer_url")?;
    let auth_url = url_opt(raw.auth_url, "auth_url")?;
    let token_url = url_opt(raw.token_url, "token_url")?;
    if matches!(kind, ProviderKind::Generic | ProviderKind::Auth0) && issuer_url.is_none() {
        return Err(ConfigError::new(
            field("issuer_url"),
            format!("is required for provider \"{kind}\""),
        ));
    }

    let pkce = match raw.pkce.as_deref() {
        None | Some("") | Some("auto") => PkceMode::Auto,
        Some("force") => PkceMode::Force,
        Some("never") => PkceMode::Never,
        Some(other) => {
            return Err(ConfigError::new(
                field("pkce"),
                format!("\"{other}\" is not one of auto, force, never"),
            ));
        }
    };
    let update_identity_on_login = match raw.update_identity_on_login.as_deref() {
        None | Some("") | Some("never") => false,
        Some("automatic") => true,
        Some(other) => {
            return Err(ConfigError::new(
                field("update_identity_on_login"),
                format!("\"{other}\" is not one of never, automatic"),
            ));
        }
    };
    let claims_source = match raw.claims_source.as_deref() {
        None | Some("") | Some("id_token") => ClaimsSource::IdToken,
        Some("userinfo") => ClaimsSource::UserInfo,
        Some(other) => {
            return Err(ConfigError::new(
                field("claims_source"),
                format!("\"{other}\" is not one of id_token, userinfo"),
            ));
        }
    };
    let subject_source = match raw.subject_source.as_deref() {
        None | Some("") | Some("userinfo") => SubjectSource::UserInfo,
        Some("me") => SubjectSource::Me,
        Some("oid") => SubjectSource::Oid,
        Some(other) => {
            return Err(ConfigError::new(
                field("subject_source"),
                format!("\"{other}\" is not one of userinfo, me, oid"),
            ));
        }
    };
    let requested_claims = match raw.requested_claims {
        None | Some(Value::Null) => None,
        Some(Value::Object(o)) => {
            check_requested_claims(&field("requested_claims"), &o)?;
            Some(Value::Object(o))
        }
        Some(_) => return Err(ConfigError::new(field("requested_claims"), "must be an object")),
    };

    Ok(ProviderConfig {
        id,
        kind,
        label: non_empty(raw.label),
        client_id,
        client_secret: client_secret.unwrap_or_default(),
        issuer_url,
        auth_url,
        token_url,
        mapper_url,
        scope: raw.scope.unwrap_or_default(),
        microsoft_tenant: tenant,
        subject_source,
        apple_team_id: team,
        apple_private_key_id: key_id,
        apple_private_key: key,
        requested_claims,
        organization_id: non_empty(raw.organization_id),
        additional_id_token_audiences: raw.additional_id_token_audiences.unwrap_or_default(),
        claims_source,
        pkce,
        aal2_acr_values: raw.aal2_acr_values.unwrap_or_default(),
        aal2_amr_values: raw.aal2_amr_values.unwrap_or_default(),
        update_identity_on_login,
    })
}

/// The schema's `OIDCClaims`: `{userinfo|id_token: {<claim>: null | {essential?, value?, values?}}}`.
fn check_requested_claims(path: &str, o: &Map<String, Value>) -> Result<(), ConfigError> {
    for (target, claims) in o {
        if target != "userinfo" && target != "id_token" {
            continue;
        }
        let Value::Object(claims) = claims else {
            return Err(ConfigError::new(format!("{path}.{target}"), "must be an object"));
        };
        for (name, spec) in claims {
            let ok = match spec {
                Value::Null => true,
                Value::Object(s) => s.iter().all(|(k, v)| match k.as_str() {
                    "essential" => v.is_boolean(),
                    "value" => true,
                    "values" => v.is_array(),
                    _ => false,
                }),
                _ => false,
            };
            if !ok {
                return Err(ConfigError::new(
                    format!("{path}.{target}.{name}"),
                    "must be null or an object with essential (boolean), value or values (array)",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(p: Value) -> Result<OidcConfig, ConfigError> {
        OidcConfig::from_value(&json!({"providers": [p]}))
    }

    fn generic() -> Value {
        json!({"id": "corp", "provider": "generic", "client_id": "c", "client_secret": "s",
               "issuer_url": "https://idp.example.org", "mapper_url": "file:///etc/kratos/oidc.jsonnet"})
    }

    fn with(mut base: Value, patch: Value) -> Value {
        base.as_object_mut()
            .unwrap()
            .extend(patch.as_object().unwrap().clone());
        base
    }

    #[test]
    fn parses_a_generic_provider_with_defaults() {
        let c = OidcConfig::from_value(&json!({
            "base_redirect_uri": "https://auth.example.org/",
            "providers": [with(generic(), json!({"scope": ["email"], "label": "Corp SSO",
                "requested_claims": {"id_token": {"email": null, "email_verified": {"essential": true}}}}))]
        }))
        .unwrap();
        let p = &c.providers[0];
        assert_eq!(
            (p.kind, p.pkce, p.claims_source),
            (ProviderKind::Generic, PkceMode::Auto, ClaimsSource::IdToken)
        );
        assert_eq!(p.display_label(), "Corp SSO");
        let base = c.base_redirect_uri.clone().unwrap();
        assert_eq!(
            p.redirect_uri(&base).as_str(),
            "https://auth.example.org/self-service/methods/oidc/callback/corp"
        );
        let forced = parse(with(generic(), json!({"pkce": "force"}))).unwrap();
        assert_eq!(
            forced.providers[0].redirect_uri(&base).as_str(),
            "https://auth.example.org/self-service/methods/oidc/callback"
        );
        assert!(
            !format!("{p:?}").contains("\"s\""),
            "Debug must not show the client secret"
        );
        assert_eq!(
            OidcConfig::from_value(&Value::Null).unwrap(),
            OidcConfig::default()
        );
    }

    #[test]
    fn names_the_key_at_fault() {
        let cases = [
            (
                with(generic(), json!({"client_secret": ""})),
                "providers.0.client_secret",
                "required",
            ),
            (
                with(generic(), json!({"provider": "myspace"})),
                "providers.0.provider",
                "not one of",
            ),
            (
                with(generic(), json!({"provider": "vk"})),
                "providers.0.provider",
                "does not implement",
            ),
            (
                with(generic(), json!({"issuer_url": null})),
                "providers.0.issuer_url",
                "required",
            ),
            (
                with(generic(), json!({"issuer_url": "ftp://x"})),
                "providers.0.issuer_url",
                "http",
            ),
            (
                with(generic(), json!({"mapper_url": "/etc/m.jsonnet"})),
                "providers.0.mapper_url",
                "file://",
            ),
            (
                with(generic(), json!({"pkce": "sometimes"})),
                "providers.0.pkce",
                "auto, force, never",
            ),
            (
                with(generic(), json!({"claims_source": "x"})),
                "providers.0.claims_source",
                "id_token, userinfo",
            ),
            (
                with(generic(), json!({"microsoft_tenant": "common"})),
                "providers.0.microsoft_tenant",
                "only",
            ),
            (
                with(generic(), json!({"apple_team_id": "T"})),
                "providers.0.apple_team_id",
                "only",
            ),
            (
                with(generic(), json!({"id": "a/b"})),
                "providers.0.id",
                "callback URL",
            ),
            (
                with(generic(), json!({"unknown_key": 1})),
                "providers.0",
                "unknown field",
            ),
            (
                with(generic(), json!({"requested_claims": {"id_token": {"email": 5}}})),
                "providers.0.requested_claims.id_token.email",
                "null or an object",
            ),
            (
                with(generic(), json!({"provider": "microsoft", "issuer_url": null})),
                "providers.0.microsoft_tenant",
                "required",
            ),
            (
                with(generic(), json!({"provider": "apple", "client_secret": "x"})),
                "providers.0.client_secret",
                "must not be set",
            ),
        ];
        for (p, path, words) in cases {
            let err = parse(p).unwrap_err();
            assert_eq!(
                err.path,
                format!("selfservice.methods.oidc.config.{path}"),
                "{err}"
            );
            assert!(err.message.contains(words), "{err}");
        }
        let dup = OidcConfig::from_value(&json!({"providers": [generic(), generic()]})).unwrap_err();
        assert!(dup.message.contains("used twice"), "{dup}");
        assert!(OidcConfig::from_value(&json!({"providers": {}})).is_err());
        assert!(OidcConfig::from_value(&json!({"nope": 1})).is_err());
    }

    #[test]
    fn apple_needs_a_usable_key() {
        let apple = json!({"id": "apple", "provider": "apple", "client_id": "com.example", "mapper_url": "base64://e30=",
                           "apple_team_id": "T", "apple_private_key_id": "K",
                           "apple_private_key": crate::provider::apple::tests::test_key_pem()});
        assert!(parse(apple.clone()).is_ok());
        let err = parse(with(apple, json!({"apple_private_key": "garbage"}))).unwrap_err();
        assert!(
            err.path.ends_with("apple_private_key") && err.message.contains("PKCS#8"),
            "{err}"
        );
    }

    #[test]
    fn upstream_aal2_allow_lists() {
        let p = parse(with(
            generic(),
            json!({"aal2_acr_values": ["silver"], "aal2_amr_values": ["mfa"]}),
        ))
        .unwrap()
        .providers
        .remove(0);
        assert!(p.aal2_from_upstream(Some("silver"), &[]));
        assert!(p.aal2_from_upstream(None, &["pwd".into(), "mfa".into()]));
        assert!(!p.aal2_from_upstream(Some(""), &["pwd".into()]));
    }
}
