//! Steal and IRQ time taken back out of the tasks' CPU time.
//!
//! The perf accounting charges a task for the wall time between its samples (`cpu`), so time
//! the hypervisor stole from a virtual CPU and time spent in hard and soft interrupt handlers
//! land on whichever task was interrupted. The kernel's `cpu.stat` leaves them out (paravirtual
//! steal accounting, `CONFIG_IRQ_TIME_ACCOUNTING`), and so does this module, from the trace's
//! cpu-stat readings (FORMAT.md, kind 10: per-CPU cumulative steal, irq and softirq time).
//!
//! **Rule.** Per CPU, each kind's increase between two consecutive readings is spread over the
//! grid intervals the span covers, in proportion to the CPU's non-idle time in each (steal
//! only accrues while the virtual CPU has something to run; a reading's 10 ms ticks cannot place
//! it more finely). In each interval it is removed from the non-idle cells (cgroups, and the
//! unknown time) in proportion to their CPU time — the clock counters (`cpu-clock`,
//! `task-clock`) scaled by the same factor, hardware counters left alone (they stop while a
//! vCPU is descheduled, and count the handlers' own work) — and becomes the cells `<steal>`,
//! `<irq>` and `<softirq>`. What exceeds the span's non-idle time (interrupts while the CPU
//! idled, tick rounding) comes out of the idle task's time the same way; what exceeds that too
//! is not placed and is counted. So every interval's total CPU time and clock counters are
//! unchanged. The activation-window segments of a cgroup get the factor of their (CPU,
//! interval), so activations stay consistent with their containers.

use std::collections::BTreeMap;

use pws_trace::records::{CpuStatBlock, TimeAccounting};

use super::cpu::{Cells, Usage, CLOCK_COUNTERS, IDLE};
use super::grid::Grid;

/// Cell keys of the time taken out (not cgroups: kernel cgroup ids are inode numbers, and
/// `u64::MAX`, `u64::MAX - 1` are the unknown time and the attribution's unassigned row).
pub const STEAL: u64 = u64::MAX - 2;
pub const IRQ: u64 = u64::MAX - 3;
pub const SOFTIRQ: u64 = u64::MAX - 4;
/// The kinds, in the order of every per-kind array here, with the /proc/stat field each
/// comes from.
pub const KINDS: [(u64, &str); 3] = [(STEAL, "steal"), (IRQ, "irq"), (SOFTIRQ, "softirq")];

/// The name of a cell key of this module (`<steal>`, `<irq>`, `<softirq>`), else None.
pub fn label(key: u64) -> Option<&'static str> {
    match key {
        STEAL => Some("<steal>"),
        IRQ => Some("<irq>"),
        SOFTIRQ => Some("<softirq>"),
        _ => None,
    }
}

pub fn is_pseudo(key: u64) -> bool {
    label(key).is_some()
}

/// One CPU's cumulative times: (time, [steal, irq, softirq] ns), sorted by time.
pub type Readings = Vec<(u64, [f64; 3])>;

/// Per-CPU readings from the trace's cpu-stat blocks, in nanoseconds. A kind the kernel did
/// not give (an old kernel without steal) reads 0, and so does one the kernel counts in the
/// tasks' CPU time (`TimeAccounting::Included`: its cpu.stat includes it, and /proc/stat's
/// value is only tick samples), so that it stays where cpu.stat has it.
pub fn readings(blocks: &[CpuStatBlock]) -> BTreeMap<u32, Readings> {
    let mut out: BTreeMap<u32, Readings> = BTreeMap::new();
    for b in blocks {
        if b.ticks_per_s == 0 {
            continue;
        }
        let ns_per_tick = 1e9 / b.ticks_per_s as f64;
        let kept = kept(b);
        let at: Vec<Option<usize>> = KINDS
            .iter()
            .zip(kept)
            .map(|((_, f), k)| b.field(f).filter(|_| k))
            .collect();
        for s in &b.cpus {
            let r = out.entry(s.cpu).or_default();
            for x in &s.samples {
                let v = |k: usize| {
                    at[k]
                        .and_then(|i| x.values.get(i))
                        .map_or(0.0, |&t| t as f64 * ns_per_tick)
                };
                r.push((x.ts_ns, [v(0), v(1), v(2)]));
            }
        }
    }
    for r in out.values_mut() {
        r.sort_by_key(|x| x.0);
        r.dedup_by_key(|x| x.0);
    }
    out
}

/// Which kinds are taken out: all but those the kernel includes in tasks' time.
fn kept(b: &CpuStatBlock) -> [bool; 3] {
    let included = |a: TimeAccounting| a == TimeAccounting::Included;
    [
        !included(b.steal_time),
        !included(b.irq_time),
        !included(b.irq_time),
    ]
}

/// What was taken out on one CPU, in ns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CpuFigures {
    pub cpu: u32,
    /// Steal, irq, softirq placed in the tables (from tasks and from idle).
    pub removed_ns: [u64; 3],
    /// Part of `removed_ns` (all kinds) taken from the idle task's time.
    pub from_idle_ns: u64,
    /// Increases that exceeded all the time the CPU had in their span (rounding, or spans
    /// outside the grid's time with the CPU's cells missing).
    pub unplaced_ns: f64,
    /// Non-idle CPU time before the subtraction (tasks, cgroups, unknown).
    pub busy_ns: u64,
}

impl CpuFigures {
    pub fn total_ns(&self) -> u64 {
        self.removed_ns.iter().sum()
    }

    /// Share of busy time that was steal or IRQ time taken from tasks, in %.
    pub fn percent_of_busy(&self) -> f64 {
        if self.busy_ns == 0 {
            return 0.0;
        }
        100.0 * (self.total_ns() - self.from_idle_ns) as f64 / self.busy_ns as f64
    }
}

/// What the subtraction did, for the notes and `--summary-json`.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// None: the trace has no cpu-stat readings, nothing was changed.
    pub per_cpu: Option<Vec<CpuFigures>>,
    /// How the recording kernel accounts (irq, steal) time.
    pub accounting: (TimeAccounting, TimeAccounting),
    /// CPUs of the perf stream without readings (left as they were).
    pub cpus_without: Vec<u32>,
}

impl Default for Report {
    fn default() -> Self {
        Self {
            per_cpu: None,
            accounting: (TimeAccounting::Unknown, TimeAccounting::Unknown),
            cpus_without: Vec::new(),
        }
    }
}

impl Report {
    pub fn notes(&self) -> Vec<String> {
        let Some(per_cpu) = &self.per_cpu else {
            return vec!["the trace has no cpu-stat readings (recorded before format 1.1, with --no-cpu-stat, or a perf.data input): steal and IRQ time are counted as the CPU time of the task they interrupted".into()];
        };
        let s = |ns: u64| ns as f64 / 1e9;
        let sum = |k: usize| per_cpu.iter().map(|c| c.removed_ns[k]).sum::<u64>();
        let busy: u64 = per_cpu.iter().map(|c| c.busy_ns).sum();
        let from_tasks: u64 = per_cpu.iter().map(|c| c.total_ns() - c.from_idle_ns).sum();
        let max = per_cpu
            .iter()
            .max_by(|a, b| a.percent_of_busy().total_cmp(&b.percent_of_busy()));
        let mut n = format!(
            "steal and IRQ time taken out of tasks' CPU time (usage rows <steal>, <irq>, <softirq>): steal {:.3} s, irq {:.3} s, softirq {:.3} s; {:.2} % of busy time",
            s(sum(0)),
            s(sum(1)),
            s(sum(2)),
            if busy > 0 { 100.0 * from_tasks as f64 / busy as f64 } else { 0.0 }
        );
        if let Some(m) = max {
            n += &format!(", at most {:.2} % on CPU {}", m.percent_of_busy(), m.cpu);
        }
        let idle: u64 = per_cpu.iter().map(|c| c.from_idle_ns).sum();
        if idle > 0 {
            n += &format!("; {:.3} s of it from idle time", s(idle));
        }
        let mut out = vec![n];
        let (irq, steal) = self.accounting;
        for (what, a) in [("IRQ (irq, softirq)", irq), ("steal", steal)] {
            match a {
                TimeAccounting::Included => out.push(format!("the recording kernel counts {what} time in the tasks' CPU time (its build lacks the option that accounts it apart), as its cpu.stat does: left there, not taken out")),
                TimeAccounting::Apart => {}
                _ => out.push(format!("whether the recording kernel keeps {what} time out of tasks' CPU time is unknown (no build config where the recorder looked): taken out as if it did")),
            }
        }
        if !self.cpus_without.is_empty() {
            out.push(format!(
                "CPUs {:?} have no cpu-stat readings: their steal and IRQ time stay counted as the interrupted tasks'",
                self.cpus_without
            ));
        }
        out
    }

    pub fn json(&self) -> serde_json::Value {
        let Some(per_cpu) = &self.per_cpu else {
            return serde_json::Value::Null;
        };
        let s = |ns: u64| ns as f64 / 1e9;
        let cpu = |c: &CpuFigures| {
            serde_json::json!({
                "cpu": c.cpu, "steal_s": s(c.removed_ns[0]), "irq_s": s(c.removed_ns[1]),
                "softirq_s": s(c.removed_ns[2]), "from_idle_s": s(c.from_idle_ns),
                "unplaced_s": c.unplaced_ns / 1e9, "busy_s": s(c.busy_ns),
                "percent_of_busy": c.percent_of_busy(),
            })
        };
        let sum = |f: &dyn Fn(&CpuFigures) -> u64| per_cpu.iter().map(f).sum::<u64>();
        let busy = sum(&|c| c.busy_ns);
        let from_tasks = sum(&|c| c.total_ns() - c.from_idle_ns);
        serde_json::json!({
            "steal_s": s(sum(&|c| c.removed_ns[0])),
            "irq_s": s(sum(&|c| c.removed_ns[1])),
            "softirq_s": s(sum(&|c| c.removed_ns[2])),
            "from_idle_s": s(sum(&|c| c.from_idle_ns)),
            "busy_s": s(busy),
            "percent_of_busy": if busy > 0 { 100.0 * from_tasks as f64 / busy as f64 } else { 0.0 },
            "max_percent_of_busy": per_cpu.iter().map(CpuFigures::percent_of_busy).fold(0.0, f64::max),
            "per_cpu": per_cpu.iter().map(cpu).collect::<Vec<_>>(),
            "cpus_without_readings": self.cpus_without,
            "kernel_irq_time": self.accounting.0.to_string(),
            "kernel_steal_time": self.accounting.1.to_string(),
        })
    }
}

/// Takes steal and IRQ time out of every CPU's cells and activation segments (see the module's
/// rule), all cells at once. `columns` names the counter columns of every `Usage`.
/// `replay_perf` does the same window by window with [`CpuSteal`]; the tests check the two
/// against each other.
#[cfg(test)]
pub fn apply(
    blocks: &[CpuStatBlock],
    grid: &Grid,
    columns: &[String],
    per_cpu: &mut [super::cpu::CpuReplay],
) -> Report {
    let readings = readings(blocks);
    let clock = clock_columns(columns);
    let mut report = Report::of(blocks, &readings);
    for c in per_cpu.iter_mut() {
        match readings.get(&c.cpu) {
            Some(r) if report.per_cpu.is_some() => {
                let mut s = CpuSteal::new(c.cpu, r, grid, &clock);
                c.cells = s.push(std::mem::take(&mut c.cells), usize::MAX).0;
                let f = s.finish(&mut c.activations);
                report.per_cpu.as_mut().expect("checked").push(f);
            }
            _ if report.per_cpu.is_some() => report.cpus_without.push(c.cpu),
            _ => {}
        }
    }
    report
}

/// Which counter columns count time (scaled with the CPU time taken out).
pub fn clock_columns(columns: &[String]) -> Vec<bool> {
    columns
        .iter()
        .map(|n| CLOCK_COUNTERS.contains(&n.as_str()))
        .collect()
}

impl Report {
    /// An empty report for these blocks: `per_cpu` None when they hold no readings, else an
    /// empty list for the CPUs to be added to.
    pub fn of(blocks: &[CpuStatBlock], readings: &BTreeMap<u32, Readings>) -> Self {
        match blocks.last() {
            Some(last) if !readings.is_empty() => Self {
                per_cpu: Some(Vec::new()),
                accounting: (last.irq_time, last.steal_time),
                cpus_without: Vec::new(),
            },
            _ => Self::default(),
        }
    }
}

/// Time to take out of one interval: [kind] from the non-idle cells, and from idle.
#[derive(Debug, Clone, Copy, Default)]
struct Take {
    busy: [f64; 3],
    idle: [f64; 3],
}

/// One CPU's subtraction, done as its final cells come: the accounting hands them over window
/// by window, so they are never all held. An interval is settled once every reading span that
/// covers it has been read, and a span is read once the CPU's time is known in every interval
/// it covers. Whole or by windows, each cell gets the same factor from the same sums in the
/// same order.
pub struct CpuSteal<'a> {
    readings: &'a Readings,
    grid: &'a Grid,
    clock: &'a [bool],
    /// The next span to read: `readings[next]` to `readings[next + 1]`.
    next: usize,
    /// Cells given and not settled, sorted.
    pending: Vec<((usize, u64), Usage)>,
    /// Non-idle and idle CPU time of each interval not settled.
    time: BTreeMap<usize, (u64, u64)>,
    take: BTreeMap<usize, Take>,
    /// (interval, factor) where the non-idle cells keep less than all: the activation
    /// segments get the same factor at the end.
    keep_busy: Vec<(usize, f64)>,
    fig: CpuFigures,
}

impl<'a> CpuSteal<'a> {
    pub fn new(cpu: u32, readings: &'a Readings, grid: &'a Grid, clock: &'a [bool]) -> Self {
        Self {
            readings,
            grid,
            clock,
            next: 0,
            pending: Vec::new(),
            time: BTreeMap::new(),
            take: BTreeMap::new(),
            keep_busy: Vec::new(),
            fig: CpuFigures {
                cpu,
                ..CpuFigures::default()
            },
        }
    }

    /// Takes `cells` (sorted, every one of an interval before `complete_before`, and no cell
    /// of an interval before that left to come) and returns the cells now settled, sorted,
    /// with the interval before which all of this CPU's settled cells have been returned.
    pub fn push(&mut self, cells: Cells, complete_before: usize) -> (Cells, usize) {
        let n = self.grid.len();
        for ((i, cg), u) in &cells {
            if *i >= n || is_pseudo(*cg) {
                continue;
            }
            let t = self.time.entry(*i).or_default();
            if *cg == IDLE {
                t.1 += u.cpu_ns;
            } else {
                t.0 += u.cpu_ns;
                self.fig.busy_ns += u.cpu_ns;
            }
        }
        if self
            .pending
            .last()
            .zip(cells.first())
            .is_some_and(|(a, b)| a.0 >= b.0)
        {
            // Not in order (no walk gives that): kept right rather than fast.
            self.pending.extend(cells);
            self.pending.sort_by_key(|(k, _)| *k);
        } else {
            self.pending.extend(cells);
        }
        while self.next + 1 < self.readings.len() {
            let (t0, t1) = (self.readings[self.next].0, self.readings[self.next + 1].0);
            if covered(self.grid, t0, t1).is_some_and(|(_, last)| last >= complete_before) {
                break;
            }
            self.read_span(self.next);
            self.next += 1;
        }
        // Spans still to read cover intervals from their first on: those stay.
        let settled = match self.readings.get(self.next + 1) {
            Some(&(t1, _)) => covered(self.grid, self.readings[self.next].0, t1)
                .map_or(complete_before, |(first, _)| first.min(complete_before)),
            None => complete_before,
        };
        (self.settle(settled), settled)
    }

    /// Settles every cell left and scales the activation segments (segment, interval) by
    /// their interval's factor; returns what was taken out.
    pub fn finish(mut self, segments: &mut [((usize, usize), Usage)]) -> CpuFigures {
        let (rest, _) = self.push(Vec::new(), usize::MAX);
        debug_assert!(rest.is_empty() && self.pending.is_empty());
        self.scale_segments(segments);
        self.fig
    }

    /// Scales activation segments (segment, interval) by their interval's factor, as the
    /// cells of that interval were: for segments of intervals settled already (before the
    /// interval [`CpuSteal::push`] returned), each scaled once.
    pub fn scale_segments(&self, segments: &mut [((usize, usize), Usage)]) {
        for ((_, i), u) in segments {
            if let Ok(at) = self.keep_busy.binary_search_by_key(i, |x| x.0) {
                scale(u, self.keep_busy[at].1, self.clock);
            }
        }
    }

    /// Spreads reading span `at`'s increases over the intervals it covers, by the CPU's busy
    /// and idle time in each.
    fn read_span(&mut self, at: usize) {
        let ((t0, a), (t1, b)) = (self.readings[at], self.readings[at + 1]);
        // A value that went back (a CPU brought online again) adds nothing.
        let d: [f64; 3] = std::array::from_fn(|k| (b[k] - a[k]).max(0.0));
        let total: f64 = d.iter().sum();
        if total <= 0.0 {
            return;
        }
        // The span's share of each interval's busy and idle time, by overlap.
        let mut parts: Vec<(usize, f64, f64)> = Vec::new();
        let grid = self.grid;
        grid.split(t0, t1, |i, x, y| {
            let (s, e) = grid.span(i);
            let f = (y - x) as f64 / (e - s) as f64;
            let (busy, idle) = self.time.get(&i).copied().unwrap_or_default();
            parts.push((i, busy as f64 * f, idle as f64 * f));
        });
        let wb: f64 = parts.iter().map(|p| p.1).sum();
        let wi: f64 = parts.iter().map(|p| p.2).sum();
        let from_busy = total.min(wb);
        let from_idle = (total - from_busy).min(wi);
        self.fig.unplaced_ns += total - from_busy - from_idle;
        for (i, pb, pi) in parts {
            let take = self.take.entry(i).or_default();
            for (k, dk) in d.iter().enumerate() {
                let share = dk / total;
                if wb > 0.0 {
                    take.busy[k] += from_busy * share * pb / wb;
                }
                if wi > 0.0 {
                    take.idle[k] += from_idle * share * pi / wi;
                }
            }
        }
    }

    /// Scales the pending cells of intervals before `before` and adds each interval's pseudo
    /// cells (the whole ns taken, split among the kinds by their amounts); returns them sorted.
    fn settle(&mut self, before: usize) -> Cells {
        let cut = self.pending.partition_point(|((i, _), _)| *i < before);
        let mut out: Cells = self.pending.drain(..cut).collect();
        let n = self.grid.len();
        let width = self.clock.len();
        let mut added: Cells = Vec::new();
        let mut at = 0;
        while at < out.len() {
            let i = out[at].0 .0;
            let end = at + out[at..].partition_point(|((j, _), _)| *j == i);
            if i < n {
                self.settle_interval(i, &mut out[at..end], width, &mut added);
            }
            at = end;
        }
        self.time = self.time.split_off(&before);
        self.take = self.take.split_off(&before);
        if !added.is_empty() {
            out.extend(added);
            out.sort_unstable_by_key(|(k, _)| *k);
        }
        out
    }

    /// One interval's cells: each keeps its factor, and what was taken becomes the pseudo
    /// cells (pushed to `added` unless one is among `cells` already).
    fn settle_interval(
        &mut self,
        i: usize,
        cells: &mut [((usize, u64), Usage)],
        width: usize,
        added: &mut Cells,
    ) {
        let (busy, idle) = self.time.get(&i).copied().unwrap_or_default();
        let take = self.take.get(&i).copied().unwrap_or_default();
        let f = |base: u64, t: &[f64; 3]| {
            if base == 0 {
                1.0
            } else {
                (1.0 - t.iter().sum::<f64>() / base as f64).clamp(0.0, 1.0)
            }
        };
        let keep = (f(busy, &take.busy), f(idle, &take.idle));
        if keep.0 < 1.0 {
            self.keep_busy.push((i, keep.0));
        }
        // What was taken: CPU time exactly, in whole ns, from tasks and from idle, and the
        // clock counters.
        let (mut from_busy, mut from_idle, mut counters) = (0u64, 0u64, vec![0.0; width]);
        for ((_, cg), u) in cells.iter_mut() {
            if is_pseudo(*cg) {
                continue;
            }
            let f = if *cg == IDLE { keep.1 } else { keep.0 };
            if f >= 1.0 {
                continue;
            }
            let before = u.clone();
            scale(u, f, self.clock);
            if *cg == IDLE {
                from_idle += before.cpu_ns - u.cpu_ns;
            } else {
                from_busy += before.cpu_ns - u.cpu_ns;
            }
            for (k, x) in counters.iter_mut().enumerate() {
                if self.clock[k] {
                    let (b, a) = (before.counters.get(k), u.counters.get(k));
                    *x += b.copied().unwrap_or(0.0) - a.copied().unwrap_or(0.0);
                }
            }
        }
        let ns = from_busy + from_idle;
        if ns == 0 {
            return;
        }
        self.fig.from_idle_ns += from_idle;
        let amounts: [f64; 3] = std::array::from_fn(|k| take.busy[k] + take.idle[k]);
        let sum: f64 = amounts.iter().sum();
        // Whole ns per kind by its amount; the rounding goes to the largest, so the interval's
        // sum is exact.
        let mut parts: [u64; 3] =
            std::array::from_fn(|k| (ns as f64 * amounts[k] / sum.max(f64::MIN_POSITIVE)) as u64);
        let biggest = (0..3)
            .max_by(|a, b| amounts[*a].total_cmp(&amounts[*b]))
            .expect("three kinds");
        parts[biggest] = ns.saturating_sub(parts.iter().sum::<u64>() - parts[biggest]);
        for (k, (key, _)) in KINDS.iter().enumerate() {
            if parts[k] == 0 {
                continue;
            }
            self.fig.removed_ns[k] += parts[k];
            let share = parts[k] as f64 / ns as f64;
            let cell = match cells.binary_search_by_key(&(i, *key), |(k, _)| *k) {
                Ok(at) => &mut cells[at].1,
                Err(_) => {
                    added.push(((i, *key), Usage::default()));
                    &mut added.last_mut().expect("pushed").1
                }
            };
            cell.cpu_ns += parts[k];
            if cell.counters.len() < width {
                cell.counters.resize(width, 0.0);
            }
            for (x, add) in cell.counters.iter_mut().zip(&counters) {
                *x += add * share;
            }
        }
    }
}

/// The first and last grid intervals `[t0, t1)` overlaps (as `Grid::split` walks them).
fn covered(grid: &Grid, t0: u64, t1: u64) -> Option<(usize, usize)> {
    let (a, b) = (t0.max(grid.start()), t1.min(grid.end()));
    (a < b)
        .then(|| (grid.index(a), grid.index(b - 1)))
        .and_then(|(x, y)| x.zip(y))
}

/// Keeps `f` of a usage's CPU time and clock counters.
fn scale(u: &mut Usage, f: f64, clock: &[bool]) {
    u.cpu_ns = (u.cpu_ns as f64 * f).round() as u64;
    for (x, is_clock) in u.counters.iter_mut().zip(clock) {
        if *is_clock {
            *x *= f;
        }
    }
}

/// Readings of one CPU in ticks of 1 ns, so values are ns: (time, [steal, irq, softirq]).
#[cfg(test)]
pub fn readings_block(cpu: u32, readings: &[(u64, [u64; 3])]) -> CpuStatBlock {
    use pws_trace::records::{CpuStatSample, CpuStatSeries};
    CpuStatBlock {
        ticks_per_s: 1_000_000_000,
        irq_time: TimeAccounting::Apart,
        steal_time: TimeAccounting::Apart,
        fields: ["user", "irq", "softirq", "steal"]
            .map(String::from)
            .to_vec(),
        cpus: vec![CpuStatSeries {
            cpu,
            samples: readings
                .iter()
                .map(|&(ts_ns, [s, i, q])| CpuStatSample {
                    ts_ns,
                    values: vec![999, i, q, s],
                })
                .collect(),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::cpu::{CpuReplay, UNKNOWN};

    use super::readings_block as block;

    fn u(ns: u64, clock: f64, instr: f64) -> Usage {
        Usage {
            cpu_ns: ns,
            counters: smallvec::smallvec![clock, instr],
        }
    }

    fn columns() -> Vec<String> {
        vec!["cpu-clock".into(), "instructions".into()]
    }

    /// (cpu_ns, clock, instructions) summed over an interval's cells.
    fn total(c: &CpuReplay, i: usize) -> (u64, f64, f64) {
        c.cells
            .iter()
            .filter(|((k, _), _)| *k == i)
            .fold((0, 0.0, 0.0), |(a, b, d), (_, u)| {
                (a + u.cpu_ns, b + u.counters[0], d + u.counters[1])
            })
    }

    fn cpu(cells: &[((usize, u64), Usage)]) -> CpuReplay {
        let mut cells = cells.to_vec();
        cells.sort_unstable_by_key(|(k, _)| *k);
        CpuReplay {
            cpu: 0,
            cells,
            ..CpuReplay::default()
        }
    }

    fn cell_opt(c: &CpuReplay, key: (usize, u64)) -> Option<&Usage> {
        crate::replay::cpu::cell_of(&c.cells, key)
    }

    fn cell(c: &CpuReplay, key: (usize, u64)) -> &Usage {
        cell_opt(c, key).expect("a cell")
    }

    /// The accounting hands a CPU's cells over window by window; every window cut gives the
    /// cells, segments and figures of the subtraction done on all cells at once, bit for bit.
    #[test]
    fn by_windows_as_all_at_once() {
        // 40 intervals of 10 ns; readings every 25 ns (spans straddle intervals), steal and
        // IRQ growing unevenly; cells of two cgroups, idle and unknown time, some intervals
        // empty.
        let grid = Grid::fixed(0, 400, 10).unwrap();
        let mut cells = Vec::new();
        for i in 0..40usize {
            if i % 7 == 3 {
                continue;
            }
            let busy = 3 + (i as u64 * 5) % 7;
            cells.push(((i, 5), u(busy, busy as f64, 100.0 * i as f64)));
            if i % 3 == 0 {
                cells.push(((i, 6), u(2, 2.0, 7.0)));
            }
            cells.push(((i, IDLE), u(10 - busy.min(8), 1.0, 0.0)));
            if i % 5 == 1 {
                cells.push(((i, UNKNOWN), u(1, 1.0, 0.0)));
            }
        }
        let readings: Vec<(u64, [u64; 3])> = (0..=16u64)
            .map(|k| (k * 25, [k * k / 3, k * 2, k / 2]))
            .collect();
        let b = block(0, &readings);
        let mut whole = cpu(&cells);
        for i in (0..40).step_by(3) {
            whole.activations.push(((i, i), u(1, 1.0, 10.0)));
        }
        let segments = whole.activations.clone();
        let report = apply(
            std::slice::from_ref(&b),
            &grid,
            &columns(),
            std::slice::from_mut(&mut whole),
        );
        let fig = report.per_cpu.expect("readings")[0].clone();
        assert!(fig.total_ns() > 0, "the test takes time out");

        let r = readings_of(&b);
        let clock = clock_columns(&columns());
        for cuts in [
            vec![1, 2, 3],
            vec![5, 17, 18, 33],
            vec![39],
            vec![12, 12, 30],
        ] {
            let mut s = CpuSteal::new(0, &r, &grid, &clock);
            let (mut got, mut given_before) = (Vec::new(), 0);
            let mut from = 0;
            for &cut in &cuts {
                let part: Cells = cells
                    .iter()
                    .filter(|((i, _), _)| (from..cut).contains(i))
                    .cloned()
                    .collect();
                let (settled, h) = s.push(part, cut);
                assert!(settled
                    .iter()
                    .all(|((i, _), _)| *i >= given_before && *i < h));
                assert!(h <= cut && h >= given_before, "horizons move forward");
                got.extend(settled);
                (given_before, from) = (h, cut);
            }
            let rest: Cells = cells
                .iter()
                .filter(|((i, _), _)| *i >= from)
                .cloned()
                .collect();
            got.extend(s.push(rest, usize::MAX).0);
            let mut segs = segments.clone();
            let f = s.finish(&mut segs);
            assert_eq!(got, whole.cells, "cuts {cuts:?}: the same cells");
            assert_eq!(segs, whole.activations, "cuts {cuts:?}: the same segments");
            assert_eq!(f, fig, "cuts {cuts:?}: the same figures");
        }
    }

    fn readings_of(b: &CpuStatBlock) -> Readings {
        readings(std::slice::from_ref(b)).remove(&0).expect("CPU 0")
    }

    #[test]
    fn taken_from_tasks_by_their_time_and_sums_kept() {
        let grid = Grid::from_times(vec![0, 100, 200]).unwrap();
        let mut c = cpu(&[
            ((0, 5), u(60, 60.0, 1000.0)),
            ((0, 6), u(20, 20.0, 300.0)),
            ((0, IDLE), u(20, 20.0, 0.0)),
            ((1, 5), u(90, 90.0, 2000.0)),
            ((1, UNKNOWN), u(10, 10.0, 0.0)),
        ]);
        c.activations.push(((3, 1), u(50, 50.0, 700.0)));
        let before: Vec<_> = (0..2).map(|i| total(&c, i)).collect();
        // 36 ns of steal and 4 of irq over [0, 200): 80 busy ns in interval 0, 100 in 1.
        let b = block(0, &[(0, [0, 0, 0]), (200, [36, 4, 0])]);
        let r = apply(&[b], &grid, &columns(), std::slice::from_mut(&mut c));
        for (i, b) in before.iter().enumerate() {
            let after = total(&c, i);
            assert_eq!(after.0, b.0, "interval {i}: CPU time kept");
            assert!((after.1 - b.1).abs() < 1e-9, "clock counter kept");
            assert!((after.2 - b.2).abs() < 1e-9, "instructions kept");
        }
        // Interval 0 gives 40 × 80/180 = 17.8 ns, its tasks by their time; idle untouched.
        let keep0: f64 = 1.0 - 40.0 * 80.0 / 180.0 / 80.0;
        assert_eq!(cell(&c, (0, 5)).cpu_ns, (60.0 * keep0).round() as u64);
        assert_eq!(cell(&c, (0, 6)).cpu_ns, (20.0 * keep0).round() as u64);
        assert_eq!(cell(&c, (0, IDLE)).cpu_ns, 20);
        assert!((cell(&c, (0, 5)).counters[0] - 60.0 * keep0).abs() < 1e-9);
        assert_eq!(
            cell(&c, (0, 5)).counters[1],
            1000.0,
            "hardware counters unchanged"
        );
        // The taken time is its own rows, steal and irq 9:1, with the clock counter's part.
        let steal: u64 = (0..2)
            .map(|i| cell_opt(&c, (i, STEAL)).map_or(0, |u| u.cpu_ns))
            .sum();
        let irq: u64 = (0..2)
            .map(|i| cell_opt(&c, (i, IRQ)).map_or(0, |u| u.cpu_ns))
            .sum();
        // 40 ns, give or take each cell's rounding to whole ns (the interval sums are exact).
        assert!((39..=41).contains(&(steal + irq)), "{steal} + {irq}");
        assert!(
            (35..=37).contains(&steal) && (3..=5).contains(&irq),
            "{steal} {irq}"
        );
        assert!(cell_opt(&c, (0, SOFTIRQ)).is_none());
        assert_eq!(cell(&c, (0, STEAL)).counters[1], 0.0);
        assert!(cell(&c, (0, STEAL)).counters[0] > 0.0);
        // The unknown time is a task's too; the segment gets its interval's factor.
        let keep1: f64 = 1.0 - 40.0 * 100.0 / 180.0 / 100.0;
        assert_eq!(cell(&c, (1, UNKNOWN)).cpu_ns, (10.0 * keep1).round() as u64);
        assert_eq!(c.activations[0].1.cpu_ns, (50.0 * keep1).round() as u64);
        assert_eq!(c.activations[0].1.counters[1], 700.0);
        let f = &r.per_cpu.as_ref().unwrap()[0];
        assert_eq!(
            (f.removed_ns, f.from_idle_ns, f.busy_ns),
            ([steal, irq, 0], 0, 180)
        );
        let pct = 100.0 * (steal + irq) as f64 / 180.0;
        assert!((f.percent_of_busy() - pct).abs() < 1e-9);
        let note = &r.notes()[0];
        assert!(note.contains(&format!("{pct:.2} % of busy time")), "{note}");
        assert_eq!(r.json()["per_cpu"][0]["cpu"], 0);
    }

    #[test]
    fn more_than_the_busy_time_comes_out_of_idle_then_is_counted_unplaced() {
        let grid = Grid::from_times(vec![0, 100]).unwrap();
        let mut c = cpu(&[((0, 5), u(10, 10.0, 1.0)), ((0, IDLE), u(90, 90.0, 0.0))]);
        let b = block(0, &[(0, [0, 0, 0]), (100, [0, 0, 30])]);
        let r = apply(&[b], &grid, &columns(), std::slice::from_mut(&mut c));
        assert_eq!(cell(&c, (0, 5)).cpu_ns, 0);
        assert_eq!(cell(&c, (0, IDLE)).cpu_ns, 70);
        assert_eq!(cell(&c, (0, SOFTIRQ)).cpu_ns, 30);
        assert_eq!(total(&c, 0).0, 100);
        let f = &r.per_cpu.as_ref().unwrap()[0];
        assert_eq!((f.from_idle_ns, f.unplaced_ns), (20, 0.0));
        // More than the whole interval: the rest is counted, not placed.
        let mut c = cpu(&[((0, 5), u(10, 10.0, 1.0)), ((0, IDLE), u(90, 90.0, 0.0))]);
        let b = block(0, &[(0, [0, 0, 0]), (100, [150, 0, 0])]);
        let r = apply(&[b], &grid, &columns(), std::slice::from_mut(&mut c));
        assert_eq!(total(&c, 0).0, 100);
        assert_eq!(cell(&c, (0, STEAL)).cpu_ns, 100);
        assert_eq!(r.per_cpu.as_ref().unwrap()[0].unplaced_ns, 50.0);
    }

    #[test]
    fn without_readings_nothing_changes_and_a_note_says_so() {
        let grid = Grid::from_times(vec![0, 100]).unwrap();
        let cells = [((0, 5), u(60, 60.0, 1.0)), ((0, IDLE), u(40, 40.0, 0.0))];
        let mut c = cpu(&cells);
        let r = apply(&[], &grid, &columns(), std::slice::from_mut(&mut c));
        assert_eq!(c.cells, cpu(&cells).cells);
        assert!(r.per_cpu.is_none() && r.json().is_null());
        assert!(r.notes()[0].contains("counted as the CPU time of the task they interrupted"));
        // Readings of another CPU only: this one is left alone and named.
        let b = block(7, &[(0, [0, 0, 0]), (100, [10, 0, 0])]);
        let r = apply(&[b], &grid, &columns(), std::slice::from_mut(&mut c));
        assert_eq!(c.cells, cpu(&cells).cells);
        assert_eq!(r.cpus_without, [0]);
        assert!(r.notes()[1].contains("CPUs [0]"), "{:?}", r.notes());
    }

    #[test]
    fn readings_merge_blocks_and_kinds_the_kernel_lacks_read_zero() {
        let mut old = block(1, &[(200, [5, 1, 2])]);
        old.fields = vec!["user".into(), "irq".into(), "softirq".into()];
        old.cpus[0].samples[0].values.truncate(3);
        let r = readings(&[block(1, &[(100, [3, 0, 0]), (200, [4, 0, 0])]), old]);
        assert_eq!(r[&1], [(100, [3.0, 0.0, 0.0]), (200, [4.0, 0.0, 0.0])]);
        let r = readings(&[{
            let mut b = block(1, &[(100, [0, 7, 0])]);
            b.ticks_per_s = 100;
            b
        }]);
        assert_eq!(r[&1][0].1[1], 7.0 * 1e7);
        // A kernel that counts IRQ time in the tasks' time: irq and softirq stay there.
        let mut b = block(1, &[(100, [3, 7, 9])]);
        b.irq_time = TimeAccounting::Included;
        assert_eq!(readings(&[b])[&1][0].1, [3.0, 0.0, 0.0]);
        assert_eq!(label(STEAL), Some("<steal>"));
        assert!(!is_pseudo(UNKNOWN) && !is_pseudo(IDLE) && is_pseudo(SOFTIRQ));
    }
}
