//! Every error Sallyport shows a client, in one place: Kratos' error ids (`text/message_error.go`), the HTTP
//! status each travels with, and herodot's envelope fields (`{"error":{id,code,status,reason,message,details}}`).
//! The status is a number here so the domain can decide it without depending on an HTTP crate.

use serde_json::{Map, Value};

/// Declares [`ErrorId`] with its wire name and HTTP status in one row, so the list of every id
/// ([`ErrorId::ALL`], which `docs/errors.md` is checked against) cannot miss a variant.
macro_rules! error_ids {
    ($($(#[$doc:meta])* $variant:ident => $name:literal, $code:literal;)+) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorId {
            $($(#[$doc])* $variant,)+
        }

        impl ErrorId {
            /// Every error id Sallyport can answer with, in declaration order.
            pub const ALL: &'static [ErrorId] = &[$(ErrorId::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorId::$variant => $name,)+
                }
            }

            /// The HTTP status the JSON envelope carrying this id has (herodot's `code`).
            pub fn status(self) -> u16 {
                match self {
                    $(ErrorId::$variant => $code,)+
                }
            }
        }
    };
}

error_ids! {
    SessionAlreadyAvailable => "session_already_available", 400;
    SessionAal1Required => "session_aal1_required", 401;
    SessionAal2Required => "session_aal2_required", 403;
    SessionInactive => "session_inactive", 401;
    SessionRefreshRequired => "session_refresh_required", 403;
    SessionVerifiedAddressRequired => "session_verified_address_required", 403;
    SecurityCsrfViolation => "security_csrf_violation", 403;
    SecurityIdentityMismatch => "security_identity_mismatch", 403;
    SelfServiceFlowExpired => "self_service_flow_expired", 410;
    SelfServiceFlowReplaced => "self_service_flow_replaced", 410;
    SelfServiceFlowDisabled => "self_service_flow_disabled", 400;
    SelfServiceFlowReturnToForbidden => "self_service_flow_return_to_forbidden", 400;
    BrowserLocationChangeRequired => "browser_location_change_required", 422;
    IdentityDisabled => "identity_disabled", 400;
    /// Sallyport's own: a policy requires this identity to enrol a second factor first.
    SessionMfaEnrollmentRequired => "session_mfa_enrollment_required", 403;
    /// Sallyport's own rate limits (`sallyport.rate_limits`), all answered with 429.
    RateLimitedCodesSent => "sallyport_rate_limited_codes_sent", 429;
    RateLimitedCodeGuesses => "sallyport_rate_limited_code_guesses", 429;
    RateLimitedPassword => "sallyport_rate_limited_password", 429;
    RateLimitedSecondFactor => "sallyport_rate_limited_second_factor", 429;
    RateLimitedClientIp => "sallyport_rate_limited_client_ip", 429;
}

pub fn status_text(code: u16) -> &'static str {
    match code {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        410 => "Gone",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

/// herodot's default `message` per status, used when an error does not set its own.
fn default_message(code: u16) -> &'static str {
    match code {
        400 => "The request was malformed or contained invalid parameters",
        401 => "The request could not be authorized",
        403 => "The requested action was forbidden",
        404 => "The requested resource could not be found",
        405 => "The requested HTTP method is not allowed for this resource",
        409 => "The resource could not be created due to a conflict",
        410 => {
            "The requested resource is no longer available because it has expired or is otherwise invalid."
        }
        422 => "The request was well-formed but was unable to be followed due to semantic errors",
        429 => "Too many requests, please try again later",
        502 => "Upstream error",
        _ => "An internal server error occurred, please contact the system administrator",
    }
}

/// An error rendered as Kratos' JSON envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub id: Option<ErrorId>,
    pub code: u16,
    pub message: String,
    pub reason: Option<String>,
    pub details: Box<Map<String, Value>>,
    /// Fields Kratos puts next to `error` (`redirect_browser_to`, `use_flow_id`, `expired_at`, `since`).
    pub top_level: Box<Map<String, Value>>,
    /// Seconds for the `Retry-After` header of a 429.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: u16) -> ApiError {
        ApiError {
            id: None,
            code,
            message: default_message(code).into(),
            reason: None,
            details: Box::default(),
            top_level: Box::default(),
            retry_after: None,
        }
    }

    pub fn bad_request(reason: impl Into<String>) -> ApiError {
        ApiError::new(400).with_reason(reason)
    }
    pub fn unauthorized(reason: impl Into<String>) -> ApiError {
        ApiError::new(401).with_reason(reason)
    }
    pub fn forbidden(reason: impl Into<String>) -> ApiError {
        ApiError::new(403).with_reason(reason)
    }
    pub fn not_found(reason: impl Into<String>) -> ApiError {
        ApiError::new(404).with_reason(reason)
    }
    pub fn conflict(reason: impl Into<String>) -> ApiError {
        ApiError::new(409).with_reason(reason)
    }
    pub fn internal() -> ApiError {
        ApiError::new(500)
    }

    pub fn with_id(mut self, id: ErrorId) -> Self {
        self.id = Some(id);
        self
    }
    pub fn with_message(mut self, m: impl Into<String>) -> Self {
        self.message = m.into();
        self
    }
    pub fn with_reason(mut self, r: impl Into<String>) -> Self {
        self.reason = Some(r.into());
        self
    }
    pub fn with_detail(mut self, k: &str, v: impl Into<Value>) -> Self {
        self.details.insert(k.into(), v.into());
        self
    }
    pub fn with_top_level(mut self, k: &str, v: impl Into<Value>) -> Self {
        self.top_level.insert(k.into(), v.into());
        self
    }

    pub fn status(&self) -> &'static str {
        status_text(self.code)
    }

    /// The inner `error` object (also what `GET /self-service/errors` returns, unwrapped).
    pub fn error_object(&self) -> Value {
        let mut o = Map::new();
        if let Some(id) = self.id {
            o.insert("id".into(), id.as_str().into());
        }
        o.insert("code".into(), self.code.into());
        o.insert("status".into(), self.status().into());
        if let Some(r) = &self.reason {
            o.insert("reason".into(), r.clone().into());
        }
        if !self.details.is_empty() {
            o.insert("details".into(), Value::Object((*self.details).clone()));
        }
        o.insert("message".into(), self.message.clone().into());
        Value::Object(o)
    }

    pub fn body(&self) -> Value {
        let mut o = Map::new();
        o.insert("error".into(), self.error_object());
        for (k, v) in self.top_level.iter() {
            o.insert(k.clone(), v.clone());
        }
        Value::Object(o)
    }

    // ---- the catalogue ----

    pub fn session_already_available() -> ApiError {
        ApiError::bad_request("A valid session was detected and thus login is not possible. Did you forget to set `?refresh=true`?")
            .with_id(ErrorId::SessionAlreadyAvailable)
            .with_message("you are already logged in")
    }

    pub fn session_aal1_required() -> ApiError {
        ApiError::unauthorized("You can not requested a higher AAL (AAL2/AAL3) without an active session.")
            .with_id(ErrorId::SessionAal1Required)
            .with_message("aal2 and aal3 can only be requested if a session exists already")
    }

    pub fn session_aal2_required(redirect_to: &str) -> ApiError {
        ApiError::forbidden("An active session was found but it does not fulfill the requested Authenticator Assurance Level. Please verify yourself with a second factor to resolve this issue.")
            .with_id(ErrorId::SessionAal2Required)
            .with_message("Session does not fulfill the requested Authenticator Assurance Level")
            .with_detail("redirect_browser_to", redirect_to)
            .with_top_level("redirect_browser_to", redirect_to)
    }

    pub fn session_inactive() -> ApiError {
        ApiError::unauthorized("No active session was found in this request.")
            .with_id(ErrorId::SessionInactive)
            .with_message("request does not have a valid authentication session")
    }

    /// `GET /sessions/whoami` without valid credentials answers without an id (Kratos `session/handler.go`).
    pub fn whoami_unauthorized() -> ApiError {
        ApiError::unauthorized("No valid session credentials found in the request.")
    }

    pub fn csrf_violation(reject_reason: Option<&str>, hint: Option<&str>) -> ApiError {
        let mut e = ApiError::forbidden("Please retry the flow and optionally clear your cookies. The request was rejected to protect you from Cross-Site-Request-Forgery (CSRF) which could cause account takeover, leaking personal information, and other serious security issues.")
            .with_id(ErrorId::SecurityCsrfViolation)
            .with_message("the request was rejected to protect you from Cross-Site-Request-Forgery")
            .with_detail("docs", "https://www.ory.com/docs/troubleshooting/csrf");
        if let Some(h) = hint {
            e = e.with_detail("hint", h);
        }
        if let Some(r) = reject_reason {
            e = e.with_detail("reject_reason", r);
        }
        e
    }

    pub fn identity_mismatch() -> ApiError {
        ApiError::forbidden(
            "The request was made for another identity and has been blocked for security reasons.",
        )
        .with_id(ErrorId::SecurityIdentityMismatch)
    }

    pub fn flow_expired(expired_at: time::OffsetDateTime, now: time::OffsetDateTime) -> ApiError {
        let ago = now - expired_at;
        ApiError::new(410)
            .with_id(ErrorId::SelfServiceFlowExpired)
            .with_message("self-service flow expired")
            .with_reason(format!(
                "The self-service flow expired {:.2} minutes ago, initialize a new one.",
                ago.as_seconds_f64() / 60.0
            ))
            .with_top_level("expired_at", crate::time_fmt::rfc3339(expired_at))
            .with_top_level("since", ago.whole_nanoseconds() as i64)
    }

    pub fn registration_disabled() -> ApiError {
        ApiError::bad_request("Registration is not allowed because it was disabled.")
            .with_id(ErrorId::SelfServiceFlowDisabled)
            .with_message("registration flow disabled")
    }

    pub fn return_to_forbidden(return_to: &str) -> ApiError {
        ApiError::bad_request(format!("Requested return_to URL {return_to:?} is not allowed."))
            .with_id(ErrorId::SelfServiceFlowReturnToForbidden)
    }

    pub fn browser_location_change_required(to: &str) -> ApiError {
        ApiError::new(422)
            .with_id(ErrorId::BrowserLocationChangeRequired)
            .with_message("browser location change required")
            .with_reason(format!(
                "In order to complete this flow please redirect the browser to: {to}"
            ))
            .with_top_level("redirect_browser_to", to)
    }

    pub fn session_refresh_required(redirect_to: &str) -> ApiError {
        ApiError::forbidden("The login session is too old and thus not allowed to update these fields. Please re-authenticate.")
            .with_id(ErrorId::SessionRefreshRequired)
            .with_top_level("redirect_browser_to", redirect_to)
    }

    /// Beyond Kratos: the identity must enrol a second factor (MFA policy) before it gets a usable session.
    pub fn mfa_enrollment_required(settings_url: &str) -> ApiError {
        ApiError::forbidden("Your account requires a second factor (an authenticator app or backup codes), and none is set up yet. Open the settings flow to add one; until then this session can only be used for that.")
            .with_id(ErrorId::SessionMfaEnrollmentRequired)
            .with_message("a second factor must be set up")
            .with_detail("redirect_browser_to", settings_url)
            .with_top_level("redirect_browser_to", settings_url)
    }

    pub fn identity_disabled() -> ApiError {
        ApiError::bad_request("This account was disabled.")
            .with_id(ErrorId::IdentityDisabled)
            .with_message("identity is disabled")
    }

    /// Beyond Kratos: a `sallyport.rate_limits` budget is spent; `retry_after` seconds until it
    /// allows again (also the `Retry-After` header).
    pub fn rate_limited(id: ErrorId, retry_after: u64) -> ApiError {
        let reason = match id {
            ErrorId::RateLimitedCodesSent => {
                "Too many codes or links were sent to this address. No further one is sent until the time in Retry-After has passed."
            }
            ErrorId::RateLimitedCodeGuesses => {
                "Too many codes were entered for this account. No code is accepted or sent until the time in Retry-After has passed; sign in another way meanwhile."
            }
            ErrorId::RateLimitedPassword => {
                "Too many wrong passwords were entered for this identifier. Try again after the time in Retry-After."
            }
            ErrorId::RateLimitedSecondFactor => {
                "Too many authentication or backup codes were entered for this account. Try again after the time in Retry-After."
            }
            _ => "Too many requests came from this client address. Try again after the time in Retry-After.",
        };
        let mut e = ApiError::new(429)
            .with_id(id)
            .with_reason(reason)
            .with_detail("retry_after_seconds", retry_after);
        e.retry_after = Some(retry_after);
        e
    }

    pub fn flow_param_missing() -> ApiError {
        ApiError::bad_request("The flow query parameter is missing or malformed.")
    }

    pub fn flow_not_found() -> ApiError {
        ApiError::not_found("The requested resource could not be found")
    }

    pub fn api_flow_origin_header() -> ApiError {
        ApiError::bad_request(
            "The HTTP Request Header included the \"Origin\" key, indicating that this request was made as part of an AJAX request in a Browser. The flow however was initiated as an API request. To prevent potential misuse and mitigate several attack vectors including CSRF, the request has been blocked. Please consult the documentation.",
        )
    }

    pub fn api_flow_cookie_header(found: Vec<String>) -> ApiError {
        ApiError::bad_request("The HTTP Request Header included the \"Cookie\" key, indicating that this request was made by a Browser. The flow however was initiated as an API request. To prevent potential misuse and mitigate several attack vectors including CSRF, the request has been blocked. Please consult the documentation.")
            .with_detail("found cookies", found)
    }

    /// A JSON body, dotted form field or patched document nested deeper than the limit.
    pub fn nesting_too_deep(what: &str) -> ApiError {
        ApiError::bad_request(format!(
            "{what} exceeds the maximum nesting depth of {} levels.",
            crate::limits::MAX_NESTING_DEPTH
        ))
    }

    /// PostgreSQL text cannot hold U+0000, so no backend gets to see one: refused wherever it enters.
    pub fn nul_character(location: &str) -> ApiError {
        ApiError::bad_request(format!(
            "{location} contains a NUL character (U+0000), which is not allowed."
        ))
    }

    pub fn identity_conflict() -> ApiError {
        ApiError::conflict("This identity conflicts with another identity that already exists.")
    }

    /// The error id, when present, as Kratos sets it in the `Ory-Error-Id` header.
    pub fn id_str(&self) -> Option<&'static str> {
        self.id.map(ErrorId::as_str)
    }

    pub fn is_enhanced(&self) -> bool {
        !self.top_level.is_empty()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}",
            self.code,
            self.reason.as_deref().unwrap_or(&self.message)
        )
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn aal2_required_matches_kratos_body() {
        let e = ApiError::session_aal2_required("http://id/self-service/login/browser?aal=aal2");
        assert_eq!(
            e.body(),
            json!({"error":{"id":"session_aal2_required","code":403,"status":"Forbidden","reason":"An active session was found but it does not fulfill the requested Authenticator Assurance Level. Please verify yourself with a second factor to resolve this issue.","details":{"redirect_browser_to":"http://id/self-service/login/browser?aal=aal2"},"message":"Session does not fulfill the requested Authenticator Assurance Level"},"redirect_browser_to":"http://id/self-service/login/browser?aal=aal2"})
        );
    }

    #[test]
    fn rate_limited_is_a_429_envelope_with_retry_after() {
        let e = ApiError::rate_limited(ErrorId::RateLimitedCodeGuesses, 42);
        assert_eq!(e.retry_after, Some(42));
        let body = e.body();
        assert_eq!(body["error"]["id"], "sallyport_rate_limited_code_guesses");
        assert_eq!(body["error"]["code"], 429);
        assert_eq!(body["error"]["status"], "Too Many Requests");
        assert_eq!(body["error"]["details"]["retry_after_seconds"], 42);
        assert!(body["error"]["reason"].is_string() && body["error"]["message"].is_string());
    }

    /// The status declared next to each id is the one its constructor answers with.
    #[test]
    fn constructors_travel_with_their_ids_status() {
        let now = time::OffsetDateTime::now_utc();
        let built = [
            ApiError::session_already_available(),
            ApiError::session_aal1_required(),
            ApiError::session_aal2_required("x"),
            ApiError::session_inactive(),
            ApiError::csrf_violation(None, None),
            ApiError::identity_mismatch(),
            ApiError::flow_expired(now, now),
            ApiError::registration_disabled(),
            ApiError::return_to_forbidden("x"),
            ApiError::browser_location_change_required("x"),
            ApiError::session_refresh_required("x"),
            ApiError::mfa_enrollment_required("x"),
            ApiError::identity_disabled(),
            ApiError::rate_limited(ErrorId::RateLimitedClientIp, 1),
        ];
        for e in built {
            let id = e.id.unwrap();
            assert_eq!(e.code, id.status(), "{}", id.as_str());
        }
        let mut names: Vec<&str> = ErrorId::ALL.iter().map(|i| i.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorId::ALL.len(), "error ids are unique");
    }

    #[test]
    fn whoami_401_has_no_id() {
        assert_eq!(
            ApiError::whoami_unauthorized().body(),
            json!({"error":{"code":401,"status":"Unauthorized","reason":"No valid session credentials found in the request.","message":"The request could not be authorized"}})
        );
    }
}
