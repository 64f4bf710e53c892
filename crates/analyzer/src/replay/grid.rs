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
    /// Boundaries at `times` (sorted and de-duplicated here); None if fewer than two.
    pub fn from_times(mut times: Vec<u64>) -> Option<Self> {
        times.sort_unstable();
        times.dedup();
        (times.len() >= 2).then_some(Self { bounds: times })
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
