-- Sallyport's durable outbox of response.ignore web hooks (beyond Kratos). Times are Unix milliseconds.
-- status: queued | processing (leased until lease_until_ms) | delivered | abandoned.
CREATE TABLE sallyport_web_hook_outbox (
    id TEXT PRIMARY KEY NOT NULL,
    hook_key TEXT NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_ms BIGINT NOT NULL,
    lease_until_ms BIGINT NULL,
    last_error TEXT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE INDEX sallyport_web_hook_outbox_due_idx ON sallyport_web_hook_outbox (status, next_attempt_ms);
