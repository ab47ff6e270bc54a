//! A `web_hook` hook's `config` (Kratos `selfServiceWebHook` in the config schema, read by
//! `request.Builder`), parsed once at startup, and the table of which hooks run at which hook point.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use url::Url;

use sallyport_config::{Config, FlowKind, model::Hook};
use sallyport_core::flow::FlowKind as Kind;

/// How a hook authenticates to its receiver.
#[derive(Clone)]
pub enum Auth {
    None,
    Basic { user: String, password: String },
    ApiKeyHeader { name: String, value: String },
    ApiKeyCookie { name: String, value: String },
}

/// One `web_hook`.
#[derive(Clone)]
pub struct WebHook {
    /// The URL without userinfo or query: what logs and metric labels name.
    pub label: String,
    pub url: Url,
    pub method: reqwest::Method,
    /// Header names as written; values may be credentials, so they are never logged.
    pub headers: Vec<(String, String)>,
    /// `file://`, `base64://` or `http(s)://` Jsonnet template; none sends no body.
    pub body: Option<String>,
    pub auth: Auth,
    pub can_interrupt: bool,
    pub ignore: bool,
    pub parse: bool,
    pub emit_analytics_event: bool,
}

// Header values and auth hold secrets: the debug form names the hook only.
impl std::fmt::Debug for WebHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebHook")
            .field("url", &self.label)
            .field("method", &self.method)
            .field("can_interrupt", &self.can_interrupt)
            .field("ignore", &self.ignore)
            .field("parse", &self.parse)
            .finish()
    }
}

impl WebHook {
    /// Whether the answer can change the flow (Kratos runs these before persisting, the others after).
    pub fn blocks_persist(&self) -> bool {
        self.can_interrupt || self.parse
    }

    pub fn from_config(where_: &str, c: &Value) -> Result<WebHook, String> {
        let err = |why: &str| format!("{where_}: {why}");
        let s = |k: &str| c.get(k).and_then(Value::as_str);
        let raw_url = s("url")
            .filter(|u| !u.is_empty())
            .ok_or_else(|| err("url is required"))?;
        let url = Url::parse(raw_url).map_err(|e| err(&format!("url is invalid: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(err("url must be http:// or https://"));
        }
        let mut label = url.clone();
        let _ = label.set_username("");
        let _ = label.set_password(None);
        label.set_query(None);
        label.set_fragment(None);
        let method = s("method").filter(|m| !m.is_empty()).unwrap_or("POST");
        let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| err(&format!("invalid method {method:?}")))?;
        let mut headers = vec![];
        if let Some(h) = c.get("headers").and_then(Value::as_object) {
            for (k, v) in h {
                let v = v
                    .as_str()
                    .ok_or_else(|| err(&format!("header {k:?} must be a string")))?;
                reqwest::header::HeaderName::from_bytes(k.as_bytes())
                    .map_err(|_| err(&format!("invalid header name {k:?}")))?;
                reqwest::header::HeaderValue::from_str(v)
                    .map_err(|_| err(&format!("invalid value for header {k:?}")))?;
                headers.push((k.clone(), v.to_string()));
            }
        }
        let body = s("body").filter(|b| !b.is_empty()).map(str::to_string);
        if let Some(b) = &body
            && !["file://", "base64://", "http://", "https://"]
                .iter()
                .any(|p| b.starts_with(p))
        {
            return Err(err("body must be a file://, base64://, http:// or https:// URI"));
        }
        let flag = |v: Option<&Value>| v.and_then(Value::as_bool).unwrap_or(false);
        let hook = WebHook {
            label: label.to_string(),
            url,
            method,
            headers,
            body,
            auth: parse_auth(c.get("auth")).map_err(|e| err(&e))?,
            can_interrupt: flag(c.get("can_interrupt")),
            ignore: flag(c.pointer("/response/ignore")),
            parse: flag(c.pointer("/response/parse")),
            emit_analytics_event: c
                .get("emit_analytics_event")
                .and_then(Value::as_bool)
                .unwrap_or(true),
        };
        // Kratos fails each flow at run time with a 500 for this; refusing the config is kinder.
        if hook.ignore && hook.blocks_persist() {
            return Err(err(
                "response.ignore cannot be combined with response.parse or can_interrupt",
            ));
        }
        Ok(hook)
    }
}

fn parse_auth(auth: Option<&Value>) -> Result<Auth, String> {
    let Some(auth) = auth.filter(|a| !a.is_null()) else {
        return Ok(Auth::None);
    };
    let kind = auth.get("type").and_then(Value::as_str).unwrap_or("");
    let config = auth.get("config").filter(|c| c.is_object()).unwrap_or(auth);
    let get = |k: &str| config.get(k).and_then(Value::as_str).map(str::to_string);
    match kind {
        "" => Ok(Auth::None),
        "basic_auth" => Ok(Auth::Basic {
            user: get("user").ok_or("basic_auth requires a string user")?,
            password: get("password").ok_or("basic_auth requires a string password")?,
        }),
        "api_key" => {
            let name = get("name").ok_or("api_key requires a string name")?;
            let value = get("value").ok_or("api_key requires a string value")?;
            match get("in").as_deref() {
                Some("cookie") => Ok(Auth::ApiKeyCookie { name, value }),
                _ => {
                    reqwest::header::HeaderName::from_bytes(name.as_bytes())
                        .map_err(|_| "api_key name is not a valid header name")?;
                    Ok(Auth::ApiKeyHeader { name, value })
                }
            }
        }
        other => Err(format!("unsupported auth type {other:?}")),
    }
}

/// Which `web_hook`s run where, in configuration order. Other hooks are the flows' business.
#[derive(Debug, Clone, Default)]
pub struct WebHookTable {
    before: HashMap<FlowKind, Arc<[WebHook]>>,
    after: HashMap<FlowKind, Arc<[WebHook]>>,
    /// Per-method lists: present whenever `after.<method>.hooks` is non-empty, because such a list
    /// replaces the flow's hooks even when it has no web hook.
    after_method: HashMap<(FlowKind, String), Arc<[WebHook]>>,
    /// The signing secret (`sallyport.web_hooks.signing_secret`), decoded.
    pub signing_key: Option<Arc<Vec<u8>>>,
    /// `clients.web_hook.header_allowlist`: the request headers `ctx.request_headers` shows.
    pub header_allowlist: Arc<[String]>,
}

const FLOWS: [FlowKind; 5] = [
    FlowKind::Login,
    FlowKind::Registration,
    FlowKind::Settings,
    FlowKind::Recovery,
    FlowKind::Verification,
];

fn web_hooks(where_: &str, hooks: &[Hook]) -> Result<Arc<[WebHook]>, String> {
    hooks
        .iter()
        .enumerate()
        .filter(|(_, h)| h.hook == "web_hook")
        .map(|(i, h)| WebHook::from_config(&format!("{where_}.{i}.config"), &h.config))
        .collect::<Result<Vec<_>, _>>()
        .map(Arc::from)
}

impl WebHookTable {
    pub fn from_config(cfg: &Config) -> Result<WebHookTable, String> {
        let mut t = WebHookTable::default();
        let f = &cfg.selfservice.flows;
        for kind in FLOWS {
            let name = kind.as_str();
            let (before, after) = match kind {
                FlowKind::Login => (&f.login.before, &f.login.after),
                FlowKind::Registration => (&f.registration.before, &f.registration.after),
                FlowKind::Settings => (&f.settings.before, &f.settings.after),
                FlowKind::Recovery => (&f.recovery.before, &f.recovery.after),
                FlowKind::Verification => (&f.verification.before, &f.verification.after),
            };
            let base = format!("selfservice.flows.{name}");
            t.before
                .insert(kind, web_hooks(&format!("{base}.before.hooks"), &before.hooks)?);
            t.after
                .insert(kind, web_hooks(&format!("{base}.after.hooks"), &after.hooks)?);
            for (method, m) in &after.methods {
                if !m.hooks.is_empty() {
                    let list = web_hooks(&format!("{base}.after.{method}.hooks"), &m.hooks)?;
                    t.after_method.insert((kind, method.clone()), list);
                }
            }
        }
        t.header_allowlist = match cfg.raw().pointer("/clients/web_hook/header_allowlist") {
            Some(serde_json::Value::Array(a)) => {
                a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()
            }
            _ => crate::webhook::ctx::HEADER_ALLOW_LIST
                .iter()
                .map(|h| h.to_string())
                .collect(),
        };
        if let Some(secret) = &cfg.sallyport.web_hooks.signing_secret {
            t.signing_key = Some(Arc::new(crate::webhook::sign::decode_secret(secret)?));
        }
        Ok(t)
    }

    pub fn before(&self, kind: Kind) -> Arc<[WebHook]> {
        self.before
            .get(&config_kind(kind))
            .cloned()
            .unwrap_or_else(|| Arc::from(vec![]))
    }

    /// Kratos' rule: `after.<method>.hooks` when non-empty, else `after.hooks`.
    pub fn after(&self, kind: Kind, method: &str) -> Arc<[WebHook]> {
        let kind = config_kind(kind);
        self.after_method
            .get(&(kind, method.to_string()))
            .or_else(|| self.after.get(&kind))
            .cloned()
            .unwrap_or_else(|| Arc::from(vec![]))
    }

    /// Every configured hook (a hook listed at several points appears several times).
    pub fn all(&self) -> impl Iterator<Item = &WebHook> {
        self.before
            .values()
            .chain(self.after.values())
            .chain(self.after_method.values())
            .flat_map(|l| l.iter())
    }

    /// Whether any hook goes through the outbox.
    pub fn has_async(&self) -> bool {
        self.all().any(|h| h.ignore)
    }

    pub fn is_empty(&self) -> bool {
        self.before
            .values()
            .chain(self.after.values())
            .chain(self.after_method.values())
            .all(|l| l.is_empty())
    }
}

fn config_kind(k: Kind) -> FlowKind {
    match k {
        Kind::Login => FlowKind::Login,
        Kind::Registration => FlowKind::Registration,
        Kind::Settings => FlowKind::Settings,
        Kind::Recovery => FlowKind::Recovery,
        Kind::Verification => FlowKind::Verification,
    }
}
