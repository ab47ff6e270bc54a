//! Sallyport's courier, compatible with Ory Kratos' `courier.*` configuration.
//!
//! - [`Templates`]: Kratos' built-in message templates (Go templates) plus user overrides; the
//!   flows render a message with them when they queue it.
//! - [`Channels`]: delivery over SMTP (lettre) or HTTP (reqwest + a Jsonnet body template).
//! - [`Dispatcher`]: the worker that claims queued messages from a [`CourierStore`], delivers them
//!   concurrently and records the outcome (sent, retry with backoff, abandoned).
//!
//! [`CourierStore`]: sallyport_core::courier::CourierStore

mod channels;
mod dispatcher;
mod error;
mod fetch;
mod gotmpl;
mod jsonnet;
mod templates;

pub use channels::Channels;
pub use dispatcher::{Dispatcher, DispatcherConfig};
pub use error::{CourierError, DeliveryError};
pub use templates::{Rendered, Templates, sanitize_header_value};
