//! The time-overlap join: activations that no invoker log or record tied to a container (the
//! REST API and JSON-lines sources name none) are tied by when their container worked.
//!
//! 1. Candidates: function containers (see `function_containers`; every dynamic cgroup when no
//!    cgroup looks like one, with a note) alive during the activation, not frozen for all of
//!    it, and not known to serve another action. Each (activation, candidate) window is kept
//!    apart by the replay, so its CPU time is exact.
//! 2. A container serves one action: a container whose action no log named takes the action
//!    whose activation windows hold most of its CPU time.
//! 3. Each activation goes to the candidate of its action with the most CPU time inside its
//!    window, preferring one not already serving an overlapping activation (action
//!    concurrency 1, OpenWhisk's default, never overlaps two in one container); with none busy
//!    at all it stays unlinked.

use std::collections::{BTreeMap, HashMap};

use super::function_containers::Evidence;
use crate::replay::lifecycle::{JoinMethod, Lifecycles};

/// (activation, container) pairs the replay must measure, and a note when no cgroup looked
/// like a function container.
pub fn candidates(life: &Lifecycles, evidence: &[Evidence]) -> (Vec<(usize, usize)>, Vec<String>) {
    let dynamic: Vec<usize> = life
        .containers
        .iter()
        .enumerate()
        .filter(|(_, c)| c.cgroup.is_some_and(|g| life.cgroups[g].hierarchy == 0))
        .map(|(i, _)| i)
        .collect();
    let functions: Vec<usize> = dynamic
        .iter()
        .copied()
        .filter(|&i| evidence[i].is_function())
        .collect();
    let unlinked = life
        .activations
        .iter()
        .filter(|a| a.container.is_none())
        .count();
    let mut notes = Vec::new();
    let pool = if functions.is_empty() && unlinked > 0 && !dynamic.is_empty() {
        notes.push(format!(
            "{unlinked} activations came without a container and no cgroup is named like a container runtime's: every cgroup created, frozen or removed during the trace was a candidate of the time-overlap join"
        ));
        dynamic
    } else {
        functions
    };
    let mut out = Vec::new();
    for (ai, a) in life.activations.iter().enumerate() {
        let (s, e) = (a.record.start_ns, a.record.end_ns);
        if a.container.is_some() || s == 0 || e <= s {
            continue;
        }
        for &ci in &pool {
            let c = &life.containers[ci];
            let g = &life.cgroups[c.cgroup.expect("in the pool")];
            let alive = c.created.is_none_or(|t| t < e) && c.destroyed.is_none_or(|t| t > s);
            if alive
                && !g.frozen_during(s, e)
                && (c.action.is_empty() || c.action == a.record.action)
            {
                out.push((ai, ci));
            }
        }
    }
    (out, notes)
}

/// Ties the unlinked activations, given the CPU time of each candidate window (aligned with
/// `cands`). Returns a note on what stayed unlinked.
pub fn join(life: &mut Lifecycles, cands: &[(usize, usize)], cpu_ns: &[u64]) -> Vec<String> {
    // 2. The action of each container no log named.
    let mut score: BTreeMap<(usize, &str), u64> = BTreeMap::new();
    for (&(ai, ci), &ns) in cands.iter().zip(cpu_ns) {
        if life.containers[ci].action.is_empty() {
            *score
                .entry((ci, life.activations[ai].record.action.as_str()))
                .or_default() += ns;
        }
    }
    let mut action: HashMap<usize, (u64, String)> = HashMap::new();
    for ((ci, a), ns) in score {
        if ns > 0 && action.get(&ci).is_none_or(|(best, _)| ns > *best) {
            action.insert(ci, (ns, a.to_owned()));
        }
    }
    for (ci, (_, a)) in action {
        let ns = life
            .activations
            .iter()
            .find(|x| x.record.action == a)
            .map(|x| x.record.namespace.clone());
        let c = &mut life.containers[ci];
        c.action = a;
        c.namespace = ns.unwrap_or_default();
    }
    // 3. Each activation, in start order.
    let mut per_act: BTreeMap<usize, Vec<(usize, u64)>> = BTreeMap::new();
    for (&(ai, ci), &ns) in cands.iter().zip(cpu_ns) {
        if ns > 0 && life.containers[ci].action == life.activations[ai].record.action {
            per_act.entry(ai).or_default().push((ci, ns));
        }
    }
    let mut taken: HashMap<usize, Vec<(u64, u64)>> = HashMap::new();
    for a in &life.activations {
        if let Some(ci) = a.container {
            taken
                .entry(ci)
                .or_default()
                .push((a.record.start_ns, a.record.end_ns));
        }
    }
    let mut order: Vec<usize> = per_act.keys().copied().collect();
    order.sort_by_key(|&ai| life.activations[ai].record.start_ns);
    for ai in order {
        let (s, e) = (
            life.activations[ai].record.start_ns,
            life.activations[ai].record.end_ns,
        );
        let busy = |ci: &usize| {
            taken
                .get(ci)
                .is_some_and(|ws| ws.iter().any(|&(x, y)| x < e && s < y))
        };
        let best = per_act[&ai]
            .iter()
            .max_by_key(|(ci, ns)| (!busy(ci), *ns, std::cmp::Reverse(*ci)))
            .map(|&(ci, _)| ci);
        if let Some(ci) = best {
            taken.entry(ci).or_default().push((s, e));
            life.activations[ai].container = Some(ci);
            life.activations[ai].method = JoinMethod::TimeOverlap;
        }
    }
    let left = life
        .activations
        .iter()
        .filter(|a| a.container.is_none())
        .count();
    let mut notes = Vec::new();
    if left > 0 {
        notes.push(format!(
            "{left} of {} activations could not be tied to a container (no log link, and no candidate container used CPU during them): they have no CPU time or energy",
            life.activations.len()
        ));
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::join::function_containers::classify;
    use crate::replay::lifecycle::tests::{act, tp};
    use crate::replay::lifecycle::{build, cgroups};

    fn docker(n: u8) -> String {
        format!("/docker/{}", format!("{n:x}").repeat(64))
    }

    /// Two Docker containers busy all the time, one more; a system scope busier still. The
    /// scope is no candidate; each container takes the action whose windows hold its CPU time,
    /// and the other action's activation goes to the other container though it is less busy.
    #[test]
    fn each_container_serves_one_action_and_scopes_are_no_candidates() {
        let tps = [
            tp(10, "cgroup_mkdir", 8, &docker(8)),
            tp(10, "cgroup_mkdir", 9, &docker(9)),
            tp(10, "cgroup_mkdir", 5, "/system.slice/run-r1.scope"),
        ];
        let recs = [
            act("x", "f", 20, 30),
            act("y", "g", 40, 50),
            act("z", "f", 60, 70),
        ];
        let mut l = build(cgroups(&[], &tps), &[], &recs);
        let ev = classify(&l);
        let (cands, notes) = candidates(&l, &ev);
        assert!(notes.is_empty());
        let scope = l
            .containers
            .iter()
            .position(|c| c.container_id.contains("run-r1"))
            .unwrap();
        assert!(cands.iter().all(|&(_, ci)| ci != scope), "{cands:?}");
        assert_eq!(cands.len(), 6);
        // /docker/8… works in f's windows (5 ns) and a little in g's (1); /docker/9… in g's.
        let cpu: Vec<u64> = cands
            .iter()
            .map(|&(ai, ci)| {
                let eight = l.containers[ci].container_id.contains("/docker/8");
                match (recs[ai].action.as_str(), eight) {
                    ("f", true) => 5,
                    ("g", true) => 1,
                    ("g", false) => 3,
                    _ => 0,
                }
            })
            .collect();
        assert!(join(&mut l, &cands, &cpu).is_empty());
        let on = |i: usize| {
            l.containers[l.activations[i].container.unwrap()]
                .container_id
                .clone()
        };
        assert_eq!((on(0), on(1), on(2)), (docker(8), docker(9), docker(8)));
        assert!(l
            .activations
            .iter()
            .all(|a| a.method == JoinMethod::TimeOverlap));
    }

    /// Two overlapping activations of one action and two containers of it: the second goes to
    /// the container not already serving the first, although the first is busier then.
    #[test]
    fn an_idle_container_is_preferred_to_a_busy_one() {
        let tps = [
            tp(10, "cgroup_mkdir", 8, &docker(8)),
            tp(10, "cgroup_mkdir", 9, &docker(9)),
        ];
        let recs = [act("x", "f", 20, 40), act("y", "f", 30, 50)];
        let mut l = build(cgroups(&[], &tps), &[], &recs);
        let ev = classify(&l);
        let (cands, _) = candidates(&l, &ev);
        let cpu: Vec<u64> = cands
            .iter()
            .map(|&(_, ci)| {
                if l.containers[ci].container_id.contains("/docker/8") {
                    9
                } else {
                    4
                }
            })
            .collect();
        join(&mut l, &cands, &cpu);
        assert_ne!(l.activations[0].container, l.activations[1].container);
    }
}
