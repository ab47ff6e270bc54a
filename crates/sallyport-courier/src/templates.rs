//! Message templates (Kratos `courier/template`): the built-in texts, overrides from
//! `courier.template_override_path` and `courier.templates.*`, and rendering a template model.
//!
//! Template data is Kratos' model JSON (`{"to": …, "login_code": …, "identity": {…}}`); Go templates
//! see it as the Go model struct, so keys are mapped to the Go field names (`.To`, `.LoginCode`,
//! `.Identity`, `.ExpiresInMinutes`, `.RequestURLDomain` …). Referring to a field the model does not
//! have is an execution error, as in Go; maps (`.Identity.traits.email`) print `<no value>` for
//! missing keys.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use gtmpl::Value as TValue;
use sallyport_config::model::Courier;
use sallyport_core::courier::MessageType;
use serde_json::Value;

use crate::error::CourierError;
use crate::gotmpl::{self, Compiled};

/// The rendered texts of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Email subject, trimmed, without CR/LF (empty for SMS).
    pub subject: String,
    /// Plain-text email body, or the SMS text.
    pub body: String,
    /// HTML email body (interpolated values are HTML-escaped); `None` for SMS.
    pub html_body: Option<String>,
}

/// Which text of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Part {
    Subject,
    Html,
    Plain,
    Sms,
}

impl Part {
    fn file(self) -> &'static str {
        match self {
            Part::Subject => "email.subject.gotmpl",
            Part::Html => "email.body.gotmpl",
            Part::Plain => "email.body.plaintext.gotmpl",
            Part::Sms => "sms.body.gotmpl",
        }
    }

    /// Files starting with this prefix are parsed together with the main one (Kratos' glob
    /// `…/email.body*`, used for i18n sub-templates).
    fn sibling_prefix(self) -> &'static str {
        match self {
            Part::Subject => "email.subject",
            Part::Html => "email.body",
            Part::Plain => "email.body.plaintext",
            Part::Sms => "sms.body",
        }
    }

    /// Path inside `courier.templates.<…>.<email|sms>`.
    fn config_path(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Part::Subject => ("email", &["subject"]),
            Part::Html => ("email", &["body", "html"]),
            Part::Plain => ("email", &["body", "plaintext"]),
            Part::Sms => ("sms", &["body", "plaintext"]),
        }
    }

    fn is_html(self) -> bool {
        self == Part::Html
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Str,
    Int,
    Map,
    OAuth2,
}

/// A Go model field: Go name, JSON keys it is read from (first present wins), kind.
type Field = (&'static str, &'static [&'static str], Kind);

const TO: Field = ("To", &["to"], Kind::Str);
const REQUEST_URL: Field = ("RequestURL", &["request_url"], Kind::Str);
const REQUEST_URL_DOMAIN: Field = ("RequestURLDomain", &["request_url_domain"], Kind::Str);
const TRANSIENT_PAYLOAD: Field = ("TransientPayload", &["transient_payload"], Kind::Map);
const IDENTITY: Field = ("Identity", &["identity"], Kind::Map);
const EXPIRES: Field = ("ExpiresInMinutes", &["expires_in_minutes"], Kind::Int);
const OAUTH2: Field = ("OAuth2LoginRequest", &["oauth2_login_request"], Kind::OAuth2);

const INVALID_MODEL: &[Field] = &[TO, REQUEST_URL, TRANSIENT_PAYLOAD];

/// One Kratos template type.
struct Info {
    id: &'static str,
    /// Directory under the template root (`login_code/valid`); also the `courier.templates` path.
    dir: &'static str,
    email: &'static [Field],
    /// `None`: no SMS variant.
    sms: Option<&'static [Field]>,
}

const INFOS: &[Info] = &[
    Info {
        id: "recovery_invalid",
        dir: "recovery/invalid",
        email: INVALID_MODEL,
        sms: None,
    },
    Info {
        id: "recovery_valid",
        dir: "recovery/valid",
        email: &[
            TO,
            ("RecoveryURL", &["recovery_url"], Kind::Str),
            IDENTITY,
            REQUEST_URL,
            TRANSIENT_PAYLOAD,
            EXPIRES,
        ],
        sms: None,
    },
    Info {
        id: "recovery_code_invalid",
        dir: "recovery_code/invalid",
        email: INVALID_MODEL,
        sms: None,
    },
    Info {
        id: "recovery_code_valid",
        dir: "recovery_code/valid",
        email: &[
            TO,
            ("RecoveryCode", &["recovery_code"], Kind::Str),
            IDENTITY,
            REQUEST_URL,
            TRANSIENT_PAYLOAD,
            EXPIRES,
        ],
        // Kratos' SMS model serializes the recovery code as `verification_code`; accept both.
        sms: Some(&[
            TO,
            ("RecoveryCode", &["recovery_code", "verification_code"], Kind::Str),
            IDENTITY,
            REQUEST_URL,
            REQUEST_URL_DOMAIN,
            TRANSIENT_PAYLOAD,
            EXPIRES,
        ]),
    },
    Info {
        id: "verification_invalid",
        dir: "verification/invalid",
        email: INVALID_MODEL,
        sms: None,
    },
    Info {
        id: "verification_valid",
        dir: "verification/valid",
        email: &[
            TO,
            ("VerificationURL", &["verification_url"], Kind::Str),
            IDENTITY,
            REQUEST_URL,
            TRANSIENT_PAYLOAD,
            EXPIRES,
            OAUTH2,
        ],
        sms: None,
    },
    Info {
        id: "verification_code_invalid",
        dir: "verification_code/invalid",
        email: INVALID_MODEL,
        sms: None,
    },
    Info {
        id: "verification_code_valid",
        dir: "verification_code/valid",
        email: &[
            TO,
            ("VerificationURL", &["verification_url"], Kind::Str),
            ("VerificationCode", &["verification_code"], Kind::Str),
            IDENTITY,
            REQUEST_URL,
            TRANSIENT_PAYLOAD,
            EXPIRES,
            OAUTH2,
        ],
        sms: Some(&[
            TO,
            ("VerificationCode", &["verification_code"], Kind::Str),
            IDENTITY,
            REQUEST_URL,
            REQUEST_URL_DOMAIN,
            TRANSIENT_PAYLOAD,
            EXPIRES,
            OAUTH2,
        ]),
    },
    Info {
        id: "login_code_valid",
        dir: "login_code/valid",
        email: &[
            TO,
            ("LoginCode", &["login_code"], Kind::Str),
            IDENTITY,
            REQUEST_URL,
            TRANSIENT_PAYLOAD,
            EXPIRES,
            OAUTH2,
        ],
        sms: Some(&[
            TO,
            ("LoginCode", &["login_code"], Kind::Str),
            IDENTITY,
            REQUEST_URL,
            REQUEST_URL_DOMAIN,
            TRANSIENT_PAYLOAD,
            EXPIRES,
            OAUTH2,
        ]),
    },
    Info {
        id: "registration_code_valid",
        dir: "registration_code/valid",
        email: &[
            TO,
            ("Traits", &["traits"], Kind::Map),
            ("RegistrationCode", &["registration_code"], Kind::Str),
            REQUEST_URL,
            TRANSIENT_PAYLOAD,
            EXPIRES,
            OAUTH2,
        ],
        sms: Some(&[
            TO,
            ("RegistrationCode", &["registration_code"], Kind::Str),
            IDENTITY,
            REQUEST_URL,
            REQUEST_URL_DOMAIN,
            TRANSIENT_PAYLOAD,
            EXPIRES,
            OAUTH2,
        ]),
    },
    Info {
        id: "verifiable_address_changed",
        dir: "verifiable_address_changed",
        email: &[
            TO,
            IDENTITY,
            ("ChangedAt", &["changed_at"], Kind::Str),
            TRANSIENT_PAYLOAD,
        ],
        sms: Some(&[
            TO,
            IDENTITY,
            ("ChangedAt", &["changed_at"], Kind::Str),
            TRANSIENT_PAYLOAD,
        ]),
    },
    Info {
        id: "authenticator_key_added",
        dir: "authenticator_key_added",
        email: &[
            TO,
            IDENTITY,
            ("AddedAt", &["added_at"], Kind::Str),
            TRANSIENT_PAYLOAD,
        ],
        sms: Some(&[
            TO,
            IDENTITY,
            ("AddedAt", &["added_at"], Kind::Str),
            TRANSIENT_PAYLOAD,
        ]),
    },
];

/// Kratos' test template: its texts come from the data, nothing is rendered.
const STUB: &str = "stub";

macro_rules! builtins {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../templates/", $path)))),*]
    };
}

/// The built-in texts, keyed by `<dir>/<file>` (verbatim from Kratos, see `templates/NOTICE.md`).
static BUILTINS: &[(&str, &str)] = builtins!(
    "authenticator_key_added/email.body.gotmpl",
    "authenticator_key_added/email.body.plaintext.gotmpl",
    "authenticator_key_added/email.subject.gotmpl",
    "authenticator_key_added/sms.body.gotmpl",
    "login_code/valid/email.body.gotmpl",
    "login_code/valid/email.body.plaintext.gotmpl",
    "login_code/valid/email.subject.gotmpl",
    "login_code/valid/sms.body.gotmpl",
    "recovery/invalid/email.body.gotmpl",
    "recovery/invalid/email.body.plaintext.gotmpl",
    "recovery/invalid/email.subject.gotmpl",
    "recovery/valid/email.body.gotmpl",
    "recovery/valid/email.body.plaintext.gotmpl",
    "recovery/valid/email.subject.gotmpl",
    "recovery_code/invalid/email.body.gotmpl",
    "recovery_code/invalid/email.body.plaintext.gotmpl",
    "recovery_code/invalid/email.subject.gotmpl",
    "recovery_code/valid/email.body.gotmpl",
    "recovery_code/valid/email.body.plaintext.gotmpl",
    "recovery_code/valid/email.subject.gotmpl",
    "recovery_code/valid/sms.body.gotmpl",
    "registration_code/valid/email.body.gotmpl",
    "registration_code/valid/email.body.plaintext.gotmpl",
    "registration_code/valid/email.subject.gotmpl",
    "registration_code/valid/sms.body.gotmpl",
    "verifiable_address_changed/email.body.gotmpl",
    "verifiable_address_changed/email.body.plaintext.gotmpl",
    "verifiable_address_changed/email.subject.gotmpl",
    "verifiable_address_changed/sms.body.gotmpl",
    "verification/invalid/email.body.gotmpl",
    "verification/invalid/email.body.plaintext.gotmpl",
    "verification/invalid/email.subject.gotmpl",
    "verification/valid/email.body.gotmpl",
    "verification/valid/email.body.plaintext.gotmpl",
    "verification/valid/email.subject.gotmpl",
    "verification_code/invalid/email.body.gotmpl",
    "verification_code/invalid/email.body.plaintext.gotmpl",
    "verification_code/invalid/email.subject.gotmpl",
    "verification_code/valid/email.body.gotmpl",
    "verification_code/valid/email.body.plaintext.gotmpl",
    "verification_code/valid/email.subject.gotmpl",
    "verification_code/valid/sms.body.gotmpl",
);

fn builtin(path: &str) -> Option<&'static str> {
    BUILTINS.iter().find(|(p, _)| *p == path).map(|(_, text)| *text)
}

/// Where a loaded template came from (for error messages).
#[derive(Debug)]
struct Loaded {
    origin: String,
    compiled: Compiled,
}

/// Every message template, compiled. Cheap to share (`Arc`); rendering is synchronous.
#[derive(Debug)]
pub struct Templates {
    loaded: HashMap<(&'static str, Part), Loaded>,
}

impl Templates {
    /// The built-in templates only.
    pub fn builtin() -> Templates {
        Templates::from_config(&Courier::default()).expect("built-in templates compile")
    }

    /// Loads the templates: per text, `courier.templates.<type>…` (a `file://`, `base64://` or
    /// `http(s)://` URI) wins over a file in `courier.template_override_path`, which wins over the
    /// built-in text. Every template is parsed here, so broken overrides fail at startup.
    pub fn from_config(cfg: &Courier) -> Result<Templates, CourierError> {
        let http = crate::Unrestricted::new().map_err(CourierError::Config)?;
        Templates::from_config_with(cfg, &http)
    }

    /// [`Templates::from_config`] with `http(s)://` templates fetched under the caller's policy.
    pub fn from_config_with(
        cfg: &Courier,
        http: &dyn crate::OutgoingHttp,
    ) -> Result<Templates, CourierError> {
        let root = cfg
            .template_override_path
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(PathBuf::from);
        let mut loaded = HashMap::new();
        for info in INFOS {
            let mut parts = vec![Part::Subject, Part::Html, Part::Plain];
            if info.sms.is_some() {
                parts.push(Part::Sms);
            }
            for part in parts {
                if let Some(l) = load_part(cfg, root.as_deref(), info, part, http)? {
                    loaded.insert((info.id, part), l);
                }
            }
        }
        Ok(Templates { loaded })
    }

    /// The template ids this instance can render (Kratos `template_type`s), `stub` included.
    pub fn template_types() -> Vec<&'static str> {
        INFOS.iter().map(|i| i.id).chain(std::iter::once(STUB)).collect()
    }

    /// Renders `template_type` for `kind` with Kratos model JSON `data`.
    pub fn render(
        &self,
        template_type: &str,
        kind: MessageType,
        data: &Value,
    ) -> Result<Rendered, CourierError> {
        self.render_parts(template_type, kind, data, true)
    }

    /// What a message keeps when it is queued (Kratos' `QueueEmail`): the subject and the plain-text
    /// body, or the SMS text; no HTML body (`html_body: None`), which is rendered at delivery
    /// (`render_html`), so a template error in it fails the delivery, as in Kratos.
    pub fn render_queued(
        &self,
        template_type: &str,
        kind: MessageType,
        data: &Value,
    ) -> Result<Rendered, CourierError> {
        self.render_parts(template_type, kind, data, false)
    }

    fn render_parts(
        &self,
        template_type: &str,
        kind: MessageType,
        data: &Value,
        with_html: bool,
    ) -> Result<Rendered, CourierError> {
        if template_type == STUB {
            let mut r = render_stub(kind, data);
            if !with_html {
                r.html_body = None;
            }
            return Ok(r);
        }
        let medium = kind.as_str();
        let unknown = || CourierError::UnknownTemplate {
            template_type: template_type.to_string(),
            medium,
        };
        let info = INFOS.iter().find(|i| i.id == template_type).ok_or_else(unknown)?;
        match kind {
            MessageType::Email => {
                let subject = self.execute(info, Part::Subject, info.email, data)?;
                let body = self.execute(info, Part::Plain, info.email, data)?;
                let html_body = match with_html {
                    true => Some(self.execute(info, Part::Html, info.email, data)?),
                    false => None,
                };
                Ok(Rendered {
                    subject: sanitize_header_value(subject.trim()),
                    body,
                    html_body,
                })
            }
            MessageType::Sms => {
                let fields = info.sms.ok_or_else(unknown)?;
                let body = self.execute(info, Part::Sms, fields, data)?;
                Ok(Rendered {
                    subject: String::new(),
                    body,
                    html_body: None,
                })
            }
        }
    }

    /// The HTML body of an email (what Kratos renders again at delivery time from `template_data`).
    pub fn render_html(&self, template_type: &str, data: &Value) -> Result<Option<String>, CourierError> {
        if template_type == STUB {
            return Ok(render_stub(MessageType::Email, data).html_body);
        }
        let info =
            INFOS
                .iter()
                .find(|i| i.id == template_type)
                .ok_or_else(|| CourierError::UnknownTemplate {
                    template_type: template_type.to_string(),
                    medium: "email",
                })?;
        self.execute(info, Part::Html, info.email, data).map(Some)
    }

    /// The template data as Kratos serializes its model (`ctx.template_data` of HTTP channels): `data`
    /// with every model field present (missing ones as zero values: `""`, `0`, `null` maps).
    pub fn model_json(template_type: &str, kind: MessageType, data: &Value) -> Value {
        let mut out = match data {
            Value::Object(o) => o.clone(),
            _ => serde_json::Map::new(),
        };
        let fields: &[Field] = if template_type == STUB {
            match kind {
                MessageType::Email => &[
                    TO,
                    ("Subject", &["subject"], Kind::Str),
                    ("Body", &["body"], Kind::Str),
                ],
                MessageType::Sms => &[TO, ("Body", &["body"], Kind::Str), IDENTITY],
            }
        } else {
            match INFOS.iter().find(|i| i.id == template_type) {
                Some(info) => match kind {
                    MessageType::Email => info.email,
                    MessageType::Sms => info.sms.unwrap_or(info.email),
                },
                None => &[],
            }
        };
        for (_, keys, kind) in fields {
            if keys.iter().any(|k| out.contains_key(*k)) {
                continue;
            }
            // The last key is the one Kratos writes (the SMS recovery model's `verification_code`).
            let key = keys[keys.len() - 1].to_string();
            match kind {
                Kind::Str => out.insert(key, Value::String(String::new())),
                Kind::Int => out.insert(key, Value::from(0)),
                Kind::Map => out.insert(key, Value::Null),
                Kind::OAuth2 => None, // `omitempty`
            };
        }
        Value::Object(out)
    }

    fn execute(
        &self,
        info: &Info,
        part: Part,
        fields: &[Field],
        data: &Value,
    ) -> Result<String, CourierError> {
        let loaded = self
            .loaded
            .get(&(info.id, part))
            .ok_or_else(|| CourierError::UnknownTemplate {
                template_type: info.id.to_string(),
                medium: if part == Part::Sms { "sms" } else { "email" },
            })?;
        let model = model(fields, data, part.is_html());
        loaded
            .compiled
            .execute(model)
            .map_err(|reason| CourierError::Render {
                name: loaded.origin.clone(),
                reason,
            })
    }
}

fn render_stub(kind: MessageType, data: &Value) -> Rendered {
    let s = |k: &str| {
        data.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    match kind {
        MessageType::Email => {
            let html = s("html_body");
            let body = s("body");
            Rendered {
                subject: sanitize_header_value(&s("subject")),
                html_body: Some(if html.is_empty() { body.clone() } else { html }),
                body,
            }
        }
        MessageType::Sms => Rendered {
            subject: String::new(),
            body: s("body"),
            html_body: None,
        },
    }
}

/// Replaces CR and LF (and runs of them) with one space: header values built from user input (traits
/// in subjects, recipients) must never start a new header line.
pub fn sanitize_header_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_break = false;
    for c in s.chars() {
        if c == '\r' || c == '\n' {
            if !in_break {
                out.push(' ');
            }
            in_break = true;
        } else {
            out.push(c);
            in_break = false;
        }
    }
    out
}

/// Builds the Go model struct (a gtmpl object: unknown fields are an error, as in Go).
fn model(fields: &[Field], data: &Value, escape: bool) -> TValue {
    let mut object = HashMap::new();
    for (go_name, keys, kind) in fields {
        let raw = keys.iter().find_map(|k| data.get(*k)).filter(|v| !v.is_null());
        let value = match kind {
            Kind::Str => {
                let s = match raw {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => String::new(),
                };
                TValue::String(if escape { gotmpl::html_escape(&s) } else { s })
            }
            Kind::Int => {
                let n = match raw {
                    Some(Value::Number(n)) => {
                        n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)).unwrap_or(0)
                    }
                    Some(Value::String(s)) => s.parse().unwrap_or(0),
                    _ => 0,
                };
                TValue::from(n)
            }
            // A nil Go map: indexing it yields nothing, printing it `map[]`.
            Kind::Map => match raw {
                Some(v @ Value::Object(_)) => gotmpl::json_to_value(v, escape),
                _ => TValue::Map(HashMap::new()),
            },
            Kind::OAuth2 => match raw {
                Some(Value::Object(o)) => oauth2(o, escape),
                _ => TValue::Nil,
            },
        };
        object.insert(go_name.to_string(), value);
    }
    TValue::Object(object)
}

/// `template.OAuth2LoginRequest{Challenge, Client{ClientID, ClientName, ClientURI, LogoURI, Metadata}}`.
fn oauth2(o: &serde_json::Map<String, Value>, escape: bool) -> TValue {
    let s = |v: Option<&Value>| {
        let s = v.and_then(Value::as_str).unwrap_or_default();
        TValue::String(if escape {
            gotmpl::html_escape(s)
        } else {
            s.to_string()
        })
    };
    let client = o.get("client").and_then(Value::as_object);
    let get = |k: &str| client.and_then(|c| c.get(k));
    let mut c = HashMap::new();
    c.insert("ClientID".to_string(), s(get("client_id")));
    c.insert("ClientName".to_string(), s(get("client_name")));
    c.insert("ClientURI".to_string(), s(get("client_uri")));
    c.insert("LogoURI".to_string(), s(get("logo_uri")));
    c.insert(
        "Metadata".to_string(),
        get("metadata").map_or(TValue::Nil, |m| gotmpl::json_to_value(m, escape)),
    );
    let mut r = HashMap::new();
    r.insert("Challenge".to_string(), s(o.get("challenge")));
    r.insert("Client".to_string(), TValue::Object(c));
    TValue::Object(r)
}

/// `courier.templates.<dir…>.<email|sms>.<part…>` as a non-empty string.
fn config_uri<'a>(templates: &'a Value, dir: &str, part: Part) -> Option<&'a str> {
    let (medium, path) = part.config_path();
    let mut node = templates;
    for key in dir
        .split('/')
        .chain(std::iter::once(medium))
        .chain(path.iter().copied())
    {
        node = node.get(key)?;
    }
    node.as_str().filter(|s| !s.is_empty())
}

fn load_part(
    cfg: &Courier,
    root: Option<&Path>,
    info: &Info,
    part: Part,
    http: &dyn crate::OutgoingHttp,
) -> Result<Option<Loaded>, CourierError> {
    let file = part.file();
    let compile_err = |origin: &str| {
        let origin = origin.to_string();
        move |reason| CourierError::Parse { name: origin, reason }
    };
    if let Some(uri) = config_uri(&cfg.templates, info.dir, part) {
        let text = crate::fetch::load_blocking(uri, false, http).map_err(|reason| CourierError::Load {
            uri: redact_uri(uri),
            reason,
        })?;
        let origin = redact_uri(uri);
        let compiled = gotmpl::compile(file, &text, &[]).map_err(compile_err(&origin))?;
        return Ok(Some(Loaded { origin, compiled }));
    }
    if let Some(root) = root {
        let dir = root.join(info.dir);
        let main = dir.join(file);
        if main.is_file() {
            let origin = main.display().to_string();
            let read = |p: &Path| {
                std::fs::read_to_string(p).map_err(|e| CourierError::Load {
                    uri: p.display().to_string(),
                    reason: e.to_string(),
                })
            };
            let text = read(&main)?;
            let mut siblings = Vec::new();
            if let Ok(entries) = std::fs::read_dir(&dir) {
                let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
                paths.sort();
                for path in paths {
                    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                        continue;
                    };
                    if name != file && name.starts_with(part.sibling_prefix()) && path.is_file() {
                        siblings.push((name.to_string(), read(&path)?));
                    }
                }
            }
            let compiled = gotmpl::compile(file, &text, &siblings).map_err(compile_err(&origin))?;
            return Ok(Some(Loaded { origin, compiled }));
        }
    }
    let path = format!("{}/{}", info.dir, file);
    match builtin(&path) {
        Some(text) => {
            let compiled = gotmpl::compile(file, text, &[]).map_err(compile_err(&path))?;
            Ok(Some(Loaded {
                origin: format!("builtin:{path}"),
                compiled,
            }))
        }
        None => Ok(None),
    }
}

/// A template URI fit for error messages: `base64://` payloads and URL credentials are dropped.
fn redact_uri(uri: &str) -> String {
    if uri.starts_with("base64://") {
        return "base64://…".to_string();
    }
    match url::Url::parse(uri) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        _ => uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use serde_json::json;

    fn sample() -> Value {
        json!({
            "to": "ann@example.org",
            "login_code": "123456",
            "registration_code": "234567",
            "recovery_code": "345678",
            "verification_code": "456789",
            "verification_url": "https://auth.example.org/self-service/verification?flow=f&code=456789",
            "recovery_url": "https://auth.example.org/self-service/recovery?flow=f&token=t",
            "identity": {"id": "8d2c1ae4-1d5b-4f3e-9a43-1f4c9a7a0b11", "traits": {"email": "ann@example.org"}},
            "traits": {"email": "ann@example.org"},
            "request_url": "https://auth.example.org/self-service/login/browser",
            "request_url_domain": "auth.example.org",
            "transient_payload": {},
            "expires_in_minutes": 15,
            "changed_at": "2026-01-01T00:00:00Z",
            "added_at": "2026-01-02T00:00:00Z",
        })
    }

    #[test]
    fn every_builtin_template_renders() {
        let t = Templates::builtin();
        for id in Templates::template_types() {
            let r = t
                .render(id, MessageType::Email, &sample())
                .unwrap_or_else(|e| panic!("{id}: {e}"));
            // Kratos' own `verifiable_address_changed` template indexes the identity with "ID" (the
            // JSON key is "id"), so Kratos prints `<no value>` there too.
            if id != "verifiable_address_changed" {
                assert!(!r.body.contains("<no value>"), "{id}: {}", r.body);
            }
            assert!(r.html_body.is_some(), "{id}");
            assert!(!r.subject.contains('\n'), "{id}");
        }
        for id in [
            "login_code_valid",
            "registration_code_valid",
            "recovery_code_valid",
            "verification_code_valid",
        ] {
            let r = t
                .render(id, MessageType::Sms, &sample())
                .unwrap_or_else(|e| panic!("{id}: {e}"));
            assert!(r.body.contains("@auth.example.org #"), "{id}: {}", r.body);
            assert_eq!(r.html_body, None);
        }
        assert!(matches!(
            t.render("recovery_valid", MessageType::Sms, &sample()),
            Err(CourierError::UnknownTemplate { .. })
        ));
        assert!(matches!(
            t.render("nope", MessageType::Email, &sample()),
            Err(CourierError::UnknownTemplate { .. })
        ));
    }

    #[test]
    fn builtin_texts_match_kratos() {
        let t = Templates::builtin();
        let r = t
            .render("login_code_valid", MessageType::Email, &sample())
            .unwrap();
        assert_eq!(r.subject, "Use code 123456 to log in");
        assert_eq!(
            r.body,
            "Login to your account with the following code:\n\n123456\n\nIt expires in 15 minutes.\n"
        );
        let r = t
            .render("registration_code_valid", MessageType::Email, &sample())
            .unwrap();
        assert_eq!(r.subject, "Use code 234567 to complete your account registration");
        let r = t
            .render("recovery_code_valid", MessageType::Email, &sample())
            .unwrap();
        assert_eq!(r.subject, "Use code 345678 to recover access to your account");
        let r = t
            .render("verification_code_valid", MessageType::Email, &sample())
            .unwrap();
        assert_eq!(r.subject, "Use code 456789 to verify your account");
        assert!(
            r.body
                .contains("https://auth.example.org/self-service/verification?flow=f&code=456789")
        );
        // html/template escapes `&` in the link.
        let html = r.html_body.unwrap();
        assert!(html.contains(
            "<a href=\"https://auth.example.org/self-service/verification?flow=f&amp;code=456789\">"
        ));
        let r = t.render("recovery_valid", MessageType::Email, &sample()).unwrap();
        assert_eq!(r.subject, "Recover access to your account");
        let r = t
            .render("verification_invalid", MessageType::Email, &sample())
            .unwrap();
        assert_eq!(r.subject, "Someone tried to verify this email address");

        let r = t.render("login_code_valid", MessageType::Sms, &sample()).unwrap();
        assert_eq!(
            r.body,
            "Your login code is: 123456\n\nIt expires in 15 minutes.\n\n@auth.example.org #123456\n"
        );
        let mut no_domain = sample();
        no_domain["request_url_domain"] = json!("");
        let r = t
            .render("login_code_valid", MessageType::Sms, &no_domain)
            .unwrap();
        assert_eq!(
            r.body,
            "Your login code is: 123456\n\nIt expires in 15 minutes.\n"
        );
        // Kratos' SMS recovery model names the code `verification_code` in JSON.
        let r = t
            .render(
                "recovery_code_valid",
                MessageType::Sms,
                &json!({"verification_code": "999", "request_url_domain": "d"}),
            )
            .unwrap();
        assert_eq!(r.body, "Your recovery code is: 999\n\n@d #999\n");
    }

    #[test]
    fn missing_data_renders_zero_values() {
        let t = Templates::builtin();
        let r = t
            .render("login_code_valid", MessageType::Email, &json!({}))
            .unwrap();
        assert_eq!(r.subject, "Use code  to log in");
        assert!(r.body.contains("It expires in 0 minutes."));
    }

    #[test]
    fn stub_takes_texts_from_data() {
        let t = Templates::builtin();
        let r = t
            .render(
                "stub",
                MessageType::Email,
                &json!({"to": "a@b.c", "subject": "S\r\nBcc: x", "body": "B"}),
            )
            .unwrap();
        assert_eq!(
            r,
            Rendered {
                subject: "S Bcc: x".into(),
                body: "B".into(),
                html_body: Some("B".into())
            }
        );
        let r = t
            .render("stub", MessageType::Sms, &json!({"to": "+1", "body": "B"}))
            .unwrap();
        assert_eq!(r.body, "B");
    }

    #[test]
    fn html_escapes_user_input_and_subject_has_no_line_breaks() {
        let mut cfg = Courier::default();
        let subject = "Hello {{ .Identity.traits.name }}";
        let html = "<p>{{ .Identity.traits.name }}</p>";
        let plain = "{{ .Identity.traits.name }}";
        let b64 = |s: &str| format!("base64://{}", base64::engine::general_purpose::STANDARD.encode(s));
        cfg.templates = json!({"login_code": {"valid": {"email": {
            "subject": b64(subject), "body": {"html": b64(html), "plaintext": b64(plain)}
        }}}});
        let t = Templates::from_config(&cfg).unwrap();
        let data = json!({"identity": {"traits": {"name": "<script>x</script>\r\nBcc: evil@example.org"}}});
        let r = t.render("login_code_valid", MessageType::Email, &data).unwrap();
        assert_eq!(r.subject, "Hello <script>x</script> Bcc: evil@example.org");
        assert!(!r.subject.contains('\r') && !r.subject.contains('\n'));
        assert_eq!(
            r.html_body.unwrap(),
            "<p>&lt;script&gt;x&lt;/script&gt;\r\nBcc: evil@example.org</p>"
        );
        assert_eq!(r.body, "<script>x</script>\r\nBcc: evil@example.org");
    }

    #[test]
    fn overrides_from_directory_with_i18n_siblings() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("login_code/valid");
        std::fs::create_dir_all(&base).unwrap();
        std::fs::write(base.join("email.subject.gotmpl"), "Your code: {{ .LoginCode }}\n").unwrap();
        std::fs::write(
            base.join("email.body.gotmpl"),
            "{{- if eq .TransientPayload.lang \"de\" -}}{{ template \"email.body.de.gotmpl\" . }}{{- else -}}<b>{{ .LoginCode }}</b>{{- end -}}",
        )
        .unwrap();
        std::fs::write(base.join("email.body.de.gotmpl"), "Dein Code: {{ .LoginCode }}").unwrap();
        let sms_dir = dir.path().join("verification_code/valid");
        std::fs::create_dir_all(&sms_dir).unwrap();
        std::fs::write(
            sms_dir.join("sms.body.gotmpl"),
            "Code {{ .VerificationCode | upper }}",
        )
        .unwrap();

        let cfg = Courier {
            template_override_path: Some(dir.path().display().to_string()),
            ..Courier::default()
        };
        let t = Templates::from_config(&cfg).unwrap();
        let data =
            json!({"login_code": "abc", "transient_payload": {"lang": "de"}, "verification_code": "xyz"});
        let r = t.render("login_code_valid", MessageType::Email, &data).unwrap();
        assert_eq!(r.subject, "Your code: abc");
        assert_eq!(r.html_body.as_deref(), Some("Dein Code: abc"));
        // Not overridden: the built-in plaintext body.
        assert!(
            r.body
                .starts_with("Login to your account with the following code:")
        );
        let r = t
            .render(
                "login_code_valid",
                MessageType::Email,
                &json!({"login_code": "abc"}),
            )
            .unwrap();
        assert_eq!(r.html_body.as_deref(), Some("<b>abc</b>"));
        let r = t
            .render("verification_code_valid", MessageType::Sms, &data)
            .unwrap();
        assert_eq!(r.body, "Code XYZ");
        // Other templates stay built-in.
        let r = t
            .render(
                "recovery_code_valid",
                MessageType::Email,
                &json!({"recovery_code": "1"}),
            )
            .unwrap();
        assert_eq!(r.subject, "Use code 1 to recover access to your account");
    }

    #[test]
    fn overrides_from_config_uris() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("subject.gotmpl");
        std::fs::write(&file, "File subject {{ .RecoveryCode }}").unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode("SMS {{ .LoginCode }}");
        let cfg = Courier {
            templates: json!({
                "recovery_code": {"valid": {"email": {"subject": format!("file://{}", file.display())}}},
                "login_code": {"valid": {"sms": {"body": {"plaintext": format!("base64://{b64}")}}}},
            }),
            ..Courier::default()
        };
        let t = Templates::from_config(&cfg).unwrap();
        let r = t
            .render(
                "recovery_code_valid",
                MessageType::Email,
                &json!({"recovery_code": "42"}),
            )
            .unwrap();
        assert_eq!(r.subject, "File subject 42");
        let r = t
            .render("login_code_valid", MessageType::Sms, &json!({"login_code": "7"}))
            .unwrap();
        assert_eq!(r.body, "SMS 7");
    }

    #[test]
    fn broken_or_missing_overrides_fail_at_load() {
        let b64 = base64::engine::general_purpose::STANDARD.encode("{{ if }}");
        let cfg = Courier {
            templates: json!({"login_code": {"valid": {"email": {"subject": format!("base64://{b64}")}}}}),
            ..Courier::default()
        };
        let err = Templates::from_config(&cfg).unwrap_err();
        assert!(matches!(err, CourierError::Parse { .. }), "{err}");
        assert!(!err.to_string().contains(&b64));
        let cfg = Courier {
            templates: json!({"login_code": {"valid": {"email": {"subject": "file:///nonexistent/x.gotmpl"}}}}),
            ..Courier::default()
        };
        assert!(matches!(
            Templates::from_config(&cfg),
            Err(CourierError::Load { .. })
        ));
    }

    #[test]
    fn queued_messages_keep_subject_and_text_and_leave_html_to_delivery() {
        let t = Templates::builtin();
        for id in Templates::template_types() {
            let full = t.render(id, MessageType::Email, &sample()).unwrap();
            let queued = t.render_queued(id, MessageType::Email, &sample()).unwrap();
            assert_eq!(
                (&queued.subject, &queued.body),
                (&full.subject, &full.body),
                "{id}"
            );
            assert_eq!(queued.html_body, None, "{id}");
        }
        let sms = t.render("login_code_valid", MessageType::Sms, &sample()).unwrap();
        assert_eq!(
            t.render_queued("login_code_valid", MessageType::Sms, &sample())
                .unwrap(),
            sms
        );
        // A broken HTML body does not keep the message from being queued; its delivery fails.
        let b64 = base64::engine::general_purpose::STANDARD.encode("{{ .NoSuchField }}");
        let cfg = Courier {
            templates: json!({"login_code": {"valid": {"email": {"body": {"html": format!("base64://{b64}")}}}}}),
            ..Courier::default()
        };
        let t = Templates::from_config(&cfg).unwrap();
        assert!(
            t.render("login_code_valid", MessageType::Email, &sample())
                .is_err()
        );
        let queued = t
            .render_queued("login_code_valid", MessageType::Email, &sample())
            .unwrap();
        assert_eq!(queued.subject, "Use code 123456 to log in");
        assert!(t.render_html("login_code_valid", &sample()).is_err());
    }

    #[test]
    fn unknown_model_field_is_an_error_like_go() {
        let b64 = base64::engine::general_purpose::STANDARD.encode("{{ .NoSuchField }}");
        let cfg = Courier {
            templates: json!({"login_code": {"valid": {"email": {"subject": format!("base64://{b64}")}}}}),
            ..Courier::default()
        };
        let t = Templates::from_config(&cfg).unwrap();
        assert!(matches!(
            t.render("login_code_valid", MessageType::Email, &json!({})),
            Err(CourierError::Render { .. })
        ));
    }

    #[test]
    fn oauth2_client_branding() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(
            "{{ if .OAuth2LoginRequest }}{{ .OAuth2LoginRequest.Client.ClientName }}{{ else }}none{{ end }}",
        );
        let cfg = Courier {
            templates: json!({"login_code": {"valid": {"email": {"subject": format!("base64://{b64}")}}}}),
            ..Courier::default()
        };
        let t = Templates::from_config(&cfg).unwrap();
        let data = json!({"oauth2_login_request": {"challenge": "c", "client": {"client_id": "id", "client_name": "Acme"}}});
        assert_eq!(
            t.render("login_code_valid", MessageType::Email, &data)
                .unwrap()
                .subject,
            "Acme"
        );
        assert_eq!(
            t.render("login_code_valid", MessageType::Email, &json!({}))
                .unwrap()
                .subject,
            "none"
        );
    }

    #[test]
    fn model_json_fills_zero_values() {
        let m = Templates::model_json(
            "login_code_valid",
            MessageType::Sms,
            &json!({"login_code": "1", "extra": true}),
        );
        assert_eq!(
            m,
            json!({"login_code": "1", "extra": true, "to": "", "identity": null, "request_url": "",
                   "request_url_domain": "", "transient_payload": null, "expires_in_minutes": 0})
        );
        let m = Templates::model_json("recovery_code_valid", MessageType::Sms, &json!({}));
        assert_eq!(m["verification_code"], "");
        assert_eq!(
            Templates::model_json("nope", MessageType::Email, &Value::Null),
            json!({})
        );
    }

    #[test]
    fn sanitize() {
        assert_eq!(sanitize_header_value("a\r\nb\nc\rd"), "a b c d");
    }
}
