//! `functions`: per function (namespace and action, as in `activations`), domain, model and
//! idle policy: how many activations and of which start, their energy (mean and its interval,
//! p50, p99, by start), and the keep-alive energy of its containers.
//!
//! From the written rows, in polars: the activations' counts from `activations` (every
//! activation of the function, with energy or not), their energy from `activation_energy`
//! (one row per activation and domain, its packages' parts summed), the keep-alive from
//! `container_energy` (summed over the function's containers). A function has a row under a
//! (domain, model, policy) where it has an activation with energy or a container with
//! keep-alive energy there. Cold (and recreated), prewarmed and warm starts are kept apart
//! (`join::cold_start`). Percentiles are the nearest rank: the value at index
//! round((n − 1)·p) of the n energies sorted, rounding half away from zero.

use anyhow::Result;
use polars::prelude::{
    col, concat, len, lit, DataFrame, DataType, Expr, IntoLazy, JoinArgs, JoinCoalesce, JoinType,
    QuantileMethod, SortMultipleOptions, UnionArgs,
};

use super::energy_blocks::EnergyBlocks;
use super::key_rows::{self, Names};
use super::rows::{collect, cols, f64s, of_key, scan, strs, u64s, Written};
use crate::attribution::uncertainty::{mean_bounds, MeanSums};
use crate::attribution::Key;
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

const FUNCTION: [&str; 2] = ["namespace", "action"];
const KEY: [&str; 5] = ["namespace", "action", "domain", "model", "idle_policy"];
/// What one key's activation rows are grouped on.
const GROUPED: [&str; 3] = ["namespace", "action", "idle_policy"];

/// `start_type` is one of `kind`'s labels ([`Start::labels`]: cold with recreated): the counts
/// take the kinds as `key_rows`' flags do, from [`Start::of`].
fn started(kind: Start) -> Expr {
    kind.labels()
        .into_iter()
        .map(|l| col("start_type").eq(lit(l.into_owned())))
        .reduce(Expr::or)
        .unwrap_or(lit(false))
}

fn count(e: Expr) -> Expr {
    e.cast(DataType::UInt64)
}

/// The table, and the summary's lines for `summary` (model, policy) in every domain.
pub fn table(
    w: &Written,
    run: &str,
    host: &str,
    summary: (&str, &str),
) -> Result<(Table, Vec<FunctionLine>)> {
    // Small (functions, and function containers × keys): collected once.
    let counts = collect(
        scan(&w.activations)?.group_by(cols(&FUNCTION)).agg([
            count(len()).alias("activations"),
            count(started(Start::Cold).sum()).alias("cold_starts"),
            count(started(Start::Prewarmed).sum()).alias("prewarmed_starts"),
            count(started(Start::Warm).sum()).alias("warm_starts"),
        ]),
        "counting each function's activations",
    )?;
    let keep_alive = collect(
        scan(&w.container_energy)?
            .filter(col("action").neq(lit("")))
            .group_by(cols(&KEY))
            .agg([col("keep_alive_j").sum().alias("keep_alive_j")]),
        "summing the containers' keep-alive per function",
    )?;
    let e = || col("energy_j");
    let hw = || col("dynamic_half_width_j");
    let aggs = [
        count(len()).alias("activations_with_energy"),
        e().mean().alias("energy_mean_j"),
        e().sum().alias("energy_sum_j"),
        e().quantile(lit(0.5), QuantileMethod::Nearest)
            .alias("energy_p50_j"),
        e().quantile(lit(0.99), QuantileMethod::Nearest)
            .alias("energy_p99_j"),
        // The starts as flags (`key_rows`).
        e().filter(col("cold")).mean().alias("cold_energy_mean_j"),
        e().filter(col("prewarmed"))
            .mean()
            .alias("prewarmed_energy_mean_j"),
        e().filter(col("warm")).mean().alias("warm_energy_mean_j"),
        // The mean's interval (`attribution::uncertainty::mean_bounds`): the activations'
        // half-widths add in squares, their systematic parts in full, and one unknown
        // half-width leaves the mean without an interval.
        col("idle_j").sum().alias("idle_sum_j"),
        (hw() * hw()).sum().alias("half_width_sq_sum"),
        count(hw().null_count()).alias("half_widths_unknown"),
        col("systematic_j").sum().alias("systematic_sum_j"),
    ];
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
    // One key of activation_energy at a time, read compactly (`key_rows`); the small results
    // together, in the table's order.
    let mut parts = Vec::new();
    // Opened only where there are keys: a trace without energy has no rows to read.
    if !w.keys.is_empty() {
        let blocks = EnergyBlocks::open_any(&w.activation_energy)?;
        let mut names = Names::default();
        for key in &w.keys {
            parts.push(key_part(&blocks, key, &mut names, &aggs, &keep_alive)?.lazy());
            // What polars' threads freed goes back before the next key's rows are read.
            crate::memory::release_free_heap();
        }
    }
    let df = match parts.is_empty() {
        true => return Ok((t, Vec::new())),
        false => collect(
            concat(parts, UnionArgs::default())?
                .join(
                    counts.lazy(),
                    cols(&FUNCTION),
                    cols(&FUNCTION),
                    JoinArgs::new(JoinType::Left),
                )
                .sort(
                    ["domain", "model", "idle_policy", "namespace", "action"],
                    SortMultipleOptions::default(),
                ),
            "computing the functions table",
        )?,
    };
    let mut lines = Vec::new();
    let (ns, action, domain, model, policy) = (
        strs(&df, "namespace")?,
        strs(&df, "action")?,
        strs(&df, "domain")?,
        strs(&df, "model")?,
        strs(&df, "idle_policy")?,
    );
    let [acts, with_energy, cold, pre, warm, unknown] = [
        "activations",
        "activations_with_energy",
        "cold_starts",
        "prewarmed_starts",
        "warm_starts",
        "half_widths_unknown",
    ]
    .map(|c| u64s(&df, c));
    let (acts, with_energy, cold, pre, warm, unknown) =
        (acts?, with_energy?, cold?, pre?, warm?, unknown?);
    let [mean, sum, p50, p99, cold_j, pre_j, warm_j, idle, hw_sq, sys, keep] = [
        "energy_mean_j",
        "energy_sum_j",
        "energy_p50_j",
        "energy_p99_j",
        "cold_energy_mean_j",
        "prewarmed_energy_mean_j",
        "warm_energy_mean_j",
        "idle_sum_j",
        "half_width_sq_sum",
        "systematic_sum_j",
        "keep_alive_j",
    ]
    .map(|c| f64s(&df, c));
    let (mean, sum, p50, p99, cold_j, pre_j, warm_j, idle, hw_sq, sys, keep) = (
        mean?, sum?, p50?, p99?, cold_j?, pre_j?, warm_j?, idle?, hw_sq?, sys?, keep?,
    );
    for i in 0..df.height() {
        let s = |c: &polars::prelude::StringChunked| c.get(i).unwrap_or("").to_owned();
        let (ns, action, domain, model, policy) =
            (s(&ns), s(&action), s(&domain), s(&model), s(&policy));
        // Functions seen only through a container's keep-alive have no activation row.
        let n = |c: &polars::prelude::UInt64Chunked| c.get(i).unwrap_or(0);
        let with_energy = n(&with_energy);
        let bounds = mean_bounds(&MeanSums {
            n: with_energy as usize,
            energy_j: sum.get(i).unwrap_or(0.0),
            idle_j: idle.get(i).unwrap_or(0.0),
            half_width_sq: (unknown.get(i) == Some(0)).then(|| hw_sq.get(i).unwrap_or(0.0)),
            systematic_j: sys.get(i).unwrap_or(0.0),
        });
        let name = function_name(&ns, &action);
        t.push_key(run, host)
            .push_str(&name)
            .push_str(&ns)
            .push_str(&action)
            .push_str(&domain)
            .push_str(&model)
            .push_str(&policy)
            .push_u64(Some(n(&acts)))
            .push_u64(Some(with_energy))
            .push_u64(Some(n(&cold)))
            .push_u64(Some(n(&pre)))
            .push_u64(Some(n(&warm)))
            .push_f64(mean.get(i))
            .push_f64(bounds.map(|b| b.0))
            .push_f64(bounds.map(|b| b.1))
            .push_f64(p50.get(i))
            .push_f64(p99.get(i))
            .push_f64(cold_j.get(i))
            .push_f64(pre_j.get(i))
            .push_f64(warm_j.get(i))
            .push_f64(keep.get(i));
        if (model.as_str(), policy.as_str()) == summary {
            lines.push(FunctionLine {
                function: name,
                domain,
                activations: n(&acts) as usize,
                cold: n(&cold) as usize,
                prewarmed: n(&pre) as usize,
                mean_j: mean.get(i),
                cold_j: cold_j.get(i),
                prewarmed_j: pre_j.get(i),
                warm_j: warm_j.get(i),
                keep_alive_j: keep.get(i),
                total_j: sum.get(i).unwrap_or(0.0) + keep.get(i).unwrap_or(0.0),
            });
        }
    }
    Ok((t, lines))
}

/// One key's lines: its rows (`key_rows`, in parts by function, each grouped alone) grouped on
/// the key's policy with the function, three keys, on which polars' in-memory engine sums each
/// group in its rows' order (with fewer it may pre-aggregate in partitions); the key's domain
/// and model, the same in every row, added after; and its functions' keep-alive.
fn key_part(
    blocks: &EnergyBlocks,
    key: &Key,
    names: &mut Names,
    aggs: &[Expr],
    keep_alive: &DataFrame,
) -> Result<DataFrame> {
    let (domain, model, _) = key;
    let parts = key_rows::of_key(blocks, key, names)?;
    // A function's rows are all in one part: each part's groups are whole.
    let mut grouped_parts = Vec::with_capacity(parts.len());
    for rows in parts {
        let g = collect(
            rows.lazy().group_by(cols(&GROUPED)).agg(aggs),
            "computing the functions table",
        )?;
        grouped_parts.push(g.lazy());
    }
    let mut grouped = collect(
        concat(grouped_parts, UnionArgs::default())?,
        "computing the functions table",
    )?;
    for c in GROUPED {
        names.decode(&mut grouped, c)?;
    }
    collect(
        grouped
            .lazy()
            .with_columns([
                lit(domain.as_str()).alias("domain"),
                lit(model.as_str()).alias("model"),
            ])
            .join(
                of_key(keep_alive.clone().lazy(), key),
                cols(&KEY),
                cols(&KEY),
                JoinArgs::new(JoinType::Full).with_coalesce(JoinCoalesce::CoalesceColumns),
            ),
        "computing the functions table",
    )
}
