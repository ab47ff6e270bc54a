//! The flow pages: what a Kratos browser front end does with `/ui/<flow>?flow=…` — no id → start a
//! flow; an id the API no longer knows → start a fresh one; otherwise render the flow's nodes.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Query, Request};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use minijinja::context;
use serde_json::Value;

use super::api::Reply;
use super::pages::{Ui, caller, parts, with_cookies};
use super::view;
use crate::http::error::redirect;

/// `/ui/{login,registration,recovery,verification,settings}?flow=…`
pub async fn flow(
    Extension(ui): Extension<Arc<Ui>>,
    axum::extract::Path(page): axum::extract::Path<String>,
    Query(mut query): Query<BTreeMap<String, String>>,
    req: Request,
) -> Response {
    let (headers, addr) = parts(req);
    let lang = ui.lang(&headers);
    let Some(kind) = super::pages::FLOWS.iter().find(|k| **k == page).copied() else {
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
