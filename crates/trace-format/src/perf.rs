//! Decoding the raw perf records of perf-data blocks, against the `perf_event_attr`s kept in
//! the trace info. Layouts follow `include/uapi/linux/perf_event.h`; every record is found
//! through PERF_SAMPLE_IDENTIFIER (first u64 of a sample, last u64 of other records), which
//! every event pws-record opens carries.
//!
//! Supported sample fields: IDENTIFIER, IP, TID, TIME, ADDR, ID, STREAM_ID, CPU, PERIOD,
//! READ (with or without PERF_FORMAT_GROUP), CALLCHAIN (skipped), RAW and CGROUP; an event
//! with other fields yields an error naming them rather than a wrong decode.

use crate::codec::DecodeError;
use crate::records::PerfEventInfo;

pub const PERF_RECORD_LOST: u32 = 2;
pub const PERF_RECORD_COMM: u32 = 3;
pub const PERF_RECORD_EXIT: u32 = 4;
pub const PERF_RECORD_THROTTLE: u32 = 5;
pub const PERF_RECORD_UNTHROTTLE: u32 = 6;
pub const PERF_RECORD_FORK: u32 = 7;
pub const PERF_RECORD_SAMPLE: u32 = 9;
pub const PERF_RECORD_LOST_SAMPLES: u32 = 13;
pub const PERF_RECORD_SWITCH: u32 = 14;
pub const PERF_RECORD_SWITCH_CPU_WIDE: u32 = 15;
pub const PERF_RECORD_CGROUP: u32 = 19;

const MISC_SWITCH_OUT: u16 = 1 << 13;
const MISC_SWITCH_OUT_PREEMPT: u16 = 1 << 14;
const MISC_COMM_EXEC: u16 = 1 << 13;

pub mod sample {
    pub const IP: u64 = 1 << 0;
    pub const TID: u64 = 1 << 1;
    pub const TIME: u64 = 1 << 2;
    pub const ADDR: u64 = 1 << 3;
    pub const READ: u64 = 1 << 4;
    pub const CALLCHAIN: u64 = 1 << 5;
    pub const ID: u64 = 1 << 6;
    pub const CPU: u64 = 1 << 7;
    pub const PERIOD: u64 = 1 << 8;
    pub const STREAM_ID: u64 = 1 << 9;
    pub const RAW: u64 = 1 << 10;
    pub const IDENTIFIER: u64 = 1 << 16;
    pub const CGROUP: u64 = 1 << 21;
    /// Every field this decoder understands.
    pub const SUPPORTED: u64 = IP
        | TID
        | TIME
        | ADDR
        | READ
        | CALLCHAIN
        | ID
        | CPU
        | PERIOD
        | STREAM_ID
        | RAW
        | IDENTIFIER
        | CGROUP;
}

pub mod read_format {
    pub const TOTAL_TIME_ENABLED: u64 = 1 << 0;
    pub const TOTAL_TIME_RUNNING: u64 = 1 << 1;
    pub const ID: u64 = 1 << 2;
    pub const GROUP: u64 = 1 << 3;
    pub const LOST: u64 = 1 << 4;
}

/// What the decoder needs from one `perf_event_attr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventAttr {
    pub name: String,
    pub type_: u32,
    pub config: u64,
    pub sample_type: u64,
    pub read_format: u64,
    pub sample_id_all: bool,
    /// Tracepoint field layout, for RAW samples.
    pub format: Option<TracepointFormat>,
}

impl EventAttr {
    /// Reads the fields from the struct's bytes (little-endian, as recorded).
    pub fn parse(name: &str, attr: &[u8], format: &str) -> Result<Self, DecodeError> {
        let u32_at = |o: usize| {
            attr.get(o..o + 4)
                .map(|b| u32::from_le_bytes(b.try_into().expect("4")))
        };
        let u64_at = |o: usize| {
            attr.get(o..o + 8)
                .map(|b| u64::from_le_bytes(b.try_into().expect("8")))
        };
        let short = || {
            DecodeError(format!(
                "perf_event_attr of {name} is only {} bytes",
                attr.len()
            ))
        };
        let flags = u64_at(40).ok_or_else(short)?;
        Ok(Self {
            name: name.to_owned(),
            type_: u32_at(0).ok_or_else(short)?,
            config: u64_at(8).ok_or_else(short)?,
            sample_type: u64_at(24).ok_or_else(short)?,
            read_format: u64_at(32).ok_or_else(short)?,
            sample_id_all: flags & (1 << 18) != 0,
            format: (!format.is_empty()).then(|| TracepointFormat::parse(format)),
        })
    }

    /// Bytes of the sample_id trailer of non-sample records.
    fn sample_id_len(&self) -> usize {
        if !self.sample_id_all {
            return 0;
        }
        let t = self.sample_type;
        [
            sample::TID,
            sample::TIME,
            sample::ID,
            sample::STREAM_ID,
            sample::CPU,
            sample::IDENTIFIER,
        ]
        .iter()
        .filter(|&&f| t & f != 0)
        .count()
            * 8
    }
}

/// Where each field of a tracepoint's raw data is (from tracefs's `format` file).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TracepointFormat {
    pub fields: Vec<TracepointField>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracepointField {
    pub name: String,
    pub offset: usize,
    pub size: usize,
    /// `__data_loc`: a u32 holding the data's offset (low 16 bits) and length (high 16 bits).
    pub data_loc: bool,
}

impl TracepointFormat {
    /// Parses lines like `field:__data_loc char[] path; offset:24; size:4; signed:0;`.
    pub fn parse(text: &str) -> Self {
        let mut fields = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            let Some(decl) = line.strip_prefix("field:") else {
                continue;
            };
            let mut parts = decl.split(';').map(str::trim);
            let decl = parts.next().unwrap_or("");
            let mut offset = None;
            let mut size = None;
            for p in parts {
                if let Some(v) = p.strip_prefix("offset:") {
                    offset = v.parse().ok();
                } else if let Some(v) = p.strip_prefix("size:") {
                    size = v.parse().ok();
                }
            }
            let name = decl
                .rsplit([' ', '*'])
                .next()
                .unwrap_or("")
                .split('[')
                .next()
                .unwrap_or("")
                .to_owned();
            if let (Some(offset), Some(size), false) = (offset, size, name.is_empty()) {
                fields.push(TracepointField {
                    name,
                    offset,
                    size,
                    data_loc: decl.starts_with("__data_loc"),
                });
            }
        }
        Self { fields }
    }

    fn field(&self, name: &str) -> Option<&TracepointField> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// An integer field (1, 2, 4 or 8 bytes, little-endian) of `raw`.
    pub fn u64(&self, raw: &[u8], name: &str) -> Option<u64> {
        let f = self.field(name)?;
        let b = raw.get(f.offset..f.offset + f.size)?;
        Some(match f.size {
            1 => u64::from(b[0]),
            2 => u64::from(u16::from_le_bytes(b.try_into().ok()?)),
            4 => u64::from(u32::from_le_bytes(b.try_into().ok()?)),
            8 => u64::from_le_bytes(b.try_into().ok()?),
            _ => return None,
        })
    }

    /// A string field: `__data_loc char[]` or a fixed `char[N]`, up to its NUL.
    pub fn str<'a>(&self, raw: &'a [u8], name: &str) -> Option<&'a str> {
        let f = self.field(name)?;
        let bytes = if f.data_loc {
            let loc = u32::from_le_bytes(raw.get(f.offset..f.offset + 4)?.try_into().ok()?);
            let (off, len) = ((loc & 0xffff) as usize, (loc >> 16) as usize);
            raw.get(off..off + len)?
        } else {
            raw.get(f.offset..f.offset + f.size)?
        };
        let end = bytes.iter().position(|&c| c == 0).unwrap_or(bytes.len());
        std::str::from_utf8(&bytes[..end]).ok()
    }
}

/// The attrs of a trace, looked up by event id.
#[derive(Debug, Clone, Default)]
pub struct PerfAttrs {
    pub events: Vec<EventAttr>,
    /// (kernel id, event index), sorted by id: looked up for every record and every counter
    /// value of a sample, so a binary search over a flat array beats hashing.
    by_id: Vec<(u64, usize)>,
}

impl PerfAttrs {
    pub fn new(events: &[PerfEventInfo]) -> Result<Self, DecodeError> {
        let mut out = Self::default();
        for (i, e) in events.iter().enumerate() {
            out.events
                .push(EventAttr::parse(&e.name, &e.attr, &e.format)?);
            for id in &e.ids {
                out.by_id.push((id.id, i));
            }
        }
        out.by_id.sort_unstable();
        // A repeated id keeps its last event, as a map insertion would.
        out.by_id.reverse();
        out.by_id.dedup_by_key(|x| x.0);
        out.by_id.reverse();
        Ok(out)
    }

    /// Index (into `events`) of the event with kernel id `id`.
    pub fn event_of(&self, id: u64) -> Option<usize> {
        self.by_id
            .binary_search_by_key(&id, |x| x.0)
            .ok()
            .map(|i| self.by_id[i].1)
    }

    /// Decodes the records of one perf-data block's bytes.
    pub fn records<'a>(&'a self, data: &'a [u8]) -> Records<'a> {
        self.records_from(data, 0)
    }

    /// Decodes the records of one perf-data block's bytes from byte `pos` (a record's start).
    pub fn records_from<'a>(&'a self, data: &'a [u8], pos: usize) -> Records<'a> {
        Records {
            attrs: self,
            data,
            pos,
            recent: std::cell::Cell::new([None; 2]),
        }
    }

    /// The fixed layout of event `event`'s group samples, if they have one ([`GroupLayout`]).
    pub fn group_layout(&self, event: usize) -> Option<GroupLayout> {
        GroupLayout::of(self.events.get(event)?)
    }
}

/// Where a group sample's fields lie for one event, when they lie at fixed offsets (no
/// callchain or raw data before the group read's end): worked out once per event, so the
/// accounting reads each sample without walking its layout (`PerfAttrs::group_layout`). A
/// sample it cannot read (shorter than the layout) is left to [`Records`], which says why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupLayout {
    tid: Option<usize>,
    time: Option<usize>,
    /// Offset of the group read's `nr`.
    read: usize,
    time_enabled: Option<usize>,
    /// Offset of the first value after `nr` and the times.
    values: usize,
    stride: usize,
    has_id: bool,
    cgroup: bool,
}

/// A group sample read with a [`GroupLayout`]: the fields [`Sample`] would give the
/// accounting, and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupSample<'a> {
    pub pid: u32,
    pub time: u64,
    pub time_enabled: u64,
    pub read: ReadGroup<'a>,
    pub cgroup: Option<u64>,
}

/// Bytes per member of a group read: its value, then its id and lost count where read.
fn group_entry_stride(read_format: u64) -> usize {
    let has = |bit: u64| usize::from(read_format & bit != 0);
    8 * (1 + has(read_format::ID) + has(read_format::LOST))
}

impl GroupLayout {
    /// The layout of `attr`'s samples, if they carry a group read at fixed offsets.
    fn of(attr: &EventAttr) -> Option<Self> {
        let t = attr.sample_type;
        let rf = attr.read_format;
        let fixed = t & !sample::SUPPORTED == 0
            && t & sample::READ != 0
            && t & (sample::CALLCHAIN | sample::RAW) == 0
            && rf & read_format::GROUP != 0;
        if !fixed {
            return None;
        }
        // As `Records::sample_as` reads them, after the leading identifier.
        let mut at = 8;
        let mut field = |bit: u64| {
            (t & bit != 0).then(|| {
                at += 8;
                at - 8
            })
        };
        field(sample::IP);
        let tid = field(sample::TID);
        let time = field(sample::TIME);
        field(sample::ADDR);
        field(sample::ID);
        field(sample::STREAM_ID);
        field(sample::CPU);
        field(sample::PERIOD);
        let read = at;
        at += 8;
        let time_enabled = (rf & read_format::TOTAL_TIME_ENABLED != 0).then(|| {
            at += 8;
            at - 8
        });
        if rf & read_format::TOTAL_TIME_RUNNING != 0 {
            at += 8;
        }
        let has_id = rf & read_format::ID != 0;
        let stride = group_entry_stride(rf);
        Some(Self {
            tid,
            time,
            read,
            time_enabled,
            values: at,
            stride,
            has_id,
            cgroup: t & sample::CGROUP != 0,
        })
    }

    /// Reads a sample record's body (after the 8-byte header) with this layout; None if the
    /// body is too short for it.
    #[inline]
    pub fn read<'a>(&self, body: &'a [u8]) -> Option<GroupSample<'a>> {
        let u64_at = |o: usize| -> Option<u64> {
            Some(u64::from_le_bytes(body.get(o..o + 8)?.try_into().ok()?))
        };
        let nr = usize::try_from(u64_at(self.read)?).ok()?;
        let end = nr.checked_mul(self.stride)?.checked_add(self.values)?;
        let bytes = body.get(self.values..end)?;
        let cgroup = match self.cgroup {
            true => Some(u64_at(end)?),
            false => None,
        };
        Some(GroupSample {
            pid: match self.tid {
                Some(o) => u64_at(o)? as u32,
                None => 0,
            },
            time: match self.time {
                Some(o) => u64_at(o)?,
                None => 0,
            },
            time_enabled: match self.time_enabled {
                Some(o) => u64_at(o)?,
                None => 0,
            },
            read: ReadGroup {
                bytes,
                stride: self.stride,
                has_id: self.has_id,
                id_at: 8,
            },
            cgroup,
        })
    }
}

/// Who, when and where, from a record's sample_id trailer (or a sample's own fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SampleId {
    pub pid: u32,
    pub tid: u32,
    pub time: u64,
    pub cpu: u32,
    /// Index into [`PerfAttrs::events`].
    pub event: usize,
}

/// One counter value from a READ group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadValue {
    pub id: u64,
    pub value: u64,
}

/// The counter values of a sample's READ field, decoded as they are iterated: a sample
/// allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadGroup<'a> {
    /// The values' bytes: `nr` entries of value, then id and lost when the read format has them
    /// (a group read); or the one value, its enabled and running times, id and lost (a read
    /// of one counter: the kernel puts the times after the value there, before it in a group).
    bytes: &'a [u8],
    /// Bytes per entry.
    stride: usize,
    has_id: bool,
    /// Where the id is in an entry.
    id_at: usize,
}

impl<'a> ReadGroup<'a> {
    pub fn len(&self) -> usize {
        self.bytes.len().checked_div(self.stride).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes an entry is read as: at least up to its id, where a (malformed) stride is
    /// shorter.
    #[inline]
    fn entry_width(&self) -> usize {
        self.stride.max(self.id_at + 8)
    }

    /// The first value's id (a group read's leader; 0 without ids), as `iter().next()` gives
    /// it, without building the iterator.
    #[inline]
    pub fn first_id(&self) -> Option<u64> {
        if self.bytes.len() < self.entry_width() {
            return None;
        }
        Some(match self.has_id {
            true => u64::from_le_bytes(
                self.bytes[self.id_at..self.id_at + 8]
                    .try_into()
                    .expect("8 bytes"),
            ),
            false => 0,
        })
    }

    /// The values in order (inlined: the replay iterates a group read at every sample).
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = ReadValue> + 'a {
        let (has_id, id_at) = (self.has_id, self.id_at);
        self.bytes.chunks_exact(self.entry_width()).map(move |c| {
            let at = |o: usize| u64::from_le_bytes(c[o..o + 8].try_into().expect("8 bytes"));
            ReadValue {
                value: at(0),
                id: if has_id { at(id_at) } else { 0 },
            }
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sample<'a> {
    pub id: SampleId,
    pub ip: Option<u64>,
    pub period: u64,
    pub time_enabled: u64,
    pub time_running: u64,
    /// Counter values read with the sample (the whole group with PERF_FORMAT_GROUP).
    pub read: ReadGroup<'a>,
    pub cgroup: Option<u64>,
    pub raw: Option<&'a [u8]>,
    /// The sample's IDENTIFIER named no event of the trace, but its READ group is one of ours:
    /// `id.event` is the group's leader, and pid, tid, time and cpu may be another session's
    /// (the kernel fills those fields once for all software events sampling the same
    /// occurrence, for the first of them), so `id.time` is not to be trusted.
    pub foreign_id: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PerfRecord<'a> {
    Sample(Sample<'a>),
    /// A context switch; `next_prev` is the other task (pid, tid) of CPU-wide switch records.
    Switch {
        out: bool,
        preempt: bool,
        next_prev: Option<(u32, u32)>,
        id: SampleId,
    },
    Comm {
        pid: u32,
        tid: u32,
        comm: &'a str,
        exec: bool,
        id: SampleId,
    },
    Fork {
        pid: u32,
        ppid: u32,
        tid: u32,
        ptid: u32,
        id: SampleId,
    },
    Exit {
        pid: u32,
        ppid: u32,
        tid: u32,
        ptid: u32,
        id: SampleId,
    },
    Cgroup {
        cgroup_id: u64,
        path: &'a str,
        id: SampleId,
    },
    Lost {
        lost: u64,
        id: SampleId,
    },
    LostSamples {
        lost: u64,
        id: SampleId,
    },
    Throttle {
        unthrottle: bool,
        id: SampleId,
    },
    /// A record whose identifier names no event in the trace info: reported, not decoded.
    UnknownEvent {
        kind: u32,
        ident: u64,
    },
    Other {
        kind: u32,
        misc: u16,
    },
}

/// Iterator over the records of a perf-data block. Stops with an error at the first record it
/// cannot decode (the offset is in the message); a torn record at the end is an error too.
#[derive(Debug)]
pub struct Records<'a> {
    attrs: &'a PerfAttrs,
    data: &'a [u8],
    pos: usize,
    /// The last two ids looked up and their event: a CPU's stream is mostly its group leader's
    /// and its switch sampler's records, and the binary search over every CPU's ids showed in
    /// profiles.
    recent: std::cell::Cell<[Option<(u64, usize)>; 2]>,
}

struct Cur<'a> {
    b: &'a [u8],
    p: usize,
}

impl<'a> Cur<'a> {
    fn u64(&mut self) -> Result<u64, DecodeError> {
        let v = self
            .b
            .get(self.p..self.p + 8)
            .ok_or_else(|| DecodeError("record ends inside a field".into()))?;
        self.p += 8;
        Ok(u64::from_le_bytes(v.try_into().expect("8")))
    }
    fn u32x2(&mut self) -> Result<(u32, u32), DecodeError> {
        let v = self.u64()?;
        Ok((v as u32, (v >> 32) as u32))
    }
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let v = self.b.get(
            self.p
                ..self
                    .p
                    .checked_add(n)
                    .ok_or_else(|| DecodeError("length overflows".into()))?,
        );
        let v = v.ok_or_else(|| DecodeError("record ends inside a field".into()))?;
        self.p += n;
        Ok(v)
    }
}

impl<'a> Records<'a> {
    /// [`PerfAttrs::event_of`], remembering the last two ids.
    fn event_of(&self, id: u64) -> Option<usize> {
        let mut recent = self.recent.get();
        if let Some((_, i)) = recent.iter().flatten().find(|r| r.0 == id) {
            return Some(*i);
        }
        let i = self.attrs.event_of(id)?;
        recent = [Some((id, i)), recent[0]];
        self.recent.set(recent);
        Some(i)
    }

    fn event(&self, id: u64) -> Result<(usize, &'a EventAttr), DecodeError> {
        let i = self
            .event_of(id)
            .ok_or_else(|| DecodeError(format!("record of unknown event id {id}")))?;
        Ok((i, &self.attrs.events[i]))
    }

    fn sample_id(&self, body: &'a [u8]) -> Result<(SampleId, &'a [u8]), DecodeError> {
        // IDENTIFIER is the last u64 of every non-sample record.
        let n = body.len();
        if n < 8 {
            return Err(DecodeError("record too short for its sample_id".into()));
        }
        let ident = u64::from_le_bytes(body[n - 8..].try_into().expect("8"));
        let (event, attr) = self.event(ident)?;
        let len = attr.sample_id_len();
        if len > n {
            return Err(DecodeError("record too short for its sample_id".into()));
        }
        let mut c = Cur {
            b: &body[n - len..],
            p: 0,
        };
        let t = attr.sample_type;
        let mut id = SampleId {
            event,
            ..SampleId::default()
        };
        if t & sample::TID != 0 {
            (id.pid, id.tid) = c.u32x2()?;
        }
        if t & sample::TIME != 0 {
            id.time = c.u64()?;
        }
        if t & sample::ID != 0 {
            c.u64()?;
        }
        if t & sample::STREAM_ID != 0 {
            c.u64()?;
        }
        if t & sample::CPU != 0 {
            id.cpu = c.u32x2()?.0;
        }
        Ok((id, &body[..n - len]))
    }

    fn sample(&self, body: &'a [u8]) -> Result<Sample<'a>, DecodeError> {
        let (event, attr) = self.event(u64::from_le_bytes(
            body.get(0..8)
                .ok_or_else(|| DecodeError("record ends inside a field".into()))?
                .try_into()
                .expect("8"),
        ))?;
        Ok(self.sample_as(body, event, attr)?.0)
    }

    /// A sample whose IDENTIFIER is unknown, recognised by its READ group: decoded with the
    /// layout of each group event in turn, it must fill the record exactly and read the
    /// counters of a group of this trace (our ids, which the kernel writes per event).
    fn sample_by_read(&self, body: &'a [u8]) -> Option<Sample<'a>> {
        let group = read_format::GROUP | read_format::ID;
        let mut tried: Vec<(u64, u64)> = Vec::new();
        for (i, attr) in self.attrs.events.iter().enumerate() {
            let key = (attr.sample_type, attr.read_format);
            if attr.sample_type & sample::READ == 0
                || attr.read_format & group != group
                || tried.contains(&key)
            {
                continue;
            }
            tried.push(key);
            let Ok((mut s, used)) = self.sample_as(body, i, attr) else {
                continue;
            };
            let leader = s.read.iter().next().and_then(|v| self.event_of(v.id));
            let ours = s.read.iter().all(|v| self.event_of(v.id).is_some());
            if let (true, true, Some(e)) = (used == body.len(), ours, leader) {
                let la = &self.attrs.events[e];
                if (la.sample_type, la.read_format) == key {
                    s.id.event = e;
                    s.foreign_id = true;
                    return Some(s);
                }
            }
        }
        None
    }

    /// Decodes a sample with `attr`'s layout; also returns the bytes it used.
    fn sample_as(
        &self,
        body: &'a [u8],
        event: usize,
        attr: &EventAttr,
    ) -> Result<(Sample<'a>, usize), DecodeError> {
        let mut c = Cur { b: body, p: 8 };
        let t = attr.sample_type;
        if t & !sample::SUPPORTED != 0 {
            return Err(DecodeError(format!(
                "event {} has unsupported sample_type bits {:#x}",
                attr.name,
                t & !sample::SUPPORTED
            )));
        }
        let mut s = Sample {
            id: SampleId {
                event,
                ..SampleId::default()
            },
            ..Sample::default()
        };
        if t & sample::IP != 0 {
            s.ip = Some(c.u64()?);
        }
        if t & sample::TID != 0 {
            (s.id.pid, s.id.tid) = c.u32x2()?;
        }
        if t & sample::TIME != 0 {
            s.id.time = c.u64()?;
        }
        if t & sample::ADDR != 0 {
            c.u64()?;
        }
        if t & sample::ID != 0 {
            c.u64()?;
        }
        if t & sample::STREAM_ID != 0 {
            c.u64()?;
        }
        if t & sample::CPU != 0 {
            s.id.cpu = c.u32x2()?.0;
        }
        if t & sample::PERIOD != 0 {
            s.period = c.u64()?;
        }
        if t & sample::READ != 0 {
            let rf = attr.read_format;
            let has_id = rf & read_format::ID != 0;
            let lost = usize::from(rf & read_format::LOST != 0);
            let enabled = rf & read_format::TOTAL_TIME_ENABLED != 0;
            let running = rf & read_format::TOTAL_TIME_RUNNING != 0;
            if rf & read_format::GROUP != 0 {
                // nr, the times, then nr × (value, id, lost).
                let nr = c.u64()?;
                if enabled {
                    s.time_enabled = c.u64()?;
                }
                if running {
                    s.time_running = c.u64()?;
                }
                let stride = group_entry_stride(rf);
                let bytes = usize::try_from(nr)
                    .ok()
                    .and_then(|n| n.checked_mul(stride))
                    .ok_or_else(|| DecodeError("read group count overflows".into()))?;
                s.read = ReadGroup {
                    bytes: c.bytes(bytes)?,
                    stride,
                    has_id,
                    id_at: 8,
                };
            } else {
                // value, the times, id, lost.
                let times = usize::from(enabled) + usize::from(running);
                let stride = 8 * (1 + times + usize::from(has_id) + lost);
                let bytes = c.bytes(stride)?;
                let at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().expect("8"));
                if enabled {
                    s.time_enabled = at(8);
                }
                if running {
                    s.time_running = at(8 + 8 * usize::from(enabled));
                }
                s.read = ReadGroup {
                    bytes,
                    stride,
                    has_id,
                    id_at: 8 * (1 + times),
                };
            }
        }
        if t & sample::CALLCHAIN != 0 {
            let n = c.u64()?;
            c.bytes(usize::try_from(n).unwrap_or(usize::MAX).saturating_mul(8))?;
        }
        if t & sample::RAW != 0 {
            let size = c.bytes(4)?;
            let size = u32::from_le_bytes(size.try_into().expect("4")) as usize;
            s.raw = Some(c.bytes(size)?);
            // RAW is padded so the next field is 8-aligned.
            c.p = (c.p + 7) & !7;
        }
        if t & sample::CGROUP != 0 {
            s.cgroup = Some(c.u64()?);
        }
        Ok((s, c.p))
    }

    fn decode(&self, kind: u32, misc: u16, body: &'a [u8]) -> Result<PerfRecord<'a>, DecodeError> {
        let ident = match kind {
            PERF_RECORD_SAMPLE => body.get(0..8),
            PERF_RECORD_SWITCH
            | PERF_RECORD_SWITCH_CPU_WIDE
            | PERF_RECORD_COMM
            | PERF_RECORD_FORK
            | PERF_RECORD_EXIT
            | PERF_RECORD_CGROUP
            | PERF_RECORD_LOST
            | PERF_RECORD_LOST_SAMPLES
            | PERF_RECORD_THROTTLE
            | PERF_RECORD_UNTHROTTLE => body.len().checked_sub(8).and_then(|n| body.get(n..)),
            _ => None,
        };
        if let Some(b) = ident {
            let ident = u64::from_le_bytes(b.try_into().expect("8"));
            if self.event_of(ident).is_none() {
                if kind == PERF_RECORD_SAMPLE {
                    if let Some(s) = self.sample_by_read(body) {
                        return Ok(PerfRecord::Sample(s));
                    }
                }
                return Ok(PerfRecord::UnknownEvent { kind, ident });
            }
        }
        let u32_at = |b: &[u8], o: usize| {
            b.get(o..o + 4)
                .map(|x| u32::from_le_bytes(x.try_into().expect("4")))
        };
        let too_short = || DecodeError(format!("record type {kind} too short"));
        Ok(match kind {
            PERF_RECORD_SAMPLE => PerfRecord::Sample(self.sample(body)?),
            PERF_RECORD_SWITCH | PERF_RECORD_SWITCH_CPU_WIDE => {
                let (id, rest) = self.sample_id(body)?;
                let next_prev = if kind == PERF_RECORD_SWITCH_CPU_WIDE {
                    Some((
                        u32_at(rest, 0).ok_or_else(too_short)?,
                        u32_at(rest, 4).ok_or_else(too_short)?,
                    ))
                } else {
                    None
                };
                PerfRecord::Switch {
                    out: misc & MISC_SWITCH_OUT != 0,
                    preempt: misc & MISC_SWITCH_OUT_PREEMPT != 0,
                    next_prev,
                    id,
                }
            }
            PERF_RECORD_COMM => {
                let (id, rest) = self.sample_id(body)?;
                let name = rest.get(8..).ok_or_else(too_short)?;
                let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
                PerfRecord::Comm {
                    pid: u32_at(rest, 0).ok_or_else(too_short)?,
                    tid: u32_at(rest, 4).ok_or_else(too_short)?,
                    comm: std::str::from_utf8(&name[..end])
                        .map_err(|_| DecodeError("comm is not UTF-8".into()))?,
                    exec: misc & MISC_COMM_EXEC != 0,
                    id,
                }
            }
            PERF_RECORD_FORK | PERF_RECORD_EXIT => {
                let (id, rest) = self.sample_id(body)?;
                let f = |o| u32_at(rest, o).ok_or_else(too_short);
                let (pid, ppid, tid, ptid) = (f(0)?, f(4)?, f(8)?, f(12)?);
                if kind == PERF_RECORD_FORK {
                    PerfRecord::Fork {
                        pid,
                        ppid,
                        tid,
                        ptid,
                        id,
                    }
                } else {
                    PerfRecord::Exit {
                        pid,
                        ppid,
                        tid,
                        ptid,
                        id,
                    }
                }
            }
            PERF_RECORD_CGROUP => {
                let (id, rest) = self.sample_id(body)?;
                let cg = rest.get(0..8).ok_or_else(too_short)?;
                let path = &rest[8..];
                let end = path.iter().position(|&c| c == 0).unwrap_or(path.len());
                PerfRecord::Cgroup {
                    cgroup_id: u64::from_le_bytes(cg.try_into().expect("8")),
                    path: std::str::from_utf8(&path[..end])
                        .map_err(|_| DecodeError("cgroup path is not UTF-8".into()))?,
                    id,
                }
            }
            PERF_RECORD_LOST => {
                let (id, rest) = self.sample_id(body)?;
                let lost = rest.get(8..16).ok_or_else(too_short)?;
                PerfRecord::Lost {
                    lost: u64::from_le_bytes(lost.try_into().expect("8")),
                    id,
                }
            }
            PERF_RECORD_LOST_SAMPLES => {
                let (id, rest) = self.sample_id(body)?;
                let lost = rest.get(0..8).ok_or_else(too_short)?;
                PerfRecord::LostSamples {
                    lost: u64::from_le_bytes(lost.try_into().expect("8")),
                    id,
                }
            }
            PERF_RECORD_THROTTLE | PERF_RECORD_UNTHROTTLE => {
                let (id, _) = self.sample_id(body)?;
                PerfRecord::Throttle {
                    unthrottle: kind == PERF_RECORD_UNTHROTTLE,
                    id,
                }
            }
            _ => PerfRecord::Other { kind, misc },
        })
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<PerfRecord<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.data.get(self.pos..)?;
        if rest.is_empty() {
            return None;
        }
        let at = self.pos;
        let fail = |msg: String| {
            Some(Err(DecodeError(format!(
                "perf record at byte {at} of the block's data: {msg}"
            ))))
        };
        if rest.len() < 8 {
            self.pos = self.data.len();
            return fail(format!(
                "{} bytes left, less than a record header",
                rest.len()
            ));
        }
        let kind = u32::from_le_bytes(rest[0..4].try_into().expect("4"));
        let misc = u16::from_le_bytes([rest[4], rest[5]]);
        let size = u16::from_le_bytes([rest[6], rest[7]]) as usize;
        if size < 8 || size > rest.len() {
            self.pos = self.data.len();
            return fail(format!(
                "record size {size} does not fit ({} bytes left)",
                rest.len()
            ));
        }
        self.pos += size;
        Some(self.decode(kind, misc, &rest[8..size]).map_err(|e| {
            DecodeError(format!(
                "perf record at byte {at} of the block's data: {}",
                e.0
            ))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CGROUP_MKDIR_FORMAT: &str = "name: cgroup_mkdir
ID: 570
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int root;\toffset:8;\tsize:4;\tsigned:1;
\tfield:int level;\toffset:12;\tsize:4;\tsigned:1;
\tfield:u64 id;\toffset:16;\tsize:8;\tsigned:0;
\tfield:__data_loc char[] path;\toffset:24;\tsize:4;\tsigned:0;

print fmt: \"root=%d id=%llu level=%d path=%s\", REC->root, REC->id, REC->level, __get_str(path)
";

    #[test]
    fn tracepoint_fields_decode_from_the_format_text() {
        let f = TracepointFormat::parse(CGROUP_MKDIR_FORMAT);
        let names: Vec<_> = f.fields.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "common_type",
                "common_flags",
                "common_preempt_count",
                "common_pid",
                "root",
                "level",
                "id",
                "path"
            ]
        );
        let mut raw = vec![0u8; 28];
        raw[16..24].copy_from_slice(&4242u64.to_le_bytes());
        let path = b"/pws/fn-1\0";
        raw[24..28].copy_from_slice(&((28u32) | ((path.len() as u32) << 16)).to_le_bytes());
        raw.extend_from_slice(path);
        assert_eq!(f.u64(&raw, "id"), Some(4242));
        assert_eq!(f.str(&raw, "path"), Some("/pws/fn-1"));
        assert_eq!(
            f.str(&raw[..20], "path"),
            None,
            "a truncated raw record is not a panic"
        );
    }

    /// One event whose attr has `sample_type` and `read_format`, with id 7.
    fn attrs_with(sample_type: u64, read_format: u64) -> PerfAttrs {
        let mut attr = vec![0u8; 128];
        attr[24..32].copy_from_slice(&sample_type.to_le_bytes());
        attr[32..40].copy_from_slice(&read_format.to_le_bytes());
        PerfAttrs::new(&[crate::records::PerfEventInfo {
            name: "cpu-clock".into(),
            pmu: "software".into(),
            attr,
            ids: vec![crate::records::PerfEventId { cpu: 0, id: 7 }],
            format: String::new(),
        }])
        .expect("attrs")
    }

    #[test]
    fn group_layouts_read_what_the_general_decoder_reads() {
        use read_format as rf;
        let base = sample::IDENTIFIER | sample::TID | sample::TIME | sample::READ;
        let layouts = [
            (base | sample::CGROUP, rf::GROUP | rf::ID),
            (
                base | sample::IP | sample::CPU | sample::PERIOD | sample::ID | sample::CGROUP,
                rf::GROUP | rf::ID | rf::TOTAL_TIME_ENABLED | rf::TOTAL_TIME_RUNNING,
            ),
            (base, rf::GROUP | rf::ID | rf::LOST | rf::TOTAL_TIME_ENABLED),
            (base | sample::STREAM_ID | sample::ADDR, rf::GROUP),
        ];
        for (st, rfmt) in layouts {
            let attrs = attrs_with(st, rfmt);
            let layout = attrs.group_layout(0).expect("a fixed layout");
            // Every field a distinct value, two counters in the group.
            let mut body = vec![7u64];
            let mut next = 100u64;
            let mut field = |body: &mut Vec<u64>| {
                next += 1;
                body.push(next | (next + 1000) << 32);
            };
            for bit in [
                sample::IP,
                sample::TID,
                sample::TIME,
                sample::ADDR,
                sample::ID,
            ] {
                if st & bit != 0 {
                    field(&mut body);
                }
            }
            for bit in [sample::STREAM_ID, sample::CPU, sample::PERIOD] {
                if st & bit != 0 {
                    field(&mut body);
                }
            }
            body.push(2); // nr
            let entry = 1 + usize::from(rfmt & rf::ID != 0) + usize::from(rfmt & rf::LOST != 0);
            let times = usize::from(rfmt & rf::TOTAL_TIME_ENABLED != 0)
                + usize::from(rfmt & rf::TOTAL_TIME_RUNNING != 0);
            for _ in 0..times + 2 * entry {
                field(&mut body);
            }
            if st & sample::CGROUP != 0 {
                field(&mut body);
            }
            let bytes: Vec<u8> = body.iter().flat_map(|v| v.to_le_bytes()).collect();
            let mut rec = PERF_RECORD_SAMPLE.to_le_bytes().to_vec();
            rec.extend_from_slice(&0u16.to_le_bytes());
            rec.extend_from_slice(&((8 + bytes.len()) as u16).to_le_bytes());
            rec.extend_from_slice(&bytes);
            let Some(Ok(PerfRecord::Sample(s))) = attrs.records(&rec).next() else {
                panic!("the general decoder reads the sample");
            };
            let g = layout.read(&bytes).expect("the layout reads the sample");
            assert_eq!(
                (g.pid, g.time, g.time_enabled, g.read, g.cgroup),
                (s.id.pid, s.id.time, s.time_enabled, s.read, s.cgroup),
                "sample_type {st:#x}, read_format {rfmt:#x}"
            );
            assert_eq!(
                layout.read(&bytes[..bytes.len() - 8]),
                None,
                "a short sample"
            );
            assert_eq!(
                g.read.first_id(),
                s.read.iter().next().map(|v| v.id),
                "the leader's id (0 without ids), read_format {rfmt:#x}"
            );
        }
        assert_eq!(ReadGroup::default().first_id(), None, "an empty read");
        // Variable-length fields before the end, or a read that is not a group: no layout.
        assert_eq!(
            attrs_with(base | sample::RAW, rf::GROUP).group_layout(0),
            None
        );
        assert_eq!(
            attrs_with(base | sample::CALLCHAIN, rf::GROUP).group_layout(0),
            None
        );
        assert_eq!(attrs_with(base, rf::ID).group_layout(0), None);
        assert_eq!(attrs_with(base & !sample::READ, 0).group_layout(0), None);
    }

    #[test]
    fn a_read_of_one_counter_has_its_times_after_the_value() {
        // perf_event_open(2): without PERF_FORMAT_GROUP the read is value, time_enabled,
        // time_running, id; with it, nr, the times, then the values.
        use read_format as rf;
        let st = sample::IDENTIFIER | sample::TID | sample::TIME | sample::READ;
        let attrs = attrs_with(st, rf::TOTAL_TIME_ENABLED | rf::TOTAL_TIME_RUNNING | rf::ID);
        let body: Vec<u8> = [7u64, 10 | 10 << 32, 5_000, 123, 900, 800, 7]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let mut rec = PERF_RECORD_SAMPLE.to_le_bytes().to_vec();
        rec.extend_from_slice(&0u16.to_le_bytes());
        rec.extend_from_slice(&((8 + body.len()) as u16).to_le_bytes());
        rec.extend_from_slice(&body);
        let Some(Ok(PerfRecord::Sample(s))) = attrs.records(&rec).next() else {
            panic!("decodes");
        };
        assert_eq!((s.time_enabled, s.time_running), (900, 800));
        assert_eq!(
            s.read.iter().collect::<Vec<_>>(),
            [ReadValue { id: 7, value: 123 }]
        );
    }
}
