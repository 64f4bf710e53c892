//! A results directory written by `pws-analyze` (one or many runs: `DIR/<table>/run=…/host=…/
//! part-….parquet`), its tables scanned lazily with polars.
//!
//! Each part is scanned on its own and the parts concatenated: parts of one dataset may differ
//! in their other columns (the counters a trace recorded, the manifest columns of another
//! call), and only the columns asked for are read. `run` and `host` are columns of every part,
//! so the hive directory names are not parsed.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use polars::prelude::{col, concat, lit, DataType, Expr, LazyFrame, UnionArgs};

/// The results directory.
#[derive(Debug)]
pub struct Results {
    root: PathBuf,
}

impl Results {
    /// Checks that `root` holds at least an `activation_energy` table.
    pub fn open(root: &Path) -> Result<Self> {
        if !root.is_dir() {
            bail!(
                "{}: not a directory (give the -o directory of pws-analyze)",
                root.display()
            );
        }
        let r = Self {
            root: root.to_owned(),
        };
        if r.parts("activation_energy")?.is_empty() {
            bail!(
                "{}: no activation_energy table (no {}/activation_energy/**/*.parquet): is it the -o directory of pws-analyze?",
                root.display(),
                root.display()
            );
        }
        Ok(r)
    }

    /// The Parquet parts of `table`, in path order; a `.partial` part (an analysis that did not
    /// finish) is not one.
    pub fn parts(&self, table: &str) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        let dir = self.root.join(table);
        if dir.is_dir() {
            walk(&dir, &mut out)?;
        }
        out.sort();
        Ok(out)
    }

    /// `columns` of every part of `table`, each required, and `labels` as strings: a label
    /// missing from a part is empty there, and one missing from every part is an error naming
    /// the columns there are. None when the table has no part.
    pub fn scan(
        &self,
        table: &str,
        columns: &[&str],
        labels: &[String],
    ) -> Result<Option<LazyFrame>> {
        let parts = self.parts(table)?;
        let mut frames = Vec::with_capacity(parts.len());
        let mut seen_labels = vec![false; labels.len()];
        let mut all_columns: Vec<String> = Vec::new();
        for p in &parts {
            let mut lf = crate::derived::rows::scan(p)?;
            let schema = lf
                .collect_schema()
                .with_context(|| format!("cannot read the schema of {}", p.display()))?;
            for c in schema.iter_names() {
                if !all_columns.iter().any(|x| x == c.as_str()) {
                    all_columns.push(c.to_string());
                }
            }
            if let Some(missing) = columns.iter().find(|c| !schema.contains(c)) {
                bail!(
                    "{}: no column `{missing}` in this {table} part (written by an older pws-analyze? analyse the traces again)",
                    p.display()
                );
            }
            let mut select: Vec<Expr> = columns.iter().map(|c| col(*c)).collect();
            for (k, l) in labels.iter().enumerate() {
                if columns.contains(&l.as_str()) {
                    seen_labels[k] = true; // asked for as a column already (`--by run`)
                } else if schema.contains(l) {
                    seen_labels[k] = true;
                    select.push(col(l.as_str()).cast(DataType::String).fill_null(lit("")));
                } else {
                    select.push(lit("").alias(l.as_str()));
                }
            }
            frames.push(lf.select(select));
        }
        if frames.is_empty() {
            return Ok(None);
        }
        if let Some(k) = seen_labels.iter().position(|s| !s) {
            bail!(
                "no column `{}` in the {table} table of {} (its columns: {})",
                labels[k],
                self.root.display(),
                all_columns.join(", ")
            );
        }
        Ok(Some(concat(frames, UnionArgs::default())?))
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let e = e.with_context(|| format!("cannot list {}", dir.display()))?;
        let p = e.path();
        if e.file_type()?.is_dir() {
            walk(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "parquet") {
            out.push(p);
        }
    }
    Ok(())
}
