//! `perf.data` files (what `perf record` writes) as inputs of pws-analyze: converted into an
//! in-memory `.pws` trace, which the usual replay then reads like any other.
//!
//! A system-wide perf.data holds the kernel's own perf records, the bytes pws-record copies from
//! its rings (FORMAT.md, "How pws-record uses perf"). The conversion keeps every kernel record
//! byte for byte, in one stream per CPU, and rebuilds around them what the trace format needs:
//! the trace info (host, CPUs, every event's `perf_event_attr` and ids), a clock-sync pair from
//! perf's clock reference, and statistics. perf's own user records (rounds, id index, build
//! ids, maps) are dropped; the state perf synthesizes at start (tasks, cgroups) is kept in
//! blocks flagged as synthesized.
//!
//! CPU time is charged exactly, as for pws-record traces, when the file has the same shape: every
//! event with PERF_SAMPLE_IDENTIFIER, a timer leader and a context-switch member sampling at
//! every switch-out, both reading the group. With perf this is
//!
//! ```text
//! perf record -a -e '{cpu-clock/freq=1000/,context-switches/period=1/}:S' --switch-events \
//!     --all-cgroups --sample-identifier -k CLOCK_MONOTONIC
//! ```
//!
//! Without the group read (`:S`) the samples carry no counters: the replay then charges no CPU
//! time, and the notes say so. perf.data holds no energy readings.
//!
//! linux-perf-data parses the feature sections it is given, orders the records and inflates
//! compressed (`-z`) files; this module reads the raw header itself, both for the attr bytes
//! (the crate keeps only the fields it knows, and drops `PERF_FORMAT_LOST`, which changes the
//! layout of every group read) and to check every length before the crate allocates from it,
//! so a truncated or corrupt file is an error, never a crash.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufReader, ErrorKind, Read, Seek, SeekFrom};
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;

use anyhow::{anyhow, bail, ensure, Context, Result};
use linux_perf_data::{Feature, PerfFile, PerfFileReader, PerfFileRecord, UserRecordType};
use pws_trace::perf::{self as pp, PerfAttrs, PerfRecord};
use pws_trace::records::{
    ClockPair, ClockSync, CpuInfo, CpuStats, PerfEventId, PerfEventInfo, SourceInfo, SourceStats,
    SourceStatus, Statistics, TraceInfo, CLOCK_MONOTONIC, PERF_DATA_SYNTHESIZED,
};
use pws_trace::{Trace, TraceWriter, WriterOptions};

/// The `recorder` of converted traces.
pub const RECORDER: &str = "perf record (converted by pws-analyze)";
/// The trace-info `clock` of a file recorded on perf's default clock (the kernel's
/// `local_clock`), which no `clockid_t` names.
pub const PERF_DEFAULT_CLOCK: u32 = u32::MAX;
/// Bytes of records per perf-data block and CPU, as pws-record's blocks are about that size.
const BLOCK_BYTES: usize = 1 << 20;
/// "Unknown" in the trace info's CPU fields.
const UNKNOWN: u32 = u32::MAX;

const MAGIC: &[u8; 8] = b"PERFILE2";
const MAGIC_BIG_ENDIAN: &[u8; 8] = b"2ELIFREP";
/// `struct perf_file_header`, and its form before feature bits (perf < 2.6.37).
const FILE_HEADER_LEN: u64 = 104;
const OLD_FILE_HEADER_LEN: u64 = 72;
/// `struct perf_pipe_file_header`: the magic and its own size.
const PIPE_HEADER_LEN: u64 = 16;
/// `PERF_ATTR_SIZE_VER0`: the smallest `perf_event_attr`.
const ATTR_SIZE_VER0: usize = 64;
/// A `perf_file_section` (offset, size).
const SECTION_LEN: u64 = 16;

// `perf_event_attr` offsets and flag bits (linux/perf_event.h) this module reads.
const ATTR_TYPE: usize = 0;
const ATTR_CONFIG: usize = 8;
const ATTR_SAMPLE_PERIOD: usize = 16;
const ATTR_SAMPLE_TYPE: usize = 24;
const ATTR_FLAGS: usize = 40;
const ATTR_CLOCKID: usize = 92;
const FLAG_MMAP: u64 = 1 << 8;
const FLAG_COMM: u64 = 1 << 9;
const FLAG_FREQ: u64 = 1 << 10;
const FLAG_TASK: u64 = 1 << 13;
const FLAG_SAMPLE_ID_ALL: u64 = 1 << 18;
const FLAG_USE_CLOCKID: u64 = 1 << 25;
const FLAG_CONTEXT_SWITCH: u64 = 1 << 26;
const FLAG_CGROUP: u64 = 1 << 32;

// perf's user record types (tools/lib/perf/include/perf/event.h).
const PERF_RECORD_HEADER_ATTR: u32 = 64;
const PERF_RECORD_HEADER_FEATURE: u32 = 80;

/// Converts the perf.data file (or perf's pipe format) at `path` into an in-memory trace.
/// Returns it with notes for the reader: what was kept, dropped, and what the replay will
/// lack (UTC times, CPU time, energy). Big-endian files, files whose events lack
/// PERF_SAMPLE_IDENTIFIER, and files whose records carry no CPU are refused with the reason.
///
/// The converted records are held in memory until the trace is written (about the size of the
/// file's data section, then compressed).
pub fn to_trace(path: &Path) -> Result<(Trace, Vec<String>)> {
    let shown = path.display();
    let mut file = File::open(path).with_context(|| format!("cannot open {shown}"))?;
    let len = file
        .metadata()
        .with_context(|| format!("cannot read {shown}"))?
        .len();
    let layout = read_layout(&mut file, len)
        .with_context(|| format!("{shown}: not a readable perf.data file"))?;
    file.seek(SeekFrom::Start(0))
        .with_context(|| format!("cannot read {shown}"))?;
    // The lengths the crate allocates from were checked above; a panic in it on some other
    // malformed input is still turned into an error rather than abort the analysis.
    let converted = panic::catch_unwind(AssertUnwindSafe(|| convert(file, &layout, path)))
        .map_err(|p| {
            let why = p
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            anyhow!("{shown}: the perf.data parser failed on this file ({why})")
        })?;
    converted.with_context(|| format!("{shown}: cannot convert this perf.data file"))
}

// ---------------------------------------------------------------------------------------------
// The file's layout, read and checked before linux-perf-data sees it.

/// One event as the file describes it.
#[derive(Debug, Clone)]
struct FileEvent {
    /// The `perf_event_attr` bytes perf wrote (its own `size` long).
    attr: Vec<u8>,
    ids: Vec<u64>,
    /// perf's name for it (from HEADER_EVENT_DESC), e.g. `cpu-clock/freq=1000/`.
    perf_name: Option<String>,
}

impl FileEvent {
    fn u32_at(&self, o: usize) -> u32 {
        u32_at(&self.attr, o).unwrap_or(0)
    }

    fn u64_at(&self, o: usize) -> u64 {
        u64_at(&self.attr, o).unwrap_or(0)
    }

    fn sample_type(&self) -> u64 {
        self.u64_at(ATTR_SAMPLE_TYPE)
    }

    fn flags(&self) -> u64 {
        self.u64_at(ATTR_FLAGS)
    }

    /// The clock of its timestamps: a clockid, or perf's default clock.
    fn clock(&self) -> u32 {
        if self.flags() & FLAG_USE_CLOCKID != 0 {
            self.u32_at(ATTR_CLOCKID)
        } else {
            PERF_DEFAULT_CLOCK
        }
    }

    /// Bytes of the sample_id trailer its non-sample records carry.
    fn sample_id_len(&self) -> usize {
        if self.flags() & FLAG_SAMPLE_ID_ALL == 0 {
            return 0;
        }
        let t = self.sample_type();
        [
            pp::sample::TID,
            pp::sample::TIME,
            pp::sample::ID,
            pp::sample::STREAM_ID,
            pp::sample::CPU,
            pp::sample::IDENTIFIER,
        ]
        .iter()
        .filter(|&&f| t & f != 0)
        .count()
            * 8
    }

    /// The name the analyzer's tables use: pws-record's for the counters it knows (so the
    /// models find `instructions`, `cpu-clock`…), else perf's own.
    fn name(&self) -> String {
        let (type_, config) = (self.u32_at(ATTR_TYPE), self.u64_at(ATTR_CONFIG));
        canonical_name(type_, config)
            .map(str::to_owned)
            .or_else(|| self.perf_name.clone())
            .unwrap_or_else(|| format!("type {type_} config {config:#x}"))
    }
}

/// Names of the generic hardware, software and cache events, as pws-record and perf spell them.
fn canonical_name(type_: u32, config: u64) -> Option<&'static str> {
    // Hybrid CPUs put the PMU type in the high 32 bits of a generic event's config.
    let low = config & 0xffff_ffff;
    Some(match (type_, low) {
        (0, 0) => "cycles",
        (0, 1) => "instructions",
        (0, 2) => "cache-references",
        (0, 3) => "cache-misses",
        (0, 4) => "branches",
        (0, 5) => "branch-misses",
        (0, 6) => "bus-cycles",
        (0, 7) => "stalled-cycles-frontend",
        (0, 8) => "stalled-cycles-backend",
        (0, 9) => "ref-cycles",
        (1, 0) => "cpu-clock",
        (1, 1) => "task-clock",
        (1, 2) => "page-faults",
        (1, 3) => "context-switches",
        (1, 4) => "cpu-migrations",
        (1, 5) => "minor-faults",
        (1, 6) => "major-faults",
        (1, 7) => "alignment-faults",
        (1, 8) => "emulation-faults",
        (1, 9) => "dummy",
        (1, 10) => "bpf-output",
        (1, 11) => "cgroup-switches",
        // Last-level cache, read, miss: what pws-record calls `llc-misses`.
        (3, 0x10002) => "llc-misses",
        _ => return None,
    })
}

#[derive(Debug)]
struct Layout {
    /// perf's pipe format (`perf record -o -`): attrs and features come as records.
    pipe: bool,
    events: Vec<FileEvent>,
}

fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(o..o.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(o..o.checked_add(8)?)?.try_into().ok()?,
    ))
}

fn read_layout(file: &mut File, len: u64) -> Result<Layout> {
    ensure!(
        len >= PIPE_HEADER_LEN,
        "{len} bytes, too short for a perf.data header"
    );
    let mut head = [0u8; 16];
    file.read_exact(&mut head).context("reading the header")?;
    match &head[..8] {
        m if m == MAGIC => {}
        m if m == MAGIC_BIG_ENDIAN => bail!(
            "a big-endian perf.data file: not supported (the trace format keeps perf records little-endian)"
        ),
        _ => bail!("no PERFILE2 magic at its start"),
    }
    let size = u64_at(&head, 8).unwrap_or(0);
    if size == PIPE_HEADER_LEN {
        return read_pipe_layout(file);
    }
    read_file_layout(file, len, size)
}

/// A `perf_file_section` checked to lie inside the file.
#[derive(Debug, Clone, Copy)]
struct Section {
    offset: u64,
    size: u64,
}

impl Section {
    fn at(b: &[u8], o: usize, what: &str, file_len: u64) -> Result<Self> {
        let s = Self {
            offset: u64_at(b, o).unwrap_or(0),
            size: u64_at(b, o + 8).unwrap_or(0),
        };
        let end = s.offset.checked_add(s.size);
        ensure!(
            end.is_some_and(|e| e <= file_len),
            "its {what} (bytes {} to {}) runs past the end of the file ({file_len} bytes): the file is truncated or corrupt",
            s.offset,
            s.offset.saturating_add(s.size)
        );
        Ok(s)
    }

    fn read(&self, file: &mut File) -> std::io::Result<Vec<u8>> {
        file.seek(SeekFrom::Start(self.offset))?;
        // Checked against the file's length, so this allocates no more than the file holds.
        let mut buf = vec![0u8; self.size as usize];
        file.read_exact(&mut buf)?;
        Ok(buf)
    }
}

fn read_file_layout(file: &mut File, len: u64, size: u64) -> Result<Layout> {
    ensure!(
        size == FILE_HEADER_LEN || size == OLD_FILE_HEADER_LEN,
        "its header says it is {size} bytes long (perf writes {FILE_HEADER_LEN})"
    );
    ensure!(
        len >= size,
        "{len} bytes, shorter than its {size}-byte header"
    );
    let mut h = vec![0u8; size as usize];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut h).context("reading the header")?;
    let attr_size = u64_at(&h, 16).unwrap_or(0);
    ensure!(
        (ATTR_SIZE_VER0 as u64 + SECTION_LEN..=1 << 16).contains(&attr_size),
        "its attribute entries are {attr_size} bytes long, which no perf writes"
    );
    let attrs = Section::at(&h, 24, "attribute section", len)?;
    let data = Section::at(&h, 40, "data section", len)?;
    let event_types = Section::at(&h, 56, "event-types section", len)?;
    ensure!(
        attrs.size > 0 && attrs.size % attr_size == 0,
        "its attribute section ({} bytes) does not hold whole {attr_size}-byte entries",
        attrs.size
    );

    let raw = attrs.read(file).context("reading the attribute section")?;
    let entry = attr_size as usize;
    let attr_len = entry - SECTION_LEN as usize;
    let mut events = Vec::new();
    for (i, e) in raw.chunks_exact(entry).enumerate() {
        let attr = one_attr(&e[..attr_len]).with_context(|| format!("attribute {i}"))?;
        let ids = Section::at(e, attr_len, &format!("id list of attribute {i}"), len)?;
        ensure!(
            ids.size % 8 == 0,
            "the id list of attribute {i} is not whole u64s"
        );
        let ids = ids
            .read(file)
            .with_context(|| format!("reading the ids of attribute {i}"))?;
        events.push(FileEvent {
            attr,
            ids: ids.chunks_exact(8).filter_map(|c| u64_at(c, 0)).collect(),
            perf_name: None,
        });
    }

    // perf writes the data section's size (and the features) only when it exits: a perf
    // killed while recording leaves 0 here, its records after the header all the same. (A
    // finished file always has data: perf's own records at least.)
    ensure!(
        data.size > 0,
        "its header counts no data: perf was stopped before it finished the file"
    );
    // The feature table follows the data section: one section per feature bit set.
    let mut event_desc = None;
    if size == FILE_HEADER_LEN {
        let bits: Vec<u32> = (0..256u32)
            .filter(|&b| {
                u64_at(&h, 72 + (b / 64) as usize * 8).is_some_and(|w| w & (1 << (b % 64)) != 0)
            })
            .collect();
        let table_at = data.offset + data.size;
        let table_len = bits.len() as u64 * SECTION_LEN;
        ensure!(
            table_at.checked_add(table_len).is_some_and(|e| e <= len),
            "its feature table (bytes {table_at} to {}) runs past the end of the file ({len} bytes): the file is truncated (perf was stopped before it finished writing?) or corrupt",
            table_at.saturating_add(table_len)
        );
        file.seek(SeekFrom::Start(table_at))?;
        let mut table = vec![0u8; table_len as usize];
        file.read_exact(&mut table)
            .context("reading the feature table")?;
        for (k, &bit) in bits.iter().enumerate() {
            let s = Section::at(&table, k * 16, &format!("feature section {bit}"), len)?;
            if bit == Feature::EVENT_DESC.0 {
                event_desc = Some(s.read(file).context("reading the event descriptions")?);
            }
        }
    }
    match &event_desc {
        Some(d) => name_events(&mut events, &parse_event_desc(d)?),
        // The crate would then read the pre-2012 event-types section, whose id lists it
        // allocates from without bounds: such files are refused rather than trusted.
        None if event_types.size != 0 => {
            bail!("it uses the event-types section of perf before 3.x, which is not supported")
        }
        None => {}
    }
    Ok(Layout {
        pipe: false,
        events,
    })
}

/// The attr bytes of an entry, checked: at least the first version of the struct, and no
/// longer than its slot.
fn one_attr(slot: &[u8]) -> Result<Vec<u8>> {
    let size = u32_at(slot, 4).unwrap_or(0) as usize;
    ensure!(
        (ATTR_SIZE_VER0..=slot.len()).contains(&size),
        "its perf_event_attr says it is {size} bytes long (room for {})",
        slot.len()
    );
    Ok(slot[..size].to_vec())
}

/// perf's pipe format: the header, then HEADER_ATTR and HEADER_FEATURE records before the
/// first event record (where the crate also stops looking for them).
fn read_pipe_layout(file: &mut File) -> Result<Layout> {
    let mut r = BufReader::new(file);
    let mut events = Vec::new();
    let mut desc = None;
    let mut at = PIPE_HEADER_LEN;
    loop {
        let mut h = [0u8; 8];
        match r.read_exact(&mut h) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e).context("reading a record header"),
        }
        let type_ = u32_at(&h, 0).unwrap_or(0);
        let size = u16::from_le_bytes([h[6], h[7]]);
        ensure!(
            size >= 8,
            "the record at byte {at} has size {size}, less than its header"
        );
        if type_ != PERF_RECORD_HEADER_ATTR && type_ != PERF_RECORD_HEADER_FEATURE {
            break;
        }
        let mut body = vec![0u8; usize::from(size) - 8];
        r.read_exact(&mut body)
            .with_context(|| format!("the record at byte {at} is cut short"))?;
        if type_ == PERF_RECORD_HEADER_ATTR {
            let attr =
                one_attr(&body).with_context(|| format!("the attribute record at byte {at}"))?;
            let ids = &body[attr.len()..];
            ensure!(
                ids.len() % 8 == 0,
                "the attribute record at byte {at} has a partial id"
            );
            events.push(FileEvent {
                attr,
                ids: ids.chunks_exact(8).filter_map(|c| u64_at(c, 0)).collect(),
                perf_name: None,
            });
        } else if u64_at(&body, 0) == Some(u64::from(Feature::EVENT_DESC.0)) {
            desc = Some(parse_event_desc(&body[8..])?);
        }
        at += u64::from(size);
    }
    ensure!(!events.is_empty(), "it describes no perf event");
    if let Some(d) = &desc {
        name_events(&mut events, d);
    }
    Ok(Layout { pipe: true, events })
}

/// HEADER_EVENT_DESC: `u32 nr, u32 attr_size`, then per event the attr, `u32 nr_ids`, a
/// string and the ids. Every count is checked against the bytes left, so the crate, which
/// parses the same section, allocates nothing unbounded from it.
fn parse_event_desc(b: &[u8]) -> Result<Vec<(String, Vec<u64>)>> {
    let bad =
        |what: &str| anyhow!("its event descriptions (HEADER_EVENT_DESC) are corrupt: {what}");
    let nr = u32_at(b, 0).ok_or_else(|| bad("no count"))? as usize;
    let asz = u32_at(b, 4).ok_or_else(|| bad("no attribute size"))? as usize;
    if asz < ATTR_SIZE_VER0 {
        return Err(bad("attributes shorter than any perf_event_attr"));
    }
    if nr > b.len() / asz {
        return Err(bad("more events than the section holds"));
    }
    let mut p = 8usize;
    let mut out = Vec::with_capacity(nr);
    for _ in 0..nr {
        p = p
            .checked_add(asz)
            .filter(|&q| q <= b.len())
            .ok_or_else(|| bad("an attribute runs past its end"))?;
        let n_ids = u32_at(b, p).ok_or_else(|| bad("an id count runs past its end"))? as usize;
        let slen = u32_at(b, p + 4).ok_or_else(|| bad("a name runs past its end"))? as usize;
        p += 8;
        let name = b
            .get(p..p.saturating_add(slen))
            .ok_or_else(|| bad("a name runs past its end"))?;
        p += slen;
        let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
        let name = String::from_utf8_lossy(&name[..end]).into_owned();
        let ids = b
            .get(
                p..n_ids
                    .checked_mul(8)
                    .and_then(|n| p.checked_add(n))
                    .unwrap_or(usize::MAX),
            )
            .ok_or_else(|| bad("an id list runs past its end"))?;
        p += ids.len();
        out.push((
            name,
            ids.chunks_exact(8).filter_map(|c| u64_at(c, 0)).collect(),
        ));
    }
    Ok(out)
}

/// Gives each event its perf name, matched by id (or by position for events without ids).
fn name_events(events: &mut [FileEvent], desc: &[(String, Vec<u64>)]) {
    for (i, e) in events.iter_mut().enumerate() {
        let by_id = e
            .ids
            .first()
            .and_then(|id| desc.iter().find(|(_, ids)| ids.contains(id)));
        if let Some((name, _)) = by_id.or_else(|| desc.get(i).filter(|_| e.ids.is_empty())) {
            e.perf_name = Some(name.clone());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Feature sections the crate does not parse, or parses with unbounded allocations.

/// A `perf_header_string`: `u32 len`, then `len` bytes (NUL-padded). Returns it and the rest.
fn header_string(b: &[u8]) -> Option<(String, &[u8])> {
    let len = u32_at(b, 0)? as usize;
    let s = b.get(4..4usize.checked_add(len)?)?;
    let end = s.iter().position(|&c| c == 0).unwrap_or(s.len());
    Some((
        String::from_utf8_lossy(&s[..end]).into_owned(),
        &b[4 + len..],
    ))
}

fn feature_string(pf: &PerfFile, f: Feature) -> Option<String> {
    pf.feature_section_data(f)
        .and_then(header_string)
        .map(|(s, _)| s)
        .filter(|s| !s.is_empty())
}

/// HEADER_CMDLINE: `u32 n`, then n strings.
fn command_line(pf: &PerfFile) -> Vec<String> {
    let Some(b) = pf.feature_section_data(Feature::CMDLINE) else {
        return Vec::new();
    };
    let n = u32_at(b, 0).unwrap_or(0);
    let mut rest = &b[4.min(b.len())..];
    let mut out = Vec::new();
    for _ in 0..n {
        let Some((s, r)) = header_string(rest) else {
            break;
        };
        out.push(s);
        rest = r;
    }
    out
}

/// HEADER_PMU_MAPPINGS: `u32 n`, then n × (`u32 type`, string).
fn pmu_names(pf: &PerfFile) -> HashMap<u32, String> {
    let mut out = HashMap::new();
    let Some(b) = pf.feature_section_data(Feature::PMU_MAPPINGS) else {
        return out;
    };
    let n = u32_at(b, 0).unwrap_or(0);
    let mut rest = &b[4.min(b.len())..];
    for _ in 0..n {
        let Some(t) = u32_at(rest, 0) else { break };
        let Some((s, r)) = header_string(&rest[4..]) else {
            break;
        };
        out.insert(t, s);
        rest = r;
    }
    out
}

/// The PMU name FORMAT.md's `pmu` field uses.
fn pmu_of(type_: u32, pmus: &HashMap<u32, String>) -> String {
    match type_ {
        0 | 3 | 4 => "cpu".into(),
        1 => "software".into(),
        2 => "tracepoint".into(),
        5 => "breakpoint".into(),
        t => pmus.get(&t).cloned().unwrap_or_else(|| format!("pmu-{t}")),
    }
}

/// Package, die and core of each available CPU, from HEADER_CPU_TOPOLOGY: two lists of
/// sibling strings, then `(u32 core, u32 socket)` per CPU, then (perf ≥ 5.2) a list of die
/// siblings and `u32 die` per CPU. perf writes -1 for a CPU that was offline.
fn cpu_topology(b: &[u8], n_cpus: usize) -> Option<Vec<(u32, u32, u32)>> {
    fn skip_strings(b: &[u8]) -> Option<&[u8]> {
        let n = u32_at(b, 0)?;
        let mut rest = b.get(4..)?;
        for _ in 0..n {
            rest = header_string(rest)?.1;
        }
        Some(rest)
    }
    let rest = skip_strings(skip_strings(b)?)?;
    let mut out = Vec::with_capacity(n_cpus.min(rest.len() / 8));
    for c in 0..n_cpus {
        out.push((u32_at(rest, c * 8 + 4)?, UNKNOWN, u32_at(rest, c * 8)?));
    }
    // Dies came later; their absence is no error.
    if let Some(dies) = rest.get(n_cpus * 8..).and_then(skip_strings) {
        for (c, t) in out.iter_mut().enumerate() {
            if let Some(d) = u32_at(dies, c * 4) {
                t.1 = d;
            }
        }
    }
    Some(out)
}

/// NUMA node of each CPU, from HEADER_NUMA_TOPOLOGY: `u32 n`, then per node `u32 id`,
/// `u64 total`, `u64 free`, and its CPU list as a string ("0-3,8").
fn numa_nodes(b: &[u8]) -> HashMap<u32, u32> {
    let mut out = HashMap::new();
    let n = u32_at(b, 0).unwrap_or(0);
    let mut rest = &b[4.min(b.len())..];
    for _ in 0..n {
        let Some(node) = u32_at(rest, 0) else { break };
        let Some((list, r)) = rest.get(20..).and_then(header_string) else {
            break;
        };
        for cpu in cpu_list(&list) {
            out.insert(cpu, node);
        }
        rest = r;
    }
    out
}

/// A kernel CPU list ("0-3,8,10-11"); malformed parts are skipped.
fn cpu_list(s: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.trim().parse::<u32>(), b.trim().parse::<u32>()) {
            // A bound on the span keeps a corrupt list from making a huge vector.
            if a <= b && b - a < 1 << 16 {
                out.extend(a..=b);
            }
        }
    }
    out
}

/// The CPUs of the trace info: every available CPU, online unless the topology says it was
/// not, with its package, die, core and NUMA node where the file has them.
fn cpus(pf: &PerfFile, seen: &BTreeSet<u32>, notes: &mut Vec<String>) -> Vec<CpuInfo> {
    let nr = pf.nr_cpus().ok().flatten();
    let avail = nr.map_or(0, |n| n.nr_cpus_available) as usize;
    // Bounded by the topology the file can describe: a corrupt count makes no huge list.
    let avail = avail.min(1 << 16);
    let online = nr.map_or(0, |n| n.nr_cpus_online) as usize;
    let topo = pf
        .feature_section_data(Feature::CPU_TOPOLOGY)
        .and_then(|b| cpu_topology(b, avail));
    if topo.is_none() {
        notes.push("the perf.data has no CPU topology: every CPU is put in package 0".into());
    }
    let numa = pf
        .feature_section_data(Feature::NUMA_TOPOLOGY)
        .map(numa_nodes)
        .unwrap_or_default();
    let mut all: BTreeMap<u32, CpuInfo> = BTreeMap::new();
    for c in 0..avail {
        let cpu = c as u32;
        let (package, die, core, online) = match &topo {
            Some(t) => {
                let (p, d, k) = t[c];
                (p, d, k, p != UNKNOWN)
            }
            None => (0, UNKNOWN, UNKNOWN, c < online),
        };
        all.insert(
            cpu,
            CpuInfo {
                cpu,
                online,
                package,
                die,
                core,
                numa_node: numa.get(&cpu).copied().unwrap_or(UNKNOWN),
            },
        );
    }
    // A CPU with records was online, whatever the header says.
    for &cpu in seen {
        all.entry(cpu)
            .or_insert(CpuInfo {
                cpu,
                online: true,
                package: if topo.is_some() { UNKNOWN } else { 0 },
                die: UNKNOWN,
                core: UNKNOWN,
                numa_node: UNKNOWN,
            })
            .online = true;
    }
    all.into_values().collect()
}

// ---------------------------------------------------------------------------------------------
// The records: one stream per CPU, decoded with the trace's own decoder as they are placed.

/// Records placed so far, per CPU, cut into blocks.
#[derive(Debug, Default)]
struct Streams {
    /// (cpu, flags, ring offset, bytes), in the order they filled.
    blocks: Vec<(u32, u32, u64, Vec<u8>)>,
    open: BTreeMap<(u32, u32), Vec<u8>>,
    /// Bytes placed per (cpu, flags): the "ring offset" of the next block.
    placed: HashMap<(u32, u32), u64>,
}

impl Streams {
    fn push(&mut self, cpu: u32, flags: u32, record: &[u8]) {
        let buf = self.open.entry((cpu, flags)).or_default();
        let full = (!buf.is_empty() && buf.len() + record.len() > BLOCK_BYTES)
            .then(|| std::mem::replace(buf, Vec::with_capacity(BLOCK_BYTES)));
        buf.extend_from_slice(record);
        if let Some(full) = full {
            self.seal(cpu, flags, full);
        }
    }

    fn seal(&mut self, cpu: u32, flags: u32, bytes: Vec<u8>) {
        let at = self.placed.entry((cpu, flags)).or_default();
        let offset = *at;
        *at += bytes.len() as u64;
        self.blocks.push((cpu, flags, offset, bytes));
    }

    /// Every block: synthesized ones first (the state at start, as pws-record writes it).
    fn finish(mut self) -> Vec<(u32, u32, u64, Vec<u8>)> {
        for ((cpu, flags), bytes) in std::mem::take(&mut self.open) {
            if !bytes.is_empty() {
                self.seal(cpu, flags, bytes);
            }
        }
        self.blocks
            .sort_by_key(|b| b.1 & PERF_DATA_SYNTHESIZED == 0);
        self.blocks
    }
}

/// What the conversion counted.
#[derive(Debug, Default)]
struct Counts {
    kept: u64,
    synthesized: u64,
    /// Why records were dropped → how many, and the first message.
    dropped: BTreeMap<&'static str, (u64, String)>,
    user: BTreeMap<String, u64>,
    per_cpu: BTreeMap<u32, CpuStats>,
    samples_per_event: BTreeMap<usize, u64>,
    cgroup_records: u64,
    switch_records: u64,
    first_ns: Option<u64>,
    last_ns: u64,
    /// Event id → CPU, from the records themselves.
    id_cpu: HashMap<u64, u32>,
}

impl Counts {
    fn drop(&mut self, why: &'static str, detail: impl FnOnce() -> String) {
        let e = self.dropped.entry(why).or_insert_with(|| (0, detail()));
        e.0 += 1;
    }

    fn see_time(&mut self, t: u64) {
        if t > 0 {
            self.first_ns = Some(self.first_ns.map_or(t, |f| f.min(t)));
            self.last_ns = self.last_ns.max(t);
        }
    }
}

/// Places one kernel record (header and body) on its CPU's stream. `synth_id` is the event id
/// given to perf's synthesized records, whose sample_id trailer perf leaves zeroed.
fn place(
    attrs: &PerfAttrs,
    events: &[FileEvent],
    synth_id: Option<u64>,
    record: &mut [u8],
    streams: &mut Streams,
    counts: &mut Counts,
) {
    let kind = u32_at(record, 0).unwrap_or(0);
    let n = record.len();
    let mut flags = 0;
    // perf synthesizes the tasks, mmaps and cgroups that existed at start with a zeroed
    // sample_id; they decode once their identifier names a real event.
    if kind != pp::PERF_RECORD_SAMPLE && n >= 16 && u64_at(record, n - 8) == Some(0) {
        if let Some(id) = synth_id {
            record[n - 8..].copy_from_slice(&id.to_le_bytes());
            flags = PERF_DATA_SYNTHESIZED;
        }
    }
    let decoded = match attrs.records(record).next() {
        Some(Ok(r)) => r,
        Some(Err(e)) => {
            return counts.drop("the trace's perf decoder cannot read them", || {
                e.to_string()
            });
        }
        None => return counts.drop("empty", String::new),
    };
    let id = match &decoded {
        PerfRecord::Sample(s) => {
            *counts.samples_per_event.entry(s.id.event).or_default() += 1;
            Some(s.id)
        }
        PerfRecord::Switch { id, .. } => {
            counts.switch_records += 1;
            Some(*id)
        }
        PerfRecord::Cgroup { id, .. } => {
            counts.cgroup_records += 1;
            Some(*id)
        }
        PerfRecord::Comm { id, .. }
        | PerfRecord::Fork { id, .. }
        | PerfRecord::Exit { id, .. }
        | PerfRecord::Lost { id, .. }
        | PerfRecord::LostSamples { id, .. }
        | PerfRecord::Throttle { id, .. } => Some(*id),
        PerfRecord::UnknownEvent { ident, .. } => {
            let ident = *ident;
            return counts.drop("they name no event of the file", || {
                format!("record type {kind} with identifier {ident}")
            });
        }
        PerfRecord::Other { .. } => None,
    };
    // Records the decoder does not interpret (MMAP2, KSYMBOL…) still carry the sample_id
    // trailer, read here; a non-sample record has one only with sample_id_all.
    let (cpu, time) = match id {
        Some(id) => {
            let e = &events[id.event];
            let carried = kind == pp::PERF_RECORD_SAMPLE || e.flags() & FLAG_SAMPLE_ID_ALL != 0;
            let has = |f: u64| carried && e.sample_type() & f != 0;
            (
                has(pp::sample::CPU).then_some(id.cpu),
                has(pp::sample::TIME).then_some(id.time),
            )
        }
        None => trailer_cpu_time(attrs, events, record),
    };
    let Some(cpu) = cpu else {
        return counts.drop(
            "they carry no CPU (PERF_SAMPLE_CPU with sample_id_all)",
            || format!("record type {kind}"),
        );
    };
    if flags == 0 {
        if let Some(t) = time {
            counts.see_time(t);
        }
    }
    if let Some(ident) = identifier_of(kind, record) {
        counts.id_cpu.entry(ident).or_insert(cpu);
    }
    let st = counts.per_cpu.entry(cpu).or_insert(CpuStats {
        cpu,
        ..CpuStats::default()
    });
    st.bytes += n as u64;
    match decoded {
        PerfRecord::Lost { lost, .. } => {
            st.lost_events += 1;
            st.lost_records += lost;
        }
        PerfRecord::Throttle { unthrottle, .. } => {
            if unthrottle {
                st.unthrottled += 1;
            } else {
                st.throttled += 1;
            }
        }
        _ => {}
    }
    if flags == PERF_DATA_SYNTHESIZED {
        counts.synthesized += 1;
    } else {
        counts.kept += 1;
    }
    streams.push(cpu, flags, record);
}

/// PERF_SAMPLE_IDENTIFIER of a record: the first u64 of a sample's body, the last of others.
fn identifier_of(kind: u32, record: &[u8]) -> Option<u64> {
    if kind == pp::PERF_RECORD_SAMPLE {
        u64_at(record, 8)
    } else {
        u64_at(record, record.len().checked_sub(8)?)
    }
}

/// CPU and time from the sample_id trailer of a record the decoder leaves uninterpreted.
fn trailer_cpu_time(
    attrs: &PerfAttrs,
    events: &[FileEvent],
    record: &[u8],
) -> (Option<u32>, Option<u64>) {
    let n = record.len();
    let Some(e) = u64_at(record, n.saturating_sub(8))
        .and_then(|id| attrs.event_of(id))
        .map(|i| &events[i])
    else {
        return (None, None);
    };
    let t = e.sample_type();
    if e.sample_id_len() == 0 || n < 8 + e.sample_id_len() {
        return (None, None);
    }
    // From the end: IDENTIFIER, CPU (u32 cpu, u32 reserved), STREAM_ID, ID, TIME.
    let mut from_end = 8;
    let cpu = (t & pp::sample::CPU != 0).then(|| {
        from_end += 8;
        u32_at(record, n - from_end)
    });
    for f in [pp::sample::STREAM_ID, pp::sample::ID] {
        if t & f != 0 {
            from_end += 8;
        }
    }
    let time = (t & pp::sample::TIME != 0).then(|| {
        from_end += 8;
        u64_at(record, n - from_end)
    });
    (cpu.flatten(), time.flatten())
}

/// perf's name of one of its own record types (tools/lib/perf/include/perf/event.h).
fn user_record_name(t: u32) -> String {
    const NAMES: [&str; 20] = [
        "HEADER_ATTR",
        "HEADER_EVENT_TYPE",
        "HEADER_TRACING_DATA",
        "HEADER_BUILD_ID",
        "FINISHED_ROUND",
        "ID_INDEX",
        "AUXTRACE_INFO",
        "AUXTRACE",
        "AUXTRACE_ERROR",
        "THREAD_MAP",
        "CPU_MAP",
        "STAT_CONFIG",
        "STAT",
        "STAT_ROUND",
        "EVENT_UPDATE",
        "TIME_CONV",
        "HEADER_FEATURE",
        "COMPRESSED",
        "FINISHED_INIT",
        "COMPRESSED2",
    ];
    t.checked_sub(PERF_RECORD_HEADER_ATTR)
        .and_then(|i| NAMES.get(i as usize))
        .map_or_else(|| format!("type {t}"), |n| (*n).to_owned())
}

/// PERF_RECORD_ID_INDEX: `u64 nr`, then nr × `{id, idx, cpu, tid}` u64s.
fn id_index(b: &[u8], out: &mut HashMap<u64, u32>) {
    let nr = u64_at(b, 0).unwrap_or(0);
    let fit = (b.len().saturating_sub(8) / 32) as u64;
    for k in 0..nr.min(fit) as usize {
        let at = 8 + k * 32;
        if let (Some(id), Some(cpu)) = (u64_at(b, at), u64_at(b, at + 16)) {
            if let Ok(cpu) = u32::try_from(cpu) {
                out.insert(id, cpu);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The conversion.

fn convert(file: File, layout: &Layout, path: &Path) -> Result<(Trace, Vec<String>)> {
    // Caveats found on the way; they follow the summary in the notes.
    let mut caveats = Vec::new();
    let events = &layout.events;
    for e in events {
        ensure!(
            e.sample_type() & pp::sample::IDENTIFIER != 0,
            "event {} has no PERF_SAMPLE_IDENTIFIER, which the trace format needs to tell events apart: record with `perf record --sample-identifier`",
            e.name()
        );
    }
    // The CPU of each id is filled in once the records have shown it.
    let mut perf_events: Vec<PerfEventInfo> = events
        .iter()
        .map(|e| PerfEventInfo {
            name: e.name(),
            attr: e.attr.clone(),
            ids: e.ids.iter().map(|&id| PerfEventId { cpu: 0, id }).collect(),
            ..PerfEventInfo::default()
        })
        .collect();
    let attrs = PerfAttrs::new(&perf_events).context("its perf_event_attrs")?;
    // perf's synthesized records get the id of an event whose trailer has their length:
    // perf sizes it after the first event, and a tracking event (task, comm, mmap) fits best.
    let trailer = events[0].sample_id_len();
    let tracking = FLAG_TASK | FLAG_COMM | FLAG_MMAP | FLAG_CGROUP;
    let synth_id = events
        .iter()
        .filter(|e| trailer > 0 && e.sample_id_len() == trailer && !e.ids.is_empty())
        .max_by_key(|e| e.flags() & tracking != 0)
        .and_then(|e| e.ids.first().copied());

    let reader = BufReader::new(file);
    let PerfFileReader {
        mut perf_file,
        mut record_iter,
    } = if layout.pipe {
        PerfFileReader::parse_pipe(reader)
    } else {
        PerfFileReader::parse_file(reader)
    }
    .map_err(|e| anyhow!("{e}"))
    .context("parsing it with linux-perf-data")?;

    let mut streams = Streams::default();
    let mut counts = Counts::default();
    let mut index_cpu = HashMap::new();
    let mut record = Vec::new();
    loop {
        let next = record_iter
            .next_record(&mut perf_file)
            .map_err(|e| anyhow!("{e}"))
            .with_context(|| {
                format!(
                    "reading its records (after {} of them): the file is truncated or corrupt",
                    counts.kept + counts.synthesized
                )
            })?;
        let Some(r) = next else { break };
        match r {
            PerfFileRecord::EventRecord { record: raw, .. } => {
                let body = raw.data.as_slice();
                let size = 8 + body.len();
                let Ok(size16) = u16::try_from(size) else {
                    counts.drop("longer than a perf record can be", || {
                        format!("{size} bytes")
                    });
                    continue;
                };
                record.clear();
                record.extend_from_slice(&raw.record_type.0.to_le_bytes());
                record.extend_from_slice(&raw.misc.to_le_bytes());
                record.extend_from_slice(&size16.to_le_bytes());
                record.extend_from_slice(&body);
                place(
                    &attrs,
                    events,
                    synth_id,
                    &mut record,
                    &mut streams,
                    &mut counts,
                );
            }
            PerfFileRecord::UserRecord(u) => {
                if u.record_type == UserRecordType::PERF_ID_INDEX {
                    id_index(&u.data.as_slice(), &mut index_cpu);
                }
                let name = user_record_name(u.record_type.record_type().0);
                *counts.user.entry(name).or_default() += 1;
            }
        }
    }
    let kernel_records = counts.kept + counts.synthesized;
    let dropped: u64 = counts.dropped.values().map(|d| d.0).sum();
    if kernel_records == 0 {
        let Some((why, (_, first))) = counts.dropped.iter().next() else {
            bail!("it holds no kernel records");
        };
        bail!("none of its {dropped} kernel records could be kept: {why} (first: {first})");
    }

    // Event ids and the CPU each was opened on: perf's id index, else what the records
    // showed, else the position in the id list (perf opens an event on its CPUs in order).
    let pmus = pmu_names(&perf_file);
    for (info, e) in perf_events.iter_mut().zip(events) {
        info.pmu = pmu_of(e.u32_at(ATTR_TYPE), &pmus);
        for (k, x) in info.ids.iter_mut().enumerate() {
            x.cpu = index_cpu
                .get(&x.id)
                .or_else(|| counts.id_cpu.get(&x.id))
                .copied()
                .unwrap_or(k as u32);
        }
    }

    let clock = clock_of(events, &mut caveats);
    let clock_data = perf_file.clock_data().ok().flatten();
    let start = counts
        .first_ns
        .or(clock_data.as_ref().map(|c| c.clockid_time_ns))
        .unwrap_or(0);
    let end = counts.last_ns.max(start);
    let mut pairs = Vec::new();
    let mut start_realtime = 0;
    match &clock_data {
        Some(c) if c.clockid == clock => {
            // perf reads gettimeofday (microseconds) then the event clock: the pair is good
            // to a microsecond or so.
            pairs.push(ClockPair {
                monotonic_ns: c.clockid_time_ns,
                realtime_ns: c.wall_clock_ns,
                uncertainty_ns: 1_000,
            });
            start_realtime = c
                .wall_clock_ns
                .wrapping_add(start.wrapping_sub(c.clockid_time_ns));
        }
        Some(c) => caveats.push(format!(
            "the perf.data's clock reference is for clockid {}, not the events' clock: times cannot be converted to UTC",
            c.clockid
        )),
        None if clock == PERF_DEFAULT_CLOCK => {}
        None => caveats.push(
            "the perf.data has no clock reference (HEADER_CLOCK_DATA, perf 5.11 and later): times cannot be converted to UTC".into(),
        ),
    }

    let seen: BTreeSet<u32> = counts.per_cpu.keys().copied().collect();
    let cpu_infos = cpus(&perf_file, &seen, &mut caveats);
    let argv = command_line(&perf_file);
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut metadata = vec![
        ("source".to_owned(), "perf.data".to_owned()),
        ("converted_from".to_owned(), file_name.clone()),
    ];
    if !argv.is_empty() {
        metadata.push(("perf_command_line".into(), argv.join(" ")));
    }
    if let Some(v) = feature_string(&perf_file, Feature::VERSION) {
        metadata.push(("perf_version".into(), v));
    }
    let names: Vec<String> = perf_events.iter().map(|e| e.name.clone()).collect();
    let info = TraceInfo {
        hostname: feature_string(&perf_file, Feature::HOSTNAME).unwrap_or_default(),
        kernel_release: feature_string(&perf_file, Feature::OSRELEASE).unwrap_or_default(),
        kernel_version: String::new(),
        arch: feature_string(&perf_file, Feature::ARCH).unwrap_or_default(),
        cpu_model: feature_string(&perf_file, Feature::CPUDESC).unwrap_or_default(),
        recorder: RECORDER.into(),
        recorder_version: feature_string(&perf_file, Feature::VERSION).unwrap_or_default(),
        command_line: argv,
        clock,
        start_monotonic_ns: start,
        start_realtime_ns: start_realtime,
        // perf.data does not say; 0 reads as unknown.
        page_size: 0,
        cpus: cpu_infos,
        perf_events,
        sources: vec![
            SourceInfo {
                kind: "perf".into(),
                name: "perf.data".into(),
                status: SourceStatus::Used,
                detail: format!(
                    "{file_name}: {} kernel records on {} CPUs; events {}",
                    kernel_records,
                    seen.len(),
                    names.join(", ")
                ),
            },
            SourceInfo {
                kind: "cgroups".into(),
                name: "PERF_RECORD_CGROUP".into(),
                status: if counts.cgroup_records > 0 {
                    SourceStatus::Used
                } else {
                    SourceStatus::Unavailable
                },
                detail: format!(
                    "{} cgroup records (perf record --all-cgroups); no cgroup tracepoints",
                    counts.cgroup_records
                ),
            },
            SourceInfo {
                kind: "energy".into(),
                name: "perf.data".into(),
                status: SourceStatus::Unavailable,
                detail: "a perf.data file holds no energy readings".into(),
            },
            SourceInfo {
                kind: "activations".into(),
                name: "perf.data".into(),
                status: SourceStatus::Unavailable,
                detail: "a perf.data file holds no function activations".into(),
            },
        ],
        metadata,
    };

    let mut notes = summary(events, &counts, &info, clock, !pairs.is_empty());
    notes.extend(caveats);

    let mut w = TraceWriter::new(Vec::new(), WriterOptions::default())?;
    w.write(&info)?;
    for (cpu, flags, offset, bytes) in streams.finish() {
        w.write_perf_data(cpu, flags, offset, &[&bytes])?;
    }
    if !pairs.is_empty() {
        w.write(&ClockSync { pairs })?;
    }
    let last_error = counts
        .dropped
        .iter()
        .next()
        .map(|(why, (_, first))| format!("{why}: {first}"))
        .unwrap_or_default();
    w.write(&Statistics {
        ts_ns: end,
        cpus: counts.per_cpu.values().cloned().collect(),
        sources: vec![SourceStats {
            name: "perf.data".into(),
            reads: kernel_records + dropped,
            errors: dropped,
            last_error,
        }],
    })?;
    let bytes = w.finish(end)?;
    let trace = Trace::from_vec(bytes)?;
    Ok((trace, notes))
}

/// The clock of the events' timestamps; a file whose events disagree keeps the first's.
fn clock_of(events: &[FileEvent], notes: &mut Vec<String>) -> u32 {
    let clock = events[0].clock();
    if events.iter().any(|e| e.clock() != clock) {
        notes.push(format!(
            "the perf.data's events use different clocks: times are taken as {}",
            clock_name(clock)
        ));
    }
    clock
}

fn clock_name(clock: u32) -> String {
    match clock {
        PERF_DEFAULT_CLOCK => "perf's default clock (the kernel's local_clock)".into(),
        0 => "CLOCK_REALTIME".into(),
        CLOCK_MONOTONIC => "CLOCK_MONOTONIC".into(),
        4 => "CLOCK_MONOTONIC_RAW".into(),
        7 => "CLOCK_BOOTTIME".into(),
        11 => "CLOCK_TAI".into(),
        c => format!("clockid {c}"),
    }
}

/// What the reader of the tables should know about this conversion.
fn summary(
    events: &[FileEvent],
    counts: &Counts,
    info: &TraceInfo,
    clock: u32,
    has_pair: bool,
) -> Vec<String> {
    let mut notes = Vec::new();
    notes.push(format!(
        "converted from perf.data: {} kernel records kept on {} CPUs, {} of them perf's synthesized state at start",
        counts.kept + counts.synthesized,
        counts.per_cpu.len(),
        counts.synthesized
    ));
    if clock == PERF_DEFAULT_CLOCK {
        notes.push(
            "timestamps are on perf's default clock (the kernel's local_clock), not CLOCK_MONOTONIC: times cannot be converted to UTC nor aligned with other traces; record with `-k CLOCK_MONOTONIC` for that".into(),
        );
    } else {
        notes.push(format!(
            "timestamps are on {} (perf record -k){}",
            clock_name(clock),
            if has_pair {
                ", placed in UTC by perf's clock reference"
            } else {
                ""
            }
        ));
    }
    for (why, (n, first)) in &counts.dropped {
        notes.push(format!("{n} records dropped: {why} (first: {first})"));
    }
    if !counts.user.is_empty() {
        let list: Vec<String> = counts
            .user
            .iter()
            .map(|(t, n)| format!("{n} {t}"))
            .collect();
        notes.push(format!(
            "perf's own records dropped (not kernel data): {}",
            list.join(", ")
        ));
    }
    let group_readers = events
        .iter()
        .filter(|e| e.sample_type() & pp::sample::READ != 0)
        .count();
    if group_readers == 0 {
        notes.push(
            "no event reads its group with its samples (PERF_SAMPLE_READ): the replay charges no CPU time; record with `-e '{cpu-clock/freq=1000/,context-switches/period=1/}:S'`".into(),
        );
    }
    let samples_every_switch = events.iter().any(|e| {
        e.u32_at(ATTR_TYPE) == 1
            && e.u64_at(ATTR_CONFIG) == 3
            && e.u64_at(ATTR_SAMPLE_PERIOD) == 1
            && e.flags() & FLAG_FREQ == 0
    });
    if !samples_every_switch {
        notes.push(
            "no context-switches event samples every switch (period 1): CPU time is only cut at timer samples, so short slices go to the task sampled next".into(),
        );
    }
    if events
        .iter()
        .all(|e| e.sample_type() & pp::sample::CGROUP == 0)
    {
        notes.push(
            "samples carry no cgroup (perf record --all-cgroups): CPU time cannot be charged to cgroups".into(),
        );
    }
    if events.iter().all(|e| e.flags() & FLAG_CONTEXT_SWITCH == 0) {
        notes.push("the file has no context-switch records (perf record --switch-events)".into());
    }
    let tracepoints: Vec<&str> = info
        .perf_events
        .iter()
        .filter(|e| e.pmu == "tracepoint")
        .map(|e| e.name.as_str())
        .collect();
    if !tracepoints.is_empty() {
        notes.push(format!(
            "tracepoint events ({}) are kept without their field layout (perf's tracing data is not converted): their raw fields are not decoded",
            tracepoints.join(", ")
        ));
    }
    let power: Vec<&str> = info
        .perf_events
        .iter()
        .filter(|e| e.pmu == "power")
        .map(|e| e.name.as_str())
        .collect();
    if power.is_empty() {
        notes.push(
            "no energy: a perf.data file holds no energy readings, so the energy tables are empty"
                .into(),
        );
    } else {
        notes.push(format!(
            "no energy: the power events of the perf.data ({}) are not converted into energy readings, so the energy tables are empty",
            power.join(", ")
        ));
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse_and_bad_parts_are_skipped() {
        assert_eq!(cpu_list("0-3,8,10-11"), vec![0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(cpu_list(" 2 \n"), vec![2]);
        assert_eq!(cpu_list("x,3-1,5"), vec![5]);
        assert!(
            cpu_list("0-4294967295").is_empty(),
            "a huge span is refused"
        );
    }

    fn string(s: &str) -> Vec<u8> {
        let mut b = Vec::new();
        let padded = (s.len() + 1).div_ceil(8) * 8;
        b.extend_from_slice(&(padded as u32).to_le_bytes());
        b.extend_from_slice(s.as_bytes());
        b.resize(4 + padded, 0);
        b
    }

    #[test]
    fn cpu_topology_gives_package_die_and_core() {
        let mut b = Vec::new();
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend(string("0-1"));
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend(string("0"));
        b.extend(string("1"));
        for (core, socket) in [(0u32, 0u32), (1, 0), (u32::MAX, u32::MAX)] {
            b.extend_from_slice(&core.to_le_bytes());
            b.extend_from_slice(&socket.to_le_bytes());
        }
        let without_dies = cpu_topology(&b, 3).unwrap();
        assert_eq!(without_dies[1], (0, UNKNOWN, 1));
        assert_eq!(without_dies[2].0, UNKNOWN, "an offline CPU");
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend(string("0-1"));
        for die in [0u32, 0, u32::MAX] {
            b.extend_from_slice(&die.to_le_bytes());
        }
        assert_eq!(cpu_topology(&b, 3).unwrap()[1], (0, 0, 1));
        assert_eq!(cpu_topology(&b[..20], 3), None, "cut short");
    }

    #[test]
    fn numa_nodes_map_cpus() {
        let mut b = 2u32.to_le_bytes().to_vec();
        for (node, list) in [(0u32, "0-1"), (1, "2,3")] {
            b.extend_from_slice(&node.to_le_bytes());
            b.extend_from_slice(&[0u8; 16]);
            b.extend(string(list));
        }
        let m = numa_nodes(&b);
        assert_eq!((m[&1], m[&3]), (0, 1));
        assert!(numa_nodes(&b[..10]).is_empty());
    }

    #[test]
    fn event_descriptions_are_bounds_checked() {
        let mut b = Vec::new();
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&64u32.to_le_bytes());
        b.extend_from_slice(&[0u8; 64]);
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend(string("cpu-clock"));
        b.extend_from_slice(&7u64.to_le_bytes());
        b.extend_from_slice(&8u64.to_le_bytes());
        let d = parse_event_desc(&b).unwrap();
        assert_eq!(d, vec![("cpu-clock".to_owned(), vec![7, 8])]);
        for cut in [4, 70, 80, b.len() - 1] {
            assert!(parse_event_desc(&b[..cut]).is_err(), "cut at {cut}");
        }
        let mut huge = b.clone();
        huge[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(
            parse_event_desc(&huge).is_err(),
            "a count beyond the section"
        );
        let mut ids = b;
        ids[72..76].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(
            parse_event_desc(&ids).is_err(),
            "an id count beyond the section"
        );
    }

    #[test]
    fn generic_events_get_pws_record_names() {
        assert_eq!(canonical_name(1, 0), Some("cpu-clock"));
        assert_eq!(canonical_name(0, 1 | (8 << 32)), Some("instructions"));
        assert_eq!(canonical_name(3, 0x10002), Some("llc-misses"));
        assert_eq!(canonical_name(9, 1), None);
    }
}
