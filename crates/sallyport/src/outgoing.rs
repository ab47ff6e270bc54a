//! Every request Sallyport sends on its own (social sign-in, web hooks, remote identity schemas,
//! courier templates and HTTP deliveries, the breached-password check) goes through one
//! outgoing-request policy: Kratos' `clients.http.disallow_private_ip_ranges` and
//! `private_ip_exception_urls`.

use sallyport_oidc::HttpClient;

/// The policy's clients, handed to the courier crate (which knows no policy itself).
pub struct Outgoing(pub HttpClient);

impl sallyport_courier::OutgoingHttp for Outgoing {
    fn client_for(&self, url: &str) -> Result<reqwest::Client, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("{url} is not a valid URL: {e}"))?;
        self.0.client_for_url(&parsed).map_err(|e| e.to_string())
    }
}
