//! Placing wall-clock times (OpenWhisk's epoch milliseconds) on the trace clock.
//!
//! The offset between CLOCK_REALTIME and CLOCK_MONOTONIC is read afresh for every batch, so an
//! NTP step during recording moves later placements with it; the trace's clock pairs (one a
//! second) let the analyzer redo the placement with the pair nearest each instant.

use pws_trace::records::{ActivationRecord, ContainerEvent};

use crate::clock;

#[derive(Debug, Clone, Copy)]
pub struct Placer {
    /// realtime − monotonic, in ns, at the last refresh.
    offset: i128,
}

impl Placer {
    pub fn now() -> Self {
        let p = clock::pair();
        Self {
            offset: i128::from(p.realtime_ns) - i128::from(p.monotonic_ns),
        }
    }

    /// Epoch ms → trace ns; 0 (unplaced) for 0 or an instant before the clock's origin.
    pub fn ns(&self, epoch_ms: u64) -> u64 {
        if epoch_ms == 0 {
            return 0;
        }
        let t = i128::from(epoch_ms) * 1_000_000 - self.offset;
        u64::try_from(t).unwrap_or(0)
    }

    pub fn activation(&self, a: &mut ActivationRecord) {
        a.start_ns = self.ns(a.start_epoch_ms);
        a.end_ns = self.ns(a.end_epoch_ms);
    }

    pub fn container_event(&self, epoch_ms: u64, e: &mut ContainerEvent) {
        e.ts_ns = self.ns(epoch_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_in_epoch_ms_lands_near_the_monotonic_now() {
        let p = Placer::now();
        let wall_ms = clock::pair().realtime_ns / 1_000_000;
        let placed = p.ns(wall_ms) as i128;
        let mono = clock::monotonic_ns() as i128;
        assert!((placed - mono).abs() < 5_000_000, "{placed} vs {mono}");
        assert_eq!(p.ns(0), 0);
        assert_eq!(p.ns(1), 0, "before boot: unplaced");
    }
}
