//! One CPU's perf stream, replayed: exact CPU time and counter deltas per cgroup and interval,
//! per activation window, and the side-band facts (cgroup paths and lifecycle
//! tracepoints) the stream carries.
//!
//! The accounting rule (FORMAT.md, "How pws-record uses perf"): on one CPU, the span between two
//! consecutive group samples (timer samples and switch-out samples, both reading the group)
//! belongs to the task and cgroup of the later sample, and so do the counter deltas between
//! them. A `cgroup_attach_task` sample is a boundary: what ran before it belongs to the task's
//! old cgroup, and so is a switch-in from the idle task: what came before it was idle.

use std::collections::HashMap;

use rustc_hash::FxHashMap;

use pws_trace::perf::{GroupLayout, PerfAttrs, PerfRecord, ReadGroup};

use super::grid::Grid;

/// Cgroup key of the idle task (pid 0): kernel cgroup ids start at 1.
pub const IDLE: u64 = 0;
/// Cgroup key of time that could not be attributed (no cgroup in the sample, a gap).
pub const UNKNOWN: u64 = u64::MAX;
/// Counters that measure time: they measure CPU time again, and advance while a CPU idles.
pub const CLOCK_COUNTERS: [&str; 2] = ["cpu-clock", "task-clock"];

/// Bytes left unused after each buffer a walk writes at every sample. Two CPUs' walkers are
/// made one after the other and walked on two threads: their small buffers, allocated side by
/// side, shared cache lines, and each write took the line from the other core (the accounting
/// of two CPUs ran 2.7× slower on two threads than the same walks in two processes). With this
/// much room after it, no buffer's written head shares a line (or the line the spatial
/// prefetcher pairs with it) with another's.
const LINE_PAD_BYTES: usize = 128;

/// Makes `v`'s capacity at least `n` elements plus [`LINE_PAD_BYTES`].
fn reserve_padded<T>(v: &mut Vec<T>, n: usize) {
    let want = n + LINE_PAD_BYTES.div_ceil(std::mem::size_of::<T>().max(1));
    if v.capacity() < want {
        v.reserve_exact(want - v.len());
    }
}

/// Moves the entries of `map` whose key is `done` onto `out`, in the map's order.
fn move_out<K: Copy, V: Default>(
    map: &mut FxHashMap<K, V>,
    done: impl Fn(&K) -> bool,
    out: &mut Vec<(K, V)>,
) {
    map.retain(|k, v| {
        let moved = done(k);
        if moved {
            out.push((*k, std::mem::take(v)));
        }
        !moved
    });
}

/// CPU time and counter deltas.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    pub cpu_ns: u64,
    /// One value per counter column (see [`Columns`]); up to four without a heap allocation.
    pub counters: Counters,
}

/// A usage's counter values, inline up to four counters.
pub type Counters = smallvec::SmallVec<[f64; 4]>;

impl Usage {
    /// A usage of `ns` and one counter value `c` (tests make many).
    #[cfg(test)]
    pub fn one(ns: u64, c: f64) -> Self {
        Self {
            cpu_ns: ns,
            counters: smallvec::smallvec![c],
        }
    }

    /// Adds `part_ns` of a span of `span_ns` (`span` as f64): that share of `deltas`. The
    /// whole span (most spans lie in one interval) takes a share of 1.0 without dividing: the
    /// quotient is exactly 1.0, and the division was a sizeable part of a sample's charge.
    #[inline]
    fn add_share(&mut self, part_ns: u64, span_ns: u64, span: f64, deltas: &[f64]) {
        let share = match part_ns == span_ns {
            true => 1.0,
            false => part_ns as f64 / span,
        };
        self.add_part(part_ns, deltas, share);
    }

    fn add_part(&mut self, ns: u64, deltas: &[f64], share: f64) {
        self.cpu_ns += ns;
        if self.counters.len() < deltas.len() {
            self.counters.resize(deltas.len(), 0.0);
        }
        for (c, d) in self.counters.iter_mut().zip(deltas) {
            *c += d * share;
        }
    }

    pub fn add(&mut self, other: &Usage) {
        self.add_part(other.cpu_ns, &other.counters, 1.0);
    }

    /// Adds `f` × `other` (CPU time rounded to the nanosecond).
    pub fn add_scaled(&mut self, other: &Usage, f: f64) {
        if self.counters.len() < other.counters.len() {
            self.counters.resize(other.counters.len(), 0.0);
        }
        add_scaled_into(&mut self.cpu_ns, &mut self.counters, other, f);
    }
}

/// Adds `f` × `u` into a usage held as (`cpu_ns`, `counters`), `counters` at least as many as
/// `u`'s: its CPU time rounded to the nanosecond, each counter scaled. One arithmetic for
/// [`Usage::add_scaled`] and the activations' flat totals (`join::activation_totals`), so
/// their sums agree to the bit.
pub fn add_scaled_into(cpu_ns: &mut u64, counters: &mut [f64], u: &Usage, f: f64) {
    *cpu_ns += (u.cpu_ns as f64 * f).round() as u64;
    for (c, d) in counters.iter_mut().zip(&u.counters) {
        *c += d * f;
    }
}

/// Which events of the trace are counters read in the group, and their column.
#[derive(Debug, Clone)]
pub struct Columns {
    /// Event index → column.
    of_event: Vec<Option<usize>>,
    pub names: Vec<String>,
}

impl Columns {
    pub fn new(attrs: &PerfAttrs) -> Self {
        use pws_trace::perf::sample;
        let mut names: Vec<String> = Vec::new();
        let of_event = attrs
            .events
            .iter()
            .map(|e| {
                if e.sample_type & sample::READ == 0 || e.format.is_some() {
                    return None;
                }
                Some(match names.iter().position(|n| *n == e.name) {
                    Some(i) => i,
                    None => {
                        names.push(e.name.clone());
                        names.len() - 1
                    }
                })
            })
            .collect();
        Self { of_event, names }
    }
}

/// A span of one cgroup whose usage is kept apart (a segment of activation windows, see
/// `join::windows`): within one grid interval, never overlapping another of its cgroup.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub start: u64,
    pub end: u64,
    /// The caller's segment index.
    pub segment: usize,
}

/// One cgroup's [`Window`]s, in time order, numbered consecutively from `first`: their numbers
/// are not stored (an hour of a busy node holds 600 k, held from the join's plan to its end:
/// 16 B each rather than 24).
#[derive(Debug, Clone, Default)]
pub struct Segments {
    pub first: usize,
    /// (start, end) of each.
    pub spans: Vec<(u64, u64)>,
}

impl Segments {
    /// The windows from the `from`-th on.
    pub fn windows_from(&self, from: usize) -> impl Iterator<Item = Window> + '_ {
        self.spans
            .iter()
            .enumerate()
            .skip(from)
            .map(|(k, &(start, end))| Window {
                start,
                end,
                segment: self.first + k,
            })
    }

    /// How many of them end at or before `t` (they do not overlap: sorted by end too).
    pub fn ending_by(&self, t: u64) -> usize {
        self.spans.partition_point(|w| w.1 <= t)
    }
}

/// A lifecycle tracepoint seen in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracepoint {
    pub ts_ns: u64,
    /// Tracepoint name without the `cgroup:` system.
    pub name: String,
    pub cgroup_id: u64,
    /// Hierarchy id (`root` field); 0 on cgroup v2.
    pub root: u32,
    pub path: String,
    /// The task concerned (attach and transfer).
    pub pid: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuStats {
    pub records: u64,
    pub group_samples: u64,
    /// Tracepoint samples (counted in the accounting pass).
    pub tracepoints: u64,
    /// Cgroup records the accounting pass met (with `tracepoints`, the side band the perf
    /// index may say a block does not hold).
    pub cgroup_records: u64,
    pub lost_records: u64,
    /// Times the kernel throttled sampling (too many samples a tick): the span until sampling
    /// resumed is not charged.
    pub throttled: u64,
    /// Records naming an event id the trace does not know (another perf session's).
    pub unknown_ids: u64,
    /// Group samples that carried another session's identifier and time, placed in time by
    /// their group read's enabled time.
    pub foreign_ids: u64,
    /// Samples whose time went backwards: not charged.
    pub out_of_order: u64,
    /// Decode errors (the rest of that block is skipped), with the first message.
    pub decode_errors: u64,
    pub first_error: String,
    pub first_ns: u64,
    pub last_ns: u64,
}

/// One CPU's cells: (interval, cgroup key) and usage, sorted by key, each key once.
pub type Cells = Vec<((usize, u64), Usage)>;

/// The usage of cell `key` in sorted `cells`.
#[cfg(test)]
pub fn cell_of(cells: &Cells, key: (usize, u64)) -> Option<&Usage> {
    cells
        .binary_search_by_key(&key, |(k, _)| *k)
        .ok()
        .map(|i| &cells[i].1)
}

/// A cells map as sorted cells.
pub fn sorted_cells(map: FxHashMap<(usize, u64), Usage>) -> Cells {
    let mut v: Cells = map.into_iter().collect();
    v.sort_unstable_by_key(|(k, _)| *k);
    v
}

/// What one CPU's stream gave.
#[derive(Debug, Default)]
pub struct CpuReplay {
    pub cpu: u32,
    /// (interval, cgroup key) and usage, sorted by key: a vector once the walk is done (an
    /// hour of eight CPUs holds millions of cells, and a hash map's room for more took half as
    /// much again).
    pub cells: Cells,
    /// (segment index, interval) and usage inside the segment (see [`Window`]), one entry per
    /// key, in no particular order: a vector of the segments no later span can reach (a map
    /// of every segment of an hour of eight CPUs, with its room to grow, was the accounting's
    /// largest part).
    pub activations: Vec<((usize, usize), Usage)>,
    /// Side-band pass only: the lifecycle tracepoints and cgroup paths.
    pub tracepoints: Vec<Tracepoint>,
    pub cgroup_paths: Vec<(u64, String)>,
    /// Accounting pass: (time, pid, cgroup) each time a task is first seen in a cgroup, from
    /// its group samples (a few per task): what maps GPU processes to cgroups.
    pub pid_cgroups: Vec<(u64, u32, u64)>,
    pub stats: CpuStats,
}

impl CpuReplay {
    /// Appends the side band of a later block of the same CPU: the side-band pass walks each
    /// block on its own.
    pub fn append_side_band(&mut self, later: CpuReplay) {
        self.tracepoints.extend(later.tracepoints);
        self.cgroup_paths.extend(later.cgroup_paths);
        let (st, l) = (&mut self.stats, later.stats);
        st.records += l.records;
        st.lost_records += l.lost_records;
        st.unknown_ids += l.unknown_ids;
        st.decode_errors += l.decode_errors;
        if st.first_error.is_empty() {
            st.first_error = l.first_error;
        }
    }
}

/// A sample id's event and group layout, when its samples are group samples of a counter
/// column read at fixed offsets.
type FastSample = Option<(usize, GroupLayout)>;

/// Walks one CPU's blocks, fed one at a time in trace order, so only one block is inflated at
/// a time.
pub struct Walker<'g> {
    attrs: &'g PerfAttrs,
    columns: &'g Columns,
    grid: &'g Grid,
    windows: &'g HashMap<u64, Segments>,
    out: CpuReplay,
    /// The instant the last span ended (None before the first and after a gap).
    last_time: Option<u64>,
    /// The counters' values by column at `last_time`, as far as known.
    values: Vec<Option<u64>>,
    /// Looked up at every span: FxHash, as SipHash showed in profiles.
    cgroup_of_pid: FxHashMap<u32, u64>,
    /// The last group sample's (task, cgroup), as written to `cgroup_of_pid`: a switch-in whose
    /// previous task is another was preceded by an unsampled span.
    last_pid_cgroup: Option<(u32, u64)>,
    /// The cells while the walk charges them (`out.cells` once it is done).
    cells: FxHashMap<(usize, u64), Usage>,
    /// The segments' usage while the walk charges them (`out.activations` once final).
    segments: FxHashMap<(usize, usize), Usage>,
    /// The cell charged last, taken out of `cells` while it is: a CPU charges the same
    /// (interval, cgroup) many spans in a row. Moved, not summed apart, so each cell adds the
    /// same terms in the same order as without it.
    open_cell: Option<((usize, u64), Usage)>,
    /// The segment charged last, taken out of `segments` as `open_cell` is from `cells`.
    open_segment: Option<((usize, usize), Usage)>,
    /// The windows of the last cgroup charged, and the first of them that may still overlap
    /// a span: a CPU charges the same cgroup many spans in a row, so the map is seldom
    /// consulted, and its spans only move forward, so neither is the windows' binary search.
    last_windows: Option<(u64, Option<&'g Segments>, usize)>,
    deltas: Vec<f64>,
    /// False for the side-band scan: only tracepoints and cgroup records.
    accounting: bool,
    /// The grid interval of the last span (a CPU's spans move forward in time).
    hint: usize,
    /// Column of each value of the last group read, by its id: a CPU's group reads the same
    /// ids in the same order every time, so the id lookups are done once.
    read_cols: Vec<(u64, Option<usize>)>,
    /// The event of the last group read's first id (its leader): looked up once, not per sample.
    read_leader: Option<(u64, Option<usize>)>,
    /// The accounting's last sample ids, with their event and group layout when their samples
    /// are group samples read at fixed offsets (most of a stream: one leader, one switch
    /// sampler), else None: those go through the general decoder.
    fast_ids: [Option<(u64, FastSample)>; 2],
    /// The side-band pass's last sample ids and whether they are tracepoints' (a stream
    /// alternates between few ids): the id lookup is a binary search over every CPU's ids.
    side_ids: [Option<(u64, bool)>; 2],
    /// Columns that count time (`cpu-clock`, `task-clock`): they advance while the CPU idles,
    /// unlike hardware counters, which stop in a halted core.
    clock_cols: Vec<bool>,
    /// An idle span [start, end) ended by a switch record rather than a reading: the next
    /// group sample's deltas also cover it, and its clock counters' share is the idle span's.
    unread_idle: Option<(u64, u64)>,
    /// (time, leader's time enabled) of the last group sample with our own identifier: a
    /// sample stamped by another session is placed by its enabled time from there (the
    /// leader is enabled all along, so both advance together).
    anchor: Option<(u64, u64)>,
    /// Where the next group samples' spans charge only the open cell and the open segment,
    /// whole (see [`Stretch`]); None where that is not known.
    stretch: Option<Stretch>,
    /// Tests compare the walk with and without the [`Stretch`] shortcut.
    #[cfg(test)]
    no_shortcut: bool,
    /// Spans charged by the shortcut (tests check it is taken).
    #[cfg(test)]
    shortcut_spans: u64,
}

/// Where a group sample's span charges only the open cell and the open segment, whole: from
/// the last span's end (a group sample charged by the general path of [`Walker::charge`])
/// to the end of its grid interval and of the activation window it is in, or to the next
/// window of its cgroup. A span of that cgroup inside it, read by the same group layout,
/// takes its whole CPU time and deltas (a share of 1.0) to that cell and that segment and
/// nothing else. The shortcut ([`Walker::feed_stretch`]) charges a run of such samples in one
/// loop, adding the same terms to the same sums in the same order as [`Walker::charge`],
/// without the interval split, the windows' walk, the deltas' buffer and a call per sample.
/// Most samples are such spans: a CPU runs one container for many samples, and an interval
/// holds a hundred.
///
/// It holds while the walk's spans only move on: the general path, the only one that may
/// open other cells or go back, drops it; a gap leaves no last span for the shortcut to
/// start from; and the cells drained between blocks are those of earlier intervals.
#[derive(Debug, Clone, Copy)]
struct Stretch {
    cgroup: u64,
    /// A span of the stretch ends at `hi` at the latest.
    hi: u64,
    /// The open cell's key (interval, cgroup), and the open segment's (segment, interval)
    /// where the stretch is inside a window.
    cell: (usize, u64),
    segment: Option<(usize, usize)>,
    /// Values in the group read, their ids and their columns (each column once).
    entries: usize,
    ids: [u64; STRETCH_READ],
    cols: [u8; STRETCH_READ],
}

/// The most values a group read may have for the [`Stretch`] shortcut.
const STRETCH_READ: usize = 4;

impl<'g> Walker<'g> {
    pub fn new(
        attrs: &'g PerfAttrs,
        columns: &'g Columns,
        cpu: u32,
        grid: &'g Grid,
        windows: &'g HashMap<u64, Segments>,
    ) -> Self {
        let n = columns.names.len();
        let (mut values, mut deltas) = (Vec::new(), Vec::new());
        reserve_padded(&mut values, n);
        reserve_padded(&mut deltas, n);
        values.resize(n, None);
        deltas.resize(n, 0.0);
        Self {
            attrs,
            columns,
            grid,
            windows,
            out: CpuReplay {
                cpu,
                ..CpuReplay::default()
            },
            last_time: None,
            values,
            cgroup_of_pid: FxHashMap::default(),
            last_pid_cgroup: None,
            cells: FxHashMap::default(),
            segments: FxHashMap::default(),
            last_windows: None,
            open_cell: None,
            open_segment: None,
            deltas,
            accounting: true,
            hint: 0,
            read_cols: Vec::new(),
            read_leader: None,
            fast_ids: [None; 2],
            side_ids: [None; 2],
            clock_cols: columns
                .names
                .iter()
                .map(|n| CLOCK_COUNTERS.contains(&n.as_str()))
                .collect(),
            unread_idle: None,
            anchor: None,
            stretch: None,
            #[cfg(test)]
            no_shortcut: false,
            #[cfg(test)]
            shortcut_spans: 0,
        }
    }

    /// Makes this walker collect only the side band (lifecycle tracepoints and cgroup paths):
    /// the first pass, which the activation join needs before accounting.
    pub fn side_band(self) -> Self {
        Self {
            accounting: false,
            ..self
        }
    }

    pub fn finish(mut self) -> CpuReplay {
        if let Some((k, u)) = self.open_cell.take() {
            self.cells.insert(k, u);
        }
        if let Some((k, u)) = self.open_segment.take() {
            self.segments.insert(k, u);
        }
        self.out.activations.extend(self.segments.drain());
        let rest = sorted_cells(std::mem::take(&mut self.cells));
        let sorted = match (self.out.cells.last(), rest.first()) {
            (Some(a), Some(b)) => a.0 < b.0,
            _ => true,
        };
        self.out.cells.extend(rest);
        if !sorted {
            // A cell drained as final was charged again (no walk does that: a CPU's spans
            // move forward); kept right rather than fast: one entry per key, summed.
            let mut map: FxHashMap<(usize, u64), Usage> = FxHashMap::default();
            for (k, u) in std::mem::take(&mut self.out.cells) {
                map.entry(k).or_default().add(&u);
            }
            self.out.cells = sorted_cells(map);
        }
        self.out
    }

    /// Moves the cells no later span can reach from the map to the sorted output, so that the
    /// map holds the last stretch of the stream, not all of it (an hour of eight CPUs holds
    /// millions of cells, and a map of them all, grown by doubling and then copied to a vector,
    /// was the replay's peak). A CPU's spans start at its last charged instant (one that goes
    /// back is not charged), or at an idle span still waiting for its reading: the cells of
    /// earlier intervals are final.
    fn drain_final(&mut self) {
        const AT_LEAST: usize = 4096;
        if self.cells.len() < AT_LEAST {
            return;
        }
        if let Some(before) = self.final_before() {
            self.drain_before(before);
        }
    }

    /// The interval before which this CPU's cells are final: its spans start at its last
    /// charged instant, or at an idle span still waiting for its reading. None before its
    /// first charge.
    fn final_before(&self) -> Option<usize> {
        let last = self.last_time?;
        let from = self.unread_idle.map_or(last, |(ia, _)| ia.min(last));
        match self.grid.index(from) {
            Some(i) => Some(i),
            None if from < self.grid.start() => None,
            None => Some(self.grid.len()),
        }
    }

    fn drain_before(&mut self, before: usize) {
        if self.open_cell.as_ref().is_some_and(|(k, _)| k.0 < before) {
            let (k, u) = self.open_cell.take().expect("checked");
            self.cells.insert(k, u);
        }
        let mut done = Vec::new();
        move_out(&mut self.cells, |k| k.0 < before, &mut done);
        done.sort_unstable_by_key(|(k, _)| *k);
        self.out.cells.extend(done);
        // A segment lies in one interval: final with it.
        if self
            .open_segment
            .as_ref()
            .is_some_and(|(k, _)| k.1 < before)
        {
            let (k, u) = self.open_segment.take().expect("checked");
            self.segments.insert(k, u);
        }
        move_out(
            &mut self.segments,
            |k| k.1 < before,
            &mut self.out.activations,
        );
    }

    /// The cells that are final so far, sorted, and the interval before which every cell of
    /// this CPU is among those given (0 before its first charge): the accounting takes them
    /// round by round, so a walk holds its last stretch, not its stream.
    pub fn take_final(&mut self) -> (Cells, usize) {
        let before = self.final_before().unwrap_or(0);
        if before > 0 {
            self.drain_before(before);
        }
        (std::mem::take(&mut self.out.cells), before)
    }

    /// The window segments that are final so far (given with the cells by
    /// [`Walker::take_final`]), in no particular order.
    pub fn take_segments(&mut self) -> Vec<((usize, usize), Usage)> {
        std::mem::take(&mut self.out.activations)
    }

    /// Side-band records (tracepoint samples, cgroup records) the accounting has met so far.
    pub fn side_band_records(&self) -> u64 {
        self.out.stats.tracepoints + self.out.stats.cgroup_records
    }

    /// The last instant charged, if any: how far the walk has come in trace time.
    pub fn last_ns(&self) -> Option<u64> {
        self.last_time
    }

    /// One block's records. A record that cannot be decoded ends the block (the rest cannot be
    /// framed); the span up to the next sample is then not charged.
    pub fn feed(&mut self, data: &[u8]) {
        if !self.accounting {
            return self.feed_side_band(data);
        }
        self.feed_records(data);
        self.drain_final();
    }

    fn feed_records(&mut self, data: &[u8]) {
        use pws_trace::perf::PERF_RECORD_SAMPLE;
        let attrs = self.attrs;
        // The last sample id and its layout, held here: most records of a block are the same
        // id's, whose layout is then neither looked up nor copied again.
        let mut last: Option<(u64, FastSample)> = None;
        let mut p = 0usize;
        while p + 8 <= data.len() {
            let (ty, size) = header_at(data, p);
            if size < 8 || p + size > data.len() {
                break; // the general decoder below says why
            }
            // Group samples, most of the stream, are read at their event's fixed offsets;
            // anything else, or a sample too short for its layout, goes to the general decoder.
            if ty == PERF_RECORD_SAMPLE && size >= 16 {
                let id = u64_at(data, p + 8);
                let fast = match &last {
                    Some((i, f)) if *i == id => f,
                    _ => &last.insert((id, self.fast_layout(id))).1,
                };
                if let &Some((event, layout)) = fast {
                    if self.stretch.is_some() {
                        let q = self.feed_stretch(data, p, id, event, &layout);
                        if q > p {
                            p = q;
                            continue;
                        }
                    }
                    if let Some(g) = layout.read(&data[p + 8..p + size]) {
                        self.out.stats.records += 1;
                        self.group_sample(event, g.pid, g.time, g.time_enabled, &g.read, g.cgroup);
                        p += size;
                        continue;
                    }
                }
            }
            match attrs.records_from(&data[..p + size], p).next() {
                Some(Ok(r)) => self.handle(r),
                Some(Err(e)) => return self.decode_error(e.to_string()),
                None => {}
            }
            p += size;
        }
        if let Some(Err(e)) = attrs.records_from(data, p).next() {
            self.decode_error(e.to_string());
        }
    }

    /// The event and group layout of sample id `id`, if its samples are group samples of a
    /// counter column with a fixed layout.
    fn fast_layout(&mut self, id: u64) -> FastSample {
        if let Some((_, f)) = self.fast_ids.iter().flatten().find(|x| x.0 == id) {
            return *f;
        }
        let f = self.attrs.event_of(id).and_then(|e| {
            let counter =
                self.attrs.events[e].format.is_none() && self.columns.of_event[e].is_some();
            counter
                .then(|| self.attrs.group_layout(e))
                .flatten()
                .map(|l| (e, l))
        });
        self.fast_ids = [Some((id, f)), self.fast_ids[0]];
        f
    }

    /// The side-band pass: record headers are walked and only the records it needs are
    /// decoded (tracepoint samples and cgroup records) — most samples are skipped.
    fn feed_side_band(&mut self, data: &[u8]) {
        use pws_trace::perf::{PERF_RECORD_CGROUP, PERF_RECORD_SAMPLE};
        let attrs = self.attrs;
        let mut p = 0usize;
        while p + 8 <= data.len() {
            let (ty, size) = header_at(data, p);
            if size < 8 || p + size > data.len() {
                return self.decode_error(format!("record at byte {p} of a block has size {size}"));
            }
            let wanted = match ty {
                PERF_RECORD_SAMPLE if size >= 16 => {
                    let id = u64_at(data, p + 8);
                    match self.side_ids.iter().flatten().find(|x| x.0 == id) {
                        Some(&(_, tp)) => tp,
                        None => {
                            let tp = attrs
                                .event_of(id)
                                .is_some_and(|e| attrs.events[e].format.is_some());
                            self.side_ids = [Some((id, tp)), self.side_ids[0]];
                            tp
                        }
                    }
                }
                PERF_RECORD_CGROUP => true,
                _ => false,
            };
            if wanted {
                match attrs.records(&data[p..p + size]).next() {
                    Some(Ok(r)) => self.handle(r),
                    Some(Err(e)) => return self.decode_error(e.to_string()),
                    None => {}
                }
            }
            self.out.stats.records += 1;
            p += size;
        }
    }

    /// The event of a group read's first id.
    fn leader_event(&mut self, id: u64) -> Option<usize> {
        match self.read_leader {
            Some((i, e)) if i == id => e,
            _ => {
                let e = self.attrs.event_of(id);
                self.read_leader = Some((id, e));
                e
            }
        }
    }

    fn decode_error(&mut self, e: String) {
        let st = &mut self.out.stats;
        st.decode_errors += 1;
        if st.first_error.is_empty() {
            st.first_error = format!("CPU {}: {e}", self.out.cpu);
        }
        self.last_time = None;
        self.unread_idle = None;
    }

    fn handle(&mut self, rec: PerfRecord<'_>) {
        let (attrs, columns) = (self.attrs, self.columns);
        if self.accounting {
            self.out.stats.records += 1;
        }
        match rec {
            PerfRecord::Sample(s) => {
                let ev = &attrs.events[s.id.event];
                if let Some(fmt) = &ev.format {
                    let raw = s.raw.unwrap_or(&[]);
                    let name = ev.name.strip_prefix("cgroup:").unwrap_or(&ev.name);
                    if self.accounting {
                        // The side-band pass collected the tracepoints; this one only needs
                        // the attach boundaries: the writer's time so far is its old cgroup's.
                        self.out.stats.tracepoints += 1;
                        if name == "cgroup_attach_task" && fmt.u64(raw, "root").unwrap_or(0) == 0 {
                            let old = self
                                .cgroup_of_pid
                                .get(&s.id.pid)
                                .copied()
                                .unwrap_or(UNKNOWN);
                            self.charge(s.id.time, old, None);
                        }
                        return;
                    }
                    self.out.tracepoints.push(Tracepoint {
                        ts_ns: s.id.time,
                        name: name.to_owned(),
                        cgroup_id: fmt.u64(raw, "id").unwrap_or(0),
                        root: fmt.u64(raw, "root").unwrap_or(0) as u32,
                        path: fmt
                            .str(raw, "path")
                            .or_else(|| fmt.str(raw, "dst_path"))
                            .unwrap_or("")
                            .to_owned(),
                        pid: fmt.u64(raw, "pid").unwrap_or(0) as u32,
                    });
                } else if columns.of_event[s.id.event].is_some() && self.accounting {
                    let mut time = s.id.time;
                    if s.foreign_id {
                        // When another session samples the same software event, the kernel
                        // stamps our sample with its id, time and tid: our ring and our group
                        // read say it is ours, the enabled time says when.
                        match self.anchor {
                            Some((t, e)) if s.time_enabled >= e => {
                                time = t + (s.time_enabled - e);
                                self.out.stats.foreign_ids += 1;
                            }
                            _ => {
                                self.out.stats.unknown_ids += 1;
                                return;
                            }
                        }
                        self.count_group_sample(s.id.pid, time, &s.read, s.cgroup);
                    } else {
                        let ev = s.id.event;
                        self.group_sample(ev, s.id.pid, time, s.time_enabled, &s.read, s.cgroup);
                    }
                }
            }
            // The idle task's switch-out is not always sampled (seen on 5.x-6.x kernels: under
            // half the wake-ups from idle had one), so a switch-in whose previous task is the
            // idle task (pid 0) ends the idle span itself; otherwise the next task's first
            // sample would claim the idle time.
            PerfRecord::Switch {
                out: false,
                next_prev: Some((0, _)),
                id,
                ..
            } if self.accounting => {
                let from = self.last_time;
                self.charge(id.time, IDLE, None);
                if let (Some(a), None) = (from, self.unread_idle) {
                    if id.time > a {
                        self.unread_idle = Some((a, id.time));
                    }
                }
            }
            // A switch-in after a task whose switch-out was not sampled (the last sample is
            // another task's): what ran since that sample is not known — the CPU may have
            // idled, then run that task — so it is no one's rather than the next task's. Seen
            // in an end-to-end run: 5 ms of an idle CPU and an unsampled thread went to the
            // next task's container, charging a warm activation 40× its CPU time.
            PerfRecord::Switch {
                out: false,
                next_prev: Some((prev, _)),
                id,
                ..
            } if self.accounting && self.last_pid_cgroup.is_some_and(|(p, _)| p != prev) => {
                self.charge(id.time, UNKNOWN, None);
            }
            PerfRecord::Cgroup {
                cgroup_id, path, ..
            } if !self.accounting => self.out.cgroup_paths.push((cgroup_id, path.to_owned())),
            PerfRecord::Cgroup { .. } => self.out.stats.cgroup_records += 1,
            PerfRecord::Lost { lost, .. } | PerfRecord::LostSamples { lost, .. } => {
                self.out.stats.lost_records += lost;
                self.last_time = None; // a gap: the span across it is not charged
                self.unread_idle = None;
            }
            PerfRecord::Throttle {
                unthrottle: false, ..
            } if self.accounting => {
                self.out.stats.throttled += 1;
                self.last_time = None; // switch-outs went unsampled: the span across is unknown
                self.unread_idle = None;
            }
            PerfRecord::UnknownEvent { .. } => self.out.stats.unknown_ids += 1,
            _ => {}
        }
    }

    /// A group sample of event `event`, with our own identifier.
    fn group_sample(
        &mut self,
        event: usize,
        pid: u32,
        time: u64,
        time_enabled: u64,
        read: &ReadGroup<'_>,
        cgroup: Option<u64>,
    ) {
        if read.first_id().and_then(|id| self.leader_event(id)) != Some(event) {
            // A member's sample (the switch sampler, the one event whose samples another
            // session can stamp): its enabled time is the one to follow.
            self.anchor = Some((time, time_enabled));
        }
        self.count_group_sample(pid, time, read, cgroup);
    }

    /// Charges the span a group sample ends, placed at `time`.
    fn count_group_sample(
        &mut self,
        pid: u32,
        time: u64,
        read: &ReadGroup<'_>,
        cgroup: Option<u64>,
    ) {
        self.out.stats.group_samples += 1;
        let cg = if pid == 0 {
            IDLE
        } else {
            cgroup.unwrap_or(UNKNOWN)
        };
        // A CPU runs one task for many samples in a row: the map is written when that changes.
        if self.last_pid_cgroup != Some((pid, cg)) {
            let old = self.cgroup_of_pid.insert(pid, cg);
            if old != Some(cg) && cg != IDLE && cg != UNKNOWN {
                self.out.pid_cgroups.push((time, pid, cg));
            }
            self.last_pid_cgroup = Some((pid, cg));
        }
        self.charge(time, cg, Some(read));
    }

    /// Ends the current span at `t`, charging it to `cgroup`; `sample` (a group sample) also
    /// gives the counter values that end it. Without one (an attach boundary), the counters
    /// keep their last values, so their increase goes to the next span. The general path:
    /// it drops the [`Stretch`] and, charging a group sample, opens the next one.
    fn charge(&mut self, t: u64, cgroup: u64, sample: Option<&ReadGroup<'_>>) {
        self.stretch = None;
        let out = &mut self.out;
        if out.stats.first_ns == 0 {
            out.stats.first_ns = t;
        }
        let prev = self.last_time;
        match prev {
            Some(p) if t < p => {
                out.stats.out_of_order += 1;
                return;
            }
            Some(_) => {}
            // No span before (the first, or after a gap): no value is known.
            None => self.values.fill(None),
        }
        // The deltas since the last reading; a counter this sample does not read keeps its
        // value, so its increase goes to the next span that reads it.
        self.deltas.fill(0.0);
        if let Some(read) = sample {
            // Deltas first, then values: a column read twice in one group gets its last
            // value's increase over the value before the sample.
            for (k, rv) in read.iter().enumerate() {
                if let Some(col) = self.read_col(k, rv.id) {
                    self.deltas[col] = delta(self.values[col], rv.value);
                }
            }
            for (k, rv) in read.iter().enumerate() {
                if let Some(col) = self.read_cols[k].1 {
                    self.values[col] = Some(rv.value);
                }
            }
        }
        self.last_time = Some(t);
        let out = &mut self.out;
        out.stats.last_ns = out.stats.last_ns.max(t);
        let Some(a) = prev else { return };
        let b = t;
        // The deltas also cover an idle span ended without a reading: its share of the clock
        // counters is the idle span's (hardware counters stop while idle).
        if sample.is_some() {
            if let Some((ia, ib)) = self.unread_idle.take() {
                if t > ia && self.clock_cols.contains(&true) {
                    let f = (ib - ia) as f64 / (t - ia) as f64;
                    let mut idle = vec![0.0; self.deltas.len()];
                    for (k, _) in self.clock_cols.iter().enumerate().filter(|(_, c)| **c) {
                        idle[k] = self.deltas[k] * f;
                        self.deltas[k] -= idle[k];
                    }
                    let len = (ib - ia) as f64;
                    self.grid.split(ia, ib, |i, x, y| {
                        cell(&mut self.cells, &mut self.open_cell, (i, IDLE)).add_part(
                            0,
                            &idle,
                            (y - x) as f64 / len,
                        );
                    });
                }
            }
        }
        let span_ns = b - a;
        let span = span_ns as f64;
        let deltas = &self.deltas;
        // The interval of `a` or one before: where the windows' pieces start their search.
        let hint_a = self.hint;
        self.grid.split_from(&mut self.hint, a, b, |i, x, y| {
            cell(&mut self.cells, &mut self.open_cell, (i, cgroup)).add_share(
                y - x,
                span_ns,
                span,
                deltas,
            );
        });
        let (ws, from) = match self.last_windows {
            Some((c, ws, from)) if c == cgroup => (ws, from),
            _ => {
                let ws = self.windows.get(&cgroup);
                // Windows of one cgroup do not overlap (they are segments, see
                // `join::windows`): sorted by start, so by end too.
                let from = ws.map_or(0, |ws| ws.ending_by(a));
                (ws, from)
            }
        };
        let from = match ws {
            // A span starts where the last one ended, so the first window that may overlap
            // it is found by walking on from the last span's, and searched for again only
            // if a span went back (after a gap in the records).
            Some(ws) if from > 0 && ws.spans[from - 1].1 > a => ws.ending_by(a),
            Some(ws) => from + ws.spans[from..].iter().take_while(|w| w.1 <= a).count(),
            None => 0,
        };
        self.last_windows = Some((cgroup, ws, from));
        if let Some(ws) = ws {
            for w in ws.windows_from(from).take_while(|w| w.start < b) {
                let (x, y) = (a.max(w.start), b.min(w.end));
                if x < y {
                    let mut hint = hint_a;
                    self.grid.split_from(&mut hint, x, y, |i, x, y| {
                        cell(&mut self.segments, &mut self.open_segment, (w.segment, i)).add_share(
                            y - x,
                            span_ns,
                            span,
                            deltas,
                        );
                    });
                }
            }
        }
        if let Some(read) = sample {
            self.stretch = self.stretch_from(t, cgroup, read);
        }
    }

    /// The records from byte `p` of `data` on that are group samples of sample id `id` (of
    /// event `event`, the group's leader, read with `layout`) whose spans lie in the
    /// [`Stretch`], with the same task and cgroup as the last one and the same group layout:
    /// charged in one loop, each as the general path would charge it (the whole span's time
    /// and deltas, a share of 1.0, to the open cell and segment: `d * 1.0` is `d`), the
    /// cell's and segment's sums held in registers meanwhile, each adding the same terms in
    /// the same order. Returns where it stopped: the first record it did not take, which the
    /// caller reads as any other.
    fn feed_stretch(
        &mut self,
        data: &[u8],
        p: usize,
        id: u64,
        event: usize,
        layout: &pws_trace::perf::GroupLayout,
    ) -> usize {
        use pws_trace::perf::PERF_RECORD_SAMPLE;
        let (Some(s), Some(mut a), Some(task)) =
            (self.stretch, self.last_time, self.last_pid_cgroup)
        else {
            return p;
        };
        debug_assert_eq!(task.1, s.cgroup, "the last sample opened the stretch");
        // A member's sample moves the anchor (`group_sample`): those go the general way.
        if s.entries == 0 || self.leader_event(s.ids[0]) != Some(event) {
            return p;
        }
        let n = s.entries;
        let cols = s.cols.map(usize::from);
        let (mut values, mut cell_sums, mut segment_sums) = (
            [0u64; STRETCH_READ],
            [0.0; STRETCH_READ],
            [0.0; STRETCH_READ],
        );
        for k in 0..n {
            match self.values[cols[k]] {
                Some(v) => values[k] = v,
                None => return p,
            }
        }
        debug_assert!(self.unread_idle.is_none(), "set by the general path only");
        let Some((cell_key, cell)) = self.open_cell.as_mut() else {
            return p;
        };
        debug_assert_eq!(*cell_key, s.cell, "the stretch's cell is open");
        let mut segment = match (s.segment, self.open_segment.as_mut()) {
            (Some(key), Some((k, u))) => {
                debug_assert_eq!(*k, key, "the stretch's segment is open");
                Some(u)
            }
            (Some(_), None) => return p,
            (None, _) => None,
        };
        for k in 0..n {
            cell_sums[k] = cell.counters[cols[k]];
            if let Some(seg) = &segment {
                segment_sums[k] = seg.counters[cols[k]];
            }
        }
        let (mut q, mut taken, mut cpu_ns) = (p, 0u64, 0u64);
        while q + 16 <= data.len() {
            let (ty, size) = header_at(data, q);
            if ty != PERF_RECORD_SAMPLE || size < 16 || q + size > data.len() {
                break;
            }
            if u64_at(data, q + 8) != id {
                break;
            }
            let Some(g) = layout.read(&data[q + 8..q + size]) else {
                break;
            };
            let cgroup = match g.pid {
                0 => IDLE,
                _ => g.cgroup.unwrap_or(UNKNOWN),
            };
            if (g.pid, cgroup) != task || g.time <= a || g.time > s.hi {
                break;
            }
            let mut read = [0u64; STRETCH_READ];
            let mut entries = g.read.iter();
            let same = (0..n).all(|k| match entries.next() {
                Some(rv) if rv.id == s.ids[k] => {
                    read[k] = rv.value;
                    true
                }
                _ => false,
            });
            if !same || entries.next().is_some() {
                break;
            }
            for k in 0..n {
                let d = delta(Some(values[k]), read[k]);
                cell_sums[k] += d;
                // Summed with or without a segment (then never written back): no branch.
                segment_sums[k] += d;
            }
            values = read;
            cpu_ns += g.time - a;
            a = g.time;
            taken += 1;
            q += size;
        }
        if taken == 0 {
            return p;
        }
        let st = &mut self.out.stats;
        st.records += taken;
        st.group_samples += taken;
        st.last_ns = st.last_ns.max(a);
        self.last_time = Some(a);
        cell.cpu_ns += cpu_ns;
        for k in 0..n {
            cell.counters[cols[k]] = cell_sums[k];
            self.values[cols[k]] = Some(values[k]);
        }
        if let Some(seg) = segment.as_mut() {
            seg.cpu_ns += cpu_ns;
            for k in 0..n {
                seg.counters[cols[k]] = segment_sums[k];
            }
        }
        #[cfg(test)]
        {
            self.shortcut_spans += taken;
        }
        q
    }

    /// The [`Stretch`] that begins at `t`, after the general path charged a group sample
    /// read as `read` to `cgroup` there, if that left the cell (and segment) it needs open.
    fn stretch_from(&self, t: u64, cgroup: u64, read: &ReadGroup<'_>) -> Option<Stretch> {
        #[cfg(test)]
        if self.no_shortcut {
            return None;
        }
        let n = self.values.len();
        let i = self.hint;
        // The interval the span ended in, if `t` is inside it (not before the grid's start;
        // at its end, no span could lie in the stretch).
        let (lo, hi) = (i < self.grid.len()).then(|| self.grid.span(i))?;
        if t < lo || t >= hi {
            return None;
        }
        let cell = (i, cgroup);
        match &self.open_cell {
            Some((k, u)) if *k == cell && u.counters.len() == n => {}
            _ => return None,
        }
        // The end of the window `t` is in, or the start of the next.
        let (end, segment) = match self.last_windows {
            Some((c, None, _)) if c == cgroup => (u64::MAX, None),
            Some((c, Some(ws), _)) if c == cgroup => {
                let f = ws.ending_by(t);
                match ws.spans.get(f) {
                    Some(&(start, end)) if start <= t => (end, Some((ws.first + f, i))),
                    next => (next.map_or(u64::MAX, |w| w.0), None),
                }
            }
            _ => return None,
        };
        if let Some(key) = segment {
            match &self.open_segment {
                Some((k, u)) if *k == key && u.counters.len() == n => {}
                _ => return None,
            }
        }
        // The read gives each of its columns once (one sum per column in the loop: a column
        // read twice, which no recorder writes, is left to the general path), so the shortcut
        // adds one delta to each; a column it does not read is left as it is, where the
        // general path adds 0.0 to it.
        let entries = read.iter().count();
        if self.read_cols.len() < entries || entries > STRETCH_READ {
            return None;
        }
        let (mut ids, mut cols) = ([0; STRETCH_READ], [0; STRETCH_READ]);
        for (k, &(id, col)) in self.read_cols[..entries].iter().enumerate() {
            let col = u8::try_from(col?).ok()?;
            if cols[..k].contains(&col) {
                return None;
            }
            ids[k] = id;
            cols[k] = col;
        }
        Some(Stretch {
            cgroup,
            hi: hi.min(end),
            cell,
            segment,
            entries,
            ids,
            cols,
        })
    }

    /// The column of the `k`-th value of a group read, whose id is `id`.
    fn read_col(&mut self, k: usize, id: u64) -> Option<usize> {
        match self.read_cols.get(k) {
            Some(&(i, col)) if i == id => col,
            _ => {
                let col = self
                    .attrs
                    .event_of(id)
                    .and_then(|e| self.columns.of_event[e]);
                self.read_cols.truncate(k);
                self.read_cols.push((id, col));
                col
            }
        }
    }
}

/// The type and size of the perf record at byte `p` of `data` (at least 8 bytes from `p`):
/// the header every walk over a block reads before deciding what to do with the record.
#[inline]
fn header_at(data: &[u8], p: usize) -> (u32, usize) {
    let ty = u32::from_le_bytes(data[p..p + 4].try_into().expect("4 bytes"));
    (
        ty,
        usize::from(u16::from_le_bytes([data[p + 6], data[p + 7]])),
    )
}

/// The little-endian u64 at byte `p` of `data` (at least 8 bytes from `p`).
#[inline]
fn u64_at(data: &[u8], p: usize) -> u64 {
    u64::from_le_bytes(data[p..p + 8].try_into().expect("8 bytes"))
}

/// A counter's increase from its last value `last` to `value`: none when not known, or when
/// the counter went back (it was reset).
#[inline]
fn delta(last: Option<u64>, value: u64) -> f64 {
    match last {
        Some(b) if value >= b => (value - b) as f64,
        _ => 0.0,
    }
}

/// The usage of cell `key`, opened in `open` (the one open before goes back to `cells`).
#[inline]
fn cell<'c, K: Copy + Eq + std::hash::Hash>(
    cells: &mut FxHashMap<K, Usage>,
    open: &'c mut Option<(K, Usage)>,
    key: K,
) -> &'c mut Usage {
    if open.as_ref().is_none_or(|(k, _)| *k != key) {
        if let Some((k, u)) = open.take() {
            cells.insert(k, u);
        }
        let u = cells.remove(&key).unwrap_or_default();
        *open = Some((key, u));
    }
    &mut open.as_mut().expect("opened above").1
}

#[cfg(test)]
mod tests {
    use super::*;
    use pws_trace::perf::{read_format, sample, PERF_RECORD_SAMPLE, PERF_RECORD_SWITCH_CPU_WIDE};
    use pws_trace::records::{PerfEventId, PerfEventInfo};

    const ID: u64 = 7;
    const SAMPLE_TYPE: u64 = sample::IDENTIFIER | sample::TID | sample::TIME | sample::READ;
    const CG: u64 = sample::CGROUP;

    /// One group leader (id 7) reading itself, as the recorder's `cpu-clock` leader, and
    /// another sampling event (id 8, a hardware counter) that reads only itself.
    fn attrs() -> PerfAttrs {
        let mut attr = vec![0u8; 128];
        attr[24..32].copy_from_slice(&(SAMPLE_TYPE | CG).to_le_bytes());
        attr[32..40].copy_from_slice(&(read_format::GROUP | read_format::ID).to_le_bytes());
        attr[40..48].copy_from_slice(&(1u64 << 18).to_le_bytes()); // sample_id_all
        let event = |name: &str, id| PerfEventInfo {
            name: name.into(),
            pmu: "software".into(),
            attr: attr.clone(),
            ids: vec![PerfEventId { cpu: 0, id }],
            format: String::new(),
        };
        PerfAttrs::new(&[event("cpu-clock", ID), event("instructions", 8)]).expect("attrs")
    }

    fn record(kind: u32, misc: u16, body: &[u64]) -> Vec<u8> {
        let size = 8 + 8 * body.len();
        let mut r = kind.to_le_bytes().to_vec();
        r.extend_from_slice(&misc.to_le_bytes());
        r.extend_from_slice(&(size as u16).to_le_bytes());
        for v in body {
            r.extend_from_slice(&v.to_le_bytes());
        }
        r
    }

    /// A group sample of `pid` in `cgroup` at `t`, the counter reading `t` (a clock).
    fn sample(pid: u32, t: u64, cgroup: u64) -> Vec<u8> {
        let tid = u64::from(pid) | (u64::from(pid) << 32);
        record(PERF_RECORD_SAMPLE, 0, &[ID, tid, t, 1, t, ID, cgroup])
    }

    /// A CPU-wide switch record at `t`: `pid` comes in after `prev`.
    fn switch_in(pid: u32, prev: u32, t: u64) -> Vec<u8> {
        let tid = u64::from(pid) | (u64::from(pid) << 32);
        let other = u64::from(prev) | (u64::from(prev) << 32);
        record(PERF_RECORD_SWITCH_CPU_WIDE, 0, &[other, tid, t, ID])
    }

    /// A sample of event `id` reading its own counter, `value`.
    fn sample_of(id: u64, t: u64, value: u64, cgroup: u64) -> Vec<u8> {
        record(
            PERF_RECORD_SAMPLE,
            0,
            &[id, 10 | (10 << 32), t, 1, value, id, cgroup],
        )
    }

    fn replay(records: &[Vec<u8>]) -> CpuReplay {
        let attrs = attrs();
        let columns = Columns::new(&attrs);
        let grid = Grid::fixed(0, 100, 100).expect("grid");
        let windows = HashMap::new();
        let mut w = Walker::new(&attrs, &columns, 0, &grid, &windows);
        w.feed(&records.concat());
        w.finish()
    }

    fn cpu_ns(r: &CpuReplay, cgroup: u64) -> u64 {
        cell_of(&r.cells, (0, cgroup)).map_or(0, |u| u.cpu_ns)
    }

    #[test]
    fn window_segments_are_found_as_spans_move_on_and_after_a_gap_goes_back() {
        // Cgroup 5's segments: 0 [0, 10), 1 [10, 30), 2 [40, 45), 3 [60, 100).
        let ws = |v: &[(u64, u64)]| Segments {
            first: 0,
            spans: v.to_vec(),
        };
        let windows = HashMap::from([(5, ws(&[(0, 10), (10, 30), (40, 45), (60, 100)]))]);
        let attrs = attrs();
        let columns = Columns::new(&attrs);
        let grid = Grid::fixed(0, 100, 100).expect("grid");
        let mut w = Walker::new(&attrs, &columns, 0, &grid, &windows);
        let lost = record(pws_trace::perf::PERF_RECORD_LOST, 0, &[ID, 3, 0, 50, ID]);
        w.feed(
            &[
                sample(10, 0, 5),
                sample(10, 20, 5), // 0..20: segments 0 and 1
                sample(11, 35, 6), // another cgroup's
                sample(10, 50, 5), // 35..50: segment 2
                lost,              // a gap: the next sample starts no span
                sample(10, 5, 5),  // behind the last span's windows
                sample(10, 25, 5), // 5..25: segments 0 and 1 again
                sample(10, 80, 5), // 25..80: segments 1, 2 and 3
            ]
            .concat(),
        );
        let r = w.finish();
        let mut ns = [0u64; 4];
        for ((segment, _), u) in &r.activations {
            ns[*segment] += u.cpu_ns;
        }
        assert_eq!(ns, [10 + 5, 10 + 15 + 5, 5 + 5, 20]);
    }

    #[test]
    fn a_column_read_twice_in_one_sample_gets_its_last_values_increase() {
        // The leader's group read lists cpu-clock twice (one column): the span's delta is the
        // last value's increase over the value before the sample, 10 - 0, not 10 - 4.
        let twice = |t: u64, first: u64, last: u64| {
            record(
                PERF_RECORD_SAMPLE,
                0,
                &[ID, 10 | (10 << 32), t, 2, first, ID, last, ID, 5],
            )
        };
        let r = replay(&[twice(0, 0, 0), twice(10, 4, 10), twice(20, 12, 13)]);
        let cell = cell_of(&r.cells, (0, 5)).expect("cgroup 5's cell");
        assert_eq!(cell.cpu_ns, 20);
        assert_eq!(cell.counters.as_slice(), &[10.0 + 3.0, 0.0]);
    }

    #[test]
    fn spans_go_to_the_later_sample() {
        // Task 10 (cgroup 5) runs 0..20, switches out; task 11 (cgroup 6) runs to 50.
        let r = replay(&[sample(10, 0, 5), sample(10, 20, 5), sample(11, 50, 6)]);
        assert_eq!((cpu_ns(&r, 5), cpu_ns(&r, 6)), (20, 30));
        assert_eq!(
            cell_of(&r.cells, (0, 6)).expect("cell").counters[..],
            [30.0, 0.0]
        );
    }

    #[test]
    fn group_reads_of_different_events_go_to_their_own_columns() {
        // Two events alternate, each reading itself: the first read value is one counter,
        // then the other (the id lookups are cached by position, so the ids must be checked).
        let r = replay(&[
            sample_of(ID, 0, 0, 5),
            sample_of(8, 10, 100, 5),
            sample_of(ID, 20, 20, 5),
            sample_of(8, 30, 130, 5),
        ]);
        assert_eq!(
            cell_of(&r.cells, (0, 5)).expect("cell").counters[..],
            [20.0, 30.0]
        );
    }

    #[test]
    fn a_switch_in_from_idle_ends_an_unsampled_idle_span() {
        // Task 10 leaves at 20 (sampled), the CPU idles to 60 and the idle task's switch-out
        // is not sampled; task 11 runs 60..70. Without the switch record task 11 got 50 ns.
        let r = replay(&[
            sample(10, 0, 5),
            sample(10, 20, 5),
            switch_in(11, 0, 60),
            sample(11, 70, 6),
        ]);
        assert_eq!(cpu_ns(&r, 5), 20);
        assert_eq!(cpu_ns(&r, IDLE), 40);
        assert_eq!(cpu_ns(&r, 6), 10);
        // The clock counter read at 70 advanced over idle too: split by time.
        assert_eq!(
            cell_of(&r.cells, (0, 6)).expect("cell").counters[..],
            [10.0, 0.0]
        );
        assert_eq!(
            cell_of(&r.cells, (0, IDLE)).expect("cell").counters[..],
            [40.0, 0.0]
        );
        // A hardware counter stops while idle: all of its increase is the task's.
        let r = replay(&[
            sample_of(8, 0, 0, 5),
            sample_of(8, 20, 20, 5),
            switch_in(11, 0, 60),
            sample_of(8, 70, 35, 6),
        ]);
        assert_eq!(cpu_ns(&r, IDLE), 40);
        assert_eq!(
            cell_of(&r.cells, (0, 6)).expect("cell").counters[..],
            [0.0, 15.0]
        );
        assert_eq!(
            cell_of(&r.cells, (0, IDLE)).expect("cell").counters[..],
            [0.0, 0.0]
        );
        // A switch-in from another task is no boundary (its switch-out was sampled).
        let r = replay(&[sample(10, 0, 5), switch_in(11, 10, 20), sample(11, 30, 6)]);
        assert_eq!((cpu_ns(&r, 5), cpu_ns(&r, 6)), (0, 30));
    }

    #[test]
    fn a_sample_short_of_its_layout_ends_the_block_with_the_decoders_message() {
        // The second sample lacks its cgroup: read at fixed offsets it cannot be, and the
        // general decoder says where and why; the first still counts.
        let first = sample(10, 0, 5);
        let mut short = sample(10, 20, 5);
        short.truncate(short.len() - 8);
        let size = short.len() as u16;
        short[6..8].copy_from_slice(&size.to_le_bytes());
        let r = replay(&[first.clone(), short, sample(10, 40, 5)]);
        assert_eq!((r.stats.records, r.stats.decode_errors), (1, 1));
        assert!(
            r.stats
                .first_error
                .contains(&format!("byte {}", first.len())),
            "{}",
            r.stats.first_error
        );
    }

    #[test]
    fn a_switch_in_after_an_unsampled_task_charges_no_one_the_span_before() {
        // Task 10 leaves at 20 (sampled); then the CPU idles and task 12 runs, neither
        // recorded, until task 11 comes in after 12 at 60: 20..60 is unknown, not task 11's.
        let r = replay(&[
            sample(10, 0, 5),
            sample(10, 20, 5),
            switch_in(11, 12, 60),
            sample(11, 70, 6),
        ]);
        assert_eq!(cpu_ns(&r, 5), 20);
        assert_eq!(cpu_ns(&r, UNKNOWN), 40);
        assert_eq!(cpu_ns(&r, 6), 10);
    }

    /// A small xorshift generator: the random streams below are the same at every run.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    /// A group sample of the leader reading `read` (value and id of each).
    fn read_of(pid: u32, t: u64, cgroup: u64, read: &[u64]) -> Vec<u8> {
        read_as(ID, pid, t, cgroup, read)
    }

    /// A group sample with identifier `id` reading `read`: with an id of no event of ours and
    /// a read of ours, another session's stamp on our sample (placed by the anchor).
    fn read_as(id: u64, pid: u32, t: u64, cgroup: u64, read: &[u64]) -> Vec<u8> {
        let tid = u64::from(pid) | (u64::from(pid) << 32);
        let mut body = vec![id, tid, t, read.len() as u64 / 2];
        body.extend(read);
        body.push(cgroup);
        record(PERF_RECORD_SAMPLE, 0, &body)
    }

    /// A random stream of one CPU, in blocks: group samples of a few tasks in containers, read
    /// in one layout for a while, then another (in another order, with a column twice, one
    /// value, three); with idle time, switch records, reads of one counter, samples stamped by
    /// another session, counters that go back or grow past what an f64 holds exactly, samples
    /// out of order, and lost records after which time may go back.
    fn random_blocks(rng: &mut Rng) -> Vec<Vec<u8>> {
        let (mut t, mut clock, mut instr) = (0u64, 0u64, 0u64);
        let (mut pid, mut cgroup) = (10u32, 5u64);
        let mut layout = 0;
        let mut blocks = vec![Vec::new()];
        for _ in 0..20_000 {
            t = match rng.below(50) {
                0 => t.saturating_sub(5),
                1 => t,
                _ => t + 1 + rng.below(60),
            };
            clock += 1 + rng.below(60);
            // Past 2^53 now and then: a delta's conversion and the sums then round, and a
            // different order of terms would show.
            instr += match rng.below(500) {
                0 => (1 << 54) + rng.below(1 << 20),
                _ => rng.below(5000),
            };
            if rng.below(100) < 2 {
                (pid, cgroup) = [(10, 5), (13, 5), (11, 6), (12, 7), (0, 0)][rng.below(5) as usize];
            }
            if rng.below(100) < 2 {
                layout = rng.below(12);
            }
            let big = instr + (1 << 53) + rng.below(1 << 20);
            let rec = match (rng.below(1000), layout) {
                (0..5, _) => switch_in(pid, 0, t),
                (5..7, _) => {
                    t = t.saturating_sub(rng.below(3000));
                    record(pws_trace::perf::PERF_RECORD_LOST, 0, &[ID, 3, t, 50, ID])
                }
                (7..17, _) => sample_of(8, t, instr, cgroup),
                (17..22, _) => read_as(99, pid, t, cgroup, &[clock, ID, instr, 8]),
                (_, 0) => read_of(pid, t, cgroup, &[instr, 8, clock, ID]),
                (_, 1) => sample(pid, t, cgroup),
                (_, 2) => read_of(pid, t, cgroup, &[instr, 8, big, 8]),
                (_, 3) => read_of(pid, t, cgroup, &[clock, ID, instr, 8, big, 8]),
                (_, 4) => read_of(pid, t, cgroup, &[clock / 2, ID, instr, 8]),
                _ => read_of(pid, t, cgroup, &[clock, ID, instr, 8]),
            };
            blocks.last_mut().expect("one").extend(rec);
            if rng.below(2000) == 0 {
                blocks.push(Vec::new());
            }
        }
        blocks
    }

    /// Windows of cgroups 5 and 6 (7 has none), cut at the grid's boundaries as the join's
    /// segments are.
    fn random_windows(rng: &mut Rng, grid: &Grid) -> HashMap<u64, Segments> {
        let mut windows = HashMap::new();
        let mut first = 0;
        for cgroup in [5, 6] {
            let mut spans = Vec::new();
            let mut t = rng.below(500);
            while t < grid.end() + 2000 {
                let end = t + 1 + rng.below(3000);
                let mut x = t;
                while x < end {
                    let y = match grid.index(x) {
                        Some(i) => grid.span(i).1.min(end),
                        None => end,
                    };
                    spans.push((x, y));
                    x = y;
                }
                t = end + rng.below(3000);
            }
            let n = spans.len();
            windows.insert(cgroup, Segments { first, spans });
            first += n;
        }
        windows
    }

    /// A walk's cells, segments and statistics, taken round by round between blocks as the
    /// accounting takes them.
    fn walk(
        blocks: &[Vec<u8>],
        grid: &Grid,
        windows: &HashMap<u64, Segments>,
        shortcut: bool,
    ) -> (String, u64) {
        let attrs = attrs();
        let columns = Columns::new(&attrs);
        let mut w = Walker::new(&attrs, &columns, 0, grid, windows);
        w.no_shortcut = !shortcut;
        let (mut cells, mut segments) = (Vec::new(), Vec::new());
        for b in blocks {
            w.feed(b);
            cells.extend(w.take_final().0);
            segments.extend(w.take_segments());
        }
        let shortcut_spans = w.shortcut_spans;
        let mut r = w.finish();
        cells.append(&mut r.cells);
        segments.append(&mut r.activations);
        segments.sort_unstable_by_key(|(k, _)| *k);
        // Every counter to the bit.
        let bits = |u: &Usage| {
            (
                u.cpu_ns,
                u.counters.iter().map(|c| c.to_bits()).collect::<Vec<_>>(),
            )
        };
        let cells: Vec<_> = cells.iter().map(|(k, u)| (*k, bits(u))).collect();
        let segments: Vec<_> = segments.iter().map(|(k, u)| (*k, bits(u))).collect();
        let all = format!(
            "{cells:?}\n{segments:?}\n{:?}\n{:?}",
            r.stats, r.pid_cgroups
        );
        (all, shortcut_spans)
    }

    #[test]
    fn the_stretch_shortcut_charges_what_the_general_path_charges() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20 {
            let blocks = random_blocks(&mut rng);
            let start = rng.below(20_000);
            let grid = Grid::fixed(start, 1_000_000, 300 + rng.below(2000)).expect("grid");
            let windows = random_windows(&mut rng, &grid);
            let (with, shortcut_spans) = walk(&blocks, &grid, &windows, true);
            let (without, none) = walk(&blocks, &grid, &windows, false);
            assert_eq!(with, without);
            assert_eq!(none, 0);
            // Most spans of these streams lie in a stretch (20,000 records, a tenth of them
            // not the usual group read, a span across a boundary every few dozen).
            assert!(
                shortcut_spans > 5_000,
                "{shortcut_spans} spans by the shortcut"
            );
        }
    }
}
