//! `pws-analyze info` on finished, torn, corrupt and foreign files, through the real binary.

use std::path::Path;
use std::process::{Command, Output};

use pws_trace::records::*;
use pws_trace::{TraceWriter, WriterOptions};
use serde_json::Value;

fn analyze(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pws-analyze"))
        .args(args)
        .output()
        .unwrap()
}

fn write_trace(path: &Path, finish: bool) {
    let mut w = TraceWriter::create(path, WriterOptions::default()).unwrap();
    w.write(&TraceInfo {
        hostname: "invoker-3".into(),
        recorder: "pws-record".into(),
        clock: CLOCK_MONOTONIC,
        start_monotonic_ns: 5_000_000_000,
        start_realtime_ns: 1_764_170_000_000_000_000,
        cpus: (0..4)
            .map(|cpu| CpuInfo {
                cpu,
                online: true,
                package: cpu / 2,
                core: cpu % 2,
                ..CpuInfo::default()
            })
            .collect(),
        sources: vec![SourceInfo {
            kind: "energy".into(),
            name: "simulated".into(),
            status: SourceStatus::Used,
            detail: "SPECpower curve".into(),
        }],
        metadata: vec![("run".into(), "r7".into())],
        ..TraceInfo::default()
    })
    .unwrap();
    for cpu in 0..2 {
        w.write_perf_data(cpu, 0, 0, &[&vec![7u8; 4096]]).unwrap();
    }
    w.write(&EnergyBlock {
        series: vec![EnergySeries {
            source: EnergySource::Simulated,
            domain: EnergyDomain::Package,
            index: 0,
            name: "simulated-package".into(),
            unit_joules: 1e-6,
            wrap: 0,
            samples: (0..10)
                .map(|i| EnergySample {
                    ts_ns: 5_000_000_000 + i * 10_000_000,
                    raw: i * 1000,
                })
                .collect(),
        }],
    })
    .unwrap();
    w.write(&Statistics {
        ts_ns: 6_000_000_000,
        cpus: vec![
            CpuStats {
                cpu: 0,
                lost_records: 3,
                ..CpuStats::default()
            },
            CpuStats {
                cpu: 1,
                lost_records: 4,
                ..CpuStats::default()
            },
        ],
        sources: vec![],
    })
    .unwrap();
    w.write(&ClockSync {
        pairs: vec![ClockPair {
            monotonic_ns: 6_000_000_000,
            realtime_ns: 1_764_170_001_000_000_000,
            uncertainty_ns: 10,
        }],
    })
    .unwrap();
    if finish {
        w.finish(6_500_000_000).unwrap();
    } else {
        w.flush().unwrap();
        std::mem::forget(w);
    }
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn describes_a_finished_trace() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("run.pws");
    write_trace(&p, true);
    let v = json_of(&analyze(&["info", "--json", p.to_str().unwrap()]));
    assert_eq!(v["ended_cleanly"], true);
    assert_eq!(v["end_via_trailer"], true);
    assert_eq!(v["trace_info"]["hostname"], "invoker-3");
    assert_eq!(v["trace_info"]["cpus"].as_array().unwrap().len(), 4);
    assert_eq!(v["trace_info"]["metadata"]["run"], "r7");
    assert_eq!(v["clock"], "CLOCK_MONOTONIC");
    assert_eq!(v["lost_records"], 7);
    assert_eq!(v["span"]["first_ns"], 5_000_000_000u64);
    assert_eq!(v["span"]["last_ns"], 6_500_000_000u64);
    assert_eq!(v["span"]["first_utc"], "2025-11-26T15:13:20.000000000Z");
    assert_eq!(v["energy"][0]["measured"], false);
    assert_eq!(v["energy"][0]["samples"], 10);
    let perf = v["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "perf-data")
        .unwrap();
    assert_eq!(perf["count"], 2);
    assert_eq!(v["perf_cpus"].as_array().unwrap().len(), 2);

    let text = analyze(&["info", p.to_str().unwrap()]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("ended cleanly"), "{text}");
    assert!(text.contains("SIMULATED, not a measurement"), "{text}");
    assert!(text.contains("7 perf record(s) lost"), "{text}");
}

#[test]
fn reports_an_unfinished_and_a_torn_trace() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("killed.pws");
    write_trace(&p, false);
    let v = json_of(&analyze(&["info", "--json", p.to_str().unwrap()]));
    assert_eq!(v["ended_cleanly"], false);
    assert_eq!(v["end_block"], false);
    assert!(v["torn_tail"].is_null());

    let full = std::fs::read(&p).unwrap();
    std::fs::write(&p, &full[..full.len() - 5]).unwrap();
    let v = json_of(&analyze(&["info", "--json", p.to_str().unwrap()]));
    assert_eq!(v["ended_cleanly"], false);
    assert!(v["torn_tail"]["bytes"].as_u64().unwrap() > 0, "{v}");
    assert!(v["state"].as_str().unwrap().contains("torn tail"));
}

#[test]
fn corrupt_block_is_an_error_naming_it_unless_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.pws");
    write_trace(&p, true);
    let mut b = std::fs::read(&p).unwrap();
    let t = pws_trace::Trace::from_vec(b.clone()).unwrap();
    let energy = t
        .blocks()
        .map(|b| b.unwrap())
        .find(|b| b.kind() == pws_trace::BlockKind::ENERGY)
        .unwrap()
        .offset as usize;
    b[energy + 30] ^= 0xff;
    std::fs::write(&p, &b).unwrap();

    let out = analyze(&["info", p.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("energy block at byte offset {energy}")),
        "{err}"
    );
    assert!(err.contains("--skip-bad-blocks"), "{err}");

    let v = json_of(&analyze(&[
        "info",
        "--json",
        "--skip-bad-blocks",
        p.to_str().unwrap(),
    ]));
    assert_eq!(v["skipped"][0]["offset"], energy as u64);
    assert_eq!(v["ended_cleanly"], false);
    assert_eq!(v["end_block"], true);
}

#[test]
fn foreign_and_missing_files_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("notes.txt");
    std::fs::write(&p, "hello, this is not a trace at all").unwrap();
    let out = analyze(&["info", p.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a pws trace: wrong magic bytes"));

    let out = analyze(&["info", "/nonexistent/run.pws"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/run.pws") && err.contains("No such file"),
        "{err}"
    );

    // The other inputs pws-analyze takes are named as such.
    let hwpc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/powerapi-hwpc/hwpc.json");
    let out = analyze(&["info", hwpc.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is PowerAPI hwpc-sensor reports, not a .pws trace"),
        "{err}"
    );

    let out = analyze(&["info", "--no-such-flag", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-such-flag"));
}
