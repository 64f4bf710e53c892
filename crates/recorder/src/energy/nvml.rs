//! NVIDIA GPUs through NVML (`libnvidia-ml.so.1`, loaded at run time, so pws-record runs where
//! there is none): per GPU and read, the total-energy counter (into energy blocks: source nvml,
//! domain gpu, mJ), and the instantaneous power, the per-process utilisation samples since the
//! previous read and the running compute processes (into gpu blocks: FORMAT.md, kind 11).
//!
//! The GPUs are read on a thread of their own (`crate::periodic::spawn_named`), not the CPU
//! energy thread: an NVML call costs milliseconds where a RAPL read costs microseconds, and the
//! CPU counters must not wait behind it. `--gpu-interval` defaults to 100 ms because on an
//! NVIDIA H200 the total-energy counter updates about every 100 ms (median 100.05 ms, p90
//! 102 ms): reading faster only repeats values. One NVML call costs ~4 ms there, so a read of a
//! device (4 calls) costs ~16 ms of one core per 100 ms. (Through nvml-wrapper the two lists
//! are a count call then a fill call each when they are not empty: 6 calls while processes run.)
//!
//! The NVML calls sit behind [`GpuReader`], so that what is done with their answers — the
//! per-device "samples newer than the newest seen" bookkeeping, the error counting, the blocks
//! — is tested with a fake reader; [`NvmlReader`] is the real one.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use nvml_wrapper::enums::device::{SampleValue, UsedGpuMemory};
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::structs::device::FieldId;
use nvml_wrapper::sys_exports::field_id::NVML_FI_DEV_POWER_INSTANT;
use nvml_wrapper::{Device, Nvml};
use pws_trace::records::{
    EnergyBlock, EnergyDomain, EnergySample, EnergySeries, EnergySource, GpuBlock, GpuDeviceReads,
    GpuProcess, GpuProcessSample, GpuRead, SourceStats,
};

use super::Unusable;
use crate::clock::monotonic_ns;
use crate::periodic::Periodic;

/// `unit_joules` of the GPUs' energy series: NVML counts millijoules.
const MILLIJOULE: f64 = 0.001;
/// `NVML_DEVICE_MIG_ENABLE`: the current MIG mode when MIG is on.
const MIG_ENABLED: u32 = 1;

/// One GPU as found at start.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GpuDevice {
    /// NVML's index: the energy series' `index` and the gpu block's `device`.
    pub index: u32,
    pub uuid: String,
    pub name: String,
    /// MIG mode on: NVML gives no per-process utilisation then.
    pub mig: bool,
}

/// Why an NVML call gave no value. `NotSupported` (this GPU or mode does not have it) and
/// `NotFound` (no utilisation sample newer than the one asked from) are normal answers, not
/// read errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuError {
    NotSupported,
    NotFound,
    Other(String),
}

impl fmt::Display for GpuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotSupported => f.write_str("not supported"),
            Self::NotFound => f.write_str("not found"),
            Self::Other(e) => f.write_str(e),
        }
    }
}

impl From<NvmlError> for GpuError {
    fn from(e: NvmlError) -> Self {
        match e {
            NvmlError::NotSupported => Self::NotSupported,
            NvmlError::NotFound => Self::NotFound,
            e => Self::Other(e.to_string()),
        }
    }
}

/// What one read of one GPU returned, call by call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRead {
    /// `nvmlDeviceGetProcessUtilization` from the timestamp asked for.
    pub utilization: Result<Vec<GpuProcessSample>, GpuError>,
    /// `nvmlDeviceGetTotalEnergyConsumption`, mJ.
    pub energy_mj: Result<u64, GpuError>,
    /// Field `NVML_FI_DEV_POWER_INSTANT`, mW.
    pub power_mw: Result<u64, GpuError>,
    /// `nvmlDeviceGetComputeRunningProcesses`.
    pub processes: Result<Vec<GpuProcess>, GpuError>,
}

/// The NVML calls, so that the read loop can be tested without a GPU.
pub trait GpuReader: Send {
    fn devices(&self) -> &[GpuDevice];
    /// One read of `devices()[device]`: the utilisation samples NVML has newer than `since_us`
    /// (its realtime µs), then the energy counter, the power and the processes. The calls come
    /// in that order so that the energy and power reads fall around the middle of the read,
    /// which is its timestamp.
    fn read(&mut self, device: usize, since_us: u64) -> DeviceRead;
}

impl fmt::Debug for dyn GpuReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GpuReader")
            .field("devices", &self.devices())
            .finish_non_exhaustive()
    }
}

/// Opens NVML from `lib` and every GPU with an energy counter. The detail names the GPUs and
/// says once what NVML does not support on them (recorded absent or empty, not as errors).
/// Unavailable where the library, the driver or a GPU is missing; failed where NVML refuses.
pub(crate) fn detect(lib: &Path) -> Result<(Box<dyn GpuReader>, String), Unusable> {
    let mut reader = NvmlReader::open(lib)?;
    let now_us = crate::clock::pair().realtime_ns / 1000;
    let probe = probe(&mut reader, now_us);
    let mut dropped = Vec::new();
    let keep: Vec<bool> = reader
        .devices
        .iter()
        .zip(&probe.energy)
        .map(|(d, e)| match e {
            Ok(_) => true,
            Err(e) => {
                dropped.push(format!(
                    "GPU {} ({}): total energy counter {e}",
                    d.index, d.name
                ));
                false
            }
        })
        .collect();
    if !keep.contains(&true) {
        return Err(Unusable::unavailable(format!(
            "no GPU with an energy counter (Volta and later have one): {}; {}",
            dropped.join(", "),
            reader.version
        )));
    }
    reader.retain(&keep);
    let mut detail = format!(
        "{} GPU(s): {}; {}",
        reader.devices.len(),
        reader
            .devices
            .iter()
            .map(|d| format!(
                "{} {} {}{}",
                d.index,
                d.name,
                d.uuid,
                if d.mig { " (MIG mode)" } else { "" }
            ))
            .collect::<Vec<_>>()
            .join(", "),
        reader.version
    );
    let notes: Vec<String> = probe
        .notes
        .into_iter()
        .chain(reader.notes.clone())
        .collect();
    if !notes.is_empty() {
        detail += &format!("; {}", notes.join("; "));
    }
    if !dropped.is_empty() {
        detail += &format!("; left out: {}", dropped.join(", "));
    }
    Ok((Box::new(reader), detail))
}

/// What a first read of every device says: each one's energy counter, and a note for each call
/// NVML does not support on it.
#[derive(Debug)]
pub(crate) struct Probe {
    pub energy: Vec<Result<u64, GpuError>>,
    pub notes: Vec<String>,
}

/// One read of every device at start (`now_us`: its utilisation history is not wanted), to learn
/// what each supports before the trace's source list is written.
pub(crate) fn probe(reader: &mut dyn GpuReader, now_us: u64) -> Probe {
    let mut out = Probe {
        energy: Vec::new(),
        notes: Vec::new(),
    };
    for i in 0..reader.devices().len() {
        let r = reader.read(i, now_us);
        let d = &reader.devices()[i];
        let mut unsupported = Vec::new();
        if r.power_mw == Err(GpuError::NotSupported) {
            unsupported.push("instantaneous power (recorded absent)");
        }
        if r.utilization == Err(GpuError::NotSupported) {
            unsupported.push(if d.mig {
                "per-process utilisation, as in any MIG mode (recorded empty)"
            } else {
                "per-process utilisation (recorded empty)"
            });
        }
        if r.processes == Err(GpuError::NotSupported) {
            unsupported.push("running processes (recorded empty)");
        }
        if !unsupported.is_empty() {
            out.notes.push(format!(
                "GPU {}: NVML does not support {}",
                d.index,
                unsupported.join(", ")
            ));
        }
        out.energy.push(r.energy_mj);
    }
    out
}

/// The real reader: NVML's devices.
pub struct NvmlReader {
    handles: Vec<Device<'static>>,
    devices: Vec<GpuDevice>,
    /// Driver and NVML versions, for the detail.
    version: String,
    /// What opening found unsupported (MIG mode queries), for the detail.
    notes: Vec<String>,
}

impl fmt::Debug for NvmlReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NvmlReader")
            .field("devices", &self.devices)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl NvmlReader {
    /// Loads `lib`, initialises NVML and opens every device it lists.
    pub fn open(lib: &Path) -> Result<Self, Unusable> {
        let nvml = Nvml::builder()
            .lib_path(lib.as_os_str())
            .init()
            .map_err(|e| init_error(lib, e))?;
        // The device handles borrow the library. The recorder opens it once per process and
        // reads it until the end, so it is kept for the process's life (exit releases it)
        // rather than tied to a self-referential struct.
        let nvml: &'static Nvml = Box::leak(Box::new(nvml));
        let version = format!(
            "driver {}, NVML {}",
            nvml.sys_driver_version()
                .unwrap_or_else(|e| format!("unknown ({e})")),
            nvml.sys_nvml_version()
                .unwrap_or_else(|e| format!("unknown ({e})"))
        );
        let count = nvml
            .device_count()
            .map_err(|e| Unusable::failed(format!("nvmlDeviceGetCount: {e} ({version})")))?;
        if count == 0 {
            return Err(Unusable::unavailable(format!(
                "no GPU: NVML reports no device ({version})"
            )));
        }
        let mut r = Self {
            handles: Vec::new(),
            devices: Vec::new(),
            version,
            notes: Vec::new(),
        };
        let mut unopened = Vec::new();
        for index in 0..count {
            let d = match nvml.device_by_index(index) {
                Ok(d) => d,
                Err(e) => {
                    unopened.push(format!("GPU {index}: {e}"));
                    continue;
                }
            };
            let mig = match d.mig_mode() {
                Ok(m) => m.current == MIG_ENABLED,
                Err(NvmlError::NotSupported) => false,
                Err(e) => {
                    r.notes.push(format!("GPU {index}: MIG mode unknown ({e})"));
                    false
                }
            };
            r.devices.push(GpuDevice {
                index,
                uuid: d.uuid().unwrap_or_default(),
                name: d.name().unwrap_or_default(),
                mig,
            });
            r.handles.push(d);
        }
        if r.devices.is_empty() {
            return Err(Unusable::failed(format!(
                "NVML lists {count} GPU(s) but opens none: {} ({})",
                unopened.join(", "),
                r.version
            )));
        }
        r.notes
            .extend(unopened.into_iter().map(|u| format!("cannot open {u}")));
        Ok(r)
    }

    /// Keeps the devices whose `keep` entry is true.
    fn retain(&mut self, keep: &[bool]) {
        super::retain_masked(&mut self.handles, keep);
        super::retain_masked(&mut self.devices, keep);
    }
}

/// Why NVML could not be initialised, in the trace's terms.
fn init_error(lib: &Path, e: NvmlError) -> Unusable {
    let lib = lib.display();
    match e {
        NvmlError::LibloadingError(e) => Unusable::unavailable(format!(
            "{lib} not found (no NVIDIA driver installed here): {e}"
        )),
        NvmlError::DriverNotLoaded => Unusable::unavailable(format!(
            "no GPU: {lib} loads but the NVIDIA driver is not running (nvmlInit: {e})"
        )),
        NvmlError::FailedToLoadSymbol(s) => Unusable::failed(format!(
            "{lib} lacks {s}: a driver too old for NVML's v2 API"
        )),
        NvmlError::NoPermission => Unusable::failed(format!(
            "nvmlInit: {e}: the NVIDIA device files (/dev/nvidia*) refuse this user"
        )),
        e => Unusable::failed(format!("nvmlInit from {lib}: {e}")),
    }
}

impl GpuReader for NvmlReader {
    fn devices(&self) -> &[GpuDevice] {
        &self.devices
    }

    fn read(&mut self, device: usize, since_us: u64) -> DeviceRead {
        let Some(d) = self.handles.get(device) else {
            let e = GpuError::Other(format!("no device {device}"));
            return DeviceRead {
                utilization: Err(e.clone()),
                energy_mj: Err(e.clone()),
                power_mw: Err(e.clone()),
                processes: Err(e),
            };
        };
        let utilization = utilization(d, since_us);
        let energy_mj = d.total_energy_consumption().map_err(GpuError::from);
        let power_mw = power(d);
        let processes = d
            .running_compute_processes()
            .map(|ps| {
                ps.into_iter()
                    .map(|p| GpuProcess {
                        pid: p.pid,
                        used_memory: match p.used_gpu_memory {
                            UsedGpuMemory::Used(b) => Some(b),
                            UsedGpuMemory::Unavailable => None,
                        },
                    })
                    .collect()
            })
            .map_err(GpuError::from);
        DeviceRead {
            utilization,
            energy_mj,
            power_mw,
            processes,
        }
    }
}

/// The per-process samples newer than `since_us`. NVML counts them, then fills them in: a sample
/// arriving between the two calls makes the second one too small, and it is asked again once.
fn utilization(d: &Device<'_>, since_us: u64) -> Result<Vec<GpuProcessSample>, GpuError> {
    let got = match d.process_utilization_stats(since_us) {
        Err(NvmlError::InsufficientSize(_)) => d.process_utilization_stats(since_us),
        r => r,
    };
    let samples = got.map_err(GpuError::from)?;
    let pct = |v: u32| u8::try_from(v).unwrap_or(u8::MAX);
    Ok(samples
        .into_iter()
        .map(|s| GpuProcessSample {
            pid: s.pid,
            timestamp_us: s.timestamp,
            sm: pct(s.sm_util),
            mem: pct(s.mem_util),
            enc: pct(s.enc_util),
            dec: pct(s.dec_util),
        })
        .collect())
}

/// Instantaneous power, mW (`NVML_FI_DEV_POWER_INSTANT`; NVML's plain power reading is a
/// one-second average on Ampere and later).
fn power(d: &Device<'_>) -> Result<u64, GpuError> {
    let mut values = d.field_values_for(&[FieldId(NVML_FI_DEV_POWER_INSTANT)])?;
    let sample = match values.pop() {
        Some(s) => s?,
        None => return Err(GpuError::Other("no field value returned".into())),
    };
    match sample.value? {
        SampleValue::U32(v) => Ok(v.into()),
        SampleValue::U64(v) => Ok(v),
        SampleValue::I64(v) => {
            u64::try_from(v).map_err(|_| GpuError::Other(format!("negative power {v} mW")))
        }
        SampleValue::F64(v) if v.is_finite() && v >= 0.0 => Ok(v.round() as u64),
        SampleValue::F64(v) => Err(GpuError::Other(format!("power {v} mW"))),
    }
}

/// The GPUs' blocks of one send: their energy series and their reads.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GpuBlocks {
    pub energy: Option<EnergyBlock>,
    pub gpu: Option<GpuBlock>,
}

/// The GPUs' reads for their sampling thread. A call that fails is counted (one error per
/// device read, however many of its calls failed; the last message kept) and sampling goes on:
/// a GPU that errors does not stop the others. A read is kept whenever one of its calls
/// answered; what failed is left absent or empty in it.
pub struct GpuReads {
    reader: Box<dyn GpuReader>,
    interval: Duration,
    /// Per device: the newest utilisation timestamp written (NVML's µs), asked from next time.
    newest_us: Vec<u64>,
    series: Vec<EnergySeries>,
    reads: Vec<GpuDeviceReads>,
    stats: SourceStats,
}

impl fmt::Debug for GpuReads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GpuReads")
            .field("reader", &self.reader)
            .field("interval", &self.interval)
            .field("newest_us", &self.newest_us)
            .finish_non_exhaustive()
    }
}

impl GpuReads {
    /// `start_us`: when recording started, on NVML's clock (realtime µs). Samples NVML kept
    /// from before it are not the recording's and are not written.
    pub fn new(reader: Box<dyn GpuReader>, interval: Duration, start_us: u64) -> Self {
        let devices = reader.devices();
        let series = devices
            .iter()
            .map(|d| EnergySeries {
                source: EnergySource::Nvml,
                domain: EnergyDomain::Gpu,
                index: d.index,
                name: format!("nvml:{} total energy", d.index),
                unit_joules: MILLIJOULE,
                wrap: 0,
                samples: Vec::new(),
            })
            .collect();
        let reads = devices
            .iter()
            .map(|d| GpuDeviceReads {
                device: d.index,
                uuid: d.uuid.clone(),
                name: d.name.clone(),
                mig: d.mig,
                reads: Vec::new(),
            })
            .collect();
        Self {
            newest_us: vec![start_us; devices.len()],
            reader,
            interval,
            series,
            reads,
            stats: SourceStats {
                name: format!("energy:{}", EnergySource::Nvml),
                ..SourceStats::default()
            },
        }
    }

    fn read_device(&mut self, i: usize) {
        let t0 = monotonic_ns();
        let r = self.reader.read(i, self.newest_us[i]);
        let t1 = monotonic_ns();
        let ts_ns = t0 + t1.saturating_sub(t0) / 2;
        self.stats.reads += 1;
        let mut failed: Vec<String> = Vec::new();
        let mut answered = false;
        match r.energy_mj {
            Ok(raw) => {
                self.series[i].samples.push(EnergySample { ts_ns, raw });
                answered = true;
            }
            Err(e) => failed.push(format!("total energy: {e}")),
        }
        let power_mw = match r.power_mw {
            Ok(mw) => {
                answered = true;
                Some(mw)
            }
            Err(e) => normal_or(e, "instantaneous power", &mut failed, &mut answered),
        };
        let utilization = match r.utilization {
            Ok(mut samples) => {
                answered = true;
                // NVML's "since" is a hint: what it gives at or before the newest written was
                // written already.
                let newest = self.newest_us[i];
                samples.retain(|s| s.timestamp_us > newest);
                if let Some(m) = samples.iter().map(|s| s.timestamp_us).max() {
                    self.newest_us[i] = m;
                }
                samples
            }
            Err(e) => {
                normal_or(e, "process utilisation", &mut failed, &mut answered).unwrap_or_default()
            }
        };
        let processes = match r.processes {
            Ok(p) => {
                answered = true;
                p
            }
            Err(e) => {
                normal_or(e, "running processes", &mut failed, &mut answered).unwrap_or_default()
            }
        };
        if !failed.is_empty() {
            self.stats.errors += 1;
            self.stats.last_error = format!("GPU {}: {}", self.reads[i].device, failed.join("; "));
        }
        if answered {
            self.reads[i].reads.push(GpuRead {
                ts_ns,
                power_mw,
                utilization,
                processes,
            });
        }
    }
}

/// None for NVML's normal "not supported" and "not found" answers (which count as answers);
/// an error is noted in `failed`.
fn normal_or<T>(
    e: GpuError,
    what: &str,
    failed: &mut Vec<String>,
    answered: &mut bool,
) -> Option<T> {
    match e {
        GpuError::NotSupported | GpuError::NotFound => *answered = true,
        GpuError::Other(e) => failed.push(format!("{what}: {e}")),
    }
    None
}

/// Blocks go into any channel whose message is made from GpuBlocks (the writer's).
impl<T: From<GpuBlocks>> Periodic<T> for GpuReads {
    fn interval(&self) -> Duration {
        self.interval
    }

    /// One read of every GPU, one after the other.
    fn read(&mut self) {
        for i in 0..self.series.len() {
            self.read_device(i);
        }
    }

    fn take(&mut self) -> Option<T> {
        let series: Vec<EnergySeries> = self
            .series
            .iter_mut()
            .filter(|s| !s.samples.is_empty())
            .map(|s| EnergySeries {
                name: s.name.clone(),
                samples: std::mem::take(&mut s.samples),
                ..*s
            })
            .collect();
        let devices: Vec<GpuDeviceReads> = self
            .reads
            .iter_mut()
            .filter(|d| !d.reads.is_empty())
            .map(|d| GpuDeviceReads {
                uuid: d.uuid.clone(),
                name: d.name.clone(),
                reads: std::mem::take(&mut d.reads),
                ..*d
            })
            .collect();
        let blocks = GpuBlocks {
            energy: (!series.is_empty()).then_some(EnergyBlock { series }),
            gpu: (!devices.is_empty()).then_some(GpuBlock { devices }),
        };
        (blocks != GpuBlocks::default()).then(|| blocks.into())
    }

    fn stats(&self) -> SourceStats {
        self.stats.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pws_trace::Payload;
    use std::sync::{mpsc, Arc, Mutex};

    type Script = Box<dyn FnMut(usize, u64, u64) -> DeviceRead + Send>;

    /// A GPU reader whose answers a closure gives, from (device, since_us, that device's read
    /// number); it notes every call and the thread it came on.
    struct Fake {
        devices: Vec<GpuDevice>,
        script: Script,
        n: Vec<u64>,
        calls: Arc<Mutex<Vec<(usize, u64, String)>>>,
    }

    impl GpuReader for Fake {
        fn devices(&self) -> &[GpuDevice] {
            &self.devices
        }
        fn read(&mut self, device: usize, since_us: u64) -> DeviceRead {
            let thread = std::thread::current().name().unwrap_or("").to_owned();
            self.calls.lock().unwrap().push((device, since_us, thread));
            let n = self.n[device];
            self.n[device] += 1;
            (self.script)(device, since_us, n)
        }
    }

    type Calls = Arc<Mutex<Vec<(usize, u64, String)>>>;

    fn fake(indices: &[u32], script: Script) -> (Box<dyn GpuReader>, Calls) {
        let calls = Calls::default();
        let devices: Vec<GpuDevice> = indices
            .iter()
            .map(|&index| GpuDevice {
                index,
                uuid: format!("GPU-{index:04}"),
                name: "NVIDIA H200".into(),
                mig: false,
            })
            .collect();
        let f = Fake {
            n: vec![0; devices.len()],
            devices,
            script,
            calls: Arc::clone(&calls),
        };
        (Box::new(f), calls)
    }

    fn ok(energy: u64, power: u64, util: Vec<GpuProcessSample>) -> DeviceRead {
        DeviceRead {
            utilization: Ok(util),
            energy_mj: Ok(energy),
            power_mw: Ok(power),
            processes: Ok(vec![GpuProcess {
                pid: 42,
                used_memory: Some(1 << 30),
            }]),
        }
    }

    fn sample(pid: u32, timestamp_us: u64) -> GpuProcessSample {
        GpuProcessSample {
            pid,
            timestamp_us,
            sm: (timestamp_us % 101) as u8,
            mem: 3,
            enc: 0,
            dec: 0,
        }
    }

    /// `n` reads of every device, then what `take` hands over.
    fn read_n(g: &mut GpuReads, n: usize) -> GpuBlocks {
        for _ in 0..n {
            Periodic::<GpuBlocks>::read(g);
        }
        Periodic::<GpuBlocks>::take(g).unwrap_or_default()
    }

    fn stats(g: &GpuReads) -> SourceStats {
        Periodic::<GpuBlocks>::stats(g)
    }

    fn util_ts(b: &GpuBlock, device: u32) -> Vec<u64> {
        b.devices
            .iter()
            .filter(|d| d.device == device)
            .flat_map(|d| d.reads.iter().flat_map(|r| r.utilization.iter()))
            .map(|s| s.timestamp_us)
            .collect()
    }

    /// NVML keeps a history; each read asks from the newest sample written for that device,
    /// and every sample is written once, whether NVML's "since" is inclusive (device 0 here
    /// repeats the newest it was asked from) or exclusive with NotFound when nothing is newer
    /// (device 1). What NVML kept from before the recording is not written.
    #[test]
    fn samples_are_written_once_from_the_newest_seen_per_device() {
        const START: u64 = 10_000;
        // Device 0: two new samples per read (pids 7 and 8, 10 µs apart), inclusive.
        let history0: Vec<GpuProcessSample> = [sample(7, 9_000), sample(8, 9_990)]
            .into_iter()
            .chain((0..20u64).map(|k| sample(7 + (k % 2) as u32, START + 100 + 10 * k)))
            .collect();
        // Device 1: one new sample every other read, exclusive.
        let history1: Vec<GpuProcessSample> = (0..5u64)
            .map(|k| sample(99, START + 1000 * (k + 1)))
            .collect();
        let script: Script = Box::new(move |dev, since, n| {
            let util = if dev == 0 {
                // Read n holds the old two and 2(n+1) new ones.
                let held = &history0[..(2 + 2 * (n as usize + 1)).min(history0.len())];
                Ok(held
                    .iter()
                    .filter(|s| s.timestamp_us >= since)
                    .copied()
                    .collect())
            } else {
                let held = &history1[..(n as usize / 2 + 1).min(history1.len())];
                let newer: Vec<_> = held
                    .iter()
                    .filter(|s| s.timestamp_us > since)
                    .copied()
                    .collect();
                if newer.is_empty() {
                    Err(GpuError::NotFound)
                } else {
                    Ok(newer)
                }
            };
            DeviceRead {
                utilization: util,
                ..ok(1000 * n, 70_000, vec![])
            }
        });
        let (reader, calls) = fake(&[0, 1], script);
        let mut g = GpuReads::new(reader, Duration::from_millis(100), START);
        let b = read_n(&mut g, 6);
        let gpu = b.gpu.unwrap();
        let want0: Vec<u64> = (0..12u64).map(|k| START + 100 + 10 * k).collect();
        assert_eq!(util_ts(&gpu, 0), want0);
        let want1: Vec<u64> = (1..=3u64).map(|k| START + 1000 * k).collect();
        assert_eq!(util_ts(&gpu, 1), want1);
        // Each device asked from its own newest: the start first, then what it had written.
        let since = |dev: usize| -> Vec<u64> {
            let calls = calls.lock().unwrap();
            calls.iter().filter(|c| c.0 == dev).map(|c| c.1).collect()
        };
        let (since0, since1) = (since(0), since(1));
        assert_eq!(
            since0,
            [
                START,
                START + 110,
                START + 130,
                START + 150,
                START + 170,
                START + 190
            ]
        );
        assert_eq!(
            since1,
            [
                START,
                START + 1000,
                START + 1000,
                START + 2000,
                START + 2000,
                START + 3000
            ]
        );
        // NotFound (nothing newer) is an answer: no error, and the read is kept, empty.
        let s = stats(&g);
        assert_eq!((s.reads, s.errors), (12, 0), "{s:?}");
        assert_eq!(s.name, "energy:nvml");
        assert_eq!(gpu.devices[1].reads.len(), 6);
        assert!(gpu.devices[1].reads[1].utilization.is_empty());

        // The next block goes on from there: nothing repeated.
        let gpu = read_n(&mut g, 2).gpu.unwrap();
        assert_eq!(
            util_ts(&gpu, 0),
            [START + 220, START + 230, START + 240, START + 250]
        );
        assert_eq!(util_ts(&gpu, 1), [START + 4000]);
    }

    /// Calls NVML does not support on a GPU are recorded absent or empty, not counted as errors.
    #[test]
    fn not_supported_is_absent_not_an_error() {
        let script: Script = Box::new(|_, _, n| DeviceRead {
            utilization: Err(GpuError::NotSupported),
            energy_mj: Ok(5_000 + n),
            power_mw: Err(GpuError::NotSupported),
            processes: Err(GpuError::NotSupported),
        });
        let (reader, _) = fake(&[0], script);
        let mut g = GpuReads::new(reader, Duration::from_millis(100), 0);
        let b = read_n(&mut g, 3);
        let s = stats(&g);
        assert_eq!((s.reads, s.errors), (3, 0), "{s:?}");
        assert!(s.last_error.is_empty());
        let reads = &b.gpu.unwrap().devices[0].reads;
        assert_eq!(reads.len(), 3);
        for r in reads {
            assert_eq!(r.power_mw, None);
            assert!(r.utilization.is_empty() && r.processes.is_empty());
        }
        let e = b.energy.unwrap();
        let raws: Vec<u64> = e.series[0].samples.iter().map(|x| x.raw).collect();
        assert_eq!(raws, [5_000, 5_001, 5_002]);
    }

    /// A GPU whose calls fail is counted (one error per failed device read, the last message
    /// kept) and the other GPUs are read as before. A read where some calls answered is kept.
    #[test]
    fn a_device_that_errors_does_not_stop_the_others() {
        let lost = || GpuError::Other("GPU is lost".into());
        let script: Script = Box::new(move |dev, _, n| match (dev, n % 3) {
            // Device 0: every call fails on reads 0, 3, …; only the processes on reads 1, 4, …
            (0, 0) => DeviceRead {
                utilization: Err(lost()),
                energy_mj: Err(lost()),
                power_mw: Err(lost()),
                processes: Err(lost()),
            },
            (0, 1) => DeviceRead {
                processes: Err(lost()),
                ..ok(100 + n, 1, vec![])
            },
            _ => ok(100 + n, 2, vec![]),
        });
        let (reader, _) = fake(&[0, 1], script);
        let mut g = GpuReads::new(reader, Duration::from_millis(100), 0);
        let b = read_n(&mut g, 6);
        let s = stats(&g);
        assert_eq!((s.reads, s.errors), (12, 4), "{s:?}");
        assert_eq!(s.last_error, "GPU 0: running processes: GPU is lost");
        let gpu = b.gpu.unwrap();
        assert_eq!(gpu.devices[0].reads.len(), 4);
        assert_eq!(gpu.devices[1].reads.len(), 6);
        // The partly failed reads are kept, their processes empty; the others list theirs.
        let procs: Vec<usize> = gpu.devices[0]
            .reads
            .iter()
            .map(|r| r.processes.len())
            .collect();
        assert_eq!(procs, [0, 1, 0, 1]);
        let e = b.energy.unwrap();
        let raws = |i: usize| -> Vec<u64> { e.series[i].samples.iter().map(|x| x.raw).collect() };
        assert_eq!(raws(0), [101, 102, 104, 105]);
        assert_eq!(raws(1), [100, 101, 102, 103, 104, 105]);

        // A GPU that never answers sends nothing of its own; the blocks hold the others.
        let script: Script = Box::new(move |dev, _, n| match dev {
            0 => DeviceRead {
                utilization: Err(lost()),
                energy_mj: Err(lost()),
                power_mw: Err(lost()),
                processes: Err(lost()),
            },
            _ => ok(n, 2, vec![]),
        });
        let (reader, _) = fake(&[0, 1], script);
        let mut g = GpuReads::new(reader, Duration::from_millis(100), 0);
        let b = read_n(&mut g, 2);
        assert_eq!(stats(&g).errors, 2);
        let gpu = b.gpu.unwrap();
        assert_eq!(gpu.devices.len(), 1);
        assert_eq!(gpu.devices[0].device, 1);
        assert_eq!(b.energy.unwrap().series.len(), 1);
    }

    /// The blocks are what the trace format writes and reads back: energy series of source
    /// nvml, domain gpu, in mJ, indexed by the GPU's NVML index, at the reads' timestamps.
    #[test]
    fn blocks_round_trip_through_the_trace_format() {
        let script: Script = Box::new(|dev, _, n| {
            ok(
                1_000_000 * (dev as u64 + 1) + 97 * n,
                80_000 + n,
                vec![sample(4242, 1_800_000_000_000_000 + n)],
            )
        });
        let (reader, _) = fake(&[0, 3], script);
        let mut g = GpuReads::new(reader, Duration::from_millis(100), 0);
        let before = monotonic_ns();
        let b = read_n(&mut g, 3);
        let after = monotonic_ns();
        let (energy, gpu) = (b.energy.unwrap(), b.gpu.unwrap());

        let mut bytes = Vec::new();
        energy.encode(&mut bytes);
        let energy_back = EnergyBlock::decode(&bytes).unwrap();
        assert_eq!(energy_back, energy);
        bytes.clear();
        gpu.encode(&mut bytes);
        let gpu_back = GpuBlock::decode(&bytes).unwrap();
        assert_eq!(gpu_back, gpu);

        let s = &energy_back.series;
        assert_eq!(s.len(), 2);
        for (series, (index, base)) in s.iter().zip([(0u32, 1_000_000u64), (3, 2_000_000)]) {
            assert_eq!(series.source, EnergySource::Nvml);
            assert_eq!(series.domain, EnergyDomain::Gpu);
            assert_eq!(series.index, index);
            assert_eq!(series.name, format!("nvml:{index} total energy"));
            assert_eq!((series.unit_joules, series.wrap), (0.001, 0));
            let raws: Vec<u64> = series.samples.iter().map(|x| x.raw).collect();
            assert_eq!(raws, [base, base + 97, base + 194]);
        }
        let d = &gpu_back.devices;
        assert_eq!(d.len(), 2);
        assert_eq!((d[1].device, d[1].uuid.as_str()), (3, "GPU-0003"));
        assert_eq!(d[1].name, "NVIDIA H200");
        for (dev, series) in d.iter().zip(s) {
            assert_eq!(dev.reads.len(), 3);
            for (k, (r, e)) in dev.reads.iter().zip(&series.samples).enumerate() {
                // The energy sample and the read share their timestamp, on the trace clock.
                assert_eq!(r.ts_ns, e.ts_ns);
                assert!(r.ts_ns >= before && r.ts_ns <= after);
                assert_eq!(r.power_mw, Some(80_000 + k as u64));
                assert_eq!(
                    r.utilization,
                    [sample(4242, 1_800_000_000_000_000 + k as u64)]
                );
                assert_eq!(r.processes[0].used_memory, Some(1 << 30));
            }
            assert!(dev.reads.windows(2).all(|w| w[1].ts_ns > w[0].ts_ns));
        }
        // Nothing read since: nothing to send.
        assert!(Periodic::<GpuBlocks>::take(&mut g).is_none());
    }

    /// On a thread of its own (`pws-gpu`) at its interval, a block about every second, a last
    /// read at stop, and every read accounted.
    #[test]
    fn reads_on_its_own_thread_and_stops_cleanly() {
        let script: Script = Box::new(|_, _, n| ok(n, 1, vec![]));
        let (reader, calls) = fake(&[0, 1], script);
        let (tx, rx) = mpsc::channel::<GpuBlocks>();
        let reads: Box<dyn Periodic<GpuBlocks>> =
            Box::new(GpuReads::new(reader, Duration::from_millis(20), 0));
        let sampler = crate::periodic::spawn_named("pws-gpu", vec![reads], tx).unwrap();
        std::thread::sleep(Duration::from_millis(1300));
        let t = std::time::Instant::now();
        let st = sampler.finish().unwrap().remove(0);
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
        let blocks: Vec<GpuBlocks> = rx.iter().collect();
        assert_eq!(blocks.len(), 2, "one after a second, one at stop");
        let raws: Vec<u64> = blocks
            .iter()
            .flat_map(|b| {
                b.energy.as_ref().unwrap().series[0]
                    .samples
                    .iter()
                    .map(|x| x.raw)
            })
            .collect();
        // Every read once, in order, across the blocks.
        assert_eq!(raws, (0..raws.len() as u64).collect::<Vec<_>>());
        assert!(
            (30..=67).contains(&raws.len()),
            "{} reads at 20 ms in 1.3 s",
            raws.len()
        );
        assert_eq!(st.reads, 2 * raws.len() as u64);
        assert_eq!(st.errors, 0);
        let calls = calls.lock().unwrap();
        assert!(calls.iter().all(|c| c.2 == "pws-gpu"), "{:?}", &calls[..2]);
    }

    /// The first read at start says once what NVML does not support on each GPU, and which
    /// GPUs have no energy counter.
    #[test]
    fn the_probe_notes_what_is_not_supported() {
        let script: Script = Box::new(|dev, _, _| match dev {
            0 => DeviceRead {
                power_mw: Err(GpuError::NotSupported),
                ..ok(1, 1, vec![])
            },
            1 => DeviceRead {
                utilization: Err(GpuError::NotSupported),
                ..ok(1, 1, vec![])
            },
            _ => DeviceRead {
                energy_mj: Err(GpuError::NotSupported),
                ..ok(1, 1, vec![])
            },
        });
        let (mut reader, _) = fake(&[0, 1, 2], script);
        let p = probe(reader.as_mut(), 0);
        assert_eq!(p.energy, [Ok(1), Ok(1), Err(GpuError::NotSupported)]);
        assert_eq!(
            p.notes,
            [
                "GPU 0: NVML does not support instantaneous power (recorded absent)",
                "GPU 1: NVML does not support per-process utilisation (recorded empty)",
            ]
        );
    }

    /// Without the library, NVML is unavailable and says which file it looked for.
    #[test]
    fn a_missing_library_is_unavailable_and_named() {
        let u = detect(Path::new("/nonexistent/libnvidia-ml.so.1")).unwrap_err();
        assert_eq!(u.status, pws_trace::records::SourceStatus::Unavailable);
        assert!(
            u.reason.starts_with(
                "/nonexistent/libnvidia-ml.so.1 not found (no NVIDIA driver installed here): "
            ),
            "{u:?}"
        );
    }

    #[test]
    fn nvml_errors_map_to_answers_and_errors() {
        assert_eq!(
            GpuError::from(NvmlError::NotSupported),
            GpuError::NotSupported
        );
        assert_eq!(GpuError::from(NvmlError::NotFound), GpuError::NotFound);
        assert!(matches!(
            GpuError::from(NvmlError::GpuLost),
            GpuError::Other(_)
        ));
    }
}
