//! Go `fmt` renderings that leak into Kratos' wire output: message texts built with `%v`/`%q`
//! and the `%v` string used as the node-sort tiebreak.

use serde_json::Value;

/// `fmt.Sprintf("%v", float64)`: shortest digits, exponent form below 1e-4 or from 1e6 on
/// (e.g. `1e+06`, `2.5e-05`).
pub(crate) fn float_v(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
    } else {
        format!("{f}")
    }
}

/// `strconv.Quote` / `%q`, close enough for message texts: escapes quotes, backslashes and
/// control characters, keeps printable Unicode.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `%#v` of a value decoded by ory/jsonschema with `UseNumber`: numbers are `json.Number`
/// (a string type, so they come out quoted), strings quoted, `nil` as `<nil>`.
pub(crate) fn sharp_v(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => quote(&n.to_string()),
        Value::String(s) => quote(s),
        other => other.to_string(),
    }
}

/// `fmt.Sprintf("%v", v)` of a JSON value decoded into `interface{}` (numbers are float64).
pub(crate) fn value_v(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => float_v(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(value_v).collect();
            format!("[{}]", inner.join(" "))
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}:{}", value_v(&map[k])))
                .collect();
            format!("map[{}]", inner.join(" "))
        }
    }
}

/// `fmt.Sprintf("%s", value)` for a trait value handed to an extension hook. Go renders
/// non-strings as `%!s(float64=1)`; identifiers are strings in any sane schema, so the JSON
/// text is used instead of imitating that.
pub(crate) fn value_s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A JSON number as Go's `encoding/json` writes a float64: integral values without a
/// fraction, so `1200` stays `1200` rather than serde's `1200.0`.
pub(crate) fn json_float(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        Value::from(f as i64)
    } else {
        serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_render_like_go() {
        assert_eq!(float_v(1200.0), "1200");
        assert_eq!(float_v(2.5), "2.5");
        assert_eq!(float_v(1_000_000.0), "1e+06");
        assert_eq!(float_v(1_234_567.0), "1.234567e+06");
        assert_eq!(float_v(0.0001), "0.0001");
        assert_eq!(float_v(0.00001), "1e-05");
        assert_eq!(float_v(-3.0), "-3");
        assert_eq!(json_float(1200.0), json!(1200));
        assert_eq!(json_float(2.5), json!(2.5));
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(sharp_v(&json!(1)), "\"1\"");
        assert_eq!(sharp_v(&json!("x")), "\"x\"");
        assert_eq!(value_v(&json!(null)), "<nil>");
        assert_eq!(value_v(&json!(2048)), "2048");
    }
}
