//! `sallyport serve`: config → logging → store → migrations → both listeners, until SIGTERM/Ctrl-C.

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::cli::ServeArgs;
use crate::server::{Server, build_app, open_store, pending_migrations, redact_dsn};

fn init_logging(cfg: &sallyport_config::Config) {
    use sallyport_config::model::{LogFormat, LogLevel};
    let level = match cfg.log.level {
        LogLevel::Trace => "trace",
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warning => "warn",
        LogLevel::Error | LogLevel::Fatal | LogLevel::Panic => "error",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SALLYPORT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{level},sqlx=warn,hyper=warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colour codes only for a terminal; a log file or collector gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match cfg.log.format {
        LogFormat::Json => builder.json().try_init(),
        _ => builder.try_init(),
    };
}

/// Resolves on SIGTERM or Ctrl-C. The handlers are installed when this is called, not when the future
/// is first polled: the server answers requests before the task awaiting it may have run, and a SIGTERM
/// in that gap used to kill the process without a graceful shutdown.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (mut term, mut int) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            // A handler that could not be installed never fires.
            async fn next(s: Option<&mut tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => drop(s.recv().await),
                    None => std::future::pending().await,
                }
            }
            tokio::select! { _ = next(term.as_mut()) => {}, _ = next(int.as_mut()) => {} }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutting down: finishing in-flight requests");
    }
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let shutdown = shutdown_signal();
    let cfg = crate::config_loader::load(&args.config, args.dev)?;
    init_logging(&cfg);
    for key in cfg.unimplemented_keys() {
        tracing::warn!(
            key,
            "this Kratos config key is accepted but not implemented by Sallyport yet; it has no effect"
        );
    }
    for w in cfg.load_warnings() {
        tracing::warn!("{w}");
    }
    let settings = crate::config_loader::settings(&cfg, args.dev)?;
    settings.rate_limits.log();
    let metrics = crate::process::install_metrics();
    let store = open_store(&settings.dsn).await?;
    let dsn = redact_dsn(&settings.dsn);
    let pending = pending_migrations(&*store).await?;
    if pending > 0 && args.dev {
        tracing::info!(pending, "--dev: applying pending migrations");
        store
            .migrate_up()
            .await
            .map_err(|e| anyhow::anyhow!("applying migrations: {e}"))?;
    } else if pending > 0 {
        tracing::error!(
            pending,
            dsn,
            "the database has pending migrations; requests answer 503 until you run `sallyport migrate sql -e --yes`"
        );
    }
    let public = TcpListener::bind(&settings.public_listen)
        .await
        .with_context(|| format!("binding {}", settings.public_listen))?;
    let admin = TcpListener::bind(&settings.admin_listen)
        .await
        .with_context(|| format!("binding {}", settings.admin_listen))?;
    let app = build_app(settings, store, metrics).await?;
    let mut server = Server::new(app.clone(), public, admin);
    if args.watch_courier {
        server = server.with_courier()?;
        tracing::info!("this process delivers courier messages (--watch-courier)");
    } else {
        tracing::info!(
            "this process does not deliver courier messages: mails and SMS are queued in the database until a \
             courier sends them. Start one with `sallyport courier watch -c <config>`, or serve with `--watch-courier`"
        );
    }
    if crate::courier::prints_messages(&app, "email") {
        tracing::info!(
            "--dev without courier.smtp.connection_uri: each outgoing message (recipient, template, code or link) \
             is printed to this log"
        );
    }
    tracing::info!(
        public = %server.public_addr(),
        admin = %server.admin_addr(),
        public_base_url = %app.settings.public_base_url,
        "Sallyport is listening"
    );
    let sign_in = &app.settings.login.ui_url;
    if sign_in.as_str().starts_with(app.public_url("ui/").as_str()) {
        tracing::info!(
            "built-in sign-in page: open {} in a browser",
            app.public_url("ui/welcome")
        );
    }
    let released = crate::startup_pages::release();
    tracing::debug!(bytes = released, "released the start-up code pages");
    if !app.migrations_applied.load(Ordering::Relaxed) {
        // Another process may run `migrate sql`; become ready as soon as it has.
        let app = app.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                if let Ok(0) = pending_migrations(&*app.store).await {
                    app.migrations_applied.store(true, Ordering::Relaxed);
                    tracing::info!("all migrations are applied; serving requests");
                    break;
                }
            }
        });
    }
    server.run(shutdown).await
}

/// `sallyport courier watch`: deliver queued messages until SIGTERM/Ctrl-C.
pub async fn courier_watch(config: &[std::path::PathBuf]) -> anyhow::Result<()> {
    let shutdown = shutdown_signal();
    let cfg = crate::config_loader::load(config, false)?;
    init_logging(&cfg);
    let settings = crate::config_loader::settings(&cfg, false)?;
    let store = open_store(&settings.dsn).await?;
    if pending_migrations(&*store).await? > 0 {
        anyhow::bail!("the database has pending migrations; run `sallyport migrate sql -e --yes` first");
    }
    let app = build_app(settings, store, None).await?;
    let dispatcher = crate::courier_worker::dispatcher(&app)?;
    tracing::info!("courier is watching for messages");
    dispatcher.run(shutdown).await;
    Ok(())
}
