//! Test doubles for Sallyport's outbound integrations, used as a dev-dependency by other crates' tests:
//!
//! - [`SmtpSink`]: a small SMTP server on `127.0.0.1:0` that accepts and stores every mail (no TLS).
//! - [`HttpReceiver`]: an HTTP server on `127.0.0.1:0` that records every request and answers a
//!   configurable status (to simulate web-hook / HTTP-courier endpoints and their outages).
//!
//! Both run on the current tokio runtime and stop when dropped (or on `stop()`).

mod http;
mod mime;
mod smtp;

pub use http::{HttpReceiver, ReceivedRequest};
pub use smtp::{AuthRecord, Mail, SmtpSink};

use std::time::Duration;

/// Polls `probe` every 10 ms until it returns at least `n` items or `timeout` passes; returns the
/// last list seen (which may be shorter than `n` on timeout — callers assert on it).
pub(crate) async fn poll_until<T>(n: usize, timeout: Duration, mut probe: impl FnMut() -> Vec<T>) -> Vec<T> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let items = probe();
        if items.len() >= n || tokio::time::Instant::now() >= deadline {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
