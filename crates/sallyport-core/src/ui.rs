//! The `ui` container of a flow and its nodes, shaped exactly as Kratos renders them (`ui/container`, `ui/node`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::text::Message;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    Default,
    Password,
    Oidc,
    Profile,
    Link,
    Code,
    Totp,
    LookupSecret,
    Webauthn,
    Passkey,
    IdentifierFirst,
    Captcha,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputAttributes {
    pub name: String,
    #[serde(rename = "type")]
    pub input_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autocomplete: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maxlength: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<Message>,
    pub disabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onclick: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "onclickTrigger")]
    pub onclick_trigger: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onload: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "onloadTrigger")]
    pub onload_trigger: Option<String>,
}

/// Non-input nodes (`text`, `img`, `a`, `script`, `div`) are kept as their raw attribute objects:
/// Sallyport only ever builds them, never inspects them.
// Nearly every node is an input, so boxing the large variant would only add allocations.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Attributes {
    Input(InputAttributes),
    Other {
        node_type: String,
        attributes: serde_json::Map<String, Value>,
    },
}

impl Serialize for Attributes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = match self {
            Attributes::Input(a) => match serde_json::to_value(a).map_err(serde::ser::Error::custom)? {
                Value::Object(m) => m,
                _ => unreachable!("attributes serialize to an object"),
            },
            Attributes::Other { attributes, .. } => attributes.clone(),
        };
        map.insert("node_type".into(), Value::String(self.node_type().into()));
        map.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Attributes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut map = serde_json::Map::<String, Value>::deserialize(d)?;
        let node_type = match map.remove("node_type") {
            Some(Value::String(s)) => s,
            _ => return Err(serde::de::Error::custom("node attributes lack node_type")),
        };
        if node_type == "input" {
            serde_json::from_value(Value::Object(map))
                .map(Attributes::Input)
                .map_err(serde::de::Error::custom)
        } else {
            Ok(Attributes::Other {
                node_type,
                attributes: map,
            })
        }
    }
}

impl Attributes {
    pub fn node_type(&self) -> &str {
        match self {
            Attributes::Input(_) => "input",
            Attributes::Other { node_type, .. } => node_type,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<Message>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    #[serde(rename = "type")]
    pub node_type: String,
    pub group: Group,
    pub attributes: Attributes,
    #[serde(default)]
    pub messages: Vec<Message>,
    #[serde(default)]
    pub meta: Meta,
}

impl Node {
    /// An `input` node; `value` is omitted from the JSON until set, as in Kratos.
    pub fn input(group: Group, name: &str, input_type: &str) -> Node {
        Node {
            node_type: "input".into(),
            group,
            attributes: Attributes::Input(InputAttributes {
                name: name.into(),
                input_type: input_type.into(),
                value: None,
                required: false,
                autocomplete: None,
                pattern: None,
                maxlength: None,
                options: None,
                label: None,
                disabled: false,
                onclick: None,
                onclick_trigger: None,
                onload: None,
                onload_trigger: None,
            }),
            messages: vec![],
            meta: Meta::default(),
        }
    }

    pub fn submit(group: Group, name: &str, value: &str, label: Message) -> Node {
        Node::input(group, name, "submit")
            .with_value(Value::String(value.into()))
            .with_label(label)
    }

    pub fn csrf(token: &str) -> Node {
        Node::input(Group::Default, "csrf_token", "hidden")
            .required()
            .with_value(Value::String(token.into()))
    }

    pub fn required(mut self) -> Self {
        if let Some(a) = self.input_mut() {
            a.required = true;
        }
        self
    }

    pub fn with_value(mut self, v: Value) -> Self {
        if let Some(a) = self.input_mut() {
            a.value = Some(v);
        }
        self
    }

    pub fn with_autocomplete(mut self, v: &str) -> Self {
        if let Some(a) = self.input_mut() {
            a.autocomplete = Some(v.into());
        }
        self
    }

    pub fn with_label(mut self, label: Message) -> Self {
        self.meta.label = Some(label);
        self
    }

    pub fn name(&self) -> &str {
        match &self.attributes {
            Attributes::Input(a) => &a.name,
            Attributes::Other { attributes, .. } => {
                attributes.get("id").and_then(Value::as_str).unwrap_or("")
            }
        }
    }

    pub fn input_attrs(&self) -> Option<&InputAttributes> {
        match &self.attributes {
            Attributes::Input(a) => Some(a),
            _ => None,
        }
    }

    pub fn input_mut(&mut self) -> Option<&mut InputAttributes> {
        match &mut self.attributes {
            Attributes::Input(a) => Some(a),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Container {
    pub action: String,
    pub method: String,
    pub nodes: Vec<Node>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<Message>,
}

impl Container {
    pub fn new(action: String) -> Container {
        Container {
            action,
            method: "POST".into(),
            nodes: vec![],
            messages: vec![],
        }
    }

    pub fn push(&mut self, node: Node) {
        self.nodes.push(node);
    }

    pub fn node_mut(&mut self, name: &str) -> Option<&mut Node> {
        self.nodes.iter_mut().find(|n| n.name() == name)
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name() == name)
    }

    /// Sets a node's value, adding a hidden-less input node of `group` if none exists yet.
    pub fn set_value(&mut self, name: &str, value: Value) {
        if let Some(a) = self.node_mut(name).and_then(Node::input_mut) {
            a.value = Some(value);
        }
    }

    pub fn set_csrf(&mut self, token: &str) {
        match self.node_mut("csrf_token") {
            Some(n) => {
                if let Some(a) = n.input_mut() {
                    a.value = Some(Value::String(token.into()));
                }
            }
            None => self.nodes.insert(0, Node::csrf(token)),
        }
    }

    /// Drops every message, on the flow and on its nodes, before a new submission is answered.
    pub fn reset_messages(&mut self) {
        self.messages.clear();
        for n in &mut self.nodes {
            n.messages.clear();
        }
    }

    /// Attaches a message to the flow (no field), or to the node named `field` — adding a text input
    /// of that name when the form has none, as Kratos' `Container.AddMessage` does, so that a message
    /// about a field the current form does not show is still rendered.
    pub fn add_message(&mut self, field: Option<&str>, message: Message) {
        let Some(field) = field.filter(|f| !f.trim().is_empty()) else {
            self.messages.push(message);
            return;
        };
        match self.node_mut(field) {
            Some(n) => n.messages.push(message),
            None => {
                let mut n = Node::input(Group::Default, field, "text");
                n.messages.push(message);
                self.nodes.push(n);
            }
        }
    }

    /// Secret inputs never echo back (Kratos resets `password` values when re-rendering).
    pub fn clear_secret_values(&mut self) {
        for n in &mut self.nodes {
            if let Some(a) = n.input_mut()
                && a.input_type == "password"
            {
                a.value = None;
            }
        }
    }

    pub fn remove_group(&mut self, group: Group) {
        self.nodes.retain(|n| n.group != group);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_round_trip_and_match_kratos_shape() {
        let n = Node::input(Group::Default, "identifier", "text")
            .required()
            .with_value(Value::String(String::new()))
            .with_label(crate::text::label_id());
        let v = serde_json::to_value(&n).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"input","group":"default","attributes":{"name":"identifier","type":"text","value":"","required":true,"disabled":false,"node_type":"input"},"messages":[],"meta":{"label":{"id":1070004,"text":"ID","type":"info"}}})
        );
        let back: Node = serde_json::from_value(v).unwrap();
        assert_eq!(back, n);
        let img = serde_json::json!({"type":"img","group":"totp","attributes":{"src":"data:","id":"totp_qr","width":256,"height":256,"node_type":"img"},"messages":[],"meta":{}});
        let node: Node = serde_json::from_value(img.clone()).unwrap();
        assert_eq!(serde_json::to_value(&node).unwrap(), img);
    }
}
