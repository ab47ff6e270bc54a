//! Kratos-format configuration (`kratos.yml`): load, merge, env overrides, validation, typed access.
//!
//! Layers, lowest first: the Kratos config schema's defaults, an optional base document (see
//! [`dev_defaults`]), the `-c` files in order, then environment variables matched against the schema's
//! key paths the way Kratos does (`SERVE_PUBLIC_BASE_URL` → `serve.public.base_url`). The merged
//! document is validated against Kratos' own config schema, then read into [`Config`].

mod bytesize;
mod config;
mod duration;
mod env;
mod error;
mod keys;
mod load;
pub mod model;
mod path;
mod schema;
mod source;
mod validate;

pub use bytesize::{ByteSize, ByteSizeError};
pub use config::{Config, FlowKind};
pub use duration::{DurationError, GoDuration, format_go_duration, parse_go_duration};
pub use env::EnvOverride;
pub use error::{ConfigError, Issue, Issues};
pub use keys::IMPLEMENTED_KEYS;
pub use load::{DEFAULT_IDENTITY_SCHEMA, LoadOptions, dev_defaults, from_value, load, load_with_base};
pub use model::*;
pub use schema::KRATOS_CONFIG_SCHEMA;
