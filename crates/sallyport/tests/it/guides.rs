//! The guides run: every `curl` in `docs/*.md` and `README.md` is executed, in order, against a live server,
//! and the responses the text describes are checked, so a guide that drifts from the product fails.
//!
//! Conventions (also described in `docs/README.md`):
//! - A fenced block with info string `sh run` is executed by bash; all run blocks of one file share one shell, so
//!   variables (`flow=$(… | jq -r .id)`) carry over. A block that contains `curl` without `run` is an error.
//! - Right after each run block an HTML comment `<!-- expect: STATUS [jq filter] -->` gives the HTTP status of
//!   the block's **last** curl and, optionally, a jq filter that must be true on its body (`jq -e`).
//! - `<!-- guide-config: {JSON} -->` (once, anywhere) is merged over the test server's configuration, like the
//!   YAML the guide shows; `$FIXTURES` in it names `crates/sallyport/tests/fixtures`.
//! - `<!-- expect: ok -->` after a block that runs commands without curl: the commands must succeed;
//!   `<!-- expect: output TEXT -->`: they must succeed and their output (stdout and stderr) contain TEXT.
//! - `http://127.0.0.1:4433` and `http://127.0.0.1:4434` are rewritten to the test server's public and admin URLs.
//! - `<!-- guide-setup: NAME -->` marks a guide that needs more than a server (a Kratos database to import,
//!   for `kratos-import`): the test named there runs it with [`run_blocks`], this one skips it.
//!
//! Each file gets a fresh server on SQLite (the flows themselves are covered on both backends elsewhere).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Backend, TestServer, fixture};

#[derive(Debug)]
pub(crate) struct Block {
    line: usize,
    script: String,
    /// The HTTP status of the block's last curl; 0 for a block checked by its exit status and output.
    status: u16,
    filter: Option<String>,
    /// Text the output of a block without curl must contain.
    output: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct Guide {
    config: Value,
    pub(crate) setup: Option<String>,
    pub(crate) blocks: Vec<Block>,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The text of an HTML comment `<!-- {tag}: … -->` starting at `lines[i]`, and the index after it.
fn comment(lines: &[&str], i: usize, tag: &str) -> Option<(String, usize)> {
    let first = lines.get(i)?.trim().strip_prefix("<!--")?.trim_start();
    let rest = first.strip_prefix(tag)?.strip_prefix(':')?;
    let mut text = String::new();
    let mut j = i;
    let mut cur = rest.to_owned();
    loop {
        if let Some(end) = cur.find("-->") {
            text.push_str(&cur[..end]);
            return Some((text.trim().to_owned(), j + 1));
        }
        text.push_str(&cur);
        text.push('\n');
        j += 1;
        cur = (*lines.get(j)?).to_owned();
    }
}

pub(crate) fn parse(name: &str, md: &str) -> Result<Guide, Vec<String>> {
    let lines: Vec<&str> = md.lines().collect();
    let mut guide = Guide {
        config: json!({}),
        ..Guide::default()
    };
    let mut errors = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if let Some((cfg, next)) = comment(&lines, i, "guide-config") {
            match serde_json::from_str(&cfg) {
                Ok(v) => guide.config = v,
                Err(e) => errors.push(format!("{name}:{}: guide-config is not JSON: {e}", i + 1)),
            }
            i = next;
            continue;
        }
        if let Some((setup, next)) = comment(&lines, i, "guide-setup") {
            guide.setup = Some(setup);
            i = next;
            continue;
        }
        let trimmed = line.trim_start();
        let Some(info) = trimmed.strip_prefix("```") else {
            i += 1;
            continue;
        };
        let indent = line.len() - trimmed.len();
        let start = i;
        let mut body = Vec::new();
        i += 1;
        while i < lines.len() && !lines[i].trim_start().starts_with("```") {
            body.push(lines[i].get(indent..).unwrap_or(lines[i].trim_start()));
            i += 1;
        }
        i += 1; // closing fence
        let script = body.join("\n");
        let words: Vec<&str> = info.split_whitespace().collect();
        let runs = words.first() == Some(&"sh") && words.contains(&"run");
        if !runs {
            if script.contains("curl ") {
                errors.push(format!(
                    "{name}:{}: a block with curl must be marked ```sh run (and followed by <!-- expect: … -->)",
                    start + 1
                ));
            }
            continue;
        }
        while i < lines.len() && lines[i].trim().is_empty() {
            i += 1;
        }
        let Some((expect, next)) = comment(&lines, i, "expect") else {
            errors.push(format!(
                "{name}:{}: run block without <!-- expect: STATUS [jq filter] -->",
                start + 1
            ));
            continue;
        };
        i = next;
        let (status, filter) = match expect.split_once(char::is_whitespace) {
            Some((s, f)) => (s, Some(f.trim().to_owned())),
            None => (expect.as_str(), None),
        };
        let filter = filter.filter(|f| !f.is_empty());
        let parsed = match status {
            "ok" if filter.is_none() => Ok((0, None, None)),
            "output" if filter.is_some() => Ok((0, None, filter)),
            _ => status.parse().map(|s| (s, filter, None)),
        };
        match parsed {
            Ok((status, filter, output)) => guide.blocks.push(Block {
                line: start + 1,
                script,
                status,
                filter,
                output,
            }),
            Err(_) => errors.push(format!(
                "{name}:{}: expect needs a status, `ok` or `output TEXT` first, got {expect:?}",
                start + 1
            )),
        }
    }
    if errors.is_empty() { Ok(guide) } else { Err(errors) }
}

/// The whole guide as one bash script: a `curl` wrapper that keeps the last response's headers and body, then
/// each block followed by the check of its expectation. Processes a guide starts in the background end with it.
fn script(name: &str, guide: &Guide, public: &str, admin: &str, tmp: &Path) -> String {
    let public = public.trim_end_matches('/');
    let admin = admin.trim_end_matches('/');
    let mut out = format!(
        r#"set -euo pipefail
__T='{tmp}'
__where='{name}'
: > "$__T/out"
trap 'echo "guide failed in $__where (command exited non-zero: $BASH_COMMAND)" >&2; tail -c 3000 "$__T/out" >&2' ERR
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
curl() {{ : > "$__T/headers"; command curl -D "$__T/headers" "$@" | tee "$__T/body"; }}
__check() {{
  local want="$1" filter="$2" got
  got=$(grep -E '^HTTP/' "$__T/headers" | tail -n1 | awk '{{print $2}}')
  if [ "$got" != "$want" ]; then
    echo "$__where: expected HTTP $want, got ${{got:-no response}}; body: $(head -c 2000 "$__T/body")" >&2
    exit 1
  fi
  if [ -n "$filter" ] && ! jq -e -f "$filter" "$__T/body" >/dev/null; then
    echo "$__where: expected $(cat "$filter") on the body: $(head -c 2000 "$__T/body")" >&2
    exit 1
  fi
}}
"#,
        tmp = tmp.display()
    );
    for (n, b) in guide.blocks.iter().enumerate() {
        let filter_file = match &b.filter {
            Some(f) => {
                let p = tmp.join(format!("filter{n}.jq"));
                std::fs::write(&p, f).unwrap();
                p.display().to_string()
            }
            None => String::new(),
        };
        let body = b
            .script
            .replace("http://127.0.0.1:4433", public)
            .replace("http://127.0.0.1:4434", admin);
        if b.status == 0 {
            let check = match &b.output {
                Some(text) => {
                    let p = tmp.join(format!("output{n}.txt"));
                    std::fs::write(&p, text).unwrap();
                    format!(
                        "grep -qF -f '{f}' \"$__T/out\" || {{ echo \"$__where: expected the output to contain $(cat '{f}'); it was: $(tail -c 3000 \"$__T/out\")\" >&2; exit 1; }}\n",
                        f = p.display()
                    )
                }
                None => String::new(),
            };
            out.push_str(&format!(
                "__where='{name}:{line}'\n: > \"$__T/out\"\n{{\n{body}\n}} > \"$__T/out\" 2>&1\ncat \"$__T/out\"\n{check}",
                line = b.line,
            ));
            continue;
        }
        out.push_str(&format!(
            "__where='{name}:{line}'\n: > \"$__T/headers\"; : > \"$__T/body\"\n{body}\n__check {status} '{filter_file}'\n",
            line = b.line,
            status = b.status,
        ));
    }
    out
}

async fn run_guide(name: &str, guide: Guide) -> Result<usize, String> {
    let cfg_text = guide.config.to_string().replace(
        "$FIXTURES",
        fixture("").display().to_string().trim_end_matches('/'),
    );
    let cfg: Value = serde_json::from_str(&cfg_text).unwrap();
    let s = TestServer::spawn_with(Backend::Sqlite, cfg).await;
    let tmp = tempfile::tempdir().unwrap();
    let ran = run_blocks(name, &guide, (&s.public, &s.admin), tmp.path(), &[]).await;
    s.shutdown().await;
    ran
}

/// Runs a guide's blocks in `dir` with `env` added, the documented URLs pointing at `public` and `admin`.
pub(crate) async fn run_blocks(
    name: &str,
    guide: &Guide,
    (public, admin): (&str, &str),
    dir: &Path,
    env: &[(&str, String)],
) -> Result<usize, String> {
    let checks = tempfile::tempdir().unwrap();
    let path = checks.path().join("guide.sh");
    std::fs::write(&path, script(name, guide, public, admin, checks.path())).unwrap();
    let run = tokio::process::Command::new("bash")
        .arg(&path)
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(Duration::from_secs(120), run).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return Err(format!("{name}: cannot run bash: {e}")),
        Err(_) => return Err(format!("{name}: timed out")),
    };
    if out.status.success() {
        Ok(guide.blocks.len())
    } else {
        Err(format!(
            "{}\n(stdout tail: {})",
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout)
                .chars()
                .rev()
                .take(600)
                .collect::<String>()
                .chars()
                .rev()
                .collect::<String>()
        ))
    }
}

fn guide_files() -> Vec<(String, PathBuf)> {
    let root = repo_root();
    let mut files = vec![("README.md".to_owned(), root.join("README.md"))];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    for p in docs {
        let name = format!("docs/{}", p.file_name().unwrap().to_string_lossy());
        files.push((name, p));
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_curl_in_the_guides_runs_and_answers_as_documented() {
    for tool in ["bash", "curl", "jq"] {
        let found = std::process::Command::new(tool).arg("--version").output().is_ok();
        assert!(found, "the guide test needs {tool} on PATH (.ci/run installs it)");
    }
    let mut failures = Vec::new();
    let mut ran = 0;
    for (name, path) in guide_files() {
        let md = std::fs::read_to_string(&path).unwrap();
        let guide = match parse(&name, &md) {
            Ok(g) => g,
            Err(errs) => {
                failures.extend(errs);
                continue;
            }
        };
        if guide.blocks.is_empty() || guide.setup.is_some() {
            continue;
        }
        match run_guide(&name, guide).await {
            Ok(n) => ran += n,
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "guides that drifted:\n{}",
        failures.join("\n\n")
    );
    assert!(
        ran >= 5,
        "only {ran} blocks ran: the walkthroughs are no longer marked `sh run`?"
    );
}

#[test]
fn parser_reads_blocks_expectations_and_config() {
    let md = "<!-- guide-config: {\"a\": 1} -->\n```sh run\nflow=$(curl -s x | jq -r .id)\n```\n\n<!-- expect: 200 .id != null -->\n\n  ```sh run\n  curl -s y\n  ```\n  <!-- expect: 400\n  .state == \"sent_email\" -->\n```yaml\nnot: run\n```\n";
    let g = parse("t.md", md).unwrap();
    assert_eq!(g.config, json!({"a": 1}));
    assert_eq!(g.blocks.len(), 2);
    assert_eq!(g.blocks[0].status, 200);
    assert_eq!(g.blocks[0].filter.as_deref(), Some(".id != null"));
    assert_eq!(g.blocks[1].script, "curl -s y");
    assert_eq!(g.blocks[1].status, 400);
    assert_eq!(g.blocks[1].filter.as_deref(), Some(".state == \"sent_email\""));

    let g = parse(
        "t.md",
        "<!-- guide-setup: kratos-import -->\n```sh run\nsallyport migrate\n```\n<!-- expect: ok -->\n```sh run\nsallyport import\n```\n<!-- expect: output Copying network -->\n",
    )
    .unwrap();
    assert_eq!(g.setup.as_deref(), Some("kratos-import"));
    assert_eq!((g.blocks[0].status, g.blocks[0].output.as_deref()), (0, None));
    assert_eq!(
        (g.blocks[1].status, g.blocks[1].output.as_deref()),
        (0, Some("Copying network"))
    );
    assert!(parse("t.md", "```sh run\nx\n```\n<!-- expect: output -->\n").is_err());

    let errs = parse(
        "t.md",
        "```sh\ncurl -s x\n```\n```sh run\ncurl y\n```\nno expectation\n",
    )
    .unwrap_err();
    assert_eq!(errs.len(), 2, "{errs:?}");
}

/// The README is where people look first: it links every guide and the error catalogue.
#[test]
fn the_readme_links_every_guide() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let missing: Vec<String> = guide_files()
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| name.starts_with("docs/") && !readme.contains(&format!("]({name})")))
        .collect();
    assert!(missing.is_empty(), "README.md does not link {missing:?}");
}
