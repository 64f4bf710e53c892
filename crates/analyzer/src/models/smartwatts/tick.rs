//! What SmartWatts is fed: one tick of one sensor, split by socket. Plain data, so that ticks
//! can be built from hwpc-sensor reports (`crate::inputs::hwpc`) or from anything else that
//! has RAPL energy and per-target core counter deltas.

use std::collections::BTreeMap;
use std::sync::Arc;

/// Counter deltas of one CPU since the previous tick, by event name, kept sorted by name
/// (the order of the model's features). `time_enabled` and `time_running` are not events and
/// are left out. A sorted vector rather than a map: a CPU has a handful of events, and there
/// is one of these per CPU, target and tick.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Events(Vec<(Arc<str>, i64)>);

impl Events {
    pub fn new() -> Self {
        Events(Vec::new())
    }

    pub fn with_capacity(n: usize) -> Self {
        Events(Vec::with_capacity(n))
    }

    /// Set an event's value, replacing an earlier one.
    pub fn insert(&mut self, name: Arc<str>, value: i64) {
        // Inputs usually list events in name order already: append without a search.
        if self.0.last().is_none_or(|(last, _)| *last < name) {
            self.0.push((name, value));
            return;
        }
        match self.0.binary_search_by(|(n, _)| (**n).cmp(&*name)) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (name, value)),
        }
    }

    pub fn get(&self, name: &str) -> Option<i64> {
        let i = self.0.binary_search_by(|(n, _)| (**n).cmp(name)).ok()?;
        Some(self.0[i].1)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// (name, value) in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, i64)> {
        self.0.iter().map(|(n, v)| (&**n, *v))
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(n, _)| &**n)
    }

    pub fn values(&self) -> impl Iterator<Item = i64> + '_ {
        self.0.iter().map(|(_, v)| *v)
    }
}

impl FromIterator<(Arc<str>, i64)> for Events {
    fn from_iter<I: IntoIterator<Item = (Arc<str>, i64)>>(iter: I) -> Self {
        let mut e = Events::new();
        iter.into_iter().for_each(|(n, v)| e.insert(n, v));
        e
    }
}

impl Extend<(Arc<str>, i64)> for Events {
    fn extend<I: IntoIterator<Item = (Arc<str>, i64)>>(&mut self, iter: I) {
        iter.into_iter().for_each(|(n, v)| self.insert(n, v));
    }
}

impl IntoIterator for Events {
    type Item = (Arc<str>, i64);
    type IntoIter = std::vec::IntoIter<(Arc<str>, i64)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// The name of the machine-wide target in hwpc-sensor reports: it carries RAPL and MSR.
pub const GLOBAL_TARGET: &str = "all";

/// One sampling instant of one sensor.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tick {
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    pub sensor: Arc<str>,
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
