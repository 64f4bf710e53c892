//! Keep-alive energy: what a function container was given outside its activations (idle and
//! paused time, its own work between activations: init, GC, health checks). Its attributed
//! energy minus its activations'; never clamped, since by construction (`activation_energy`)
//! the activations take at most what the container got.

use std::collections::HashMap;

use crate::analyze::Analysis;
use crate::models::attribute::{IdlePolicy, Live, Share};

/// Each cgroup's joules in the rows without the live containers' idle energy
/// (`Attributed::shares`), summed as they pass.
#[derive(Debug, Default)]
pub struct CgroupTotals(HashMap<u64, f64>);

impl CgroupTotals {
    pub fn add(&mut self, s: &Share) {
        *self.0.entry(s.cgroup).or_default() += s.dynamic_j + s.idle_j;
    }
}

/// Per function container (index into `an.life.containers`): its keep-alive joules. The rows
/// without the live containers' idle energy summed per cgroup (`totals`), that energy over
/// each container's life in one step (`Live::idle_over_life` of `idle`, the
/// `Attributed::idle`), then the activations: linear in intervals, containers and
/// activations, not in intervals × containers.
pub fn per_container(
    an: &Analysis,
    totals: CgroupTotals,
    idle: &[(f64, f64)],
    live: &Live,
    policy: IdlePolicy,
    activations: &super::activations::Activations,
    // Each activation's joules (dynamic and idle), in order.
    acts: impl Iterator<Item = f64>,
) -> HashMap<usize, f64> {
    // hwpc-sensor reports have no activations: no keep-alive to tell apart.
    if an.joined.is_none() {
        return HashMap::new();
    }
    let mut total = totals.0;
    for (p, j) in live
        .containers
        .iter()
        .zip(live.idle_over_life(policy, idle))
    {
        *total.entry(p.cgroup).or_default() += j;
    }
    let mut out: HashMap<usize, f64> = HashMap::new();
    for ci in 0..an.life.containers.len() {
        if let (true, Some(cg)) = (an.is_function_container(ci), an.life.cgroup_id(ci)) {
            out.insert(ci, total.get(&cg).copied().unwrap_or(0.0));
        }
    }
    for (ai, j) in acts.enumerate() {
        if let Some(k) = activations.container(ai).and_then(|ci| out.get_mut(&ci)) {
            *k -= j;
        }
    }
    out
}
