//! Per-CPU cumulative times from `/proc/stat` (steal, irq, softirq and the rest), read by the
//! schedule of `crate::periodic` and sent as cpu-stat blocks (FORMAT.md, kind 10).
//!
//! Read every `--cpu-stat-interval` (100 ms) while steal or IRQ time moves, and every
//! `--cpu-stat-quiet-interval` (1 s) while none moved on any CPU since the read before: a
//! reading that only repeats the last one's steal, irq and softirq says nothing new (the values
//! between two equal readings are known), yet each timer wake-up costs more than the read
//! (`crate::periodic`). A burst that starts in a quiet spell is placed to within that spell's
//! read, the rest of it to within 100 ms.
//!
//! The perf accounting charges a task for the wall time between its samples, so time the
//! hypervisor stole and time spent in interrupt handlers lands on whichever task was
//! interrupted; the kernel's `cpu.stat` leaves both out. These readings let the analyzer take
//! them back out. A read of /proc/stat grows with the number of CPUs and IRQs (it also sums
//! every IRQ's count), so the schedule reads it after the energy counters, never before.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pws_trace::records::{
    CpuStatBlock, CpuStatSample, CpuStatSeries, SourceInfo, SourceStats, SourceStatus,
    TimeAccounting, PROC_STAT_FIELDS,
};

use crate::clock::monotonic_ns;
use crate::periodic::Periodic;

pub const PROC_STAT: &str = "/proc/stat";

/// Per-CPU lines of one read: (cpu, values in /proc/stat's order), and a message for each line
/// that could not be read (the others are kept).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    pub cpus: Vec<(u32, Vec<u64>)>,
    pub errors: Vec<String>,
}

/// The `cpuN` lines of /proc/stat's text; the aggregate `cpu` line and every other line are
/// skipped. Values beyond `nfields` are left out; a line with fewer, or one that is not numbers,
/// is reported by its line number and text.
pub fn parse(text: &str, nfields: usize) -> Parsed {
    let mut out = Parsed::default();
    for (n, line) in text.lines().enumerate() {
        let Some(rest) = line.strip_prefix("cpu") else {
            continue;
        };
        if !rest.starts_with(|c: char| c.is_ascii_digit()) {
            continue; // the all-CPU line "cpu  …"
        }
        let mut words = rest.split_ascii_whitespace();
        let bad = |why: &str| format!("{PROC_STAT} line {}: {why}: {line:?}", n + 1);
        let Some(cpu) = words.next().and_then(|w| w.parse::<u32>().ok()) else {
            out.errors.push(bad("no CPU number"));
            continue;
        };
        let values: Result<Vec<u64>, _> = words.take(nfields).map(str::parse::<u64>).collect();
        match values {
            Ok(v) if v.len() == nfields => out.cpus.push((cpu, v)),
            Ok(v) => out.errors.push(bad(&format!(
                "{} values where the first line had {nfields}",
                v.len()
            ))),
            Err(e) => out.errors.push(bad(&format!("not a number ({e})"))),
        }
    }
    if out.cpus.is_empty() && out.errors.is_empty() {
        out.errors.push(format!("{PROC_STAT} has no cpuN line"));
    }
    out
}

/// Number of values of the first `cpuN` line, capped at the fields proc(5) names.
fn field_count(text: &str) -> Option<usize> {
    let line = text.lines().find(|l| {
        l.strip_prefix("cpu")
            .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
    })?;
    let n = line.split_ascii_whitespace().skip(1).count();
    (n > 0).then_some(n.min(PROC_STAT_FIELDS.len()))
}

/// How the running kernel accounts IRQ and steal time, from its build configuration text
/// (`/boot/config-<release>`): (irq, steal).
pub fn accounting(config: Option<&str>) -> (TimeAccounting, TimeAccounting) {
    let Some(text) = config else {
        return (TimeAccounting::Unknown, TimeAccounting::Unknown);
    };
    let of = |name: &str| {
        let set = text
            .lines()
            .any(|l| l.strip_prefix(name).is_some_and(|v| v == "=y"));
        if set {
            TimeAccounting::Apart
        } else {
            TimeAccounting::Included
        }
    };
    (
        of("CONFIG_IRQ_TIME_ACCOUNTING"),
        of("CONFIG_PARAVIRT_TIME_ACCOUNTING"),
    )
}

/// The running kernel's build configuration: `/boot/config-<release>`, else `/proc/config.gz`
/// (through `gzip -dc`, once at start: no decompressor is linked for one file).
fn kernel_config() -> Option<String> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    if let Ok(c) = std::fs::read_to_string(format!("/boot/config-{}", release.trim())) {
        return Some(c);
    }
    let out = std::process::Command::new("gzip")
        .args(["-dc", "/proc/config.gz"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// /proc/stat kept open and read again from its start each time (no open per read).
pub struct Reader {
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
    pub nfields: usize,
    pub ticks_per_s: u64,
    /// (irq, steal) accounting of the kernel.
    pub accounting: (TimeAccounting, TimeAccounting),
}

impl Reader {
    /// Opens `path` and reads it once to learn how many values each CPU line has.
    pub fn open(path: &Path) -> Result<Self, String> {
        let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if hz <= 0 {
            return Err("sysconf(_SC_CLK_TCK) gave no tick rate".into());
        }
        let mut r = Self {
            path: path.to_owned(),
            file,
            buf: Vec::with_capacity(16 << 10),
            nfields: 0,
            ticks_per_s: hz as u64,
            accounting: accounting(kernel_config().as_deref()),
        };
        let text = r.read_text()?;
        r.nfields = field_count(&text)
            .ok_or_else(|| format!("{} has no cpuN line with values", path.display()))?;
        Ok(r)
    }

    fn read_text(&mut self) -> Result<String, String> {
        let err = |e: io::Error| format!("cannot read {}: {e}", self.path.display());
        self.buf.clear();
        self.file.seek(SeekFrom::Start(0)).map_err(err)?;
        self.file.read_to_end(&mut self.buf).map_err(err)?;
        Ok(String::from_utf8_lossy(&self.buf).into_owned())
    }

    /// One read: the per-CPU lines, timestamped at the middle of the read on the trace clock.
    pub fn read(&mut self) -> Result<(u64, Parsed), String> {
        let t0 = monotonic_ns();
        let text = self.read_text()?;
        let t1 = monotonic_ns();
        Ok((t0 + (t1 - t0) / 2, parse(&text, self.nfields)))
    }

    pub fn fields(&self) -> Vec<String> {
        PROC_STAT_FIELDS[..self.nfields]
            .iter()
            .map(|f| (*f).to_owned())
            .collect()
    }
}

/// Opens /proc/stat for the periodic reads and says so in the trace info (with the cost of one
/// read of every CPU's line, measured here), or why not. `cadence`: the reads' interval while
/// steal or IRQ time moves and while none does; None: not read (`--no-cpu-stat`).
pub fn open(path: &Path, cadence: Option<(Duration, Duration)>) -> (Option<Reader>, SourceInfo) {
    let info = |status, detail| SourceInfo {
        kind: "cpu-time".into(),
        name: "proc-stat".into(),
        status,
        detail,
    };
    let Some((interval, quiet)) = cadence else {
        let why = "--no-cpu-stat: steal and IRQ time are counted as the interrupted task's".into();
        return (None, info(SourceStatus::Disabled, why));
    };
    let mut r = match Reader::open(path) {
        Ok(r) => r,
        Err(e) => {
            let why = format!("{e}: steal and IRQ time are counted as the interrupted task's");
            eprintln!("pws-record: note: {why}");
            return (None, info(SourceStatus::Unavailable, why));
        }
    };
    // The cheapest of a few reads: what one read costs without a preemption in it.
    let cost = (0..3)
        .map(|_| {
            let t = Instant::now();
            let ok = r.read().is_ok();
            (t.elapsed(), ok)
        })
        .filter(|(_, ok)| *ok)
        .map(|(d, _)| d)
        .min();
    let cpus = r.read().map(|(_, p)| p.cpus.len()).unwrap_or(0);
    let detail = format!(
        "{} per-CPU {} every {} ms while steal or IRQ time moves, else every {} ms (ticks of 1/{} s); one read of {cpus} CPUs took {}; kernel: IRQ time {}, steal time {} (build config)",
        path.display(),
        r.fields().join(" "),
        interval.as_millis(),
        quiet.max(interval).as_millis(),
        r.ticks_per_s,
        cost.map_or("-".to_owned(), |d| format!("{} µs", d.as_micros())),
        r.accounting.0,
        r.accounting.1,
    );
    (Some(r), info(SourceStatus::Used, detail))
}

/// /proc/stat's reads on a `periodic` schedule: one cpu-stat block of the reads since the last.
pub struct CpuStatReads {
    reader: Reader,
    /// Between reads while steal or IRQ time moves, and while none does.
    interval: Duration,
    quiet: Duration,
    /// Where irq, softirq and steal are among a line's values (those present).
    watched: Vec<usize>,
    /// Each CPU's number and watched values at the last read, one after the other, and whether
    /// any changed at that read (so far: start at the short interval, until a read shows
    /// nothing moving). `now` is the same for the read being made (kept to reuse its room).
    last: Vec<u64>,
    now: Vec<u64>,
    moving: bool,
    block: CpuStatBlock,
    stats: SourceStats,
}

impl CpuStatReads {
    /// Reads every `interval` while steal or IRQ time moves, every `quiet` (at least
    /// `interval`) while none does.
    pub fn new(reader: Reader, interval: Duration, quiet: Duration) -> Self {
        let fields = reader.fields();
        let block = CpuStatBlock {
            ticks_per_s: reader.ticks_per_s,
            irq_time: reader.accounting.0,
            steal_time: reader.accounting.1,
            fields: fields.clone(),
            cpus: Vec::new(),
        };
        let watched = ["irq", "softirq", "steal"]
            .iter()
            .filter_map(|w| fields.iter().position(|f| f == w))
            .collect();
        let interval = interval.max(Duration::from_millis(1));
        Self {
            reader,
            interval,
            quiet: quiet.max(interval),
            watched,
            last: Vec::new(),
            now: Vec::new(),
            moving: true,
            block,
            stats: SourceStats {
                name: "cpu-stat".into(),
                ..SourceStats::default()
            },
        }
    }

    /// Whether any CPU's steal, irq or softirq differs from the last read (a CPU that came or
    /// went counts as a change), and keeps these as the last.
    fn moved(&mut self, cpus: &[(u32, Vec<u64>)]) -> bool {
        self.now.clear();
        for (cpu, v) in cpus {
            self.now.push(u64::from(*cpu));
            self.now.extend(self.watched.iter().map(|&i| v[i]));
        }
        std::mem::swap(&mut self.now, &mut self.last);
        self.now != self.last
    }
}

impl<T: From<CpuStatBlock>> Periodic<T> for CpuStatReads {
    fn interval(&self) -> Duration {
        if self.moving {
            self.interval
        } else {
            self.quiet
        }
    }

    fn read(&mut self) {
        self.stats.reads += 1;
        match self.reader.read() {
            Ok((ts_ns, parsed)) => {
                for e in parsed.errors {
                    self.stats.errors += 1;
                    self.stats.last_error = e;
                }
                self.moving = self.moved(&parsed.cpus);
                let cpus = &mut self.block.cpus;
                for (k, (cpu, values)) in parsed.cpus.into_iter().enumerate() {
                    // /proc/stat lists the same CPUs in the same order every read, so the k-th
                    // line's series is the k-th unless a CPU came or went: no search per line
                    // (quadratic in the CPUs of a large server).
                    let at = match cpus.get(k) {
                        Some(s) if s.cpu == cpu => Some(k),
                        _ => cpus.iter().position(|s| s.cpu == cpu),
                    };
                    let s = match at {
                        Some(i) => &mut cpus[i],
                        None => {
                            cpus.push(CpuStatSeries {
                                cpu,
                                samples: Vec::new(),
                            });
                            cpus.last_mut().expect("just pushed")
                        }
                    };
                    s.samples.push(CpuStatSample { ts_ns, values });
                }
            }
            Err(e) => {
                self.stats.errors += 1;
                self.stats.last_error = e;
            }
        }
    }

    fn take(&mut self) -> Option<T> {
        if self.block.cpus.iter().all(|s| s.samples.is_empty()) {
            return None;
        }
        let out = CpuStatBlock {
            cpus: std::mem::take(&mut self.block.cpus),
            ..self.block.clone()
        };
        Some(out.into())
    }

    fn stats(&self) -> SourceStats {
        self.stats.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    const SAMPLE: &str = "cpu  100 2 30 4000 5 6 7 8 0 0\n\
cpu0 50 1 15 2000 2 3 4 5 0 0\n\
cpu1 50 1 15 2000 3 3 3 3 0 0\n\
intr 12345 1 2 3\n\
ctxt 999\n";

    #[test]
    fn parses_the_per_cpu_lines_and_names_a_bad_one() {
        assert_eq!(field_count(SAMPLE), Some(10));
        let p = parse(SAMPLE, 10);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.cpus.len(), 2);
        assert_eq!(p.cpus[1], (1, vec![50, 1, 15, 2000, 3, 3, 3, 3, 0, 0]));
        // An old kernel's 8 values, and a damaged line among good ones: the good ones stay.
        let text = "cpu  1 2 3 4 5 6 7 8\ncpu0 1 2 3 4 5 6 7 8\ncpu1 1 2 x 4 5 6 7 8\ncpu2 1 2\n";
        assert_eq!(field_count(text), Some(8));
        let p = parse(text, 8);
        assert_eq!(p.cpus, [(0, vec![1, 2, 3, 4, 5, 6, 7, 8])]);
        assert_eq!(p.errors.len(), 2);
        assert!(
            p.errors[0].contains("line 3") && p.errors[0].contains("cpu1 1 2 x"),
            "{:?}",
            p.errors
        );
        assert!(
            p.errors[1].contains("2 values where the first line had 8"),
            "{:?}",
            p.errors
        );
        // No per-CPU line at all is said, not a silent empty read.
        let p = parse("intr 1\n", 10);
        assert!(p.cpus.is_empty() && p.errors[0].contains("no cpuN line"));
        assert_eq!(field_count("cpu  1 2\n"), None);
    }

    #[test]
    fn kernel_accounting_from_its_build_config() {
        use TimeAccounting::*;
        let cfg = "# CONFIG_IRQ_TIME_ACCOUNTING is not set\nCONFIG_PARAVIRT_TIME_ACCOUNTING=y\n";
        assert_eq!(accounting(Some(cfg)), (Included, Apart));
        let cfg = "CONFIG_IRQ_TIME_ACCOUNTING=y\nCONFIG_IRQ_TIME_ACCOUNTING_X=y\n";
        assert_eq!(accounting(Some(cfg)), (Apart, Included));
        assert_eq!(accounting(None), (Unknown, Unknown));
    }

    #[test]
    fn a_missing_or_empty_file_is_a_clear_note() {
        let dir = tempfile::tempdir().unwrap();
        let (r, info) = open(
            &dir.path().join("nope"),
            Some((Duration::from_millis(100), Duration::from_secs(1))),
        );
        assert!(r.is_none());
        assert_eq!(info.status, SourceStatus::Unavailable);
        assert!(
            info.detail.contains("cannot open") && info.detail.contains("nope"),
            "{}",
            info.detail
        );
        let empty = dir.path().join("stat");
        std::fs::write(&empty, "intr 1\n").unwrap();
        let (r, info) = open(
            &empty,
            Some((Duration::from_millis(100), Duration::from_secs(1))),
        );
        assert!(r.is_none());
        assert!(info.detail.contains("no cpuN line"), "{}", info.detail);
        let (_, info) = open(&empty, None);
        assert_eq!(info.status, SourceStatus::Disabled);
    }

    #[test]
    fn each_cpu_keeps_its_series_when_cpus_come_and_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stat");
        let line = |cpu: u32, v: u64| format!("cpu{cpu} {v} 0 0 0 0 0 0 0 0 0\n");
        let write = |cpus: &[(u32, u64)]| {
            let text: String = cpus.iter().map(|&(c, v)| line(c, v)).collect();
            std::fs::write(&path, format!("cpu 0 0 0 0 0 0 0 0 0 0\n{text}intr 1\n")).unwrap();
        };
        write(&[(0, 1), (1, 2)]);
        let (reader, _) = open(
            &path,
            Some((Duration::from_millis(100), Duration::from_secs(1))),
        );
        let mut reads: Box<dyn Periodic<CpuStatBlock>> = Box::new(CpuStatReads::new(
            reader.unwrap(),
            Duration::from_secs(1),
            Duration::from_secs(1),
        ));
        reads.read();
        write(&[(1, 12)]); // CPU 0 went offline
        reads.read();
        write(&[(0, 30), (1, 32), (2, 33)]); // back, and a new one
        reads.read();
        let b = reads.take().unwrap();
        let got: Vec<(u32, Vec<u64>)> = b
            .cpus
            .iter()
            .map(|s| (s.cpu, s.samples.iter().map(|x| x.values[0]).collect()))
            .collect();
        assert_eq!(
            got,
            vec![(0, vec![1, 30]), (1, vec![2, 12, 32]), (2, vec![33])]
        );
    }

    /// Reads come every 100 ms from the start and while steal, irq or softirq moves on any
    /// CPU, every second while none does; other fields moving change nothing.
    #[test]
    fn reads_slow_down_while_steal_and_irq_time_stand_still() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stat");
        // user, nice, system, idle, iowait, irq, softirq, steal, guest, guest_nice
        let write = |user: u64, irq: u64, softirq: u64, steal: u64| {
            let cpu = |n: u32, x: u64| {
                format!(
                    "cpu{n} {user} 0 0 0 0 {} {softirq} {} 0 0\n",
                    irq + x,
                    steal + x
                )
            };
            let text = format!(
                "cpu 0 0 0 0 0 0 0 0 0 0\n{}{}intr 1\n",
                cpu(0, 0),
                cpu(1, 5)
            );
            std::fs::write(&path, text).unwrap();
        };
        write(1, 2, 3, 4);
        let (fast, slow) = (Duration::from_millis(100), Duration::from_secs(1));
        let (reader, info) = open(&path, Some((fast, slow)));
        assert!(
            info.detail
                .contains("every 100 ms while steal or IRQ time moves, else every 1000 ms"),
            "{}",
            info.detail
        );
        let mut reads: Box<dyn Periodic<CpuStatBlock>> =
            Box::new(CpuStatReads::new(reader.unwrap(), fast, slow));
        assert_eq!(reads.interval(), fast, "from the start");
        let mut after = |user, irq, softirq, steal| {
            write(user, irq, softirq, steal);
            reads.read();
            reads.interval()
        };
        assert_eq!(
            after(1, 2, 3, 4),
            fast,
            "the first read has nothing to compare"
        );
        assert_eq!(after(1, 2, 3, 4), slow, "nothing moved");
        assert_eq!(after(9, 2, 3, 4), slow, "only user time moved");
        assert_eq!(after(9, 2, 3, 5), fast, "steal moved");
        assert_eq!(after(9, 2, 3, 5), slow);
        assert_eq!(after(9, 3, 3, 5), fast, "irq moved");
        assert_eq!(after(9, 3, 4, 5), fast, "softirq moved");
        assert_eq!(after(9, 3, 4, 5), slow);
        // Every read is kept, whatever the cadence.
        let b = reads.take().unwrap();
        assert!(b.cpus.iter().all(|s| s.samples.len() == 8), "{b:?}");
    }

    /// The real /proc/stat (readable by anyone): read every 20 ms for 300 ms, every CPU's
    /// series increasing in time, values cumulative.
    #[test]
    fn samples_the_real_proc_stat_and_sends_at_stop() {
        let ms = Duration::from_millis(20);
        let (reader, info) = open(Path::new(PROC_STAT), Some((ms, ms)));
        let reader = reader.expect("/proc/stat is readable on Linux");
        assert_eq!(info.status, SourceStatus::Used);
        eprintln!("{}", info.detail);
        let ncpu = std::fs::read_to_string(PROC_STAT)
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
            .count();
        let (tx, rx) = mpsc::channel::<CpuStatBlock>();
        let reads: Box<dyn Periodic<CpuStatBlock>> = Box::new(CpuStatReads::new(reader, ms, ms));
        let sampler = crate::periodic::spawn(vec![reads], tx).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let stats = sampler.finish().unwrap().remove(0);
        let blocks: Vec<CpuStatBlock> = rx.iter().collect();
        assert_eq!(blocks.len(), 1, "{stats:?}");
        let b = &blocks[0];
        assert_eq!(b.fields[..8], PROC_STAT_FIELDS[..8]);
        assert!(b.ticks_per_s > 0);
        assert_eq!(b.cpus.len(), ncpu);
        assert_eq!(stats.errors, 0, "{stats:?}");
        for s in &b.cpus {
            // Reads at 0, 20, … 300 ms, give or take scheduling on a loaded machine.
            assert!(
                s.samples.len() >= 5 && s.samples.len() as u64 == stats.reads,
                "{stats:?}"
            );
            for w in s.samples.windows(2) {
                assert!(w[1].ts_ns > w[0].ts_ns);
                // user, system, steal never go back.
                for k in [0, 2, 7] {
                    assert!(w[1].values[k] >= w[0].values[k], "{s:?}");
                }
            }
        }
        // And it round-trips through the block encoding.
        let mut p = Vec::new();
        pws_trace::Payload::encode(b, &mut p);
        assert_eq!(&CpuStatBlock::decode(&p).unwrap(), b);
    }
}
