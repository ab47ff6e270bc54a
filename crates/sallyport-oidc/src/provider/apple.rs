//! Sign in with Apple's quirks (Kratos `provider_apple.go`): the client secret is a short-lived ES256 JWT
//! signed with the developer's key; the callback is a `form_post` when `email` or `name` is requested; the
//! user's name arrives once, as JSON in the `user` form field; some devices do not support nonces.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::DecodePrivateKey;
use serde_json::{Value, json};

use crate::claims::Claims;

pub(crate) const ISSUER: &str = "https://appleid.apple.com";

fn signing_key(pem: &str) -> Result<SigningKey, String> {
    SigningKey::from_pkcs8_pem(pem.trim()).map_err(|e| {
        format!("must be a PKCS#8 PEM encoded P-256 private key (\"-----BEGIN PRIVATE KEY-----\"): {e}")
    })
}

/// Start-up check of `apple_private_key`.
pub(crate) fn check_private_key(pem: &str) -> Result<(), String> {
    signing_key(pem).map(|_| ())
}

/// The client secret: `{alg: ES256, kid}` `{iss: team, sub: client_id, aud: https://appleid.apple.com,
/// iat, exp: +5 min}`.
pub fn client_secret(team_id: &str, key_id: &str, client_id: &str, pem: &str) -> Result<String, String> {
    let key = signing_key(pem)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let header = json!({"alg": "ES256", "kid": key_id, "typ": "JWT"});
    let claims = json!({"iss": team_id, "sub": client_id, "aud": [ISSUER], "iat": now, "exp": now + 300});
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature: Signature = key.sign(signing_input.as_bytes());
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    ))
}

/// Apple's `user` form field: `{"name": {"firstName": …, "lastName": …}}`, only on the first sign-in.
pub(crate) fn apply_user_field(user: Option<&str>, claims: &mut Claims) {
    let Some(Ok(Value::Object(user))) = user.map(serde_json::from_str::<Value>) else {
        return;
    };
    let Some(Value::Object(name)) = user.get("name") else {
        return;
    };
    if let Some(first) = name.get("firstName").and_then(Value::as_str)
        && claims.given_name.is_empty()
    {
        claims.given_name = first.to_string();
    }
    if let Some(last) = name.get("lastName").and_then(Value::as_str) {
        if claims.last_name.is_empty() {
            claims.last_name = last.to_string();
        }
        if claims.family_name.is_empty() {
            claims.family_name = last.to_string();
        }
    }
}

/// Apple: a token without a nonce is acceptable only from a device that says it can't do nonces.
pub(crate) fn can_skip_nonce(claims: &Claims) -> bool {
    !claims.nonce_supported
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use p256::ecdsa::VerifyingKey;
    use p256::ecdsa::signature::Verifier;
    use p256::pkcs8::{EncodePrivateKey, LineEnding};

    pub(crate) fn test_key_pem() -> String {
        let key = SigningKey::from_slice(&[7u8; 32]).unwrap();
        key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
    }

    #[test]
    fn client_secret_is_a_valid_es256_jwt() {
        let pem = test_key_pem();
        let jwt = client_secret("TEAM123", "KEY456", "com.example.app", &pem).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], "KEY456");
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["iss"], "TEAM123");
        assert_eq!(claims["sub"], "com.example.app");
        assert_eq!(claims["aud"], json!([ISSUER]));
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
            300
        );
        let sig = Signature::from_slice(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap()).unwrap();
        let vk = VerifyingKey::from(&signing_key(&pem).unwrap());
        vk.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
            .unwrap();
        assert!(check_private_key("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----").is_err());
    }

    #[test]
    fn user_field_fills_names_once() {
        let mut c = Claims::default();
        apply_user_field(
            Some(r#"{"name":{"firstName":"Ann","lastName":"Lee"},"email":"x"}"#),
            &mut c,
        );
        assert_eq!(
            (
                c.given_name.as_str(),
                c.family_name.as_str(),
                c.last_name.as_str()
            ),
            ("Ann", "Lee", "Lee")
        );
        let mut c = Claims {
            given_name: "Kept".into(),
            ..Default::default()
        };
        apply_user_field(Some(r#"{"name":{"firstName":"Other"}}"#), &mut c);
        assert_eq!(c.given_name, "Kept");
        apply_user_field(Some("not json"), &mut c);
        apply_user_field(None, &mut c);
    }
}
