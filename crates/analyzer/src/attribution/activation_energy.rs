//! Each activation's energy under one (model, idle policy) and one energy counter.
//!
//! Dynamic: in every interval its window overlaps, its container's attributed dynamic energy
//! times the activation's usage through the model over the container's (both on the counter's
//! packages; the activation's usage is its part by the concurrency rule of `join::windows`).
//! Idle: its container's idle share times the activation's share of the container's presence
//! in the interval. So the activations of one container never take more than it was given, and
//! what they do not take is its keep-alive energy.

use std::borrow::Cow;

use super::activations::Activations;
use crate::analyze::Analysis;
use crate::models::attribute::{Attributed, Live};
use crate::models::dataset::{Dataset, Interval};
use crate::models::model::Model;
use crate::replay::cpu::Usage;

/// One activation's dynamic energy on one counter under one model: the same under every
/// idle policy, so computed once per model ([`dynamic`]); the idle part per policy ([`idle`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Dynamic {
    pub dynamic_j: f64,
    /// Every interval it overlaps had known energy.
    pub complete: bool,
}

/// (activation, interval) → the activation's usage on the packages a counter covers, and its
/// presence: read from the join's spilled runs (`join::activation_runs`) as they are asked for,
/// in activation order.
pub struct ActivationCells<'a> {
    /// The activations the cells are of.
    acts: &'a Activations,
    /// The join's runs (presence, and usage on a CPU), read one activation at a time.
    runs: Option<Reader<'a>>,
    packages: Vec<u32>,
    /// A GPU's: its (activation, update window) SM-busy time (`gpu::utilization`), on its
    /// own grid, instead of the join's CPU cells.
    gpu: Option<&'a crate::gpu::Device>,
}

impl ActivationCells<'_> {
    /// The activation's usage in interval `k`, summed over the counter's packages; None where
    /// it did not run there.
    pub fn get(&self, ai: usize, k: usize) -> Option<Cow<'_, Usage>> {
        if let Some(g) = self.gpu {
            return g.usage.activations.get(&(ai, k)).map(Cow::Borrowed);
        }
        let mut r = self.runs.as_ref()?.borrow_mut();
        r.load(ai);
        let mut found = self.packages.iter().filter_map(|&p| r.find(k, p));
        let mut sum = found.next()?.clone();
        found.for_each(|u| sum.add(u));
        Some(Cow::Owned(sum))
    }

    /// The activation's share of its container's presence in interval `k` (of [`Self::grid`]:
    /// a GPU's update windows, else the tables' intervals), ns.
    pub fn presence(&self, ai: usize, k: usize) -> Option<f64> {
        if let Some(g) = self.gpu {
            return g.presence.get(&(ai, k)).copied();
        }
        self.runs.as_ref()?.borrow_mut().presence(ai, k)
    }

    /// Whether every read of the join's runs so far succeeded: a pass that read them is to be
    /// trusted only then.
    pub fn check(&self) -> anyhow::Result<()> {
        match self
            .runs
            .as_ref()
            .and_then(|r| r.borrow().error().map(str::to_owned))
        {
            Some(e) => Err(anyhow::anyhow!(e)),
            None => Ok(()),
        }
    }
}

/// The activations' usage on `packages`, the ones a counter covers: the same for every model
/// and policy.
pub fn cells<'a>(an: &'a Analysis, acts: &'a Activations, packages: &[u32]) -> ActivationCells<'a> {
    ActivationCells {
        acts,
        runs: runs_of(an),
        packages: packages.to_vec(),
        gpu: None,
    }
}

type Reader<'a> = std::cell::RefCell<crate::join::activation_runs::RunReader<'a>>;

fn runs_of(an: &Analysis) -> Option<Reader<'_>> {
    an.joined
        .as_ref()
        .map(|j| std::cell::RefCell::new(j.usage.runs.reader()))
}

impl ActivationCells<'_> {
    /// The activations the cells are of.
    pub fn activations(&self) -> &Activations {
        self.acts
    }

    /// The grid the cells are on: a GPU's update windows, else the tables' intervals.
    pub fn grid<'g>(&'g self, an: &'g Analysis) -> &'g crate::replay::grid::Grid {
        self.gpu.map_or(&an.grid, |g| &g.grid)
    }

    /// The intervals an activation has usage in beyond its own window's (on a GPU: the rest
    /// of the sampling periods it ran in), sorted; empty on a CPU.
    pub fn beyond_window(&self, ai: usize) -> &[usize] {
        self.gpu
            .and_then(|g| g.usage.intervals_of.get(&ai))
            .map_or(&[], Vec::as_slice)
    }
}

/// Calls `f` with each interval activation `ai` overlaps, then (on a GPU) each other interval
/// it has usage in.
pub(crate) fn visit_intervals(
    an: &Analysis,
    cells: &ActivationCells<'_>,
    ai: usize,
    mut f: impl FnMut(usize),
) {
    let (start, end) = cells.activations().window(ai);
    let mut seen = None::<(usize, usize)>;
    cells.grid(an).split(start, end, |k, _, _| {
        seen = Some(seen.map_or((k, k), |(a, _)| (a, k)));
        f(k);
    });
    for &k in cells.beyond_window(ai) {
        if !seen.is_some_and(|(a, b)| (a..=b).contains(&k)) {
            f(k);
        }
    }
}

/// The activations' SM-busy time on GPU `device` (none where the trace has no reads of it).
pub fn gpu_cells<'a>(an: &'a Analysis, acts: &'a Activations, device: u32) -> ActivationCells<'a> {
    ActivationCells {
        acts,
        // Its presence is the device's own (`gpu::presence`), not the join's.
        runs: None,
        packages: Vec::new(),
        gpu: an.gpu.devices.get(&device),
    }
}

/// An activation's part of its container's dynamic energy in interval `iv`: its own usage `u`
/// through the model over the container's `cont`, else by CPU time (a model that weighs whole
/// targets only, like smartwatts). The activation's usage is part of its container's, so the
/// part is at most 1 but for rounding, and clamped to [0, 1].
pub(crate) fn share_of_container(
    model: &dyn Model,
    iv: &Interval,
    cg: u64,
    u: &Usage,
    cont: &Usage,
) -> f64 {
    let (wa, wc) = (
        model.cgroup_weight(iv, cg, u),
        model.cgroup_weight(iv, cg, cont),
    );
    let f = if wc > 0.0 {
        wa / wc
    } else if cont.cpu_ns > 0 {
        u.cpu_ns as f64 / cont.cpu_ns as f64
    } else {
        0.0
    };
    f.clamp(0.0, 1.0)
}

/// Per activation (in the order of `cells.activations()`), its dynamic energy; `cells` from
/// [`cells`] for the counter. The dynamic rows of `att` are those of every idle policy (only
/// their idle part differs): any policy's give the same joules.
pub fn dynamic(
    an: &Analysis,
    ds: &Dataset,
    model: &dyn Model,
    att: &Attributed<'_>,
    cells: &ActivationCells<'_>,
) -> Vec<Dynamic> {
    let n = cells.activations().len();
    if an.joined.is_none() {
        return vec![Dynamic::default(); n];
    };
    (0..n)
        .map(|ai| {
            let container = cells.activations().container(ai);
            let Some(cg) = container.and_then(|c| an.life.cgroup_id(c)) else {
                return Dynamic::default();
            };
            let mut out = Dynamic {
                dynamic_j: 0.0,
                complete: true,
            };
            visit_intervals(an, cells, ai, |k| {
                let iv = &*ds.interval(k);
                if !iv.energy_j.is_finite() {
                    out.complete = false;
                    return;
                }
                let Some(dj) = att.share(k, cg).map(|s| s.dynamic_j) else {
                    return;
                };
                if let (Some(u), Ok(ci)) = (
                    cells.get(ai, k),
                    iv.cgroups.binary_search_by_key(&cg, |(c, _)| *c),
                ) {
                    let f = share_of_container(model, iv, cg, &u, &iv.cgroups[ci].1);
                    out.dynamic_j += dj * f;
                }
            });
            out
        })
        .collect()
}

/// Per activation (in the order of `cells.activations()`), its idle energy under `att`'s
/// policy.
pub fn idle(
    an: &Analysis,
    ds: &Dataset,
    att: &Attributed<'_>,
    live: &Live,
    cells: &ActivationCells<'_>,
) -> Vec<f64> {
    let n = cells.activations().len();
    if an.joined.is_none() {
        return vec![0.0; n];
    };
    // The rows without the live containers' idle energy (`att.share`), added for the
    // intervals an activation overlaps only.
    (0..n)
        .map(|ai| {
            let container = cells.activations().container(ai);
            let Some(cg) = container.and_then(|c| an.life.cgroup_id(c)) else {
                return 0.0;
            };
            let mut idle_j = 0.0;
            visit_intervals(an, cells, ai, |k| {
                let iv = &*ds.interval(k);
                if !iv.energy_j.is_finite() {
                    return;
                }
                let mut own: Option<f64> = att.share(k, cg).map(|s| s.idle_j);
                for &c in live.of_cgroup(cg) {
                    if let Some(j) = att.container_idle(c, k) {
                        *own.get_or_insert(0.0) += j;
                    }
                }
                let Some(ij) = own else {
                    return;
                };
                let secs = iv.secs();
                let alive = live
                    .of_cgroup(cg)
                    .iter()
                    .find(|&&c| live.present(c, k))
                    .map_or(0.0, |&c| live.alive(c, k) * secs * 1e9);
                let presence = cells.presence(ai, k).unwrap_or(0.0);
                if alive > 0.0 {
                    idle_j += ij * (presence / alive).min(1.0);
                }
            });
            idle_j
        })
        .collect()
}
