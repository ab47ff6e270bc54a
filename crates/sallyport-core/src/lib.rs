//! The Sallyport domain: identities, sessions, flows, UI nodes and the error catalogue.
//! Nothing here knows HTTP, SQL or SMTP.

pub mod error;
pub mod text;
pub mod time_fmt;
pub mod ui;
