//! GPU energy per cgroup and activation, from what NVML recorded (trace block kind 11 and the
//! GPUs' energy series, domain `gpu`).
//!
//! Each GPU is an energy domain of its own (its `package` in the tables is the device index).
//! What splits its dynamic power between cgroups is SM utilisation: NVML's per-process samples
//! ([`utilization`]), each process placed in its cgroup by the trace's own records
//! ([`pid_cgroups`]). The models of a GPU are fitted on that (`models::model::ShareModel::
//! sm_share`: power = idle + slope × SM-busy time); its idle power goes to containers under the
//! same idle policies as a CPU package's. An activation gets its container's SM-busy time while
//! it runs; the counter's own cadence (about 100 ms on NVIDIA's data-centre GPUs) bounds how well
//! its energy is known, which the uncertainty columns carry.

pub mod pid_cgroups;
pub mod presence;
pub mod utilization;

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use crate::replay::grid::Grid;
use crate::replay::lifecycle::Lifecycles;
use crate::timefmt::ClockMap;
use pid_cgroups::PidCgroups;
use pws_trace::records::{EnergyDomain, EnergySeries, GpuBlock};
use utilization::DeviceUsage;

/// Every GPU of a trace, by device index.
#[derive(Debug, Default)]
pub struct GpuUsage {
    pub devices: BTreeMap<u32, Device>,
}

#[derive(Debug)]
pub struct Device {
    /// Its counter's update windows: the readings at which its cumulative energy moved, at
    /// least a tables' interval apart (the tables' grid where it has no counter). Its
    /// attribution is made on these, not on the tables' intervals: the counter says nothing
    /// finer (NVML's moves every ~100 ms), and SM time spread over 10 ms intervals against
    /// energy spread over them would only add noise to the fit and lose joules to the lag.
    pub grid: Grid,
    pub uuid: String,
    pub name: String,
    pub mig: bool,
    /// The driver's sampling period as measured (see [`utilization`]), ns.
    pub sampling_period_ns: u64,
    pub samples: usize,
    pub usage: DeviceUsage,
    pub unplaced: usize,
    /// The activations with SM-busy time on it.
    pub used: rustc_hash::FxHashSet<usize>,
    /// (activation, window) → its share of its container's presence, ns ([`presence`]).
    pub presence: FxHashMap<(usize, usize), f64>,
    /// The cgroups that ran on it or held its memory (a process in a read's compute
    /// processes): those its idle power is shared among.
    pub holders: rustc_hash::FxHashSet<u64>,
}

impl GpuUsage {
    /// `grid` is the tables' grid: a GPU's own is made from its counter's updates, at least
    /// one of `grid`'s steps `step_ns` apart.
    pub fn new(
        blocks: &[GpuBlock],
        clock: &ClockMap,
        (grid, step_ns): (&Grid, u64),
        energy: &[EnergySeries],
        pids: &PidCgroups,
        life: &Lifecycles,
    ) -> Self {
        if blocks.is_empty() {
            return Self::default();
        }
        let mut acts_of: FxHashMap<u64, Vec<(u64, u64, usize)>> = FxHashMap::default();
        for (ai, a) in life.activations.iter().enumerate() {
            if let Some(cg) = a.container().and_then(|c| life.cgroup_id(c)) {
                if a.record.end_ns > a.record.start_ns {
                    acts_of
                        .entry(cg)
                        .or_default()
                        .push((a.record.start_ns, a.record.end_ns, ai));
                }
            }
        }
        let devices = utilization::samples(blocks, clock)
            .into_iter()
            .map(|(d, s)| {
                let grid = update_windows(energy, d, step_ns).unwrap_or_else(|| grid.clone());
                let usage = utilization::on_grid(&s, &grid, pids, &acts_of);
                let presence = presence::on_grid(&grid, &acts_of);
                let used = usage
                    .activations
                    .iter()
                    .filter(|(_, u)| u.counters.first().is_some_and(|x| *x > 0.0))
                    .map(|((ai, _), _)| *ai)
                    .collect();
                let holders = usage
                    .cells
                    .iter()
                    .map(|c| c.1)
                    .chain(s.processes.iter().filter_map(|&(t, pid)| pids.at(pid, t)))
                    .collect();
                let dev = Device {
                    grid,
                    used,
                    presence,
                    holders,
                    uuid: s.uuid,
                    name: s.name,
                    mig: s.mig,
                    sampling_period_ns: s.period_ns,
                    samples: s.pieces.len(),
                    usage,
                    unplaced: s.unplaced,
                };
                (d, dev)
            })
            .collect();
        Self { devices }
    }

    /// Whether activation `ai` kept any GPU's SMs busy.
    pub fn used_by(&self, ai: usize) -> bool {
        self.devices.values().any(|d| d.used.contains(&ai))
    }

    /// What a reader of the tables should know about the GPUs' samples, one sentence each.
    pub fn notes(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (d, g) in &self.devices {
            out.push(format!(
                "gpu {d} {:?} ({}): {} utilisation samples, one per process every {:.0} ms (the driver's sampling period, measured): SM time is known to that resolution",
                g.name,
                g.uuid,
                g.samples,
                g.sampling_period_ns as f64 / 1e6
            ));
            if g.mig {
                out.push(format!("gpu {d}: MIG mode is on: NVML gives no per-process utilisation, so its dynamic energy is unassigned"));
            }
            if g.unplaced > 0 {
                out.push(format!("gpu {d}: {} utilisation sample(s) could not be placed on the trace clock (no clock-sync pairs): left out", g.unplaced));
            }
            if g.usage.unresolved > 0 {
                out.push(format!("gpu {d}: {} of {} utilisation sample(s) name a process the trace never shows in a cgroup: their SM time is in no cgroup's share", g.usage.unresolved, g.samples));
            }
        }
        out
    }
}

/// The update windows of GPU `device`'s energy counter (its series with the most readings):
/// the readings at which it moved, merged to at least `step_ns` apart; None without two.
pub fn update_windows(energy: &[EnergySeries], device: u32, step_ns: u64) -> Option<Grid> {
    let s = energy
        .iter()
        .filter(|s| s.domain == EnergyDomain::Gpu && s.index == device)
        .max_by_key(|s| s.samples.len())?;
    let mut samples = s.samples.clone();
    samples.sort_by_key(|x| x.ts_ns);
    // The first reading starts the first window; each move ends one.
    let times = samples.first().map(|x| x.ts_ns).into_iter().chain(
        samples
            .windows(2)
            .filter(|w| w[1].raw != w[0].raw)
            .map(|w| w[1].ts_ns),
    );
    Grid::from_readings(times, step_ns.max(1))
}
