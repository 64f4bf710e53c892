//! The summary's per-domain sums under one (model, idle policy), from the written rows: the
//! activations' energy (`activation_energy`) and their containers' keep-alive
//! (`container_energy`). The rest of the accounting (other cgroups, unassigned, the total) is
//! the attribution's own sums (`attribution::Attribution`).

use std::collections::BTreeMap;

use anyhow::Result;
use polars::prelude::col;

use super::rows::{collect, f64s, of_key, scan, Written};

/// Domain → (activations' J, keep-alive J).
pub type FunctionSums = BTreeMap<String, (f64, f64)>;

/// Domain → (activations' J, keep-alive J) under (model, policy), the model as
/// `summary::domain_model` picks it per domain: one key's rows at a time.
pub fn function_sums(w: &Written, model: &str, policy: &str) -> Result<FunctionSums> {
    let mut out = FunctionSums::new();
    for key in w
        .keys
        .iter()
        .filter(|k| k.1 == crate::summary::domain_model(model, &k.0, &w.keys) && k.2 == policy)
    {
        let sum = |part: &std::path::Path, value: &str| -> Result<f64> {
            let df = collect(
                of_key(scan(part)?, key).select([col(value).sum()]),
                &format!("summing {value} of {key:?}"),
            )?;
            Ok(f64s(&df, value)?.get(0).unwrap_or(0.0))
        };
        *out.entry(key.0.clone()).or_default() = (
            sum(&w.activation_energy, "energy_j")?,
            sum(&w.container_energy, "keep_alive_j")?,
        );
    }
    Ok(out)
}
