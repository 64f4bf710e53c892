//! Who is present in each interval, for the idle policies: every function container alive in
//! it (see `join::function_containers`: system scopes and daemons are never given idle energy):
//! its span, its frozen spans and its memory limit, once per container however long it lives.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use crate::analyze::Analysis;
use crate::models::attribute::{Live, Presence};

/// The function containers over the replay's grid, as lifecycles; `memory_mb` their memory
/// limits (`Activations::memory_mb`).
pub fn live_containers<'a>(an: &'a Analysis, memory_mb: &HashMap<usize, f64>) -> Live<'a> {
    of(an, memory_mb, Cow::Borrowed(an.grid.bounds()), |_| true)
}

/// Those of a GPU: the function containers that ran on it or held its memory
/// (`gpu::Device::holders`). A container that never touched a GPU is not kept warm for it, so
/// it pays none of its idle power.
pub fn gpu_containers(
    an: &Analysis,
    memory_mb: &HashMap<usize, f64>,
    spans: &[(u64, u64)],
    device: u32,
) -> Live<'static> {
    let holders = an.gpu.devices.get(&device).map(|d| &d.holders);
    let bounds = crate::models::idle_policy::bounds_of(spans);
    of(an, memory_mb, Cow::Owned(bounds), |cg| {
        holders.is_some_and(|h| h.contains(&cg))
    })
}

/// The function containers whose cgroup `keep` takes, over the grid of `bounds`.
fn of<'g>(
    an: &Analysis,
    mem: &HashMap<usize, f64>,
    bounds: Cow<'g, [u64]>,
    keep: impl Fn(u64) -> bool,
) -> Live<'g> {
    let end = an.grid.end();
    // A container cgroup with containers below it and no activation of its own (a Kubernetes
    // pod, a load generator's parent cgroup) only groups them: its children pay, not it too.
    let mut parents: HashSet<&str> = HashSet::new();
    for g in an.life.containers.iter().filter_map(|c| c.cgroup) {
        let g = &an.life.cgroups[g];
        if g.hierarchy == 0 {
            let p = g.path.trim_end_matches('/');
            // Every proper ancestor; not the empty prefix before the leading `/`.
            parents.extend(
                p.match_indices('/')
                    .filter(|&(i, _)| i > 0)
                    .map(|(i, _)| &p[..i]),
            );
        }
    }
    let groups_others = |path: &str| parents.contains(path.trim_end_matches('/'));
    let mut out = Vec::new();
    for (ci, c) in an.life.containers.iter().enumerate() {
        let Some(g) = c.cgroup.map(|g| &an.life.cgroups[g]) else {
            continue;
        };
        if !an.is_function_container(ci)
            || !keep(g.id)
            || g.hierarchy != 0
            || (c.activations == 0 && groups_others(&g.path))
        {
            continue;
        }
        let from = c.created.unwrap_or(an.grid.start());
        let to = c.destroyed.unwrap_or(end);
        // Inside its life, in time order, overlaps merged: what `Live` sweeps over.
        let mut frozen: Vec<(u64, u64)> = g
            .frozen
            .iter()
            .map(|(a, b)| (a.max(from), b.unwrap_or(end).min(to)))
            .filter(|(a, b)| a < b)
            .collect();
        frozen.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(frozen.len());
        for (a, b) in frozen {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        out.push(Presence {
            cgroup: g.id,
            from,
            to,
            frozen: merged,
            memory_mb: mem.get(&ci).copied(),
        });
    }
    Live::on_bounds(bounds, out)
}
