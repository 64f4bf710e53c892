//! Trace-clock instants as UTC, and byte counts as people read them.

use std::time::{Duration, UNIX_EPOCH};

use pws_trace::records::ClockPair;

/// Converts CLOCK_MONOTONIC instants to UTC with the trace's clock-sync pairs: each instant
/// uses the offset of the last pair taken at or before it (the first pair for earlier ones),
/// so NTP steps during a recording move only the instants after them.
#[derive(Debug, Clone, Default)]
pub struct ClockMap {
    pairs: Vec<ClockPair>,
}

impl ClockMap {
    pub fn new(mut pairs: Vec<ClockPair>) -> Self {
        pairs.sort_by_key(|p| p.monotonic_ns);
        Self { pairs }
    }

    /// Nanoseconds since the Unix epoch, or `None` without any pair.
    pub fn to_realtime_ns(&self, monotonic_ns: u64) -> Option<i128> {
        let i = self
            .pairs
            .partition_point(|p| p.monotonic_ns <= monotonic_ns);
        let p = self.pairs.get(i.saturating_sub(1))?;
        Some(i128::from(monotonic_ns) + i128::from(p.realtime_ns) - i128::from(p.monotonic_ns))
    }

    /// The inverse: a realtime instant (ns since the Unix epoch, as NVML's timestamps are) on
    /// the trace clock, with the offset of the last pair taken at or before it; `None` without
    /// any pair or before the trace clock's zero.
    pub fn to_monotonic_ns(&self, realtime_ns: i128) -> Option<u64> {
        let i = self
            .pairs
            .partition_point(|p| i128::from(p.realtime_ns) <= realtime_ns);
        let p = self.pairs.get(i.saturating_sub(1))?;
        u64::try_from(realtime_ns - i128::from(p.realtime_ns) + i128::from(p.monotonic_ns)).ok()
    }

    /// RFC 3339 UTC with nanoseconds, or `None` without any pair or before the epoch.
    pub fn to_rfc3339(&self, monotonic_ns: u64) -> Option<String> {
        let ns = u64::try_from(self.to_realtime_ns(monotonic_ns)?).ok()?;
        Some(humantime::format_rfc3339_nanos(UNIX_EPOCH + Duration::from_nanos(ns)).to_string())
    }
}

/// Byte counts as people read them ("1.50 KiB").
pub fn bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_use_the_last_pair_before_them() {
        let m = ClockMap::new(vec![
            ClockPair {
                monotonic_ns: 100,
                realtime_ns: 1_000,
                uncertainty_ns: 0,
            },
            ClockPair {
                monotonic_ns: 200,
                realtime_ns: 1_150,
                uncertainty_ns: 0,
            }, // NTP stepped +50
        ]);
        assert_eq!(m.to_realtime_ns(50), Some(950));
        assert_eq!(m.to_monotonic_ns(950), Some(50));
        assert_eq!(m.to_monotonic_ns(1_100), Some(200));
        assert_eq!(m.to_monotonic_ns(1_250), Some(300));
        assert_eq!(ClockMap::default().to_monotonic_ns(5), None);
        assert_eq!(m.to_realtime_ns(150), Some(1_050));
        assert_eq!(m.to_realtime_ns(250), Some(1_200));
        assert_eq!(ClockMap::default().to_realtime_ns(1), None);
    }

    #[test]
    fn rfc3339_has_nanoseconds() {
        let m = ClockMap::new(vec![ClockPair {
            monotonic_ns: 0,
            realtime_ns: 1_764_000_000_123_456_789,
            uncertainty_ns: 0,
        }]);
        assert_eq!(m.to_rfc3339(0).unwrap(), "2025-11-24T16:00:00.123456789Z");
    }

    #[test]
    fn byte_counts() {
        assert_eq!(bytes(12), "12 B");
        assert_eq!(bytes(1536), "1.50 KiB");
        assert_eq!(bytes(3 << 30), "3.00 GiB");
    }
}
