//! The `ctx` a hook's Jsonnet template sees (Kratos `templateContext`): `flow`, `request_headers`
//! (Kratos' allow-list only), `request_method`, `request_url`, `request_cookies`, and `identity` and
//! `session` where the hook point has them.

use serde_json::{Map, Value, json};

use sallyport_core::flow::Flow;
use sallyport_core::identity::Identity;
use sallyport_core::session::Session;

use crate::http::request::ReqInfo;
use crate::state::App;

/// Kratos `RequestHeaderAllowList`, the default of `clients.web_hook.header_allowlist`.
pub const HEADER_ALLOW_LIST: &[&str] = &[
    "Accept",
    "Accept-Encoding",
    "Accept-Language",
    "Content-Length",
    "Content-Type",
    "Origin",
    "Priority",
    "Referer",
    "Sec-Ch-Ua",
    "Sec-Ch-Ua-Mobile",
    "Sec-Ch-Ua-Platform",
    "Sec-Fetch-Dest",
    "Sec-Fetch-Mode",
    "Sec-Fetch-Site",
    "Sec-Fetch-User",
    "True-Client-Ip",
    "User-Agent",
];

#[derive(Debug, Clone)]
pub struct HookCtx {
    pub flow: Value,
    pub request_headers: Value,
    pub request_method: String,
    pub request_url: String,
    pub request_cookies: Value,
    pub identity: Option<Value>,
    pub session: Option<Value>,
}

impl HookCtx {
    /// `method` is the HTTP method of the request that reached the hook point.
    pub fn new(app: &App, req: &ReqInfo, method: &str, flow: &Flow) -> HookCtx {
        let mut headers = Map::new();
        for name in app.web_hooks.table.header_allowlist.iter() {
            let Ok(name_h) = axum::http::HeaderName::from_bytes(name.as_bytes()) else {
                continue;
            };
            let values: Vec<Value> = req
                .headers
                .get_all(name_h)
                .iter()
                .filter_map(|v| v.to_str().ok().map(|s| json!(s)))
                .collect();
            if !values.is_empty() {
                headers.insert(name.clone(), Value::Array(values));
            }
        }
        let mut cookies = Map::new();
        for h in req.headers.get_all(axum::http::header::COOKIE) {
            let Ok(h) = h.to_str() else { continue };
            for c in cookie::Cookie::split_parse(h).flatten() {
                if !c.name().is_empty() {
                    cookies.insert(c.name().to_string(), json!(c.value()));
                }
            }
        }
        let mut flow_json = crate::render::flow(flow, "");
        if let Some(p) = flow.internal_context.get("transient_payload") {
            flow_json["transient_payload"] = p.clone();
        }
        HookCtx {
            flow: flow_json,
            request_headers: Value::Object(headers),
            request_method: method.to_string(),
            request_url: req.request_url(&app.settings.public_base_url),
            request_cookies: Value::Object(cookies),
            identity: None,
            session: None,
        }
    }

    pub fn with_identity(mut self, app: &App, identity: &Identity) -> HookCtx {
        self.identity = Some(identity_json(app, identity));
        self
    }

    pub fn with_session(mut self, session: &Session) -> HookCtx {
        self.session = Some(crate::render::session(
            session,
            self.identity.clone(),
            sallyport_core::time_fmt::now(),
        ));
        self
    }

    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("flow".into(), self.flow.clone());
        o.insert("request_headers".into(), self.request_headers.clone());
        o.insert("request_method".into(), json!(self.request_method));
        o.insert("request_url".into(), json!(self.request_url));
        o.insert("request_cookies".into(), self.request_cookies.clone());
        if let Some(i) = &self.identity {
            o.insert("identity".into(), i.clone());
        }
        if let Some(s) = &self.session {
            o.insert("session".into(), s.clone());
        }
        Value::Object(o)
    }
}

/// The identity as hooks see it: the admin view (metadata_admin, credential types and identifiers, no
/// hashes or secrets).
pub fn identity_json(app: &App, identity: &Identity) -> Value {
    crate::render::identity(app, identity, &crate::render::ADMIN)
}
