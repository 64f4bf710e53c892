//! Activation windows → the segments the replay keeps apart, and the rule that splits a
//! container's usage among the activations it serves at once.
//!
//! Every window (an activation on one candidate cgroup: its own container, or a container the
//! time-overlap join may pick) is cut at the other windows' ends and at the grid's boundaries,
//! so one cgroup's segments never overlap and each lies in one interval. The replay charges
//! CPU time and counters to segments exactly (`replay::cpu`); a window's usage is then the sum
//! of its segments.
//!
//! **Concurrency rule.** OpenWhisk runs several activations of one action at once in one
//! container (action concurrency > 1), and one process serves them all: how its CPU time splits
//! among them is not measured by anything. The rule here: in each segment, the container's
//! usage is split *equally* among the activations whose windows cover it. An activation alone
//! in its container gets all of it; concurrent ones share, and their shares always sum to the
//! container's usage inside their windows (never more). The same rule splits the container's
//! presence (for its idle share) in time.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use super::activation_runs::{ActivationRuns, RunsWriter};
use super::activation_totals::ActivationTotals;
use crate::replay::cpu::{Segments, Usage, Window};
use crate::replay::grid::Grid;
pub use crate::replay::segment_merge::SegmentUsage;

/// One (activation, cgroup) window and the segments it covers.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedWindow {
    pub activation: usize,
    pub cgroup: u64,
    pub segments: Range<usize>,
}

/// Segments: spans of one cgroup inside one interval, kept apart by the replay. A cgroup's
/// segments are numbered consecutively, in time order, so segment `s` of cgroup `cg` is
/// `by_cgroup[cg].spans[s - by_cgroup[cg].first]`: no second list of them (an hour holds a
/// million, and that list was 30 MB of the accounting's peak), and no number stored with each.
#[derive(Debug, Default)]
pub struct Plan {
    /// Cgroup → its segments (sorted, not overlapping), for the replay and the split.
    pub by_cgroup: HashMap<u64, Segments>,
    /// How many segments there are (all cgroups').
    pub segments: usize,
    /// Sorted by (activation, cgroup), so found by a binary search (a map of them was a
    /// tenth of the join at 200 activations a second).
    pub windows: Vec<PlannedWindow>,
}

impl Plan {
    /// Segments for `windows`: (activation, cgroup, start, end); empty windows are left out.
    pub fn new(windows: &[(usize, u64, u64, u64)], grid: &Grid) -> Self {
        let mut plan = Plan::default();
        plan.windows.reserve_exact(windows.len());
        let mut per_cg: BTreeMap<u64, Vec<(usize, u64, u64)>> = BTreeMap::new();
        for &(a, cg, s, e) in windows {
            if e > s {
                per_cg.entry(cg).or_default().push((a, s, e));
            }
        }
        for (cg, ws) in per_cg {
            let mut bounds: Vec<u64> = Vec::with_capacity(ws.len() * 3);
            for &(_, s, e) in &ws {
                bounds.extend([s, e]);
                grid.split(s, e, |_, x, _| bounds.push(x));
            }
            bounds.sort_unstable();
            bounds.dedup();
            let at = |t: u64| bounds.binary_search(&t).expect("a window's own bound");
            // Coverage of each elementary span [bounds[j], bounds[j + 1]).
            let mut cover = vec![0i64; bounds.len()];
            for &(_, s, e) in &ws {
                cover[at(s)] += 1;
                cover[at(e)] -= 1;
            }
            let mut seg_of = vec![usize::MAX; bounds.len()];
            let mut depth = 0;
            let mut mine = Segments {
                first: plan.segments,
                spans: Vec::new(),
            };
            for j in 0..bounds.len() - 1 {
                depth += cover[j];
                if depth > 0 {
                    seg_of[j] = plan.segments;
                    mine.spans.push((bounds[j], bounds[j + 1]));
                    plan.segments += 1;
                }
            }
            // Held through the replay and the join: no room to grow (an hour's were 40 %
            // larger than their 600 k segments).
            mine.spans.shrink_to_fit();
            plan.by_cgroup.insert(cg, mine);
            for (a, s, e) in ws {
                // Every span inside a window is covered, so its segments are consecutive.
                let (ja, jb) = (at(s), at(e));
                let range = seg_of[ja]..seg_of[jb - 1] + 1;
                plan.windows.push(PlannedWindow {
                    activation: a,
                    cgroup: cg,
                    segments: range,
                });
            }
        }
        // A pair listed twice (two candidate containers in one cgroup) has the same segments
        // both times, so whichever the search finds is right.
        plan.windows
            .sort_unstable_by_key(|w| (w.activation, w.cgroup));
        plan
    }

    /// Index into `windows` of the (activation, cgroup) window.
    pub fn window_index(&self, activation: usize, cgroup: u64) -> Option<usize> {
        self.windows
            .binary_search_by_key(&(activation, cgroup), |w| (w.activation, w.cgroup))
            .ok()
    }

    pub fn window(&self, activation: usize, cgroup: u64) -> Option<&PlannedWindow> {
        self.window_index(activation, cgroup)
            .map(|i| &self.windows[i])
    }

    /// A window's segments, in time order.
    pub fn segments_of(&self, w: &PlannedWindow) -> impl Iterator<Item = Window> + '_ {
        let all = self.by_cgroup.get(&w.cgroup);
        let from = all.map_or(0, |all| w.segments.start - all.first);
        all.into_iter()
            .flat_map(move |all| all.windows_from(from))
            .take(w.segments.len())
    }
}

/// Each activation's part of its container, by the concurrency rule.
#[derive(Debug, Default)]
pub struct Apportioned {
    /// Per activation (all of them, in order): its usage over all packages; none where it
    /// was not joined.
    pub total: ActivationTotals,
    /// Per activation, its usage by (interval, package) and its share of the container's
    /// presence by interval (ns), on disk: the attribution reads them for every activation,
    /// interval, model and policy, in activation order.
    pub runs: ActivationRuns,
    /// Activations that shared their container with another at some point.
    pub concurrent: std::collections::HashSet<usize>,
}

impl Apportioned {
    /// Drops the per-interval parts (`runs`) once the attribution is done.
    pub fn release_cells(&mut self) {
        self.runs = ActivationRuns::default();
    }
}

/// Splits segment usage among the activations finally joined: `joined` lists (activation,
/// cgroup) for each activation with a container, of `n_activations` in all. Each activation's
/// cells go to a spill file as they are made.
pub fn apportion(
    plan: &Plan,
    grid: &Grid,
    joined: &[(usize, u64)],
    usage: &SegmentUsage,
    (n_activations, columns): (usize, usize),
) -> anyhow::Result<Apportioned> {
    let mut n = vec![0u32; plan.segments];
    let wins = || joined.iter().filter_map(|&(a, cg)| plan.window(a, cg));
    for w in wins() {
        for s in w.segments.clone() {
            n[s] += 1;
        }
    }
    // Each segment's usage by package, in package order, read back from disk as the
    // activations ask for it (about in the order it was written).
    let mut by_seg = usage.reader();
    let mut of_seg: Vec<(u32, Usage)> = Vec::new();
    let mut out = Apportioned {
        total: ActivationTotals::new(n_activations, columns),
        ..Apportioned::default()
    };
    // Made sorted, an activation at a time (`joined` is in activation order), and written.
    let mut runs = RunsWriter::new()?;
    let mut mine: Vec<((usize, u32), Usage)> = Vec::new();
    let mut mine_presence: Vec<(usize, f64)> = Vec::new();
    let mut last = None;
    for w in wins() {
        debug_assert!(
            last.is_none_or(|a| a < w.activation),
            "joined in activation order"
        );
        last = Some(w.activation);
        for seg in plan.segments_of(w) {
            let s = seg.segment;
            let share = 1.0 / f64::from(n[s]);
            if n[s] > 1 {
                out.concurrent.insert(w.activation);
            }
            let Some(k) = grid.index(seg.start) else {
                continue;
            };
            // The segments come in time order: one interval's are consecutive.
            let part = (seg.end - seg.start) as f64 * share;
            match mine_presence.last_mut() {
                Some((i, p)) if *i == k => *p += part,
                _ => mine_presence.push((k, part)),
            }
            by_seg.of_segment(s, &mut of_seg)?;
            for (pkg, u) in &of_seg {
                out.total.add_scaled(w.activation, u, share)?;
                let key = (k, *pkg);
                // An activation's segments come in time order, packages in order within each:
                // its cells are few, and each adds its terms in the order a map would.
                match mine.iter_mut().rev().find(|(c, _)| *c == key) {
                    Some((_, c)) => c.add_scaled(u, share),
                    None => {
                        let mut c = Usage::default();
                        c.add_scaled(u, share);
                        mine.push((key, c));
                    }
                }
            }
        }
        mine.sort_unstable_by_key(|(k, _)| *k);
        runs.push(w.activation, &mine, &mine_presence)?;
        mine.clear();
        mine_presence.clear();
    }
    out.runs = runs.finish()?;
    Ok(out)
}

/// CPU time of each planned window, unsplit (what the time-overlap join compares).
pub fn window_cpu_ns(plan: &Plan, usage: &SegmentUsage) -> anyhow::Result<Vec<u64>> {
    let per_seg = usage.cpu_ns_per_segment(plan.segments)?;
    Ok(plan
        .windows
        .iter()
        .map(|w| per_seg[w.segments.clone()].iter().sum())
        .collect())
}

#[cfg(test)]
mod tests {
    use pws_trace::records::CpuStatBlock;

    use super::*;
    use crate::progress::Progress;
    use crate::replay;
    use crate::synth::{self, SynthArgs};

    fn u(ns: u64, instr: f64) -> Usage {
        Usage::one(ns, instr)
    }

    /// Two overlapping windows on one cgroup and a grid boundary at 50: segments [10,30),
    /// [30,50), [50,60), [60,80); the shared ones split equally, the rest go to their owner.
    #[test]
    fn overlapping_windows_share_their_segments_equally() {
        let grid = Grid::from_times(vec![0, 50, 100]).unwrap();
        let plan = Plan::new(&[(0, 7, 10, 60), (1, 7, 30, 80), (2, 8, 0, 5)], &grid);
        let segs: Vec<(u64, u64, Option<usize>)> = plan.by_cgroup[&7]
            .windows_from(0)
            .map(|s| (s.start, s.end, grid.index(s.start)))
            .collect();
        assert_eq!(
            segs,
            [
                (10, 30, Some(0)),
                (30, 50, Some(0)),
                (50, 60, Some(1)),
                (60, 80, Some(1))
            ]
        );
        assert_eq!(plan.window(0, 7).unwrap().segments.len(), 3);
        assert_eq!(plan.window(1, 7).unwrap().segments.len(), 3);
        let starts = |a: usize| -> Vec<u64> {
            let w = plan.window(a, 7).unwrap();
            plan.segments_of(w).map(|s| s.start).collect()
        };
        assert_eq!((starts(0), starts(1)), (vec![10, 30, 50], vec![30, 50, 60]));
        assert_eq!(plan.segments, 5, "cgroup 8's one and cgroup 7's four");
        let seg = |t: u64| {
            plan.by_cgroup[&7]
                .windows_from(0)
                .find(|s| s.start == t)
                .unwrap()
                .segment
        };
        // Two CPUs of packages 0 and 1; segment 30's usage split over both CPUs of package 0.
        let usage = SegmentUsage::gather(vec![
            (
                0,
                vec![((seg(30), 0), u(15, 300.0)), ((seg(10), 0), u(20, 200.0))],
            ),
            (
                1,
                vec![((seg(60), 1), u(20, 20.0)), ((seg(50), 1), u(10, 100.0))],
            ),
            (0, vec![((seg(30), 0), u(5, 100.0))]),
        ]);
        let keys: Vec<(usize, u32, u64)> = usage.iter().map(|(s, p, u)| (s, p, u.cpu_ns)).collect();
        let mut want = vec![
            (seg(10), 0, 20),
            (seg(30), 0, 20),
            (seg(50), 1, 10),
            (seg(60), 1, 20),
        ];
        want.sort_unstable();
        assert_eq!(
            keys, want,
            "sorted, one entry per (segment, package), parts summed"
        );
        let a = apportion(&plan, &grid, &[(0, 7), (1, 7)], &usage, (3, 1)).unwrap();
        assert_eq!(a.total.len(), 3, "a total for every activation");
        assert_eq!(a.total.cpu_ns(0), 20 + 10 + 5);
        assert_eq!(a.total.cpu_ns(1), 10 + 5 + 20);
        assert_eq!(
            (a.total.cpu_ns(2), a.total.counter(2, 0)),
            (0, 0.0),
            "not joined: nothing"
        );
        let sum: u64 = (0..3).map(|ai| a.total.cpu_ns(ai)).sum();
        assert_eq!(sum, 70, "the shares add up to the container's usage");
        assert!((a.total.counter(0, 0) - (200.0 + 200.0 + 50.0)).abs() < 1e-9);
        let mut r = a.runs.reader();
        assert_eq!(r.get(1, 1, 1).expect("a cell").cpu_ns, 25);
        assert!((r.presence(0, 0).expect("present") - 30.0).abs() < 1e-9);
        assert_eq!(r.error(), None);
        assert!(a.concurrent.contains(&0) && a.concurrent.contains(&1));
        // Joined alone, activation 0 gets every segment it covers whole.
        let alone = apportion(&plan, &grid, &[(0, 7)], &usage, (3, 1)).unwrap();
        assert_eq!(alone.total.cpu_ns(0), 50);
        assert!(alone.concurrent.is_empty());
        assert_eq!(plan.window_index(2, 7), None, "no such window");
        let w8 = plan.window_index(2, 8).expect("a window");
        assert_eq!(
            (plan.windows[w8].activation, plan.windows[w8].cgroup),
            (2, 8)
        );
        let w = plan.window_index(1, 7).expect("a window");
        assert_eq!(window_cpu_ns(&plan, &usage).unwrap()[w], 50);
    }

    /// /proc/stat readings of `cpus` every 230 ms over `[start, end]`: 5 % of the time
    /// stolen, 2 % in IRQs.
    fn stolen(cpus: impl Iterator<Item = u32>, start: u64, end: u64) -> CpuStatBlock {
        let r: Vec<(u64, [u64; 3])> = (start..=end)
            .step_by(230_000_000)
            .zip(0u64..)
            .map(|(t, k)| (t, [11_500_000 * k, 4_600_000 * k, 0]))
            .collect();
        let mut all = CpuStatBlock::default();
        for cpu in cpus {
            let b = replay::steal_irq::readings_block(cpu, &r);
            all.cpus.extend(b.cpus);
            all = CpuStatBlock {
                cpus: all.cpus,
                ..b
            };
        }
        all
    }

    /// The accounting's rounds hand each CPU's window segments over as their intervals' steal
    /// and IRQ time is settled, scaled then; one round scales them all at the end. Both give
    /// the same per-package segments, bit for bit, on a trace of a block a second per CPU.
    #[test]
    fn segments_scaled_round_by_round_as_at_the_end() {
        let d = tempfile::tempdir().expect("tempdir");
        let trace = d.path().join("s.pws");
        let mut a = SynthArgs::new(trace.clone());
        (a.seconds, a.seed, a.cpus) = (12, 5, 2);
        synth::run(&a).expect("synth");
        let progress = Progress::new(&[&trace], false);
        let replay_in = |round_ns: u64| {
            let mut l = replay::load(&trace, false).expect("load");
            let (_, blocks) =
                replay::scan_side_band(&l, &progress.input(&trace)).expect("side band");
            let (start, end) = (l.info.start_monotonic_ns, l.end_ns);
            l.cpu_stat = vec![stolen(blocks.per_cpu.keys().copied(), start, end)];
            let grid = Grid::fixed(start, end + 1, 10_000_000).expect("grid");
            // Windows of 7 ms on every cgroup the trace made: cut at the grid's bounds.
            let mut windows: std::collections::HashMap<u64, Segments> = Default::default();
            let mut segment = 0;
            for e in &l.cgroup_events {
                if windows.contains_key(&e.cgroup_id) {
                    continue;
                }
                let mut mine = Segments {
                    first: segment,
                    spans: Vec::new(),
                };
                for t in (start..end).step_by(7_000_000) {
                    let mut cut = t;
                    for b in [t, (t / 10_000_000 + 1) * 10_000_000, t + 7_000_000] {
                        let b = b.min(t + 7_000_000);
                        if b > cut {
                            mine.spans.push((cut, b));
                            segment += 1;
                            cut = b;
                        }
                    }
                }
                windows.insert(e.cgroup_id, mine);
            }
            let rep = replay::replay_perf_in_rounds(
                &l,
                &grid,
                &windows,
                blocks,
                &progress.input(&trace),
                round_ns,
            )
            .expect("replay");
            let removed: u64 = rep
                .steal_irq
                .iter()
                .flat_map(|r| r.per_cpu.iter().flatten())
                .map(|f| f.removed_ns[0])
                .sum();
            assert!(removed > 0, "steal time taken out");
            rep.segments
                .iter()
                .map(|(s, p, u)| {
                    let bits: Vec<u64> = u.counters.iter().map(|c| c.to_bits()).collect();
                    (s, p, u.cpu_ns, bits)
                })
                .collect::<Vec<_>>()
        };
        let whole = replay_in(u64::MAX);
        assert!(whole.len() > 1000, "segments charged: {}", whole.len());
        for round_ns in [300_000_000, 1_000_000_000] {
            assert_eq!(replay_in(round_ns), whole, "rounds of {round_ns} ns");
        }
    }
}
