-- Sallyport's rate-limit counters (beyond Kratos). One row per (bucket, key); key is a SHA-256 digest of
-- the address, identifier, identity or client IP. Times are Unix milliseconds so that window and back-off
-- arithmetic is plain integer SQL on every backend.
CREATE TABLE sallyport_rate_limits (
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    count BIGINT NOT NULL,
    window_ends_ms BIGINT NOT NULL,
    blocked_until_ms BIGINT NOT NULL,
    backoff_ms BIGINT NOT NULL,
    -- Random token of the last hit that counted: tells a counted hit from one a block refused.
    last_hit TEXT NOT NULL,
    PRIMARY KEY (bucket, key)
);
CREATE INDEX sallyport_rate_limits_window_ends_ms_idx ON sallyport_rate_limits (window_ends_ms);
