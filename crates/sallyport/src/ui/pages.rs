//! The page handlers. Each does what a Kratos browser front end does: no `flow` id → start one at
//! `/self-service/<flow>/browser`; an id the API no longer knows → start a fresh one; otherwise
//! fetch the flow with the browser's cookies and render its nodes.

use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::{ConnectInfo, Query, Request};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::{Environment, context};
use serde_json::Value;
use std::sync::Arc;

use super::api::{Api, Caller, Reply};
use super::i18n::Locales;
use super::templates;
use super::view;
use crate::http::error::redirect;
use crate::settings::Settings;

pub struct Ui {
    api: Api,
    env: Environment<'static>,
    locales: Locales,
    css: String,
    /// Part of the stylesheet's URL, so browsers may cache it for good and still see a new brand colour.
    css_version: String,
    pub csp: String,
    public: url::Url,
    product: String,
    logo: Option<String>,
    theme: &'static str,
    registration_enabled: bool,
    recovery_enabled: bool,
    verification_enabled: bool,
}

const FLOWS: [&str; 5] = ["login", "registration", "recovery", "verification", "settings"];

impl Ui {
    pub fn new(s: &Settings, api: Api) -> Ui {
        let b = &s.ui;
        let css = templates::stylesheet(&b.primary_color);
        let css_version = {
            use sha2::Digest;
            let d = sha2::Sha256::digest(css.as_bytes());
            d[..6].iter().map(|x| format!("{x:02x}")).collect()
        };
        Ui {
            api,
            env: templates::environment(b.template_dir.as_deref()),
            locales: Locales::load(b.locale_dir.as_deref()),
            css,
            css_version,
            csp: super::security::policy(b.logo_url.as_deref()),
            public: s.public_base_url.clone(),
            product: b.product_name.clone(),
            logo: b.logo_url.clone(),
            theme: match b.theme {
                sallyport_config::model::UiTheme::Auto => "auto",
                sallyport_config::model::UiTheme::Light => "light",
                sallyport_config::model::UiTheme::Dark => "dark",
            },
            registration_enabled: s.registration_enabled,
            recovery_enabled: s.recovery.enabled,
            verification_enabled: s.verification.enabled,
        }
    }

    fn lang(&self, headers: &HeaderMap) -> String {
        let al = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
        self.locales.pick(al)
    }

    fn t(&self, lang: &str, key: &str) -> String {
        self.locales.ui(lang, key)
    }

    /// Renders `template` inside the layout; a broken override template yields a plain 500 page
    /// whose reason goes to the log, never to the browser.
    fn page(
        &self,
        status: StatusCode,
        template: &str,
        lang: &str,
        title: &str,
        ctx: minijinja::Value,
    ) -> Response {
        let base = context! {
            lang => lang,
            title => title,
            product => &self.product,
            logo => &self.logo,
            theme => self.theme,
            skip => self.t(lang, "link.skip"),
            css_version => &self.css_version,
        };
        let html = self
            .env
            .get_template(template)
            .and_then(|t| t.render(context! { ..ctx, ..base }));
        match html {
            Ok(html) => {
                let mut res = (status, html).into_response();
                res.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                res.headers_mut().insert(
                    header::CONTENT_LANGUAGE,
                    HeaderValue::from_str(lang).unwrap_or(HeaderValue::from_static("en")),
                );
                res
            }
            Err(e) => {
                tracing::error!(template, error = %e, "a UI template failed to render");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The page could not be rendered.",
                )
                    .into_response()
            }
        }
    }

    fn api_url(&self, path: &str, query: &BTreeMap<String, String>) -> String {
        let mut u = self.public.join(path).unwrap_or_else(|_| self.public.clone());
        if !query.is_empty() {
            u.query_pairs_mut().extend_pairs(query.iter());
        }
        u.to_string()
    }

    fn error_page(&self, lang: &str, status: StatusCode, error: &Value, fallback_key: &str) -> Response {
        let id = error.get("id").and_then(Value::as_str).unwrap_or("");
        let explained = self.t(lang, &format!("error.{id}"));
        let explanation = if id.is_empty() || explained.starts_with("error.") {
            self.t(lang, fallback_key)
        } else {
            explained
        };
        let ctx = context! {
            explanation => explanation,
            message => error.get("message").and_then(Value::as_str).unwrap_or(""),
            reason => error.get("reason").and_then(Value::as_str).unwrap_or(""),
            error_id => id,
            error_id_label => self.t(lang, "error.id"),
            start => self.t(lang, "link.start"),
        };
        let title = self.t(lang, "title.error");
        self.page(status, "error.html", lang, &title, ctx)
    }
}

fn caller(headers: HeaderMap, addr: Option<ConnectInfo<std::net::SocketAddr>>) -> Caller {
    Caller { headers, addr }
}

fn parts(req: Request) -> (HeaderMap, Option<ConnectInfo<std::net::SocketAddr>>) {
    let addr = req
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .cloned();
    let (p, _) = req.into_parts();
    (p.headers, addr)
}

/// Passes the API's cookie updates (a refreshed session, a new CSRF token) on to the browser.
fn with_cookies(mut res: Response, replies: &[&Reply]) -> Response {
    for r in replies {
        for c in &r.set_cookies {
            res.headers_mut().append(header::SET_COOKIE, c.clone());
        }
    }
    res
}

pub async fn home() -> Response {
    redirect(StatusCode::SEE_OTHER, "/ui/welcome")
}

/// Binds buttons carrying an `onclickTrigger` to the function a platform script (Kratos'
/// webauthn.js) defines: Kratos front ends use inline `onclick`, which the pages' policy forbids.
pub async fn bridge_script() -> Response {
    let mut res = BRIDGE.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    res
}

const BRIDGE: &str = "document.addEventListener('click',function(e){var b=e.target.closest('button[data-trigger]');\
if(!b)return;var f=window[b.getAttribute('data-trigger')];if(typeof f==='function'){e.preventDefault();f();}});\n";

pub async fn stylesheet(Extension(ui): Extension<Arc<Ui>>) -> Response {
    let mut res = ui.css.clone().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    res
}

/// `/ui/{login,registration,recovery,verification,settings}?flow=…`
pub async fn flow(
    Extension(ui): Extension<Arc<Ui>>,
    axum::extract::Path(page): axum::extract::Path<String>,
    Query(mut query): Query<BTreeMap<String, String>>,
    req: Request,
) -> Response {
    let (headers, addr) = parts(req);
    let lang = ui.lang(&headers);
    let Some(kind) = FLOWS.iter().find(|k| **k == page).copied() else {
        return ui.error_page(&lang, StatusCode::NOT_FOUND, &Value::Null, "error.not_found");
    };
    let init = format!("self-service/{kind}/browser");
    let Some(id) = query.remove("flow").filter(|f| !f.is_empty()) else {
        return redirect(StatusCode::SEE_OTHER, &ui.api_url(&init, &query));
    };
    let caller = caller(headers, addr);
    let path = format!(
        "/self-service/{kind}/flows?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("id", &id)
            .finish()
    );
    let reply = ui.api.call(Method::GET, &path, &caller).await;
    if !reply.status.is_success() {
        return with_cookies(refused(&ui, &lang, &init, &query, &reply), &[&reply]);
    }
    let res = render_flow(&ui, &lang, kind, &reply.body);
    with_cookies(res, &[&reply])
}

/// What a front end does when the API will not hand out the flow.
fn refused(ui: &Ui, lang: &str, init: &str, query: &BTreeMap<String, String>, reply: &Reply) -> Response {
    let err = reply.body.get("error").cloned().unwrap_or(Value::Null);
    match (reply.status.as_u16(), reply.error_id()) {
        // Unknown, expired or malformed ids: a fresh flow, keeping return_to, aal and refresh.
        (404 | 410 | 400, id) if id != "security_csrf_violation" => {
            redirect(StatusCode::SEE_OTHER, &ui.api_url(init, query))
        }
        // Starting over would loop: the browser does not keep the CSRF cookie.
        (_, "security_csrf_violation") => ui.error_page(lang, StatusCode::FORBIDDEN, &err, "error.csrf"),
        // Settings without a session, or at too low an AAL: where the API says to go.
        _ => match reply.redirect_browser_to() {
            Some(to) => redirect(StatusCode::SEE_OTHER, to),
            None if reply.status == StatusCode::UNAUTHORIZED => redirect(
                StatusCode::SEE_OTHER,
                &ui.api_url("self-service/login/browser", query),
            ),
            None => ui.error_page(lang, reply.status, &err, "error.gone"),
        },
    }
}

fn render_flow(ui: &Ui, lang: &str, kind: &str, flow: &Value) -> Response {
    let empty = vec![];
    let nodes = flow
        .pointer("/ui/nodes")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let title_key = match kind {
        "login" if flow.get("refresh").and_then(Value::as_bool) == Some(true) => "title.login_refresh",
        "login" if flow.get("requested_aal").and_then(Value::as_str) == Some("aal2") => "title.login_aal2",
        _ => &format!("title.{kind}"),
    };
    let title = ui.t(lang, title_key);
    let sections = view::sections(&ui.locales, lang, ui.public.as_str(), nodes);
    let bridge = sections
        .iter()
        .any(|s| s.fields.iter().any(|f| !f.trigger.is_empty()));
    let has_errors = sections.iter().any(|s| s.fields.iter().any(|f| f.invalid));
    let mut links: Vec<(String, String)> = vec![];
    let mut keep = BTreeMap::new();
    if let Some(rt) = flow
        .get("return_to")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        keep.insert("return_to".to_string(), rt.to_string());
    }
    let to = |page: &str| {
        let mut u = page.to_string();
        if !keep.is_empty() {
            u.push('?');
            u.push_str(
                &url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(keep.iter())
                    .finish(),
            );
        }
        u
    };
    let aal2 = flow.get("requested_aal").and_then(Value::as_str) == Some("aal2");
    let refresh = flow.get("refresh").and_then(Value::as_bool) == Some(true);
    match kind {
        "login" if aal2 || refresh => links.push(("logout".into(), ui.t(lang, "link.logout"))),
        "login" => {
            if ui.registration_enabled {
                links.push((to("registration"), ui.t(lang, "link.register")));
            }
            if ui.recovery_enabled {
                links.push((to("recovery"), ui.t(lang, "link.recovery")));
            }
        }
        "registration" => links.push((to("login"), ui.t(lang, "link.login"))),
        "settings" => links.push(("welcome".into(), ui.t(lang, "link.welcome"))),
        _ => links.push((to("login"), ui.t(lang, "link.login"))),
    }
    if kind == "verification" && flow.get("state").and_then(Value::as_str) == Some("passed_challenge") {
        links.insert(0, ("welcome".into(), ui.t(lang, "link.welcome")));
    }
    let links: Vec<_> = links
        .into_iter()
        .map(|(href, text)| context! { href => href, text => text })
        .collect();
    let ctx = context! {
        kind => kind,
        state => flow.get("state").and_then(Value::as_str).unwrap_or(""),
        action => flow.pointer("/ui/action").and_then(Value::as_str).unwrap_or(""),
        method => flow.pointer("/ui/method").and_then(Value::as_str).unwrap_or("POST"),
        messages => minijinja::Value::from(minijinja::value::Serde(view::messages(&ui.locales, lang, flow.pointer("/ui/messages")))),
        sections => minijinja::Value::from(minijinja::value::Serde(&sections)),
        form_error => if has_errors { ui.t(lang, "form.errors") } else { String::new() },
        required => ui.t(lang, "field.required"),
        links => links,
        bridge => bridge,
    };
    ui.page(StatusCode::OK, "flow.html", lang, &title, ctx)
}

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
                    context! {
                        method => m.get("method").and_then(Value::as_str).unwrap_or(""),
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
    ui.error_page(&lang, status, &err, "error.gone")
}
