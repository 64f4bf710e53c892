//! `activation_comparison`: each activation's energy under every model in one row per domain
//! and idle policy, with the spread between models (max − min, and relative to their mean).

use std::collections::BTreeMap;

use crate::analyze::Analysis;
use crate::attribution::Attribution;
use crate::tables::Table;

/// (activation, domain, idle policy) → (model, joules).
type SideBySide<'a> = BTreeMap<(usize, &'a str, &'a str), Vec<(&'a str, f64)>>;

pub fn table(an: &Analysis, at: &Attribution) -> Table {
    let mut rows: SideBySide = BTreeMap::new();
    for ((ai, (domain, model, policy)), j) in &at.activations {
        rows.entry((*ai, domain.as_str(), policy))
            .or_default()
            .push((model.as_str(), j.dynamic_j + j.idle_j));
    }
    let mut models: Vec<&str> = rows
        .values()
        .flat_map(|v| v.iter().map(|(m, _)| *m))
        .collect();
    models.sort_unstable();
    models.dedup();
    let mut t = Table::keyed("activation_comparison")
        .str("activation_id")
        .str("action")
        .str("domain")
        .str("idle_policy");
    for m in &models {
        t = t.f64(&format!("{m}_j"));
    }
    t = t.f64("spread_j").f64("spread_pct");
    let (run, host) = (an.run.as_str(), an.host.as_str());
    for ((ai, domain, policy), v) in &rows {
        let a = &an.life.activations[*ai];
        t.push_key(run, host)
            .push_str(&a.record.activation_id)
            .push_str(&a.record.action)
            .push_str(domain)
            .push_str(policy);
        for m in &models {
            t.push_f64(v.iter().find(|(n, _)| n == m).map(|(_, j)| *j));
        }
        let (lo, hi) = v
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &(_, j)| {
                (l.min(j), h.max(j))
            });
        let mean = v.iter().map(|(_, j)| j).sum::<f64>() / v.len().max(1) as f64;
        t.push_f64(Some(hi - lo))
            .push_f64((mean > 0.0).then(|| 100.0 * (hi - lo) / mean));
    }
    t
}
