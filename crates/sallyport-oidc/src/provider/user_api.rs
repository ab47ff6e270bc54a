//! Providers that are plain OAuth2: after the code exchange their user API is read, as Kratos'
//! `provider_{github,github_app,gitlab,auth0,discord,slack,facebook,spotify}.go` do, and turned into [`Claims`].

use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;
use url::Url;

use crate::claims::Claims;
use crate::config::ProviderKind;
use crate::error::OidcError;
use crate::http::HttpClient;
use crate::provider::token::ProviderTokens;

fn api_url(base: &Url, path: &str) -> Result<Url, OidcError> {
    let mut url = base.clone();
    let joined = format!(
        "{}/{}",
        base.path().trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    url.set_path(&joined);
    Ok(url)
}

async fn get(http: &HttpClient, url: &Url, token: &str) -> Result<Value, OidcError> {
    http.get_json(url, Some(token))
        .await
        .map_err(|e| OidcError::UserInfo(e.to_string()))
}

fn s(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// Kratos refuses a login whose granted scopes lack a configured one (GitHub, Discord, Slack, Spotify).
pub(crate) fn check_scopes(configured: &[String], tokens: &ProviderTokens) -> Result<(), OidcError> {
    let granted = tokens.granted_scopes();
    if configured.iter().all(|c| granted.contains(&c.as_str())) {
        Ok(())
    } else {
        Err(OidcError::ScopeMissing)
    }
}

fn raw_of(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

pub(crate) async fn claims(
    kind: ProviderKind,
    http: &HttpClient,
    api_base: &Url,
    issuer: &str,
    configured_scopes: &[String],
    client_secret: &str,
    tokens: &ProviderTokens,
) -> Result<Claims, OidcError> {
    let token = tokens.access_token.as_str();
    match kind {
        ProviderKind::Github | ProviderKind::GithubApp => {
            if kind == ProviderKind::Github {
                check_scopes(configured_scopes, tokens)?;
            }
            let user = get(http, &api_url(api_base, "user")?, token).await?;
            let mut c = Claims {
                issuer: issuer.to_string(),
                subject: s(&user, "id"),
                name: s(&user, "name"),
                nickname: s(&user, "login"),
                website: s(&user, "blog"),
                picture: s(&user, "avatar_url"),
                profile: s(&user, "html_url"),
                raw_claims: raw_of(&user),
                ..Default::default()
            };
            let wants_emails =
                kind == ProviderKind::GithubApp || tokens.granted_scopes().contains(&"user:email");
            if wants_emails {
                let emails = get(http, &api_url(api_base, "user/emails")?, token).await?;
                let list = emails.as_array().cloned().unwrap_or_default();
                // github: the primary address; github-app: the primary one, else the last (Kratos' loops).
                let pick = list
                    .iter()
                    .find(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
                    .or(if kind == ProviderKind::GithubApp {
                        list.last()
                    } else {
                        None
                    });
                if let Some(e) = pick {
                    c.email = s(e, "email");
                    c.email_verified = e.get("verified").and_then(Value::as_bool).unwrap_or(false);
                }
            }
            Ok(c)
        }
        ProviderKind::Gitlab | ProviderKind::Auth0 => {
            let path = if kind == ProviderKind::Gitlab {
                "oauth/userinfo"
            } else {
                "userinfo"
            };
            let mut info = get(http, &api_url(api_base, path)?, token).await?;
            // Auth0 sends `updated_at` as an RFC 3339 string; Kratos turns it into seconds.
            if let Some(Value::String(t)) = info.get("updated_at").cloned()
                && let Ok(parsed) =
                    time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339)
            {
                info["updated_at"] = Value::from(parsed.unix_timestamp());
            }
            let mut c = Claims::from_raw(raw_of(&info));
            if c.issuer.is_empty() {
                c.issuer = issuer.to_string();
            }
            Ok(c)
        }
        ProviderKind::Discord => {
            check_scopes(configured_scopes, tokens)?;
            let user = get(http, &api_url(api_base, "users/@me")?, token).await?;
            let (id, username, avatar) = (s(&user, "id"), s(&user, "username"), s(&user, "avatar"));
            let picture = if avatar.is_empty() {
                String::new()
            } else {
                let ext = if avatar.starts_with("a_") { "gif" } else { "png" };
                format!("https://cdn.discordapp.com/avatars/{id}/{avatar}.{ext}")
            };
            Ok(Claims {
                issuer: issuer.to_string(),
                subject: id,
                name: format!("{username}#{}", s(&user, "discriminator")),
                nickname: username.clone(),
                preferred_username: username,
                picture,
                email: s(&user, "email"),
                email_verified: user.get("verified").and_then(Value::as_bool).unwrap_or(false),
                locale: s(&user, "locale"),
                raw_claims: raw_of(&user),
                ..Default::default()
            })
        }
        ProviderKind::Slack => {
            check_scopes(configured_scopes, tokens)?;
            let body = get(http, &api_url(api_base, "users.identity")?, token).await?;
            if body.get("ok").and_then(Value::as_bool) != Some(true) {
                return Err(OidcError::UserInfo(format!(
                    "slack answered: {}",
                    s(&body, "error")
                )));
            }
            let user = body.get("user").cloned().unwrap_or(Value::Null);
            Ok(Claims {
                issuer: issuer.to_string(),
                subject: s(&user, "id"),
                name: s(&user, "name"),
                preferred_username: s(&user, "name"),
                nickname: s(&user, "name"),
                email: s(&user, "email"),
                email_verified: true,
                picture: s(&user, "image_512"),
                team: body.get("team").map(|t| s(t, "id")).unwrap_or_default(),
                raw_claims: raw_of(&body),
                ..Default::default()
            })
        }
        ProviderKind::Facebook => {
            let mut mac = Hmac::<Sha256>::new_from_slice(client_secret.as_bytes())
                .map_err(|e| OidcError::Misconfiguration(e.to_string()))?;
            mac.update(token.as_bytes());
            let proof = hex::encode(mac.finalize().into_bytes());
            let mut url = api_url(api_base, "me")?;
            url.query_pairs_mut()
                .append_pair(
                    "fields",
                    "id,name,first_name,last_name,middle_name,email,picture,birthday,gender",
                )
                .append_pair("appsecret_proof", &proof);
            let user = get(http, &url, token).await?;
            let email = s(&user, "email");
            Ok(Claims {
                issuer: issuer.to_string(),
                subject: s(&user, "id"),
                name: s(&user, "name"),
                given_name: s(&user, "first_name"),
                family_name: s(&user, "last_name"),
                middle_name: s(&user, "middle_name"),
                nickname: s(&user, "name"),
                preferred_username: s(&user, "name"),
                picture: user
                    .pointer("/picture/data/url")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                // Facebook only returns confirmed addresses (Kratos treats any as verified).
                email_verified: !email.is_empty(),
                email,
                gender: s(&user, "gender"),
                birthdate: s(&user, "birthday"),
                raw_claims: raw_of(&user),
                ..Default::default()
            })
        }
        ProviderKind::Spotify => {
            check_scopes(configured_scopes, tokens)?;
            let user = get(http, &api_url(api_base, "me")?, token).await?;
            Ok(Claims {
                issuer: issuer.to_string(),
                subject: s(&user, "id"),
                name: s(&user, "display_name"),
                nickname: s(&user, "display_name"),
                email: s(&user, "email"),
                picture: user
                    .pointer("/images/0/url")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                profile: user
                    .pointer("/external_urls/spotify")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                raw_claims: raw_of(&user),
                ..Default::default()
            })
        }
        other => Err(OidcError::Misconfiguration(format!(
            "provider {other} has no user API adapter"
        ))),
    }
}
