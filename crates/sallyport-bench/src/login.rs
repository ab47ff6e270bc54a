//! Section 2: a native password login over HTTP against a raw bcrypt verification of the same hash.
//! Both at the configured cost (12 by default), interleaved round by round so drift hits both alike.

use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::runtime::Runtime;

use sallyport_password::{Hasher, HasherConfig};

use crate::Params;
use crate::server::{Prepared, Running, sqlite_dsn};

const EMAIL: &str = "bench-login@example.org";
const PASSWORD: &str = "correct-horse-battery-staple-42";

pub struct LoginResult {
    pub cost: u32,
    pub hash_prefix: String,
    /// Milliseconds per timed `POST /self-service/login`.
    pub login_ms: Vec<f64>,
    /// Milliseconds per `Hasher::verify`.
    pub verify_ms: Vec<f64>,
}

pub fn run(
    p: &Params,
    server_rt: &Runtime,
    client_rt: &Runtime,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
) -> anyhow::Result<LoginResult> {
    let dir = tempfile::tempdir()?;
    let dsn = sqlite_dsn(dir.path());
    let hashers = json!({"algorithm": "bcrypt", "bcrypt": {"cost": p.bcrypt_cost}});
    let server = server_rt.block_on(async { Prepared::new(&dsn, hashers).await?.start(metrics).await })?;
    eprintln!(
        "[login] bcrypt cost {}: 1 untimed + {} timed rounds of login and raw verify",
        p.bcrypt_cost, p.login_rounds
    );
    let result = client_rt.block_on(measure(p, &server));
    server_rt.block_on(server.stop())?;
    drop(dir);
    result
}

async fn measure(p: &Params, s: &Running) -> anyhow::Result<LoginResult> {
    let c = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()?;
    let res = c
        .post(s.admin_url("admin/identities"))
        .json(&json!({
            "schema_id": "default",
            "traits": {"email": EMAIL},
            "credentials": {"password": {"config": {"password": PASSWORD}}}
        }))
        .send()
        .await?;
    let (st, created) = (res.status(), res.json::<Value>().await?);
    if st != 201 {
        bail!("creating the identity answered {st}: {created}");
    }
    let id = created["id"].as_str().context("created identity has no id")?;
    let got: Value = c
        .get(s.admin_url(&format!("admin/identities/{id}?include_credential=password")))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let hash = got["credentials"]["password"]["config"]["hashed_password"]
        .as_str()
        .context("no credentials.password.config.hashed_password")?
        .to_owned();
    let want_cost = format!("${:02}$", p.bcrypt_cost);
    if !(hash.starts_with("$2") && hash.get(3..7) == Some(want_cost.as_str())) {
        bail!(
            "stored hash {:?} is not bcrypt cost {}",
            &hash[..hash.len().min(7)],
            p.bcrypt_cost
        );
    }
    let hasher = Hasher::new(HasherConfig::Bcrypt { cost: p.bcrypt_cost }, 1);

    let mut login_ms = vec![];
    let mut verify_ms = vec![];
    // Round 0 warms both paths (connections, caches) and is not counted.
    for round in 0..=p.login_rounds {
        let l = login_once(&c, s).await?;
        let t0 = Instant::now();
        let ok = hasher
            .verify(PASSWORD.as_bytes(), &hash)
            .await
            .map_err(|e| anyhow::anyhow!("verify: {e}"))?;
        let v = t0.elapsed().as_secs_f64() * 1000.0;
        if !ok {
            bail!("raw verify rejected the password");
        }
        if round > 0 {
            login_ms.push(l);
            verify_ms.push(v);
        }
    }
    Ok(LoginResult {
        cost: p.bcrypt_cost,
        hash_prefix: hash[..7].to_owned(),
        login_ms,
        verify_ms,
    })
}

/// A native login flow (not timed), then the timed submission; returns its milliseconds.
async fn login_once(c: &reqwest::Client, s: &Running) -> anyhow::Result<f64> {
    let flow: Value = c
        .get(s.public_url("self-service/login/api"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let flow_id = flow["id"].as_str().context("login flow has no id")?;
    let body = json!({"method": "password", "identifier": EMAIL, "password": PASSWORD});
    let url = s.public_url(&format!("self-service/login?flow={flow_id}"));
    let t0 = Instant::now();
    let res = c.post(url).json(&body).send().await?;
    let st = res.status();
    let bytes = res.bytes().await?;
    let ms = t0.elapsed().as_secs_f64() * 1000.0;
    if st != 200 {
        bail!("login answered {st}: {}", String::from_utf8_lossy(&bytes));
    }
    let v: Value = serde_json::from_slice(&bytes)?;
    if v["session_token"].as_str().is_none() {
        bail!("login answered 200 without a session_token");
    }
    Ok(ms)
}
