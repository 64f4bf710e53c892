//! Keep-alive energy: what a function container was given outside its activations (idle and
//! paused time, its own work between activations: init, GC, health checks). Its attributed
//! energy minus its activations'; never clamped, since by construction (`activation_energy`)
//! the activations take at most what the container got.

use std::collections::HashMap;

use super::activation_energy::ActivationJoules;
use crate::analyze::Analysis;
use crate::models::attribute::{Attributed, IdlePolicy, Live};

/// Per function container (index into `an.life.containers`): its keep-alive joules. One pass
/// over the rows without the live containers' idle energy, that energy over each container's
/// life in one step (`Live::idle_over_life`), then the activations: linear in intervals,
/// containers and activations, not in intervals × containers.
pub fn per_container(
    an: &Analysis,
    att: &Attributed,
    live: &Live,
    policy: IdlePolicy,
    acts: &[ActivationJoules],
) -> HashMap<usize, f64> {
    // hwpc-sensor reports have no activations: no keep-alive to tell apart.
    if an.joined.is_none() {
        return HashMap::new();
    }
    let mut total: HashMap<u64, f64> = HashMap::new();
    for s in &att.shares {
        *total.entry(s.cgroup).or_default() += s.dynamic_j + s.idle_j;
    }
    for (p, j) in live
        .containers
        .iter()
        .zip(live.idle_over_life(policy, &att.idle))
    {
        *total.entry(p.cgroup).or_default() += j;
    }
    let mut out: HashMap<usize, f64> = HashMap::new();
    for ci in 0..an.life.containers.len() {
        if let (true, Some(cg)) = (an.is_function_container(ci), an.life.cgroup_id(ci)) {
            out.insert(ci, total.get(&cg).copied().unwrap_or(0.0));
        }
    }
    for (a, j) in an.life.activations.iter().zip(acts) {
        if let Some(k) = a.container.and_then(|ci| out.get_mut(&ci)) {
            *k -= j.dynamic_j + j.idle_j;
        }
    }
    out
}
