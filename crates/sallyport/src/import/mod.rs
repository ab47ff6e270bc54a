//! `sallyport import kratos`: copies a Kratos database (identities with every credential and
//! address, sessions, courier messages) into Sallyport's store, so users keep their passwords,
//! second factors and sessions. Reruns copy only what changed since the last complete run.

mod convert;
mod identities;
mod report;
mod source;
mod source_mysql;
mod source_postgres;
mod source_sqlite;
mod version;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use anyhow::{Context, bail};
use time::OffsetDateTime;
use uuid::Uuid;

use sallyport_core::session::Session;
use sallyport_core::store::Store;

use report::{Progress, TableReport, print_summary};
use source::KratosSource;

pub use version::{NEWEST_KNOWN_VERSION, OLDEST_KNOWN_VERSION};

use identities::{BATCH, Reader, Rules, Which, select};
/// The `import_state` row that holds the lock (its value is the holder: `host:pid:run id`).
const LOCK_KEY: &str = "lock";

/// The machine's name, to tell this machine's import runs from others'.
fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().replace(':', "_"))
        .unwrap_or_else(|_| "unknown-host".into())
}

/// Whether `holder` (`host:pid:run id`) ran on this machine and its process no longer exists.
fn held_by_dead_process_here(holder: &str, host: &str) -> bool {
    let mut parts = holder.splitn(3, ':');
    let (Some(h), Some(pid)) = (parts.next(), parts.next()) else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    h == host
        && pid != std::process::id()
        && std::path::Path::new("/proc/self").exists()
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// A lock whose heartbeat is older than this belonged to a run that died.
const LOCK_STALE: time::Duration = time::Duration::minutes(2);
/// Rows written while a run read (long transactions, clock skew) are read again by the next one.
const OVERLAP: time::Duration = time::Duration::minutes(5);

pub struct Options {
    pub from: String,
    pub config: Vec<std::path::PathBuf>,
    pub dry_run: bool,
    pub nid: Option<Uuid>,
    /// Delete from Sallyport the identities and sessions Kratos no longer has.
    pub prune: bool,
}

struct Run {
    src: Arc<dyn KratosSource>,
    reader: Reader,
    target: Option<Arc<dyn Store>>,
    nid: String,
    since: Option<String>,
    rules: Arc<Rules>,
    lock_owner: String,
    /// When the lock was last renewed.
    renewed: std::sync::Mutex<Option<std::time::Instant>>,
}

/// How often a running import renews its lock. Far below `LOCK_STALE`: a run that stalls long enough
/// to lose the lock has gone this long without renewing, so it checks again before its next write.
const RENEW_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

pub async fn run(opts: Options) -> anyhow::Result<()> {
    let cfg = crate::config_loader::load(&opts.config, false).context("loading the configuration")?;
    let settings = crate::config_loader::settings(&cfg, false)?;
    let src: Arc<dyn KratosSource> = source::open(&opts.from).await?.into();
    let found = version::check(&*src).await?;
    eprintln!(
        "Kratos database ({}) at schema version {found}: supported.",
        src.dialect()
    );
    let nid = pick_network(&*src, opts.nid).await?;
    let schemas: HashSet<String> = settings.schemas.iter().map(|(id, _)| id.clone()).collect();
    let missing = missing_schemas(&*src, &nid, &schemas).await?;
    if !missing.is_empty() && !opts.dry_run {
        bail!(
            "identity schemas used in the Kratos database are missing from the config's identity.schemas: {}. \
             Add them (same ids) and run again; nothing was written",
            missing.join(", ")
        );
    }
    let lookup_key = settings
        .cookie_secrets
        .first()
        .cloned()
        .context("the config has no secrets.cookie (or secrets.default) to hash lookup secrets with")?;
    let host = this_host();
    let lock_owner = format!("{host}:{}:{}", std::process::id(), Uuid::new_v4());
    let target = if opts.dry_run {
        None
    } else {
        let store = crate::server::open_store(&settings.dsn).await?;
        let pending: Vec<_> = store
            .migration_status()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .into_iter()
            .filter(|m| !m.applied)
            .collect();
        if !pending.is_empty() {
            bail!("Sallyport's database is not migrated: run `sallyport migrate sql -e --yes -c …` first");
        }
        let now = OffsetDateTime::now_utc();
        let mut took = store
            .acquire_import_lock(&lock_owner, now, now - LOCK_STALE)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        // A run that died on this machine (kill -9, power loss) holds the lock until it goes stale;
        // when its process is gone, waiting for that helps nobody.
        if !took
            && let Some(holder) = store
                .import_mark(LOCK_KEY)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
            && held_by_dead_process_here(&holder, &host)
        {
            eprintln!("taking over the lock of an import that died on this machine ({holder})");
            store
                .release_import_lock(&holder)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            took = store
                .acquire_import_lock(&lock_owner, now, now - LOCK_STALE)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        if !took {
            bail!(
                "another import into this Sallyport database is running; wait for it to finish \
                 (a crashed run's lock expires {} minutes after its last progress)",
                LOCK_STALE.whole_minutes()
            );
        }
        Some(store)
    };
    let mark_key = format!("watermark:kratos:{nid}");
    let since = match &target {
        Some(t) => t
            .import_mark(&mark_key)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?,
        None => None,
    };
    let since = since
        .and_then(|s| convert::timestamp(&s, "watermark").ok())
        .map(|t| convert::timestamp_param(t - OVERLAP));
    match &since {
        Some(s) => eprintln!("Copying what changed in network {nid} since {s} (UTC)."),
        None => eprintln!("Copying network {nid} in full."),
    }
    let started = src
        .rows(source::now_sql(src.dialect()), &[])
        .await?
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .context("reading the Kratos database's clock")?;
    let run = Run {
        src: src.clone(),
        reader: Reader {
            src: src.clone(),
            nid: nid.clone(),
        },
        target: target.clone(),
        nid,
        since,
        rules: Arc::new(Rules {
            schemas,
            lookup_key,
            seal_secret: settings.cipher_secrets.first().cloned().unwrap_or_default(),
        }),
        lock_owner,
        renewed: std::sync::Mutex::new(None),
    };
    let result = run.copy_all(&missing).await;
    if let Some(t) = &target {
        let _ = t.release_import_lock(&run.lock_owner).await;
    }
    let mut reports = result?;
    if !opts.dry_run || opts.prune {
        let store = match &target {
            Some(t) => t.clone(),
            None => crate::server::open_store(&settings.dsn).await?,
        };
        let write = if opts.dry_run { None } else { target.as_ref() };
        reports.extend(prune(&*src, &run.nid, &*store, write, opts.prune).await?);
    }
    let named: Vec<(&str, &TableReport)> = reports.iter().map(|(n, r)| (*n, r)).collect();
    print_summary(&named, opts.dry_run);
    let rejected: usize = reports.iter().map(|(_, r)| r.rejected.len()).sum();
    if let Some(t) = &target {
        if rejected == 0 {
            t.set_import_mark(&mark_key, &started, OffsetDateTime::now_utc())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        } else {
            eprintln!(
                "Some rows were rejected, so the next run copies everything since the last clean run again."
            );
        }
    }
    Ok(())
}

/// Imported identities and sessions that Kratos no longer has (deleted after the bulk copy):
/// counted always, deleted with `--prune`. Rows Sallyport created itself are never candidates.
/// Sessions of a pruned identity go with it.
async fn prune(
    src: &dyn KratosSource,
    nid: &str,
    store: &dyn Store,
    write: Option<&Arc<dyn Store>>,
    prune: bool,
) -> anyhow::Result<Vec<(&'static str, TableReport)>> {
    let ids = |table: &str| {
        format!(
            "SELECT {} FROM {table} WHERE {}",
            src.text("id"),
            src.uuid_eq("nid", 1)
        )
    };
    // Both sides of both tables are read at once: a full run spends its last moments here.
    let side = |table: &'static str, kind: &'static str| async move {
        let target = async { store.imported_ids(kind).await.map_err(|e| anyhow::anyhow!("{e}")) };
        let source = async {
            let rows = src.rows(&ids(table), &[nid.to_owned()]).await?;
            Ok::<HashSet<Uuid>, anyhow::Error>(
                rows.into_iter()
                    .filter_map(|r| r.into_iter().next().flatten())
                    .filter_map(|id| Uuid::parse_str(&id).ok())
                    .collect(),
            )
        };
        tokio::try_join!(target, source)
    };
    let (identities, sessions) =
        tokio::try_join!(side("identities", "identity"), side("sessions", "session"))?;
    let mut out = vec![];
    for ((table, name), (target_ids, source)) in [
        (("identities", "identities gone from Kratos"), identities),
        (("sessions", "sessions gone from Kratos"), sessions),
    ] {
        let mut report = TableReport::default();
        for id in target_ids.into_iter().filter(|id| !source.contains(id)) {
            report.read += 1;
            if !prune {
                continue;
            }
            let deleted = match write {
                None => Ok(()),
                // A session of an identity pruned just before is gone already (NotFound).
                Some(t) if table == "identities" => t.delete_identity(id).await,
                Some(t) => t.delete_session(id).await,
            };
            let deleted = match deleted {
                Ok(()) | Err(sallyport_core::store::StoreError::NotFound) => match write {
                    Some(t) => t.forget_imported(id).await,
                    None => Ok(()),
                },
                Err(e) => Err(e),
            };
            match deleted {
                Ok(()) => report.imported += 1,
                Err(e) => report
                    .rejected
                    .push((id.to_string(), format!("could not delete: {e}"))),
            }
        }
        if report.read > 0 && !prune {
            eprintln!(
                "{} {table} exist in Sallyport but no longer in Kratos; rerun with --prune to delete them.",
                report.read
            );
        }
        out.push((name, report));
    }
    Ok(out)
}

async fn pick_network(src: &dyn KratosSource, wanted: Option<Uuid>) -> anyhow::Result<String> {
    let sql = format!("SELECT {} FROM networks ORDER BY created_at", src.text("id"));
    let ids: Vec<String> = src
        .rows(&sql, &[])
        .await?
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect();
    match wanted {
        Some(nid) => {
            let nid = nid.to_string();
            if ids.iter().any(|i| i.eq_ignore_ascii_case(&nid)) {
                Ok(nid)
            } else {
                bail!(
                    "--nid {nid}: no such network in the Kratos database (found: {})",
                    ids.join(", ")
                )
            }
        }
        None => match ids.as_slice() {
            [] => bail!("the Kratos database has no network (table networks is empty): nothing to import"),
            [one] => Ok(one.to_lowercase()),
            many => bail!(
                "the Kratos database holds {} networks; pick one with --nid (found: {})",
                many.len(),
                many.join(", ")
            ),
        },
    }
}

async fn missing_schemas(
    src: &dyn KratosSource,
    nid: &str,
    schemas: &HashSet<String>,
) -> anyhow::Result<Vec<String>> {
    let sql = format!(
        "SELECT DISTINCT schema_id FROM identities WHERE {}",
        src.uuid_eq("nid", 1)
    );
    let used: BTreeSet<String> = src
        .rows(&sql, &[nid.to_owned()])
        .await?
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect();
    Ok(used.into_iter().filter(|s| !schemas.contains(s)).collect())
}

impl Run {
    async fn copy_all(&self, missing: &[String]) -> anyhow::Result<Vec<(&'static str, TableReport)>> {
        let _ = missing;
        let (identities, rejected_ids) = self.copy_identities().await?;
        let sessions = self.copy_sessions(&rejected_ids).await?;
        let messages = self.copy_messages().await?;
        Ok(vec![
            ("identities (with credentials, addresses)", identities),
            ("sessions (with devices)", sessions),
            ("courier_messages", messages),
        ])
    }

    /// Renews the import lock before a write, unless that was done less than `RENEW_EVERY` ago (a
    /// round trip per batch held up the pipeline); stops if another import took the lock over.
    async fn heartbeat(&self) -> anyhow::Result<()> {
        {
            let mut renewed = self.renewed.lock().unwrap_or_else(|e| e.into_inner());
            if renewed.is_some_and(|at| at.elapsed() < RENEW_EVERY) {
                return Ok(());
            }
            *renewed = Some(std::time::Instant::now());
        }
        if let Some(t) = &self.target {
            let now = OffsetDateTime::now_utc();
            if !t
                .acquire_import_lock(&self.lock_owner, now, now - LOCK_STALE)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                bail!("the import lock was taken over by another import; stopping");
            }
        }
        Ok(())
    }

    async fn count(&self, table: &str, id_set: Option<usize>) -> anyhow::Result<u64> {
        if let Some(n) = id_set {
            return Ok(n as u64);
        }
        let mut sql = format!(
            "SELECT COUNT(*) FROM {table} WHERE {}",
            self.src.uuid_eq("nid", 1)
        );
        let mut args = vec![self.nid.clone()];
        if let Some(since) = &self.since {
            sql.push_str(&format!(" AND {}", self.src.newer("updated_at", 2)));
            args.push(since.clone());
        }
        let sql = sql.replace("COUNT(*)", &self.src.text("COUNT(*)"));
        Ok(self
            .src
            .rows(&sql, &args)
            .await?
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0))
    }

    /// Identities changed since the watermark: their row, a credential, an identifier or an address.
    async fn changed_identity_ids(&self, since: &str) -> anyhow::Result<Vec<String>> {
        let mut ids = BTreeSet::new();
        for (table, column) in [
            ("identities", "id"),
            ("identity_credentials", "identity_id"),
            ("identity_credential_identifiers", "identity_id"),
            ("identity_verifiable_addresses", "identity_id"),
            ("identity_recovery_addresses", "identity_id"),
        ] {
            let sql = format!(
                "SELECT DISTINCT {} FROM {table} WHERE {} AND {}",
                self.src.text(column),
                self.src.uuid_eq("nid", 1),
                self.src.newer("updated_at", 2)
            );
            for row in self.src.rows(&sql, &[self.nid.clone(), since.to_owned()]).await? {
                if let Some(id) = row.into_iter().next().flatten() {
                    ids.insert(id.to_lowercase());
                }
            }
        }
        Ok(ids.into_iter().collect())
    }

    async fn copy_identities(&self) -> anyhow::Result<(TableReport, HashSet<String>)> {
        let changed = match &self.since {
            Some(since) => Some(self.changed_identity_ids(since).await?),
            None => None,
        };
        let total = self.count("identities", changed.as_ref().map(Vec::len)).await?;
        let report = identities::copy(
            self.reader.clone(),
            self.rules.clone(),
            self.target.clone(),
            changed,
            total,
            || self.heartbeat(),
        )
        .await?;
        let rejected = report.rejected.iter().map(|(id, _)| id.clone()).collect();
        Ok((report, rejected))
    }

    async fn copy_sessions(&self, rejected_identities: &HashSet<String>) -> anyhow::Result<TableReport> {
        use convert::{DEVICE_COLUMNS, SESSION_COLUMNS};
        let mut report = TableReport::default();
        let total = self.count("sessions", None).await?;
        let mut progress = Progress::new("sessions", total);
        let mut after = Uuid::nil().to_string();
        loop {
            let mut sql = format!(
                "SELECT {} FROM sessions WHERE {} AND {}",
                select(&*self.src, SESSION_COLUMNS),
                self.src.uuid_eq("nid", 1),
                self.src.uuid_cmp("id", ">", 2)
            );
            let mut args = vec![self.nid.clone(), after.clone()];
            if let Some(since) = &self.since {
                sql.push_str(&format!(" AND {}", self.src.newer("updated_at", 3)));
                args.push(since.clone());
            }
            sql.push_str(&format!(" ORDER BY sessions.id LIMIT {BATCH}"));
            let rows = self.src.rows(&sql, &args).await?;
            let Some(last) = rows.last().and_then(|r| r.first().cloned().flatten()) else {
                break;
            };
            after = last;
            let ids: Vec<String> = rows.iter().filter_map(|r| r.first().cloned().flatten()).collect();
            let mut devices: HashMap<String, Vec<sallyport_core::session::Device>> = HashMap::new();
            for d in self
                .reader
                .part_rows(
                    (
                        DEVICE_COLUMNS,
                        "session_devices",
                        "session_id",
                        "nid",
                        "created_at, id",
                    ),
                    &Which::of(&ids, self.since.is_none()),
                )
                .await?
            {
                let session = d.get(1).cloned().flatten().unwrap_or_default().to_lowercase();
                if let Ok(device) = convert::device(&d) {
                    devices.entry(session).or_default().push(device);
                }
            }
            let mut batch: Vec<Session> = vec![];
            for row in &rows {
                report.read += 1;
                let id = row.first().cloned().flatten().unwrap_or_default().to_lowercase();
                let identity = row.get(1).cloned().flatten().unwrap_or_default().to_lowercase();
                if rejected_identities.contains(&identity) {
                    report
                        .rejected
                        .push((id, format!("its identity {identity} was rejected")));
                    continue;
                }
                match convert::session(row, devices.remove(&id).unwrap_or_default()) {
                    Ok(s) => batch.push(s),
                    Err(why) => report.rejected.push((id, why)),
                }
            }
            self.heartbeat().await?;
            match &self.target {
                None => report.imported += batch.len() as u64,
                Some(t) => {
                    if t.upsert_sessions(&batch).await.is_ok() {
                        report.imported += batch.len() as u64;
                    } else {
                        for s in &batch {
                            match t.upsert_sessions(std::slice::from_ref(s)).await {
                                Ok(()) => report.imported += 1,
                                Err(e) => report.rejected.push((
                                    s.id.to_string(),
                                    format!(
                                        "refused by Sallyport's database (is its identity imported?): {e}"
                                    ),
                                )),
                            }
                        }
                    }
                }
            }
            progress.advance(rows.len() as u64);
        }
        progress.finish();
        Ok(report)
    }

    async fn copy_messages(&self) -> anyhow::Result<TableReport> {
        use convert::MESSAGE_COLUMNS;
        let mut report = TableReport::default();
        let total = self.count("courier_messages", None).await?;
        let mut progress = Progress::new("courier_messages", total);
        let mut after = Uuid::nil().to_string();
        loop {
            let mut sql = format!(
                "SELECT {} FROM courier_messages WHERE {} AND {}",
                select(&*self.src, MESSAGE_COLUMNS),
                self.src.uuid_eq("nid", 1),
                self.src.uuid_cmp("id", ">", 2)
            );
            let mut args = vec![self.nid.clone(), after.clone()];
            if let Some(since) = &self.since {
                sql.push_str(&format!(" AND {}", self.src.newer("updated_at", 3)));
                args.push(since.clone());
            }
            sql.push_str(&format!(" ORDER BY courier_messages.id LIMIT {BATCH}"));
            let rows = self.src.rows(&sql, &args).await?;
            let Some(last) = rows.last().and_then(|r| r.first().cloned().flatten()) else {
                break;
            };
            after = last;
            let mut batch = vec![];
            for row in &rows {
                report.read += 1;
                match convert::message(row) {
                    Ok(m) => batch.push(m),
                    Err(why) => report
                        .rejected
                        .push((row.first().cloned().flatten().unwrap_or_default(), why)),
                }
            }
            self.heartbeat().await?;
            match &self.target {
                None => report.imported += batch.len() as u64,
                Some(t) => {
                    report.imported += t
                        .insert_missing_messages(&batch)
                        .await
                        .map_err(|e| anyhow::anyhow!("writing courier messages: {e}"))?;
                }
            }
            progress.advance(rows.len() as u64);
        }
        progress.finish();
        Ok(report)
    }
}
