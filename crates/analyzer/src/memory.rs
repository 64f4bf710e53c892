//! Giving freed heap back to the system: large buffers as they are freed, the rest between
//! the analysis' phases.

/// Allocations from this size up get their own mapping, returned to the system when freed.
/// At 1 MiB, the phases after the replay (the attribution's per-policy rows, polars' buffers,
/// the Parquet writers' pages) left their 64 KiB–1 MiB pieces in heaps that freed memory
/// could not be given back from around the pieces still held: an hour's attribution, derived
/// tables and comparison peaked 6–12 MiB higher. It costs system time (those pieces are mapped
/// and faulted in each time: an hour's 11 → 16 s); `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=`
/// sets another (`bench/README.md`, session 26).
const MMAP_THRESHOLD: i32 = 64 << 10;

/// Fixes glibc's mmap threshold at [`MMAP_THRESHOLD`] (unless `GLIBC_TUNABLES` sets one). By
/// default it rises to the size of each mapped block freed, up to 32 MiB: after the first large
/// vector is dropped, every vector below that is carved from a heap, and its pages stay
/// resident once freed, under the next phase's. On an hour's trace that was 612 against
/// 459–470 MiB at the peak, for 46 against 55 s (`bench/README.md`, session 13). A no-op where
/// the C library is not glibc.
pub fn return_large_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("mmap_threshold")) {
            return;
        }
        // SAFETY: mallopt only sets a parameter of glibc's allocator; called before any thread
        // of ours exists.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        }
    }
}

/// Returns the free pages of glibc's heaps to the system (`malloc_trim(0)`, which since glibc
/// 2.8 also releases free pages inside the heap, not only at its top). Freed memory stays in
/// the process otherwise, and threads that allocate from other arenas (polars') do not reuse
/// it: the peak RSS is then the old phase's high-water mark plus the new phase's. A no-op
/// where the C library is not glibc.
pub fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own free lists; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// With `PWS_MEMORY_PHASES` set, prints the resident set and its high-water mark (VmRSS,
/// VmHWM) after a phase of the analysis, to stderr: where the peak is, without a profiler
/// (`bench/analyzer_scale.sh --phases`). With `PWS_MEMORY_PHASES=each`, the high-water mark is
/// reset after each line (`/proc/self/clear_refs`), so each line's is its own phase's peak (and
/// the process's peak, as `getrusage` gives it, is lost: for diagnosis only).
pub fn phase(name: &str) {
    let Some(mode) = std::env::var_os("PWS_MEMORY_PHASES") else {
        return;
    };
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    eprintln!(
        "memory phase {name:<28} rss {:>6} MiB  hwm {:>6} MiB  of it files {:>6} MiB",
        kib("VmRSS:") / 1024,
        kib("VmHWM:") / 1024,
        kib("RssFile:") / 1024
    );
    if mode == "each" {
        // "5" resets the peak resident set to the current one (Linux 4.0 and later).
        let _ = std::fs::write("/proc/self/clear_refs", "5");
    }
}
