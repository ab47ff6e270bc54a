-- State of `sallyport import kratos`: the lock row ('lock', owner, heartbeat) that refuses a second
-- concurrent import, and per-source watermarks ('watermark:<source>', the source database's clock
-- when the last complete run started) that make reruns incremental.
CREATE TABLE import_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Which identities and sessions came from an import, so `--prune` deletes only rows the source
-- had and later removed, never ones Sallyport created itself.
CREATE TABLE imported_rows (
    id BLOB PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL
);
