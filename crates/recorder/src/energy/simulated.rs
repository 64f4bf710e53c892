//! Simulated package energy for hosts without energy counters (VMs, CI): each package's CPU
//! utilisation, from the host's real per-CPU busy time in /proc/stat, mapped through the
//! utilisation→power curve of a real server's published SPECpower_ssj2008 result. It is never
//! a measurement, and says so in the trace.
//!
//! Per package and interval: utilisation = Δbusy / Δ(busy + idle) of its CPUs' jiffies
//! (busy = user+nice+system+irq+softirq+steal, idle = idle+iowait; guest time is already in
//! user) → the curve's whole-server AC wall power, piecewise linear between active idle (0 %)
//! and the ten measured (actual load %, W) points, the last point from its load up to 100 % →
//! divided by the server's chip count → times the interval, added to a microjoule counter that
//! only grows (wrap 0).
//!
//! /proc/stat counts in USER_HZ ticks (10 ms), so sub-tick utilisation does not exist: energy
//! is added once every CPU of the package has ticked about once (or after 1 s), for the time
//! since the last addition. Read every millisecond, the counter is a staircase with ~10 ms
//! steps whose average power is right.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pws_trace::records::{CpuInfo, EnergyDomain, EnergySource};

use super::{package_of, CounterDesc, CounterReader, Found, Unusable};

/// Extracted from datasets/specpower/spec_data.csv by data/extract_specpower.py.
const CURVES: &str = include_str!("../../data/specpower_curves.csv");

/// A recent two-socket Intel Xeon server, the kind FaaS clusters run on: Ice Lake-SP, 2 × 40
/// cores, 256 GB, 127 W at active idle, 619 W at full load.
pub const DEFAULT_SERVER: &str = "Hewlett Packard Enterprise ProLiant DL380 Gen10 Plus (Intel Xeon Platinum 8380 2.30 GHz, 2 chips, 2021-05-31)";

/// Energy is added at the latest after this long, even if the jiffies did not move enough.
const MAX_PENDING_NS: u64 = 1_000_000_000;
/// CPU numbers at or above this are garbage (the kernel's NR_CPUS is at most 8192): ignored
/// rather than sizing tables by them.
const MAX_CPU: usize = 1 << 16;

/// One server's published result.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    pub name: String,
    pub chips: u32,
    /// Active idle, W.
    pub idle_w: f64,
    /// (actual load %, W) from the 10 % to the 100 % target, increasing in load.
    pub points: Vec<(f64, f64)>,
}

impl Curve {
    /// Whole-server wall power at `util` (0–1): linear between idle at 0 % and the measured
    /// points; at or above the last point's load (which may be 99.x or 100.x %), its power.
    pub fn watts(&self, util: f64) -> f64 {
        let u = if util.is_nan() {
            0.0
        } else {
            util.clamp(0.0, 1.0) * 100.0
        };
        let Some(&(last_x, last_w)) = self.points.last() else {
            return self.idle_w;
        };
        if u >= last_x.min(100.0) {
            return last_w;
        }
        let (mut x0, mut w0) = (0.0, self.idle_w);
        for &(x, w) in &self.points {
            if u <= x {
                return w0 + (w - w0) * (u - x0) / (x - x0);
            }
            (x0, w0) = (x, w);
        }
        last_w
    }

    pub fn watts_per_chip(&self, util: f64) -> f64 {
        self.watts(util) / f64::from(self.chips.max(1))
    }
}

/// Every curve of the embedded extraction.
pub fn curves() -> Result<Vec<Curve>, String> {
    parse(CURVES)
}

fn parse(text: &str) -> Result<Vec<Curve>, String> {
    let mut out = Vec::new();
    let lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.starts_with('#'));
    for (i, line) in lines.skip(1) {
        let bad = |what: &str| format!("specpower_curves.csv line {}: {what}", i + 1);
        let f: Vec<&str> = line.split('|').collect();
        if f.len() != 23 {
            return Err(bad(&format!("{} fields, expected 23", f.len())));
        }
        let num = |s: &str| {
            s.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| bad(&format!("{s:?} is not a number")))
        };
        let points = f[3..]
            .chunks(2)
            .map(|p| Ok((num(p[0])?, num(p[1])?)))
            .collect::<Result<Vec<_>, String>>()?;
        if points[0].0 <= 0.0 || points.windows(2).any(|w| w[1].0 <= w[0].0) {
            return Err(bad("loads do not increase"));
        }
        out.push(Curve {
            name: f[0].to_owned(),
            chips: f[1]
                .parse()
                .ok()
                .filter(|&c| c > 0)
                .ok_or_else(|| bad("no chip count"))?,
            idle_w: num(f[2])?,
            points,
        });
    }
    if out.is_empty() {
        return Err("specpower_curves.csv holds no curve".into());
    }
    Ok(out)
}

/// The curve `--simulated-server` names: an exact name (any case), else the only name that
/// contains the query. Several matches are an error listing them, so a trace never depends on
/// the file's order; none is an error listing the closest names.
pub fn select(query: &str) -> Result<Curve, String> {
    let all = curves()?;
    let q = query.trim().to_lowercase();
    if q.is_empty() {
        return Err("empty server name".into());
    }
    if let Some(c) = all.iter().find(|c| c.name.to_lowercase() == q) {
        return Ok(c.clone());
    }
    let hits: Vec<&Curve> = all
        .iter()
        .filter(|c| c.name.to_lowercase().contains(&q))
        .collect();
    match hits.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(format!(
            "no SPECpower server's name contains it; closest: {} (all {} names: crates/recorder/data/specpower_curves.csv)",
            closest(&all, &q).join(" | "),
            all.len()
        )),
        many => Err(format!(
            "{} SPECpower servers match: {}{}; give more of the name (an exact name always wins)",
            many.len(),
            many.iter()
                .take(8)
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(" | "),
            if many.len() > 8 { " | …" } else { "" }
        )),
    }
}

/// The five names sharing the most words, then the most letter trigrams, with the query.
fn closest(all: &[Curve], q: &str) -> Vec<String> {
    let words: Vec<&str> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let grams = |s: &str| -> Vec<String> {
        let c: Vec<char> = s.chars().collect();
        c.windows(3).map(|w| w.iter().collect()).collect()
    };
    let qg = grams(q);
    let mut scored: Vec<(usize, usize, &str)> = all
        .iter()
        .map(|c| {
            let n = c.name.to_lowercase();
            let w = words.iter().filter(|w| n.contains(*w)).count();
            let g = qg.iter().filter(|g| n.contains(g.as_str())).count();
            (w, g, c.name.as_str())
        })
        .collect();
    scored.sort_by(|a, b| (b.0, b.1).cmp(&(a.0, a.1)).then(a.2.cmp(b.2)));
    scored.iter().take(5).map(|s| s.2.to_owned()).collect()
}

/// The named curve, or the default.
fn resolve(query: Option<&str>) -> Result<Curve, String> {
    select(query.unwrap_or(DEFAULT_SERVER))
}

pub(super) fn detect(query: Option<&str>, proc_stat: &Path, cpus: &[CpuInfo]) -> Found {
    let curve = resolve(query).map_err(|e| Unusable::failed(format!("SPECpower curve: {e}")))?;
    let clock = Box::new(crate::clock::monotonic_ns);
    let mut r = SimulatedReader::new(curve, proc_stat, cpus, clock).map_err(|e| {
        Unusable::unavailable(format!(
            "cannot read {}: {e} (per-CPU busy time drives the simulation)",
            proc_stat.display()
        ))
    })?;
    let mut v = vec![0; r.counters().len()];
    r.read(&mut v)
        .map_err(|e| Unusable::failed(e.to_string()))?;
    r.sim.reset();
    let c = &r.sim.curve;
    let detail = format!(
        "SIMULATED from SPECpower curve of {}; not a measurement: per package, utilisation of its CPUs (their jiffies in {} when read by the sampling thread, the kernel's ticks when read by the kernel: see the end) mapped to the server's published AC wall power (active idle {} W, 50 % {:.0} W, 100 % {} W) divided by its {} chip(s); {} package counter(s) in µJ. Figures: SPECpower_ssj2008 results, SPEC (www.spec.org/power_ssj2008)",
        c.name,
        proc_stat.display(),
        c.idle_w,
        c.watts(0.5),
        c.points.last().map_or(c.idle_w, |p| p.1),
        c.chips,
        r.sim.counters.len(),
    );
    Ok((Box::new(r), detail))
}

#[derive(Debug, Default, Clone)]
struct Package {
    /// Busy and total time of its CPUs since energy was last added (jiffies, or ns).
    busy: u64,
    total: u64,
    /// Its CPUs seen in the last reading.
    cpus: u64,
    pending_ns: u64,
    util: f64,
    energy_uj: f64,
}

/// The simulation proper, whatever measures the CPUs' busy time: each CPU's cumulative busy
/// and total time (any one unit) at a reading → each package's counter. /proc/stat's jiffies
/// feed it in [`SimulatedReader`], the kernel's ticks in `simulated_ticks`.
#[derive(Debug)]
pub(super) struct Packages {
    counters: Vec<CounterDesc>,
    curve: Curve,
    /// Package slot of each CPU number; CPUs not listed count in the first package.
    slot: Vec<usize>,
    /// Last (busy, total) of each CPU number.
    last: Vec<Option<(u64, u64)>>,
    pkgs: Vec<Package>,
    last_ns: Option<u64>,
}

impl Packages {
    pub fn new(curve: Curve, cpus: &[CpuInfo]) -> Self {
        let mut packages: Vec<u32> = cpus.iter().map(package_of).collect();
        packages.sort_unstable();
        packages.dedup();
        if packages.is_empty() {
            packages.push(0);
        }
        let mut slot = Vec::new();
        for c in cpus.iter().filter(|c| (c.cpu as usize) < MAX_CPU) {
            let i = c.cpu as usize;
            if i >= slot.len() {
                slot.resize(i + 1, 0);
            }
            slot[i] = packages
                .iter()
                .position(|&p| p == package_of(c))
                .unwrap_or(0);
        }
        let counters = packages
            .iter()
            .map(|&p| CounterDesc {
                source: EnergySource::Simulated,
                domain: EnergyDomain::Package,
                index: p,
                name: format!("simulated:{}", curve.name),
                unit_joules: 1e-6,
                wrap: 0,
            })
            .collect();
        Self {
            counters,
            pkgs: vec![Package::default(); packages.len()],
            curve,
            slot,
            last: Vec::new(),
            last_ns: None,
        }
    }

    pub fn counters(&self) -> &[CounterDesc] {
        &self.counters
    }

    /// Forgets every reading: the next one starts the counters again at 0.
    pub fn reset(&mut self) {
        self.last.clear();
        self.last_ns = None;
        self.pkgs.iter_mut().for_each(|p| *p = Package::default());
    }

    /// One reading at `now_ns`: every CPU's cumulative (cpu, busy, total); each package's
    /// counter into `out`. False when no CPU was given (nothing read).
    pub fn add(
        &mut self,
        now_ns: u64,
        cpus: impl Iterator<Item = (usize, u64, u64)>,
        out: &mut [u64],
    ) -> bool {
        for p in &mut self.pkgs {
            p.cpus = 0;
        }
        let mut seen = 0;
        for (cpu, busy, total) in cpus.filter(|c| c.0 < MAX_CPU) {
            seen += 1;
            let p = &mut self.pkgs[self.slot.get(cpu).copied().unwrap_or(0)];
            p.cpus += 1;
            if cpu >= self.last.len() {
                self.last.resize(cpu + 1, None);
            }
            if let Some((b, t)) = self.last[cpu] {
                // saturating: a CPU that went offline and back may restart its counts.
                p.busy = p.busy.saturating_add(busy.saturating_sub(b));
                p.total = p.total.saturating_add(total.saturating_sub(t));
            }
            self.last[cpu] = Some((busy, total));
        }
        if seen == 0 {
            return false;
        }
        let dt = match self.last_ns.replace(now_ns) {
            Some(prev) => now_ns.saturating_sub(prev),
            None => {
                // The first reading only sets the baseline.
                for p in &mut self.pkgs {
                    (p.busy, p.total) = (0, 0);
                }
                0
            }
        };
        for (p, v) in self.pkgs.iter_mut().zip(out.iter_mut()) {
            p.pending_ns = p.pending_ns.saturating_add(dt);
            if p.pending_ns > 0 && (p.total >= p.cpus.max(1) || p.pending_ns >= MAX_PENDING_NS) {
                if p.total > 0 {
                    p.util = p.busy.min(p.total) as f64 / p.total as f64;
                }
                p.energy_uj += self.curve.watts_per_chip(p.util) * p.pending_ns as f64 / 1e3;
                (p.busy, p.total, p.pending_ns) = (0, 0, 0);
            }
            *v = p.energy_uj as u64;
        }
        true
    }
}

pub struct SimulatedReader {
    sim: Packages,
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
    clock: Box<dyn FnMut() -> u64 + Send>,
    /// The host's CPUs, for the same simulation clocked by the kernel.
    cpus: Vec<CpuInfo>,
}

impl std::fmt::Debug for SimulatedReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedReader")
            .field("server", &self.sim.curve.name)
            .field("path", &self.path)
            .field("packages", &self.sim.pkgs)
            .finish_non_exhaustive()
    }
}

impl SimulatedReader {
    pub fn new(
        curve: Curve,
        proc_stat: &Path,
        cpus: &[CpuInfo],
        clock: Box<dyn FnMut() -> u64 + Send>,
    ) -> io::Result<Self> {
        let file = File::open(proc_stat)?;
        Ok(Self {
            sim: Packages::new(curve, cpus),
            path: proc_stat.to_owned(),
            file,
            buf: Vec::with_capacity(64 * 1024),
            clock,
            cpus: cpus.to_vec(),
        })
    }

    /// Rereads the whole file from offset 0 (procfs regenerates it).
    fn load(&mut self) -> io::Result<()> {
        self.buf.clear();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let n = self.file.read_at(&mut chunk, self.buf.len() as u64)?;
            if n == 0 {
                return Ok(());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// `cpuN user nice system idle iowait irq softirq steal …` → (N, busy, total) jiffies.
fn cpu_line(line: &str) -> Option<(usize, u64, u64)> {
    let mut f = line.split_ascii_whitespace();
    let cpu = f.next()?.strip_prefix("cpu")?.parse().ok()?;
    if cpu >= MAX_CPU {
        return None;
    }
    let mut v = [0u64; 8];
    for (i, x) in f.take(8).enumerate() {
        v[i] = x.parse().ok()?;
    }
    let [user, nice, system, idle, iowait, irq, softirq, steal] = v;
    let sum = |xs: &[u64]| xs.iter().fold(0u64, |a, &x| a.saturating_add(x));
    let busy = sum(&[user, nice, system, irq, softirq, steal]);
    Some((cpu, busy, sum(&[busy, idle, iowait])))
}

impl CounterReader for SimulatedReader {
    fn counters(&self) -> &[CounterDesc] {
        &self.sim.counters
    }

    fn read(&mut self, out: &mut [u64]) -> io::Result<()> {
        let now = (self.clock)();
        self.load().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot read {}: {e}", self.path.display()),
            )
        })?;
        let text = String::from_utf8_lossy(&self.buf);
        if !self.sim.add(now, text.lines().filter_map(cpu_line), out) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} has no cpuN lines", self.path.display()),
            ));
        }
        Ok(())
    }

    fn clocked(&self, period: Duration) -> Option<io::Result<Box<dyn super::ClockedReader>>> {
        Some(
            super::simulated_ticks::SimulatedTicks::open(
                Packages::new(self.sim.curve.clone(), &self.cpus),
                &self.cpus,
                period,
            )
            .map(|t| Box::new(t) as Box<dyn super::ClockedReader>),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::energy::tests::cpu;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    #[test]
    fn extraction_parses_and_default_server_exists() {
        let all = curves().unwrap();
        assert!(all.len() > 500, "{}", all.len());
        let d = select(DEFAULT_SERVER).unwrap();
        assert_eq!(d.name, DEFAULT_SERVER);
        assert_eq!(d.chips, 2);
        // Its published figures (SPECpower_ssj2008, HPE, 2021-05-31).
        assert_eq!(d.idle_w, 127.0);
        assert_eq!(d.points[0], (10.0, 198.0));
        assert_eq!(d.points[4], (50.0, 314.0));
        assert_eq!(d.points[9], (99.8, 619.0));
        let mut names: Vec<_> = all.iter().map(|c| &c.name).collect();
        names.dedup();
        assert_eq!(names.len(), all.len(), "names are unique");
    }

    /// The committed extraction is what the committed script makes of the committed data.
    #[test]
    fn extraction_is_up_to_date() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        match std::process::Command::new("python3")
            .arg(dir.join("data/extract_specpower.py"))
            .arg("--check")
            .output()
        {
            Ok(o) => assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr)),
            Err(e) => eprintln!("python3 not runnable ({e}); extraction not checked"),
        }
    }

    #[test]
    fn curve_interpolates_between_published_points() {
        let c = select(DEFAULT_SERVER).unwrap();
        assert_eq!(c.watts(0.0), 127.0);
        assert_eq!(c.watts(0.05), 127.0 + (198.0 - 127.0) * 0.5);
        assert_eq!(c.watts(0.45), 297.5); // halfway between 40.0 % 281 W and 50.0 % 314 W
        assert_eq!(c.watts(0.999), 619.0);
        assert_eq!(c.watts(1.0), 619.0);
        assert_eq!(c.watts(7.0), 619.0);
        assert_eq!(c.watts(-1.0), 127.0);
        assert_eq!(c.watts(f64::NAN), 127.0);
        assert_eq!(c.watts_per_chip(1.0), 309.5);
        // A curve whose last point lies above 100 % still reaches it at full utilisation.
        let over = Curve {
            points: vec![(50.0, 10.0), (100.4, 20.0)],
            ..c.clone()
        };
        assert_eq!(over.watts(1.0), 20.0);
        // Curves grow with load.
        for c in curves().unwrap() {
            let mut prev = 0.0;
            for u in 0..=100 {
                let w = c.watts(f64::from(u) / 100.0);
                assert!(w >= prev && w > 0.0, "{} at {u} %", c.name);
                prev = w;
            }
        }
    }

    #[test]
    fn selection_by_substring() {
        assert!(select(
            "ProLiant DL380 Gen10 Plus (Intel Xeon Platinum 8380 2.30 GHz, 2 chips, 2021-05-31)"
        )
        .is_ok());
        let e = select("DL380 Gen10 Plus").unwrap_err();
        assert!(e.contains("2 SPECpower servers match"), "{e}");
        assert!(e.contains("2021-05-28") && e.contains("2021-05-31"), "{e}");
        let e = select("ProLiant DL380 Gen10 Plux").unwrap_err();
        assert!(e.contains("closest"), "{e}");
        assert!(e.contains("ProLiant DL380 Gen10 Plus"), "{e}");
        assert!(select("  ").is_err());
        let r =
            select("think system sr645 (amd epyc 7742 2.25ghz, 2 chips, 2020-05-12) #2").unwrap();
        assert!(r.name.ends_with("#2"));
    }

    struct Fixture {
        dir: tempfile::TempDir,
        now: Arc<AtomicU64>,
    }

    impl Fixture {
        fn new() -> Self {
            Self {
                dir: tempfile::tempdir().unwrap(),
                now: Arc::new(AtomicU64::new(5_000_000_000)),
            }
        }
        fn path(&self) -> PathBuf {
            self.dir.path().join("stat")
        }
        /// Writes a /proc/stat with (busy, idle) jiffies per CPU, split over its fields.
        fn stat(&self, cpus: &[(u64, u64)]) {
            let mut s = String::from("cpu  1 2 3 4 5 6 7 8 9 10\n");
            for (i, &(busy, idle)) in cpus.iter().enumerate() {
                // user, nice, system, idle, iowait, irq, softirq, steal, guest, guest_nice:
                // guest time is part of user already and must not count twice.
                let (user, system) = (busy / 2, busy - busy / 2 - 3);
                s += &format!("cpu{i} {user} 0 {system} {} 1 1 1 1 500 500\n", idle - 1);
            }
            s += "intr 1 2 3\nctxt 99\nbtime 1\nprocesses 5\n";
            std::fs::write(self.path(), s).unwrap();
        }
        fn advance_ms(&self, ms: u64) {
            self.now.fetch_add(ms * 1_000_000, Ordering::Relaxed);
        }
        fn reader(&self, cpus: &[CpuInfo]) -> SimulatedReader {
            let now = Arc::clone(&self.now);
            SimulatedReader::new(
                select(DEFAULT_SERVER).unwrap(),
                &self.path(),
                cpus,
                Box::new(move || now.load(Ordering::Relaxed)),
            )
            .unwrap()
        }
    }

    #[test]
    fn energy_from_busy_deltas_is_exact() {
        let f = Fixture::new();
        let cpus = [cpu(0, 0), cpu(1, 0), cpu(2, 1), cpu(3, 1)];
        f.stat(&[(1000, 5000), (2000, 6000), (3000, 7000), (4000, 8000)]);
        let mut r = f.reader(&cpus);
        let c = r.counters();
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].index, c[1].index), (0, 1));
        assert_eq!(c[0].source, EnergySource::Simulated);
        assert_eq!(c[0].domain, EnergyDomain::Package);
        assert_eq!(c[0].unit_joules, 1e-6);
        assert_eq!(c[0].wrap, 0);
        assert_eq!(c[0].name, format!("simulated:{DEFAULT_SERVER}"));
        let mut v = [0u64; 2];
        r.read(&mut v).unwrap();
        assert_eq!(v, [0, 0]);

        // 1 s: package 0 busy 45 of 100 jiffies on each CPU, package 1 fully idle.
        f.advance_ms(1000);
        f.stat(&[(1045, 5055), (2045, 6055), (3000, 7100), (4000, 8100)]);
        r.read(&mut v).unwrap();
        // 45 %: 281 + (314 - 281) × 0.5 = 297.5 W per server, / 2 chips = 148.75 W for 1 s.
        // 0 %: active idle 127 W / 2 = 63.5 W for 1 s.
        assert_eq!(v, [148_750_000, 63_500_000]);

        // 0.5 s more: package 0 fully busy, package 1 at 50 % (50.0 % → 314 W).
        f.advance_ms(500);
        f.stat(&[(1095, 5055), (2095, 6055), (3025, 7125), (4025, 8125)]);
        r.read(&mut v).unwrap();
        assert_eq!(v, [148_750_000 + 154_750_000, 63_500_000 + 78_500_000]);
    }

    #[test]
    fn millisecond_reads_between_ticks_hold_then_catch_up() {
        let f = Fixture::new();
        let cpus = [cpu(0, 0), cpu(1, 0)];
        f.stat(&[(100, 100), (100, 100)]);
        let mut r = f.reader(&cpus);
        let mut v = [0u64];
        r.read(&mut v).unwrap();
        // Reads at 1 ms see no new jiffies: nothing is known yet, the counter holds.
        for _ in 0..9 {
            f.advance_ms(1);
            r.read(&mut v).unwrap();
            assert_eq!(v, [0]);
        }
        // Only one CPU ticked: still waiting for the other.
        f.advance_ms(1);
        f.stat(&[(101, 100), (100, 100)]);
        r.read(&mut v).unwrap();
        assert_eq!(v, [0]);
        // Both ticked, both busy: the whole 11 ms at full load, 309.5 W per chip.
        f.advance_ms(1);
        f.stat(&[(101, 100), (101, 100)]);
        r.read(&mut v).unwrap();
        assert_eq!(v, [(309.5 * 11_000.0) as u64]);
        // A second without any tick (impossible on a live host) still adds energy, at the last
        // utilisation.
        f.advance_ms(1000);
        r.read(&mut v).unwrap();
        assert_eq!(v, [(309.5 * 1_011_000.0) as u64]);
    }

    #[test]
    fn bad_proc_stat_is_an_error_not_a_panic() {
        let f = Fixture::new();
        std::fs::write(f.path(), "cpu0 x y z\nintr 1\n").unwrap();
        let mut r = f.reader(&[cpu(0, 0)]);
        let e = r.read(&mut [0]).unwrap_err().to_string();
        assert!(e.contains("no cpuN lines"), "{e}");
        assert!(e.contains(&f.path().display().to_string()), "{e}");
        std::fs::write(f.path(), "").unwrap();
        assert!(r.read(&mut [0]).is_err());
        // Absurd numbers neither overflow nor size tables.
        let max = u64::MAX;
        std::fs::write(
            f.path(),
            format!("cpu99999999999 1 2 3 4 5 6 7 8\ncpu0 {max} {max} {max} {max} 1 1 1 1\n"),
        )
        .unwrap();
        r.read(&mut [0]).unwrap();
        f.advance_ms(10);
        std::fs::write(f.path(), "cpu0 1 1 1 1 1 1 1 1\n").unwrap();
        r.read(&mut [0]).unwrap();
        // CPUs unknown to the topology count in the first package; none known → package 0.
        f.stat(&[(10, 10), (10, 10), (10, 10)]);
        let mut r = f.reader(&[]);
        assert_eq!(r.counters().len(), 1);
        r.read(&mut [0]).unwrap();

        let u = detect(None, Path::new("/nonexistent/stat"), &[]).unwrap_err();
        assert!(u.reason.contains("/nonexistent/stat"), "{u:?}");
    }

    #[test]
    fn detect_on_the_real_proc_stat() {
        let (mut r, detail) = detect(
            None,
            Path::new("/proc/stat"),
            &crate::energy::tests::host_cpus(),
        )
        .unwrap();
        assert!(
            detail.starts_with(&format!(
                "SIMULATED from SPECpower curve of {DEFAULT_SERVER}; not a measurement"
            )),
            "{detail}"
        );
        let mut v = vec![0; r.counters().len()];
        r.read(&mut v).unwrap();
        assert!(
            v.iter().all(|&x| x == 0),
            "starts at 0 after detection: {v:?}"
        );
        crate::energy::spin(std::time::Duration::from_millis(30));
        r.read(&mut v).unwrap();
        // 30 ms at ≥ 63.5 W per chip is ≥ 1.9 J.
        assert!(v.iter().all(|&x| x >= 1_900_000), "{v:?}");
    }
}
