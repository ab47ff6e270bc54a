//! One-time codes and link tokens (Kratos `selfservice/strategy/code`, `link`): stored only as keyed
//! digests, single use, bound to one flow, expiring.

use hmac::{Hmac, Mac};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::courier::Message;
use crate::flow::Flow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeKind {
    Login,
    Registration,
    Recovery,
    Verification,
    RecoveryLink,
    VerificationLink,
}

impl CodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CodeKind::Login => "login",
            CodeKind::Registration => "registration",
            CodeKind::Recovery => "recovery",
            CodeKind::Verification => "verification",
            CodeKind::RecoveryLink => "recovery_link",
            CodeKind::VerificationLink => "verification_link",
        }
    }
    pub fn parse(s: &str) -> Option<CodeKind> {
        Some(match s {
            "login" => CodeKind::Login,
            "registration" => CodeKind::Registration,
            "recovery" => CodeKind::Recovery,
            "verification" => CodeKind::Verification,
            "recovery_link" => CodeKind::RecoveryLink,
            "verification_link" => CodeKind::VerificationLink,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct OneTimeCode {
    pub id: Uuid,
    pub flow_id: Uuid,
    pub kind: CodeKind,
    /// hex(HMAC-SHA256(secret, code)); the code itself is never stored.
    pub digest: String,
    /// The address the code went to (normalised), and its channel (`email` / `sms`).
    pub address: String,
    pub address_type: String,
    pub identity_id: Option<Uuid>,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

/// The keyed digest of a code under `secret`. Lookups try every configured secret, so secrets rotate.
pub fn code_digest(secret: &str, code: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(code.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One submission of a code on a flow, checked in one write (see [`CodeStore::attempt_code`]).
#[derive(Debug, Clone, Copy)]
pub struct CodeAttempt<'a> {
    pub flow_id: Uuid,
    pub kind: CodeKind,
    /// Digests the submitted code may have been stored under.
    pub digests: &'a [String],
    pub now: OffsetDateTime,
    /// Submissions the flow allows (`max_submissions`): past it no code is checked.
    pub max_submissions: u32,
    /// The guess budget this submission spends, if any: refused, no code is checked.
    pub guess: Option<crate::rate_limit::Counted<'a>>,
    /// The identity the code must belong to; a right code for it takes its guess back.
    pub identity_id: Option<Uuid>,
}

/// What [`CodeStore::attempt_code`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptOutcome {
    /// The flow's submission count went past `max_submissions` (counted anyway, as Kratos does).
    TooManySubmissions,
    /// The guess budget refused (the refused hit counted, as a lone `hit` would).
    Limited(crate::rate_limit::Verdict),
    /// The code that was used (wrong, used or expired: None). A code of another identity than
    /// `identity_id` is used all the same and returned, and its guess stays counted.
    Checked(Option<OneTimeCode>),
}

#[async_trait::async_trait]
pub trait CodeStore: Send + Sync {
    /// In one write (one transaction, or one entry of a group commit), in this order: counts the
    /// submission on the flow, then the guess, then uses the code as `use_code` does, then gives the
    /// guess back if the code was right for `identity_id`. Stops at the first refusal. Equivalent to
    /// `count_submission`, `hit`, `use_code` and `give_back` one after the other, in a quarter of the
    /// round trips.
    async fn attempt_code(&self, attempt: CodeAttempt<'_>) -> crate::store::StoreResult<AttemptOutcome>;
    /// `save_codes` after counting one hit on each of `budgets`, in one write: the first budget that
    /// refuses stops it before any code is saved, and its verdict is returned (hits counted so far
    /// stay counted, as lone `hit`s would).
    async fn send_codes(
        &self,
        flow: &Flow,
        kind: CodeKind,
        codes: &[OneTimeCode],
        messages: &[Message],
        budgets: &[crate::rate_limit::Counted<'_>],
    ) -> crate::store::StoreResult<Option<crate::rate_limit::Verdict>>;
    /// One transaction: delete the flow's codes of `kind`, insert `codes`, save `flow`, queue `messages`.
    async fn save_codes(
        &self,
        flow: &Flow,
        kind: CodeKind,
        codes: &[OneTimeCode],
        messages: &[Message],
    ) -> crate::store::StoreResult<()>;
    /// Atomically marks as used the unused, unexpired code of `flow_id`/`kind` whose digest is one of
    /// `digests`, and returns it; None when there is no such code (wrong, used or expired).
    async fn use_code(
        &self,
        flow_id: Uuid,
        kind: CodeKind,
        digests: &[String],
        now: OffsetDateTime,
    ) -> crate::store::StoreResult<Option<OneTimeCode>>;
    /// Like `use_code` but for link tokens, which are not bound to a flow the caller knows.
    async fn use_token(
        &self,
        kind: CodeKind,
        digests: &[String],
        now: OffsetDateTime,
    ) -> crate::store::StoreResult<Option<OneTimeCode>>;
    /// Atomically increments and returns the flow's code submission counter.
    async fn count_submission(&self, flow_id: Uuid) -> crate::store::StoreResult<i32>;
}
