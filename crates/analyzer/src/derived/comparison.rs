//! `activation_comparison`: each activation's energy under every model in one row per domain
//! and idle policy, with the spread between models (max − min, and relative to their mean).

use std::collections::BTreeMap;

use crate::analyze::Analysis;
use crate::attribution::Attribution;
use crate::tables::Table;

/// One activation's (domain, idle policy) → (model, joules), in order.
type SideBySide<'a> = BTreeMap<(&'a str, &'a str), Vec<(&'a str, f64)>>;

pub fn table(an: &Analysis, at: &Attribution) -> Table {
    let models: std::collections::BTreeSet<&str> =
        at.activations.keys().map(|(_, m, _)| m.as_str()).collect();
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
    // The store yields activation by activation: one activation's rows are gathered at a
    // time, so the table never holds every activation × key in a second map.
    let mut rows: SideBySide = BTreeMap::new();
    let mut current = None;
    let flush = |ai: usize, rows: &mut SideBySide, t: &mut Table| {
        let a = &an.life.activations[ai];
        for ((domain, policy), v) in std::mem::take(rows) {
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
    };
    for (ai, (domain, model, policy), j) in at.activations.iter() {
        if let Some(done) = current.filter(|&c| c != ai) {
            flush(done, &mut rows, &mut t);
        }
        current = Some(ai);
        rows.entry((domain.as_str(), policy))
            .or_default()
            .push((model.as_str(), j.dynamic_j + j.idle_j));
    }
    if let Some(ai) = current {
        flush(ai, &mut rows, &mut t);
    }
    t
}
