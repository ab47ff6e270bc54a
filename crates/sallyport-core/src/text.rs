//! UI messages with Kratos' numeric ids and texts (Kratos `text/id.go`, `text/message_*.go`).
//! Clients match on `id` and sometimes on `text`, so both are interface facts; `data/ui-messages.json`
//! is the reference the tests check these constructors against.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Every UI message id Sallyport can put on a flow (`ui.messages`, node messages and labels), Kratos' and its
/// own: the constructors here, the schema validator's (`sallyport-schema`), the password policy's
/// (`sallyport-password`) and social sign-in's (`sallyport-oidc`). `docs/errors.md` is checked against this
/// list, and the integration suite checks that no id in the sources is missing from it.
pub const MESSAGE_IDS: &[u32] = &[
    // login
    1010001, 1010002, 1010003, 1010004, 1010006, 1010007, 1010008, 1010009, 1010010, 1010012, 1010013,
    1010014, 1010015, 1010016, 1010017, 1010018, 1010021, 1010022, 1010023, 1010025, // registration
    1040001, 1040002, 1040003, 1040004, 1040005, 1040006, 1040007, 1040008, 1040009, // settings
    1050001, 1050002, 1050003, 1050004, 1050005, 1050006, 1050007, 1050008, 1050009, 1050010, 1050011,
    1050012, 1050013, 1050014, 1050015, 1050016, 1050017, 1050018, 1050019, 1050020, // recovery
    1060001, 1060002, 1060003, // node labels
    1070001, 1070002, 1070003, 1070004, 1070005, 1070006, 1070007, 1070008, 1070009, 1070010, 1070011,
    1070012, 1070013, // verification
    1080001, 1080002, 1080003, 1080004, 1080005, // validation
    4000001, 4000002, 4000003, 4000004, 4000005, 4000006, 4000007, 4000008, 4000009, 4000010, 4000011,
    4000012, 4000013, 4000014, 4000015, 4000016, 4000017, 4000018, 4000019, 4000020, 4000021, 4000022,
    4000023, 4000024, 4000025, 4000026, 4000027, 4000028, 4000029, 4000030, 4000031, 4000032, 4000033,
    4000034, 4000035, 4000036, 4000039, 4000040, 4000041, 4000043, // login errors
    4010001, 4010002, 4010003, 4010008, 4010011, // registration errors
    4040001, 4040003, // settings errors
    4050001, // recovery errors
    4060001, 4060004, 4060005, 4060006, // verification errors
    4070001, 4070002, 4070003, 4070005, 4070006, // Sallyport's rate limits
    4900001, 4900002, 4900003, 4900004, 4900005,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageType {
    Info,
    Error,
    Success,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub id: u32,
    pub text: String,
    #[serde(rename = "type")]
    pub kind: MessageType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
}

fn info(id: u32, text: impl Into<String>) -> Message {
    Message {
        id,
        text: text.into(),
        kind: MessageType::Info,
        context: None,
    }
}

fn error(id: u32, text: impl Into<String>) -> Message {
    Message {
        id,
        text: text.into(),
        kind: MessageType::Error,
        context: None,
    }
}

impl Message {
    pub fn with_context(mut self, context: Value) -> Self {
        self.context = Some(context);
        self
    }
}

// --- login (101xxxx) ---
pub fn login_reauth() -> Message {
    info(1010003, "Please confirm this action by verifying that it is you.")
}
pub fn login_mfa() -> Message {
    info(1010004, "Please complete the second authentication challenge.")
}
pub fn login_with_password() -> Message {
    info(1010022, "Sign in with password")
}
pub fn login_sign_in() -> Message {
    info(1010001, "Sign in")
}

/// 1010002: one social sign-in button per provider.
pub fn login_with_provider(label: &str, provider_id: &str) -> Message {
    info(1010002, format!("Sign in with {label}"))
        .with_context(json!({ "provider": label, "provider_id": provider_id }))
}
/// 1010018: the provider buttons on the account-linking login flow.
pub fn login_confirm_with_provider(label: &str) -> Message {
    info(1010018, format!("Confirm with {label}")).with_context(json!({ "provider": label }))
}
/// 1010016: a social sign-in found the address on another account; sign in there first.
pub fn login_link(duplicate_identifier: &str, provider: &str) -> Message {
    info(
        1010016,
        format!(
            "You tried to sign in with \"{duplicate_identifier}\", but that email is already used by another account. Sign in to your account with one of the options below to add your account \"{duplicate_identifier}\" at \"{provider}\" as another way to sign in."
        ),
    )
    .with_context(json!({
        "duplicateIdentifier": duplicate_identifier,
        "provider": provider,
        "available_credential_types": [],
        "available_providers": [],
    }))
}

// --- registration (104xxxx) ---
/// 1040002: one social sign-up button per provider.
pub fn registration_with_provider(label: &str, provider_id: &str) -> Message {
    info(1040002, format!("Sign up with {label}"))
        .with_context(json!({ "provider": label, "provider_id": provider_id }))
}
pub fn registration_sign_up() -> Message {
    info(1040001, "Sign up")
}
/// 1040003: the button that continues a social sign-up whose traits need completing.
pub fn registration_continue() -> Message {
    info(1040003, "Continue")
}
pub fn registration_back() -> Message {
    info(1040008, "Back")
}
pub fn registration_choose_credentials() -> Message {
    info(
        1040009,
        "Please choose a credential to authenticate yourself with.",
    )
}

// --- settings (105xxxx) ---
/// 1050002: link a provider in settings.
pub fn settings_link_provider(label: &str) -> Message {
    info(1050002, format!("Link {label}")).with_context(json!({ "provider": label }))
}
/// 1050003: unlink a provider in settings.
pub fn settings_unlink_provider(label: &str) -> Message {
    info(1050003, format!("Unlink {label}")).with_context(json!({ "provider": label }))
}
pub fn settings_saved() -> Message {
    Message {
        kind: MessageType::Success,
        ..info(1050001, "Your changes have been saved!")
    }
}

// --- node labels (107xxxx) ---
pub fn label_password() -> Message {
    info(1070001, "Password")
}
pub fn label_generated(title: &str, name: &str) -> Message {
    info(1070002, title).with_context(json!({ "title": title, "name": name }))
}
pub fn label_id() -> Message {
    info(1070004, "ID")
}
pub fn label_email() -> Message {
    info(1070007, "Email")
}
pub fn label_submit() -> Message {
    info(1070005, "Submit")
}
pub fn label_save() -> Message {
    info(1070003, "Save")
}
pub fn label_continue() -> Message {
    info(1070009, "Continue")
}

// --- validation (400xxxx) ---
pub fn validation_generic(reason: &str) -> Message {
    error(4000001, reason).with_context(json!({ "reason": reason }))
}
pub fn validation_required(property: &str) -> Message {
    error(4000002, format!("Property {property} is missing.")).with_context(json!({ "property": property }))
}
pub fn validation_min_length(min: u64, actual: u64) -> Message {
    error(4000003, format!("length must be >= {min}, but got {actual}"))
        .with_context(json!({ "min_length": min, "actual_length": actual }))
}
pub fn validation_pattern(pattern: &str) -> Message {
    error(4000004, format!("does not match pattern {pattern:?}")).with_context(json!({ "pattern": pattern }))
}
pub fn validation_invalid_credentials() -> Message {
    error(
        4000006,
        "The provided credentials are invalid, check for spelling mistakes in your password or username, email address, or phone number.",
    )
}
pub fn validation_duplicate_credentials() -> Message {
    error(
        4000007,
        "An account with the same identifier (email, phone, username, ...) exists already.",
    )
}
pub fn validation_max_length(max: u64, actual: u64) -> Message {
    error(4000017, format!("length must be <= {max}, but got {actual}"))
        .with_context(json!({ "max_length": max, "actual_length": actual }))
}
pub fn validation_password_too_similar() -> Message {
    error(
        4000031,
        "The password can not be used because it is too similar to the identifier.",
    )
}
pub fn validation_password_min_length(min: u64, actual: u64) -> Message {
    error(
        4000032,
        format!("The password must be at least {min} characters long, but got {actual}."),
    )
    .with_context(json!({ "min_length": min, "actual_length": actual }))
}
pub fn validation_password_max_length(max: u64, actual: u64) -> Message {
    error(
        4000033,
        format!("The password must be at most {max} characters long, but got {actual}."),
    )
    .with_context(json!({ "max_length": max, "actual_length": actual }))
}
pub fn validation_password_breached(breaches: u64) -> Message {
    error(
        4000034,
        "The password has been found in data breaches and must no longer be used.",
    )
    .with_context(json!({ "breaches": breaches }))
}
pub fn validation_password_policy_generic(reason: &str) -> Message {
    error(4000005, format!("The password can not be used because {reason}."))
        .with_context(json!({ "reason": reason }))
}
pub fn validation_password_same_as_old() -> Message {
    error(
        4000039,
        "The new password must be different from the old password.",
    )
}
pub fn validation_identifier_missing() -> Message {
    error(
        4000009,
        "Could not find any login identifiers. Did you forget to set them? This could also be caused by a server misconfiguration.",
    )
}
pub fn address_not_verified() -> Message {
    error(
        4000010,
        "Account not active yet. Did you forget to verify your email address?",
    )
}
pub fn validation_email() -> Message {
    error(4000040, "Enter a valid email address")
}

// --- login/registration errors (401xxxx, 404xxxx) ---
fn minutes_ago(expired_at: time::OffsetDateTime, now: time::OffsetDateTime) -> f64 {
    (now - expired_at).as_seconds_f64() / 60.0
}
pub fn login_flow_expired(expired_at: time::OffsetDateTime, now: time::OffsetDateTime) -> Message {
    error(
        4010001,
        format!(
            "The login flow expired {:.2} minutes ago, please try again.",
            minutes_ago(expired_at, now)
        ),
    )
    .with_context(flow_expired_context(expired_at))
}
pub fn login_no_strategy() -> Message {
    error(
        4010002,
        "Could not find a strategy to log you in with. Did you fill out the form correctly?",
    )
}
pub fn registration_no_strategy() -> Message {
    error(
        4010003,
        "Could not find a strategy to sign you up with. Did you fill out the form correctly?",
    )
}
pub fn identity_disabled() -> Message {
    error(
        4010011,
        "This account has been disabled. Please contact support for assistance.",
    )
}
pub fn registration_flow_expired(expired_at: time::OffsetDateTime, now: time::OffsetDateTime) -> Message {
    error(
        4040001,
        format!(
            "The registration flow expired {:.2} minutes ago, please try again.",
            minutes_ago(expired_at, now)
        ),
    )
    .with_context(flow_expired_context(expired_at))
}

// --- one-time codes, recovery, verification ---
pub fn login_code_sent() -> Message {
    info(
        1010014,
        "A code was sent to the address you provided. If you didn't receive it, please check the spelling of the address and try again.",
    )
}
pub fn login_code_send() -> Message {
    info(1010015, "Send sign in code")
}
pub fn login_code_send_to(channel: &str, address: &str) -> Message {
    info(1010023, format!("Send code to {address}"))
        .with_context(json!({ "address": address, "channel": channel }))
}
pub fn login_code_sent_authenticated() -> Message {
    info(
        1010025,
        "A code was sent to your address. If you didn't receive it, please try again.",
    )
}
pub fn registration_code_sent() -> Message {
    info(
        1040005,
        "A code has been sent to the address(es) you provided. If you have not received a message, check the spelling of the address and retry the registration.",
    )
}
pub fn registration_code_send() -> Message {
    info(1040006, "Send sign up code")
}
pub fn recovery_success(privileged_until: time::OffsetDateTime, now: time::OffsetDateTime) -> Message {
    let minutes = (privileged_until - now).as_seconds_f64() / 60.0;
    Message {
        kind: MessageType::Success,
        ..info(1060001, format!("You successfully recovered your account. Please change your password or set up an alternative login method (e.g. social sign in) within the next {minutes:.2} minutes."))
    }
    .with_context(json!({
        "privilegedSessionExpiresAt": crate::time_fmt::rfc3339(privileged_until),
        "privileged_session_expires_at": crate::time_fmt::rfc3339(privileged_until),
        "privileged_session_expires_at_unix": privileged_until.unix_timestamp(),
    }))
}
pub fn recovery_link_sent() -> Message {
    info(
        1060002,
        "An email containing a recovery link has been sent to the email address you provided. If you have not received an email, check the spelling of the address and make sure to use the address you registered with.",
    )
}
pub fn recovery_code_sent() -> Message {
    info(
        1060003,
        "An email containing a recovery code has been sent to the email address you provided. If you have not received an email, check the spelling of the address and make sure to use the address you registered with.",
    )
}
pub fn label_resend_code() -> Message {
    info(1070008, "Resend code")
}
pub fn label_recovery_code() -> Message {
    info(1070010, "Recovery code")
}
pub fn label_verification_code() -> Message {
    info(1070011, "Verification code")
}
pub fn label_registration_code() -> Message {
    info(1070012, "Registration code")
}
pub fn label_login_code() -> Message {
    info(1070013, "Login code")
}
pub fn verification_link_sent() -> Message {
    info(
        1080001,
        "An email containing a verification link has been sent to the email address you provided. If you have not received an email, check the spelling of the address and make sure to use the address you registered with.",
    )
}
pub fn verification_email_success() -> Message {
    Message {
        kind: MessageType::Success,
        ..info(1080002, "You successfully verified your email address.")
    }
}
pub fn verification_code_sent_email() -> Message {
    info(
        1080003,
        "An email containing a verification code has been sent to the email address you provided. If you have not received an email, check the spelling of the address and make sure to use the address you registered with.",
    )
}
pub fn verification_code_sent_sms() -> Message {
    info(
        1080004,
        "A text message containing a verification code has been sent to the phone number you provided. If you have not received a text message, check the spelling of the number and make sure to use the number you registered with.",
    )
}
pub fn verification_sms_success() -> Message {
    Message {
        kind: MessageType::Success,
        ..info(1080005, "You successfully verified your phone number.")
    }
}
pub fn validation_no_code_user() -> Message {
    error(
        4000035,
        "This account does not exist or has not setup sign in with code.",
    )
}
pub fn validation_traits_mismatch() -> Message {
    error(
        4000036,
        "The provided traits do not match the traits previously associated with this flow.",
    )
}
pub fn submitted_too_often() -> Message {
    validation_generic("The request was submitted too often. Please request another code.")
}
pub fn login_code_invalid() -> Message {
    error(
        4010008,
        "The login code is invalid or has already been used. Please try again.",
    )
}
pub fn registration_code_invalid() -> Message {
    error(
        4040003,
        "The registration code is invalid or has already been used. Please try again.",
    )
}
pub fn recovery_retry_success() -> Message {
    error(
        4060001,
        "The request was already completed successfully and can not be retried.",
    )
}
pub fn recovery_token_invalid() -> Message {
    error(
        4060004,
        "The recovery token is invalid or has already been used. Please retry the flow.",
    )
}
pub fn recovery_flow_expired(expired_at: time::OffsetDateTime, now: time::OffsetDateTime) -> Message {
    error(
        4060005,
        format!(
            "The recovery flow expired {:.2} minutes ago, please try again.",
            minutes_ago(expired_at, now)
        ),
    )
    .with_context(flow_expired_context(expired_at))
}
pub fn recovery_code_invalid() -> Message {
    error(
        4060006,
        "The recovery code is invalid or has already been used. Please try again.",
    )
}
pub fn verification_token_invalid() -> Message {
    error(
        4070001,
        "The verification token is invalid or has already been used. Please retry the flow.",
    )
}
pub fn verification_retry_success() -> Message {
    error(
        4070002,
        "The request was already completed successfully and can not be retried.",
    )
}
pub fn verification_state_failure() -> Message {
    error(
        4070003,
        "The verification flow reached a failure state and must be retried.",
    )
}
pub fn verification_flow_expired(expired_at: time::OffsetDateTime, now: time::OffsetDateTime) -> Message {
    error(
        4070005,
        format!(
            "The verification flow expired {:.2} minutes ago, please try again.",
            minutes_ago(expired_at, now)
        ),
    )
    .with_context(flow_expired_context(expired_at))
}
pub fn verification_code_invalid() -> Message {
    error(
        4070006,
        "The verification code is invalid or has already been used. Please try again.",
    )
}

// --- settings, TOTP, lookup secrets ---
pub fn settings_flow_expired(expired_at: time::OffsetDateTime, now: time::OffsetDateTime) -> Message {
    error(
        4050001,
        format!(
            "The settings flow expired {:.2} minutes ago, please try again.",
            minutes_ago(expired_at, now)
        ),
    )
    .with_context(flow_expired_context(expired_at))
}
pub fn label_auth_code() -> Message {
    info(1010006, "Authentication code")
}
pub fn label_backup_code() -> Message {
    info(1010007, "Backup recovery code")
}
pub fn login_use_authenticator() -> Message {
    info(1010009, "Use Authenticator")
}
pub fn login_use_backup_code() -> Message {
    info(1010010, "Use backup recovery code")
}
pub fn totp_unlink() -> Message {
    info(1050004, "Unlink TOTP Authenticator App")
}
pub fn totp_qr() -> Message {
    info(1050005, "Authenticator app QR code")
}
pub fn totp_secret(secret: &str) -> Message {
    info(1050006, secret).with_context(json!({ "secret": secret }))
}
pub fn lookup_reveal() -> Message {
    info(1050007, "Reveal backup recovery codes")
}
pub fn lookup_regenerate() -> Message {
    info(1050008, "Generate new backup recovery codes")
}
pub fn lookup_secret(secret: &str) -> Message {
    info(1050009, secret).with_context(json!({ "secret": secret }))
}
pub fn lookup_codes_hint() -> Message {
    info(
        1050010,
        "These are your back up recovery codes. Please keep them in a safe place!",
    )
}
pub fn lookup_confirm() -> Message {
    info(1050011, "Confirm backup recovery codes")
}
/// A used backup code, in Go's `time.Time.String()` form as Kratos prints it.
pub fn lookup_secret_used(used_at: time::OffsetDateTime) -> Message {
    let at = used_at.to_offset(time::UtcOffset::UTC);
    let go = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} +0000 UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    info(1050014, format!("Secret was used at {go}")).with_context(json!({
        "used_at": crate::time_fmt::rfc3339(at),
        "used_at_unix": at.unix_timestamp(),
    }))
}
/// The list of backup codes: each entry is `lookup_secret` (1050009) or `lookup_secret_used`
/// (1050014), and the text lists the codes with "used" for used ones, as Kratos' `ToNode`.
pub fn lookup_codes_list(codes: &[Message]) -> Message {
    let text: Vec<&str> = codes
        .iter()
        .map(|m| if m.id == 1050009 { m.text.as_str() } else { "used" })
        .collect();
    info(1050015, text.join(", ")).with_context(json!({ "secrets": codes }))
}
pub fn lookup_disable() -> Message {
    info(1050016, "Disable this method")
}
pub fn totp_secret_label() -> Message {
    info(
        1050017,
        "This is your authenticator app secret. Use it if you can not scan the QR code.",
    )
}
pub fn label_verify_code() -> Message {
    info(1070006, "Verify code")
}
pub fn totp_invalid() -> Message {
    error(
        4000008,
        "The provided authentication code is invalid, please try again.",
    )
}
pub fn totp_no_device() -> Message {
    error(4000011, "You have no TOTP device set up.")
}
pub fn lookup_none() -> Message {
    error(4000014, "You have no backup recovery codes set up.")
}
pub fn lookup_used() -> Message {
    error(4000012, "This backup recovery code has already been used.")
}
pub fn lookup_invalid() -> Message {
    error(4000016, "The backup recovery code is not valid.")
}

// --- Sallyport's rate limits (49xxxxx, a block Kratos does not use) ---
fn rate_limited(id: u32, what: &str, retry_after: u64) -> Message {
    error(id, format!("{what} Please try again in {retry_after} seconds."))
        .with_context(json!({ "retry_after_seconds": retry_after }))
}
pub fn rate_limited_codes_sent(retry_after: u64) -> Message {
    rate_limited(4900001, "Too many codes were sent to this address.", retry_after)
}
pub fn rate_limited_code_guesses(retry_after: u64) -> Message {
    rate_limited(
        4900002,
        "Too many codes were entered for this account. Sign in another way or wait.",
        retry_after,
    )
}
pub fn rate_limited_password(retry_after: u64) -> Message {
    rate_limited(
        4900003,
        "Too many failed sign-in attempts for this account.",
        retry_after,
    )
}
pub fn rate_limited_second_factor(retry_after: u64) -> Message {
    rate_limited(
        4900004,
        "Too many authentication or backup codes were entered for this account.",
        retry_after,
    )
}
pub fn rate_limited_client_ip(retry_after: u64) -> Message {
    rate_limited(4900005, "Too many requests came from your network.", retry_after)
}

fn flow_expired_context(expired_at: time::OffsetDateTime) -> Value {
    json!({
        "expired_at": crate::time_fmt::rfc3339(expired_at),
        "expired_at_unix": expired_at.unix_timestamp(),
    })
}

// --- passkeys and WebAuthn (Kratos `text/message_*.go`) ---

pub fn login_passkey() -> Message {
    info(1010021, "Sign in with passkey")
}
pub fn login_webauthn() -> Message {
    info(1010008, "Sign in with a hardware key")
}
pub fn login_continue() -> Message {
    info(1010013, "Continue")
}
pub fn login_webauthn_passwordless() -> Message {
    info(
        1010012,
        "Prepare your WebAuthn device (e.g. security key, biometrics scanner, ...) and press continue.",
    )
}
pub fn registration_passkey() -> Message {
    info(1040007, "Sign up with passkey")
}
pub fn registration_webauthn() -> Message {
    info(1040004, "Sign up with security key")
}
pub fn settings_add_webauthn() -> Message {
    info(1050012, "Add security key")
}
pub fn settings_webauthn_display_name() -> Message {
    info(1050013, "Name of the security key")
}
pub fn settings_add_passkey() -> Message {
    info(1050019, "Add passkey")
}

fn remove_key(id: u32, kind: &str, display_name: &str, added_at: time::OffsetDateTime) -> Message {
    let at = added_at.to_offset(time::UtcOffset::UTC);
    info(id, format!("Remove {kind} \"{display_name}\"")).with_context(json!({
        "added_at": crate::time_fmt::rfc3339(at),
        "added_at_unix": at.unix_timestamp(),
        "display_name": display_name,
    }))
}
pub fn settings_remove_webauthn(display_name: &str, added_at: time::OffsetDateTime) -> Message {
    remove_key(1050018, "security key", display_name, added_at)
}
pub fn settings_remove_passkey(display_name: &str, added_at: time::OffsetDateTime) -> Message {
    remove_key(1050020, "passkey", display_name, added_at)
}
pub fn webauthn_no_device() -> Message {
    error(4000013, "You have no WebAuthn device set up.")
}
pub fn webauthn_no_user() -> Message {
    error(
        4000015,
        "This account does not exist or has no security key set up.",
    )
}
pub fn webauthn_verifier_wrong() -> Message {
    error(
        4000043,
        "The provided web authn login is invalid, please try again.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every constructor must carry the id, type and (for fixed texts) the text of Kratos' catalogue.
    #[test]
    fn constructors_match_the_kratos_catalogue() {
        let catalogue: Vec<Value> = serde_json::from_str(include_str!("../data/ui-messages.json")).unwrap();
        let now = time::OffsetDateTime::now_utc();
        let ours = [
            login_reauth(),
            login_mfa(),
            login_with_password(),
            login_sign_in(),
            registration_sign_up(),
            registration_back(),
            registration_choose_credentials(),
            settings_saved(),
            label_password(),
            label_generated("E-Mail", "traits.email"),
            label_id(),
            label_email(),
            label_continue(),
            label_submit(),
            label_save(),
            validation_generic("x"),
            validation_required("email"),
            validation_min_length(5, 3),
            validation_pattern("a+"),
            validation_invalid_credentials(),
            validation_duplicate_credentials(),
            validation_max_length(5, 7),
            validation_password_too_similar(),
            validation_password_min_length(6, 5),
            validation_password_max_length(72, 80),
            validation_password_breached(1),
            validation_password_policy_generic("x"),
            validation_password_same_as_old(),
            validation_email(),
            validation_identifier_missing(),
            address_not_verified(),
            login_flow_expired(now, now),
            login_no_strategy(),
            registration_no_strategy(),
            identity_disabled(),
            registration_flow_expired(now, now),
            login_code_sent(),
            login_code_send(),
            login_code_send_to("email", "a@b.c"),
            login_code_sent_authenticated(),
            registration_code_sent(),
            registration_code_send(),
            recovery_success(now, now),
            recovery_link_sent(),
            recovery_code_sent(),
            label_resend_code(),
            label_recovery_code(),
            label_verification_code(),
            label_registration_code(),
            label_login_code(),
            verification_link_sent(),
            verification_email_success(),
            verification_code_sent_email(),
            verification_code_sent_sms(),
            verification_sms_success(),
            validation_no_code_user(),
            validation_traits_mismatch(),
            login_code_invalid(),
            registration_code_invalid(),
            recovery_retry_success(),
            recovery_token_invalid(),
            recovery_flow_expired(now, now),
            recovery_code_invalid(),
            verification_token_invalid(),
            verification_retry_success(),
            verification_state_failure(),
            verification_flow_expired(now, now),
            verification_code_invalid(),
            settings_flow_expired(now, now),
            label_auth_code(),
            label_backup_code(),
            login_use_authenticator(),
            login_use_backup_code(),
            totp_unlink(),
            totp_qr(),
            totp_secret("X"),
            lookup_reveal(),
            lookup_regenerate(),
            lookup_secret("x"),
            lookup_codes_hint(),
            lookup_confirm(),
            lookup_codes_list(&[lookup_secret("a")]),
            lookup_secret_used(time::OffsetDateTime::UNIX_EPOCH),
            lookup_disable(),
            totp_secret_label(),
            label_verify_code(),
            totp_invalid(),
            lookup_used(),
            totp_no_device(),
            lookup_none(),
            lookup_invalid(),
        ];
        for m in &ours {
            assert!(
                MESSAGE_IDS.contains(&m.id),
                "{} is missing from MESSAGE_IDS",
                m.id
            );
        }
        for id in MESSAGE_IDS.iter().filter(|i| **i / 10000 != 490) {
            assert!(catalogue.iter().any(|e| e["id"] == *id), "{id} is not Kratos'");
        }
        for m in ours {
            let entry = catalogue
                .iter()
                .find(|e| e["id"] == m.id)
                .unwrap_or_else(|| panic!("{} unknown", m.id));
            let kind = serde_json::to_value(m.kind).unwrap();
            assert_eq!(entry["type"], kind, "type of {}", m.id);
            let has_format = entry.get("format").is_some_and(|f| !f.is_null());
            if !has_format && entry["text"].is_string() {
                assert_eq!(entry["text"], m.text.as_str(), "text of {}", m.id);
            }
        }
        // Sallyport's own ids stay out of every id Kratos has.
        for m in [
            rate_limited_codes_sent(1),
            rate_limited_code_guesses(1),
            rate_limited_password(1),
            rate_limited_second_factor(1),
            rate_limited_client_ip(1),
        ] {
            assert!((4900000..4910000).contains(&m.id), "{}", m.id);
            assert!(
                MESSAGE_IDS.contains(&m.id),
                "{} is missing from MESSAGE_IDS",
                m.id
            );
            assert!(catalogue.iter().all(|e| e["id"] != m.id), "{} is Kratos'", m.id);
            assert!(
                catalogue.iter().all(|e| e["id"].as_u64().unwrap() / 10000 != 490),
                "Kratos uses 490xxxx"
            );
            assert_eq!(m.kind, MessageType::Error);
        }
        assert_eq!(
            rate_limited_password(7).text,
            "Too many failed sign-in attempts for this account. Please try again in 7 seconds."
        );
        // Formatted texts: the catalogue's examples must come out identically.
        assert_eq!(
            validation_password_min_length(6, 5).text,
            "The password must be at least 6 characters long, but got 5."
        );
        assert_eq!(validation_min_length(5, 3).text, "length must be >= 5, but got 3");
        let minute_ago = now - time::Duration::minutes(1);
        assert_eq!(
            login_flow_expired(minute_ago, now).text,
            "The login flow expired 1.00 minutes ago, please try again."
        );
    }
}
