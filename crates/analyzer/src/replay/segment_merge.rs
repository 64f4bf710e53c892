//! Summing the CPUs' activation-window segments per package as the accounting gives them,
//! round by round, as `package_merge` does for the (interval, cgroup) cells.
//!
//! Each CPU hands over its final segments (steal and IRQ time taken out) with the interval
//! before which it has handed over all of them (its horizon). A segment lies in one interval,
//! so an interval's segments are summed once every CPU's horizon has passed it, each adding its
//! CPUs in stream order: the sums are those of gathering every CPU's segments at the end
//! ([`SegmentUsage::gather`]), bit for bit, without holding every CPU's list of
//! them and then their sorted copy (on an hour of a busy node those were the join's peak).

use super::cpu::Usage;
use super::package_merge::Streams;

/// A CPU's segment: (segment, interval) and its usage, as the walk gives it.
pub type Segment = ((usize, usize), Usage);

/// The merge of every CPU stream's segments into per-(segment, package) sums.
#[derive(Debug, Default)]
pub struct SegmentMerge {
    /// The streams' segments not yet summed, keyed (interval, segment).
    streams: Streams,
    /// ((segment, package), usage), in the order summed: sorted at the end.
    out: Vec<((usize, u32), Usage)>,
    /// Scratch for one package's sums of a round.
    summed: Vec<(usize, u64, Usage)>,
}

impl SegmentMerge {
    /// One stream per entry of `packages` (a CPU stream's package), in the order the sums add
    /// them; `expected` segments in all, about (room for them is made once).
    pub fn new(packages: impl IntoIterator<Item = u32>, expected: usize) -> Self {
        Self {
            streams: Streams::new(packages),
            out: Vec::with_capacity(expected),
            summed: Vec::new(),
        }
    }

    /// Stream `n`'s next segments (in any order), and the interval before which it has now
    /// given all of its segments.
    pub fn push(&mut self, n: usize, segments: Vec<Segment>, horizon: usize) {
        let mut keyed: Vec<((usize, u64), Usage)> = segments
            .into_iter()
            .map(|((seg, i), u)| ((i, seg as u64), u))
            .collect();
        keyed.sort_unstable_by_key(|(k, _)| *k);
        self.streams.push(n, keyed, horizon);
    }

    /// Sums the segments of every interval that all streams have passed.
    pub fn advance(&mut self) {
        let Some(horizon) = self.streams.horizon() else {
            return;
        };
        for pkg in self.streams.packages.clone() {
            self.streams.sum_before(pkg, horizon, &mut self.summed);
            self.out.extend(
                self.summed
                    .drain(..)
                    .map(|(_, seg, u)| ((seg as usize, pkg), u)),
            );
        }
    }

    /// Every stream done: sums what is left and returns the segments' usage by (segment,
    /// package), sorted, one entry per key.
    pub fn finish(mut self) -> SegmentUsage {
        self.streams.end();
        self.advance();
        SegmentUsage::from_summed(self.out)
    }
}

/// The replay's segment usage, per package: (segment, package) and usage, sorted by key, one
/// entry per key. A sorted vector, sized once: the hash map it replaces, and the sorted copy
/// of it the split made, were the join's peak on an hour of 200 activations a second.
#[derive(Debug, Default)]
pub struct SegmentUsage {
    cells: Vec<((usize, u32), Usage)>,
}

impl SegmentUsage {
    /// Each CPU's (segment, interval) usage, on its package, in the order given: a key's
    /// parts are added in that order (so the sums are those of one map filled CPU by CPU).
    /// A segment lies in one interval, so the interval is not part of the key. The
    /// accounting sums them round by round instead (`replay::segment_merge`); this is what its
    /// tests compare it with.
    #[cfg(test)]
    pub fn gather<M>(per_cpu: Vec<(u32, M)>) -> Self
    where
        M: IntoIterator<Item = ((usize, usize), Usage)>,
        M::IntoIter: ExactSizeIterator,
    {
        let per_cpu: Vec<(u32, M::IntoIter)> = per_cpu
            .into_iter()
            .map(|(pkg, m)| (pkg, m.into_iter()))
            .collect();
        let n = per_cpu.iter().map(|(_, m)| m.len()).sum();
        // (segment, package, the CPU's position): a CPU gives a segment once, so the keys
        // are distinct and sorting them in place keeps a key's parts in CPU order (a stable
        // sort would take half the list again as scratch). The position fits the key's
        // padding.
        let mut parts: Vec<((usize, u32, u32), Usage)> = Vec::with_capacity(n);
        for (at, (pkg, m)) in per_cpu.into_iter().enumerate() {
            let at = u32::try_from(at).unwrap_or(u32::MAX);
            parts.extend(m.map(|((seg, _), u)| ((seg, pkg, at), u)));
        }
        parts.sort_unstable_by_key(|(k, _)| *k);
        let mut cells: Vec<((usize, u32), Usage)> = parts
            .into_iter()
            .map(|((seg, pkg, _), u)| ((seg, pkg), u))
            .collect();
        // Summed in place, each key's sum started from zero as a map's entry would be.
        for i in 0..cells.len() {
            if i == 0 || cells[i - 1].0 != cells[i].0 {
                let mut sum = Usage::default();
                sum.add(&cells[i].1);
                cells[i].1 = sum;
            }
        }
        Self::from_summed(cells)
    }

    /// Sums already made, in any order: sorted by key. A key listed twice (a part that came
    /// after its key was summed; no walk gives one) is added into one entry.
    pub fn from_summed(mut cells: Vec<((usize, u32), Usage)>) -> Self {
        cells.sort_unstable_by_key(|(k, _)| *k);
        cells.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1.add(&later.1);
            }
            same
        });
        cells.shrink_to_fit();
        Self { cells }
    }

    /// Every ((segment, package), usage), in key order.
    pub fn cells(&self) -> &[((usize, u32), Usage)] {
        &self.cells
    }

    /// Every (segment, package) and its usage, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, u32, &Usage)> {
        self.cells.iter().map(|((s, p), u)| (*s, *p, u))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(v: &[(usize, usize, u64)]) -> Vec<Segment> {
        v.iter()
            .map(|&(seg, i, ns)| ((seg, i), Usage::one(ns, ns as f64 / 3.0)))
            .collect()
    }

    fn listed(u: &SegmentUsage) -> Vec<(usize, u32, u64, u64)> {
        u.iter()
            .map(|(s, p, u)| (s, p, u.cpu_ns, u.counters[0].to_bits()))
            .collect()
    }

    /// Round by round or gathered at the end, the same sums, bit for bit; a segment waits
    /// until every CPU has passed its interval.
    #[test]
    fn by_rounds_as_gathered_at_the_end() {
        // (segment, interval, ns); segment 4 is on CPUs 0 and 1 (package 0) and CPU 2
        // (package 1).
        let cpu0 = [(4, 0, 10), (9, 0, 7), (5, 1, 20), (6, 3, 1)];
        let cpu1 = [(4, 0, 3), (5, 1, 6), (7, 2, 2)];
        let cpu2 = [(4, 0, 9), (8, 3, 4)];
        let gathered =
            SegmentUsage::gather(vec![(0, segs(&cpu0)), (0, segs(&cpu1)), (1, segs(&cpu2))]);
        let mut m = SegmentMerge::new([0, 0, 1], 4);
        m.push(0, segs(&cpu0[..2]), 1);
        m.push(1, segs(&cpu1[..1]), 1);
        m.push(2, Vec::new(), 0);
        m.advance();
        assert!(m.out.is_empty(), "CPU 2 has not passed interval 0");
        m.push(2, segs(&cpu2[..1]), 2);
        m.advance();
        assert_eq!(m.out.len(), 3, "interval 0: segment 4 on both packages, 9");
        m.push(0, segs(&cpu0[2..]), usize::MAX);
        m.push(1, segs(&cpu1[1..]), 2);
        m.advance();
        m.push(2, segs(&cpu2[1..]), 4);
        let got = m.finish();
        assert_eq!(listed(&got), listed(&gathered));
        assert_eq!(
            got.iter()
                .map(|(s, p, u)| (s, p, u.cpu_ns))
                .collect::<Vec<_>>(),
            [
                (4, 0, 13),
                (4, 1, 9),
                (5, 0, 26),
                (6, 0, 1),
                (7, 0, 2),
                (8, 1, 4),
                (9, 0, 7)
            ]
        );
    }

    /// A segment given again after its interval was summed (no walk does that) is added to
    /// its key, not listed twice.
    #[test]
    fn a_late_part_is_added_to_its_key() {
        let mut m = SegmentMerge::new([0], 0);
        m.push(0, segs(&[(3, 0, 5), (2, 1, 1)]), 2);
        m.advance();
        m.push(0, segs(&[(3, 0, 7)]), 3);
        let got = m.finish();
        let got: Vec<_> = got.iter().map(|(s, p, u)| (s, p, u.cpu_ns)).collect();
        assert_eq!(got, [(2, 0, 1), (3, 0, 12)]);
    }
}
