//! Kratos' two pagination styles: keyset (`page_size` + opaque `page_token`, `Link: <…>; rel="next"`)
//! and the legacy `page`/`per_page` (with `X-Total-Count`).

use axum::http::{HeaderMap, HeaderValue};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use uuid::Uuid;

use sallyport_core::error::ApiError;

#[derive(Debug, Deserialize, Default)]
pub struct PageQuery {
    pub page_size: Option<String>,
    pub page_token: Option<String>,
    pub page: Option<String>,
    pub per_page: Option<String>,
}

pub enum Page {
    Keyset { after: Option<Uuid>, size: u32 },
    Legacy { page: u64, per_page: u32 },
}

pub fn encode_token(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.to_string())
}

pub fn decode_token(t: &str) -> Option<Uuid> {
    let raw = URL_SAFE_NO_PAD.decode(t).ok()?;
    Uuid::parse_str(std::str::from_utf8(&raw).ok()?).ok()
}

fn num<T: std::str::FromStr>(v: &Option<String>, name: &str) -> Result<Option<T>, ApiError> {
    match v.as_deref() {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("could not parse parameter {name}"))),
    }
}

impl PageQuery {
    pub fn parse(&self, default_size: u32, max_size: u32) -> Result<Page, ApiError> {
        if self.page.is_some() || self.per_page.is_some() {
            let page: u64 = num(&self.page, "page")?.unwrap_or(0);
            let per_page: u32 = num(&self.per_page, "per_page")?
                .unwrap_or(default_size)
                .clamp(1, max_size);
            return Ok(Page::Legacy { page, per_page });
        }
        let size: u32 = num(&self.page_size, "page_size")?
            .unwrap_or(default_size)
            .clamp(1, max_size);
        let after = match self.page_token.as_deref().filter(|t| !t.is_empty()) {
            None => None,
            Some(t) => {
                Some(decode_token(t).ok_or_else(|| ApiError::bad_request("The page token is invalid."))?)
            }
        };
        Ok(Page::Keyset { after, size })
    }
}

/// Adds the `Link` header for the next keyset page when the page was full.
pub fn keyset_link(headers: &mut HeaderMap, base: &str, size: u32, last: Option<Uuid>, full: bool) {
    let mut links = vec![format!("<{base}?page_size={size}&page_token=>; rel=\"first\"")];
    if let (Some(last), true) = (last, full) {
        links.push(format!(
            "<{base}?page_size={size}&page_token={}>; rel=\"next\"",
            encode_token(last)
        ));
    }
    if let Ok(v) = HeaderValue::from_str(&links.join(",")) {
        headers.insert("link", v);
    }
}

pub fn legacy_headers(headers: &mut HeaderMap, base: &str, page: u64, per_page: u32, total: u64) {
    let last = if total == 0 {
        0
    } else {
        (total - 1) / per_page as u64
    };
    let mut links = vec![
        format!("<{base}?page=0&per_page={per_page}>; rel=\"first\""),
        format!("<{base}?page={last}&per_page={per_page}>; rel=\"last\""),
    ];
    if page < last {
        links.push(format!(
            "<{base}?page={}&per_page={per_page}>; rel=\"next\"",
            page + 1
        ));
    }
    if page > 0 {
        links.push(format!(
            "<{base}?page={}&per_page={per_page}>; rel=\"prev\"",
            page - 1
        ));
    }
    if let Ok(v) = HeaderValue::from_str(&links.join(",")) {
        headers.insert("link", v);
    }
    headers.insert("x-total-count", HeaderValue::from(total));
}
