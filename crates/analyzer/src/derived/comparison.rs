//! `activation_comparison`: each activation's energy under every model in one row per domain
//! and idle policy, with the spread between models (max − min, and relative to their mean).
//! From the written `activation_energy` rows, in polars: per (domain, idle policy), each
//! model's rows (one key at a time, `rows`) joined on the activation; rows by domain and idle
//! policy, then in the activations' order.

use std::path::{Path, PathBuf};

use anyhow::Result;
use polars::prelude::{
    col, DataFrame, IntoLazy, JoinArgs, JoinCoalesce, JoinType, MaintainOrderJoin,
};

use super::rows::{collect, domain_policies, f64s, of_key, scan, strs, Written};
use crate::attribution::Key;
use crate::tables::{Partition, Table};

/// Writes the table under `out` in partition `p`, flushed as it fills (an hour of a busy node
/// has about a million rows); returns its path.
pub fn write(w: &Written, run: &str, host: &str, out: &Path, p: &Partition) -> Result<PathBuf> {
    let mut models: Vec<&str> = w.keys.iter().map(|k| k.1.as_str()).collect();
    models.sort();
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
    for (domain, policy) in domain_policies(&w.keys) {
        let Some(df) = side_by_side(w, domain, policy, &models)? else {
            continue;
        };
        let (id, action) = (strs(&df, "activation_id")?, strs(&df, "action")?);
        let per_model: Vec<_> = models
            .iter()
            .map(|m| f64s(&df, &format!("{m}_j")))
            .collect::<Result<_>>()?;
        for i in 0..df.height() {
            t.push_key(run, host)
                .push_str(id.get(i).unwrap_or(""))
                .push_str(action.get(i).unwrap_or(""))
                .push_str(domain)
                .push_str(policy);
            let js: Vec<f64> = per_model.iter().filter_map(|c| c.get(i)).collect();
            for c in &per_model {
                t.push_f64(c.get(i));
            }
            let (lo, hi) = js
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &j| {
                    (l.min(j), h.max(j))
                });
            let mean = js.iter().sum::<f64>() / js.len().max(1) as f64;
            let spread = (!js.is_empty()).then_some(hi - lo);
            t.push_f64(spread)
                .push_f64(spread.filter(|_| mean > 0.0).map(|s| 100.0 * s / mean));
            t.flush_if_full(out, p)?;
        }
    }
    t.write(out, p)
}

/// The activations of (domain, policy) with a `<model>_j` column per model (null where a model
/// has no row for it), in the order they were written; None where no model has a row.
fn side_by_side(
    w: &Written,
    domain: &str,
    policy: &'static str,
    models: &[&str],
) -> Result<Option<DataFrame>> {
    let on = || [col("activation_id"), col("action")];
    let mut joined: Option<DataFrame> = None;
    for m in models {
        let key: Key = (domain.to_owned(), (*m).to_owned(), policy);
        if !w.keys.contains(&key) {
            continue;
        }
        let rows = of_key(scan(&w.activation_energy)?, &key).select([
            col("activation_id"),
            col("action"),
            col("energy_j").alias(format!("{m}_j")),
        ]);
        let next = match joined.take() {
            None => rows,
            Some(so_far) => {
                let mut args =
                    JoinArgs::new(JoinType::Full).with_coalesce(JoinCoalesce::CoalesceColumns);
                // The activations' order: the first model's, then any the others add.
                args.maintain_order = MaintainOrderJoin::LeftRight;
                so_far.lazy().join(rows, on(), on(), args)
            }
        };
        joined = Some(collect(next, "computing the activation_comparison table")?);
    }
    let Some(mut df) = joined else {
        return Ok(None);
    };
    for m in models {
        let name = format!("{m}_j");
        if df.column(&name).is_err() {
            df.with_column(polars::prelude::Column::full_null(
                name.as_str().into(),
                df.height(),
                &polars::prelude::DataType::Float64,
            ))?;
        }
    }
    Ok(Some(df))
}
