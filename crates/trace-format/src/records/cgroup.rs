use crate::codec::{put_records, Dec, DecodeResult, Put};
use crate::records::{code_enum, Payload};
use crate::BlockKind;

code_enum! {
    /// What happened to a cgroup.
    CgroupOp {
        /// The cgroup existed when recording started (synthesized snapshot).
        Exists = 0 => "exists",
        Mkdir = 1 => "mkdir",
        Rmdir = 2 => "rmdir",
        Freeze = 3 => "freeze",
        Thaw = 4 => "thaw",
        Attach = 5 => "attach",
        Release = 6 => "release",
        Rename = 7 => "rename",
    }
}

/// One cgroup lifecycle event on the trace clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupEvent {
    pub ts_ns: u64,
    pub op: CgroupOp,
    /// Kernel cgroup id (on cgroup v2, the directory's inode number): what
    /// PERF_SAMPLE_CGROUP carries.
    pub cgroup_id: u64,
    /// cgroup v1 hierarchy id; 0 on the v2 (unified) hierarchy.
    pub hierarchy: u32,
    /// Path relative to the hierarchy's root, starting with `/`.
    pub path: String,
    /// Task concerned (attach), 0 otherwise.
    pub pid: u32,
    /// Anything else the source knew (the new path of a rename, the tracepoint name, …).
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CgroupEvents {
    pub events: Vec<CgroupEvent>,
}

impl Payload for CgroupEvents {
    const KIND: BlockKind = BlockKind::CGROUP_EVENTS;

    fn encode(&self, out: &mut Vec<u8>) {
        put_records(out, &self.events, |b, e| {
            b.put_u64(e.ts_ns);
            b.put_u8(e.op.code());
            b.put_u64(e.cgroup_id);
            b.put_varint(e.hierarchy.into());
            b.put_str(&e.path);
            b.put_varint(e.pid.into());
            b.put_str(&e.detail);
        });
    }
}

impl CgroupEvents {
    pub fn decode(payload: &[u8]) -> DecodeResult<Self> {
        let events = Dec::new(payload).records("cgroup events", |r| {
            Ok(CgroupEvent {
                ts_ns: r.u64("cgroup event time")?,
                op: CgroupOp::from_code(r.u8("cgroup op")?),
                cgroup_id: r.u64("cgroup id")?,
                hierarchy: r.varint_u32("cgroup hierarchy")?,
                path: r.string("cgroup path")?,
                pid: r.varint_u32("cgroup event pid")?,
                detail: r.string("cgroup event detail")?,
            })
        })?;
        Ok(Self { events })
    }
}
