//! A whole experiment on this machine, as a user runs it:
//! `pws-record --activations … --invoker-log … -- pws-load run small.yaml …`, then checks that
//! the trace holds every activation of the workload exactly once, linked to its container, and
//! that each container's lifecycle the platform logged (create, pause, resume, remove) is also
//! in the kernel's own cgroup events the recorder captured. Needs root (system-wide perf, cgroup
//! creation); elsewhere it says why and skips.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use pws_tests::{bin, run_with_timeout};
use pws_trace::perf::{PerfAttrs, PerfRecord};
use pws_trace::records::{ContainerOp, StartType};
use pws_trace::{Record, Trace};

fn workload() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/loader/workloads/small.yaml")
}

#[test]
fn a_local_experiment_is_recorded_whole() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: needs root (system-wide perf, cgroups)");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let (acts, log, trace) = (
        d.path().join("acts.jsonl"),
        d.path().join("invoker.log"),
        d.path().join("run.pws"),
    );
    let out = run_with_timeout(
        Command::new(bin("pws-record"))
            .arg("-o")
            .arg(&trace)
            .args(["-q", "--energy", "simulated", "--activations"])
            .arg(&acts)
            .arg("--invoker-log")
            .arg(&log)
            .arg("--")
            .arg(bin("pws-load"))
            .arg("run")
            .arg(workload())
            .args(["-q", "--activations-out"])
            .arg(&acts)
            .arg("--invoker-log-out")
            .arg(&log),
        Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // What the platform wrote.
    let written: Vec<serde_json::Value> = std::fs::read_to_string(&acts)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: HashSet<String> = written
        .iter()
        .map(|v| v["activationId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 17, "small.yaml has 17 arrivals");

    // What the trace holds.
    let t = Trace::open(&trace).unwrap();
    let mut info = None;
    let (mut records, mut containers) = (Vec::new(), Vec::new());
    let mut perf: HashMap<u32, Vec<u8>> = HashMap::new();
    for b in t.blocks() {
        match b.unwrap().decode().unwrap() {
            Record::TraceInfo(i) => info = Some(*i),
            Record::Activations(a) => records.extend(a.records),
            Record::ContainerEvents(c) => containers.extend(c.events),
            Record::PerfData(p) => perf.entry(p.cpu).or_default().extend_from_slice(&p.data),
            _ => {}
        }
    }
    let mut seen: Vec<&str> = records.iter().map(|r| r.activation_id.as_str()).collect();
    seen.sort_unstable();
    let n = seen.len();
    seen.dedup();
    assert_eq!(n, seen.len(), "an activation is in the trace twice");
    assert_eq!(
        seen.iter().map(|s| s.to_string()).collect::<HashSet<_>>(),
        ids,
        "every activation of the workload, exactly once"
    );
    assert!(records
        .iter()
        .all(|r| r.start_ns > 0 && r.end_ns >= r.start_ns));

    // Every activation linked by the invoker log to a container whose cgroup was resolved.
    let assigned: HashMap<&str, &pws_trace::records::ContainerEvent> = containers
        .iter()
        .filter(|e| e.op == ContainerOp::Assign)
        .map(|e| (e.activation_id.as_str(), e))
        .collect();
    for id in &ids {
        let e = assigned
            .get(id.as_str())
            .unwrap_or_else(|| panic!("activation {id} has no container link"));
        assert!(
            e.cgroup_path.contains(&e.container_id),
            "cgroup of {}: {:?}",
            e.container_id,
            e.cgroup_path
        );
    }
    let starts: HashSet<StartType> = assigned.values().map(|e| e.start_type).collect();
    assert!(
        starts.contains(&StartType::Cold) && starts.contains(&StartType::Warm),
        "{starts:?}"
    );

    // The kernel's view: each container's cgroup made, frozen, thawed and removed, from the
    // cgroup tracepoints in the perf rings.
    let info = info.unwrap();
    let attrs = PerfAttrs::new(&info.perf_events).unwrap();
    let mut kernel: HashMap<String, Vec<&'static str>> = HashMap::new();
    for data in perf.values() {
        for r in attrs.records(data) {
            if let Ok(PerfRecord::Sample(s)) = r {
                let ev = &attrs.events[s.id.event];
                let (Some(fmt), Some(raw)) = (&ev.format, s.raw) else {
                    continue;
                };
                let op = match ev.name.as_str() {
                    "cgroup:cgroup_mkdir" => "mkdir",
                    "cgroup:cgroup_freeze" => "freeze",
                    "cgroup:cgroup_unfreeze" => "thaw",
                    "cgroup:cgroup_rmdir" => "rmdir",
                    _ => continue,
                };
                let path = fmt.str(raw, "path").unwrap_or("");
                if let Some(id) = path.rsplit('/').next().filter(|x| x.len() == 64) {
                    kernel.entry(id.to_owned()).or_default().push(op);
                }
            }
        }
    }
    let logged: HashMap<&str, Vec<ContainerOp>> =
        containers.iter().fold(HashMap::new(), |mut m, e| {
            m.entry(e.container_id.as_str()).or_default().push(e.op);
            m
        });
    assert!(!logged.is_empty());
    for (id, ops) in &logged {
        let k = kernel
            .get(*id)
            .unwrap_or_else(|| panic!("container {id}: no cgroup events"));
        assert!(k.contains(&"mkdir") && k.contains(&"rmdir"), "{id}: {k:?}");
        let pauses = ops.iter().filter(|o| **o == ContainerOp::Pause).count();
        let freezes = k.iter().filter(|o| **o == "freeze").count();
        assert_eq!(pauses, freezes, "{id}: log {ops:?} kernel {k:?}");
    }
}
