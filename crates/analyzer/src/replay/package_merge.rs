//! Summing the CPUs' cells per package as the accounting gives them, window by window.
//!
//! Each CPU hands over its final cells, sorted, with the interval before which it has handed
//! over all of them (its horizon). An interval is summed once every CPU's horizon has passed
//! it, so what waits here is the CPUs' lead over the slowest one, not the run. Each cell adds
//! its CPUs in stream order, so whole or by windows the sums are the same. Summed cells go to
//! disk (`package_cells`) one window after they are summed: a cell that comes late by less
//! than that is still added in its place.

use std::collections::VecDeque;

use anyhow::Result;

use super::cpu::{Cells, Usage};
use super::package_cells::{CellsWriter, SpilledCells};
use super::PackageCells;

/// The merge of every CPU stream's cells into per-package cells.
#[derive(Debug, Default)]
pub struct PackageMerge {
    streams: Streams,
    out: std::collections::BTreeMap<u32, Out>,
    /// The horizon of the last `advance`: the cells before it are written at the next.
    last_horizon: usize,
}

/// One package's sums: those of the last window, and those written.
#[derive(Debug)]
struct Out {
    recent: Vec<(usize, u64, Usage)>,
    written: CellsWriter,
    /// The last key written.
    last: Option<(usize, u64)>,
}

impl Out {
    fn new() -> Self {
        Self {
            recent: Vec::new(),
            written: SpilledCells::writer(),
            last: None,
        }
    }

    /// Writes the recent cells before interval `before`.
    fn write_before(&mut self, before: usize) -> Result<()> {
        let n = self.recent.partition_point(|c| c.0 < before);
        for (i, cg, u) in self.recent.drain(..n) {
            if self.last.is_some_and(|l| l >= (i, cg)) {
                anyhow::bail!(
                    "a CPU's cell of interval {i}, cgroup {cg} came after that interval was written: the CPUs' walk gave cells of an interval it had passed"
                );
            }
            self.last = Some((i, cg));
            self.written.push(i, cg, &u)?;
        }
        Ok(())
    }
}

/// The CPU streams of a merge, in the order its sums add them: each one's package, its items
/// keyed (interval, key) and not yet summed (sorted), and the interval before which it has
/// given all of them (its horizon). `segment_merge` sums window segments with them too.
#[derive(Debug, Default)]
pub(super) struct Streams {
    streams: Vec<Stream>,
    /// The streams' packages, each once, in order.
    pub packages: Vec<u32>,
}

#[derive(Debug)]
struct Stream {
    package: u32,
    items: VecDeque<((usize, u64), Usage)>,
    horizon: usize,
}

impl Streams {
    /// One stream per entry of `packages` (a CPU stream's package).
    pub fn new(packages: impl IntoIterator<Item = u32>) -> Self {
        let streams = packages
            .into_iter()
            .map(|package| Stream {
                package,
                items: VecDeque::new(),
                horizon: 0,
            })
            .collect::<Vec<_>>();
        let mut packages: Vec<u32> = streams.iter().map(|s| s.package).collect();
        packages.sort_unstable();
        packages.dedup();
        Self { streams, packages }
    }

    /// Stream `n`'s next items (sorted, after those it gave before), and the interval before
    /// which it has now given all of them.
    pub fn push(&mut self, n: usize, items: Cells, horizon: usize) {
        let s = &mut self.streams[n];
        s.items.extend(items);
        s.horizon = s.horizon.max(horizon);
    }

    /// The interval every stream has passed; None without streams.
    pub fn horizon(&self) -> Option<usize> {
        self.streams.iter().map(|s| s.horizon).min()
    }

    /// Every stream done: all of its items are given.
    pub fn end(&mut self) {
        for s in &mut self.streams {
            s.horizon = usize::MAX;
        }
    }

    /// Moves package `pkg`'s items of intervals before `horizon` into `out`, one entry per
    /// key, each adding its streams in stream order.
    pub fn sum_before(&mut self, pkg: u32, horizon: usize, out: &mut Vec<(usize, u64, Usage)>) {
        let mut mine: Vec<&mut VecDeque<((usize, u64), Usage)>> = self
            .streams
            .iter_mut()
            .filter(|s| s.package == pkg)
            .map(|s| &mut s.items)
            .collect();
        merge_before(&mut mine, horizon, out);
    }
}

impl PackageMerge {
    /// One stream per entry of `packages` (a CPU stream's package), in the order the sums add
    /// them.
    pub fn new(packages: impl IntoIterator<Item = u32>) -> Self {
        Self {
            streams: Streams::new(packages),
            out: Default::default(),
            last_horizon: 0,
        }
    }

    /// Stream `n`'s next cells (sorted, after those it gave before), and the interval before
    /// which it has now given all of its cells.
    pub fn push(&mut self, n: usize, cells: Cells, horizon: usize) {
        self.streams.push(n, cells, horizon);
    }

    /// Sums every interval that all streams have passed, and writes those summed by the
    /// `advance` before.
    pub fn advance(&mut self) -> Result<()> {
        let Some(horizon) = self.streams.horizon() else {
            return Ok(());
        };
        for pkg in self.streams.packages.clone() {
            let out = self.out.entry(pkg).or_insert_with(Out::new);
            self.streams.sum_before(pkg, horizon, &mut out.recent);
            out.write_before(self.last_horizon)?;
        }
        self.last_horizon = horizon;
        Ok(())
    }

    /// Every stream done: sums and writes what is left, and returns the packages' cells.
    pub fn finish(mut self) -> Result<PackageCells> {
        self.streams.end();
        self.advance()?;
        let mut cells = PackageCells::new();
        for (pkg, mut out) in self.out {
            out.write_before(usize::MAX)?;
            cells.insert(pkg, out.written.finish()?);
        }
        Ok(cells)
    }
}

/// Moves the cells of intervals before `horizon` from `streams` (each sorted) into `out`, one
/// entry per key, adding a key's cells in stream order.
fn merge_before(
    streams: &mut [&mut VecDeque<((usize, u64), Usage)>],
    horizon: usize,
    out: &mut Vec<(usize, u64, Usage)>,
) {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let head =
        |s: &VecDeque<((usize, u64), Usage)>| s.front().map(|c| c.0).filter(|k| k.0 < horizon);
    // The smallest key first; for one key, the streams in order.
    let mut heap: BinaryHeap<Reverse<((usize, u64), usize)>> = streams
        .iter()
        .enumerate()
        .filter_map(|(n, s)| head(s).map(|k| Reverse((k, n))))
        .collect();
    while let Some(Reverse((key, n))) = heap.pop() {
        let (_, u) = streams[n].pop_front().expect("peeked");
        add(out, key, &u);
        if let Some(k) = head(streams[n]) {
            heap.push(Reverse((k, n)));
        }
    }
}

/// Adds a cell to sorted `out`: to its last entry when the key is the same, else after it.
/// A key before the last (a stream that gave a cell of an interval it had passed: no walk
/// does) is added in its place, kept right rather than fast.
fn add(out: &mut Vec<(usize, u64, Usage)>, key: (usize, u64), u: &Usage) {
    match out.last_mut() {
        Some(last) if (last.0, last.1) == key => last.2.add(u),
        Some(last) if (last.0, last.1) > key => {
            match out.binary_search_by_key(&key, |c| (c.0, c.1)) {
                Ok(at) => out[at].2.add(u),
                Err(at) => out.insert(at, (key.0, key.1, sum_of(u))),
            }
        }
        _ => out.push((key.0, key.1, sum_of(u))),
    }
}

/// A new sum holding `u` (added to zero, as every sum starts).
fn sum_of(u: &Usage) -> Usage {
    let mut sum = Usage::default();
    sum.add(u);
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(ns: u64, c: f64) -> Usage {
        Usage::one(ns, c)
    }

    fn cells(v: &[(usize, u64, u64)]) -> Cells {
        v.iter()
            .map(|&(i, cg, ns)| ((i, cg), u(ns, ns as f64)))
            .collect()
    }

    /// A package's cells read back.
    type Read = (u32, Vec<(usize, u64, Usage)>);

    fn read(cells: &PackageCells) -> Vec<Read> {
        cells
            .iter()
            .map(|(p, c)| (*p, c.iter().collect::<Result<Vec<_>>>().unwrap()))
            .collect()
    }

    /// Windows or all at once, the same sums; an interval waits until every CPU has passed it.
    #[test]
    fn by_windows_as_at_once() {
        let cpu0 = [(0, 7, 10), (1, 7, 20), (2, 8, 5), (4, 7, 1)];
        let cpu1 = [(0, 7, 3), (2, 8, 6), (3, 9, 2), (4, 7, 2)];
        let cpu2 = [(1, 9, 4), (4, 7, 9)];
        let mut all = PackageMerge::new([0, 0, 1]);
        all.push(0, cells(&cpu0), usize::MAX);
        all.push(1, cells(&cpu1), usize::MAX);
        all.push(2, cells(&cpu2), usize::MAX);
        let all = read(&all.finish().unwrap());

        let mut w = PackageMerge::new([0, 0, 1]);
        w.push(0, cells(&cpu0[..2]), 2);
        w.push(1, cells(&cpu1[..1]), 1);
        w.push(2, Vec::new(), 0);
        w.advance().unwrap();
        assert!(
            w.out.values().all(|c| c.recent.is_empty()),
            "CPU 2 has not passed 0"
        );
        w.push(2, cells(&cpu2[..1]), 3);
        w.advance().unwrap();
        let p0: Vec<_> = w.out[&0]
            .recent
            .iter()
            .map(|c| (c.0, c.1, c.2.cpu_ns))
            .collect();
        assert_eq!(p0, [(0, 7, 13)], "interval 1 waits for CPU 1");
        w.push(0, cells(&cpu0[2..]), 5);
        w.push(1, cells(&cpu1[1..]), 5);
        w.push(2, cells(&cpu2[1..]), 5);
        w.advance().unwrap();
        assert_eq!(w.out[&0].last, Some((0, 7)), "written a window later");
        assert_eq!(read(&w.finish().unwrap()), all);
        let p0: Vec<_> = all[0].1.iter().map(|c| (c.0, c.1, c.2.cpu_ns)).collect();
        assert_eq!(
            p0,
            [(0, 7, 13), (1, 7, 20), (2, 8, 11), (3, 9, 2), (4, 7, 3)]
        );
    }

    /// A cell one round late (its interval summed, not yet written) is still added in its
    /// place.
    #[test]
    fn a_cell_one_round_late_is_added_in_its_place() {
        let mut w = PackageMerge::new([0]);
        w.push(0, cells(&[(0, 7, 1), (1, 7, 2)]), 2);
        w.advance().unwrap();
        w.push(0, cells(&[(1, 7, 4), (3, 7, 8)]), 4);
        w.advance().unwrap();
        let got: Vec<_> = read(&w.finish().unwrap())[0]
            .1
            .iter()
            .map(|c| (c.0, c.1, c.2.cpu_ns))
            .collect();
        assert_eq!(got, [(0, 7, 1), (1, 7, 6), (3, 7, 8)]);
    }

    /// A stream that gives a cell of an interval already written (no walk does) is an error,
    /// not a wrong sum.
    #[test]
    fn a_cell_after_its_interval_was_written_is_an_error() {
        let mut w = PackageMerge::new([0]);
        w.push(0, cells(&[(0, 7, 1), (1, 7, 1)]), 2);
        w.advance().unwrap();
        w.push(0, cells(&[(3, 7, 1)]), 4);
        w.advance().unwrap();
        w.push(0, cells(&[(0, 7, 5)]), 5);
        let e = w.advance().unwrap_err().to_string();
        assert!(e.contains("interval 0"), "{e}");
    }

    #[test]
    fn a_late_cell_is_added_in_its_place() {
        let mut out = Vec::new();
        add(&mut out, (1, 5), &u(1, 1.0));
        add(&mut out, (3, 5), &u(2, 2.0));
        add(&mut out, (1, 5), &u(4, 4.0));
        add(&mut out, (2, 5), &u(8, 8.0));
        let got: Vec<_> = out.iter().map(|c| (c.0, c.2.cpu_ns)).collect();
        assert_eq!(got, [(1, 5), (2, 8), (3, 2)]);
    }
}
