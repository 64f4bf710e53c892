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
    /// Source statistics to report (energy, activation feeds), cumulative.
    SourceStats(SourceStats),
    /// Energy samples, about once a second from the energy thread.
    Energy(EnergyBlock),
    /// Per-CPU /proc/stat times, about once a second from the cpu-stat thread.
    CpuStat(CpuStatBlock),
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
    stats: CpuStats,
}

pub struct Writer {
    pub trace: TraceWriter<File>,
    pub live: Arc<Live>,
    batches: BTreeMap<u32, CpuBatch>,
    sources: BTreeMap<String, SourceStats>,
    pub wakeups: Arc<Vec<(u32, AtomicU64)>>,
    last_ts: u64,
}

impl Writer {
    pub fn new(
        trace: TraceWriter<File>,
        live: Arc<Live>,
        wakeups: Arc<Vec<(u32, AtomicU64)>>,
    ) -> Self {
        Self {
            trace,
            live,
            batches: BTreeMap::new(),
            sources: BTreeMap::new(),
            wakeups,
            last_ts: 0,
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
            Msg::Perf {
                cpu,
                ring_offset,
                bytes,
            } => {
                let b = self.batches.entry(cpu).or_default();
                b.stats.cpu = cpu;
                b.stats.bytes += bytes.len() as u64;
                count_records(&bytes, &mut b.stats, &self.live);
                if b.bytes.is_empty() {
                    // Most drains start a batch: keep their buffer rather than copy it.
                    b.ring_offset = ring_offset;
                    b.bytes = bytes;
                } else {
                    b.bytes.extend_from_slice(&bytes);
                }
                if b.bytes.len() >= PERF_BLOCK_BYTES {
                    let (off, data) = (b.ring_offset, std::mem::take(&mut b.bytes));
                    self.trace.write_perf_data(cpu, 0, off, &[&data])?;
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
                let data = std::mem::take(&mut b.bytes);
                self.trace
                    .write_perf_data(*cpu, 0, b.ring_offset, &[&data])?;
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
    PERF_RECORD_LOST, PERF_RECORD_LOST_SAMPLES, PERF_RECORD_SAMPLE, PERF_RECORD_THROTTLE,
    PERF_RECORD_UNTHROTTLE,
};

/// Walks record headers (type, size) to count samples, losses and throttling. Only the
/// headers are read; bodies stay opaque.
fn count_records(bytes: &[u8], st: &mut CpuStats, live: &Live) {
    let mut p = 0usize;
    let (mut samples, mut lost) = (0u64, 0u64);
    while p + 8 <= bytes.len() {
        let ty = u32::from_le_bytes(bytes[p..p + 4].try_into().expect("4 bytes"));
        let size = u16::from_le_bytes([bytes[p + 6], bytes[p + 7]]) as usize;
        if size < 8 || p + size > bytes.len() {
            break; // not a record boundary: leave it to the analyzer to report
        }
        match ty {
            PERF_RECORD_SAMPLE => samples += 1,
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
        count_records(&bytes, &mut st, &live);
        assert_eq!(live.samples.load(Ordering::Relaxed), 2);
        assert_eq!((st.lost_events, st.lost_records, st.throttled), (2, 47, 1));
    }
}
