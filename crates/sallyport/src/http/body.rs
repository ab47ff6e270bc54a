//! Request bodies: JSON or `application/x-www-form-urlencoded`, at most 5 MB, decoded into a JSON
//! object. Form keys with dots (`traits.email`) become nested objects, typed by the identity schema.
//! Nesting deeper than `MAX_NESTING_DEPTH` and NUL characters are refused here, before anything
//! walks the value recursively or hands it to a database (see `docs/input-limits.md`).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::HeaderMap;
use serde_json::{Map, Value};

use sallyport_core::error::ApiError;
use sallyport_core::limits::{MAX_NESTING_DEPTH, scan_json};

use crate::http::error::HttpError;

pub const MAX_BODY_BYTES: usize = 5 * 1024 * 1024;

/// The raw body, refused with Kratos' envelope (413) when over the limit.
pub struct RawBody(pub Bytes);

/// The unread rest of an oversized body leaves the connection unusable, so the 413 also closes it.
pub struct TooLarge(HttpError);

impl axum::response::IntoResponse for TooLarge {
    fn into_response(self) -> axum::response::Response {
        let mut res = self.0.into_response();
        res.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
        res
    }
}

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = TooLarge;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        match axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES).await {
            Ok(b) => Ok(RawBody(b)),
            Err(_) => Err(TooLarge(HttpError(
                ApiError::new(413)
                    .with_reason(format!(
                        "The request body exceeds the maximum allowed size of {MAX_BODY_BYTES} bytes."
                    ))
                    .with_message("The request body is too large"),
            ))),
        }
    }
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Decodes a submission. `traits_schema` (the identity schema) types form values for `traits.*`.
pub fn decode(
    headers: &HeaderMap,
    body: &[u8],
    traits_schema: Option<&Value>,
) -> Result<Map<String, Value>, ApiError> {
    let ct = content_type(headers);
    match ct.as_str() {
        "application/json" => match parse_json::<Value>(body)? {
            Value::Object(m) => Ok(m),
            _ => Err(ApiError::bad_request(
                "Unable to decode JSON payload: the body must be a JSON object.",
            )),
        },
        "application/x-www-form-urlencoded" => decode_form(body, traits_schema),
        "" if body.is_empty() => Ok(Map::new()),
        _ => Err(ApiError::bad_request(format!(
            "Unable to decode body because HTTP Request Content-Type \"{ct}\" is not supported. Send application/json or application/x-www-form-urlencoded."
        ))),
    }
}

/// Parses a JSON body into `T` after checking its depth and NUL characters on the raw bytes, so
/// the error names the limit (serde_json's own recursion limit, 128, would only say "recursion
/// limit exceeded") and no deep value is ever built.
pub fn parse_json<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    let scan = scan_json(body);
    if scan.too_deep() {
        return Err(ApiError::nesting_too_deep("The JSON request body"));
    }
    if scan.has_nul {
        return Err(ApiError::nul_character("The JSON request body"));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Unable to decode JSON payload: {e}")))
}

fn decode_form(body: &[u8], schema: Option<&Value>) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if k.contains('\0') || v.contains('\0') {
            let name: String = k
                .chars()
                .take(64)
                .map(|c| if c == '\0' { '\u{fffd}' } else { c })
                .collect();
            return Err(ApiError::nul_character(&format!("The form field \"{name}\"")));
        }
        let path: Vec<&str> = k.split('.').collect();
        if path.len() > MAX_NESTING_DEPTH {
            return Err(ApiError::nesting_too_deep("A form field name"));
        }
        let typed = type_form_value(schema, &path, &v);
        insert_path(&mut out, &path, typed);
    }
    Ok(out)
}

fn schema_type<'a>(schema: Option<&'a Value>, path: &[&str]) -> Option<&'a str> {
    let mut node = schema?;
    for seg in path {
        node = node.get("properties")?.get(*seg)?;
    }
    match node.get("type")? {
        Value::String(s) => Some(s),
        Value::Array(a) => a.iter().filter_map(Value::as_str).find(|t| *t != "null"),
        _ => None,
    }
}

fn type_form_value(schema: Option<&Value>, path: &[&str], v: &str) -> Value {
    if path.first() != Some(&"traits") {
        return Value::String(v.to_owned());
    }
    let ty = schema
        .and_then(|s| s.get("properties"))
        .and_then(|p| p.get("traits"));
    match schema_type(ty, &path[1..]) {
        Some("number") => v
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number),
        Some("integer") => v.parse::<i64>().ok().map(Value::from),
        Some("boolean") => match v {
            "true" | "on" | "1" => Some(Value::Bool(true)),
            "false" | "off" | "0" | "" => Some(Value::Bool(false)),
            _ => None,
        },
        _ => None,
    }
    .unwrap_or_else(|| Value::String(v.to_owned()))
}

fn insert_path(out: &mut Map<String, Value>, path: &[&str], v: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = out;
    for p in parents {
        let entry = cur
            .entry(p.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        cur = entry.as_object_mut().expect("just made an object");
    }
    cur.insert(last.to_string(), v);
}

pub fn str_field<'a>(body: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    body.get(key).and_then(Value::as_str)
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn forms_nest_and_take_schema_types() {
        let schema = json!({"properties":{"traits":{"properties":{"age":{"type":"integer"},"tos":{"type":"boolean"},"name":{"type":"object","properties":{"first":{"type":"string"}}}}}}});
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        let m = decode(
            &h,
            b"traits.age=42&traits.tos=true&traits.name.first=Ann&method=password",
            Some(&schema),
        )
        .unwrap();
        assert_eq!(
            Value::Object(m),
            json!({"traits":{"age":42,"tos":true,"name":{"first":"Ann"}},"method":"password"})
        );
    }

    #[test]
    fn bad_json_and_unknown_types_are_400() {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::CONTENT_TYPE,
            "application/json".parse().unwrap(),
        );
        assert_eq!(decode(&h, b"{nope", None).unwrap_err().code, 400);
        assert_eq!(decode(&h, b"[1]", None).unwrap_err().code, 400);
        h.insert(axum::http::header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert_eq!(decode(&h, b"x", None).unwrap_err().code, 400);
    }
}
