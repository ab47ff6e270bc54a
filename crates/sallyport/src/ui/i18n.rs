//! Texts per language: UI strings by key (`title.login`) and Kratos messages by numeric id, with
//! `{name}` placeholders filled from the message's `context`. English and German are built in; a
//! `<lang>.json` in `sallyport.ui.locale_dir` adds a language or overrides single texts.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

const BUILT_IN: [(&str, &str); 2] = [
    ("en", include_str!("locales/en.json")),
    ("de", include_str!("locales/de.json")),
];

pub struct Locales {
    texts: HashMap<String, HashMap<String, String>>,
}

impl Locales {
    pub fn load(dir: Option<&Path>) -> Locales {
        let mut texts: HashMap<String, HashMap<String, String>> = HashMap::new();
        for (lang, json) in BUILT_IN {
            let map = serde_json::from_str(json).expect("built-in catalogue is valid JSON");
            texts.insert(lang.into(), map);
        }
        if let Some(dir) = dir {
            for (lang, map) in read_dir(dir) {
                texts.entry(lang).or_default().extend(map);
            }
        }
        Locales { texts }
    }

    /// The first language of `Accept-Language` (by weight, then order) that has a catalogue; else English.
    pub fn pick(&self, accept_language: Option<&str>) -> String {
        let mut wanted: Vec<(f32, usize, String)> = accept_language
            .unwrap_or("")
            .split(',')
            .enumerate()
            .filter_map(|(i, part)| {
                let mut it = part.split(';');
                let tag = it.next()?.trim().to_ascii_lowercase();
                let q = it
                    .find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()))
                    .unwrap_or(1.0);
                (!tag.is_empty() && q > 0.0).then_some((q, i, tag))
            })
            .collect();
        wanted.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for (_, _, tag) in wanted {
            let primary = tag.split('-').next().unwrap_or("");
            for cand in [tag.as_str(), primary] {
                if self.texts.contains_key(cand) {
                    return cand.to_string();
                }
            }
        }
        "en".into()
    }

    fn lookup(&self, lang: &str, key: &str) -> Option<&str> {
        self.texts.get(lang)?.get(key).map(String::as_str)
    }

    /// A UI string: the language's, else English, else the key itself (a visible gap, never a crash).
    pub fn ui(&self, lang: &str, key: &str) -> String {
        self.lookup(lang, key)
            .or_else(|| self.lookup("en", key))
            .unwrap_or(key)
            .to_string()
    }

    /// A Kratos message (`{id, text, context}`): the catalogue's text for its id with the context
    /// filled in, else the server's (English) text.
    pub fn message(&self, lang: &str, m: &Value) -> String {
        let server = m.get("text").and_then(Value::as_str).unwrap_or("");
        let id = match m.get("id") {
            Some(Value::Number(n)) => n.to_string(),
            _ => return server.to_string(),
        };
        match self.lookup(lang, &id) {
            Some(t) => fill(t, m.get("context")),
            None => server.to_string(),
        }
    }
}

fn fill(template: &str, context: Option<&Value>) -> String {
    let Some(Value::Object(ctx)) = context else {
        return template.to_string();
    };
    let mut out = template.to_string();
    for (k, v) in ctx {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Array(_) | Value::Object(_) => continue,
            other => other.to_string(),
        };
        out = out.replace(&format!("{{{k}}}"), &text);
    }
    out
}

fn read_dir(dir: &Path) -> Vec<(String, HashMap<String, String>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        tracing::warn!(dir = %dir.display(), "sallyport.ui.locale_dir cannot be read");
        return vec![];
    };
    let mut out = vec![];
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        let Some(lang) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let parsed = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<HashMap<String, String>>(&b).ok());
        match parsed {
            Some(map) => out.push((lang.to_ascii_lowercase(), map)),
            None => {
                tracing::warn!(file = %path.display(), "locale file is not a JSON object of strings; ignored")
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_by_weight_and_falls_back_to_english() {
        let l = Locales::load(None);
        assert_eq!(l.pick(Some("fr-CH, de;q=0.9, en;q=0.8")), "de");
        assert_eq!(l.pick(Some("en;q=0.5, de-AT")), "de");
        assert_eq!(l.pick(Some("fr")), "en");
        assert_eq!(l.pick(None), "en");
        assert_eq!(l.pick(Some(";;,q=")), "en");
    }

    #[test]
    fn fills_context_into_translated_messages() {
        let l = Locales::load(None);
        let m =
            serde_json::json!({"id": 4000003, "text": "x", "context": {"min_length": 8, "actual_length": 3}});
        assert!(l.message("de", &m).contains('8'), "{}", l.message("de", &m));
        assert_eq!(l.message("en", &m), "x");
    }
}
