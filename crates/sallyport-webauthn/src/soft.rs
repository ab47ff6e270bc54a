//! A software authenticator for tests: P-256 keys, discoverable credentials with user handles,
//! a sign counter, `none` attestation. It answers the options the server sends exactly as a
//! browser would hand them to the page (base64url JSON), and can be told to misbehave.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_cbor_2::Value as Cbor;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub struct SoftCredential {
    pub id: Vec<u8>,
    pub rp_id: String,
    pub user_handle: Vec<u8>,
    key: SigningKey,
    pub counter: u32,
    /// The COSE_Key of the public key, as an authenticator reports it at registration.
    pub cose: Vec<u8>,
}

#[derive(Default)]
pub struct SoftAuthenticator {
    pub credentials: Vec<SoftCredential>,
    /// Sets the backup-eligible and backed-up flags, as synced passkeys do.
    pub backup: bool,
    /// Claims this attestation format (with an empty statement) instead of `none`.
    pub attestation_format: Option<String>,
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("OS randomness");
    b
}

fn b64(v: &Value) -> Vec<u8> {
    v.as_str()
        .and_then(|s| B64URL.decode(s.trim_end_matches('=')).ok())
        .unwrap_or_default()
}

impl SoftAuthenticator {
    pub fn new() -> SoftAuthenticator {
        SoftAuthenticator::default()
    }

    fn flags(&self, attested: bool) -> u8 {
        let mut f = 0x01 | 0x04; // user present, user verified
        if self.backup {
            f |= 0x08 | 0x10;
        }
        if attested {
            f |= 0x40;
        }
        f
    }

    /// `navigator.credentials.create(options)` for `origin`; `options` is `{"publicKey": …}` as
    /// the server sent it. Returns the JSON the page posts back.
    pub fn create(&mut self, options: &Value, origin: &str) -> Value {
        let pk = &options["publicKey"];
        let rp_id = pk["rp"]["id"].as_str().unwrap_or_default().to_owned();
        let client_data = json!({
            "type": "webauthn.create",
            "challenge": pk["challenge"],
            "origin": origin,
            "crossOrigin": false,
        })
        .to_string();
        let key = loop {
            if let Ok(k) = SigningKey::from_bytes(&random::<32>().into()) {
                break k;
            }
        };
        let id = random::<32>().to_vec();
        let point = key.verifying_key().to_encoded_point(false);
        let int = |i: i64| Cbor::Integer(i.into());
        let cose = serde_cbor_2::to_vec(&Cbor::Map(BTreeMap::from([
            (int(1), int(2)),
            (int(3), int(-7)),
            (int(-1), int(1)),
            (int(-2), Cbor::Bytes(point.x().unwrap().to_vec())),
            (int(-3), Cbor::Bytes(point.y().unwrap().to_vec())),
        ])))
        .unwrap();
        let mut auth_data = Sha256::digest(rp_id.as_bytes()).to_vec();
        auth_data.push(self.flags(true));
        auth_data.extend(0u32.to_be_bytes());
        auth_data.extend([0u8; 16]);
        auth_data.extend((id.len() as u16).to_be_bytes());
        auth_data.extend(&id);
        auth_data.extend(&cose);
        let attestation = serde_cbor_2::to_vec(&Cbor::Map(BTreeMap::from([
            (
                Cbor::Text("fmt".into()),
                Cbor::Text(self.attestation_format.clone().unwrap_or_else(|| "none".into())),
            ),
            (Cbor::Text("attStmt".into()), Cbor::Map(BTreeMap::new())),
            (Cbor::Text("authData".into()), Cbor::Bytes(auth_data)),
        ])))
        .unwrap();
        self.credentials.push(SoftCredential {
            id: id.clone(),
            rp_id,
            user_handle: b64(&pk["user"]["id"]),
            key,
            counter: 0,
            cose,
        });
        json!({
            "id": B64URL.encode(&id),
            "rawId": B64URL.encode(&id),
            "type": "public-key",
            "response": {
                "attestationObject": B64URL.encode(attestation),
                "clientDataJSON": B64URL.encode(client_data),
                "transports": ["internal"],
            },
        })
    }

    /// `navigator.credentials.get(options)` with the credential at `index` (the newest when `None`).
    pub fn get(&mut self, options: &Value, origin: &str, index: Option<usize>) -> Value {
        let pk = &options["publicKey"];
        let at = index.unwrap_or(self.credentials.len().saturating_sub(1));
        let flags = self.flags(false);
        let cred = &mut self.credentials[at];
        cred.counter += 1;
        let client_data = json!({
            "type": "webauthn.get",
            "challenge": pk["challenge"],
            "origin": origin,
            "crossOrigin": false,
        })
        .to_string();
        let rp_id = pk["rpId"].as_str().unwrap_or(&cred.rp_id).to_owned();
        let mut auth_data = Sha256::digest(rp_id.as_bytes()).to_vec();
        auth_data.push(flags);
        auth_data.extend(cred.counter.to_be_bytes());
        let mut signed = auth_data.clone();
        signed.extend(Sha256::digest(client_data.as_bytes()));
        let sig: Signature = cred.key.sign(&signed);
        json!({
            "id": B64URL.encode(&cred.id),
            "rawId": B64URL.encode(&cred.id),
            "type": "public-key",
            "response": {
                "authenticatorData": B64URL.encode(auth_data),
                "clientDataJSON": B64URL.encode(client_data),
                "signature": B64URL.encode(sig.to_der().as_bytes()),
                "userHandle": B64URL.encode(&cred.user_handle),
            },
        })
    }
}
