//! The configured identity schemas (`identity.schemas`) and validation of traits against them.

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use jsonschema::{Draft, Keyword, Retrieve, Uri, ValidationError, Validator};
use sallyport_core::text::{self, Message};
use sallyport_core::ui::{Group, Node};
use serde_json::{Value, json};

use crate::extension::{Collector, KEYWORD, normalize_phone_traits};
use crate::messages::{field_for, generic, translate};
use crate::nodes::{apply_values, keys_in_order, list_paths, nodes_from_json_schema};
use crate::normalize::{is_loose_email, is_valid_email, is_valid_phone};
use crate::sort::{SortOptions, sort_nodes};
use crate::walk::{Doc, depth};
use crate::{Extracted, SchemaError, TraitError};

/// Traits nested deeper than this are refused before any validation runs.
const MAX_TRAITS_DEPTH: usize = 64;

/// Kratos' default for `identity.default_schema_id`.
const DEFAULT_SCHEMA_ID: &str = "default";

/// The `ory.sh/kratos` keyword validates nothing; it is collected by a separate walk.
struct AcceptAll;

impl<'i> Keyword<'i> for AcceptAll {
    fn validate(&self, _: &'i Value) -> Result<(), ValidationError<'i>> {
        Ok(())
    }

    fn is_valid(&self, _: &'i Value) -> bool {
        true
    }
}

/// Identity schemas are self-contained (external `$ref`s are rejected when loading), so the
/// validator never needs to fetch anything.
struct NoRetrieval;

impl Retrieve for NoRetrieval {
    fn retrieve(&self, uri: &Uri<String>) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!("external references are not supported: {uri}").into())
    }
}

fn build_validator(raw: &Value) -> Result<Validator, String> {
    let mut options = jsonschema::options()
        .with_retriever(NoRetrieval)
        .should_validate_formats(true)
        .with_format("email", is_valid_email)
        .with_format("email_loose", is_loose_email)
        .with_format("tel", is_valid_phone)
        .with_format("no-validate", |_: &str| true)
        .with_keyword(KEYWORD, |_, _, _| Ok(Box::new(AcceptAll)));
    // ory/jsonschema treats a schema without `$schema` as draft-07.
    if raw.get("$schema").is_none() {
        options = options.with_draft(Draft::Draft7);
    }
    options.build(raw).map_err(|e| {
        let at = e.instance_path().as_str();
        if at.is_empty() {
            e.to_string()
        } else {
            format!("{at}: {e}")
        }
    })
}

/// Whether the string `"sms"` appears anywhere in `v`: a hook uses a trait as a phone number only
/// when its `ory.sh/kratos` keyword names the `sms` channel.
fn mentions_sms(v: &Value) -> bool {
    match v {
        Value::String(s) => s == "sms",
        Value::Array(items) => items.iter().any(mentions_sms),
        Value::Object(map) => map.values().any(mentions_sms),
        _ => false,
    }
}

/// One configured identity schema, compiled.
#[derive(Clone)]
pub struct IdentitySchema {
    pub id: String,
    pub url: String,
    pub raw: Value,
    validator: Arc<Validator>,
    keys: Arc<Vec<String>>,
    /// Whether any hook could treat a trait as a phone number: only then is there anything for
    /// `normalize_phone_traits` to rewrite (its walk over the schema was a tenth of a bulk import).
    phones: bool,
}

impl fmt::Debug for IdentitySchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentitySchema")
            .field("id", &self.id)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl IdentitySchema {
    /// Checks and compiles an already-read schema document: no external or cyclic `$ref`s,
    /// the identity meta-schema, and a valid JSON schema.
    pub fn from_value(id: &str, url: &str, raw: Value) -> Result<IdentitySchema, SchemaError> {
        let invalid = |reason: String| SchemaError::Invalid {
            id: id.to_string(),
            url: url.to_string(),
            reason,
        };
        crate::meta::prevalidate(&raw).map_err(invalid)?;
        crate::meta::check_identity_meta(&raw).map_err(invalid)?;
        let validator = build_validator(&raw).map_err(invalid)?;
        let keys = keys_in_order(&raw);
        Ok(IdentitySchema {
            id: id.to_string(),
            url: url.to_string(),
            phones: mentions_sms(&raw),
            raw,
            validator: Arc::new(validator),
            keys: Arc::new(keys),
        })
    }

    /// Validates traits as Kratos validates an identity: `{"traits": traits}` against the
    /// schema, then the `ory.sh/kratos` hooks. On success returns what the hooks collected and
    /// the traits to store (phone identifiers rewritten to E.164).
    pub fn validate_traits(&self, traits: &Value) -> Result<Extracted, Vec<TraitError>> {
        self.validate_owned_traits(traits.clone())
    }

    /// [`Self::validate_traits`] of traits the caller gives up, which are then not copied.
    pub fn validate_owned_traits(&self, mut traits: Value) -> Result<Extracted, Vec<TraitError>> {
        if depth(&traits) > MAX_TRAITS_DEPTH {
            return Err(vec![TraitError {
                field: None,
                message: generic("traits nest too deeply"),
            }]);
        }
        let doc = Doc::new(&self.raw);
        if self.phones {
            normalize_phone_traits(doc, &mut traits);
        }
        let document = json!({ "traits": traits });

        let mut errors = Vec::new();
        for e in self.validator.iter_errors(&document) {
            translate(&e, &self.raw, &mut errors);
        }
        let collected = Collector::collect(doc, &document);
        // A hook complaining about a value the validator already rejected (e.g. an invalid
        // email that also cannot be normalized) would only repeat the problem.
        let rejected: Vec<Option<String>> = errors.iter().map(|e| e.field.clone()).collect();
        for (segments, message) in collected.errors {
            let field = field_for(&segments);
            let duplicate = errors.iter().any(|e| e.field == field && e.message == message);
            if !rejected.contains(&field) && !duplicate {
                errors.push(TraitError { field, message });
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let Value::Object(mut document) = document else {
            unreachable!("built as an object above")
        };
        Ok(Extracted {
            traits: document.remove("traits").unwrap_or(Value::Null),
            ..collected.extracted
        })
    }

    /// The trait input nodes Kratos renders for this schema (`NodesFromJSONSchema` over the
    /// whole identity schema, so names are `traits.<path>`), with `values` (the traits) filled
    /// in, ordered by the schema's key order as Kratos' `SortBySchema` leaves them.
    pub fn trait_nodes(&self, group: Group, values: Option<&Value>) -> Vec<Node> {
        let mut nodes = nodes_from_json_schema(&self.raw, group, "");
        if let Some(values) = values {
            apply_values(&mut nodes, values, "traits", group);
        }
        sort_nodes(
            &mut nodes,
            &SortOptions {
                schema_keys: self.keys_in_order().to_vec(),
                ..SortOptions::default()
            },
        );
        nodes
    }

    /// The schema's leaf keys in document order (`schema.GetKeysInOrder`), for
    /// [`crate::sort::SortOptions::schema_keys`].
    pub fn keys_in_order(&self) -> &[String] {
        &self.keys
    }

    /// The login form's identifier label (`login.GetIdentifierLabelFromSchema`): the title of
    /// the only identifier trait if there is exactly one and it has a title, else "ID".
    pub fn identifier_label(&self) -> Message {
        let identifiers: Vec<_> = list_paths(&self.raw)
            .into_iter()
            .filter(|p| p.extension.as_ref().is_some_and(|e| e.is_identifier()))
            .collect();
        match identifiers.as_slice() {
            [only] => match only.title.as_deref() {
                Some(title) if !title.is_empty() => text::label_generated(title, &only.name),
                _ => text::label_id(),
            },
            _ => text::label_id(),
        }
    }
}

/// All configured identity schemas, in configuration order.
#[derive(Debug, Clone)]
pub struct SchemaRegistry {
    schemas: Vec<IdentitySchema>,
    default_id: String,
}

impl SchemaRegistry {
    /// Loads and checks every `(id, url)` of `identity.schemas`. `url` is `file://…` (or a
    /// plain path), `base64://…` or `http(s)://…` (fetched through `http`, 10 s timeout; see
    /// [`crate::load::plain`] for a client without an outgoing-request policy).
    pub async fn load(
        schemas: &[(String, String)],
        default_id: &str,
        http: &crate::load::RemoteGet<'_>,
    ) -> Result<SchemaRegistry, SchemaError> {
        if schemas.is_empty() {
            return Err(SchemaError::Empty);
        }
        let mut loaded = Vec::with_capacity(schemas.len());
        for (id, url) in schemas {
            let bytes = crate::load::fetch(url, http)
                .await
                .map_err(|reason| SchemaError::Load {
                    id: id.clone(),
                    url: url.clone(),
                    reason,
                })?;
            let raw: Value = serde_json::from_slice(&bytes).map_err(|e| SchemaError::Invalid {
                id: id.clone(),
                url: url.clone(),
                reason: format!("not valid JSON: {e}"),
            })?;
            loaded.push(IdentitySchema::from_value(id, url, raw)?);
        }
        SchemaRegistry::from_schemas(loaded, default_id)
    }

    /// A registry from already compiled schemas (tests, or schemas built in memory).
    pub fn from_schemas(
        schemas: Vec<IdentitySchema>,
        default_id: &str,
    ) -> Result<SchemaRegistry, SchemaError> {
        if schemas.is_empty() {
            return Err(SchemaError::Empty);
        }
        let default_id = if default_id.is_empty() {
            DEFAULT_SCHEMA_ID
        } else {
            default_id
        };
        if !schemas.iter().any(|s| s.id == default_id) {
            return Err(SchemaError::UnknownDefault(default_id.to_string()));
        }
        Ok(SchemaRegistry {
            schemas,
            default_id: default_id.to_string(),
        })
    }

    /// Looks a schema up as Kratos' `GetByID` does: an empty id means the default schema, and
    /// an id that matches nothing is retried base64url-decoded (the form used in
    /// `/schemas/{id}` URLs).
    pub fn get(&self, id: &str) -> Option<&IdentitySchema> {
        let id = if id.is_empty() {
            self.default_id.as_str()
        } else {
            id
        };
        if let Some(s) = self.schemas.iter().find(|s| s.id == id) {
            return Some(s);
        }
        let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(id)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())?;
        self.schemas.iter().find(|s| s.id == decoded)
    }

    pub fn default_schema(&self) -> &IdentitySchema {
        self.schemas
            .iter()
            .find(|s| s.id == self.default_id)
            .expect("the default schema was checked when the registry was built")
    }

    pub fn default_id(&self) -> &str {
        &self.default_id
    }

    /// Every schema in configuration order (for `GET /schemas`).
    pub fn all(&self) -> impl Iterator<Item = &IdentitySchema> {
        self.schemas.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sms_is_found_as_a_value_at_any_depth_only() {
        assert!(mentions_sms(&json!({"a": [{"b": {"via": "sms"}}]})));
        assert!(!mentions_sms(
            &json!({"sms": {"via": "email"}, "x": ["SMS", "sms "]})
        ));
    }
}
