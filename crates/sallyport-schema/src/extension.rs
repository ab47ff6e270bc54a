//! The `ory.sh/kratos` extension (Kratos `schema/extension.go`) and the hooks that run on it:
//! credentials (`identity/extension_credentials.go`), verification
//! (`identity/extension_verification.go`), recovery (`identity/extension_recovery.go`), TOTP and
//! passkey display names, plus the pre-validation phone rewrite (`identity/validator.go`).
//!
//! Kratos fires these hooks from inside the validator for every schema node carrying the
//! keyword that is evaluated against a value. This walk visits the same (node, value) pairs:
//! `$ref` replaces the node (ory/jsonschema ignores a `$ref`'s siblings), a `type` mismatch
//! stops the descent, `allOf`/`anyOf`/`oneOf` branches are all visited, and properties, array
//! items and additional properties descend into the value.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::gofmt::{quote, value_s};
use crate::messages::{format_error, generic};
use crate::normalize::{email_graceful, graceful, is_valid_email, normalize_address};
use crate::walk::{Doc, type_matches};
use crate::{CodeAddress, Extracted};
use sallyport_core::text::Message;

pub(crate) const KEYWORD: &str = "ory.sh/kratos";

/// Descents deeper than this are refused; traits are capped at 64 levels before any walk, so
/// only `$ref`/combinator chains at one level could get here.
const MAX_WALK_DEPTH: usize = 256;

/// The parsed `ory.sh/kratos` keyword. Unknown or mistyped members are ignored here; the
/// identity meta-schema rejects them when the schema is loaded.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ExtensionConfig {
    pub credentials: CredentialsConfig,
    pub verification: ViaConfig,
    pub recovery: ViaConfig,
    pub organizations: OrganizationsConfig,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct CredentialsConfig {
    pub password: IdentifierFlag,
    pub webauthn: IdentifierFlag,
    pub passkey: PasskeyConfig,
    pub totp: TotpConfig,
    pub code: CodeConfig,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct IdentifierFlag {
    pub identifier: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct PasskeyConfig {
    pub display_name: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct TotpConfig {
    pub account_name: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct CodeConfig {
    pub identifier: bool,
    pub via: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ViaConfig {
    pub via: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct OrganizationsConfig {
    pub matcher: String,
}

impl ExtensionConfig {
    /// The keyword on a schema node, if present.
    pub fn of(node: &Map<String, Value>) -> Option<ExtensionConfig> {
        let raw = node.get(KEYWORD)?;
        // Read in place: cloning the keyword's subtree for every visited node and identity was a
        // visible share of a bulk import.
        Some(ExtensionConfig::deserialize(raw).unwrap_or_default())
    }

    /// Whether any hook would rewrite this trait to E.164 (`isPhoneIdentifier`).
    fn is_phone_identifier(&self) -> bool {
        (self.credentials.code.identifier && self.credentials.code.via == "sms")
            || self.recovery.via == "sms"
            || self.verification.via == "sms"
    }

    /// Whether the trait is a login identifier (used for the login form's identifier label).
    pub fn is_identifier(&self) -> bool {
        let c = &self.credentials;
        c.password.identifier
            || c.webauthn.identifier
            || c.passkey.display_name
            || c.totp.account_name
            || c.code.identifier
    }
}

/// What the hooks collected, plus the errors they raised (instance path segments + message).
#[derive(Default)]
pub(crate) struct Collector {
    pub extracted: Extracted,
    pub errors: Vec<(Vec<String>, Message)>,
}

fn push_unique(list: &mut Vec<String>, value: String) {
    if !list.contains(&value) {
        list.push(value);
    }
}

/// Kratos merges addresses whose gracefully-normalized values match on the same channel.
fn push_address(list: &mut Vec<(String, String)>, via: &str, value: String) {
    let needle = graceful(&value);
    if !list
        .iter()
        .any(|(v, existing)| v == via && graceful(existing) == needle)
    {
        list.push((via.to_string(), value));
    }
}

impl Collector {
    pub fn collect(doc: Doc<'_>, document: &Value) -> Collector {
        let mut c = Collector::default();
        let mut path = Vec::new();
        let mut stack = Vec::new();
        c.walk(doc, doc.root, document, &mut path, &mut stack);
        if c.extracted.passkey_display_name.as_deref() == Some("") {
            c.extracted.passkey_display_name = None;
        }
        c
    }

    fn error(&mut self, path: &[String], message: Message) {
        self.errors.push((path.to_vec(), message));
    }

    fn walk<'a>(
        &mut self,
        doc: Doc<'a>,
        node: &'a Value,
        value: &'a Value,
        path: &mut Vec<String>,
        stack: &mut Vec<(*const Value, *const Value)>,
    ) {
        let Value::Object(schema) = node else {
            return;
        };
        let key = (node as *const Value, value as *const Value);
        if stack.len() >= MAX_WALK_DEPTH || stack.contains(&key) {
            return;
        }
        stack.push(key);
        self.walk_node(doc, schema, value, path, stack);
        stack.pop();
    }

    fn walk_node<'a>(
        &mut self,
        doc: Doc<'a>,
        schema: &'a Map<String, Value>,
        value: &'a Value,
        path: &mut Vec<String>,
        stack: &mut Vec<(*const Value, *const Value)>,
    ) {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            if let Some(target) = doc.resolve(reference) {
                self.walk(doc, target, value, path, stack);
            }
            return;
        }
        if !type_matches(schema, value) {
            return;
        }
        if let Some(config) = ExtensionConfig::of(schema) {
            self.run(&config, schema, value, path);
        }
        for combinator in ["allOf", "anyOf", "oneOf"] {
            if let Some(Value::Array(branches)) = schema.get(combinator) {
                for branch in branches {
                    self.walk(doc, branch, value, path, stack);
                }
            }
        }
        match value {
            Value::Object(object) => {
                let properties = schema.get("properties").and_then(Value::as_object);
                if let Some(properties) = properties {
                    for (name, sub) in properties {
                        if let Some(v) = object.get(name) {
                            path.push(name.clone());
                            self.walk(doc, sub, v, path, stack);
                            path.pop();
                        }
                    }
                }
                // Without a regex engine here, additionalProperties is only followed when no
                // patternProperties could claim a key first.
                if let Some(additional @ Value::Object(_)) = schema.get("additionalProperties")
                    && !schema.contains_key("patternProperties")
                {
                    for (name, v) in object {
                        if properties.is_some_and(|p| p.contains_key(name)) {
                            continue;
                        }
                        path.push(name.clone());
                        self.walk(doc, additional, v, path, stack);
                        path.pop();
                    }
                }
            }
            Value::Array(items) => {
                let prefix: &[Value] = match (schema.get("prefixItems"), schema.get("items")) {
                    (Some(Value::Array(p)), _) => p,
                    (_, Some(Value::Array(p))) => p,
                    _ => &[],
                };
                let rest = match schema.get("items") {
                    Some(Value::Array(_)) => schema.get("additionalItems"),
                    other => other,
                };
                for (i, item) in items.iter().enumerate() {
                    let sub = prefix.get(i).or(rest);
                    if let Some(sub) = sub {
                        path.push(i.to_string());
                        self.walk(doc, sub, item, path, stack);
                        path.pop();
                    }
                }
            }
            _ => {}
        }
    }

    fn run(&mut self, s: &ExtensionConfig, schema: &Map<String, Value>, value: &Value, path: &[String]) {
        let text = value_s(value);
        let format = schema.get("format");
        let format_str = format.and_then(Value::as_str);

        if s.credentials.password.identifier {
            push_unique(&mut self.extracted.password_identifiers, graceful(&text));
        }
        if s.credentials.webauthn.identifier {
            push_unique(&mut self.extracted.webauthn_identifiers, graceful(&text));
        }
        if s.credentials.code.identifier {
            self.run_code(&s.credentials.code.via, format, &text, path);
        }
        if s.credentials.totp.account_name {
            self.extracted.totp_account_name = Some(text.clone());
        }
        if s.credentials.passkey.display_name
            && self
                .extracted
                .passkey_display_name
                .as_deref()
                .unwrap_or("")
                .is_empty()
        {
            self.extracted.passkey_display_name = Some(text.clone());
        }
        if !s.verification.via.is_empty() {
            self.run_verification(&s.verification.via, format, value, &text, path);
        }
        match s.recovery.via.as_str() {
            "" => {}
            "email" => {
                if format.is_some() && format_str.is_none() {
                    self.error(path, generic("the \"format\" field must be a string"));
                    return;
                }
                let f = format_str.unwrap_or("");
                if (f.is_empty() || f == "email") && !value.as_str().is_some_and(is_valid_email) {
                    self.error(path, format_error(&text, "email"));
                    return;
                }
                push_address(
                    &mut self.extracted.recovery_addresses,
                    "email",
                    email_graceful(&text),
                );
            }
            "sms" => match normalize_address(&text, "sms") {
                Ok(normalized) => push_address(&mut self.extracted.recovery_addresses, "sms", normalized),
                Err(_) => self.error(path, format_error(&text, "tel")),
            },
            other => self.error(
                path,
                generic(&format!("recovery.via has unknown value {}", quote(other))),
            ),
        }
    }

    fn run_code(&mut self, via: &str, format: Option<&Value>, text: &str, path: &[String]) {
        if via != "email" && via != "sms" {
            self.error(
                path,
                generic(&format!("channel type {} must be one of email, sms", quote(via))),
            );
            return;
        }
        let format = match format {
            None => "",
            Some(Value::String(f)) => f.as_str(),
            Some(_) => {
                self.error(path, generic("the \"format\" field must be a string"));
                return;
            }
        };
        // A non-email format on an email channel (e.g. `no-validate`) leaves the value to the
        // schema's `pattern`; only graceful normalization applies then.
        let address = if via == "email" && !format.is_empty() && format != "email" {
            graceful(text)
        } else {
            match normalize_address(text, via) {
                Ok(a) => a,
                Err(reason) => {
                    self.error(path, generic(&reason));
                    return;
                }
            }
        };
        let codes = &mut self.extracted.code_identifiers;
        let entry = CodeAddress {
            via: via.to_string(),
            address,
        };
        if !codes.contains(&entry) {
            codes.push(entry);
        }
        codes.sort_by(|a, b| a.address.cmp(&b.address).then_with(|| a.via.cmp(&b.via)));
    }

    fn run_verification(
        &mut self,
        via: &str,
        format: Option<&Value>,
        value: &Value,
        text: &str,
        path: &[String],
    ) {
        let mut format = match format {
            None => "",
            Some(Value::String(f)) => f.as_str(),
            Some(_) => return,
        };
        if format.is_empty() {
            if via != "email" {
                self.error(
                    path,
                    generic(
                        "no format specified. A format is required if verification is enabled. If this was intentional, please set \"format\" to \"no-validate\"",
                    ),
                );
                return;
            }
            format = "email";
            if !value.as_str().is_some_and(is_valid_email) {
                self.error(path, format_error(text, "email"));
                return;
            }
        }
        let normalized = match format {
            "email" | "tel" => match normalize_address(text, via) {
                Ok(n) => n,
                Err(_) => {
                    self.error(
                        path,
                        generic(&format!(
                            "{} can not be normalized for format {}",
                            quote(text),
                            quote(format)
                        )),
                    );
                    return;
                }
            },
            _ => text.trim().to_string(),
        };
        push_address(&mut self.extracted.verifiable_addresses, via, normalized);
    }
}

/// Rewrites, in place, every trait that an SMS-channel hook will use to its E.164 form, so the
/// stored traits agree with the stored identifiers (`normalizePhoneTraits`). Values that do not
/// parse as phone numbers are left for validation to reject.
pub(crate) fn normalize_phone_traits(doc: Doc<'_>, traits: &mut Value) {
    let Some(traits_schema) = doc.root.get("properties").and_then(|p| p.get("traits")) else {
        return;
    };
    let mut targets = Vec::new();
    let mut stack = Vec::new();
    phone_paths(
        doc,
        traits_schema,
        traits,
        &mut Vec::new(),
        &mut stack,
        &mut targets,
    );
    for pointer in targets {
        if let Some(slot) = traits.pointer_mut(&pointer)
            && let Value::String(s) = slot
            && let Ok(normalized) = normalize_address(s, "sms")
        {
            *s = normalized;
        }
    }
}

fn pointer_of(path: &[String]) -> String {
    path.iter()
        .map(|s| format!("/{}", s.replace('~', "~0").replace('/', "~1")))
        .collect()
}

fn phone_paths(
    doc: Doc<'_>,
    node: &Value,
    traits: &Value,
    path: &mut Vec<String>,
    stack: &mut Vec<*const Value>,
    out: &mut Vec<String>,
) {
    let Value::Object(schema) = node else {
        return;
    };
    let key = node as *const Value;
    if stack.len() >= MAX_WALK_DEPTH || stack.contains(&key) {
        return;
    }
    if ExtensionConfig::of(schema).is_some_and(|c| c.is_phone_identifier()) && schema.get("$ref").is_none() {
        out.push(pointer_of(path));
        return;
    }
    stack.push(key);
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        if let Some(target) = doc.resolve(reference) {
            phone_paths(doc, target, traits, path, stack, out);
        }
        stack.pop();
        return;
    }
    for combinator in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = schema.get(combinator) {
            for branch in branches {
                phone_paths(doc, branch, traits, path, stack, out);
            }
        }
    }
    for conditional in ["not", "if", "then", "else"] {
        if let Some(sub) = schema.get(conditional) {
            phone_paths(doc, sub, traits, path, stack, out);
        }
    }
    if let Some(Value::Object(properties)) = schema.get("properties") {
        for (name, sub) in properties {
            path.push(name.clone());
            phone_paths(doc, sub, traits, path, stack, out);
            path.pop();
        }
    }
    match schema.get("items") {
        Some(Value::Array(tuple)) => {
            for (i, sub) in tuple.iter().enumerate() {
                path.push(i.to_string());
                phone_paths(doc, sub, traits, path, stack, out);
                path.pop();
            }
        }
        Some(items @ Value::Object(_)) => {
            let len = traits
                .pointer(&pointer_of(path))
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            for i in 0..len {
                path.push(i.to_string());
                phone_paths(doc, items, traits, path, stack, out);
                path.pop();
            }
        }
        _ => {}
    }
    stack.pop();
}
