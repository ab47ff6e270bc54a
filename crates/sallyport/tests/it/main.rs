//! One integration-test binary: every test starts the real server on random ports and speaks HTTP.

mod support;

mod admin_identities;
mod browser_flows;
mod builtin_ui;
mod cli;
mod code_login;
mod courier;
mod frontend_csrf;
mod frontend_messages;
mod frontend_mfa;
mod hostile_input;
mod input_bounds;
mod kratos_import;
mod native_flows;
mod nul_bytes;
mod oidc_flows;
mod password_policy;
mod rate_limits;
mod recovery_flows;
mod sessions;
mod settings_mfa;
mod spa_flows;
mod verification_flows;
mod whoami_cache;
