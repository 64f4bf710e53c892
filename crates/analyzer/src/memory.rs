//! Giving freed heap back to the system between the analysis' phases.

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
