//! Reading a schema document from `file://`, a plain path, `base64://` or `http(s)://`.

use std::io::Read;
use std::time::Duration;

use base64::Engine;

/// Kratos refuses schema bodies above 1 MiB so a hostile URL cannot exhaust memory.
pub(crate) const MAX_SCHEMA_BYTES: usize = 1 << 20;

const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds the GET for a remote schema: where the deployment's outgoing-request policy
/// (`clients.http.disallow_private_ip_ranges`) is applied, or refuses the URL with the reason.
pub type RemoteGet<'a> = dyn Fn(&str) -> Result<reqwest::RequestBuilder, String> + Send + Sync + 'a;

/// Remote schemas fetched with `client` as it is, without an outgoing-request policy.
pub fn plain(
    client: &reqwest::Client,
) -> impl Fn(&str) -> Result<reqwest::RequestBuilder, String> + Send + Sync + '_ {
    move |url| Ok(client.get(url))
}

pub(crate) async fn fetch(url: &str, http: &RemoteGet<'_>) -> Result<Vec<u8>, String> {
    if let Some(encoded) = url.strip_prefix("base64://") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|e| format!("unable to decode std encoded base64 string: {e}"))?;
        return within_limit(raw);
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        return fetch_http(url, http).await;
    }
    // Kratos' file loader strips the scheme and opens the rest, so `file://./x.json` and
    // `file://x.json` are relative to the working directory and `file:///x.json` is absolute.
    let path = url.strip_prefix("file://").unwrap_or(url);
    if path.contains("://") {
        return Err(format!(
            "unsupported URL scheme (expected file://, base64:// or http(s)://): {url}"
        ));
    }
    let file = std::fs::File::open(path).map_err(|e| format!("unable to open {path}: {e}"))?;
    let mut raw = Vec::new();
    file.take(MAX_SCHEMA_BYTES as u64 + 1)
        .read_to_end(&mut raw)
        .map_err(|e| format!("unable to read {path}: {e}"))?;
    within_limit(raw)
}

async fn fetch_http(url: &str, http: &RemoteGet<'_>) -> Result<Vec<u8>, String> {
    let mut response = http(url)
        .map_err(|e| format!("unable to fetch {url}: {e}"))?
        .timeout(HTTP_TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("unable to fetch {url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!(
            "unable to fetch {url}: expected status 200 but got {}",
            response.status().as_u16()
        ));
    }
    let mut raw = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("unable to read {url}: {e}"))?
    {
        raw.extend_from_slice(&chunk);
        if raw.len() > MAX_SCHEMA_BYTES {
            break;
        }
    }
    within_limit(raw)
}

fn within_limit(raw: Vec<u8>) -> Result<Vec<u8>, String> {
    if raw.len() > MAX_SCHEMA_BYTES {
        Err(format!(
            "identity schema rejected: body exceeds {MAX_SCHEMA_BYTES} bytes"
        ))
    } else {
        Ok(raw)
    }
}
