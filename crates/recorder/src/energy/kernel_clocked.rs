//! Energy reads clocked by the kernel: a `cpu-clock` event sampled every `--energy-interval` on
//! one CPU, whose samples carry what the reading needs — the values of the counters grouped
//! under it (PERF_SAMPLE_READ with PERF_FORMAT_GROUP: RAPL's `power` events) and the task the
//! CPU was running (PERF_SAMPLE_TID: the simulated source's busy or idle tick). The kernel takes
//! each reading in its timer interrupt and writes it to a small ring, which the main thread
//! drains at its tick, about once a second (session.rs). No thread wakes per read: on the
//! development VM a timer wake-up costs 15–60 µs of CPU, more than any read it serves
//! (crates/recorder/README.md).
//!
//! This is the arrangement the kernel's developers proposed for counters that cannot interrupt
//! on overflow, RAPL's among them: an hrtimer-driven leader sampling its group.

use std::fs::File;
use std::io;
use std::time::Duration;

use perf_event_open_sys::bindings::{self as b, perf_event_attr};

use crate::perf::events;
use crate::perf::ring::Ring;

/// What each sample of a leader records: who ran, when, and the group's values.
const SAMPLE_TYPE: u64 = (b::PERF_SAMPLE_TID | b::PERF_SAMPLE_TIME | b::PERF_SAMPLE_READ) as u64;
const READ_FORMAT: u64 = b::PERF_FORMAT_GROUP as u64;
/// The rings hold this many drains' worth of samples, so a late drain loses nothing.
const DRAINS_HELD: u64 = 4;

/// The kernel's floor for a `cpu-clock` sampling period (perf_swevent_init_hrtimer).
const MIN_PERIOD_NS: u64 = 10_000;

/// How often the rings are drained (at the main thread's tick).
pub const DRAIN_EVERY: Duration = Duration::from_secs(1);

/// One reading the kernel took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tick<'a> {
    /// CLOCK_MONOTONIC, the trace clock.
    pub time_ns: u64,
    /// The process the CPU was running at the tick; 0 is the idle task.
    pub pid: u32,
    /// The siblings' counts, in the order they were given (the leader's own count left out).
    pub values: &'a [u64],
}

/// A leader on one CPU, its siblings and its ring.
#[derive(Debug)]
struct Leader {
    cpu: u32,
    fd: File,
    _siblings: Vec<File>,
    ring: Ring,
    buf: Vec<u8>,
    values: Vec<u64>,
}

/// Sampled `cpu-clock` leaders, one per CPU asked for, each with its counting siblings.
#[derive(Debug)]
pub struct Clocked {
    leaders: Vec<Leader>,
    period_ns: u64,
    lost: u64,
}

/// A counting sibling: what the kernel must know to read it with the group.
pub fn sibling_attr(type_: u32, config: u64) -> perf_event_attr {
    let mut a = perf_event_attr {
        type_,
        size: std::mem::size_of::<perf_event_attr>() as u32,
        config,
        read_format: READ_FORMAT,
        // A group's events must share the leader's clock.
        clockid: libc::CLOCK_MONOTONIC,
        ..Default::default()
    };
    a.set_use_clockid(1);
    a
}

fn leader_attr(period_ns: u64, wakeup_bytes: u32) -> perf_event_attr {
    let mut a = sibling_attr(b::PERF_TYPE_SOFTWARE, u64::from(b::PERF_COUNT_SW_CPU_CLOCK));
    a.sample_type = SAMPLE_TYPE;
    a.__bindgen_anon_1.sample_period = period_ns;
    a.set_disabled(1);
    // Never wake anyone: the rings are drained on the recorder's own clock.
    a.set_watermark(1);
    a.__bindgen_anon_2.wakeup_watermark = wakeup_bytes;
    a
}

/// Bytes of one sample with `siblings` counters: header, pid/tid, time, nr, leader, siblings.
fn sample_bytes(siblings: usize) -> u64 {
    8 + 8 + 8 + 8 + 8 * (1 + siblings as u64)
}

/// Data pages (a power of two, at least 2) for `DRAINS_HELD` drains at `period_ns`.
fn data_pages(period_ns: u64, siblings: usize, page_size: usize) -> usize {
    let per_drain = DRAIN_EVERY.as_nanos() as u64 / period_ns.max(1) + 1;
    let bytes = per_drain * DRAINS_HELD * sample_bytes(siblings);
    (bytes.div_ceil(page_size as u64) as usize)
        .max(2)
        .next_power_of_two()
}

impl Clocked {
    /// Opens, on each `(cpu, siblings)`, a leader sampling every `period` with those counting
    /// siblings, maps its ring and enables it. Err names the CPU and event the kernel refused.
    pub fn open(groups: &[(u32, Vec<perf_event_attr>)], period: Duration) -> io::Result<Self> {
        let period_ns = u64::try_from(period.as_nanos())
            .unwrap_or(u64::MAX)
            .max(MIN_PERIOD_NS);
        // SAFETY: sysconf has no preconditions.
        let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
        let mut leaders = Vec::with_capacity(groups.len());
        for (cpu, siblings) in groups {
            let pages = data_pages(period_ns, siblings.len(), page_size);
            let wakeup = u32::try_from(pages * page_size).unwrap_or(u32::MAX);
            let mut attr = leader_attr(period_ns, wakeup);
            let fd = events::open(&mut attr, *cpu, None).map_err(|e| {
                io::Error::new(e.kind(), format!("cpu-clock leader on cpu {cpu}: {e}"))
            })?;
            let mut sibs = Vec::with_capacity(siblings.len());
            for s in siblings {
                let mut a = *s;
                let f = events::open(&mut a, *cpu, Some(&fd)).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!(
                            "perf event type {} config {:#x} in a group on cpu {cpu}: {e}",
                            a.type_, a.config
                        ),
                    )
                })?;
                sibs.push(f);
            }
            let ring = Ring::map(&fd, page_size, pages).map_err(|e| {
                io::Error::new(e.kind(), format!("mapping the ring on cpu {cpu}: {e}"))
            })?;
            leaders.push(Leader {
                cpu: *cpu,
                fd,
                _siblings: sibs,
                ring,
                buf: Vec::new(),
                values: vec![0; siblings.len()],
            });
        }
        for l in &leaders {
            // The group: leader and siblings start together.
            events::enable(&l.fd)
                .map_err(|e| io::Error::new(e.kind(), format!("enable on cpu {}: {e}", l.cpu)))?;
        }
        let c = Self {
            leaders,
            period_ns,
            lost: 0,
        };
        c.first_samples()?;
        Ok(c)
    }

    /// Waits for a first sample from every leader, up to three periods (at least 200 ms: a
    /// busy VM delays timers): a group the kernel opened but never samples must not stand in
    /// for reads that work. Periods too long to wait for at start (over a third of a second)
    /// are not checked.
    fn first_samples(&self) -> io::Result<()> {
        let three = Duration::from_nanos(self.period_ns.saturating_mul(3));
        if three > Duration::from_millis(1000) {
            return Ok(());
        }
        let wait = three.max(Duration::from_millis(200));
        let t0 = std::time::Instant::now();
        loop {
            let silent: Vec<u32> = (self.leaders.iter())
                .filter(|l| l.ring.pending() == 0)
                .map(|l| l.cpu)
                .collect();
            if silent.is_empty() {
                return Ok(());
            }
            if t0.elapsed() > wait {
                return Err(io::Error::other(format!(
                    "no sample in {wait:?} on cpu {silent:?}"
                )));
            }
            std::thread::sleep(Duration::from_nanos(self.period_ns).min(Duration::from_millis(5)));
        }
    }

    /// The CPUs of the leaders, in the order given.
    pub fn cpus(&self) -> impl Iterator<Item = u32> + '_ {
        self.leaders.iter().map(|l| l.cpu)
    }

    /// The sampling period.
    pub fn period_ns(&self) -> u64 {
        self.period_ns
    }

    /// Readings the kernel could not write (a ring full) so far.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Hands every sample written since the last drain to `f(leader index, tick)`, leader by
    /// leader, each leader's in time order. Err on a record that does not parse: the rest of
    /// that leader's drain is skipped, the other leaders' kept.
    pub fn drain(&mut self, mut f: impl FnMut(usize, Tick<'_>)) -> io::Result<()> {
        let mut first_err = None;
        for (i, l) in self.leaders.iter_mut().enumerate() {
            l.buf.clear();
            l.ring.drain_into(&mut l.buf);
            let mut p = 0;
            while p + 8 <= l.buf.len() {
                let ty = u32::from_ne_bytes(l.buf[p..p + 4].try_into().expect("4 bytes"));
                let size = usize::from(u16::from_ne_bytes([l.buf[p + 6], l.buf[p + 7]]));
                if size < 8 || p + size > l.buf.len() {
                    first_err.get_or_insert_with(|| {
                        format!(
                            "cpu {}: a record of {size} bytes at {p} of {}",
                            l.cpu,
                            l.buf.len()
                        )
                    });
                    break;
                }
                let body = &l.buf[p + 8..p + size];
                let u64_at = |o: usize| {
                    body.get(o..o + 8)
                        .map(|s| u64::from_ne_bytes(s.try_into().expect("8 bytes")))
                };
                match ty {
                    b::PERF_RECORD_SAMPLE => {
                        let n = l.values.len();
                        let (Some(tid), Some(time), Some(nr)) = (u64_at(0), u64_at(8), u64_at(16))
                        else {
                            first_err.get_or_insert_with(|| {
                                format!("cpu {}: a sample of {size} bytes", l.cpu)
                            });
                            break;
                        };
                        if nr != 1 + n as u64 {
                            first_err.get_or_insert_with(|| {
                                format!(
                                    "cpu {}: a sample reads {nr} values, expected {}",
                                    l.cpu,
                                    1 + n
                                )
                            });
                            break;
                        }
                        let mut ok = true;
                        for (k, v) in l.values.iter_mut().enumerate() {
                            match u64_at(32 + 8 * k) {
                                Some(x) => *v = x,
                                None => ok = false,
                            }
                        }
                        if !ok {
                            first_err.get_or_insert_with(|| {
                                format!("cpu {}: a sample cut short ({size} bytes)", l.cpu)
                            });
                            break;
                        }
                        f(
                            i,
                            Tick {
                                time_ns: time,
                                pid: tid as u32,
                                values: &l.values,
                            },
                        );
                    }
                    b::PERF_RECORD_LOST => self.lost += u64_at(8).unwrap_or(0),
                    _ => {}
                }
                p += size;
            }
        }
        match first_err {
            None => Ok(()),
            Some(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn rings_hold_four_seconds_of_samples() {
        // 10 ms, no sibling: 101 × 4 × 40 B = 16.2 KB → 4 pages of 4 KiB.
        assert_eq!(data_pages(10_000_000, 0, 4096), 4);
        // 1 ms with five RAPL domains: 1001 × 4 × 80 B = 320 KB → 128 pages.
        assert_eq!(data_pages(1_000_000, 5, 4096), 128);
        // Rare reads still get two pages.
        assert_eq!(data_pages(1_000_000_000, 0, 4096), 2);
    }

    /// Opens clocked groups on this host, or says why it cannot (no perf permission): under
    /// CI that fails the test.
    pub(crate) fn open_or_skip(
        groups: &[(u32, Vec<perf_event_attr>)],
        period: Duration,
    ) -> Option<Clocked> {
        match Clocked::open(groups, period) {
            Ok(c) => Some(c),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) => {
                pws_test_support::cannot_run(&format!("system-wide perf events refused: {e}"));
                None
            }
            Err(e) => panic!("{e}"),
        }
    }

    /// A `cpu-clock` sibling read into a leader's samples counted the time between them, by its
    /// own clock to 1 %. `readings` are (sample time, sibling value) in time order. The kernel
    /// stamps a sample's time a moment before it reads the sibling, and a host that steals the
    /// vCPU in that moment moves one reading by up to a few hundred µs (CI saw 117 µs in 5 ms);
    /// the next window gives it back. So the whole span holds to 1 %, and nine windows in ten
    /// do on their own.
    pub(crate) fn assert_counts_the_time_between_samples(readings: &[(u64, u64)]) {
        let (first, last) = (readings[0], readings[readings.len() - 1]);
        let (span, counted) = (last.0 - first.0, last.1 - first.1);
        assert!(
            counted.abs_diff(span) * 100 <= span,
            "{counted} ns counted in {span} ns"
        );
        let windows: Vec<(u64, u64)> = readings
            .windows(2)
            .map(|w| (w[1].0 - w[0].0, w[1].1 - w[0].1))
            .collect();
        let off = windows
            .iter()
            .filter(|(dt, dv)| dv.abs_diff(*dt) * 100 > *dt)
            .count();
        assert!(
            off * 10 <= windows.len(),
            "{off} of {} windows off by more than 1 % (ns, ns counted): {windows:?}",
            windows.len()
        );
    }

    /// The kernel reads a counting sibling into every sample of the leader, every period, with
    /// nothing woken: `cpu-clock` counting stands in for RAPL's `power` events, which this VM
    /// lacks (same group, same read format, another PMU type).
    #[test]
    fn the_kernel_reads_the_siblings_at_every_period() {
        let sw = |c| sibling_attr(b::PERF_TYPE_SOFTWARE, u64::from(c));
        let groups = vec![(0, vec![sw(b::PERF_COUNT_SW_CPU_CLOCK)]), (0, vec![])];
        let Some(mut c) = open_or_skip(&groups, Duration::from_millis(5)) else {
            return;
        };
        std::thread::sleep(Duration::from_millis(300));
        let mut got: Vec<(usize, u64, u32, Vec<u64>)> = Vec::new();
        c.drain(|i, t| got.push((i, t.time_ns, t.pid, t.values.to_vec())))
            .unwrap();
        assert_eq!(c.lost(), 0);
        let first: Vec<_> = got.iter().filter(|g| g.0 == 0).collect();
        let second = got.iter().filter(|g| g.0 == 1).count();
        // ~60 each in 300 ms; a busy VM delays some ticks (the next one comes sooner: the
        // timer keeps its grid) and skips some, never adds any.
        assert!(first.len() >= 20 && first.len() <= 62, "{}", first.len());
        assert!(second >= 20, "{second}");
        let span = first[first.len() - 1].1 - first[0].1;
        assert!(
            span / (first.len() as u64 - 1) >= 4_750_000,
            "{} in {span} ns",
            first.len()
        );
        let readings: Vec<(u64, u64)> = first.iter().map(|g| (g.1, g.3[0])).collect();
        assert_counts_the_time_between_samples(&readings);
        assert!(got.iter().filter(|g| g.0 == 1).all(|g| g.3.is_empty()));
        // Drained: nothing twice.
        let mut again = 0;
        c.drain(|_, _| again += 1).unwrap();
        assert!(again <= 3, "{again} samples in the instant after a drain");
    }

    #[test]
    fn a_group_the_kernel_refuses_names_the_event() {
        let bad = sibling_attr(b::PERF_TYPE_SOFTWARE, 999_999);
        let e = Clocked::open(&[(0, vec![bad])], Duration::from_millis(10)).unwrap_err();
        let m = e.to_string();
        assert!(m.contains("config 0xf423f in a group on cpu 0"), "{m}");
    }
}
