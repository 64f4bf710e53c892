//! When each container was paused, from every source that says so, on its cgroup v2 cgroup.
//!
//! Container engines pause a container by freezing its cgroup. The trace tells it four ways:
//! - `cgroup-v2`: the `cgroup:cgroup_freeze`/`cgroup_unfreeze` tracepoints on the v2 cgroup;
//! - `cgroup-v1-freezer`: the recorder's watcher of a v1 freezer hierarchy, on a v1 cgroup
//!   (`/sys/fs/cgroup/freezer/docker/<id>`) that is not the container's v2 cgroup
//!   (`/sys/fs/cgroup/unified/docker/<id>` beside it, with Docker's cgroupfs driver on a hybrid
//!   host): its spans are tied to the v2 cgroup with the same path relative to its hierarchy's
//!   root, else to the one named by the same container id;
//! - `frozen-at-start`: a cgroup already frozen when recording started (the start snapshot's
//!   `cgroup.freeze`, the v1 watcher's first read), paused from the trace's start;
//! - `invoker-log`: `docker pause`/`unpause` and `runc pause`/`resume` lines, which stand in
//!   for a container whose cgroup was never seen frozen (a host where the recorder could not
//!   watch the freezer); a pause still open when the container is removed ends there.
//!
//! [`apply`] puts every span in [`Cgroup::frozen`] of the v2 cgroup (overlapping spans of two
//! sources made one) and the sources in [`Cgroup::paused_sources`], so that everything that
//! reads `frozen` (paused time, the `even` idle policy, keep-alive, the timeline, the
//! time-overlap join) sees them.

use std::collections::HashMap;

use pws_trace::records::ContainerOp;

use super::compact_records::CompactContainerEvent;

use super::lifecycle::{find_cgroup, Cgroup};

/// Frozen spans as [`Cgroup::frozen`] holds them: (start, end; None while still frozen).
type Spans = Vec<(u64, Option<u64>)>;

/// Which sources a cgroup's paused spans came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PausedSources(u8);

impl PausedSources {
    pub const CGROUP_V2: Self = Self(1);
    pub const CGROUP_V1_FREEZER: Self = Self(2);
    pub const FROZEN_AT_START: Self = Self(4);
    pub const INVOKER_LOG: Self = Self(8);

    pub fn insert(&mut self, s: Self) {
        self.0 |= s.0;
    }

    pub fn contains(self, s: Self) -> bool {
        self.0 & s.0 == s.0
    }

    /// `cgroup-v2`, `cgroup-v1-freezer`, `frozen-at-start`, `invoker-log`, joined by `+` in
    /// that order; empty when never paused.
    pub fn label(self) -> String {
        [
            (Self::CGROUP_V2, "cgroup-v2"),
            (Self::CGROUP_V1_FREEZER, "cgroup-v1-freezer"),
            (Self::FROZEN_AT_START, "frozen-at-start"),
            (Self::INVOKER_LOG, "invoker-log"),
        ]
        .iter()
        .filter(|(s, _)| self.contains(*s))
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join("+")
    }
}

/// Ties every paused span to its v2 cgroup; `trace_start` is the trace clock at the start
/// snapshot.
pub fn apply(cgroups: &mut [Cgroup], container_events: &[CompactContainerEvent], trace_start: u64) {
    let at_start = |a: u64| a <= trace_start;
    for g in cgroups.iter_mut().filter(|g| g.hierarchy == 0) {
        for (a, _) in g.frozen.iter() {
            g.paused_sources.insert(if at_start(a) {
                PausedSources::FROZEN_AT_START
            } else {
                PausedSources::CGROUP_V2
            });
        }
    }
    // v1 freezer spans, onto the v2 cgroup of the same path, else of the same container id.
    let mut by_path: HashMap<&str, usize> = HashMap::new();
    let mut by_id: HashMap<&str, usize> = HashMap::new();
    for (i, g) in cgroups.iter().enumerate().filter(|(_, g)| g.hierarchy == 0) {
        by_path.insert(g.path.as_str(), i);
        if let Some(id) = container_key(&g.path) {
            by_id.insert(id, i);
        }
    }
    let mut moves: Vec<(usize, Spans)> = Vec::new();
    for g in cgroups
        .iter()
        .filter(|g| g.hierarchy != 0 && !g.frozen.is_empty())
    {
        let target = by_path
            .get(g.path.as_str())
            .or_else(|| container_key(&g.path).and_then(|k| by_id.get(k)));
        if let Some(&t) = target {
            moves.push((t, g.frozen.to_vec()));
        }
    }
    for (t, spans) in moves {
        let g = &mut cgroups[t];
        for &(a, _) in &spans {
            g.paused_sources.insert(PausedSources::CGROUP_V1_FREEZER);
            if at_start(a) {
                g.paused_sources.insert(PausedSources::FROZEN_AT_START);
            }
        }
        g.frozen = union(g.frozen.iter().chain(spans)).into_iter().collect();
    }
    // The invoker log's pauses, where no cgroup freeze was seen for the container.
    let mut evs: Vec<&CompactContainerEvent> = container_events
        .iter()
        .filter(|e| {
            !e.container_id.is_empty()
                && matches!(
                    e.op,
                    ContainerOp::Pause | ContainerOp::Resume | ContainerOp::Remove
                )
        })
        .collect();
    evs.sort_by_key(|e| e.ts_ns);
    let mut per_container: HashMap<&str, (String, Spans)> = HashMap::new();
    for e in evs {
        let (path, spans) = per_container.entry(&*e.container_id).or_default();
        if path.is_empty() {
            *path = e.cgroup_path.to_string();
        }
        let open = matches!(spans.last(), Some((_, None)));
        match e.op {
            ContainerOp::Pause if !open => spans.push((e.ts_ns, None)),
            ContainerOp::Resume | ContainerOp::Remove if open => {
                if let Some((_, end)) = spans.last_mut() {
                    *end = Some(e.ts_ns);
                }
            }
            _ => {}
        }
    }
    for (id, (path, spans)) in per_container {
        if spans.is_empty() {
            continue;
        }
        let Some(gi) = find_cgroup(cgroups, id, &path) else {
            continue;
        };
        let g = &mut cgroups[gi];
        if g.frozen.is_empty() {
            g.frozen = spans.into_iter().collect();
            g.paused_sources.insert(PausedSources::INVOKER_LOG);
        }
    }
}

/// The container id a cgroup path names: its last component, without a `<runtime>-` prefix
/// and `.scope` suffix (`docker-<id>.scope`), if it is long enough to be one.
fn container_key(path: &str) -> Option<&str> {
    let last = path.rsplit('/').next()?;
    let last = last.strip_suffix(".scope").unwrap_or(last);
    let last = last.rsplit('-').next().unwrap_or(last);
    (last.len() >= 12).then_some(last)
}

/// The spans merged where they overlap or touch; an open span (None) runs to the end.
fn union(spans: impl Iterator<Item = (u64, Option<u64>)>) -> Spans {
    let mut v: Vec<_> = spans.collect();
    v.sort_by_key(|s| s.0);
    let mut out: Spans = Vec::new();
    for (a, b) in v {
        match out.last_mut() {
            Some((_, pb)) if pb.is_none_or(|pb| a <= pb) => {
                *pb = match (*pb, b) {
                    (Some(x), Some(y)) => Some(x.max(y)),
                    _ => None,
                };
            }
            _ => out.push((a, b)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pws_trace::records::{ActivationSource, StartType};

    const ID: &str = "4e5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d0c1b2a3f4e5d";

    fn cg(id: u64, hierarchy: u32, path: &str, frozen: &[(u64, Option<u64>)]) -> Cgroup {
        Cgroup {
            id,
            hierarchy,
            path: path.into(),
            frozen: frozen.iter().copied().collect(),
            ..Cgroup::default()
        }
    }

    fn op(ts: u64, op: ContainerOp, id: &str) -> CompactContainerEvent {
        pws_trace::records::ContainerEvent {
            ts_ns: ts,
            op,
            source: ActivationSource::InvokerLog,
            container_id: id.into(),
            activation_id: String::new(),
            action: String::new(),
            namespace: String::new(),
            start_type: StartType::Unknown,
            cgroup_path: String::new(),
            detail: "docker pause".into(),
        }
        .into()
    }

    #[test]
    fn v2_tracepoints_stay_and_are_labelled() {
        let mut gs = [cg(7, 0, "/c", &[(50, Some(80))])];
        apply(&mut gs, &[], 10);
        assert_eq!(gs[0].frozen.to_vec(), [(50, Some(80))]);
        assert_eq!(gs[0].paused_sources.label(), "cgroup-v2");
        assert_eq!(gs[0].frozen_ns(1000), 30);
    }

    #[test]
    fn v1_freezer_spans_go_to_the_v2_cgroup_of_the_same_path_or_id() {
        let mut gs = [
            cg(7, 0, &format!("/docker/{ID}"), &[]),
            cg(70, 4, &format!("/docker/{ID}"), &[(100, Some(600))]),
            cg(
                8,
                0,
                &format!("/system.slice/docker-{}.scope", "ab".repeat(32)),
                &[(20, Some(40))],
            ),
            cg(
                80,
                4,
                &format!("/docker/{}", "ab".repeat(32)),
                &[(30, Some(90)), (200, None)],
            ),
            cg(9, 0, "/other", &[]),
            cg(90, 4, "/unrelated", &[(1, Some(2))]),
        ];
        apply(&mut gs, &[], 10);
        assert_eq!(gs[0].frozen.to_vec(), [(100, Some(600))]);
        assert_eq!(gs[0].paused_sources.label(), "cgroup-v1-freezer");
        // By container id; overlapping spans of the two sources made one.
        assert_eq!(gs[2].frozen.to_vec(), [(20, Some(90)), (200, None)]);
        assert_eq!(gs[2].paused_sources.label(), "cgroup-v2+cgroup-v1-freezer");
        assert_eq!(gs[2].frozen_ns(1000), 70 + 800);
        assert!(gs[4].frozen.is_empty(), "no match, nothing moved");
    }

    #[test]
    fn cgroups_frozen_at_the_start_are_paused_from_the_start() {
        // The snapshot's (v2) and the v1 watcher's first read, both at the trace's start.
        let mut gs = [
            cg(7, 0, "/a", &[(10, Some(300))]),
            cg(8, 0, "/b", &[]),
            cg(80, 4, "/b", &[(10, None)]),
        ];
        apply(&mut gs, &[], 10);
        assert_eq!(
            (gs[0].frozen_ns(1000), gs[0].paused_sources.label().as_str()),
            (290, "frozen-at-start")
        );
        assert_eq!(
            (gs[1].frozen_ns(1000), gs[1].paused_sources.label().as_str()),
            (990, "cgroup-v1-freezer+frozen-at-start")
        );
    }

    #[test]
    fn invoker_log_pauses_stand_in_where_no_freeze_was_seen() {
        let seen = "cd".repeat(32);
        let mut gs = [
            cg(7, 0, &format!("/docker/{ID}"), &[]),
            cg(8, 0, &format!("/docker/{seen}"), &[(100, Some(200))]),
        ];
        let evs = [
            op(100, ContainerOp::Pause, ID),
            op(150, ContainerOp::Pause, ID), // repeated: still one span
            op(400, ContainerOp::Resume, ID),
            op(500, ContainerOp::Resume, ID), // no pause open: nothing
            op(600, ContainerOp::Pause, ID),
            op(650, ContainerOp::Remove, ID), // removed while paused: the span ends
            op(700, ContainerOp::Pause, ID),
            op(90, ContainerOp::Pause, &seen),
            op(900, ContainerOp::Resume, &seen),
        ];
        apply(&mut gs, &evs, 10);
        assert_eq!(
            gs[0].frozen.to_vec(),
            [(100, Some(400)), (600, Some(650)), (700, None)]
        );
        assert_eq!(gs[0].paused_sources.label(), "invoker-log");
        assert_eq!(
            gs[1].frozen.to_vec(),
            [(100, Some(200))],
            "the cgroup's own freeze wins"
        );
        assert_eq!(gs[1].paused_sources.label(), "cgroup-v2");
    }
}
