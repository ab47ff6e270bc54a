//! Command-line interface. Server commands take `-c/--config` (repeatable); admin-API clients take
//! `-e/--endpoint` or `KRATOS_ADMIN_URL`, as Kratos' do.

mod import_identities;

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use serde_json::Value;

#[derive(Debug, Parser)]
#[command(
    name = "sallyport",
    version,
    about = "A Kratos-compatible identity and login server"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the public and admin APIs.
    Serve(ServeArgs),
    /// Database migrations.
    Migrate {
        #[command(subcommand)]
        what: MigrateWhat,
    },
    /// Import resources through the admin API.
    Import {
        #[command(subcommand)]
        what: ImportWhat,
    },
    /// Get resources through the admin API.
    Get {
        #[command(subcommand)]
        what: GetWhat,
    },
    /// List resources through the admin API.
    List {
        #[command(subcommand)]
        what: ListWhat,
    },
    /// Delete resources through the admin API.
    Delete {
        #[command(subcommand)]
        what: DeleteWhat,
    },
    /// The message courier.
    Courier {
        #[command(subcommand)]
        what: CourierWhat,
    },
    /// Print the version.
    Version,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Config file (YAML or JSON); repeat to merge several.
    #[arg(short = 'c', long = "config")]
    pub config: Vec<PathBuf>,
    /// Insecure development defaults: plain HTTP, non-Secure cookies, migrations applied at start.
    #[arg(long)]
    pub dev: bool,
    /// Run the courier worker in this process.
    #[arg(long = "watch-courier")]
    pub watch_courier: bool,
    #[arg(long = "sqa-opt-out", hide = true)]
    pub sqa_opt_out: bool,
}

#[derive(Debug, Subcommand)]
pub enum MigrateWhat {
    /// Apply (default), revert or list SQL migrations.
    Sql(SqlArgs),
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = false)]
pub struct SqlArgs {
    #[command(subcommand)]
    pub action: Option<SqlAction>,
    /// Database URL; or use -e to read it from the environment / config.
    pub dsn: Option<String>,
    /// Read the DSN from the DSN environment variable or the config's `dsn`.
    #[arg(short = 'e', long = "read-from-env", global = true)]
    pub read_from_env: bool,
    /// Don't ask for confirmation.
    #[arg(short = 'y', long = "yes", global = true)]
    pub yes: bool,
    #[arg(short = 'c', long = "config", global = true)]
    pub config: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum SqlAction {
    Up {
        dsn: Option<String>,
    },
    Down {
        dsn: Option<String>,
        #[arg(long, default_value_t = 0)]
        steps: u32,
    },
    Status {
        dsn: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Admin API base URL (default: KRATOS_ADMIN_URL).
    #[arg(short = 'e', long = "endpoint", env = "KRATOS_ADMIN_URL")]
    pub endpoint: Option<String>,
    /// Output format: json, json-pretty or quiet.
    #[arg(long, default_value = "json-pretty")]
    pub format: String,
}

#[derive(Debug, Subcommand)]
pub enum ImportWhat {
    /// Create identities from JSON files (a single identity or an array); `-` or none reads stdin.
    Identities {
        files: Vec<PathBuf>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Copy a Kratos database (identities, credentials, addresses, sessions, unsent mail) into the
    /// database of the config's `dsn`. Reruns copy only what changed.
    Kratos {
        /// The Kratos database: postgres://…, cockroach://…, sqlite://<path>.
        #[arg(long = "from")]
        from: String,
        #[arg(short = 'c', long = "config")]
        config: Vec<PathBuf>,
        /// Read and check everything, write nothing, print what would be imported.
        #[arg(long = "dry-run")]
        dry_run: bool,
        /// The Kratos network to copy (needed only when the database holds several).
        #[arg(long = "nid")]
        nid: Option<uuid::Uuid>,
        /// Also delete from Sallyport the identities and sessions Kratos no longer has (for the
        /// final sync: deleted users, revoked sessions Kratos removed).
        #[arg(long = "prune")]
        prune: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum GetWhat {
    Identity {
        ids: Vec<String>,
        #[arg(short = 'i', long = "include-credentials")]
        include_credentials: Vec<String>,
        #[arg(long = "external-id")]
        external_id: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ListWhat {
    Identities {
        #[arg(long = "page-size", default_value_t = 250)]
        page_size: u32,
        #[arg(long = "page-token")]
        page_token: Option<String>,
        #[arg(long, default_value = "eventual")]
        consistency: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeleteWhat {
    Identity {
        ids: Vec<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum CourierWhat {
    /// Deliver queued messages.
    Watch {
        #[arg(short = 'c', long = "config")]
        config: Vec<PathBuf>,
        #[arg(long = "expose-metrics-port")]
        expose_metrics_port: Option<u16>,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(a) => crate::serve::serve(a).await,
        Command::Migrate {
            what: MigrateWhat::Sql(a),
        } => migrate(a).await,
        Command::Import {
            what: ImportWhat::Identities { files, client },
        } => import_identities::run(files, client).await,
        Command::Import {
            what:
                ImportWhat::Kratos {
                    from,
                    config,
                    dry_run,
                    nid,
                    prune,
                },
        } => {
            crate::import::run(crate::import::Options {
                from,
                config,
                dry_run,
                nid,
                prune,
            })
            .await
        }
        Command::Get {
            what:
                GetWhat::Identity {
                    ids,
                    include_credentials,
                    external_id,
                    client,
                },
        } => {
            for id in ids {
                let path = if external_id {
                    format!("admin/identities/by/external/{id}")
                } else {
                    format!("admin/identities/{id}")
                };
                let q: Vec<(&str, &str)> = include_credentials
                    .iter()
                    .map(|c| ("include_credential", c.as_str()))
                    .collect();
                let v = request(&client, reqwest::Method::GET, &path, &q, None).await?;
                print(&client, &v);
            }
            Ok(())
        }
        Command::List {
            what:
                ListWhat::Identities {
                    page_size,
                    page_token,
                    client,
                    ..
                },
        } => {
            let size = page_size.to_string();
            let mut q = vec![("page_size", size.as_str())];
            if let Some(t) = &page_token {
                q.push(("page_token", t));
            }
            let v = request(&client, reqwest::Method::GET, "admin/identities", &q, None).await?;
            print(&client, &v);
            Ok(())
        }
        Command::Delete {
            what: DeleteWhat::Identity { ids, client },
        } => {
            for id in ids {
                request(
                    &client,
                    reqwest::Method::DELETE,
                    &format!("admin/identities/{id}"),
                    &[],
                    None,
                )
                .await?;
                if client.format != "quiet" {
                    println!("{id}");
                }
            }
            Ok(())
        }
        Command::Courier {
            what: CourierWhat::Watch { config, .. },
        } => crate::serve::courier_watch(&config).await,
        Command::Version => {
            println!("Version:    {}", crate::admin::version::VERSION);
            Ok(())
        }
    }
}

fn print(client: &ClientArgs, v: &Value) {
    match client.format.as_str() {
        "quiet" => {}
        "json" => println!("{v}"),
        _ => println!("{}", serde_json::to_string_pretty(v).unwrap_or_default()),
    }
}

async fn request(
    client: &ClientArgs,
    method: reqwest::Method,
    path: &str,
    query: &[(&str, &str)],
    body: Option<&Value>,
) -> anyhow::Result<Value> {
    let Some(endpoint) = client.endpoint.as_deref() else {
        bail!("no admin endpoint: pass -e/--endpoint or set KRATOS_ADMIN_URL (e.g. http://127.0.0.1:4434)")
    };
    let url = format!("{}/{}", endpoint.trim_end_matches('/'), path);
    let mut req = reqwest::Client::new().request(method, &url).query(query);
    if let Some(b) = body {
        req = req.json(b);
    }
    let res = req.send().await.with_context(|| format!("calling {url}"))?;
    let status = res.status();
    let text = res.text().await.unwrap_or_default();
    let v: Value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    if !status.is_success() {
        let reason = v["error"]["reason"]
            .as_str()
            .or(v["error"]["message"].as_str())
            .unwrap_or("");
        bail!("{url} answered {status}: {reason}");
    }
    Ok(v)
}

async fn migrate(a: SqlArgs) -> anyhow::Result<()> {
    let steps = match &a.action {
        Some(SqlAction::Down { steps, .. }) => *steps,
        _ => 0,
    };
    let (dsn, action) = match a.action {
        None => (a.dsn, "up"),
        Some(SqlAction::Up { dsn }) => (dsn.or(a.dsn), "up"),
        Some(SqlAction::Down { dsn, .. }) => (dsn.or(a.dsn), "down"),
        Some(SqlAction::Status { dsn }) => (dsn.or(a.dsn), "status"),
    };
    let dsn = match dsn {
        Some(d) => d,
        None if a.read_from_env => {
            let cfg = crate::config_loader::load(&a.config, false).context("loading the configuration")?;
            cfg.dsn.clone()
        }
        None => bail!(
            "pass the database URL as an argument or use -e/--read-from-env to read it from DSN / the config"
        ),
    };
    let store = crate::server::open_store(&dsn).await?;
    let status = store
        .migration_status()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    match action {
        "status" => {
            println!("Version\tName\tStatus");
            for m in status {
                println!(
                    "{}\t{}\t{}",
                    m.version,
                    m.name,
                    if m.applied { "Applied" } else { "Pending" }
                );
            }
            Ok(())
        }
        "down" => {
            if steps == 0 {
                println!("Nothing to do: pass --steps N to revert the newest N migrations.");
                return Ok(());
            }
            confirm(
                a.yes,
                &format!(
                    "Revert the newest {steps} migration(s) of {}?",
                    crate::server::redact_dsn(&dsn)
                ),
            )?;
            store
                .migrate_down(steps)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("Successfully reverted {steps} migration(s).");
            Ok(())
        }
        _ => {
            let pending = status.iter().filter(|m| !m.applied).count();
            if pending == 0 {
                println!("All migrations are already applied.");
                return Ok(());
            }
            confirm(
                a.yes,
                &format!(
                    "Apply {pending} pending migration(s) to {}?",
                    crate::server::redact_dsn(&dsn)
                ),
            )?;
            store.migrate_up().await.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("Successfully applied all migrations!");
            Ok(())
        }
    }
}

fn confirm(yes: bool, question: &str) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    eprint!("{question} [y/n]: ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        bail!("aborted: nothing was changed")
    }
}
