//! `pws-analyze synth -o truth.pws`: a trace whose energy has a known ground truth, to check
//! the models and the whole analysis against it — the proving ground for what cannot run on a
//! developer's machine (two-socket servers, REST-only activations, concurrent activations,
//! counter gaps, DVFS, VMs without counters).
//!
//! The CPUs (two by default, `--cpus`, split over `--packages`) run three functions (each in
//! its own Docker-named container cgroup; `--functions`, `--rate` and `--keep-alive` make a
//! node of many functions whose containers come and go, [`functions`], [`schedule`]), a system daemon, `--system-cgroups` busy scopes that
//! run no function, and the idle task, 1 ms at a time. Each package's power is in
//! [`power`]; the functions retire instructions at very different rates, so their power per
//! CPU-second differs (what a CPU-time share gets wrong), and each activation at its own rate
//! within ±6 % of its function's (`schedule::IPS_JITTER`: no coefficient per function is exact). The perf stream is what `pws-record`
//! writes ([`perf`]; one perf-data block per CPU and second, zstd level 1), the energy counters
//! are read every 10 ms, one per package, and the activations come as the invoker-log source
//! gives them (container links at their start, records at their end) or, with
//! `--activation-source records`, as the REST API and JSON-lines sources do (records only: the
//! analyzer must find the containers). The truth — the coefficients, the scenario and every
//! activation's true dynamic energy — is stored in the trace's metadata under `pws.truth`
//! (JSON); analysing a trace with linear power and counters adds a model named `truth`. The
//! energy source is labelled `simulated`: it is not a measurement.
//!
//! `--gpus N` adds N GPUs ([`gpu`]): the functions of even index run kernels on GPU
//! `index / 2 % N` during their runs, each function at its own power at full SM use and SM
//! duty; each GPU has a total-energy counter as NVML's (energy series `synthetic-gpu:{d}`,
//! domain gpu, labelled simulated, mJ) that moves every `--gpu-update-period` (100 ms) ±
//! `--gpu-update-jitter` (2 ms) and is read every `--gpu-interval` (100 ms, 37 ms off the
//! updates), and gpu blocks with every read's instantaneous power, the per-process utilisation
//! samples of each `--gpu-sampling-period` (167 ms) and the processes holding memory, under
//! the pids the containers' tasks carry in the perf samples. The truth adds a `gpu` object
//! (per-function constants, every GPU activation's true dynamic GPU energy, every device's
//! total). Without it the trace is that of before the option existed, byte for byte.
//!
//! The schedule ([`schedule`]) is drawn first, because the truth goes in the trace-info block,
//! which comes first; the perf data, energy readings and activation records are then generated
//! and written one second at a time, so a trace of many gigabytes is written in bounded memory
//! (`bench/analyzer_memory.sh` relies on it).

mod functions;
mod gpu;
mod perf;
mod power;
mod schedule;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use pws_trace::records::{
    ActivationRecord, ActivationSource, Activations, CgroupEvent, CgroupEvents, CgroupOp,
    ClockPair, ClockSync, ContainerEvent, ContainerEvents, ContainerOp, CpuInfo, EnergyBlock,
    EnergyDomain, EnergySample, EnergySeries, EnergySource, SourceInfo, SourceStatus, StartType,
    TraceInfo, CLOCK_MONOTONIC,
};
use pws_trace::{TraceWriter, WriterOptions};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::json;

pub use perf::Counters;
use power::{Counter, CounterOptions, Frequency, Gaps};
pub use power::{PowerShape, IDLE_W, J_PER_INSTRUCTION, W_PER_BUSY_CPU};
use schedule::{Act, Container, Schedule, Slot, DAEMON_CGROUP, IDLE_SLOT};

const MS: u64 = 1_000_000;
/// Where the synthetic clock starts (boot + 1000 s) and the wall time it corresponds to.
const T0: u64 = 1_000_000_000_000;
const T0_REALTIME: u64 = 1_767_225_600_000_000_000; // 2026-01-01T00:00:00Z
/// Data are generated and written this many milliseconds at a time, as pws-record copies its
/// rings about once a second: one perf-data block per CPU, one energy block.
const CHUNK_MS: u64 = 1000;
/// perf's default `kernel.perf_event_max_sample_rate`; it also keeps a CPU's second of perf
/// data (128 bytes a sample) far below the format's 64 MiB block limit.
const MAX_FREQ: u32 = 100_000;
/// Enough for any machine the analyzer will meet, and a bound on per-chunk buffers.
const MAX_CPUS: u32 = 4096;
/// `--rate` at most: a million activations a second.
const MAX_RATE: f64 = 1e6;
/// The zstd level pws-record uses by default.
const COMPRESSION_LEVEL: i32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ActivationSourceArg {
    /// Container links from the invoker log at each start, records at each end.
    InvokerLog,
    /// Activation records only, with no container named (REST API, JSON lines).
    Records,
}

#[derive(Debug, clap::Args)]
pub struct SynthArgs {
    /// Trace to write.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Length of the synthetic recording, in seconds.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Seed of the arrivals, run times, frequencies and noise.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// CPUs of the synthetic machine. Functions and the daemon run on the first CPU free for
    /// their whole run; every CPU is sampled, busy or idle, as cpu-clock is.
    #[arg(long, default_value_t = 2)]
    pub cpus: u32,
    /// cpu-clock samples per second on every CPU: a multiple of 1000 whose period is a whole
    /// number of nanoseconds dividing 1 ms (1000, 2000, 4000, 5000, 10000, … up to 100000).
    #[arg(long, default_value_t = 1000)]
    pub freq: u32,
    /// Packages (sockets) the CPUs are split over, in order; one energy counter each.
    #[arg(long, default_value_t = 1)]
    pub packages: u32,
    /// How activations reach the trace.
    #[arg(long, value_enum, default_value_t = ActivationSourceArg::InvokerLog)]
    pub activation_source: ActivationSourceArg,
    /// Activations of one function that may run at once in its container (threads of one
    /// process, each on its own CPU).
    #[arg(long, default_value_t = 1)]
    pub concurrency: u32,
    /// Spans of 300 ms without energy readings, and (when > 0) one reset of every counter.
    #[arg(long, default_value_t = 0)]
    pub energy_gaps: u32,
    /// Relative noise of each energy reading's increment (0.02 = 2 %).
    #[arg(long, default_value_t = 0.0)]
    pub energy_noise: f64,
    /// The counters only move at this period while read every --energy-read-period (RAPL
    /// ~1ms, NVML ~100ms).
    #[arg(long, default_value = "1ms", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub energy_update_period: std::time::Duration,
    /// Each counter update instant moves by up to ± this (whole ms, below the update period):
    /// a counter that ticks without a fixed beat, as the recorder's simulated source does.
    #[arg(long, default_value = "0ms", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub energy_update_jitter: std::time::Duration,
    /// The counters are read this often (whole ms, 1 ms to 1 s), as pws-record's
    /// --energy-interval (1ms to see RAPL's own updates).
    #[arg(long, default_value = "10ms", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub energy_read_period: std::time::Duration,
    /// Hardware counters in the perf group: `none` records CPU time only.
    #[arg(long, value_enum, default_value_t = Counters::Default)]
    pub counters: Counters,
    /// How power depends on what runs: `linear` (exact in CPU time and instructions) or `dvfs`.
    #[arg(long, value_enum, default_value_t = PowerShape::Linear)]
    pub power: PowerShape,
    /// Busy cgroups created and removed during the run that are not function containers.
    #[arg(long, default_value_t = 0)]
    pub system_cgroups: u32,
    /// Distinct functions, cycling through three kinds of pace and run time, each moved by its
    /// own factor (the default three are the reference trace's).
    #[arg(long, default_value_t = 3)]
    pub functions: u32,
    /// Activations per second over all functions (Poisson arrivals), split by a Zipf law of
    /// exponent 1 over the functions, as skewed as the Azure Functions trace; without it the
    /// default three run at 12, 8 and 10 a second, more functions share 30 a second.
    #[arg(long, value_name = "PER_SECOND")]
    pub rate: Option<f64>,
    /// Containers come and go as OpenWhisk's pool makes them: a new one (cold start) only when
    /// no container of the function is idle, one activation at a time, paused (cgroup frozen)
    /// between runs, removed this long after its last run. Without it each function has one
    /// container for the whole trace.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub keep_alive: Option<std::time::Duration>,
    /// GPUs of the synthetic machine (0: none). Functions of even index use GPU `index / 2 % N`
    /// (each its own power at full SM use and SM duty), odd ones the CPUs only; each GPU has an
    /// NVML-like energy counter (labelled simulated) and gpu blocks as pws-record writes them.
    #[arg(long, default_value_t = 0)]
    pub gpus: u32,
    /// The GPUs are read this often (whole ms, 1 ms to 1 s), as pws-record's --gpu-interval;
    /// the reads start 37 ms after the counter's first update, so they are not aligned with it.
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub gpu_interval: std::time::Duration,
    /// The GPUs' energy counters move only at this period (whole ms; an H200's NVML counter:
    /// ~100 ms), whatever the read rate.
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub gpu_update_period: std::time::Duration,
    /// Each GPU counter update moves by up to ± this from its beat (whole ms, below half the
    /// update period).
    #[arg(long, default_value = "2ms", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub gpu_update_jitter: std::time::Duration,
    /// The driver's per-process utilisation sampling period (whole ms): one sample per
    /// process that ran a kernel, at the end of each period.
    #[arg(long, default_value = "167ms", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub gpu_sampling_period: std::time::Duration,
}

impl SynthArgs {
    /// The defaults, writing to `output`.
    #[cfg(test)]
    pub fn new(output: PathBuf) -> Self {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct P {
            #[command(flatten)]
            a: SynthArgs,
        }
        let mut a = P::parse_from(["synth", "-o", "unused"]).a;
        a.output = output;
        a
    }
}

/// Checks the options before anything is written.
fn check(args: &SynthArgs) -> Result<()> {
    if args.cpus == 0 || args.cpus > MAX_CPUS {
        bail!("--cpus {}: give 1 to {MAX_CPUS} CPUs", args.cpus);
    }
    let per_ms = args.freq / 1000;
    if args.freq % 1000 != 0 || per_ms == 0 || 1_000_000 % per_ms != 0 || args.freq > MAX_FREQ {
        bail!(
            "--freq {}: the synthetic schedule moves in whole milliseconds, so the frequency must be a multiple of 1000 Hz whose period divides 1 ms into whole nanoseconds (1000, 2000, 4000, 5000, 8000, 10000, … {MAX_FREQ})",
            args.freq
        );
    }
    if args.packages == 0 || args.packages > args.cpus {
        bail!(
            "--packages {}: give 1 to --cpus ({}) packages",
            args.packages,
            args.cpus
        );
    }
    if args.concurrency == 0 || args.concurrency > 64 {
        bail!("--concurrency {}: give 1 to 64", args.concurrency);
    }
    if args.functions == 0 || args.functions > functions::MAX_FUNCTIONS {
        bail!(
            "--functions {}: give 1 to {}",
            args.functions,
            functions::MAX_FUNCTIONS
        );
    }
    if let Some(r) = args.rate {
        // Above this a CPU-millisecond schedule has no room left on any machine synth makes.
        if !(r.is_finite() && r > 0.0 && r <= MAX_RATE) {
            bail!("--rate {r}: activations per second, above 0 and at most {MAX_RATE}");
        }
    }
    if let Some(ka) = args.keep_alive {
        if ka.as_millis() == 0 {
            bail!("--keep-alive {ka:?}: at least 1 ms (the schedule moves in milliseconds)");
        }
        if args.concurrency != 1 {
            bail!(
                "--keep-alive runs one activation at a time per container, as OpenWhisk does by default: drop --concurrency {}",
                args.concurrency
            );
        }
    }
    if !(0.0..1.0).contains(&args.energy_noise) {
        bail!(
            "--energy-noise {}: a relative noise in [0, 1)",
            args.energy_noise
        );
    }
    let upd = args.energy_update_period.as_millis();
    if upd > 10_000 {
        bail!("--energy-update-period {upd} ms: at most 10 s");
    }
    let jit = args.energy_update_jitter.as_millis();
    if jit > 0 && jit >= upd {
        bail!("--energy-update-jitter {jit} ms: below the update period ({upd} ms)");
    }
    let read = args.energy_read_period.as_millis();
    if !(1..=1000).contains(&read) {
        bail!("--energy-read-period {read} ms: give 1 ms to 1 s");
    }
    gpu_options(args)?;
    // Each 300 ms gap needs a stretch of ordinary readings around it.
    if args.energy_gaps > 0 && u64::from(args.energy_gaps) * 1000 > args.seconds.max(2) * 1000 / 2 {
        bail!(
            "--energy-gaps {}: too many 300 ms gaps for a {} s run",
            args.energy_gaps,
            args.seconds
        );
    }
    Ok(())
}

/// A GPU duration flag in whole milliseconds, within `[lo, hi]`.
fn whole_ms(flag: &str, d: std::time::Duration, lo: u64, hi: u64) -> Result<u64> {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if d.subsec_nanos() % 1_000_000 != 0 || !(lo..=hi).contains(&ms) {
        bail!("{flag} {d:?}: give whole milliseconds, {lo} ms to {hi} ms");
    }
    Ok(ms)
}

/// The GPU options in ms, checked (also without `--gpus`, so a bad flag never passes).
fn gpu_options(args: &SynthArgs) -> Result<gpu::GpuOptions> {
    if args.gpus > gpu::MAX_GPUS {
        bail!("--gpus {}: give 0 to {}", args.gpus, gpu::MAX_GPUS);
    }
    let update_ms = whole_ms("--gpu-update-period", args.gpu_update_period, 1, 10_000)?;
    let jitter_ms = whole_ms("--gpu-update-jitter", args.gpu_update_jitter, 0, 10_000)?;
    if 2 * jitter_ms >= update_ms {
        bail!(
            "--gpu-update-jitter {jitter_ms} ms: below half the update period ({update_ms} ms), so the updates stay in order"
        );
    }
    Ok(gpu::GpuOptions {
        devices: args.gpus as usize,
        update_ms,
        jitter_ms,
        read_ms: whole_ms("--gpu-interval", args.gpu_interval, 1, 1000)?,
        sampling_ms: whole_ms("--gpu-sampling-period", args.gpu_sampling_period, 1, 10_000)?,
    })
}

pub fn run(args: &SynthArgs) -> Result<std::process::ExitCode> {
    check(args)?;
    let cpus = args.cpus as usize;
    let packages = args.packages as usize;
    let package_of = |cpu: usize| cpu * packages / cpus;
    let ms_total = args.seconds.max(2) * 1000;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let sched = Schedule::draw(
        ms_total,
        cpus,
        args.concurrency as usize,
        args.system_cgroups as usize,
        functions::catalog(args.functions as usize, args.rate),
        args.keep_alive
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 2)),
        &mut rng,
    );
    let freq = Frequency::draw(args.power, packages, ms_total, &mut rng);
    let mut noise_rng = StdRng::seed_from_u64(args.seed ^ 0x5eed);
    let copts = CounterOptions {
        gaps: args.energy_gaps as usize,
        noise: args.energy_noise,
        update_ms: (args.energy_update_period.as_millis() as u64).max(1),
        jitter_ms: args.energy_update_jitter.as_millis() as u64,
    };
    let read_ms = args.energy_read_period.as_millis() as u64;
    // Its own stream, so jitter leaves the noise and schedule of a seed as they were.
    let mut jitter_rng = StdRng::seed_from_u64(args.seed ^ 0x717e);
    let gaps = Gaps::new(copts.gaps, ms_total);
    let gpu_plan = (args.gpus > 0)
        .then(|| gpu::Plan::new(&sched, gpu_options(args).expect("checked"), args.seed));
    let gpu_truth = gpu_plan.as_ref().map(gpu::Plan::truth);
    let truth = truth_json(args, &sched, &freq, &gaps, &package_of, gpu_truth);
    let mut gpus = gpu_plan.as_ref().map(|p| gpu::Writer::new(p, args.seed));

    let opts = WriterOptions {
        compression_level: Some(COMPRESSION_LEVEL),
        ..WriterOptions::default()
    };
    let mut w = TraceWriter::create(&args.output, opts)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    w.write(&trace_info(truth, args, &package_of))
        .context("the trace-info block (with the truth of every activation) cannot be written")?;
    let pair = |ms: u64| ClockPair {
        monotonic_ns: T0 + ms * MS,
        realtime_ns: T0_REALTIME + ms * MS,
        uncertainty_ns: 0,
    };
    w.write(&ClockSync {
        pairs: vec![pair(0)],
    })?;

    let lifecycle = sched.container_events();
    let mut next_event = 0usize;
    let records_only = args.activation_source == ActivationSourceArg::Records;
    let mut encoders: Vec<perf::Encoder> = (0..args.cpus)
        .map(|c| perf::Encoder::new(c, args.freq, args.counters))
        .collect();
    let mut counters: Vec<Counter> = (0..packages).map(|_| Counter::new()).collect();
    let mut slots: Vec<Vec<Slot>> = vec![Vec::new(); cpus];
    let mut ring: Vec<u8> = Vec::new();
    // Activations whose container link is written (at their start) and whose record is not
    // yet (at their end, as the invoker log and activation sources give them).
    let (mut next_start, mut pending) = (0usize, Vec::new());
    let mut reset_done = false;
    for c0 in (0..ms_total).step_by(CHUNK_MS as usize) {
        let c1 = (c0 + CHUNK_MS).min(ms_total);
        let cg = cgroup_events(&sched, &lifecycle, &mut next_event, c0, c1);
        if !cg.events.is_empty() {
            w.write(&cg)?;
        }
        for (cpu, s) in slots.iter_mut().enumerate() {
            s.resize((c1 - c0) as usize, IDLE_SLOT);
            sched.fill(cpu, c0, s);
        }
        // One buffer for every CPU's block: written before the next CPU's is made.
        for (cpu, (enc, s)) in encoders.iter_mut().zip(&slots).enumerate() {
            ring.clear();
            for (k, &slot) in s.iter().enumerate() {
                let ms = c0 + k as u64;
                enc.run_ms(&mut ring, T0 + ms * MS, slot, freq.at(package_of(cpu), ms));
            }
            // Group samples and switch records only: the side band is in cgroup-events blocks.
            w.write_perf_data_checked(enc.cpu, 0, enc.ring_offset, &[&ring], false)?;
            enc.ring_offset += ring.len() as u64;
        }
        // Energy readings every --energy-read-period, one counter per package.
        let mut samples: Vec<Vec<EnergySample>> = vec![Vec::new(); packages];
        if c0 == 0 {
            for s in &mut samples {
                s.push(EnergySample { ts_ns: T0, raw: 0 });
            }
        }
        for ms in c0..c1 {
            let k = (ms - c0) as usize;
            for (p, counter) in counters.iter_mut().enumerate() {
                let f = freq.at(p, ms);
                let dynamic: f64 = (0..cpus)
                    .filter(|&c| package_of(c) == p)
                    .map(|c| power::cpu_dynamic_w(slots[c][k], f))
                    .sum();
                counter.run_ms(ms, IDLE_W + dynamic, &copts, &mut jitter_rng);
            }
            let t = ms + 1;
            if t % read_ms == 0 && !gaps.skips(t) {
                // The first reading at or after the reset instant (a read period that does
                // not divide it would otherwise skip it).
                let reset = !reset_done && gaps.reset_ms().is_some_and(|r| t >= r);
                reset_done |= reset;
                for (p, counter) in counters.iter_mut().enumerate() {
                    samples[p].push(EnergySample {
                        ts_ns: T0 + t * MS,
                        raw: counter.read(&copts, reset, &mut noise_rng),
                    });
                }
            }
        }
        let mut series: Vec<EnergySeries> = samples
            .into_iter()
            .enumerate()
            .map(|(p, samples)| EnergySeries {
                source: EnergySource::Simulated,
                domain: EnergyDomain::Package,
                index: p as u32,
                name: format!("synthetic-truth:{p}"),
                unit_joules: 1e-6,
                wrap: 0,
                samples,
            })
            .collect();
        // The GPUs' counters in the same block, their reads in a gpu block after it.
        let gpu_block = gpus.as_mut().map(|g| {
            let (s, block) = g.chunk(c0, c1);
            series.extend(s);
            block
        });
        w.write(&EnergyBlock { series })?;
        if let Some(b) = gpu_block {
            w.write(&b)?;
        }
        let mut events = Vec::new();
        while next_start < sched.acts.len() && sched.acts[next_start].start < c1 {
            let i = next_start;
            if !records_only {
                events.push(container_event(&sched, i, &sched.acts[i]));
            }
            pending.push(i);
            next_start += 1;
        }
        if !events.is_empty() {
            w.write(&ContainerEvents { events })?;
        }
        let (done, later): (Vec<usize>, Vec<usize>) =
            pending.iter().partition(|&&i| sched.acts[i].end <= c1);
        pending = later;
        if !done.is_empty() {
            let records = done
                .iter()
                .map(|&i| activation_record(&sched, i, &sched.acts[i], records_only))
                .collect();
            w.write(&Activations { records })?;
        }
        w.write(&ClockSync {
            pairs: vec![pair(c1)],
        })?;
    }
    w.finish(T0 + ms_total * MS)
        .with_context(|| format!("cannot finish {}", args.output.display()))?;
    let samples: u64 = encoders.iter().map(|e| e.samples).sum();
    let bytes = std::fs::metadata(&args.output).map_or(0, |m| m.len());
    eprintln!(
        "pws-analyze: wrote {} ({} s, {} CPUs in {} packages at {} Hz: {samples} perf samples, {bytes} bytes; {} activations of {} functions in {} containers{}; energy is synthetic ground truth, not a measurement)",
        args.output.display(),
        ms_total / 1000,
        args.cpus,
        args.packages,
        args.freq,
        sched.acts.len(),
        sched.functions.len(),
        sched.containers.len(),
        if args.gpus > 0 {
            format!(", {} GPUs", args.gpus)
        } else {
            String::new()
        }
    );
    Ok(std::process::ExitCode::SUCCESS)
}

fn activation_id(i: usize) -> String {
    format!("{:032x}", 0x5157_0000_0000u64 + i as u64)
}

/// A Docker-style 64-hex container id.
fn container_id(c: &Container) -> String {
    format!("{:064x}", c.serial)
}

fn container_cgroup(c: &Container) -> String {
    format!("/docker/{}", container_id(c))
}

/// Every activation's true dynamic energy (its CPU's busy power and its instructions over its
/// run, at the package's frequency), and the scenario that produced it.
fn truth_json(
    args: &SynthArgs,
    sched: &Schedule,
    freq: &Frequency,
    gaps: &Gaps,
    package_of: &dyn Fn(usize) -> usize,
    gpu: Option<serde_json::Value>,
) -> String {
    let per: BTreeMap<String, f64> = sched
        .acts
        .iter()
        .enumerate()
        .map(|(i, a)| (activation_id(i), act_dynamic_j(a, freq, package_of)))
        .collect();
    let ns = |ms: u64| T0 + ms * MS;
    // Each container's life as the analysis should find it.
    let containers: BTreeMap<String, serde_json::Value> = sched
        .containers
        .iter()
        .map(|c| {
            let runs = c.runs.len();
            let v = json!({
                "function": sched.functions[c.function].name,
                "created_ns": ns(c.created),
                "removed_ns": c.removed.map(ns),
                "paused_ns": sched.paused_ms(c) * MS,
                "activations": runs,
            });
            (container_id(c), v)
        })
        .collect();
    let functions: Vec<serde_json::Value> = sched
        .functions
        .iter()
        .map(|f| json!({"name": f.name, "rate": f.rate, "ips": f.ips, "run_ms": [f.run_ms.0, f.run_ms.1]}))
        .collect();
    let exact = args.power == PowerShape::Linear && args.counters == Counters::Default;
    let mut truth = json!({
        "idle_w": IDLE_W,
        "w_per_busy_cpu": W_PER_BUSY_CPU,
        "j_per_instruction": J_PER_INSTRUCTION,
        "ips_jitter": schedule::IPS_JITTER,
        // Whether power is an exact function of what the trace records (then `truth` is a
        // model the analyzer can run).
        "exact_in_features": exact,
        "scenario": {
            "seconds": args.seconds.max(2),
            "cpus": args.cpus,
            "packages": args.packages,
            "activation_source": format!("{:?}", args.activation_source),
            "concurrency": args.concurrency,
            "energy_gaps": gaps.spans().iter().map(|(a, b)| [T0 + a * MS, T0 + b * MS]).collect::<Vec<_>>(),
            "energy_reset_ns": gaps.reset_ms().map(|r| T0 + r * MS),
            "energy_noise": args.energy_noise,
            "energy_update_period_ms": args.energy_update_period.as_millis() as u64,
            "energy_update_jitter_ms": args.energy_update_jitter.as_millis() as u64,
            "energy_read_period_ms": args.energy_read_period.as_millis() as u64,
            "counters": format!("{:?}", args.counters).to_lowercase(),
            "power": format!("{:?}", args.power).to_lowercase(),
            "system_cgroups": args.system_cgroups,
            "functions": functions,
            "rate": args.rate,
            "zipf_exponent": functions::ZIPF_EXPONENT,
            "keep_alive_ms": sched.keep_alive,
        },
        "containers": containers,
        "activation_dynamic_j": per,
    });
    // Only with --gpus: without it the truth is that of before the option existed.
    if let Some(g) = gpu {
        truth["gpu"] = g;
    }
    truth.to_string()
}

fn act_dynamic_j(a: &Act, freq: &Frequency, package_of: &dyn Fn(usize) -> usize) -> f64 {
    let p = package_of(a.cpu);
    // Any busy slot: power depends on the pace only.
    (a.start..a.end)
        .map(|ms| power::cpu_dynamic_w((1, 1, a.ips), freq.at(p, ms)) * 1e-3)
        .sum()
}

fn trace_info(truth: String, args: &SynthArgs, package_of: &dyn Fn(usize) -> usize) -> TraceInfo {
    let cpus = args.cpus;
    TraceInfo {
        hostname: "synth".into(),
        kernel_release: "synthetic".into(),
        arch: std::env::consts::ARCH.into(),
        cpu_model: format!("synthetic {cpus}-CPU machine, {} packages", args.packages),
        recorder: "pws-analyze synth".into(),
        recorder_version: env!("CARGO_PKG_VERSION").into(),
        command_line: std::env::args().collect(),
        clock: CLOCK_MONOTONIC,
        start_monotonic_ns: T0,
        start_realtime_ns: T0_REALTIME,
        page_size: 4096,
        cpus: (0..cpus)
            .map(|c| CpuInfo {
                cpu: c,
                online: true,
                package: package_of(c as usize) as u32,
                die: 0,
                core: c,
                numa_node: package_of(c as usize) as u32,
            })
            .collect(),
        perf_events: perf::events(cpus, args.counters),
        sources: std::iter::once(SourceInfo {
            kind: "energy".into(),
            name: "synthetic-truth".into(),
            status: SourceStatus::Used,
            detail: "synthetic ground truth from pws-analyze synth: not a measurement".into(),
        })
        .chain((args.gpus > 0).then(|| SourceInfo {
            kind: "energy".into(),
            name: "synthetic-gpu".into(),
            status: SourceStatus::Used,
            detail: format!(
                "{} synthetic GPUs from pws-analyze synth, NVML-like (a total-energy counter updating every {:?} ± {:?}, read every {:?}; per-process utilisation sampled every {:?}): synthetic ground truth, not a measurement",
                args.gpus,
                args.gpu_update_period,
                args.gpu_update_jitter,
                args.gpu_interval,
                args.gpu_sampling_period
            ),
        }))
        .collect(),
        metadata: vec![("run".into(), "synth".into()), ("pws.truth".into(), truth)],
        ..TraceInfo::default()
    }
}

/// The cgroup events of `[c0, c1)`: at the start the root and the daemon; the function
/// containers' from `lifecycle` (made, frozen, thawed, removed: [`Schedule::container_events`]),
/// from `*next` on; the system scopes when made and removed.
fn cgroup_events(
    sched: &Schedule,
    lifecycle: &[(u64, CgroupOp, usize)],
    next: &mut usize,
    c0: u64,
    c1: u64,
) -> CgroupEvents {
    let ev = |ms: u64, op, id, path: String| CgroupEvent {
        ts_ns: T0 + ms * MS,
        op,
        cgroup_id: id,
        hierarchy: 0,
        path,
        pid: 0,
        detail: "synth".into(),
    };
    let mut events = Vec::new();
    if c0 == 0 {
        events.push(ev(0, CgroupOp::Exists, 1, "/".into()));
        events.push(ev(
            0,
            CgroupOp::Exists,
            DAEMON_CGROUP,
            "/system.slice/daemon.service".into(),
        ));
    }
    while let Some(&(ms, op, ci)) = lifecycle.get(*next).filter(|e| e.0 < c1) {
        let c = &sched.containers[ci];
        events.push(ev(ms, op, c.cgroup_id, container_cgroup(c)));
        *next += 1;
    }
    for s in &sched.scopes {
        let path = format!("/system.slice/synth-job-{}.scope", s.cgroup_id);
        if (c0..c1).contains(&s.created) {
            events.push(ev(s.created, CgroupOp::Mkdir, s.cgroup_id, path.clone()));
        }
        if (c0..c1).contains(&s.removed) {
            events.push(ev(s.removed, CgroupOp::Rmdir, s.cgroup_id, path));
        }
    }
    events.sort_by_key(|e| e.ts_ns);
    CgroupEvents { events }
}

fn start_type(cold: bool) -> StartType {
    if cold {
        StartType::Cold
    } else {
        StartType::Warm
    }
}

fn activation_record(sched: &Schedule, i: usize, a: &Act, records_only: bool) -> ActivationRecord {
    let f = &sched.functions[a.function];
    let c = &sched.containers[a.container];
    let cold = a.cold;
    ActivationRecord {
        activation_id: activation_id(i),
        namespace: "synth".into(),
        action: f.name.clone(),
        version: "0.0.1".into(),
        source: if records_only {
            ActivationSource::RestApi
        } else {
            ActivationSource::JsonLines
        },
        kind: "synthetic".into(),
        start_type: start_type(cold),
        start_epoch_ms: (T0_REALTIME + a.start * MS) / MS,
        end_epoch_ms: (T0_REALTIME + a.end * MS) / MS,
        start_ns: T0 + a.start * MS,
        end_ns: T0 + a.end * MS,
        wait_ms: Some(0),
        init_ms: cold.then_some(0),
        duration_ms: Some(a.end - a.start),
        status_code: Some(0),
        memory_limit_mb: Some(256),
        timeout_ms: Some(60_000),
        // The REST API names no container.
        container_id: if records_only {
            String::new()
        } else {
            container_id(c)
        },
        path: format!("synth/{}", f.name),
        caused_by: String::new(),
        raw: String::new(),
    }
}

fn container_event(sched: &Schedule, i: usize, a: &Act) -> ContainerEvent {
    let f = &sched.functions[a.function];
    let c = &sched.containers[a.container];
    let cold = a.cold;
    ContainerEvent {
        ts_ns: T0 + a.start * MS,
        op: ContainerOp::Assign,
        source: ActivationSource::InvokerLog,
        container_id: container_id(c),
        activation_id: activation_id(i),
        action: f.name.clone(),
        namespace: "synth".into(),
        start_type: start_type(cold),
        cgroup_path: container_cgroup(c),
        detail: "synth".into(),
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use pws_trace::perf::{PerfAttrs, PerfRecord};
    use pws_trace::{Record, Trace};

    fn args(output: PathBuf, seconds: u64, cpus: u32, freq: u32) -> SynthArgs {
        let mut a = SynthArgs::new(output);
        (a.seconds, a.seed, a.cpus, a.freq) = (seconds, 7, cpus, freq);
        a
    }

    #[test]
    fn frequencies_and_cpu_counts_the_schedule_cannot_follow_are_refused() {
        let p = PathBuf::from("unused.pws");
        for (cpus, freq) in [
            (0, 1000),
            (MAX_CPUS + 1, 1000),
            (2, 0),
            (2, 1500),
            (2, 3000),
        ] {
            assert!(
                check(&args(p.clone(), 3, cpus, freq)).is_err(),
                "{cpus} {freq}"
            );
        }
        for freq in [1000, 2000, 4000, 5000, 8000, 10_000, 20_000, 100_000] {
            check(&args(p.clone(), 3, 2, freq)).unwrap();
        }
        assert!(check(&args(p, 3, 2, 200_000)).is_err());
    }

    #[test]
    fn node_options_that_make_no_sense_are_refused() {
        let p = PathBuf::from("unused.pws");
        let bad: [&dyn Fn(&mut SynthArgs); 7] = [
            &|a| a.functions = 0,
            &|a| a.functions = functions::MAX_FUNCTIONS + 1,
            &|a| a.rate = Some(0.0),
            &|a| a.rate = Some(-1.0),
            &|a| a.rate = Some(f64::INFINITY),
            &|a| a.keep_alive = Some(std::time::Duration::from_micros(10)),
            &|a| {
                a.keep_alive = Some(std::time::Duration::from_secs(5));
                a.concurrency = 2;
            },
        ];
        for (k, set) in bad.iter().enumerate() {
            let mut a = args(p.clone(), 3, 2, 1000);
            set(&mut a);
            assert!(check(&a).is_err(), "case {k}");
        }
        let mut a = args(p, 3, 2, 1000);
        (a.functions, a.rate) = (50, Some(50.0));
        a.keep_alive = Some(std::time::Duration::from_secs(600));
        check(&a).unwrap();
    }

    #[test]
    fn gpu_options_that_make_no_sense_are_refused() {
        use std::time::Duration;
        let p = PathBuf::from("unused.pws");
        let ms = Duration::from_millis;
        let bad: [&dyn Fn(&mut SynthArgs); 9] = [
            &|a| a.gpus = gpu::MAX_GPUS + 1,
            &|a| a.gpu_update_period = ms(0),
            &|a| a.gpu_update_period = ms(10_001),
            &|a| a.gpu_update_jitter = ms(50),
            &|a| a.gpu_update_jitter = Duration::from_micros(1500),
            &|a| a.gpu_interval = ms(0),
            &|a| a.gpu_interval = ms(1001),
            &|a| a.gpu_interval = Duration::from_micros(100_500),
            &|a| a.gpu_sampling_period = ms(0),
        ];
        for (k, set) in bad.iter().enumerate() {
            let mut a = args(p.clone(), 3, 2, 1000);
            a.gpus = 2;
            set(&mut a);
            assert!(check(&a).is_err(), "case {k}");
        }
        let mut a = args(p, 3, 2, 1000);
        a.gpus = gpu::MAX_GPUS;
        (a.gpu_update_period, a.gpu_update_jitter) = (ms(100), ms(49));
        (a.gpu_interval, a.gpu_sampling_period) = (ms(1), ms(1));
        check(&a).unwrap();
        let o = gpu_options(&a).unwrap();
        assert_eq!(
            (
                o.devices,
                o.update_ms,
                o.jitter_ms,
                o.read_ms,
                o.sampling_ms
            ),
            (64, 100, 49, 1, 1)
        );
    }

    /// Three CPUs at 5 kHz for 3 s: one block per CPU and second, continuing each other; on
    /// every CPU exactly `freq` timer samples a second, in time order, ending on the last
    /// period; energy every 10 ms; each activation's container link and record once.
    #[test]
    fn more_cpus_and_a_higher_frequency_give_pws_record_s_stream() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("s.pws");
        let (seconds, cpus, freq) = (3u64, 3u32, 5000u32);
        run(&args(path.clone(), seconds, cpus, freq)).unwrap();
        let t = Trace::open(&path).unwrap();
        let mut info = None;
        let mut per_cpu: BTreeMap<u32, Vec<(u64, Vec<u8>)>> = BTreeMap::new();
        let (mut energy, mut records, mut links) = (Vec::new(), Vec::new(), Vec::new());
        for b in t.blocks() {
            match b.unwrap().decode().unwrap() {
                Record::TraceInfo(i) => info = Some(*i),
                Record::PerfData(p) => per_cpu
                    .entry(p.cpu)
                    .or_default()
                    .push((p.ring_offset, p.data.into_owned())),
                Record::Energy(e) => energy.extend(e.series[0].samples.iter().map(|s| s.ts_ns)),
                Record::Activations(a) => records.extend(a.records),
                Record::ContainerEvents(c) => links.extend(c.events),
                _ => {}
            }
        }
        let info = info.unwrap();
        assert_eq!(info.cpus.len(), cpus as usize);
        let attrs = PerfAttrs::new(&info.perf_events).unwrap();
        let period = 1_000_000_000 / u64::from(freq);
        assert_eq!(per_cpu.len(), cpus as usize);
        for (cpu, blocks) in &per_cpu {
            assert_eq!(
                blocks.len(),
                seconds as usize,
                "CPU {cpu}: a block a second"
            );
            let mut ring = 0;
            let (mut timer, mut last) = (0u64, 0u64);
            for (offset, data) in blocks {
                assert_eq!(*offset, ring, "CPU {cpu}: blocks continue each other");
                ring += data.len() as u64;
                for r in attrs.records(data) {
                    let PerfRecord::Sample(s) = r.unwrap() else {
                        panic!("only samples")
                    };
                    assert!(s.id.time >= last, "CPU {cpu}: time order");
                    last = s.id.time;
                    if attrs.events[s.id.event].name == "cpu-clock" {
                        timer += 1;
                        assert_eq!((s.id.time - T0) % period, 0, "on a period boundary");
                    }
                }
            }
            assert_eq!(timer, seconds * u64::from(freq), "CPU {cpu}");
            assert_eq!(last, T0 + seconds * 1_000_000_000);
        }
        assert_eq!(energy.len(), seconds as usize * 100 + 1);
        assert!(energy.windows(2).all(|w| w[1] == w[0] + 10 * MS));
        let truth: serde_json::Value = serde_json::from_str(
            &info
                .metadata
                .iter()
                .find(|(k, _)| k == "pws.truth")
                .unwrap()
                .1,
        )
        .unwrap();
        let n = truth["activation_dynamic_j"].as_object().unwrap().len();
        assert!(n > 50, "{n} activations");
        assert_eq!((records.len(), links.len()), (n, n));
        let mut ids: Vec<&str> = records.iter().map(|r| r.activation_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n, "every record once");
    }
}
