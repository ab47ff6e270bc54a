//! The engine against a real, certified OpenID Provider (npm `oidc-provider`) on loopback: the browser part
//! is driven over HTTP (login and consent pages), everything else is the crate's public API.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sallyport_oidc::{
    AuthOptions, CallbackParams, Cipher, CipherAlgorithm, FlowKind, HttpError, HttpPolicy, OidcError,
    Provider, VerifiedAddress, parse_state,
};
use serde_json::{Value, json};
use support::{CLIENT_ID, Op, PUBLIC_BASE, Person, browse};
use uuid::Uuid;

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn query(url: &url::Url, key: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

async fn start(provider: &Provider) -> sallyport_oidc::AuthorizationRequest {
    provider
        .authorization_request(Uuid::new_v4(), FlowKind::Login, &AuthOptions::default())
        .await
        .expect("authorization request")
}

#[tokio::test]
async fn sign_in_with_pkce_nonce_mapper_and_encrypted_tokens() {
    let Some(op) = Op::start(json!({})).await else {
        return;
    };
    let provider = op.generic(json!({}));
    let options = AuthOptions::default().with_upstream_parameters(Some(&json!({
        "prompt": "consent", "login_hint": "victim@example.org", "hd": "example.org", "nope": 1
    })));
    let flow_id = Uuid::new_v4();
    let req = provider
        .authorization_request(flow_id, FlowKind::Registration, &options)
        .await
        .unwrap();

    // The URL carries state, nonce, PKCE (auto: the provider advertises S256) and only allowed upstream parameters.
    assert!(req.url.as_str().starts_with(&op.url("/auth").to_string()));
    assert_eq!(query(&req.url, "client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(
        query(&req.url, "state").as_deref(),
        Some(req.pending.state.as_str())
    );
    assert_eq!(query(&req.url, "nonce"), req.pending.nonce);
    assert_eq!(query(&req.url, "code_challenge_method").as_deref(), Some("S256"));
    assert!(req.pending.pkce_verifier.is_some());
    assert_eq!(query(&req.url, "scope").as_deref(), Some("email profile openid"));
    assert_eq!(query(&req.url, "prompt").as_deref(), Some("consent"));
    assert_eq!(query(&req.url, "hd").as_deref(), Some("example.org"));
    assert_eq!(
        query(&req.url, "login_hint"),
        None,
        "login_hint is never forwarded (Kratos)"
    );
    assert_eq!(
        query(&req.url, "redirect_uri").as_deref(),
        Some(format!("{PUBLIC_BASE}self-service/methods/oidc/callback/op").as_str())
    );

    // The record survives a trip through the flow's JSON (a callback may land on another node).
    let stored = serde_json::to_string(&req.pending).unwrap();
    let pending = serde_json::from_str(&stored).unwrap();

    let callback = browse(&req.url, Person::SignsInAndConsents("ann")).await;
    let state_ref = parse_state(callback.state.as_deref()).unwrap();
    assert_eq!(
        (state_ref.flow_id, state_ref.flow_kind),
        (flow_id, FlowKind::Registration)
    );

    let done = provider.complete(&pending, &callback).await.unwrap();
    assert_eq!(done.claims.subject, "ann");
    assert_eq!(done.claims.issuer, op.issuer());
    assert_eq!(done.claims.email, "ann@example.org");
    assert!(done.claims.email_verified);
    assert!(!done.upstream_aal2);

    let mapped = provider.map_claims(&done.claims, None).await.unwrap();
    assert_eq!(
        Value::Object(mapped.traits),
        json!({"email": "ann@example.org", "name": "Ann Example"})
    );
    assert_eq!(
        mapped.verified_addresses,
        vec![VerifiedAddress {
            value: "ann@example.org".into(),
            via: "email".into()
        }]
    );
    assert_eq!(mapped.metadata_admin, Some(json!({"upstream_sub": "ann"})));

    let tokens = done.tokens.unwrap();
    assert!(tokens.id_token.is_some());
    let cipher = Cipher::new(
        CipherAlgorithm::XChaCha20Poly1305,
        &["0123456789abcdef0123456789abcdef".into()],
    )
    .unwrap();
    let sealed = tokens.encrypt(&cipher).unwrap();
    assert!(!sealed.initial_access_token.contains(&tokens.access_token));
    assert_eq!(sealed.decrypt(&cipher).unwrap().access_token, tokens.access_token);

    // The id_token from this sign-in, submitted as a native app would, verifies with the provider's keys.
    let native = provider
        .verify_id_token_submission(
            tokens.id_token.as_deref().unwrap(),
            pending_nonce(&stored).as_deref(),
        )
        .await
        .unwrap();
    assert_eq!(native.claims.subject, "ann");
    assert!(native.tokens.is_none());

    // The same code a second time (a replayed callback): the provider refuses it.
    let replay = provider
        .complete(&serde_json::from_str(&stored).unwrap(), &callback)
        .await
        .unwrap_err();
    assert!(
        matches!(replay, OidcError::TokenExchange(ref m) if m.contains("invalid_grant")),
        "{replay:?}"
    );
}

fn pending_nonce(stored: &str) -> Option<String> {
    serde_json::from_str::<Value>(stored).unwrap()["nonce"]
        .as_str()
        .map(str::to_string)
}

#[tokio::test]
async fn pkce_never_force_and_a_provider_that_requires_it() {
    let Some(op) = Op::start(json!({"pkce_required": true})).await else {
        return;
    };

    let never = op.generic(json!({"pkce": "never"}));
    let req = start(&never).await;
    assert_eq!(query(&req.url, "code_challenge"), None);
    assert!(req.pending.pkce_verifier.is_none());
    let callback = browse(&req.url, Person::SignsInAndConsents("ann")).await;
    let err = never.complete(&req.pending, &callback).await.unwrap_err();
    assert!(
        matches!(err, OidcError::ProviderDenied { ref error, .. } if error == "invalid_request"),
        "{err:?}"
    );

    let force = op.generic(json!({"pkce": "force"}));
    assert_eq!(
        force.redirect_uri().as_str(),
        format!("{PUBLIC_BASE}self-service/methods/oidc/callback")
    );
    let req = start(&force).await;
    assert_eq!(query(&req.url, "code_challenge_method").as_deref(), Some("S256"));
    let callback = browse(&req.url, Person::SignsInAndConsents("bob")).await;
    assert_eq!(
        callback.provider_in_path, None,
        "the generic callback URL has no provider segment"
    );
    let done = force.complete(&req.pending, &callback).await.unwrap();
    assert_eq!(done.claims.subject, "bob");
    assert!(!done.claims.email_verified);

    // A verifier that doesn't match the challenge: the provider refuses the exchange.
    let req = start(&force).await;
    let callback = browse(&req.url, Person::SignsInAndConsents("ann")).await;
    let mut tampered = req.pending.clone();
    tampered.pkce_verifier = Some("x".repeat(43));
    let err = force.complete(&tampered, &callback).await.unwrap_err();
    assert!(
        matches!(err, OidcError::TokenExchange(ref m) if m.contains("invalid_grant")),
        "{err:?}"
    );
}

#[tokio::test]
async fn pkce_off_works_where_the_provider_allows_it() {
    let Some(op) = Op::start(json!({})).await else {
        return;
    };
    let never = op.generic(json!({"pkce": "never"}));
    let req = start(&never).await;
    assert_eq!(query(&req.url, "code_challenge"), None);
    let callback = browse(&req.url, Person::SignsInAndConsents("ann")).await;
    assert_eq!(
        never
            .complete(&req.pending, &callback)
            .await
            .unwrap()
            .claims
            .subject,
        "ann"
    );
}

#[tokio::test]
async fn nonce_mismatch_forged_state_and_access_denied() {
    let Some(op) = Op::start(json!({})).await else {
        return;
    };
    let provider = op.generic(json!({}));

    // The id_token carries the nonce sent; a record expecting another one refuses it.
    let req = start(&provider).await;
    let callback = browse(&req.url, Person::SignsInAndConsents("ann")).await;
    let mut other_nonce = req.pending.clone();
    other_nonce.nonce = Some("not-the-nonce-that-was-sent".into());
    assert_eq!(
        provider.complete(&other_nonce, &callback).await.unwrap_err(),
        OidcError::NonceMismatch
    );

    // A state for the same flow minted elsewhere, a missing state, another provider in the URL.
    let req = start(&provider).await;
    let callback = browse(&req.url, Person::SignsInAndConsents("ann")).await;
    let forged_req = start(&provider).await;
    let mut forged = callback.clone();
    forged.state = Some(forged_req.pending.state.replace(
        &forged_req.pending.flow_id.simple().to_string(),
        &req.pending.flow_id.simple().to_string(),
    ));
    assert_eq!(
        provider.complete(&req.pending, &forged).await.unwrap_err(),
        OidcError::StateMismatch
    );
    let mut missing = callback.clone();
    missing.state = None;
    assert_eq!(
        provider.complete(&req.pending, &missing).await.unwrap_err(),
        OidcError::StateMissing
    );
    let mut wrong_path = callback.clone();
    wrong_path.provider_in_path = Some("google".into());
    assert_eq!(
        provider.complete(&req.pending, &wrong_path).await.unwrap_err(),
        OidcError::ProviderMismatch
    );
    // The genuine callback still works after all that.
    assert_eq!(
        provider
            .complete(&req.pending, &callback)
            .await
            .unwrap()
            .claims
            .subject,
        "ann"
    );

    // The person cancels at the provider.
    let req = start(&provider).await;
    let callback = browse(&req.url, Person::Cancels).await;
    let err = provider.complete(&req.pending, &callback).await.unwrap_err();
    assert!(
        matches!(err, OidcError::ProviderDenied { ref error, .. } if error == "access_denied"),
        "{err:?}"
    );
    assert_eq!(err.status(), 400);
    assert_eq!(err.step(), sallyport_oidc::Step::ProviderDenied);
}

#[tokio::test]
async fn wrong_issuer_is_refused() {
    let Some(op) = Op::start(json!({})).await else {
        return;
    };
    // Discovery names 127.0.0.1 while the config says localhost: not the issuer we were told to trust.
    let misnamed = op.generic(json!({"issuer_url": format!("http://localhost:{}", op.port)}));
    let err = misnamed
        .authorization_request(Uuid::new_v4(), FlowKind::Login, &AuthOptions::default())
        .await;
    assert!(
        matches!(err, Err(OidcError::Discovery(ref m)) if m.contains("issuer")),
        "{err:?}"
    );

    // `http://host:port/` and `http://host:port` are the same URL once parsed; the provider's spelling wins.
    let slash = op.generic(json!({"issuer_url": format!("{}/", op.issuer())}));
    assert!(
        slash
            .authorization_request(Uuid::new_v4(), FlowKind::Login, &AuthOptions::default())
            .await
            .is_ok()
    );

    // A token correctly signed by the provider's key but naming another issuer.
    let provider = op.generic(json!({}));
    let token = op
        .sign(json!({"iss": "https://evil.example", "sub": "ann", "aud": CLIENT_ID, "iat": now(), "exp": now() + 300, "nonce": "n"}), false)
        .await;
    let err = provider
        .verify_id_token_submission(&token, Some("n"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, OidcError::IdTokenInvalid(ref m) if m.contains("issuer")),
        "{err:?}"
    );
}

#[tokio::test]
async fn expired_foreign_and_misaddressed_id_tokens() {
    let Some(op) = Op::start(json!({})).await else {
        return;
    };
    let provider = op.generic(json!({"additional_id_token_audiences": ["ios-app"]}));
    let claims = |extra: Value| {
        let mut c = json!({"iss": op.issuer(), "sub": "ann", "aud": CLIENT_ID, "iat": now(), "exp": now() + 300, "nonce": "n1", "email": "ann@example.org"});
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        c
    };

    let good = op.sign(claims(json!({})), false).await;
    let ok = provider
        .verify_id_token_submission(&good, Some("n1"))
        .await
        .unwrap();
    assert_eq!(ok.claims.email, "ann@example.org");
    let other_app = op.sign(claims(json!({"aud": "ios-app"})), false).await;
    assert!(
        provider
            .verify_id_token_submission(&other_app, Some("n1"))
            .await
            .is_ok()
    );

    let cases = [
        (
            op.sign(claims(json!({"exp": now() - 600, "iat": now() - 1200})), false)
                .await,
            "expired",
        ),
        (op.sign(claims(json!({})), true).await, "signature"),
        (
            op.sign(claims(json!({"aud": "someone-else"})), false).await,
            "audience",
        ),
        ("not.a.jwt".to_string(), "malformed"),
    ];
    for (token, expect) in cases {
        let err = provider
            .verify_id_token_submission(&token, Some("n1"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, OidcError::IdTokenInvalid(ref m) if m.contains(expect)),
            "{expect}: {err:?}"
        );
        assert_eq!(err.status(), 400);
    }

    // Nonces (Kratos' ProcessIDToken): wrong, not submitted, absent from a generic provider's token.
    assert_eq!(
        provider
            .verify_id_token_submission(&good, Some("n2"))
            .await
            .unwrap_err(),
        OidcError::NonceMismatch
    );
    assert_eq!(
        provider
            .verify_id_token_submission(&good, None)
            .await
            .unwrap_err(),
        OidcError::NonceMissingInSubmission
    );
    let no_nonce = op
        .sign(
            json!({"iss": op.issuer(), "sub": "ann", "aud": CLIENT_ID, "iat": now(), "exp": now() + 300}),
            false,
        )
        .await;
    assert_eq!(
        provider
            .verify_id_token_submission(&no_nonce, Some("n1"))
            .await
            .unwrap_err(),
        OidcError::NonceMissingInToken
    );

    // A plain OAuth2 provider can't take id_tokens at all.
    let github = op.provider(json!({"provider": "github"}), json!({}), HttpPolicy::default());
    assert!(matches!(
        github.verify_id_token_submission(&good, Some("n1")).await,
        Err(OidcError::IdTokenSubmissionUnsupported(_))
    ));
}

#[tokio::test]
async fn provider_down_or_slow() {
    let Some(op) = Op::start(json!({})).await else {
        return;
    };
    let policy = HttpPolicy {
        timeout: Duration::from_millis(800),
        ..HttpPolicy::default()
    };
    let provider = op.provider(
        json!({"provider": "generic", "issuer_url": op.issuer()}),
        json!({}),
        policy.clone(),
    );

    // Slow at the token endpoint: discovery is done, then the provider stalls.
    let req = start(&provider).await;
    let callback = browse(&req.url, Person::SignsInAndConsents("ann")).await;
    op.set_delay(3000).await;
    let err = provider.complete(&req.pending, &callback).await.unwrap_err();
    assert!(
        matches!(err, OidcError::TokenExchange(ref m) if m.contains("timed out")),
        "{err:?}"
    );

    // Slow at discovery.
    let fresh = op.provider(
        json!({"provider": "generic", "issuer_url": op.issuer()}),
        json!({}),
        policy.clone(),
    );
    let err = fresh
        .authorization_request(Uuid::new_v4(), FlowKind::Login, &AuthOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, OidcError::Discovery(ref m) if m.contains("timed out")),
        "{err:?}"
    );
    assert_eq!(err.status(), 502);

    // Down: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = op.provider(
        json!({"provider": "generic", "issuer_url": format!("http://127.0.0.1:{closed}")}),
        json!({}),
        policy,
    );
    let err = down
        .authorization_request(Uuid::new_v4(), FlowKind::Login, &AuthOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, OidcError::Discovery(ref m) if m.contains("connect")),
        "{err:?}"
    );
}

#[tokio::test]
async fn mapper_failures_after_a_real_sign_in() {
    let Some(op) = Op::start(json!({})).await else {
        return;
    };
    let broken = op.generic(
        json!({"mapper_url": format!("base64://{}", support::b64("{identity: {traits: 'not an object'}}"))}),
    );
    let req = start(&broken).await;
    let callback = browse(&req.url, Person::SignsInAndConsents("ann")).await;
    let done = broken.complete(&req.pending, &callback).await.unwrap();
    let err = broken.map_claims(&done.claims, None).await.unwrap_err();
    assert!(
        matches!(err, OidcError::Mapper(ref m) if m.contains("identity.traits")),
        "{err:?}"
    );

    let failing =
        op.generic(json!({"mapper_url": format!("base64://{}", support::b64("error 'no traits for you'"))}));
    let err = failing.map_claims(&done.claims, None).await.unwrap_err();
    assert!(
        matches!(err, OidcError::Mapper(ref m) if m.contains("no traits for you")),
        "{err:?}"
    );

    let missing = op.generic(json!({"mapper_url": format!("{}/nowhere.jsonnet", op.issuer())}));
    assert!(matches!(
        missing.map_claims(&done.claims, None).await,
        Err(OidcError::Mapper(_))
    ));
}

#[tokio::test]
async fn userinfo_as_claims_source() {
    // The spec's default: scope claims go to userinfo, not into the id_token.
    let Some(op) = Op::start(json!({"claims_in_id_token": false})).await else {
        return;
    };
    let from_token = op.generic(json!({}));
    let req = start(&from_token).await;
    let callback = browse(&req.url, Person::SignsInAndConsents("ann")).await;
    assert_eq!(
        from_token
            .complete(&req.pending, &callback)
            .await
            .unwrap()
            .claims
            .email,
        ""
    );

    let from_userinfo = op.generic(json!({"claims_source": "userinfo"}));
    let req = start(&from_userinfo).await;
    let callback = browse(&req.url, Person::SignsInAndConsents("ann")).await;
    let done = from_userinfo.complete(&req.pending, &callback).await.unwrap();
    assert_eq!(
        (done.claims.subject.as_str(), done.claims.email.as_str()),
        ("ann", "ann@example.org")
    );
    assert_eq!(
        done.claims.issuer,
        op.issuer(),
        "userinfo has no iss; the id_token's is used"
    );
}

#[tokio::test]
async fn private_ip_guard() {
    let Some(op) = Op::start(json!({})).await else {
        return;
    };
    let guarded = HttpPolicy {
        disallow_private_ip_ranges: true,
        ..HttpPolicy::default()
    };

    let literal = op.provider(
        json!({"provider": "generic", "issuer_url": op.issuer()}),
        json!({}),
        guarded.clone(),
    );
    let err = literal
        .authorization_request(Uuid::new_v4(), FlowKind::Login, &AuthOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, OidcError::Discovery(ref m) if m.contains("private IP")),
        "{err:?}"
    );

    // A host name that resolves to loopback is caught by the resolver.
    let named = op.provider(
        json!({"provider": "generic", "issuer_url": format!("http://localhost:{}", op.port)}),
        json!({}),
        guarded.clone(),
    );
    let err = named
        .authorization_request(Uuid::new_v4(), FlowKind::Login, &AuthOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, OidcError::Discovery(ref m) if m.contains("private IP")),
        "{err:?}"
    );

    // The mapper goes through the same client.
    let mapper_url = format!("{}/mapper.jsonnet", op.issuer());
    let remote_mapper = op.provider(
        json!({"provider": "generic", "issuer_url": op.issuer(), "mapper_url": mapper_url}),
        json!({}),
        guarded.clone(),
    );
    let err = remote_mapper
        .map_claims(&Default::default(), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("private IP"), "{err}");

    // Exceptions are exact URLs: the discovery document and the key set of this provider.
    let excepted = HttpPolicy {
        private_ip_exception_urls: vec![
            format!("{}/.well-known/openid-configuration", op.issuer()),
            format!("{}/jwks", op.issuer()),
        ],
        ..guarded
    };
    let allowed = op.provider(
        json!({"provider": "generic", "issuer_url": op.issuer()}),
        json!({}),
        excepted,
    );
    let req = start(&allowed).await;
    let callback = browse(&req.url, Person::SignsInAndConsents("ann")).await;
    // The token endpoint is not excepted.
    let err = allowed.complete(&req.pending, &callback).await.unwrap_err();
    assert!(
        matches!(err, OidcError::TokenExchange(ref m) if m.contains("private IP")),
        "{err:?}"
    );

    let http = sallyport_oidc::HttpClient::new(HttpPolicy {
        disallow_private_ip_ranges: true,
        ..Default::default()
    })
    .unwrap();
    let e = http
        .get_json(&url::Url::parse("http://[::1]:1/x").unwrap(), None)
        .await
        .unwrap_err();
    assert!(matches!(e, HttpError::PrivateIp(_)), "{e:?}");
}

#[tokio::test]
async fn github_app_reads_the_user_api() {
    let Some(op) = Op::start(json!({})).await else {
        return;
    };
    let provider = op
        .provider(
            json!({"provider": "github-app", "scope": ["openid", "email"]}),
            json!({}),
            HttpPolicy::default(),
        )
        .with_endpoints(|e| {
            e.auth_url = Some(op.url("/auth"));
            e.token_url = Some(op.url("/token"));
            e.api_base = Some(op.url("/__api/github"));
        });
    let req = start(&provider).await;
    assert!(req.pending.nonce.is_none(), "plain OAuth2: no nonce");
    assert_eq!(
        query(&req.url, "scope").as_deref(),
        Some("openid email"),
        "no openid added for plain OAuth2"
    );
    let callback = browse(&req.url, Person::SignsInAndConsents("ann")).await;
    let done = provider.complete(&req.pending, &callback).await.unwrap();
    assert_eq!(done.claims.subject, "4242");
    assert_eq!(done.claims.nickname, "ann");
    assert_eq!(
        done.claims.email, "ann@example.org",
        "the primary address, not the first"
    );
    assert!(done.claims.email_verified);
    assert_eq!(done.claims.issuer, op.url("/token").to_string());

    // github (not -app) insists on every configured scope being granted.
    let strict = op
        .provider(
            json!({"provider": "github", "scope": ["openid", "email", "user:email"]}),
            json!({}),
            HttpPolicy::default(),
        )
        .with_endpoints(|e| {
            e.auth_url = Some(op.url("/auth"));
            e.token_url = Some(op.url("/token"));
            e.api_base = Some(op.url("/__api/github"));
        });
    let req = start(&strict).await;
    let callback: CallbackParams = browse(&req.url, Person::SignsInAndConsents("ann")).await;
    let err = strict.complete(&req.pending, &callback).await;
    assert_eq!(err.unwrap_err(), OidcError::ScopeMissing);
}

const TENANT: &str = "8eaef023-2b34-4da1-9baa-8bc8c9d6a490";

/// Microsoft multi-tenant: the issuer to trust is the signing tenant's (`tid`), found at
/// `<login base>/<tid>/v2.0`; `subject_source: oid` takes the object id as subject.
#[tokio::test]
async fn microsoft_tenant_issuer_and_object_id_subject() {
    let mut accounts = support::accounts();
    accounts["mia"] =
        json!({"email": "mia@contoso.example", "email_verified": true, "tid": TENANT, "oid": "object-7"});
    accounts["eve"] = json!({"email": "eve@evil.example", "tid": "not-a-uuid"});
    let Some(op) = Op::start(json!({"mount": format!("/{TENANT}/v2.0"), "accounts": accounts})).await else {
        return;
    };
    let ms = |subject_source: &str| {
        let issuer = op.issuer();
        let login_base = op.url("/");
        op.provider(
            json!({"provider": "microsoft", "microsoft_tenant": "organizations", "subject_source": subject_source}),
            json!({}),
            HttpPolicy::default(),
        )
        .with_endpoints(move |e| {
            e.auth_url = Some(url::Url::parse(&format!("{issuer}/auth")).unwrap());
            e.token_url = Some(url::Url::parse(&format!("{issuer}/token")).unwrap());
            e.microsoft_login_base = login_base;
        })
    };

    let by_oid = ms("oid");
    let req = start(&by_oid).await;
    assert!(req.pending.nonce.is_some());
    let callback = browse(&req.url, Person::SignsInAndConsents("mia")).await;
    let done = by_oid.complete(&req.pending, &callback).await.unwrap();
    assert_eq!(done.claims.subject, "object-7");
    assert_eq!(done.claims.issuer, op.issuer());

    let by_sub = ms("userinfo");
    let req = start(&by_sub).await;
    let callback = browse(&req.url, Person::SignsInAndConsents("mia")).await;
    assert_eq!(
        by_sub
            .complete(&req.pending, &callback)
            .await
            .unwrap()
            .claims
            .subject,
        "mia"
    );

    // A token whose tenant id is not a UUID is refused before any issuer is trusted.
    let req = start(&by_sub).await;
    let callback = browse(&req.url, Person::SignsInAndConsents("eve")).await;
    let err = by_sub.complete(&req.pending, &callback).await.unwrap_err();
    assert!(
        matches!(err, OidcError::IdTokenInvalid(ref m) if m.contains("TenantID")),
        "{err:?}"
    );
}

/// Native id_token submissions for Apple and Google (Kratos' `ProcessIDToken` + `CanSkipNonce`), with tokens
/// signed by the provider's published key; the adapters are pointed at the test provider.
#[tokio::test]
async fn native_submissions_apple_and_google_nonce_rules() {
    let Some(op) = Op::start(json!({})).await else {
        return;
    };
    let issuer = url::Url::parse(&op.issuer()).unwrap();
    let apple = op
        .provider(
            json!({"provider": "apple", "client_secret": null, "apple_team_id": "T", "apple_private_key_id": "K",
                   "apple_private_key": test_apple_key()}),
            json!({}),
            HttpPolicy::default(),
        )
        .with_endpoints(|e| e.issuer = Some(issuer.clone()));
    let google = op
        .provider(json!({"provider": "google"}), json!({}), HttpPolicy::default())
        .with_endpoints(|e| e.issuer = Some(issuer.clone()));
    let token = |extra: Value| {
        let mut c = json!({"iss": op.issuer(), "sub": "001234.apple", "aud": CLIENT_ID, "iat": now(), "exp": now() + 300,
                           "email": "ann@privaterelay.example", "email_verified": "true"});
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        op.sign(c, false)
    };

    // Apple: a device without nonce support may omit it; one that claims support may not.
    let no_nonce = token(json!({})).await;
    let done = apple.verify_id_token_submission(&no_nonce, None).await.unwrap();
    assert!(
        done.claims.email_verified,
        "Apple's \"true\" string counts as verified"
    );
    let claims_support = token(json!({"nonce_supported": true})).await;
    assert_eq!(
        apple
            .verify_id_token_submission(&claims_support, None)
            .await
            .unwrap_err(),
        OidcError::NonceMissingInToken
    );
    let with_nonce = token(json!({"nonce": "abc"})).await;
    assert!(
        apple
            .verify_id_token_submission(&with_nonce, Some("abc"))
            .await
            .is_ok()
    );
    assert_eq!(
        apple
            .verify_id_token_submission(&with_nonce, Some("abd"))
            .await
            .unwrap_err(),
        OidcError::NonceMismatch
    );

    // Google: a token without a nonce is accepted; one with a nonce must match.
    assert!(google.verify_id_token_submission(&no_nonce, None).await.is_ok());
    assert_eq!(
        google
            .verify_id_token_submission(&with_nonce, None)
            .await
            .unwrap_err(),
        OidcError::NonceMissingInSubmission
    );
}

fn test_apple_key() -> String {
    // A throwaway P-256 key (PKCS#8), only used to mint Apple client secrets in tests.
    "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgBwcHBwcHBwcHBwcH\nBwcHBwcHBwcHBwcHBwcHBwcHBwehRANCAAQeGFMv1HVMAvMEHZx1zrM7g//YGsfO\nT+iCzLHJi8WJbqRsMRxOL/QN2Wo2U+bkVEXTLf5Ibs7XXHqQxqGIgcCj\n-----END PRIVATE KEY-----\n".to_string()
}

/// Auth0 is read through its `/userinfo` API (plain OAuth2 in Kratos), but with `issuer_url` set PKCE `auto`
/// probes discovery as Kratos does; Auth0's RFC 3339 `updated_at` becomes seconds.
#[tokio::test]
async fn auth0_user_api_and_pkce_probe() {
    let Some(op) = Op::start(json!({})).await else {
        return;
    };
    let provider = op
        .provider(
            json!({"provider": "auth0", "issuer_url": op.issuer()}),
            json!({}),
            HttpPolicy::default(),
        )
        .with_endpoints(|e| {
            e.auth_url = Some(op.url("/auth"));
            e.token_url = Some(op.url("/token"));
            e.api_base = Some(op.url("/__api/auth0"));
        });
    let req = start(&provider).await;
    assert_eq!(query(&req.url, "code_challenge_method").as_deref(), Some("S256"));
    assert!(req.pending.nonce.is_none());
    let callback = browse(&req.url, Person::SignsInAndConsents("ann")).await;
    let done = provider.complete(&req.pending, &callback).await.unwrap();
    assert_eq!(done.claims.subject, "auth0|ann");
    assert_eq!(done.claims.updated_at, 1_767_323_045);
    assert_eq!(done.claims.issuer, op.url("/__api/auth0").to_string());

    // The probe failing (nothing there) is not fatal: the request goes out without PKCE.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let unprobed = op
        .provider(
            json!({"provider": "auth0", "issuer_url": format!("http://127.0.0.1:{closed}")}),
            json!({}),
            HttpPolicy::default(),
        )
        .with_endpoints(|e| e.auth_url = Some(op.url("/auth")));
    let req = start(&unprobed).await;
    assert_eq!(query(&req.url, "code_challenge"), None);
}

/// Discord, Slack, Facebook (with its `appsecret_proof`) and Spotify: the OAuth2 dance at the real provider,
/// then each one's user API in its own shape.
#[tokio::test]
async fn plain_oauth2_user_apis() {
    let Some(op) = Op::start(json!({})).await else {
        return;
    };
    for (kind, subject, verified) in [
        ("discord", "d-ann", true),
        ("slack", "U-ann", true),
        ("facebook", "fb-ann", true),
        ("spotify", "sp-ann", false),
    ] {
        let provider = op
            .provider(
                json!({"provider": kind, "scope": ["openid", "email"]}),
                json!({}),
                HttpPolicy::default(),
            )
            .with_endpoints(|e| {
                e.auth_url = Some(op.url("/auth"));
                e.token_url = Some(op.url("/token"));
                e.api_base = Some(op.url(&format!("/__api/{kind}")));
            });
        // Discord asks for `prompt=none` unless re-authenticating; a fresh browser needs the login page.
        let options = AuthOptions {
            refresh: kind == "discord",
            ..Default::default()
        };
        let req = provider
            .authorization_request(Uuid::new_v4(), FlowKind::Login, &options)
            .await
            .unwrap();
        let callback = browse(&req.url, Person::SignsInAndConsents("ann")).await;
        let done = provider
            .complete(&req.pending, &callback)
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e:?}"));
        assert_eq!(done.claims.subject, subject, "{kind}");
        assert_eq!(done.claims.email, "ann@example.org", "{kind}");
        assert_eq!(done.claims.email_verified, verified, "{kind}");
        assert!(!done.claims.issuer.is_empty(), "{kind}");
    }
}
