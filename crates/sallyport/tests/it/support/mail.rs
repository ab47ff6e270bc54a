//! A loopback SMTP server the courier delivers to, and helpers to read codes out of the mail.

use std::time::Duration;

use serde_json::{Value, json};

use sallyport_testkit::{Mail, SmtpSink};

pub struct MailServer {
    pub sink: SmtpSink,
    /// How many mails per recipient `next_to` has handed out already.
    seen: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

impl MailServer {
    pub async fn start() -> MailServer {
        MailServer {
            sink: SmtpSink::start().await,
            seen: Default::default(),
        }
    }

    /// `overrides` plus a courier that delivers to this sink quickly.
    pub fn config(&self, mut overrides: Value) -> Value {
        super::deep_merge(
            &mut overrides,
            json!({"courier": {"smtp": {"connection_uri": self.sink.url(), "from_address": "no-reply@sallyport.test"}, "worker": {"pull_wait": "50ms"}}}),
        );
        overrides
    }

    /// The newest mail to `to` that arrived after the last one this helper handed out for that address.
    pub async fn next_to(&self, to: &str) -> Mail {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let seen = self.seen.lock().unwrap().get(to).copied().unwrap_or(0);
            let mails: Vec<Mail> = self
                .sink
                .messages()
                .into_iter()
                .filter(|m| m.to.iter().any(|t| t == to))
                .collect();
            if mails.len() > seen {
                self.seen.lock().unwrap().insert(to.to_owned(), mails.len());
                return mails[mails.len() - 1].clone();
            }
            assert!(std::time::Instant::now() < deadline, "no mail to {to} arrived");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// The first run of six digits in a mail body.
pub fn code_in(body: &str) -> String {
    let chars: Vec<char> = body.chars().collect();
    for w in chars.windows(6) {
        if w.iter().all(|c| c.is_ascii_digit()) {
            return w.iter().collect();
        }
    }
    panic!("no code in mail: {body}")
}

/// The first URL in a mail body that contains `needle`.
pub fn link_in(body: &str, needle: &str) -> String {
    body.split_whitespace()
        .find(|w| w.starts_with("http") && w.contains(needle))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no link in mail: {body}"))
}
