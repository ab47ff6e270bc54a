//! `sallyport`: the command line, shaped like Kratos' (`serve`, `migrate sql`, `import identities`, …).

use clap::Parser;

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    trim_malloc_periodically();
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

/// glibc only gives memory back from the top of each arena, so after a burst the pages freed in the
/// middle (cache entries evicted, request buffers) stay resident. `malloc_trim(0)` returns every free
/// page; it takes about a millisecond on this heap, so every 10 s on its own small thread.
fn trim_malloc_periodically() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let spawned = std::thread::Builder::new()
            .name("malloc-trim".into())
            .stack_size(64 * 1024)
            .spawn(|| {
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(10));
                    // SAFETY: malloc_trim takes the allocator's own locks; no Rust invariant is involved.
                    unsafe {
                        libc::malloc_trim(0);
                    }
                }
            });
        // Without it memory is only less tidy: nothing to report.
        drop(spawned);
    }
}
