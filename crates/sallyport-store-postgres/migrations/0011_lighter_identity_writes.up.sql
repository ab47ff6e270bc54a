-- Fewer checks and index entries per stored identity; bulk writes (`sallyport import kratos`, the
-- admin batch endpoint) spend most of their server time on exactly these.
--
-- An identifier row points at its credential, which points at its identity: the credential's
-- foreign key (ON DELETE CASCADE) already removes identifiers with their identity, and every write
-- sets identity_id from the credential it belongs to. A second foreign key to identities checked the
-- same fact again for every identifier.
ALTER TABLE identity_credential_identifiers DROP CONSTRAINT identity_credential_identifiers_identity_id_fkey;

-- Most identities have no external id; the unique constraint indexed their NULLs too.
ALTER TABLE identities DROP CONSTRAINT identities_external_id_uq;
CREATE UNIQUE INDEX identities_external_id_uq ON identities (external_id) WHERE external_id IS NOT NULL;
