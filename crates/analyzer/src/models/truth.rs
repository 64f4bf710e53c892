//! `truth`: the ground truth of a synthetic trace (`pws-analyze synth`), read from its
//! `pws.truth` metadata (`truth_metadata`), run as a model beside the others so every table shows how far each
//! model is from it.

use super::dataset::{Dataset, Interval};
use super::linear::FitError;
use super::model::Model;
use super::truth_metadata::TruthMetadata;
use crate::replay::cpu::Usage;

#[derive(Debug, Clone)]
pub struct Truth {
    idle_w: f64,
    w_per_busy_cpu: f64,
    j_per_instruction: f64,
    instructions: Option<usize>,
}

impl Truth {
    /// From the trace's truth (`truth_metadata`), if it has one for the CPUs.
    pub fn new(truth: &TruthMetadata, ds: &Dataset) -> Option<Self> {
        let c = truth.cpu?;
        Some(Self {
            idle_w: c.idle_w,
            w_per_busy_cpu: c.w_per_busy_cpu,
            j_per_instruction: c.j_per_instruction,
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
