//! The two ceremonies, registration and authentication, with their state as JSON.

use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;
use url::Url;
use webauthn_rs_core::WebauthnCore;
use webauthn_rs_core::proto::{
    AttestationConveyancePreference, AttestationFormat, AttestationMetadata, AuthenticationState, Credential,
    ParsedAttestation, ParsedAttestationData, PublicKeyCredential, RegisterPublicKeyCredential,
    RegisteredExtensions, RegistrationState, UserVerificationPolicy,
};

use crate::cose;
use crate::kratos::{Authenticator, CredentialFlags, StoredCredential};

/// `config.rp` of the `passkey` and `webauthn` methods.
#[derive(Debug, Clone, PartialEq)]
pub struct RelyingParty {
    pub id: String,
    pub display_name: String,
    pub origins: Vec<Url>,
}

/// Why a ceremony failed. The caller maps these to Kratos' answers; none is the server's fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The client's JSON is not a credential (Kratos: 400 "Unable to parse WebAuthn response").
    #[error("unable to parse the WebAuthn response: {0}")]
    Malformed(String),
    /// The flow holds no ceremony state (none started, or already used).
    #[error("no WebAuthn ceremony was started on this flow, or it was already used")]
    NoCeremony,
    /// Challenge, origin, RP id, signature, policy or attestation did not check out.
    #[error("the WebAuthn response did not verify: {0}")]
    Rejected(String),
    /// The assertion names a credential the identity does not have.
    #[error("unknown credential")]
    UnknownCredential,
    #[error("invalid relying party configuration: {0}")]
    Config(String),
}

/// How much user verification a ceremony asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserVerification {
    /// Passkeys and passwordless WebAuthn (Kratos: `preferred`).
    Preferred,
    /// Security keys as a second factor (Kratos: `discouraged`).
    Discouraged,
}

impl UserVerification {
    fn policy(self) -> UserVerificationPolicy {
        match self {
            UserVerification::Preferred => UserVerificationPolicy::Preferred,
            UserVerification::Discouraged => UserVerificationPolicy::Discouraged_DO_NOT_USE,
        }
    }
}

pub struct Ceremonies {
    core: WebauthnCore,
}

/// A registered credential, ready to be appended to the identity's credential config.
pub type Registered = StoredCredential;

/// What a successful assertion changes on the stored credential.
#[derive(Debug, Clone, PartialEq)]
pub struct LoginOutcome {
    pub credential_id: Vec<u8>,
    /// The credential list with the used credential's counter, clone warning and backup state updated.
    pub credentials: Vec<StoredCredential>,
    /// The counter did not advance: the private key may exist twice (Kratos logs in anyway).
    pub clone_warning: bool,
}

const TIMEOUT: Duration = Duration::from_secs(300);

impl Ceremonies {
    pub fn new(rp: &RelyingParty) -> Result<Ceremonies, Error> {
        if rp.id.trim().is_empty() || rp.origins.is_empty() {
            return Err(Error::Config("rp.id and rp.origins are required".into()));
        }
        let name = if rp.display_name.is_empty() {
            rp.id.clone()
        } else {
            rp.display_name.clone()
        };
        Ok(Ceremonies {
            core: WebauthnCore::new_unsafe_experts_only(
                &name,
                &rp.id,
                rp.origins.clone(),
                TIMEOUT,
                None,
                None,
            ),
        })
    }

    /// Creation options (`{"publicKey": …}`, as `navigator.credentials.create` takes them once the
    /// base64url fields are decoded) and the state to keep for [`Ceremonies::finish_registration`].
    pub fn begin_registration(
        &self,
        user_handle: &[u8],
        user_name: &str,
        resident_key: bool,
        uv: UserVerification,
        exclude: &[StoredCredential],
    ) -> Result<(Value, Value), Error> {
        // The browser script fills in the name from the form; the core wants one now.
        let name = if user_name.is_empty() { "user" } else { user_name };
        let builder = self
            .core
            .new_challenge_register_builder(user_handle, name, name)
            .map_err(|e| Error::Config(e.to_string()))?
            .attestation(AttestationConveyancePreference::None)
            .user_verification_policy(uv.policy())
            .require_resident_key(resident_key)
            .exclude_credentials(
                (!exclude.is_empty()).then(|| exclude.iter().map(|c| c.id.clone()).collect()),
            );
        let (options, state) = self
            .core
            .generate_challenge_register(builder)
            .map_err(|e| Error::Config(e.to_string()))?;
        let mut options = serde_json::to_value(options).map_err(|e| Error::Config(e.to_string()))?;
        if resident_key && let Some(sel) = options.pointer_mut("/publicKey/authenticatorSelection") {
            // Kratos (go-webauthn) sends `residentKey` only; the deprecated flag stays in step.
            sel["requireResidentKey"] = Value::Bool(true);
        }
        let state = serde_json::to_value(state).map_err(|e| Error::Config(e.to_string()))?;
        Ok((options, state))
    }

    pub fn finish_registration(
        &self,
        state: &Value,
        response: &str,
        passwordless: bool,
        now: OffsetDateTime,
    ) -> Result<Registered, Error> {
        let state: RegistrationState =
            serde_json::from_value(state.clone()).map_err(|_| Error::NoCeremony)?;
        let reg: RegisterPublicKeyCredential =
            serde_json::from_str(response).map_err(|e| Error::Malformed(e.to_string()))?;
        let facts = attestation_facts(&reg.response.attestation_object)
            .ok_or_else(|| Error::Malformed("the attestation object is not valid CBOR".into()))?;
        let cred = self
            .core
            .register_credential(&reg, &state, None)
            .map_err(|e| Error::Rejected(e.to_string()))?;
        let transport = reg
            .response
            .transports
            .unwrap_or_default()
            .iter()
            .filter_map(|t| serde_json::to_value(t).ok()?.as_str().map(str::to_owned))
            .collect();
        Ok(StoredCredential {
            id: cred.cred_id.clone(),
            public_key: cose::encode(&cred.cred),
            attestation_type: facts.format,
            authenticator: Some(Authenticator {
                aaguid: facts.aaguid,
                sign_count: cred.counter,
                clone_warning: false,
            }),
            display_name: String::new(),
            added_at: now.replace_nanosecond(0).unwrap_or(now),
            is_passwordless: passwordless,
            flags: Some(CredentialFlags {
                user_present: facts.flags & 0x01 != 0,
                user_verified: cred.user_verified,
                backup_eligible: cred.backup_eligible,
                backup_state: cred.backup_state,
            }),
            transport,
            other: Default::default(),
        })
    }

    /// Request options for `navigator.credentials.get` naming `allowed` (none: a discoverable login).
    pub fn begin_login(
        &self,
        allowed: &[StoredCredential],
        uv: UserVerification,
    ) -> Result<(Value, Value), Error> {
        let creds = allowed.iter().filter_map(|c| to_core(c, uv, None)).collect();
        let builder = self
            .core
            .new_challenge_authenticate_builder(creds, Some(uv.policy()))
            .map_err(|e| Error::Config(e.to_string()))?;
        let (options, state) = self
            .core
            .generate_challenge_authenticate(builder)
            .map_err(|e| Error::Config(e.to_string()))?;
        let mut options = serde_json::to_value(options).map_err(|e| Error::Config(e.to_string()))?;
        if let Some(o) = options.as_object_mut() {
            o.remove("mediation");
        }
        if let Some(pk) = options.get_mut("publicKey").and_then(Value::as_object_mut)
            && pk
                .get("allowCredentials")
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty)
        {
            pk.remove("allowCredentials");
        }
        let state = serde_json::to_value(state).map_err(|e| Error::Config(e.to_string()))?;
        Ok((options, state))
    }

    /// Checks an assertion against the login state and `candidates` (the identity's credentials of
    /// the kind this login accepts). The caller has already matched the user handle to the identity.
    pub fn finish_login(
        &self,
        state: &Value,
        assertion: &PublicKeyCredential,
        candidates: &[StoredCredential],
        uv: UserVerification,
    ) -> Result<LoginOutcome, Error> {
        let mut state: AuthenticationState =
            serde_json::from_value(state.clone()).map_err(|_| Error::NoCeremony)?;
        let flags = assertion.response.authenticator_data.get(32).copied();
        let Some(stored) = candidates.iter().find(|c| c.id == assertion.raw_id) else {
            return Err(Error::UnknownCredential);
        };
        let core = to_core(stored, uv, flags).ok_or(Error::UnknownCredential)?;
        state.set_allowed_credentials(vec![core.clone()]);
        let result = self
            .core
            .authenticate_credential(assertion, &state)
            .map_err(|e| Error::Rejected(e.to_string()))?;
        let mut updated = stored.clone();
        let auth = updated.authenticator.get_or_insert_with(Authenticator::default);
        let new = result.counter();
        // go-webauthn's rule, which Kratos keeps: a counter that does not advance (unless both are 0)
        // marks a possible clone and the stored counter stays as it was.
        let clone_warning = new <= auth.sign_count && (new != 0 || auth.sign_count != 0);
        if clone_warning {
            auth.clone_warning = true;
        } else {
            auth.sign_count = new;
        }
        if let Some(f) = updated.flags.as_mut() {
            f.backup_state = result.backup_state();
        }
        let credentials = candidates
            .iter()
            .map(|c| {
                if c.id == updated.id {
                    updated.clone()
                } else {
                    c.clone()
                }
            })
            .collect();
        Ok(LoginOutcome {
            credential_id: updated.id.clone(),
            credentials,
            clone_warning,
        })
    }
}

/// Parses the JSON a client sends for `passkey_login` / `webauthn_login`.
pub fn parse_assertion(json: &str) -> Result<PublicKeyCredential, Error> {
    serde_json::from_str(json).map_err(|e| Error::Malformed(e.to_string()))
}

impl Ceremonies {
    pub fn parse_assertion(json: &str) -> Result<PublicKeyCredential, Error> {
        parse_assertion(json)
    }
}

/// The stored credential as the core checks it. The counter is left at 0 so the core does not
/// refuse a counter that did not advance: Kratos accepts the login and records a clone warning.
fn to_core(c: &StoredCredential, uv: UserVerification, response_flags: Option<u8>) -> Option<Credential> {
    let key = cose::parse(&c.public_key)?;
    let flags = c.flags.unwrap_or_else(|| {
        // Kratos' upgrade path for credentials stored before flags existed: take them from the response.
        let f = response_flags.unwrap_or(0);
        CredentialFlags {
            user_present: f & 0x01 != 0,
            user_verified: f & 0x04 != 0,
            backup_eligible: f & 0x08 != 0,
            backup_state: f & 0x10 != 0,
        }
    });
    Some(Credential {
        cred_id: c.id.clone(),
        cred: key,
        counter: 0,
        transports: None,
        // Only what the policy demands is enforced, as go-webauthn does.
        user_verified: false,
        backup_eligible: flags.backup_eligible,
        backup_state: flags.backup_state,
        registration_policy: uv.policy(),
        extensions: RegisteredExtensions::none(),
        attestation: ParsedAttestation {
            data: ParsedAttestationData::None,
            metadata: AttestationMetadata::None,
        },
        attestation_format: AttestationFormat::None,
    })
}

struct AttestationFacts {
    format: String,
    aaguid: Vec<u8>,
    flags: u8,
}

/// `fmt` and, from `authData`, the flags and AAGUID, which the core's credential does not keep.
fn attestation_facts(object: &[u8]) -> Option<AttestationFacts> {
    use serde_cbor_2::Value as C;
    let C::Map(m) = serde_cbor_2::from_slice::<C>(object).ok()? else {
        return None;
    };
    let format = match m.get(&C::Text("fmt".into()))? {
        C::Text(t) => t.clone(),
        _ => return None,
    };
    let C::Bytes(auth) = m.get(&C::Text("authData".into()))? else {
        return None;
    };
    let flags = *auth.get(32)?;
    let aaguid = auth.get(37..53).map(<[u8]>::to_vec).unwrap_or_default();
    Some(AttestationFacts {
        format,
        aaguid,
        flags,
    })
}
