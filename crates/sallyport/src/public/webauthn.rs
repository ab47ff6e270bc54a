//! `GET /.well-known/ory/webauthn.js` and the `webauthn_script` node that loads it.

use std::sync::LazyLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha512};

use sallyport_core::ui::{Attributes, Group, Meta, Node};

pub const PATH: &str = "/.well-known/ory/webauthn.js";

/// The script, written for Sallyport; the functions it defines are the ones Kratos' nodes name.
pub const SCRIPT: &str = include_str!("webauthn.js");

/// Subresource integrity of [`SCRIPT`], as the script node carries it.
static INTEGRITY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha512::digest(SCRIPT.as_bytes()))
    )
});

pub async fn script() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/javascript; charset=UTF-8"),
        )],
        SCRIPT,
    )
        .into_response()
}

/// Kratos' `webauthn_script` node (group `webauthn`), for browser flows only.
pub fn script_node(public_base: &url::Url) -> Node {
    let src = format!("{}{}", public_base.as_str().trim_end_matches('/'), PATH);
    let mut attributes = Map::new();
    for (k, v) in [
        ("src", json!(src)),
        ("async", json!(true)),
        ("referrerpolicy", json!("no-referrer")),
        ("crossorigin", json!("anonymous")),
        ("integrity", json!(*INTEGRITY)),
        ("type", json!("text/javascript")),
        ("id", json!("webauthn_script")),
    ] {
        attributes.insert(k.into(), v);
    }
    Node {
        node_type: "script".into(),
        group: Group::Webauthn,
        attributes: Attributes::Other {
            node_type: "script".into(),
            attributes,
        },
        messages: vec![],
        meta: Meta::default(),
    }
}

/// Whether a node is the script node (so a flow carries it once).
pub fn is_script_node(n: &Node) -> bool {
    matches!(&n.attributes, Attributes::Other { attributes, .. } if attributes.get("id") == Some(&Value::from("webauthn_script")))
}
