//! What SmartWatts is fed: one tick of one sensor, split by socket. Plain data, so that ticks
//! can be built from hwpc-sensor reports (`crate::inputs::hwpc`) or from anything else that
//! has RAPL energy and per-target core counter deltas.

use std::collections::BTreeMap;
use std::sync::Arc;

/// Counter deltas of one CPU since the previous tick, by event name. `time_enabled` and
/// `time_running` are not events and are left out. Sorted by name, which is also the order
/// of the model's features. Names are shared (`Arc`): every CPU of every tick repeats them.
pub type Events = BTreeMap<Arc<str>, i64>;

/// The name of the machine-wide target in hwpc-sensor reports: it carries RAPL and MSR.
pub const GLOBAL_TARGET: &str = "all";

/// One sampling instant of one sensor.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tick {
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    pub sensor: String,
    pub sockets: BTreeMap<u32, SocketTick>,
}

/// What the formulas of one socket get for a tick. A tick may arrive in pieces (one per
/// hwpc report): pieces with the same timestamp are merged, a later piece replacing what an
/// earlier one said about the same target.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SocketTick {
    /// The machine-wide measurements; without them the tick cannot be estimated.
    pub global: Option<GlobalSample>,
    /// Targets that ran on this socket during the tick, in arrival order.
    pub targets: Vec<TargetSample>,
}

/// Machine-wide measurements of one socket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GlobalSample {
    /// RAPL energy since the previous tick, in joules, by event (`RAPL_ENERGY_PKG`,
    /// `RAPL_ENERGY_DRAM`…). hwpc-sensor counts in 2^-32 J: divide by 2^32.
    pub rapl_joules: BTreeMap<String, f64>,
    /// APERF/MPERF (and TSC) deltas of each CPU of the socket; empty when not read, in which
    /// case the base frequency's layer is used.
    pub msr: Vec<Events>,
}

/// Core counters of one target on one socket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetSample {
    pub target: Arc<str>,
    /// One entry per CPU of the socket the target was counted on.
    pub cpus: Vec<Events>,
}

impl SocketTick {
    /// Merge a later piece of the same tick, as smartwatts' `ticks[ts].update({target: report})`.
    pub fn merge(&mut self, later: SocketTick) {
        if later.global.is_some() {
            self.global = later.global;
        }
        for t in later.targets {
            match self.targets.iter_mut().find(|e| e.target == t.target) {
                Some(e) => *e = t,
                None => self.targets.push(t),
            }
        }
    }
}
