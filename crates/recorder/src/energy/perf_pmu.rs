//! The kernel's RAPL perf PMU (`power`): one system-wide counting event per energy domain and
//! package, read with read(2) — or, clocked by the kernel, grouped under a sampled cpu-clock on
//! the package's CPU so that every sample carries them (`kernel_clocked`). The kernel
//! accumulates the hardware counter into a 64-bit count, so these counters never wrap
//! (wrap = 0).

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use perf_event_open_sys as sys;
use perf_event_open_sys::bindings::perf_event_attr;
use pws_trace::records::{CpuInfo, EnergyDomain, EnergySource};

use super::kernel_clocked::{self, Clocked};
use super::{
    one_cpu_per_package, package_of, ClockedReader, CounterDesc, CounterReader, Found, Retain,
    Unusable,
};

/// The events the kernel's RAPL PMU can list, and their domains. `energy-gpu` is RAPL's PP1
/// plane, which powercap calls "uncore".
const EVENTS: [(&str, EnergyDomain); 5] = [
    ("energy-pkg", EnergyDomain::Package),
    ("energy-ram", EnergyDomain::Dram),
    ("energy-cores", EnergyDomain::Cores),
    ("energy-gpu", EnergyDomain::Uncore),
    ("energy-psys", EnergyDomain::Psys),
];

#[derive(Debug)]
pub struct PerfPowerReader {
    counters: Vec<CounterDesc>,
    fds: Vec<File>,
    /// In step with the counters: the PMU type and event config, and the CPU each is read on.
    events: Vec<(u32, u64, u32)>,
}

/// The counters grouped under a sampled cpu-clock on each of their CPUs.
#[derive(Debug)]
pub struct PerfPowerTicks {
    counters: Vec<CounterDesc>,
    clocked: Clocked,
    /// Per leader, the counter index of each of its siblings.
    index: Vec<Vec<usize>>,
}

impl PerfPowerTicks {
    /// One group per CPU the counters are read on, each counter a sibling in its CPU's group.
    pub fn open(
        counters: Vec<CounterDesc>,
        events: &[(u32, u64, u32)],
        period: Duration,
    ) -> io::Result<Self> {
        let mut groups: Vec<(u32, Vec<perf_event_attr>)> = Vec::new();
        let mut index: Vec<Vec<usize>> = Vec::new();
        for (i, &(ty, config, cpu)) in events.iter().enumerate() {
            let g = match groups.iter().position(|g| g.0 == cpu) {
                Some(g) => g,
                None => {
                    groups.push((cpu, Vec::new()));
                    index.push(Vec::new());
                    groups.len() - 1
                }
            };
            groups[g].1.push(kernel_clocked::sibling_attr(ty, config));
            index[g].push(i);
        }
        Ok(Self {
            counters,
            clocked: Clocked::open(&groups, period)?,
            index,
        })
    }
}

impl ClockedReader for PerfPowerTicks {
    fn counters(&self) -> &[CounterDesc] {
        &self.counters
    }

    /// Every sample is a reading of its group's counters; nothing is held back.
    fn drain(&mut self, _last: bool, f: &mut dyn FnMut(usize, u64, &[u64])) -> io::Result<()> {
        let index = &self.index;
        self.clocked.drain(|leader, tick| {
            for (&i, v) in index[leader].iter().zip(tick.values) {
                f(i, tick.time_ns, std::slice::from_ref(v));
            }
        })
    }

    fn lost(&self) -> u64 {
        self.clocked.lost()
    }

    fn describe(&self) -> String {
        let cpus: Vec<String> = self.clocked.cpus().map(|c| c.to_string()).collect();
        format!(
            "grouped under a cpu-clock sampled every {:?} on cpu {}, which reads them into each sample",
            Duration::from_nanos(self.clocked.period_ns()),
            cpus.join(", ")
        )
    }
}

impl CounterReader for PerfPowerReader {
    fn counters(&self) -> &[CounterDesc] {
        &self.counters
    }

    fn read(&mut self, out: &mut [u64]) -> io::Result<()> {
        for ((fd, c), v) in self.fds.iter_mut().zip(&self.counters).zip(out) {
            let mut b = [0u8; 8];
            let n = fd.read(&mut b).map_err(|e| {
                io::Error::new(e.kind(), format!("read of perf event {}: {e}", c.name))
            })?;
            if n != 8 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("read of perf event {} returned {n} bytes, not 8", c.name),
                ));
            }
            *v = u64::from_ne_bytes(b);
        }
        Ok(())
    }

    fn clocked(&self, period: Duration) -> Option<io::Result<Box<dyn ClockedReader>>> {
        Some(
            PerfPowerTicks::open(self.counters.clone(), &self.events, period)
                .map(|t| Box::new(t) as Box<dyn ClockedReader>),
        )
    }
}

impl Retain for PerfPowerReader {
    fn retain(&mut self, keep: &[bool]) {
        super::retain_masked(&mut self.counters, keep);
        super::retain_masked(&mut self.fds, keep);
        super::retain_masked(&mut self.events, keep);
    }
}

/// Opens the PMU's events and keeps those that advance.
pub(super) fn detect(root: &Path, cpus: &[CpuInfo]) -> Found {
    let reader = open(root, cpus)?;
    super::probe(reader, super::PROBE_WINDOW, "perf power PMU")
}

/// Opens every energy event the PMU lists on one CPU per package.
pub(super) fn open(root: &Path, cpus: &[CpuInfo]) -> Result<PerfPowerReader, Unusable> {
    let r = root.display();
    if !root.is_dir() {
        return Err(Unusable::unavailable(format!(
            "no {r}: the kernel has no RAPL perf PMU (not Intel/AMD RAPL hardware, a VM that hides it, or a kernel without CONFIG_PERF_EVENTS_INTEL_RAPL)"
        )));
    }
    let ty = fs::read_to_string(root.join("type"))
        .map_err(|e| Unusable::failed(format!("cannot read {r}/type: {e}")))?;
    let ty: u32 = ty
        .trim()
        .parse()
        .map_err(|_| Unusable::failed(format!("{r}/type holds {ty:?}, not a PMU type number")))?;
    let listed: Vec<_> = EVENTS
        .iter()
        .filter(|(e, _)| root.join("events").join(e).is_file())
        .collect();
    if listed.is_empty() {
        return Err(Unusable::unavailable(format!(
            "{r}/events lists none of energy-pkg, energy-ram, energy-cores, energy-gpu, energy-psys"
        )));
    }
    let targets = targets(root, cpus);
    let paranoid = fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    let mut reader = PerfPowerReader {
        counters: Vec::new(),
        fds: Vec::new(),
        events: Vec::new(),
    };
    let mut problems = Vec::new();
    let mut refused = None;
    for &&(event, domain) in &listed {
        let ev = match event_config(root, event) {
            Ok(ev) => ev,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let mut reported = false;
        for &(cpu, package) in &targets {
            match open_event(ty, ev.config, cpu) {
                Ok(fd) => {
                    // Intel's PMU is per die: name the CPU when a package has several.
                    let shared = targets.iter().filter(|t| t.1 == package).count() > 1;
                    reader.counters.push(CounterDesc {
                        source: EnergySource::PerfPowerPmu,
                        domain,
                        index: package,
                        name: if shared {
                            format!("{event} (cpu {cpu})")
                        } else {
                            event.to_owned()
                        },
                        unit_joules: ev.scale,
                        wrap: 0,
                    });
                    reader.fds.push(fd);
                    reader.events.push((ty, ev.config, cpu));
                }
                Err(e) => {
                    let what = format!("perf_event_open(power/{event}, cpu {cpu}): {e}");
                    if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) {
                        refused = Some(format!(
                            "{what}: system-wide perf events need CAP_PERFMON or CAP_SYS_ADMIN, or kernel.perf_event_paranoid <= 0 (it is {paranoid}): run as root or `sysctl kernel.perf_event_paranoid=0`"
                        ));
                    } else if !reported {
                        // Once per event: the other CPUs fail the same way.
                        problems.push(what);
                        reported = true;
                    }
                }
            }
        }
    }
    if reader.counters.is_empty() {
        return Err(match refused {
            Some(r) => Unusable::unavailable(r),
            None => Unusable::failed(format!(
                "no power PMU event opened: {}",
                problems.join("; ")
            )),
        });
    }
    Ok(reader)
}

/// One CPU per package: the PMU's own `cpumask` (one CPU per die on Intel, per package on AMD),
/// or the first online CPU of each package when it has none.
fn targets(root: &Path, cpus: &[CpuInfo]) -> Vec<(u32, u32)> {
    let mask = fs::read_to_string(root.join("cpumask"))
        .map(|s| crate::host::parse_cpu_list(&s))
        .unwrap_or_default();
    if mask.is_empty() {
        return one_cpu_per_package(cpus);
    }
    mask.iter()
        .enumerate()
        .map(|(i, &cpu)| {
            let pkg = cpus
                .iter()
                .find(|c| c.cpu == cpu)
                .map(package_of)
                .unwrap_or(i as u32);
            (cpu, pkg)
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct EventConfig {
    pub config: u64,
    /// Joules per count, from `<event>.scale`.
    pub scale: f64,
}

/// The `attr.config` and scale of `events/<event>`: its terms ("event=0x02") placed into
/// `config` by the PMU's `format/<term>` bit ranges ("config:0-7").
pub(super) fn event_config(root: &Path, event: &str) -> Result<EventConfig, String> {
    let ev = root.join("events").join(event);
    let text = fs::read_to_string(&ev).map_err(|e| format!("cannot read {}: {e}", ev.display()))?;
    let mut config = 0u64;
    for term in text.trim().split(',').filter(|t| !t.is_empty()) {
        let (name, value) = term.split_once('=').unwrap_or((term, "1"));
        let value = parse_u64(value.trim())
            .ok_or_else(|| format!("{}: term {term:?} has no number", ev.display()))?;
        let fmt = root.join("format").join(name.trim());
        let spec = fs::read_to_string(&fmt).unwrap_or_else(|_| "config:0-63".into());
        config |= place(spec.trim(), value)
            .ok_or_else(|| format!("{}: unsupported format {spec:?}", fmt.display()))?;
    }
    let sc = root.join("events").join(format!("{event}.scale"));
    let scale: f64 = fs::read_to_string(&sc)
        .map_err(|e| format!("cannot read {}: {e}", sc.display()))?
        .trim()
        .parse()
        .map_err(|_| format!("{} is not a number", sc.display()))?;
    if !(scale.is_finite() && scale > 0.0) {
        return Err(format!(
            "{} holds {scale}, not a positive scale",
            sc.display()
        ));
    }
    let un = root.join("events").join(format!("{event}.unit"));
    if let Ok(unit) = fs::read_to_string(&un) {
        if unit.trim() != "Joules" {
            return Err(format!(
                "{} says {:?}; only Joules are understood",
                un.display(),
                unit.trim()
            ));
        }
    }
    Ok(EventConfig { config, scale })
}

fn parse_u64(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Scatters `value`'s low bits into the bit ranges of a sysfs format spec ("config:0-7",
/// "config:0-7,32-35"), as perf does. Only `config` (not config1/2) is supported: the power
/// PMU uses nothing else.
fn place(spec: &str, mut value: u64) -> Option<u64> {
    let ranges = spec.strip_prefix("config:")?;
    let mut out = 0u64;
    for r in ranges.split(',') {
        let (lo, hi) = match r.split_once('-') {
            Some((a, b)) => (a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?),
            None => {
                let b = r.trim().parse::<u32>().ok()?;
                (b, b)
            }
        };
        if lo > hi || hi > 63 {
            return None;
        }
        for bit in lo..=hi {
            out |= (value & 1) << bit;
            value >>= 1;
        }
    }
    Some(out)
}

/// A system-wide counting event on `cpu` (pid -1): what RAPL events require.
fn open_event(ty: u32, config: u64, cpu: u32) -> io::Result<File> {
    let mut attr = sys::bindings::perf_event_attr {
        type_: ty,
        size: std::mem::size_of::<sys::bindings::perf_event_attr>() as u32,
        config,
        ..Default::default()
    };
    let cpu = i32::try_from(cpu).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `attr` is a valid, initialised perf_event_attr whose `size` is its own size;
    // the kernel only reads it. No group fd; the flags are a valid combination.
    let fd = unsafe {
        sys::perf_event_open(
            &mut attr,
            -1,
            cpu,
            -1,
            sys::bindings::PERF_FLAG_FD_CLOEXEC.into(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: perf_event_open just returned this descriptor; nothing else owns it.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::energy::tests::{cpu, host_cpus};
    use pws_trace::records::SourceStatus;

    const HOST_ROOT: &str = "/sys/bus/event_source/devices/power";

    fn fixture(events: &[(&str, &str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("type"), "9\n").unwrap();
        fs::write(d.path().join("cpumask"), "0\n").unwrap();
        fs::create_dir_all(d.path().join("events")).unwrap();
        fs::create_dir_all(d.path().join("format")).unwrap();
        fs::write(d.path().join("format/event"), "config:0-7\n").unwrap();
        for (name, cfg, scale) in events {
            fs::write(d.path().join("events").join(name), cfg).unwrap();
            fs::write(d.path().join(format!("events/{name}.scale")), scale).unwrap();
            fs::write(d.path().join(format!("events/{name}.unit")), "Joules\n").unwrap();
        }
        d
    }

    #[test]
    fn event_config_from_sysfs_terms_and_format() {
        let d = fixture(&[(
            "energy-pkg",
            "event=0x02\n",
            "2.3283064365386962890625e-10\n",
        )]);
        let ev = event_config(d.path(), "energy-pkg").unwrap();
        assert_eq!(ev.config, 2);
        // The kernel's exact decimal for 2^-32 J.
        assert_eq!(ev.scale, 1.0 / 4294967296.0);
        assert_eq!(
            place("config:0-7,32-35", 0x1ff),
            Some(0x1ff & 0xff | 1 << 32)
        );
        assert_eq!(place("config1:0-7", 1), None);
        assert_eq!(place("config:0-64", 1), None);

        fs::write(d.path().join("events/energy-pkg.scale"), "garbage").unwrap();
        let e = event_config(d.path(), "energy-pkg").unwrap_err();
        assert!(e.contains("energy-pkg.scale"), "{e}");
        fs::write(d.path().join("events/energy-pkg.scale"), "0").unwrap();
        assert!(event_config(d.path(), "energy-pkg").is_err());
    }

    #[test]
    fn missing_pmu_and_pmu_without_events_are_unavailable() {
        let u = open(Path::new("/nonexistent/power"), &[]).unwrap_err();
        assert_eq!(u.status, SourceStatus::Unavailable);
        assert!(u.reason.contains("no /nonexistent/power"), "{u:?}");

        let d = fixture(&[]);
        let u = detect(d.path(), &[cpu(0, 0)]).unwrap_err();
        assert_eq!(u.status, SourceStatus::Unavailable);
        assert!(u.reason.contains("lists none of energy-pkg"), "{u:?}");

        fs::write(d.path().join("type"), "power\n").unwrap();
        fs::write(d.path().join("events/energy-pkg"), "event=0x02").unwrap();
        let u = open(d.path(), &[cpu(0, 0)]).unwrap_err();
        assert_eq!(u.status, SourceStatus::Failed);
        assert!(u.reason.contains("type"), "{u:?}");
    }

    /// The real host. On the development VM the PMU exists and lists only energy-psys, which
    /// reads 0 forever: it must be reported unavailable, naming the event, never used.
    #[test]
    fn host_power_pmu() {
        let root = Path::new(HOST_ROOT);
        match detect(root, &host_cpus()) {
            Err(u) => {
                eprintln!("{u:?}");
                assert_ne!(u.reason, "");
                if !root.exists() {
                    assert_eq!(u.status, SourceStatus::Unavailable);
                    assert!(u.reason.contains(HOST_ROOT), "{u:?}");
                } else if root.join("events/energy-psys").exists()
                    && !root.join("events/energy-pkg").exists()
                {
                    // The VM: psys only, frozen at 0 (or not openable, e.g. without privileges).
                    assert!(u.reason.contains("energy-psys"), "{u:?}");
                }
            }
            Ok((mut r, detail)) => {
                // Real RAPL hardware: whatever was kept must move.
                eprintln!("{detail}");
                let n = r.counters().len();
                let (mut a, mut b) = (vec![0; n], vec![0; n]);
                r.read(&mut a).unwrap();
                crate::energy::spin(std::time::Duration::from_millis(100));
                r.read(&mut b).unwrap();
                assert!(a.iter().zip(&b).all(|(x, y)| y > x), "{a:?} {b:?}");
            }
        }
    }

    /// On the VM the psys event opens (as root) and reads 0: the raw reader itself works.
    #[test]
    fn host_events_open_and_read_when_permitted() {
        let root = Path::new(HOST_ROOT);
        let Ok(mut r) = open(root, &host_cpus()) else {
            return;
        };
        let mut v = vec![0; r.counters().len()];
        r.read(&mut v).unwrap();
        for c in r.counters() {
            assert_eq!(c.source, EnergySource::PerfPowerPmu);
            assert_eq!(c.wrap, 0);
            assert!(c.unit_joules > 0.0 && c.unit_joules < 1e-3, "{c:?}");
        }
    }

    /// The clocked path end to end, with software `cpu-clock` counting in place of RAPL's
    /// `power` events (this VM has none): two counters grouped on one CPU, a third on another,
    /// drained by the real sampling thread into energy blocks.
    #[test]
    fn clocked_readings_reach_every_counter_through_the_sampling_thread() {
        use crate::energy::tests::desc;
        use crate::energy::EnergyReads;
        use crate::periodic::{self, Periodic};
        use pws_trace::records::EnergyBlock;
        let sw = sys::bindings::PERF_TYPE_SOFTWARE;
        let clock = u64::from(sys::bindings::PERF_COUNT_SW_CPU_CLOCK);
        let last = host_cpus()
            .iter()
            .filter(|c| c.online)
            .map(|c| c.cpu)
            .max()
            .unwrap_or(0);
        let mut counters = vec![
            desc("energy-pkg", EnergyDomain::Package),
            desc("energy-ram", EnergyDomain::Dram),
            desc("energy-pkg", EnergyDomain::Package),
        ];
        counters[2].index = 1;
        let events = [(sw, clock, 0), (sw, clock, 0), (sw, clock, last)];
        let ticks = match PerfPowerTicks::open(counters, &events, Duration::from_millis(10)) {
            Ok(t) => t,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) => {
                return pws_test_support::cannot_run(&format!("perf refused: {e}"));
            }
            Err(e) => panic!("{e}"),
        };
        assert!(
            ticks.describe().contains("every 10ms on cpu 0"),
            "{}",
            ticks.describe()
        );
        let (tx, rx) = std::sync::mpsc::channel();
        let reads: Box<dyn Periodic<EnergyBlock>> = Box::new(EnergyReads::clocked(Box::new(ticks)));
        let sampler = periodic::spawn(vec![reads], tx).unwrap();
        std::thread::sleep(Duration::from_millis(1300));
        let stats = sampler.finish().unwrap().remove(0);
        let blocks: Vec<EnergyBlock> = rx.iter().collect();
        assert_eq!(stats.errors, 0, "{stats:?}");
        // A drain at start, after a second and at stop; sent at the second and at stop.
        assert_eq!(blocks.len(), 2, "{stats:?}");
        let series = |i: usize| -> Vec<_> {
            blocks
                .iter()
                .flat_map(|b| b.series[i].samples.clone())
                .collect()
        };
        let (pkg, ram, other) = (series(0), series(1), series(2));
        eprintln!(
            "{} {} {} readings in 1.3 s; {stats:?}",
            pkg.len(),
            ram.len(),
            other.len()
        );
        assert!(pkg.len() >= 60 && pkg.len() <= 132, "{}", pkg.len());
        assert_eq!(stats.reads, pkg.len() as u64);
        // One sample reads both siblings of a group: same times.
        let times =
            |v: &[pws_trace::records::EnergySample]| v.iter().map(|s| s.ts_ns).collect::<Vec<_>>();
        assert_eq!(times(&pkg), times(&ram));
        assert!(other.len() >= 60, "{}", other.len());
        // On the timer's grid: a late tick is followed by an early one, skipped ones widen it.
        let span = pkg[pkg.len() - 1].ts_ns - pkg[0].ts_ns;
        assert!(
            span / (pkg.len() as u64 - 1) >= 9_500_000,
            "{} in {span} ns",
            pkg.len()
        );
        let readings: Vec<(u64, u64)> = pkg.iter().map(|s| (s.ts_ns, s.raw)).collect();
        crate::energy::kernel_clocked::tests::assert_counts_the_time_between_samples(&readings);
    }
}
