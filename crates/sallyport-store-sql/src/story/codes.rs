use sallyport_core::code::{CodeKind, OneTimeCode, code_digest};
use sallyport_core::flow::{Flow, FlowKind, FlowState, FlowType};
use sallyport_core::identity::Identity;
use sallyport_core::store::Store;
use sallyport_core::time_fmt;
use serde_json::json;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::courier::message;
use super::{conflict, not_found, unique_email};

pub fn flow(kind: FlowKind, now: OffsetDateTime) -> Flow {
    Flow::new(
        kind,
        FlowType::Browser,
        "http://127.0.0.1:4433/self-service/login/browser".into(),
        "http://127.0.0.1:4433/",
        Duration::hours(1),
        "csrf".into(),
        now,
    )
}

pub fn code(flow: &Flow, kind: CodeKind, secret_code: &str, now: OffsetDateTime) -> OneTimeCode {
    OneTimeCode {
        id: Uuid::new_v4(),
        flow_id: flow.id,
        kind,
        digest: code_digest("story-secret", secret_code),
        address: "ada@example.org".into(),
        address_type: "email".into(),
        identity_id: None,
        expires_at: now + Duration::minutes(15),
        used_at: None,
        created_at: now,
    }
}

/// The digests a lookup tries: one per configured secret, the current one last.
fn digests(secret_code: &str) -> Vec<String> {
    vec![
        code_digest("old-secret", secret_code),
        code_digest("story-secret", secret_code),
    ]
}

fn used(code: &OneTimeCode, at: OffsetDateTime) -> Option<OneTimeCode> {
    Some(OneTimeCode {
        used_at: Some(at),
        ..code.clone()
    })
}

pub async fn run(store: &dyn Store) {
    let now = time_fmt::now();
    let email = unique_email("coder");
    let person = Identity::new("default", json!({"email": email}), now);
    store
        .create_identity(&person, None)
        .await
        .expect("create identity");
    let mut login = flow(FlowKind::Login, now);
    let other = flow(FlowKind::Login, now);
    store.create_flow(&login).await.expect("create flow");
    store.create_flow(&other).await.expect("create other flow");

    let later = now + Duration::seconds(5);
    login.state = FlowState::SentEmail;
    login.active = Some("code".into());
    login.updated_at = later;
    let mut c1 = code(&login, CodeKind::Login, "123456", later);
    c1.identity_id = Some(person.id);
    c1.address = email.clone();
    let mut mail = message(&email, later);
    mail.template_data = json!({"login_code": "******"});
    store
        .save_codes(
            &login,
            CodeKind::Login,
            std::slice::from_ref(&c1),
            std::slice::from_ref(&mail),
        )
        .await
        .expect("save codes");
    assert_eq!(
        store.get_flow(FlowKind::Login, login.id).await.expect("get flow"),
        login
    );
    assert_eq!(
        store.get_message(mail.id).await.expect("queued with the codes"),
        mail
    );

    // Wrong digest, kind or flow, and no digests at all, match nothing.
    let t = later + Duration::seconds(1);
    let use_code = |flow_id, kind, code: &str| {
        let digests = digests(code);
        async move {
            store
                .use_code(flow_id, kind, &digests, t)
                .await
                .expect("use code")
        }
    };
    assert_eq!(use_code(login.id, CodeKind::Login, "654321").await, None);
    assert_eq!(use_code(login.id, CodeKind::Registration, "123456").await, None);
    assert_eq!(use_code(other.id, CodeKind::Login, "123456").await, None);
    assert_eq!(use_code(Uuid::new_v4(), CodeKind::Login, "123456").await, None);
    assert_eq!(
        store
            .use_code(login.id, CodeKind::Login, &[], t)
            .await
            .expect("use nothing"),
        None
    );
    // Single use.
    assert_eq!(use_code(login.id, CodeKind::Login, "123456").await, used(&c1, t));
    assert_eq!(use_code(login.id, CodeKind::Login, "123456").await, None);

    // Saving again replaces the flow's codes of that kind only.
    let later = t + Duration::seconds(1);
    let mut verify = code(&login, CodeKind::Verification, "777777", later);
    verify.address_type = "sms".into();
    store
        .save_codes(&login, CodeKind::Verification, std::slice::from_ref(&verify), &[])
        .await
        .expect("save verification code");
    let mut c2 = code(&login, CodeKind::Login, "222222", later);
    c2.identity_id = Some(person.id);
    let mut expired = code(&login, CodeKind::Login, "333333", later);
    expired.expires_at = t;
    login.submit_count = 1;
    login.updated_at = later;
    let mail2 = message(&email, later);
    store
        .save_codes(
            &login,
            CodeKind::Login,
            &[c2.clone(), expired.clone()],
            std::slice::from_ref(&mail2),
        )
        .await
        .expect("save new codes");
    assert_eq!(
        use_code(login.id, CodeKind::Login, "333333").await,
        None,
        "expired code"
    );

    // A failing save writes nothing: old codes and the old flow stay.
    let mut changed = login.clone();
    changed.state = FlowState::PassedChallenge;
    changed.updated_at = later + Duration::seconds(1);
    let c3 = code(&changed, CodeKind::Login, "444444", later);
    let fresh = message(&email, later);
    conflict(
        store
            .save_codes(
                &changed,
                CodeKind::Login,
                std::slice::from_ref(&c3),
                &[fresh.clone(), mail2.clone()],
            )
            .await,
        "courier_messages",
        "save with a duplicate message",
    );
    assert_eq!(
        store.get_flow(FlowKind::Login, login.id).await.expect("get flow"),
        login
    );
    not_found(store.get_message(fresh.id).await, "message of a failed save");
    assert_eq!(
        use_code(login.id, CodeKind::Login, "444444").await,
        None,
        "code of a failed save"
    );
    let ghost = flow(FlowKind::Login, later);
    let ghost_mail = message(&email, later);
    not_found(
        store
            .save_codes(
                &ghost,
                CodeKind::Login,
                &[code(&ghost, CodeKind::Login, "555555", later)],
                std::slice::from_ref(&ghost_mail),
            )
            .await,
        "save for an unknown flow",
    );
    not_found(
        store.get_message(ghost_mail.id).await,
        "message of a save for an unknown flow",
    );
    // The same id under another kind is not the flow either.
    let mut other_kind = login.clone();
    other_kind.kind = FlowKind::Registration;
    let other_kind_mail = message(&email, later);
    not_found(
        store
            .save_codes(
                &other_kind,
                CodeKind::Login,
                &[code(&other_kind, CodeKind::Login, "565656", later)],
                std::slice::from_ref(&other_kind_mail),
            )
            .await,
        "save for a flow of another kind",
    );
    not_found(
        store.get_message(other_kind_mail.id).await,
        "message of a save for a flow of another kind",
    );
    assert_eq!(
        use_code(login.id, CodeKind::Login, "565656").await,
        None,
        "code of a save for a flow of another kind"
    );
    assert_eq!(use_code(login.id, CodeKind::Login, "222222").await, used(&c2, t));
    assert_eq!(
        use_code(login.id, CodeKind::Verification, "777777").await,
        used(&verify, t)
    );

    // Link tokens are found without their flow.
    let mut recovery = flow(FlowKind::Recovery, now);
    store.create_flow(&recovery).await.expect("create recovery flow");
    recovery.state = FlowState::SentEmail;
    let token = code(&recovery, CodeKind::RecoveryLink, "a-long-token", now);
    store
        .save_codes(
            &recovery,
            CodeKind::RecoveryLink,
            std::slice::from_ref(&token),
            &[],
        )
        .await
        .expect("save token");
    let use_token = |kind, token: &str| {
        let digests = digests(token);
        async move { store.use_token(kind, &digests, t).await.expect("use token") }
    };
    assert_eq!(use_token(CodeKind::VerificationLink, "a-long-token").await, None);
    assert_eq!(use_token(CodeKind::RecoveryLink, "another-token").await, None);
    assert_eq!(
        use_token(CodeKind::RecoveryLink, "a-long-token").await,
        used(&token, t)
    );
    assert_eq!(use_token(CodeKind::RecoveryLink, "a-long-token").await, None);

    // The submission counter lives beside the flow JSON.
    for n in 1..=3 {
        assert_eq!(store.count_submission(login.id).await.expect("count"), n);
    }
    assert_eq!(store.count_submission(other.id).await.expect("count other"), 1);
    assert_eq!(
        store.get_flow(FlowKind::Login, login.id).await.expect("get flow"),
        login
    );
    not_found(
        store.count_submission(Uuid::new_v4()).await,
        "count for an unknown flow",
    );

    // The identity's codes go with it (ON DELETE CASCADE).
    store
        .delete_identity(person.id)
        .await
        .expect("delete identity with codes");
}
