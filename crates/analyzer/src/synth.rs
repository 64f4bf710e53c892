//! `pws-analyze synth -o truth.pws`: a trace whose energy has a known ground truth, to check
//! the models against it.
//!
//! Two CPUs of one package run three functions (each in its own container cgroup), a system
//! daemon and the idle task, 1 ms at a time. The package draws
//!
//! ```text
//! P = idle_w + w_per_busy_cpu × (busy CPUs) + j_per_instruction × (instructions per second)
//! ```
//!
//! and the functions retire instructions at very different rates, so their power per
//! CPU-second differs (that is what a CPU-time share gets wrong), while a regression on CPU time
//! and instructions can recover it. The perf stream is what `pws-record` writes (a `cpu-clock`
//! leader sampled every millisecond, `instructions` and a `context-switches` sampler in its
//! group, every sample reading the group, with cgroup ids), the energy readings come every 10 ms,
//! and the activations and their container links as the invoker-log source gives them. The
//! truth — the coefficients and every activation's dynamic energy — is stored in the trace's
//! metadata under `pws.truth` (JSON); analysing the trace adds a model named `truth`.
//! The energy source is labelled `simulated`: it is not a measurement.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
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
const CPUS: u32 = 2;
/// Where the synthetic clock starts (boot + 1000 s) and the wall time it corresponds to.
const T0: u64 = 1_000_000_000_000;
const T0_REALTIME: u64 = 1_767_225_600_000_000_000; // 2026-01-01T00:00:00Z

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

pub fn run(args: &SynthArgs) -> Result<std::process::ExitCode> {
    let ms_total = args.seconds.max(2) * 1000;
    let mut rng = StdRng::seed_from_u64(args.seed);
    // The schedule: per CPU, per millisecond, what runs; activations placed on free CPUs.
    let mut slots: Vec<Vec<Slot>> = vec![vec![(0, 0, 0.0); ms_total as usize]; CPUS as usize];
    let mut activations: Vec<(usize, u64, u64, u32)> = Vec::new(); // (function, start ms, end ms, cpu)
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
            // First CPU free for the whole run, else the activation is dropped (a full node).
            if let Some(cpu) = (0..CPUS as usize).find(|&c| {
                slots[c][start as usize..(start + len) as usize]
                    .iter()
                    .all(|s| s.1 == 0)
            }) {
                for s in &mut slots[cpu][start as usize..(start + len) as usize] {
                    *s = (f.cgroup_id, 100 + fi as u32, f.ips);
                }
                activations.push((fi, start, start + len, cpu as u32));
                busy_until = start + len;
            }
        }
    }
    // A daemon wakes every 100 ms for 2 ms where a CPU is free.
    for ms in (50..ms_total).step_by(100) {
        for cpu_slots in slots.iter_mut() {
            let span = &mut cpu_slots[ms as usize..(ms + 2) as usize];
            if span.iter().all(|s| s.1 == 0) {
                for s in span {
                    *s = (SYSTEM_CGROUP, 50, SYSTEM_IPS);
                }
                break;
            }
        }
    }
    activations.sort_by_key(|a| a.1);

    let mut w = TraceWriter::create(&args.output, WriterOptions::default())
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    let truth = truth_json(&activations);
    w.write(&trace_info(truth))?;
    let pair = |ms: u64| ClockPair {
        monotonic_ns: T0 + ms * MS,
        realtime_ns: T0_REALTIME + ms * MS,
        uncertainty_ns: 0,
    };
    w.write(&ClockSync {
        pairs: vec![pair(0)],
    })?;
    w.write(&cgroup_events())?;
    // Perf data per CPU: a block per second.
    for cpu in 0..CPUS {
        let mut enc = Encoder::new(cpu);
        for (ms, &slot) in slots[cpu as usize].iter().enumerate() {
            enc.run_ms(T0 + ms as u64 * MS, slot);
            if (ms + 1) % 1000 == 0 {
                w.write_perf_data(cpu, 0, 0, &[&std::mem::take(&mut enc.buf)])?;
            }
        }
        if !enc.buf.is_empty() {
            w.write_perf_data(cpu, 0, 0, &[&enc.buf])?;
        }
    }
    // Energy readings every 10 ms: the exact integral of the truth.
    let mut energy_uj = 0f64;
    let mut samples = vec![EnergySample { ts_ns: T0, raw: 0 }];
    for ms in 0..ms_total as usize {
        let busy = slots.iter().filter(|c| c[ms].1 != 0).count() as f64;
        let ips: f64 = slots.iter().map(|c| c[ms].2).sum();
        let p = IDLE_W + W_PER_BUSY_CPU * busy + J_PER_INSTRUCTION * ips;
        energy_uj += p * 1e-3 * 1e6;
        if (ms + 1) % 10 == 0 {
            samples.push(EnergySample {
                ts_ns: T0 + (ms as u64 + 1) * MS,
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
    let (acts, conts) = activation_records(&activations);
    w.write(&acts)?;
    w.write(&conts)?;
    w.write(&ClockSync {
        pairs: vec![pair(ms_total)],
    })?;
    w.finish(T0 + ms_total * MS)
        .with_context(|| format!("cannot finish {}", args.output.display()))?;
    eprintln!(
        "pws-analyze: wrote {} ({} s, {} activations of {} functions; energy is synthetic ground truth, not a measurement)",
        args.output.display(),
        ms_total / 1000,
        activations.len(),
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
fn truth_json(acts: &[(usize, u64, u64, u32)]) -> String {
    let per: BTreeMap<String, f64> = acts
        .iter()
        .enumerate()
        .map(|(i, &(fi, a, b, _))| {
            let secs = (b - a) as f64 / 1000.0;
            let j = secs * (W_PER_BUSY_CPU + J_PER_INSTRUCTION * FUNCTIONS[fi].ips);
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

/// Event ids: CPU c has leader 100c+1, instructions 100c+2, context-switches 100c+3.
fn id(cpu: u32, member: u64) -> u64 {
    100 * u64::from(cpu + 1) + member
}

fn trace_info(truth: String) -> TraceInfo {
    let ids = |m: u64| {
        (0..CPUS)
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
        cpu_model: "synthetic 2-CPU package".into(),
        recorder: "pws-analyze synth".into(),
        recorder_version: env!("CARGO_PKG_VERSION").into(),
        command_line: std::env::args().collect(),
        clock: CLOCK_MONOTONIC,
        start_monotonic_ns: T0,
        start_realtime_ns: T0_REALTIME,
        page_size: 4096,
        cpus: (0..CPUS)
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

fn activation_records(acts: &[(usize, u64, u64, u32)]) -> (Activations, ContainerEvents) {
    let mut records = Vec::new();
    let mut events = Vec::new();
    let mut first = [true; 3];
    for (i, &(fi, a, b, _)) in acts.iter().enumerate() {
        let cold = std::mem::replace(&mut first[fi], false);
        let f = &FUNCTIONS[fi];
        records.push(ActivationRecord {
            activation_id: activation_id(i),
            namespace: "synth".into(),
            action: f.name.into(),
            version: "0.0.1".into(),
            source: ActivationSource::JsonLines,
            kind: "synthetic".into(),
            start_type: if cold {
                StartType::Cold
            } else {
                StartType::Warm
            },
            start_epoch_ms: (T0_REALTIME + a * MS) / MS,
            end_epoch_ms: (T0_REALTIME + b * MS) / MS,
            start_ns: T0 + a * MS,
            end_ns: T0 + b * MS,
            wait_ms: Some(0),
            init_ms: cold.then_some(0),
            duration_ms: Some(b - a),
            status_code: Some(0),
            memory_limit_mb: Some(256),
            timeout_ms: Some(60_000),
            container_id: container_id(fi),
            path: format!("synth/{}", f.name),
            caused_by: String::new(),
            raw: String::new(),
        });
        events.push(ContainerEvent {
            ts_ns: T0 + a * MS,
            op: ContainerOp::Assign,
            source: ActivationSource::InvokerLog,
            container_id: container_id(fi),
            activation_id: activation_id(i),
            action: f.name.into(),
            namespace: "synth".into(),
            start_type: if cold {
                StartType::Cold
            } else {
                StartType::Warm
            },
            cgroup_path: format!("/synth/{}", f.name),
            detail: "synth".into(),
        });
    }
    (Activations { records }, ContainerEvents { events })
}

/// Writes perf records for one CPU as pws-record's rings hold them.
struct Encoder {
    cpu: u32,
    buf: Vec<u8>,
    clock_ns: u64,
    instructions: f64,
    switches: u64,
    current: Slot,
}

impl Encoder {
    fn new(cpu: u32) -> Self {
        Self {
            cpu,
            buf: Vec::new(),
            clock_ns: 0,
            instructions: 0.0,
            switches: 0,
            current: (0, 0, 0.0),
        }
    }

    /// One millisecond starting at `t` running `slot`: a switch sample first if the task
    /// changes (it reads the counters of the task that leaves), then the counters advance and a
    /// timer sample ends the millisecond.
    fn run_ms(&mut self, t: u64, slot: Slot) {
        if slot.1 != self.current.1 {
            self.switches += 1;
            let (cg, pid, _) = self.current;
            self.sample(t, 3, pid, cg);
            self.current = slot;
        }
        self.clock_ns += MS;
        self.instructions += slot.2 * 1e-3;
        self.sample(t + MS, 1, slot.1, slot.0);
    }

    fn sample(&mut self, t: u64, member: u64, pid: u32, cgroup: u64) {
        let mut body: Vec<u64> = vec![
            id(self.cpu, member),
            u64::from(pid) | u64::from(pid) << 32,
            t,
            u64::from(self.cpu),
            if member == 1 { MS } else { 1 },
            3,
            self.clock_ns,
            self.clock_ns,
        ];
        let values = [
            (self.clock_ns, 1),
            (self.instructions.round() as u64, 2),
            (self.switches, 3),
        ];
        for (v, m) in values {
            body.push(v);
            body.push(id(self.cpu, m));
        }
        body.push(if pid == 0 { 1 } else { cgroup });
        let size = 8 + body.len() * 8;
        self.buf
            .extend_from_slice(&pws_trace::perf::PERF_RECORD_SAMPLE.to_le_bytes());
        self.buf.extend_from_slice(&0u16.to_le_bytes());
        self.buf.extend_from_slice(&(size as u16).to_le_bytes());
        for x in body {
            self.buf.extend_from_slice(&x.to_le_bytes());
        }
    }
}
