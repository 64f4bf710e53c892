//! Which cgroup a process was in, from the trace's own records: NVML names GPU processes by
//! pid only.
//!
//! Three sources, all on the trace clock: the perf group samples (each carries the task's pid
//! and its cgroup, `PERF_SAMPLE_CGROUP`; the replay notes each task's first sample in a
//! cgroup), the `cgroup_attach_task` tracepoint and the recorder's attach events (a task moved
//! into a cgroup). A process is in the cgroup of its latest observation at or before the
//! instant asked about; before its first one, in that first one's (a task forked inside a
//! container has no attach event: its first sample is the earliest evidence, and it did not
//! change cgroup before it).

use rustc_hash::FxHashMap;

use crate::replay::cpu::{CpuReplay, Tracepoint};
use pws_trace::records::CgroupOp;

use crate::replay::compact_records::CompactCgroupEvent;

#[derive(Debug, Default, Clone)]
pub struct PidCgroups {
    /// pid → (time, cgroup id), sorted by time.
    by_pid: FxHashMap<u32, Vec<(u64, u64)>>,
}

impl PidCgroups {
    /// From the replay's per-CPU observations, the side band's tracepoints and the recorder's
    /// cgroup events (v2 only: the cgroup ids of samples are v2 ids).
    pub fn new(
        cpus: &[CpuReplay],
        tracepoints: &[Tracepoint],
        events: &[CompactCgroupEvent],
    ) -> Self {
        let mut by_pid: FxHashMap<u32, Vec<(u64, u64)>> = FxHashMap::default();
        let perf = cpus.iter().flat_map(|c| c.pid_cgroups.iter().copied());
        let attach = tracepoints
            .iter()
            .filter(|t| t.name == "cgroup_attach_task" && t.root == 0 && t.pid != 0)
            .map(|t| (t.ts_ns, t.pid, t.cgroup_id));
        let recorded = events
            .iter()
            .filter(|e| e.op == CgroupOp::Attach && e.hierarchy == 0 && e.pid != 0)
            .map(|e| (e.ts_ns, e.pid, e.cgroup_id));
        for (t, pid, cg) in perf.chain(attach).chain(recorded) {
            by_pid.entry(pid).or_default().push((t, cg));
        }
        for v in by_pid.values_mut() {
            v.sort_unstable();
            v.dedup_by_key(|x| x.1);
        }
        Self { by_pid }
    }

    /// The cgroup of `pid` at `t`, None for a pid the trace never shows.
    pub fn at(&self, pid: u32, t: u64) -> Option<u64> {
        let v = self.by_pid.get(&pid)?;
        let i = v.partition_point(|x| x.0 <= t);
        Some(v[i.saturating_sub(1)].1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_observation_wins_and_the_first_covers_before_it() {
        let cpu = CpuReplay {
            pid_cgroups: vec![(100, 7, 55), (300, 7, 66)],
            ..CpuReplay::default()
        };
        let attach = Tracepoint {
            ts_ns: 200,
            name: "cgroup_attach_task".into(),
            cgroup_id: 77,
            root: 0,
            path: "/x".into(),
            pid: 7,
        };
        let m = PidCgroups::new(&[cpu], &[attach], &[]);
        assert_eq!(m.at(7, 50), Some(55));
        assert_eq!(m.at(7, 150), Some(55));
        assert_eq!(m.at(7, 250), Some(77));
        assert_eq!(m.at(7, 300), Some(66));
        assert_eq!(m.at(8, 300), None);
    }
}
