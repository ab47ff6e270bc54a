-- SQLite dialect. Uuid columns hold sqlx's 16-byte BLOBs, timestamps fixed-width UTC text
-- (`sallyport_store_sql::Ts`, so text order is time order), JSON text, booleans 0/1.

CREATE TABLE identities (
    id BLOB PRIMARY KEY NOT NULL,
    schema_id TEXT NOT NULL,
    traits TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'active',
    state_changed_at TEXT NULL,
    metadata_public TEXT NULL,
    metadata_admin TEXT NULL,
    external_id TEXT NULL,
    organization_id BLOB NULL,
    available_aal TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    CONSTRAINT identities_external_id_uq UNIQUE (external_id)
);

CREATE TABLE identity_credentials (
    id BLOB PRIMARY KEY NOT NULL,
    identity_id BLOB NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    type TEXT NOT NULL,
    config TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    CONSTRAINT identity_credentials_identity_id_type_uq UNIQUE (identity_id, type)
);

CREATE TABLE identity_credential_identifiers (
    id BLOB PRIMARY KEY NOT NULL,
    identifier TEXT NOT NULL,
    type TEXT NOT NULL,
    identity_id BLOB NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    credential_id BLOB NOT NULL REFERENCES identity_credentials (id) ON DELETE CASCADE,
    -- Keeps the order of `Credential::identifiers`.
    position INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    CONSTRAINT identity_credential_identifiers_type_identifier_uq UNIQUE (type, identifier)
);
CREATE INDEX identity_credential_identifiers_identity_id_idx ON identity_credential_identifiers (identity_id);
CREATE INDEX identity_credential_identifiers_credential_id_idx ON identity_credential_identifiers (credential_id);

CREATE TABLE identity_verifiable_addresses (
    id BLOB PRIMARY KEY NOT NULL,
    identity_id BLOB NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    via TEXT NOT NULL,
    value TEXT NOT NULL,
    verified BOOLEAN NOT NULL,
    status TEXT NOT NULL,
    verified_at TEXT NULL,
    position INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    CONSTRAINT identity_verifiable_addresses_via_value_uq UNIQUE (via, value)
);
CREATE INDEX identity_verifiable_addresses_identity_id_idx ON identity_verifiable_addresses (identity_id);

CREATE TABLE identity_recovery_addresses (
    id BLOB PRIMARY KEY NOT NULL,
    identity_id BLOB NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    via TEXT NOT NULL,
    value TEXT NOT NULL,
    position INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    CONSTRAINT identity_recovery_addresses_via_value_uq UNIQUE (via, value)
);
CREATE INDEX identity_recovery_addresses_identity_id_idx ON identity_recovery_addresses (identity_id);

CREATE TABLE sessions (
    id BLOB PRIMARY KEY NOT NULL,
    identity_id BLOB NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    token_digest TEXT NOT NULL,
    logout_token_digest TEXT NOT NULL,
    active BOOLEAN NOT NULL,
    expires_at TEXT NOT NULL,
    authenticated_at TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    aal TEXT NOT NULL,
    authentication_methods TEXT NOT NULL,
    devices TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    CONSTRAINT sessions_token_digest_uq UNIQUE (token_digest),
    CONSTRAINT sessions_logout_token_digest_uq UNIQUE (logout_token_digest)
);
CREATE INDEX sessions_identity_id_idx ON sessions (identity_id);

CREATE TABLE selfservice_flows (
    id BLOB PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    flow TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX selfservice_flows_expires_at_idx ON selfservice_flows (expires_at);

CREATE TABLE selfservice_errors (
    id BLOB PRIMARY KEY NOT NULL,
    error TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
