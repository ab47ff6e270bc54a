//! The Sallyport domain: identities, sessions, flows, UI nodes, the error catalogue. No HTTP, SQL or SMTP.
