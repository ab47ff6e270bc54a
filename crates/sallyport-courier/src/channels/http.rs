//! Delivery through an HTTP API (Kratos `courier/http_channel.go` + `request.Builder`): the request
//! body is the output of a Jsonnet template fed with the message as `ctx`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HeaderMap, HeaderName, HeaderValue};
use sallyport_core::courier::Message;
use serde_json::{Value, json};

use crate::error::{CourierError, DeliveryError};

const CONTENT_TYPE_JSON: &str = "application/json";
const CONTENT_TYPE_FORM: &str = "application/x-www-form-urlencoded";
/// Loaded body templates are reused this long (Kratos' fetcher cache).
const TEMPLATE_TTL: Duration = Duration::from_secs(60 * 60);

/// Kratos' schema default for `request_config.body` (decoded): the mailer payload.
const DEFAULT_BODY: &str = r#"function(ctx) {
  recipient: ctx.recipient,
  template_type: ctx.template_type,
  to: if "template_data" in ctx && "to" in ctx.template_data then ctx.template_data.to else null,
  recovery_code: if "template_data" in ctx && "recovery_code" in ctx.template_data then ctx.template_data.recovery_code else null,
  recovery_url: if "template_data" in ctx && "recovery_url" in ctx.template_data then ctx.template_data.recovery_url else null,
  verification_url: if "template_data" in ctx && "verification_url" in ctx.template_data then ctx.template_data.verification_url else null,
  verification_code: if "template_data" in ctx && "verification_code" in ctx.template_data then ctx.template_data.verification_code else null,
  subject: ctx.subject,
  body: ctx.body
}
"#;

#[derive(Clone)]
enum Auth {
    None,
    Basic { user: String, password: String },
    ApiKeyHeader { name: HeaderName, value: String },
    ApiKeyCookie { name: String, value: String },
}

/// Per delivery, whatever the policy client's own default.
const DELIVERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// One `request_config`.
pub(crate) struct HttpChannel {
    id: String,
    url: String,
    method: Method,
    headers: HeaderMap,
    auth: Auth,
    body: Option<String>,
    client: reqwest::Client,
    /// For a body template at an `http(s)://` URI, which the policy may send elsewhere than `url`.
    body_client: reqwest::Client,
    cache: Mutex<HashMap<String, (Instant, String)>>,
}

impl std::fmt::Debug for HttpChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpChannel")
            .field("id", &self.id)
            .field("method", &self.method)
            .finish()
    }
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

impl HttpChannel {
    /// `what` names the config key for error messages (`courier.http.request_config`, …).
    pub(crate) fn from_config(
        id: &str,
        what: &str,
        rc: &Value,
        http: &dyn crate::OutgoingHttp,
    ) -> Result<HttpChannel, CourierError> {
        let err = |why: String| CourierError::Config(format!("{what}: {why}"));
        if !rc.is_object() {
            return Err(err("missing request_config".into()));
        }
        let url = str_field(rc, "url")
            .filter(|u| !u.is_empty())
            .ok_or_else(|| err("url is required".into()))?;
        let parsed = url::Url::parse(url).map_err(|e| err(format!("url is invalid: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(err("url must be http:// or https://".into()));
        }
        let method = str_field(rc, "method")
            .filter(|m| !m.is_empty())
            .unwrap_or("POST");
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| err(format!("invalid method {method:?}")))?;
        let mut headers = HeaderMap::new();
        if let Some(h) = rc.get("headers").and_then(Value::as_object) {
            for (k, v) in h {
                let name = HeaderName::from_bytes(k.as_bytes())
                    .map_err(|_| err(format!("invalid header name {k:?}")))?;
                let value = v
                    .as_str()
                    .and_then(|s| HeaderValue::from_str(s).ok())
                    .ok_or_else(|| err(format!("invalid value for header {k:?}")))?;
                headers.insert(name, value);
            }
        }
        if !headers.contains_key(CONTENT_TYPE) {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_JSON));
        }
        let auth = parse_auth(rc.get("auth")).map_err(err)?;
        let body = str_field(rc, "body")
            .filter(|b| !b.is_empty())
            .map(str::to_string);
        let client = http.client_for(url).map_err(|why| err(format!("url: {why}")))?;
        let body_client = match &body {
            Some(uri) if uri.starts_with("http://") || uri.starts_with("https://") => {
                http.client_for(uri).map_err(|why| err(format!("body: {why}")))?
            }
            _ => client.clone(),
        };
        Ok(HttpChannel {
            id: id.to_string(),
            url: url.to_string(),
            method,
            headers,
            auth,
            body,
            client,
            body_client,
            cache: Mutex::new(HashMap::new()),
        })
    }

    async fn body_template(&self) -> Result<(String, String), DeliveryError> {
        let Some(uri) = &self.body else {
            return Ok(("default_body.jsonnet".to_string(), DEFAULT_BODY.to_string()));
        };
        let name = if uri.starts_with("base64://") {
            "body.jsonnet".to_string()
        } else {
            uri.clone()
        };
        if let Some((at, text)) = self.cache.lock().unwrap().get(uri)
            && at.elapsed() < TEMPLATE_TTL
        {
            return Ok((name, text.clone()));
        }
        let text = crate::fetch::load(&self.body_client, uri, true)
            .await
            .map_err(|e| {
                DeliveryError::transient(format!("unable to load the request body template: {e}"))
            })?;
        self.cache
            .lock()
            .unwrap()
            .insert(uri.clone(), (Instant::now(), text.clone()));
        Ok((name, text))
    }

    /// Delivers `msg`; `html_body` is the HTML rendering for emails (`ctx.html_body`).
    /// `template_data` is the template model JSON (see `Templates::model_json`).
    pub(crate) async fn send(
        &self,
        msg: &Message,
        template_data: Value,
        html_body: Option<String>,
    ) -> Result<(), DeliveryError> {
        let mut ctx = json!({
            "recipient": msg.recipient,
            "subject": msg.subject,
            "body": msg.body,
            "template_type": msg.template_type,
            "template_data": template_data,
            "message_type": msg.kind.as_str(),
            "request_headers": {},
        });
        if let Some(html) = html_body.filter(|h| !h.is_empty()) {
            ctx["html_body"] = Value::String(html);
        }

        // Auth replaces a configured header of the same name, as Kratos' `Header.Set` does.
        let mut headers = self.headers.clone();
        let header_value = |v: String| {
            HeaderValue::from_str(&v).map_err(|_| {
                DeliveryError::transient("the configured auth value is not a valid header value")
            })
        };
        match &self.auth {
            Auth::None => {}
            Auth::Basic { user, password } => {
                let token = STANDARD.encode(format!("{user}:{password}"));
                headers.insert(AUTHORIZATION, header_value(format!("Basic {token}"))?);
            }
            Auth::ApiKeyHeader { name, value } => {
                headers.insert(name.clone(), header_value(value.clone())?);
            }
            Auth::ApiKeyCookie { name, value } => {
                headers.append(COOKIE, header_value(format!("{name}={value}"))?);
            }
        }
        let mut request = self
            .client
            .request(self.method.clone(), &self.url)
            .timeout(DELIVERY_TIMEOUT)
            .headers(headers);
        if self.method != Method::TRACE {
            let (name, code) = self.body_template().await?;
            let out = crate::jsonnet::evaluate(name, code, ctx)
                .await
                .map_err(DeliveryError::transient)?;
            let content_type = self
                .headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or(CONTENT_TYPE_JSON);
            let body = match content_type {
                CONTENT_TYPE_JSON => out.to_string(),
                CONTENT_TYPE_FORM => form_encode(&out)?,
                _ => {
                    return Err(DeliveryError::transient(
                        "invalid config - incorrect Content-Type for request with body",
                    ));
                }
            };
            request = request.body(body);
        }
        let response = request.send().await.map_err(|e| {
            DeliveryError::transient(format!(
                "unable to dispatch message via http: {}",
                e.without_url()
            ))
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        Err(DeliveryError::transient(format!(
            "unable to dispatch mail delivery because upstream server replied with status code {}",
            status.as_u16()
        ))
        .with_code(status.as_u16()))
    }
}

fn form_encode(out: &Value) -> Result<String, DeliveryError> {
    let obj = out.as_object().ok_or_else(|| {
        DeliveryError::transient("the body template must produce an object for form requests")
    })?;
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in obj {
        match v {
            Value::String(s) => ser.append_pair(k, s),
            other => ser.append_pair(k, &other.to_string()),
        };
    }
    Ok(ser.finish())
}

/// `auth: {type: basic_auth, config: {user, password}}` or `{type: api_key, config: {name, value, in}}`.
fn parse_auth(auth: Option<&Value>) -> Result<Auth, String> {
    let Some(auth) = auth.filter(|a| !a.is_null()) else {
        return Ok(Auth::None);
    };
    let kind = str_field(auth, "type").unwrap_or("");
    // Kratos nests the settings under `config`; accept them flat as well.
    let config = auth.get("config").filter(|c| c.is_object()).unwrap_or(auth);
    let get = |k: &str| str_field(config, k).map(str::to_string);
    match kind {
        "" => Ok(Auth::None),
        "basic_auth" => Ok(Auth::Basic {
            user: get("user").ok_or("basic_auth auth strategy requires a string user")?,
            password: get("password").ok_or("basic_auth auth strategy requires a string password")?,
        }),
        "api_key" => {
            let name = get("name").ok_or("api_key auth strategy requires a string name")?;
            let value = get("value").ok_or("api_key auth strategy requires a string value")?;
            match get("in").as_deref() {
                Some("cookie") => Ok(Auth::ApiKeyCookie { name, value }),
                _ => Ok(Auth::ApiKeyHeader {
                    name: HeaderName::from_bytes(name.as_bytes())
                        .map_err(|_| "api_key name is not a valid header name")?,
                    value,
                }),
            }
        }
        other => Err(format!("unsupported auth type: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_request_config() {
        let client = crate::Unrestricted::new().unwrap();
        let c = HttpChannel::from_config(
            "sms",
            "courier.channels[0].request_config",
            &json!({"url": "https://api.example.org/send", "method": "put", "headers": {"X-A": "1"},
                    "auth": {"type": "api_key", "config": {"name": "X-Key", "value": "secret", "in": "header"}}}),
            &client,
        )
        .unwrap();
        assert_eq!(c.method, Method::PUT);
        assert_eq!(c.headers.get("x-a").unwrap(), "1");
        assert_eq!(c.headers.get(CONTENT_TYPE).unwrap(), CONTENT_TYPE_JSON);
        assert!(!format!("{c:?}").contains("secret"));

        for bad in [
            json!({}),
            json!({"url": "ftp://x"}),
            json!({"url": "https://x", "auth": {"type": "oauth"}}),
            json!({"url": "https://x", "auth": {"type": "basic_auth", "config": {"user": "u"}}}),
        ] {
            assert!(
                HttpChannel::from_config("sms", "x", &bad, &client).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn default_body_matches_kratos_schema_default() {
        let out = crate::jsonnet::evaluate_blocking(
            "d",
            DEFAULT_BODY,
            &json!({"recipient": "r", "template_type": "t", "subject": "s", "body": "b",
                    "template_data": {"to": "r", "recovery_code": "1"}}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"recipient": "r", "template_type": "t", "to": "r", "recovery_code": "1", "recovery_url": null,
                   "verification_url": null, "verification_code": null, "subject": "s", "body": "b"})
        );
    }

    #[test]
    fn form_encoding() {
        assert_eq!(form_encode(&json!({"a": "x y", "n": 1})).unwrap(), "a=x+y&n=1");
        assert!(form_encode(&json!([1])).is_err());
    }
}
