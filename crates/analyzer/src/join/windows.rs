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

use crate::replay::cpu::{Usage, Window};
use crate::replay::grid::Grid;

/// A span of one cgroup inside one interval, kept apart by the replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    pub cgroup: u64,
    /// Grid interval holding it, when inside the grid.
    pub interval: Option<usize>,
    pub start: u64,
    pub end: u64,
}

/// One (activation, cgroup) window and the segments it covers.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedWindow {
    pub activation: usize,
    pub cgroup: u64,
    pub segments: Range<usize>,
}

#[derive(Debug, Default)]
pub struct Plan {
    /// Cgroup → its segments (sorted, not overlapping), for the replay.
    pub by_cgroup: HashMap<u64, Vec<Window>>,
    pub segments: Vec<Segment>,
    pub windows: Vec<PlannedWindow>,
    /// (activation, cgroup) → index into `windows`.
    index: HashMap<(usize, u64), usize>,
}

impl Plan {
    /// Segments for `windows`: (activation, cgroup, start, end); empty windows are left out.
    pub fn new(windows: &[(usize, u64, u64, u64)], grid: &Grid) -> Self {
        let mut plan = Plan::default();
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
            let mut mine = Vec::new();
            for j in 0..bounds.len() - 1 {
                depth += cover[j];
                if depth > 0 {
                    seg_of[j] = plan.segments.len();
                    let (start, end) = (bounds[j], bounds[j + 1]);
                    mine.push(Window {
                        start,
                        end,
                        segment: plan.segments.len(),
                    });
                    plan.segments.push(Segment {
                        cgroup: cg,
                        interval: grid.index(start),
                        start,
                        end,
                    });
                }
            }
            plan.by_cgroup.insert(cg, mine);
            for (a, s, e) in ws {
                // Every span inside a window is covered, so its segments are consecutive.
                let (ja, jb) = (at(s), at(e));
                let range = seg_of[ja]..seg_of[jb - 1] + 1;
                plan.index.insert((a, cg), plan.windows.len());
                plan.windows.push(PlannedWindow {
                    activation: a,
                    cgroup: cg,
                    segments: range,
                });
            }
        }
        plan
    }

    /// Index into `windows` of the (activation, cgroup) window.
    pub fn window_index(&self, activation: usize, cgroup: u64) -> Option<usize> {
        self.index.get(&(activation, cgroup)).copied()
    }

    pub fn window(&self, activation: usize, cgroup: u64) -> Option<&PlannedWindow> {
        self.window_index(activation, cgroup)
            .map(|i| &self.windows[i])
    }
}

/// The replay's segment usage, per package: (segment, package) → usage.
pub type SegmentUsage = HashMap<(usize, u32), Usage>;

/// Each activation's part of its container, by the concurrency rule.
#[derive(Debug, Default)]
pub struct Apportioned {
    /// Activation → usage over all packages.
    pub total: HashMap<usize, Usage>,
    /// (activation, interval, package) → usage, each activation's cells found at once: the
    /// attribution looks them up for every activation, interval, model and policy.
    pub cells: ActivationRuns,
    /// (activation, interval) → its share of the container's presence, ns.
    pub presence_ns: Presence,
    /// Activations that shared their container with another at some point.
    pub concurrent: std::collections::HashSet<usize>,
}

impl Apportioned {
    /// Drops the per-interval parts (`cells`, `presence_ns`) once the attribution is done:
    /// the largest part of the join on a long trace.
    pub fn release_cells(&mut self) {
        self.cells = ActivationRuns::default();
        self.presence_ns = Presence::default();
    }
}

/// (activation, interval, package) and usage, sorted, with where each activation's run starts:
/// a hash lookup per interval, model and policy was a tenth of an hour's analysis, and the
/// map's spare room a quarter of its size.
#[derive(Debug, Default)]
pub struct ActivationRuns {
    cells: Vec<((usize, usize, u32), Usage)>,
    /// `cells[starts[a]..starts[a + 1]]` are activation `a`'s; activations past the end have
    /// none.
    starts: Vec<usize>,
}

impl ActivationRuns {
    /// From cells sorted by key.
    fn from_sorted(mut cells: Vec<((usize, usize, u32), Usage)>) -> Self {
        cells.shrink_to_fit();
        let n = cells.last().map_or(0, |((a, _, _), _)| a + 1);
        let starts = run_starts(cells.iter().map(|((a, _, _), _)| *a), n);
        Self { cells, starts }
    }

    /// Activation `ai`'s usage in interval `k` on package `pkg`.
    pub fn get(&self, ai: usize, k: usize, pkg: u32) -> Option<&Usage> {
        let run = match (self.starts.get(ai), self.starts.get(ai + 1)) {
            (Some(&a), Some(&b)) => &self.cells[a..b],
            _ => return None,
        };
        run.iter()
            .find(|((_, i, p), _)| (*i, *p) == (k, pkg))
            .map(|(_, u)| u)
    }
}

/// (activation, interval) and the activation's share of its container's presence in it, ns,
/// sorted, with where each activation's run starts (a hash map of them was the join's largest
/// part on an hour).
#[derive(Debug, Default)]
pub struct Presence {
    shares: Vec<((usize, usize), f64)>,
    starts: Vec<usize>,
}

impl Presence {
    fn from_sorted(mut shares: Vec<((usize, usize), f64)>) -> Self {
        shares.shrink_to_fit();
        let n = shares.last().map_or(0, |((a, _), _)| a + 1);
        let starts = run_starts(shares.iter().map(|((a, _), _)| *a), n);
        Self { shares, starts }
    }

    /// Activation `ai`'s presence in interval `k`, ns.
    pub fn get(&self, ai: usize, k: usize) -> Option<f64> {
        let run = match (self.starts.get(ai), self.starts.get(ai + 1)) {
            (Some(&a), Some(&b)) => &self.shares[a..b],
            _ => return None,
        };
        run.iter().find(|((_, i), _)| *i == k).map(|(_, p)| *p)
    }
}

/// Where each key's run starts in a list sorted by key (keys below `n`): the list's
/// `[starts[k]..starts[k + 1]]` are key k's.
fn run_starts(sorted_keys: impl Iterator<Item = usize>, n: usize) -> Vec<usize> {
    let mut starts = vec![0usize; n + 1];
    for k in sorted_keys {
        starts[k + 1] += 1;
    }
    for k in 1..starts.len() {
        starts[k] += starts[k - 1];
    }
    starts
}

/// Splits segment usage among the activations finally joined: `joined` lists (activation,
/// cgroup) for each activation with a container.
pub fn apportion(plan: &Plan, joined: &[(usize, u64)], usage: &SegmentUsage) -> Apportioned {
    let mut n = vec![0u32; plan.segments.len()];
    let wins: Vec<&PlannedWindow> = joined
        .iter()
        .filter_map(|&(a, cg)| plan.window(a, cg))
        .collect();
    for w in &wins {
        for s in w.segments.clone() {
            n[s] += 1;
        }
    }
    // Each segment's usage by package, in package order: one sorted list and where each
    // segment's run starts (a map of small vectors took more than the usage itself).
    let mut by_seg: Vec<(usize, u32, &Usage)> =
        usage.iter().map(|(&(s, pkg), u)| (s, pkg, u)).collect();
    by_seg.sort_unstable_by_key(|&(s, pkg, _)| (s, pkg));
    let starts = run_starts(by_seg.iter().map(|&(s, _, _)| s), plan.segments.len());
    let mut out = Apportioned::default();
    // Built sorted, an activation at a time (`joined` is in activation order): a map of every
    // cell, grown by doubling and then copied to the vector, was the join's peak on an hour.
    let mut cells: Vec<((usize, usize, u32), Usage)> = Vec::new();
    let mut mine: Vec<((usize, usize, u32), Usage)> = Vec::new();
    let mut presence: Vec<((usize, usize), f64)> = Vec::new();
    let mut last = None;
    for w in wins {
        debug_assert!(
            last.is_none_or(|a| a < w.activation),
            "joined in activation order"
        );
        last = Some(w.activation);
        let total = out.total.entry(w.activation).or_default();
        for s in w.segments.clone() {
            let seg = &plan.segments[s];
            let share = 1.0 / f64::from(n[s]);
            if n[s] > 1 {
                out.concurrent.insert(w.activation);
            }
            let Some(k) = seg.interval else { continue };
            // The segments come in time order: one interval's are consecutive.
            let part = (seg.end - seg.start) as f64 * share;
            match presence.last_mut() {
                Some(((a, i), p)) if (*a, *i) == (w.activation, k) => *p += part,
                _ => presence.push(((w.activation, k), part)),
            }
            for (_, pkg, u) in &by_seg[starts[s]..starts[s + 1]] {
                total.add_scaled(u, share);
                let key = (w.activation, k, *pkg);
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
        cells.append(&mut mine);
    }
    out.cells = ActivationRuns::from_sorted(cells);
    out.presence_ns = Presence::from_sorted(presence);
    out
}

/// CPU time of each planned window, unsplit (what the time-overlap join compares).
pub fn window_cpu_ns(plan: &Plan, usage: &SegmentUsage) -> Vec<u64> {
    let mut per_seg = vec![0u64; plan.segments.len()];
    for ((s, _), u) in usage {
        per_seg[*s] += u.cpu_ns;
    }
    plan.windows
        .iter()
        .map(|w| per_seg[w.segments.clone()].iter().sum())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(ns: u64, instr: f64) -> Usage {
        Usage {
            cpu_ns: ns,
            counters: smallvec::smallvec![instr],
        }
    }

    /// Two overlapping windows on one cgroup and a grid boundary at 50: segments [10,30),
    /// [30,50), [50,60), [60,80); the shared ones split equally, the rest go to their owner.
    #[test]
    fn overlapping_windows_share_their_segments_equally() {
        let grid = Grid::from_times(vec![0, 50, 100]).unwrap();
        let plan = Plan::new(&[(0, 7, 10, 60), (1, 7, 30, 80), (2, 8, 0, 5)], &grid);
        let segs: Vec<(u64, u64, Option<usize>)> = plan
            .segments
            .iter()
            .filter(|s| s.cgroup == 7)
            .map(|s| (s.start, s.end, s.interval))
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
        let seg = |t: u64| {
            plan.segments
                .iter()
                .position(|s| s.cgroup == 7 && s.start == t)
                .unwrap()
        };
        let mut usage = SegmentUsage::new();
        usage.insert((seg(10), 0), u(20, 200.0));
        usage.insert((seg(30), 0), u(20, 400.0));
        usage.insert((seg(50), 1), u(10, 100.0));
        usage.insert((seg(60), 1), u(20, 20.0));
        let a = apportion(&plan, &[(0, 7), (1, 7)], &usage);
        assert_eq!(a.total[&0].cpu_ns, 20 + 10 + 5);
        assert_eq!(a.total[&1].cpu_ns, 10 + 5 + 20);
        let sum: u64 = a.total.values().map(|u| u.cpu_ns).sum();
        assert_eq!(sum, 70, "the shares add up to the container's usage");
        assert!((a.total[&0].counters[0] - (200.0 + 200.0 + 50.0)).abs() < 1e-9);
        assert_eq!(a.cells.get(1, 1, 1).expect("a cell").cpu_ns, 25);
        assert!((a.presence_ns.get(0, 0).expect("present") - 30.0).abs() < 1e-9);
        assert!(a.concurrent.contains(&0) && a.concurrent.contains(&1));
        // Joined alone, activation 0 gets every segment it covers whole.
        let alone = apportion(&plan, &[(0, 7)], &usage);
        assert_eq!(alone.total[&0].cpu_ns, 50);
        assert!(alone.concurrent.is_empty());
        assert_eq!(window_cpu_ns(&plan, &usage)[plan.index[&(1, 7)]], 50);
    }
}
