//! The `sallyport` binary itself: config loading, `migrate sql`, readiness, admin-API client commands, SIGTERM.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::both_backends;
use crate::support::client::{api, body, send};
use crate::support::{Backend, TestDb, fixture};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_sallyport");

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn write_config(dir: &std::path::Path, dsn: &str, public: u16, admin: u16) -> std::path::PathBuf {
    let yaml = format!(
        r#"
version: v1.3.0
dsn: "{dsn}"
serve:
  public: {{ base_url: "http://127.0.0.1:{public}/", host: 127.0.0.1, port: {public} }}
  admin: {{ base_url: "http://127.0.0.1:{admin}/", host: 127.0.0.1, port: {admin} }}
selfservice:
  default_browser_return_url: http://127.0.0.1:4455/
  methods:
    password: {{ enabled: true, config: {{ haveibeenpwned_enabled: false }} }}
identity:
  default_schema_id: default
  schemas:
    - {{ id: default, url: "file://{schema}" }}
secrets:
  cookie: [ "a-very-secret-cookie-secret-for-tests" ]
hashers: {{ algorithm: bcrypt, bcrypt: {{ cost: 12 }} }}
log: {{ level: info, format: json }}
oauth2_provider: {{ url: "http://hydra.test:4445" }}
"#,
        schema = fixture("email-password.schema.json").display()
    );
    let p = dir.join("kratos.yml");
    std::fs::write(&p, yaml).unwrap();
    p
}

pub(crate) async fn wait_for(url: &str, want: u16, within: Duration) -> (u16, Value) {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(res) = api().get(url).send().await {
            let (st, v) = body(res).await;
            if st.as_u16() == want || Instant::now() > deadline {
                return (st.as_u16(), v);
            }
        } else if Instant::now() > deadline {
            return (0, Value::Null);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) fn run(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub(crate) fn terminate(child: &mut std::process::Child) -> bool {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status.success();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    false
}

both_backends!(migrate_serve_and_admin_client, |b: Backend| async move {
    let db = TestDb::new(b).await;
    let dir = tempfile::tempdir().unwrap();
    let (public, admin) = (free_port(), free_port());
    let cfg = write_config(dir.path(), &db.dsn, public, admin);
    let cfg_s = cfg.to_str().unwrap();

    let (ok, out, err) = run(&["migrate", "sql", "status", "-e", "-c", cfg_s], &[]);
    assert!(ok, "{err}");
    assert!(out.contains("Pending"), "{out}");

    let mut child = Command::new(BIN)
        .args(["serve", "-c", cfg_s])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (st, v) = wait_for(
        &format!("http://127.0.0.1:{admin}/health/ready"),
        503,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(st, 503, "pending migrations keep the server unready: {v}");
    assert!(v["errors"]["migrations"].is_string());
    let (st, _) = wait_for(
        &format!("http://127.0.0.1:{public}/self-service/login/api"),
        503,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(st, 503);

    let (ok, out, err) = run(&["migrate", "sql", "-e", "--yes", "-c", cfg_s], &[]);
    assert!(ok, "{out}{err}");
    let (st, _) = wait_for(
        &format!("http://127.0.0.1:{public}/health/ready"),
        200,
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(st, 200);

    // Admin-API client commands.
    let endpoint = format!("http://127.0.0.1:{admin}");
    let file = dir.path().join("ids.json");
    std::fs::write(
        &file,
        json!([{"schema_id": "default", "traits": {"email": "cli@example.org"}}]).to_string(),
    )
    .unwrap();
    let (ok, out, err) = run(
        &[
            "import",
            "identities",
            file.to_str().unwrap(),
            "-e",
            &endpoint,
            "--format",
            "json",
        ],
        &[],
    );
    assert!(ok, "{err}");
    let created: Value = serde_json::from_str(out.trim()).unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let (ok, out, _) = run(
        &["list", "identities", "--format", "json"],
        &[("KRATOS_ADMIN_URL", &endpoint)],
    );
    assert!(ok && out.contains(&id));
    let (ok, out, _) = run(&["get", "identity", &id, "-e", &endpoint], &[]);
    assert!(ok && out.contains("cli@example.org"));
    let (ok, _, _) = run(&["delete", "identity", &id, "-e", &endpoint], &[]);
    assert!(ok);
    let (ok, _, err) = run(&["get", "identity", &id, "-e", &endpoint], &[]);
    assert!(!ok && err.contains("404"), "{err}");

    // Three whoamis of one session: the first built by the router, the next two answered from the
    // cache before it. All three are counted under the whoami route.
    let (st, v) = send(api().post(format!("{endpoint}/admin/identities")).json(&json!({
        "schema_id": "default",
        "traits": {"email": "whoami@example.org"},
        "credentials": {"password": {"config": {"password": "correct horse battery"}}}
    })))
    .await;
    assert_eq!(st, 201, "{v}");
    let public_url = format!("http://127.0.0.1:{public}");
    let (_, flow) = send(api().get(format!("{public_url}/self-service/login/api"))).await;
    let (st, login) = send(
        api()
            .post(format!(
                "{public_url}/self-service/login?flow={}",
                flow["id"].as_str().unwrap()
            ))
            .json(&json!({"method": "password", "identifier": "whoami@example.org", "password": "correct horse battery"})),
    )
    .await;
    assert_eq!(st, 200, "{login}");
    let token = login["session_token"].as_str().unwrap();
    for _ in 0..3 {
        let (st, v) = send(
            api()
                .get(format!("{public_url}/sessions/whoami"))
                .header("X-Session-Token", token),
        )
        .await;
        assert_eq!(st, 200, "{v}");
    }

    let res = api()
        .get(format!("http://127.0.0.1:{admin}/admin/metrics/prometheus"))
        .send()
        .await
        .unwrap();
    let text = res.text().await.unwrap();
    // Requests per route and status are the histogram's `_count`; the labels may come in any order.
    // `import identities` sent one batch (PATCH, 200).
    let counted = text.lines().any(|l| {
        l.starts_with("http_request_duration_seconds_count{")
            && l.contains("route=\"/admin/identities\"")
            && l.contains("status=\"200\"")
    });
    assert!(counted, "{text}");
    let whoamis = text.lines().any(|l| {
        l.starts_with("http_request_duration_seconds_count{")
            && l.contains("route=\"/sessions/whoami\"")
            && l.contains("method=\"GET\"")
            && l.contains("status=\"200\"")
            && l.ends_with(" 3")
    });
    assert!(whoamis, "{text}");

    assert!(terminate(&mut child), "SIGTERM ends the server cleanly");
    let mut logs = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut logs).unwrap();
    assert!(
        logs.contains("oauth2_provider.url"),
        "unimplemented keys are logged once: {logs}"
    );
    assert!(
        !logs.contains("a-very-secret-cookie-secret"),
        "secrets never reach the logs"
    );
});

#[tokio::test]
async fn invalid_config_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("kratos.yml");
    std::fs::write(&p, "dsn: memory\nselfservice:\n  default_browser_return_url: http://x/\n  flows:\n    settings:\n      required_aal: aal3\n").unwrap();
    let (ok, _, err) = run(&["serve", "-c", p.to_str().unwrap()], &[]);
    assert!(!ok);
    assert!(
        err.contains("selfservice.flows.settings.required_aal") && err.contains("aal3"),
        "{err}"
    );
}

#[tokio::test]
async fn dev_mode_starts_without_config() {
    let dir = tempfile::tempdir().unwrap();
    let (public, admin) = (free_port(), free_port());
    let mut child = Command::new(BIN)
        .args(["serve", "--dev", "--watch-courier"])
        .current_dir(dir.path())
        .env("SERVE_PUBLIC_PORT", public.to_string())
        .env("SERVE_ADMIN_PORT", admin.to_string())
        .env("SERVE_PUBLIC_HOST", "127.0.0.1")
        .env("SERVE_ADMIN_HOST", "127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (st, _) = wait_for(
        &format!("http://127.0.0.1:{public}/health/ready"),
        200,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(st, 200);
    let (st, flow) =
        send(api().get(format!("http://127.0.0.1:{public}/self-service/registration/api"))).await;
    assert_eq!(st, 200);
    assert!(
        flow["ui"]["action"]
            .as_str()
            .unwrap()
            .starts_with(&format!("http://127.0.0.1:{public}/"))
    );
    assert!(dir.path().join("sallyport.sqlite").exists());
    assert!(terminate(&mut child));
}

/// A server that must not outlive a failing test.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Issue 8, "make it visible": the log says who delivers mail, prints `--dev` messages when nothing
/// can deliver them, and explains every refusal at debug level.
#[tokio::test]
async fn dev_log_explains_refusals_and_prints_codes() {
    let dir = tempfile::tempdir().unwrap();
    let (public, admin) = (free_port(), free_port());
    let log = dir.path().join("server.log");
    let mut child = KillOnDrop(
        Command::new(BIN)
            .args(["serve", "--dev"])
            .current_dir(dir.path())
            .env("SERVE_PUBLIC_PORT", public.to_string())
            .env("SERVE_ADMIN_PORT", admin.to_string())
            .env("SERVE_PUBLIC_HOST", "127.0.0.1")
            .env("SERVE_ADMIN_HOST", "127.0.0.1")
            .env("LOG_LEVEL", "debug")
            .env("LOG_FORMAT", "text")
            .env("SELFSERVICE_METHODS_CODE_PASSWORDLESS_ENABLED", "true")
            .env(
                "SELFSERVICE_METHODS_PASSWORD_CONFIG_HAVEIBEENPWNED_ENABLED",
                "false",
            )
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{public}");
    let (st, _) = wait_for(&format!("{base}/health/ready"), 200, Duration::from_secs(20)).await;
    assert_eq!(st, 200);
    let read = || std::fs::read_to_string(&log).unwrap();
    assert!(
        read().contains("does not deliver courier messages") && read().contains("sallyport courier watch"),
        "{}",
        read()
    );

    // A refusal: the debug log names the error id and the reason, not only the status. Here a
    // browser flow fetched without its CSRF cookie, as a misconfigured front end would.
    let (_, flow) = send(
        api()
            .get(format!("{base}/self-service/login/browser"))
            .header("Accept", "application/json"),
    )
    .await;
    let id = flow["id"].as_str().unwrap();
    let (st, _) = send(api().get(format!("{base}/self-service/login/flows?id={id}"))).await;
    assert_eq!(st, 403);

    // A passwordless code login with nothing but the log to read the code from.
    let c = api();
    let (_, flow) = send(c.get(format!("{base}/self-service/registration/api"))).await;
    let (st, reg) = send(c.post(flow["ui"]["action"].as_str().unwrap()).json(
        &json!({"method": "password", "traits": {"email": "dev@example.org"}, "password": "a-strong-passw0rd!"}),
    ))
    .await;
    assert_eq!(st, 200, "{reg}");
    let (_, flow) = send(c.get(format!("{base}/self-service/login/api"))).await;
    let action = flow["ui"]["action"].as_str().unwrap().to_owned();
    let (st, _) = send(
        c.post(&action)
            .json(&json!({"method": "code", "identifier": "dev@example.org"})),
    )
    .await;
    assert_eq!(st, 400, "code sent");
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        let text = read();
        if let Some(line) = text
            .lines()
            .find(|l| l.contains("outgoing message") && l.contains("login_code_valid"))
        {
            assert!(line.contains("dev@example.org"), "{line}");
            let at = line.find("login_code=").expect("the code is printed") + "login_code=".len();
            break line[at..at + 6].to_owned();
        }
        assert!(Instant::now() < deadline, "no printed message: {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (st, done) = send(
        c.post(&action)
            .json(&json!({"method": "code", "identifier": "dev@example.org", "code": code})),
    )
    .await;
    assert_eq!(st, 200, "{done}");
    assert!(terminate(&mut child.0));
    let logs = read();
    let refusal = logs
        .lines()
        .find(|l| l.contains("request refused") && l.contains("/self-service/login/flows"))
        .unwrap_or_else(|| panic!("{logs}"));
    assert!(
        refusal.contains("status=403")
            && refusal.contains("security_csrf_violation")
            && refusal.contains("Cross-Site-Request-Forgery"),
        "{refusal}"
    );
}

/// `sallyport.rate_limits`: the numbers in effect are in the startup log at debug level.
#[tokio::test]
async fn rate_limits_in_effect_are_logged_at_debug_level() {
    let dir = tempfile::tempdir().unwrap();
    let dsn = format!("sqlite://{}?mode=rwc", dir.path().join("db.sqlite").display());
    let (public, admin) = (free_port(), free_port());
    let cfg = write_config(dir.path(), &dsn, public, admin);
    let yaml = std::fs::read_to_string(&cfg).unwrap().replace(
        "log: { level: info, format: json }",
        "log: { level: debug, format: json }",
    ) + "sallyport:\n  rate_limits:\n    codes_sent_per_address: { limit: 3, window: 30m }\n    \
           second_factor_guesses_per_identity: { enabled: false }\n    \
           per_ip: { enabled: true, trusted_proxies: [ 10.0.0.0/8 ] }\n";
    std::fs::write(&cfg, yaml).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--dev", "-c", cfg.to_str().unwrap()])
        .env_remove("SALLYPORT_LOG")
        .stdout(Stdio::null())
        // A file, not a pipe: nobody reads a pipe until the end, and a full one (debug logs of the
        // migrations) would block the server and its shutdown.
        .stderr(std::fs::File::create(dir.path().join("server.log")).unwrap())
        .spawn()
        .unwrap();
    let (st, _) = wait_for(
        &format!("http://127.0.0.1:{admin}/health/alive"),
        200,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(st, 200);
    assert!(terminate(&mut child));
    let logs = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    let line = logs
        .lines()
        .find(|l| l.contains("rate limits in effect"))
        .unwrap_or_else(|| panic!("no rate-limit line: {logs}"));
    let v: Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["level"], "DEBUG", "{line}");
    let f = &v["fields"];
    assert_eq!(f["codes_sent_per_address"], "3 per 30m0s", "{line}");
    assert_eq!(f["code_guesses_per_identity"], "10 per 1h0m0s");
    assert_eq!(
        f["password_failures_per_identifier"],
        "10 per 1h0m0s, then back-off 1s doubling to 5m0s"
    );
    assert_eq!(f["second_factor_guesses_per_identity"], "off");
    assert_eq!(f["per_ip_flow_creations"], "60 per 1m0s");
    assert_eq!(f["trusted_proxies"], "10.0.0.0/8");
}

// Remote identity schemas go through the outgoing-request policy: with
// `clients.http.disallow_private_ip_ranges` a schema on a private address stops start-up with the reason,
// unless its URL is in `private_ip_exception_urls`.
#[tokio::test]
async fn remote_schemas_follow_the_private_ip_policy() {
    let schema = std::fs::read(fixture("email-password.schema.json")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/schema.json", listener.local_addr().unwrap());
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let Ok((mut c, _)) = listener.accept().await else {
                return;
            };
            let schema = schema.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = c.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    schema.len()
                );
                let _ = c.write_all(head.as_bytes()).await;
                let _ = c.write_all(&schema).await;
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let (public, admin) = (free_port(), free_port());
    let config = |exceptions: Vec<&str>| {
        let p = dir.path().join("kratos.json");
        let cfg = json!({
            "dsn": "memory",
            "serve": {"public": {"host": "127.0.0.1", "port": public}, "admin": {"host": "127.0.0.1", "port": admin}},
            "identity": {"default_schema_id": "default", "schemas": [{"id": "default", "url": url}]},
            "selfservice": {"default_browser_return_url": "http://app.test/"},
            "clients": {"http": {"disallow_private_ip_ranges": true, "private_ip_exception_urls": exceptions}},
        });
        std::fs::write(&p, cfg.to_string()).unwrap();
        p
    };
    let refused = config(vec![]);
    let (ok, _, err) =
        tokio::task::spawn_blocking(move || run(&["serve", "-c", refused.to_str().unwrap()], &[]))
            .await
            .unwrap();
    assert!(!ok);
    assert!(
        err.contains("loading identity schemas") && err.contains("private IP ranges are disallowed"),
        "{err}"
    );
    let allowed = config(vec![url.as_str()]);
    let child = Command::new(BIN)
        .args(["serve", "-c", allowed.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let (st, _) = wait_for(
        &format!("http://127.0.0.1:{public}/health/alive"),
        200,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(st, 200, "the exception lets the schema load");
    assert!(terminate(&mut child.0));
}

/// Courier templates, HTTP deliveries and the breached-password check obey the same policy as remote
/// schemas: a private address stops start-up with the key to fix.
#[tokio::test]
async fn courier_and_breach_check_follow_the_private_ip_policy() {
    let dir = tempfile::tempdir().unwrap();
    let schema = format!("file://{}", fixture("email-password.schema.json").display());
    let cases = [
        (
            json!({"courier": {"templates": {"recovery_code": {"valid": {"email": {"subject": "http://127.0.0.1:9/subject.gotmpl"}}}}}}),
            vec!["serve"],
            "loading courier templates",
        ),
        (
            json!({"selfservice": {"methods": {"password": {"config": {"haveibeenpwned_enabled": true, "haveibeenpwned_host": "http://10.1.2.3"}}}}}),
            vec!["serve"],
            "haveibeenpwned_host",
        ),
        (
            json!({"courier": {"delivery_strategy": "http", "http": {"request_config": {"url": "http://192.168.7.7/send"}}}}),
            vec!["serve", "--watch-courier"],
            "courier.http.request_config: url",
        ),
    ];
    for (extra, args, key) in cases {
        let (public, admin) = (free_port(), free_port());
        let mut cfg = json!({
            "dsn": "memory",
            "serve": {"public": {"host": "127.0.0.1", "port": public}, "admin": {"host": "127.0.0.1", "port": admin}},
            "identity": {"default_schema_id": "default", "schemas": [{"id": "default", "url": schema}]},
            "selfservice": {"default_browser_return_url": "http://app.test/"},
            "clients": {"http": {"disallow_private_ip_ranges": true}},
        });
        merge(&mut cfg, extra);
        let p = dir.path().join("kratos.json");
        std::fs::write(&p, cfg.to_string()).unwrap();
        // A server that starts despite the policy would never exit: give it 20 s.
        let mut child = KillOnDrop(
            Command::new(BIN)
                .args(&args)
                .args(["-c", p.to_str().unwrap()])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.0.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "{key}: started although the policy forbids it"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let mut err = String::new();
        std::io::Read::read_to_string(child.0.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert!(!status.success(), "{key}: start-up must fail");
        assert!(
            err.contains(key) && err.contains("private IP ranges are disallowed"),
            "{key}: {err}"
        );
    }
}

fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
    match (into, from) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

async fn run_cli(args: Vec<String>) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args, &[])
    })
    .await
    .unwrap()
}

// `import identities` goes through the batch endpoint: thousands in a few requests, each refused
// identity named by file and position with the server's reason, the others kept, exit status 1.
both_backends!(import_identities_in_batches, |b: Backend| async move {
    let s = crate::support::TestServer::spawn(b).await;
    let dir = tempfile::tempdir().unwrap();
    let hash = "$2b$04$atf9KHoKrTIsJZ1PpbLWu.LRY6qGB0CW6nfqgFWHTD5PfIG4hOaPq";
    let small = dir.path().join("small.json");
    std::fs::write(
        &small,
        json!([
            {"schema_id": "default", "traits": {"email": "one@example.org"},
             "credentials": {"password": {"config": {"hashed_password": hash}}}},
            {"schema_id": "default", "traits": {"email": "not an email"}},
            {"schema_id": "default", "traits": {"email": "two@example.org"}},
        ])
        .to_string(),
    )
    .unwrap();
    let endpoint = s.admin_url("").trim_end_matches('/').to_owned();
    let args = |file: &std::path::Path, format: &str| {
        [
            "import",
            "identities",
            file.to_str().unwrap(),
            "-e",
            &endpoint,
            "--format",
            format,
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let (ok, out, err) = run_cli(args(&small, "json")).await;
    assert!(!ok, "one identity was refused: {out}");
    assert!(err.contains("small.json[1]: 400"), "{err}");
    assert!(err.contains("1 of 3 identities were not imported"), "{err}");
    let printed: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let emails: Vec<&str> = printed
        .iter()
        .map(|i| i["traits"]["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        ["one@example.org", "two@example.org"],
        "created ones printed in order"
    );
    let (st, login) = crate::support::client::native_login(&s, "one@example.org", "test").await;
    assert_eq!(st, 200, "the pre-hashed password signs in: {login}");

    let big = dir.path().join("big.json");
    let many: Vec<Value> = (0..2500)
        .map(|i| {
            json!({"schema_id": "default", "traits": {"email": format!("bulk{i}@example.org")},
                        "credentials": {"password": {"config": {"hashed_password": hash}}}})
        })
        .collect();
    std::fs::write(&big, Value::Array(many).to_string()).unwrap();
    let (ok, out, err) = run_cli(args(&big, "quiet")).await;
    assert!(ok, "{err}");
    assert!(out.is_empty(), "{out}");
    let r = api()
        .get(s.admin_url("admin/identities?page=0&per_page=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers().get("x-total-count").unwrap(), "2502");
    let (st, _) = crate::support::client::native_login(&s, "bulk2499@example.org", "test").await;
    assert_eq!(st, 200);
    s.shutdown().await;
});
