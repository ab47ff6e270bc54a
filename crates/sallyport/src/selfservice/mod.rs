pub mod common;
pub mod login;
pub mod password;
pub mod profile;
pub mod registration;
