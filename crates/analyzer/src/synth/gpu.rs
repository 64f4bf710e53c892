//! `--gpus N`: GPUs whose energy has a known ground truth, written as pws-record writes what
//! NVML says (an energy series per device, domain gpu, and gpu blocks: instantaneous power,
//! per-process utilisation samples, the processes holding memory).
//!
//! **Which functions use a GPU.** Functions of even index (0, 2, 4, …) are GPU functions on
//! device `index / 2 % N`; odd ones run on the CPUs only. The k-th GPU function (k = index / 2)
//! has its own power at full SM use (`w_at_full_sm`, 120–350 W) and SM duty (`sm_duty`,
//! 0.25–0.95), fixed by k with golden-ratio steps as `--functions` moves the CPU functions
//! ([`GpuFunction::of`]), so the power per SM-second differs from one function to the next and
//! an SM-utilisation share is not the truth.
//!
//! **Kernels.** While one of its activations runs (its run window, on the CPU the schedule
//! already gives it), its kernel runs or not in each millisecond, independently, with the
//! activation's duty: the function's `sm_duty` times a factor within ±[`DUTY_JITTER`] drawn per
//! activation (its input differs). A device runs one kernel at a time (time slicing, the
//! default without MPS): in a millisecond where several activations on the device want the
//! SMs, the one that started first gets them and the others' kernels do not run then (their
//! work is not made up later), so a device's SM busy fraction never exceeds 1.
//!
//! **Power.** Device d draws [`idle_w`]`(d)` plus, in a millisecond where an activation's kernel
//! runs, its function's `w_at_full_sm`; that activation's true dynamic GPU energy is the sum of
//! `w_at_full_sm × 1 ms` over its milliseconds with the kernel running.
//!
//! **What NVML shows.** The total-energy counter (mJ, from [`COUNTER_BASE_MJ`] `× (d + 1)`, as
//! NVML counts since the driver loaded) moves only at its updates, every `--gpu-update-period`
//! (100 ms by default) ± `--gpu-update-jitter` (2 ms: the k-th update is at k × period plus its
//! own uniform draw in ±jitter, whole ms), to the true energy up to that instant; it is read
//! every `--gpu-interval` from [`READ_OFFSET_MS`] on (37 ms after the first update, so reads
//! are not aligned with updates and a read sees a value up to one period old, as on an H200:
//! median 100.05 ms between updates, p90 102 ms). Each read also gives the true power of the
//! millisecond starting at the read (`power_mw`), the utilisation samples whose driver sampling
//! period (`--gpu-sampling-period`, 167 ms, from the trace's start) ended after the previous
//! read and at or before this one — at the end of each period, one sample per process that ran
//! a kernel in it: `sm` the percentage of the period its kernels ran, `mem` that times the
//! function's memory ratio, realtime timestamp of the period's end — and the processes holding
//! device memory: a container's process from its first activation's start (every activation
//! of a GPU function uses the GPU) until the container is removed, paused or not.
//!
//! **pids.** A container's GPU process is its [`Container::pid`](super::schedule::Container),
//! the pid its tasks carry in the perf samples (its first activation always runs under it), so
//! the analyzer maps it to the container's cgroup from the trace's own samples.
//!
//! The counter is labelled `simulated` (`synthetic-gpu:{d}`): a synthetic trace never looks
//! measured. `--energy-gaps` and `--energy-noise` leave it alone. Its own random streams (the
//! kernels are a hash of the seed, the activation and the millisecond; the update jitter has
//! its own generator), so the CPUs' schedule, samples and counters are those of the same seed
//! without `--gpus`.

use std::collections::BTreeMap;

use pws_trace::records::{
    EnergyDomain, EnergySample, EnergySeries, EnergySource, GpuBlock, GpuDeviceReads, GpuProcess,
    GpuProcessSample, GpuRead,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::schedule::Schedule;
use super::{activation_id, MS, T0, T0_REALTIME};

/// `--gpus` at most.
pub const MAX_GPUS: u32 = 64;
/// The first counter read is this long after the first update (at the trace's start).
pub const READ_OFFSET_MS: u64 = 37;
/// Each activation's duty is its function's `sm_duty` times a factor within ± this.
pub const DUTY_JITTER: f64 = 0.1;
/// Device d's counter starts at `(d + 1) ×` this (mJ): one kWh per device index.
pub const COUNTER_BASE_MJ: u64 = 3_600_000_000;
const GIB: f64 = (1u64 << 30) as f64;
const MIB: u64 = 1 << 20;

/// The GPU options of the scenario, in ms.
#[derive(Debug, Clone, Copy)]
pub struct GpuOptions {
    pub devices: usize,
    pub update_ms: u64,
    pub jitter_ms: u64,
    pub read_ms: u64,
    pub sampling_ms: u64,
}

/// Device d's power with no kernel running, W: 70 W, 75 W, 80 W, 85 W, then again.
pub fn idle_w(d: usize) -> f64 {
    70.0 + 5.0 * (d % 4) as f64
}

/// Device d's NVML-style UUID.
pub fn uuid(d: usize) -> String {
    format!("GPU-00000000-0000-0000-0000-{d:012x}")
}

/// A GPU function's constants.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpuFunction {
    pub device: usize,
    /// Power above idle while its kernel has the SMs, W.
    pub w_at_full_sm: f64,
    /// Fraction of its run's milliseconds its kernel wants the SMs.
    pub sm_duty: f64,
    /// Its utilisation samples' `mem` is `sm` times this.
    pub mem_ratio: f64,
    /// Device memory its container's process holds, bytes.
    pub used_memory: u64,
}

impl GpuFunction {
    /// Function `fi`'s GPU use on `devices` GPUs; None for CPU-only functions (odd indices).
    pub fn of(fi: usize, devices: usize) -> Option<Self> {
        if devices == 0 || fi % 2 == 1 {
            return None;
        }
        let k = (fi / 2) as f64;
        let u = |phase: f64, step: f64| (phase + k * step).fract();
        Some(Self {
            device: fi / 2 % devices,
            w_at_full_sm: round3(120.0 + 230.0 * u(0.1, 0.618_034)),
            sm_duty: round3(0.25 + 0.70 * u(0.3, 0.414_214)),
            mem_ratio: round3(0.15 + 0.45 * u(0.5, 0.754_878)),
            used_memory: (GIB * (1.0 + 3.0 * u(0.2, 0.569_840))) as u64 / MIB * MIB,
        })
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A uniform draw in [0, 1) that depends only on its inputs.
fn unit(seed: u64, a: u64, b: u64) -> f64 {
    let h = splitmix(seed ^ splitmix(a ^ splitmix(b)));
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// The GPU side of the scenario: which activations use which device and how hard.
pub struct Plan<'a> {
    sched: &'a Schedule,
    pub o: GpuOptions,
    pub functions: Vec<Option<GpuFunction>>,
    seed: u64,
    /// Indices (activation ids) of the GPU activations, in start order.
    acts: Vec<usize>,
}

impl<'a> Plan<'a> {
    pub fn new(sched: &'a Schedule, o: GpuOptions, seed: u64) -> Self {
        let functions: Vec<Option<GpuFunction>> = (0..sched.functions.len())
            .map(|fi| GpuFunction::of(fi, o.devices))
            .collect();
        let acts = (0..sched.acts.len())
            .filter(|&i| functions[sched.acts[i].function].is_some())
            .collect();
        Self {
            sched,
            o,
            functions,
            seed: seed ^ 0x6770_7573,
            acts,
        }
    }

    fn function(&self, i: usize) -> GpuFunction {
        self.functions[self.sched.acts[i].function].expect("a GPU activation")
    }

    /// Activation i's duty: its function's, moved by its own factor, at most 1.
    fn duty(&self, i: usize) -> f64 {
        let f = self.function(i);
        let x = 1.0 + DUTY_JITTER * (2.0 * unit(self.seed, i as u64, u64::MAX) - 1.0);
        (f.sm_duty * x).min(1.0)
    }

    /// Activation i's kernel wants the SMs in millisecond `ms`.
    fn wants(&self, i: usize, ms: u64) -> bool {
        unit(self.seed, i as u64, ms) < self.duty(i)
    }

    /// The ground truth: per-function constants, the true dynamic energy of every GPU
    /// activation, the total energy of every device (a pass over the whole run, as the trace
    /// will be written).
    pub fn truth(&self) -> serde_json::Value {
        let o = self.o;
        let mut act_j: BTreeMap<usize, f64> = self.acts.iter().map(|&i| (i, 0.0)).collect();
        let mut dev_j = vec![0.0f64; o.devices];
        let mut k = Kernels::new(o.devices);
        let mut on = vec![None; o.devices];
        for ms in 0..self.sched.ms_total {
            k.step(self, ms, &mut on);
            for (d, e) in dev_j.iter_mut().enumerate() {
                *e += self.power_w(d, on[d]) * 1e-3;
                if let Some(i) = on[d] {
                    *act_j.get_mut(&i).expect("a GPU activation") +=
                        self.function(i).w_at_full_sm * 1e-3;
                }
            }
        }
        let functions: Vec<serde_json::Value> = self
            .sched
            .functions
            .iter()
            .zip(&self.functions)
            .map(|(f, g)| {
                json!({
                    "name": f.name,
                    "device": g.map(|g| g.device),
                    "w_at_full_sm": g.map(|g| g.w_at_full_sm),
                    "sm_duty": g.map(|g| g.sm_duty),
                    "mem_ratio": g.map(|g| g.mem_ratio),
                    "used_memory_bytes": g.map(|g| g.used_memory),
                })
            })
            .collect();
        let cgroups: BTreeMap<String, f64> = self
            .sched
            .containers
            .iter()
            .filter_map(|c| {
                let g = self.functions[c.function]?;
                Some((c.cgroup_id.to_string(), g.w_at_full_sm))
            })
            .collect();
        let pids: BTreeMap<String, u64> = self
            .sched
            .containers
            .iter()
            .filter(|c| self.functions[c.function].is_some())
            .map(|c| (c.pid.to_string(), c.cgroup_id))
            .collect();
        json!({
            "devices": (0..o.devices)
                .map(|d| json!({"index": d, "uuid": uuid(d), "idle_w": idle_w(d)}))
                .collect::<Vec<_>>(),
            "update_period_ms": o.update_ms,
            "update_jitter_ms": o.jitter_ms,
            "read_period_ms": o.read_ms,
            "read_offset_ms": READ_OFFSET_MS % o.read_ms,
            "sampling_period_ms": o.sampling_ms,
            "duty_jitter": DUTY_JITTER,
            "counter_base_mj": (0..o.devices as u64).map(|d| COUNTER_BASE_MJ * (d + 1)).collect::<Vec<_>>(),
            "sharing": "time-sliced: one kernel per device and millisecond, the earliest-started activation's",
            "functions": functions,
            "cgroup_w_at_full_sm": cgroups,
            "pid_cgroup": pids,
            "activation_dynamic_j": act_j
                .into_iter()
                .map(|(i, j)| (activation_id(i), j))
                .collect::<BTreeMap<_, _>>(),
            "device_energy_j": dev_j,
        })
    }

    /// Device d's power in a millisecond where activation `on`'s kernel runs (None: none).
    fn power_w(&self, d: usize, on: Option<usize>) -> f64 {
        idle_w(d) + on.map_or(0.0, |i| self.function(i).w_at_full_sm)
    }
}

/// Which activation's kernel runs on each device, one millisecond after the other.
struct Kernels {
    /// The next GPU activation (index in `Plan::acts`) not yet started.
    next: usize,
    /// Per device, the GPU activations running, in start order.
    running: Vec<Vec<usize>>,
}

impl Kernels {
    fn new(devices: usize) -> Self {
        Self {
            next: 0,
            running: vec![Vec::new(); devices],
        }
    }

    /// Millisecond `ms` (called for 0, 1, 2, … in turn): per device, the activation whose
    /// kernel has the SMs.
    fn step(&mut self, plan: &Plan, ms: u64, on: &mut [Option<usize>]) {
        let acts = &plan.sched.acts;
        while let Some(&i) = plan.acts.get(self.next).filter(|&&i| acts[i].start <= ms) {
            self.running[plan.function(i).device].push(i);
            self.next += 1;
        }
        for (d, run) in self.running.iter_mut().enumerate() {
            run.retain(|&i| acts[i].end > ms);
            on[d] = run.iter().copied().find(|&i| plan.wants(i, ms));
        }
    }
}

/// A container's process holding device memory over `[from, to)` ms.
#[derive(Debug, Clone, Copy)]
struct Holder {
    from: u64,
    to: u64,
    device: usize,
    pid: u32,
    used_memory: u64,
}

/// One device's state from one chunk to the next.
struct Device {
    /// True energy since the start, J.
    energy_j: f64,
    /// The counter's raw value (mJ) at its last update, and the next update (its index on the
    /// beat and its instant, ms).
    shown_mj: u64,
    beat: u64,
    next_update: u64,
    /// Per pid, its kernel milliseconds in the current sampling period and its memory ratio.
    busy: BTreeMap<u32, (u64, f64)>,
    /// Utilisation samples not yet given by a read.
    pending: Vec<GpuProcessSample>,
}

/// Writes the GPUs' energy series and gpu blocks one chunk at a time.
pub struct Writer<'a> {
    plan: &'a Plan<'a>,
    kernels: Kernels,
    on: Vec<Option<usize>>,
    devices: Vec<Device>,
    /// Sorted by `from`; `holding` are those started and not yet known to be gone.
    holders: Vec<Holder>,
    next_holder: usize,
    holding: Vec<Holder>,
    jitter_rng: StdRng,
}

impl<'a> Writer<'a> {
    pub fn new(plan: &'a Plan<'a>, seed: u64) -> Self {
        let n = plan.o.devices;
        let sched = plan.sched;
        let mut holders: Vec<Holder> = sched
            .containers
            .iter()
            .filter_map(|c| {
                let g = plan.functions[c.function]?;
                let &(from, _) = c.runs.first()?;
                Some(Holder {
                    from,
                    to: c.removed.unwrap_or(sched.ms_total),
                    device: g.device,
                    pid: c.pid,
                    used_memory: g.used_memory,
                })
            })
            .collect();
        holders.sort_by_key(|h| (h.from, h.pid));
        Self {
            plan,
            kernels: Kernels::new(n),
            on: vec![None; n],
            devices: (0..n as u64)
                .map(|d| Device {
                    energy_j: 0.0,
                    shown_mj: COUNTER_BASE_MJ * (d + 1),
                    beat: 0,
                    next_update: 0,
                    busy: BTreeMap::new(),
                    pending: Vec::new(),
                })
                .collect(),
            holders,
            next_holder: 0,
            holding: Vec::new(),
            jitter_rng: StdRng::seed_from_u64(seed ^ 0x6a17_7e90),
        }
    }

    /// The energy series (one per device) and the gpu block of `[c0, c1)`; chunks come in
    /// order and without gaps.
    pub fn chunk(&mut self, c0: u64, c1: u64) -> (Vec<EnergySeries>, GpuBlock) {
        let plan = self.plan;
        let o = plan.o;
        let mut samples: Vec<Vec<EnergySample>> = vec![Vec::new(); o.devices];
        let mut reads: Vec<Vec<GpuRead>> = vec![Vec::new(); o.devices];
        let read_phase = READ_OFFSET_MS % o.read_ms;
        for ms in c0..c1 {
            self.kernels.step(plan, ms, &mut self.on);
            let read = ms % o.read_ms == read_phase;
            if read {
                while let Some(&h) = self.holders.get(self.next_holder).filter(|h| h.from <= ms) {
                    self.holding.push(h);
                    self.next_holder += 1;
                }
                self.holding.retain(|h| h.to > ms);
            }
            for (d, dev) in self.devices.iter_mut().enumerate() {
                let p = plan.power_w(d, self.on[d]);
                // What happens at the instant `ms`, before its millisecond: the counter's
                // update, the end of a sampling period, the read.
                if ms == dev.next_update {
                    dev.shown_mj =
                        COUNTER_BASE_MJ * (d as u64 + 1) + (dev.energy_j * 1e3).round() as u64;
                    dev.beat += 1;
                    let j = o.jitter_ms as i64;
                    let shift = if j > 0 {
                        self.jitter_rng.random_range(-j..=j)
                    } else {
                        0
                    };
                    // Jitter below half the period: the updates stay in order.
                    dev.next_update = ((dev.beat * o.update_ms) as i64 + shift) as u64;
                }
                if ms > 0 && ms % o.sampling_ms == 0 {
                    let timestamp_us = (T0_REALTIME + ms * MS) / 1000;
                    for (pid, (busy, mem_ratio)) in std::mem::take(&mut dev.busy) {
                        let sm = (100.0 * busy as f64 / o.sampling_ms as f64).round();
                        dev.pending.push(GpuProcessSample {
                            pid,
                            timestamp_us,
                            sm: sm.min(100.0) as u8,
                            mem: (sm * mem_ratio).round().min(100.0) as u8,
                            enc: 0,
                            dec: 0,
                        });
                    }
                }
                if read {
                    samples[d].push(EnergySample {
                        ts_ns: T0 + ms * MS,
                        raw: dev.shown_mj,
                    });
                    let mut processes: Vec<GpuProcess> = self
                        .holding
                        .iter()
                        .filter(|h| h.device == d)
                        .map(|h| GpuProcess {
                            pid: h.pid,
                            used_memory: Some(h.used_memory),
                        })
                        .collect();
                    processes.sort_by_key(|p| p.pid);
                    reads[d].push(GpuRead {
                        ts_ns: T0 + ms * MS,
                        power_mw: Some((p * 1e3).round() as u64),
                        utilization: std::mem::take(&mut dev.pending),
                        processes,
                    });
                }
                dev.energy_j += p * 1e-3;
                if let Some(i) = self.on[d] {
                    let pid = plan.sched.containers[plan.sched.acts[i].container].pid;
                    let e = dev
                        .busy
                        .entry(pid)
                        .or_insert((0, plan.function(i).mem_ratio));
                    e.0 += 1;
                }
            }
        }
        let series = samples
            .into_iter()
            .enumerate()
            .map(|(d, samples)| EnergySeries {
                source: EnergySource::Simulated,
                domain: EnergyDomain::Gpu,
                index: d as u32,
                name: format!("synthetic-gpu:{d}"),
                unit_joules: 1e-3,
                wrap: 0,
                samples,
            })
            .collect();
        let devices = reads
            .into_iter()
            .enumerate()
            .map(|(d, reads)| GpuDeviceReads {
                device: d as u32,
                uuid: uuid(d),
                name: "synthetic GPU".into(),
                mig: false,
                reads,
            })
            .collect();
        (series, GpuBlock { devices })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Even functions on device index/2 % N, odd ones on none; every GPU function's constants in
    /// their ranges and its power at full SM use its own.
    #[test]
    fn gpu_functions_have_their_own_constants() {
        let n = 3;
        let mut w = Vec::new();
        for fi in 0..1000 {
            let Some(g) = GpuFunction::of(fi, n) else {
                assert_eq!(fi % 2, 1, "{fi}");
                continue;
            };
            assert_eq!(fi % 2, 0);
            assert_eq!(g.device, fi / 2 % n);
            assert!((120.0..=350.0).contains(&g.w_at_full_sm), "{g:?}");
            assert!((0.25..=0.95).contains(&g.sm_duty), "{g:?}");
            assert!((0.15..=0.6).contains(&g.mem_ratio), "{g:?}");
            assert!((1u64 << 30..4u64 << 30).contains(&g.used_memory), "{g:?}");
            w.push((g.w_at_full_sm * 1000.0) as u64);
        }
        assert!(GpuFunction::of(0, 0).is_none(), "no GPUs, no GPU function");
        // The first ones, which short tests use, are far apart.
        let first: Vec<f64> = (0..4)
            .filter_map(|fi| GpuFunction::of(2 * fi, 1))
            .map(|g| g.w_at_full_sm)
            .collect();
        assert_eq!(first, [143.0, 285.148, 197.296, 339.443]);
        w.sort_unstable();
        w.dedup();
        assert_eq!(w.len(), 500);
    }

    #[test]
    fn uuids_name_the_index() {
        assert_eq!(uuid(13), "GPU-00000000-0000-0000-0000-00000000000d");
    }
}
