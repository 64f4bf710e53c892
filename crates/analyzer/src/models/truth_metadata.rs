//! What the `truth` models read of a synthetic trace's `pws.truth` metadata (`pws-analyze
//! synth`), parsed once when the trace is loaded. The metadata itself is not kept: besides
//! these coefficients it holds every activation's true energy (15 MB for an hour at 50
//! activations a second), which the tests read from the trace and the analysis never does.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The metadata key of a synthetic trace's truth.
pub const KEY: &str = "pws.truth";

/// The coefficients the `truth` models are built from; `Default` is a trace without a truth.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TruthMetadata {
    /// The CPU's true power model, where power is an exact function of what the trace records.
    pub cpu: Option<CpuCoefficients>,
    /// The GPUs' truth (`synth --gpus`).
    pub gpu: Option<GpuCoefficients>,
}

/// `idle_w + w_per_busy_cpu × busy CPU-seconds / s + j_per_instruction × instructions / s`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuCoefficients {
    pub idle_w: f64,
    pub w_per_busy_cpu: f64,
    pub j_per_instruction: f64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpuCoefficients {
    /// Device index → its idle power, W (None where its first entry has none).
    pub idle_w: BTreeMap<u64, Option<f64>>,
    /// Cgroup id → W at 100 % SM.
    pub w_at_full_sm: BTreeMap<u64, f64>,
}

// The JSON's shape, the CPUs' part and the GPUs' read apart (one ill-formed does not take the
// other). Fields not named here (every activation's truth, the scenario) are skipped by the
// parser without being built.
#[derive(Deserialize)]
struct CpuJson {
    exact_in_features: Option<serde_json::Value>,
    idle_w: Option<serde_json::Value>,
    w_per_busy_cpu: Option<serde_json::Value>,
    j_per_instruction: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct GpuPart {
    gpu: Option<GpuJson>,
}

#[derive(Deserialize)]
struct GpuJson {
    devices: Option<Vec<serde_json::Value>>,
    cgroup_w_at_full_sm: Option<BTreeMap<String, serde_json::Value>>,
}

impl TruthMetadata {
    /// Takes the truth out of a trace's metadata. A truth that does not parse, or lacks a
    /// coefficient, gives no `truth` model (never one with a guessed coefficient).
    pub fn take(metadata: &mut Vec<(String, String)>) -> Self {
        let Some(at) = metadata.iter().position(|(k, _)| k == KEY) else {
            return Self::default();
        };
        let (_, text) = metadata.remove(at);
        Self::parse(&text)
    }

    fn parse(text: &str) -> Self {
        let f = |v: &Option<serde_json::Value>| v.as_ref().and_then(serde_json::Value::as_f64);
        let cpu = serde_json::from_str::<CpuJson>(text).ok().and_then(|j| {
            // Power outside what the trace records (DVFS, no counters): no model can be the
            // truth.
            if j.exact_in_features == Some(serde_json::Value::Bool(false)) {
                return None;
            }
            Some(CpuCoefficients {
                idle_w: f(&j.idle_w)?,
                w_per_busy_cpu: f(&j.w_per_busy_cpu)?,
                j_per_instruction: f(&j.j_per_instruction)?,
            })
        });
        let gpu = serde_json::from_str::<GpuPart>(text).ok().and_then(|j| {
            let g = j.gpu?;
            let mut idle_w = BTreeMap::new();
            // A device's first entry counts.
            for d in g.devices? {
                if let Some(i) = d["index"].as_u64() {
                    idle_w.entry(i).or_insert(d["idle_w"].as_f64());
                }
            }
            let w_at_full_sm = g
                .cgroup_w_at_full_sm?
                .iter()
                .filter_map(|(k, w)| Some((k.parse().ok()?, w.as_f64()?)))
                .collect();
            Some(GpuCoefficients {
                idle_w,
                w_at_full_sm,
            })
        });
        Self { cpu, gpu }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(truth: &str) -> Vec<(String, String)> {
        vec![("run".into(), "synth".into()), (KEY.into(), truth.into())]
    }

    #[test]
    fn takes_the_coefficients_and_drops_the_rest() {
        let mut m = meta(
            r#"{"idle_w": 20, "w_per_busy_cpu": 8.5, "j_per_instruction": 1e-9,
                "exact_in_features": true, "activation_dynamic_j": {"a": 1.0},
                "gpu": {"devices": [{"index": 0, "idle_w": 30.0}, {"index": 1}],
                        "cgroup_w_at_full_sm": {"42": 150.0, "x": 1.0},
                        "activation_dynamic_j": {"a": 2.0}}}"#,
        );
        let t = TruthMetadata::take(&mut m);
        assert_eq!(m, vec![("run".to_owned(), "synth".to_owned())]);
        assert_eq!(
            t.cpu,
            Some(CpuCoefficients {
                idle_w: 20.0,
                w_per_busy_cpu: 8.5,
                j_per_instruction: 1e-9
            })
        );
        let g = t.gpu.unwrap();
        assert_eq!(g.idle_w, BTreeMap::from([(0, Some(30.0)), (1, None)]));
        assert_eq!(g.w_at_full_sm, BTreeMap::from([(42, 150.0)]));
    }

    #[test]
    fn no_cpu_truth_unless_power_is_exact_in_the_features_and_complete() {
        let not_exact = r#"{"idle_w": 20, "w_per_busy_cpu": 8.5, "j_per_instruction": 1e-9,
                            "exact_in_features": false}"#;
        assert_eq!(TruthMetadata::take(&mut meta(not_exact)).cpu, None);
        let missing = r#"{"idle_w": 20, "w_per_busy_cpu": 8.5}"#;
        assert_eq!(TruthMetadata::take(&mut meta(missing)).cpu, None);
        let not_a_number = r#"{"idle_w": "20", "w_per_busy_cpu": 8.5, "j_per_instruction": 0}"#;
        assert_eq!(TruthMetadata::take(&mut meta(not_a_number)).cpu, None);
        assert_eq!(
            TruthMetadata::take(&mut meta("{not json")),
            TruthMetadata::default()
        );
        // A GPU part of the wrong shape takes the GPUs' truth, not the CPUs'.
        let bad_gpu = r#"{"idle_w": 20, "w_per_busy_cpu": 8.5, "j_per_instruction": 0,
                         "gpu": {"devices": {}, "cgroup_w_at_full_sm": {}}}"#;
        let t = TruthMetadata::take(&mut meta(bad_gpu));
        assert!(t.cpu.is_some() && t.gpu.is_none());
        assert_eq!(
            TruthMetadata::take(&mut Vec::new()),
            TruthMetadata::default()
        );
    }
}
