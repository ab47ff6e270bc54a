//! `serve.*`

use serde::Deserialize;

/// `serve.*`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Serve {
    pub public: PublicServe,
    pub admin: AdminServe,
}

/// `serve.public.*`; use `Config::public_base_url()` for the effective base URL.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PublicServe {
    pub base_url: Option<String>,
    pub host: String,
    pub port: u16,
    pub cors: Cors,
}

impl Default for PublicServe {
    fn default() -> Self {
        PublicServe {
            base_url: None,
            host: "0.0.0.0".into(),
            port: 4433,
            cors: Cors::default(),
        }
    }
}

/// `serve.admin.*`; use `Config::admin_base_url()` for the effective base URL.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AdminServe {
    pub base_url: Option<String>,
    pub host: String,
    pub port: u16,
}

impl Default for AdminServe {
    fn default() -> Self {
        AdminServe {
            base_url: None,
            host: "0.0.0.0".into(),
            port: 4434,
        }
    }
}

/// `serve.public.cors.*`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Cors {
    pub enabled: bool,
    pub allowed_origins: Vec<String>,
    pub allowed_methods: Vec<String>,
    pub allowed_headers: Vec<String>,
    pub exposed_headers: Vec<String>,
    pub allow_credentials: bool,
    /// Seconds; 0 means "not sent".
    pub max_age: u64,
}

impl Default for Cors {
    fn default() -> Self {
        let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
        Cors {
            enabled: false,
            allowed_origins: strings(&["*"]),
            allowed_methods: strings(&["POST", "GET", "PUT", "PATCH", "DELETE"]),
            allowed_headers: strings(&[
                "Authorization",
                "Content-Type",
                "Max-Age",
                "X-Session-Token",
                "X-XSRF-TOKEN",
                "X-CSRF-TOKEN",
            ]),
            exposed_headers: strings(&["Content-Type"]),
            allow_credentials: true,
            max_age: 0,
        }
    }
}
