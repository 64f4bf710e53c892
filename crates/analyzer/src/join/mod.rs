//! The activation join: which container ran each activation, and which part of the
//! container's usage is the activation's.
//!
//! - exact links (the invoker log's `assign`, a record naming its container) come from
//!   `replay::lifecycle`;
//! - [`function_containers`] says which cgroups are function containers;
//! - [`cold_start`] what kind of start each activation had;
//! - [`time_overlap`] ties the activations left, by the CPU time of their candidates;
//! - [`windows`] cuts every window into segments the replay keeps apart, and splits a
//!   container's usage among concurrent activations (the concurrency rule);
//! - [`activation_runs`] holds each activation's part, per interval, on disk until the
//!   attribution reads it.

pub mod activation_runs;
pub mod activation_totals;
pub mod cold_start;
pub mod function_containers;
pub mod time_overlap;
pub mod windows;

use crate::replay::grid::Grid;
use crate::replay::lifecycle::Lifecycles;
use crate::replay::Replayed;
use function_containers::Evidence;
use windows::{Apportioned, Plan};

/// Which links the join may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum JoinMode {
    /// Every link the trace has (invoker log, records naming a container), then time overlap.
    #[default]
    Auto,
    /// Time overlap only, as if no log or record named a container: to check the time-overlap
    /// join against the links on your own traces (a REST-only setup gets this anyway).
    TimeOverlap,
}

/// What the replay must keep apart, before it runs.
#[derive(Debug)]
pub struct Pending {
    pub plan: Plan,
    candidates: Vec<(usize, usize)>,
    pub notes: Vec<String>,
}

/// The windows of the linked activations on their containers, and of the others on every
/// candidate.
pub fn plan(life: &Lifecycles, grid: &Grid) -> Pending {
    let evidence = function_containers::classify(life);
    let (candidates, notes) = time_overlap::candidates(life, &evidence);
    let mut ws = Vec::new();
    for (ai, a) in life.activations.iter().enumerate() {
        if let Some(cg) = a.container().and_then(|c| life.cgroup_id(c)) {
            ws.push((ai, cg, a.record.start_ns, a.record.end_ns));
        }
    }
    for &(ai, ci) in &candidates {
        let a = &life.activations[ai].record;
        if let Some(cg) = life.cgroup_id(ci) {
            ws.push((ai, cg, a.start_ns, a.end_ns));
        }
    }
    Pending {
        plan: Plan::new(&ws, grid),
        candidates,
        notes,
    }
}

/// The join, done.
#[derive(Debug)]
pub struct Joined {
    pub evidence: Vec<Evidence>,
    pub usage: Apportioned,
    pub notes: Vec<String>,
}

/// Ties the activations left by time overlap, then splits each container's usage among its
/// activations. Takes (empties) the replay's segment usage.
pub fn finish(
    life: &mut Lifecycles,
    p: Pending,
    rep: &mut Replayed,
    grid: &Grid,
) -> anyhow::Result<Joined> {
    let usage = std::mem::take(&mut rep.segments);
    let Pending {
        plan,
        candidates,
        mut notes,
    } = p;
    let win_ns = windows::window_cpu_ns(&plan, &usage)?;
    let cpu: Vec<u64> = candidates
        .iter()
        .map(|&(ai, ci)| {
            life.cgroup_id(ci)
                .and_then(|cg| plan.window_index(ai, cg))
                .map_or(0, |i| win_ns[i])
        })
        .collect();
    // The windows' CPU time and the candidates are not held through the apportioning.
    drop(win_ns);
    notes.extend(time_overlap::join(life, &candidates, &cpu));
    drop((candidates, cpu));
    // A container no log named is called by the id in its cgroup's name, as a log would.
    for c in life.containers.iter_mut().filter(|c| !c.from_log) {
        if let Some(id) = c
            .cgroup
            .and_then(|g| function_containers::container_id_of_path(&life.cgroups[g].path))
        {
            c.container_id = id.to_owned();
        }
    }
    // The time-overlap join added activations: every container's count again (its action is
    // set already, by the log, `lifecycle::build` or the join).
    for c in &mut life.containers {
        c.activations = 0;
    }
    for ci in life.activations.iter().filter_map(|a| a.container()) {
        life.containers[ci].activations += 1;
    }
    let joined: Vec<(usize, u64)> = life
        .activations
        .iter()
        .enumerate()
        .filter_map(|(ai, a)| Some((ai, a.container().and_then(|c| life.cgroup_id(c))?)))
        .collect();
    Ok(Joined {
        evidence: function_containers::classify(life),
        usage: windows::apportion(
            &plan,
            grid,
            &joined,
            &usage,
            (life.activations.len(), rep.columns.len()),
        )?,
        notes,
    })
}
