//! The intervals every table is cut into: boundaries on the trace clock, sorted.
//!
//! Where the trace has energy readings, their timestamps are the boundaries, so CPU time and
//! energy are compared over exactly the same spans; otherwise a fixed step.

/// Interval `i` is `[bounds[i], bounds[i + 1])`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grid {
    bounds: Vec<u64>,
}

impl Grid {
    /// One interval from this grid's start to its end: its span, without its boundaries (an
    /// hour at 10 ms is 360 k of them) once nothing reads them.
    pub fn outline(&self) -> Self {
        Self {
            bounds: vec![self.start(), self.end()],
        }
    }

    /// Boundaries at `times` (sorted and de-duplicated here); None if fewer than two.
    pub fn from_times(mut times: Vec<u64>) -> Option<Self> {
        times.sort_unstable();
        times.dedup();
        // Held for the whole analysis: without room to grow (an hour's readings grew it to
        // 4 MiB for 2.7 MiB of bounds).
        times.shrink_to_fit();
        (times.len() >= 2).then_some(Self { bounds: times })
    }

    /// Boundaries at energy reading times (sorted), readings closer than `step` to the last
    /// boundary merged into its interval. The last reading always ends the grid: the tail
    /// after the last boundary kept joins the last interval (then longer than `step`), so no
    /// CPU time or energy at the end of a recording falls outside every interval.
    pub fn from_readings(times: impl IntoIterator<Item = u64>, step: u64) -> Option<Self> {
        let mut kept: Vec<u64> = Vec::new();
        let mut last = None;
        for t in times {
            if kept.last().is_none_or(|&k| t >= k + step) {
                kept.push(t);
            }
            last = Some(t);
        }
        if let (Some(t), Some(&k)) = (last, kept.last()) {
            if t > k {
                if kept.len() >= 2 {
                    *kept.last_mut().expect("two or more") = t;
                } else {
                    kept.push(t);
                }
            }
        }
        Self::from_times(kept)
    }

    /// `[start, end)` cut every `step` ns (the last interval may be shorter).
    pub fn fixed(start: u64, end: u64, step: u64) -> Option<Self> {
        if end <= start || step == 0 {
            return None;
        }
        let mut bounds: Vec<u64> = (start..end).step_by(step as usize).collect();
        bounds.push(end);
        Some(Self { bounds })
    }

    pub fn len(&self) -> usize {
        self.bounds.len() - 1
    }

    pub fn start(&self) -> u64 {
        self.bounds[0]
    }

    pub fn end(&self) -> u64 {
        *self.bounds.last().expect("at least two bounds")
    }

    /// `[start, end)` of interval `i`.
    pub fn span(&self, i: usize) -> (u64, u64) {
        (self.bounds[i], self.bounds[i + 1])
    }

    /// The intervals' bounds: interval `i` is `[bounds[i], bounds[i + 1])`.
    pub fn bounds(&self) -> &[u64] {
        &self.bounds
    }

    /// Every interval's `[start, end)`, in order (twice the grid's memory: made when needed).
    pub fn spans(&self) -> Vec<(u64, u64)> {
        self.bounds.windows(2).map(|w| (w[0], w[1])).collect()
    }

    /// The interval holding `t`, if inside the grid.
    pub fn index(&self, t: u64) -> Option<usize> {
        if t < self.start() || t >= self.end() {
            return None;
        }
        Some(self.bounds.partition_point(|&b| b <= t) - 1)
    }

    /// Splits `[a, b)` at the grid's boundaries: (interval, overlap start, overlap end) for
    /// each interval it overlaps; the parts outside the grid are left out.
    pub fn split(&self, a: u64, b: u64, f: impl FnMut(usize, u64, u64)) {
        let mut hint = 0;
        self.split_from(&mut hint, a, b, f);
    }

    /// As [`Grid::split`], starting the search at `*hint` (an interval at or before `a`'s),
    /// and leaving there the last interval touched: spans that move forward in time, as a
    /// CPU's do, then find their interval in constant time.
    #[inline]
    pub fn split_from(&self, hint: &mut usize, a: u64, b: u64, mut f: impl FnMut(usize, u64, u64)) {
        let (a, b) = (a.max(self.start()), b.min(self.end()));
        if a >= b {
            return;
        }
        let mut i = if *hint < self.len() && self.bounds[*hint] <= a {
            let mut i = *hint;
            // A few steps forward, else a binary search over the rest.
            let mut steps = 0;
            while self.bounds[i + 1] <= a && steps < 8 {
                i += 1;
                steps += 1;
            }
            if self.bounds[i + 1] <= a {
                self.index(a).expect("inside")
            } else {
                i
            }
        } else {
            self.index(a).expect("inside")
        };
        let mut t = a;
        loop {
            let end = self.bounds[i + 1].min(b);
            f(i, t, end);
            t = end;
            if t >= b {
                break;
            }
            i += 1;
        }
        *hint = i;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_closer_than_the_step_are_merged_and_the_last_one_ends_the_grid() {
        // Readings every 10, a step of 25: boundaries 0, 30, 60, then the tail (70, 80) joins
        // the last interval, which ends at the last reading.
        let g = Grid::from_readings((0..=8).map(|i| i * 10), 25).unwrap();
        assert_eq!(g.bounds, vec![0, 30, 80]);
        assert_eq!(g.end(), 80);
        // Exactly on the step: nothing to merge.
        let g = Grid::from_readings((0..=4).map(|i| i * 10), 10).unwrap();
        assert_eq!(g.bounds, vec![0, 10, 20, 30, 40]);
        // Two readings closer than the step still make one interval.
        let g = Grid::from_readings([5, 9], 100).unwrap();
        assert_eq!(g.bounds, vec![5, 9]);
        // hwpc ticks: a reading just after a kept one is merged, the last one kept.
        let g = Grid::from_readings([0, 5, 1000, 2000, 2003], 10).unwrap();
        assert_eq!(g.bounds, vec![0, 1000, 2003]);
        assert!(Grid::from_readings([5], 100).is_none());
    }

    #[test]
    fn a_span_is_split_exactly_at_the_boundaries() {
        let g = Grid::from_times(vec![30, 10, 20, 20, 50]).unwrap();
        assert_eq!(g.len(), 3);
        assert_eq!(
            (g.index(9), g.index(10), g.index(29), g.index(50)),
            (None, Some(0), Some(1), None)
        );
        let mut parts = Vec::new();
        g.split(5, 35, |i, a, b| parts.push((i, a, b)));
        assert_eq!(parts, [(0, 10, 20), (1, 20, 30), (2, 30, 35)]);
        parts.clear();
        g.split(60, 70, |i, a, b| parts.push((i, a, b)));
        assert!(parts.is_empty());
        let f = Grid::fixed(0, 25, 10).unwrap();
        assert_eq!((f.len(), f.span(2)), (3, (20, 25)));
        assert!(Grid::fixed(5, 5, 1).is_none() && Grid::from_times(vec![1]).is_none());
    }
}
