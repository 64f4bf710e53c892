//! `truth` on a GPU: the ground truth of a synthetic trace with GPUs (`pws-analyze synth
//! --gpus`), read from `pws.truth`'s `gpu` object: the device's idle power and each container
//! cgroup's watts at full SM use. Run beside `sm-share` so the tables show how far a single
//! watts-per-SM-second is from per-function ones.

use std::collections::HashMap;

use super::dataset::{Dataset, Interval};
use super::linear::FitError;
use super::model::Model;
use super::truth_metadata::TruthMetadata;
use crate::replay::cpu::Usage;

#[derive(Debug, Clone)]
pub struct GpuTruth {
    idle_w: f64,
    /// cgroup id → W at 100 % SM.
    w_at_full_sm: HashMap<u64, f64>,
    /// For usage of no known cgroup: the mean of the others.
    mean_w: f64,
}

impl GpuTruth {
    /// From the trace's truth (`truth_metadata`), for GPU `device`, if it has a GPU truth.
    pub fn new(truth: &TruthMetadata, device: u32) -> Option<Self> {
        let g = truth.gpu.as_ref()?;
        let idle_w = (*g.idle_w.get(&device.into())?)?;
        // Summed in cgroup order: a hash map's order would change the last digits run to run.
        let mean_w = if g.w_at_full_sm.is_empty() {
            0.0
        } else {
            g.w_at_full_sm.values().sum::<f64>() / g.w_at_full_sm.len() as f64
        };
        let w_at_full_sm: HashMap<u64, f64> =
            g.w_at_full_sm.iter().map(|(&k, &w)| (k, w)).collect();
        Some(Self {
            idle_w,
            w_at_full_sm,
            mean_w,
        })
    }
}

impl Model for GpuTruth {
    fn name(&self) -> String {
        "truth".into()
    }

    fn fit(&mut self, _ds: &Dataset, _train: &[usize]) -> Result<(), FitError> {
        Ok(())
    }

    fn predict_w(&self, iv: &Interval) -> f64 {
        let j: f64 = iv
            .cgroups
            .iter()
            .map(|(cg, u)| self.cgroup_weight(iv, *cg, u))
            .sum();
        self.idle_w + j / iv.secs()
    }

    fn idle_w(&self) -> f64 {
        self.idle_w
    }

    /// Joules: SM-busy seconds through the mean coefficient (usage of no known cgroup).
    fn weight(&self, u: &Usage, _secs: f64) -> f64 {
        self.mean_w * sm_busy_s(u)
    }

    fn cgroup_weight(&self, _iv: &Interval, cg: u64, u: &Usage) -> f64 {
        self.w_at_full_sm.get(&cg).copied().unwrap_or(self.mean_w) * sm_busy_s(u)
    }

    fn params(&self) -> Vec<(String, f64)> {
        let mut p = vec![("idle_w".into(), self.idle_w)];
        let mut cgs: Vec<_> = self.w_at_full_sm.iter().collect();
        cgs.sort_by_key(|(k, _)| **k);
        p.extend(
            cgs.into_iter()
                .map(|(k, w)| (format!("w_at_full_sm:{k}"), *w)),
        );
        p
    }
}

/// A GPU usage's SM-busy seconds (`gpu::utilization::SM_BUSY`).
fn sm_busy_s(u: &Usage) -> f64 {
    u.counters.first().copied().unwrap_or(0.0) / 1e9
}
