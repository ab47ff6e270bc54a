//! UI input nodes from a JSON schema (Kratos `container.NodesFromJSONSchema` over
//! ory/x `jsonschemax.ListPaths`, `node.NewInputFieldFromSchema`), values from traits
//! (`UpdateNodeValuesFromJSON`), and the schema key order used for sorting
//! (`schema.GetKeysInOrder`).

use sallyport_core::text;
use sallyport_core::ui::{Group, Node};
use serde_json::{Map, Value, json};

use crate::extension::ExtensionConfig;
use crate::walk::{Doc, types};

/// Kratos caps `enum` options per node so a huge enum cannot inflate every flow.
const MAX_ENUM_OPTIONS: usize = 500;

/// The prototype type ListPaths derives for a path (Go's `Path.Type`); `None` is Go's `nil`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Proto {
    String,
    Number,
    Bool,
    Object,
    Array,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Hint {
    Unset,
    String,
    Float,
    Int,
    Bool,
    Json,
    Nil,
    BoolSlice,
    StringSlice,
    IntSlice,
    FloatSlice,
}

/// One leaf of a schema as ListPaths reports it.
#[derive(Debug, Clone)]
pub(crate) struct SchemaPath {
    pub name: String,
    proto: Option<Proto>,
    hint: Hint,
    default: Option<Value>,
    pub title: Option<String>,
    format: Option<String>,
    pattern: Option<String>,
    enum_values: Option<Vec<Value>>,
    required: bool,
    pub extension: Option<ExtensionConfig>,
}

fn type_of(schema: &Map<String, Value>, doc: Doc<'_>) -> (Option<Proto>, Hint) {
    if let Some(constant) = schema.get("const") {
        return match constant {
            Value::Number(_) => (Some(Proto::Number), Hint::Float),
            Value::String(_) => (Some(Proto::String), Hint::String),
            Value::Bool(_) => (Some(Proto::Bool), Hint::Bool),
            Value::Null => (None, Hint::Json),
            _ => (Some(Proto::Json), Hint::Json),
        };
    }
    let listed = types(schema);
    match listed.len() {
        1 => match listed[0] {
            "null" => (None, Hint::Nil),
            "boolean" => (Some(Proto::Bool), Hint::Bool),
            "number" => (Some(Proto::Number), Hint::Float),
            "integer" => (Some(Proto::Number), Hint::Int),
            "string" => (Some(Proto::String), Hint::String),
            "object" => (Some(Proto::Object), Hint::Json),
            "array" => (Some(Proto::Array), array_hint(schema, doc)),
            _ => (None, Hint::Unset),
        },
        0 | 2 => (None, Hint::Unset),
        _ => (None, Hint::Json),
    }
}

/// The element type of an array path, from `items` (one schema or a tuple) and, one level deep,
/// the items' `$ref` targets.
fn array_hint(schema: &Map<String, Value>, doc: Doc<'_>) -> Hint {
    let item_schemas: Vec<&Value> = match schema.get("items") {
        None => return Hint::Unset,
        Some(Value::Array(tuple)) => tuple.iter().collect(),
        Some(one) => vec![one],
    };
    let mut listed: Vec<&str> = Vec::new();
    for item in item_schemas {
        let Some(item) = item.as_object() else { continue };
        listed.extend(types(item));
        if let Some(target) = item
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| doc.resolve(r))
            .and_then(Value::as_object)
        {
            listed.extend(types(target));
        }
    }
    listed.dedup();
    if listed.len() != 1 {
        return Hint::Unset;
    }
    match listed[0] {
        "boolean" => Hint::BoolSlice,
        "number" => Hint::FloatSlice,
        "integer" => Hint::IntSlice,
        "string" => Hint::StringSlice,
        _ => Hint::Json,
    }
}

/// ListPaths: every schema node with a determinable type (or a default) below the root, named
/// by its property path, deduplicated and sorted by name.
pub(crate) fn list_paths(root: &Value) -> Vec<SchemaPath> {
    let doc = Doc::new(root);
    let mut out = Vec::new();
    collect(doc, root, None, &mut Vec::new(), &mut Vec::new(), &mut out);
    out.sort_by(|a, b| a.name.cmp(&b.name));
    // Among duplicates the later one replaces the kept one until a kept one carries a default.
    let mut unique: Vec<SchemaPath> = Vec::with_capacity(out.len());
    for p in out {
        match unique.last_mut() {
            Some(last) if last.name == p.name => {
                if last.default.is_none() {
                    *last = p;
                }
            }
            _ => unique.push(p),
        }
    }
    unique
}

fn collect(
    doc: Doc<'_>,
    node: &Value,
    parent: Option<&Map<String, Value>>,
    parents: &mut Vec<String>,
    stack: &mut Vec<*const Value>,
    out: &mut Vec<SchemaPath>,
) {
    let Value::Object(schema) = node else {
        return;
    };
    // ListPaths refuses circular schemas; skipping the cycle keeps the rest usable.
    let key = node as *const Value;
    if stack.contains(&key) || stack.len() > 128 {
        return;
    }
    stack.push(key);

    // ory/jsonschema ignores every sibling of `$ref`.
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        if let Some(target) = doc.resolve(reference) {
            collect(doc, target, Some(schema), parents, stack, out);
        }
        stack.pop();
        return;
    }

    let (proto, hint) = type_of(schema, doc);
    let default = schema.get("default").filter(|d| !d.is_null()).cloned();
    if (proto.is_some() || default.is_some())
        && let Some(name) = parents.last()
    {
        let required = parent
            .and_then(|p| p.get("required"))
            .and_then(Value::as_array)
            .is_some_and(|r| r.iter().any(|v| v.as_str() == Some(name)));
        out.push(SchemaPath {
            name: parents.join("."),
            proto,
            hint,
            default,
            title: schema.get("title").and_then(Value::as_str).map(str::to_string),
            format: schema.get("format").and_then(Value::as_str).map(str::to_string),
            pattern: schema.get("pattern").and_then(Value::as_str).map(str::to_string),
            enum_values: schema.get("enum").and_then(Value::as_array).cloned(),
            required,
            extension: ExtensionConfig::of(schema),
        });
    }

    for single in ["not", "if", "then", "else"] {
        if let Some(sub) = schema.get(single) {
            collect(doc, sub, Some(schema), parents, stack, out);
        }
    }
    for combinator in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = schema.get(combinator) {
            for branch in branches {
                collect(doc, branch, Some(schema), parents, stack, out);
            }
        }
    }
    if let Some(Value::Object(properties)) = schema.get("properties") {
        for (name, sub) in properties {
            parents.push(name.clone());
            collect(doc, sub, Some(schema), parents, stack, out);
            parents.pop();
        }
    }
    stack.pop();
}

/// Kratos `toFormType`: by name for the CSRF token and passwords, else by the value's type.
fn form_type(name: &str, number: bool, boolean: bool) -> &'static str {
    match name {
        "csrf_token" => "hidden",
        "password" => "password",
        _ if number => "number",
        _ if boolean => "checkbox",
        _ => "text",
    }
}

fn node_from_path(p: &SchemaPath, name: String, group: Group) -> Node {
    let input_type = form_type(
        &p.name,
        p.proto == Some(Proto::Number),
        p.proto == Some(Proto::Bool),
    );
    let mut node = Node::input(group, &name, input_type);
    if let Some(title) = p.title.as_deref().filter(|t| !t.is_empty()) {
        node.meta.label = Some(text::label_generated(title, &name));
    }
    let Some(a) = node.input_mut() else {
        return node;
    };
    a.required = p.required;
    match p.format.as_deref() {
        Some("date-time") => a.input_type = "datetime-local".into(),
        Some("email") => {
            a.input_type = "email".into();
            a.autocomplete = Some("email".into());
        }
        Some("tel") => {
            a.input_type = "tel".into();
            a.autocomplete = Some("tel".into());
        }
        Some("date") => a.input_type = "date".into(),
        Some("uri") => {
            a.input_type = "url".into();
            a.autocomplete = Some("url".into());
        }
        Some("regex") => a.input_type = "text".into(),
        _ => {}
    }
    if let Some(values) = p.enum_values.as_ref().filter(|v| !v.is_empty()) {
        let options: Vec<Value> = values
            .iter()
            .take(MAX_ENUM_OPTIONS)
            .map(|v| json!({ "value": v }))
            .collect();
        a.options = Some(Value::Array(options));
    }
    a.pattern = p.pattern.clone();
    node
}

/// Input nodes for every typed leaf of `schema`, in Kratos' ListPaths order (sorted by name).
/// Objects and arrays of objects get no node. `prefix` is prepended with a dot.
pub fn nodes_from_json_schema(schema: &Value, group: Group, prefix: &str) -> Vec<Node> {
    list_paths(schema)
        .iter()
        .filter(|p| p.hint != Hint::Json)
        .map(|p| {
            let name = if prefix.is_empty() {
                p.name.clone()
            } else {
                format!("{prefix}.{}", p.name)
            };
            node_from_path(p, name, group)
        })
        .collect()
}

/// Flattens `raw` as Kratos' `jsonx.Flatten` does: nested keys joined with dots (dots inside
/// keys escaped), array elements by index, empty objects and arrays dropped.
fn flatten(raw: &Value, prefix: &str, out: &mut Vec<(String, Value)>) {
    let mut stack: Vec<(String, &Value)> = Vec::new();
    match raw {
        Value::Object(map) => {
            for (k, v) in map.iter().rev() {
                stack.push((k.replace('.', "\\."), v));
            }
        }
        _ => return,
    }
    while let Some((key, v)) = stack.pop() {
        match v {
            Value::Object(map) => {
                for (k, child) in map.iter().rev() {
                    stack.push((format!("{key}.{}", k.replace('.', "\\.")), child));
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate().rev() {
                    stack.push((format!("{key}.{i}"), child));
                }
            }
            scalar => out.push((format!("{prefix}.{key}"), scalar.clone())),
        }
    }
}

/// Kratos `UpdateNodeValuesFromJSON(values, prefix, group)`: fills matching nodes (moving them
/// to `group`) and appends a plain input for every value without a node.
pub(crate) fn apply_values(nodes: &mut Vec<Node>, values: &Value, prefix: &str, group: Group) {
    let mut flat = Vec::new();
    flatten(values, prefix, &mut flat);
    for (name, value) in flat {
        let value = (!value.is_null()).then_some(value);
        if let Some(node) = nodes.iter_mut().find(|n| n.name() == name) {
            if let Some(a) = node.input_mut() {
                a.value = value;
            }
            node.group = group;
            continue;
        }
        let input_type = form_type(
            &name,
            value.as_ref().is_some_and(Value::is_number),
            value.as_ref().is_some_and(Value::is_boolean),
        );
        let mut node = Node::input(group, &name, input_type);
        if let Some(a) = node.input_mut() {
            a.value = value;
        }
        nodes.push(node);
    }
}

/// Kratos `schema.GetKeysInOrder`: the dotted paths of the schema's leaves in document order,
/// descending only through `"type": "object"` nodes' `properties` (no `$ref`).
pub fn keys_in_order(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut parents = Vec::new();
    key_positions(schema, &mut parents, &mut out);
    out
}

fn key_positions(node: &Value, parents: &mut Vec<String>, out: &mut Vec<String>) {
    if parents.len() > 128 {
        return;
    }
    if node.get("type").and_then(Value::as_str) == Some("object") {
        if let Some(Value::Object(properties)) = node.get("properties") {
            for (k, v) in properties {
                parents.push(k.replace('.', "\\."));
                key_positions(v, parents, out);
                parents.pop();
            }
        }
    } else {
        out.push(parents.join("."));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flatten_like_jsonx() {
        let mut out = Vec::new();
        flatten(
            &json!({"a": 1, "b": {"c.d": "x", "e": []}, "f": [true, null]}),
            "traits",
            &mut out,
        );
        let names: Vec<&str> = out.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["traits.a", "traits.b.c\\.d", "traits.f.0", "traits.f.1"]);
    }

    #[test]
    fn keys_follow_document_order() {
        let schema = json!({"type": "object", "properties": {"traits": {"type": "object", "properties": {
            "email": {"type": "string"}, "name": {"type": "object", "properties": {"last": {"type": "string"}, "first": {"type": "string"}}}
        }}}});
        assert_eq!(
            keys_in_order(&schema),
            ["traits.email", "traits.name.last", "traits.name.first"]
        );
    }
}
