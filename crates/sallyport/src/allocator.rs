//! Memory allocation. Rust's allocations go to mimalloc; SQLite's, made in C, stay with glibc's malloc.
//!
//! mimalloc took passwordless code login from ~2,100 to ~2,400 send-code requests/s in the benchmark
//! (glibc's malloc and free, with `malloc_consolidate`, were about a quarter of the request workers'
//! time). Its defaults held more memory: idle RSS 30 MiB instead of 18, because it asks for transparent
//! huge pages (off at build time, feature `no_thp`) and returns freed pages after a delay of a second (none here).
//! docs/caches.md has the figures.

/// The allocator of every binary that links this crate: `sallyport`, the benchmark (whose in-process
/// server is then measured with the same allocator as the release binary) and the tests.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_e` (include/mimalloc.h): how long freed pages stay
/// committed before they are returned, in ms. The test below checks the index against its default.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Call first thing in `main`, before other threads exist.
pub fn configure() {
    // SAFETY: mi_option_set is not thread safe; this runs before any other thread is started.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
    }
    limit_malloc_arenas();
    trim_malloc_periodically();
}

/// Returns what start-up freed (configuration, schema compilation, migrations) to the OS at once,
/// instead of at the next purge or trim: idle RSS is measured right after start-up.
pub fn release_startup_memory() {
    // SAFETY: both only walk the allocators' own free lists under their own locks.
    unsafe {
        libmimalloc_sys::mi_collect(true);
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        libc::malloc_trim(0);
    }
}

/// For SQLite's allocations: glibc gives each thread that allocates under contention its own arena (up to 8 per core), and memory
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        // Its default is 1,000 ms unless MIMALLOC_PURGE_DELAY says otherwise: another index would read
        // another option's value.
        // SAFETY: reading an option has no precondition.
        let got = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        let expected = std::env::var("MIMALLOC_PURGE_DELAY")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000);
        assert_eq!(got, expected);
    }
}
