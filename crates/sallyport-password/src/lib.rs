//! Password hashing (Kratos formats) and password policy.
//!
//! [`Hasher`] creates bcrypt or argon2id hashes and verifies every hash
//! format Kratos accepts for imported credentials. [`PasswordPolicy`]
//! applies Kratos' registration/settings password rules, including the
//! Have I Been Pwned k-anonymity check.

mod formats;
mod hasher;
mod md5crypt;
mod policy;

pub use formats::{BCRYPT_MAX_PASSWORD_BYTES, validate_encoded};
pub use hasher::{HashError, Hasher, HasherConfig};
pub use policy::{PasswordPolicy, PolicyConfig, PolicyViolation, check_bcrypt_length, check_max_length};

#[cfg(test)]
mod tests;
