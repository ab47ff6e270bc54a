-- Kratos' session_token_exchanges, kept without secrets in the clear: the init code as a SHA-256 digest,
-- the return_to code and the session token sealed by the server (see sallyport_core::token_exchange).
CREATE TABLE sallyport_session_token_exchanges (
    id BLOB PRIMARY KEY NOT NULL,
    flow_id BLOB NOT NULL,
    init_code_digest TEXT NOT NULL,
    return_to_code_digest TEXT NOT NULL,
    return_to_code_sealed TEXT NOT NULL,
    session_id BLOB,
    session_token_sealed TEXT,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    CONSTRAINT sallyport_session_token_exchanges_init_uq UNIQUE (init_code_digest)
);
CREATE INDEX sallyport_session_token_exchanges_flow_idx ON sallyport_session_token_exchanges (flow_id);
CREATE INDEX sallyport_session_token_exchanges_expires_idx ON sallyport_session_token_exchanges (expires_at);
