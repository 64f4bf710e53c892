//! Replaying a trace: everything but perf data is read first (small), then each CPU's perf
//! stream is decoded on its own rayon task — CPUs are independent, and a CPU's blocks are
//! inflated one at a time, so memory follows the output (intervals × cgroups), not the trace.
//!
//! The trace is memory-mapped, and mapped pages that were read count in the resident set: the
//! first walk gives back what it has passed (the reader's block iterator does), and the per-CPU
//! passes give back each block once it is inflated, so what stays mapped is the blocks being
//! decoded, not the file (`bench/analyzer_memory.sh` measures it).

pub mod cpu;
pub mod energy;
pub mod energy_gaps;
pub mod grid;
pub mod lifecycle;
pub mod paused;
pub mod record_merge;
pub mod steal_irq;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{Context, Result};
use pws_trace::perf::PerfAttrs;
use pws_trace::records::{
    ActivationRecord, CgroupEvent, ClockPair, ContainerEvent, CpuStatBlock, EnergySeries, PerfData,
    Statistics, TraceInfo, PERF_DATA_HEADER_LEN,
};
use pws_trace::{BlockKind, ReadOptions, Record, Trace};
use rayon::prelude::*;

use crate::progress::InputProgress;
use cpu::{Columns, CpuReplay, Window};
use grid::Grid;

/// Everything of a trace except its perf data, and where the perf data is.
pub struct Loaded {
    pub trace: Trace,
    pub info: TraceInfo,
    pub attrs: PerfAttrs,
    pub clock: Vec<ClockPair>,
    pub cgroup_events: Vec<CgroupEvent>,
    pub energy: Vec<EnergySeries>,
    pub activations: Vec<ActivationRecord>,
    pub containers: Vec<ContainerEvent>,
    /// Per-CPU /proc/stat readings (steal, irq, softirq, …), as recorded.
    pub cpu_stat: Vec<CpuStatBlock>,
    /// The last statistics block (cumulative).
    pub statistics: Option<Statistics>,
    /// CPU → offsets of its perf-data blocks, in trace order.
    pub perf_blocks: BTreeMap<u32, Vec<u64>>,
    /// Perf data once inflated, summed over blocks (their headers' `raw_len`).
    pub perf_raw_bytes: u64,
    /// The trace's end was torn (the recorder did not finish it): what was lost.
    pub torn: Option<String>,
    /// Things the reader had to say: torn tail, skipped regions, unknown kinds.
    pub notes: Vec<String>,
    /// Latest timestamp seen anywhere (statistics, clock pairs, energy), for the grid's end.
    pub end_ns: u64,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("host", &self.info.hostname)
            .field("cpus", &self.perf_blocks.len())
            .finish()
    }
}

/// Reads a trace's small blocks and indexes its perf data. A torn tail is read up to its last
/// complete block and noted; with `skip_bad_blocks`, corrupt regions are skipped and noted.
pub fn load(path: &Path, skip_bad_blocks: bool) -> Result<Loaded> {
    let trace = Trace::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    load_trace(trace, path, skip_bad_blocks)
}

/// As [`load`], from a trace already open (or built in memory, as from a perf.data file);
/// `path` names it in messages.
pub fn load_trace(trace: Trace, path: &Path, skip_bad_blocks: bool) -> Result<Loaded> {
    let opts = ReadOptions { skip_bad_blocks };
    let mut info = None;
    let (mut clock, mut cgroup_events, mut energy) = (Vec::new(), Vec::new(), Vec::new());
    let (mut activations, mut containers) = (Vec::new(), Vec::new());
    let mut cpu_stat = Vec::new();
    let (mut statistics, mut notes) = (None, Vec::new());
    let mut perf_blocks: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    let mut perf_raw_bytes = 0u64;
    let mut end_ns = 0u64;
    let mut blocks = trace.blocks_with(opts);
    for b in blocks.by_ref() {
        let b = b.with_context(|| format!("reading {}", path.display()))?;
        let offset = b.offset;
        if b.kind() == BlockKind::PERF_DATA {
            // Only the CPU number, from the payload's fixed header: no inflating here.
            let head = b.payload_prefix(PERF_DATA_HEADER_LEN)?;
            let cpu = PerfData::decode(&head)
                .with_context(|| format!("perf-data block at byte {offset}"))?
                .cpu;
            perf_blocks.entry(cpu).or_default().push(offset);
            perf_raw_bytes += u64::from(b.header.raw_len);
            continue;
        }
        match b
            .decode()
            .with_context(|| format!("block at byte {offset}"))?
        {
            Record::TraceInfo(i) => info = Some(*i),
            Record::ClockSync(c) => {
                end_ns = end_ns.max(c.pairs.iter().map(|p| p.monotonic_ns).max().unwrap_or(0));
                clock.extend(c.pairs);
            }
            Record::CgroupEvents(c) => cgroup_events.extend(c.events),
            Record::Energy(e) => merge_energy(&mut energy, e.series),
            Record::Activations(a) => activations.extend(a.records),
            Record::ContainerEvents(c) => containers.extend(c.events),
            Record::CpuStat(c) => cpu_stat.push(c),
            Record::Statistics(s) => {
                end_ns = end_ns.max(s.ts_ns);
                statistics = Some(s);
            }
            Record::End(e) => end_ns = end_ns.max(e.end_monotonic_ns),
            Record::Unknown(kind) => notes.push(format!(
                "block of unknown kind {} at byte {offset} skipped",
                kind.0
            )),
            _ => {}
        }
    }
    let status = blocks.into_status();
    let torn = status.torn_tail.map(|(off, n)| {
        format!(
            "the trace is torn at byte {off} ({n} bytes ignored; the recorder did not finish it): analysed up to its last complete block; whatever the recorder held for the lost bytes (perf data, energy readings, activations of the last moments) is not in the tables"
        )
    });
    for r in &status.skipped {
        notes.push(format!(
            "corrupt region skipped: {} bytes at byte {} ({})",
            r.bytes, r.offset, r.reason
        ));
    }
    let info: TraceInfo =
        info.with_context(|| format!("{} has no trace-info block", path.display()))?;
    let attrs = PerfAttrs::new(&info.perf_events)
        .with_context(|| format!("perf event descriptions in {}", path.display()))?;
    for s in &energy {
        if let Some(last) = s.samples.last() {
            end_ns = end_ns.max(last.ts_ns);
        }
    }
    Ok(Loaded {
        trace,
        info,
        attrs,
        clock,
        cgroup_events,
        energy,
        activations,
        containers,
        cpu_stat,
        statistics,
        perf_blocks,
        perf_raw_bytes,
        torn,
        notes,
        end_ns,
    })
}

/// Energy blocks carry about a second each: series of one counter are concatenated.
fn merge_energy(all: &mut Vec<EnergySeries>, series: Vec<EnergySeries>) {
    for s in series {
        match all.iter_mut().find(|x| {
            x.source == s.source && x.domain == s.domain && x.index == s.index && x.name == s.name
        }) {
            Some(x) => x.samples.extend(s.samples),
            None => all.push(s),
        }
    }
}

/// The perf part of a replay, merged over CPUs.
#[derive(Debug, Default)]
pub struct Replayed {
    pub columns: Vec<String>,
    /// Per CPU: (interval, cgroup key) → usage, and (window segment, interval) → usage.
    pub per_cpu: Vec<CpuReplay>,
    /// Steal and IRQ time taken out of the tasks' time (`steal_irq::apply`); None before.
    pub steal_irq: Option<steal_irq::Report>,
}

impl Replayed {
    /// Takes steal and IRQ time out of every CPU's cells and activation segments, from the
    /// trace's cpu-stat readings (`steal_irq`); without readings nothing changes and the
    /// report says so.
    pub fn remove_steal_irq(&mut self, l: &Loaded, grid: &Grid) {
        let r = steal_irq::apply(&l.cpu_stat, grid, &self.columns, &mut self.per_cpu);
        self.steal_irq = Some(r);
    }
}

/// Inflated perf data kept between the two passes when it fits this budget, so each block is
/// decompressed once; bigger traces are inflated again, one block at a time. Keeping saves one
/// zstd pass (about a second per GB inflated), which only matters for small traces; above
/// this, memory matters more: it would grow with the trace, not the output.
const KEEP_INFLATED: u64 = 64 << 20;

/// Perf data inflated by the first pass, per CPU, when it fit [`KEEP_INFLATED`].
pub type Inflated = HashMap<u32, Vec<Vec<u8>>>;

/// The side band of every CPU's perf stream: lifecycle tracepoints and cgroup paths.
/// A first pass, in parallel per CPU, because the activation join needs the cgroups created
/// during the trace before CPU time can be charged to activation windows. Returns the inflated
/// perf data too when it is small enough to keep for the second pass.
pub fn scan_side_band(
    l: &Loaded,
    progress: &InputProgress<'_>,
) -> Result<(Vec<CpuReplay>, Option<Inflated>)> {
    let columns = Columns::new(&l.attrs);
    let grid = Grid::fixed(0, 1, 1).expect("a one-interval grid");
    let none = HashMap::new();
    let keep = l.perf_raw_bytes <= KEEP_INFLATED;
    let per_cpu: Vec<(CpuReplay, Vec<Vec<u8>>)> = l
        .perf_blocks
        .par_iter()
        .map(|(&cpu, offsets)| -> Result<(CpuReplay, Vec<Vec<u8>>)> {
            let mut w = cpu::Walker::new(&l.attrs, &columns, cpu, &grid, &none).side_band();
            let mut kept = Vec::new();
            for &off in offsets {
                if keep {
                    let data = with_perf_bytes(l, off, progress, |d| d.to_vec())?;
                    w.feed(&data);
                    kept.push(data);
                } else {
                    with_perf_bytes(l, off, progress, |d| w.feed(d))?;
                }
            }
            Ok((w.finish(), kept))
        })
        .collect::<Result<_>>()?;
    let cpus: Vec<u32> = l.perf_blocks.keys().copied().collect();
    let mut inflated = HashMap::new();
    let mut out = Vec::new();
    for (cpu, (r, kept)) in cpus.into_iter().zip(per_cpu) {
        out.push(r);
        if keep {
            inflated.insert(cpu, kept);
        }
    }
    Ok((out, keep.then_some(inflated)))
}

/// Calls `f` with the ring bytes of one perf-data block (inflated, or borrowed from the map
/// when stored raw), then gives the block's pages back to the kernel: each block is read once
/// per pass, so what stays mapped is the blocks being decoded, not the trace.
fn with_perf_bytes<T>(
    l: &Loaded,
    off: u64,
    progress: &InputProgress<'_>,
    f: impl FnOnce(&[u8]) -> T,
) -> Result<T> {
    let b = l.trace.block_at(off)?;
    progress.walked(u64::from(b.header.stored_len));
    let payload = b.payload()?;
    let pd =
        PerfData::decode(&payload).with_context(|| format!("perf-data block at byte {off}"))?;
    let out = f(&pd.data);
    // Advisory: if the kernel refuses, the pages stay mapped and only memory suffers.
    let _ = l.trace.release_block(&b);
    Ok(out)
}

/// Decodes every CPU's perf stream in parallel over `grid`, charging the segments of activation
/// `windows` (cgroup key → segments sorted by start, not overlapping). `inflated` is the first pass's kept data, if any.
pub fn replay_perf(
    l: &Loaded,
    grid: &Grid,
    windows: &HashMap<u64, Vec<Window>>,
    inflated: Option<&Inflated>,
    progress: &InputProgress<'_>,
) -> Result<Replayed> {
    let columns = Columns::new(&l.attrs);
    let per_cpu: Vec<CpuReplay> = l
        .perf_blocks
        .par_iter()
        .map(|(&cpu, offsets)| -> Result<CpuReplay> {
            let mut w = cpu::Walker::new(&l.attrs, &columns, cpu, grid, windows);
            match inflated.and_then(|m| m.get(&cpu)) {
                Some(blocks) => blocks.iter().for_each(|d| w.feed(d)),
                None => {
                    for &off in offsets {
                        with_perf_bytes(l, off, progress, |d| w.feed(d))?;
                    }
                }
            }
            Ok(w.finish())
        })
        .collect::<Result<_>>()?;
    Ok(Replayed {
        columns: columns.names.clone(),
        per_cpu,
        steal_irq: None,
    })
}
