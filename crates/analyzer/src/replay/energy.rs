//! Raw energy readings → joules per interval of the grid, per counter (domain and package).
//!
//! Between two readings the counter's increase is converted with its unit and unwrapped with
//! its range (powercap's `max_energy_range_uj`, 2^32 for MSRs), and spread over the grid's
//! intervals in proportion to their overlap (power is taken as constant between readings).
//! A reading that goes backwards on a counter without a known range, or a pause between
//! readings much longer than usual, is a gap: reported, and its energy left out.

use pws_trace::records::{EnergyDomain, EnergySeries, EnergySource};

use super::grid::Grid;

/// A pause between readings longer than this many times the median interval is a gap.
const GAP_FACTOR: u64 = 20;

/// One counter's energy over the grid.
#[derive(Debug, Clone)]
pub struct Energy {
    pub source: EnergySource,
    pub domain: EnergyDomain,
    pub package: u32,
    pub name: String,
    /// Joules per grid interval.
    pub joules: Vec<f64>,
    /// Time each interval is covered by readings (ns): less than the interval at the edges of
    /// the recording and in gaps.
    pub covered_ns: Vec<u64>,
    /// Gaps: (from, to) on the trace clock.
    pub gaps: Vec<(u64, u64)>,
}

impl Energy {
    pub fn is_measured(&self) -> bool {
        self.source.is_measured()
    }

    pub fn total_j(&self) -> f64 {
        self.joules.iter().sum()
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
    let mut e = Energy {
        source: s.source,
        domain: s.domain,
        package: s.index,
        name: s.name.clone(),
        joules: vec![0.0; n],
        covered_ns: vec![0; n],
        gaps: Vec::new(),
    };
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
    for w in samples.windows(2) {
        let (a, b) = (w[0], w[1]);
        if b.ts_ns <= a.ts_ns {
            continue;
        }
        let backwards = b.raw < a.raw && s.wrap == 0;
        let long = median > 0 && b.ts_ns - a.ts_ns > GAP_FACTOR * median;
        if backwards || long || !unit_ok {
            e.gaps.push((a.ts_ns, b.ts_ns));
            continue;
        }
        let joules = EnergySeries::raw_delta(s.wrap, a.raw, b.raw) as f64 * s.unit_joules;
        let span = (b.ts_ns - a.ts_ns) as f64;
        grid.split(a.ts_ns, b.ts_ns, |i, x, y| {
            e.joules[i] += joules * (y - x) as f64 / span;
            e.covered_ns[i] += y - x;
        });
    }
    e
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
        assert_eq!(e.gaps, [(10, 20), (30, 1000)]);
        assert!((e.total_j() - 20e-6).abs() < 1e-15);
    }
}
