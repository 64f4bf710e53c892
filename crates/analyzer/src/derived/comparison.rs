//! `activation_comparison`: each activation's energy under every model in one row per domain
//! and idle policy, with the spread between models (max − min, and relative to their mean).
//! From the written `activation_energy` rows; rows by domain and idle policy, then in the
//! activations' order.
//!
//! Every model of one trace writes the same activations in the same order, so a domain's
//! models are first checked, key by key, to hold the same keys (`same_keys_in_blocks`); their
//! energies are then put side by side a batch at a time (`energy_blocks`), and what is held
//! does not grow with the number of activations. Otherwise (a model left out on one package
//! of a two-socket server, or a part whose row groups mix models), each model's rows are
//! joined on the activation in polars, one key at a time (`side_by_side`): a model's
//! activations that the others lack come after theirs, null under the others.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use arrow_array::{Array, Float64Array, StringArray};
use polars::prelude::{
    col, DataFrame, IntoLazy, JoinArgs, JoinCoalesce, JoinType, MaintainOrderJoin,
};

use super::energy_blocks::{ready_together, Block, EnergyBlocks};
use super::rows::{collect, domain_policies, f64s, of_key, scan, strs, Written};
use crate::attribution::Key;
use crate::tables::{Partition, Table};

/// The encoded size at which the table's open row group is closed: its writer's pages were the
/// phase's peak at the tables' 16 MiB (an hour of a busy node: 22 → 14 MiB of heap over the
/// phase's start, the file 2.4 % larger; `bench/README.md`, session 26).
const ROW_GROUP_BYTES: usize = 4 << 20;

/// Writes the table under `out` in partition `p`, flushed as it fills (an hour of a busy node
/// has about a million rows); returns its path.
pub fn write(w: &Written, run: &str, host: &str, out: &Path, p: &Partition) -> Result<PathBuf> {
    let mut models: Vec<&str> = w.keys.iter().map(|k| k.1.as_str()).collect();
    models.sort();
    models.dedup();
    let mut t = Table::keyed("activation_comparison")
        .row_group_bytes_of(ROW_GROUP_BYTES)
        .str("activation_id")
        .str("action")
        .str("domain")
        .str("idle_policy");
    for m in &models {
        t = t.f64(&format!("{m}_j"));
    }
    t = t.f64("spread_j").f64("spread_pct");
    let blocks = EnergyBlocks::open(&w.activation_energy)?;
    // Domain → whether its models' blocks hold the same keys in the same order.
    let mut plain: BTreeMap<&str, bool> = BTreeMap::new();
    for (domain, policy) in domain_policies(&w.keys) {
        let present: Vec<bool> = models
            .iter()
            .map(|m| {
                w.keys
                    .contains(&(domain.to_owned(), (*m).to_owned(), policy))
            })
            .collect();
        if !present.contains(&true) {
            continue;
        }
        let streamed = match &blocks {
            Some(b) => {
                if !plain.contains_key(domain) {
                    let of_domain: Vec<&str> = models
                        .iter()
                        .copied()
                        .filter(|m| w.keys.iter().any(|k| k.0 == domain && k.1 == *m))
                        .collect();
                    plain.insert(domain, same_keys_in_blocks(b, domain, &of_domain)?);
                    // The keys' hashes and the readers' pages, freed in pieces.
                    crate::memory::release_free_heap();
                }
                plain[domain].then_some(b)
            }
            None => None,
        };
        let mut row = Row {
            t: &mut t,
            run,
            host,
            domain,
            policy,
        };
        match streamed {
            Some(b) => side_by_side_streamed(b, &models, &present, &mut row, out, p)?,
            None => {
                let Some(df) = side_by_side(w, domain, policy, &models)? else {
                    continue;
                };
                let (id, action) = (strs(&df, "activation_id")?, strs(&df, "action")?);
                let per_model: Vec<_> = models
                    .iter()
                    .map(|m| f64s(&df, &format!("{m}_j")))
                    .collect::<Result<_>>()?;
                for i in 0..df.height() {
                    let js = per_model.iter().map(|c| c.get(i));
                    row.push(id.get(i).unwrap_or(""), action.get(i).unwrap_or(""), js);
                    row.t.flush_if_full(out, p)?;
                }
            }
        }
        // Each (domain, policy) its own row groups: its rows leave memory before the next one's
        // are read and put side by side.
        t.end_row_group(out, p)?;
        crate::memory::release_free_heap();
    }
    t.write(out, p)
}

/// The table and what its rows of one (domain, idle policy) share.
struct Row<'a> {
    t: &'a mut Table,
    run: &'a str,
    host: &'a str,
    domain: &'a str,
    policy: &'a str,
}

impl Row<'_> {
    /// One activation's row: its joules under each model (None where a model has none), and
    /// their spread.
    fn push(&mut self, id: &str, action: &str, per_model: impl Iterator<Item = Option<f64>>) {
        self.t
            .push_key(self.run, self.host)
            .push_str(id)
            .push_str(action)
            .push_str(self.domain)
            .push_str(self.policy);
        let (mut lo, mut hi, mut sum, mut n) = (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0usize);
        for j in per_model {
            self.t.push_f64(j);
            if let Some(j) = j {
                (lo, hi, sum, n) = (lo.min(j), hi.max(j), sum + j, n + 1);
            }
        }
        let mean = sum / n.max(1) as f64;
        let spread = (n > 0).then_some(hi - lo);
        self.t
            .push_f64(spread)
            .push_f64(spread.filter(|_| mean > 0.0).map(|s| 100.0 * s / mean));
    }
}

/// Whether the blocks of `domain` under each of `models` hold the same (activation, action,
/// idle policy) keys in the same order, none null and each once: then each (domain, policy)'s
/// rows are the models' energies put side by side, read a batch at a time from every block
/// ([`side_by_side_streamed`]), with no model's rows held whole. Checked exactly, key by key;
/// a 64-bit hash of each key in a set tells repeats, and two keys with one hash read as a
/// repeat, which only sends the domain through the join.
fn same_keys_in_blocks(b: &EnergyBlocks, domain: &str, models: &[&str]) -> Result<bool> {
    const KEY: [&str; 3] = ["activation_id", "action", "idle_policy"];
    let Some((first, others)) = models.split_first() else {
        return Ok(true);
    };
    // The first block beside each other block in turn, two readers at a time (alone where it
    // has none). Its keys are hashed in the first pass, then sorted: a repeat is two equal
    // neighbours (a sorted vector is half the size of a set of them).
    let passes: Vec<Option<&str>> = match others {
        [] => vec![None],
        _ => others.iter().copied().map(Some).collect(),
    };
    let mut hashes: Vec<u64> = Vec::new();
    let mut key = Vec::new();
    for (pass, other) in passes.into_iter().enumerate() {
        let mut blocks = vec![b.block(domain, first, &KEY)?];
        if let Some(m) = other {
            blocks.push(b.block(domain, m, &KEY)?);
        }
        loop {
            let Some(n) = ready_together(&mut blocks)? else {
                return Ok(false);
            };
            if n == 0 {
                break;
            }
            let cols: Vec<&StringArray> = (0..KEY.len())
                .map(|i| blocks[0].strs(i))
                .collect::<Result<_>>()?;
            let at = blocks[0].pos();
            if pass == 0 {
                for r in at..at + n {
                    if cols.iter().any(|c| c.is_null(r)) {
                        return Ok(false);
                    }
                    hashes.push(key_hash(&mut key, cols.iter().map(|c| c.value(r))));
                }
            }
            if let Some(o) = blocks.get(1) {
                let o_at = o.pos();
                for (i, c) in cols.iter().enumerate() {
                    let oc = o.strs(i)?;
                    let differs =
                        |r: usize| oc.is_null(o_at + r) || oc.value(o_at + r) != c.value(at + r);
                    if (0..n).any(differs) {
                        return Ok(false);
                    }
                }
            }
            blocks.iter_mut().for_each(|b| b.take(n));
        }
        if pass == 0 {
            hashes.sort_unstable();
            if hashes.windows(2).any(|w| w[0] == w[1]) {
                return Ok(false);
            }
            hashes = Vec::new();
        }
    }
    Ok(true)
}

/// A 64-bit hash of a key made of `parts`, each followed by 0xff (in no UTF-8 text, so the
/// bytes say where each part ends: ("ab", "c") is not ("a", "bc")); `buf` is reused.
fn key_hash<'a>(buf: &mut Vec<u8>, parts: impl Iterator<Item = &'a str>) -> u64 {
    buf.clear();
    for part in parts {
        buf.extend_from_slice(part.as_bytes());
        buf.push(0xff);
    }
    twox_hash::XxHash3_64::oneshot(buf)
}

/// The rows of (`row.domain`, `row.policy`), from blocks [`same_keys_in_blocks`] found alike:
/// the first present model's keys, and each present model's joules at the same row of its
/// block, in the blocks' order.
fn side_by_side_streamed(
    b: &EnergyBlocks,
    models: &[&str],
    present: &[bool],
    row: &mut Row<'_>,
    out: &Path,
    p: &Partition,
) -> Result<()> {
    let mut blocks: Vec<Block> = Vec::new();
    // Block of each model (None where it has no rows of this policy).
    let mut block_of: Vec<Option<usize>> = Vec::new();
    for (m, &here) in models.iter().zip(present) {
        if !here {
            block_of.push(None);
            continue;
        }
        let columns: &[&str] = if blocks.is_empty() {
            &["activation_id", "action", "idle_policy", "energy_j"]
        } else {
            &["energy_j"]
        };
        block_of.push(Some(blocks.len()));
        blocks.push(b.block(row.domain, m, columns)?);
    }
    let energy = |bi: usize| if bi == 0 { 3 } else { 0 };
    loop {
        let n = ready_together(&mut blocks)?
            .context("activation_energy: a model's block has more rows than another's")?;
        if n == 0 {
            return Ok(());
        }
        let first = &blocks[0];
        let (id, action, policy) = (first.strs(0)?, first.strs(1)?, first.strs(2)?);
        let js: Vec<(&Float64Array, usize)> = blocks
            .iter()
            .enumerate()
            .map(|(bi, b)| Ok((b.f64s(energy(bi))?, b.pos())))
            .collect::<Result<_>>()?;
        let at = first.pos();
        for r in 0..n {
            if policy.value(at + r) != row.policy {
                continue;
            }
            let per_model = block_of.iter().map(|bi| {
                let (c, o) = js[(*bi)?];
                c.is_valid(o + r).then(|| c.value(o + r))
            });
            row.push(id.value(at + r), action.value(at + r), per_model);
            row.t.flush_if_full(out, p)?;
        }
        blocks.iter_mut().for_each(|b| b.take(n));
    }
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
        let parts = [id.unwrap_or(""), action.unwrap_or("")];
        if !seen.insert(key_hash(&mut pair, parts.into_iter())) {
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
        let rows: Vec<_> = rows
            .iter()
            .map(|&(m, id, action, j)| (m, id, action, "by-lifetime", j))
            .collect();
        written_as(dir, &rows, false)
    }

    /// (model, activation, action, idle policy, joules) rows of domain "d"; with `blocks`, each
    /// model's rows their own row groups, as the attribution writes them (the rows given by
    /// model), else one row group for all.
    fn written_as(
        dir: &Path,
        rows: &[(&str, &str, &str, &'static str, f64)],
        blocks: bool,
    ) -> Written {
        let mut t = Table::keyed("activation_energy")
            .str("activation_id")
            .str("action")
            .str("domain")
            .str("model")
            .str("idle_policy")
            .f64("energy_j");
        let p = Partition {
            run: "r".into(),
            host: "h".into(),
            part: "part".into(),
            labels: Vec::new(),
        };
        let mut keys = Vec::new();
        for (i, &(m, id, action, policy, j)) in rows.iter().enumerate() {
            t.push_key("r", "h")
                .push_str(id)
                .push_str(action)
                .push_str("d")
                .push_str(m)
                .push_str(policy)
                .push_f64(Some(j));
            keys.push(("d".to_owned(), m.to_owned(), policy));
            if blocks && rows.get(i + 1).is_some_and(|next| next.0 != m) {
                t.end_row_group(dir, &p).unwrap();
            }
        }
        keys.sort();
        keys.dedup();
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

    /// The `activation_comparison` rows `write` makes of `w`: (activation, policy, each model's
    /// joules, spread, spread %), in the table's order.
    fn compared(w: &Written, dir: &Path) -> Vec<(String, String, Vec<Option<f64>>)> {
        use arrow_array::cast::AsArray;
        let p = Partition {
            run: "r".into(),
            host: "h".into(),
            part: "cmp".into(),
            labels: Vec::new(),
        };
        let out = dir.join("out");
        let path = write(w, "r", "h", &out, &p).unwrap();
        let mut rows = Vec::new();
        for b in crate::tables::tests::batches(&path) {
            let s = |n: &str| b.column_by_name(n).unwrap().as_string::<i32>().clone();
            let (id, policy) = (s("activation_id"), s("idle_policy"));
            let floats: Vec<_> = (0..b.num_columns())
                .filter(|&c| {
                    b.schema().field(c).name().ends_with("_j")
                        || b.schema().field(c).name() == "spread_pct"
                })
                .map(|c| {
                    b.column(c)
                        .as_primitive::<arrow_array::types::Float64Type>()
                        .clone()
                })
                .collect();
            for r in 0..b.num_rows() {
                let js = floats
                    .iter()
                    .map(|c| c.is_valid(r).then(|| c.value(r)))
                    .collect();
                rows.push((id.value(r).to_owned(), policy.value(r).to_owned(), js));
            }
        }
        rows
    }

    /// Models whose blocks hold the same keys are read side by side a batch at a time, and the
    /// table is the one the join makes of the same rows in one row group; a model with other
    /// activations sends the domain through the join, with the same table either way.
    #[test]
    fn blocks_read_side_by_side_give_the_joins_table() {
        const P: [&str; 2] = ["by-lifetime", "even"];
        // 20 000 activations: more than a reader's batch, so the blocks are read in several.
        let ids: Vec<String> = (0..20_000).map(|i| format!("act-{i:05}")).collect();
        let mut rows = Vec::new();
        for (m, scale) in [("a", 1.0), ("c", 3.0)] {
            for (i, id) in ids.iter().enumerate() {
                for (pi, p) in P.into_iter().enumerate() {
                    let action = if i % 3 == 0 { "g" } else { "f" };
                    rows.push((m, id.as_str(), action, p, scale * i as f64 + pi as f64));
                }
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let (d1, d2) = (dir.path().join("blocks"), dir.path().join("one"));
        let by_blocks = written_as(&d1, &rows, true);
        let in_one = written_as(&d2, &rows, false);
        let b = EnergyBlocks::open(&by_blocks.activation_energy)
            .unwrap()
            .unwrap();
        assert!(same_keys_in_blocks(&b, "d", &["a", "c"]).unwrap());
        assert!(
            EnergyBlocks::open(&in_one.activation_energy)
                .unwrap()
                .is_none(),
            "a row group of two models: not told apart"
        );
        let streamed = compared(&by_blocks, &d1);
        assert_eq!(streamed, compared(&in_one, &d2));
        assert_eq!(streamed.len(), 2 * ids.len());
        // by-lifetime first, activations in order; a, c, spread (c − a = 2 i), spread %.
        let i = 7.0;
        assert_eq!(
            streamed[7],
            (
                "act-00007".to_owned(),
                "by-lifetime".to_owned(),
                vec![Some(i), Some(3.0 * i), Some(2.0 * i), Some(100.0)]
            )
        );
        assert_eq!(streamed[ids.len()].1, "even");

        // A model without the last activation: not the same keys, so joined.
        let mut short = rows.clone();
        short.retain(|r| !(r.0 == "c" && r.1 == "act-19999"));
        let (d3, d4) = (
            dir.path().join("short-blocks"),
            dir.path().join("short-one"),
        );
        let (w3, w4) = (
            written_as(&d3, &short, true),
            written_as(&d4, &short, false),
        );
        let b = EnergyBlocks::open(&w3.activation_energy).unwrap().unwrap();
        assert!(!same_keys_in_blocks(&b, "d", &["a", "c"]).unwrap());
        let joined = compared(&w3, &d3);
        assert_eq!(joined, compared(&w4, &d4));
        assert_eq!(joined[ids.len() - 1].2[1], None, "c has none for act-19999");
    }

    /// Blocks are alike only with every key in the same place: another order, a repeated key
    /// or another action under one id is not.
    #[test]
    fn same_keys_in_blocks_is_key_by_key() {
        let base = [("x1", "f"), ("x2", "f"), ("x3", "g")];
        let check = |other: &[(&str, &str)]| {
            let mut rows = Vec::new();
            for (m, keys) in [("a", &base[..]), ("b", other)] {
                for &(id, action) in keys {
                    rows.push((m, id, action, "by-lifetime", 1.0));
                }
            }
            let dir = tempfile::tempdir().unwrap();
            let w = written_as(dir.path(), &rows, true);
            let b = EnergyBlocks::open(&w.activation_energy).unwrap().unwrap();
            same_keys_in_blocks(&b, "d", &["a", "b"]).unwrap()
        };
        assert!(check(&base));
        assert!(!check(&[("x2", "f"), ("x1", "f"), ("x3", "g")]));
        assert!(!check(&[("x1", "f"), ("x2", "f"), ("x3", "f")]));
        assert!(!check(&[("x1", "f"), ("x2", "f")]));
        assert!(!check(&[
            ("x1", "f"),
            ("x2", "f"),
            ("x3", "g"),
            ("x4", "g")
        ]));
        // A key twice in the first block: not distinct, whatever the others hold.
        let mut rows = Vec::new();
        for m in ["a", "b"] {
            for (id, action) in [("x1", "f"), ("x1", "f")] {
                rows.push((m, id, action, "by-lifetime", 1.0));
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let w = written_as(dir.path(), &rows, true);
        let b = EnergyBlocks::open(&w.activation_energy).unwrap().unwrap();
        assert!(!same_keys_in_blocks(&b, "d", &["a", "b"]).unwrap());
    }
}
