//! The writer thread: everything that reaches the trace goes through here, so compression
//! and file writes never hold up the thread copying the perf rings.

use std::collections::BTreeMap;
use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;

use pws_trace::records::{
    Activations, CgroupEvents, ClockPair, ClockSync, ContainerEvents, CpuStatBlock, CpuStats,
    EnergyBlock, SourceStats, Statistics,
};
use pws_trace::TraceWriter;

use crate::energy::GpuBlocks;

/// A perf-data block is written when a CPU has gathered this much, or at the next tick.
const PERF_BLOCK_BYTES: usize = 1 << 20;

#[derive(Debug)]
pub enum Msg {
    /// Bytes copied from a CPU's ring, starting at `ring_offset`.
    Perf {
        cpu: u32,
        ring_offset: u64,
        bytes: Vec<u8>,
    },
    /// Once a second: a clock pair; also writes pending perf data and statistics.
    Tick(ClockPair),
    /// Several messages in one, handled in order: a source sends what it has at once, so the
    /// writer wakes once.
    Batch(Vec<Msg>),
    /// Source statistics to report (energy, activation feeds), cumulative.
    SourceStats(SourceStats),
    /// Energy samples, about once a second from the energy thread.
    Energy(EnergyBlock),
    /// Per-CPU /proc/stat times, about once a second from the cpu-stat thread.
    CpuStat(CpuStatBlock),
    /// The GPUs' energy series and reads, about once a second from the NVML thread.
    Gpu(GpuBlocks),
    /// Cgroup events found by a source other than the perf rings (the v1 freezer watcher).
    Cgroups(CgroupEvents),
    /// Activation records from the activation sources.
    Activations(Activations),
    /// Container operations and activation → container links (invoker logs).
    Containers(ContainerEvents),
}

impl From<Activations> for Msg {
    fn from(a: Activations) -> Self {
        Msg::Activations(a)
    }
}

impl From<ContainerEvents> for Msg {
    fn from(c: ContainerEvents) -> Self {
        Msg::Containers(c)
    }
}

impl From<CgroupEvents> for Msg {
    fn from(c: CgroupEvents) -> Self {
        Msg::Cgroups(c)
    }
}

impl From<CpuStatBlock> for Msg {
    fn from(b: CpuStatBlock) -> Self {
        Msg::CpuStat(b)
    }
}

impl From<GpuBlocks> for Msg {
    fn from(b: GpuBlocks) -> Self {
        Msg::Gpu(b)
    }
}

impl From<EnergyBlock> for Msg {
    fn from(b: EnergyBlock) -> Self {
        Msg::Energy(b)
    }
}

/// Counters shared with the status line.
#[derive(Debug, Default)]
pub struct Live {
    pub bytes_written: AtomicU64,
    pub samples: AtomicU64,
    pub lost_records: AtomicU64,
}

#[derive(Default)]
struct CpuBatch {
    ring_offset: u64,
    bytes: Vec<u8>,
    /// Whether `bytes` hold a tracepoint sample or a cgroup record (the trace's perf index
    /// tells the analyzer which blocks it must read for the side band).
    side_band: bool,
    stats: CpuStats,
}

impl CpuBatch {
    /// Writes the gathered bytes as one perf-data block and starts the batch afresh (its
    /// statistics run on).
    fn write(&mut self, cpu: u32, trace: &mut TraceWriter<File>) -> pws_trace::Result<()> {
        let data = std::mem::take(&mut self.bytes);
        let side_band = std::mem::take(&mut self.side_band);
        trace
            .write_perf_data_checked(cpu, 0, self.ring_offset, &[&data], side_band)
            .map(drop)
    }
}

pub struct Writer {
    pub trace: TraceWriter<File>,
    pub live: Arc<Live>,
    batches: BTreeMap<u32, CpuBatch>,
    sources: BTreeMap<String, SourceStats>,
    pub wakeups: Arc<Vec<(u32, AtomicU64)>>,
    last_ts: u64,
    /// The sample ids of the tracepoint events, sorted.
    side_band_ids: Vec<u64>,
}

impl Writer {
    /// `side_band_ids`: the sample ids of the tracepoint events (their samples are side band).
    pub fn new(
        trace: TraceWriter<File>,
        live: Arc<Live>,
        wakeups: Arc<Vec<(u32, AtomicU64)>>,
        mut side_band_ids: Vec<u64>,
    ) -> Self {
        side_band_ids.sort_unstable();
        Self {
            trace,
            live,
            batches: BTreeMap::new(),
            sources: BTreeMap::new(),
            wakeups,
            last_ts: 0,
            side_band_ids,
        }
    }

    /// Runs until every sender is gone (the main thread's and the sources' clones), then
    /// returns itself for the final blocks. It blocks on the channel: it wakes only when there
    /// is something to write.
    pub fn run(mut self, rx: Receiver<Msg>) -> pws_trace::Result<Self> {
        for m in rx.iter() {
            self.handle(m)?;
            self.live
                .bytes_written
                .store(self.trace.bytes_written(), Ordering::Relaxed);
        }
        self.flush_perf()?;
        self.write_statistics()?;
        Ok(self)
    }

    fn handle(&mut self, m: Msg) -> pws_trace::Result<()> {
        match m {
            Msg::Batch(ms) => {
                for m in ms {
                    self.handle(m)?;
                }
            }
            Msg::Perf {
                cpu,
                ring_offset,
                bytes,
            } => {
                let b = self.batches.entry(cpu).or_default();
                b.stats.cpu = cpu;
                b.stats.bytes += bytes.len() as u64;
                b.side_band |= count_records(&bytes, &mut b.stats, &self.live, &self.side_band_ids);
                if b.bytes.is_empty() {
                    // Most drains start a batch: keep their buffer rather than copy it.
                    b.ring_offset = ring_offset;
                    b.bytes = bytes;
                } else {
                    b.bytes.extend_from_slice(&bytes);
                }
                if b.bytes.len() >= PERF_BLOCK_BYTES {
                    b.write(cpu, &mut self.trace)?;
                }
            }
            Msg::Tick(pair) => {
                self.last_ts = pair.monotonic_ns;
                self.flush_perf()?;
                self.trace.write(&ClockSync { pairs: vec![pair] })?;
                self.write_statistics()?;
                self.trace.flush()?;
            }
            Msg::SourceStats(s) => {
                self.sources.insert(s.name.clone(), s);
            }
            Msg::Energy(b) => {
                self.trace.write(&b)?;
            }
            Msg::CpuStat(b) => {
                self.trace.write(&b)?;
            }
            Msg::Gpu(b) => {
                if let Some(e) = b.energy {
                    self.trace.write(&e)?;
                }
                if let Some(g) = b.gpu {
                    self.trace.write(&g)?;
                }
            }
            Msg::Cgroups(c) => {
                self.trace.write(&c)?;
            }
            Msg::Activations(a) => {
                self.trace.write(&a)?;
            }
            Msg::Containers(c) => {
                self.trace.write(&c)?;
            }
        }
        Ok(())
    }

    fn flush_perf(&mut self) -> pws_trace::Result<()> {
        for (cpu, b) in self.batches.iter_mut() {
            if !b.bytes.is_empty() {
                b.write(*cpu, &mut self.trace)?;
            }
        }
        Ok(())
    }

    pub fn statistics(&self, ts_ns: u64) -> Statistics {
        let mut cpus: BTreeMap<u32, CpuStats> =
            self.batches.iter().map(|(c, b)| (*c, b.stats)).collect();
        for (cpu, w) in self.wakeups.iter() {
            let s = cpus.entry(*cpu).or_insert(CpuStats {
                cpu: *cpu,
                ..CpuStats::default()
            });
            s.wakeups = w.load(Ordering::Relaxed);
        }
        Statistics {
            ts_ns,
            cpus: cpus.into_values().collect(),
            sources: self.sources.values().cloned().collect(),
        }
    }

    pub fn write_statistics(&mut self) -> pws_trace::Result<()> {
        let st = self.statistics(self.last_ts);
        self.trace.write(&st)?;
        Ok(())
    }
}

use pws_trace::perf::{
    PERF_RECORD_CGROUP, PERF_RECORD_LOST, PERF_RECORD_LOST_SAMPLES, PERF_RECORD_SAMPLE,
    PERF_RECORD_THROTTLE, PERF_RECORD_UNTHROTTLE,
};

/// Walks record headers (type, size) to count samples, losses and throttling, and says whether
/// any record is side band: a cgroup record, or a sample whose identifier (every event of ours
/// samples PERF_SAMPLE_IDENTIFIER, the word after the header) is in sorted `side_band_ids`.
/// Only the headers and that word are read; bodies stay opaque. Bytes that do not frame as
/// records count as side band: the analyzer then reads the block.
fn count_records(bytes: &[u8], st: &mut CpuStats, live: &Live, side_band_ids: &[u64]) -> bool {
    let mut p = 0usize;
    let (mut samples, mut lost) = (0u64, 0u64);
    let mut side_band = false;
    while p + 8 <= bytes.len() {
        let ty = u32::from_le_bytes(bytes[p..p + 4].try_into().expect("4 bytes"));
        let size = u16::from_le_bytes([bytes[p + 6], bytes[p + 7]]) as usize;
        if size < 8 || p + size > bytes.len() {
            break; // not a record boundary: leave it to the analyzer to report
        }
        match ty {
            PERF_RECORD_SAMPLE => {
                samples += 1;
                side_band |= size < 16 || {
                    let id = u64::from_le_bytes(bytes[p + 8..p + 16].try_into().expect("8 bytes"));
                    side_band_ids.binary_search(&id).is_ok()
                };
            }
            PERF_RECORD_CGROUP => side_band = true,
            // LOST: header, id u64, lost u64. LOST_SAMPLES: header, lost u64.
            PERF_RECORD_LOST if size >= 24 => {
                st.lost_events += 1;
                lost += u64::from_le_bytes(bytes[p + 16..p + 24].try_into().expect("8 bytes"));
            }
            PERF_RECORD_LOST_SAMPLES if size >= 16 => {
                st.lost_events += 1;
                lost += u64::from_le_bytes(bytes[p + 8..p + 16].try_into().expect("8 bytes"));
            }
            PERF_RECORD_THROTTLE => st.throttled += 1,
            PERF_RECORD_UNTHROTTLE => st.unthrottled += 1,
            _ => {}
        }
        p += size;
    }
    st.lost_records += lost;
    live.samples.fetch_add(samples, Ordering::Relaxed);
    live.lost_records.fetch_add(lost, Ordering::Relaxed);
    side_band | (p != bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ty: u32, body: &[u8]) -> Vec<u8> {
        let mut v = ty.to_le_bytes().to_vec();
        v.extend_from_slice(&0u16.to_le_bytes());
        v.extend_from_slice(&((8 + body.len()) as u16).to_le_bytes());
        v.extend_from_slice(body);
        v
    }

    /// A block holds side band when a record is a cgroup record or a sample of a tracepoint
    /// event (by the identifier after the header); other samples and records are not.
    #[test]
    fn finds_tracepoint_samples_and_cgroup_records() {
        let sample = |id: u64| rec(PERF_RECORD_SAMPLE, &[id.to_le_bytes(), [0; 8]].concat());
        let side = |bytes: &[u8]| {
            count_records(bytes, &mut CpuStats::default(), &Live::default(), &[5, 9])
        };
        let mut plain = sample(1);
        plain.extend(rec(PERF_RECORD_THROTTLE, &[0; 24]));
        plain.extend(sample(7));
        assert!(!side(&plain));
        assert!(
            side(&[plain.clone(), sample(9)].concat()),
            "a tracepoint's sample"
        );
        let cgroup = rec(PERF_RECORD_CGROUP, &[0; 24]);
        assert!(side(&[cgroup, plain.clone()].concat()), "a cgroup record");
        assert!(
            side(&rec(PERF_RECORD_SAMPLE, &[]).repeat(2)),
            "a sample too short to tell"
        );
        assert!(!side(&[]));
    }

    #[test]
    fn counts_samples_losses_and_throttling_from_headers() {
        let mut bytes = rec(PERF_RECORD_SAMPLE, &[0; 16]);
        bytes.extend(rec(
            PERF_RECORD_LOST,
            &[[7u8; 8], 42u64.to_le_bytes()].concat(),
        ));
        bytes.extend(rec(PERF_RECORD_THROTTLE, &[0; 24]));
        bytes.extend(rec(PERF_RECORD_SAMPLE, &[0; 8]));
        bytes.extend(rec(PERF_RECORD_LOST_SAMPLES, &5u64.to_le_bytes()));
        bytes.extend_from_slice(&[1, 2, 3]); // a torn tail is ignored
        let mut st = CpuStats::default();
        let live = Live::default();
        assert!(
            count_records(&bytes, &mut st, &live, &[]),
            "a torn tail may hide anything: read it"
        );
        assert_eq!(live.samples.load(Ordering::Relaxed), 2);
        assert_eq!((st.lost_events, st.lost_records, st.throttled), (2, 47, 1));
    }

    /// The NVML thread's message becomes an energy block and a gpu block, in that order; a part
    /// it lacks is not written.
    #[test]
    fn gpu_messages_write_their_energy_and_gpu_blocks() {
        use pws_trace::records::{
            EnergyDomain, EnergySample, EnergySeries, EnergySource, GpuBlock, GpuDeviceReads,
            GpuRead, TraceInfo,
        };
        use pws_trace::{Record, Trace, WriterOptions};

        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("gpu.pws");
        let mut trace = TraceWriter::create(&path, WriterOptions::default()).unwrap();
        trace.write(&TraceInfo::default()).unwrap();
        let energy = EnergyBlock {
            series: vec![EnergySeries {
                source: EnergySource::Nvml,
                domain: EnergyDomain::Gpu,
                index: 0,
                name: "nvml:0 total energy".into(),
                unit_joules: 0.001,
                wrap: 0,
                samples: vec![EnergySample {
                    ts_ns: 7,
                    raw: 123_456,
                }],
            }],
        };
        let gpu = GpuBlock {
            devices: vec![GpuDeviceReads {
                device: 0,
                uuid: "GPU-0".into(),
                name: "NVIDIA H200".into(),
                mig: false,
                reads: vec![GpuRead {
                    ts_ns: 7,
                    power_mw: Some(90_000),
                    ..GpuRead::default()
                }],
            }],
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let both = GpuBlocks {
            energy: Some(energy.clone()),
            gpu: Some(gpu.clone()),
        };
        tx.send(Msg::from(both)).unwrap();
        let only_gpu = GpuBlocks {
            energy: None,
            gpu: Some(gpu.clone()),
        };
        tx.send(Msg::from(only_gpu)).unwrap();
        drop(tx);
        let w = Writer::new(trace, Arc::default(), Arc::default(), Vec::new());
        let w = w.run(rx).unwrap();
        w.trace.finish(8).unwrap();

        let t = Trace::open(&path).unwrap();
        let got: Vec<Record> = t
            .blocks()
            .map(|b| b.unwrap().decode().unwrap())
            .filter(|r| matches!(r, Record::Energy(_) | Record::Gpu(_)))
            .collect();
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(matches!(&got[0], Record::Energy(e) if *e == energy));
        assert!(matches!(&got[1], Record::Gpu(g) if *g == gpu));
        assert!(matches!(&got[2], Record::Gpu(g) if *g == gpu));
    }
}
