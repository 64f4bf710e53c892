//! Idle policies: who is given an interval's static (idle) power. The dynamic part always
//! follows the model's weights; the static part is placed by the policy, among the function
//! containers present in the interval (`attribution::live_containers`: system scopes and
//! daemons never get idle energy) or, for `proportional`, like the dynamic power.
//!
//! The containers are kept as lifecycles (a span, its frozen spans, a memory limit), not as a
//! list per interval: a container kept warm for an hour is one entry, whatever the grid. What
//! the policies need per interval (the sum of the weights) is summed once over the lifecycles
//! with difference arrays; a container's idle energy over its whole life is an integral of the
//! policy's idle density over its span (`Live::idle_over_life`): both linear in intervals plus
//! containers.

use std::borrow::Cow;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IdlePolicy {
    /// Static power is its own row.
    Unassigned,
    /// In proportion to each cgroup's dynamic power (what SmartWatts does with its intercept).
    Proportional,
    /// Evenly across containers alive and not paused in the interval.
    Even,
    /// Across every live container, paused ones included, by the time each is kept: the
    /// keep-alive cost FaaS platforms hide.
    ByLifetime,
    /// Across live containers by memory limit.
    ByMemory,
}

impl IdlePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unassigned => "unassigned",
            Self::Proportional => "proportional",
            Self::Even => "even",
            Self::ByLifetime => "by-lifetime",
            Self::ByMemory => "by-memory",
        }
    }

    /// Whether the policy places idle energy among the live containers.
    pub fn by_container(self) -> bool {
        matches!(self, Self::Even | Self::ByLifetime | Self::ByMemory)
    }
}

/// A container that may be given idle energy: its span, clipped to the grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Presence {
    pub cgroup: u64,
    pub from: u64,
    pub to: u64,
    /// Frozen spans inside `[from, to)`, in time order, disjoint.
    pub frozen: Vec<(u64, u64)>,
    /// Memory limit in MB, when known.
    pub memory_mb: Option<f64>,
}

/// Adds `w` times the fraction of each interval `[a, b)` covers, for every interval it
/// overlaps: the partial ends directly, the whole intervals between through a difference
/// array (`diff[i] += w`, `diff[j] -= w`), so a span costs O(log intervals) however long.
fn add_span(bounds: &[u64], a: u64, b: u64, w: f64, part: &mut [f64], diff: &mut [f64]) {
    let (a, b) = (a.max(bounds[0]), b.min(bounds[bounds.len() - 1]));
    if a >= b {
        return;
    }
    let ia = bounds.partition_point(|&x| x <= a) - 1;
    let ib = bounds.partition_point(|&x| x < b) - 1;
    let frac = |i: usize, x: u64, y: u64| (y - x) as f64 / (bounds[i + 1] - bounds[i]) as f64;
    if ia == ib {
        part[ia] += w * frac(ia, a, b);
        return;
    }
    part[ia] += w * frac(ia, a, bounds[ia + 1]);
    part[ib] += w * frac(ib, bounds[ib], b);
    if ia + 1 < ib {
        diff[ia + 1] += w;
        diff[ib] -= w;
    }
}

/// `part` plus the running sum of `diff`.
fn settle(part: Vec<f64>, diff: &[f64]) -> Vec<f64> {
    let mut run = 0.0;
    part.into_iter()
        .zip(diff)
        .map(|(p, d)| {
            run += d;
            p + run
        })
        .collect()
}

/// A per-interval value held as runs of equal values (bit for bit): those that change only
/// when a container comes or goes (an hour's 360,000 intervals, a few thousand runs). Where
/// it changes in more than a quarter of the intervals (containers made and removed all the
/// time), it is kept one value per interval: runs would take more.
#[derive(Debug, Clone, Default)]
struct Runs {
    /// Run k holds from interval `starts[k]` up to the next run's; empty when `values` has one
    /// value per interval.
    starts: Vec<usize>,
    values: Vec<f64>,
}

impl Runs {
    fn of(values: Vec<f64>) -> Self {
        let changes = |w: &[f64]| w[0].to_bits() != w[1].to_bits();
        let runs = values.windows(2).filter(|w| changes(w)).count() + 1;
        if runs * 4 > values.len() {
            return Self {
                starts: Vec::new(),
                values,
            };
        }
        let mut r = Self::default();
        for (i, &v) in values.iter().enumerate() {
            if r.values.last().is_none_or(|l| l.to_bits() != v.to_bits()) {
                r.starts.push(i);
                r.values.push(v);
            }
        }
        r
    }

    /// The value of interval `i` (of those it was made from).
    fn at(&self, i: usize) -> f64 {
        if self.starts.is_empty() {
            return self.values[i];
        }
        let k = self.starts.partition_point(|&s| s <= i);
        self.values[k.saturating_sub(1)]
    }
}

/// The containers present over a grid, for the idle policies.
#[derive(Debug, Clone)]
pub struct Live<'g> {
    /// The grid: interval `i` is `[bounds[i], bounds[i + 1])` (the replay's grid's own, not a
    /// copy, where it is that grid).
    bounds: Cow<'g, [u64]>,
    pub containers: Vec<Presence>,
    /// Per container: the first and last interval it overlaps.
    range: Vec<(usize, usize)>,
    /// Per interval: Σ alive fractions; Σ running (alive, not frozen) fractions; `by-memory`'s
    /// total (Σ alive × memory over the containers with a known limit, plus the fill times Σ
    /// alive over the others); the fill (the mean known memory limit of the containers
    /// present, 1 when none is known). Only what the policies read is kept: an hour's 10 ms
    /// grid is 360,000 intervals, 2.9 MB a column. `running` changes at every freeze and thaw;
    /// the others only as containers come and go, so they are runs.
    alive: Runs,
    running: Vec<f64>,
    by_memory: Runs,
    fill: Runs,
    by_cgroup: HashMap<u64, Vec<usize>>,
}

/// The bounds of contiguous intervals `spans`, in time order: interval `i` is
/// `[bounds[i], bounds[i + 1])`.
pub fn bounds_of(spans: &[(u64, u64)]) -> Vec<u64> {
    let mut bounds: Vec<u64> = spans.iter().map(|s| s.0).collect();
    bounds.extend(spans.last().map(|s| s.1));
    bounds
}

#[cfg(test)]
impl Live<'static> {
    /// `spans` are the grid's intervals, contiguous, in time order.
    pub fn new(spans: &[(u64, u64)], containers: Vec<Presence>) -> Self {
        Live::on_bounds(Cow::Owned(bounds_of(spans)), containers)
    }
}

impl<'g> Live<'g> {
    /// The grid's interval bounds (interval `i` is `[bounds[i], bounds[i + 1])`), in order.
    pub fn on_bounds(bounds: Cow<'g, [u64]>, containers: Vec<Presence>) -> Self {
        let n = bounds.len().saturating_sub(1);
        let zeros = || vec![0.0; n + 1];
        let (mut alive, mut alive_d) = (zeros(), zeros());
        let (mut frozen, mut frozen_d) = (zeros(), zeros());
        let (mut mem, mut mem_d) = (zeros(), zeros());
        let (mut unk, mut unk_d) = (zeros(), zeros());
        let (mut msum_d, mut mn_d) = (zeros(), zeros());
        let mut range = Vec::with_capacity(containers.len());
        let mut by_cgroup: HashMap<u64, Vec<usize>> = HashMap::new();
        for (c, p) in containers.iter().enumerate() {
            by_cgroup.entry(p.cgroup).or_default().push(c);
            if n == 0 || p.from >= p.to || p.to <= bounds[0] || p.from >= bounds[n] {
                range.push((1, 0));
                continue;
            }
            let first = bounds.partition_point(|&x| x <= p.from.max(bounds[0])) - 1;
            let last = bounds.partition_point(|&x| x < p.to.min(bounds[n])) - 1;
            range.push((first, last));
            add_span(&bounds, p.from, p.to, 1.0, &mut alive, &mut alive_d);
            for &(a, b) in &p.frozen {
                add_span(&bounds, a, b, 1.0, &mut frozen, &mut frozen_d);
            }
            match p.memory_mb {
                Some(m) => {
                    add_span(&bounds, p.from, p.to, m, &mut mem, &mut mem_d);
                    // Present in whole intervals first..=last, whatever the fraction.
                    msum_d[first] += m;
                    msum_d[last + 1] -= m;
                    mn_d[first] += 1.0;
                    mn_d[last + 1] -= 1.0;
                }
                None => add_span(&bounds, p.from, p.to, 1.0, &mut unk, &mut unk_d),
            }
        }
        let alive = settle(alive, &alive_d);
        let frozen = settle(frozen, &frozen_d);
        let running: Vec<f64> = alive.iter().zip(&frozen).map(|(a, f)| a - f).collect();
        drop(frozen);
        let (mem_sum, mem_n) = (settle(zeros(), &msum_d), settle(zeros(), &mn_d));
        let fill: Vec<f64> = mem_sum
            .iter()
            .zip(&mem_n)
            .map(|(&s, &n)| if n > 0.0 { s / n } else { 1.0 })
            .collect();
        let (alive_mem, alive_unknown_mem) = (settle(mem, &mem_d), settle(unk, &unk_d));
        let by_memory = Runs::of(
            alive_mem
                .iter()
                .zip(&alive_unknown_mem)
                .zip(&fill)
                .map(|((m, u), f)| m + f * u)
                .collect(),
        );
        Self {
            bounds,
            range,
            alive: Runs::of(alive),
            running,
            by_memory,
            fill: Runs::of(fill),
            by_cgroup,
            containers,
        }
    }

    fn len_ns(&self, i: usize) -> u64 {
        self.bounds[i + 1] - self.bounds[i]
    }

    /// Container `c` overlaps interval `i`.
    pub fn present(&self, c: usize, i: usize) -> bool {
        let (a, b) = self.range[c];
        a <= i && i <= b
    }

    /// The fraction of interval `i` container `c` existed.
    pub fn alive(&self, c: usize, i: usize) -> f64 {
        let p = &self.containers[c];
        let (x, y) = (p.from.max(self.bounds[i]), p.to.min(self.bounds[i + 1]));
        y.saturating_sub(x) as f64 / self.len_ns(i) as f64
    }

    /// The fraction of interval `i` container `c` existed and was not frozen.
    pub fn running(&self, c: usize, i: usize) -> f64 {
        let p = &self.containers[c];
        let (x, y) = (p.from.max(self.bounds[i]), p.to.min(self.bounds[i + 1]));
        // The frozen spans that end after x, up to the first that starts at or after y.
        let k = p.frozen.partition_point(|f| f.1 <= x);
        let frozen: u64 = p.frozen[k..]
            .iter()
            .take_while(|f| f.0 < y)
            .map(|&(fa, fb)| fb.min(y).saturating_sub(fa.max(x)))
            .sum();
        y.saturating_sub(x).saturating_sub(frozen) as f64 / self.len_ns(i) as f64
    }

    /// The mean known memory limit of the containers present in `i` (1 when none is known):
    /// what a container without one is weighed with.
    pub fn fill(&self, i: usize) -> f64 {
        self.fill.at(i)
    }

    /// Container `c`'s weight in interval `i` under `policy` (0 for the policies that do not
    /// place idle energy by container).
    pub fn weight(&self, policy: IdlePolicy, c: usize, i: usize) -> f64 {
        match policy {
            IdlePolicy::Unassigned | IdlePolicy::Proportional => 0.0,
            IdlePolicy::Even => self.running(c, i),
            IdlePolicy::ByLifetime => self.alive(c, i),
            IdlePolicy::ByMemory => {
                self.alive(c, i) * self.containers[c].memory_mb.unwrap_or(self.fill(i))
            }
        }
    }

    /// The sum of the weights of the containers present in interval `i` under `policy`.
    pub fn total(&self, policy: IdlePolicy, i: usize) -> f64 {
        match policy {
            IdlePolicy::Unassigned | IdlePolicy::Proportional => 0.0,
            IdlePolicy::Even => self.running[i],
            IdlePolicy::ByLifetime => self.alive.at(i),
            IdlePolicy::ByMemory => self.by_memory.at(i),
        }
    }

    /// The containers of cgroup `cg`.
    pub fn of_cgroup(&self, cg: u64) -> &[usize] {
        self.by_cgroup.get(&cg).map_or(&[], Vec::as_slice)
    }

    /// Containers in order of their first interval: (first, last, container), for sweeps.
    pub fn by_start(&self) -> Vec<(usize, usize, usize)> {
        let mut v: Vec<(usize, usize, usize)> = self
            .range
            .iter()
            .enumerate()
            .filter(|(_, r)| r.0 <= r.1)
            .map(|(c, r)| (r.0, r.1, c))
            .collect();
        v.sort_unstable();
        v
    }

    /// The idle density of one (model, `policy`), where `idle[i]` is (idle J placed by
    /// container in interval `i`, the weights' total there): one pass over the intervals.
    pub fn density<'a>(&'a self, policy: IdlePolicy, idle: &'a [(f64, f64)]) -> Density<'a> {
        let n = self.bounds.len().saturating_sub(1);
        let rate = Rate { idle };
        // Cumulative density at each bound: plain, and times the fill (read by `by-memory`
        // only, for the containers without a limit).
        let mut cum = vec![0.0; n + 1];
        for i in 0..n {
            cum[i + 1] = cum[i] + rate.at(i);
        }
        let mut cum_fill = Vec::new();
        if policy == IdlePolicy::ByMemory {
            cum_fill = vec![0.0; n + 1];
            for i in 0..n {
                cum_fill[i + 1] = cum_fill[i] + rate.at(i) * self.fill(i);
            }
        }
        Density {
            live: self,
            policy,
            n,
            rate,
            cum,
            cum_fill,
        }
    }

    /// Each container's idle energy over its whole life under `policy` (`idle` as for
    /// [`Live::density`]): O(frozen spans) per container once the density is made.
    pub fn idle_over_life(&self, policy: IdlePolicy, idle: &[(f64, f64)]) -> Vec<f64> {
        let d = self.density(policy, idle);
        (0..self.containers.len())
            .map(|c| d.over(c, 0, u64::MAX))
            .collect()
    }
}

/// Σᵢ idleᵢ × weight / totalᵢ over any span, as an integral: the density is idleᵢ / totalᵢ
/// per interval length (times the fill for a container with no memory limit under
/// `by-memory`), and a container's weight is its presence (less its frozen spans under `even`)
/// times its memory limit under `by-memory`.
#[derive(Debug)]
pub struct Density<'a> {
    live: &'a Live<'a>,
    policy: IdlePolicy,
    /// Intervals.
    n: usize,
    rate: Rate<'a>,
    cum: Vec<f64>,
    cum_fill: Vec<f64>,
}

/// Each interval's density, idleᵢ / totalᵢ (0 where no container weighs), computed where it
/// is read rather than kept beside the cumulative sums (an hour at 10 ms: 2.7 MiB a policy).
#[derive(Debug, Clone, Copy)]
struct Rate<'a> {
    idle: &'a [(f64, f64)],
}

impl Rate<'_> {
    fn at(self, i: usize) -> f64 {
        match self.idle.get(i) {
            Some(&(j, t)) if t > 0.0 => j / t,
            _ => 0.0,
        }
    }
}

impl Density<'_> {
    fn at(&self, fill: bool, t: u64) -> f64 {
        let b = &self.live.bounds;
        let n = self.n;
        let cum = if fill { &self.cum_fill } else { &self.cum };
        let t = t.clamp(b[0], b[n]);
        if t == b[n] {
            return cum[n];
        }
        let i = b.partition_point(|&x| x <= t) - 1;
        let r = if fill {
            self.rate.at(i) * self.live.fill(i)
        } else {
            self.rate.at(i)
        };
        cum[i] + r * (t - b[i]) as f64 / self.live.len_ns(i) as f64
    }

    /// Container `c`'s idle joules over `[a, b)`.
    pub fn over(&self, c: usize, a: u64, b: u64) -> f64 {
        let p = &self.live.containers[c];
        let (a, b) = (a.max(p.from), b.min(p.to));
        if !self.policy.by_container() || self.n == 0 || a >= b {
            return 0.0;
        }
        let (fill, scale) = match (self.policy, p.memory_mb) {
            (IdlePolicy::ByMemory, Some(m)) => (false, m),
            (IdlePolicy::ByMemory, None) => (true, 1.0),
            _ => (false, 1.0),
        };
        let span = |x: u64, y: u64| self.at(fill, y) - self.at(fill, x);
        let mut j = span(a, b);
        if self.policy == IdlePolicy::Even {
            let k = p.frozen.partition_point(|f| f.1 <= a);
            j -= p.frozen[k..]
                .iter()
                .take_while(|f| f.0 < b)
                .map(|&(x, y)| span(x.max(a), y.min(b)))
                .sum::<f64>();
        }
        scale * j
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs give back every value bit for bit: equal neighbours merged, 0.0 and -0.0 kept
    /// apart, a NaN its own run; a value that changes in most intervals is kept whole.
    #[test]
    fn runs_give_back_each_interval_value() {
        let dense = [
            1.0,
            1.0,
            1.0,
            0.5,
            2.0,
            2.0,
            0.0,
            -0.0,
            -0.0,
            f64::NAN,
            3.0,
            3.0,
        ];
        let long: Vec<f64> = dense.iter().flat_map(|&v| [v; 4]).collect();
        let r = Runs::of(long.clone());
        assert_eq!(r.values.len(), 7, "as runs: {:?}", r.values);
        for (i, v) in long.iter().enumerate() {
            assert_eq!(r.at(i).to_bits(), v.to_bits(), "interval {i}");
        }
        let r = Runs::of(dense.to_vec());
        assert!(r.starts.is_empty(), "7 runs in 12 intervals: kept whole");
        for (i, v) in dense.iter().enumerate() {
            assert_eq!(r.at(i).to_bits(), v.to_bits(), "interval {i}");
        }
    }

    /// A container's presence in each interval as the per-interval lists had it: (alive,
    /// running) fractions, from the interval's overlap with its span and frozen spans.
    fn old_fractions(p: &Presence, a: u64, b: u64) -> Option<(f64, f64)> {
        let (x, y) = (p.from.max(a), p.to.min(b));
        if x >= y {
            return None;
        }
        let len = (b - a) as f64;
        let frozen: u64 = p
            .frozen
            .iter()
            .map(|&(fa, fb)| fb.min(y).saturating_sub(fa.max(x)))
            .sum();
        Some((
            (y - x) as f64 / len,
            (y - x).saturating_sub(frozen) as f64 / len,
        ))
    }

    /// Irregular intervals, containers that start before the grid, end after it, end mid-interval,
    /// are frozen across many intervals, with and without memory limits.
    fn scenario() -> (Vec<(u64, u64)>, Vec<Presence>) {
        let mut bounds = vec![1_000];
        for k in 0..400u64 {
            bounds.push(bounds[bounds.len() - 1] + 7 + (k * 37) % 23);
        }
        let spans: Vec<(u64, u64)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
        let end = *bounds.last().unwrap();
        let ps = vec![
            Presence {
                cgroup: 10,
                from: 0,
                to: end + 50,
                frozen: vec![(1_300, 2_100), (2_105, 2_106), (5_000, end + 50)],
                memory_mb: Some(512.0),
            },
            Presence {
                cgroup: 11,
                from: 1_503,
                to: 1_509,
                frozen: vec![],
                memory_mb: None,
            },
            Presence {
                cgroup: 12,
                from: 2_000,
                to: 4_444,
                frozen: vec![(2_500, 3_001)],
                memory_mb: None,
            },
            Presence {
                cgroup: 11,
                from: 3_000,
                to: 6_000,
                frozen: vec![(3_000, 3_100)],
                memory_mb: Some(128.0),
            },
            // Outside the grid entirely.
            Presence {
                cgroup: 13,
                from: end + 10,
                to: end + 20,
                frozen: vec![],
                memory_mb: Some(64.0),
            },
        ];
        (spans, ps)
    }

    #[test]
    fn weights_and_totals_match_the_per_interval_lists() {
        let (spans, ps) = scenario();
        let live = Live::new(&spans, ps.clone());
        for (i, &(a, b)) in spans.iter().enumerate() {
            let present: Vec<(usize, f64, f64)> = ps
                .iter()
                .enumerate()
                .filter_map(|(c, p)| old_fractions(p, a, b).map(|(x, r)| (c, x, r)))
                .collect();
            let known: Vec<f64> = present
                .iter()
                .filter_map(|&(c, _, _)| ps[c].memory_mb)
                .collect();
            let fill = if known.is_empty() {
                1.0
            } else {
                known.iter().sum::<f64>() / known.len() as f64
            };
            for (c, p) in ps.iter().enumerate() {
                let old = present.iter().find(|x| x.0 == c);
                assert_eq!(
                    live.present(c, i),
                    old.is_some(),
                    "container {c}, interval {i}"
                );
                if let Some(&(_, alive, running)) = old {
                    assert_eq!(live.weight(IdlePolicy::ByLifetime, c, i), alive);
                    assert_eq!(live.weight(IdlePolicy::Even, c, i), running);
                    let m = p.memory_mb.unwrap_or(fill);
                    assert_eq!(live.weight(IdlePolicy::ByMemory, c, i), alive * m);
                }
            }
            let sum = |f: &dyn Fn(&(usize, f64, f64)) -> f64| present.iter().map(f).sum::<f64>();
            let want = [
                (IdlePolicy::ByLifetime, sum(&|x| x.1)),
                (IdlePolicy::Even, sum(&|x| x.2)),
                (
                    IdlePolicy::ByMemory,
                    sum(&|x| x.1 * ps[x.0].memory_mb.unwrap_or(fill)),
                ),
            ];
            for (policy, w) in want {
                let got = live.total(policy, i);
                assert!(
                    (got - w).abs() <= 1e-12 * w.max(1.0),
                    "{policy:?}, interval {i}: {got} vs {w}"
                );
            }
        }
    }

    #[test]
    fn idle_over_a_life_is_the_sum_of_its_interval_shares() {
        let (spans, ps) = scenario();
        let live = Live::new(&spans, ps.clone());
        // Some intervals with no idle energy to place (missing energy), the rest varied.
        let idle_j: Vec<f64> = (0..spans.len())
            .map(|i| {
                if i % 17 == 5 {
                    0.0
                } else {
                    1.0 + (i % 7) as f64
                }
            })
            .collect();
        for policy in [
            IdlePolicy::ByLifetime,
            IdlePolicy::Even,
            IdlePolicy::ByMemory,
        ] {
            let idle: Vec<(f64, f64)> = (0..spans.len())
                .map(|i| (idle_j[i], live.total(policy, i)))
                .collect();
            let got = live.idle_over_life(policy, &idle);
            let mut placed = 0.0;
            for (c, g) in got.iter().enumerate() {
                let want: f64 = (0..spans.len())
                    .filter(|&i| live.present(c, i) && idle[i].1 > 0.0)
                    .map(|i| idle[i].0 * live.weight(policy, c, i) / idle[i].1)
                    .sum();
                assert!(
                    (g - want).abs() <= 1e-9 * want.max(1.0),
                    "{policy:?}, container {c}: {g} vs {want}"
                );
                placed += g;
            }
            // Over spans of whole intervals, as the per-second table asks.
            let d = live.density(policy, &idle);
            for (c, p) in ps.iter().enumerate() {
                for w in (0..spans.len()).step_by(9).collect::<Vec<_>>().windows(2) {
                    let want: f64 = (w[0]..w[1])
                        .filter(|&i| live.present(c, i) && idle[i].1 > 0.0)
                        .map(|i| idle[i].0 * live.weight(policy, c, i) / idle[i].1)
                        .sum();
                    let got = d.over(c, spans[w[0]].0, spans[w[1]].0);
                    assert!(
                        (got - want).abs() <= 1e-9 * want.max(1.0),
                        "{policy:?}, container {c} ({p:?}), intervals {w:?}: {got} vs {want}"
                    );
                }
            }
            // Every joule of an interval with someone present goes to someone.
            let want: f64 = idle.iter().filter(|x| x.1 > 0.0).map(|x| x.0).sum();
            assert!((placed - want).abs() < 1e-9 * want, "{policy:?}");
        }
        assert_eq!(
            live.idle_over_life(IdlePolicy::Proportional, &[]),
            vec![0.0; ps.len()]
        );
    }
}
