//! Headers every page carries: a strict Content-Security-Policy (no inline script or style, nothing
//! from third parties but the configured logo), no framing, no MIME sniffing, no referrer leaks of
//! flow ids.

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

pub async fn headers(req: Request, next: Next) -> Response {
    let csp = req
        .extensions()
        .get::<std::sync::Arc<super::pages::Ui>>()
        .map(|ui| ui.csp.clone());
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    if let Some(csp) = csp.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    // Pages are in the reader's language: a shared cache must not hand German to the next reader.
    h.append(header::VARY, HeaderValue::from_static("Accept-Language"));
    res
}

/// `img-src` admits `data:` for the TOTP QR code (Kratos sends it as a data URI) and the logo's origin.
pub fn policy(logo_url: Option<&str>) -> String {
    let logo = logo_url
        .and_then(|u| url::Url::parse(u).ok())
        .map(|u| format!(" {}", u.origin().ascii_serialization()))
        .unwrap_or_default();
    format!(
        "default-src 'none'; style-src 'self'; img-src 'self' data:{logo}; script-src 'self'; \
         connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
}
