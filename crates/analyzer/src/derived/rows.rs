//! The rows the derived tables are made from, read back from the Parquet parts this analysis
//! has just written (one part per table), and typed access to polars' results.
//!
//! `activation_energy` is written by (domain, model), then activation, then idle policy, in
//! row groups of at most 256 Ki rows: a query filtered on one key reads only its (domain,
//! model)'s row groups (polars skips the others by their min/max statistics) and keeps only
//! the key's rows, so what is held is one key's rows, not the whole table (an hour of a busy
//! node: millions of rows, gigabytes once decoded). `functions` and `activation_comparison`
//! read those rows with arrow-rs instead (`energy_blocks`, `key_rows`); the summary's sums and
//! the comparison's fallback scan them here. Every query runs on polars' in-memory engine,
//! whose group-bys on three or more keys sum each group in its rows' order: the same trace
//! gives the same bytes.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use polars::prelude::{
    col, lit, DataFrame, DataType, Expr, Float64Chunked, LazyFrame, PlRefPath, ScanArgsParquet,
    StringChunked, UInt64Chunked,
};

use crate::attribution::Key;

/// The parts a derived table reads, each written and complete before it is read, and the keys
/// with rows in `activation_energy` or `container_energy`, sorted.
#[derive(Debug, Clone, Default)]
pub struct Written {
    pub activations: PathBuf,
    pub activation_energy: PathBuf,
    pub container_energy: PathBuf,
    pub model_eval: PathBuf,
    pub keys: Vec<Key>,
}

/// One Parquet part, lazily; the hive directories are not parsed (`run` and `host` are columns
/// already). `compare` reads a results directory's parts with it too.
pub fn scan(part: &Path) -> Result<LazyFrame> {
    let path =
        PlRefPath::try_from_path(part).map_err(|e| anyhow::anyhow!("{}: {e}", part.display()))?;
    let args = ScanArgsParquet {
        hive_options: polars::io::HiveOptions {
            enabled: Some(false),
            ..Default::default()
        },
        glob: false,
        ..Default::default()
    };
    LazyFrame::scan_parquet(path, args).with_context(|| format!("cannot scan {}", part.display()))
}

/// The rows of one (domain, model, idle policy).
pub fn of_key(rows: LazyFrame, (domain, model, policy): &Key) -> LazyFrame {
    rows.filter(
        col("domain")
            .eq(lit(domain.as_str()))
            .and(col("model").eq(lit(model.as_str())))
            .and(col("idle_policy").eq(lit(*policy))),
    )
}

/// The (domain, idle policy) pairs of `keys`, sorted.
pub fn domain_policies(keys: &[Key]) -> Vec<(&str, &'static str)> {
    let set: std::collections::BTreeSet<(&str, &str)> =
        keys.iter().map(|k| (k.0.as_str(), k.2)).collect();
    set.into_iter().collect()
}

/// `lf` collected; `what` names it in an error.
pub fn collect(lf: LazyFrame, what: &str) -> Result<DataFrame> {
    lf.collect().with_context(|| what.to_owned())
}

/// Column names as expressions.
pub fn cols(names: &[&str]) -> Vec<Expr> {
    names.iter().map(|c| col(*c)).collect()
}

/// Column `c` of `df` as strings (other types cast).
pub fn strs(df: &DataFrame, c: &str) -> Result<StringChunked> {
    Ok(df.column(c)?.cast(&DataType::String)?.str()?.clone())
}

/// Column `c` of `df` as u64 (counts are polars' index type).
pub fn u64s(df: &DataFrame, c: &str) -> Result<UInt64Chunked> {
    Ok(df.column(c)?.cast(&DataType::UInt64)?.u64()?.clone())
}

/// Column `c` of `df` as f64.
pub fn f64s(df: &DataFrame, c: &str) -> Result<Float64Chunked> {
    Ok(df.column(c)?.cast(&DataType::Float64)?.f64()?.clone())
}
