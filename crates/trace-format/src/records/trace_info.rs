use crate::codec::{put_records, Dec, DecodeResult, Put};
use crate::records::{code_enum, Payload};
use crate::BlockKind;

/// `clockid_t` of CLOCK_MONOTONIC: the clock of every timestamp a pws-record trace holds.
pub const CLOCK_MONOTONIC: u32 = 1;

/// What was recorded, where and how: the first block of every trace. Holds everything needed
/// to decode the trace away from the machine that wrote it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TraceInfo {
    pub hostname: String,
    /// `uname -r`.
    pub kernel_release: String,
    /// `uname -v`.
    pub kernel_version: String,
    /// `uname -m`.
    pub arch: String,
    pub cpu_model: String,
    pub recorder: String,
    pub recorder_version: String,
    pub command_line: Vec<String>,
    /// `clockid_t` of every timestamp in the trace.
    pub clock: u32,
    pub start_monotonic_ns: u64,
    pub start_realtime_ns: u64,
    pub page_size: u32,
    pub cpus: Vec<CpuInfo>,
    pub perf_events: Vec<PerfEventInfo>,
    /// Every source the recorder tried, with what it used or why not.
    pub sources: Vec<SourceInfo>,
    /// Free key/value metadata: run id, workload, configuration.
    pub metadata: Vec<(String, String)>,
}

/// One logical CPU. `u32::MAX` stands for "unknown".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuInfo {
    pub cpu: u32,
    pub online: bool,
    pub package: u32,
    pub die: u32,
    pub core: u32,
    pub numa_node: u32,
}

/// One perf event as opened: its `perf_event_attr` bytes exactly as given to
/// `perf_event_open` (the struct's own `size` field says how long) and the kernel's id for
/// each CPU it was opened on, which PERF_SAMPLE_IDENTIFIER and read groups refer to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PerfEventInfo {
    pub name: String,
    /// PMU name as in `/sys/bus/event_source/devices/` ("software", "cpu", "tracepoint", …).
    pub pmu: String,
    pub attr: Vec<u8>,
    pub ids: Vec<PerfEventId>,
    /// For tracepoints, the text of tracefs's `format` file: how to decode PERF_SAMPLE_RAW.
    pub format: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PerfEventId {
    pub cpu: u32,
    pub id: u64,
}

code_enum! {
    /// What became of a source the recorder tried.
    SourceStatus {
        Used = 1 => "used",
        Unavailable = 2 => "unavailable",
        Failed = 3 => "failed",
        Disabled = 4 => "disabled",
    }
}

/// A measurement source the recorder tried: perf events, an energy counter, an activation feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    /// The family: `perf`, `energy`, `cgroups`, `activations`, …
    pub kind: String,
    pub name: String,
    pub status: SourceStatus,
    /// Why, or the details of what was used ("simulated from SPECpower …", an errno, …).
    pub detail: String,
}

impl Payload for TraceInfo {
    const KIND: BlockKind = BlockKind::TRACE_INFO;

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_record(|b| {
            b.put_str(&self.hostname);
            b.put_str(&self.kernel_release);
            b.put_str(&self.kernel_version);
            b.put_str(&self.arch);
            b.put_str(&self.cpu_model);
            b.put_str(&self.recorder);
            b.put_str(&self.recorder_version);
            b.put_varint(self.command_line.len() as u64);
            for a in &self.command_line {
                b.put_str(a);
            }
            b.put_u32(self.clock);
            b.put_u64(self.start_monotonic_ns);
            b.put_u64(self.start_realtime_ns);
            b.put_u32(self.page_size);
            put_records(b, &self.cpus, |b, c| {
                b.put_varint(c.cpu.into());
                b.put_u8(c.online.into());
                b.put_varint(c.package.into());
                b.put_varint(c.die.into());
                b.put_varint(c.core.into());
                b.put_varint(c.numa_node.into());
            });
            put_records(b, &self.perf_events, |b, e| {
                b.put_str(&e.name);
                b.put_str(&e.pmu);
                b.put_bytes(&e.attr);
                b.put_varint(e.ids.len() as u64);
                for id in &e.ids {
                    b.put_varint(id.cpu.into());
                    b.put_u64(id.id);
                }
                b.put_str(&e.format);
            });
            put_records(b, &self.sources, |b, s| {
                b.put_str(&s.kind);
                b.put_str(&s.name);
                b.put_u8(s.status.code());
                b.put_str(&s.detail);
            });
            b.put_varint(self.metadata.len() as u64);
            for (k, v) in &self.metadata {
                b.put_str(k);
                b.put_str(v);
            }
        });
    }
}

impl TraceInfo {
    pub fn decode(payload: &[u8]) -> DecodeResult<Self> {
        let mut d = Dec::new(payload).record("trace info")?;
        let hostname = d.string("hostname")?;
        let kernel_release = d.string("kernel release")?;
        let kernel_version = d.string("kernel version")?;
        let arch = d.string("arch")?;
        let cpu_model = d.string("cpu model")?;
        let recorder = d.string("recorder")?;
        let recorder_version = d.string("recorder version")?;
        let n = d.count("command line", 1)?;
        let mut command_line = Vec::with_capacity(n);
        for _ in 0..n {
            command_line.push(d.string("command line argument")?);
        }
        let clock = d.u32("clock")?;
        let start_monotonic_ns = d.u64("start monotonic")?;
        let start_realtime_ns = d.u64("start realtime")?;
        let page_size = d.u32("page size")?;
        let cpus = d.records("cpus", |r| {
            Ok(CpuInfo {
                cpu: r.varint_u32("cpu")?,
                online: r.u8("online")? != 0,
                package: r.varint_u32("package")?,
                die: r.varint_u32("die")?,
                core: r.varint_u32("core")?,
                numa_node: r.varint_u32("numa node")?,
            })
        })?;
        let perf_events = d.records("perf events", |r| {
            let name = r.string("event name")?;
            let pmu = r.string("event pmu")?;
            let attr = r.bytes("perf_event_attr")?.to_vec();
            let n = r.count("event ids", 9)?;
            let mut ids = Vec::with_capacity(n);
            for _ in 0..n {
                ids.push(PerfEventId {
                    cpu: r.varint_u32("event id cpu")?,
                    id: r.u64("event id")?,
                });
            }
            let format = r.string("tracepoint format")?;
            Ok(PerfEventInfo {
                name,
                pmu,
                attr,
                ids,
                format,
            })
        })?;
        let sources = d.records("sources", |r| {
            Ok(SourceInfo {
                kind: r.string("source kind")?,
                name: r.string("source name")?,
                status: SourceStatus::from_code(r.u8("source status")?),
                detail: r.string("source detail")?,
            })
        })?;
        let n = d.count("metadata", 2)?;
        let mut metadata = Vec::with_capacity(n);
        for _ in 0..n {
            metadata.push((d.string("metadata key")?, d.string("metadata value")?));
        }
        Ok(Self {
            hostname,
            kernel_release,
            kernel_version,
            arch,
            cpu_model,
            recorder,
            recorder_version,
            command_line,
            clock,
            start_monotonic_ns,
            start_realtime_ns,
            page_size,
            cpus,
            perf_events,
            sources,
            metadata,
        })
    }
}
