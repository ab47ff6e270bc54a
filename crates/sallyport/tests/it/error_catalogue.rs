//! `docs/errors.md` against the code's catalogue, both ways: every error id (`ErrorId::ALL`) and every UI
//! message id (`text::MESSAGE_IDS`) is documented, every documented id exists, and the documented status of
//! each error id is the one the code answers with. A last check keeps `MESSAGE_IDS` itself complete: a
//! message id written anywhere in the crates' sources must be in it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use sallyport_core::error::ErrorId;
use sallyport_core::text::MESSAGE_IDS;
use serde_json::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The table rows (cells, trimmed) of the `## <heading>` section of a Markdown document.
fn section_rows(doc: &str, heading: &str) -> Vec<Vec<String>> {
    let start = doc
        .lines()
        .position(|l| l.trim() == format!("## {heading}"))
        .unwrap_or_else(|| panic!("docs/errors.md has no section \"## {heading}\""));
    doc.lines()
        .skip(start + 1)
        .take_while(|l| !l.starts_with("## "))
        .filter(|l| l.trim_start().starts_with('|'))
        .map(|l| {
            let inner = l.trim().trim_start_matches('|').trim_end_matches('|');
            split_cells(inner)
        })
        .collect()
}

/// Splits on `|` that is not escaped as `\|`.
fn split_cells(row: &str) -> Vec<String> {
    let mut cells = vec![String::new()];
    let mut chars = row.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cells.last_mut().unwrap().push('|');
                chars.next();
            }
            '|' => cells.push(String::new()),
            c => cells.last_mut().unwrap().push(c),
        }
    }
    cells.into_iter().map(|c| c.trim().to_owned()).collect()
}

fn documented_error_ids(doc: &str) -> BTreeMap<String, String> {
    section_rows(doc, "Error ids")
        .into_iter()
        .filter_map(|cells| {
            let first = cells.first()?;
            let id = first.strip_prefix('`')?.strip_suffix('`')?;
            Some((id.to_owned(), cells.get(1).cloned().unwrap_or_default()))
        })
        .collect()
}

fn documented_message_ids(doc: &str) -> BTreeMap<u32, String> {
    section_rows(doc, "UI messages")
        .into_iter()
        .filter_map(|cells| {
            let id: u32 = cells.first()?.parse().ok()?;
            Some((id, cells.get(1).cloned().unwrap_or_default()))
        })
        .collect()
}

fn errors_md() -> String {
    std::fs::read_to_string(repo_root().join("docs/errors.md")).expect("docs/errors.md")
}

#[test]
fn every_error_id_is_documented_with_its_status_and_nothing_else() {
    let doc = errors_md();
    let documented = documented_error_ids(&doc);
    let in_code: BTreeSet<&str> = ErrorId::ALL.iter().map(|i| i.as_str()).collect();
    let missing: Vec<&&str> = in_code
        .iter()
        .filter(|id| !documented.contains_key(**id))
        .collect();
    assert!(
        missing.is_empty(),
        "error ids missing from docs/errors.md: {missing:?}"
    );
    let unknown: Vec<&String> = documented
        .keys()
        .filter(|id| !in_code.contains(id.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "docs/errors.md lists error ids the code does not have: {unknown:?}"
    );
    for id in ErrorId::ALL {
        let status = &documented[id.as_str()];
        assert!(
            status.starts_with(&id.status().to_string()),
            "docs/errors.md gives {} the status {status:?}, the code answers {}",
            id.as_str(),
            id.status()
        );
    }
}

#[test]
fn every_ui_message_id_is_documented_with_its_type_and_nothing_else() {
    let doc = errors_md();
    let documented = documented_message_ids(&doc);
    let in_code: BTreeSet<u32> = MESSAGE_IDS.iter().copied().collect();
    assert_eq!(in_code.len(), MESSAGE_IDS.len(), "MESSAGE_IDS has duplicates");
    let missing: Vec<&u32> = in_code.iter().filter(|id| !documented.contains_key(id)).collect();
    assert!(
        missing.is_empty(),
        "UI message ids missing from docs/errors.md: {missing:?}"
    );
    let unknown: Vec<&u32> = documented.keys().filter(|id| !in_code.contains(id)).collect();
    assert!(
        unknown.is_empty(),
        "docs/errors.md lists UI message ids the code does not have: {unknown:?}"
    );
    let kratos: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("crates/sallyport-core/data/ui-messages.json")).unwrap(),
    )
    .unwrap();
    for (id, kind) in &documented {
        let expected = kratos
            .iter()
            .find(|e| e["id"] == *id)
            .map(|e| e["type"].as_str().unwrap_or_default().to_owned())
            .unwrap_or_else(|| "error".into()); // Sallyport's own 49xxxxx are all errors
        assert_eq!(kind, &expected, "type of {id} in docs/errors.md");
    }
}

/// Seven-digit numbers in Kratos' message-id blocks (101xxxx–108xxxx, 400xxxx–407xxxx, 49xxxxx, 50xxxxx).
fn message_id_literals(src: &str) -> Vec<u32> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric()) {
            let end = (i..bytes.len())
                .find(|&j| !bytes[j].is_ascii_digit())
                .unwrap_or(bytes.len());
            let after_ok = end == bytes.len() || !(bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_');
            if end - i == 7 && after_ok {
                let n: u32 = src[i..end].parse().unwrap();
                let block = n / 10000;
                if (101..=108).contains(&block)
                    || (400..=407).contains(&block)
                    || block == 490
                    || (500..=509).contains(&block)
                {
                    out.push(n);
                }
            }
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn message_ids_in_the_sources_are_all_in_the_catalogue() {
    let mut files = Vec::new();
    for krate in std::fs::read_dir(repo_root().join("crates")).unwrap().flatten() {
        let src = krate.path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    assert!(files.len() > 50, "found only {} source files", files.len());
    let mut missing = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        // Test modules sit at the end of a file and may use made-up ids.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for id in message_id_literals(code) {
            if !MESSAGE_IDS.contains(&id) {
                missing.insert(format!("{id} ({})", f.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "message ids used in the sources but missing from sallyport_core::text::MESSAGE_IDS (and so from docs/errors.md): {missing:?}"
    );
}

#[test]
fn the_scanner_finds_ids_and_only_ids() {
    assert_eq!(
        message_id_literals("info(1010014, x) 4000035; 12345678 40000351 x4000035 2024001 4900002"),
        vec![1010014, 4000035, 4900002]
    );
}
