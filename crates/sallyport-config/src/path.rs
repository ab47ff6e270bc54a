//! Key paths into a JSON document (`selfservice.flows.login.ui_url`, `identity.schemas.0.url`).

use serde_json::{Map, Value};

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// `a.b.0.c`
pub(crate) fn dotted(segs: &[Seg]) -> String {
    let mut out = String::new();
    for (i, seg) in segs.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        match seg {
            Seg::Key(k) => out.push_str(k),
            Seg::Index(n) => out.push_str(&n.to_string()),
        }
    }
    out
}

/// Does a concrete path match a schema path (whose `Index` segments match any index)?
pub(crate) fn matches_pattern(pattern: &[Seg], concrete: &[Seg]) -> bool {
    pattern.len() == concrete.len()
        && pattern.iter().zip(concrete).all(|(p, c)| match (p, c) {
            (Seg::Index(_), Seg::Index(_)) => true,
            (Seg::Key(a), Seg::Key(b)) => a == b,
            _ => false,
        })
}

pub(crate) fn get<'a>(doc: &'a Value, segs: &[Seg]) -> Option<&'a Value> {
    segs.iter().try_fold(doc, |node, seg| match seg {
        Seg::Key(k) => node.as_object()?.get(k),
        Seg::Index(i) => node.as_array()?.get(*i),
    })
}

/// Sets `value` at `segs`, creating objects/arrays on the way (a scalar in the way is replaced).
/// An index past the end of an array appends, padding with empty objects.
pub(crate) fn set(doc: &mut Value, segs: &[Seg], value: Value) {
    let Some((first, rest)) = segs.split_first() else {
        *doc = value;
        return;
    };
    let slot = match first {
        Seg::Key(k) => {
            if !doc.is_object() {
                *doc = Value::Object(Map::new());
            }
            let map = doc.as_object_mut().expect("just made an object");
            map.entry(k.clone()).or_insert(Value::Null)
        }
        Seg::Index(i) => {
            if !doc.is_array() {
                *doc = Value::Array(Vec::new());
            }
            let items = doc.as_array_mut().expect("just made an array");
            while items.len() <= *i {
                items.push(Value::Object(Map::new()));
            }
            &mut items[*i]
        }
    };
    set(slot, rest, value);
}

/// Deep merge: objects merge key by key, everything else (arrays included) is replaced by `overlay`.
pub(crate) fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (k, v) in overlay {
                match base.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        base.insert(k, v);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

/// Parses a JSON-pointer-like sequence of segments from the validator into our path type.
pub(crate) fn from_location(location: &jsonschema::paths::Location) -> Vec<Seg> {
    location
        .segments()
        .map(|s| match s {
            jsonschema::paths::LocationSegment::Property(p) => Seg::Key(p.into_owned()),
            jsonschema::paths::LocationSegment::Index(i) => Seg::Index(i),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_is_deep_and_replaces_arrays() {
        let mut a = json!({"a": {"b": 1, "c": [1, 2]}, "d": "x"});
        merge(&mut a, json!({"a": {"c": [3], "e": true}}));
        assert_eq!(a, json!({"a": {"b": 1, "c": [3], "e": true}, "d": "x"}));
    }

    #[test]
    fn set_creates_and_pads() {
        let mut doc = json!({});
        set(
            &mut doc,
            &[Seg::Key("a".into()), Seg::Index(1), Seg::Key("b".into())],
            json!(2),
        );
        assert_eq!(doc, json!({"a": [{}, {"b": 2}]}));
        assert_eq!(dotted(&[Seg::Key("a".into()), Seg::Index(1)]), "a.1");
    }
}
