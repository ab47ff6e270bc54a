pub mod body;
pub mod cookies;
pub mod csrf;
pub mod error;
pub mod kratos_cookie;
pub mod negotiate;
pub mod redirect;
pub mod request;
