//! The comparison's aggregation, lazily in polars over the dataset's `activations`,
//! `activation_energy`, `container_energy` (keep-alive) and `power` (each run's span) tables: per
//! domain, function and group, the per-run figures and their spread over runs, and the
//! activations' energies and their spread. What comes out is small (functions × groups); the
//! intervals are made from it in `intervals`.

use anyhow::{bail, Context, Result};
use polars::prelude::{
    col, len, lit, when, DataFrame, DataType, Expr, JoinArgs, JoinType, LazyFrame,
    SortMultipleOptions, StringChunked, UniqueKeepStrategy, NULL,
};

use super::dataset::Results;
use super::intervals::Sample;
use crate::derived::rows::{cols, f64s, strs, u64s};

/// What the comparison is over.
#[derive(Debug, Clone)]
pub struct Selection {
    pub model: String,
    pub idle_policy: String,
    /// None: every domain.
    pub domain: Option<String>,
    /// The grouping columns (manifest labels, or any column of `activations`).
    pub by: Vec<String>,
}

/// The figures that are computed per run, then summarised over the group's runs.
pub const PER_RUN: [&str; 6] = [
    "energy_per_activation_j",
    "cold_energy_mean_j",
    "cold_share",
    "keep_alive_j_per_hour",
    "energy_per_success_j",
    "total_j",
];

/// One (domain, function, group).
#[derive(Debug, Clone)]
pub struct Group {
    pub domain: String,
    pub namespace: String,
    pub action: String,
    /// The values of the `by` columns, in their order ("" where a run has no such label).
    pub key: Vec<String>,
    pub runs: u64,
    pub activations: u64,
    /// Activations with an energy row under the model and policy.
    pub with_energy: u64,
    pub cold_starts: u64,
    pub successes: u64,
    /// Over runs, in the order of [`PER_RUN`]: the per-run figures' mean, sd and runs.
    pub per_run: [Option<Sample>; 6],
    /// Over the activations: their energy, and that of the cold ones.
    pub energy: Option<Sample>,
    pub cold_energy: Option<Sample>,
}

/// The models and idle policies of the dataset's `activation_energy`, sorted.
pub fn models_and_policies(ds: &Results) -> Result<(Vec<String>, Vec<String>)> {
    let ae = ds
        .scan("activation_energy", &["model", "idle_policy"], &[])?
        .context("no activation_energy table")?;
    let distinct = |c: &str| -> Result<Vec<String>> {
        let df = ae
            .clone()
            .select([col(c)])
            .unique(None, UniqueKeepStrategy::Any)
            .sort([c], SortMultipleOptions::default())
            .collect()?;
        Ok(df
            .column(c)?
            .str()?
            .iter()
            .flatten()
            .map(str::to_owned)
            .collect())
    };
    Ok((distinct("model")?, distinct("idle_policy")?))
}

/// `first`, `by`, `last` as columns, each once (`--by run` or `--by action` is a key already).
fn keys(first: &[&str], by: &[String], last: &[&str]) -> Vec<Expr> {
    let mut k: Vec<&str> = Vec::new();
    for c in first
        .iter()
        .copied()
        .chain(by.iter().map(String::as_str))
        .chain(last.iter().copied())
    {
        if !k.contains(&c) {
            k.push(c);
        }
    }
    cols(&k)
}

fn join(left: LazyFrame, right: LazyFrame, on: &[Expr], how: JoinType) -> LazyFrame {
    left.join(right, on, on, JoinArgs::new(how))
}

/// `a / b` where `b` > 0, else null.
fn ratio(a: Expr, b: Expr) -> Expr {
    when(b.clone().gt(lit(0.0)))
        .then(a.cast(DataType::Float64) / b.cast(DataType::Float64))
        .otherwise(lit(NULL).cast(DataType::Float64))
}

/// Every group of `sel`, sorted by domain, function and key.
pub fn groups(ds: &Results, sel: &Selection) -> Result<Vec<Group>> {
    let by = &sel.by;
    let acts = ds
        .scan(
            "activations",
            &[
                "run",
                "host",
                "activation_id",
                "namespace",
                "action",
                "cold",
                "status_code",
                "join_method",
            ],
            by,
        )?
        .context("the dataset has no activations table")?
        // The REST API's records reach every node's trace; only the node that ran an
        // activation ties it to a container. One row per (run, activation): the tied one.
        .with_column(col("join_method").neq(lit("none")).alias("tied"))
        .sort_by_exprs(
            [col("tied"), col("host")],
            SortMultipleOptions::default()
                .with_order_descending_multi([true, false])
                .with_maintain_order(true),
        )
        .unique_stable_generic(
            Some(vec![col("run"), col("activation_id")]),
            UniqueKeepStrategy::First,
        );
    let mut filter = col("model")
        .eq(lit(sel.model.as_str()))
        .and(col("idle_policy").eq(lit(sel.idle_policy.as_str())));
    if let Some(d) = &sel.domain {
        filter = filter.and(col("domain").eq(lit(d.as_str())));
    }
    let ae = ds
        .scan(
            "activation_energy",
            &[
                "run",
                "host",
                "activation_id",
                "domain",
                "model",
                "idle_policy",
                "energy_j",
            ],
            &[],
        )?
        .context("no activation_energy table")?
        .filter(filter.clone())
        .select(cols(&[
            "run",
            "host",
            "activation_id",
            "domain",
            "energy_j",
        ]));
    // Each activation with energy, with its function, start, status and labels.
    let e = join(
        ae,
        acts.clone(),
        &cols(&["run", "host", "activation_id"]),
        JoinType::Inner,
    );

    let u64_ = |e: Expr| e.cast(DataType::UInt64);
    // Per run (its hosts together) and function: the activations, whatever their energy.
    let run_acts = acts
        .group_by(keys(&[], by, &["run", "namespace", "action"]))
        .agg([
            u64_(len()).alias("n_act"),
            u64_(col("cold")).sum().alias("n_cold"),
            u64_(col("status_code").eq(lit(0u64))).sum().alias("n_ok"),
        ]);
    let run_energy = e
        .clone()
        .group_by(keys(&["domain"], by, &["run", "namespace", "action"]))
        .agg([
            u64_(len()).alias("n_e"),
            col("energy_j").sum().alias("e_sum"),
            col("energy_j").filter(col("cold")).sum().alias("cold_sum"),
            u64_(col("energy_j").filter(col("cold")).count()).alias("n_cold_e"),
        ]);
    // Each function container's keep-alive, summed per run and function.
    let keep_alive = match ds.scan(
        "container_energy",
        &[
            "run",
            "domain",
            "model",
            "idle_policy",
            "namespace",
            "action",
            "keep_alive_j",
        ],
        &[],
    )? {
        Some(f) => f
            .filter(filter)
            .group_by(cols(&["domain", "run", "namespace", "action"]))
            .agg([col("keep_alive_j").sum().alias("ka")]),
        None => bail!(
            "the dataset has no container_energy table (keep-alive energy; written by pws-analyze since this table was added: analyse the traces again)"
        ),
    };
    // Each run's span: its hosts' power intervals, first start to last end.
    let span = ds
        .scan(
            "power",
            &["run", "host", "interval_start", "interval_end"],
            &[],
        )?
        .map(|p| {
            p.group_by(cols(&["run", "host"]))
                .agg([(col("interval_end").cast(DataType::Int64).max()
                    - col("interval_start").cast(DataType::Int64).min())
                .alias("span_ns")])
                .group_by([col("run")])
                .agg([col("span_ns").max()])
        });

    let mut per_run = join(
        run_energy,
        run_acts,
        &keys(&[], by, &["run", "namespace", "action"]),
        JoinType::Left,
    );
    per_run = join(
        per_run,
        keep_alive,
        &cols(&["domain", "run", "namespace", "action"]),
        JoinType::Left,
    );
    per_run = match span {
        Some(s) => join(per_run, s, &cols(&["run"]), JoinType::Left),
        None => per_run.with_column(lit(NULL).cast(DataType::Int64).alias("span_ns")),
    };
    let ka = col("ka").fill_null(lit(0.0));
    let per_run = per_run.with_columns([
        ratio(col("e_sum"), col("n_e")).alias(PER_RUN[0]),
        ratio(col("cold_sum"), col("n_cold_e")).alias(PER_RUN[1]),
        ratio(col("n_cold"), col("n_act")).alias(PER_RUN[2]),
        ratio(
            ka.clone(),
            col("span_ns").cast(DataType::Float64) / lit(3.6e12),
        )
        .alias(PER_RUN[3]),
        ratio(col("e_sum") + ka.clone(), col("n_ok")).alias(PER_RUN[4]),
        (col("e_sum") + ka).alias(PER_RUN[5]),
    ]);
    let group_keys = keys(&["domain"], by, &["namespace", "action"]);
    let mut run_aggs = vec![
        u64_(len()).alias("runs"),
        col("n_act").sum().alias("activations"),
        col("n_e").sum().alias("with_energy"),
        col("n_cold").sum().alias("cold_starts"),
        col("n_ok").sum().alias("successes"),
    ];
    for m in PER_RUN {
        run_aggs.push(col(m).mean().alias(format!("{m}:mean")));
        run_aggs.push(col(m).std(1).alias(format!("{m}:sd")));
        run_aggs.push(u64_(col(m).count()).alias(format!("{m}:n")));
    }
    let over_runs = per_run.group_by(group_keys.clone()).agg(run_aggs);
    let cold_e = || col("energy_j").filter(col("cold"));
    let over_acts = e.group_by(group_keys.clone()).agg([
        col("energy_j").mean().alias("e:mean"),
        col("energy_j").std(1).alias("e:sd"),
        u64_(col("energy_j").count()).alias("e:n"),
        cold_e().mean().alias("c:mean"),
        cold_e().std(1).alias("c:sd"),
        u64_(cold_e().count()).alias("c:n"),
    ]);
    let df = join(over_runs, over_acts, &group_keys, JoinType::Left)
        .sort(
            ["domain", "namespace", "action"]
                .iter()
                .map(|s| s.to_string())
                .chain(by.iter().cloned())
                .collect::<Vec<_>>(),
            SortMultipleOptions::default(),
        )
        .collect()
        .context("computing the comparison")?;
    read_groups(&df, by)
}

fn read_groups(df: &DataFrame, by: &[String]) -> Result<Vec<Group>> {
    let s = |c: &str| strs(df, c);
    let u = |c: &str| u64s(df, c);
    let f = |c: &str| f64s(df, c);
    let sample = |prefix: &str| -> Result<Vec<Option<Sample>>> {
        let (m, sd, n) = (
            f(&format!("{prefix}:mean"))?,
            f(&format!("{prefix}:sd"))?,
            u(&format!("{prefix}:n"))?,
        );
        Ok((0..df.height())
            .map(|i| {
                Some(Sample {
                    mean: m.get(i)?,
                    sd: sd.get(i),
                    n: n.get(i).filter(|&n| n > 0)?,
                })
            })
            .collect())
    };
    let (domain, ns, action) = (s("domain")?, s("namespace")?, s("action")?);
    let by_cols: Vec<StringChunked> = by.iter().map(|c| s(c)).collect::<Result<_>>()?;
    let (runs, acts, with_e, cold, ok) = (
        u("runs")?,
        u("activations")?,
        u("with_energy")?,
        u("cold_starts")?,
        u("successes")?,
    );
    let per_run: Vec<Vec<Option<Sample>>> =
        PER_RUN.iter().map(|m| sample(m)).collect::<Result<_>>()?;
    let (energy, cold_energy) = (sample("e")?, sample("c")?);
    let text = |c: &StringChunked, i: usize| c.get(i).unwrap_or("").to_owned();
    Ok((0..df.height())
        .map(|i| Group {
            domain: text(&domain, i),
            namespace: text(&ns, i),
            action: text(&action, i),
            key: by_cols.iter().map(|c| text(c, i)).collect(),
            runs: runs.get(i).unwrap_or(0),
            activations: acts.get(i).unwrap_or(0),
            with_energy: with_e.get(i).unwrap_or(0),
            cold_starts: cold.get(i).unwrap_or(0),
            successes: ok.get(i).unwrap_or(0),
            per_run: std::array::from_fn(|k| per_run[k][i]),
            energy: energy[i],
            cold_energy: cold_energy[i],
        })
        .collect())
}
