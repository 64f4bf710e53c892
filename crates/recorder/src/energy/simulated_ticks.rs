//! The simulated source clocked by the kernel (`kernel_clocked`): instead of /proc/stat's
//! jiffies, each CPU's busy time comes from a `cpu-clock` sampled on it every tick (a whole
//! fraction of `--energy-interval`, at most [`TICK_NS`]). A sample names the task it interrupted; the idle task is pid 0. As the kernel's tick does
//! for jiffies, the time since the CPU's previous sample goes to the state at this one, busy or
//! idle. The first CPU's tick nearest each interval is a reading (the next CPU's, should it go
//! offline): at each, every package's counter is computed as `simulated` computes it from jiffies, from
//! every CPU's time up to then.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use pws_trace::records::CpuInfo;

use super::kernel_clocked::Clocked;
use super::simulated::Packages;
use super::{ClockedReader, CounterDesc};

/// A CPU that has not sampled for this long (or ten periods, if longer) is offline or stalled:
/// readings stop waiting for it, and the gap it comes back from is left out of its time.
const SILENT_NS: u64 = 1_000_000_000;
/// The longest tick: the kernel's own on Debian's kernels (CONFIG_HZ=250), so busy time is
/// seen as finely as /proc/stat's jiffies show it. Sampled once per reading (10 ms), each CPU's
/// busy share over a 10 ms interval could only be 0 or 1, and the models' held-out error on the
/// demo rose from 4.8 % to 7–7.7 %.
const TICK_NS: u64 = 4_000_000;

#[derive(Debug, Default)]
struct CpuTicks {
    cpu: usize,
    busy_ns: u64,
    total_ns: u64,
    /// Its last sample folded into the sums.
    folded_ns: Option<u64>,
    /// Its last sample drained.
    latest_ns: Option<u64>,
    /// Drained and not yet folded: (time, busy).
    pending: VecDeque<(u64, bool)>,
}

impl CpuTicks {
    /// Folds its samples up to `t` into the sums. A span longer than `silent` (the CPU was
    /// offline) is not one sample's state: it is left out.
    fn fold_until(&mut self, t: u64, silent: u64) {
        while let Some(&(s, busy)) = self.pending.front() {
            if s > t {
                break;
            }
            if let Some(prev) = self.folded_ns {
                let dt = s.saturating_sub(prev);
                if dt <= silent {
                    self.total_ns += dt;
                    if busy {
                        self.busy_ns += dt;
                    }
                }
            }
            self.folded_ns = Some(s);
            self.pending.pop_front();
        }
    }
}

#[derive(Debug)]
pub struct SimulatedTicks {
    sim: Packages,
    clocked: Clocked,
    /// One per leader, in the leaders' order; the first one still sampling gives the reading
    /// times.
    cpus: Vec<CpuTicks>,
    values: Vec<u64>,
    /// See [`SILENT_NS`].
    silent_ns: u64,
    /// The last reading's time: a reading clock that changes CPU does not go back in time.
    read_ns: Option<u64>,
    /// Readings are this far apart (`--energy-interval`), every few ticks.
    every_ns: u64,
}

impl SimulatedTicks {
    /// A leader on every online CPU, ticking every `period` or a whole fraction of it no
    /// longer than [`TICK_NS`]; a reading every `period`.
    pub fn open(sim: Packages, cpus: &[CpuInfo], period: Duration) -> io::Result<Self> {
        if nested_pid_namespace() {
            // perf gives a sample's pid in the recorder's namespace, 0 for tasks outside it.
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "pws-record runs in a nested pid namespace, where perf reports the tasks outside it as pid 0, the idle task's",
            ));
        }
        let mut online: Vec<u32> = cpus.iter().filter(|c| c.online).map(|c| c.cpu).collect();
        online.sort_unstable();
        if online.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "no online CPU in the host's topology",
            ));
        }
        let groups: Vec<_> = online.iter().map(|&c| (c, Vec::new())).collect();
        let every_ns = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX).max(1);
        let tick = Duration::from_nanos(every_ns / every_ns.div_ceil(TICK_NS));
        let clocked = Clocked::open(&groups, tick)?;
        Ok(Self {
            silent_ns: SILENT_NS.max(every_ns.saturating_mul(10)),
            read_ns: None,
            every_ns,
            values: vec![0; sim.counters().len()],
            cpus: online
                .iter()
                .map(|&c| CpuTicks {
                    cpu: c as usize,
                    ..CpuTicks::default()
                })
                .collect(),
            sim,
            clocked,
        })
    }

    /// Readings at the samples of the reading CPU (the first one still sampling) that every
    /// other CPU still sampling has caught up with; at the end, all of them.
    fn readings(&mut self, last: bool, f: &mut dyn FnMut(usize, u64, &[u64])) {
        let silent = self.silent_ns;
        let newest = self.cpus.iter().filter_map(|c| c.latest_ns).max();
        let live = |c: &CpuTicks| {
            c.latest_ns
                .zip(newest)
                .is_some_and(|(l, n)| n.saturating_sub(l) < silent)
        };
        let Some(r) = self.cpus.iter().position(live) else {
            return;
        };
        while let Some(&(t, _)) = self.cpus[r].pending.front() {
            let behind = (self.cpus.iter().enumerate())
                .any(|(i, c)| i != r && live(c) && c.latest_ns.is_some_and(|l| l < t));
            if behind && !last {
                break;
            }
            for c in &mut self.cpus {
                c.fold_until(t, silent);
            }
            // A reading every `every_ns`: the first tick past it, give or take half a tick.
            let half_tick = self.clocked.period_ns() / 2;
            if self
                .read_ns
                .is_some_and(|p| t < (p + self.every_ns).saturating_sub(half_tick))
            {
                continue;
            }
            self.read_ns = Some(t);
            let now = self.cpus.iter().map(|c| (c.cpu, c.busy_ns, c.total_ns));
            if self.sim.add(t, now, &mut self.values) {
                f(0, t, &self.values);
            }
        }
    }
}

/// Whether this process sees a pid namespace below the host's (`NSpid` lists one pid per
/// level).
fn nested_pid_namespace() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .is_some_and(|v| v.split_whitespace().count() > 1)
    })
}

impl ClockedReader for SimulatedTicks {
    fn counters(&self) -> &[CounterDesc] {
        self.sim.counters()
    }

    fn drain(&mut self, last: bool, f: &mut dyn FnMut(usize, u64, &[u64])) -> io::Result<()> {
        let cpus = &mut self.cpus;
        let r = self.clocked.drain(|i, tick| {
            let c = &mut cpus[i];
            c.pending.push_back((tick.time_ns, tick.pid != 0));
            c.latest_ns = Some(tick.time_ns);
        });
        self.readings(last, f);
        r
    }

    fn lost(&self) -> u64 {
        self.clocked.lost()
    }

    fn describe(&self) -> String {
        format!(
            "a cpu-clock sampled every {:?} on each of the {} online CPUs, in place of /proc/stat's jiffies (busy: a task other than idle was running at the sample), a reading every {:?}",
            Duration::from_nanos(self.clocked.period_ns()),
            self.cpus.len(),
            Duration::from_nanos(self.every_ns)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticks(samples: &[(u64, bool)]) -> CpuTicks {
        CpuTicks {
            latest_ns: samples.last().map(|s| s.0),
            pending: samples.iter().copied().collect(),
            ..CpuTicks::default()
        }
    }

    #[test]
    fn each_sample_takes_the_time_since_the_previous_one() {
        let mut c = ticks(&[
            (100, true),
            (110, false),
            (120, true),
            (140, true),
            (150, false),
        ]);
        c.fold_until(140, 1000);
        // The first sample only starts the count; 110 idle, 120 and 140 busy.
        assert_eq!((c.busy_ns, c.total_ns), (30, 40));
        assert_eq!(c.pending.len(), 1);
        c.fold_until(1000, 1000);
        assert_eq!((c.busy_ns, c.total_ns), (30, 50));
        assert!(c.pending.is_empty());
    }

    fn with_ticks(cpus: Vec<CpuTicks>) -> SimulatedTicks {
        use crate::energy::tests::cpu;
        let curve = crate::energy::simulated::select(crate::energy::simulated::DEFAULT_SERVER);
        let infos: Vec<_> = cpus.iter().map(|c| cpu(c.cpu as u32, 0)).collect();
        let sim = Packages::new(curve.unwrap(), &infos);
        SimulatedTicks {
            values: vec![0; sim.counters().len()],
            sim,
            clocked: Clocked::open(&[], Duration::from_millis(10)).unwrap(),
            cpus,
            silent_ns: SILENT_NS,
            read_ns: None,
            every_ns: 10_000_000,
        }
    }

    /// Readings wait for every CPU to reach them, except at the end. Each CPU counts up to its
    /// last sample at or before the reading: at 10 ms only the busy CPU 0 has a span (full
    /// load, 309.5 W per chip), then both do, one busy and one idle (50 %: 157 W per chip).
    #[test]
    fn readings_wait_for_the_slowest_cpu() {
        let ms = 1_000_000;
        let mut t = with_ticks(vec![
            CpuTicks {
                cpu: 0,
                ..ticks(&[(0, true), (10 * ms, true), (20 * ms, true), (30 * ms, true)])
            },
            CpuTicks {
                cpu: 1,
                ..ticks(&[(ms, false), (11 * ms, false), (21 * ms, false)])
            },
        ]);
        let mut got = Vec::new();
        t.readings(false, &mut |i, ts, v| got.push((i, ts, v[0])));
        let uj = |w: f64| (w * 10_000.0) as u64;
        // The reading at 30 ms waits: CPU 1 has only reached 21 ms.
        let at_20 = uj(309.5) + uj(157.0);
        assert_eq!(
            got,
            vec![(0, 0, 0), (0, 10 * ms, uj(309.5)), (0, 20 * ms, at_20)]
        );
        got.clear();
        t.readings(true, &mut |i, ts, v| got.push((i, ts, v[0])));
        assert_eq!(got, vec![(0, 30 * ms, at_20 + uj(157.0))]);
    }

    /// The first CPU goes offline after 20 ms: the next CPU still sampling becomes the reading
    /// clock, and readings go on, in order, none waiting for the CPU that left. Back from a
    /// silence, a CPU's gap is not one sample's state.
    #[test]
    fn a_cpu_that_leaves_hands_the_readings_to_the_next() {
        let ms = 1_000_000;
        let mut back = ticks(&[(0, true), (5_000 * ms, true), (5_010 * ms, false)]);
        back.fold_until(u64::MAX, SILENT_NS);
        assert_eq!((back.busy_ns, back.total_ns), (0, 10 * ms));

        let cpu1: Vec<_> = (0..300).map(|k| ((1 + 10 * k) * ms, true)).collect();
        let mut t = with_ticks(vec![
            CpuTicks {
                cpu: 0,
                ..ticks(&[(0, true), (10 * ms, true), (20 * ms, true)])
            },
            CpuTicks {
                cpu: 1,
                ..ticks(&cpu1)
            },
        ]);
        let mut got = Vec::new();
        t.readings(false, &mut |_, ts, v| got.push((ts, v[0])));
        assert_eq!(got.len(), 300);
        assert!(got.windows(2).all(|w| w[1].0 > w[0].0 && w[1].1 >= w[0].1));
        // Both CPUs busy, then one busy CPU of one: full load, 309.5 W per chip, throughout.
        let (first, last) = (got[0], got[299]);
        let watts = (last.1 - first.1) as f64 / ((last.0 - first.0) as f64 / 1e3);
        assert!((watts - 309.5).abs() < 0.5, "{watts}");
    }

    /// Ticks every 3.33 ms, a reading every 10 ms: the tick nearest each interval, not every
    /// tick; the busy time of every tick counts.
    #[test]
    fn a_reading_every_interval_from_finer_ticks() {
        let us = 1_000;
        let ticks_at =
            |busy: bool| -> Vec<(u64, bool)> { (0..31).map(|k| (k * 3_333 * us, busy)).collect() };
        let mut t = with_ticks(vec![
            CpuTicks {
                cpu: 0,
                ..ticks(&ticks_at(true))
            },
            CpuTicks {
                cpu: 1,
                ..ticks(&ticks_at(false))
            },
        ]);
        t.every_ns = 10_000 * us;
        t.clocked = Clocked::open(&[], Duration::from_nanos(3_333 * us)).unwrap();
        let mut got = Vec::new();
        t.readings(true, &mut |_, ts, v| got.push((ts, v[0])));
        let times: Vec<u64> = got.iter().map(|g| g.0 / us).collect();
        assert_eq!(
            times,
            [0, 9_999, 19_998, 29_997, 39_996, 49_995, 59_994, 69_993, 79_992, 89_991, 99_990]
        );
        // One CPU busy of two throughout: 157 W per chip.
        let watts = (got[10].1 - got[0].1) as f64 / (99_990.0 * us as f64 / 1e3);
        assert!((watts - 157.0).abs() < 0.01, "{watts}");
    }

    /// On this host: a second of one CPU spinning, read by the kernel every 10 ms.
    #[test]
    fn the_host_simulated_by_its_ticks() {
        let cpus = crate::energy::tests::host_cpus();
        let curve = crate::energy::simulated::select(crate::energy::simulated::DEFAULT_SERVER);
        let sim = Packages::new(curve.unwrap(), &cpus);
        let mut t = match SimulatedTicks::open(sim, &cpus, Duration::from_millis(10)) {
            Ok(t) => t,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) => {
                return pws_test_support::cannot_run(&format!("perf refused: {e}"));
            }
            Err(e) => panic!("{e}"),
        };
        crate::energy::spin(Duration::from_millis(1000));
        let mut got: Vec<(u64, u64)> = Vec::new();
        t.drain(true, &mut |_, ts, v| got.push((ts, v[0]))).unwrap();
        assert_eq!(t.lost(), 0);
        eprintln!("{} readings; {}", got.len(), t.describe());
        assert!(got.len() >= 50 && got.len() <= 102, "{}", got.len());
        assert_eq!(got[0].1, 0, "the first reading is the baseline");
        assert!(got.windows(2).all(|w| w[1].0 > w[0].0 && w[1].1 >= w[0].1));
        let (a, b) = (got[0], got[got.len() - 1]);
        let watts = (b.1 - a.1) as f64 / 1e6 / ((b.0 - a.0) as f64 / 1e9);
        // Between the chip's idle (63.5 W) and full load (309.5 W); a CPU spinning lifts it.
        assert!(watts > 63.5 && watts <= 309.5, "{watts} W");
    }
}
