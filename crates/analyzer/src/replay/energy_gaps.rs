//! Energy gaps: where a counter's readings say nothing sure, which is missing data, never a
//! 0 J measurement.
//!
//! - A pause between readings longer than [`GAP_FACTOR`] × the median step (a missed read, a
//!   stalled thread) whose counter delta is still sound — the counter has no wrap range, or too
//!   little time passed for it to wrap more than once at twice the highest power seen — keeps
//!   its delta, spread by time as an *estimate*.
//! - A reading that goes backwards on a counter without a range (a reset), a long pause the
//!   counter may have wrapped across, or a counter with no usable unit: the step is *missing*.
//!
//! Each interval then says which: `measured` (covered by ordinary readings), `estimated` (some
//! of it from a gap's estimate), `missing` (some of it unknown, or not covered at all). Models
//! are fitted and scored on measured intervals only; estimated ones are attributed (flagged);
//! missing ones are neither.

use pws_trace::records::{EnergySample, EnergySeries};

/// A pause between readings longer than this many times the median step is a gap.
pub const GAP_FACTOR: u64 = 20;

/// What is known of one step's, or one interval's, energy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Measured,
    Estimated,
    Missing,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Measured => "measured",
            Status::Estimated => "estimated",
            Status::Missing => "missing",
        }
    }
}

/// A gap in one counter's readings: (from, to) on the trace clock, and whether its delta was
/// kept as an estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    pub from: u64,
    pub to: u64,
    pub estimated: bool,
}

/// How one counter's steps are classified.
#[derive(Debug, Clone, Copy)]
pub struct GapRule {
    median_ns: u64,
    /// The highest power of ordinary steps: it bounds how far the counter can move in a gap.
    max_w: f64,
    wrap: u64,
    unit_joules: f64,
}

impl GapRule {
    /// From the counter's readings, sorted by time.
    pub fn new(s: &EnergySeries, samples: &[EnergySample]) -> Self {
        let mut steps: Vec<u64> = samples
            .windows(2)
            .map(|w| w[1].ts_ns - w[0].ts_ns)
            .filter(|&d| d > 0)
            .collect();
        steps.sort_unstable();
        let mut rule = Self {
            median_ns: steps.get(steps.len() / 2).copied().unwrap_or(0),
            max_w: 0.0,
            wrap: s.wrap,
            unit_joules: s.unit_joules,
        };
        rule.max_w = samples
            .windows(2)
            .filter(|w| w[1].ts_ns > w[0].ts_ns && !rule.long(w[0].ts_ns, w[1].ts_ns))
            .filter(|w| s.wrap != 0 || w[1].raw >= w[0].raw)
            .map(|w| {
                EnergySeries::raw_delta(s.wrap, w[0].raw, w[1].raw) as f64 * s.unit_joules
                    / ((w[1].ts_ns - w[0].ts_ns) as f64 / 1e9)
            })
            .fold(0f64, f64::max);
        rule
    }

    fn long(&self, a: u64, b: u64) -> bool {
        self.median_ns > 0 && b - a > GAP_FACTOR * self.median_ns
    }

    /// The step between readings `a` and `b` (`b` later).
    pub fn classify(&self, a: EnergySample, b: EnergySample) -> Status {
        let unit_ok = self.unit_joules.is_finite() && self.unit_joules > 0.0;
        let backwards = b.raw < a.raw && self.wrap == 0;
        let long = self.long(a.ts_ns, b.ts_ns);
        // Across a long pause a wrapping counter could have gone round more than once, unless
        // even twice the highest power seen could not reach its range in that time.
        let range_j = self.wrap as f64 * self.unit_joules;
        let sound = self.wrap == 0
            || (self.max_w > 0.0 && self.max_w * 2.0 * (b.ts_ns - a.ts_ns) as f64 / 1e9 < range_j);
        if !unit_ok || backwards || (long && !sound) {
            Status::Missing
        } else if long {
            Status::Estimated
        } else {
            Status::Measured
        }
    }
}
