//! What every page shares: the loaded templates, catalogues and branding, rendering into the layout,
//! the error page, and passing the browser's cookies to the API and back.

use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::{Environment, context};
use serde_json::Value;
use std::sync::Arc;

use super::api::{Api, Caller, Reply};
use super::i18n::Locales;
use super::templates;
use crate::http::error::redirect;
use crate::settings::Settings;

pub struct Ui {
    pub(super) api: Api,
    pub(super) env: Environment<'static>,
    pub(super) locales: Locales,
    pub(super) css: String,
    /// Part of the stylesheet's URL, so browsers may cache it for good and still see a new brand colour.
    pub(super) css_version: String,
    pub csp: String,
    pub(super) public: url::Url,
    pub(super) product: String,
    pub(super) logo: Option<String>,
    pub(super) theme: &'static str,
    pub(super) registration_enabled: bool,
    pub(super) recovery_enabled: bool,
    pub(super) verification_enabled: bool,
}

pub(super) const FLOWS: [&str; 5] = ["login", "registration", "recovery", "verification", "settings"];

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

    pub(super) fn lang(&self, headers: &HeaderMap) -> String {
        let al = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
        self.locales.pick(al)
    }

    pub(super) fn t(&self, lang: &str, key: &str) -> String {
        self.locales.ui(lang, key)
    }

    /// Renders `template` inside the layout; a broken override template yields a plain 500 page
    /// whose reason goes to the log, never to the browser.
    pub(super) fn page(
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

    pub(super) fn api_url(&self, path: &str, query: &BTreeMap<String, String>) -> String {
        let mut u = self.public.join(path).unwrap_or_else(|_| self.public.clone());
        if !query.is_empty() {
            u.query_pairs_mut().extend_pairs(query.iter());
        }
        u.to_string()
    }

    pub(super) fn error_page(
        &self,
        lang: &str,
        status: StatusCode,
        error: &Value,
        fallback_key: &str,
    ) -> Response {
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

pub(super) fn caller(headers: HeaderMap, addr: Option<ConnectInfo<std::net::SocketAddr>>) -> Caller {
    Caller { headers, addr }
}

pub(super) fn parts(req: Request) -> (HeaderMap, Option<ConnectInfo<std::net::SocketAddr>>) {
    let addr = req
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .cloned();
    let (p, _) = req.into_parts();
    (p.headers, addr)
}

/// Passes the API's cookie updates (a refreshed session, a new CSRF token) on to the browser.
pub(super) fn with_cookies(mut res: Response, replies: &[&Reply]) -> Response {
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
