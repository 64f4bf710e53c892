//! The one protocol every model is scored by: blocked k-fold cross-validation with a gap.
//!
//! The run is cut into `folds` contiguous time blocks; each block is held out in turn and the
//! model fitted on the measured intervals outside it *and outside `gap` of it* on both sides.
//! Power and usage are autocorrelated (a function runs for tens of milliseconds, DVFS holds a
//! frequency for hundreds): an interval next to a held-out one nearly repeats it, so training
//! on it would leak the held-out data into the fit and flatter the models that can use it most
//! (a local fit, a coefficient per function). A model is never scored on an interval it was
//! fitted on, nor on one within `gap` of one.

use std::ops::Range;
use std::time::Duration;

use super::dataset::Dataset;

/// Default gap, `--cv-gap`: longer than a typical activation (≤ 60 ms in the synthetic
/// functions, a few hundred ms for most FaaS functions) and than a DVFS step (200-1500 ms).
pub const DEFAULT_GAP: &str = "1s";

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Protocol {
    /// Contiguous time blocks (`--folds`).
    pub folds: usize,
    /// Time left out of the training set on each side of the held-out block (`--cv-gap`).
    pub gap: Duration,
}

impl Protocol {
    /// Its name in `model_eval`: `blocked-5-fold-gap-1s`.
    pub fn name(&self) -> String {
        let gap = humantime::format_duration(self.gap).to_string();
        format!("blocked-{}-fold-gap-{}", self.folds, gap.replace(' ', ""))
    }

    /// The held-out blocks, as interval ranges.
    pub fn blocks(&self, ds: &Dataset) -> Vec<Range<usize>> {
        ds.folds(self.folds)
    }

    /// The training set when `held` is held out: measured intervals (gap estimates and missing
    /// energy are not data to fit) that neither are in `held` nor come within the gap of it.
    pub fn train(&self, ds: &Dataset, held: &Range<usize>) -> Vec<usize> {
        let gap = u64::try_from(self.gap.as_nanos()).unwrap_or(u64::MAX);
        let (Some(first), Some(last)) = (
            ds.get(held.start),
            held.end.checked_sub(1).and_then(|i| ds.get(i)),
        ) else {
            return (0..ds.len()).filter(|&i| ds.interval(i).fitted).collect();
        };
        let (lo, hi) = (
            first.start.saturating_sub(gap),
            last.end.saturating_add(gap),
        );
        (0..ds.len())
            .filter(|&i| {
                let iv = &*ds.interval(i);
                iv.fitted && !held.contains(&i) && (iv.end <= lo || iv.start >= hi)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::dataset::Interval;

    #[test]
    fn the_gap_keeps_neighbours_of_the_held_out_block_out_of_training() {
        // 100 intervals of 100 ms; block 2 of 5 is intervals 40..60 (4 s to 6 s).
        let ds = Dataset::of_intervals(
            vec![],
            (0..100u64)
                .map(|i| Interval {
                    start: i * 100_000_000,
                    end: (i + 1) * 100_000_000,
                    energy_j: 1.0,
                    fitted: i != 3,
                    ..Interval::default()
                })
                .collect(),
        );
        let p = Protocol {
            folds: 5,
            gap: Duration::from_millis(500),
        };
        assert_eq!(p.name(), "blocked-5-fold-gap-500ms");
        let blocks = p.blocks(&ds);
        assert_eq!(blocks[2], 40..60);
        let train = p.train(&ds, &blocks[2]);
        // 3.5 s .. 6.5 s left out: intervals 35..65; interval 3 is not measured.
        let want: Vec<usize> = (0..35).chain(65..100).filter(|&i| i != 3).collect();
        assert_eq!(train, want);
        let none = Protocol {
            folds: 5,
            gap: Duration::ZERO,
        };
        assert_eq!(none.name(), "blocked-5-fold-gap-0s");
        assert_eq!(none.train(&ds, &blocks[0]).first(), Some(&20));
        assert_eq!(none.train(&ds, &blocks[0]).len(), 80);
    }
}
