//! The Jsonnet claims mapper (`mapper_url`): Kratos evaluates it with `std.extVar('claims')` (see
//! [`Claims::to_mapper_json`]) and `std.extVar('identity')` (`{traits, metadata_public, metadata_admin}` of the
//! identity being updated, or empty objects), and reads `identity.traits`, `identity.metadata_public`,
//! `identity.metadata_admin` and `identity.verified_addresses` from the result
//! (`strategy_registration.go`: `EvaluateClaimsMapper`, `setTraits`, `setMetadata`, `extractVerifiedAddresses`).
//!
//! Mappers are operator code but evaluated once per sign-in, so they get a budget: jrsonnet's stack depth
//! limit, a wall-clock timeout, a size cap on source and output. jrsonnet values are `!Send`, so each
//! evaluation runs on its own thread with its own `State`; only JSON crosses the boundary.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use jrsonnet_evaluator::State;
use jrsonnet_evaluator::trace::PathResolver;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use url::Url;

use crate::claims::Claims;
use crate::error::OidcError;
use crate::http::HttpClient;

const MAX_SOURCE_BYTES: usize = 512 * 1024;
const MAX_OUTPUT_BYTES: usize = 1024 * 1024;
const HTTP_CACHE_TTL: Duration = Duration::from_secs(600);

/// How much a mapper may take.
#[derive(Debug, Clone, Copy)]
pub struct MapperBudget {
    pub timeout: Duration,
    /// Jsonnet stack frames (jrsonnet's own default is 200).
    pub max_stack: usize,
}

impl Default for MapperBudget {
    fn default() -> Self {
        MapperBudget {
            timeout: Duration::from_secs(5),
            max_stack: 200,
        }
    }
}

/// An address the provider vouches for; the flow layer stores it as verified (Kratos: `verified_addresses`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedAddress {
    pub value: String,
    pub via: String,
}

/// What the mapper produced.
#[derive(Debug, Clone, PartialEq)]
pub struct MappedIdentity {
    pub traits: Map<String, Value>,
    /// `None` when the mapper did not set the key (the identity keeps what it has).
    pub metadata_public: Option<Value>,
    pub metadata_admin: Option<Value>,
    pub verified_addresses: Vec<VerifiedAddress>,
    /// The whole evaluated document, for debugging by the operator (contains personal data: don't log).
    pub evaluated: Value,
}

/// The current identity, as Kratos exposes it to mappers that update on login.
#[derive(Debug, Clone, Default)]
pub struct IdentityContext {
    pub traits: Value,
    pub metadata_public: Value,
    pub metadata_admin: Value,
}

/// Loads and evaluates one provider's mapper.
#[derive(Debug)]
pub struct ClaimsMapper {
    url: String,
    budget: MapperBudget,
    cache: Mutex<Option<(Instant, String)>>,
}

impl ClaimsMapper {
    pub fn new(url: impl Into<String>) -> ClaimsMapper {
        ClaimsMapper {
            url: url.into(),
            budget: MapperBudget::default(),
            cache: Mutex::new(None),
        }
    }

    pub fn with_budget(mut self, budget: MapperBudget) -> ClaimsMapper {
        self.budget = budget;
        self
    }

    /// Fetches the source (`file://`, `base64://`, `http(s)://` through the guarded client).
    pub async fn source(&self, http: &HttpClient) -> Result<String, OidcError> {
        let url = self.url.as_str();
        let fail = |e: String| {
            OidcError::Mapper(format!(
                "Unable to load the Jsonnet mapper from {}: {e}",
                redact(url)
            ))
        };
        let code = if let Some(path) = url.strip_prefix("file://") {
            let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
            if meta.len() as usize > MAX_SOURCE_BYTES {
                return Err(fail("the file is too large".into()));
            }
            std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?
        } else if let Some(encoded) = url.strip_prefix("base64://") {
            decode_base64(encoded).map_err(fail)?
        } else if url.starts_with("http://") || url.starts_with("https://") {
            if let Some((at, code)) = self.cache.lock().ok().and_then(|c| c.clone())
                && at.elapsed() < HTTP_CACHE_TTL
            {
                return Ok(code);
            }
            let parsed = Url::parse(url).map_err(|e| fail(e.to_string()))?;
            let code = http.get_text(&parsed).await.map_err(|e| fail(e.to_string()))?;
            if let Ok(mut c) = self.cache.lock() {
                *c = Some((Instant::now(), code.clone()));
            }
            code
        } else {
            return Err(fail("unsupported URL scheme".into()));
        };
        if code.len() > MAX_SOURCE_BYTES {
            return Err(fail("the source is too large".into()));
        }
        Ok(code)
    }

    /// Loads the mapper and runs it over `claims`.
    pub async fn map(
        &self,
        http: &HttpClient,
        claims: &Claims,
        identity: Option<&IdentityContext>,
    ) -> Result<MappedIdentity, OidcError> {
        let code = self.source(http).await?;
        evaluate(
            &self.url,
            code,
            claims.to_mapper_json(),
            identity_json(identity),
            self.budget,
        )
        .await
    }
}

fn identity_json(identity: Option<&IdentityContext>) -> Value {
    let or_empty = |v: &Value| if v.is_null() { json!({}) } else { v.clone() };
    match identity {
        Some(i) => json!({
            "traits": or_empty(&i.traits),
            "metadata_public": or_empty(&i.metadata_public),
            "metadata_admin": or_empty(&i.metadata_admin),
        }),
        None => json!({"traits": {}, "metadata_public": {}, "metadata_admin": {}}),
    }
}

/// A `base64://` mapper may be long; keep only its scheme in messages.
fn redact(url: &str) -> &str {
    if url.starts_with("base64://") {
        "base64://…"
    } else {
        url
    }
}

fn decode_base64(encoded: &str) -> Result<String, String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let compact: String = encoded.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = STANDARD
        .decode(&compact)
        .or_else(|_| STANDARD_NO_PAD.decode(&compact))
        .or_else(|_| URL_SAFE.decode(&compact))
        .or_else(|_| URL_SAFE_NO_PAD.decode(&compact))
        .map_err(|e| format!("invalid base64: {e}"))?;
    String::from_utf8(bytes).map_err(|_| "the decoded mapper is not UTF-8".to_string())
}

/// Evaluates `code` on its own thread within `budget`, then checks the result's shape as Kratos does.
pub async fn evaluate(
    name: &str,
    code: String,
    claims: Value,
    identity: Value,
    budget: MapperBudget,
) -> Result<MappedIdentity, OidcError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let name_owned = name.to_string();
    // A dedicated thread rather than the blocking pool: a runaway mapper that outlives its timeout must not
    // hold a slot other work needs.
    std::thread::Builder::new()
        .name("oidc-mapper".into())
        .spawn(move || {
            let _ = tx.send(evaluate_blocking(
                &name_owned,
                &code,
                &claims,
                &identity,
                budget.max_stack,
            ));
        })
        .map_err(|e| OidcError::Mapper(format!("OpenID Connect Jsonnet mapper could not be started: {e}")))?;
    let evaluated = match tokio::time::timeout(budget.timeout, rx).await {
        Ok(Ok(result)) => result?,
        Ok(Err(_)) => {
            return Err(OidcError::Mapper(
                "OpenID Connect Jsonnet mapper failed unexpectedly.".into(),
            ));
        }
        Err(_) => {
            return Err(OidcError::Mapper(format!(
                "OpenID Connect Jsonnet mapper did not finish within {} ms.",
                budget.timeout.as_millis()
            )));
        }
    };
    shape(evaluated)
}

fn evaluate_blocking(
    name: &str,
    code: &str,
    claims: &Value,
    identity: &Value,
    max_stack: usize,
) -> Result<Value, OidcError> {
    let fail =
        |e: String| OidcError::Mapper(format!("OpenID Connect Jsonnet mapper failed: {}", e.trim_end()));
    let _depth = jrsonnet_evaluator::stack::limit_stack_depth(max_stack);
    let initializer = jrsonnet_stdlib::ContextInitializer::new(PathResolver::Absolute);
    let to_val = |v: &Value| {
        jrsonnet_evaluator::Val::from_serde(numbers_as_f64(v))
            .map_err(|e| fail(format!("invalid input: {e}")))
    };
    initializer.add_ext_var("claims".into(), to_val(claims)?);
    initializer.add_ext_var("identity".into(), to_val(identity)?);
    let mut builder = State::builder();
    builder.context_initializer(initializer);
    let state = builder.build();
    let _entered = state.try_enter();
    let value = state
        .evaluate_snippet(name, code)
        .map_err(|e| fail(e.to_string()))?;
    let json = serde_json::to_value(&value)
        .map_err(|e| fail(format!("unable to manifest the result as JSON: {e}")))?;
    if serde_json::to_vec(&json).map(|v| v.len()).unwrap_or(usize::MAX) > MAX_OUTPUT_BYTES {
        return Err(fail("the result is too large".into()));
    }
    Ok(json)
}

/// Jsonnet numbers are doubles; jrsonnet's serde bridge would turn large integers into strings.
fn numbers_as_f64(v: &Value) -> Value {
    match v {
        Value::Number(n) => n
            .as_f64()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number),
        Value::Array(a) => Value::Array(a.iter().map(numbers_as_f64).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), numbers_as_f64(v))).collect()),
        other => other.clone(),
    }
}

fn shape(evaluated: Value) -> Result<MappedIdentity, OidcError> {
    let identity = evaluated.get("identity");
    let traits = match identity.and_then(|i| i.get("traits")) {
        Some(Value::Object(t)) => t.clone(),
        _ => {
            return Err(OidcError::Mapper(
                "OpenID Connect Jsonnet mapper did not return an object for key identity.traits. Please check your Jsonnet code!"
                    .into(),
            ));
        }
    };
    let metadata = |key: &str| -> Result<Option<Value>, OidcError> {
        match identity.and_then(|i| i.get(key)) {
            None | Some(Value::Null) => Ok(None),
            Some(v @ Value::Object(_)) => Ok(Some(v.clone())),
            Some(_) => Err(OidcError::Mapper(format!(
                "OpenID Connect Jsonnet mapper did not return an object for key identity.{key}. Please check your Jsonnet code!"
            ))),
        }
    };
    let metadata_public = metadata("metadata_public")?;
    let metadata_admin = metadata("metadata_admin")?;
    let verified_addresses = match identity.and_then(|i| i.get("verified_addresses")) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            let mut out: Vec<VerifiedAddress> = serde_json::from_value(Value::Array(items.clone())).map_err(|_| {
                OidcError::Mapper(
                    "Failed to unmarshal value for key identity.verified_addresses. Please check your Jsonnet code!".into(),
                )
            })?;
            for a in &mut out {
                if a.via == "email" {
                    a.value = a.value.trim().to_lowercase();
                }
            }
            out
        }
        Some(_) => {
            return Err(OidcError::Mapper(
                "OpenID Connect Jsonnet mapper did not return an array for key identity.verified_addresses. Please check your Jsonnet code!"
                    .into(),
            ));
        }
    };
    Ok(MappedIdentity {
        traits,
        metadata_public,
        metadata_admin,
        verified_addresses,
        evaluated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPPER: &str = r#"
local claims = std.extVar('claims');
{
  identity: {
    traits: { email: claims.email, [if 'name' in claims then 'name']: claims.name },
    verified_addresses: if 'email_verified' in claims && claims.email_verified then [{ value: ' ' + std.asciiUpper(claims.email), via: 'email' }] else [],
    metadata_public: { provider_sub: claims.sub },
  },
}
"#;

    fn claims(v: Value) -> Claims {
        Claims::from_raw(v.as_object().unwrap().clone())
    }

    #[tokio::test]
    async fn maps_like_kratos() {
        let c = claims(json!({"sub": "s1", "iss": "i", "email": "Ann@Example.org", "email_verified": true}));
        let m = evaluate(
            "m",
            MAPPER.into(),
            c.to_mapper_json(),
            identity_json(None),
            MapperBudget::default(),
        )
        .await
        .unwrap();
        assert_eq!(Value::Object(m.traits), json!({"email": "Ann@Example.org"}));
        assert_eq!(
            m.verified_addresses,
            vec![VerifiedAddress {
                value: "ann@example.org".into(),
                via: "email".into()
            }]
        );
        assert_eq!(m.metadata_public, Some(json!({"provider_sub": "s1"})));
        assert_eq!(m.metadata_admin, None);
    }

    #[tokio::test]
    async fn refuses_bad_shapes_and_errors() {
        let c = claims(json!({"sub": "s"}));
        for (code, expect) in [
            ("{identity: {traits: 'x'}}", "identity.traits"),
            (
                "{identity: {traits: {}, metadata_admin: 1}}",
                "identity.metadata_admin",
            ),
            (
                "{identity: {traits: {}, verified_addresses: {}}}",
                "identity.verified_addresses",
            ),
            ("error 'nope'", "nope"),
            ("{", "failed"),
            ("local f(n) = f(n + 1); f(0)", "stack overflow"),
        ] {
            let err = evaluate(
                "m",
                code.into(),
                c.to_mapper_json(),
                identity_json(None),
                MapperBudget::default(),
            )
            .await
            .unwrap_err();
            assert!(err.to_string().contains(expect), "{code}: {err}");
            assert_eq!(err.status(), 400);
        }
    }

    #[tokio::test]
    async fn stops_a_slow_mapper() {
        let budget = MapperBudget {
            timeout: Duration::from_millis(200),
            max_stack: 200,
        };
        let slow = "{identity: {traits: {n: std.length(std.join('', std.makeArray(20000000, function(i) std.toString(i))))}}}";
        let err = evaluate("m", slow.into(), json!({}), identity_json(None), budget)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("did not finish"), "{err}");
    }

    #[tokio::test]
    async fn loads_base64_and_file() {
        let http = HttpClient::new(Default::default()).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(MAPPER);
        let m = ClaimsMapper::new(format!("base64://{b64}"));
        let c = claims(json!({"sub": "s1", "iss": "i", "email": "a@b.c"}));
        assert_eq!(m.map(&http, &c, None).await.unwrap().traits["email"], "a@b.c");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonnet");
        std::fs::write(&path, MAPPER).unwrap();
        let m = ClaimsMapper::new(format!("file://{}", path.display()));
        assert_eq!(m.map(&http, &c, None).await.unwrap().traits["email"], "a@b.c");
        let missing = ClaimsMapper::new("file:///nonexistent/m.jsonnet");
        assert!(matches!(
            missing.map(&http, &c, None).await,
            Err(OidcError::Mapper(_))
        ));
    }

    #[tokio::test]
    async fn sees_the_current_identity() {
        let code = "{identity: {traits: std.extVar('identity').traits + {seen: true}}}";
        let ctx = IdentityContext {
            traits: json!({"email": "x@y.z"}),
            ..Default::default()
        };
        let m = evaluate(
            "m",
            code.into(),
            json!({}),
            identity_json(Some(&ctx)),
            MapperBudget::default(),
        )
        .await
        .unwrap();
        assert_eq!(Value::Object(m.traits), json!({"email": "x@y.z", "seen": true}));
    }
}
