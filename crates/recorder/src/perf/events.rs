//! Which perf events pws-record opens on every CPU, and how.
//!
//! Per online CPU, one group and the cgroup tracepoints, all writing into one ring:
//! - the **leader** samples at `--freq` (hardware cycles where there is a PMU, else the
//!   software `cpu-clock`) and carries the side-band records: context switches, task
//!   (fork/exit), comm and cgroup creation;
//! - **counters** (`--events`) are group members read with every sample of the group
//!   (PERF_SAMPLE_READ + PERF_FORMAT_GROUP);
//! - the **switch sampler** is the software `context-switches` event with period 1, also a
//!   member: it samples at every switch-out in the context of the task that leaves, reading
//!   the group, so the counters of every slice a task ran are in the trace, however short;
//! - **tracepoints** `cgroup:*` sample every cgroup mkdir, rmdir, freeze, thaw, attach.
//!
//! Every event carries PERF_SAMPLE_IDENTIFIER so a reader finds each record's attr in the
//! trace info, and uses CLOCK_MONOTONIC, the trace clock.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};

use perf_event_open_sys as sys;
use sys::bindings::{self as b, perf_event_attr};

/// What every sample records (FORMAT.md, "How pws-record uses perf"). Not the CPU (each ring
/// is one CPU's, and the trace says whose) nor the period (the group read has the leader's
/// count): 16 of a sample's 128 bytes on a VM, which the recorder would copy and compress.
pub const SAMPLE_TYPE: u64 = (b::PERF_SAMPLE_IDENTIFIER
    | b::PERF_SAMPLE_TID
    | b::PERF_SAMPLE_TIME
    | b::PERF_SAMPLE_READ
    | b::PERF_SAMPLE_CGROUP) as u64;
/// Tracepoint samples: who, when, where, and the tracepoint's raw fields.
pub const TRACEPOINT_SAMPLE_TYPE: u64 =
    (b::PERF_SAMPLE_IDENTIFIER | b::PERF_SAMPLE_TID | b::PERF_SAMPLE_TIME | b::PERF_SAMPLE_RAW)
        as u64;
pub const READ_FORMAT: u64 = (b::PERF_FORMAT_GROUP
    | b::PERF_FORMAT_ID
    | b::PERF_FORMAT_TOTAL_TIME_ENABLED
    | b::PERF_FORMAT_TOTAL_TIME_RUNNING) as u64;

/// A countable event by name, as `--events` takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    pub name: &'static str,
    pub type_: u32,
    pub config: u64,
}

impl Counter {
    pub fn pmu(&self) -> &'static str {
        match self.type_ {
            b::PERF_TYPE_SOFTWARE => "software",
            b::PERF_TYPE_TRACEPOINT => "tracepoint",
            _ => "cpu",
        }
    }
}

const fn hw(name: &'static str, config: u32) -> Counter {
    Counter {
        name,
        type_: b::PERF_TYPE_HARDWARE,
        config: config as u64,
    }
}

const fn sw(name: &'static str, config: u32) -> Counter {
    Counter {
        name,
        type_: b::PERF_TYPE_SOFTWARE,
        config: config as u64,
    }
}

pub const CYCLES: Counter = hw("cycles", b::PERF_COUNT_HW_CPU_CYCLES);
pub const CPU_CLOCK: Counter = sw("cpu-clock", b::PERF_COUNT_SW_CPU_CLOCK);
pub const TASK_CLOCK: Counter = sw("task-clock", b::PERF_COUNT_SW_TASK_CLOCK);
pub const CONTEXT_SWITCHES: Counter = sw("context-switches", b::PERF_COUNT_SW_CONTEXT_SWITCHES);

/// Counters `--events` accepts.
pub const KNOWN_COUNTERS: &[Counter] = &[
    hw("instructions", b::PERF_COUNT_HW_INSTRUCTIONS),
    CYCLES,
    hw("ref-cycles", b::PERF_COUNT_HW_REF_CPU_CYCLES),
    Counter {
        name: "llc-misses",
        type_: b::PERF_TYPE_HW_CACHE,
        config: (b::PERF_COUNT_HW_CACHE_LL
            | (b::PERF_COUNT_HW_CACHE_OP_READ << 8)
            | (b::PERF_COUNT_HW_CACHE_RESULT_MISS << 16)) as u64,
    },
    hw("cache-misses", b::PERF_COUNT_HW_CACHE_MISSES),
    hw("branch-misses", b::PERF_COUNT_HW_BRANCH_MISSES),
    TASK_CLOCK,
    CPU_CLOCK,
];

/// The default `--events`: the counters power models use, where the host has them.
pub const DEFAULT_EVENTS: &str = "instructions,cycles,ref-cycles,llc-misses";

pub fn counter_by_name(name: &str) -> Option<Counter> {
    KNOWN_COUNTERS
        .iter()
        .copied()
        .find(|c| c.name == name.trim())
}

fn base_attr(type_: u32, config: u64) -> perf_event_attr {
    let mut a = perf_event_attr {
        type_,
        size: std::mem::size_of::<perf_event_attr>() as u32,
        config,
        sample_type: SAMPLE_TYPE,
        read_format: READ_FORMAT,
        clockid: libc::CLOCK_MONOTONIC,
        ..Default::default()
    };
    a.set_sample_id_all(1);
    a.set_use_clockid(1);
    a
}

/// The group leader: samples at `freq` Hz and carries the side-band records.
pub fn leader_attr(c: Counter, freq: u64, wakeup_bytes: u32) -> perf_event_attr {
    let mut a = base_attr(c.type_, c.config);
    a.set_disabled(1);
    a.set_freq(1);
    a.__bindgen_anon_1.sample_freq = freq;
    a.set_context_switch(1);
    a.set_task(1);
    a.set_comm(1);
    a.set_cgroup(1);
    // Wake the reader after every `wakeup_bytes` written, not at every record.
    a.set_watermark(1);
    a.__bindgen_anon_2.wakeup_watermark = wakeup_bytes;
    a
}

/// A counting group member.
pub fn counter_attr(c: Counter) -> perf_event_attr {
    base_attr(c.type_, c.config)
}

/// The switch sampler: a sample at every context switch, reading the group.
pub fn switch_sampler_attr() -> perf_event_attr {
    let mut a = base_attr(CONTEXT_SWITCHES.type_, CONTEXT_SWITCHES.config);
    a.__bindgen_anon_1.sample_period = 1;
    a
}

/// A tracepoint sampled at every hit.
pub fn tracepoint_attr(id: u64) -> perf_event_attr {
    let mut a = base_attr(b::PERF_TYPE_TRACEPOINT, id);
    a.sample_type = TRACEPOINT_SAMPLE_TYPE;
    a.read_format = 0;
    a.__bindgen_anon_1.sample_period = 1;
    a.set_disabled(1);
    a
}

/// The attr exactly as the kernel got it, for the trace info.
pub fn attr_bytes(a: &perf_event_attr) -> Vec<u8> {
    // SAFETY: perf_event_attr is a plain C struct without padding holes the kernel reads
    // (bindgen lays it out as the kernel does); we read exactly its size.
    let bytes = unsafe {
        std::slice::from_raw_parts(
            (a as *const perf_event_attr).cast::<u8>(),
            std::mem::size_of::<perf_event_attr>(),
        )
    };
    bytes.to_vec()
}

/// Opens one event system-wide on `cpu` (pid -1), in `group` if given.
pub fn open(attr: &mut perf_event_attr, cpu: u32, group: Option<&File>) -> io::Result<File> {
    let group_fd = group.map_or(-1, |g| g.as_raw_fd());
    // SAFETY: `attr` is a valid, initialised perf_event_attr with its size set; the other
    // arguments are plain integers.
    let fd = unsafe {
        sys::perf_event_open(
            attr,
            -1,
            cpu as i32,
            group_fd,
            b::PERF_FLAG_FD_CLOEXEC as libc::c_ulong,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us and nothing else owns it.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// The kernel's id for an open event (what PERF_SAMPLE_IDENTIFIER carries).
pub fn event_id(f: &File) -> io::Result<u64> {
    let mut id = 0u64;
    // SAFETY: PERF_EVENT_IOC_ID writes one u64 through the pointer, which is valid.
    let rc = unsafe { sys::ioctls::ID(f.as_raw_fd(), &mut id) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(id)
}

/// Sends `f`'s records into `target`'s ring (same CPU, same clock).
pub fn set_output(f: &File, target: &File) -> io::Result<()> {
    // SAFETY: both are open perf fds owned by us.
    let rc = unsafe { sys::ioctls::SET_OUTPUT(f.as_raw_fd(), target.as_raw_fd()) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub fn enable(f: &File) -> io::Result<()> {
    // SAFETY: ENABLE takes no pointer argument.
    let rc = unsafe { sys::ioctls::ENABLE(f.as_raw_fd(), 0) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub fn disable(f: &File) -> io::Result<()> {
    // SAFETY: DISABLE takes no pointer argument.
    let rc = unsafe { sys::ioctls::DISABLE(f.as_raw_fd(), 0) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Does this error mean "the host has no such event" (rather than "you may not")?
pub fn is_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOENT | libc::EOPNOTSUPP | libc::ENODEV | libc::EINVAL)
    )
}

/// What to tell a user whose perf_event_open was refused.
pub fn refused_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EACCES | libc::EPERM) => {
            "system-wide recording needs root, or CAP_PERFMON (CAP_SYS_ADMIN before Linux 5.8), \
             or kernel.perf_event_paranoid <= -1 (sysctl -w kernel.perf_event_paranoid=-1)"
        }
        Some(libc::EMFILE | libc::ENFILE) => {
            "too many open files: raise `ulimit -n` (pws-record opens several events per CPU)"
        }
        Some(libc::ENOMEM) => "the kernel could not allocate the event; try a smaller --mmap-pages",
        _ => "check that the kernel supports this event (perf list)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_event_is_known() {
        for name in DEFAULT_EVENTS.split(',') {
            assert!(counter_by_name(name).is_some(), "{name}");
        }
        assert!(counter_by_name("no-such-event").is_none());
    }

    #[test]
    fn attrs_carry_the_identifier_and_the_trace_clock() {
        let a = leader_attr(CPU_CLOCK, 1000, 4096);
        assert_eq!(
            a.sample_type & b::PERF_SAMPLE_IDENTIFIER as u64,
            b::PERF_SAMPLE_IDENTIFIER as u64
        );
        assert_eq!(a.clockid, libc::CLOCK_MONOTONIC);
        assert_eq!(a.use_clockid(), 1);
        assert_eq!(a.context_switch(), 1);
        let bytes = attr_bytes(&a);
        assert_eq!(bytes.len(), a.size as usize);
        assert_eq!(u32::from_le_bytes(bytes[4..8].try_into().unwrap()), a.size);
        let t = tracepoint_attr(77);
        assert_eq!(t.config, 77);
        assert_eq!(t.sample_type & b::PERF_SAMPLE_READ as u64, 0);
    }
}
