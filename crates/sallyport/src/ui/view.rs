//! From a flow's `ui` object to what the templates show: every node, whatever its method, becomes a
//! field of one of a few kinds (input, checkbox, hidden, submit, image, text, link, script), grouped
//! by `group`, with labels and messages taken from the language's catalogue by message id.

use serde::Serialize;
use serde_json::Value;

use super::i18n::Locales;

#[derive(Serialize)]
pub struct Msg {
    pub id: String,
    pub kind: String,
    pub text: String,
}

#[derive(Serialize, Default)]
pub struct Field {
    pub kind: &'static str,
    pub dom_id: String,
    pub name: String,
    pub input_type: String,
    pub value: String,
    pub checked: bool,
    pub required: bool,
    pub disabled: bool,
    pub autocomplete: String,
    pub label: String,
    pub text: String,
    pub secrets: Vec<Msg>,
    pub src: String,
    pub href: String,
    pub integrity: String,
    /// `onclickTrigger`: the `window` function a platform script (WebAuthn, passkeys) defines.
    pub trigger: String,
    pub invalid: bool,
    pub messages: Vec<Msg>,
}

#[derive(Serialize)]
pub struct Section {
    pub group: String,
    pub legend: String,
    pub fields: Vec<Field>,
}

pub fn message(loc: &Locales, lang: &str, m: &Value) -> Msg {
    Msg {
        id: m.get("id").map(|v| v.to_string()).unwrap_or_default(),
        kind: m
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("info")
            .to_string(),
        text: loc.message(lang, m),
    }
}

pub fn messages(loc: &Locales, lang: &str, list: Option<&Value>) -> Vec<Msg> {
    list.and_then(Value::as_array)
        .map(|l| l.iter().map(|m| message(loc, lang, m)).collect())
        .unwrap_or_default()
}

/// Sections in the order their groups first appear; `default` (CSRF token, identifier, traits
/// shared by all methods) has no legend.
pub fn sections(loc: &Locales, lang: &str, public: &str, nodes: &[Value]) -> Vec<Section> {
    let mut out: Vec<Section> = vec![];
    for (i, n) in nodes.iter().enumerate() {
        let group = n.get("group").and_then(Value::as_str).unwrap_or("default");
        let Some(field) = field(loc, lang, public, i, n) else {
            continue;
        };
        match out.iter_mut().find(|s| s.group == group) {
            Some(s) => s.fields.push(field),
            None => out.push(Section {
                group: group.to_string(),
                legend: legend(loc, lang, group),
                fields: vec![field],
            }),
        }
    }
    out
}

fn legend(loc: &Locales, lang: &str, group: &str) -> String {
    if group == "default" {
        return String::new();
    }
    let key = format!("group.{group}");
    let t = loc.ui(lang, &key);
    if t == key { group.replace('_', " ") } else { t }
}

fn text_of(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn field(loc: &Locales, lang: &str, public: &str, i: usize, n: &Value) -> Option<Field> {
    let a = n.get("attributes")?;
    let attr = |k: &str| text_of(a.get(k));
    let label = n
        .pointer("/meta/label")
        .filter(|l| l.is_object())
        .map(|l| loc.message(lang, l))
        .unwrap_or_default();
    let messages = messages(loc, lang, n.get("messages"));
    let invalid = messages.iter().any(|m| m.kind == "error");
    let mut f = Field {
        dom_id: format!("n{i}"),
        label,
        invalid,
        messages,
        ..Field::default()
    };
    let kind = n.get("type").and_then(Value::as_str).unwrap_or("");
    // Non-input nodes carry their own ids (`totp_qr`, `totp_secret_key`, …); front ends and tests
    // find them by those. Inputs get positional ids: names repeat (`method` on every button).
    if let Some(id) = a
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && kind != "input")
    {
        f.dom_id = id.to_string();
    }
    match kind {
        "input" => {
            let t = attr("type");
            f.name = attr("name");
            f.input_type = t.clone();
            f.required = a.get("required").and_then(Value::as_bool).unwrap_or(false);
            f.disabled = a.get("disabled").and_then(Value::as_bool).unwrap_or(false);
            f.autocomplete = attr("autocomplete");
            f.trigger = attr("onclickTrigger");
            f.kind = match t.as_str() {
                _ if !f.trigger.is_empty() => "button",
                "hidden" => "hidden",
                "submit" | "button" => "submit",
                "checkbox" => "checkbox",
                _ => "input",
            };
            f.checked = f.kind == "checkbox" && a.get("value").and_then(Value::as_bool) == Some(true);
            f.value = if f.kind == "checkbox" {
                "true".into()
            } else {
                attr("value")
            };
            if matches!(f.kind, "submit" | "button") && f.label.is_empty() {
                f.label = f.value.clone();
            }
            if f.kind == "input" && f.label.is_empty() {
                f.label = f.name.clone();
            }
        }
        "img" => {
            f.kind = "img";
            f.src = attr("src");
        }
        "text" => {
            f.kind = "text";
            let t = a.get("text").cloned().unwrap_or(Value::Null);
            match t.pointer("/context/secrets").and_then(Value::as_array) {
                Some(list) => f.secrets = list.iter().map(|s| message(loc, lang, s)).collect(),
                None => f.text = loc.message(lang, &t),
            }
        }
        "a" => {
            f.kind = "a";
            f.href = attr("href");
            f.text = a
                .get("title")
                .map(|t| loc.message(lang, t))
                .unwrap_or_else(|| f.label.clone());
        }
        "script" => {
            let src = attr("src");
            // Only same-origin scripts (Kratos' webauthn.js) can run under the pages' policy anyway.
            let own = src.starts_with(public) || (src.starts_with('/') && !src.starts_with("//"));
            if !own {
                return None;
            }
            f.kind = "script";
            f.src = src;
            f.integrity = attr("integrity");
        }
        _ => return None,
    }
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A method the pages have never seen (WebAuthn-like: a script, a trigger button, a new group)
    /// still renders, in its own section, with the script kept only when it is the server's own.
    #[test]
    fn unknown_methods_render_generically() {
        let loc = Locales::load(None);
        let nodes = vec![
            json!({"type": "input", "group": "default", "attributes": {"name": "csrf_token", "type": "hidden", "value": "t"}, "messages": [], "meta": {}}),
            json!({"type": "script", "group": "future", "attributes": {"id": "wa", "src": "http://id.test/.well-known/ory/webauthn.js", "integrity": "sha512-x"}, "messages": [], "meta": {}}),
            json!({"type": "script", "group": "future", "attributes": {"id": "evil", "src": "https://cdn.evil/x.js"}, "messages": [], "meta": {}}),
            json!({"type": "input", "group": "future", "attributes": {"name": "future_login", "type": "button", "value": "", "onclickTrigger": "oryFutureLogin"}, "messages": [], "meta": {"label": {"id": 1010008, "text": "Sign in with a hardware key", "type": "info"}}}),
            json!({"type": "mystery", "group": "future", "attributes": {}, "messages": [], "meta": {}}),
        ];
        let s = sections(&loc, "de", "http://id.test/", &nodes);
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].group, "future");
        assert_eq!(s[1].legend, "future");
        let kinds: Vec<_> = s[1].fields.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, ["script", "button"]);
        assert_eq!(s[1].fields[1].trigger, "oryFutureLogin");
        assert_eq!(s[1].fields[1].label, "Mit Sicherheitsschlüssel anmelden");
    }
}
