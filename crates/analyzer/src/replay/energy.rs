//! Raw energy readings → joules per interval of the grid, per counter (domain and package).
//!
//! Between two readings the counter's increase is converted with its unit and unwrapped with
//! its range (powercap's `max_energy_range_uj`, 2^32 for MSRs), and spread over the grid's
//! intervals in proportion to their overlap (power is taken as constant between readings).
//!
//! Energy gaps are missing data, never 0 J: each step between readings is classified by
//! `energy_gaps` (measured, estimated, missing), and so is each interval.

use pws_trace::records::{EnergyDomain, EnergySeries, EnergySource};

use super::energy_gaps::{GapRule, Status};
use super::grid::Grid;

pub use super::energy_gaps::Gap;

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

    /// The raw series this counter was made from, among `all` (the input's).
    pub fn series<'s>(&self, all: &'s [EnergySeries]) -> Option<&'s EnergySeries> {
        all.iter().find(|s| {
            s.domain == self.domain
                && s.index == self.package
                && s.name == self.name
                && s.source == self.source
        })
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

/// One counter's readings over `grid`.
pub fn one(s: &EnergySeries, grid: &Grid) -> Energy {
    let n = grid.len();
    let mut joules = vec![0.0; n];
    let (mut measured_ns, mut estimated_ns, mut missing_ns) =
        (vec![0u64; n], vec![0u64; n], vec![0u64; n]);
    let mut gaps = Vec::new();
    let mut samples = s.samples.clone();
    samples.sort_by_key(|x| x.ts_ns);
    let rule = GapRule::new(s, &samples);
    for w in samples.windows(2) {
        let (a, b) = (w[0], w[1]);
        if b.ts_ns <= a.ts_ns {
            continue;
        }
        let kind = rule.classify(a, b);
        if kind != Status::Measured {
            gaps.push(Gap {
                from: a.ts_ns,
                to: b.ts_ns,
                estimated: kind == Status::Estimated,
            });
        }
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
