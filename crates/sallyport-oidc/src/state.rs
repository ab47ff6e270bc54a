//! The per-flow record of a pending sign-in and the callback's parameters.
//!
//! [`PendingAuth`] is stored on the flow (its internal context), not in process memory, so the callback may
//! land on any node. The `state` parameter names its flow (kind + id) so the callback handler can load the
//! flow without a cookie; it also carries 256 random bits that must match the stored record, compared in
//! constant time — a state naming someone else's flow is useless without them. The record must be removed
//! from the flow once a callback used it (Kratos expires its continuity container), so a replayed callback
//! finds nothing and fails with [`OidcError::StateMismatch`].

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::error::OidcError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowKind {
    Login,
    Registration,
    Settings,
}

impl FlowKind {
    fn tag(self) -> char {
        match self {
            FlowKind::Login => 'l',
            FlowKind::Registration => 'r',
            FlowKind::Settings => 's',
        }
    }

    fn from_tag(c: &str) -> Option<FlowKind> {
        match c {
            "l" => Some(FlowKind::Login),
            "r" => Some(FlowKind::Registration),
            "s" => Some(FlowKind::Settings),
            _ => None,
        }
    }
}

/// Which flow a `state` parameter belongs to (not yet proof of anything).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateRef {
    pub flow_kind: FlowKind,
    pub flow_id: Uuid,
}

/// Reads the flow reference out of a callback's `state`.
pub fn parse_state(state: Option<&str>) -> Result<StateRef, OidcError> {
    let state = state.filter(|s| !s.is_empty()).ok_or(OidcError::StateMissing)?;
    if state.len() > 256 {
        return Err(OidcError::StateInvalid);
    }
    let mut parts = state.split('.');
    let (Some(kind), Some(id), Some(random), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(OidcError::StateInvalid);
    };
    let flow_kind = FlowKind::from_tag(kind).ok_or(OidcError::StateInvalid)?;
    let flow_id = Uuid::try_parse(id).map_err(|_| OidcError::StateInvalid)?;
    if URL_SAFE_NO_PAD.decode(random).map(|b| b.len()) != Ok(32) {
        return Err(OidcError::StateInvalid);
    }
    Ok(StateRef { flow_kind, flow_id })
}

pub(crate) fn random_token(bytes: usize) -> Result<String, OidcError> {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b)
        .map_err(|e| OidcError::Misconfiguration(format!("no randomness available: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

pub(crate) fn new_state(kind: FlowKind, flow_id: Uuid) -> Result<String, OidcError> {
    Ok(format!(
        "{}.{}.{}",
        kind.tag(),
        flow_id.simple(),
        random_token(32)?
    ))
}

/// What the flow must keep between the redirect to the provider and the callback. Serialise it into the
/// flow's internal context; it holds the PKCE verifier, so never into anything a client can read.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAuth {
    pub provider_id: String,
    pub flow_id: Uuid,
    pub flow_kind: FlowKind,
    pub state: String,
    /// Sent to OpenID providers and checked against the id_token; `None` for plain OAuth2 providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkce_verifier: Option<String>,
    pub redirect_uri: String,
    /// Unix seconds; the flow's own expiry is what bounds the ceremony.
    pub created_at: i64,
}

impl std::fmt::Debug for PendingAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingAuth")
            .field("provider_id", &self.provider_id)
            .field("flow_id", &self.flow_id)
            .field("flow_kind", &self.flow_kind)
            .field("pkce", &self.pkce_verifier.is_some())
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

/// The query (GET) or form (Apple's `form_post`) of a callback.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallbackParams {
    /// The `{provider}` path segment; `None` on the generic `/self-service/methods/oidc/callback`.
    pub provider_in_path: Option<String>,
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// Apple sends the user's name once, as JSON in `user`.
    pub user: Option<String>,
}

impl CallbackParams {
    /// From decoded query or form pairs. `authCode` is accepted for `code` as Kratos does.
    pub fn from_pairs<K, V, I>(provider_in_path: Option<&str>, pairs: I) -> CallbackParams
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        let mut p = CallbackParams {
            provider_in_path: provider_in_path.map(str::to_string),
            ..Default::default()
        };
        let mut auth_code = None;
        for (k, v) in pairs {
            let slot = match k.as_ref() {
                "state" => &mut p.state,
                "code" => &mut p.code,
                "authCode" => &mut auth_code,
                "error" => &mut p.error,
                "error_description" => &mut p.error_description,
                "user" => &mut p.user,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(v.into()).filter(|s: &String| !s.is_empty());
            }
        }
        if p.code.is_none() {
            p.code = auth_code;
        }
        p
    }
}

impl PendingAuth {
    /// Checks a callback against this record (Kratos' `ValidateCallback`, in its order) and returns the code.
    pub fn verify_callback<'a>(&self, callback: &'a CallbackParams) -> Result<&'a str, OidcError> {
        let state = callback.state.as_deref().ok_or(OidcError::StateMissing)?;
        let reference = parse_state(Some(state))?;
        let matches: bool = state.as_bytes().ct_eq(self.state.as_bytes()).into();
        if !matches || reference.flow_id != self.flow_id || reference.flow_kind != self.flow_kind {
            return Err(OidcError::StateMismatch);
        }
        if let Some(p) = &callback.provider_in_path
            && *p != self.provider_id
        {
            return Err(OidcError::ProviderMismatch);
        }
        if let Some(error) = &callback.error {
            // Both are attacker-controlled and end up in the reason shown to the person: keep them short.
            return Err(OidcError::ProviderDenied {
                error: truncate(error, 64),
                description: truncate(callback.error_description.as_deref().unwrap_or(""), 512),
            });
        }
        callback.code.as_deref().ok_or(OidcError::CodeMissing)
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending() -> PendingAuth {
        let flow_id = Uuid::new_v4();
        PendingAuth {
            provider_id: "op".into(),
            flow_id,
            flow_kind: FlowKind::Login,
            state: new_state(FlowKind::Login, flow_id).unwrap(),
            nonce: Some("n".into()),
            pkce_verifier: None,
            redirect_uri: "http://x/cb".into(),
            created_at: 0,
        }
    }

    fn cb(state: Option<&str>, extra: &[(&str, &str)]) -> CallbackParams {
        let mut pairs: Vec<(String, String)> = extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let Some(s) = state {
            pairs.push(("state".into(), s.into()));
        }
        CallbackParams::from_pairs(Some("op"), pairs)
    }

    #[test]
    fn state_round_trip() {
        let p = pending();
        let r = parse_state(Some(&p.state)).unwrap();
        assert_eq!((r.flow_id, r.flow_kind), (p.flow_id, FlowKind::Login));
        assert_eq!(
            p.verify_callback(&cb(Some(&p.state), &[("code", "c")])).unwrap(),
            "c"
        );
        assert_eq!(
            p.verify_callback(&cb(Some(&p.state), &[("authCode", "c2")]))
                .unwrap(),
            "c2"
        );
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<PendingAuth>(&json).unwrap(), p);
    }

    #[test]
    fn hostile_callbacks() {
        let p = pending();
        assert_eq!(
            p.verify_callback(&cb(None, &[("code", "c")])),
            Err(OidcError::StateMissing)
        );
        for bad in [
            "x",
            "l.nope.abc",
            "q.00000000000000000000000000000000.abc",
            &"a".repeat(300),
        ] {
            assert_eq!(
                p.verify_callback(&cb(Some(bad), &[("code", "c")])),
                Err(OidcError::StateInvalid),
                "{bad}"
            );
        }
        // Well-formed, same flow, other random part: forged.
        let forged = new_state(FlowKind::Login, p.flow_id).unwrap();
        assert_eq!(
            p.verify_callback(&cb(Some(&forged), &[("code", "c")])),
            Err(OidcError::StateMismatch)
        );
        let mut other = cb(Some(&p.state), &[("code", "c")]);
        other.provider_in_path = Some("evil".into());
        assert_eq!(p.verify_callback(&other), Err(OidcError::ProviderMismatch));
        let denied_cb = cb(
            Some(&p.state),
            &[("error", "access_denied"), ("error_description", "no")],
        );
        assert_eq!(
            p.verify_callback(&denied_cb),
            Err(OidcError::ProviderDenied {
                error: "access_denied".into(),
                description: "no".into()
            })
        );
        assert_eq!(
            p.verify_callback(&cb(Some(&p.state), &[])),
            Err(OidcError::CodeMissing)
        );
    }
}
