//! The claims a provider asserts about the person, in the shape Kratos hands its Jsonnet mappers
//! (`std.extVar('claims')`: the standard fields, omitted when empty, plus `raw_claims`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::OidcError;

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero(n: &i64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(rename = "iss", default, skip_serializing_if = "String::is_empty")]
    pub issuer: String,
    #[serde(rename = "sub", default, skip_serializing_if = "String::is_empty")]
    pub subject: String,
    /// Microsoft's object id (`oid`).
    #[serde(rename = "oid", default, skip_serializing_if = "String::is_empty")]
    pub object_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub given_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub family_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub middle_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub nickname: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub preferred_username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub profile: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub picture: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub website: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub email_verified: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gender: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub birthdate: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub zoneinfo: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub locale: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub phone_number: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub phone_number_verified: bool,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub updated_at: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hd: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub team: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub nonce: String,
    /// Apple: whether the device supports nonces (`nonce_supported`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub nonce_supported: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub acr: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub raw_claims: Map<String, Value>,
}

fn text(raw: &Map<String, Value>, key: &str) -> String {
    match raw.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// `true`, `"true"` (Apple sends strings) — Kratos' `ConvertibleBoolean`.
fn boolean(raw: &Map<String, Value>, key: &str) -> bool {
    match raw.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

impl Claims {
    /// Reads the standard claims leniently from a provider's JSON (id_token payload or userinfo): wrong
    /// types become empty rather than failing the sign-in, the raw object is kept whole.
    pub fn from_raw(raw: Map<String, Value>) -> Claims {
        let locale = match raw.get("locale") {
            // LinkedIn sends {"language": "en", "country": "US"}.
            Some(Value::Object(o)) => {
                let lang = o.get("language").and_then(Value::as_str).unwrap_or("");
                let country = o.get("country").and_then(Value::as_str).unwrap_or("");
                match (lang.is_empty(), country.is_empty()) {
                    (true, _) => country.to_string(),
                    (_, true) => lang.to_string(),
                    _ => format!("{lang}-{country}"),
                }
            }
            _ => text(&raw, "locale"),
        };
        let amr = match raw.get("amr") {
            Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        };
        let updated_at = match raw.get("updated_at") {
            Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)).unwrap_or(0),
            _ => 0,
        };
        Claims {
            issuer: text(&raw, "iss"),
            subject: text(&raw, "sub"),
            object_id: text(&raw, "oid"),
            name: text(&raw, "name"),
            given_name: text(&raw, "given_name"),
            family_name: text(&raw, "family_name"),
            last_name: text(&raw, "last_name"),
            middle_name: text(&raw, "middle_name"),
            nickname: text(&raw, "nickname"),
            preferred_username: text(&raw, "preferred_username"),
            profile: text(&raw, "profile"),
            picture: text(&raw, "picture"),
            website: text(&raw, "website"),
            email: text(&raw, "email"),
            email_verified: boolean(&raw, "email_verified"),
            gender: text(&raw, "gender"),
            birthdate: text(&raw, "birthdate"),
            zoneinfo: text(&raw, "zoneinfo"),
            locale,
            phone_number: text(&raw, "phone_number"),
            phone_number_verified: boolean(&raw, "phone_number_verified"),
            updated_at,
            hd: text(&raw, "hd"),
            team: text(&raw, "team"),
            nonce: text(&raw, "nonce"),
            nonce_supported: boolean(&raw, "nonce_supported"),
            acr: text(&raw, "acr"),
            amr,
            raw_claims: raw,
        }
    }

    /// Kratos' `Claims.Validate`: a subject and an issuer are required.
    pub fn validate(&self) -> Result<(), OidcError> {
        if self.subject.is_empty() {
            return Err(OidcError::ClaimsInvalid(
                "provider did not return a subject".into(),
            ));
        }
        if self.issuer.is_empty() {
            return Err(OidcError::ClaimsInvalid("issuer not set in claims".into()));
        }
        Ok(())
    }

    /// The JSON the mapper sees as `std.extVar('claims')`.
    pub fn to_mapper_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lenient_and_kratos_shaped() {
        let raw = json!({"sub": "abc", "iss": "https://op", "email": "a@b.c", "email_verified": "true",
                         "locale": {"language": "en", "country": "US"}, "updated_at": 12, "extra": [1]});
        let c = Claims::from_raw(raw.as_object().unwrap().clone());
        assert!(c.email_verified);
        assert_eq!(c.locale, "en-US");
        let j = c.to_mapper_json();
        assert_eq!(j["sub"], "abc");
        assert_eq!(j["raw_claims"]["extra"], json!([1]));
        assert!(
            j.get("name").is_none(),
            "empty fields are omitted as Kratos' omitempty does"
        );
        assert!(c.validate().is_ok());
        let none = Claims::from_raw(json!({"sub": 1}).as_object().unwrap().clone());
        assert_eq!(none.subject, "1");
        assert!(matches!(none.validate(), Err(OidcError::ClaimsInvalid(_))));
    }
}
