//! Process-wide settings every binary that runs the server applies: `sallyport` itself, and the
//! benchmark, whose in-process server must run as the release binary does.

/// glibc gives each thread that allocates under contention its own arena (up to 8 per core), and memory
/// freed in one arena is never reused by another: with tokio workers, SQLite worker threads and blocking
/// threads that multiplied the heap after load (see docs/caches.md). Two arenas keep the contention low
/// on this workload; `MALLOC_ARENA_MAX` in the environment still wins. Call it first thing in `main`,
/// before any other thread exists.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: called before any other thread exists (the caller's promise); mallopt only sets a limit.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

/// glibc only gives memory back from the top of each arena, so after a burst the pages freed in the
/// middle (cache entries evicted, request buffers) stay resident. `malloc_trim(0)` returns every free
/// page; it takes about a millisecond on this heap, so every 10 s on its own small thread.
pub fn trim_malloc_periodically() {
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

/// The Prometheus recorder of `/metrics`, installed for the process, with its upkeep task on the
/// current runtime. Histogram samples pile up until drained; without a scrape of `/metrics` they
/// would grow memory by every request. Upkeep folds them into the bounded summaries every 5 s.
pub fn install_metrics() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .ok()?;
    let h = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tick.tick().await;
            h.run_upkeep();
            record_heap();
        }
    });
    Some(handle)
}

/// What the allocator holds, as gauges on `/admin/metrics/prometheus`: `sallyport_heap_in_use_bytes`
/// (live allocations) and `sallyport_heap_mapped_bytes` (the arenas and large blocks taken from the
/// system, free space inside them included). RSS alone does not tell live memory growing from the
/// allocator's free space spreading over more pages, which is what a soak has to tell apart.
fn record_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 only reads the allocator's statistics under its own locks.
        let m = unsafe { libc::mallinfo2() };
        metrics::gauge!("sallyport_heap_in_use_bytes").set((m.uordblks + m.hblkhd) as f64);
        metrics::gauge!("sallyport_heap_mapped_bytes").set((m.arena + m.hblkhd) as f64);
    }
}
