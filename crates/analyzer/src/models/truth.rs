//! `truth`: the ground truth of a synthetic trace (`pws-analyze synth`), read from its
//! `pws.truth` metadata, run as a model beside the others so every table shows how far each
//! model is from it.

use super::dataset::{Dataset, Interval};
use super::linear::FitError;
use super::model::Model;
use crate::replay::cpu::Usage;

#[derive(Debug, Clone)]
pub struct Truth {
    idle_w: f64,
    w_per_busy_cpu: f64,
    j_per_instruction: f64,
    instructions: Option<usize>,
}

impl Truth {
    /// From the trace's `pws.truth` metadata, if it has one.
    pub fn from_metadata(metadata: &[(String, String)], ds: &Dataset) -> Option<Self> {
        let text = metadata.iter().find(|(k, _)| k == "pws.truth")?.1.as_str();
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        // Power outside what the trace records (DVFS, no counters): no model can be the truth.
        if v["exact_in_features"] == serde_json::Value::Bool(false) {
            return None;
        }
        Some(Self {
            idle_w: v["idle_w"].as_f64()?,
            w_per_busy_cpu: v["w_per_busy_cpu"].as_f64()?,
            j_per_instruction: v["j_per_instruction"].as_f64()?,
            instructions: ds.column("instructions"),
        })
    }
}

impl Model for Truth {
    fn name(&self) -> String {
        "truth".into()
    }

    fn fit(&mut self, _ds: &Dataset, _train: &[usize]) -> Result<(), FitError> {
        Ok(())
    }

    fn predict_w(&self, iv: &Interval) -> f64 {
        self.idle_w + self.weight(&iv.total, iv.secs()) / iv.secs()
    }

    fn idle_w(&self) -> f64 {
        self.idle_w
    }

    /// Joules: busy CPU-seconds and instructions through the true coefficients.
    fn weight(&self, u: &Usage, _secs: f64) -> f64 {
        let instr = self
            .instructions
            .and_then(|i| u.counters.get(i))
            .copied()
            .unwrap_or(0.0);
        self.w_per_busy_cpu * u.cpu_ns as f64 / 1e9 + self.j_per_instruction * instr
    }

    fn params(&self) -> Vec<(String, f64)> {
        vec![
            ("idle_w".into(), self.idle_w),
            ("w_per_busy_cpu".into(), self.w_per_busy_cpu),
            ("j_per_instruction".into(), self.j_per_instruction),
        ]
    }
}
