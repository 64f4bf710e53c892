//! The comparison printed as a table, and written as the `comparison` Parquet table (with
//! polars' writer: the table is made here, not streamed by the analysis).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use polars::prelude::{Column, DataFrame, ParquetWriter};

use super::intervals::Estimate;
use super::{Comparison, Row};

fn num(x: f64) -> String {
    let a = x.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else if a >= 0.01 {
        format!("{x:.4}")
    } else {
        format!("{x:.2e}")
    }
}

fn with_interval(e: &Option<Estimate>) -> String {
    match e {
        None => "-".into(),
        Some(e) => match (e.lo, e.hi) {
            (Some(lo), Some(hi)) => format!("{} [{}, {}]", num(e.value), num(lo), num(hi)),
            _ => num(e.value),
        },
    }
}

fn pct(e: &Option<Estimate>) -> String {
    match e {
        None => "-".into(),
        Some(e) => match (e.lo, e.hi) {
            (Some(lo), Some(hi)) => format!("{:+.1}% [{:+.1}, {:+.1}]", e.value, lo, hi),
            _ => format!("{:+.1}%", e.value),
        },
    }
}

/// The printed comparison: what it is over on top, then a table per domain.
pub fn text(c: &Comparison) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "model {}, idle policy {}; groups by {}{}; 95 % intervals (Student's t; changes: delta method, Welch's degrees of freedom)",
        c.model,
        c.idle_policy,
        c.by.join(","),
        c.baseline
            .as_ref()
            .map(|b| format!(", baseline {}", b.join(",")))
            .unwrap_or_default()
    );
    let header = [
        "function",
        "group",
        "runs",
        "acts",
        "unit",
        "J/activation",
        "vs baseline",
        "cold %",
        "keep-alive J/h",
        "J/success",
        "vs baseline",
    ];
    let mut domain: Option<&str> = None;
    let mut table: Vec<[String; 11]> = Vec::new();
    let flush = |s: &mut String, d: &str, table: &mut Vec<[String; 11]>| {
        if table.is_empty() {
            return;
        }
        let _ = writeln!(s, "\n{d}");
        let mut w = [0usize; 11];
        for r in std::iter::once(&header.map(str::to_owned)).chain(table.iter()) {
            for (k, c) in r.iter().enumerate() {
                w[k] = w[k].max(c.chars().count());
            }
        }
        for r in std::iter::once(&header.map(str::to_owned)).chain(table.iter()) {
            let line: Vec<String> = r
                .iter()
                .enumerate()
                .map(|(k, c)| {
                    if k < 2 {
                        format!("{c:<width$}", width = w[k])
                    } else {
                        format!("{c:>width$}", width = w[k])
                    }
                })
                .collect();
            let _ = writeln!(s, "  {}", line.join("  ").trim_end());
        }
        table.clear();
    };
    for r in &c.rows {
        if domain != Some(r.domain.as_str()) {
            if let Some(d) = domain {
                flush(&mut s, d, &mut table);
            }
            domain = Some(&r.domain);
        }
        table.push([
            r.function.clone(),
            format!(
                "{}{}",
                r.group.join(","),
                if r.baseline { " (baseline)" } else { "" }
            ),
            r.runs.to_string(),
            r.activations.to_string(),
            format!("{:?}", r.unit).to_lowercase(),
            with_interval(&r.energy_per_activation_j),
            pct(&r.energy_per_activation_change_pct),
            r.cold_share
                .map(|e| format!("{:.1}", 100.0 * e.value))
                .unwrap_or_else(|| "-".into()),
            with_interval(&r.keep_alive_j_per_hour),
            with_interval(&r.energy_per_success_j),
            pct(&r.energy_per_success_change_pct),
        ]);
    }
    if let Some(d) = domain {
        flush(&mut s, d, &mut table);
    }
    for n in &c.notes {
        let _ = writeln!(s, "note: {n}");
    }
    s
}

/// The comparison as a frame: a row per (domain, function, group), each estimate as value,
/// lo and hi columns, the `by` columns by name.
pub fn frame(c: &Comparison) -> Result<DataFrame> {
    let n = c.rows.len();
    let strs = |name: &str, f: &dyn Fn(&Row) -> String| {
        Column::new(name.into(), c.rows.iter().map(f).collect::<Vec<String>>())
    };
    let u64s = |name: &str, f: &dyn Fn(&Row) -> u64| {
        Column::new(name.into(), c.rows.iter().map(f).collect::<Vec<u64>>())
    };
    let mut cols = vec![
        strs("model", &|_| c.model.clone()),
        strs("idle_policy", &|_| c.idle_policy.clone()),
        strs("domain", &|r| r.domain.clone()),
        strs("function", &|r| r.function.clone()),
        strs("namespace", &|r| r.namespace.clone()),
        strs("action", &|r| r.action.clone()),
    ];
    for (k, b) in c.by.iter().enumerate() {
        cols.push(strs(b, &|r| r.group[k].clone()));
    }
    cols.push(Column::new(
        "baseline".into(),
        c.rows.iter().map(|r| r.baseline).collect::<Vec<bool>>(),
    ));
    cols.extend([
        u64s("runs", &|r| r.runs),
        u64s("activations", &|r| r.activations),
        u64s("activations_with_energy", &|r| r.activations_with_energy),
        u64s("cold_starts", &|r| r.cold_starts),
        u64s("successes", &|r| r.successes),
        strs("unit", &|r| format!("{:?}", r.unit).to_lowercase()),
    ]);
    type Get = fn(&Row) -> &Option<Estimate>;
    // (stem, unit): the columns `<stem><unit>`, `<stem>_lo<unit>`, `<stem>_hi<unit>` — the unit
    // stays last, as in the other tables.
    let estimates: [(&str, &str, Get); 8] = [
        ("energy_per_activation", "_j", |r| {
            &r.energy_per_activation_j
        }),
        ("cold_energy_mean", "_j", |r| &r.cold_energy_mean_j),
        ("cold_share", "", |r| &r.cold_share),
        ("keep_alive", "_j_per_hour", |r| &r.keep_alive_j_per_hour),
        ("energy_per_success", "_j", |r| &r.energy_per_success_j),
        ("total", "_j", |r| &r.total_j),
        ("energy_per_activation_change", "_pct", |r| {
            &r.energy_per_activation_change_pct
        }),
        ("energy_per_success_change", "_pct", |r| {
            &r.energy_per_success_change_pct
        }),
    ];
    for (stem, unit, get) in estimates {
        let part = |f: fn(&Estimate) -> Option<f64>| -> Vec<Option<f64>> {
            c.rows.iter().map(|r| get(r).as_ref().and_then(f)).collect()
        };
        cols.push(Column::new(
            format!("{stem}{unit}").into(),
            part(|e| Some(e.value)),
        ));
        cols.push(Column::new(
            format!("{stem}_lo{unit}").into(),
            part(|e| e.lo),
        ));
        cols.push(Column::new(
            format!("{stem}_hi{unit}").into(),
            part(|e| e.hi),
        ));
    }
    Ok(DataFrame::new(n, cols)?)
}

/// Writes the `comparison` table to `path` (its directory made), replacing it whole.
pub fn write_parquet(c: &Comparison, path: &Path) -> Result<()> {
    let mut df = frame(c)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let partial = path.with_extension("parquet.partial");
    let f = std::fs::File::create(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    ParquetWriter::new(f)
        .finish(&mut df)
        .with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, path)
        .with_context(|| format!("renaming {} to {}", partial.display(), path.display()))?;
    Ok(())
}
