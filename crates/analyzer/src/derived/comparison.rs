//! `activation_comparison`: each activation's energy under every model in one row per domain
//! and idle policy, with the spread between models (max − min, and relative to their mean).
//! From the written `activation_energy` rows, in polars: per (domain, idle policy), each
//! model's rows (one key at a time, `rows`) joined on the activation — put beside the others
//! where its activations are theirs, in their order, as they are for every model of one trace;
//! rows by domain and idle policy, then in the activations' order.

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
        // Each (domain, policy) its own row groups: its rows leave memory before the next one's
        // are read and put side by side.
        t.end_row_group(out, p)?;
        crate::memory::release_free_heap();
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
    // Whether `joined`'s (activation, action) keys are distinct and never null: then a model
    // with the very same keys in the same order (every model of one trace has: its rows are
    // written activation by activation) is its column put beside the others, which is what
    // the join gives, without the join's hash tables and copies (on an hour of a busy node
    // they were the analysis's peak, ~150 MB).
    let mut plain_keys = false;
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
        let rows = collect(
            rows,
            "reading activation_energy for the activation_comparison table",
        )?;
        // polars decodes on its own threads, each from its own malloc arena, and what one
        // collect frees stays in those arenas: given back here, the arenas' high-water marks
        // do not add up (on an hour's trace this table's peak was 35 MiB higher).
        crate::memory::release_free_heap();
        joined = Some(match joined.take() {
            None => {
                plain_keys = distinct_keys(&rows)?;
                rows
            }
            Some(mut so_far) if plain_keys && same_keys(&so_far, &rows)? => {
                so_far.with_column(rows.column(&format!("{m}_j"))?.clone())?;
                so_far
            }
            Some(so_far) => {
                let mut args =
                    JoinArgs::new(JoinType::Full).with_coalesce(JoinCoalesce::CoalesceColumns);
                // The activations' order: the first model's, then any the others add.
                args.maintain_order = MaintainOrderJoin::LeftRight;
                let next = so_far.lazy().join(rows.lazy(), on(), on(), args);
                let df = collect(next, "computing the activation_comparison table")?;
                plain_keys = distinct_keys(&df)?;
                df
            }
        });
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

/// The (activation, action) keys of `df` are never null and each is there once. Checked on
/// a 64-bit hash of each pair, in a set: polars' `is_unique` encoded and grouped the rows,
/// this table's peak on an hour's trace (~25 MiB). Two pairs with one hash read as a repeat,
/// which only sends the table through the join.
fn distinct_keys(df: &DataFrame) -> Result<bool> {
    let (ids, actions) = (strs(df, "activation_id")?, strs(df, "action")?);
    if ids.null_count() > 0 || actions.null_count() > 0 {
        return Ok(false);
    }
    let mut seen: rustc_hash::FxHashSet<u64> =
        rustc_hash::FxHashSet::with_capacity_and_hasher(df.height(), Default::default());
    let mut pair = Vec::new();
    for (id, action) in ids.iter().zip(actions.iter()) {
        // 0xff is in no UTF-8 text: the pair's bytes say where the id ends.
        pair.clear();
        pair.extend_from_slice(id.unwrap_or("").as_bytes());
        pair.push(0xff);
        pair.extend_from_slice(action.unwrap_or("").as_bytes());
        if !seen.insert(twox_hash::XxHash3_64::oneshot(&pair)) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `a` and `b` have the same (activation, action) keys in the same order, none null.
fn same_keys(a: &DataFrame, b: &DataFrame) -> Result<bool> {
    for c in ["activation_id", "action"] {
        // `equals` is false where either has a null.
        if !a.column(c)?.equals(b.column(c)?) {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::Table;

    type Rows<'a> = &'a [(&'a str, &'a str, &'a str, f64)];

    /// `activation_energy` rows (model, activation, action, joules) of domain "d", policy
    /// "by-lifetime", written as the analysis writes them.
    fn written(dir: &Path, rows: Rows<'_>) -> Written {
        let mut t = Table::keyed("activation_energy")
            .str("activation_id")
            .str("action")
            .str("domain")
            .str("model")
            .str("idle_policy")
            .f64("energy_j");
        let mut keys = Vec::new();
        for &(m, id, action, j) in rows {
            t.push_key("r", "h")
                .push_str(id)
                .push_str(action)
                .push_str("d")
                .push_str(m)
                .push_str("by-lifetime")
                .push_f64(Some(j));
            keys.push(("d".to_owned(), m.to_owned(), "by-lifetime"));
        }
        keys.sort();
        keys.dedup();
        let p = Partition {
            run: "r".into(),
            host: "h".into(),
            part: "part".into(),
            labels: Vec::new(),
        };
        Written {
            activation_energy: t.write(dir, &p).unwrap(),
            keys,
            ..Written::default()
        }
    }

    /// (activation, each model's joules) of the side-by-side frame, in its order.
    fn side(w: &Written, models: &[&str]) -> Vec<(String, Vec<Option<f64>>)> {
        let df = side_by_side(w, "d", "by-lifetime", models)
            .unwrap()
            .unwrap();
        let ids = strs(&df, "activation_id").unwrap();
        let js: Vec<_> = models
            .iter()
            .map(|m| f64s(&df, &format!("{m}_j")).unwrap())
            .collect();
        (0..df.height())
            .map(|i| {
                let id = ids.get(i).unwrap().to_owned();
                (id, js.iter().map(|c| c.get(i)).collect())
            })
            .collect()
    }

    /// Models with the same activations are put side by side; a model with other activations
    /// is joined: its extra activations come after, and each model is null where it has none.
    #[test]
    fn models_side_by_side_whether_their_activations_agree_or_not() {
        let dir = tempfile::tempdir().unwrap();
        let w = written(
            dir.path(),
            &[
                ("a", "x1", "f", 1.0),
                ("a", "x2", "f", 2.0),
                ("a", "x3", "g", 3.0),
                ("b", "x2", "f", 20.0),
                ("b", "x4", "f", 40.0),
                ("c", "x1", "f", 100.0),
                ("c", "x2", "f", 200.0),
                ("c", "x3", "g", 300.0),
            ],
        );
        let row = |id: &str, js: [Option<f64>; 2]| (id.to_owned(), js.to_vec());
        assert_eq!(
            side(&w, &["a", "c"]),
            [
                row("x1", [Some(1.0), Some(100.0)]),
                row("x2", [Some(2.0), Some(200.0)]),
                row("x3", [Some(3.0), Some(300.0)]),
            ],
            "the same activations: side by side"
        );
        let row = |id: &str, js: [Option<f64>; 3]| (id.to_owned(), js.to_vec());
        assert_eq!(
            side(&w, &["a", "b", "c"]),
            [
                row("x1", [Some(1.0), None, Some(100.0)]),
                row("x2", [Some(2.0), Some(20.0), Some(200.0)]),
                row("x3", [Some(3.0), None, Some(300.0)]),
                row("x4", [None, Some(40.0), None]),
            ],
            "joined"
        );
    }

    /// Keys are told distinct by the (activation, action) pair: an id under two actions is two
    /// keys, a pair twice or a null is not distinct (the table then goes through the join).
    #[test]
    fn distinct_keys_are_pairs_never_null_each_once() {
        use polars::prelude::{Column, DataFrame};
        let frame = |ids: &[Option<&str>], actions: &[Option<&str>]| {
            let n = ids.len();
            DataFrame::new(
                n,
                vec![
                    Column::new("activation_id".into(), ids),
                    Column::new("action".into(), actions),
                ],
            )
            .unwrap()
        };
        let some = |v: &[&'static str]| v.iter().map(|s| Some(*s)).collect::<Vec<_>>();
        let cases = [
            (some(&["x1", "x2", "x3"]), some(&["f", "f", "g"]), true),
            (some(&["x1", "x1"]), some(&["f", "g"]), true),
            (some(&["x1", "x2", "x1"]), some(&["f", "f", "f"]), false),
            // The pair's bytes are kept apart: ("ab", "c") is not ("a", "bc").
            (some(&["ab", "a"]), some(&["c", "bc"]), true),
            (vec![Some("x1"), None], some(&["f", "f"]), false),
            (some(&["x1", "x2"]), vec![Some("f"), None], false),
        ];
        for (ids, actions, want) in cases {
            let df = frame(&ids, &actions);
            assert_eq!(distinct_keys(&df).unwrap(), want, "{ids:?} {actions:?}");
        }
    }
}
