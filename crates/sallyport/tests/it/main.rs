//! One integration-test binary: every test starts the real server on random ports and speaks HTTP.

mod support;

mod admin_identities;
mod browser_flows;
mod builtin_ui;
mod cli;
mod code_login;
mod courier;
mod error_catalogue;
mod frontend_csrf;
mod frontend_messages;
mod frontend_mfa;
mod guides;
mod hostile_input;
mod input_bounds;
mod kratos_import;
mod native_flows;
mod nul_bytes;
mod oidc_flows;
mod passkeys;
mod password_policy;
mod rate_limits;
mod recovery_flows;
mod sessions;
mod settings_mfa;
mod spa_flows;
mod status_mode;
mod unimplemented;
mod verification_flows;
mod web_hooks;
mod webauthn_mfa;
mod whoami_cache;
