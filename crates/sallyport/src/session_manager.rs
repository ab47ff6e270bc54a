//! Finding the caller's session (Kratos `session/manager_http.go`) and handing sessions out.

use std::borrow::Cow;

use axum::http::{HeaderMap, HeaderValue};
use time::OffsetDateTime;

use sallyport_core::error::ApiError;
use sallyport_core::identity::Identity;
use sallyport_core::secret::token_digest;
use sallyport_core::session::{Aal, Session};
use sallyport_core::store::StoreError;

use crate::http::cookies::set_cookie;
use crate::http::csrf;
use crate::http::error::store_error;
use crate::settings::RequiredAal;
use crate::state::App;

pub struct Authenticated {
    pub session: Session,
    pub identity: Identity,
}

/// Kratos' order: `X-Session-Token`, then the session cookie, then `Authorization: Bearer`.
pub fn extract_token(app: &App, headers: &HeaderMap) -> Option<String> {
    extract_token_ref(app, headers).map(Cow::into_owned)
}

/// [`extract_token`] without copying a token that travels in clear.
pub fn extract_token_ref<'h>(app: &App, headers: &'h HeaderMap) -> Option<Cow<'h, str>> {
    match session_token_header(headers) {
        Some(t) => Some(Cow::Borrowed(t)),
        None => token_without_header(app, headers).map(|(t, _)| t),
    }
}

/// The session cookie's sealed value as sent; whether it opens is not checked.
pub fn sealed_session_cookie<'h>(app: &App, headers: &'h HeaderMap) -> Option<&'h str> {
    csrf::request_cookie_ref(headers, &app.settings.session_cookie.name)
}

/// The `X-Session-Token` header, the first place Kratos takes a session token from.
pub fn session_token_header(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("x-session-token")
        .and_then(|v| v.to_str().ok())
        .filter(|t| !t.is_empty())
}

/// Where [`extract_token_ref`] looks when there is no `X-Session-Token`: the session cookie's
/// token, else a bearer token; and whether it came out of the cookie.
pub fn token_without_header<'h>(app: &App, headers: &'h HeaderMap) -> Option<(Cow<'h, str>, bool)> {
    let name = &app.settings.session_cookie.name;
    if let Some(sealed) = sealed_session_cookie(app, headers) {
        // Sallyport's own cookie, else one Kratos issued before the takeover (same secrets).
        if let Some(t) = app
            .cookie_keys
            .open(name, sealed)
            .or_else(|| app.cookie_keys.open_kratos_session(name, sealed))
        {
            return Some((Cow::Owned(t), true));
        }
    }
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok())?;
    let (scheme, token) = auth.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
        .then(|| (Cow::Borrowed(token.trim()), false))
}

/// The active session of the request, if any. Revoked, expired or disabled-identity sessions count as none.
pub async fn fetch(app: &App, headers: &HeaderMap) -> Result<Option<Authenticated>, ApiError> {
    let Some(token) = extract_token_ref(app, headers) else {
        return Ok(None);
    };
    fetch_by_digest(app, &token_digest(&token)).await
}

/// [`fetch`] for a token already digested.
pub async fn fetch_by_digest(app: &App, digest: &str) -> Result<Option<Authenticated>, ApiError> {
    let session = match app.store.get_session_by_token_digest(digest).await {
        Ok(s) => s,
        Err(StoreError::NotFound) => return Ok(None),
        Err(e) => return Err(store_error(e)),
    };
    let now = sallyport_core::time_fmt::now();
    if !session.is_active(now) {
        return Ok(None);
    }
    let identity = match app.store.get_identity(session.identity_id).await {
        Ok(i) => i,
        Err(StoreError::NotFound) => return Ok(None),
        Err(e) => return Err(store_error(e)),
    };
    if !identity.is_active() {
        return Ok(None);
    }
    Ok(Some(Authenticated { session, identity }))
}

pub fn session_cookie(app: &App, token: &str, expires_at: OffsetDateTime) -> HeaderValue {
    let s = &app.settings.session_cookie;
    let sealed = app.cookie_keys.seal(&s.name, token);
    let max_age = s
        .persistent
        .then(|| (expires_at - OffsetDateTime::now_utc()).whole_seconds().max(1));
    set_cookie(s, &s.name, &sealed, max_age)
}

pub fn clear_session_cookie(app: &App) -> HeaderValue {
    let s = &app.settings.session_cookie;
    set_cookie(s, &s.name, "", Some(0))
}

/// Kratos regenerates the CSRF token whenever the session changes hands.
pub fn new_csrf_cookie(app: &App) -> HeaderValue {
    rotate_csrf(app).1
}

/// A new CSRF token (encoded as flows store it) and the cookie that hands it to the browser.
pub fn rotate_csrf(app: &App) -> (String, HeaderValue) {
    let token = csrf::encode_cookie(&csrf::new_token());
    let cookie = set_cookie(
        &app.settings.csrf_cookie,
        &app.csrf_cookie_name,
        &token,
        Some(31_536_000),
    );
    (token, cookie)
}

pub fn aal2_login_url(app: &App, return_to: Option<&str>) -> String {
    let mut u = url::Url::parse(&app.public_url("self-service/login/browser")).expect("base URL is valid");
    u.query_pairs_mut().append_pair("aal", "aal2");
    if let Some(r) = return_to {
        u.query_pairs_mut().append_pair("return_to", r);
    }
    u.to_string()
}

/// `session.whoami.required_aal` and friends: Err(session_aal2_required) when the identity could reach
/// aal2 but this session has not. Beyond Kratos, an identity the MFA policy binds needs aal2 whatever
/// the config says, and one that has no second factor yet gets `session_mfa_enrollment_required`.
pub fn check_aal(
    app: &App,
    session: &Session,
    identity: &Identity,
    required: RequiredAal,
    return_to: Option<&str>,
) -> Result<(), ApiError> {
    if crate::selfservice::mfa::requires_mfa(app, identity) && session.aal < Aal::Aal2 {
        if !crate::selfservice::mfa::has_second_factor(app, identity) {
            return Err(ApiError::mfa_enrollment_required(
                &app.public_url("self-service/settings/browser"),
            ));
        }
        return Err(ApiError::session_aal2_required(&aal2_login_url(app, return_to)));
    }
    match required {
        RequiredAal::Aal1 if session.aal >= Aal::Aal1 => Ok(()),
        RequiredAal::HighestAvailable if session.aal >= identity.available_aal.max(Aal::Aal1) => Ok(()),
        _ => Err(ApiError::session_aal2_required(&aal2_login_url(app, return_to))),
    }
}

/// Settings must stay reachable for enrolling the second factor the policy asks for.
pub fn check_settings_aal(
    app: &App,
    session: &Session,
    identity: &Identity,
    return_to: Option<&str>,
) -> Result<(), ApiError> {
    match check_aal(
        app,
        session,
        identity,
        app.settings.settings_required_aal,
        return_to,
    ) {
        Err(e) if e.id == Some(sallyport_core::error::ErrorId::SessionMfaEnrollmentRequired) => Ok(()),
        other => other,
    }
}

/// Logout tokens are derived from the session token with a keyed hash, so that only digests of both
/// need storing and `/self-service/logout/browser` can still show the token to the cookie's holder.
pub fn logout_token_for(secret: &str, session_token: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(b"sallyport logout token\0");
    mac.update(session_token.as_bytes());
    let digest = mac.finalize().into_bytes();
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let tail: String = digest
        .iter()
        .take(32)
        .map(|b| ALNUM[*b as usize % ALNUM.len()] as char)
        .collect();
    format!("ory_lo_{tail}")
}

/// A new session for `identity_id`, with its logout token bound to the session token.
pub fn issue(app: &App, identity_id: uuid::Uuid, now: OffsetDateTime) -> sallyport_core::session::NewSession {
    let lifespan = time::Duration::try_from(app.settings.session_lifespan).unwrap_or(time::Duration::DAY);
    let mut n = Session::issue(identity_id, lifespan, now);
    n.logout_token = logout_token_for(&app.settings.cookie_secrets[0], &n.token);
    n.session.logout_token_digest = token_digest(&n.logout_token);
    n
}

/// Whether `sent` is the logout token of the session held as `session_token`, under any configured secret.
pub fn logout_token_matches(app: &App, session: &Session, session_token: &str, sent: &str) -> bool {
    let sent_digest = token_digest(sent);
    sallyport_core::secret::constant_time_eq(sent_digest.as_bytes(), session.logout_token_digest.as_bytes())
        && app.settings.cookie_secrets.iter().any(|s| {
            sallyport_core::secret::constant_time_eq(
                logout_token_for(s, session_token).as_bytes(),
                sent.as_bytes(),
            )
        })
}
