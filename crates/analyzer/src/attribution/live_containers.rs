//! Who is present in each interval, for the idle policies: every function container alive in
//! it (see `join::function_containers`: system scopes and daemons are never given idle energy),
//! with the fractions of the interval it existed and was not paused, and its memory limit.

use std::collections::{HashMap, HashSet};

use crate::analyze::Analysis;
use crate::models::attribute::Live;

/// Containers present in each interval of `spans`.
pub fn live_containers(an: &Analysis, spans: &[(u64, u64)]) -> Vec<Vec<Live>> {
    let end = an.grid.end();
    let mut mem: HashMap<usize, f64> = HashMap::new();
    for a in &an.life.activations {
        if let (Some(c), Some(m)) = (a.container, a.record.memory_limit_mb) {
            mem.insert(c, m as f64);
        }
    }
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
    let mut live = vec![Vec::new(); spans.len()];
    for (ci, c) in an.life.containers.iter().enumerate() {
        let Some(g) = c.cgroup.map(|g| &an.life.cgroups[g]) else {
            continue;
        };
        if !an.is_function_container(ci)
            || g.hierarchy != 0
            || (c.activations == 0 && groups_others(&g.path))
        {
            continue;
        }
        let from = c.created.unwrap_or(an.grid.start());
        let to = c.destroyed.unwrap_or(end);
        an.grid.split(from, to, |i, x, y| {
            let (a, b) = spans[i];
            let len = (b - a) as f64;
            let frozen: u64 = g
                .frozen
                .iter()
                .map(|(fa, fb)| {
                    let (fa, fb) = ((*fa).max(x), fb.unwrap_or(end).min(y));
                    fb.saturating_sub(fa)
                })
                .sum();
            live[i].push(Live {
                cgroup: g.id,
                alive: (y - x) as f64 / len,
                running: (y - x).saturating_sub(frozen) as f64 / len,
                memory_mb: mem.get(&ci).copied(),
            });
        });
    }
    live
}
