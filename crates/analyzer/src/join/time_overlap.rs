//! The time-overlap join: activations that no invoker log or record tied to a container (the
//! REST API and JSON-lines sources name none) are tied by when their container worked.
//!
//! 1. Candidates: function containers (see `function_containers`; every dynamic cgroup when no
//!    cgroup looks like one, with a note) alive during the activation, not frozen for all of
//!    it, and not known to serve another action. Each (activation, candidate) window is kept
//!    apart by the replay, so its CPU time is exact.
//! 2. A container serves one action: one no log named takes the action whose activations it
//!    got most CPU time from in a first matching blind to actions ((activation, container)
//!    pairs heaviest first — most CPU time of the container inside the activation's window —,
//!    each activation to its heaviest candidate not serving an overlapping one).
//! 3. Then the pairs again, heaviest first, each activation to a candidate of its action, a
//!    container never given two overlapping activations while a free candidate remains (action concurrency 1, OpenWhisk's default,
//!    never overlaps two in one container); an activation no candidate used CPU during stays
//!    unlinked.
//! 4. Two overlapping activations of one action in two containers are swapped where the crossed
//!    pairs hold more CPU time (heaviest-first is not the best matching). Two that start and end
//!    together cannot be told apart by CPU time: they may stay swapped, at little cost to
//!    either's figures.

use std::collections::HashMap;

use super::function_containers::Evidence;
use crate::replay::lifecycle::{JoinMethod, Lifecycles};

/// Container → the windows of the activations given to it.
type Taken = HashMap<usize, Vec<(u64, u64)>>;

/// Whether container `ci` already serves an activation overlapping `[s, e)`.
fn busy(taken: &Taken, ci: usize, s: u64, e: u64) -> bool {
    taken
        .get(&ci)
        .is_some_and(|ws| ws.iter().any(|&(x, y)| x < e && s < y))
}

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
        .filter(|a| a.container().is_none())
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
        if a.container().is_some() || s == 0 || e <= s {
            continue;
        }
        for &ci in &pool {
            let c = &life.containers[ci];
            let g = &life.cgroups[c.cgroup.expect("in the pool")];
            let alive = c.created.is_none_or(|t| t < e) && c.destroyed.is_none_or(|t| t > s);
            if alive
                && !g.frozen_during(s, e)
                && (c.action.is_empty() || *c.action == *a.record.action)
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
    // (CPU time, activation, container), heaviest first: of two activations of one action
    // started together in two containers, each container's CPU time is largest in its own
    // activation's window, so those pairs come before the crossed ones.
    let mut pairs: Vec<(u64, usize, usize)> = cands
        .iter()
        .zip(cpu_ns)
        .filter(|(_, &ns)| ns > 0)
        .map(|(&(ai, ci), &ns)| (ns, ai, ci))
        .collect();
    pairs.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
    infer_actions(life, &pairs);
    let mut taken = Taken::new();
    for a in &life.activations {
        if let Some(ci) = a.container() {
            taken
                .entry(ci)
                .or_default()
                .push((a.record.start_ns, a.record.end_ns));
        }
    }
    // A container serving an overlapping activation is taken only when no free one of the
    // action is left (action concurrency > 1).
    for shared in [false, true] {
        for &(_, ai, ci) in &pairs {
            let a = &life.activations[ai];
            if a.container().is_some() || *life.containers[ci].action != *a.record.action {
                continue;
            }
            let (s, e) = (a.record.start_ns, a.record.end_ns);
            if !shared && busy(&taken, ci, s, e) {
                continue;
            }
            taken.entry(ci).or_default().push((s, e));
            life.activations[ai].set_container(Some(ci));
            life.activations[ai].method = JoinMethod::TimeOverlap;
        }
    }
    swap_crossed(life, &pairs);
    let left = life
        .activations
        .iter()
        .filter(|a| a.container().is_none())
        .count();
    let mut notes = Vec::new();
    if left > 0 {
        notes.push(format!(
            "{left} of {} activations could not be tied to a container (no log link, and no candidate container of their action used CPU during them): they have no CPU time or energy",
            life.activations.len()
        ));
    }
    notes
}

/// The action of each container no log named. A first matching, blind to actions: pairs
/// heaviest first, each activation to its heaviest candidate not already serving an
/// overlapping one. A container then serves the action whose activations it got the most CPU
/// time from. A long CPU-bound activation's pairs come first, so its container is mostly its
/// action's; a sleeping function's activation, whose busiest candidates serve overlapping
/// activations of their own, falls through to its own container.
fn infer_actions(life: &mut Lifecycles, pairs: &[(u64, usize, usize)]) {
    let mut got = vec![false; life.activations.len()];
    let mut taken = Taken::new();
    // Container → (action, namespace) → CPU time of its activations given to it.
    let mut by_action: HashMap<usize, HashMap<(&str, &str), u64>> = HashMap::new();
    for &(ns, ai, ci) in pairs {
        let r = &life.activations[ai].record;
        let (s, e) = (r.start_ns, r.end_ns);
        if got[ai] || !life.containers[ci].action.is_empty() || busy(&taken, ci, s, e) {
            continue;
        }
        got[ai] = true;
        taken.entry(ci).or_default().push((s, e));
        *by_action
            .entry(ci)
            .or_default()
            .entry((&*r.action, &*r.namespace))
            .or_default() += ns;
    }
    let chosen: Vec<(usize, String, String)> = by_action
        .into_iter()
        .filter_map(|(ci, m)| {
            let ((a, ns), _) = m
                .into_iter()
                .max_by(|x, y| x.1.cmp(&y.1).then(y.0.cmp(&x.0)))?;
            Some((ci, a.to_owned(), ns.to_owned()))
        })
        .collect();
    for (ci, action, namespace) in chosen {
        let c = &mut life.containers[ci];
        c.action = action;
        c.namespace = namespace;
    }
}

/// Heaviest-first is not the best matching: two activations of one action that overlap, in
/// two containers, are swapped when the crossed pairs hold more of the containers' CPU time
/// (the right pairing holds all of it, the crossed one only what falls in the other's window).
fn swap_crossed(life: &mut Lifecycles, pairs: &[(u64, usize, usize)]) {
    let w: HashMap<(usize, usize), u64> = pairs.iter().map(|&(ns, a, c)| ((a, c), ns)).collect();
    let get = |a: usize, c: usize| w.get(&(a, c)).copied().unwrap_or(0);
    let mut mine: Vec<usize> = (0..life.activations.len())
        .filter(|&a| life.activations[a].method == JoinMethod::TimeOverlap)
        .collect();
    mine.sort_by_key(|&a| life.activations[a].record.start_ns);
    // A few rounds: each swap only raises the total, so this ends; bounded all the same.
    for _ in 0..4 {
        let mut swapped = false;
        for (i, &a1) in mine.iter().enumerate() {
            for &a2 in &mine[i + 1..] {
                let (r1, r2) = (&life.activations[a1].record, &life.activations[a2].record);
                if r2.start_ns >= r1.end_ns {
                    break;
                }
                if r1.action != r2.action {
                    continue;
                }
                let (Some(c1), Some(c2)) = (
                    life.activations[a1].container(),
                    life.activations[a2].container(),
                ) else {
                    continue;
                };
                if c1 != c2 && get(a1, c2) + get(a2, c1) > get(a1, c1) + get(a2, c2) {
                    life.activations[a1].set_container(Some(c2));
                    life.activations[a2].set_container(Some(c1));
                    swapped = true;
                }
            }
        }
        if !swapped {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::join::function_containers::classify;
    use crate::replay::compact_records::CompactRecord;
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
        let mut l = build(
            cgroups(&[], &tps),
            &[],
            recs.iter().cloned().map(CompactRecord::from).collect(),
        );
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
            l.containers[l.activations[i].container().unwrap()]
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
        let mut l = build(
            cgroups(&[], &tps),
            &[],
            recs.iter().cloned().map(CompactRecord::from).collect(),
        );
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
        assert_ne!(l.activations[0].container(), l.activations[1].container());
    }
}
