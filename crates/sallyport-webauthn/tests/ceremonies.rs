use sallyport_webauthn::soft::SoftAuthenticator;
use sallyport_webauthn::{
    Ceremonies, Error, RelyingParty, UserVerification, WebAuthnConfig, parse_assertion, random_user_handle,
};

const ORIGIN: &str = "https://id.example.org";

fn rp() -> Ceremonies {
    Ceremonies::new(&RelyingParty {
        id: "id.example.org".into(),
        display_name: "Example".into(),
        origins: vec![ORIGIN.parse().unwrap()],
    })
    .unwrap()
}

fn register(c: &Ceremonies, a: &mut SoftAuthenticator) -> sallyport_webauthn::Registered {
    let handle = random_user_handle();
    let (options, state) = c
        .begin_registration(&handle, "ann", true, UserVerification::Preferred, &[])
        .unwrap();
    assert_eq!(
        options["publicKey"]["authenticatorSelection"]["residentKey"],
        "required"
    );
    let response = a.create(&options, ORIGIN);
    c.finish_registration(
        &state,
        &response.to_string(),
        true,
        time::OffsetDateTime::now_utc(),
    )
    .unwrap()
}

#[test]
fn register_then_sign_in_without_a_name_and_the_counter_advances() {
    let c = rp();
    let mut a = SoftAuthenticator::new();
    let cred = register(&c, &mut a);
    assert!(cred.is_passwordless);
    assert_eq!(cred.attestation_type, "none");
    assert!(cred.flags.unwrap().user_verified);
    let (options, state) = c.begin_login(&[], UserVerification::Preferred).unwrap();
    assert!(options["publicKey"].get("allowCredentials").is_none());
    let assertion = parse_assertion(&a.get(&options, ORIGIN, None).to_string()).unwrap();
    assert_eq!(
        assertion.response.user_handle.as_deref(),
        Some(&a.credentials[0].user_handle[..])
    );
    let out = c
        .finish_login(
            &state,
            &assertion,
            std::slice::from_ref(&cred),
            UserVerification::Preferred,
        )
        .unwrap();
    assert!(!out.clone_warning);
    assert_eq!(out.credentials[0].authenticator.as_ref().unwrap().sign_count, 1);

    // The stored form survives the Kratos JSON round trip.
    let cfg = WebAuthnConfig {
        credentials: out.credentials.clone(),
        user_handle: vec![1, 2],
    };
    assert_eq!(WebAuthnConfig::from_value(&cfg.to_value()), cfg);
}

#[test]
fn a_counter_that_does_not_advance_signs_in_with_a_clone_warning() {
    let c = rp();
    let mut a = SoftAuthenticator::new();
    let mut cred = register(&c, &mut a);
    cred.authenticator.as_mut().unwrap().sign_count = 7;
    let (options, state) = c.begin_login(&[], UserVerification::Preferred).unwrap();
    let assertion = parse_assertion(&a.get(&options, ORIGIN, None).to_string()).unwrap();
    let out = c
        .finish_login(&state, &assertion, &[cred], UserVerification::Preferred)
        .unwrap();
    assert!(out.clone_warning);
    let auth = out.credentials[0].authenticator.clone().unwrap();
    assert!(auth.clone_warning);
    assert_eq!(auth.sign_count, 7);
}

#[test]
fn wrong_origin_other_challenge_and_unknown_credentials_are_refused() {
    let c = rp();
    let mut a = SoftAuthenticator::new();
    let cred = register(&c, &mut a);
    let (options, state) = c.begin_login(&[], UserVerification::Preferred).unwrap();
    let creds = std::slice::from_ref(&cred);
    let uv = UserVerification::Preferred;

    let evil = parse_assertion(&a.get(&options, "https://evil.example", None).to_string()).unwrap();
    assert!(matches!(
        c.finish_login(&state, &evil, creds, uv),
        Err(Error::Rejected(_))
    ));

    let (_, other_state) = c.begin_login(&[], uv).unwrap();
    let good = parse_assertion(&a.get(&options, ORIGIN, None).to_string()).unwrap();
    assert!(matches!(
        c.finish_login(&other_state, &good, creds, uv),
        Err(Error::Rejected(_))
    ));

    let mut b = SoftAuthenticator::new();
    let _ = register(&c, &mut b);
    let stranger = parse_assertion(&b.get(&options, ORIGIN, None).to_string()).unwrap();
    assert!(matches!(
        c.finish_login(&state, &stranger, creds, uv),
        Err(Error::UnknownCredential)
    ));

    assert!(matches!(parse_assertion("{\"id\":1}"), Err(Error::Malformed(_))));
    assert!(matches!(
        c.finish_login(&serde_json::json!({}), &good, creds, uv),
        Err(Error::NoCeremony)
    ));

    // Another RP id's options.
    let other = Ceremonies::new(&RelyingParty {
        id: "other.example".into(),
        display_name: String::new(),
        origins: vec![ORIGIN.parse().unwrap()],
    })
    .unwrap();
    let (o2, s2) = other.begin_login(&[], uv).unwrap();
    let wrong_rp = parse_assertion(&a.get(&o2, ORIGIN, None).to_string()).unwrap();
    assert!(matches!(
        c.finish_login(&s2, &wrong_rp, creds, uv),
        Err(Error::Rejected(_))
    ));
}

#[test]
fn registration_refuses_garbage_and_foreign_origins() {
    let c = rp();
    let mut a = SoftAuthenticator::new();
    let (options, state) = c
        .begin_registration(b"h", "ann", true, UserVerification::Preferred, &[])
        .unwrap();
    let now = time::OffsetDateTime::now_utc();
    assert!(matches!(
        c.finish_registration(&state, "nope", true, now),
        Err(Error::Malformed(_))
    ));
    let mut bad = a.create(&options, ORIGIN);
    bad["response"]["attestationObject"] = "AAAA".into();
    assert!(matches!(
        c.finish_registration(&state, &bad.to_string(), true, now),
        Err(Error::Malformed(_))
    ));
    let foreign = a.create(&options, "https://evil.example");
    assert!(matches!(
        c.finish_registration(&state, &foreign.to_string(), true, now),
        Err(Error::Rejected(_))
    ));
}
