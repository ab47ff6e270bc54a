-- Sallyport's durable outbox of response.ignore web hooks (beyond Kratos). Times are Unix milliseconds.
-- status: queued | processing (leased until lease_until_ms) | delivered | abandoned.
CREATE TABLE sallyport_web_hook_outbox (
    id TEXT PRIMARY KEY NOT NULL,
    hook_key TEXT NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    lease_until_ms INTEGER NULL,
    last_error TEXT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX sallyport_web_hook_outbox_due_idx ON sallyport_web_hook_outbox (status, next_attempt_ms);
