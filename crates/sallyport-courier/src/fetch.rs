//! Loading the text behind a Kratos URI: `file://`, `base64://`, `http(s)://` (ory/x `fetcher`).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_SIZE: usize = 4 * 1024 * 1024;

/// Loads `uri`. `legacy_paths` treats a URI without a scheme as a file path (Kratos accepts that for
/// request body templates, with a deprecation warning).
pub(crate) async fn load(client: &reqwest::Client, uri: &str, legacy_paths: bool) -> Result<String, String> {
    if uri.starts_with("http://") || uri.starts_with("https://") {
        return fetch_http(client, uri, false).await;
    }
    load_local(uri, legacy_paths)
}

/// Like [`load`] for synchronous callers (configuration loading). `http(s)://` is fetched on a
/// helper thread with its own runtime, so this works inside and outside a tokio runtime.
pub(crate) fn load_blocking(
    uri: &str,
    legacy_paths: bool,
    http: &dyn crate::OutgoingHttp,
) -> Result<String, String> {
    if uri.starts_with("http://") || uri.starts_with("https://") {
        let client = http.client_for(uri)?;
        let uri = uri.to_string();
        return std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            // The connection is made on this throwaway runtime: it must not be pooled for later.
            runtime.block_on(async { fetch_http(&client, &uri, true).await })
        })
        .join()
        .map_err(|_| "template fetch thread panicked".to_string())?;
    }
    load_local(uri, legacy_paths)
}

pub(crate) fn load_local(uri: &str, legacy_paths: bool) -> Result<String, String> {
    if let Some(path) = uri.strip_prefix("file://") {
        return std::fs::read_to_string(path).map_err(|e| format!("unable to read {path}: {e}"));
    }
    if let Some(encoded) = uri.strip_prefix("base64://") {
        return decode_base64(encoded);
    }
    if legacy_paths && !uri.contains("://") && !uri.is_empty() {
        return std::fs::read_to_string(uri).map_err(|e| format!("unable to read {uri}: {e}"));
    }
    Err("unsupported URI scheme (expected file://, base64://, http:// or https://)".to_string())
}

fn decode_base64(encoded: &str) -> Result<String, String> {
    let compact: String = encoded.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = STANDARD
        .decode(&compact)
        .or_else(|_| STANDARD_NO_PAD.decode(&compact))
        .or_else(|_| URL_SAFE.decode(&compact))
        .or_else(|_| URL_SAFE_NO_PAD.decode(&compact))
        .map_err(|e| format!("invalid base64: {e}"))?;
    String::from_utf8(bytes).map_err(|_| "base64 content is not UTF-8".to_string())
}

async fn fetch_http(client: &reqwest::Client, uri: &str, close: bool) -> Result<String, String> {
    let mut request = client.get(uri).timeout(HTTP_TIMEOUT);
    if close {
        request = request.header(reqwest::header::CONNECTION, "close");
    }
    let response = request.send().await.map_err(|e| e.without_url().to_string())?;
    if !response.status().is_success() {
        return Err(format!(
            "expected status code 200 but got {}",
            response.status().as_u16()
        ));
    }
    let bytes = response.bytes().await.map_err(|e| e.without_url().to_string())?;
    if bytes.len() > MAX_SIZE {
        return Err("response too large".to_string());
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| "response is not UTF-8".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_uris() {
        assert_eq!(load_local("base64://aGVsbG8=", false).unwrap(), "hello");
        assert_eq!(load_local("base64://aGVsbG8", false).unwrap(), "hello");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.txt");
        std::fs::write(&path, "from file").unwrap();
        assert_eq!(
            load_local(&format!("file://{}", path.display()), false).unwrap(),
            "from file"
        );
        assert!(load_local(path.to_str().unwrap(), false).is_err());
        assert_eq!(load_local(path.to_str().unwrap(), true).unwrap(), "from file");
        assert!(load_local("ftp://x", true).is_err());
    }

    struct Refuse;
    impl crate::OutgoingHttp for Refuse {
        fn client_for(&self, url: &str) -> Result<reqwest::Client, String> {
            Err(format!("{url} is on a private network"))
        }
    }

    #[test]
    fn remote_uris_ask_the_policy_first() {
        let err = load_blocking("http://10.0.0.1/t.gotmpl", false, &Refuse).unwrap_err();
        assert_eq!(err, "http://10.0.0.1/t.gotmpl is on a private network");
        assert_eq!(
            load_blocking("base64://aGVsbG8=", false, &Refuse).unwrap(),
            "hello"
        );
    }
}
