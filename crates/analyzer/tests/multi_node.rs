//! A multi-node experiment's traces: one call over the directory (labelled by its manifest) and
//! per-trace jobs (as a job array runs them) give the same dataset, every table carrying the
//! manifest's run, host, workload, configuration and extra columns.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use arrow_array::{Array, StringArray};
use common::{col, read};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pws-analyze")
}

fn synth(p: &Path, seed: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    let st = Command::new(bin())
        .args(["synth", "--seconds", "3", "--seed", seed, "-o"])
        .arg(p)
        .status()
        .unwrap();
    assert!(st.success());
}

fn analyze(args: &[&Path], extra: &[&str], out: &Path) {
    let o = Command::new(bin())
        .arg("-q")
        .args(extra)
        .args(args)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Relative paths of every file under `dir`.
fn files(dir: &Path) -> BTreeSet<String> {
    common::files_under(dir)
        .iter()
        .map(|p| p.strip_prefix(dir).unwrap().display().to_string())
        .collect()
}

#[test]
fn a_directory_of_traces_and_per_trace_jobs_make_one_labelled_dataset() {
    let d = tempfile::tempdir().unwrap();
    let exp = d.path().join("exp");
    synth(&exp.join("node-1/trace.pws"), "1");
    synth(&exp.join("node-2/trace.pws"), "2");
    std::fs::write(exp.join("node-2/recorder.log"), "not a trace").unwrap();
    let manifest = exp.join("manifest.csv");
    std::fs::write(
        &manifest,
        "trace,run,host,workload,config,keep_alive\n\
         node-1/trace.pws,exp-1,node-1,small,freq=1000,10m\n\
         node-2/trace.pws,exp-1,node-2,small,freq=1000,\n",
    )
    .unwrap();

    // One call over the directory.
    let whole = d.path().join("whole");
    analyze(&[&exp], &[], &whole);
    for table in ["power", "usage", "containers", "activations", "attribution"] {
        let batches = read(&whole.join(table));
        assert!(!batches.is_empty(), "{table}");
        let mut hosts = BTreeSet::new();
        for b in &batches {
            for (name, want) in [("run", Some("exp-1")), ("workload", Some("small"))] {
                let c: &StringArray = col(b, name);
                assert!(
                    (0..b.num_rows()).all(|i| c.is_valid(i) && Some(c.value(i)) == want),
                    "{table}.{name}"
                );
            }
            let host: &StringArray = col(b, "host");
            let keep: &StringArray = col(b, "keep_alive");
            for i in 0..b.num_rows() {
                hosts.insert(host.value(i).to_owned());
                // The empty cell of node-2 is a null, not "".
                assert_eq!(
                    keep.is_valid(i),
                    host.value(i) == "node-1",
                    "{table}: keep_alive on {}",
                    host.value(i)
                );
            }
            let config: &StringArray = col(b, "config");
            assert_eq!(config.value(0), "freq=1000");
        }
        if table != "containers" {
            assert_eq!(hosts.len(), 2, "{table}: {hosts:?}");
        }
    }
    assert!(whole.join("activations/run=exp-1/host=node-1").is_dir());

    // The same as independent jobs, one per trace, merging by the partition layout.
    let jobs = d.path().join("jobs");
    for node in ["node-1", "node-2"] {
        let trace = exp.join(node).join("trace.pws");
        analyze(
            &[&trace],
            &["--manifest", manifest.to_str().unwrap()],
            &jobs,
        );
    }
    assert_eq!(files(&whole), files(&jobs));
    let rows = |dir: &Path| -> usize { read(dir).iter().map(|b| b.num_rows()).sum() };
    assert_eq!(
        rows(&whole.join("activations")),
        rows(&jobs.join("activations"))
    );

    // The manifest alone names the inputs.
    let only = d.path().join("only");
    analyze(&[], &["--manifest", manifest.to_str().unwrap()], &only);
    assert_eq!(files(&whole), files(&only));
}
