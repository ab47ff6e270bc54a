//! Kratos-format configuration: load, validate, env overrides.
