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

use super::cpu::{CpuReplay, Usage, CLOCK_COUNTERS, IDLE};
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
/// rule). `columns` names the counter columns of every `Usage`.
pub fn apply(
    blocks: &[CpuStatBlock],
    grid: &Grid,
    columns: &[String],
    per_cpu: &mut [CpuReplay],
) -> Report {
    let readings = readings(blocks);
    if readings.is_empty() {
        return Report::default();
    }
    let clock: Vec<bool> = columns
        .iter()
        .map(|n| CLOCK_COUNTERS.contains(&n.as_str()))
        .collect();
    let last = blocks.last().expect("readings come from blocks");
    let mut report = Report {
        per_cpu: Some(Vec::new()),
        accounting: (last.irq_time, last.steal_time),
        cpus_without: Vec::new(),
    };
    for c in per_cpu.iter_mut() {
        match readings.get(&c.cpu) {
            Some(r) => {
                let f = apply_cpu(r, grid, &clock, c);
                report.per_cpu.as_mut().expect("set above").push(f);
            }
            None => report.cpus_without.push(c.cpu),
        }
    }
    report
}

/// Time to take out of one interval: [kind] from the non-idle cells, and from idle.
#[derive(Debug, Clone, Copy, Default)]
struct Take {
    busy: [f64; 3],
    idle: [f64; 3],
}

fn apply_cpu(r: &Readings, grid: &Grid, clock: &[bool], c: &mut CpuReplay) -> CpuFigures {
    let n = grid.len();
    let (mut busy, mut idle) = (vec![0u64; n], vec![0u64; n]);
    for ((i, cg), u) in &c.cells {
        if *i >= n || is_pseudo(*cg) {
            continue;
        }
        if *cg == IDLE {
            idle[*i] += u.cpu_ns;
        } else {
            busy[*i] += u.cpu_ns;
        }
    }
    let mut fig = CpuFigures {
        cpu: c.cpu,
        busy_ns: busy.iter().sum(),
        ..CpuFigures::default()
    };
    let mut take = vec![Take::default(); n];
    for w in r.windows(2) {
        let ((t0, a), (t1, b)) = (w[0], w[1]);
        // A value that went back (a CPU brought online again) adds nothing.
        let d: [f64; 3] = std::array::from_fn(|k| (b[k] - a[k]).max(0.0));
        let total: f64 = d.iter().sum();
        if total <= 0.0 {
            continue;
        }
        // The span's share of each interval's busy and idle time, by overlap.
        let mut parts: Vec<(usize, f64, f64)> = Vec::new();
        grid.split(t0, t1, |i, x, y| {
            let (s, e) = grid.span(i);
            let f = (y - x) as f64 / (e - s) as f64;
            parts.push((i, busy[i] as f64 * f, idle[i] as f64 * f));
        });
        let wb: f64 = parts.iter().map(|p| p.1).sum();
        let wi: f64 = parts.iter().map(|p| p.2).sum();
        let from_busy = total.min(wb);
        let from_idle = (total - from_busy).min(wi);
        fig.unplaced_ns += total - from_busy - from_idle;
        for (i, pb, pi) in parts {
            for (k, dk) in d.iter().enumerate() {
                let share = dk / total;
                if wb > 0.0 {
                    take[i].busy[k] += from_busy * share * pb / wb;
                }
                if wi > 0.0 {
                    take[i].idle[k] += from_idle * share * pi / wi;
                }
            }
        }
    }
    // Per interval: the factor each non-idle cell keeps, and the idle cell's.
    let keep: Vec<(f64, f64)> = (0..n)
        .map(|i| {
            let f = |base: u64, t: &[f64; 3]| {
                if base == 0 {
                    1.0
                } else {
                    (1.0 - t.iter().sum::<f64>() / base as f64).clamp(0.0, 1.0)
                }
            };
            (f(busy[i], &take[i].busy), f(idle[i], &take[i].idle))
        })
        .collect();
    // Scale every cell, and gather per interval what was taken (CPU time exactly, in whole ns,
    // and the clock counters).
    let width = clock.len();
    let mut taken: Vec<(u64, u64, Vec<f64>)> = vec![(0, 0, vec![0.0; width]); n];
    for ((i, cg), u) in c.cells.iter_mut() {
        if *i >= n || is_pseudo(*cg) {
            continue;
        }
        let f = if *cg == IDLE { keep[*i].1 } else { keep[*i].0 };
        if f >= 1.0 {
            continue;
        }
        let before = u.clone();
        scale(u, f, clock);
        let t = &mut taken[*i];
        if *cg == IDLE {
            t.1 += before.cpu_ns - u.cpu_ns;
        } else {
            t.0 += before.cpu_ns - u.cpu_ns;
        }
        for (k, x) in t.2.iter_mut().enumerate() {
            if clock[k] {
                let (b, a) = (before.counters.get(k), u.counters.get(k));
                *x += b.copied().unwrap_or(0.0) - a.copied().unwrap_or(0.0);
            }
        }
    }
    for ((_, i), u) in c.activations.iter_mut() {
        if *i < n && keep[*i].0 < 1.0 {
            scale(u, keep[*i].0, clock);
        }
    }
    // The pseudo cells: the whole ns taken, split among the kinds by their amounts (the last
    // kind gets the rounding, so the interval's sum is exact). New ones are sorted in at the end.
    let mut added: Vec<((usize, u64), Usage)> = Vec::new();
    for (i, (from_busy, from_idle, counters)) in taken.into_iter().enumerate() {
        let ns = from_busy + from_idle;
        if ns == 0 {
            continue;
        }
        fig.from_idle_ns += from_idle;
        let amounts: [f64; 3] = std::array::from_fn(|k| take[i].busy[k] + take[i].idle[k]);
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
            fig.removed_ns[k] += parts[k];
            let share = parts[k] as f64 / ns as f64;
            let cell = match c.cells.binary_search_by_key(&(i, *key), |(k, _)| *k) {
                Ok(at) => &mut c.cells[at].1,
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
    if !added.is_empty() {
        c.cells.extend(added);
        c.cells.sort_unstable_by_key(|(k, _)| *k);
    }
    fig
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::cpu::UNKNOWN;
    use pws_trace::records::{CpuStatSample, CpuStatSeries};

    /// Readings in ticks of 1 ns, so values are ns: (time, [steal, irq, softirq]).
    fn block(cpu: u32, readings: &[(u64, [u64; 3])]) -> CpuStatBlock {
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
        c.activations.insert((3, 1), u(50, 50.0, 700.0));
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
        assert_eq!(c.activations[&(3, 1)].cpu_ns, (50.0 * keep1).round() as u64);
        assert_eq!(c.activations[&(3, 1)].counters[1], 700.0);
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
