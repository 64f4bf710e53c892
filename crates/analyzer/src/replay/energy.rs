//! Raw energy readings → joules per interval of the grid, per counter (domain and package).
//!
//! Between two readings the counter's increase is converted with its unit and unwrapped with
//! its range (powercap's `max_energy_range_uj`, 2^32 for MSRs), and spread over the grid's
//! intervals in proportion to their overlap (power is taken as constant between readings).
//!
//! Energy gaps are missing data, never 0 J:
//! - a pause between readings much longer than usual (a missed read, a stalled thread) whose
//!   counter delta is still sound — the counter has no wrap, or too little time passed for it
//!   to wrap more than once at the highest power seen — keeps its delta, spread by time as an
//!   *estimate* (status `estimated`);
//! - a reading that goes backwards on a counter without a known range (a reset), a long pause
//!   the counter may have wrapped across, or a counter with no usable unit, leaves its span
//!   *missing*.
//!
//! Each interval says which: `measured` (covered by ordinary readings), `estimated` (some of it
//! from a gap's estimate), `missing` (some of it unknown, or not covered at all). Models are
//! fitted and scored on measured intervals only; estimated ones are attributed (flagged);
//! missing ones are neither.

use pws_trace::records::{EnergyDomain, EnergySeries, EnergySource};

use super::grid::Grid;

/// A pause between readings longer than this many times the median interval is a gap.
const GAP_FACTOR: u64 = 20;

/// What is known of one interval's energy.
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

/// One counter's energy over the grid.
#[derive(Debug, Clone)]
pub struct Energy {
    pub source: EnergySource,
    pub domain: EnergyDomain,
    pub package: u32,
    pub name: String,
    /// Joules per grid interval (0 where missing: read `status`).
    pub joules: Vec<f64>,
    pub status: Vec<Status>,
    pub gaps: Vec<Gap>,
}

impl Energy {
    pub fn is_measured(&self) -> bool {
        self.source.is_measured()
    }

    /// Joules over the intervals whose energy is known (measured or estimated).
    pub fn total_j(&self) -> f64 {
        self.joules
            .iter()
            .zip(&self.status)
            .filter(|(_, s)| **s != Status::Missing)
            .map(|(j, _)| j)
            .sum()
    }

    /// The interval's joules, None where missing.
    pub fn known(&self, i: usize) -> Option<f64> {
        (self.status[i] != Status::Missing).then_some(self.joules[i])
    }
}

/// The readings' timestamps, to build the grid on (one series suffices: one thread reads every
/// counter at once).
pub fn reading_times(series: &[EnergySeries]) -> Vec<u64> {
    series
        .iter()
        .max_by_key(|s| s.samples.len())
        .map(|s| s.samples.iter().map(|x| x.ts_ns).collect())
        .unwrap_or_default()
}

pub fn on_grid(series: &[EnergySeries], grid: &Grid) -> Vec<Energy> {
    series.iter().map(|s| one(s, grid)).collect()
}

fn one(s: &EnergySeries, grid: &Grid) -> Energy {
    let n = grid.len();
    let mut joules = vec![0.0; n];
    let (mut measured_ns, mut estimated_ns, mut missing_ns) =
        (vec![0u64; n], vec![0u64; n], vec![0u64; n]);
    let mut gaps = Vec::new();
    let mut samples = s.samples.clone();
    samples.sort_by_key(|x| x.ts_ns);
    let mut steps: Vec<u64> = samples
        .windows(2)
        .map(|w| w[1].ts_ns - w[0].ts_ns)
        .filter(|&d| d > 0)
        .collect();
    steps.sort_unstable();
    let median = steps.get(steps.len() / 2).copied().unwrap_or(0);
    let unit_ok = s.unit_joules.is_finite() && s.unit_joules > 0.0;
    let long = |a: u64, b: u64| median > 0 && b - a > GAP_FACTOR * median;
    // The highest power of ordinary steps bounds how far a counter can move in a gap.
    let max_w = samples
        .windows(2)
        .filter(|w| w[1].ts_ns > w[0].ts_ns && !long(w[0].ts_ns, w[1].ts_ns))
        .filter(|w| s.wrap != 0 || w[1].raw >= w[0].raw)
        .map(|w| {
            EnergySeries::raw_delta(s.wrap, w[0].raw, w[1].raw) as f64 * s.unit_joules
                / ((w[1].ts_ns - w[0].ts_ns) as f64 / 1e9)
        })
        .fold(0f64, f64::max);
    for w in samples.windows(2) {
        let (a, b) = (w[0], w[1]);
        if b.ts_ns <= a.ts_ns {
            continue;
        }
        let backwards = b.raw < a.raw && s.wrap == 0;
        let is_long = long(a.ts_ns, b.ts_ns);
        // Across a long pause a wrapping counter could have gone round more than once, unless
        // even the highest power seen could not reach its range in that time.
        let range_j = s.wrap as f64 * s.unit_joules;
        let sound = s.wrap == 0
            || (max_w > 0.0 && max_w * 2.0 * (b.ts_ns - a.ts_ns) as f64 / 1e9 < range_j);
        let kind = if !unit_ok || backwards || (is_long && !sound) {
            gaps.push(Gap {
                from: a.ts_ns,
                to: b.ts_ns,
                estimated: false,
            });
            Status::Missing
        } else if is_long {
            gaps.push(Gap {
                from: a.ts_ns,
                to: b.ts_ns,
                estimated: true,
            });
            Status::Estimated
        } else {
            Status::Measured
        };
        let delta = if kind == Status::Missing {
            0.0
        } else {
            EnergySeries::raw_delta(s.wrap, a.raw, b.raw) as f64 * s.unit_joules
        };
        let span = (b.ts_ns - a.ts_ns) as f64;
        let covered = match kind {
            Status::Measured => &mut measured_ns,
            Status::Estimated => &mut estimated_ns,
            Status::Missing => &mut missing_ns,
        };
        grid.split(a.ts_ns, b.ts_ns, |i, x, y| {
            joules[i] += delta * (y - x) as f64 / span;
            covered[i] += y - x;
        });
    }
    let status = (0..n)
        .map(|i| {
            let (x, y) = grid.span(i);
            let len = y - x;
            if missing_ns[i] > 0 || measured_ns[i] + estimated_ns[i] < len {
                Status::Missing
            } else if estimated_ns[i] > 0 {
                Status::Estimated
            } else {
                Status::Measured
            }
        })
        .collect();
    Energy {
        source: s.source,
        domain: s.domain,
        package: s.index,
        name: s.name.clone(),
        joules,
        status,
        gaps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pws_trace::records::EnergySample;

    fn series(wrap: u64, pts: &[(u64, u64)]) -> EnergySeries {
        EnergySeries {
            source: EnergySource::Powercap,
            domain: EnergyDomain::Package,
            index: 0,
            name: "intel-rapl:0".into(),
            unit_joules: 1e-6,
            wrap,
            samples: pts
                .iter()
                .map(|&(ts_ns, raw)| EnergySample { ts_ns, raw })
                .collect(),
        }
    }

    #[test]
    fn readings_are_converted_unwrapped_and_spread_over_the_grid() {
        // 10 µJ every 10 ns, wrapping at 25 µJ.
        let s = series(25, &[(0, 0), (10, 10), (20, 20), (30, 5), (40, 15)]);
        let g = Grid::from_times(vec![0, 10, 20, 30, 40]).unwrap();
        let e = one(&s, &g);
        assert_eq!(e.joules.len(), 4);
        for j in &e.joules {
            assert!((j - 10e-6).abs() < 1e-15, "{:?}", e.joules);
        }
        // A coarser grid gets the same total, split by overlap.
        let g2 = Grid::from_times(vec![0, 15, 40]).unwrap();
        let e2 = one(&s, &g2);
        assert!((e2.joules[0] - 15e-6).abs() < 1e-15 && (e2.joules[1] - 25e-6).abs() < 1e-15);
        assert!(e.gaps.is_empty());
    }

    #[test]
    fn resets_and_long_pauses_are_gaps_not_energy() {
        let s = series(0, &[(0, 100), (10, 110), (20, 50), (30, 60), (1000, 70)]);
        let g = Grid::fixed(0, 1000, 10).unwrap();
        let e = one(&s, &g);
        let spans: Vec<(u64, u64, bool)> =
            e.gaps.iter().map(|g| (g.from, g.to, g.estimated)).collect();
        assert_eq!(spans, [(10, 20, false), (30, 1000, true)]);
        // The reset's interval is missing, not 0 J; the long pause keeps its 10 µJ, spread
        // over its 97 intervals as an estimate.
        assert_eq!(e.status[1], Status::Missing);
        assert_eq!(e.known(1), None);
        assert_eq!(
            (e.status[0], e.status[2], e.status[50]),
            (Status::Measured, Status::Measured, Status::Estimated)
        );
        assert!((e.total_j() - 30e-6).abs() < 1e-15, "{}", e.total_j());
        assert!((e.joules[50] - 10e-6 / 97.0).abs() < 1e-15);
        // A wrapping counter whose pause is long enough to wrap more than once at the highest
        // power seen: the pause is missing.
        let w = series(25, &[(0, 0), (10, 10), (20, 20), (1000, 5)]);
        let e = one(&w, &g);
        assert!(!e.gaps[0].estimated);
        assert_eq!(e.status[50], Status::Missing);
    }
}
