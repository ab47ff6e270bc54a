//! Sallyport: a Kratos-compatible identity server. The binary is a thin CLI over this library, so
//! tests can start the real server on random ports.

pub mod admin;
pub mod cli;
pub mod config_loader;
pub mod courier;
pub mod courier_worker;
pub mod http;
pub mod identities;
pub mod import;
pub mod outgoing;
pub mod pagination;
pub mod process;
pub mod public;
pub mod rate_limit;
pub mod render;
pub mod router;
pub mod selfservice;
pub mod serve;
pub mod server;
pub mod session_manager;
pub mod settings;
pub mod startup_pages;
pub mod state;
pub mod ui;
pub mod webhook;
pub mod whoami_cache;
