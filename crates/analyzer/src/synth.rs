//! `pws-analyze synth -o truth.pws`: a trace whose energy has a known ground truth, to check
//! the models against it.
//!
//! The CPUs of one package (two by default, `--cpus`) run three functions (each in its own
//! container cgroup), a system daemon and the idle task, 1 ms at a time. The package draws
//!
//! ```text
//! P = idle_w + w_per_busy_cpu × (busy CPUs) + j_per_instruction × (instructions per second)
//! ```
//!
//! and the functions retire instructions at very different rates, so their power per
//! CPU-second differs (that is what a CPU-time share gets wrong), while a regression on CPU time
//! and instructions can recover it. The perf stream is what `pws-record` writes (a `cpu-clock`
//! leader sampled every millisecond — `--freq` times a second — with `instructions` and a
//! `context-switches` sampler in its group, every sample reading the group, with cgroup ids;
//! one perf-data block per CPU and second, zstd level 1), the energy readings come every 10 ms,
//! and the activations and their container links as the invoker-log source gives them. The
//! truth — the coefficients and every activation's dynamic energy — is stored in the trace's
//! metadata under `pws.truth` (JSON); analysing the trace adds a model named `truth`.
//! The energy source is labelled `simulated`: it is not a measurement.
//!
//! The schedule (activations and daemon runs, a few dozen a second) is drawn first, because the
//! truth goes in the trace-info block, which comes first; the perf data, energy readings and
//! activation records are then generated and written one second at a time, so a trace of many
//! gigabytes is written in bounded memory (`bench/analyzer_memory.sh` relies on it).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use pws_trace::perf::{read_format, sample};
use pws_trace::records::{
    ActivationRecord, ActivationSource, Activations, CgroupEvent, CgroupEvents, CgroupOp,
    ClockPair, ClockSync, ContainerEvent, ContainerEvents, ContainerOp, CpuInfo, EnergyBlock,
    EnergyDomain, EnergySample, EnergySeries, EnergySource, PerfEventId, PerfEventInfo, SourceInfo,
    SourceStatus, StartType, TraceInfo, CLOCK_MONOTONIC,
};
use pws_trace::{TraceWriter, WriterOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

/// The ground truth's coefficients.
pub const IDLE_W: f64 = 40.0;
pub const W_PER_BUSY_CPU: f64 = 6.0;
pub const J_PER_INSTRUCTION: f64 = 4e-9;

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
/// The zstd level pws-record uses by default.
const COMPRESSION_LEVEL: i32 = 1;

#[derive(Debug, clap::Args)]
pub struct SynthArgs {
    /// Trace to write.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Length of the synthetic recording, in seconds.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Seed of the arrivals and run times.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// CPUs of the synthetic package. Functions and the daemon run on the first CPU free for
    /// their whole run; every CPU is sampled, busy or idle, as cpu-clock is.
    #[arg(long, default_value_t = 2)]
    pub cpus: u32,
    /// cpu-clock samples per second on every CPU: a multiple of 1000 whose period is a whole
    /// number of nanoseconds dividing 1 ms (1000, 2000, 4000, 5000, 10000, … up to 100000).
    #[arg(long, default_value_t = 1000)]
    pub freq: u32,
}

struct Function {
    name: &'static str,
    cgroup_id: u64,
    /// Instructions per second while running.
    ips: f64,
    /// Arrivals per second.
    rate: f64,
    /// Run time range, ms.
    run_ms: (u64, u64),
}

const FUNCTIONS: [Function; 3] = [
    Function {
        name: "integer-loop",
        cgroup_id: 1001,
        ips: 3.0e9,
        rate: 12.0,
        run_ms: (5, 40),
    },
    Function {
        name: "memory-stream",
        cgroup_id: 1002,
        ips: 0.4e9,
        rate: 8.0,
        run_ms: (10, 60),
    },
    Function {
        name: "hash",
        cgroup_id: 1003,
        ips: 1.5e9,
        rate: 10.0,
        run_ms: (3, 30),
    },
];
const SYSTEM_CGROUP: u64 = 2;
const SYSTEM_IPS: f64 = 1.0e9;

/// What runs on a CPU for one millisecond: (cgroup, pid, instructions/s); pid 0 is idle.
type Slot = (u64, u32, f64);
const IDLE_SLOT: Slot = (0, 0, 0.0);

/// One activation: function, start and end (ms from the start), CPU.
#[derive(Debug, Clone, Copy)]
struct Act {
    function: usize,
    start: u64,
    end: u64,
}

/// What runs where: per CPU, its busy spans (start ms → end ms and what runs), which never
/// overlap; time outside them is idle. A few dozen spans a second, so it is kept whole.
struct Schedule {
    spans: Vec<BTreeMap<u64, (u64, Slot)>>,
    /// Sorted by start; an activation's index here is its id.
    acts: Vec<Act>,
}

impl Schedule {
    fn is_free(&self, cpu: usize, a: u64, b: u64) -> bool {
        // Spans do not overlap: only the last one starting before `b` can reach into [a, b).
        self.spans[cpu]
            .range(..b)
            .next_back()
            .is_none_or(|(_, &(end, _))| end <= a)
    }

    /// Function activations by Poisson arrivals, one at a time per container, each on the first
    /// CPU free for its whole run (dropped when none is, a full node); then a daemon that wakes
    /// every 100 ms for 2 ms where a CPU is free.
    fn draw(ms_total: u64, cpus: usize, rng: &mut StdRng) -> Self {
        let mut s = Self {
            spans: vec![BTreeMap::new(); cpus],
            acts: Vec::new(),
        };
        for (fi, f) in FUNCTIONS.iter().enumerate() {
            let mut t = 0f64;
            // One activation at a time per container, as on a FaaS platform: a new one waits.
            let mut busy_until = 0u64;
            loop {
                t += -(1.0 - rng.random::<f64>()).ln() / f.rate * 1000.0;
                let start = (t as u64 + 1).max(busy_until);
                let len = rng.random_range(f.run_ms.0..=f.run_ms.1);
                if start + len + 1 >= ms_total {
                    break;
                }
                if let Some(cpu) = (0..cpus).find(|&c| s.is_free(c, start, start + len)) {
                    let slot = (f.cgroup_id, 100 + fi as u32, f.ips);
                    s.spans[cpu].insert(start, (start + len, slot));
                    s.acts.push(Act {
                        function: fi,
                        start,
                        end: start + len,
                    });
                    busy_until = start + len;
                }
            }
        }
        for ms in (50..ms_total).step_by(100) {
            if let Some(cpu) = (0..cpus).find(|&c| s.is_free(c, ms, ms + 2)) {
                s.spans[cpu].insert(ms, (ms + 2, (SYSTEM_CGROUP, 50, SYSTEM_IPS)));
            }
        }
        s.acts.sort_by_key(|a| a.start);
        s
    }

    /// What CPU `cpu` runs in each millisecond of `[c0, c0 + out.len())`.
    fn fill(&self, cpu: usize, c0: u64, out: &mut [Slot]) {
        out.fill(IDLE_SLOT);
        let c1 = c0 + out.len() as u64;
        // Sorted, non-overlapping spans: their ends are sorted too, so walking back from the
        // last span starting before c1 visits exactly those that reach into the chunk.
        for (&a, &(b, slot)) in self.spans[cpu]
            .range(..c1)
            .rev()
            .take_while(|(_, &(b, _))| b > c0)
        {
            let (a, b) = (a.max(c0), b.min(c1));
            out[(a - c0) as usize..(b - c0) as usize].fill(slot);
        }
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
    Ok(())
}

pub fn run(args: &SynthArgs) -> Result<std::process::ExitCode> {
    check(args)?;
    let cpus = args.cpus as usize;
    let ms_total = args.seconds.max(2) * 1000;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let sched = Schedule::draw(ms_total, cpus, &mut rng);

    let opts = WriterOptions {
        compression_level: Some(COMPRESSION_LEVEL),
        ..WriterOptions::default()
    };
    let mut w = TraceWriter::create(&args.output, opts)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    let truth = truth_json(&sched.acts);
    w.write(&trace_info(truth, args.cpus))
        .context("the trace-info block (with the truth of every activation) cannot be written")?;
    let pair = |ms: u64| ClockPair {
        monotonic_ns: T0 + ms * MS,
        realtime_ns: T0_REALTIME + ms * MS,
        uncertainty_ns: 0,
    };
    w.write(&ClockSync {
        pairs: vec![pair(0)],
    })?;
    w.write(&cgroup_events())?;

    let cold = cold_starts(&sched.acts);
    let mut encoders: Vec<Encoder> = (0..args.cpus).map(|c| Encoder::new(c, args.freq)).collect();
    let mut slots: Vec<Vec<Slot>> = vec![Vec::new(); cpus];
    let mut ring: Vec<u8> = Vec::new();
    let mut energy_uj = 0f64;
    // Activations whose container link is written (at their start) and whose record is not
    // yet (at their end, as the invoker log and activation sources give them).
    let (mut next_start, mut pending) = (0usize, Vec::new());
    for c0 in (0..ms_total).step_by(CHUNK_MS as usize) {
        let c1 = (c0 + CHUNK_MS).min(ms_total);
        for (cpu, s) in slots.iter_mut().enumerate() {
            s.resize((c1 - c0) as usize, IDLE_SLOT);
            sched.fill(cpu, c0, s);
        }
        // One buffer for every CPU's block: written before the next CPU's is made.
        for (enc, s) in encoders.iter_mut().zip(&slots) {
            ring.clear();
            for (k, &slot) in s.iter().enumerate() {
                enc.run_ms(&mut ring, T0 + (c0 + k as u64) * MS, slot);
            }
            w.write_perf_data(enc.cpu, 0, enc.ring_offset, &[&ring])?;
            enc.ring_offset += ring.len() as u64;
        }
        // Energy readings every 10 ms: the exact integral of the truth.
        let mut samples = Vec::with_capacity((c1 - c0) as usize / 10 + 1);
        if c0 == 0 {
            samples.push(EnergySample { ts_ns: T0, raw: 0 });
        }
        for ms in c0..c1 {
            let k = (ms - c0) as usize;
            let busy = slots.iter().filter(|s| s[k].1 != 0).count() as f64;
            let ips: f64 = slots.iter().map(|s| s[k].2).sum();
            let p = IDLE_W + W_PER_BUSY_CPU * busy + J_PER_INSTRUCTION * ips;
            energy_uj += p * 1e-3 * 1e6;
            if (ms + 1) % 10 == 0 {
                samples.push(EnergySample {
                    ts_ns: T0 + (ms + 1) * MS,
                    raw: energy_uj.round() as u64,
                });
            }
        }
        w.write(&EnergyBlock {
            series: vec![EnergySeries {
                source: EnergySource::Simulated,
                domain: EnergyDomain::Package,
                index: 0,
                name: "synthetic-truth".into(),
                unit_joules: 1e-6,
                wrap: 0,
                samples,
            }],
        })?;
        let mut events = Vec::new();
        while next_start < sched.acts.len() && sched.acts[next_start].start < c1 {
            let i = next_start;
            events.push(container_event(i, &sched.acts[i], cold[i]));
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
                .map(|&i| activation_record(i, &sched.acts[i], cold[i]))
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
        "pws-analyze: wrote {} ({} s, {} CPUs at {} Hz: {samples} perf samples, {bytes} bytes; {} activations of {} functions; energy is synthetic ground truth, not a measurement)",
        args.output.display(),
        ms_total / 1000,
        args.cpus,
        args.freq,
        sched.acts.len(),
        FUNCTIONS.len()
    );
    Ok(std::process::ExitCode::SUCCESS)
}

fn activation_id(i: usize) -> String {
    format!("{:032x}", 0x5157_0000_0000u64 + i as u64)
}

fn container_id(fi: usize) -> String {
    format!("synth-{}", FUNCTIONS[fi].name)
}

/// Every activation's true dynamic energy: its CPU's busy power plus its instructions.
fn truth_json(acts: &[Act]) -> String {
    let per: BTreeMap<String, f64> = acts
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let secs = (a.end - a.start) as f64 / 1000.0;
            let j = secs * (W_PER_BUSY_CPU + J_PER_INSTRUCTION * FUNCTIONS[a.function].ips);
            (activation_id(i), j)
        })
        .collect();
    json!({
        "idle_w": IDLE_W,
        "w_per_busy_cpu": W_PER_BUSY_CPU,
        "j_per_instruction": J_PER_INSTRUCTION,
        "activation_dynamic_j": per,
    })
    .to_string()
}

fn attr(type_: u32, config: u64, sample_type: u64) -> Vec<u8> {
    let mut a = vec![0u8; 64];
    a[0..4].copy_from_slice(&type_.to_le_bytes());
    a[4..8].copy_from_slice(&64u32.to_le_bytes());
    a[8..16].copy_from_slice(&config.to_le_bytes());
    a[24..32].copy_from_slice(&sample_type.to_le_bytes());
    let rf = read_format::GROUP
        | read_format::ID
        | read_format::TOTAL_TIME_ENABLED
        | read_format::TOTAL_TIME_RUNNING;
    a[32..40].copy_from_slice(&rf.to_le_bytes());
    a[40..48].copy_from_slice(&(1u64 << 18).to_le_bytes()); // sample_id_all
    a
}

const SAMPLE_TYPE: u64 = sample::IDENTIFIER
    | sample::TID
    | sample::TIME
    | sample::CPU
    | sample::PERIOD
    | sample::READ
    | sample::CGROUP;

/// Event ids: CPU c has leader 100(c+1)+1, instructions 100(c+1)+2, context-switches 100(c+1)+3.
fn id(cpu: u32, member: u64) -> u64 {
    100 * u64::from(cpu + 1) + member
}

fn trace_info(truth: String, cpus: u32) -> TraceInfo {
    let ids = |m: u64| {
        (0..cpus)
            .map(|c| PerfEventId {
                cpu: c,
                id: id(c, m),
            })
            .collect()
    };
    let ev = |name: &str, pmu: &str, t: u32, config: u64, m: u64| PerfEventInfo {
        name: name.into(),
        pmu: pmu.into(),
        attr: attr(t, config, SAMPLE_TYPE),
        ids: ids(m),
        format: String::new(),
    };
    TraceInfo {
        hostname: "synth".into(),
        kernel_release: "synthetic".into(),
        arch: std::env::consts::ARCH.into(),
        cpu_model: format!("synthetic {cpus}-CPU package"),
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
                package: 0,
                die: 0,
                core: c,
                numa_node: 0,
            })
            .collect(),
        perf_events: vec![
            ev("cpu-clock", "software", 1, 0, 1),
            ev("instructions", "cpu", 0, 1, 2),
            ev("context-switches", "software", 1, 3, 3),
        ],
        sources: vec![SourceInfo {
            kind: "energy".into(),
            name: "synthetic-truth".into(),
            status: SourceStatus::Used,
            detail: "synthetic ground truth from pws-analyze synth: not a measurement".into(),
        }],
        metadata: vec![("run".into(), "synth".into()), ("pws.truth".into(), truth)],
        ..TraceInfo::default()
    }
}

fn cgroup_events() -> CgroupEvents {
    let ev = |op, id, path: &str| CgroupEvent {
        ts_ns: T0,
        op,
        cgroup_id: id,
        hierarchy: 0,
        path: path.into(),
        pid: 0,
        detail: "synth".into(),
    };
    let mut events = vec![
        ev(CgroupOp::Exists, 1, "/"),
        ev(
            CgroupOp::Exists,
            SYSTEM_CGROUP,
            "/system.slice/daemon.service",
        ),
    ];
    for f in &FUNCTIONS {
        events.push(ev(
            CgroupOp::Mkdir,
            f.cgroup_id,
            &format!("/synth/{}", f.name),
        ));
    }
    CgroupEvents { events }
}

/// The first activation of each function (in start order) is its container's cold start.
fn cold_starts(acts: &[Act]) -> Vec<bool> {
    let mut first = [true; FUNCTIONS.len()];
    acts.iter()
        .map(|a| std::mem::replace(&mut first[a.function], false))
        .collect()
}

fn start_type(cold: bool) -> StartType {
    if cold {
        StartType::Cold
    } else {
        StartType::Warm
    }
}

fn activation_record(i: usize, a: &Act, cold: bool) -> ActivationRecord {
    let f = &FUNCTIONS[a.function];
    ActivationRecord {
        activation_id: activation_id(i),
        namespace: "synth".into(),
        action: f.name.into(),
        version: "0.0.1".into(),
        source: ActivationSource::JsonLines,
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
        container_id: container_id(a.function),
        path: format!("synth/{}", f.name),
        caused_by: String::new(),
        raw: String::new(),
    }
}

fn container_event(i: usize, a: &Act, cold: bool) -> ContainerEvent {
    let f = &FUNCTIONS[a.function];
    ContainerEvent {
        ts_ns: T0 + a.start * MS,
        op: ContainerOp::Assign,
        source: ActivationSource::InvokerLog,
        container_id: container_id(a.function),
        activation_id: activation_id(i),
        action: f.name.into(),
        namespace: "synth".into(),
        start_type: start_type(cold),
        cgroup_path: format!("/synth/{}", f.name),
        detail: "synth".into(),
    }
}

/// `PERF_RECORD_SAMPLE` header as one little-endian word: type 9, misc 0, size 128 (the
/// header and the 15 words of [`Encoder::sample`]).
const SAMPLE_HEADER: u64 = pws_trace::perf::PERF_RECORD_SAMPLE as u64 | (SAMPLE_LEN as u64) << 48;
const SAMPLE_LEN: usize = 8 * 16;

/// Perf records of one CPU as pws-record's rings hold them: the CPU's counters and task, kept
/// from one block to the next.
struct Encoder {
    cpu: u32,
    /// The timer's period and how many periods make a millisecond.
    period_ns: u64,
    ticks_per_ms: u64,
    /// Ring bytes written before this chunk (the block's `ring_offset`).
    ring_offset: u64,
    clock_ns: u64,
    instructions: f64,
    switches: u64,
    current: Slot,
    samples: u64,
}

impl Encoder {
    fn new(cpu: u32, freq: u32) -> Self {
        let ticks_per_ms = u64::from(freq / 1000);
        Self {
            cpu,
            period_ns: MS / ticks_per_ms,
            ticks_per_ms,
            ring_offset: 0,
            clock_ns: 0,
            instructions: 0.0,
            switches: 0,
            current: IDLE_SLOT,
            samples: 0,
        }
    }

    /// One millisecond starting at `t` running `slot`: a switch sample first if the task
    /// changes (it reads the counters of the task that leaves), then the counters advance and a
    /// timer sample ends each period.
    fn run_ms(&mut self, buf: &mut Vec<u8>, t: u64, slot: Slot) {
        if slot.1 != self.current.1 {
            self.switches += 1;
            let (cg, pid, _) = self.current;
            self.sample(buf, t, 3, pid, cg);
            self.current = slot;
        }
        let per_tick = slot.2 * 1e-3 / self.ticks_per_ms as f64;
        for k in 1..=self.ticks_per_ms {
            self.clock_ns += self.period_ns;
            self.instructions += per_tick;
            self.sample(buf, t + k * self.period_ns, 1, slot.1, slot.0);
        }
    }

    /// Appends one sample to `buf`.
    fn sample(&mut self, buf: &mut Vec<u8>, t: u64, member: u64, pid: u32, cgroup: u64) {
        let cpu = self.cpu;
        let words: [u64; SAMPLE_LEN / 8] = [
            SAMPLE_HEADER,
            id(cpu, member),
            u64::from(pid) | u64::from(pid) << 32,
            t,
            u64::from(cpu),
            if member == 1 { self.period_ns } else { 1 },
            // The group read: nr, time enabled, time running, then (value, id) per member.
            3,
            self.clock_ns,
            self.clock_ns,
            self.clock_ns,
            id(cpu, 1),
            self.instructions.round() as u64,
            id(cpu, 2),
            self.switches,
            id(cpu, 3),
            if pid == 0 { 1 } else { cgroup },
        ];
        let at = buf.len();
        buf.resize(at + SAMPLE_LEN, 0);
        for (dst, w) in buf[at..].chunks_exact_mut(8).zip(words) {
            dst.copy_from_slice(&w.to_le_bytes());
        }
        self.samples += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pws_trace::perf::{PerfAttrs, PerfRecord};
    use pws_trace::{Record, Trace};

    fn args(output: PathBuf, seconds: u64, cpus: u32, freq: u32) -> SynthArgs {
        SynthArgs {
            output,
            seconds,
            seed: 7,
            cpus,
            freq,
        }
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
                    assert_eq!(s.id.cpu, *cpu);
                    assert!(s.id.time >= last, "CPU {cpu}: time order");
                    last = s.id.time;
                    if attrs.events[s.id.event].name == "cpu-clock" {
                        timer += 1;
                        assert_eq!(s.period, period);
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
