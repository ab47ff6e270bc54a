//! The Sallyport domain: identities, sessions, flows, UI nodes and the error catalogue.
//! Nothing here knows HTTP, SQL or SMTP.

pub mod bounded_map;
pub mod code;
pub mod courier;
pub mod error;
pub mod flow;
pub mod identity;
pub mod limits;
pub mod rate_limit;
pub mod row_id;
pub mod secret;
pub mod session;
pub mod store;
pub mod text;
pub mod time_fmt;
pub mod token_exchange;
pub mod ui;
pub mod web_hook;
