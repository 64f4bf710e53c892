//! `pws-analyze timeline`: the Chrome trace-event JSON must show what the tables say. On a
//! synthetic trace, every activation once with its duration, the containers as named tracks,
//! power counters whose integral is the `power` table's energy; on the recorded experiment of
//! datasets/local-default, the pauses as slices adding up to the `containers` table's paused
//! time; and every thread's slices drawable (nested or disjoint).

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{col, read};

use arrow_array::{Float64Array, StringArray, TimestampNanosecondArray, UInt64Array};
use serde_json::Value;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pws-analyze")
}

fn run_ok(args: &[&std::ffi::OsStr]) {
    let o = Command::new(bin()).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "pws-analyze {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The timeline of `trace`, parsed, and the tables of the same trace in `dir/tables`.
fn timeline_and_tables(trace: &Path, dir: &Path) -> (Value, PathBuf) {
    let json = dir.join("timeline.json");
    let tables = dir.join("tables");
    run_ok(&[
        "timeline".as_ref(),
        trace.as_os_str(),
        "-o".as_ref(),
        json.as_os_str(),
    ]);
    run_ok(&[
        trace.as_os_str(),
        "-q".as_ref(),
        "-o".as_ref(),
        tables.as_os_str(),
    ]);
    let v: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    (v, tables)
}

fn events(v: &Value) -> &Vec<Value> {
    v["traceEvents"].as_array().expect("traceEvents")
}

fn f(e: &Value, k: &str) -> f64 {
    e[k].as_f64().unwrap_or_else(|| panic!("{k} in {e}"))
}

/// (pid, tid) → thread name, and pid → process name event.
fn names(evs: &[Value]) -> (HashMap<(u64, u64), String>, HashMap<u64, Value>) {
    let (mut threads, mut procs) = (HashMap::new(), HashMap::new());
    for e in evs.iter().filter(|e| e["ph"] == "M") {
        let pid = e["pid"].as_u64().unwrap();
        match e["name"].as_str().unwrap() {
            "thread_name" => {
                let tid = e["tid"].as_u64().unwrap();
                let name = e["args"]["name"].as_str().unwrap().to_owned();
                assert!(
                    threads.insert((pid, tid), name).is_none(),
                    "one name per thread"
                );
            }
            "process_name" => {
                assert!(
                    procs.insert(pid, e["args"].clone()).is_none(),
                    "one name per process"
                );
            }
            _ => {}
        }
    }
    (threads, procs)
}

/// Every timestamp inside [0, span]; every slice on a named thread, and a thread's slices
/// nested or disjoint (what a viewer can draw).
fn check_layout(v: &Value) {
    let evs = events(v);
    let span = f(&v["metadata"], "span_us");
    assert!(span > 0.0);
    let (threads, _) = names(evs);
    let mut per_thread: BTreeMap<(u64, u64), Vec<(f64, f64)>> = BTreeMap::new();
    for e in evs.iter().filter(|e| e["ph"] != "M") {
        let ts = f(e, "ts");
        let end = ts + e["dur"].as_f64().unwrap_or(0.0);
        assert!(ts >= 0.0 && end <= span + 1e-6, "outside [0, {span}]: {e}");
        if e["ph"] == "X" {
            let key = (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap());
            assert!(
                threads.contains_key(&key),
                "slice on an unnamed thread: {e}"
            );
            per_thread.entry(key).or_default().push((ts, end));
        }
    }
    for (key, mut slices) in per_thread {
        slices.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
        let mut open: Vec<f64> = Vec::new();
        for (a, b) in slices {
            while open.last().is_some_and(|&e| e <= a) {
                open.pop();
            }
            if let Some(&outer) = open.last() {
                assert!(
                    b <= outer,
                    "thread {key:?}: [{a}, {b}] overlaps a slice ending at {outer}"
                );
            }
            open.push(b);
        }
    }
}

#[test]
fn a_synthetic_trace_as_a_timeline_says_what_the_tables_say() {
    let d = tempfile::tempdir().unwrap();
    let trace = d.path().join("synth.pws");
    run_ok(&[
        "synth".as_ref(),
        "--seconds".as_ref(),
        "5".as_ref(),
        "-o".as_ref(),
        trace.as_os_str(),
    ]);
    let (v, tables) = timeline_and_tables(&trace, d.path());
    assert!(!d.path().join("timeline.json.part").exists());
    assert_eq!(v["displayTimeUnit"], "ms");
    let meta = &v["metadata"];
    assert_eq!(meta["energy_source"], "simulated", "{meta}");
    assert_eq!(
        (meta["run"].as_str(), meta["host"].as_str()),
        (Some("synth"), Some("synth"))
    );
    assert_eq!(meta["start_utc"], "2026-01-01T00:00:00.000000000Z");
    // The span is the trace's, as `info` reads it.
    let info = Command::new(bin())
        .args(["info", "--json"])
        .arg(&trace)
        .output()
        .unwrap();
    let info: Value = serde_json::from_slice(&info.stdout).unwrap();
    let secs = info["span"]["seconds"].as_f64().unwrap();
    assert!(
        (f(meta, "span_us") - secs * 1e6).abs() < 1.0,
        "{meta} vs {secs} s"
    );
    check_layout(&v);
    let evs = events(&v);
    let (_, procs) = names(evs);

    // Every activation once, with its duration, on a track named after its action.
    let mut table: HashMap<String, (String, i64)> = HashMap::new();
    for b in read(&tables.join("activations")) {
        let (ids, acts) = (
            col::<StringArray>(&b, "activation_id"),
            col::<StringArray>(&b, "action"),
        );
        let (start, end) = (
            col::<TimestampNanosecondArray>(&b, "start"),
            col::<TimestampNanosecondArray>(&b, "end"),
        );
        for r in 0..b.num_rows() {
            let dur = end.value(r) - start.value(r);
            table.insert(ids.value(r).to_owned(), (acts.value(r).to_owned(), dur));
        }
    }
    assert!(table.len() > 50, "{} activations", table.len());
    let mut seen = HashSet::new();
    for e in evs
        .iter()
        .filter(|e| e["ph"] == "X" && e["cat"] == "activation")
    {
        let id = e["args"]["activation_id"].as_str().unwrap();
        assert!(seen.insert(id.to_owned()), "{id} drawn twice");
        let (action, dur_ns) = &table[id];
        assert_eq!(e["name"].as_str(), Some(action.as_str()));
        assert!(
            (f(e, "dur") - *dur_ns as f64 / 1e3).abs() < 1e-3,
            "{e}: {dur_ns} ns"
        );
        assert!(e["args"]["cpu_ms"].as_f64().unwrap() > 0.0, "{e}");
        let track = procs[&e["pid"].as_u64().unwrap()]["name"].as_str().unwrap();
        assert!(
            track.starts_with(&format!("{action} ")),
            "{track} for {action}"
        );
    }
    assert_eq!(
        seen.len(),
        table.len(),
        "every activation of the trace is drawn"
    );

    // One named process per container, with its life and cgroup.
    let containers: usize = read(&tables.join("containers"))
        .iter()
        .map(|b| b.num_rows())
        .sum();
    let lives: Vec<&Value> = evs
        .iter()
        .filter(|e| e["ph"] == "X" && e["cat"] == "container")
        .collect();
    assert_eq!(lives.len(), containers);
    for l in &lives {
        let p = &procs[&l["pid"].as_u64().unwrap()];
        assert!(!p["name"].as_str().unwrap().is_empty());
        assert!(p["cgroup"].as_str().unwrap().starts_with("/docker/"), "{p}");
        assert_eq!(p["cgroup"], l["args"]["cgroup"]);
    }

    // Power: the integral of the counters is the `power` table's energy.
    let table_j: f64 = read(&tables.join("power"))
        .iter()
        .map(|b| {
            col::<Float64Array>(b, "energy_j")
                .iter()
                .flatten()
                .sum::<f64>()
        })
        .sum();
    let mut tracks: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for e in evs.iter().filter(|e| e["ph"] == "C" && e["cat"] == "power") {
        tracks
            .entry(e["name"].as_str().unwrap())
            .or_default()
            .push((f(e, "ts"), f(&e["args"], "W")));
    }
    assert_eq!(tracks.len(), 1, "{:?}", tracks.keys());
    let mut j = 0.0;
    for pts in tracks.values_mut() {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        j += pts
            .windows(2)
            .map(|w| w[0].1 * (w[1].0 - w[0].0) / 1e6)
            .sum::<f64>();
    }
    assert!(table_j > 100.0, "{table_j} J");
    assert!(
        (j - table_j).abs() <= 0.005 * table_j,
        "{j} J drawn vs {table_j} J in `power`"
    );

    // Busy CPUs: between 0 and the synthetic machine's 2 CPUs, and not always idle.
    let busy: Vec<f64> = evs
        .iter()
        .filter(|e| e["ph"] == "C" && e["name"] == "busy CPUs")
        .map(|e| f(&e["args"], "package 0"))
        .collect();
    assert!(busy.iter().all(|b| (0.0..=2.0 + 1e-9).contains(b)));
    assert!(busy.iter().any(|&b| b > 0.5), "{busy:?}");
}

#[test]
fn pauses_of_a_recorded_experiment_are_slices() {
    let trace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../datasets/local-default/local-default.pws");
    assert!(
        trace.exists(),
        "{} is part of the repository",
        trace.display()
    );
    let d = tempfile::tempdir().unwrap();
    let (v, tables) = timeline_and_tables(&trace, d.path());
    check_layout(&v);
    assert_eq!(v["metadata"]["energy_source"], "simulated");
    let evs = events(&v);
    let (threads, _) = names(evs);
    let pauses: Vec<&Value> = evs
        .iter()
        .filter(|e| e["ph"] == "X" && e["cat"] == "paused")
        .collect();
    assert!(pauses.len() > 10, "{} pauses", pauses.len());
    let mut drawn_us = 0.0;
    for p in &pauses {
        let key = (p["pid"].as_u64().unwrap(), p["tid"].as_u64().unwrap());
        assert!(
            threads[&key].starts_with("paused"),
            "{p} on {}",
            threads[&key]
        );
        assert!(f(p, "dur") > 0.0);
        // On a container's process, beside its life.
        assert!(evs
            .iter()
            .any(|e| e["cat"] == "container" && e["pid"] == p["pid"]));
        drawn_us += f(p, "dur");
    }
    let table_ns: u64 = read(&tables.join("containers"))
        .iter()
        .map(|b| {
            col::<UInt64Array>(b, "paused_ns")
                .iter()
                .flatten()
                .sum::<u64>()
        })
        .sum();
    assert!(
        (drawn_us - table_ns as f64 / 1e3).abs() < pauses.len() as f64 * 1e-3,
        "{drawn_us} µs drawn vs {table_ns} ns in `containers`"
    );
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let d = tempfile::tempdir().unwrap();
    let junk = d.path().join("junk.pws");
    std::fs::write(&junk, b"not a trace at all, just some bytes").unwrap();
    let out = d.path().join("t.json");
    for trace in [junk, d.path().join("missing.pws")] {
        let o = Command::new(bin())
            .arg("timeline")
            .arg(&trace)
            .arg("-o")
            .arg(&out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.contains("pws-analyze: error:") && err.contains(&*trace.to_string_lossy()),
            "{err}"
        );
        assert!(!out.exists() && !d.path().join("t.json.part").exists());
    }
}
