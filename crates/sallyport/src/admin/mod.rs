pub mod identities;
pub mod sessions;
pub mod version;
