//! Reading the analyzer's Parquet output back, for the integration tests.

use std::path::Path;

use arrow_array::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Every file under `dir`, at any depth, sorted.
#[allow(dead_code)]
pub fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Every batch of every Parquet file under `dir` (a table's directory, all partitions).
pub fn read(dir: &Path) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    for p in files_under(dir) {
        if p.extension().is_some_and(|x| x == "parquet") {
            let f = std::fs::File::open(&p).unwrap();
            let r = ParquetRecordBatchReaderBuilder::try_new(f)
                .unwrap()
                .build()
                .unwrap();
            out.extend(r.map(|b| b.unwrap()));
        }
    }
    out
}

/// A column of a batch, as its Arrow array type.
#[allow(dead_code)]
pub fn col<'a, T: 'static>(b: &'a RecordBatch, name: &str) -> &'a T {
    b.column_by_name(name)
        .unwrap_or_else(|| panic!("column {name}"))
        .as_any()
        .downcast_ref::<T>()
        .unwrap()
}

/// One row of a table, by column name (strings, numbers and booleans; nulls left out).
#[allow(dead_code)]
#[derive(Debug, Default, Clone)]
pub struct Row {
    pub s: std::collections::HashMap<String, String>,
    pub f: std::collections::HashMap<String, f64>,
    pub b: std::collections::HashMap<String, bool>,
    /// Timestamps, ns since the epoch.
    pub t: std::collections::HashMap<String, i64>,
}

#[allow(dead_code)]
impl Row {
    pub fn str(&self, c: &str) -> &str {
        self.s.get(c).map_or("", String::as_str)
    }
    /// A number column (u64 or f64); None where null.
    pub fn num(&self, c: &str) -> Option<f64> {
        self.f.get(c).copied()
    }
    pub fn flag(&self, c: &str) -> bool {
        self.b.get(c).copied().unwrap_or(false)
    }
}

/// Every row of a table.
#[allow(dead_code)]
pub fn rows(dir: &Path) -> Vec<Row> {
    use arrow_array::{
        Array, BooleanArray, Float64Array, StringArray, TimestampNanosecondArray, UInt64Array,
    };
    let mut out = Vec::new();
    for b in read(dir) {
        let mut rows = vec![Row::default(); b.num_rows()];
        for (field, c) in b.schema().fields().iter().zip(b.columns()) {
            let name = field.name().clone();
            let any = c.as_any();
            for (r, row) in rows.iter_mut().enumerate() {
                if c.is_null(r) {
                    continue;
                }
                if let Some(a) = any.downcast_ref::<StringArray>() {
                    row.s.insert(name.clone(), a.value(r).to_owned());
                } else if let Some(a) = any.downcast_ref::<Float64Array>() {
                    row.f.insert(name.clone(), a.value(r));
                } else if let Some(a) = any.downcast_ref::<UInt64Array>() {
                    row.f.insert(name.clone(), a.value(r) as f64);
                } else if let Some(a) = any.downcast_ref::<BooleanArray>() {
                    row.b.insert(name.clone(), a.value(r));
                } else if let Some(a) = any.downcast_ref::<TimestampNanosecondArray>() {
                    row.t.insert(name.clone(), a.value(r));
                }
            }
        }
        out.extend(rows);
    }
    out
}

/// The ground truth `pws-analyze synth` stored in `trace` (its `pws.truth` metadata), read
/// through `pws-analyze info --json`.
#[allow(dead_code)]
pub fn synth_truth(trace: &Path) -> serde_json::Value {
    let info = std::process::Command::new(env!("CARGO_BIN_EXE_pws-analyze"))
        .args(["info", "--json"])
        .arg(trace)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    let meta = &v["trace_info"]["metadata"];
    let text = meta
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|kv| kv[0] == "pws.truth")
                .and_then(|kv| kv[1].as_str().map(str::to_owned))
        })
        .or_else(|| meta["pws.truth"].as_str().map(str::to_owned))
        .expect("pws.truth in the metadata");
    serde_json::from_str(&text).unwrap()
}

/// Writes a `pws-analyze synth` trace with `flags` under `dir` (`dir/t.pws`).
#[allow(dead_code)]
pub fn synth(dir: &Path, flags: &[&str]) -> std::path::PathBuf {
    let trace = dir.join("t.pws");
    let st = std::process::Command::new(env!("CARGO_BIN_EXE_pws-analyze"))
        .arg("synth")
        .args(flags)
        .arg("-o")
        .arg(&trace)
        .status()
        .unwrap();
    assert!(st.success());
    trace
}

/// Analyses `trace` into `out` with `analyse` options; fails with its stderr if that fails.
/// Returns what it printed.
#[allow(dead_code)]
pub fn analysed(trace: &Path, out: &Path, analyse: &[&str]) -> String {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_pws-analyze"))
        .arg(trace)
        .arg("-o")
        .arg(out)
        .args(analyse)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Writes a `pws-analyze synth` trace with `flags` under `dir`, analyses it into `dir/out`
/// with `analyse` options: (the output directory, the truth, the printed summary).
#[allow(dead_code)]
pub fn synth_analysed(
    dir: &Path,
    flags: &[&str],
    analyse: &[&str],
) -> (std::path::PathBuf, serde_json::Value, String) {
    let trace = synth(dir, flags);
    let out = dir.join("out");
    let printed = analysed(&trace, &out, analyse);
    (out, synth_truth(&trace), printed)
}
