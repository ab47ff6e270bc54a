//! Applying traits to an identity: schema validation and what the `ory.sh/kratos` extension derives
//! from them (credential identifiers, verifiable and recovery addresses, available AAL).

use serde_json::{Value, json};

use sallyport_core::identity::{Identity, credential_type};
use sallyport_core::time_fmt;
use sallyport_core::ui::Container;
use sallyport_schema::{Extracted, TraitError};

use crate::selfservice::common::FieldMessage;
use crate::state::App;

pub fn trait_errors(errors: Vec<TraitError>) -> Vec<FieldMessage> {
    errors
        .into_iter()
        .map(|e| FieldMessage {
            field: e.field,
            message: e.message,
        })
        .collect()
}

/// Validates `traits` against the identity's schema and updates everything derived from them.
pub fn apply_traits(app: &App, identity: &mut Identity, traits: Value) -> Result<Extracted, Vec<TraitError>> {
    let Some(schema) = app.schemas.get(&identity.schema_id) else {
        return Err(vec![TraitError {
            field: None,
            message: sallyport_core::text::validation_generic(&format!(
                "Identity schema \"{}\" is not configured.",
                identity.schema_id
            )),
        }]);
    };
    let extracted = schema.validate_owned_traits(traits)?;
    let now = time_fmt::now();
    // The extension may rewrite traits (phone numbers to E.164); keep what it produced.
    identity.traits = extracted.traits.clone();
    identity.merge_verifiable_addresses(&extracted.verifiable_addresses, now);
    identity.merge_recovery_addresses(&extracted.recovery_addresses, now);
    if let Some(c) = identity.credentials.get_mut(credential_type::PASSWORD) {
        c.identifiers = extracted.password_identifiers.clone();
    }
    // Kratos' credentials extension: security keys are found by the traits marked webauthn identifiers.
    if let Some(c) = identity.credentials.get_mut(credential_type::WEBAUTHN)
        && !extracted.webauthn_identifiers.is_empty()
    {
        c.identifiers = extracted.webauthn_identifiers.clone();
    }
    if extracted.code_identifiers.is_empty() {
        identity.credentials.remove(credential_type::CODE);
    } else {
        let ids = extracted
            .code_identifiers
            .iter()
            .map(|a| a.address.clone())
            .collect();
        let addresses: Vec<Value> = extracted
            .code_identifiers
            .iter()
            .map(|a| json!({"channel": a.via, "address": a.address}))
            .collect();
        identity.set_credential(credential_type::CODE, ids, json!({ "addresses": addresses }), now);
    }
    identity.available_aal = identity.compute_available_aal(app.settings.code_mfa_enabled);
    Ok(extracted)
}

/// Puts submitted trait values back into `traits.*` nodes so the form re-renders what was typed.
pub fn set_trait_values(ui: &mut Container, traits: &Value) {
    fn walk(ui: &mut Container, prefix: &str, v: &Value) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    walk(ui, &format!("{prefix}.{k}"), v);
                }
            }
            other => ui.set_value(prefix, other.clone()),
        }
    }
    walk(ui, "traits", traits);
}

pub use sallyport_core::store::AddressKind;

/// The identity owning a verifiable or recovery address, if any.
pub async fn find_by_address(
    app: &App,
    kind: AddressKind,
    via: &str,
    value: &str,
) -> Result<Option<Identity>, sallyport_core::store::StoreError> {
    match app.store.find_identity_by_address(kind, via, value).await {
        Ok(i) => Ok(Some(i)),
        Err(sallyport_core::store::StoreError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}
