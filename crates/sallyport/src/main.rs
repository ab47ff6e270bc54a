//! `sallyport`: the command line, shaped like Kratos' (`serve`, `migrate sql`, `import identities`, …).

use clap::Parser;

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    let cli = sallyport::cli::Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("could not start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(sallyport::cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// glibc gives each thread that allocates under contention its own arena (up to 8 per core), and memory
/// freed in one arena is never reused by another: with tokio workers, SQLite worker threads and blocking
/// threads that multiplied the heap after load (see docs/caches.md). Two arenas keep the contention low
/// on this workload; `MALLOC_ARENA_MAX` in the environment still wins.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: called first thing in main, before any other thread exists; mallopt only sets a limit.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}
