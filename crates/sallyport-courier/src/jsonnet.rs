//! Jsonnet evaluation for HTTP channel bodies (Kratos `request.Builder.addJSONBody`).
//!
//! Kratos passes the payload as the top-level argument `ctx` (`function(ctx) { … }`); Sallyport also
//! exposes it as `std.extVar('ctx')` so snippets that are plain objects work too. jrsonnet values are
//! `!Send` (reference counted, thread-local state), so every evaluation runs on a blocking thread
//! with its own `State` and only JSON crosses the thread boundary.

use std::collections::HashMap;
use std::time::Duration;

use jrsonnet_evaluator::tla::TlaArg;
use jrsonnet_evaluator::trace::PathResolver;
use jrsonnet_evaluator::{State, Val, apply_tla};
use serde_json::Value;

/// How long a body template may run before the delivery attempt is given up.
const EVAL_TIMEOUT: Duration = Duration::from_secs(10);

/// jrsonnet bounds its own call depth (200 Jsonnet frames, then "stack overflow" as an error) and grows
/// the stack while evaluating, but manifesting and dropping a deep value recurse on the Rust stack.
/// A thread of its own with a large (lazily committed) stack keeps a program that builds a value
/// 20,000 levels deep an error or a success instead of aborting the process (a 2 MiB blocking thread
/// aborted); far deeper values still overflow, but programs are operator config, and the data Sallyport
/// hands in is never deeper than the request nesting limit.
const EVAL_STACK_BYTES: usize = 64 << 20;

/// Jsonnet call frames a program may nest (jrsonnet's own default, set here so that it stays so):
/// deeper recursion ends as a "stack overflow" Jsonnet error, not a Rust one.
const MAX_JSONNET_FRAMES: usize = 200;

/// Evaluates `code` with `ctx` on a thread of its own. `Err` carries a message fit for logs and the
/// dispatch record (Jsonnet's own error text, which never includes channel credentials).
pub(crate) async fn evaluate(name: String, code: String, ctx: Value) -> Result<Value, String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("jsonnet".into())
        .stack_size(EVAL_STACK_BYTES)
        .spawn(move || {
            let _ = tx.send(evaluate_blocking(&name, &code, &ctx));
        })
        .map_err(|e| format!("jsonnet evaluation failed: {e}"))?;
    match tokio::time::timeout(EVAL_TIMEOUT, rx).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err("jsonnet evaluation failed: the evaluator stopped without an answer".to_string()),
        Err(_) => Err("jsonnet evaluation timed out".to_string()),
    }
}

/// Synchronous evaluation (the caller must be on a thread where blocking is fine).
// `IStr` (jrsonnet's interned string) hashes by pointer; `apply_tla` wants a map keyed by it.
#[allow(clippy::mutable_key_type)]
pub(crate) fn evaluate_blocking(name: &str, code: &str, ctx: &Value) -> Result<Value, String> {
    // jrsonnet's serde bridge turns 64-bit integers into strings (to keep their precision); Jsonnet
    // numbers are doubles, so hand every number over as one.
    let ctx_val = Val::from_serde(numbers_as_f64(ctx)).map_err(|e| format!("jsonnet: invalid ctx: {e}"))?;
    let _frames = jrsonnet_evaluator::stack::limit_stack_depth(MAX_JSONNET_FRAMES);
    let initializer = jrsonnet_stdlib::ContextInitializer::new(PathResolver::Absolute);
    initializer.add_ext_var("ctx".into(), ctx_val.clone());
    let mut builder = State::builder();
    builder.context_initializer(initializer);
    let state = builder.build();
    let _entered = state.try_enter();
    let value = state
        .evaluate_snippet(name, code)
        .map_err(|e| format!("jsonnet: {}", e.to_string().trim_end()))?;
    let mut tla = HashMap::new();
    tla.insert("ctx".into(), TlaArg::Val(ctx_val));
    let value = apply_tla(&tla, value).map_err(|e| format!("jsonnet: {}", e.to_string().trim_end()))?;
    serde_json::to_value(&value).map_err(|e| format!("jsonnet: unable to manifest the result as JSON: {e}"))
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn function_of_ctx() {
        let out = evaluate_blocking(
            "t.jsonnet",
            "function(ctx) { to: ctx.recipient, n: std.length(ctx.list), up: std.asciiUpper(ctx.recipient), big: ctx.big + 1, f: ctx.list[0] / 2 }",
            &json!({"recipient": "a@b.c", "list": [1, 2], "big": 10_000_000_000i64}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"to": "a@b.c", "n": 2, "up": "A@B.C", "big": 10_000_000_001i64, "f": 0.5})
        );
    }

    #[test]
    fn ext_var_and_errors() {
        let out = evaluate_blocking(
            "t",
            "{ to: std.extVar('ctx').recipient }",
            &json!({"recipient": "x"}),
        )
        .unwrap();
        assert_eq!(out, json!({"to": "x"}));
        let err = evaluate_blocking("t", "function(ctx) error 'cancel'", &json!({})).unwrap_err();
        assert!(err.contains("cancel"), "{err}");
        assert!(evaluate_blocking("t", "{", &json!({})).is_err());
    }

    #[tokio::test]
    async fn async_evaluation() {
        let out = evaluate("t".into(), "function(ctx) ctx.a + 1".into(), json!({"a": 1}))
            .await
            .unwrap();
        assert_eq!(out, json!(2));
    }

    /// Each of these aborted the process (stack overflow) when evaluated on a 2 MiB blocking thread.
    #[tokio::test]
    async fn deep_programs_end_as_errors_or_values_not_aborts() {
        let deep_ctx = (0..64).fold(json!("x"), |acc, _| json!({ "a": acc }));
        for code in [
            "local f(n) = if n == 0 then 0 else 1 + f(n-1); f(100000)",
            "local f(n) = if n == 0 then {} else {a: f(n-1)}; f(100000)",
            "local f(n) = if n == 0 then [] else [f(n-1)]; f(100000)",
            "std.foldl(function(acc, i) {a: acc}, std.range(1, 20000), {})",
        ] {
            let out = evaluate("t".into(), code.into(), deep_ctx.clone()).await;
            assert!(out.unwrap_err().contains("stack overflow"), "{code}");
        }
        let out = evaluate("t".into(), "function(ctx) {r: ctx}".into(), deep_ctx.clone()).await;
        assert_eq!(out.unwrap(), json!({ "r": deep_ctx }));
    }
}
