//! Which config keys Sallyport implements, and which keys a user set that it does not (yet).

use serde_json::Value;

/// Dotted key paths Sallyport implements; each covers its whole subtree. `*` matches one key.
/// Keep this in step with the typed model in `model/`.
pub const IMPLEMENTED_KEYS: &[&str] = &[
    "version",
    "dev",
    "help",
    "config",
    "sqa-opt-out",
    "watch-courier",
    "dsn",
    "serve.public.base_url",
    "serve.public.host",
    "serve.public.port",
    "serve.public.cors.enabled",
    "serve.public.cors.allowed_origins",
    "serve.public.cors.allowed_methods",
    "serve.public.cors.allowed_headers",
    "serve.public.cors.exposed_headers",
    "serve.public.cors.allow_credentials",
    "serve.public.cors.max_age",
    "serve.admin.base_url",
    "serve.admin.host",
    "serve.admin.port",
    "selfservice.default_browser_return_url",
    "selfservice.allowed_return_urls",
    "selfservice.methods.*.enabled",
    "selfservice.methods.password.config.min_password_length",
    "selfservice.methods.password.config.identifier_similarity_check_enabled",
    "selfservice.methods.password.config.haveibeenpwned_enabled",
    "selfservice.methods.password.config.haveibeenpwned_host",
    "selfservice.methods.password.config.max_breaches",
    "selfservice.methods.password.config.ignore_network_errors",
    "selfservice.methods.code.passwordless_enabled",
    "selfservice.methods.code.mfa_enabled",
    "selfservice.methods.code.config",
    "selfservice.methods.link.config",
    "selfservice.methods.totp.config",
    "selfservice.methods.passkey.config.rp",
    "selfservice.methods.webauthn.config.rp",
    "selfservice.methods.webauthn.config.passwordless",
    "selfservice.flows.*.ui_url",
    "selfservice.flows.*.lifespan",
    "selfservice.flows.*.before",
    "selfservice.flows.*.after",
    "selfservice.flows.*.enabled",
    "selfservice.flows.*.use",
    "selfservice.flows.*.notify_unknown_recipients",
    "selfservice.flows.login.style",
    "selfservice.flows.registration.style",
    "selfservice.flows.registration.enable_legacy_one_step",
    "selfservice.flows.registration.login_hints",
    "selfservice.flows.settings.privileged_session_max_age",
    "selfservice.flows.settings.required_aal",
    "session.lifespan",
    "session.earliest_possible_extend",
    "session.cookie",
    "session.whoami.required_aal",
    "cookies",
    "secrets.default",
    "secrets.cookie",
    "secrets.cipher",
    "hashers.algorithm",
    "hashers.bcrypt.cost",
    "hashers.argon2.memory",
    "hashers.argon2.iterations",
    "hashers.argon2.parallelism",
    "hashers.argon2.salt_length",
    "hashers.argon2.key_length",
    "identity.default_schema_id",
    "identity.schemas",
    "courier.smtp.connection_uri",
    "courier.smtp.from_address",
    "courier.smtp.from_name",
    "courier.smtp.headers",
    "courier.smtp.local_name",
    "courier.channels",
    "courier.templates",
    "courier.template_override_path",
    "courier.message_retries",
    "courier.worker",
    "courier.delivery_strategy",
    "courier.http",
    "log.level",
    "log.format",
    "log.leak_sensitive_values",
    "feature_flags",
    "security.account_enumeration.mitigate",
    "clients.http.disallow_private_ip_ranges",
    "clients.http.private_ip_exception_urls",
    "clients.web_hook.header_allowlist",
    "database.cleanup",
];

fn segment_matches(pattern: &str, key: &str) -> bool {
    pattern == "*" || pattern == key
}

/// Is `path` covered by an implemented entry, an ancestor of one, or neither?
enum Coverage {
    Covered,
    Ancestor,
    No,
}

fn coverage(path: &[String], implemented: &[&str]) -> Coverage {
    let mut ancestor = false;
    for entry in implemented {
        let pattern: Vec<&str> = entry.split('.').collect();
        let n = pattern.len().min(path.len());
        if !pattern[..n]
            .iter()
            .zip(&path[..n])
            .all(|(p, k)| segment_matches(p, k))
        {
            continue;
        }
        if path.len() >= pattern.len() {
            return Coverage::Covered;
        }
        ancestor = true;
    }
    if ancestor {
        Coverage::Ancestor
    } else {
        Coverage::No
    }
}

/// Leaf key paths set in `user` that no entry of `implemented` covers (a list counts as a leaf).
pub(crate) fn unimplemented(user: &Value, implemented: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    walk(user, &mut Vec::new(), implemented, &mut out);
    out
}

fn walk(node: &Value, path: &mut Vec<String>, implemented: &[&str], out: &mut Vec<String>) {
    let uncovered = match coverage(path, implemented) {
        _ if path.is_empty() => false,
        Coverage::Covered => return,
        Coverage::Ancestor => false,
        Coverage::No => true,
    };
    match node {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                path.push(k.clone());
                walk(v, path, implemented, out);
                path.pop();
            }
        }
        Value::Object(_) if !uncovered => {}
        _ if !path.is_empty() => out.push(path.join(".")),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_unimplemented_leaf_keys() {
        let user = json!({
            "dsn": "memory",
            "selfservice": {"methods": {"oidc": {"enabled": true, "config": {"providers": []}}}},
            "oauth2_provider": {"url": "https://hydra"},
            "session": {"whoami": {"required_aal": "aal1", "tokenizer": {"templates": {}}}},
            "serve": {"public": {"port": 1, "tls": {"cert": {"path": "x"}}}},
        });
        assert_eq!(
            unimplemented(&user, IMPLEMENTED_KEYS),
            vec![
                "selfservice.methods.oidc.config.providers",
                "oauth2_provider.url",
                "session.whoami.tokenizer.templates",
                "serve.public.tls.cert.path",
            ]
        );
    }
}
