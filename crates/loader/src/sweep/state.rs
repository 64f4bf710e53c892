//! What a sweep directory holds between calls: `sweep.json` (the sweep and workload files it
//! was started with, and the runs finished) and `manifest.csv` (a row per finished run, for
//! `pws-analyze DIR`). Both are replaced whole (written aside, then renamed), so an
//! interruption leaves the previous, consistent pair.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// One finished run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    pub run: String,
    /// The trace, relative to the sweep directory.
    pub trace: String,
    pub config: String,
    /// (setting, value) in the sweep's order.
    pub values: Vec<(String, String)>,
    pub repetition: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The sweep file's and the workload file's text when the sweep started.
    pub sweep: String,
    pub workload: String,
    pub workload_name: String,
    pub done: Vec<Done>,
}

const STATE: &str = "sweep.json";
pub const MANIFEST: &str = "manifest.csv";

impl State {
    /// The directory's state, or a new one. A directory started with other files is refused:
    /// its runs would not be comparable with the new ones.
    pub fn open(dir: &Path, sweep: &str, workload: &str, workload_name: &str) -> Result<Self> {
        let path = dir.join(STATE);
        if !path.exists() {
            if dir.join(MANIFEST).exists() {
                bail!(
                    "{} has a manifest.csv but no {STATE}: not a sweep directory of pws-load; give another -o",
                    dir.display()
                );
            }
            return Ok(Self {
                sweep: sweep.to_owned(),
                workload: workload.to_owned(),
                workload_name: workload_name.to_owned(),
                done: Vec::new(),
            });
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let s: State = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a sweep state file", path.display()))?;
        if s.sweep != sweep || s.workload != workload {
            bail!(
                "{} holds runs of another sweep (the sweep or workload file changed since it started): give another -o, or remove it",
                dir.display()
            );
        }
        Ok(s)
    }

    pub fn is_done(&self, run: &str) -> bool {
        self.done.iter().any(|d| d.run == run)
    }

    /// Writes `sweep.json` and `manifest.csv`.
    pub fn save(&self, dir: &Path, settings: &[String]) -> Result<()> {
        replace(
            &dir.join(STATE),
            serde_json::to_string_pretty(self)?.as_bytes(),
        )?;
        let mut m = String::from("trace,run,workload,config");
        for s in settings {
            m.push(',');
            m.push_str(&field(s));
        }
        m.push_str(",repetition\n");
        for d in &self.done {
            let mut row = vec![
                field(&d.trace),
                field(&d.run),
                field(&self.workload_name),
                field(&d.config),
            ];
            for s in settings {
                let v = d.values.iter().find(|(k, _)| k == s).map_or("", |(_, v)| v);
                row.push(field(v));
            }
            row.push(d.repetition.to_string());
            m.push_str(&row.join(","));
            m.push('\n');
        }
        replace(&dir.join(MANIFEST), m.as_bytes())
    }
}

/// A CSV field, quoted where it must be (RFC 4180).
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn replace(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp: PathBuf = path.with_extension("partial");
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_resumes_only_with_the_files_it_started_with() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = State::open(dir.path(), "sweep", "wl", "small").unwrap();
        s.done.push(Done {
            run: "p00-r1".into(),
            trace: "p00-r1/trace.pws".into(),
            config: "keep_alive=1s,prewarm=0".into(),
            values: vec![
                ("keep_alive".into(), "1s".into()),
                ("prewarm".into(), "0".into()),
            ],
            repetition: 1,
        });
        s.save(dir.path(), &["keep_alive".into(), "prewarm".into()])
            .unwrap();
        let again = State::open(dir.path(), "sweep", "wl", "small").unwrap();
        assert_eq!(again, s);
        assert!(again.is_done("p00-r1") && !again.is_done("p01-r1"));
        let m = std::fs::read_to_string(dir.path().join(MANIFEST)).unwrap();
        assert_eq!(
            m,
            "trace,run,workload,config,keep_alive,prewarm,repetition\n\
             p00-r1/trace.pws,p00-r1,small,\"keep_alive=1s,prewarm=0\",1s,0,1\n"
        );
        let err = State::open(dir.path(), "other sweep", "wl", "small").unwrap_err();
        assert!(format!("{err:#}").contains("another sweep"));
    }

    #[test]
    fn a_foreign_manifest_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(MANIFEST), "trace\nx.pws\n").unwrap();
        let err = State::open(dir.path(), "s", "w", "n").unwrap_err();
        assert!(format!("{err:#}").contains("not a sweep directory"));
    }
}
