//! Which inputs one `pws-analyze` call reads, and what each is: a manifest of runs.
//!
//! A multi-node experiment leaves one trace per node and run, usually in a directory tree.
//! `pws-analyze DIR -o OUT` reads every input found under `DIR`; a `manifest.csv` in `DIR` (or
//! `--manifest FILE`) says which traces belong to the experiment and labels each with its run,
//! host, workload and configuration. Its columns:
//!
//! ```text
//! trace,run,host,workload,config[,more…]
//! node-1/run-01.pws,run-01,node-1,azure-2019-day1,"freq=1000,energy=rapl"
//! ```
//!
//! `trace` (a path relative to the manifest) is required; the other columns are optional and an
//! empty cell means "from the trace" (its `run`, `workload`, `config` metadata given to
//! `pws-record --metadata`, and its host name). Columns beyond these five are carried as string
//! columns into every table, so a query can group by any experimental factor.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::inputs::detect::{detect, InputKind};

/// The name of a directory's own manifest.
pub const MANIFEST_NAME: &str = "manifest.csv";

/// The labels of one input, from the manifest (None: take it from the trace).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels {
    pub run: Option<String>,
    pub host: Option<String>,
    pub workload: Option<String>,
    pub config: Option<String>,
    /// The manifest's other columns, in the order of [`Inputs::extra_columns`].
    pub extra: Vec<Option<String>>,
}

/// One input to analyse.
#[derive(Debug, Clone)]
pub struct Input {
    pub path: PathBuf,
    pub labels: Labels,
}

/// Every input of a call and the extra label columns all its tables carry.
#[derive(Debug, Default)]
pub struct Inputs {
    pub inputs: Vec<Input>,
    pub extra_columns: Vec<String>,
    /// What was skipped while walking directories, for the user.
    pub notes: Vec<String>,
}

/// A parsed manifest: its rows by canonical trace path.
#[derive(Debug)]
struct Manifest {
    path: PathBuf,
    columns: Vec<String>,
    /// Rows in file order: (canonical trace path, line, labels, every cell by column).
    rows: Vec<(PathBuf, usize, Labels, BTreeMap<String, String>)>,
}

const KNOWN: [&str; 5] = ["trace", "run", "host", "workload", "config"];

fn read_manifest(path: &Path) -> Result<Manifest> {
    let shown = path.display();
    let mut r = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .with_context(|| format!("cannot read the manifest {shown}"))?;
    let header: Vec<String> = r
        .headers()
        .with_context(|| format!("{shown}: cannot read the header line"))?
        .iter()
        .map(str::to_owned)
        .collect();
    if !header.iter().any(|h| h == "trace") {
        bail!(
            "{shown}: the manifest has no `trace` column (header: {}); expected trace,run,host,workload,config",
            header.join(",")
        );
    }
    let mut seen = HashMap::new();
    for h in &header {
        if h.is_empty() {
            bail!("{shown}: a column of the header has no name");
        }
        if seen.insert(h.clone(), ()).is_some() {
            bail!("{shown}: column `{h}` appears twice in the header");
        }
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let mut rows = Vec::new();
    let mut by_path: HashMap<PathBuf, usize> = HashMap::new();
    for rec in r.records() {
        let rec = rec.with_context(|| format!("{shown}: malformed line"))?;
        let line = rec.position().map_or(0, |p| p.line() as usize);
        let cells: BTreeMap<String, String> = header
            .iter()
            .cloned()
            .zip(rec.iter().map(str::to_owned))
            .collect();
        let trace = cells.get("trace").map(String::as_str).unwrap_or("");
        if trace.is_empty() {
            bail!("{shown}:{line}: the `trace` cell is empty");
        }
        let resolved = base.join(trace);
        let canonical = std::fs::canonicalize(&resolved).with_context(|| {
            format!(
                "{shown}:{line}: trace {trace} ({}) cannot be read",
                resolved.display()
            )
        })?;
        if let Some(first) = by_path.insert(canonical.clone(), line) {
            bail!("{shown}:{line}: trace {trace} is already listed on line {first}");
        }
        let get = |k: &str| cells.get(k).filter(|v| !v.is_empty()).cloned();
        let labels = Labels {
            run: get("run"),
            host: get("host"),
            workload: get("workload"),
            config: get("config"),
            extra: Vec::new(),
        };
        rows.push((canonical, line, labels, cells));
    }
    if rows.is_empty() {
        bail!("{shown}: the manifest lists no trace");
    }
    Ok(Manifest {
        path: path.to_owned(),
        columns: header,
        rows,
    })
}

/// The inputs of one call: files as given; directories walked (or read through their own
/// `manifest.csv`); labels from the manifests. With `manifest` and no input, the manifest's
/// traces are the inputs.
pub fn expand(given: &[PathBuf], manifest: Option<&Path>) -> Result<Inputs> {
    let mut manifests = Vec::new();
    if let Some(m) = manifest {
        manifests.push(read_manifest(m)?);
    }
    let mut paths: Vec<(PathBuf, Option<(usize, usize)>)> = Vec::new();
    let mut notes = Vec::new();
    if given.is_empty() {
        if let Some(m) = manifests.first() {
            paths.extend((0..m.rows.len()).map(|i| (m.rows[i].0.clone(), Some((0, i)))));
        }
    }
    for g in given {
        let meta = std::fs::metadata(g).with_context(|| format!("cannot read {}", g.display()))?;
        let own = g.join(MANIFEST_NAME);
        if meta.is_dir() && own.is_file() && detect(g).ok() != Some(InputKind::HwpcCsvDir) {
            let canonical_own = std::fs::canonicalize(&own)?;
            let already = manifests
                .iter()
                .position(|m| std::fs::canonicalize(&m.path).ok() == Some(canonical_own.clone()));
            let mi = match already {
                Some(i) => i,
                None => {
                    manifests.push(read_manifest(&own)?);
                    manifests.len() - 1
                }
            };
            let m = &manifests[mi];
            paths.extend((0..m.rows.len()).map(|i| (m.rows[i].0.clone(), Some((mi, i)))));
        } else if meta.is_dir() && detect(g).ok() != Some(InputKind::HwpcCsvDir) {
            let before = paths.len();
            walk(g, &mut paths, &mut notes)?;
            if paths.len() == before {
                bail!(
                    "{} holds no trace, perf.data file or hwpc-sensor CSV directory",
                    g.display()
                );
            }
        } else {
            paths.push((g.clone(), None));
        }
    }
    // Inputs given by path take their labels from a manifest that lists them.
    let mut listed: HashMap<PathBuf, (usize, usize)> = HashMap::new();
    for (mi, m) in manifests.iter().enumerate() {
        for (ri, r) in m.rows.iter().enumerate() {
            listed.entry(r.0.clone()).or_insert((mi, ri));
        }
    }
    let mut extra_columns: Vec<String> = Vec::new();
    for m in &manifests {
        for c in &m.columns {
            if !KNOWN.contains(&c.as_str()) && !extra_columns.contains(c) {
                extra_columns.push(c.clone());
            }
        }
    }
    let mut seen: HashMap<PathBuf, PathBuf> = HashMap::new();
    let mut inputs = Vec::new();
    for (path, at) in paths {
        let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if let Some(first) = seen.insert(canonical.clone(), path.clone()) {
            notes.push(format!(
                "{} is the same input as {}: read once",
                path.display(),
                first.display()
            ));
            continue;
        }
        let at = at.or_else(|| listed.get(&canonical).copied());
        let labels = match at {
            Some((mi, ri)) => {
                let (_, _, labels, cells) = &manifests[mi].rows[ri];
                let mut l = labels.clone();
                l.extra = extra_columns
                    .iter()
                    .map(|c| cells.get(c).filter(|v| !v.is_empty()).cloned())
                    .collect();
                l
            }
            None => Labels {
                extra: vec![None; extra_columns.len()],
                ..Labels::default()
            },
        };
        inputs.push(Input { path, labels });
    }
    Ok(Inputs {
        inputs,
        extra_columns,
        notes,
    })
}

/// Everything under `dir` that pws-analyze reads by itself: traces, perf.data files, and
/// directories of hwpc-sensor CSV reports (as one input each). JSON files are not taken from a
/// walk (too many JSON files are not reports): name them, or list them in a manifest.
fn walk(
    dir: &Path,
    out: &mut Vec<(PathBuf, Option<(usize, usize)>)>,
    notes: &mut Vec<String>,
) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("cannot list {}", dir.display()))?;
    entries.sort();
    let mut skipped = 0usize;
    for p in entries {
        if p.is_dir() {
            if detect(&p).ok() == Some(InputKind::HwpcCsvDir) {
                out.push((p, None));
            } else {
                walk(&p, out, notes)?;
            }
        } else if p.is_file() {
            match detect(&p) {
                Ok(InputKind::Pws | InputKind::PerfData) => out.push((p, None)),
                _ => skipped += 1,
            }
        }
    }
    if skipped > 0 {
        notes.push(format!(
            "{}: {skipped} file(s) that are not traces or perf.data skipped",
            dir.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let mut b = pws_trace::FILE_MAGIC.to_vec();
        b.extend([0u8; 8]);
        std::fs::write(p, b).unwrap();
    }

    #[test]
    fn a_directory_is_walked_and_labelled_by_its_manifest() {
        let d = tempfile::tempdir().unwrap();
        trace(&d.path().join("node-1/a.pws"));
        trace(&d.path().join("node-2/b.pws"));
        std::fs::write(d.path().join("node-2/notes.txt"), "hello").unwrap();
        // Without a manifest: every trace, nothing labelled, the text file skipped.
        let all = expand(&[d.path().to_owned()], None).unwrap();
        assert_eq!(all.inputs.len(), 2);
        assert!(all.inputs.iter().all(|i| i.labels == Labels::default()));
        assert!(all.notes[0].contains("1 file(s)"), "{:?}", all.notes);
        // With one: only its rows, with their labels and the extra column.
        std::fs::write(
            d.path().join(MANIFEST_NAME),
            "trace,run,host,workload,config,keep_alive\nnode-2/b.pws,r1,n2,azure,\"f=1,e=rapl\",10m\n",
        )
        .unwrap();
        let m = expand(&[d.path().to_owned()], None).unwrap();
        assert_eq!(m.inputs.len(), 1);
        assert_eq!(m.extra_columns, ["keep_alive"]);
        let l = &m.inputs[0].labels;
        assert_eq!(l.run.as_deref(), Some("r1"));
        assert_eq!(l.host.as_deref(), Some("n2"));
        assert_eq!(l.config.as_deref(), Some("f=1,e=rapl"));
        assert_eq!(l.extra, [Some("10m".to_owned())]);
        // A file given by path takes its labels from --manifest (a job array's element).
        let one = expand(
            &[d.path().join("node-2/b.pws")],
            Some(&d.path().join(MANIFEST_NAME)),
        )
        .unwrap();
        assert_eq!(one.inputs[0].labels.workload.as_deref(), Some("azure"));
        // The manifest alone names the inputs.
        let only = expand(&[], Some(&d.path().join(MANIFEST_NAME))).unwrap();
        assert_eq!(only.inputs.len(), 1);
    }

    #[test]
    fn manifest_errors_name_file_and_line() {
        let d = tempfile::tempdir().unwrap();
        trace(&d.path().join("a.pws"));
        let m = d.path().join("m.csv");
        std::fs::write(&m, "path,run\na.pws,r\n").unwrap();
        let e = format!("{:#}", expand(&[], Some(&m)).unwrap_err());
        assert!(e.contains("no `trace` column"), "{e}");
        std::fs::write(&m, "trace,run\na.pws,r\nmissing.pws,r\n").unwrap();
        let e = format!("{:#}", expand(&[], Some(&m)).unwrap_err());
        assert!(e.contains("m.csv:3") && e.contains("missing.pws"), "{e}");
        std::fs::write(&m, "trace,run\na.pws,r\n./a.pws,s\n").unwrap();
        let e = format!("{:#}", expand(&[], Some(&m)).unwrap_err());
        assert!(e.contains("already listed on line 2"), "{e}");
        std::fs::write(&m, "trace,run\na.pws,r,extra\n").unwrap();
        let e = format!("{:#}", expand(&[], Some(&m)).unwrap_err());
        assert!(e.contains("malformed"), "{e}");
        let empty = d.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let e = format!("{:#}", expand(&[empty], None).unwrap_err());
        assert!(e.contains("holds no trace"), "{e}");
    }
}
