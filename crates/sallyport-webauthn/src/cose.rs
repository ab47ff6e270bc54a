//! COSE_Key bytes (what Kratos stores as `public_key`) to and from webauthn-rs-core's parsed key.

use std::collections::BTreeMap;

use serde_cbor_2::Value;
use webauthn_rs_core::proto::{COSEKey, COSEKeyType};

pub fn parse(bytes: &[u8]) -> Option<COSEKey> {
    let v: Value = serde_cbor_2::from_slice(bytes).ok()?;
    COSEKey::try_from(&v).ok()
}

/// Canonical COSE_Key encoding (RFC 9053 labels: 1 kty, 3 alg, -1 crv|n, -2 x|e, -3 y).
pub fn encode(key: &COSEKey) -> Vec<u8> {
    let int = |i: i64| Value::Integer(i.into());
    let mut m = BTreeMap::new();
    m.insert(int(3), int(key.type_ as i64));
    match &key.key {
        COSEKeyType::EC_EC2(k) => {
            m.insert(int(1), int(2));
            m.insert(int(-1), int(k.curve.clone() as i64));
            m.insert(int(-2), Value::Bytes(k.x.clone()));
            m.insert(int(-3), Value::Bytes(k.y.clone()));
        }
        COSEKeyType::EC_OKP(k) => {
            m.insert(int(1), int(1));
            m.insert(int(-1), int(k.curve.clone() as i64));
            m.insert(int(-2), Value::Bytes(k.x.clone()));
        }
        COSEKeyType::RSA(k) => {
            m.insert(int(1), int(3));
            m.insert(int(-1), Value::Bytes(k.n.clone()));
            m.insert(int(-2), Value::Bytes(k.e.to_vec()));
        }
    }
    serde_cbor_2::to_vec(&Value::Map(m)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use super::*;

    #[test]
    fn a_kratos_public_key_parses_and_encodes_back_to_the_same_bytes() {
        let raw = base64::engine::general_purpose::STANDARD
            .decode("pQECAyYgASFYILAYFLoH1T8bQMSbPrNBCMMS5U7OFWRwv2U+GkAoiBADIlggBv+8ni7XVZYBB8ufMbP/d9fDxbmOkVVHOgcJifnoOR4=")
            .unwrap();
        let key = parse(&raw).unwrap();
        assert_eq!(encode(&key), raw);
        assert!(parse(b"\xa1\x01").is_none());
        assert!(parse(b"not cbor").is_none());
    }
}
