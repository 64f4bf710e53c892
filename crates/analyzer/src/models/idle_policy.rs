//! Idle policies: who is given an interval's static (idle) power. The dynamic part always
//! follows the model's weights; the static part is placed by the policy, among the function
//! containers present in the interval (`attribution::live_containers`: system scopes and
//! daemons never get idle energy) or, for `proportional`, like the dynamic power.

use super::dataset::Interval;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IdlePolicy {
    /// Static power is its own row.
    Unassigned,
    /// In proportion to each cgroup's dynamic power (what SmartWatts does with its intercept).
    Proportional,
    /// Evenly across containers alive and not paused in the interval.
    Even,
    /// Across every live container, paused ones included, by the time each is kept: the
    /// keep-alive cost FaaS platforms hide.
    ByLifetime,
    /// Across live containers by memory limit.
    ByMemory,
}

impl IdlePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unassigned => "unassigned",
            Self::Proportional => "proportional",
            Self::Even => "even",
            Self::ByLifetime => "by-lifetime",
            Self::ByMemory => "by-memory",
        }
    }
}

/// A container's presence in an interval.
#[derive(Debug, Clone, Copy)]
pub struct Live {
    pub cgroup: u64,
    /// Fraction of the interval it existed.
    pub alive: f64,
    /// Fraction of the interval it existed and was not frozen.
    pub running: f64,
    /// Memory limit in MB, when known.
    pub memory_mb: Option<f64>,
}

/// Each cgroup's share of interval `iv`'s static power under `policy` (unnormalised): `w` are
/// the model's dynamic weights (aligned with `iv.cgroups`), `lv` the containers present.
pub fn shares(policy: IdlePolicy, iv: &Interval, w: &[f64], lv: &[Live]) -> Vec<(u64, f64)> {
    match policy {
        IdlePolicy::Unassigned => Vec::new(),
        IdlePolicy::Proportional => iv
            .cgroups
            .iter()
            .map(|(cg, _)| *cg)
            .zip(w.iter().copied())
            .collect(),
        IdlePolicy::Even => lv.iter().map(|l| (l.cgroup, l.running)).collect(),
        IdlePolicy::ByLifetime => lv.iter().map(|l| (l.cgroup, l.alive)).collect(),
        IdlePolicy::ByMemory => {
            let known: Vec<f64> = lv.iter().filter_map(|l| l.memory_mb).collect();
            let fill = if known.is_empty() {
                1.0
            } else {
                known.iter().sum::<f64>() / known.len() as f64
            };
            lv.iter()
                .map(|l| (l.cgroup, l.alive * l.memory_mb.unwrap_or(fill)))
                .collect()
        }
    }
}
