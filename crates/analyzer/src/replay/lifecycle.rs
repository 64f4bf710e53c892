//! Function-instance lifecycles: every cgroup created, frozen or removed during the trace
//! (from the cgroup tracepoints, the v1 freezer watcher and the start snapshot), joined with the
//! container operations of invoker logs, and each activation tied to its container.
//!
//! The join, in order of trust, recorded on every activation as `method`:
//! - `invoker-log`: an `assign` container event names the activation's container; the
//!   container's cgroup is the one the recorder resolved, else the cgroup whose path ends with
//!   the container id (or `-<id>.scope`);
//! - `record`: the activation record itself names a container;
//! - `time-overlap`: no link; done afterwards by `join::time_overlap`, which needs the replay.

use std::collections::{BTreeMap, HashMap};

use pws_trace::records::{CgroupOp, ContainerOp, StartType};

use super::activation_id::ActivationId;
use super::compact_records::{CompactCgroupEvent, CompactContainerEvent, CompactRecord};
use super::text::Text;

use super::cpu::Tracepoint;

/// One cgroup (on the v2 hierarchy, or a v1 one) and what happened to it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cgroup {
    pub id: u64,
    pub hierarchy: u32,
    pub path: String,
    pub existed_at_start: bool,
    pub created: Option<u64>,
    pub destroyed: Option<u64>,
    /// Frozen spans; an open one ends at the trace's end.
    pub frozen: super::frozen_spans::FrozenSpans,
    /// Where the frozen spans came from (`paused::apply`).
    pub paused_sources: super::paused::PausedSources,
}

impl Cgroup {
    /// Created, frozen or removed during the trace: a function instance candidate.
    pub fn is_dynamic(&self) -> bool {
        self.created.is_some() || self.destroyed.is_some() || !self.frozen.is_empty()
    }

    pub fn frozen_ns(&self, end_ns: u64) -> u64 {
        self.frozen
            .iter()
            .map(|(a, b)| b.unwrap_or(end_ns).saturating_sub(a))
            .sum()
    }

    /// Frozen for all of `[a, b)`.
    pub fn frozen_during(&self, a: u64, b: u64) -> bool {
        self.frozen
            .iter()
            .any(|(x, y)| x <= a && y.is_none_or(|y| y >= b))
    }
}

/// A function instance: a container and its cgroup.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Container {
    /// The platform's id (a Docker id, a pws-load id); the cgroup path when no log named one.
    pub container_id: String,
    /// Index into [`Lifecycles::cgroups`], when the container's cgroup was found.
    pub cgroup: Option<usize>,
    pub action: String,
    pub namespace: String,
    pub created: Option<u64>,
    pub destroyed: Option<u64>,
    pub init_start: Option<u64>,
    pub init_end: Option<u64>,
    pub activations: u64,
    /// Named by container events (an invoker log, the local platform).
    pub from_log: bool,
}

/// How an activation was tied to its container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinMethod {
    InvokerLog,
    Record,
    TimeOverlap,
    None,
}

impl JoinMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvokerLog => "invoker-log",
            Self::Record => "record",
            Self::TimeOverlap => "time-overlap",
            Self::None => "none",
        }
    }
}

/// An activation, joined.
#[derive(Debug, Clone)]
pub struct Activation {
    /// As recorded, kept compact (`compact_records`): its text shared, its raw JSON read
    /// for the platform's CPU time (`record.platform_cpu_ns`) and not kept.
    pub record: CompactRecord,
    /// Index into [`Lifecycles::containers`] ([`Activation::container`]): as u32, 8 B of
    /// each of an hour's hundreds of thousands of activations rather than 16.
    container: Option<u32>,
    pub method: JoinMethod,
    pub start_type: StartType,
}

impl Activation {
    pub fn new(
        record: CompactRecord,
        container: Option<usize>,
        method: JoinMethod,
        start_type: StartType,
    ) -> Self {
        let mut a = Self {
            record,
            container: None,
            method,
            start_type,
        };
        a.set_container(container);
        a
    }

    /// Its container: an index into [`Lifecycles::containers`].
    pub fn container(&self) -> Option<usize> {
        self.container.map(|c| c as usize)
    }

    pub fn set_container(&mut self, container: Option<usize>) {
        // A trace holds far fewer than 2³² containers: each is a lifecycle in memory.
        self.container =
            container.map(|c| u32::try_from(c).expect("fewer than 2³² containers in a trace"));
    }
}

#[derive(Debug, Default)]
pub struct Lifecycles {
    pub cgroups: Vec<Cgroup>,
    pub containers: Vec<Container>,
    pub activations: Vec<Activation>,
}

impl Lifecycles {
    /// The v2 cgroup id of each container's cgroup, for the CPU accounting.
    pub fn cgroup_id(&self, container: usize) -> Option<u64> {
        self.containers[container]
            .cgroup
            .map(|i| self.cgroups[i].id)
    }
}

/// Builds cgroups from every source of cgroup events; returns them keyed by (hierarchy, id).
pub fn cgroups(events: &[CompactCgroupEvent], tracepoints: &[Tracepoint]) -> Vec<Cgroup> {
    let mut all: BTreeMap<(u32, u64), Cgroup> = BTreeMap::new();
    // Merged in time order: freeze and thaw pair up whatever source reported them. (Paths
    // shared, not copied: an hour holds hundreds of thousands of freeze and thaw events.)
    let mut evs: Vec<(u64, u32, u64, Text, CgroupOp)> = events
        .iter()
        .map(|e| (e.ts_ns, e.hierarchy, e.cgroup_id, e.path.clone(), e.op))
        .collect();
    for t in tracepoints {
        let op = match t.name.as_str() {
            "cgroup_mkdir" => CgroupOp::Mkdir,
            "cgroup_rmdir" => CgroupOp::Rmdir,
            "cgroup_freeze" => CgroupOp::Freeze,
            "cgroup_unfreeze" => CgroupOp::Thaw,
            _ => continue,
        };
        evs.push((
            t.ts_ns,
            t.root,
            t.cgroup_id,
            Text::from(t.path.as_str()),
            op,
        ));
    }
    evs.sort_by_key(|e| e.0);
    for (ts, h, id, path, op) in evs {
        if id == 0 {
            continue;
        }
        let c = all.entry((h, id)).or_insert_with(|| Cgroup {
            id,
            hierarchy: h,
            ..Cgroup::default()
        });
        if c.path.is_empty() && !path.is_empty() {
            c.path = path.to_string();
        }
        match op {
            CgroupOp::Exists => c.existed_at_start = true,
            CgroupOp::Mkdir => {
                c.created.get_or_insert(ts);
            }
            CgroupOp::Rmdir => c.destroyed = Some(ts),
            CgroupOp::Freeze => c.frozen.freeze(ts),
            CgroupOp::Thaw => c.frozen.thaw(ts),
            _ => {}
        }
    }
    all.into_values().collect()
}

/// Containers and the exact activation links (the time-overlap join comes later, in `join`).
pub fn build(
    cgroups: Vec<Cgroup>,
    container_events: &[CompactContainerEvent],
    records: Vec<CompactRecord>,
) -> Lifecycles {
    let records = super::record_merge::merge(records);
    let mut l = Lifecycles {
        cgroups,
        ..Lifecycles::default()
    };
    let mut by_container: HashMap<Text, usize> = HashMap::new();
    // Borrowed from the events: an hour's hundreds of thousands of ids are not copied.
    let mut assigned: HashMap<&ActivationId, (usize, StartType)> = HashMap::new();
    let mut evs: Vec<&CompactContainerEvent> = container_events.iter().collect();
    evs.sort_by_key(|e| e.ts_ns);
    for e in evs {
        if e.container_id.is_empty() {
            continue;
        }
        let i = match by_container.get(&e.container_id) {
            Some(&i) => i,
            None => {
                let cgroup = find_cgroup(&l.cgroups, &e.container_id, &e.cgroup_path);
                l.containers.push(Container {
                    container_id: e.container_id.to_string(),
                    cgroup,
                    from_log: true,
                    ..Container::default()
                });
                by_container.insert(e.container_id.clone(), l.containers.len() - 1);
                l.containers.len() - 1
            }
        };
        let c = &mut l.containers[i];
        if c.action.is_empty() && !e.action.is_empty() {
            c.action = e.action.to_string();
            c.namespace = e.namespace.to_string();
        }
        if c.cgroup.is_none() && !e.cgroup_path.is_empty() {
            c.cgroup = find_cgroup(&l.cgroups, &e.container_id, &e.cgroup_path);
        }
        match e.op {
            ContainerOp::Create => {
                c.created.get_or_insert(e.ts_ns);
            }
            ContainerOp::Init => {
                c.init_start.get_or_insert(e.ts_ns);
            }
            ContainerOp::Run if c.init_start.is_some() && c.init_end.is_none() => {
                c.init_end = Some(e.ts_ns);
            }
            ContainerOp::Remove => c.destroyed = Some(e.ts_ns),
            ContainerOp::Assign if !e.activation_id.is_empty() => {
                assigned
                    .entry(&e.activation_id)
                    .or_insert((i, e.start_type));
            }
            _ => {}
        }
    }
    // Every dynamic cgroup is a container row, with or without activations.
    let linked: std::collections::HashSet<usize> =
        l.containers.iter().filter_map(|c| c.cgroup).collect();
    for (gi, g) in l.cgroups.iter().enumerate() {
        if g.hierarchy == 0 && g.is_dynamic() && !linked.contains(&gi) {
            l.containers.push(Container {
                container_id: g.path.clone(),
                cgroup: Some(gi),
                ..Container::default()
            });
        }
    }
    for c in &mut l.containers {
        if let Some(g) = c.cgroup.map(|i| &l.cgroups[i]) {
            c.created = c.created.or(g.created);
            c.destroyed = c.destroyed.or(g.destroyed);
        }
    }
    // `merge` left one record per id. The records move in: room for all at once (grown by
    // doubling, the vector kept up to a third of its size unused for the whole analysis).
    // Taken from the back, their vector given back as it empties, then put in order: both
    // whole at once were twice the records, the lifecycles' high-water mark. Given back every
    // 8 Ki records (a mapped vector shrinks in place): every 64 Ki, the two overlapped by up to
    // 10 MiB of an hour's, the phase's peak (`bench/README.md`, session 26).
    const GIVE_BACK_EVERY: usize = 1 << 13;
    let mut records = records;
    l.activations.reserve_exact(records.len());
    while let Some(r) = records.pop() {
        if records.len() % GIVE_BACK_EVERY == 0 {
            records.shrink_to_fit();
        }
        let (container, method, start_type) = match assigned.get(&r.activation_id) {
            Some(&(i, st)) => (Some(i), JoinMethod::InvokerLog, st),
            None => match by_container.get(&*r.container_id) {
                Some(&i) if !r.container_id.is_empty() => {
                    (Some(i), JoinMethod::Record, r.start_type)
                }
                _ => (None, JoinMethod::None, r.start_type),
            },
        };
        // The log knows prewarmed from cold; the record alone does not.
        let start_type = if start_type == StartType::Unknown {
            r.start_type
        } else {
            start_type
        };
        l.activations
            .push(Activation::new(r, container, method, start_type));
    }
    l.activations.reverse();
    for a in &l.activations {
        if let Some(ci) = a.container() {
            let c = &mut l.containers[ci];
            c.activations += 1;
            if c.action.is_empty() {
                c.action = a.record.action.to_string();
                c.namespace = a.record.namespace.to_string();
            }
        }
    }
    l
}

/// The cgroup of a container: the resolved path if the recorder had one, else a cgroup whose
/// last path component is the id, `<prefix>-<id>.scope`, or starts with the id.
pub(crate) fn find_cgroup(cgroups: &[Cgroup], id: &str, resolved: &str) -> Option<usize> {
    if !resolved.is_empty() {
        if let Some(i) = cgroups
            .iter()
            .position(|g| g.hierarchy == 0 && !g.path.is_empty() && resolved.ends_with(&g.path))
        {
            return Some(i);
        }
    }
    if id.len() < 12 {
        return None;
    }
    cgroups.iter().position(|g| {
        let last = g.path.rsplit('/').next().unwrap_or("");
        g.hierarchy == 0
            && (last == id
                || last.starts_with(id)
                || last.strip_suffix(".scope").is_some_and(|s| s.ends_with(id)))
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use pws_trace::records::ActivationRecord;
    use pws_trace::records::ActivationSource;

    /// Every activation of the trace is held from the load to the attribution: an hour at 200
    /// a second is 700,000 of them. What the analysis does not read is not kept
    /// (`compact_records`), and its id is inline (`activation_id`: 24 B, where a boxed id
    /// was 16 B and a 48 B allocation); this says when that budget grows.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn an_activation_is_kept_in_152_bytes() {
        assert!(
            std::mem::size_of::<Activation>() <= 152,
            "{} B",
            std::mem::size_of::<Activation>()
        );
    }

    pub(crate) fn tp(ts: u64, name: &str, id: u64, path: &str) -> Tracepoint {
        Tracepoint {
            ts_ns: ts,
            name: name.into(),
            cgroup_id: id,
            root: 0,
            path: path.into(),
            pid: 0,
        }
    }

    pub(crate) fn act(id: &str, action: &str, a: u64, b: u64) -> ActivationRecord {
        ActivationRecord {
            activation_id: id.into(),
            namespace: "guest".into(),
            action: action.into(),
            version: String::new(),
            source: ActivationSource::JsonLines,
            kind: String::new(),
            start_type: StartType::Warm,
            start_epoch_ms: 1,
            end_epoch_ms: 2,
            start_ns: a,
            end_ns: b,
            wait_ms: None,
            init_ms: None,
            duration_ms: None,
            status_code: None,
            memory_limit_mb: None,
            timeout_ms: None,
            container_id: String::new(),
            path: String::new(),
            caused_by: String::new(),
            raw: String::new(),
        }
    }

    #[test]
    fn cgroups_containers_and_joins() {
        let cid = "ab".repeat(32);
        let tps = [
            tp(10, "cgroup_mkdir", 7, &format!("/pws-load-1/{cid}")),
            tp(50, "cgroup_freeze", 7, ""),
            tp(80, "cgroup_unfreeze", 7, ""),
            tp(200, "cgroup_rmdir", 7, ""),
            tp(20, "cgroup_mkdir", 8, "/other"),
            tp(25, "cgroup_rmdir", 8, "/other"),
            tp(30, "cgroup_mkdir", 9, "/lonely"),
        ];
        let gs = cgroups(&[], &tps);
        assert_eq!(gs.len(), 3);
        let g7 = gs.iter().find(|g| g.id == 7).unwrap();
        assert_eq!(
            (g7.created, g7.destroyed, g7.frozen_ns(1000)),
            (Some(10), Some(200), 30)
        );

        let ev = pws_trace::records::ContainerEvent {
            ts_ns: 12,
            op: ContainerOp::Assign,
            source: ActivationSource::InvokerLog,
            container_id: cid.clone(),
            activation_id: "a1".into(),
            action: "hello".into(),
            namespace: "guest".into(),
            start_type: StartType::Prewarmed,
            cgroup_path: String::new(),
            detail: String::new(),
        };
        let recs = [
            act("a1", "hello", 12, 40),
            act("a2", "other", 20, 24),
            act("a1", "hello", 0, 0),
        ];
        let l = build(
            gs,
            &[ev.into()],
            recs.iter().cloned().map(CompactRecord::from).collect(),
        );
        assert_eq!(l.activations.len(), 2, "one row per activation id");
        let a1 = &l.activations[0];
        assert_eq!(
            (a1.method, a1.start_type),
            (JoinMethod::InvokerLog, StartType::Prewarmed)
        );
        let c1 = &l.containers[a1.container().unwrap()];
        assert_eq!(
            (c1.container_id.as_str(), c1.created, c1.activations),
            (cid.as_str(), Some(10), 1)
        );
        assert_eq!(l.cgroup_id(a1.container().unwrap()), Some(7));
        let a2 = &l.activations[1];
        assert_eq!(
            (a2.method, a2.container()),
            (JoinMethod::None, None),
            "no exact link: left to join::time_overlap"
        );
        assert_eq!(
            l.containers.len(),
            3,
            "every dynamic cgroup is a row: {:?}",
            l.containers
        );
    }
}
