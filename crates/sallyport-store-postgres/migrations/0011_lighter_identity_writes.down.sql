DROP INDEX identities_external_id_uq;
ALTER TABLE identities ADD CONSTRAINT identities_external_id_uq UNIQUE (external_id);
ALTER TABLE identity_credential_identifiers ADD CONSTRAINT identity_credential_identifiers_identity_id_fkey
    FOREIGN KEY (identity_id) REFERENCES identities (id) ON DELETE CASCADE;
