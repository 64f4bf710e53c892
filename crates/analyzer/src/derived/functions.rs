//! `functions`: per function (namespace and action, as in `activations`), domain, model and
//! idle policy: how many activations and of which start, their energy (mean, p50, p99, by
//! start), and the keep-alive energy of its containers. Each activation counts once per domain
//! (its energy is summed over the domain's packages). Cold, prewarmed and warm starts are kept
//! apart (`join::cold_start`).

use std::collections::{BTreeMap, BTreeSet};

use crate::analyze::Analysis;
use crate::attribution::{Attribution, Key};
use crate::join::cold_start::Start;
use crate::tables::Table;

/// One function's line in the printed summary (one model, one idle policy, one domain).
#[derive(Debug, Clone)]
pub struct FunctionLine {
    pub function: String,
    pub domain: String,
    pub activations: usize,
    pub cold: usize,
    pub prewarmed: usize,
    pub mean_j: Option<f64>,
    pub cold_j: Option<f64>,
    pub prewarmed_j: Option<f64>,
    pub warm_j: Option<f64>,
    pub keep_alive_j: Option<f64>,
    /// Its activations' energy plus its keep-alive.
    pub total_j: f64,
}

/// The name of a function in every table and the summary: `namespace/action`.
pub fn function_name(namespace: &str, action: &str) -> String {
    if namespace.is_empty() {
        action.to_owned()
    } else {
        format!("{namespace}/{action}")
    }
}

/// The table, and the summary's lines for `summary` (model, policy) in every domain.
pub fn table(an: &Analysis, at: &Attribution, summary: (&str, &str)) -> (Table, Vec<FunctionLine>) {
    let mut t = Table::keyed("functions")
        .str("function")
        .str("namespace")
        .str("action")
        .str("domain")
        .str("model")
        .str("idle_policy")
        .u64("activations")
        .u64("activations_with_energy")
        .u64("cold_starts")
        .u64("prewarmed_starts")
        .u64("warm_starts")
        .f64("energy_mean_j")
        .f64("energy_mean_lo_j")
        .f64("energy_mean_hi_j")
        .f64("energy_p50_j")
        .f64("energy_p99_j")
        .f64("cold_energy_mean_j")
        .f64("prewarmed_energy_mean_j")
        .f64("warm_energy_mean_j")
        .f64("keep_alive_j");
    // (namespace, action) → activation indices.
    let mut fns: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (ai, a) in an.life.activations.iter().enumerate() {
        fns.entry((a.record.namespace.clone(), a.record.action.clone()))
            .or_default()
            .push(ai);
    }
    for c in &an.life.containers {
        if !c.action.is_empty() {
            fns.entry((c.namespace.clone(), c.action.clone()))
                .or_default();
        }
    }
    let keys: BTreeSet<&Key> = at
        .activations
        .keys()
        .chain(at.keep_alive.keys().map(|(_, k)| k))
        .collect();
    let mut keep: BTreeMap<((String, String), &Key), f64> = BTreeMap::new();
    for ((ci, k), j) in &at.keep_alive {
        let c = &an.life.containers[*ci];
        *keep
            .entry(((c.namespace.clone(), c.action.clone()), k))
            .or_default() += j;
    }
    let (run, host) = (an.run.as_str(), an.host.as_str());
    let mut lines = Vec::new();
    for key in keys {
        let (domain, model, policy) = key;
        for ((ns, action), acts) in &fns {
            let mut js: Vec<(f64, Start)> = acts
                .iter()
                .filter_map(|&ai| {
                    let j = at.activations.get(ai, key)?;
                    Some((
                        j.dynamic_j + j.idle_j,
                        Start::of(an.life.activations[ai].start_type),
                    ))
                })
                .collect();
            // The mean's interval (`attribution::uncertainty::mean_bounds`).
            let mean_bounds = crate::attribution::uncertainty::mean_bounds(
                acts.iter().filter_map(|&ai| at.activations.get(ai, key)),
            );
            let ka = keep.get(&((ns.clone(), action.clone()), key)).copied();
            if js.is_empty() && ka.is_none() {
                continue;
            }
            js.sort_by(|a, b| a.0.total_cmp(&b.0));
            let count = |s: Start| {
                acts.iter()
                    .filter(|&&ai| Start::of(an.life.activations[ai].start_type) == s)
                    .count()
            };
            let mean = |f: &dyn Fn(Start) -> bool| {
                let v: Vec<f64> = js.iter().filter(|x| f(x.1)).map(|x| x.0).collect();
                (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
            };
            let q = |p: f64| {
                js.get(((js.len() as f64 - 1.0) * p).round() as usize)
                    .map(|x| x.0)
            };
            let name = function_name(ns, action);
            let all = mean(&|_| true);
            let (cold, pre, warm) = (
                mean(&|s| s == Start::Cold),
                mean(&|s| s == Start::Prewarmed),
                mean(&|s| s == Start::Warm),
            );
            t.push_key(run, host)
                .push_str(&name)
                .push_str(ns)
                .push_str(action)
                .push_str(domain)
                .push_str(model)
                .push_str(policy)
                .push_u64(Some(acts.len() as u64))
                .push_u64(Some(js.len() as u64))
                .push_u64(Some(count(Start::Cold) as u64))
                .push_u64(Some(count(Start::Prewarmed) as u64))
                .push_u64(Some(count(Start::Warm) as u64))
                .push_f64(all)
                .push_f64(mean_bounds.map(|b| b.0))
                .push_f64(mean_bounds.map(|b| b.1))
                .push_f64(q(0.5))
                .push_f64(q(0.99))
                .push_f64(cold)
                .push_f64(pre)
                .push_f64(warm)
                .push_f64(ka);
            if (model.as_str(), *policy) == summary {
                lines.push(FunctionLine {
                    function: name,
                    domain: domain.clone(),
                    activations: acts.len(),
                    cold: count(Start::Cold),
                    prewarmed: count(Start::Prewarmed),
                    mean_j: all,
                    cold_j: cold,
                    prewarmed_j: pre,
                    warm_j: warm,
                    keep_alive_j: ka,
                    total_j: js.iter().map(|x| x.0).sum::<f64>() + ka.unwrap_or(0.0),
                });
            }
        }
    }
    (t, lines)
}
