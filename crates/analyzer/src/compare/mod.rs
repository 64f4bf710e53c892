//! `pws-analyze compare RESULTS --by COLUMN[,COLUMN…] [--baseline VALUE]`: runs of a sweep
//! compared per function, with 95 % intervals that count runs, not only activations, as the
//! unit where a group has several.
//!
//! `dataset` scans the written tables lazily, `groups` aggregates them in polars,
//! `intervals` makes the intervals, `report` prints and writes the `comparison` table.

pub mod dataset;
pub mod groups;
pub mod intervals;
pub mod report;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;

use dataset::Results;
use groups::{Group, Selection};
use intervals::{change_pct, Estimate, Sample};

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The directory `pws-analyze … -o DIR` wrote (one run or many, e.g. a sweep's).
    pub results: PathBuf,
    /// The columns that make a group (comma-separated): manifest labels such as `config` or
    /// a sweep's settings, or any column of the `activations` table.
    #[arg(long, value_delimiter = ',', required = true)]
    pub by: Vec<String>,
    /// The group the others are compared with: its value of `--by` (several columns: their
    /// values, comma-separated, in the same order).
    #[arg(long, value_name = "VALUE")]
    pub baseline: Option<String>,
    /// The model whose energy is compared [default: `truth` where the dataset has it, else
    /// `linear-offline`, else the first].
    #[arg(long)]
    pub model: Option<String>,
    /// The idle policy [default: `by-lifetime` where the dataset has it, else the first].
    #[arg(long)]
    pub idle_policy: Option<String>,
    /// Only this energy domain (package, dram, psys, …) [default: every domain, each apart].
    #[arg(long)]
    pub domain: Option<String>,
    /// Write the `comparison` table here [default: RESULTS/comparison/by=COLUMNS.parquet].
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print the comparison as JSON on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Over what the intervals of a function's per-activation means are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// Every group has at least two runs: the runs' means are the sample.
    Run,
    /// Some group has one run: its activations are the sample (run-to-run variation unseen).
    Activation,
}

/// One row of the comparison.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub domain: String,
    pub function: String,
    pub namespace: String,
    pub action: String,
    /// The `by` columns' values.
    pub group: Vec<String>,
    pub baseline: bool,
    pub runs: u64,
    pub activations: u64,
    pub activations_with_energy: u64,
    pub cold_starts: u64,
    pub successes: u64,
    pub unit: Unit,
    pub energy_per_activation_j: Option<Estimate>,
    pub cold_energy_mean_j: Option<Estimate>,
    pub cold_share: Option<Estimate>,
    pub keep_alive_j_per_hour: Option<Estimate>,
    pub energy_per_success_j: Option<Estimate>,
    pub total_j: Option<Estimate>,
    /// Against the baseline's row of the same function and domain, in percent.
    pub energy_per_activation_change_pct: Option<Estimate>,
    pub energy_per_success_change_pct: Option<Estimate>,
}

/// The whole comparison: what it is over and its rows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Comparison {
    pub model: String,
    pub idle_policy: String,
    pub by: Vec<String>,
    pub baseline: Option<Vec<String>>,
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

pub fn run(args: &CompareArgs) -> Result<ExitCode> {
    let ds = Results::open(&args.results)?;
    let cmp = compare(&ds, args)?;
    let out = args.output.clone().unwrap_or_else(|| {
        args.results
            .join("comparison")
            .join(format!("by={}.parquet", args.by.join("+")))
    });
    report::write_parquet(&cmp, &out)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&cmp)?);
    } else {
        print!("{}", report::text(&cmp));
        println!("written: {}", out.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Picks the model and policy, aggregates, and makes every interval and change.
pub fn compare(ds: &Results, args: &CompareArgs) -> Result<Comparison> {
    if args.by.iter().any(|c| c.trim().is_empty()) {
        bail!("--by: an empty column name");
    }
    let (models, policies) = groups::models_and_policies(ds)?;
    let model = pick(
        &models,
        args.model.as_deref(),
        &["truth", "linear-offline"],
        "model",
    )?;
    let idle_policy = pick(
        &policies,
        args.idle_policy.as_deref(),
        &["by-lifetime"],
        "idle policy",
    )?;
    let sel = Selection {
        model: model.clone(),
        idle_policy: idle_policy.clone(),
        domain: args.domain.clone(),
        by: args.by.clone(),
    };
    let gs = groups::groups(ds, &sel)?;
    if gs.is_empty() {
        bail!(
            "no activation has energy under model {model}, idle policy {idle_policy}{}",
            args.domain
                .as_ref()
                .map(|d| format!(", domain {d}"))
                .unwrap_or_default()
        );
    }
    let baseline = match &args.baseline {
        None => None,
        Some(v) => {
            let key: Vec<String> = if args.by.len() == 1 {
                vec![v.clone()]
            } else {
                v.split(',').map(|s| s.trim().to_owned()).collect()
            };
            if key.len() != args.by.len() {
                bail!(
                    "--baseline {v}: {} values for {} --by columns ({})",
                    key.len(),
                    args.by.len(),
                    args.by.join(",")
                );
            }
            if !gs.iter().any(|g| g.key == key) {
                let mut have: Vec<String> = gs.iter().map(|g| g.key.join(",")).collect();
                have.sort();
                have.dedup();
                bail!(
                    "--baseline {v}: no group has {} = {v} (groups: {})",
                    args.by.join(","),
                    have.join("; ")
                );
            }
            Some(key)
        }
    };
    let mut notes = Vec::new();
    let mut rows = rows(&gs, baseline.as_ref(), &mut notes);
    rows.sort_by(|a, b| {
        (&a.domain, &a.function)
            .cmp(&(&b.domain, &b.function))
            .then_with(|| natural(&a.group, &b.group))
    });
    Ok(Comparison {
        model,
        idle_policy,
        by: args.by.clone(),
        baseline,
        rows,
        notes,
    })
}

/// Group values in the order a reader expects: `500ms` before `2s` before `10s`, `2` before
/// `10`; values that are neither durations nor numbers as text, after those that are.
fn natural(a: &[String], b: &[String]) -> std::cmp::Ordering {
    let key = |v: &str| {
        humantime::parse_duration(v)
            .map(|d| d.as_secs_f64())
            .ok()
            .or_else(|| v.parse::<f64>().ok().filter(|x| x.is_finite()))
    };
    for (x, y) in a.iter().zip(b) {
        let o = match (key(x), key(y)) {
            (Some(p), Some(q)) => p.total_cmp(&q),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        }
        .then_with(|| x.cmp(y));
        if o.is_ne() {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

/// `asked` if the dataset has it, else the first of `preferred` it has, else its first.
fn pick(have: &[String], asked: Option<&str>, preferred: &[&str], what: &str) -> Result<String> {
    if let Some(a) = asked {
        if have.iter().any(|h| h == a) {
            return Ok(a.to_owned());
        }
        bail!(
            "no {what} `{a}` in the dataset (it has: {})",
            have.join(", ")
        );
    }
    preferred
        .iter()
        .find(|p| have.iter().any(|h| h == *p))
        .map(|p| p.to_string())
        .or_else(|| have.first().cloned())
        .ok_or_else(|| anyhow::anyhow!("the dataset's activation_energy table has no {what}"))
}

fn rows(gs: &[Group], baseline: Option<&Vec<String>>, notes: &mut Vec<String>) -> Vec<Row> {
    let same_fn = |a: &Group, b: &Group| {
        a.domain == b.domain && a.namespace == b.namespace && a.action == b.action
    };
    let mut out = Vec::with_capacity(gs.len());
    let mut single_run = Vec::new();
    for g in gs {
        // The unit is the same for every group of a function, so changes compare like with like.
        let unit = if gs.iter().filter(|o| same_fn(o, g)).all(|o| o.runs >= 2) {
            Unit::Run
        } else {
            Unit::Activation
        };
        let function = crate::derived::functions::function_name(&g.namespace, &g.action);
        if unit == Unit::Activation && !single_run.contains(&function) {
            single_run.push(function.clone());
        }
        let per_activation = |k: usize, acts: Option<Sample>| match unit {
            Unit::Run => g.per_run[k],
            Unit::Activation => acts,
        };
        let energy = per_activation(0, g.energy);
        let per_success = g.per_run[4];
        let base = baseline.and_then(|b| gs.iter().find(|o| same_fn(o, g) && &o.key == b));
        let base_energy = base.and_then(|b| match unit {
            Unit::Run => b.per_run[0],
            Unit::Activation => b.energy,
        });
        // Every figure here is an energy, a rate of energy or a share: never below 0.
        let est = |s: Option<Sample>| s.map(|s| s.estimate().non_negative());
        let is_baseline = baseline == Some(&g.key);
        // The baseline against itself: no change, and no interval to give it.
        let change = |g: Option<Sample>, b: Option<Sample>| {
            if is_baseline {
                g.map(|_| Estimate {
                    value: 0.0,
                    lo: None,
                    hi: None,
                })
            } else {
                change_pct(&g?, &b?)
            }
        };
        out.push(Row {
            domain: g.domain.clone(),
            function,
            namespace: g.namespace.clone(),
            action: g.action.clone(),
            group: g.key.clone(),
            baseline: is_baseline,
            runs: g.runs,
            activations: g.activations,
            activations_with_energy: g.with_energy,
            cold_starts: g.cold_starts,
            successes: g.successes,
            unit,
            energy_per_activation_j: est(energy),
            cold_energy_mean_j: est(per_activation(1, g.cold_energy)),
            cold_share: g.per_run[2].map(|s| s.estimate().share()),
            keep_alive_j_per_hour: est(g.per_run[3]),
            energy_per_success_j: est(per_success),
            total_j: est(g.per_run[5]),
            energy_per_activation_change_pct: change(energy, base_energy),
            energy_per_success_change_pct: change(per_success, base.and_then(|b| b.per_run[4])),
        });
    }
    if !single_run.is_empty() {
        notes.push(format!(
            "{}: some group has a single run, so the intervals of the per-activation means are over its activations and do not see run-to-run variation; repeat each point at least twice for intervals over runs",
            single_run.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_sort_as_durations_and_numbers() {
        let mut v: Vec<Vec<String>> = ["10s", "2s", "500ms", "x", "1m"]
            .iter()
            .map(|s| vec![s.to_string()])
            .collect();
        v.sort_by(|a, b| natural(a, b));
        assert_eq!(v.concat(), ["500ms", "2s", "10s", "1m", "x"]);
        let mut n: Vec<Vec<String>> = ["10", "2", "2.5"]
            .iter()
            .map(|s| vec![s.to_string()])
            .collect();
        n.sort_by(|a, b| natural(a, b));
        assert_eq!(n.concat(), ["2", "2.5", "10"]);
    }
}
