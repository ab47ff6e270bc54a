//! Password hashing (Kratos formats) and password policy.
