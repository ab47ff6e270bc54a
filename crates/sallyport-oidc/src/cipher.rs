//! `secrets.cipher` + `ciphers.algorithm`: how Kratos encrypts provider tokens at rest (its `cipher`
//! package), byte for byte so a Kratos database stays readable:
//!
//! - `noop`: hex of the plaintext;
//! - `aes`: hex(nonce(12) ‖ AES-256-GCM ciphertext ‖ tag(16)) — Go's `NewGCMWithRandomNonce` layout;
//! - `xchacha20-poly1305`: hex(nonce(24) ‖ ciphertext ‖ tag(16)).
//!
//! The key is the secret's 32 bytes as written. The first secret encrypts; every secret is tried when
//! decrypting (rotation). An empty message encrypts to `""` and `""` decrypts to an empty message, as in Kratos.

use aes_gcm::aead::{Aead, KeyInit};
use serde_json::Value;

use crate::error::OidcError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CipherAlgorithm {
    #[default]
    Noop,
    Aes,
    XChaCha20Poly1305,
}

impl CipherAlgorithm {
    pub fn parse(s: &str) -> Option<CipherAlgorithm> {
        match s {
            "" | "noop" => Some(CipherAlgorithm::Noop),
            "aes" => Some(CipherAlgorithm::Aes),
            "xchacha20-poly1305" => Some(CipherAlgorithm::XChaCha20Poly1305),
            _ => None,
        }
    }
}

#[derive(Clone)]
pub struct Cipher {
    algorithm: CipherAlgorithm,
    keys: Vec<[u8; 32]>,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cipher")
            .field("algorithm", &self.algorithm)
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl Cipher {
    /// `secrets` are `secrets.cipher` (each exactly 32 bytes, as Kratos' schema requires).
    pub fn new(algorithm: CipherAlgorithm, secrets: &[String]) -> Result<Cipher, String> {
        let mut keys = Vec::with_capacity(secrets.len());
        for (i, s) in secrets.iter().enumerate() {
            let key: [u8; 32] = s
                .as_bytes()
                .try_into()
                .map_err(|_| format!("secrets.cipher.{i} must be exactly 32 characters long"))?;
            keys.push(key);
        }
        Ok(Cipher { algorithm, keys })
    }

    /// From the whole Kratos configuration (`ciphers.algorithm`, `secrets.cipher`).
    pub fn from_config(config: &Value) -> Result<Cipher, String> {
        let name = config
            .pointer("/ciphers/algorithm")
            .and_then(Value::as_str)
            .unwrap_or("noop");
        let algorithm = CipherAlgorithm::parse(name).ok_or_else(|| {
            format!("ciphers.algorithm: \"{name}\" is not one of noop, aes, xchacha20-poly1305")
        })?;
        let secrets: Vec<String> = config
            .pointer("/secrets/cipher")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        Cipher::new(algorithm, &secrets)
    }

    pub fn algorithm(&self) -> CipherAlgorithm {
        self.algorithm
    }

    pub fn encrypt(&self, message: &[u8]) -> Result<String, OidcError> {
        if self.algorithm == CipherAlgorithm::Noop {
            return Ok(hex::encode(message));
        }
        if message.is_empty() {
            return Ok(String::new());
        }
        let key = self.keys.first().ok_or_else(|| {
            OidcError::Misconfiguration(
                "Unable to encrypt message because no cipher secrets were configured.".into(),
            )
        })?;
        let sealed = match self.algorithm {
            CipherAlgorithm::Aes => {
                let nonce = random_bytes::<12>()?;
                let aead = aes_gcm::Aes256Gcm::new(key.into());
                let ct = aead
                    .encrypt((&nonce).into(), message)
                    .map_err(|_| OidcError::Cipher("Unable to encrypt message.".into()))?;
                [nonce.as_slice(), &ct].concat()
            }
            CipherAlgorithm::XChaCha20Poly1305 => {
                let nonce = random_bytes::<24>()?;
                let aead = chacha20poly1305::XChaCha20Poly1305::new(key.into());
                let ct = aead
                    .encrypt((&nonce).into(), message)
                    .map_err(|_| OidcError::Cipher("Unable to encrypt message.".into()))?;
                [nonce.as_slice(), &ct].concat()
            }
            CipherAlgorithm::Noop => unreachable!("handled above"),
        };
        Ok(hex::encode(sealed))
    }

    pub fn decrypt(&self, ciphertext: &str) -> Result<Vec<u8>, OidcError> {
        if self.algorithm == CipherAlgorithm::Noop {
            return hex::decode(ciphertext)
                .map_err(|_| OidcError::Cipher("Unable to decode hex encrypted string".into()));
        }
        if ciphertext.is_empty() {
            return Ok(Vec::new());
        }
        if self.keys.is_empty() {
            return Err(OidcError::Misconfiguration(
                "Unable to decipher the encrypted message because no cipher secrets were configured.".into(),
            ));
        }
        let raw = hex::decode(ciphertext)
            .map_err(|_| OidcError::Cipher("Unable to decode hex encrypted string".into()))?;
        let nonce_len = if self.algorithm == CipherAlgorithm::Aes {
            12
        } else {
            24
        };
        if raw.len() < nonce_len + 16 {
            return Err(OidcError::Cipher("cipher text too short".into()));
        }
        let (nonce, ct) = raw.split_at(nonce_len);
        for key in &self.keys {
            let opened = match self.algorithm {
                CipherAlgorithm::Aes => aes_gcm::Aes256Gcm::new(key.into()).decrypt(nonce.into(), ct),
                _ => chacha20poly1305::XChaCha20Poly1305::new(key.into()).decrypt(nonce.into(), ct),
            };
            if let Ok(plain) = opened {
                return Ok(plain);
            }
        }
        Err(OidcError::Cipher(
            "Unable to decipher the encrypted message.".into(),
        ))
    }
}

fn random_bytes<const N: usize>() -> Result<[u8; N], OidcError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| OidcError::Cipher(format!("Unable to generate nonce: {e}")))?;
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "0123456789abcdef0123456789abcdef";
    const K2: &str = "fedcba9876543210fedcba9876543210";

    #[test]
    fn round_trips_and_rotation() {
        for alg in [
            CipherAlgorithm::Aes,
            CipherAlgorithm::XChaCha20Poly1305,
            CipherAlgorithm::Noop,
        ] {
            let old = Cipher::new(alg, &[K2.into()]).unwrap();
            let rotated = Cipher::new(alg, &[K1.into(), K2.into()]).unwrap();
            let sealed = old.encrypt(b"access-token").unwrap();
            assert_eq!(rotated.decrypt(&sealed).unwrap(), b"access-token");
            let sealed = rotated.encrypt(b"refresh").unwrap();
            assert_eq!(rotated.decrypt(&sealed).unwrap(), b"refresh");
            if alg != CipherAlgorithm::Noop {
                assert_ne!(sealed, hex::encode(b"refresh"));
                assert!(
                    old.decrypt(&sealed).is_err(),
                    "{alg:?}: a key not configured must not decrypt"
                );
            }
        }
    }

    #[test]
    fn layouts_match_kratos() {
        let aes = Cipher::new(CipherAlgorithm::Aes, &[K1.into()]).unwrap();
        let sealed = hex::decode(aes.encrypt(b"abc").unwrap()).unwrap();
        assert_eq!(sealed.len(), 12 + 3 + 16);
        let x = Cipher::new(CipherAlgorithm::XChaCha20Poly1305, &[K1.into()]).unwrap();
        let sealed = hex::decode(x.encrypt(b"abc").unwrap()).unwrap();
        assert_eq!(sealed.len(), 24 + 3 + 16);
        assert_eq!(
            Cipher::new(CipherAlgorithm::Noop, &[])
                .unwrap()
                .encrypt(b"ab")
                .unwrap(),
            "6162"
        );
        assert_eq!(aes.encrypt(b"").unwrap(), "");
        assert_eq!(aes.decrypt("").unwrap(), b"");
    }

    /// A value sealed by Go's `cipher.NewGCMWithRandomNonce` (Kratos' `aes`) with key K1: nonce ‖ ct ‖ tag.
    /// Produced here with the same primitive and layout, then opened by the public API.
    #[test]
    fn opens_go_layout() {
        let nonce = [7u8; 12];
        let aead = aes_gcm::Aes256Gcm::new(K1.as_bytes().into());
        let ct = aead.encrypt((&nonce).into(), b"go".as_slice()).unwrap();
        let wire = hex::encode([nonce.as_slice(), &ct].concat());
        let c = Cipher::new(CipherAlgorithm::Aes, &[K1.into()]).unwrap();
        assert_eq!(c.decrypt(&wire).unwrap(), b"go");
    }

    #[test]
    fn hostile_inputs() {
        let c = Cipher::new(CipherAlgorithm::XChaCha20Poly1305, &[K1.into()]).unwrap();
        for bad in ["zz", "00", &"ab".repeat(30), "0"] {
            assert!(c.decrypt(bad).is_err(), "{bad}");
        }
        assert!(Cipher::new(CipherAlgorithm::Aes, &["short".into()]).is_err());
        let none = Cipher::new(CipherAlgorithm::Aes, &[]).unwrap();
        assert!(matches!(none.encrypt(b"x"), Err(OidcError::Misconfiguration(_))));
    }

    #[test]
    fn from_kratos_config() {
        let cfg =
            serde_json::json!({"ciphers": {"algorithm": "xchacha20-poly1305"}, "secrets": {"cipher": [K1]}});
        let c = Cipher::from_config(&cfg).unwrap();
        assert_eq!(c.algorithm(), CipherAlgorithm::XChaCha20Poly1305);
        assert!(Cipher::from_config(&serde_json::json!({"ciphers": {"algorithm": "rot13"}})).is_err());
        assert_eq!(
            Cipher::from_config(&serde_json::json!({})).unwrap().algorithm(),
            CipherAlgorithm::Noop
        );
    }
}
