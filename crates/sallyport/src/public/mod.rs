pub mod errors;
pub mod health;
pub mod logout;
pub mod schemas;
pub mod sessions;
pub mod webauthn;
pub mod whoami_fast_path;
