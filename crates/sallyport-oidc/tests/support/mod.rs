//! A real OpenID Provider (npm `oidc-provider`, see `tests/provider/`) on 127.0.0.1, and a browser stand-in
//! that signs a test account in on its login and consent pages.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use sallyport_oidc::{CallbackParams, HttpClient, HttpPolicy, OidcConfig, Provider};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use url::Url;

/// Sallyport's (imaginary) public URL: the tests never follow the redirect back, they read it.
pub const PUBLIC_BASE: &str = "http://127.0.0.1:4433/";
pub const CLIENT_ID: &str = "sallyport-test";
pub const CLIENT_SECRET: &str = "sallyport-test-secret-0123456789";

/// Greets the reader with what's needed when the provider's npm packages aren't installed. CI installs
/// them (`.ci/run` runs `npm ci`), so there a missing install is a failure, not a skip.
fn provider_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/provider");
    if dir.join("node_modules/oidc-provider").is_dir() {
        return Some(dir);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "tests/provider/node_modules is missing: .ci/run must run `npm ci` in {}",
            dir.display()
        );
    }
    eprintln!(
        "SKIPPED: the OpenID Provider is not installed; run `npm ci` in {} to run this test",
        dir.display()
    );
    None
}

pub struct Op {
    _child: Child,
    pub port: u16,
    /// The path the provider lives under (`settings.mount`), empty by default.
    pub mount: String,
}

/// The test accounts every provider knows; tests pick one and know its claims.
pub fn accounts() -> Value {
    json!({
        "ann": {"email": "ann@example.org", "email_verified": true, "name": "Ann Example", "given_name": "Ann"},
        "bob": {"email": "bob@example.org", "email_verified": false},
    })
}

pub fn redirect_uris() -> Value {
    json!([
        format!("{PUBLIC_BASE}self-service/methods/oidc/callback/op"),
        format!("{PUBLIC_BASE}self-service/methods/oidc/callback"),
    ])
}

impl Op {
    /// Starts a provider with one static client and [`accounts`]; `extra` is merged into its settings.
    pub async fn start(extra: Value) -> Option<Op> {
        let dir = provider_dir()?;
        let mount = extra
            .get("mount")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let mut settings = json!({
            "clients": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": redirect_uris(),
                         "grant_types": ["authorization_code", "refresh_token"]}],
            "accounts": accounts(),
        });
        if let (Value::Object(s), Value::Object(e)) = (&mut settings, extra) {
            s.extend(e);
        }
        let mut child = Command::new("node")
            .arg("provider.mjs")
            .arg(settings.to_string())
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("node must be installed to run the provider");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the provider did not start within 30 s")
            .expect("reading the provider's stdout")
            .expect("the provider exited before listening");
        let port = line
            .strip_prefix("listening ")
            .expect("the provider's ready line")
            .trim()
            .parse()
            .unwrap();
        // Keep reading: a closed pipe would kill the provider at its next write.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Some(Op {
            _child: child,
            port,
            mount,
        })
    }

    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}{}", self.port, self.mount)
    }

    /// `path` on the provider's host, outside any mount (the test routes live there).
    pub fn url(&self, path: &str) -> Url {
        Url::parse(&format!("http://127.0.0.1:{}{path}", self.port)).unwrap()
    }

    /// A JWT signed with the provider's published key (or, `foreign`, with a key it does not publish).
    pub async fn sign(&self, claims: Value, foreign: bool) -> String {
        let mut url = self.url("/__test/sign");
        if foreign {
            url.set_query(Some("key=foreign"));
        }
        reqwest::Client::new()
            .post(url)
            .body(claims.to_string())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Makes every later provider request wait `ms` first.
    pub async fn set_delay(&self, ms: u64) {
        let url = self.url(&format!("/__test/delay?ms={ms}"));
        reqwest::Client::new().post(url).send().await.unwrap();
    }

    /// A `generic` provider with id `op` for this OP, parsed from Kratos-shaped config; `extra` overrides keys.
    pub fn generic(&self, extra: Value) -> Provider {
        self.provider(
            json!({"provider": "generic", "issuer_url": self.issuer()}),
            extra,
            HttpPolicy::default(),
        )
    }

    pub fn provider(&self, base: Value, extra: Value, policy: HttpPolicy) -> Provider {
        let mut p = json!({
            "id": "op", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "mapper_url": format!("base64://{}", b64(MAPPER)), "scope": ["email", "profile"],
        });
        for patch in [base, extra] {
            if let (Value::Object(p), Value::Object(e)) = (&mut p, patch) {
                p.extend(e);
            }
        }
        let config = OidcConfig::from_value(&json!({"providers": [p]})).expect("valid provider config");
        let http = HttpClient::new(policy).unwrap();
        Provider::new(
            config.providers[0].clone(),
            &Url::parse(PUBLIC_BASE).unwrap(),
            http,
        )
    }
}

pub const MAPPER: &str = r#"
local claims = std.extVar('claims');
{
  identity: {
    traits: { email: claims.email, [if 'name' in claims then 'name']: claims.name },
    verified_addresses: if 'email_verified' in claims && claims.email_verified
      then [{ value: claims.email, via: 'email' }] else [],
    metadata_admin: { upstream_sub: claims.sub },
  },
}
"#;

pub fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// What the person does on the provider's pages.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Person {
    SignsInAndConsents(&'static str),
    Cancels,
}

/// Follows `auth_url` through the provider's login and consent pages like a browser and returns the
/// callback's parameters (from the redirect's query, or from Apple-style `form_post` HTML).
pub async fn browse(auth_url: &Url, person: Person) -> CallbackParams {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut url = auth_url.clone();
    let mut response = client.get(url.clone()).send().await.unwrap();
    for _ in 0..20 {
        let status = response.status().as_u16();
        if (300..400).contains(&status) {
            let location = response.headers()["location"].to_str().unwrap().to_string();
            let next = url.join(&location).unwrap();
            if next.as_str().starts_with(PUBLIC_BASE) {
                let provider = next
                    .path()
                    .rsplit('/')
                    .next()
                    .filter(|s| *s != "callback")
                    .map(str::to_string);
                return CallbackParams::from_pairs(
                    provider.as_deref(),
                    next.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())),
                );
            }
            url = next;
            response = client.get(url.clone()).send().await.unwrap();
            continue;
        }
        let body = response.text().await.unwrap();
        assert_eq!(status, 200, "unexpected page from the provider: {body}");
        if body.contains(PUBLIC_BASE) && body.contains("<form") && !body.contains("name=\"prompt\"") {
            return form_post_params(&body);
        }
        let uid_path = url.path().to_string();
        if person == Person::Cancels {
            url = url.join(&format!("{uid_path}/abort")).unwrap();
            response = client.get(url.clone()).send().await.unwrap();
            continue;
        }
        let form: Vec<(&str, &str)> = if body.contains("name=\"login\"") {
            let Person::SignsInAndConsents(account) = person else {
                unreachable!()
            };
            vec![
                ("prompt", "login"),
                ("login", account),
                ("password", "irrelevant"),
            ]
        } else {
            vec![("prompt", "consent")]
        };
        response = client.post(url.clone()).form(&form).send().await.unwrap();
    }
    panic!("the provider never redirected back");
}

fn form_post_params(html: &str) -> CallbackParams {
    let mut pairs = Vec::new();
    for input in html.split("<input").skip(1) {
        let attr = |name: &str| {
            input
                .split(&format!("{name}=\""))
                .nth(1)
                .and_then(|r| r.split('"').next())
                .map(str::to_string)
        };
        if let (Some(n), Some(v)) = (attr("name"), attr("value")) {
            pairs.push((n, v));
        }
    }
    CallbackParams::from_pairs(Some("op"), pairs)
}
