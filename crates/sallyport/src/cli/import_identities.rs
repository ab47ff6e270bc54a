//! `sallyport import identities`: the identities of JSON files (one identity or an array each) sent
//! through the admin batch endpoint (`PATCH /admin/identities`, Kratos' `batchPatchIdentities`), a
//! thousand per request and a few requests in flight, instead of one `POST` per identity. Created
//! identities are printed as Kratos' CLI prints them; each refused one is named on stderr with the
//! server's reason, the others are kept, and the command fails at the end if any was refused.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::task::JoinSet;
use uuid::Uuid;

use super::{ClientArgs, print};

/// Kratos' limits per batch request: 1,000 identities, 200 of them with a plaintext password.
const BATCH: usize = 1000;
const PLAINTEXT_PER_BATCH: usize = 200;
/// Batch requests in flight at once: enough to keep the server's parsing and its database busy together.
const IN_FLIGHT: usize = 4;
/// `GET /admin/identities?ids=` takes at most 500 ids.
const FETCH_CHUNK: usize = 500;

/// One identity of the input and where it came from, for error messages. The identity stays the
/// text it was in the file, borrowed: the server parses it, and a tree of every identity of a
/// large file (then written out again for the batch bodies) was most of this command's own time.
struct Item<'a> {
    source: &'a str,
    index: usize,
    body: &'a RawValue,
}

/// Each input (`-` or no file: stdin) as its name and its text.
fn read_docs(files: &[PathBuf]) -> anyhow::Result<Vec<(String, String)>> {
    let mut docs = vec![];
    if files.is_empty() || files.iter().any(|f| f.as_os_str() == "-") {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        docs.push(("stdin".to_owned(), s));
    }
    for f in files.iter().filter(|f| f.as_os_str() != "-") {
        docs.push((
            f.display().to_string(),
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?,
        ));
    }
    Ok(docs)
}

/// The identities of `docs`: each document one identity or an array of them.
fn parse_items(docs: &[(String, String)]) -> anyhow::Result<Vec<Item<'_>>> {
    let mut items = vec![];
    for (name, text) in docs {
        let invalid = || format!("{name} is not valid JSON");
        let list = match text.trim_start().starts_with('[') {
            true => serde_json::from_str::<Vec<&RawValue>>(text).with_context(invalid)?,
            false => vec![serde_json::from_str::<&RawValue>(text).with_context(invalid)?],
        };
        items.extend(list.into_iter().enumerate().map(|(index, body)| Item {
            source: name,
            index,
            body,
        }));
    }
    Ok(items)
}

/// The one member of an identity [`has_plaintext_password`] looks at; the others are skipped
/// without being built.
#[derive(Deserialize)]
struct PasswordProbe<'a> {
    #[serde(borrow)]
    credentials: Option<ProbeCredentials<'a>>,
}

#[derive(Deserialize)]
struct ProbeCredentials<'a> {
    #[serde(borrow)]
    password: Option<ProbePassword<'a>>,
}

#[derive(Deserialize)]
struct ProbePassword<'a> {
    #[serde(borrow)]
    config: Option<ProbeConfig<'a>>,
}

#[derive(Deserialize)]
struct ProbeConfig<'a> {
    #[serde(borrow)]
    password: Option<Cow<'a, str>>,
}

/// Whether `body` sets `credentials.password.config.password` to a non-empty string. Anything
/// else at that path, or a body of another shape, is no plaintext password (the server judges it).
fn has_plaintext_password(body: &RawValue) -> bool {
    let text = body.get();
    // Both keys on the way, the credential type and the config member, are spelled `"password"`
    // unless an escape spells them: without two of those and without a backslash, there is none.
    if !text.contains('\\') && text.matches("\"password\"").nth(1).is_none() {
        return false;
    }
    serde_json::from_str::<PasswordProbe<'_>>(body.get()).is_ok_and(|p| {
        p.credentials
            .and_then(|c| c.password)
            .and_then(|p| p.config)
            .and_then(|c| c.password)
            .is_some_and(|p| !p.is_empty())
    })
}

/// Consecutive ranges of `items`, each within Kratos' batch limits.
fn batches(items: &[Item<'_>]) -> Vec<std::ops::Range<usize>> {
    let mut out = vec![];
    let (mut start, mut plaintext) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let p = usize::from(has_plaintext_password(item.body));
        if i - start == BATCH || plaintext + p > PLAINTEXT_PER_BATCH {
            out.push(start..i);
            (start, plaintext) = (i, 0);
        }
        plaintext += p;
    }
    if start < items.len() {
        out.push(start..items.len());
    }
    out
}

fn batch_body(items: &[Item<'_>]) -> Vec<u8> {
    let mut body = Vec::with_capacity(items.len() * 512);
    body.extend_from_slice(b"{\"identities\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(b"{\"create\":");
        body.extend_from_slice(item.body.get().as_bytes());
        body.push(b'}');
    }
    body.extend_from_slice(b"]}");
    body
}

fn reason(v: &Value) -> String {
    let e = if v["error"].is_object() { &v["error"] } else { v };
    let text = e["reason"]
        .as_str()
        .filter(|r| !r.is_empty())
        .or(e["message"].as_str())
        .unwrap_or("");
    match e["code"].as_u64() {
        Some(code) => format!("{code} {text}"),
        None => text.to_owned(),
    }
}

/// The per-identity answers of one batch, or why the whole batch was refused.
async fn send_batch(http: reqwest::Client, url: String, body: Vec<u8>) -> Result<Vec<Value>, String> {
    let res = http
        .patch(&url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("calling {url}: {e}"))?;
    let status = res.status();
    let text = res
        .text()
        .await
        .map_err(|e| format!("reading the answer of {url}: {e}"))?;
    let mut v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if !status.is_success() {
        return Err(format!("{url} answered {status}: {}", reason(&v)));
    }
    match v.get_mut("identities").map(Value::take) {
        Some(Value::Array(a)) => Ok(a),
        _ => Err(format!("{url} answered without an identities list")),
    }
}

/// The created identities, in the order they were created, as `GET /admin/identities` shows them.
async fn fetch_created(http: &reqwest::Client, endpoint: &str, ids: &[Uuid]) -> anyhow::Result<Vec<Value>> {
    let url = format!("{endpoint}/admin/identities");
    let mut by_id: HashMap<String, Value> = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(FETCH_CHUNK) {
        let ids: Vec<String> = chunk.iter().map(Uuid::to_string).collect();
        let size = chunk.len().to_string();
        let res = http
            .get(&url)
            .query(&[("ids", ids.join(",").as_str()), ("page_size", size.as_str())])
            .send()
            .await
            .with_context(|| format!("calling {url}"))?;
        let status = res.status();
        let v: Value = res.json().await.with_context(|| format!("reading {url}"))?;
        if !status.is_success() {
            bail!("{url} answered {status}: {}", reason(&v));
        }
        for i in v.as_array().into_iter().flatten() {
            if let Some(id) = i["id"].as_str() {
                by_id.insert(id.to_owned(), i.clone());
            }
        }
    }
    Ok(ids
        .iter()
        .filter_map(|id| by_id.remove(&id.to_string()))
        .collect())
}

pub async fn run(files: Vec<PathBuf>, client: ClientArgs) -> anyhow::Result<()> {
    let Some(endpoint) = client
        .endpoint
        .as_deref()
        .map(|e| e.trim_end_matches('/').to_owned())
    else {
        bail!("no admin endpoint: pass -e/--endpoint or set KRATOS_ADMIN_URL (e.g. http://127.0.0.1:4434)")
    };
    let docs = read_docs(&files)?;
    let items = parse_items(&docs)?;
    let ranges = batches(&items);
    let http = reqwest::Client::new();
    let url = format!("{endpoint}/admin/identities");
    let mut answers: Vec<Option<Result<Vec<Value>, String>>> = (0..ranges.len()).map(|_| None).collect();
    let mut inflight = JoinSet::new();
    for (n, range) in ranges.iter().enumerate() {
        if inflight.len() >= IN_FLIGHT
            && let Some(done) = inflight.join_next().await
        {
            let (k, answer) = done.context("a batch request panicked")?;
            answers[k] = Some(answer);
        }
        let body = batch_body(&items[range.clone()]);
        let (http, url) = (http.clone(), url.clone());
        inflight.spawn(async move { (n, send_batch(http, url, body).await) });
    }
    while let Some(done) = inflight.join_next().await {
        let (k, answer) = done.context("a batch request panicked")?;
        answers[k] = Some(answer);
    }

    let mut created = vec![];
    let mut failed = 0usize;
    for (range, answer) in ranges.into_iter().zip(answers) {
        let batch = &items[range];
        match answer.unwrap_or_else(|| Err("no answer".into())) {
            Ok(results) => {
                for (k, item) in batch.iter().enumerate() {
                    let r = results.get(k).unwrap_or(&Value::Null);
                    let id = r["identity"].as_str().and_then(|s| Uuid::parse_str(s).ok());
                    match (r["action"].as_str(), id) {
                        (Some("create"), Some(id)) => created.push(id),
                        _ => {
                            failed += 1;
                            eprintln!("{}[{}]: {}", item.source, item.index, reason(r));
                        }
                    }
                }
            }
            Err(why) => {
                failed += batch.len();
                for item in batch {
                    eprintln!("{}[{}]: {why}", item.source, item.index);
                }
            }
        }
    }
    if client.format != "quiet" {
        for identity in fetch_created(&http, &endpoint, &created).await? {
            print(&client, &identity);
        }
    }
    if failed > 0 {
        bail!("{failed} of {} identities were not imported", items.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn item(plaintext: bool) -> Item<'static> {
        let mut body = json!({"schema_id": "default", "traits": {}});
        if plaintext {
            body["credentials"] = json!({"password": {"config": {"password": "secret"}}});
        }
        Item {
            source: "f",
            index: 0,
            body: Box::leak(serde_json::value::to_raw_value(&body).unwrap()),
        }
    }

    #[test]
    fn plaintext_passwords_are_found_as_the_value_tree_would_find_them() {
        let cases = [
            (
                r#"{"credentials":{"password":{"config":{"password":"s"}}},"traits":{"a":[1,{}]}}"#,
                true,
            ),
            (
                r#"{"credentials":{"password":{"config":{"password":"\u0073\n"}}}}"#,
                true,
            ),
            (
                r#"{"credentials":{"password":{"config":{"password":""}}}}"#,
                false,
            ),
            (
                r#"{"credentials":{"password":{"config":{"hashed_password":"$2b$04$x"}}}}"#,
                false,
            ),
            (r#"{"credentials":{"password":{"config":{"password":7}}}}"#, false),
            (r#"{"credentials":{"password":"s"}}"#, false),
            (r#"{"credentials":null}"#, false),
            (
                r#"[{"credentials":{"password":{"config":{"password":"s"}}}}]"#,
                false,
            ),
            (r#""password""#, false),
            (
                r#"{"credentials":{"pass\u0077ord":{"config":{"password":"s"}}}}"#,
                true,
            ),
            (
                r#"{"credentials":{"password":{"config":{"p\u0061ssword":"s"}}}}"#,
                true,
            ),
            (
                r#"{"credentials":{"password":{"config":{"password":"s\""}}}}"#,
                true,
            ),
        ];
        for (text, want) in cases {
            let raw = serde_json::from_str::<Box<RawValue>>(text).unwrap();
            let v: Value = serde_json::from_str(text).unwrap();
            let tree = v["credentials"]["password"]["config"]["password"]
                .as_str()
                .is_some_and(|p| !p.is_empty());
            assert_eq!(tree, want, "{text}");
            assert_eq!(has_plaintext_password(&raw), want, "{text}");
        }
    }

    #[test]
    fn batches_respect_both_limits() {
        let items: Vec<Item> = (0..2500).map(|_| item(false)).collect();
        assert_eq!(batches(&items), vec![0..1000, 1000..2000, 2000..2500]);
        let items: Vec<Item> = (0..450).map(|i| item(i % 2 == 0)).collect();
        // The 200th plaintext password is item 398; the next one, item 400, opens a batch.
        assert_eq!(batches(&items), vec![0..400, 400..450]);
        assert!(batches(&[]).is_empty());
    }

    #[test]
    fn batch_body_wraps_each_identity_in_create() {
        let items = vec![item(false), item(true)];
        let v: Value = serde_json::from_slice(&batch_body(&items)).unwrap();
        assert_eq!(v["identities"].as_array().unwrap().len(), 2);
        let second: Value = serde_json::from_str(items[1].body.get()).unwrap();
        assert_eq!(v["identities"][1]["create"], second);
    }
}
