//! Which HTTP client may reach a URL. The embedding server applies its outgoing-request policy
//! (Kratos' `clients.http.disallow_private_ip_ranges`); the courier itself knows no policy.

use std::time::Duration;

/// Picks the client for one URL, or says why that URL may not be reached.
pub trait OutgoingHttp: Send + Sync {
    fn client_for(&self, url: &str) -> Result<reqwest::Client, String>;
}

/// Every URL through one plain client: for tests and callers without a policy.
pub struct Unrestricted(reqwest::Client);

impl Unrestricted {
    pub fn new() -> Result<Unrestricted, String> {
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .map(Unrestricted)
            .map_err(|e| format!("unable to build the HTTP client: {e}"))
    }
}

impl OutgoingHttp for Unrestricted {
    fn client_for(&self, _url: &str) -> Result<reqwest::Client, String> {
        Ok(self.0.clone())
    }
}
