//! Copying identities as a pipeline, so reading Kratos, converting and writing Sallyport overlap:
//! a reader task pages through `identities` and starts loading each page's parts (credentials,
//! identifiers, addresses) at once, each page then converted on the blocking pool by its own task;
//! the pages are taken in order, and up to `WRITERS` batches are written at the same time, each in
//! its own transaction on its own connection, so one identity is never half-written and a crash
//! loses only unfinished batches. Converting in the loop that hands out the writes kept the writers
//! waiting: about half of that loop's time went to it.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

use sallyport_core::identity::Identity;
use sallyport_core::store::Store;

use super::convert::{self, CredentialRules, Parts};
use super::report::{Progress, TableReport};
use super::source::{KratosSource, TextRow};

/// Identities per batch: per read query and per write transaction.
pub const BATCH: usize = 1000;
/// Pages being loaded ahead of the conversion.
const READ_AHEAD: usize = 3;
/// Batches written at the same time.
const WRITERS: usize = 3;

/// Which identities (or sessions) a part query covers.
pub enum Which {
    /// Every id between the two, inclusive: a full run reads in id order, and a range scan is
    /// cheaper to plan and run than a list of a thousand ids.
    Range(String, String),
    List(Vec<String>),
}

impl Which {
    pub fn of(ids: &[String], contiguous: bool) -> Which {
        match (contiguous, ids.first(), ids.last()) {
            (true, Some(first), Some(last)) => Which::Range(first.clone(), last.clone()),
            _ => Which::List(ids.to_vec()),
        }
    }
}

/// The Kratos database and the network read from it; cheap to clone into tasks.
#[derive(Clone)]
pub struct Reader {
    pub src: Arc<dyn KratosSource>,
    pub nid: String,
}

/// `(columns, table or join, id column, nid column, order)` of one part query.
pub type PartSpec<'a> = (&'a [&'a str], &'a str, &'a str, &'a str, &'a str);

pub fn select(src: &dyn KratosSource, columns: &[&str]) -> String {
    columns.iter().map(|c| src.text(c)).collect::<Vec<_>>().join(", ")
}

impl Reader {
    /// The rows of one part of a batch.
    pub async fn part_rows(
        &self,
        (columns, from, id_column, nid_column, order): PartSpec<'_>,
        which: &Which,
    ) -> anyhow::Result<Vec<TextRow>> {
        let src = &*self.src;
        let mut args = vec![self.nid.clone()];
        let condition = match which {
            Which::Range(first, last) => {
                args.push(first.clone());
                args.push(last.clone());
                format!(
                    "{} AND {}",
                    src.uuid_cmp(id_column, ">=", 2),
                    src.uuid_cmp(id_column, "<=", 3)
                )
            }
            Which::List(ids) => {
                args.extend(ids.iter().cloned());
                format!("{id_column} IN {}", src.uuid_list(2, ids.len()))
            }
        };
        let sql = format!(
            "SELECT {} FROM {from} WHERE {} AND {condition} ORDER BY {order}",
            select(src, columns),
            src.uuid_eq(nid_column, 1),
        );
        src.rows(&sql, &args).await
    }

    /// The next page of identity rows after `after`, in id order.
    async fn identity_page(&self, after: &str) -> anyhow::Result<Vec<TextRow>> {
        let src = &*self.src;
        let sql = format!(
            // Ordered by the table's column, not the selected text of the same name: that is what the
            // (nid, id) index serves; the text would be sorted in full for every page.
            "SELECT {} FROM identities WHERE {} AND {} ORDER BY identities.id LIMIT {BATCH}",
            select(src, convert::IDENTITY_COLUMNS),
            src.uuid_eq("nid", 1),
            src.uuid_cmp("id", ">", 2)
        );
        src.rows(&sql, &[self.nid.clone(), after.to_owned()]).await
    }

    /// A page of identity rows and everything that belongs to them.
    async fn load(&self, rows: Option<Vec<TextRow>>, which: Which) -> anyhow::Result<RawBatch> {
        use convert::{CREDENTIAL_COLUMNS, IDENTITY_COLUMNS, RECOVERY_COLUMNS, VERIFIABLE_COLUMNS};
        let identities = async {
            match rows {
                Some(rows) => Ok(rows),
                None => {
                    self.part_rows((IDENTITY_COLUMNS, "identities", "id", "nid", "id"), &which)
                        .await
                }
            }
        };
        let credentials = self.part_rows(
            (
                CREDENTIAL_COLUMNS,
                "identity_credentials c JOIN identity_credential_types t ON t.id = c.identity_credential_type_id",
                "c.identity_id",
                "c.nid",
                "c.created_at, c.id",
            ),
            &which,
        );
        let identifiers = self.part_rows(
            (
                &["i.identity_credential_id", "i.identifier"],
                // Its own identity_id (indexed, NOT NULL since the versions the importer reads):
                // joined through the credentials, PostgreSQL hashes the whole table for every batch.
                "identity_credential_identifiers i",
                "i.identity_id",
                "i.nid",
                "i.created_at, i.id",
            ),
            &which,
        );
        let verifiable = self.part_rows(
            (
                VERIFIABLE_COLUMNS,
                "identity_verifiable_addresses",
                "identity_id",
                "nid",
                "created_at, id",
            ),
            &which,
        );
        let recovery = self.part_rows(
            (
                RECOVERY_COLUMNS,
                "identity_recovery_addresses",
                "identity_id",
                "nid",
                "created_at, id",
            ),
            &which,
        );
        let (rows, credentials, identifiers, verifiable, recovery) =
            tokio::try_join!(identities, credentials, identifiers, verifiable, recovery)?;
        Ok(RawBatch {
            rows,
            credentials,
            identifiers,
            verifiable,
            recovery,
        })
    }
}

/// One batch as read, before conversion.
struct RawBatch {
    rows: Vec<TextRow>,
    credentials: Vec<TextRow>,
    identifiers: Vec<TextRow>,
    verifiable: Vec<TextRow>,
    recovery: Vec<TextRow>,
}

/// What converting identities needs besides the rows.
pub struct Rules {
    pub schemas: HashSet<String>,
    pub lookup_key: String,
    pub seal_secret: String,
}

fn key(r: &TextRow, i: usize) -> String {
    r.get(i).cloned().flatten().unwrap_or_default().to_lowercase()
}

/// A batch converted: the identities that can be taken, how many rows were read, and the rows
/// refused with the reason.
struct Converted {
    identities: Vec<Identity>,
    read: u64,
    rejected: Vec<(String, String)>,
}

fn convert(raw: RawBatch, rules: &Rules) -> Converted {
    let mut parts: HashMap<String, Parts> = HashMap::new();
    for mut c in raw.credentials {
        // Credential ids are looked up as the source wrote them; normalise to lower case.
        if let Some(Some(id)) = c.get_mut(0) {
            *id = id.to_lowercase();
        }
        parts.entry(key(&c, 1)).or_default().credentials.push(c);
    }
    let owner: HashMap<String, String> = parts
        .iter()
        .flat_map(|(identity, p)| p.credentials.iter().map(move |c| (key(c, 0), identity.clone())))
        .collect();
    for i in raw.identifiers {
        let cred = key(&i, 0);
        if let (Some(identity), Some(value)) = (owner.get(&cred), i.get(1).cloned().flatten()) {
            let p: &mut Parts = parts.entry(identity.clone()).or_default();
            let list: &mut BTreeMap<String, Vec<String>> = &mut p.identifiers;
            list.entry(cred).or_default().push(value);
        }
    }
    for a in raw.verifiable {
        parts.entry(key(&a, 1)).or_default().verifiable.push(a);
    }
    for a in raw.recovery {
        parts.entry(key(&a, 1)).or_default().recovery.push(a);
    }
    let credential_rules = CredentialRules {
        lookup_key: &rules.lookup_key,
        seal_secret: &rules.seal_secret,
    };
    let empty = Parts::default();
    let mut out = Converted {
        identities: Vec::with_capacity(raw.rows.len()),
        read: raw.rows.len() as u64,
        rejected: vec![],
    };
    for row in raw.rows {
        let id = key(&row, 0);
        match convert::identity(
            &row,
            parts.get(&id).unwrap_or(&empty),
            &rules.schemas,
            &credential_rules,
        ) {
            Ok(i) => out.identities.push(i),
            Err(why) => out.rejected.push((id, why)),
        }
    }
    out
}

type Written = (u64, Vec<(String, String)>);

/// Writes a batch in one transaction; if the store refuses it, finds the offending identities one by
/// one so the rest still goes in. Answers how many went in and which were refused, why.
async fn write(target: Option<Arc<dyn Store>>, batch: Vec<Identity>) -> Written {
    let Some(t) = target else {
        return (batch.len() as u64, vec![]);
    };
    if t.upsert_identities(&batch).await.is_ok() {
        return (batch.len() as u64, vec![]);
    }
    let mut written = (0, vec![]);
    for identity in &batch {
        match t.upsert_identities(std::slice::from_ref(identity)).await {
            Ok(()) => written.0 += 1,
            Err(e) => written.1.push((
                identity.id.to_string(),
                format!("refused by Sallyport's database: {e}"),
            )),
        }
    }
    written
}

async fn settle(task: JoinHandle<Written>, report: &mut TableReport) -> anyhow::Result<()> {
    let (imported, rejected) = task.await.context("writing identities")?;
    report.imported += imported;
    report.rejected.extend(rejected);
    Ok(())
}

type Loading = JoinHandle<anyhow::Result<Converted>>;

/// Starts loading and converting every batch, in order, into `out`: pages of the full table, or the
/// `changed` ids.
async fn feed(
    reader: Reader,
    rules: Arc<Rules>,
    changed: Option<Vec<String>>,
    out: mpsc::Sender<Loading>,
) -> anyhow::Result<()> {
    let start = |rows: Option<Vec<TextRow>>, which: Which| {
        let (r, rules) = (reader.clone(), rules.clone());
        tokio::spawn(async move {
            let raw = r.load(rows, which).await?;
            tokio::task::spawn_blocking(move || convert(raw, &rules))
                .await
                .context("converting identities")
        })
    };
    match changed {
        Some(ids) => {
            for chunk in ids.chunks(BATCH) {
                if out.send(start(None, Which::of(chunk, false))).await.is_err() {
                    break;
                }
            }
        }
        None => {
            let mut after = Uuid::nil().to_string();
            loop {
                let rows = reader.identity_page(&after).await?;
                let (Some(first), Some(last)) = (
                    rows.first().and_then(|r| r.first().cloned().flatten()),
                    rows.last().and_then(|r| r.first().cloned().flatten()),
                ) else {
                    break;
                };
                after = last.clone();
                if out
                    .send(start(Some(rows), Which::Range(first, last)))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Copies the identities (all, or the `changed` ids); `heartbeat` runs before each batch is
/// handed to a writer. Answers the report.
pub async fn copy<F, Fut>(
    reader: Reader,
    rules: Arc<Rules>,
    target: Option<Arc<dyn Store>>,
    changed: Option<Vec<String>>,
    total: u64,
    heartbeat: F,
) -> anyhow::Result<TableReport>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut report = TableReport::default();
    let mut progress = Progress::new("identities", total);
    let (tx, mut rx) = mpsc::channel::<Loading>(READ_AHEAD);
    let feeder = tokio::spawn(feed(reader, rules, changed, tx));
    let mut writing: VecDeque<JoinHandle<Written>> = VecDeque::new();
    let result = async {
        while let Some(loading) = rx.recv().await {
            let converted = loading.await.context("reading identities")??;
            report.read += converted.read;
            report.rejected.extend(converted.rejected);
            heartbeat().await?;
            if writing.len() >= WRITERS
                && let Some(oldest) = writing.pop_front()
            {
                settle(oldest, &mut report).await?;
            }
            writing.push_back(tokio::spawn(write(target.clone(), converted.identities)));
            progress.advance(converted.read);
        }
        Ok::<(), anyhow::Error>(())
    }
    .await;
    // Whatever happened, the batches already handed to writers finish (or fail) before the
    // caller releases the lock.
    drop(rx);
    for w in writing {
        settle(w, &mut report).await?;
    }
    result?;
    feeder.await.context("reading identities")??;
    progress.finish();
    Ok(report)
}
