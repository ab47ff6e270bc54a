//! Email over SMTP (Kratos `courier/smtp.go`, `smtp_channel.go`) with lettre.
//!
//! `courier.smtp.connection_uri`:
//! - `smtp://[user:pass@]host[:port]/` — STARTTLS is **mandatory**; `?disable_starttls=true` allows
//!   clear text (development only).
//! - `smtps://…` — implicit TLS.
//! - `?skip_ssl_verify=true` accepts any certificate; `?server_name=` sets the name the certificate is
//!   checked against (default: the host).

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use sallyport_config::model::Smtp;
use sallyport_core::courier::Message;

use crate::error::{CourierError, DeliveryError};
use crate::templates::sanitize_header_value;

const TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections kept for reuse (as many as the dispatcher delivers at once by default).
const POOL_SIZE: usize = 16;
/// A connection idle longer than this is checked with NOOP before it carries a message.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(5);
/// Idle longer than this and it is closed rather than checked (servers drop idle clients).
const MAX_IDLE: Duration = Duration::from_secs(30);

/// Parsed `courier.smtp` settings; the transport is built on first use (it needs a tokio runtime).
pub(crate) struct SmtpChannel {
    host: String,
    port: u16,
    tls: TlsMode,
    skip_verify: bool,
    server_name: String,
    credentials: Option<(String, String)>,
    local_name: String,
    from: Mailbox,
    headers: Vec<(HeaderName, String)>,
    /// Implicit TLS only: lettre's pooled transport.
    transport: OnceLock<Result<AsyncSmtpTransport<Tokio1Executor>, String>>,
    /// Clear text and STARTTLS: connections this channel opens itself, with `TCP_NODELAY` — lettre
    /// writes a message's body and its final dot separately and then waits for the answer, which
    /// Nagle's algorithm and delayed ACKs turn into a 40 ms stall per message.
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

impl std::fmt::Debug for SmtpChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpChannel")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("credentials", &self.credentials.as_ref().map(|_| "(hidden)"))
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsMode {
    /// `smtp://…?disable_starttls=true`
    None,
    /// `smtp://…`: STARTTLS or fail.
    StartTls,
    /// `smtps://…`
    Implicit,
}

fn query_bool(url: &url::Url, key: &str) -> bool {
    url.query_pairs()
        .find(|(k, _)| k == key)
        .is_some_and(|(_, v)| matches!(v.as_ref(), "1" | "t" | "T" | "true" | "TRUE" | "True"))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (
                (bytes[i + 1] as char).to_digit(16),
                (bytes[i + 2] as char).to_digit(16),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl SmtpChannel {
    /// `Ok(None)` when no connection URI is configured (delivery then fails like Kratos:
    /// "courier.smtp.connection_uri is not set").
    pub(crate) fn from_config(cfg: &Smtp) -> Result<Option<SmtpChannel>, CourierError> {
        let Some(uri) = cfg.connection_uri.as_deref().filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        // Never echo the URI: it holds the password.
        let invalid =
            |why: &str| CourierError::Config(format!("courier.smtp.connection_uri is invalid: {why}"));
        let url = url::Url::parse(uri).map_err(|e| invalid(&e.to_string()))?;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid("no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let tls = match url.scheme() {
            "smtp" if query_bool(&url, "disable_starttls") => TlsMode::None,
            "smtp" => TlsMode::StartTls,
            "smtps" => TlsMode::Implicit,
            _ => return Err(invalid("the scheme must be smtp or smtps")),
        };
        let port = url
            .port()
            .unwrap_or(if tls == TlsMode::Implicit { 465 } else { 25 });
        let server_name = url
            .query_pairs()
            .find(|(k, _)| k == "server_name")
            .map(|(_, v)| v.into_owned())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| host.clone());
        let credentials = (!url.username().is_empty()).then(|| {
            (
                percent_decode(url.username()),
                url.password().map(percent_decode).unwrap_or_default(),
            )
        });
        let from_address: Address = cfg
            .from_address
            .parse()
            .map_err(|e| CourierError::Config(format!("courier.smtp.from_address is invalid: {e}")))?;
        let from_name = cfg
            .from_name
            .as_deref()
            .filter(|n| !n.is_empty())
            .map(sanitize_header_value);
        let mut headers = Vec::new();
        for (name, value) in &cfg.headers {
            let header = HeaderName::new_from_ascii(name.clone()).map_err(|_| {
                CourierError::Config(format!("courier.smtp.headers: invalid header name {name:?}"))
            })?;
            headers.push((header, sanitize_header_value(value)));
        }
        Ok(Some(SmtpChannel {
            host,
            port,
            tls,
            skip_verify: query_bool(&url, "skip_ssl_verify"),
            server_name,
            credentials,
            local_name: if cfg.local_name.is_empty() {
                "localhost".into()
            } else {
                cfg.local_name.clone()
            },
            from: Mailbox::new(from_name, from_address),
            headers,
            transport: OnceLock::new(),
            idle: Mutex::new(Vec::new()),
        }))
    }

    fn build_transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let tls_parameters = || {
            TlsParameters::builder(self.server_name.clone())
                .dangerous_accept_invalid_certs(self.skip_verify)
                .dangerous_accept_invalid_hostnames(self.skip_verify)
                .build_rustls()
                .map_err(|e| format!("unable to set up TLS: {e}"))
        };
        let tls = match self.tls {
            TlsMode::None => Tls::None,
            TlsMode::StartTls => Tls::Required(tls_parameters()?),
            TlsMode::Implicit => Tls::Wrapper(tls_parameters()?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.host.clone())
            .port(self.port)
            .tls(tls)
            .timeout(Some(TIMEOUT))
            .hello_name(ClientId::Domain(self.local_name.clone()))
            .pool_config(
                PoolConfig::new()
                    .max_size(8)
                    .idle_timeout(Duration::from_secs(30)),
            );
        if let Some((user, pass)) = &self.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), pass.clone()));
        }
        Ok(builder.build())
    }

    pub(crate) async fn send(&self, msg: &Message, html: Option<String>) -> Result<(), DeliveryError> {
        // Re-validate the stored recipient: it goes into an SMTP command and a header.
        if msg.recipient.contains(['\r', '\n']) {
            return Err(DeliveryError::permanent(
                "email recipient is not a valid email address",
            ));
        }
        let to: Address = msg
            .recipient
            .trim()
            .parse()
            .map_err(|_| DeliveryError::permanent("email recipient is not a valid email address"))?;
        let mut builder = lettre::Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to))
            .subject(sanitize_header_value(&msg.subject));
        for (name, value) in &self.headers {
            builder = builder.raw_header(HeaderValue::new(name.clone(), value.clone()));
        }
        let email = match html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(msg.body.clone(), html)),
            None => builder.singlepart(SinglePart::plain(msg.body.clone())),
        }
        .map_err(|e| DeliveryError::permanent(format!("unable to build the email: {e}")))?;

        if self.tls != TlsMode::Implicit {
            let envelope = email.envelope().clone();
            let bytes = email.formatted();
            let mut conn = self.checkout().await?;
            let sent = conn.send(&envelope, &bytes).await;
            // A connection that failed mid-transaction is in an unknown state: never reused.
            if sent.is_ok() && !conn.has_broken() {
                self.checkin(conn);
            } else {
                conn.abort().await;
            }
            return sent.map(|_| ()).map_err(smtp_error);
        }
        let transport = match self.transport.get_or_init(|| self.build_transport()) {
            Ok(t) => t,
            Err(e) => return Err(DeliveryError::transient(e.clone())),
        };
        transport.send(email).await.map(|_| ()).map_err(smtp_error)
    }

    /// An idle connection that still answers, or a new one.
    async fn checkout(&self) -> Result<AsyncSmtpConnection, DeliveryError> {
        loop {
            let next = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let Some((mut conn, since)) = next else { break };
            let idle = since.elapsed();
            if idle > MAX_IDLE {
                conn.abort().await;
                continue;
            }
            if idle <= CHECK_AFTER_IDLE || conn.test_connected().await {
                return Ok(conn);
            }
            conn.abort().await;
        }
        self.connect().await
    }

    fn checkin(&self, conn: AsyncSmtpConnection) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < POOL_SIZE {
            idle.push((conn, Instant::now()));
        }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, DeliveryError> {
        let io = |e: std::io::Error| {
            DeliveryError::transient(format!("failed to send email via smtp: connection error: {e}"))
        };
        let tcp = tokio::time::timeout(
            TIMEOUT,
            tokio::net::TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| DeliveryError::transient("failed to send email via smtp: connection timed out"))?
        .map_err(io)?;
        tcp.set_nodelay(true).map_err(io)?;
        let hello = ClientId::Domain(self.local_name.clone());
        let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &hello)
            .await
            .map_err(smtp_error)?;
        if self.tls == TlsMode::StartTls {
            let params = TlsParameters::builder(self.server_name.clone())
                .dangerous_accept_invalid_certs(self.skip_verify)
                .dangerous_accept_invalid_hostnames(self.skip_verify)
                .build_rustls()
                .map_err(|e| DeliveryError::transient(format!("unable to set up TLS: {e}")))?;
            conn.starttls(params, &hello).await.map_err(smtp_error)?;
        }
        if let Some((user, pass)) = &self.credentials {
            conn.auth(DEFAULT_MECHANISMS, &Credentials::new(user.clone(), pass.clone()))
                .await
                .map_err(smtp_error)?;
        }
        Ok(conn)
    }
}

fn smtp_error(e: lettre::transport::smtp::Error) -> DeliveryError {
    let mut err = DeliveryError {
        message: format!("failed to send email via smtp: {e}"),
        code: None,
        // Kratos abandons a message the server answered with 5xx.
        permanent: e.is_permanent(),
    };
    if let Some(code) = e.status() {
        err.code = Some(u16::from(code));
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smtp(uri: &str) -> Smtp {
        Smtp {
            connection_uri: Some(uri.into()),
            ..Smtp::default()
        }
    }

    #[test]
    fn parses_connection_uris() {
        let c = SmtpChannel::from_config(&smtp("smtp://us%40er:p%40ss@mail.example.org:1025/"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.tls),
            ("mail.example.org", 1025, TlsMode::StartTls)
        );
        assert_eq!(c.credentials, Some(("us@er".into(), "p@ss".into())));
        assert_eq!(c.server_name, "mail.example.org");
        assert!(!format!("{c:?}").contains("p@ss"));

        let c = SmtpChannel::from_config(&smtp("smtp://h/?disable_starttls=true"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.port, c.tls, c.credentials.is_none()),
            (25, TlsMode::None, true)
        );

        let c = SmtpChannel::from_config(&smtp("smtps://h/?skip_ssl_verify=true&server_name=other"))
            .unwrap()
            .unwrap();
        assert_eq!((c.port, c.tls, c.skip_verify), (465, TlsMode::Implicit, true));
        assert_eq!(c.server_name, "other");

        assert!(SmtpChannel::from_config(&Smtp::default()).unwrap().is_none());
        let err = SmtpChannel::from_config(&smtp("http://user:secret@h/")).unwrap_err();
        assert!(!err.to_string().contains("secret"));
    }
}
