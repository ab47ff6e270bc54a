//! The delivery channels of `courier.*`: `email` (SMTP, or HTTP with `delivery_strategy: http`) and
//! the HTTP channels of `courier.channels` (`sms` and custom ids).

mod http;
mod smtp;

use std::sync::Arc;

use sallyport_config::model::{Courier, DeliveryStrategy};
use sallyport_core::courier::{Message, MessageType};

use crate::error::{CourierError, DeliveryError};
use crate::outgoing::{OutgoingHttp, Unrestricted};
use crate::templates::Templates;

use self::http::HttpChannel;
use self::smtp::SmtpChannel;

enum Email {
    Smtp(Box<SmtpChannel>),
    Http(Box<HttpChannel>),
    /// SMTP strategy without `courier.smtp.connection_uri`.
    Unconfigured,
}

/// Every configured channel, ready to send. Build once and share (`Arc`); connections are pooled.
pub struct Channels {
    templates: Arc<Templates>,
    email: Email,
    custom: Vec<(String, HttpChannel)>,
}

impl std::fmt::Debug for Channels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let email = match &self.email {
            Email::Smtp(s) => format!("{s:?}"),
            Email::Http(h) => format!("{h:?}"),
            Email::Unconfigured => "unconfigured".into(),
        };
        f.debug_struct("Channels")
            .field("email", &email)
            .field(
                "custom",
                &self.custom.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Channels {
    /// Builds the channels and loads the templates (see [`Templates::from_config`]).
    pub fn from_config(cfg: &Courier) -> Result<Channels, CourierError> {
        let http: Arc<dyn OutgoingHttp> = Arc::new(Unrestricted::new().map_err(CourierError::Config)?);
        Channels::from_config_with(cfg, http)
    }

    /// [`Channels::from_config`] with every HTTP request (templates, deliveries) under the caller's policy.
    pub fn from_config_with(cfg: &Courier, http: Arc<dyn OutgoingHttp>) -> Result<Channels, CourierError> {
        let templates = Arc::new(Templates::from_config_with(cfg, &*http)?);
        Channels::with_templates(cfg, templates, http)
    }

    /// Builds the channels around already loaded templates (used to render HTML bodies at delivery).
    pub fn with_templates(
        cfg: &Courier,
        templates: Arc<Templates>,
        http: Arc<dyn OutgoingHttp>,
    ) -> Result<Channels, CourierError> {
        let email = match cfg.delivery_strategy {
            DeliveryStrategy::Smtp => match SmtpChannel::from_config(&cfg.smtp)? {
                Some(smtp) => Email::Smtp(Box::new(smtp)),
                None => Email::Unconfigured,
            },
            DeliveryStrategy::Http => {
                let rc = cfg.http.get("request_config").cloned().unwrap_or_default();
                let http = HttpChannel::from_config("email", "courier.http.request_config", &rc, &*http)?;
                Email::Http(Box::new(http))
            }
        };
        let mut custom = Vec::new();
        for (i, channel) in cfg.channels.iter().enumerate() {
            let what = format!("courier.channels[{i}]");
            if channel.id.is_empty() {
                return Err(CourierError::Config(format!("{what}: id is required")));
            }
            if !matches!(channel.kind.as_str(), "" | "http") {
                return Err(CourierError::Config(format!(
                    "{what}: unknown courier channel type: {}",
                    channel.kind
                )));
            }
            let http = HttpChannel::from_config(
                &channel.id,
                &format!("{what}.request_config"),
                &channel.request_config,
                &*http,
            )?;
            custom.push((channel.id.clone(), http));
        }
        Ok(Channels {
            templates,
            email,
            custom,
        })
    }

    /// The templates the channels render HTML bodies with.
    pub fn templates(&self) -> &Arc<Templates> {
        &self.templates
    }

    /// Delivers one message on `msg.channel`: an entry of `courier.channels` with that id, else
    /// `email` → the SMTP / HTTP email strategy. An unknown channel is a permanent error.
    pub async fn send(&self, msg: &Message) -> Result<(), DeliveryError> {
        if let Some((_, http)) = self.custom.iter().find(|(id, _)| *id == msg.channel) {
            let html = self.html_body(msg);
            return http.send(msg, Self::model(msg), html).await;
        }
        if msg.channel != "email" {
            return Err(DeliveryError::permanent(format!(
                "no courier channels configured for: {}",
                msg.channel
            )));
        }
        match &self.email {
            Email::Smtp(smtp) => smtp.send(msg, self.html_body(msg)).await,
            Email::Http(http) => http.send(msg, Self::model(msg), self.html_body(msg)).await,
            Email::Unconfigured => Err(DeliveryError::transient(
                "Courier tried to deliver an email but courier.smtp.connection_uri is not set!",
            )),
        }
    }

    fn model(msg: &Message) -> serde_json::Value {
        Templates::model_json(&msg.template_type, msg.kind, &msg.template_data)
    }

    /// Kratos renders the HTML alternative again at delivery time from `template_data`; a failure
    /// only drops the HTML part.
    fn html_body(&self, msg: &Message) -> Option<String> {
        if msg.kind != MessageType::Email {
            return None;
        }
        match self.templates.render_html(&msg.template_type, &msg.template_data) {
            Ok(html) => html,
            Err(e) => {
                tracing::warn!(message_id = %msg.id, template_type = %msg.template_type, error = %e,
                    "unable to render the HTML email body; sending plain text only");
                None
            }
        }
    }
}
