//! A trace whose activations come from an OpenWhisk invoker log alone — the container events
//! and activation records `pws-record --invoker-log` derives from it, and the containers'
//! cgroups — analysed through the real binary: every activation is tied to its container by
//! the log, with its start type.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use arrow_array::{BooleanArray, StringArray, UInt64Array};
use common::{col, read};
use pws_openwhisk::invoker_log::activations::Assembler;
use pws_openwhisk::invoker_log::link::Linker;
use pws_openwhisk::invoker_log::parse::parse_line;
use pws_trace::records::*;
use pws_trace::{TraceWriter, WriterOptions};

/// The trace clock's start and the wall clock then (2024-03-05T10:14:50Z, before the log).
const T0: u64 = 5_000_000_000;
const T0_REALTIME: u64 = 1_709_633_690_000_000_000;
const C1: &str = "4e5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d0c1b2a3f4e5d";
const PRE: &str = "9f1c2d3e4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d";
const C4: &str = "b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6";

fn place(epoch_ms: u64) -> u64 {
    epoch_ms * 1_000_000 - (T0_REALTIME - T0)
}

/// Writes the trace pws-record would make of `tests/data/invoker.log` of the openwhisk crate
/// on a host where each container's cgroup is `/docker/<id>`; returns its end.
pub fn write_log_trace(path: &Path, extra: &[CgroupEvent], more: &[ActivationRecord]) -> u64 {
    let log = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../openwhisk/tests/data/invoker.log"
    );
    let text = std::fs::read_to_string(log).unwrap();
    let (mut linker, mut asm) = (Linker::new(), Assembler::new());
    let (mut events, mut records) = (Vec::new(), Vec::new());
    for ev in text.lines().filter_map(|l| parse_line(l).ok().flatten()) {
        for l in linker.feed(&ev) {
            let mut e = l.event;
            e.ts_ns = place(l.ts_epoch_ms);
            events.push(e);
        }
        if let Some(mut r) = asm.feed(&ev) {
            r.start_ns = place(r.start_epoch_ms);
            r.end_ns = place(r.end_epoch_ms);
            records.push(r);
        }
    }
    let end = events.iter().map(|e| e.ts_ns).max().unwrap() + 1_000_000_000;
    let mut w = TraceWriter::create(path, WriterOptions::default()).unwrap();
    w.write(&TraceInfo {
        hostname: "invoker0".into(),
        recorder: "pws-record".into(),
        clock: CLOCK_MONOTONIC,
        start_monotonic_ns: T0,
        start_realtime_ns: T0_REALTIME,
        cpus: vec![CpuInfo {
            cpu: 0,
            online: true,
            ..CpuInfo::default()
        }],
        metadata: vec![("run".into(), "log-only".into())],
        ..TraceInfo::default()
    })
    .unwrap();
    w.write(&ClockSync {
        pairs: vec![ClockPair {
            monotonic_ns: T0,
            realtime_ns: T0_REALTIME,
            uncertainty_ns: 0,
        }],
    })
    .unwrap();
    let mut cg: Vec<CgroupEvent> = [(PRE, 0), (C1, 1), (C4, 2)]
        .iter()
        .map(|(id, k)| CgroupEvent {
            ts_ns: T0 + 1_000_000 * k,
            op: CgroupOp::Mkdir,
            cgroup_id: 100 + k,
            hierarchy: 0,
            path: format!("/docker/{id}"),
            pid: 0,
            detail: String::new(),
        })
        .collect();
    cg.extend_from_slice(extra);
    w.write(&CgroupEvents { events: cg }).unwrap();
    w.write(&ContainerEvents { events }).unwrap();
    records.extend_from_slice(more);
    w.write(&Activations { records }).unwrap();
    w.finish(end).unwrap();
    end
}

pub fn analyze(trace: &Path, out: &Path) {
    let o = Command::new(env!("CARGO_BIN_EXE_pws-analyze"))
        .arg(trace)
        .args(["-q", "-o"])
        .arg(out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "pws-analyze: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn the_invoker_log_alone_ties_every_activation_to_its_container() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("log.pws");
    write_log_trace(&trace, &[], &[]);
    let out = dir.path().join("tables");
    analyze(&trace, &out);
    let mut got: HashMap<String, (String, String, String, bool)> = HashMap::new();
    for b in read(&out.join("activations")) {
        let s = |n| col::<StringArray>(&b, n);
        for i in 0..b.num_rows() {
            got.insert(
                s("activation_id").value(i).to_owned(),
                (
                    s("container_id").value(i).to_owned(),
                    s("join_method").value(i).to_owned(),
                    s("start_type").value(i).to_owned(),
                    col::<BooleanArray>(&b, "cold").value(i),
                ),
            );
        }
    }
    let want =
        |c: &str, st: &str, cold| (c.to_owned(), "invoker-log".to_owned(), st.to_owned(), cold);
    let expected: HashMap<String, _> = [
        ("2f6c3a0e9b8d4c7a8e1f0b2d3c4a5e6f", want(C1, "cold", true)),
        ("7c1d2e3f4a5b4c6d8e9f0a1b2c3d4e5f", want(C1, "warm", false)),
        (
            "a0b1c2d3e4f5465788a9b0c1d2e3f4a5",
            want(PRE, "prewarmed", false),
        ),
        ("d4c3b2a1f0e94d8c7b6a5f4e3d2c1b0a", want(C4, "cold", true)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(got, expected);
    // The container rows carry the cgroups the ids name.
    let mut acts: HashMap<String, (String, u64)> = HashMap::new();
    for b in read(&out.join("containers")) {
        for i in 0..b.num_rows() {
            acts.insert(
                col::<StringArray>(&b, "container_id").value(i).to_owned(),
                (
                    col::<StringArray>(&b, "cgroup").value(i).to_owned(),
                    col::<UInt64Array>(&b, "activations").value(i),
                ),
            );
        }
    }
    assert_eq!(acts[C1], (format!("/docker/{C1}"), 2));
    assert_eq!(acts[C4].1, 1);
    // No cgroup was seen frozen: the log's `runc pause`/`resume` stand in, 02.013 → 07.320 and
    // 07.412 → 10:25:02.050 (resumed before its `docker rm`).
    let paused = paused(&out);
    assert_eq!(
        paused[C1],
        (5_307_000_000 + 594_638_000_000, "invoker-log".to_owned())
    );
    assert_eq!(paused[PRE], (0, String::new()));
}

/// container id → (paused_ns, paused_source).
fn paused(out: &Path) -> HashMap<String, (u64, String)> {
    let mut m = HashMap::new();
    for b in read(&out.join("containers")) {
        for i in 0..b.num_rows() {
            m.insert(
                col::<StringArray>(&b, "container_id").value(i).to_owned(),
                (
                    col::<UInt64Array>(&b, "paused_ns").value(i),
                    col::<StringArray>(&b, "paused_source").value(i).to_owned(),
                ),
            );
        }
    }
    m
}

/// Freezes seen on the cgroups win over the log's pauses: a v1 freezer span on the v1 twin
/// of a container's v2 cgroup (Docker's cgroupfs driver on a hybrid host), and a v2 cgroup
/// frozen when recording started.
#[test]
fn cgroup_freezes_of_every_kind_are_the_containers_pauses() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("frozen.pws");
    let ev = |ts: u64, op, id: u64, h: u32, c: &str| CgroupEvent {
        ts_ns: ts,
        op,
        cgroup_id: id,
        hierarchy: h,
        path: format!("/docker/{c}"),
        pid: 0,
        detail: String::new(),
    };
    let s = 1_000_000_000;
    let extra = [
        // C1's v1 twin frozen 3 s..5 s; the log's pauses of C1 then do not count.
        ev(T0, CgroupOp::Exists, 900, 4, C1),
        ev(T0 + 3 * s, CgroupOp::Freeze, 900, 4, C1),
        ev(T0 + 5 * s, CgroupOp::Thaw, 900, 4, C1),
        // The stem cell's v2 cgroup frozen at the start snapshot, thawed at 9 s.
        ev(T0, CgroupOp::Freeze, 100, 0, PRE),
        ev(T0 + 9 * s, CgroupOp::Thaw, 100, 0, PRE),
    ];
    write_log_trace(&trace, &extra, &[]);
    let out = dir.path().join("tables");
    analyze(&trace, &out);
    let paused = paused(&out);
    assert_eq!(paused[C1], (2 * s, "cgroup-v1-freezer".to_owned()));
    assert_eq!(paused[PRE], (9 * s, "frozen-at-start".to_owned()));
    assert_eq!(paused[C4], (0, String::new()));
}

/// The REST API's record of the prewarmed activation (an `initTime`, so `cold` as far as it
/// can tell) and the log's make one row: the record's values, the log's start type.
#[test]
fn a_rest_record_and_the_logs_make_one_row() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("both.pws");
    let aid = "a0b1c2d3e4f5465788a9b0c1d2e3f4a5";
    let rest = ActivationRecord {
        activation_id: aid.into(),
        namespace: "guest".into(),
        action: "greet".into(),
        version: "0.0.1".into(),
        source: ActivationSource::RestApi,
        kind: "nodejs:20".into(),
        start_type: StartType::Cold,
        start_epoch_ms: 1_709_633_709_133,
        end_epoch_ms: 1_709_633_709_205,
        start_ns: place(1_709_633_709_133),
        end_ns: place(1_709_633_709_205),
        wait_ms: Some(12),
        init_ms: Some(58),
        duration_ms: Some(72),
        status_code: Some(0),
        memory_limit_mb: Some(256),
        timeout_ms: Some(60_000),
        container_id: String::new(),
        path: "guest/greet".into(),
        caused_by: String::new(),
        raw: String::new(),
    };
    write_log_trace(&trace, &[], &[rest]);
    let out = dir.path().join("tables");
    analyze(&trace, &out);
    let mut rows = Vec::new();
    for b in read(&out.join("activations")) {
        for i in 0..b.num_rows() {
            if col::<StringArray>(&b, "activation_id").value(i) == aid {
                rows.push((
                    col::<StringArray>(&b, "start_type").value(i).to_owned(),
                    col::<StringArray>(&b, "join_method").value(i).to_owned(),
                    col::<UInt64Array>(&b, "init_ms").value(i),
                    col::<UInt64Array>(&b, "wait_ms").value(i),
                    col::<UInt64Array>(&b, "status_code").value(i),
                ));
            }
        }
    }
    assert_eq!(
        rows,
        [("prewarmed".to_owned(), "invoker-log".to_owned(), 58, 12, 0)],
        "one row: the record's init, wait and status, the log's start type"
    );
}
