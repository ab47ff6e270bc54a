//! An HTTP server for tests that records every request and answers a configurable status.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::task::JoinHandle;

/// One request as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedRequest {
    pub method: String,
    /// The path without the query string.
    pub path: String,
    pub query: Option<String>,
    /// Header fields in order; names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ReceivedRequest {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 (lossy).
    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// A programmed answer: status, body, extra headers.
type Answer = (u16, Vec<u8>, Vec<(String, String)>);

struct ReceiverState {
    requests: Mutex<Vec<ReceivedRequest>>,
    status: AtomicU16,
    path_status: Mutex<HashMap<String, u16>>,
    path_delay: Mutex<HashMap<String, Duration>>,
    /// Programmed answers: status, body and extra headers per path.
    path_answer: Mutex<HashMap<String, Answer>>,
}

/// An HTTP server on `127.0.0.1:<random port>` recording every request (any method, any path).
pub struct HttpReceiver {
    addr: SocketAddr,
    state: Arc<ReceiverState>,
    task: JoinHandle<()>,
}

impl HttpReceiver {
    /// Binds `127.0.0.1:0` and serves on the current tokio runtime. Answers `200` until told otherwise.
    pub async fn start() -> HttpReceiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind HTTP receiver");
        let addr = listener.local_addr().expect("HTTP receiver address");
        let state = Arc::new(ReceiverState {
            requests: Mutex::new(Vec::new()),
            status: AtomicU16::new(200),
            path_status: Mutex::new(HashMap::new()),
            path_delay: Mutex::new(HashMap::new()),
            path_answer: Mutex::new(HashMap::new()),
        });
        let app = axum::Router::new().fallback(record).with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        HttpReceiver { addr, state, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url_for(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived or `timeout` passed; returns what arrived.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedRequest> {
        crate::poll_until(n, timeout, || self.requests()).await
    }

    /// The status answered from now on (default 200), e.g. 500 to simulate an outage.
    pub fn set_status(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }

    /// The status answered for one path (overrides [`set_status`](Self::set_status)).
    pub fn set_status_for_path(&self, path: &str, status: u16) {
        self.state
            .path_status
            .lock()
            .unwrap()
            .insert(path.to_string(), status);
    }

    /// Waits this long before answering requests to this path (a slow endpoint).
    pub fn set_delay_for_path(&self, path: &str, delay: Duration) {
        self.state
            .path_delay
            .lock()
            .unwrap()
            .insert(path.to_string(), delay);
    }

    /// Answers requests to `path` with this status and body (JSON content type unless `headers` say
    /// otherwise). Overrides [`set_status`](Self::set_status) and [`set_status_for_path`](Self::set_status_for_path).
    pub fn set_answer_for_path(
        &self,
        path: &str,
        status: u16,
        body: impl Into<Vec<u8>>,
        headers: &[(&str, &str)],
    ) {
        let headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.state
            .path_answer
            .lock()
            .unwrap()
            .insert(path.to_string(), (status, body.into(), headers));
    }

    /// Forgets everything received so far.
    pub fn clear(&self) {
        self.state.requests.lock().unwrap().clear();
    }

    /// Stops serving.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for HttpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(State(state): State<Arc<ReceiverState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match to_bytes(body, 16 * 1024 * 1024).await {
        Ok(b) => b.to_vec(),
        Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    let path = parts.uri.path().to_string();
    let received = ReceivedRequest {
        method: parts.method.to_string(),
        path: path.clone(),
        query: parts.uri.query().map(str::to_string),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    };
    state.requests.lock().unwrap().push(received);
    let delay = state.path_delay.lock().unwrap().get(&path).copied();
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let answer = state.path_answer.lock().unwrap().get(&path).cloned();
    if let Some((status, body, headers)) = answer {
        let mut b = Response::builder().status(status);
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            b = b.header("content-type", "application/json");
        }
        for (k, v) in headers {
            b = b.header(k, v);
        }
        return b
            .body(Body::from(body))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    }
    let status = state
        .path_status
        .lock()
        .unwrap()
        .get(&path)
        .copied()
        .unwrap_or_else(|| state.status.load(Ordering::SeqCst));
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from("{}"))
        .unwrap_or_else(|_| status.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_requests_and_answers_configured_status() {
        let rx = HttpReceiver::start().await;
        let client = reqwest::Client::new();
        let res = client
            .post(rx.url_for("/send?x=1"))
            .header("X-Api-Key", "k")
            .body(r#"{"a":1}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);

        rx.set_status(500);
        rx.set_status_for_path("/ok", 202);
        assert_eq!(
            client.put(rx.url_for("/other")).send().await.unwrap().status(),
            500
        );
        assert_eq!(client.get(rx.url_for("/ok")).send().await.unwrap().status(), 202);

        let reqs = rx.wait_for(3, Duration::from_secs(2)).await;
        assert_eq!(reqs.len(), 3);
        assert_eq!(reqs[0].method, "POST");
        assert_eq!(reqs[0].path, "/send");
        assert_eq!(reqs[0].query.as_deref(), Some("x=1"));
        assert_eq!(reqs[0].header("x-api-key"), Some("k"));
        assert_eq!(reqs[0].json(), Some(serde_json::json!({"a": 1})));
        assert_eq!(reqs[1].method, "PUT");
        assert_eq!(reqs[2].path, "/ok");
    }

    #[tokio::test]
    async fn delayed_path_does_not_block_others() {
        let rx = HttpReceiver::start().await;
        rx.set_delay_for_path("/slow", Duration::from_secs(5));
        let slow_url = rx.url_for("/slow");
        let slow = tokio::spawn(async move { reqwest::Client::new().post(slow_url).send().await });
        let start = std::time::Instant::now();
        let res = reqwest::Client::new()
            .post(rx.url_for("/fast"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert!(start.elapsed() < Duration::from_secs(2));
        assert_eq!(rx.wait_for(2, Duration::from_secs(2)).await.len(), 2);
        slow.abort();
        rx.stop();
    }
}
