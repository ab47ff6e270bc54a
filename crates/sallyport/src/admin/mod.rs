pub mod bounded_patch;
pub mod courier;
pub mod identities;
pub mod recovery;
pub mod sessions;
pub mod version;
