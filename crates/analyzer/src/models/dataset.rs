//! What every model sees, for one package: per interval, the energy measured (or simulated)
//! and each cgroup's CPU time and counters. Models are compared on exactly this data.

use crate::replay::cpu::{Usage, IDLE, UNKNOWN};

/// One interval of one package.
#[derive(Debug, Clone, Default)]
pub struct Interval {
    pub start: u64,
    pub end: u64,
    /// NaN where the energy is missing (a reset, an unsound gap): not attributed.
    pub energy_j: f64,
    /// Fully measured: models are fitted and scored on these only (not on gap estimates).
    pub fitted: bool,
    /// Cgroup key and its usage in the interval (the idle task and unattributed time left out:
    /// they run no function, so they get no dynamic power).
    pub cgroups: Vec<(u64, Usage)>,
    /// Sum of `cgroups`.
    pub total: Usage,
}

impl Interval {
    pub fn secs(&self) -> f64 {
        (self.end - self.start) as f64 / 1e9
    }

    pub fn power_w(&self) -> f64 {
        self.energy_j / self.secs()
    }
}

#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// Names of the counter columns of every `Usage`.
    pub columns: Vec<String>,
    pub intervals: Vec<Interval>,
}

impl Dataset {
    /// Builds the intervals from (interval, cgroup) usage and per-interval energy: (joules,
    /// None where missing; fully measured).
    pub fn new(
        columns: Vec<String>,
        spans: &[(u64, u64)],
        energy: &[(Option<f64>, bool)],
        cells: Vec<(usize, u64, Usage)>,
    ) -> Self {
        let mut intervals: Vec<Interval> = spans
            .iter()
            .zip(energy)
            .map(|(&(start, end), &(e, fitted))| Interval {
                start,
                end,
                energy_j: e.unwrap_or(f64::NAN),
                fitted: fitted && e.is_some(),
                ..Interval::default()
            })
            .collect();
        let n = intervals.len();
        let kept = |i: usize, cg: u64| cg != IDLE && cg != UNKNOWN && i < n;
        // Each interval's room at once: grown by doubling, the cgroup lists of an hour kept a
        // third of their size unused through the attribution.
        let mut count = vec![0usize; intervals.len()];
        for &(i, cg, _) in &cells {
            if kept(i, cg) {
                count[i] += 1;
            }
        }
        for (iv, n) in intervals.iter_mut().zip(count) {
            iv.cgroups.reserve_exact(n);
        }
        for (i, cg, u) in cells {
            if !kept(i, cg) {
                continue;
            }
            intervals[i].total.add(&u);
            intervals[i].cgroups.push((cg, u));
        }
        for iv in &mut intervals {
            iv.cgroups.sort_by_key(|(cg, _)| *cg);
        }
        Self { columns, intervals }
    }

    /// Column index of a counter, by name.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// k contiguous blocks of intervals (time blocks, so held-out data is not interleaved with
    /// training data, whose neighbours would leak it).
    pub fn folds(&self, k: usize) -> Vec<std::ops::Range<usize>> {
        let n = self.intervals.len();
        let k = k.clamp(1, n.max(1));
        (0..k).map(|f| (f * n / k)..((f + 1) * n / k)).collect()
    }
}
