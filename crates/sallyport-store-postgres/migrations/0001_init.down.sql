DROP TABLE IF EXISTS selfservice_errors;
DROP TABLE IF EXISTS selfservice_flows;
DROP TABLE IF EXISTS sessions;
DROP TABLE IF EXISTS identity_recovery_addresses;
DROP TABLE IF EXISTS identity_verifiable_addresses;
DROP TABLE IF EXISTS identity_credential_identifiers;
DROP TABLE IF EXISTS identity_credentials;
DROP TABLE IF EXISTS identities;
