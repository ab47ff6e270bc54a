//! Sallyport: a Kratos-compatible identity server.
