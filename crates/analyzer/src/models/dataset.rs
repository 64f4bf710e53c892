//! What every model sees, for one package: per interval, the energy measured (or simulated)
//! and each cgroup's CPU time and counters. Models are compared on exactly this data.

use std::rc::Rc;

use super::spilled_intervals::SpilledIntervals;
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

/// The intervals, on disk: an hour of a busy node is millions of (interval, cgroup) cells,
/// ~70 MB held through every model's fits and attribution, so they are read back as the models
/// ask (`spilled_intervals`).
#[derive(Debug)]
pub struct Dataset {
    /// Names of the counter columns of every `Usage`.
    pub columns: Vec<String>,
    intervals: SpilledIntervals,
}

impl Dataset {
    /// Builds the intervals from (interval, cgroup) usage and per-interval energy: (joules,
    /// None where missing; fully measured), and spills them (`spilled_intervals`). `cells`
    /// come by interval (as a package's cells are kept, `replay::package_cells`), each
    /// interval's in the order its total adds them; an error among them is the dataset's.
    pub fn new(
        columns: Vec<String>,
        spans: &[(u64, u64)],
        energy: &[(Option<f64>, bool)],
        cells: impl IntoIterator<Item = anyhow::Result<(usize, u64, Usage)>>,
    ) -> anyhow::Result<Self> {
        let n = spans.len().min(energy.len());
        let mut cells = cells
            .into_iter()
            .filter(|c| !matches!(c, Ok((i, cg, _)) if *cg == IDLE || *cg == UNKNOWN || *i >= n))
            .peekable();
        let mut out = SpilledIntervals::writer()?;
        let mut iv = Interval::default();
        for (i, (&(start, end), &(e, fitted))) in spans.iter().zip(energy).enumerate() {
            iv.start = start;
            iv.end = end;
            iv.energy_j = e.unwrap_or(f64::NAN);
            iv.fitted = fitted && e.is_some();
            iv.total = Usage::default();
            iv.cgroups.clear();
            while let Some(c) = cells.next_if(|c| c.as_ref().map_or(true, |c| c.0 <= i)) {
                let (at, cg, u) = c?;
                anyhow::ensure!(
                    at == i,
                    "a dataset's cells are out of interval order: interval {at} after {i}"
                );
                iv.total.add(&u);
                iv.cgroups.push((cg, u));
            }
            iv.cgroups.sort_by_key(|(cg, _)| *cg);
            out.push(&iv)?;
        }
        Ok(Self {
            columns,
            intervals: out.finish()?,
        })
    }

    /// As [`Dataset::new`], from cells in any order: each interval's are taken in the order
    /// given.
    pub fn from_unsorted(
        columns: Vec<String>,
        spans: &[(u64, u64)],
        energy: &[(Option<f64>, bool)],
        mut cells: Vec<(usize, u64, Usage)>,
    ) -> anyhow::Result<Self> {
        if !cells.is_sorted_by_key(|c| c.0) {
            cells.sort_by_key(|c| c.0);
        }
        Self::new(columns, spans, energy, cells.into_iter().map(Ok))
    }

    /// A dataset of intervals made by hand (tests).
    #[cfg(test)]
    pub fn of_intervals(columns: Vec<String>, intervals: Vec<Interval>) -> Self {
        let mut out = SpilledIntervals::writer().expect("a spill file");
        for iv in &intervals {
            out.push(iv).expect("spilled");
        }
        Self {
            columns,
            intervals: out.finish().expect("spilled"),
        }
    }

    /// This dataset with its intervals changed by `f` (tests alter the datasets they make).
    #[cfg(test)]
    pub fn altered(&self, f: impl FnOnce(&mut [Interval])) -> Self {
        let mut all: Vec<Interval> = self.iter().map(|iv| (*iv).clone()).collect();
        f(&mut all);
        Self::of_intervals(self.columns.clone(), all)
    }

    pub fn len(&self) -> usize {
        self.intervals.len()
    }

    /// Interval `i` (< `len()`).
    pub fn interval(&self, i: usize) -> Rc<Interval> {
        self.intervals.get(i)
    }

    /// Interval `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<Rc<Interval>> {
        (i < self.len()).then(|| self.interval(i))
    }

    pub fn first(&self) -> Option<Rc<Interval>> {
        self.get(0)
    }

    pub fn last(&self) -> Option<Rc<Interval>> {
        self.len().checked_sub(1).map(|i| self.interval(i))
    }

    /// The intervals in order.
    pub fn iter(&self) -> impl Iterator<Item = Rc<Interval>> + '_ {
        (0..self.len()).map(|i| self.interval(i))
    }

    /// Intervals `range`, in order.
    pub fn range(&self, range: std::ops::Range<usize>) -> impl Iterator<Item = Rc<Interval>> + '_ {
        range.map(|i| self.interval(i))
    }

    /// Whether every interval read so far was read whole: a pass is to be trusted only then
    /// (an interval that could not be read stands as one with no energy and no usage).
    pub fn check(&self) -> anyhow::Result<()> {
        self.intervals.check()
    }

    /// Column index of a counter, by name.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// k contiguous blocks of intervals (time blocks, so held-out data is not interleaved with
    /// training data, whose neighbours would leak it).
    pub fn folds(&self, k: usize) -> Vec<std::ops::Range<usize>> {
        let n = self.len();
        let k = k.clamp(1, n.max(1));
        (0..k).map(|f| (f * n / k)..((f + 1) * n / k)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(ns: u64, c: f64) -> Usage {
        Usage::one(ns, c)
    }

    const SPANS: [(u64, u64); 3] = [(0, 10), (10, 20), (20, 30)];
    const ENERGY: [(Option<f64>, bool); 3] = [(Some(1.0), true), (None, true), (Some(3.0), false)];

    /// Each interval's cells, sorted by cgroup, their total added in the order given; the
    /// idle task, unknown time and cells past the grid left out; energy and fit flags kept.
    #[test]
    fn intervals_gather_their_cells_and_leave_out_idle_and_unknown() {
        let cells = vec![
            (0, 9, u(1, 0.1)),
            (0, IDLE, u(100, 1.0)),
            (0, 3, u(2, 0.2)),
            (2, UNKNOWN, u(100, 1.0)),
            (2, 5, u(4, 0.7)),
            (7, 5, u(100, 1.0)),
        ];
        let d = Dataset::new(vec!["c".into()], &SPANS, &ENERGY, cells.into_iter().map(Ok)).unwrap();
        assert_eq!(d.len(), 3);
        let iv = d.interval(0);
        assert_eq!(iv.cgroups, [(3, u(2, 0.2)), (9, u(1, 0.1))]);
        let mut total = Usage::default();
        total.add(&u(1, 0.1));
        total.add(&u(2, 0.2));
        assert_eq!(iv.total, total, "added in the order given");
        assert!(iv.fitted && iv.energy_j == 1.0);
        let iv = d.interval(1);
        assert!(iv.cgroups.is_empty() && iv.energy_j.is_nan() && !iv.fitted);
        assert_eq!(d.interval(2).cgroups, [(5, u(4, 0.7))]);
        assert!(!d.interval(2).fitted);
        d.check().unwrap();
        // Unsorted, the same.
        let shuffled = vec![(2, 5, u(4, 0.7)), (0, 9, u(1, 0.1)), (0, 3, u(2, 0.2))];
        let e = Dataset::from_unsorted(vec![], &SPANS, &ENERGY, shuffled).unwrap();
        assert_eq!(e.interval(0).total, total);
        assert_eq!(e.interval(2).cgroups, [(5, u(4, 0.7))]);
    }

    #[test]
    fn cells_out_of_order_or_unreadable_are_errors() {
        let late = vec![(2, 5, u(1, 0.0)), (0, 5, u(1, 0.0))];
        let e = Dataset::new(vec![], &SPANS, &ENERGY, late.into_iter().map(Ok)).unwrap_err();
        assert!(e.to_string().contains("out of interval order"), "{e}");
        let broken = vec![Ok((0, 5, u(1, 0.0))), Err(anyhow::anyhow!("disk gone"))];
        let e = Dataset::new(vec![], &SPANS, &ENERGY, broken).unwrap_err();
        assert_eq!(e.to_string(), "disk gone");
    }
}
