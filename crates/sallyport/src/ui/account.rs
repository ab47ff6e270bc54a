//! The pages around a session: who is signed in (and where else), signing out, and the error page.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Query, Request};
use axum::http::{Method, StatusCode, header};
use axum::response::Response;
use minijinja::context;
use serde_json::Value;

use super::pages::{Ui, caller, parts, with_cookies};
use crate::http::error::redirect;

/// `/ui/welcome`: who is signed in, how, and on which other devices.
pub async fn welcome(Extension(ui): Extension<Arc<Ui>>, req: Request) -> Response {
    let (headers, addr) = parts(req);
    let lang = ui.lang(&headers);
    let caller = caller(headers, addr);
    let who = ui.api.call(Method::GET, "/sessions/whoami", &caller).await;
    if !who.status.is_success() {
        let to = who
            .redirect_browser_to()
            .map(str::to_string)
            .unwrap_or_else(|| ui.api_url("self-service/login/browser", &BTreeMap::new()));
        return with_cookies(redirect(StatusCode::SEE_OTHER, &to), &[&who]);
    }
    let others = ui.api.call(Method::GET, "/sessions", &caller).await;
    let s = &who.body;
    let mut traits = vec![];
    flatten(
        "",
        s.pointer("/identity/traits").unwrap_or(&Value::Null),
        &mut traits,
    );
    let methods: Vec<_> = s
        .get("authentication_methods")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .map(|m| {
                    let method = m.get("method").and_then(Value::as_str).unwrap_or("");
                    let name = ui.t(&lang, &format!("group.{method}"));
                    context! {
                        method => method,
                        name => if name.starts_with("group.") { method.to_string() } else { name },
                        aal => m.get("aal").and_then(Value::as_str).unwrap_or(""),
                        at => m.get("completed_at").and_then(Value::as_str).unwrap_or(""),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let sessions: Vec<_> = others
        .body
        .as_array()
        .map(|l| l.iter().map(|x| device(&ui, &lang, x)).collect())
        .unwrap_or_default();
    let mut verify = false;
    if let Some(addrs) = s
        .pointer("/identity/verifiable_addresses")
        .and_then(Value::as_array)
    {
        verify = ui.verification_enabled
            && addrs
                .iter()
                .any(|a| a.get("verified").and_then(Value::as_bool) == Some(false));
    }
    let t = |k: &str| ui.t(&lang, k);
    let ctx = context! {
        traits => traits,
        identity_id => s.pointer("/identity/id").and_then(Value::as_str).unwrap_or(""),
        aal => s.get("authenticator_assurance_level").and_then(Value::as_str).unwrap_or(""),
        methods => methods,
        sessions => sessions,
        this_device => device(&ui, &lang, s),
        verify => verify,
        l => context! {
            identity => t("welcome.identity"), aal => t("welcome.aal"), methods => t("welcome.methods"),
            sessions => t("welcome.sessions"), none => t("welcome.no_sessions"), other => t("welcome.other"),
            revoke => t("welcome.revoke_others"), this_device => t("welcome.this_device"),
            settings => t("link.settings"), logout => t("link.logout"), verify => t("link.verification"),
        },
    };
    let title = t("title.welcome");
    with_cookies(
        ui.page(StatusCode::OK, "welcome.html", &lang, &title, ctx),
        &[&who, &others],
    )
}

fn device(ui: &Ui, lang: &str, session: &Value) -> minijinja::Value {
    let d = session.pointer("/devices/0").cloned().unwrap_or(Value::Null);
    let agent = d
        .get("user_agent")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| ui.t(lang, "welcome.unknown_device"));
    context! {
        agent => agent,
        ip => d.get("ip_address").and_then(Value::as_str).unwrap_or(""),
        since => session.get("authenticated_at").and_then(Value::as_str).unwrap_or(""),
        since_label => ui.t(lang, "welcome.since"),
    }
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<minijinja::Value>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::Null => {}
        Value::String(s) if s.is_empty() => {}
        Value::String(s) => out.push(context! { key => prefix, value => s }),
        other => out.push(context! { key => prefix, value => other.to_string() }),
    }
}

/// `POST /ui/sessions/revoke-others`. Only from our own pages: a cross-site form must not sign a
/// victim's other devices out (the session cookie is SameSite=Lax, and the origin is checked too).
pub async fn revoke_others(Extension(ui): Extension<Arc<Ui>>, req: Request) -> Response {
    let (headers, addr) = parts(req);
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let same_origin = match (site, origin) {
        (Some(s), _) => s == "same-origin",
        (None, Some(o)) => url::Url::parse(o).is_ok_and(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            }) == Some(host.to_string())
        }),
        (None, None) => false,
    };
    let lang = ui.lang(&headers);
    if !same_origin {
        let err = serde_json::json!({"id": "security_csrf_violation"});
        return ui.error_page(&lang, StatusCode::FORBIDDEN, &err, "error.csrf");
    }
    let caller = caller(headers, addr);
    let r = ui.api.call(Method::DELETE, "/sessions", &caller).await;
    with_cookies(redirect(StatusCode::SEE_OTHER, "welcome"), &[&r])
}

/// `/ui/logout`: a confirmation with the session's logout link (a plain link, no script).
pub async fn logout(Extension(ui): Extension<Arc<Ui>>, req: Request) -> Response {
    let (headers, addr) = parts(req);
    let lang = ui.lang(&headers);
    let caller = caller(headers, addr);
    let r = ui
        .api
        .call(Method::GET, "/self-service/logout/browser", &caller)
        .await;
    let Some(url) = r
        .body
        .get("logout_url")
        .and_then(Value::as_str)
        .filter(|_| r.status.is_success())
    else {
        return redirect(StatusCode::SEE_OTHER, "login");
    };
    let ctx = context! {
        logout_url => url,
        question => ui.t(&lang, "logout.confirm"),
        button => ui.t(&lang, "logout.button"),
        back => ui.t(&lang, "link.welcome"),
    };
    let title = ui.t(&lang, "title.logout");
    with_cookies(ui.page(StatusCode::OK, "logout.html", &lang, &title, ctx), &[&r])
}

/// `/ui/error?id=…`: the error Kratos stored for the browser.
pub async fn error(
    Extension(ui): Extension<Arc<Ui>>,
    Query(query): Query<BTreeMap<String, String>>,
    req: Request,
) -> Response {
    let (headers, addr) = parts(req);
    let lang = ui.lang(&headers);
    let id = query.get("id").cloned().unwrap_or_default();
    let path = format!(
        "/self-service/errors?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("id", &id)
            .finish()
    );
    let r = ui.api.call(Method::GET, &path, &caller(headers, addr)).await;
    if !r.status.is_success() {
        return ui.error_page(&lang, StatusCode::NOT_FOUND, &Value::Null, "error.gone");
    }
    let err = r.body.get("error").cloned().unwrap_or(Value::Null);
    let status = err
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|c| StatusCode::from_u16(c as u16).ok())
        .filter(|s| s.is_client_error() || s.is_server_error())
        .unwrap_or(StatusCode::BAD_REQUEST);
    ui.error_page(&lang, status, &err, "error.generic")
}
