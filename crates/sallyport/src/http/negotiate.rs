//! Whether a request wants JSON, decided exactly like Kratos' `x.IsJSONRequest`: Go's gddo content
//! negotiation over the offers `text/html, text/*, */*, application/json` (default `text/html`), or a
//! `Content-Type` that is exactly `application/json`.

use axum::http::HeaderMap;
use axum::http::header::{ACCEPT, CONTENT_TYPE};

const OFFERS: [&str; 4] = ["text/html", "text/*", "*/*", "application/json"];

struct Spec {
    value: String,
    q: f64,
}

fn parse_accept(headers: &HeaderMap) -> Vec<Spec> {
    let mut specs = vec![];
    for h in headers.get_all(ACCEPT) {
        let Ok(h) = h.to_str() else { continue };
        for part in h.split(',') {
            let mut pieces = part.split(';');
            let value = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
            if value.is_empty() {
                continue;
            }
            let mut q = 1.0;
            for p in pieces {
                if let Some((k, v)) = p.split_once('=')
                    && k.trim() == "q"
                {
                    q = v.trim().parse().unwrap_or(0.0);
                }
            }
            specs.push(Spec { value, q });
        }
    }
    specs
}

pub fn negotiate(headers: &HeaderMap) -> &'static str {
    let specs = parse_accept(headers);
    let mut best_offer = "text/html";
    let mut best_q = -1.0;
    let mut best_wild = 3;
    for offer in OFFERS {
        for spec in &specs {
            if spec.q == 0.0 || spec.q < best_q {
                continue;
            }
            if spec.value == "*/*" {
                if spec.q > best_q || best_wild > 2 {
                    best_q = spec.q;
                    best_wild = 2;
                    best_offer = offer;
                }
            } else if let Some(prefix) = spec.value.strip_suffix('*') {
                if offer.starts_with(prefix) && (spec.q > best_q || best_wild > 1) {
                    best_q = spec.q;
                    best_wild = 1;
                    best_offer = offer;
                }
            } else if spec.value == offer && (spec.q > best_q || best_wild > 0) {
                best_q = spec.q;
                best_wild = 0;
                best_offer = offer;
            }
        }
    }
    best_offer
}

pub fn is_json_request(headers: &HeaderMap) -> bool {
    negotiate(headers) == "application/json"
        || headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) == Some("application/json")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(accept: Option<&str>, ct: Option<&str>) -> HeaderMap {
        let mut m = HeaderMap::new();
        if let Some(a) = accept {
            m.insert(ACCEPT, a.parse().unwrap());
        }
        if let Some(c) = ct {
            m.insert(CONTENT_TYPE, c.parse().unwrap());
        }
        m
    }

    #[test]
    fn matches_kratos_negotiation() {
        assert!(!is_json_request(&h(None, None)));
        assert!(!is_json_request(&h(Some("*/*"), None)));
        assert!(is_json_request(&h(Some("application/json"), None)));
        assert!(is_json_request(&h(Some("application/json, */*"), None)));
        assert!(!is_json_request(&h(
            Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
            None
        )));
        assert!(is_json_request(&h(None, Some("application/json"))));
        assert!(!is_json_request(&h(
            None,
            Some("application/json; charset=utf-8")
        )));
        assert!(is_json_request(&h(
            Some("text/html;q=0.5, application/json"),
            None
        )));
    }
}
