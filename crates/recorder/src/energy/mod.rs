//! Energy counters: which CPU source the host offers (perf `power` PMU, powercap sysfs, RAPL
//! MSRs, or a simulation from published SPECpower curves where there is none), and its reads on
//! a `crate::periodic` schedule (`sampling`); and NVIDIA GPUs through NVML
//! (`nvml`), read on a thread of their own. Raw counter values are recorded as read, never
//! converted or unwrapped: the analyzer does that, so the trace keeps the raw truth.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::bail;
use pws_trace::records::{CpuInfo, EnergyDomain, EnergySource, SourceInfo, SourceStatus};

mod kernel_clocked;
mod msr;
mod nvml;
mod perf_pmu;
mod powercap;
mod sampling;
mod simulated;
mod simulated_ticks;

pub use nvml::{GpuBlocks, GpuReader, GpuReads};
pub use sampling::EnergyReads;

/// Energy flags of pws-record, flattened into its `Args`.
#[derive(Debug, Clone, clap::Args)]
pub struct EnergyArgs {
    /// Energy sources, comma-separated: at most one for the CPUs (auto, perf, powercap, msr,
    /// simulated, none) and nvml for NVIDIA GPUs. auto picks the best CPU source the host offers
    /// (perf power PMU, then powercap, then MSR, then simulated) and adds nvml where a GPU is
    /// found; a source named is required ("perf,nvml": both, "nvml": the GPUs only).
    #[arg(long, default_value = "auto", value_parser = parse_energy, value_name = "SOURCES")]
    pub energy: EnergySpec,

    /// How often the CPU energy counters are read ("10ms", "1ms").
    #[arg(long, default_value = "10ms", value_parser = crate::cli::parse_duration, value_name = "DURATION")]
    pub energy_interval: Duration,

    /// Who reads the CPU energy counters on that clock. kernel: a perf cpu-clock sampled every
    /// --energy-interval carries each reading into a ring drained once a second, so no thread
    /// wakes per read (the perf power PMU's counters, grouped under it, and the simulated
    /// source's per-CPU ticks; powercap and MSR counters cannot be read so and stay on the
    /// thread). thread: the sampling thread wakes for every read.
    #[arg(long, default_value = "kernel", value_enum, value_name = "WHO")]
    pub energy_clock: EnergyClock,

    /// How often the GPUs are read through NVML, on their own thread. An H200's total-energy
    /// counter updates about every 100 ms (median 100.05 ms, p90 102 ms), so faster reads only
    /// repeat values; one NVML call costs ~4 ms there, so a read of a device (4 calls) costs
    /// ~16 ms of one core per 100 ms.
    #[arg(long, default_value = "100ms", value_parser = crate::cli::parse_duration, value_name = "DURATION")]
    pub gpu_interval: Duration,

    /// NVML library to load (a flag so tests can name one that is absent).
    #[arg(
        long,
        default_value = "libnvidia-ml.so.1",
        value_name = "FILE",
        hide = true
    )]
    pub nvml_lib: PathBuf,

    /// Root of the powercap sysfs tree.
    #[arg(long, default_value = "/sys/class/powercap", value_name = "DIR")]
    pub powercap_root: PathBuf,

    /// MSR device path pattern, {cpu} replaced by the CPU number.
    #[arg(long, default_value = "/dev/cpu/{cpu}/msr", value_name = "PATTERN")]
    pub msr_path: String,

    /// sysfs directory of the perf `power` PMU.
    #[arg(
        long,
        default_value = "/sys/bus/event_source/devices/power",
        value_name = "DIR"
    )]
    pub perf_power_root: PathBuf,

    /// SPECpower server whose utilisation→power curve the simulated source uses: a substring
    /// of its name (an exact name wins; several matches are an error that lists them).
    /// Default: the HPE ProLiant DL380 Gen10 Plus, 2 × Xeon Platinum 8380, of 2021-05-31.
    #[arg(long, value_name = "NAME")]
    pub simulated_server: Option<String>,

    /// Per-CPU busy time for the simulated source (a flag so tests can use a fixture).
    #[arg(long, default_value = "/proc/stat", value_name = "FILE", hide = true)]
    pub proc_stat: PathBuf,
}

/// The CPU energy source asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnergyChoice {
    Auto,
    Perf,
    Powercap,
    Msr,
    Simulated,
    None,
}

/// Who takes the CPU energy readings (`--energy-clock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EnergyClock {
    /// The kernel, at each tick of a sampled cpu-clock, where the source allows it.
    Kernel,
    /// The sampling thread, waking for each read.
    Thread,
}

/// Whether the GPUs are read through NVML.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuChoice {
    /// Where NVML finds a GPU (`auto`); its absence is recorded in the trace's source list.
    WhereFound,
    /// Required (`nvml` named): recording fails without a usable NVML.
    Required,
    Off,
}

/// `--energy`: one CPU choice and the GPUs'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnergySpec {
    pub cpu: EnergyChoice,
    pub gpu: GpuChoice,
}

impl std::fmt::Display for EnergySpec {
    /// As it would be written on the command line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.cpu, self.gpu) {
            (EnergyChoice::None, GpuChoice::Required) => f.write_str("nvml"),
            (c, GpuChoice::Required) => write!(f, "{},nvml", label(c)),
            (c, _) => f.write_str(label(c)),
        }
    }
}

const CPU_CHOICES: [EnergyChoice; 6] = [
    EnergyChoice::Auto,
    EnergyChoice::Perf,
    EnergyChoice::Powercap,
    EnergyChoice::Msr,
    EnergyChoice::Simulated,
    EnergyChoice::None,
];

/// `--energy`'s list: at most one CPU choice, nvml at most once, none alone.
pub fn parse_energy(s: &str) -> Result<EnergySpec, String> {
    const EXPECTED: &str = "expected a comma-separated list of at most one of auto, perf, powercap, msr, simulated, none (the CPUs) and nvml (NVIDIA GPUs), e.g. perf,nvml";
    let (mut cpu, mut nvml) = (None, false);
    for word in s.split(',').map(str::trim) {
        if word == "nvml" {
            if nvml {
                return Err(format!("nvml is named twice in {s:?}"));
            }
            nvml = true;
            continue;
        }
        let Some(&c) = CPU_CHOICES.iter().find(|&&c| label(c) == word) else {
            return Err(if word.is_empty() {
                format!("an empty source in {s:?}: {EXPECTED}")
            } else {
                format!("unknown energy source {word:?}: {EXPECTED}")
            });
        };
        if let Some(prev) = cpu {
            return Err(format!(
                "{} and {word}: at most one CPU source; {EXPECTED}",
                label(prev)
            ));
        }
        cpu = Some(c);
    }
    let gpu = if nvml {
        GpuChoice::Required
    } else {
        GpuChoice::Off
    };
    match (cpu, gpu) {
        (Some(EnergyChoice::None), GpuChoice::Required) => {
            Err("none records no energy at all: for the GPUs alone write nvml".into())
        }
        (Some(EnergyChoice::Auto), GpuChoice::Off) => Ok(EnergySpec {
            cpu: EnergyChoice::Auto,
            gpu: GpuChoice::WhereFound,
        }),
        (Some(cpu), gpu) => Ok(EnergySpec { cpu, gpu }),
        // nvml alone: the GPUs only.
        (None, gpu) => Ok(EnergySpec {
            cpu: EnergyChoice::None,
            gpu,
        }),
    }
}

/// One counter a reader reads: what the trace's energy series says about it.
#[derive(Debug, Clone, PartialEq)]
pub struct CounterDesc {
    pub source: EnergySource,
    pub domain: EnergyDomain,
    /// Package (socket) index.
    pub index: u32,
    pub name: String,
    /// Joules per raw unit.
    pub unit_joules: f64,
    /// The raw value wraps to 0 on reaching this; 0 = never.
    pub wrap: u64,
}

pub trait CounterReader: Send {
    fn counters(&self) -> &[CounterDesc];
    /// One raw value per counter, in counters() order.
    fn read(&mut self, out: &mut [u64]) -> std::io::Result<()>;
    /// The same counters read by the kernel every `period` (`kernel_clocked`); None where
    /// this source cannot be read so, Err where the kernel refused.
    fn clocked(&self, _period: Duration) -> Option<std::io::Result<Box<dyn ClockedReader>>> {
        None
    }
}

/// Counters whose readings the kernel takes (`kernel_clocked`): drained, not read.
pub trait ClockedReader: Send {
    fn counters(&self) -> &[CounterDesc];
    /// Hands over every reading taken since the last drain, in time order per counter, as
    /// `f(first counter, time, raw values of that counter and the ones after it)`. `last`: the
    /// recording ends, hold nothing back. Err: a record did not parse (the others are kept).
    fn drain(&mut self, last: bool, f: &mut dyn FnMut(usize, u64, &[u64])) -> std::io::Result<()>;
    /// Readings the kernel could not write (a ring full) so far.
    fn lost(&self) -> u64;
    /// How the readings are taken, for the source's detail in the trace.
    fn describe(&self) -> String;
}

impl std::fmt::Debug for dyn CounterReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CounterReader")
            .field("counters", &self.counters())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for dyn ClockedReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClockedReader")
            .field("counters", &self.counters())
            .field("how", &self.describe())
            .finish_non_exhaustive()
    }
}

/// What [`detect`] found: the reader of the chosen CPU source (none with `--energy none` or
/// when nothing works), the GPUs' reader (where NVML is used), and every source with what
/// became of it, for the trace's source list.
#[derive(Debug)]
pub struct Detected {
    pub reader: Option<Box<dyn CounterReader>>,
    /// The same counters clocked by the kernel (`--energy-clock kernel` and a source that
    /// allows it): used instead of `reader`.
    pub clocked: Option<Box<dyn ClockedReader>>,
    pub gpu: Option<Box<dyn GpuReader>>,
    pub sources: Vec<SourceInfo>,
}

/// Why a source cannot be used: its status in the trace, and a reason that names the file or
/// counter and what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unusable {
    pub status: SourceStatus,
    pub reason: String,
}

impl Unusable {
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Self {
            status: SourceStatus::Unavailable,
            reason: reason.into(),
        }
    }

    pub fn failed(reason: impl Into<String>) -> Self {
        Self {
            status: SourceStatus::Failed,
            reason: reason.into(),
        }
    }
}

/// A usable source: its reader and the detail the trace records.
pub(crate) type Found = Result<(Box<dyn CounterReader>, String), Unusable>;

/// The order `auto` tries sources in: measured before simulated, the kernel's own interfaces
/// before raw MSRs.
const ORDER: [(EnergyChoice, EnergySource); 4] = [
    (EnergyChoice::Perf, EnergySource::PerfPowerPmu),
    (EnergyChoice::Powercap, EnergySource::Powercap),
    (EnergyChoice::Msr, EnergySource::Msr),
    (EnergyChoice::Simulated, EnergySource::Simulated),
];

/// How long hardware counters are watched for movement before they are used. RAPL counters
/// update about every millisecond, so a working one moves thousands of units in this time.
pub(crate) const PROBE_WINDOW: Duration = Duration::from_millis(60);

/// Keeps the items of `v` whose place in `keep` is true (missing places: dropped). Readers
/// hold several vectors in step with their counters; each is filtered with the same mask.
pub(crate) fn retain_masked<T>(v: &mut Vec<T>, keep: &[bool]) {
    let mut k = keep.iter();
    v.retain(|_| *k.next().unwrap_or(&false));
}

/// Probes the host. `sources` lists every source with status used/unavailable/failed/disabled
/// and a detail, the CPU sources then nvml. Err only when a source named (not auto/none)
/// cannot be used; the message says why and what to change.
pub fn detect(args: &EnergyArgs, cpus: &[CpuInfo]) -> anyhow::Result<Detected> {
    // An explicit --simulated-server that names nothing is a usage error whichever source ends
    // up used: better said now than discovered in the trace of a long run.
    if let Some(q) = &args.simulated_server {
        if let Err(e) = simulated::select(q) {
            bail!("--simulated-server {q:?}: {e}");
        }
    }
    let mut reader: Option<Box<dyn CounterReader>> = None;
    let mut clocked = None;
    let mut used = None;
    let mut sources = Vec::new();
    let spec = args.energy;
    for (choice, source) in ORDER {
        let name = source.label().into_owned();
        let skip = match spec.cpu {
            EnergyChoice::None => Some(format!("not tried: --energy {spec}")),
            EnergyChoice::Auto => used.map(|u: EnergySource| format!("not tried: auto uses {u}")),
            forced if forced != choice => Some(format!("not tried: --energy {spec}")),
            _ => None,
        };
        if let Some(detail) = skip {
            sources.push(info(name, SourceStatus::Disabled, detail));
            continue;
        }
        let found = match choice {
            EnergyChoice::Perf => perf_pmu::detect(&args.perf_power_root, cpus),
            EnergyChoice::Powercap => powercap::detect(&args.powercap_root),
            EnergyChoice::Msr => msr::detect(&args.msr_path, cpus),
            _ => simulated::detect(args.simulated_server.as_deref(), &args.proc_stat, cpus),
        };
        match found {
            Ok((r, mut detail)) => {
                let (c, how) = clock(r.as_ref(), args);
                detail += &format!("; {how}");
                clocked = c;
                sources.push(info(name, SourceStatus::Used, detail));
                reader = Some(r);
                used = Some(source);
            }
            Err(u) if spec.cpu == choice => {
                bail!(
                    "--energy {}: {} (or leave --energy at auto, which falls back to the next source, simulated last)",
                    label(choice),
                    u.reason
                )
            }
            Err(u) => sources.push(info(name, u.status, u.reason)),
        }
    }
    let nvml_name = EnergySource::Nvml.label().into_owned();
    let gpu = match spec.gpu {
        GpuChoice::Off => {
            let why = format!("not tried: --energy {spec}");
            sources.push(info(nvml_name, SourceStatus::Disabled, why));
            None
        }
        choice => match nvml::detect(&args.nvml_lib) {
            Ok((r, detail)) => {
                sources.push(info(nvml_name, SourceStatus::Used, detail));
                Some(r)
            }
            Err(u) if choice == GpuChoice::Required => bail!(
                "--energy {spec}: nvml: {} (leave nvml out of --energy to record without the GPUs)",
                u.reason
            ),
            Err(u) => {
                sources.push(info(nvml_name, u.status, u.reason));
                None
            }
        },
    };
    Ok(Detected {
        reader,
        clocked,
        gpu,
        sources,
    })
}

/// The kernel-clocked reader of `r`'s counters where `--energy-clock kernel` asks for one and
/// the source and kernel allow it, and what the trace says of how the counters are read.
fn clock(r: &dyn CounterReader, args: &EnergyArgs) -> (Option<Box<dyn ClockedReader>>, String) {
    let every = format!("every {:?}", args.energy_interval);
    let thread = format!("read by the sampling thread {every}");
    if args.energy_clock == EnergyClock::Thread {
        return (None, format!("{thread} (--energy-clock thread)"));
    }
    match r.clocked(args.energy_interval) {
        Some(Ok(c)) => {
            let how = format!("read by the kernel: {}", c.describe());
            (Some(c), how)
        }
        Some(Err(e)) => (
            None,
            format!("{thread}: the kernel clock could not be used ({e})"),
        ),
        None => (
            None,
            format!("{thread}: this source cannot be read by the kernel in a perf group"),
        ),
    }
}

fn label(c: EnergyChoice) -> &'static str {
    match c {
        EnergyChoice::Auto => "auto",
        EnergyChoice::Perf => "perf",
        EnergyChoice::Powercap => "powercap",
        EnergyChoice::Msr => "msr",
        EnergyChoice::Simulated => "simulated",
        EnergyChoice::None => "none",
    }
}

fn info(name: String, status: SourceStatus, detail: String) -> SourceInfo {
    SourceInfo {
        kind: "energy".into(),
        name,
        status,
        detail,
    }
}

/// Hardware readers whose counters can be dropped after the probe.
pub(crate) trait Retain: CounterReader {
    /// Keeps the counters whose `keep` entry is true, in order.
    fn retain(&mut self, keep: &[bool]);
}

/// Reads the counters, keeps the CPU busy for `window` (so a real counter has energy to count
/// even on an idle machine), reads again, and drops the counters that did not advance: a
/// counter that never moves (a VM's psys, an unpopulated DRAM domain) must never be "used".
/// Returns what it kept and dropped, for the detail; Err when nothing advanced.
pub(crate) fn probe<R: Retain + 'static>(
    mut reader: R,
    window: Duration,
    what: &str,
) -> Result<(Box<dyn CounterReader>, String), Unusable> {
    let n = reader.counters().len();
    let (mut a, mut b) = (vec![0u64; n], vec![0u64; n]);
    reader
        .read(&mut a)
        .map_err(|e| Unusable::failed(format!("{what}: first read failed: {e}")))?;
    spin(window);
    reader
        .read(&mut b)
        .map_err(|e| Unusable::failed(format!("{what}: second read failed: {e}")))?;
    let keep: Vec<bool> = a.iter().zip(&b).map(|(x, y)| x != y).collect();
    let ms = window.as_millis();
    let stuck: Vec<String> = reader
        .counters()
        .iter()
        .zip(&keep)
        .zip(&b)
        .filter(|((_, k), _)| !**k)
        .map(|((c, _), v)| format!("{} (package {}) reads {v}", c.name, c.index))
        .collect();
    if stuck.len() == n {
        return Err(Unusable::unavailable(format!(
            "{what}: no counter advanced in {ms} ms of busy CPU: {} (a VM or firmware that exposes the counters without feeding them)",
            stuck.join(", ")
        )));
    }
    reader.retain(&keep);
    let mut detail = format!(
        "{} counter(s): {}",
        reader.counters().len(),
        reader
            .counters()
            .iter()
            .map(|c| format!("{} ({} {})", c.name, c.domain, c.index))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !stuck.is_empty() {
        detail += &format!(
            "; dropped, did not advance in {ms} ms: {}",
            stuck.join(", ")
        );
    }
    Ok((Box::new(reader), detail))
}

/// Keeps this CPU busy for `d`.
fn spin(d: Duration) {
    let end = Instant::now() + d;
    let mut x = 1u64;
    while Instant::now() < end {
        for _ in 0..1000 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

/// The CPUs to read package-scoped counters on: the first online CPU of every package, by
/// package. A package id the kernel does not report (`u32::MAX`) counts as package 0; no CPU
/// list at all means CPU 0 on package 0.
pub(crate) fn one_cpu_per_package(cpus: &[CpuInfo]) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for c in cpus.iter().filter(|c| c.online) {
        let pkg = package_of(c);
        if !out.iter().any(|&(_, p)| p == pkg) {
            out.push((c.cpu, pkg));
        }
    }
    if out.is_empty() {
        out.push((0, 0));
    }
    out.sort_by_key(|&(_, p)| p);
    out
}

pub(crate) fn package_of(c: &CpuInfo) -> u32 {
    if c.package == u32::MAX {
        0
    } else {
        c.package
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use pws_trace::records::{EnergyBlock, EnergySeries};

    pub fn cpu(cpu: u32, package: u32) -> CpuInfo {
        CpuInfo {
            cpu,
            online: true,
            package,
            die: 0,
            core: cpu,
            numa_node: package,
        }
    }

    pub fn host_cpus() -> Vec<CpuInfo> {
        crate::host::cpus(
            std::path::Path::new("/sys/devices/system/cpu"),
            std::path::Path::new("/sys/devices/system/node"),
        )
    }

    /// The flags as pws-record's Args flatten them.
    #[derive(clap::Parser)]
    struct A {
        #[command(flatten)]
        e: EnergyArgs,
    }

    fn args() -> EnergyArgs {
        use clap::Parser;
        A::parse_from(["x"]).e
    }

    /// The default flags with `--energy SPEC`, and an NVML library that is absent everywhere
    /// (so these tests say the same on a host with a GPU).
    fn args_with(spec: &str) -> EnergyArgs {
        let mut a = args();
        a.energy = parse_energy(spec).unwrap();
        a.nvml_lib = PathBuf::from("/nonexistent/libnvidia-ml.so.1");
        a
    }

    fn spec(cpu: EnergyChoice, gpu: GpuChoice) -> EnergySpec {
        EnergySpec { cpu, gpu }
    }

    #[test]
    fn flags_parse_with_their_defaults() {
        use clap::Parser;
        let a = args();
        assert_eq!(a.energy, spec(EnergyChoice::Auto, GpuChoice::WhereFound));
        assert_eq!(a.energy_interval, Duration::from_millis(10));
        assert_eq!(a.gpu_interval, Duration::from_millis(100));
        assert_eq!(a.nvml_lib, PathBuf::from("libnvidia-ml.so.1"));
        assert_eq!(a.msr_path, "/dev/cpu/{cpu}/msr");
        assert_eq!(a.proc_stat, PathBuf::from("/proc/stat"));
        let b = A::parse_from(["x", "--energy", "msr", "--energy-interval", "1ms"]).e;
        assert_eq!(b.energy, spec(EnergyChoice::Msr, GpuChoice::Off));
        assert_eq!(b.energy_interval, Duration::from_millis(1));
        assert!(A::try_parse_from(["x", "--energy", "rapl"]).is_err());
        let c = A::parse_from(["x", "--energy", "perf,nvml", "--gpu-interval", "250ms"]).e;
        assert_eq!(c.energy, spec(EnergyChoice::Perf, GpuChoice::Required));
        assert_eq!(c.gpu_interval, Duration::from_millis(250));
    }

    /// `--energy`'s list: every existing single value means what it did (the CPU source alone,
    /// auto adding the GPUs where found), nvml joins any CPU source, and mistakes say what is
    /// expected.
    #[test]
    fn energy_lists() {
        use clap::Parser;
        use EnergyChoice as C;
        use GpuChoice as G;
        let good = [
            ("auto", C::Auto, G::WhereFound),
            ("perf", C::Perf, G::Off),
            ("powercap", C::Powercap, G::Off),
            ("msr", C::Msr, G::Off),
            ("simulated", C::Simulated, G::Off),
            ("none", C::None, G::Off),
            ("nvml", C::None, G::Required),
            ("auto,nvml", C::Auto, G::Required),
            ("perf,nvml", C::Perf, G::Required),
            ("nvml,simulated", C::Simulated, G::Required),
            (" msr , nvml ", C::Msr, G::Required),
        ];
        for (text, cpu, gpu) in good {
            let got = parse_energy(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(got, spec(cpu, gpu), "{text}");
            // Written back as a command line would have it, and read again the same.
            assert_eq!(parse_energy(&got.to_string()), Ok(got), "{got}");
            let via_clap = A::try_parse_from(["x", "--energy", text]).unwrap().e.energy;
            assert_eq!(via_clap, got);
        }
        assert_eq!(spec(C::Perf, G::Required).to_string(), "perf,nvml");
        assert_eq!(spec(C::None, G::Required).to_string(), "nvml");
        let bad = [
            ("rapl", "unknown energy source \"rapl\""),
            ("perf,msr", "at most one CPU source"),
            ("auto,simulated", "at most one CPU source"),
            ("nvml,nvml", "nvml is named twice"),
            ("none,nvml", "for the GPUs alone write nvml"),
            ("", "an empty source"),
            ("perf,", "an empty source"),
            ("NVML", "unknown energy source"),
        ];
        for (text, why) in bad {
            let e = parse_energy(text).unwrap_err();
            assert!(e.contains(why), "{text:?}: {e}");
            // clap says which flag and passes the reason on.
            let Err(e) = A::try_parse_from(["x", "--energy", text]) else {
                panic!("{text:?} parsed");
            };
            let e = e.to_string();
            assert!(e.contains("--energy") && e.contains(why), "{text:?}: {e}");
        }
        assert!(parse_energy("rapl").unwrap_err().contains("perf,nvml"));
    }

    /// Where NVML cannot be loaded, auto records without it and the trace's source list says
    /// why; naming nvml makes that an error.
    #[test]
    fn nvml_missing_is_recorded_under_auto_and_an_error_when_named() {
        let d = detect(&args_with("auto"), &host_cpus()).unwrap();
        assert!(d.gpu.is_none());
        let nvml = d.sources.last().unwrap();
        assert_eq!((nvml.kind.as_str(), nvml.name.as_str()), ("energy", "nvml"));
        assert_eq!(nvml.status, SourceStatus::Unavailable, "{nvml:?}");
        assert!(
            nvml.detail
                .contains("/nonexistent/libnvidia-ml.so.1 not found"),
            "{nvml:?}"
        );
        // The CPU source is chosen as before.
        assert!(d.reader.is_some());

        for named in ["nvml", "simulated,nvml", "auto,nvml"] {
            let e = detect(&args_with(named), &host_cpus())
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("--energy {named}: nvml:")), "{e}");
            assert!(
                e.contains("/nonexistent/libnvidia-ml.so.1 not found"),
                "{e}"
            );
        }

        // nvml not asked for: disabled, and it says by what.
        let d = detect(&args_with("simulated"), &host_cpus()).unwrap();
        let nvml = d.sources.last().unwrap();
        assert_eq!(nvml.status, SourceStatus::Disabled);
        assert_eq!(nvml.detail, "not tried: --energy simulated");
    }

    /// The real library on this host: used where a GPU is found, otherwise unavailable with a
    /// reason (on the development VM and CI: libnvidia-ml.so.1 is not installed).
    #[test]
    fn nvml_on_this_host() {
        let d = detect(&args(), &host_cpus()).unwrap();
        let nvml = d.sources.last().unwrap();
        eprintln!(
            "{:<10} {:<12} {}",
            nvml.name,
            nvml.status.to_string(),
            nvml.detail
        );
        assert_eq!(nvml.name, "nvml");
        match nvml.status {
            SourceStatus::Used => {
                let g = d.gpu.as_ref().unwrap();
                assert!(!g.devices().is_empty());
                assert!(nvml.detail.contains("GPU(s)"), "{nvml:?}");
            }
            SourceStatus::Unavailable | SourceStatus::Failed => {
                assert!(d.gpu.is_none());
                assert!(nvml.detail.contains("libnvidia-ml.so.1"), "{nvml:?}");
            }
            other => panic!("nvml {other}: {nvml:?}"),
        }
    }

    #[test]
    fn one_cpu_per_package_skips_offline_and_orders_by_package() {
        let mut cpus = vec![cpu(0, 1), cpu(1, 0), cpu(2, 0), cpu(3, 1)];
        cpus[1].online = false;
        assert_eq!(one_cpu_per_package(&cpus), vec![(2, 0), (0, 1)]);
        assert_eq!(one_cpu_per_package(&[]), vec![(0, 0)]);
    }

    /// What auto finds on the machine the tests run on. The development VM has a perf `power`
    /// PMU whose only event, energy-psys, reads 0 forever, no powercap and no MSR device, so
    /// simulated must win; on real hardware a measured source must win instead.
    #[test]
    fn auto_on_this_host() {
        let d = detect(&args(), &host_cpus()).unwrap();
        for s in &d.sources {
            eprintln!("{:<10} {:<12} {}", s.name, s.status.to_string(), s.detail);
        }
        let names: Vec<_> = d.sources.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["perf-power", "powercap", "msr", "simulated", "nvml"]
        );
        let used: Vec<_> = d.sources[..4]
            .iter()
            .filter(|s| s.status == SourceStatus::Used)
            .collect();
        assert_eq!(used.len(), 1, "{:?}", d.sources);
        let mut reader = d.reader.expect("a reader");
        assert!(!reader.counters().is_empty());
        // Whatever was chosen counts: every counter moves (the VM's psys would not).
        let n = reader.counters().len();
        let (mut a, mut b) = (vec![0; n], vec![0; n]);
        reader.read(&mut a).unwrap();
        spin(Duration::from_millis(100));
        reader.read(&mut b).unwrap();
        assert!(a.iter().zip(&b).all(|(x, y)| x != y), "{a:?} → {b:?}");
        for s in &d.sources {
            assert!(!s.detail.is_empty(), "{s:?}");
        }
        let measured = reader.counters()[0].source.is_measured();
        let perf = &d.sources[0];
        let powercap_root = std::path::Path::new("/sys/class/powercap");
        if !measured {
            assert_eq!(used[0].name, "simulated");
            assert!(used[0].detail.contains("SIMULATED from SPECpower curve of"));
            assert!(used[0].detail.contains("not a measurement"));
            // Every source before it was tried and said why not.
            for s in &d.sources[..3] {
                assert!(
                    matches!(s.status, SourceStatus::Unavailable | SourceStatus::Failed),
                    "{s:?}"
                );
            }
            if !powercap_root.exists() {
                assert!(d.sources[1].detail.contains("/sys/class/powercap"));
            }
            if std::path::Path::new("/sys/bus/event_source/devices/power/events/energy-psys")
                .exists()
            {
                assert!(perf.detail.contains("energy-psys"), "{perf:?}");
            }
        } else {
            assert_eq!(d.sources[3].status, SourceStatus::Disabled);
        }
    }

    /// The host's chosen source sampled at 1 ms by the real thread, through the trace
    /// format's encoding and back: what session.rs will do.
    #[test]
    fn host_source_sampled_and_encoded() {
        use pws_trace::Payload;
        let mut a = args();
        a.energy_interval = Duration::from_millis(1);
        let d = detect(&a, &host_cpus()).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reads: Box<dyn crate::periodic::Periodic<EnergyBlock>> =
            Box::new(EnergyReads::new(d.reader.unwrap(), a.energy_interval));
        let sampler = crate::periodic::spawn(vec![reads], tx).unwrap();
        spin(Duration::from_millis(300));
        let stats = sampler.finish().unwrap().remove(0);
        let blocks: Vec<EnergyBlock> = rx.iter().collect();
        assert_eq!(stats.errors, 0, "{stats:?}");
        assert_eq!(blocks.len(), 1);
        let mut bytes = Vec::new();
        blocks[0].encode(&mut bytes);
        let back = EnergyBlock::decode(&bytes).unwrap();
        assert_eq!(back, blocks[0]);
        for s in &back.series {
            assert!(s.samples.len() >= 100, "{} samples", s.samples.len());
            assert_eq!(s.samples.len() as u64, stats.reads);
            let first = s.samples.first().unwrap();
            let last = s.samples.last().unwrap();
            let joules =
                EnergySeries::raw_delta(s.wrap, first.raw, last.raw) as f64 * s.unit_joules;
            let secs = (last.ts_ns - first.ts_ns) as f64 / 1e9;
            eprintln!(
                "{} {} {}: {joules:.3} J in {secs:.3} s = {:.1} W, {} bytes encoded",
                s.source,
                s.domain,
                s.index,
                joules / secs,
                bytes.len()
            );
            // Between a few watts and a few kilowatts per package.
            assert!(joules / secs > 1.0 && joules / secs < 5000.0);
        }
    }

    #[test]
    fn forcing_a_missing_source_is_an_error_that_says_why() {
        let mut a = args();
        a.energy = parse_energy("powercap").unwrap();
        a.powercap_root = PathBuf::from("/nonexistent/powercap");
        let e = detect(&a, &[]).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/powercap"), "{e}");
        assert!(e.contains("--energy"), "{e}");
        if !std::path::Path::new("/sys/class/powercap").exists() {
            let mut a = args();
            a.energy = parse_energy("powercap").unwrap();
            let e = detect(&a, &[]).unwrap_err().to_string();
            eprintln!("{e}");
            assert!(e.contains("/sys/class/powercap"), "{e}");
        }
    }

    #[test]
    fn forced_and_none_disable_the_others() {
        let mut a = args();
        a.energy = parse_energy("simulated").unwrap();
        let d = detect(&a, &host_cpus()).unwrap();
        let st: Vec<_> = d.sources.iter().map(|s| s.status).collect();
        assert_eq!(
            st,
            [
                SourceStatus::Disabled,
                SourceStatus::Disabled,
                SourceStatus::Disabled,
                SourceStatus::Used,
                SourceStatus::Disabled
            ]
        );
        assert!(d.sources[0].detail.contains("--energy simulated"));
        a.energy = parse_energy("none").unwrap();
        let d = detect(&a, &host_cpus()).unwrap();
        assert!(d.reader.is_none());
        assert!(d.gpu.is_none());
        assert!(d
            .sources
            .iter()
            .all(|s| s.status == SourceStatus::Disabled && s.detail.contains("--energy none")));
    }

    /// Who reads the counters is chosen after the source, and the trace says so: the kernel
    /// for the simulated source (its ticks), the thread when asked or when the source cannot
    /// be clocked (powercap and MSR files).
    #[test]
    fn the_source_detail_says_who_reads_the_counters() {
        let mut a = args_with("simulated");
        let d = detect(&a, &host_cpus()).unwrap();
        let detail = &d.sources[3].detail;
        if d.clocked.is_some() {
            assert!(
                detail
                    .contains("; read by the kernel: a cpu-clock sampled every 3.333333ms on each"),
                "{detail}"
            );
        } else {
            // No perf permission here: it falls back and says why.
            assert!(
                detail.contains("the kernel clock could not be used"),
                "{detail}"
            );
            pws_test_support::cannot_run("perf events refused: the kernel clock is not tried");
        }
        a.energy_clock = EnergyClock::Thread;
        let d = detect(&a, &host_cpus()).unwrap();
        assert!(d.clocked.is_none());
        assert!(
            d.sources[3]
                .detail
                .ends_with("; read by the sampling thread every 10ms (--energy-clock thread)"),
            "{}",
            d.sources[3].detail
        );
        let files = Scripted {
            counters: vec![desc("package-0", EnergyDomain::Package)],
            values: vec![vec![1]],
            at: 0,
        };
        let (c, how) = clock(&files, &args());
        assert!(c.is_none());
        assert_eq!(
            how,
            "read by the sampling thread every 10ms: this source cannot be read by the kernel in a perf group"
        );
    }

    #[test]
    fn a_simulated_server_that_names_nothing_is_an_error() {
        let mut a = args();
        a.simulated_server = Some("no such server anywhere".into());
        let e = detect(&a, &[]).unwrap_err().to_string();
        assert!(e.contains("--simulated-server"), "{e}");
    }

    /// A reader whose values are scripted, for the probe and the sampling thread.
    pub struct Scripted {
        pub counters: Vec<CounterDesc>,
        pub values: Vec<Vec<u64>>,
        pub at: usize,
    }

    impl CounterReader for Scripted {
        fn counters(&self) -> &[CounterDesc] {
            &self.counters
        }
        fn read(&mut self, out: &mut [u64]) -> std::io::Result<()> {
            let v = &self.values[self.at.min(self.values.len() - 1)];
            self.at += 1;
            out.copy_from_slice(v);
            Ok(())
        }
    }

    impl Retain for Scripted {
        fn retain(&mut self, keep: &[bool]) {
            let mut k = keep.iter();
            self.counters.retain(|_| *k.next().unwrap());
            for v in &mut self.values {
                let mut k = keep.iter();
                v.retain(|_| *k.next().unwrap());
            }
        }
    }

    /// The counters of a reader as (name, domain, package): what the sources' tests compare.
    pub fn described(r: &dyn CounterReader) -> Vec<(&str, EnergyDomain, u32)> {
        r.counters()
            .iter()
            .map(|c| (c.name.as_str(), c.domain, c.index))
            .collect()
    }

    pub fn desc(name: &str, domain: EnergyDomain) -> CounterDesc {
        CounterDesc {
            source: EnergySource::PerfPowerPmu,
            domain,
            index: 0,
            name: name.into(),
            unit_joules: 1e-6,
            wrap: 0,
        }
    }

    #[test]
    fn probe_keeps_only_counters_that_advance() {
        let r = Scripted {
            counters: vec![
                desc("energy-pkg", EnergyDomain::Package),
                desc("energy-psys", EnergyDomain::Psys),
            ],
            values: vec![vec![10, 0], vec![900, 0], vec![1000, 0]],
            at: 0,
        };
        let (mut r, detail) = probe(r, Duration::from_millis(1), "test").unwrap();
        assert_eq!(r.counters().len(), 1);
        assert_eq!(r.counters()[0].name, "energy-pkg");
        assert!(detail.contains("dropped"), "{detail}");
        assert!(
            detail.contains("energy-psys (package 0) reads 0"),
            "{detail}"
        );
        let mut v = [0];
        r.read(&mut v).unwrap();
        assert_eq!(v, [1000]);

        let stuck = Scripted {
            counters: vec![desc("energy-psys", EnergyDomain::Psys)],
            values: vec![vec![0]],
            at: 0,
        };
        let u = probe(stuck, Duration::from_millis(1), "perf power PMU").unwrap_err();
        assert_eq!(u.status, SourceStatus::Unavailable);
        assert!(
            u.reason.contains("energy-psys (package 0) reads 0"),
            "{u:?}"
        );
    }
}
