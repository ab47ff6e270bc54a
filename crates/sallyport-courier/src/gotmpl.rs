//! The Go-template layer over `gtmpl`: compiling a template set (main text plus sibling files reachable
//! with `{{ template "name" . }}`), turning JSON into template values (optionally HTML-escaped, which
//! is how `html/template` output escaping is approximated), and the functions Kratos templates may call
//! (Go's `html`/`js` builtins and a hermetic Sprig subset).

use std::collections::HashMap;

use gtmpl::{Context, Func, FuncError, Template, Value};
use gtmpl_value::Number;

/// A parsed template set, ready to execute.
pub(crate) struct Compiled {
    template: Template,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled")
            .field("name", &self.template.name)
            .finish()
    }
}

/// Parses `main` as the template `name`, plus `siblings` (`(name, text)`) as associated templates,
/// like Go's `template.New(name).ParseFS(fs, glob)`.
pub(crate) fn compile(name: &str, main: &str, siblings: &[(String, String)]) -> Result<Compiled, String> {
    let mut template = Template::with_name(name);
    template.add_funcs(FUNCS);
    for (sibling, text) in siblings {
        if sibling != name {
            template
                .add_template(sibling.as_str(), text.as_str())
                .map_err(|e| format!("{sibling}: {e}"))?;
        }
    }
    template.parse(main).map_err(|e| e.to_string())?;
    Ok(Compiled { template })
}

impl Compiled {
    pub(crate) fn execute(&self, data: Value) -> Result<String, String> {
        self.template
            .render(&Context::from(data))
            .map_err(|e| e.to_string())
    }
}

/// JSON → template value. Objects become Go maps (missing keys print `<no value>`); with `escape`,
/// every string is HTML-escaped the way `html/template` escapes interpolated text.
pub(crate) fn json_to_value(v: &serde_json::Value, escape: bool) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => number(n),
        serde_json::Value::String(s) => Value::String(if escape { html_escape(s) } else { s.clone() }),
        serde_json::Value::Array(a) => Value::Array(a.iter().map(|v| json_to_value(v, escape)).collect()),
        serde_json::Value::Object(o) => Value::Map(
            o.iter()
                .map(|(k, v)| (k.clone(), json_to_value(v, escape)))
                .collect(),
        ),
    }
}

fn number(n: &serde_json::Number) -> Value {
    if let Some(i) = n.as_i64() {
        Value::Number(Number::from(i))
    } else if let Some(u) = n.as_u64() {
        Value::Number(Number::from(u))
    } else {
        Value::Number(Number::from(n.as_f64().unwrap_or_default()))
    }
}

fn value_to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::NoValue | Value::Nil | Value::Function(_) => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into()
            } else if let Some(u) = n.as_u64() {
                u.into()
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(serde_json::Value::Null, serde_json::Value::Number)
            }
        }
        Value::Array(a) => serde_json::Value::Array(a.iter().map(value_to_json).collect()),
        Value::Object(o) | Value::Map(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            serde_json::Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), value_to_json(&o[k])))
                    .collect(),
            )
        }
    }
}

/// Go's `template.HTMLEscapeString` as applied by `html/template` to text: `& < > " ' +` and NUL.
pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '+' => out.push_str("&#43;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Functions

static FUNCS: &[(&str, Func)] = &[
    ("html", f_html as Func),
    ("js", f_js as Func),
    ("upper", f_upper as Func),
    ("lower", f_lower as Func),
    ("title", f_title as Func),
    ("untitle", f_untitle as Func),
    ("trim", f_trim as Func),
    ("trimAll", f_trim_all as Func),
    ("trimPrefix", f_trim_prefix as Func),
    ("trimSuffix", f_trim_suffix as Func),
    ("nospace", f_nospace as Func),
    ("cat", f_cat as Func),
    ("default", f_default as Func),
    ("empty", f_empty as Func),
    ("coalesce", f_coalesce as Func),
    ("ternary", f_ternary as Func),
    ("replace", f_replace as Func),
    ("contains", f_contains as Func),
    ("hasPrefix", f_has_prefix as Func),
    ("hasSuffix", f_has_suffix as Func),
    ("quote", f_quote as Func),
    ("squote", f_squote as Func),
    ("repeat", f_repeat as Func),
    ("substr", f_substr as Func),
    ("trunc", f_trunc as Func),
    ("abbrev", f_abbrev as Func),
    ("indent", f_indent as Func),
    ("nindent", f_nindent as Func),
    ("toString", f_to_string as Func),
    ("toJson", f_to_json as Func),
    ("join", f_join as Func),
    ("splitList", f_split_list as Func),
    ("list", f_list as Func),
    ("dict", f_dict as Func),
    ("add", f_add as Func),
    ("add1", f_add1 as Func),
    ("sub", f_sub as Func),
    ("mul", f_mul as Func),
    ("div", f_div as Func),
    ("mod", f_mod as Func),
    ("max", f_max as Func),
    ("min", f_min as Func),
];

/// Go's `fmt.Sprint`-ish rendering of a value as text.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::NoValue | Value::Nil => String::new(),
        Value::Map(_) | Value::Object(_) | Value::Array(_) => value_to_json(v).to_string(),
        other => other.to_string(),
    }
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)).unwrap_or(0),
        Value::String(s) => s.trim().parse().unwrap_or(0),
        Value::Bool(b) => i64::from(*b),
        _ => 0,
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::NoValue | Value::Nil => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Map(m) | Value::Object(m) => m.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Function(_) => false,
    }
}

fn need(name: &str, args: &[Value], n: usize) -> Result<(), FuncError> {
    if args.len() < n {
        return Err(FuncError::AtLeastXArgs(name.to_string(), n));
    }
    Ok(())
}

fn all_text(args: &[Value]) -> String {
    match args {
        [one] => text(one),
        many => many.iter().map(text).collect::<Vec<_>>().join(" "),
    }
}

fn f_html(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::from(html_escape(&all_text(args))))
}

fn f_js(args: &[Value]) -> Result<Value, FuncError> {
    let s = all_text(args);
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    Ok(Value::from(out))
}

fn last_text(name: &str, args: &[Value]) -> Result<String, FuncError> {
    need(name, args, 1)?;
    Ok(text(&args[args.len() - 1]))
}

fn f_upper(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::from(last_text("upper", args)?.to_uppercase()))
}

fn f_lower(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::from(last_text("lower", args)?.to_lowercase()))
}

fn map_words(s: &str, f: impl Fn(char) -> String) -> String {
    let mut out = String::with_capacity(s.len());
    let mut at_start = true;
    for c in s.chars() {
        if at_start && !c.is_whitespace() {
            out.push_str(&f(c));
        } else {
            out.push(c);
        }
        at_start = c.is_whitespace();
    }
    out
}

fn f_title(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::from(map_words(&last_text("title", args)?, |c| {
        c.to_uppercase().collect()
    })))
}

fn f_untitle(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::from(map_words(&last_text("untitle", args)?, |c| {
        c.to_lowercase().collect()
    })))
}

fn f_trim(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::from(last_text("trim", args)?.trim().to_string()))
}

fn f_trim_all(args: &[Value]) -> Result<Value, FuncError> {
    need("trimAll", args, 2)?;
    let cutset: Vec<char> = text(&args[0]).chars().collect();
    Ok(Value::from(
        text(&args[1]).trim_matches(|c| cutset.contains(&c)).to_string(),
    ))
}

fn f_trim_prefix(args: &[Value]) -> Result<Value, FuncError> {
    need("trimPrefix", args, 2)?;
    let (p, s) = (text(&args[0]), text(&args[1]));
    Ok(Value::from(s.strip_prefix(p.as_str()).unwrap_or(&s).to_string()))
}

fn f_trim_suffix(args: &[Value]) -> Result<Value, FuncError> {
    need("trimSuffix", args, 2)?;
    let (p, s) = (text(&args[0]), text(&args[1]));
    Ok(Value::from(s.strip_suffix(p.as_str()).unwrap_or(&s).to_string()))
}

fn f_nospace(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::from(
        last_text("nospace", args)?
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>(),
    ))
}

fn f_cat(args: &[Value]) -> Result<Value, FuncError> {
    let parts: Vec<String> = args
        .iter()
        .filter(|v| !matches!(v, Value::Nil | Value::NoValue))
        .map(text)
        .collect();
    Ok(Value::from(parts.join(" ")))
}

fn f_default(args: &[Value]) -> Result<Value, FuncError> {
    need("default", args, 1)?;
    match args.get(1) {
        Some(given) if !is_empty(given) => Ok(given.clone()),
        _ => Ok(args[0].clone()),
    }
}

fn f_empty(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::Bool(args.first().is_none_or(is_empty)))
}

fn f_coalesce(args: &[Value]) -> Result<Value, FuncError> {
    Ok(args.iter().find(|v| !is_empty(v)).cloned().unwrap_or(Value::Nil))
}

fn f_ternary(args: &[Value]) -> Result<Value, FuncError> {
    need("ternary", args, 3)?;
    Ok(if matches!(args[2], Value::Bool(true)) {
        args[0].clone()
    } else {
        args[1].clone()
    })
}

fn f_replace(args: &[Value]) -> Result<Value, FuncError> {
    need("replace", args, 3)?;
    Ok(Value::from(
        text(&args[2]).replace(&text(&args[0]), &text(&args[1])),
    ))
}

fn f_contains(args: &[Value]) -> Result<Value, FuncError> {
    need("contains", args, 2)?;
    Ok(Value::Bool(text(&args[1]).contains(&text(&args[0]))))
}

fn f_has_prefix(args: &[Value]) -> Result<Value, FuncError> {
    need("hasPrefix", args, 2)?;
    Ok(Value::Bool(text(&args[1]).starts_with(&text(&args[0]))))
}

fn f_has_suffix(args: &[Value]) -> Result<Value, FuncError> {
    need("hasSuffix", args, 2)?;
    Ok(Value::Bool(text(&args[1]).ends_with(&text(&args[0]))))
}

fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn f_quote(args: &[Value]) -> Result<Value, FuncError> {
    let parts: Vec<String> = args
        .iter()
        .filter(|v| !matches!(v, Value::Nil | Value::NoValue))
        .map(|v| go_quote(&text(v)))
        .collect();
    Ok(Value::from(parts.join(" ")))
}

fn f_squote(args: &[Value]) -> Result<Value, FuncError> {
    let parts: Vec<String> = args
        .iter()
        .filter(|v| !matches!(v, Value::Nil | Value::NoValue))
        .map(|v| format!("'{}'", text(v)))
        .collect();
    Ok(Value::from(parts.join(" ")))
}

fn f_repeat(args: &[Value]) -> Result<Value, FuncError> {
    need("repeat", args, 2)?;
    let n = int(&args[0]).clamp(0, 10_000) as usize;
    Ok(Value::from(text(&args[1]).repeat(n)))
}

fn f_substr(args: &[Value]) -> Result<Value, FuncError> {
    need("substr", args, 3)?;
    let chars: Vec<char> = text(&args[2]).chars().collect();
    let len = chars.len() as i64;
    let start = int(&args[0]);
    let end = int(&args[1]);
    let start = if start < 0 { 0 } else { start.min(len) };
    let end = if end < 0 || end > len { len } else { end };
    if start >= end {
        return Ok(Value::from(String::new()));
    }
    Ok(Value::from(
        chars[start as usize..end as usize].iter().collect::<String>(),
    ))
}

fn f_trunc(args: &[Value]) -> Result<Value, FuncError> {
    need("trunc", args, 2)?;
    let chars: Vec<char> = text(&args[1]).chars().collect();
    let n = int(&args[0]);
    let len = chars.len() as i64;
    let out: String = if n >= 0 {
        chars.iter().take(n as usize).collect()
    } else {
        chars.iter().skip((len + n).max(0) as usize).collect()
    };
    Ok(Value::from(out))
}

fn f_abbrev(args: &[Value]) -> Result<Value, FuncError> {
    need("abbrev", args, 2)?;
    let width = int(&args[0]);
    let s = text(&args[1]);
    let chars: Vec<char> = s.chars().collect();
    if width < 4 || chars.len() as i64 <= width {
        return Ok(Value::from(s));
    }
    let mut out: String = chars.iter().take(width as usize - 3).collect();
    out.push_str("...");
    Ok(Value::from(out))
}

fn indent_text(n: i64, s: &str) -> String {
    let pad = " ".repeat(n.clamp(0, 1000) as usize);
    format!("{pad}{}", s.replace('\n', &format!("\n{pad}")))
}

fn f_indent(args: &[Value]) -> Result<Value, FuncError> {
    need("indent", args, 2)?;
    Ok(Value::from(indent_text(int(&args[0]), &text(&args[1]))))
}

fn f_nindent(args: &[Value]) -> Result<Value, FuncError> {
    need("nindent", args, 2)?;
    Ok(Value::from(format!(
        "\n{}",
        indent_text(int(&args[0]), &text(&args[1]))
    )))
}

fn f_to_string(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::from(last_text("toString", args)?))
}

fn f_to_json(args: &[Value]) -> Result<Value, FuncError> {
    need("toJson", args, 1)?;
    Ok(Value::from(value_to_json(&args[args.len() - 1]).to_string()))
}

fn f_join(args: &[Value]) -> Result<Value, FuncError> {
    need("join", args, 2)?;
    let sep = text(&args[0]);
    Ok(Value::from(match &args[1] {
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(&sep),
        other => text(other),
    }))
}

fn f_split_list(args: &[Value]) -> Result<Value, FuncError> {
    need("splitList", args, 2)?;
    let sep = text(&args[0]);
    let s = text(&args[1]);
    Ok(Value::Array(
        s.split(sep.as_str())
            .map(|p| Value::from(p.to_string()))
            .collect(),
    ))
}

fn f_list(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::Array(args.to_vec()))
}

fn f_dict(args: &[Value]) -> Result<Value, FuncError> {
    let mut map = HashMap::new();
    for pair in args.chunks(2) {
        map.insert(
            text(&pair[0]),
            pair.get(1).cloned().unwrap_or(Value::from(String::new())),
        );
    }
    Ok(Value::Map(map))
}

fn arith(name: &str, args: &[Value], f: fn(i64, i64) -> Option<i64>) -> Result<Value, FuncError> {
    need(name, args, 2)?;
    let mut acc = int(&args[0]);
    for v in &args[1..] {
        acc = f(acc, int(v)).ok_or_else(|| FuncError::Generic(format!("{name}: invalid operation")))?;
    }
    Ok(Value::Number(Number::from(acc)))
}

fn f_add(args: &[Value]) -> Result<Value, FuncError> {
    arith("add", args, i64::checked_add)
}

fn f_add1(args: &[Value]) -> Result<Value, FuncError> {
    need("add1", args, 1)?;
    Ok(Value::Number(Number::from(int(&args[0]).saturating_add(1))))
}

fn f_sub(args: &[Value]) -> Result<Value, FuncError> {
    arith("sub", args, i64::checked_sub)
}

fn f_mul(args: &[Value]) -> Result<Value, FuncError> {
    arith("mul", args, i64::checked_mul)
}

fn f_div(args: &[Value]) -> Result<Value, FuncError> {
    arith("div", args, i64::checked_div)
}

fn f_mod(args: &[Value]) -> Result<Value, FuncError> {
    arith("mod", args, i64::checked_rem)
}

fn f_max(args: &[Value]) -> Result<Value, FuncError> {
    arith("max", args, |a, b| Some(a.max(b)))
}

fn f_min(args: &[Value]) -> Result<Value, FuncError> {
    arith("min", args, |a, b| Some(a.min(b)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(t: &str, data: serde_json::Value) -> String {
        compile("t", t, &[])
            .unwrap()
            .execute(json_to_value(&data, false))
            .unwrap()
    }

    #[test]
    fn go_template_features() {
        let data = json!({"a": "x", "n": 3, "m": {"k": "v"}, "lang": "en_US", "list": ["p", "q"]});
        assert_eq!(render("{{ .a }}-{{ .n }}-{{ .m.k }}", data.clone()), "x-3-v");
        assert_eq!(render("{{ .missing }}", data.clone()), "<no value>");
        assert_eq!(render("{{ if .a }}yes{{ else }}no{{ end }}", data.clone()), "yes");
        assert_eq!(
            render(
                "a\n{{- if eq .lang \"en_US\" -}}\nEN\n{{- end -}}\nb",
                data.clone()
            ),
            "aENb"
        );
        assert_eq!(
            render(
                "{{ range $i, $v := .list }}{{ $i }}{{ $v }}{{ end }}",
                data.clone()
            ),
            "0p1q"
        );
        assert_eq!(render("{{ with .m }}{{ .k }}{{ end }}", data.clone()), "v");
        assert_eq!(render("{{ index .m \"k\" }}", data.clone()), "v");
        assert_eq!(
            render(
                "{{ define \"en\" }}Hi {{ .a }}{{ end }}{{ template \"en\" . }}",
                data.clone()
            ),
            "Hi x"
        );
    }

    #[test]
    fn sprig_subset() {
        let data = json!({"input": "hello world", "empty": "", "n": 5});
        assert_eq!(render("{{ .input | upper }}", data.clone()), "HELLO WORLD");
        assert_eq!(render("{{ title .input }}", data.clone()), "Hello World");
        assert_eq!(
            render("{{ $t := title .input }}{{ nospace $t }}", data.clone()),
            "HelloWorld"
        );
        assert_eq!(render("{{ cat \"a\" .input }}", data.clone()), "a hello world");
        assert_eq!(render("{{ .empty | default \"dflt\" }}", data.clone()), "dflt");
        assert_eq!(render("{{ .missing | default \"dflt\" }}", data.clone()), "dflt");
        assert_eq!(
            render("{{ trunc 5 .input }}|{{ substr 6 11 .input }}", data.clone()),
            "hello|world"
        );
        assert_eq!(
            render("{{ replace \"world\" \"there\" .input }}", data.clone()),
            "hello there"
        );
        assert_eq!(
            render("{{ add .n 2 }} {{ quote .input }}", data.clone()),
            "7 \"hello world\""
        );
        assert_eq!(
            render("{{ html \"<a href='x'>\" }}", data.clone()),
            "&lt;a href=&#39;x&#39;&gt;"
        );
        assert_eq!(render("{{ toJson (list 1 \"a\") }}", data), "[1,\"a\"]");
    }

    #[test]
    fn escaping_data() {
        let v = json_to_value(&json!({"x": "<b>&'\"+"}), true);
        let out = compile("t", "<p>{{ .x }}</p>", &[]).unwrap().execute(v).unwrap();
        assert_eq!(out, "<p>&lt;b&gt;&amp;&#39;&#34;&#43;</p>");
    }

    #[test]
    fn siblings_are_reachable() {
        let siblings = vec![(
            "email.body.html.en_US.gotmpl".to_string(),
            "lang={{ .lang }}".to_string(),
        )];
        let c = compile(
            "email.body.gotmpl",
            "{{- if eq .lang \"en_US\" -}}{{ template \"email.body.html.en_US.gotmpl\" . }}{{- end -}}",
            &siblings,
        )
        .unwrap();
        assert_eq!(
            c.execute(json_to_value(&json!({"lang": "en_US"}), false))
                .unwrap(),
            "lang=en_US"
        );
    }

    #[test]
    fn parse_errors_are_reported() {
        assert!(compile("t", "{{ if }}", &[]).is_err());
        assert!(compile("t", "{{ nosuchfunc .x }}", &[]).is_err());
    }
}
