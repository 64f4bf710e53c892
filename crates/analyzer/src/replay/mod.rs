//! Replaying a trace: everything but perf data is read first (small), then the perf data in two
//! passes: the side band (lifecycle tracepoints, cgroup paths), a rayon task per block, then
//! the accounting, every CPU stream walked in rounds of trace time, a rayon task per CPU in
//! each — CPUs are independent, and a CPU's blocks are inflated one at a time; after each round
//! the CPUs' final cells are summed per package, so memory follows the per-package output
//! (intervals × cgroups), not the trace or its CPUs.
//! Blocks are inflated by the first pass and kept for the second when all fit a budget
//! (`kept_perf_data`, given back as the walks pass it); the walk over the small blocks
//! inflates none (a block's CPU is in its inflated payload). Where the trace's perf index
//! (FORMAT.md, since 1.3) gives a block's CPU and says it holds no side band, the first pass
//! does not read it at all, and the accounting inflates it once, into a buffer it reuses.
//!
//! The trace is memory-mapped, and mapped pages that were read count in the resident set: the
//! first walk gives back what it has passed (the reader's block iterator does), and the per-CPU
//! passes give back each block once it is inflated, so what stays mapped is the blocks being
//! decoded, not the file (`bench/analyzer_memory.sh` measures it).

pub mod activation_id;
pub mod compact_records;
pub mod cpu;
pub mod energy;
pub mod energy_gaps;
pub mod frozen_spans;
pub mod grid;
pub mod kept_perf_data;
pub mod lifecycle;
pub mod package_cells;
pub mod package_merge;
pub mod paused;
pub mod record_merge;
pub mod segment_merge;
pub mod steal_irq;
pub mod text;

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{Context, Result};
use pws_trace::perf::PerfAttrs;
use pws_trace::records::{
    ClockPair, CpuStatBlock, EnergySeries, GpuBlock, PerfData, PerfIndexEntry, Statistics,
    TraceInfo,
};
use pws_trace::{BlockKind, Inflater, ReadOptions, Record, Trace};
use rayon::prelude::*;

use crate::progress::InputProgress;
use cpu::{Cells, Columns, CpuReplay, Segments};
use grid::Grid;
use kept_perf_data::KeptPerfData;
use package_merge::PackageMerge;
use segment_merge::{Segment, SegmentMerge};

/// Everything of a trace except its perf data, and where the perf data is.
pub struct Loaded {
    pub trace: Trace,
    pub info: TraceInfo,
    pub attrs: PerfAttrs,
    pub clock: Vec<ClockPair>,
    /// `cgroup_events`, `activations` and `containers`: as recorded, kept compact
    /// (`compact_records`), and emptied by `analyze::replay_trace` once the lifecycles are
    /// built from them.
    pub cgroup_events: Vec<compact_records::CompactCgroupEvent>,
    pub energy: Vec<EnergySeries>,
    pub activations: Vec<compact_records::CompactRecord>,
    pub containers: Vec<compact_records::CompactContainerEvent>,
    /// Per-CPU /proc/stat readings (steal, irq, softirq, …), as recorded.
    pub cpu_stat: Vec<CpuStatBlock>,
    /// NVML's per-GPU reads besides the energy counters (instantaneous power, per-process
    /// utilisation, running processes), as recorded.
    pub gpu: Vec<GpuBlock>,
    /// The last statistics block (cumulative).
    pub statistics: Option<Statistics>,
    /// The perf-data blocks, in trace order (their CPUs are in their payloads:
    /// [`scan_side_band`] reads them).
    pub perf_blocks: Vec<PerfBlockAt>,
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
            .field("perf_blocks", &self.perf_blocks.len())
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
    let mut interner = compact_records::Interner::default();
    let mut cpu_stat = Vec::new();
    let mut gpu = Vec::new();
    let (mut statistics, mut notes) = (None, Vec::new());
    let mut perf_blocks: Vec<PerfBlockAt> = Vec::new();
    let mut perf_index: HashMap<u64, PerfIndexEntry> = HashMap::new();
    let mut perf_raw_bytes = 0u64;
    let mut end_ns = 0u64;
    let mut blocks = trace.blocks_with(opts);
    for b in blocks.by_ref() {
        let b = b.with_context(|| format!("reading {}", path.display()))?;
        let offset = b.offset;
        if b.kind() == BlockKind::PERF_DATA {
            // Not inflated here, not even the payload's head for its CPU: a zstd stream gives
            // its first bytes only by inflating a whole zstd block (128 KiB), a tenth of a
            // block inflated twice. The side-band pass reads the CPU.
            perf_blocks.push(PerfBlockAt {
                offset,
                inflated_len: if b.is_compressed() {
                    b.header.raw_len
                } else {
                    0
                },
                stored_len: b.header.stored_len,
                index: None,
            });
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
            Record::CgroupEvents(c) => {
                cgroup_events.extend(c.events.into_iter().map(|e| interner.cgroup_event(e)))
            }
            Record::Energy(e) => merge_energy(&mut energy, e.series),
            Record::Activations(a) => {
                activations.extend(a.records.into_iter().map(|r| interner.record(r)))
            }
            Record::ContainerEvents(c) => {
                containers.extend(c.events.into_iter().map(|e| interner.container_event(e)))
            }
            Record::CpuStat(c) => cpu_stat.push(c),
            Record::Gpu(g) => gpu.push(g),
            Record::PerfIndex(ix) => {
                perf_index.extend(ix.entries.into_iter().map(|e| (e.offset, e)))
            }
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
    notes.extend(interner.out_of_range_note());
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
    // The index follows the blocks it lists; an entry for no perf-data block is ignored.
    for b in &mut perf_blocks {
        b.index = perf_index.get(&b.offset).copied();
    }
    let attrs = PerfAttrs::new(&info.perf_events)
        .with_context(|| format!("perf event descriptions in {}", path.display()))?;
    for s in &mut energy {
        if let Some(last) = s.samples.last() {
            end_ns = end_ns.max(last.ts_ns);
        }
        // Grown block by block: without this, up to half again is spare room, held to the end.
        s.samples.shrink_to_fit();
    }
    // Held until the lifecycles are built (the records longer: they become them).
    activations.shrink_to_fit();
    cgroup_events.shrink_to_fit();
    containers.shrink_to_fit();
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
        gpu,
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
    /// Per CPU: the side band and the statistics. Its (interval, cgroup) cells and its window
    /// segments are summed into `per_package` and `segments` as the replay goes (empty here
    /// after `replay_perf`; [`Replayed::merge_packages`] for replays whose cells come whole).
    pub per_cpu: Vec<CpuReplay>,
    /// Package → its CPUs' cells summed: (interval, cgroup key, usage), sorted by interval and
    /// cgroup. What every table and model reads; the per-CPU cells are not kept beside them
    /// (an hour of eight CPUs holds millions of cells).
    pub per_package: PackageCells,
    /// The activation windows' segments, summed over each package's CPUs: what the join
    /// splits among the activations.
    pub segments: segment_merge::SegmentUsage,
    /// Steal and IRQ time taken out of the tasks' time (`steal_irq`); None for inputs
    /// without a perf stream.
    pub steal_irq: Option<steal_irq::Report>,
}

impl Replayed {
    /// Sums every CPU's cells per package (`package_of`; a CPU it does not list counts as
    /// package 0) into `per_package`, emptying the CPUs' cells; each cell adds its CPUs in
    /// `per_cpu` order. `replay_perf` does the same window by window; this is for replays
    /// whose cells come whole (hwpc-sensor reports).
    pub fn merge_packages(&mut self, package_of: &HashMap<u32, u32>) -> Result<()> {
        let mut merge = PackageMerge::new(
            self.per_cpu
                .iter()
                .map(|c| package_of.get(&c.cpu).copied().unwrap_or(0)),
        );
        for (n, c) in self.per_cpu.iter_mut().enumerate() {
            merge.push(n, std::mem::take(&mut c.cells), usize::MAX);
        }
        self.per_package = merge.finish()?;
        Ok(())
    }
}

/// Package → (interval, cgroup key, usage), sorted by interval and cgroup.
/// (spilled: `package_cells`).
pub type PackageCells = BTreeMap<u32, package_cells::SpilledCells>;

/// Where a perf-data block is, the length of its inflated payload (0 when stored raw: read
/// from the map, nothing to inflate or keep), and what the trace's perf index says of it.
#[derive(Debug, Clone, Copy)]
pub struct PerfBlockAt {
    pub offset: u64,
    pub inflated_len: u32,
    pub stored_len: u32,
    pub index: Option<PerfIndexEntry>,
}

impl PerfBlockAt {
    /// The CPU of a block the perf index says holds no side band: the side-band pass need not
    /// read it.
    fn without_side_band(&self) -> Option<u32> {
        self.index.filter(|e| e.no_side_band()).map(|e| e.cpu)
    }
}

/// A trace's perf data is kept inflated between the two passes when all of it fits this, so
/// every block is inflated once; otherwise none is kept and the second pass inflates each block
/// again, one at a time per CPU. Keeping all of a long trace's would make memory grow with it
/// (the accounting needs the activation windows, hence the whole side band, before its first
/// span); keeping only its first blocks saved a sliver of the inflating (64 MiB of an hour's
/// 3.5 GiB) for 64 MiB held beside everything the early phases hold, the records above all:
/// `bench/analyzer_memory.sh`, `bench/analyzer_scale.sh`.
const KEEP_INFLATED: u64 = 64 << 20;

/// One perf-data block, as the side-band pass left it for the accounting pass.
#[derive(Debug)]
pub struct PerfBlock {
    pub offset: u64,
    /// Where its ring bytes are in [`PerfBlocks::kept`], when kept.
    kept: Option<std::ops::Range<usize>>,
    /// Not read by the side-band pass: the perf index said it holds no side band.
    unread: bool,
}

/// Each CPU's perf-data blocks, in trace order, and the inflated payloads kept for them.
#[derive(Debug)]
pub struct PerfBlocks {
    pub per_cpu: BTreeMap<u32, Vec<PerfBlock>>,
    /// One anonymous mapping for every kept payload: one allocation, and faulted in by huge
    /// pages where the kernel gives them. A fresh buffer per block cost more in page faults
    /// (a 4 KiB fault per page, 14,000 of them for 56 MB) than inflating it again.
    kept: KeptPerfData,
}

/// The side band of every CPU's perf stream: lifecycle tracepoints and cgroup paths.
/// A first pass, in parallel per block, because the activation join needs the cgroups created
/// during the trace before CPU time can be charged to activation windows. Also returns each
/// CPU's blocks, with their inflated data kept when all of it fits [`KEEP_INFLATED`].
pub fn scan_side_band(
    l: &Loaded,
    progress: &InputProgress<'_>,
) -> Result<(Vec<CpuReplay>, PerfBlocks)> {
    let columns = Columns::new(&l.attrs);
    let grid = Grid::fixed(0, 1, 1).expect("a one-interval grid");
    let none = HashMap::new();
    // Kept: every compressed block this pass inflates, when all of them fit the budget; else
    // none.
    let read = |b: &PerfBlockAt| b.without_side_band().is_none();
    let all: u64 = l
        .perf_blocks
        .iter()
        .filter(|b| read(b))
        .map(|b| u64::from(b.inflated_len))
        .sum();
    let keep: Vec<usize> = l
        .perf_blocks
        .iter()
        .map(|b| match all <= KEEP_INFLATED && read(b) {
            true => b.inflated_len as usize,
            false => 0,
        })
        .collect();
    let total: usize = keep.iter().sum();
    let mut kept = KeptPerfData::new(total)?;
    let mut slots: Vec<(usize, &mut [u8])> = Vec::with_capacity(keep.len());
    let mut rest: &mut [u8] = kept.bytes_mut();
    let mut at = 0;
    for &n in &keep {
        let (slot, r) = std::mem::take(&mut rest).split_at_mut(n);
        slots.push((at, slot));
        (rest, at) = (r, at + n);
    }
    let per_block: Vec<(u32, CpuReplay, PerfBlock)> = l
        .perf_blocks
        .par_iter()
        .zip(slots)
        .map_init(Inflater::new, |inflater, (pb, (at, slot))| {
            let offset = pb.offset;
            progress.walked(u64::from(pb.stored_len));
            // Not even its header is read: finding a block checks its payload's CRC, which
            // would bring the whole block into memory (an hour's trace, all of it).
            if let Some(cpu) = pb.without_side_band() {
                let side = CpuReplay {
                    cpu,
                    ..CpuReplay::default()
                };
                let block = PerfBlock {
                    offset,
                    kept: None,
                    unread: true,
                };
                return Ok((cpu, side, block));
            }
            let b = l.trace.block_at(offset)?;
            // Tracepoints and cgroup records stand alone: a block's side band needs no state
            // from the blocks before it, so blocks are scanned in any order.
            let (cpu, side, kept) = if slot.is_empty() {
                let pd = perf_data(b.payload_in(inflater)?, offset)?;
                let side = side_band_of(l, &columns, &grid, &none, pd.cpu, &pd.data);
                (pd.cpu, side, None)
            } else {
                b.payload_to(inflater, slot)?;
                let pd = perf_data(slot, offset)?;
                let start = at + slot.len() - pd.data.len();
                let side = side_band_of(l, &columns, &grid, &none, pd.cpu, &pd.data);
                (pd.cpu, side, Some(start..at + slot.len()))
            };
            // Advisory: if the kernel refuses, the pages stay mapped and only memory suffers.
            let _ = l.trace.release_block(&b);
            let block = PerfBlock {
                offset,
                kept,
                unread: false,
            };
            Ok((cpu, side, block))
        })
        .collect::<Result<_>>()?;
    let mut sides: BTreeMap<u32, CpuReplay> = BTreeMap::new();
    let mut per_cpu: BTreeMap<u32, Vec<PerfBlock>> = BTreeMap::new();
    for (cpu, side, block) in per_block {
        match sides.entry(cpu) {
            Entry::Vacant(e) => {
                e.insert(side);
            }
            Entry::Occupied(mut e) => e.get_mut().append_side_band(side),
        }
        per_cpu.entry(cpu).or_default().push(block);
    }
    Ok((sides.into_values().collect(), PerfBlocks { per_cpu, kept }))
}

fn perf_data(payload: &[u8], offset: u64) -> Result<PerfData<'_>> {
    PerfData::decode(payload).with_context(|| format!("perf-data block at byte {offset}"))
}

/// One block's side band, walked on its own.
fn side_band_of(
    l: &Loaded,
    columns: &Columns,
    grid: &Grid,
    none: &HashMap<u64, Segments>,
    cpu: u32,
    data: &[u8],
) -> CpuReplay {
    let mut w = cpu::Walker::new(&l.attrs, columns, cpu, grid, none).side_band();
    w.feed(data);
    w.finish()
}

/// Calls `f` with the CPU and ring bytes of one perf-data block (inflated into `inflater`, or
/// borrowed from the map when stored raw), then gives the block's pages back to the kernel:
/// each block is read once per pass, so what stays mapped is the blocks being decoded, not the
/// trace.
fn with_perf_bytes<T>(
    l: &Loaded,
    off: u64,
    inflater: &mut Inflater,
    progress: &InputProgress<'_>,
    f: impl FnOnce(u32, &[u8]) -> T,
) -> Result<T> {
    let b = l.trace.block_at(off)?;
    progress.walked(u64::from(b.header.stored_len));
    let pd = perf_data(b.payload_in(inflater)?, off)?;
    let out = f(pd.cpu, &pd.data);
    // Advisory: if the kernel refuses, the pages stay mapped and only memory suffers.
    let _ = l.trace.release_block(&b);
    Ok(out)
}

/// Inflates every perf-data block once, in parallel per CPU as the replay's passes do, and
/// does nothing else: the floor under the replay's time (`pws-analyze bench-replay
/// --inflate-only`, `bench/analyzer_replay.sh`). Returns the bytes inflated.
pub fn inflate_only(l: &Loaded, progress: &InputProgress<'_>) -> Result<u64> {
    l.perf_blocks
        .par_iter()
        .map_init(Inflater::new, |inflater, b| {
            let off = b.offset;
            // black_box: the bytes must be produced even though nothing reads them.
            with_perf_bytes(l, off, inflater, progress, |_, d| {
                std::hint::black_box(d).len() as u64
            })
        })
        .sum()
}

/// Trace time every CPU's walk advances by in one round of the accounting: the cells a round
/// leaves waiting are the CPUs' lead over the slowest plus a round, so memory follows the
/// round, not the trace; a round is one rayon join of the CPUs, negligible at this length.
const ROUND_NS: u64 = 10_000_000_000;

/// Decodes every CPU's perf stream in parallel over `grid`, charging the segments of activation
/// `windows` (cgroup key → segments sorted by start, not overlapping). `blocks` are the side-band
/// pass's, with what it kept inflated (freed at the end).
///
/// The CPUs are walked in rounds of [`ROUND_NS`] of trace time, in parallel within a round;
/// after each, every CPU's final cells and window segments lose their steal and IRQ time
/// (`steal_irq::CpuSteal`) and are summed per package (`PackageMerge`, `SegmentMerge`). So the
/// per-CPU cells and segments of the run are never held together: the result has the
/// per-package cells and segments, and each CPU's side band and statistics.
pub fn replay_perf(
    l: &Loaded,
    grid: &Grid,
    windows: &HashMap<u64, Segments>,
    blocks: PerfBlocks,
    progress: &InputProgress<'_>,
) -> Result<Replayed> {
    replay_perf_in_rounds(l, grid, windows, blocks, progress, ROUND_NS)
}

/// [`replay_perf`] with rounds of `round_ns` of trace time: any length gives the same result
/// (the tests compare them); the length only sets what waits between rounds.
pub fn replay_perf_in_rounds(
    l: &Loaded,
    grid: &Grid,
    windows: &HashMap<u64, Segments>,
    blocks: PerfBlocks,
    progress: &InputProgress<'_>,
    round_ns: u64,
) -> Result<Replayed> {
    let round_ns = round_ns.max(1);
    let columns = Columns::new(&l.attrs);
    let mut kept = blocks.kept;
    let readings = steal_irq::readings(&l.cpu_stat);
    let clock = steal_irq::clock_columns(&columns.names);
    let mut report = steal_irq::Report::of(&l.cpu_stat, &readings);
    let package_of = package_of(l);
    let mut streams: Vec<Stream<'_>> = blocks
        .per_cpu
        .iter()
        .map(|(&cpu, blocks)| Stream {
            cpu,
            blocks,
            next: 0,
            walker: Some(cpu::Walker::new(&l.attrs, &columns, cpu, grid, windows)),
            steal: readings
                .get(&cpu)
                .filter(|_| report.per_cpu.is_some())
                .map(|r| steal_irq::CpuSteal::new(cpu, r, grid, &clock)),
            inflater: Inflater::new(),
            segments: Vec::new(),
            done: None,
            next_kept: 0,
        })
        .collect();
    let packages: Vec<u32> = streams
        .iter()
        .map(|s| package_of.get(&s.cpu).copied().unwrap_or(0))
        .collect();
    let mut merge = PackageMerge::new(packages.iter().copied());
    // A segment is charged on one CPU, most often: room for as many as there are, made once.
    let expected = windows.values().map(|w| w.spans.len()).sum();
    let mut seg_merge = SegmentMerge::new(packages, expected, columns.names.len())?;
    let mut until = grid.start();
    while streams.iter().any(|s| s.done.is_none()) {
        // A round past the walk furthest behind, at least: every round feeds a block, even
        // where all the streams that are left jump ahead in time (a gap, a bad timestamp).
        let behind = streams
            .iter()
            .filter(|s| s.done.is_none())
            .filter_map(|s| s.walker.as_ref()?.last_ns())
            .min();
        until = until
            .saturating_add(round_ns)
            .max(behind.map_or(0, |t| t.saturating_add(round_ns)));
        let given: Vec<(Cells, Vec<Segment>, usize)> = streams
            .par_iter_mut()
            .map(|s| s.advance(until, l, kept.bytes(), progress))
            .collect::<Result<_>>()?;
        for (n, (cells, segments, horizon)) in given.into_iter().enumerate() {
            merge.push(n, cells, horizon);
            seg_merge.push(n, segments, horizon);
        }
        merge.advance()?;
        seg_merge.advance()?;
        // Every kept block still to be read starts at or after the first one each walk has
        // yet to read: what is before it is done with.
        let pending = streams.iter_mut().filter_map(|s| s.next_kept()).min();
        kept.release_before(pending.unwrap_or(usize::MAX));
    }
    let mut per_cpu = Vec::with_capacity(streams.len());
    for s in streams {
        let (rep, fig) = s.done.expect("every stream ran to its end");
        match (fig, report.per_cpu.as_mut()) {
            (Some(f), Some(figs)) => figs.push(f),
            (None, Some(_)) => report.cpus_without.push(rep.cpu),
            _ => {}
        }
        per_cpu.push(rep);
    }
    Ok(Replayed {
        columns: columns.names.clone(),
        per_cpu,
        per_package: merge.finish()?,
        segments: seg_merge.finish()?,
        steal_irq: Some(report),
    })
}

/// One CPU's accounting, walked round by round. Aligned so that two CPUs' walkers, side by
/// side in one vector and walked on two threads, never write the same cache line (see
/// `cpu::LINE_PAD_BYTES`).
#[repr(align(128))]
struct Stream<'a> {
    cpu: u32,
    blocks: &'a [PerfBlock],
    /// The next block to feed.
    next: usize,
    walker: Option<cpu::Walker<'a>>,
    /// None when the trace has no cpu-stat readings of this CPU.
    steal: Option<steal_irq::CpuSteal<'a>>,
    inflater: Inflater,
    /// Window segments the walk has given whose interval's steal and IRQ time is not settled
    /// yet.
    segments: Vec<Segment>,
    /// At the end of the stream: what the walk gave (its cells handed over) and, with
    /// readings, the steal and IRQ time taken out.
    done: Option<(CpuReplay, Option<steal_irq::CpuFigures>)>,
    /// No kept block before this one is still to be read (`Stream::next_kept`).
    next_kept: usize,
}

impl Stream<'_> {
    /// Where, in the kept data, the first kept block this walk has still to read starts.
    /// A CPU's kept blocks lie in its own order in the kept data, so none after it is earlier.
    fn next_kept(&mut self) -> Option<usize> {
        self.next_kept = self.next_kept.max(self.next);
        while let Some(b) = self.blocks.get(self.next_kept) {
            if let Some(r) = &b.kept {
                return Some(r.start);
            }
            self.next_kept += 1;
        }
        None
    }

    /// Feeds blocks until the walk has charged past `until` (or the stream ends) and returns
    /// the cells and window segments now final, steal and IRQ time taken out, with the
    /// interval before which this CPU has given all of its cells and segments.
    fn advance(
        &mut self,
        until: u64,
        l: &Loaded,
        kept: &[u8],
        progress: &InputProgress<'_>,
    ) -> Result<(Cells, Vec<Segment>, usize)> {
        let Some(w) = self.walker.as_mut() else {
            return Ok((Vec::new(), Vec::new(), usize::MAX));
        };
        while self.next < self.blocks.len() && w.last_ns().is_none_or(|t| t < until) {
            let b = &self.blocks[self.next];
            let side_band = w.side_band_records();
            let cpu = match &b.kept {
                Some(r) => {
                    w.feed(&kept[r.clone()]);
                    self.cpu
                }
                None => with_perf_bytes(l, b.offset, &mut self.inflater, progress, |cpu, d| {
                    w.feed(d);
                    cpu
                })?,
            };
            // The perf index put this block on this CPU and said it holds no side band, so the
            // side-band pass never read it: both are checked here, where it is read.
            if b.unread && cpu != self.cpu {
                anyhow::bail!(
                    "the perf index puts the perf-data block at byte {} on CPU {}, but it holds CPU {cpu}'s ring: the index is wrong",
                    b.offset,
                    self.cpu
                );
            }
            if b.unread && w.side_band_records() != side_band {
                anyhow::bail!(
                    "the perf index says the perf-data block at byte {} (CPU {cpu}) holds no tracepoint sample or cgroup record, but it does: the index is wrong, and so would the lifecycles built without them be",
                    b.offset
                );
            }
            self.next += 1;
        }
        if self.next < self.blocks.len() {
            let (cells, before) = w.take_final();
            self.segments.append(&mut w.take_segments());
            let (cells, settled) = match self.steal.as_mut() {
                Some(s) => s.push(cells, before),
                None => (cells, before),
            };
            return Ok((cells, self.settled_segments(settled), settled));
        }
        let mut rep = self.walker.take().expect("checked").finish();
        let cells = std::mem::take(&mut rep.cells);
        self.segments.append(&mut rep.activations);
        let (cells, fig) = match self.steal.take() {
            Some(mut s) => {
                let (cells, _) = s.push(cells, usize::MAX);
                (cells, Some(s.finish(&mut self.segments)))
            }
            None => (cells, None),
        };
        self.done = Some((rep, fig));
        Ok((cells, std::mem::take(&mut self.segments), usize::MAX))
    }

    /// The segments given so far of intervals before `settled` (whose steal and IRQ time is
    /// settled), scaled as their interval's cells were.
    fn settled_segments(&mut self, settled: usize) -> Vec<Segment> {
        let (mut ready, waiting): (Vec<Segment>, Vec<Segment>) = std::mem::take(&mut self.segments)
            .into_iter()
            .partition(|((_, i), _)| *i < settled);
        self.segments = waiting;
        if let Some(s) = &self.steal {
            s.scale_segments(&mut ready);
        }
        ready
    }
}

/// CPU → package, as the trace info lists them.
pub fn package_of(l: &Loaded) -> HashMap<u32, u32> {
    l.info.cpus.iter().map(|c| (c.cpu, c.package)).collect()
}
