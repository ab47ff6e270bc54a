//! From kratos.yml to [`Settings`]: load with `sallyport-config`, then resolve every value the server
//! reads once, so handlers never re-derive fallbacks.

use std::path::PathBuf;

use anyhow::Context;
use sallyport_config::{Config, FlowKind, HashAlgorithm, LoadOptions, model};
use url::Url;

use crate::settings::{
    AddressFlowSettings, AfterSettings, CodeSettings, CookieSettings, CorsSettings, FlowSettings,
    HasherSettings, MethodAfter, PasswordSettings, RequiredAal, SameSite, Settings,
};

/// Loads config files (or, for `--dev` without files, built-in development defaults) plus the environment.
pub fn load(files: &[PathBuf], dev: bool) -> anyhow::Result<Config> {
    let opts = LoadOptions::from_process_env(files.to_vec(), dev);
    let cfg = if files.is_empty() && dev {
        let mut base = sallyport_config::dev_defaults();
        // Without a config, make registration sign the new identity in, as Kratos' quickstart does.
        base["selfservice"]["flows"]["registration"]["after"]["password"]["hooks"] =
            serde_json::json!([{"hook": "session"}]);
        // The built-in pages greet whoever signs in; Kratos' quickstart UI port may have nothing listening.
        base["selfservice"]["default_browser_return_url"] = serde_json::json!("/ui/welcome");
        sallyport_config::load_with_base(base, &opts)
    } else {
        sallyport_config::load(&opts)
    };
    cfg.map_err(|e| anyhow::anyhow!("invalid configuration:\n{e}"))
}

fn same_site(s: model::SameSite) -> SameSite {
    match s {
        model::SameSite::Lax => SameSite::Lax,
        model::SameSite::Strict => SameSite::Strict,
        model::SameSite::None => SameSite::None,
    }
}

fn after(cfg: &Config, a: &model::AfterHooks) -> AfterSettings {
    let names = |hooks: &[model::Hook]| hooks.iter().map(|h| h.hook.clone()).collect::<Vec<_>>();
    AfterSettings {
        default_return_url: a
            .default_browser_return_url
            .as_deref()
            .map(|u| cfg.resolve_url(u)),
        hooks: names(&a.hooks),
        per_method: a
            .methods
            .iter()
            .map(|(m, v)| {
                let hooks = (!v.hooks.is_empty()).then(|| names(&v.hooks));
                (
                    m.clone(),
                    MethodAfter {
                        default_return_url: v
                            .default_browser_return_url
                            .as_deref()
                            .map(|u| cfg.resolve_url(u)),
                        hooks,
                    },
                )
            })
            .collect(),
    }
}

fn listen(host: &str, port: u16) -> String {
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

pub fn settings(cfg: &Config, dev: bool) -> anyhow::Result<Settings> {
    let ss = &cfg.selfservice;
    let pw = &ss.methods.password;
    let mut allowed_return_urls = vec![];
    for u in &ss.allowed_return_urls {
        allowed_return_urls.push(
            Url::parse(u).with_context(|| format!("selfservice.allowed_return_urls: {u:?} is not a URL"))?,
        );
    }
    let hasher = match cfg.hashers.algorithm {
        HashAlgorithm::Bcrypt => HasherSettings::Bcrypt {
            cost: cfg.bcrypt_cost(),
        },
        HashAlgorithm::Argon2 => {
            let a = &cfg.hashers.argon2;
            HasherSettings::Argon2 {
                memory_kib: a.memory.kibibytes().min(u32::MAX as u64) as u32,
                iterations: a.iterations,
                parallelism: a.parallelism,
                salt_length: a.salt_length,
                key_length: a.key_length,
            }
        }
    };
    let cors = &cfg.serve.public.cors;
    let oidc = if ss.methods.oidc.enabled {
        let raw = cfg.raw();
        let config = sallyport_oidc::OidcConfig::from_value(
            raw.pointer("/selfservice/methods/oidc/config")
                .unwrap_or(&serde_json::Value::Null),
        )
        .map_err(|e| anyhow::anyhow!("{}: {}", e.path, e.message))?;
        let cipher = sallyport_oidc::Cipher::from_config(raw).map_err(|e| anyhow::anyhow!(e))?;
        Some(crate::settings::OidcSettings {
            config,
            http: sallyport_oidc::HttpPolicy::from_config(raw),
            cipher,
        })
    } else {
        None
    };
    let wh = &cfg.sallyport.web_hooks;
    let web_hooks = crate::settings::WebHookSettings {
        table: crate::webhook::WebHookTable::from_config(cfg).map_err(|e| anyhow::anyhow!(e))?,
        http: sallyport_oidc::HttpPolicy::from_config(cfg.raw()),
        timeout: wh.timeout,
        max_response_bytes: wh.max_response_bytes,
        max_attempts: wh.max_attempts,
        retry_initial: wh.retry_initial,
        poll_interval: wh.poll_interval,
    };
    let passkey = ss
        .methods
        .passkey
        .enabled
        .then(|| webauthn_settings(cfg, &ss.methods.passkey.config))
        .transpose()?;
    let webauthn = ss
        .methods
        .webauthn
        .enabled
        .then(|| webauthn_settings(cfg, &ss.methods.webauthn.config))
        .transpose()?;
    Ok(Settings {
        web_hooks,
        oidc,
        passkey,
        webauthn,
        dev,
        dsn: cfg.dsn.clone(),
        public_base_url: cfg.public_base_url(),
        admin_base_url: cfg.admin_base_url(),
        public_listen: listen(&cfg.serve.public.host, cfg.serve.public.port),
        admin_listen: listen(&cfg.serve.admin.host, cfg.serve.admin.port),
        default_return_url: cfg.default_browser_return_url(),
        allowed_return_urls,
        login: FlowSettings {
            ui_url: cfg.flow_ui_url(FlowKind::Login),
            lifespan: cfg.flow_lifespan(FlowKind::Login),
            after: after(cfg, &ss.flows.login.after),
        },
        registration: FlowSettings {
            ui_url: cfg.flow_ui_url(FlowKind::Registration),
            lifespan: cfg.flow_lifespan(FlowKind::Registration),
            after: after(cfg, &ss.flows.registration.after),
        },
        registration_enabled: ss.flows.registration.enabled,
        registration_two_step: ss.flows.registration.style == model::RegistrationStyle::ProfileFirst
            && !ss.flows.registration.enable_legacy_one_step,
        settings_ui_url: cfg.flow_ui_url(FlowKind::Settings),
        error_ui_url: cfg.error_ui_url(),
        logout_return_url: Some(cfg.logout_return_url()),
        password: PasswordSettings {
            enabled: pw.enabled,
            min_length: pw.config.min_password_length as usize,
            identifier_similarity_check_enabled: pw.config.identifier_similarity_check_enabled,
            haveibeenpwned_enabled: pw.config.haveibeenpwned_enabled,
            haveibeenpwned_host: pw.config.haveibeenpwned_host.clone(),
            max_breaches: pw.config.max_breaches as u64,
            ignore_network_errors: pw.config.ignore_network_errors,
        },
        code_mfa_enabled: ss.methods.code.enabled && ss.methods.code.mfa_enabled,
        code: CodeSettings {
            enabled: ss.methods.code.enabled,
            passwordless_enabled: ss.methods.code.enabled && ss.methods.code.passwordless_enabled,
            mfa_enabled: ss.methods.code.enabled && ss.methods.code.mfa_enabled,
            lifespan: ss.methods.code.config.lifespan,
            max_submissions: ss.methods.code.config.max_submissions,
            missing_credential_fallback_enabled: ss.methods.code.config.missing_credential_fallback_enabled,
        },
        link_enabled: ss.methods.link.enabled,
        link_lifespan: ss.methods.link.config.lifespan,
        recovery: AddressFlowSettings {
            enabled: ss.flows.recovery.enabled,
            use_link: ss.flows.recovery.use_ == model::AddressFlowMethod::Link,
            ui_url: cfg.flow_ui_url(FlowKind::Recovery),
            lifespan: cfg.flow_lifespan(FlowKind::Recovery),
            notify_unknown_recipients: ss.flows.recovery.notify_unknown_recipients,
            after: after(cfg, &ss.flows.recovery.after),
        },
        verification: AddressFlowSettings {
            enabled: ss.flows.verification.enabled,
            use_link: ss.flows.verification.use_ == model::AddressFlowMethod::Link,
            ui_url: cfg.flow_ui_url(FlowKind::Verification),
            lifespan: cfg.flow_lifespan(FlowKind::Verification),
            notify_unknown_recipients: ss.flows.verification.notify_unknown_recipients,
            after: after(cfg, &ss.flows.verification.after),
        },
        privileged_session_max_age: ss.flows.settings.privileged_session_max_age,
        settings_lifespan: ss.flows.settings.lifespan,
        settings_required_aal: match ss.flows.settings.required_aal {
            model::RequiredAal::Aal1 => RequiredAal::Aal1,
            model::RequiredAal::HighestAvailable => RequiredAal::HighestAvailable,
        },
        totp_enabled: ss.methods.totp.enabled,
        totp_issuer: cfg.totp_issuer(),
        lookup_enabled: ss.methods.lookup_secret.enabled,
        mfa_policy: cfg.sallyport.mfa_policy.clone(),
        whoami_cache_bytes: usize::try_from(cfg.sallyport.cache.whoami_max_bytes.0).unwrap_or(usize::MAX),
        rate_limits: crate::rate_limit::RateLimitSettings::from_config(&cfg.sallyport.rate_limits),
        ui: ui_settings(cfg)?,
        use_continue_with_transitions: cfg.feature_flags.use_continue_with_transitions,
        http_correct_status: cfg.sallyport.http_correct_status,
        legacy_require_verified_login_error: cfg.feature_flags.legacy_require_verified_login_error,
        expose_message_bodies: dev,
        courier: cfg.courier.clone(),
        config_hash: cfg.hash(),
        session_lifespan: cfg.session.lifespan,
        session_earliest_possible_extend: cfg.session.earliest_possible_extend,
        session_cookie: CookieSettings {
            name: cfg.session_cookie_name().to_owned(),
            domain: cfg.session_cookie_domain().map(str::to_owned),
            path: cfg.session_cookie_path().to_owned(),
            same_site: same_site(cfg.session_cookie_same_site()),
            secure: cfg.session_cookie_secure(dev),
            persistent: cfg.session_cookie_persistent(),
        },
        whoami_required_aal: match cfg.session.whoami.required_aal {
            model::RequiredAal::Aal1 => RequiredAal::Aal1,
            model::RequiredAal::HighestAvailable => RequiredAal::HighestAvailable,
        },
        csrf_cookie: CookieSettings {
            name: String::new(),
            domain: cfg.cookie_domain().map(str::to_owned),
            path: cfg.cookie_path().to_owned(),
            same_site: same_site(cfg.cookie_same_site()),
            secure: cfg.cookie_secure(dev),
            persistent: true,
        },
        cookie_secrets: cfg.cookie_secrets(),
        cipher_secrets: if cfg.cipher_secrets().is_empty() {
            cfg.cookie_secrets()
        } else {
            cfg.cipher_secrets()
        },
        hasher,
        schemas: cfg
            .identity
            .schemas
            .iter()
            .map(|s| (s.id.clone(), s.url.clone()))
            .collect(),
        default_schema_id: cfg.identity.default_schema_id.clone(),
        cors: cors.enabled.then(|| CorsSettings {
            allowed_origins: cors.allowed_origins.clone(),
            allowed_methods: cors.allowed_methods.clone(),
            allowed_headers: cors.allowed_headers.clone(),
            exposed_headers: cors.exposed_headers.clone(),
            allow_credentials: cors.allow_credentials,
            max_age: (cors.max_age > 0).then_some(cors.max_age),
        }),
        disable_api_flow_enforcement: dev
            && std::env::var("DEV_DISABLE_API_FLOW_ENFORCEMENT").is_ok_and(|v| v == "true"),
    })
}

/// `sallyport.ui`, checked here so a bad colour or a missing directory fails at startup, not per page.
fn ui_settings(cfg: &Config) -> anyhow::Result<model::UiBranding> {
    let ui = cfg.sallyport.ui.clone();
    let c = ui.primary_color.as_bytes();
    let hex = c.len() > 1 && c[0] == b'#' && c[1..].iter().all(u8::is_ascii_hexdigit);
    anyhow::ensure!(
        hex && (c.len() == 4 || c.len() == 7),
        "sallyport.ui.primary_color: {:?} is not #rgb or #rrggbb",
        ui.primary_color
    );
    if let Some(logo) = &ui.logo_url {
        let ok = logo.starts_with('/') && !logo.starts_with("//")
            || Url::parse(logo).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
        anyhow::ensure!(
            ok,
            "sallyport.ui.logo_url: {logo:?} is not an http(s) URL or a /path"
        );
    }
    for (key, dir) in [("template_dir", &ui.template_dir), ("locale_dir", &ui.locale_dir)] {
        if let Some(d) = dir {
            anyhow::ensure!(
                d.is_dir(),
                "sallyport.ui.{key}: {} is not a directory",
                d.display()
            );
        }
    }
    Ok(ui)
}

/// `config.rp` (`id`, `display_name`, `origins`, or the older single `origin`) and `passwordless`.
/// Without origins the public base URL's origin is the only one, as a same-site front end needs.
fn webauthn_settings(
    cfg: &Config,
    raw: &serde_json::Value,
) -> anyhow::Result<crate::settings::WebAuthnSettings> {
    let rp = &raw["rp"];
    let base = cfg.public_base_url();
    let id = rp["id"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| base.host_str().map(str::to_owned))
        .unwrap_or_default();
    let mut origins: Vec<url::Url> = vec![];
    let listed = rp["origins"].as_array().cloned().unwrap_or_default();
    for o in listed.iter().chain(rp.get("origin")) {
        if let Some(s) = o.as_str() {
            origins.push(url::Url::parse(s).map_err(|e| anyhow::anyhow!("webauthn rp origin {s:?}: {e}"))?);
        }
    }
    if origins.is_empty() {
        origins.push(url::Url::parse(&base.origin().ascii_serialization())?);
    }
    Ok(crate::settings::WebAuthnSettings {
        rp: sallyport_webauthn::RelyingParty {
            id,
            display_name: rp["display_name"].as_str().unwrap_or_default().to_owned(),
            origins,
        },
        passwordless: raw["passwordless"].as_bool().unwrap_or(false),
    })
}
