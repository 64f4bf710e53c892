//! Each model's held-out error over its folds, from the written `model_eval` rows: MAE (W) and
//! MAPE (%), each fold weighed by the intervals it scored. Folds that scored nothing (an online
//! model still learning) and errors that are not numbers do not count. The summary lists them
//! and picks its model from them (`summary::summary_model`).

use anyhow::Result;
use polars::prelude::{col, lit, DataType, Expr};

use super::rows::{collect, f64s, scan, strs, u64s, Written};

/// (energy counter "domain package", model, mean held-out MAE in W, mean MAPE in %), in the
/// order the models were evaluated.
pub type ModelError = (String, String, f64, f64);

/// `x` weighed by the fold's intervals, over the folds where it is known.
fn weighted_mean(x: &str) -> Expr {
    let n = || col("intervals").cast(DataType::Float64);
    let known = || col(x).is_not_null();
    ((col(x) * n()).filter(known()).sum() / n().filter(known()).sum()).alias(x)
}

pub fn mean_errors(w: &Written) -> Result<Vec<ModelError>> {
    let df = collect(
        scan(&w.model_eval)?
            .filter(col("intervals").gt(lit(0)))
            .group_by_stable([col("domain"), col("package"), col("model")])
            .agg([weighted_mean("mae_w"), weighted_mean("mape")]),
        "averaging the models' held-out errors over their folds",
    )?;
    let (domain, package, model) = (
        strs(&df, "domain")?,
        u64s(&df, "package")?,
        strs(&df, "model")?,
    );
    let (mae, mape) = (f64s(&df, "mae_w")?, f64s(&df, "mape")?);
    Ok((0..df.height())
        .map(|i| {
            (
                format!(
                    "{} {}",
                    domain.get(i).unwrap_or(""),
                    package.get(i).unwrap_or(0)
                ),
                model.get(i).unwrap_or("").to_owned(),
                mae.get(i).unwrap_or(f64::NAN),
                mape.get(i).unwrap_or(f64::NAN),
            )
        })
        .collect())
}
