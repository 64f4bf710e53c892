//! Steal time: while the hypervisor runs something else on a vCPU, the trace's clock runs on
//! and the kernel's cpu.stat does not, so tests comparing the two allow for it.

/// Steal time of all CPUs so far (/proc/stat, USER_HZ ticks), and one tick, in ns.
pub fn steal_ns() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").expect("/proc/stat");
    let ticks: u64 = stat
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(8))
        .and_then(|v| v.parse().ok())
        .expect("steal in /proc/stat");
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    (ticks * 1_000_000_000 / hz, 1_000_000_000 / hz)
}

/// Online CPUs: steal is counted per CPU, its resolution too.
pub fn online_cpus() -> u64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as u64
}
