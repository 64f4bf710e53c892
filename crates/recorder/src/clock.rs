//! The trace clock (CLOCK_MONOTONIC, which perf's `use_clockid` also uses) and its pairing
//! with CLOCK_REALTIME.

use pws_trace::records::ClockPair;

fn read(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; both clocks exist on every Linux.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    debug_assert_eq!(rc, 0);
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// Now, on the trace clock.
pub fn monotonic_ns() -> u64 {
    read(libc::CLOCK_MONOTONIC)
}

/// A realtime read bracketed by two monotonic reads; the pair is placed at their midpoint.
/// Taking the best of a few tries keeps a preemption between the reads out of the pair.
pub fn pair() -> ClockPair {
    (0..3)
        .map(|_| {
            let a = monotonic_ns();
            let r = read(libc::CLOCK_REALTIME);
            let b = monotonic_ns();
            ClockPair {
                monotonic_ns: a + (b - a) / 2,
                realtime_ns: r,
                uncertainty_ns: ((b - a) / 2).min(u64::from(u32::MAX)) as u32,
            }
        })
        .min_by_key(|p| p.uncertainty_ns)
        .expect("three tries")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_tight_and_monotonic_advances() {
        let p = pair();
        assert!(p.uncertainty_ns < 1_000_000, "{p:?}");
        assert!(p.realtime_ns > 1_600_000_000_000_000_000);
        assert!(monotonic_ns() >= p.monotonic_ns);
    }
}
