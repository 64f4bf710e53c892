//! The trace's activation records and lifecycle events as the analysis keeps them: their
//! repeated text (namespace, action, container id, cgroup path) shared between the records that
//! repeat it, and what the analysis does not read dropped at load (an activation's raw JSON,
//! once read for the platform's CPU time; its action version, runtime kind, entity path, cause
//! and wall-clock times, which no table shows; the events' `detail`, the source's own words).
//! An hour of a busy node is hundreds of thousands of records and events that name a few dozen
//! actions, containers and cgroups: as decoded, each held its own copies (an activation record
//! ~690 B with its heap, ~200 B kept this way; a freeze or thaw event ~200 B, 48 B kept;
//! `bench/README.md`).

use std::collections::HashSet;

use pws_trace::records::{
    ActivationRecord, ActivationSource, CgroupEvent, CgroupOp, ContainerEvent, ContainerOp,
    StartType,
};

use super::activation_id::ActivationId;
use super::text::Text;

/// One activation record (those of `pws_trace::records::ActivationRecord`'s fields the
/// analysis reads, same names), its text shared and its raw JSON replaced by what the analysis
/// reads from it.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactRecord {
    pub activation_id: ActivationId,
    pub namespace: Text,
    pub action: Text,
    /// Which of an activation's records to keep (`record_merge`).
    pub source: ActivationSource,
    pub start_type: StartType,
    pub start_ns: u64,
    pub end_ns: u64,
    /// `wait_ms`, `init_ms`, `duration_ms`, `status_code`, `memory_limit_mb` and
    /// `platform_cpu_ns`, each optional: read with the methods of those names.
    pub numbers: Numbers,
    pub container_id: Text,
}

/// A record's optional numbers, packed, with one byte saying which are known. The five in
/// milliseconds, megabytes or a status fit 32 bits (a time in ms does to 49 days); the
/// platform's CPU time in ns does not (an hour of one CPU is 3.6·10¹²). As six `Option<u64>`
/// they took 96 B of every record (of an hour's hundreds of thousands), as six u64 56, here 32.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Numbers {
    platform_cpu_ns: u64,
    /// The others, in [`Number`]'s order.
    narrow: [u32; 5],
    known: u8,
}

/// Which of a record's [`Numbers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Number {
    WaitMs,
    InitMs,
    DurationMs,
    StatusCode,
    MemoryLimitMb,
    /// The platform's own CPU time for the activation (OpenWhisk's `cgroupUsageUsec`
    /// annotation in the raw record, where it has one), ns.
    PlatformCpuNs,
}

// `Numbers::narrow` is indexed by the other numbers' places before it.
const _: () = assert!(Number::PlatformCpuNs as usize == 5);

impl Number {
    /// As the record's field is named.
    pub fn name(self) -> &'static str {
        match self {
            Self::WaitMs => "wait_ms",
            Self::InitMs => "init_ms",
            Self::DurationMs => "duration_ms",
            Self::StatusCode => "status_code",
            Self::MemoryLimitMb => "memory_limit_mb",
            Self::PlatformCpuNs => "platform_cpu_ns",
        }
    }
}

impl Numbers {
    pub fn get(&self, n: Number) -> Option<u64> {
        let i = n as usize;
        if self.known & (1 << i) == 0 {
            return None;
        }
        Some(match n {
            Number::PlatformCpuNs => self.platform_cpu_ns,
            _ => u64::from(self.narrow[i]),
        })
    }

    /// Sets `n` to `v`; false, and `n` unknown, where `v` is beyond what `n` can hold (a
    /// corrupt record: 2³² ms is 49 days).
    fn set(&mut self, n: Number, v: Option<u64>) -> bool {
        let i = n as usize;
        let held = match n {
            Number::PlatformCpuNs => {
                self.platform_cpu_ns = v.unwrap_or(0);
                v.map(drop)
            }
            _ => {
                let narrow = v.and_then(|v| u32::try_from(v).ok());
                // An unknown number holds 0, so that equal records compare equal.
                self.narrow[i] = narrow.unwrap_or(0);
                narrow.map(drop)
            }
        };
        match held {
            Some(()) => self.known |= 1 << i,
            None => self.known &= !(1 << i),
        }
        held.is_some() || v.is_none()
    }

    /// `n` as `other` has it (known or not).
    pub fn copy_from(&mut self, other: &Numbers, n: Number) {
        // Held by `other`, so it fits.
        self.set(n, other.get(n));
    }
}

impl CompactRecord {
    pub fn wait_ms(&self) -> Option<u64> {
        self.numbers.get(Number::WaitMs)
    }
    pub fn init_ms(&self) -> Option<u64> {
        self.numbers.get(Number::InitMs)
    }
    pub fn duration_ms(&self) -> Option<u64> {
        self.numbers.get(Number::DurationMs)
    }
    pub fn status_code(&self) -> Option<u64> {
        self.numbers.get(Number::StatusCode)
    }
    pub fn memory_limit_mb(&self) -> Option<u64> {
        self.numbers.get(Number::MemoryLimitMb)
    }
    /// The platform's own CPU time for the activation, ns ([`Number::PlatformCpuNs`]).
    pub fn platform_cpu_ns(&self) -> Option<u64> {
        self.numbers.get(Number::PlatformCpuNs)
    }
}

impl CompactRecord {
    /// A record with no text and no times: what is left where one was moved out.
    pub fn empty() -> Self {
        let none = Text::default();
        Self {
            activation_id: ActivationId::from(""),
            namespace: none.clone(),
            action: none.clone(),
            source: ActivationSource::RestApi,
            start_type: StartType::Unknown,
            start_ns: 0,
            end_ns: 0,
            numbers: Numbers::default(),
            container_id: none,
        }
    }
}

impl From<ActivationRecord> for CompactRecord {
    /// One record alone (tests, small inputs): its text not shared with any other.
    fn from(r: ActivationRecord) -> Self {
        Interner::default().record(r)
    }
}

/// A cgroup event (`pws_trace::records::CgroupEvent`'s fields but `detail`, same names), its
/// path shared.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactCgroupEvent {
    pub ts_ns: u64,
    pub op: CgroupOp,
    pub cgroup_id: u64,
    pub hierarchy: u32,
    pub path: Text,
    pub pid: u32,
}

impl From<CgroupEvent> for CompactCgroupEvent {
    /// One event alone (tests): its text not shared with any other.
    fn from(e: CgroupEvent) -> Self {
        Interner::default().cgroup_event(e)
    }
}

/// A container event (`pws_trace::records::ContainerEvent`'s fields but `detail`, same names),
/// its text shared.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactContainerEvent {
    pub ts_ns: u64,
    pub op: ContainerOp,
    pub source: ActivationSource,
    pub container_id: Text,
    pub activation_id: ActivationId,
    pub action: Text,
    pub namespace: Text,
    pub start_type: StartType,
    pub cgroup_path: Text,
}

impl From<ContainerEvent> for CompactContainerEvent {
    /// One event alone (tests): its text not shared with any other.
    fn from(e: ContainerEvent) -> Self {
        Interner::default().container_event(e)
    }
}

/// The text every record and event kept so far shares.
#[derive(Debug, Default)]
pub struct Interner {
    strings: HashSet<Text>,
    /// Records' numbers beyond what they can be, taken as unknown: how many, and the first
    /// (its activation, and the number as the record gave it).
    out_of_range: usize,
    first_out_of_range: Option<(String, String)>,
}

impl Interner {
    /// `s`, shared with every equal string given before.
    pub fn get(&mut self, s: String) -> Text {
        if let Some(a) = self.strings.get(s.as_str()) {
            return a.clone();
        }
        let a = Text::from(s);
        self.strings.insert(a.clone());
        a
    }

    /// The record kept: its text shared, its raw JSON read and dropped. A number beyond what
    /// it can be is kept as unknown ([`Interner::out_of_range_note`]).
    pub fn record(&mut self, r: ActivationRecord) -> CompactRecord {
        let mut numbers = Numbers::default();
        let cpu_us = platform_cpu_us(&r.raw);
        let cpu_ns = cpu_us.and_then(|us| us.checked_mul(1000));
        let mut beyond: Vec<String> = Vec::new();
        for (n, v) in [
            (Number::WaitMs, r.wait_ms),
            (Number::InitMs, r.init_ms),
            (Number::DurationMs, r.duration_ms),
            (Number::StatusCode, r.status_code),
            (Number::MemoryLimitMb, r.memory_limit_mb),
            (Number::PlatformCpuNs, cpu_ns),
        ] {
            if !numbers.set(n, v) {
                beyond.push(format!("{} = {}", n.name(), v.unwrap_or(0)));
            }
        }
        // Its µs are known, but not as ns in 64 bits.
        if let (Some(us), None) = (cpu_us, cpu_ns) {
            beyond.push(format!("cgroupUsageUsec = {us}"));
        }
        self.out_of_range += beyond.len();
        if let Some(first) = beyond.into_iter().next() {
            self.first_out_of_range
                .get_or_insert_with(|| (r.activation_id.clone(), first));
        }
        let end_ns = run_end_ns(&r);
        CompactRecord {
            activation_id: r.activation_id.into(),
            namespace: self.get(r.namespace),
            action: self.get(r.action),
            source: r.source,
            start_type: r.start_type,
            start_ns: r.start_ns,
            end_ns,
            numbers,
            container_id: self.get(r.container_id),
        }
    }
}

/// Where a record's run ends on the trace clock. OpenWhisk's times are whole milliseconds, so
/// a run under one millisecond can have `start == end`: an empty window, which would give the
/// activation none of its container's CPU time (0 J, a wrong joule) and leave it out of the
/// time-overlap join. It ran within that millisecond: its window is `[start, start + 1 ms)`.
/// Records whose times are not whole milliseconds (no epoch times) are taken as they are.
fn run_end_ns(r: &ActivationRecord) -> u64 {
    let whole_ms = r.start_epoch_ms > 0 && r.start_epoch_ms == r.end_epoch_ms;
    if whole_ms && r.start_ns > 0 && r.end_ns == r.start_ns {
        r.start_ns + 1_000_000
    } else {
        r.end_ns
    }
}

impl Interner {
    /// What the notes say of the records' numbers taken as unknown, if any were.
    pub fn out_of_range_note(&self) -> Option<String> {
        let (id, what) = self.first_out_of_range.as_ref()?;
        Some(format!(
            "{} numbers of activation records out of range taken as unknown (the first: activation {id}'s {what}; a time in ms or a size in MB holds 32 bits, the platform's CPU time 64 bits of ns)",
            self.out_of_range
        ))
    }

    /// The event kept: its path shared, its detail dropped.
    pub fn cgroup_event(&mut self, e: CgroupEvent) -> CompactCgroupEvent {
        CompactCgroupEvent {
            ts_ns: e.ts_ns,
            op: e.op,
            cgroup_id: e.cgroup_id,
            hierarchy: e.hierarchy,
            path: self.get(e.path),
            pid: e.pid,
        }
    }

    /// The event kept: its text shared, its detail dropped.
    pub fn container_event(&mut self, e: ContainerEvent) -> CompactContainerEvent {
        CompactContainerEvent {
            ts_ns: e.ts_ns,
            op: e.op,
            source: e.source,
            container_id: self.get(e.container_id),
            activation_id: e.activation_id.into(),
            action: self.get(e.action),
            namespace: self.get(e.namespace),
            start_type: e.start_type,
            cgroup_path: self.get(e.cgroup_path),
        }
    }
}

/// OpenWhisk's `cgroupUsageUsec` annotation of a raw activation record, in µs.
fn platform_cpu_us(raw: &str) -> Option<u64> {
    if !raw.contains("cgroupUsageUsec") {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(raw).ok()?;
    v["annotations"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == "cgroupUsageUsec")?["value"]
        .as_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, action: &str, raw: &str) -> ActivationRecord {
        ActivationRecord {
            activation_id: id.into(),
            namespace: "guest".into(),
            action: action.into(),
            version: "0.0.1".into(),
            source: ActivationSource::RestApi,
            kind: "python:3".into(),
            start_type: StartType::Warm,
            start_epoch_ms: 1,
            end_epoch_ms: 2,
            start_ns: 3,
            end_ns: 4,
            wait_ms: Some(5),
            init_ms: None,
            duration_ms: Some(6),
            status_code: Some(0),
            memory_limit_mb: Some(256),
            timeout_ms: None,
            container_id: "c".repeat(64),
            path: format!("guest/{action}"),
            caused_by: String::new(),
            raw: raw.into(),
        }
    }

    #[test]
    fn repeated_text_is_shared_and_fields_kept() {
        let mut i = Interner::default();
        let a = i.record(record("a1", "hello", ""));
        let b = i.record(record("a2", "hello", ""));
        let c = i.record(record("a3", "other", ""));
        assert!(
            Text::ptr_eq(&a.action, &b.action) && Text::ptr_eq(&a.container_id, &c.container_id)
        );
        assert!(!Text::ptr_eq(&a.action, &c.action));
        assert_eq!(
            (
                b.activation_id.to_string().as_str(),
                &*b.namespace,
                &*b.action,
                b.source
            ),
            ("a2", "guest", "hello", ActivationSource::RestApi)
        );
        assert_eq!(
            (
                b.start_ns,
                b.end_ns,
                b.wait_ms(),
                b.duration_ms(),
                b.memory_limit_mb()
            ),
            (3, 4, Some(5), Some(6), Some(256))
        );
        assert_eq!(
            (b.init_ms(), b.status_code()),
            (None, Some(0)),
            "a zero is known, a missing value is not"
        );
        assert_eq!(b.platform_cpu_ns(), None);
    }

    #[test]
    fn events_share_their_text_and_drop_their_detail() {
        let mut i = Interner::default();
        let freeze = |ts: u64, op: CgroupOp| CgroupEvent {
            ts_ns: ts,
            op,
            cgroup_id: 42,
            hierarchy: 0,
            path: "/system.slice/docker-abc.scope".into(),
            pid: 0,
            detail: "cgroup.freeze".into(),
        };
        let (a, b) = (
            i.cgroup_event(freeze(1, CgroupOp::Freeze)),
            i.cgroup_event(freeze(2, CgroupOp::Thaw)),
        );
        assert!(Text::ptr_eq(&a.path, &b.path));
        assert_eq!(
            (b.ts_ns, b.op, b.cgroup_id, b.hierarchy, &*b.path, b.pid),
            (
                2,
                CgroupOp::Thaw,
                42,
                0,
                "/system.slice/docker-abc.scope",
                0
            )
        );
        let assign = ContainerEvent {
            ts_ns: 7,
            op: ContainerOp::Assign,
            source: ActivationSource::InvokerLog,
            container_id: "c".repeat(64),
            activation_id: "a1".into(),
            action: "hello".into(),
            namespace: "guest".into(),
            start_type: StartType::Prewarmed,
            cgroup_path: "/docker/ccc".into(),
            detail: "the invoker log's line".into(),
        };
        let c = i.container_event(assign.clone());
        let d = i.container_event(ContainerEvent {
            activation_id: "a2".into(),
            ..assign
        });
        assert!(
            Text::ptr_eq(&c.container_id, &d.container_id) && Text::ptr_eq(&c.action, &d.action)
        );
        assert_eq!(
            (
                c.ts_ns,
                c.op,
                c.activation_id.to_string().as_str(),
                d.activation_id.to_string().as_str(),
                c.start_type
            ),
            (7, ContainerOp::Assign, "a1", "a2", StartType::Prewarmed)
        );
        assert_eq!((&*c.namespace, &*c.cgroup_path), ("guest", "/docker/ccc"));
    }

    /// A run under a millisecond (OpenWhisk's start == end) gets its millisecond; a longer
    /// one, or one whose times are not whole milliseconds, keeps its end.
    #[test]
    fn a_record_of_0_ms_is_given_its_millisecond() {
        let at = |start_ms, end_ms, start_ns, end_ns| {
            let mut r = record("a1", "hello", "");
            (r.start_epoch_ms, r.end_epoch_ms, r.start_ns, r.end_ns) =
                (start_ms, end_ms, start_ns, end_ns);
            CompactRecord::from(r).end_ns
        };
        assert_eq!(at(5, 5, 7_000_000, 7_000_000), 8_000_000);
        assert_eq!(at(5, 6, 7_000_000, 8_000_000), 8_000_000);
        assert_eq!(at(0, 0, 7_000_000, 7_000_000), 7_000_000, "no epoch times");
        assert_eq!(at(5, 5, 0, 0), 0, "not placed on the trace clock");
    }

    #[test]
    fn the_platforms_cpu_time_is_read_from_the_raw_record() {
        let raw = r#"{"annotations":[{"key":"kind","value":"python:3"},{"key":"cgroupUsageUsec","value":1234}]}"#;
        let r = CompactRecord::from(record("a1", "hello", raw));
        assert_eq!(r.platform_cpu_ns(), Some(1_234_000));
        let bad = CompactRecord::from(record("a1", "hello", "{cgroupUsageUsec"));
        assert_eq!(
            bad.platform_cpu_ns(),
            None,
            "malformed JSON reads as unknown"
        );
    }

    /// A number a record cannot have (2³² ms is 49 days) is unknown, and the notes say so;
    /// the platform's CPU time passes 32 bits and is kept whole.
    #[test]
    fn numbers_beyond_their_range_are_unknown_and_noted() {
        let mut i = Interner::default();
        let ok = i.record(record("a1", "hello", ""));
        assert_eq!(i.out_of_range_note(), None);
        let mut r = record("a2", "hello", "");
        r.duration_ms = Some(u64::from(u32::MAX) + 1);
        r.wait_ms = Some(u64::from(u32::MAX));
        let hour_ns = 3_600_000_000_000u64;
        r.raw = format!(
            r#"{{"annotations":[{{"key":"cgroupUsageUsec","value":{}}}]}}"#,
            hour_ns / 1000
        );
        let bad = i.record(r);
        assert_eq!(
            (bad.duration_ms(), bad.wait_ms(), bad.platform_cpu_ns()),
            (None, Some(u64::from(u32::MAX)), Some(hour_ns))
        );
        assert_eq!(
            (ok.duration_ms(), bad.memory_limit_mb()),
            (Some(6), Some(256))
        );
        let mut huge = record("a3", "hello", "");
        huge.raw = format!(
            r#"{{"annotations":[{{"key":"cgroupUsageUsec","value":{}}}]}}"#,
            u64::MAX
        );
        assert_eq!(i.record(huge).platform_cpu_ns(), None, "µs beyond u64 ns");
        assert_eq!(
            i.out_of_range_note().as_deref(),
            Some("2 numbers of activation records out of range taken as unknown (the first: activation a2's duration_ms = 4294967296; a time in ms or a size in MB holds 32 bits, the platform's CPU time 64 bits of ns)")
        );
    }

    #[test]
    fn a_number_copied_is_as_known_as_its_source() {
        let from = i_record_numbers();
        let mut to = Numbers::default();
        for n in [Number::WaitMs, Number::InitMs, Number::PlatformCpuNs] {
            to.copy_from(&from, n);
            assert_eq!(to.get(n), from.get(n));
        }
        assert_eq!(to.get(Number::DurationMs), None);
    }

    fn i_record_numbers() -> Numbers {
        let mut r = record(
            "a1",
            "hello",
            r#"{"annotations":[{"key":"cgroupUsageUsec","value":7}]}"#,
        );
        r.init_ms = None;
        CompactRecord::from(r).numbers
    }
}
