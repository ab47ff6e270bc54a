-- State of `sallyport import kratos`: the lock row ('lock', owner, heartbeat) that refuses a second
-- concurrent import, and per-source watermarks ('watermark:<source>', the source's newest updated_at
-- already copied) that make reruns incremental.
CREATE TABLE import_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
