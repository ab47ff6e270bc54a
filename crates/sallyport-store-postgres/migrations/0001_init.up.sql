-- PostgreSQL dialect: UUID, TIMESTAMPTZ, JSONB and BOOLEAN columns; BIGINT where Rust reads i64.

CREATE TABLE identities (
    id UUID PRIMARY KEY,
    schema_id TEXT NOT NULL,
    traits JSONB NOT NULL,
    state TEXT NOT NULL DEFAULT 'active',
    state_changed_at TIMESTAMPTZ NULL,
    metadata_public JSONB NULL,
    metadata_admin JSONB NULL,
    external_id TEXT NULL,
    organization_id UUID NULL,
    available_aal TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT identities_external_id_uq UNIQUE (external_id)
);

CREATE TABLE identity_credentials (
    id UUID PRIMARY KEY,
    identity_id UUID NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    type TEXT NOT NULL,
    config JSONB NOT NULL,
    version INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT identity_credentials_identity_id_type_uq UNIQUE (identity_id, type)
);

CREATE TABLE identity_credential_identifiers (
    id UUID PRIMARY KEY,
    identifier TEXT NOT NULL,
    type TEXT NOT NULL,
    identity_id UUID NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    credential_id UUID NOT NULL REFERENCES identity_credentials (id) ON DELETE CASCADE,
    -- Keeps the order of `Credential::identifiers`.
    position BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT identity_credential_identifiers_type_identifier_uq UNIQUE (type, identifier)
);
CREATE INDEX identity_credential_identifiers_identity_id_idx ON identity_credential_identifiers (identity_id);
CREATE INDEX identity_credential_identifiers_credential_id_idx ON identity_credential_identifiers (credential_id);

CREATE TABLE identity_verifiable_addresses (
    id UUID PRIMARY KEY,
    identity_id UUID NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    via TEXT NOT NULL,
    value TEXT NOT NULL,
    verified BOOLEAN NOT NULL,
    status TEXT NOT NULL,
    verified_at TIMESTAMPTZ NULL,
    position BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT identity_verifiable_addresses_via_value_uq UNIQUE (via, value)
);
CREATE INDEX identity_verifiable_addresses_identity_id_idx ON identity_verifiable_addresses (identity_id);

CREATE TABLE identity_recovery_addresses (
    id UUID PRIMARY KEY,
    identity_id UUID NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    via TEXT NOT NULL,
    value TEXT NOT NULL,
    position BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT identity_recovery_addresses_via_value_uq UNIQUE (via, value)
);
CREATE INDEX identity_recovery_addresses_identity_id_idx ON identity_recovery_addresses (identity_id);

CREATE TABLE sessions (
    id UUID PRIMARY KEY,
    identity_id UUID NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    token_digest TEXT NOT NULL,
    logout_token_digest TEXT NOT NULL,
    active BOOLEAN NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    authenticated_at TIMESTAMPTZ NOT NULL,
    issued_at TIMESTAMPTZ NOT NULL,
    aal TEXT NOT NULL,
    authentication_methods JSONB NOT NULL,
    devices JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT sessions_token_digest_uq UNIQUE (token_digest),
    CONSTRAINT sessions_logout_token_digest_uq UNIQUE (logout_token_digest)
);
CREATE INDEX sessions_identity_id_idx ON sessions (identity_id);

CREATE TABLE selfservice_flows (
    id UUID PRIMARY KEY,
    kind TEXT NOT NULL,
    flow JSONB NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX selfservice_flows_expires_at_idx ON selfservice_flows (expires_at);

CREATE TABLE selfservice_errors (
    id UUID PRIMARY KEY,
    error JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
