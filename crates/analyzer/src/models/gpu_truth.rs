//! `truth` on a GPU: the ground truth of a synthetic trace with GPUs (`pws-analyze synth
//! --gpus`), read from `pws.truth`'s `gpu` object: the device's idle power and each container
//! cgroup's watts at full SM use. Run beside `sm-share` so the tables show how far a single
//! watts-per-SM-second is from per-function ones.

use std::collections::HashMap;

use super::dataset::{Dataset, Interval};
use super::linear::FitError;
use super::model::Model;
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
    /// From the trace's `pws.truth` metadata, for GPU `device`, if it has a GPU truth.
    pub fn from_metadata(metadata: &[(String, String)], device: u32) -> Option<Self> {
        let text = metadata.iter().find(|(k, _)| k == "pws.truth")?.1.as_str();
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        let g = v.get("gpu")?;
        let idle_w = g["devices"]
            .as_array()?
            .iter()
            .find(|d| d["index"].as_u64() == Some(device.into()))?["idle_w"]
            .as_f64()?;
        let w_at_full_sm: HashMap<u64, f64> = g["cgroup_w_at_full_sm"]
            .as_object()?
            .iter()
            .filter_map(|(k, w)| Some((k.parse().ok()?, w.as_f64()?)))
            .collect();
        let mean_w = if w_at_full_sm.is_empty() {
            0.0
        } else {
            w_at_full_sm.values().sum::<f64>() / w_at_full_sm.len() as f64
        };
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
