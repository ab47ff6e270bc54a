//! Sessions and authenticator assurance levels (Kratos `session/session.go`).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aal {
    Aal0,
    Aal1,
    Aal2,
    Aal3,
}

impl Aal {
    pub fn as_str(self) -> &'static str {
        match self {
            Aal::Aal0 => "aal0",
            Aal::Aal1 => "aal1",
            Aal::Aal2 => "aal2",
            Aal::Aal3 => "aal3",
        }
    }
    pub fn parse(s: &str) -> Option<Aal> {
        match s {
            "aal0" => Some(Aal::Aal0),
            "aal1" => Some(Aal::Aal1),
            "aal2" => Some(Aal::Aal2),
            "aal3" => Some(Aal::Aal3),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthenticationMethod {
    pub method: String,
    pub aal: Aal,
    #[serde(with = "time::serde::rfc3339")]
    pub completed_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The upstream provider's `acr` claim, for social sign-in (Kratos `upstream_acr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_acr: Option<String>,
    /// The upstream provider's `amr` claim, for social sign-in (Kratos `upstream_amr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_amr: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    pub id: Uuid,
    #[serde(default)]
    pub ip_address: Option<String>,
    #[serde(default)]
    pub user_agent: Option<String>,
    #[serde(default)]
    pub location: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub id: Uuid,
    pub identity_id: Uuid,
    /// SHA-256 of the `ory_st_…` token; the token itself is never stored.
    pub token_digest: String,
    pub logout_token_digest: String,
    pub active: bool,
    pub expires_at: OffsetDateTime,
    pub authenticated_at: OffsetDateTime,
    pub issued_at: OffsetDateTime,
    pub aal: Aal,
    pub authentication_methods: Vec<AuthenticationMethod>,
    pub devices: Vec<Device>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A fresh session and the two plaintext tokens that are handed out once and then only kept as digests.
pub struct NewSession {
    pub session: Session,
    pub token: String,
    pub logout_token: String,
}

impl Session {
    pub fn issue(identity_id: Uuid, lifespan: time::Duration, now: OffsetDateTime) -> NewSession {
        let token = crate::secret::session_token();
        let logout_token = crate::secret::logout_token();
        NewSession {
            session: Session {
                // Time-ordered, as identities' ids (`row_id`): the sessions' primary key then grows at
                // its right edge instead of taking a random page of a large index per login.
                id: crate::row_id::new_row_id(),
                identity_id,
                token_digest: crate::secret::token_digest(&token),
                logout_token_digest: crate::secret::token_digest(&logout_token),
                active: true,
                expires_at: now + lifespan,
                authenticated_at: now,
                issued_at: now,
                aal: Aal::Aal0,
                authentication_methods: vec![],
                devices: vec![],
                created_at: now,
                updated_at: now,
            },
            token,
            logout_token,
        }
    }

    pub fn is_active(&self, now: OffsetDateTime) -> bool {
        self.active && self.expires_at > now
    }

    /// Records a completed factor and recomputes the AAL.
    pub fn complete_method(&mut self, method: &str, aal: Aal, now: OffsetDateTime) {
        self.authentication_methods.push(AuthenticationMethod {
            method: method.into(),
            aal,
            completed_at: now,
            provider: None,
            upstream_acr: None,
            upstream_amr: None,
        });
        self.authenticated_at = now;
        self.aal = compute_aal(&self.authentication_methods);
    }
}

/// Kratos `SetAuthenticatorAssuranceLevel`: aal2 needs one first and one second factor; a federated
/// sign-in (oidc, saml) the upstream provider vouched for at aal2 counts as both.
/// Beyond Kratos (kratos#4317): two second-class factors of the same class never add up to aal2,
/// because only an aal1 entry counts as the first factor.
pub fn compute_aal(methods: &[AuthenticationMethod]) -> Aal {
    if methods.is_empty() {
        return Aal::Aal0;
    }
    let federated_aal2 = methods
        .iter()
        .any(|m| m.aal == Aal::Aal2 && matches!(m.method.as_str(), "oidc" | "saml"));
    let first = methods.iter().any(|m| m.aal == Aal::Aal1);
    let second = methods.iter().any(|m| m.aal == Aal::Aal2);
    if federated_aal2 || (first && second) {
        Aal::Aal2
    } else {
        Aal::Aal1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(aal: Aal) -> AuthenticationMethod {
        AuthenticationMethod {
            method: "x".into(),
            aal,
            completed_at: OffsetDateTime::UNIX_EPOCH,
            provider: None,
            upstream_acr: None,
            upstream_amr: None,
        }
    }

    #[test]
    fn aal_needs_two_classes() {
        assert_eq!(compute_aal(&[]), Aal::Aal0);
        assert_eq!(compute_aal(&[m(Aal::Aal1)]), Aal::Aal1);
        assert_eq!(compute_aal(&[m(Aal::Aal1), m(Aal::Aal2)]), Aal::Aal2);
        assert_eq!(compute_aal(&[m(Aal::Aal2), m(Aal::Aal2)]), Aal::Aal1);
    }

    #[test]
    fn an_upstream_aal2_sign_in_is_both_factors() {
        let federated = |method: &str, aal| AuthenticationMethod {
            method: method.into(),
            ..m(aal)
        };
        assert_eq!(compute_aal(&[federated("oidc", Aal::Aal2)]), Aal::Aal2);
        assert_eq!(compute_aal(&[federated("oidc", Aal::Aal1)]), Aal::Aal1);
        assert_eq!(compute_aal(&[federated("totp", Aal::Aal2)]), Aal::Aal1);
    }
}
