-- Outbound messages and their delivery attempts (Kratos `courier_messages`), one-time codes and link
-- tokens stored as keyed digests, and the per-flow counter of code submissions.
-- SQLite dialect, as in 0001: BLOB uuids, fixed-width UTC text timestamps, JSON text.

CREATE TABLE courier_messages (
    id BLOB PRIMARY KEY NOT NULL,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    template_type TEXT NOT NULL,
    template_data TEXT NOT NULL,
    channel TEXT NOT NULL,
    send_count INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    -- Set while a worker holds the message (status `processing`); an expired lease frees it again.
    lease_until TEXT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX courier_messages_status_next_attempt_at_idx ON courier_messages (status, next_attempt_at);
CREATE INDEX courier_messages_created_at_id_idx ON courier_messages (created_at, id);
CREATE INDEX courier_messages_recipient_idx ON courier_messages (recipient);

CREATE TABLE courier_message_dispatches (
    id BLOB PRIMARY KEY NOT NULL,
    message_id BLOB NOT NULL REFERENCES courier_messages (id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    error TEXT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX courier_message_dispatches_message_id_idx ON courier_message_dispatches (message_id);

CREATE TABLE identity_one_time_codes (
    id BLOB PRIMARY KEY NOT NULL,
    flow_id BLOB NOT NULL REFERENCES selfservice_flows (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    digest TEXT NOT NULL,
    address TEXT NOT NULL,
    address_type TEXT NOT NULL,
    identity_id BLOB NULL REFERENCES identities (id) ON DELETE CASCADE,
    expires_at TEXT NOT NULL,
    used_at TEXT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX identity_one_time_codes_flow_id_kind_idx ON identity_one_time_codes (flow_id, kind);
CREATE INDEX identity_one_time_codes_kind_digest_idx ON identity_one_time_codes (kind, digest);
CREATE INDEX identity_one_time_codes_identity_id_idx ON identity_one_time_codes (identity_id);

-- Apart from `submit_count` inside the flow JSON: bumped atomically, so parallel guesses all count.
ALTER TABLE selfservice_flows ADD COLUMN code_submit_count INTEGER NOT NULL DEFAULT 0;
