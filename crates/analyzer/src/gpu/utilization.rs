//! NVML's per-process utilisation samples → SM-busy time per (interval, cgroup) and per
//! (activation, interval), on the grid.
//!
//! A sample says what share of one driver sampling period a process's kernels kept the SMs
//! busy; it stands for the period ending at its timestamp. The period is measured: the median
//! spacing of a process's consecutive samples on the device (NVML gives a busy process one
//! sample a period), else the spacing of the recorder's reads. Its busy time, `sm` % of the
//! period, is spread evenly over the period, so an interval that covers part of it gets that
//! part. A function's kernels run while it runs, so a period's busy time goes to the container's
//! activations that ran in it (by how long each ran in it; NVML cannot tell apart activations of
//! one container: they are one process, or processes of one cgroup), with the same time profile
//! as the container's; only a period in which none ran leaves its busy time to the container
//! alone (its keep-alive).

use std::collections::BTreeMap;

use pws_trace::records::GpuBlock;
use rustc_hash::FxHashMap;

use super::pid_cgroups::PidCgroups;
use crate::replay::cpu::Usage;
use crate::replay::grid::Grid;
use crate::timefmt::ClockMap;

/// Used when a device has neither two samples of one process nor two reads: NVML's usual
/// sampling period on recent drivers (1/6 s).
const DEFAULT_PERIOD_NS: u64 = 166_667_000;

/// The one column of a GPU's usage: nanoseconds of SM-busy time.
pub const SM_BUSY: &str = "sm_busy_ns";

/// One sample placed on the trace clock: a process's busy SM time over (end − period, end].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Piece {
    pub end_ns: u64,
    pub pid: u32,
    /// SM busy share of the period, 0–1.
    pub busy: f64,
}

/// One device's samples, what they add up to, and what could not be placed.
#[derive(Debug, Default, Clone)]
pub struct DeviceSamples {
    pub uuid: String,
    pub name: String,
    pub mig: bool,
    pub pieces: Vec<Piece>,
    pub period_ns: u64,
    /// Samples whose realtime stamp could not be put on the trace clock (no clock pairs).
    pub unplaced: usize,
    /// Read instants (for the read spacing).
    pub reads: Vec<u64>,
    /// (first read, pid) of every compute process a read listed.
    pub processes: Vec<(u64, u32)>,
}

/// Every device's samples, by device index; duplicates (the same process and timestamp, as a
/// recorder restarted on one trace could write twice) counted once.
pub fn samples(blocks: &[GpuBlock], clock: &ClockMap) -> BTreeMap<u32, DeviceSamples> {
    let mut out: BTreeMap<u32, DeviceSamples> = BTreeMap::new();
    let mut raw: BTreeMap<u32, Vec<(u32, u64, u8)>> = BTreeMap::new();
    for b in blocks {
        for d in &b.devices {
            let dev = out.entry(d.device).or_default();
            if dev.uuid.is_empty() {
                dev.uuid = d.uuid.clone();
                dev.name = d.name.clone();
            }
            dev.mig |= d.mig;
            let r = raw.entry(d.device).or_default();
            for read in &d.reads {
                dev.reads.push(read.ts_ns);
                dev.processes
                    .extend(read.processes.iter().map(|p| (read.ts_ns, p.pid)));
                r.extend(
                    read.utilization
                        .iter()
                        .map(|s| (s.pid, s.timestamp_us, s.sm)),
                );
            }
        }
    }
    for (device, mut r) in raw {
        let dev = out.get_mut(&device).expect("made above");
        dev.reads.sort_unstable();
        // Each process once, at its first listing.
        dev.processes.sort_unstable_by_key(|&(t, pid)| (pid, t));
        dev.processes.dedup_by_key(|x| x.1);
        r.sort_unstable();
        r.dedup_by_key(|x| (x.0, x.1));
        // Consecutive samples of one process: the driver's period, when it is busy.
        let mut spacings: Vec<u64> = r
            .windows(2)
            .filter(|w| w[0].0 == w[1].0 && w[1].1 > w[0].1)
            .map(|w| (w[1].1 - w[0].1) * 1_000)
            .collect();
        let mut reads: Vec<u64> = dev
            .reads
            .windows(2)
            .map(|w| w[1] - w[0])
            .filter(|d| *d > 0)
            .collect();
        dev.period_ns = median(&mut spacings)
            .or_else(|| median(&mut reads))
            .unwrap_or(DEFAULT_PERIOD_NS);
        for (pid, us, sm) in r {
            match clock.to_monotonic_ns(i128::from(us) * 1_000) {
                Some(end_ns) => dev.pieces.push(Piece {
                    end_ns,
                    pid,
                    busy: f64::from(sm.min(100)) / 100.0,
                }),
                None => dev.unplaced += 1,
            }
        }
        dev.pieces.sort_by_key(|p| (p.end_ns, p.pid));
    }
    out
}

fn median(v: &mut [u64]) -> Option<u64> {
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

/// One device's SM-busy time on the grid.
#[derive(Debug, Default, Clone)]
pub struct DeviceUsage {
    /// (interval, cgroup, usage): the usage's one counter, [`SM_BUSY`], is SM-busy
    /// nanoseconds; sorted.
    pub cells: Vec<(usize, u64, Usage)>,
    /// (activation, interval) → the activation's SM-busy time: the busy time of the sampling
    /// periods it ran in, shared with the container's other activations in them by time, so
    /// also in intervals around its own window.
    pub activations: FxHashMap<(usize, usize), Usage>,
    /// Activation → the intervals it has SM-busy time in, sorted.
    pub intervals_of: FxHashMap<usize, Vec<usize>>,
    /// Samples whose pid the trace never places in a cgroup (their busy time is in no cell).
    pub unresolved: usize,
}

/// `acts_of`: cgroup → its activations' (start, end, activation index).
pub fn on_grid(
    dev: &DeviceSamples,
    grid: &Grid,
    pids: &PidCgroups,
    acts_of: &FxHashMap<u64, Vec<(u64, u64, usize)>>,
) -> DeviceUsage {
    let mut cells: FxHashMap<(usize, u64), f64> = FxHashMap::default();
    let mut acts: FxHashMap<(usize, usize), f64> = FxHashMap::default();
    let mut unresolved = 0;
    let period = dev.period_ns.max(1);
    for p in &dev.pieces {
        let (x, y) = (p.end_ns.saturating_sub(period), p.end_ns);
        let Some(cg) = pids.at(p.pid, y) else {
            unresolved += 1;
            continue;
        };
        if p.busy <= 0.0 {
            continue;
        }
        grid.split(x, y, |i, a, b| {
            *cells.entry((i, cg)).or_default() += p.busy * (b - a) as f64;
        });
        let Some(list) = acts_of.get(&cg) else {
            continue;
        };
        // The container's activations inside the period, by how long each ran in it.
        let running: Vec<(usize, u64)> = list
            .iter()
            .filter(|w| w.0 < y && w.1 > x)
            .map(|w| (w.2, w.1.min(y) - w.0.max(x)))
            .collect();
        let overlap: u64 = running.iter().map(|r| r.1).sum();
        if overlap == 0 {
            continue;
        }
        // A function's kernels run while it runs: the period's busy time is its activations'
        // (by their time in the period), with the same time profile as the container's, so
        // they never take more than it has in an interval.
        grid.split(x, y, |i, a, b| {
            for &(ai, o) in &running {
                *acts.entry((ai, i)).or_default() +=
                    p.busy * (o as f64 / overlap as f64) * (b - a) as f64;
            }
        });
    }
    // A sampled quantity, like a counter (the uncertainty treats it so), not exact CPU time.
    let usage = |ns: f64| Usage {
        cpu_ns: 0,
        counters: smallvec::smallvec![ns],
    };
    let mut cells: Vec<(usize, u64, Usage)> = cells
        .into_iter()
        .map(|((i, cg), ns)| (i, cg, usage(ns)))
        .collect();
    cells.sort_unstable_by_key(|c| (c.0, c.1));
    let mut intervals_of: FxHashMap<usize, Vec<usize>> = FxHashMap::default();
    for &(ai, i) in acts.keys() {
        intervals_of.entry(ai).or_default().push(i);
    }
    for v in intervals_of.values_mut() {
        v.sort_unstable();
    }
    DeviceUsage {
        cells,
        activations: acts.into_iter().map(|(k, ns)| (k, usage(ns))).collect(),
        intervals_of,
        unresolved,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::cpu::CpuReplay;
    use pws_trace::records::{ClockPair, GpuDeviceReads, GpuProcessSample, GpuRead};

    const MS: u64 = 1_000_000;

    fn block(samples: &[(u64, u32, u8)]) -> GpuBlock {
        GpuBlock {
            devices: vec![GpuDeviceReads {
                device: 0,
                reads: samples
                    .iter()
                    .map(|&(ms, pid, sm)| GpuRead {
                        ts_ns: ms * MS,
                        utilization: vec![GpuProcessSample {
                            pid,
                            // Realtime = monotonic + 1 s here.
                            timestamp_us: (ms + 1_000) * 1_000,
                            sm,
                            ..GpuProcessSample::default()
                        }],
                        ..GpuRead::default()
                    })
                    .collect(),
                ..GpuDeviceReads::default()
            }],
        }
    }

    #[test]
    fn busy_time_goes_to_cells_and_running_activations_by_overlap() {
        let clock = ClockMap::new(vec![ClockPair {
            monotonic_ns: 0,
            realtime_ns: 1_000 * MS,
            uncertainty_ns: 0,
        }]);
        // pid 7 busy 50 % then 100 % over two 100 ms periods.
        let s = samples(&[block(&[(100, 7, 50), (200, 7, 100)])], &clock);
        let dev = &s[&0];
        assert_eq!(dev.period_ns, 100 * MS);
        let grid = Grid::fixed(0, 200 * MS, 50 * MS).unwrap();
        let pids = PidCgroups::new(
            &[CpuReplay {
                pid_cgroups: vec![(10 * MS, 7, 42)],
                ..CpuReplay::default()
            }],
            &[],
            &[],
        );
        // Activation 0 runs 25–175 ms; activation 1 runs 150–200 ms beside it.
        let mut acts_of = FxHashMap::default();
        acts_of.insert(42, vec![(25 * MS, 175 * MS, 0), (150 * MS, 200 * MS, 1)]);
        let u = on_grid(dev, &grid, &pids, &acts_of);
        let cell = |i| u.cells.iter().find(|c| c.0 == i).unwrap().2.counters[0].round() as u64;
        assert_eq!(
            [cell(0), cell(1), cell(2), cell(3)],
            [25, 25, 50, 50].map(|x| x * MS)
        );
        let act = |ai, i| {
            u.activations
                .get(&(ai, i))
                .map_or(0, |x| x.counters[0].round() as u64)
        };
        // Period 0–100 ms (50 %): activation 0 alone ran in it, so it takes all 50 ms, spread
        // like the container's. Period 100–200 ms (100 %): activation 0 ran 75 ms of it,
        // activation 1 50 ms: 60 % and 40 % of each interval's 50 ms.
        assert_eq!([act(0, 0), act(0, 1)], [25 * MS, 25 * MS]);
        assert_eq!([act(0, 2), act(0, 3)], [30 * MS, 30 * MS]);
        assert_eq!(
            [act(1, 0), act(1, 1), act(1, 2), act(1, 3)],
            [0, 0, 20 * MS, 20 * MS]
        );
        assert_eq!(u.intervals_of[&1], [2, 3]);
        // What the activations took is what the container had.
        let total: f64 = u.activations.values().map(|x| x.counters[0]).sum();
        assert!((total - (150 * MS) as f64).abs() < 1.0);
    }

    #[test]
    fn unknown_pids_and_unplaceable_stamps_are_counted_not_guessed() {
        let s = samples(&[block(&[(100, 9, 80)])], &ClockMap::default());
        assert_eq!(s[&0].unplaced, 1);
        let clock = ClockMap::new(vec![ClockPair {
            monotonic_ns: 0,
            realtime_ns: 1_000 * MS,
            uncertainty_ns: 0,
        }]);
        let s = samples(&[block(&[(100, 9, 80)])], &clock);
        let grid = Grid::fixed(0, 200 * MS, 50 * MS).unwrap();
        let u = on_grid(&s[&0], &grid, &PidCgroups::default(), &FxHashMap::default());
        assert_eq!(u.unresolved, 1);
        assert!(u.cells.is_empty());
    }
}
