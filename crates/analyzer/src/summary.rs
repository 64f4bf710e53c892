//! The printed summary of one trace (and its `--summary-json` form): what was replayed, the
//! energy of each counter, where every joule of each domain went (functions, keep-alive, other
//! cgroups, unassigned: one line each, summing to the domain's total), each function's energy
//! by start type, and the models' held-out errors.

use std::path::{Path, PathBuf};

use crate::attribution::Attribution;
use crate::derived::accounting::FunctionSums;
use crate::derived::functions::FunctionLine;
use crate::derived::model_errors::ModelError;

/// Where a domain's joules went under the summary's model and idle policy.
#[derive(Debug, Clone, Default)]
pub struct Accounting {
    pub domain: String,
    pub functions_j: f64,
    pub keep_alive_j: f64,
    pub other_j: f64,
    pub unassigned_j: f64,
    pub total_j: f64,
}

/// What one trace gave, for the printed summary.
#[derive(Debug, Default)]
pub struct Summary {
    pub run: String,
    pub host: String,
    pub seconds: f64,
    /// (counter, known joules, measured, intervals missing).
    pub energy: Vec<(String, f64, bool, usize)>,
    /// The trace ended torn or was cut: what the analysis could not see.
    pub torn: Option<String>,
    /// Energy sources the recorder says it used.
    pub energy_sources: Vec<String>,
    pub activations: usize,
    pub cold: usize,
    pub prewarmed: usize,
    pub containers: usize,
    pub function_containers: usize,
    /// Perf records decoded, and samples among them.
    pub perf_records: u64,
    pub perf_samples: u64,
    pub models: Vec<ModelError>,
    /// How the models' errors were scored (`model_eval.protocol`).
    pub protocol: String,
    pub functions: Vec<FunctionLine>,
    pub accounting: Vec<Accounting>,
    pub summary_model: String,
    pub summary_policy: String,
    /// Steal and IRQ time taken out of tasks' CPU time (`replay::steal_irq`; JSON null when
    /// the trace had no readings), None for inputs without a perf replay.
    pub steal_irq: Option<serde_json::Value>,
    pub notes: Vec<String>,
    pub files: Vec<PathBuf>,
}

/// The model the printed summary shows: the ground truth when the trace has one, else
/// linear-offline (the best-informed of the offline models), else the first.
pub fn summary_model(models: &[ModelError]) -> String {
    let has = |m: &str| models.iter().any(|x| x.1 == m);
    ["truth", "linear-offline"]
        .into_iter()
        .find(|m| has(m))
        .map(str::to_owned)
        .or_else(|| models.first().map(|x| x.1.clone()))
        .unwrap_or_default()
}

/// The model domain `domain`'s accounting uses: `model` where the domain has it, else a GPU's
/// own (`sm-share`: a GPU has neither the CPU models nor their features).
pub fn domain_model<'a>(model: &'a str, domain: &str, keys: &[crate::attribution::Key]) -> &'a str {
    let has = |m: &str| keys.iter().any(|k| k.0 == domain && k.1 == m);
    if !has(model) && has("sm-share") {
        "sm-share"
    } else {
        model
    }
}

/// Where every joule went, per domain, under (model, policy): the functions' and keep-alive
/// sums from the written rows (`derived::accounting`), the rest from the attribution.
pub fn accounting(
    at: &Attribution,
    functions: &FunctionSums,
    model: &str,
    policy: &str,
    keys: &[crate::attribution::Key],
) -> Vec<Accounting> {
    at.total
        .iter()
        .map(|(domain, total)| {
            let model = domain_model(model, domain, keys);
            let mine =
                |k: &crate::attribution::Key| k.0 == *domain && k.1 == model && k.2 == policy;
            let (functions_j, keep_alive_j) = functions.get(domain).copied().unwrap_or_default();
            Accounting {
                domain: domain.clone(),
                functions_j,
                keep_alive_j,
                other_j: at
                    .other
                    .iter()
                    .filter(|(k, _)| mine(k))
                    .map(|(_, j)| j)
                    .sum(),
                unassigned_j: at
                    .unassigned
                    .iter()
                    .filter(|(k, _)| mine(k))
                    .map(|(_, j)| j)
                    .sum(),
                total_j: *total,
            }
        })
        .collect()
}

impl Summary {
    pub fn json(&self, path: &Path) -> serde_json::Value {
        serde_json::json!({
            "trace": path.display().to_string(),
            "run": self.run,
            "host": self.host,
            "seconds": self.seconds,
            "activations": self.activations,
            "cold": self.cold,
            "prewarmed": self.prewarmed,
            "containers": self.containers,
            "function_containers": self.function_containers,
            "perf_records": self.perf_records,
            "perf_samples": self.perf_samples,
            "torn": self.torn,
            "energy": self.energy.iter().map(|(n, j, m, missing)| serde_json::json!({"counter": n, "joules": j, "measured": m, "intervals_missing": missing})).collect::<Vec<_>>(),
            "accounting": self.accounting.iter().map(|a| serde_json::json!({"domain": a.domain, "model": self.summary_model, "idle_policy": self.summary_policy, "functions_j": a.functions_j, "keep_alive_j": a.keep_alive_j, "other_cgroups_j": a.other_j, "unassigned_j": a.unassigned_j, "total_j": a.total_j})).collect::<Vec<_>>(),
            "protocol": self.protocol,
            "models": self.models.iter().map(|(d, m, mae, mape)| serde_json::json!({"domain": d, "model": m, "mae_w": mae, "mape": mape})).collect::<Vec<_>>(),
            "steal_irq": self.steal_irq,
            "notes": self.notes,
            "files": self.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
        })
    }

    pub fn text(&self, path: &Path) -> String {
        // hwpc-sensor reports have no perf stream: saying "0 perf records" would read as a loss.
        let replayed = if self.perf_records > 0 {
            format!(
                "; {} perf records ({} samples) replayed",
                self.perf_records, self.perf_samples
            )
        } else {
            String::new()
        };
        let mut s = format!(
            "{}: run {} on {}, {:.1} s: {} activations ({} cold, {} prewarmed) in {} containers ({} function containers){replayed}\n",
            path.display(),
            self.run,
            self.host,
            self.seconds,
            self.activations,
            self.cold,
            self.prewarmed,
            self.containers,
            self.function_containers,
        );
        if let Some(t) = &self.torn {
            s += &format!("  TORN TRACE: {t}\n");
        }
        for (name, j, measured, missing) in &self.energy {
            s += &format!(
                "  energy {name}: {j:.3} J{}{}\n",
                if *measured {
                    ""
                } else {
                    " (SIMULATED, not a measurement)"
                },
                if *missing > 0 {
                    format!(" ({missing} intervals missing: not counted)")
                } else {
                    String::new()
                }
            );
        }
        if self.energy.is_empty() {
            s += &if self.torn.is_some() && !self.energy_sources.is_empty() {
                format!(
                    "  energy: the recorder used {}, but no reading reached the trace before it was cut: power and attribution tables are empty\n",
                    self.energy_sources.join(", ")
                )
            } else if self.torn.is_some() {
                "  energy: no readings before the trace was cut: power and attribution tables are empty\n".to_owned()
            } else {
                "  energy: none in this trace (recorded with --energy none, or no source found): power and attribution tables are empty\n".to_owned()
            };
        }
        let f = |x: Option<f64>| x.map_or("-".to_owned(), |v| format!("{v:.3}"));
        for a in &self.accounting {
            s += &format!(
                "  where the {} energy went (model {}, idle policy {}; J):\n",
                a.domain, self.summary_model, self.summary_policy
            );
            for (what, j) in [
                ("function activations", a.functions_j),
                (
                    "keep-alive (containers outside activations)",
                    a.keep_alive_j,
                ),
                ("other cgroups (root, daemons, system)", a.other_j),
                ("unassigned", a.unassigned_j),
            ] {
                // Sums of many rows leave rounding dust (-1e-12 J): not a negative share.
                let j = if j.abs() < 5e-4 { 0.0 } else { j };
                s += &format!("    {:<46} {j:>12.3}\n", format!("{} {what}", a.domain));
            }
            s += &format!(
                "    {:<46} {:>12.3}\n",
                format!("{} total", a.domain),
                a.total_j
            );
            let lines: Vec<&FunctionLine> = self
                .functions
                .iter()
                .filter(|l| l.domain == a.domain)
                .collect();
            if lines.is_empty() {
                continue;
            }
            s += &format!("  {} energy per function (J):\n", a.domain);
            s += "    domain   function                      acts  cold  prew   mean/act   cold/act   prew/act   warm/act  keep-alive  keep-alive share\n";
            for l in lines {
                let share = l
                    .keep_alive_j
                    .filter(|_| l.total_j > 0.0)
                    .map_or("-".to_owned(), |k| {
                        format!("{:.1} %", 100.0 * k / l.total_j)
                    });
                s += &format!(
                    "    {:<8} {:<28} {:>5} {:>5} {:>5} {:>10} {:>10} {:>10} {:>10} {:>11} {:>17}\n",
                    l.domain,
                    l.function,
                    l.activations,
                    l.cold,
                    l.prewarmed,
                    f(l.mean_j),
                    f(l.cold_j),
                    f(l.prewarmed_j),
                    f(l.warm_j),
                    f(l.keep_alive_j),
                    share
                );
            }
        }
        if !self.models.is_empty() {
            s += &format!(
                "  models (held-out error vs the energy readings, {}):\n",
                self.protocol
            );
            for (dom, m, mae, mape) in &self.models {
                s += &format!("    {dom:<12} {m:<15} MAE {mae:8.3} W  MAPE {mape:6.2} %\n");
            }
        }
        for n in &self.notes {
            s += &format!("  note: {n}\n");
        }
        s
    }
}
