//! A minimal SMTP server for tests (RFC 5321 subset, no TLS).
//!
//! Speaks EHLO/HELO, MAIL FROM, RCPT TO, DATA (with dot-unstuffing), RSET, NOOP, VRFY, QUIT and
//! `AUTH PLAIN` / `AUTH LOGIN` (advertised, so clients with credentials log in; the credentials are
//! recorded, never checked). STARTTLS is **not** offered: a client that requires it must fail.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::mime;

/// One delivered mail.
#[derive(Debug, Clone, PartialEq)]
pub struct Mail {
    /// Envelope sender (`MAIL FROM`), without angle brackets.
    pub from: String,
    /// Envelope recipients (`RCPT TO`), in order.
    pub to: Vec<String>,
    /// The DATA section as received, after dot-unstuffing (CRLF line endings).
    pub data: String,
    /// Header fields in order, unfolded, with RFC 2047 encoded words decoded.
    pub headers: Vec<(String, String)>,
    /// The decoded `Subject` header (empty when absent).
    pub subject: String,
    /// The decoded `text/plain` body (the `text/plain` part of a multipart message), `\n` line endings.
    pub text_body: String,
    /// The decoded `text/html` part, when there is one.
    pub html_body: Option<String>,
    /// The user name given with `AUTH` on the connection that delivered this mail.
    pub auth_username: Option<String>,
}

impl Mail {
    /// The first header with this name (case-insensitive), decoded.
    pub fn header(&self, name: &str) -> Option<&str> {
        mime::header(&self.headers, name)
    }

    /// Every header with this name (case-insensitive), decoded.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn parse(from: String, to: Vec<String>, data: String, auth_username: Option<String>) -> Mail {
        let (head, body) = mime::split_message(&data);
        let raw_headers = mime::parse_headers(head);
        let mut bodies = mime::Bodies::default();
        mime::extract_bodies(&raw_headers, body, &mut bodies);
        let headers: Vec<(String, String)> = raw_headers
            .iter()
            .map(|(k, v)| (k.clone(), mime::decode_words(v)))
            .collect();
        let subject = mime::header(&headers, "Subject").unwrap_or_default().to_string();
        Mail {
            from,
            to,
            headers,
            subject,
            text_body: bodies.text.unwrap_or_default(),
            html_body: bodies.html,
            auth_username,
            data,
        }
    }
}

/// Credentials a client presented with `AUTH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRecord {
    /// `PLAIN` or `LOGIN`.
    pub mechanism: String,
    pub username: String,
    pub password: String,
}

#[derive(Default)]
struct State {
    mails: Mutex<Vec<Mail>>,
    auths: Mutex<Vec<AuthRecord>>,
    down: AtomicBool,
    connections: AtomicUsize,
    rejected: Mutex<HashSet<String>>,
    delays: Mutex<HashMap<String, Duration>>,
}

/// An SMTP server on `127.0.0.1:<random port>` that stores every mail it accepts.
pub struct SmtpSink {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl SmtpSink {
    /// Binds `127.0.0.1:0` and starts accepting connections on the current tokio runtime.
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind SMTP sink");
        let addr = listener.local_addr().expect("SMTP sink address");
        let state = Arc::new(State::default());
        let accept_state = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = accept_state.clone();
                tokio::spawn(async move {
                    let _ = handle_connection(stream, state).await;
                });
            }
        });
        SmtpSink { addr, state, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// A Kratos `courier.smtp.connection_uri` for this sink (clear text: it offers no STARTTLS).
    pub fn url(&self) -> String {
        format!("smtp://{}/?disable_starttls=true", self.addr)
    }

    /// Every mail accepted so far, in delivery order.
    pub fn messages(&self) -> Vec<Mail> {
        self.state.mails.lock().unwrap().clone()
    }

    /// Waits until at least `n` mails arrived or `timeout` passed; returns what arrived.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Mail> {
        crate::poll_until(n, timeout, || self.messages()).await
    }

    /// Every `AUTH` seen so far.
    pub fn auths(&self) -> Vec<AuthRecord> {
        self.state.auths.lock().unwrap().clone()
    }

    /// How many connections were accepted (including those refused while down).
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// While down, every new connection gets `421` and is closed (an outage).
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    /// Answers `550` to `RCPT TO` for this address (case-insensitive).
    pub fn reject_recipient(&self, address: &str) {
        self.state
            .rejected
            .lock()
            .unwrap()
            .insert(address.to_ascii_lowercase());
    }

    /// Waits this long before answering `RCPT TO` for this address (a slow recipient).
    pub fn delay_recipient(&self, address: &str, delay: Duration) {
        self.state
            .delays
            .lock()
            .unwrap()
            .insert(address.to_ascii_lowercase(), delay);
    }

    /// Stops accepting connections (open sessions end when their client disconnects).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Session {
    from: Option<String>,
    to: Vec<String>,
    auth_username: Option<String>,
}

const MAX_LINE: usize = 1 << 20;

async fn handle_connection(stream: TcpStream, state: Arc<State>) -> std::io::Result<()> {
    state.connections.fetch_add(1, Ordering::SeqCst);
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    if state.down.load(Ordering::SeqCst) {
        write
            .write_all(b"421 4.3.2 Service not available, closing transmission channel\r\n")
            .await?;
        write.shutdown().await?;
        return Ok(());
    }
    write.write_all(b"220 sallyport-testkit ESMTP ready\r\n").await?;
    let mut session = Session {
        from: None,
        to: Vec::new(),
        auth_username: None,
    };
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 || line.len() > MAX_LINE {
            return Ok(());
        }
        let command = line.trim_end_matches(['\r', '\n']).to_string();
        let (verb, arg) = match command.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.trim().to_string()),
            None => (command.to_ascii_uppercase(), String::new()),
        };
        let reply: String = match verb.as_str() {
            "EHLO" => {
                "250-sallyport-testkit\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 AUTH PLAIN LOGIN\r\n".into()
            }
            "HELO" => "250 sallyport-testkit\r\n".into(),
            "MAIL" => match path_arg(&arg, "FROM:") {
                Some(from) => {
                    session.from = Some(from);
                    session.to.clear();
                    "250 2.1.0 OK\r\n".into()
                }
                None => "501 5.5.4 Syntax: MAIL FROM:<address>\r\n".into(),
            },
            "RCPT" => match (session.from.is_some(), path_arg(&arg, "TO:")) {
                (false, _) => "503 5.5.1 Need MAIL first\r\n".into(),
                (true, None) => "501 5.5.4 Syntax: RCPT TO:<address>\r\n".into(),
                (true, Some(to)) => {
                    let key = to.to_ascii_lowercase();
                    let delay = state.delays.lock().unwrap().get(&key).copied();
                    if let Some(delay) = delay {
                        tokio::time::sleep(delay).await;
                    }
                    if state.rejected.lock().unwrap().contains(&key) {
                        "550 5.1.1 Recipient address rejected: mailbox unavailable\r\n".into()
                    } else {
                        session.to.push(to);
                        "250 2.1.5 OK\r\n".into()
                    }
                }
            },
            "DATA" => {
                if session.from.is_none() || session.to.is_empty() {
                    "503 5.5.1 Need RCPT first\r\n".into()
                } else {
                    write
                        .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                        .await?;
                    let Some(data) = read_data(&mut reader).await? else {
                        return Ok(());
                    };
                    let mail = Mail::parse(
                        session.from.take().unwrap_or_default(),
                        std::mem::take(&mut session.to),
                        data,
                        session.auth_username.clone(),
                    );
                    state.mails.lock().unwrap().push(mail);
                    "250 2.0.0 OK queued\r\n".into()
                }
            }
            "AUTH" => {
                let mut parts = arg.splitn(2, ' ');
                let mechanism = parts.next().unwrap_or("").to_ascii_uppercase();
                let initial = parts.next().map(str::to_string);
                match auth(&mechanism, initial, &mut reader, &mut write).await? {
                    Some((username, password)) => {
                        session.auth_username = Some(username.clone());
                        state.auths.lock().unwrap().push(AuthRecord {
                            mechanism,
                            username,
                            password,
                        });
                        "235 2.7.0 Authentication successful\r\n".into()
                    }
                    None => "535 5.7.8 Authentication credentials invalid\r\n".into(),
                }
            }
            "RSET" => {
                session.from = None;
                session.to.clear();
                "250 2.0.0 OK\r\n".into()
            }
            "NOOP" => "250 2.0.0 OK\r\n".into(),
            "VRFY" => "252 2.0.0 Cannot VRFY user\r\n".into(),
            "STARTTLS" => "454 4.7.0 TLS not available\r\n".into(),
            "QUIT" => {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                write.shutdown().await?;
                return Ok(());
            }
            _ => "502 5.5.2 Command not recognized\r\n".into(),
        };
        write.write_all(reply.as_bytes()).await?;
    }
}

/// `FROM:<a@b.c> BODY=8BITMIME` → `a@b.c` (ESMTP parameters ignored).
fn path_arg(arg: &str, prefix: &str) -> Option<String> {
    if arg.len() < prefix.len() || !arg[..prefix.len()].eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = arg[prefix.len()..].trim_start();
    let path = rest.split_whitespace().next().unwrap_or("");
    let inner = path.strip_prefix('<')?.strip_suffix('>')?;
    Some(inner.to_string())
}

/// Reads the DATA section up to the lone `.` line, undoing dot-stuffing.
async fn read_data<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R) -> std::io::Result<Option<String>> {
    let mut data = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        let content = line.trim_end_matches(['\r', '\n']);
        if content == "." {
            return Ok(Some(data));
        }
        let content = content.strip_prefix('.').unwrap_or(content);
        data.push_str(content);
        data.push_str("\r\n");
        if data.len() > 64 * MAX_LINE {
            return Ok(None);
        }
    }
}

async fn auth<R, W>(
    mechanism: &str,
    initial: Option<String>,
    reader: &mut R,
    write: &mut W,
) -> std::io::Result<Option<(String, String)>>
where
    R: tokio::io::AsyncBufRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    async fn ask<R, W>(prompt: &str, reader: &mut R, write: &mut W) -> std::io::Result<Option<String>>
    where
        R: tokio::io::AsyncBufRead + Unpin,
        W: tokio::io::AsyncWrite + Unpin,
    {
        write.write_all(format!("334 {prompt}\r\n").as_bytes()).await?;
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        Ok(Some(line.trim().to_string()))
    }
    fn decode(s: &str) -> Option<String> {
        String::from_utf8(STANDARD.decode(s).ok()?).ok()
    }
    match mechanism {
        "PLAIN" => {
            let encoded = match initial {
                Some(i) if i != "=" => i,
                _ => match ask("", reader, write).await? {
                    Some(s) => s,
                    None => return Ok(None),
                },
            };
            let Some(decoded) = decode(&encoded) else {
                return Ok(None);
            };
            // authzid \0 authcid \0 password
            let mut fields = decoded.split('\0');
            let _authzid = fields.next();
            match (fields.next(), fields.next()) {
                (Some(user), Some(pass)) => Ok(Some((user.to_string(), pass.to_string()))),
                _ => Ok(None),
            }
        }
        "LOGIN" => {
            let user = match initial {
                Some(i) => decode(&i),
                None => match ask("VXNlcm5hbWU6", reader, write).await? {
                    Some(s) => decode(&s),
                    None => return Ok(None),
                },
            };
            let pass = match ask("UGFzc3dvcmQ6", reader, write).await? {
                Some(s) => decode(&s),
                None => return Ok(None),
            };
            Ok(user.zip(pass))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    struct Client {
        reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
        write: tokio::net::tcp::OwnedWriteHalf,
    }

    impl Client {
        async fn connect(sink: &SmtpSink) -> (Client, String) {
            let stream = TcpStream::connect(sink.addr()).await.unwrap();
            let (r, w) = stream.into_split();
            let mut c = Client {
                reader: BufReader::new(r),
                write: w,
            };
            let greeting = c.reply().await;
            (c, greeting)
        }
        /// Reads one (possibly multi-line) reply.
        async fn reply(&mut self) -> String {
            let mut all = String::new();
            loop {
                let mut line = String::new();
                if self.reader.read_line(&mut line).await.unwrap() == 0 {
                    return all;
                }
                all.push_str(&line);
                if line.as_bytes().get(3) != Some(&b'-') {
                    return all;
                }
            }
        }
        async fn cmd(&mut self, line: &str) -> String {
            self.write
                .write_all(format!("{line}\r\n").as_bytes())
                .await
                .unwrap();
            self.reply().await
        }
    }

    #[tokio::test]
    async fn full_session_with_dot_unstuffing_and_auth_plain() {
        let sink = SmtpSink::start().await;
        let (mut c, greeting) = Client::connect(&sink).await;
        assert!(greeting.starts_with("220"));
        let ehlo = c.cmd("EHLO client.example").await;
        assert!(ehlo.contains("AUTH PLAIN LOGIN"));
        assert!(!ehlo.contains("STARTTLS"));
        let token = STANDARD.encode("\0alice\0s3cret");
        assert!(c.cmd(&format!("AUTH PLAIN {token}")).await.starts_with("235"));
        assert!(c.cmd("NOOP").await.starts_with("250"));
        assert!(
            c.cmd("MAIL FROM:<from@example.org> BODY=8BITMIME")
                .await
                .starts_with("250")
        );
        assert!(c.cmd("RCPT TO:<to@example.org>").await.starts_with("250"));
        assert!(c.cmd("DATA").await.starts_with("354"));
        let data = "From: from@example.org\r\nSubject: =?utf-8?b?SMOpbGxv?=\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nline one=\r\n continued\r\n..dotted\r\n.\r\n";
        c.write.write_all(data.as_bytes()).await.unwrap();
        assert!(c.reply().await.starts_with("250"));
        assert!(c.cmd("QUIT").await.starts_with("221"));

        let mails = sink.wait_for(1, Duration::from_secs(2)).await;
        assert_eq!(mails.len(), 1);
        let m = &mails[0];
        assert_eq!(m.from, "from@example.org");
        assert_eq!(m.to, vec!["to@example.org".to_string()]);
        assert_eq!(m.subject, "Héllo");
        assert_eq!(m.text_body, "line one continued\n.dotted\n");
        assert_eq!(m.auth_username.as_deref(), Some("alice"));
        assert_eq!(
            sink.auths(),
            vec![AuthRecord {
                mechanism: "PLAIN".into(),
                username: "alice".into(),
                password: "s3cret".into()
            }]
        );
    }

    #[tokio::test]
    async fn auth_login_rset_and_rejected_recipient() {
        let sink = SmtpSink::start().await;
        sink.reject_recipient("Bad@Example.org");
        let (mut c, _) = Client::connect(&sink).await;
        c.cmd("HELO x").await;
        assert!(c.cmd("AUTH LOGIN").await.starts_with("334 VXNlcm5hbWU6"));
        assert!(
            c.cmd(&STANDARD.encode("bob"))
                .await
                .starts_with("334 UGFzc3dvcmQ6")
        );
        assert!(c.cmd(&STANDARD.encode("pw")).await.starts_with("235"));
        assert_eq!(sink.auths()[0].username, "bob");
        assert!(c.cmd("RCPT TO:<x@y.z>").await.starts_with("503"));
        c.cmd("MAIL FROM:<a@b.c>").await;
        assert!(c.cmd("RCPT TO:<bad@example.org>").await.starts_with("550"));
        assert!(c.cmd("DATA").await.starts_with("503"));
        assert!(c.cmd("RSET").await.starts_with("250"));
        assert!(c.cmd("STARTTLS").await.starts_with("454"));
        assert!(c.cmd("FOO").await.starts_with("502"));
        assert!(sink.messages().is_empty());
    }

    #[tokio::test]
    async fn down_answers_421_and_closes() {
        let sink = SmtpSink::start().await;
        sink.set_down(true);
        let (mut c, greeting) = Client::connect(&sink).await;
        assert!(greeting.starts_with("421"));
        let mut rest = Vec::new();
        c.reader.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        sink.set_down(false);
        let (_c, greeting) = Client::connect(&sink).await;
        assert!(greeting.starts_with("220"));
        assert_eq!(sink.connections(), 2);
    }

    #[tokio::test]
    async fn url_and_wait_for_timeout() {
        let sink = SmtpSink::start().await;
        assert_eq!(
            sink.url(),
            format!("smtp://127.0.0.1:{}/?disable_starttls=true", sink.port())
        );
        let start = std::time::Instant::now();
        assert!(sink.wait_for(1, Duration::from_millis(50)).await.is_empty());
        assert!(start.elapsed() >= Duration::from_millis(50));
        sink.stop();
    }
}
