//! FORMAT.md is the specification: `python/pws_read.py` was written from it alone, without
//! this crate's source. Both readers must decode the same traces to the same values — random
//! traces, every block kind, torn tails and corruption included. A disagreement is a bug in
//! the document or in one of the readers.
mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use pws_trace::records::*;
use pws_trace::{Payload, ReadOptions, Record, Trace, TraceWriter, WriterOptions};
use serde_json::{json, Value};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn record_json(r: &Record<'_>) -> Value {
    match r {
        Record::TraceInfo(i) => json!({
            "hostname": i.hostname, "kernel_release": i.kernel_release, "kernel_version": i.kernel_version,
            "arch": i.arch, "cpu_model": i.cpu_model, "recorder": i.recorder, "recorder_version": i.recorder_version,
            "command_line": i.command_line, "clock": i.clock, "start_monotonic_ns": i.start_monotonic_ns,
            "start_realtime_ns": i.start_realtime_ns, "page_size": i.page_size,
            "cpus": i.cpus.iter().map(|c| json!({"cpu": c.cpu, "online": u8::from(c.online), "package": c.package,
                "die": c.die, "core": c.core, "numa_node": c.numa_node})).collect::<Vec<_>>(),
            "perf_events": i.perf_events.iter().map(|e| json!({"name": e.name, "pmu": e.pmu, "attr": hex(&e.attr),
                "ids": e.ids.iter().map(|x| json!({"cpu": x.cpu, "id": x.id})).collect::<Vec<_>>(), "format": e.format})).collect::<Vec<_>>(),
            "sources": i.sources.iter().map(|s| json!({"kind": s.kind, "name": s.name, "status": s.status.code(), "detail": s.detail})).collect::<Vec<_>>(),
            "metadata": i.metadata.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
        }),
        Record::PerfData(p) => json!({"cpu": p.cpu, "flags": p.flags, "ring_offset": p.ring_offset, "data": hex(&p.data)}),
        Record::Energy(e) => json!(e.series.iter().map(|s| json!({
            "source": s.source.code(), "domain": s.domain.code(), "index": s.index, "name": s.name,
            "unit_joules": s.unit_joules, "wrap": s.wrap,
            "samples": s.samples.iter().map(|x| json!({"ts_ns": x.ts_ns, "raw": x.raw})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>()),
        Record::CgroupEvents(c) => json!(c.events.iter().map(|e| json!({
            "ts_ns": e.ts_ns, "op": e.op.code(), "cgroup_id": e.cgroup_id, "hierarchy": e.hierarchy,
            "path": e.path, "pid": e.pid, "detail": e.detail,
        })).collect::<Vec<_>>()),
        Record::Activations(a) => json!(a.records.iter().map(|r| json!({
            "activation_id": r.activation_id, "namespace": r.namespace, "action": r.action, "version": r.version,
            "source": r.source.code(), "kind": r.kind, "start_type": r.start_type.code(),
            "start_epoch_ms": r.start_epoch_ms, "end_epoch_ms": r.end_epoch_ms, "start_ns": r.start_ns, "end_ns": r.end_ns,
            "wait_ms": r.wait_ms, "init_ms": r.init_ms, "duration_ms": r.duration_ms, "status_code": r.status_code,
            "memory_limit_mb": r.memory_limit_mb, "timeout_ms": r.timeout_ms, "container_id": r.container_id,
            "path": r.path, "caused_by": r.caused_by, "raw": r.raw,
        })).collect::<Vec<_>>()),
        Record::ContainerEvents(c) => json!(c.events.iter().map(|e| json!({
            "ts_ns": e.ts_ns, "op": e.op.code(), "source": e.source.code(), "container_id": e.container_id,
            "activation_id": e.activation_id, "action": e.action, "namespace": e.namespace,
            "start_type": e.start_type.code(), "cgroup_path": e.cgroup_path, "detail": e.detail,
        })).collect::<Vec<_>>()),
        Record::Statistics(s) => json!({
            "ts_ns": s.ts_ns,
            "cpus": s.cpus.iter().map(|c| json!({"cpu": c.cpu, "bytes": c.bytes, "lost_events": c.lost_events,
                "lost_records": c.lost_records, "throttled": c.throttled, "unthrottled": c.unthrottled, "wakeups": c.wakeups})).collect::<Vec<_>>(),
            "sources": s.sources.iter().map(|x| json!({"name": x.name, "reads": x.reads, "errors": x.errors, "last_error": x.last_error})).collect::<Vec<_>>(),
        }),
        Record::ClockSync(c) => json!(c.pairs.iter().map(|p| json!({
            "monotonic_ns": p.monotonic_ns, "realtime_ns": p.realtime_ns, "uncertainty_ns": p.uncertainty_ns,
        })).collect::<Vec<_>>()),
        Record::End(e) => json!({
            "end_monotonic_ns": e.end_monotonic_ns,
            "kinds": e.kinds.iter().map(|k| json!({"kind": k.kind, "blocks": k.blocks, "stored_bytes": k.stored_bytes, "raw_bytes": k.raw_bytes})).collect::<Vec<_>>(),
            "index": e.index.iter().map(|x| json!({"offset": x.offset, "kind": x.kind.0})).collect::<Vec<_>>(),
            "self_offset": e.self_offset,
        }),
        Record::CpuStat(c) => json!({
            "ticks_per_s": c.ticks_per_s, "irq_time": c.irq_time.code(), "steal_time": c.steal_time.code(), "fields": c.fields,
            "cpus": c.cpus.iter().map(|s| json!({"cpu": s.cpu,
                "samples": s.samples.iter().map(|x| json!({"ts_ns": x.ts_ns, "values": x.values})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        }),
        Record::Gpu(g) => json!(g.devices.iter().map(|d| json!({
            "device": d.device, "uuid": d.uuid, "name": d.name, "mig": u8::from(d.mig),
            "reads": d.reads.iter().map(|r| json!({"ts_ns": r.ts_ns, "power_mw": r.power_mw,
                "utilization": r.utilization.iter().map(|s| json!({"pid": s.pid, "timestamp_us": s.timestamp_us,
                    "sm": s.sm, "mem": s.mem, "enc": s.enc, "dec": s.dec})).collect::<Vec<_>>(),
                "processes": r.processes.iter().map(|p| json!({"pid": p.pid, "used_memory": p.used_memory})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>()),
        Record::PerfIndex(ix) => json!(ix.entries.iter().map(|e| json!({
            "offset": e.offset, "cpu": e.cpu, "flags": e.flags,
        })).collect::<Vec<_>>()),
        Record::Unknown(_) => Value::Null,
    }
}

/// What the Rust reader makes of a trace, in the shape `pws_read.py` prints.
fn rust_view(bytes: &[u8], skip: bool) -> Value {
    let trace = Trace::from_vec(bytes.to_vec()).unwrap();
    let h = trace.header();
    let mut it = trace.blocks_with(ReadOptions {
        skip_bad_blocks: skip,
    });
    let mut blocks = vec![];
    for b in it.by_ref() {
        let b = b.unwrap();
        blocks.push(json!({
            "offset": b.offset, "kind": b.kind().0, "name": b.kind().name(), "compressed": b.is_compressed(),
            "stored_len": b.header.stored_len, "raw_len": b.header.raw_len,
            "payload": record_json(&b.decode().unwrap()),
        }));
    }
    let st = it.into_status();
    json!({
        "header": {"major": h.major, "minor": h.minor, "flags": h.flags, "header_len": h.header_len},
        "blocks": blocks,
        "torn_tail": st.torn_tail.map(|(o, n)| json!({"offset": o, "bytes": n})),
        "skipped": st.skipped.iter().map(|s| json!({"offset": s.offset, "bytes": s.bytes})).collect::<Vec<_>>(),
        "end_via_trailer": trace.end_block().is_some(),
    })
}

fn python_view(path: &Path, skip: bool) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/pws_read.py");
    let mut cmd = Command::new("python3");
    cmd.arg(&script).arg(path);
    if skip {
        cmd.arg("--skip-bad-blocks");
    }
    let out = cmd
        .output()
        .expect("python3 is needed (scripts/install.sh installs it)");
    assert!(
        out.status.success(),
        "pws_read.py failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("pws_read.py prints JSON")
}

/// Python may print more (notes, counts); everything the Rust view holds must match, with
/// booleans and 0/1 integers taken as equal.
fn assert_covers(py: &Value, rs: &Value, at: &str) {
    match (py, rs) {
        (Value::Object(p), Value::Object(r)) => {
            for (k, rv) in r {
                let pv = p
                    .get(k)
                    .unwrap_or_else(|| panic!("{at}.{k}: missing in the Python reader's output"));
                assert_covers(pv, rv, &format!("{at}.{k}"));
            }
        }
        (Value::Array(p), Value::Array(r)) => {
            assert_eq!(p.len(), r.len(), "{at}: lengths differ");
            for (i, (pv, rv)) in p.iter().zip(r).enumerate() {
                assert_covers(pv, rv, &format!("{at}[{i}]"));
            }
        }
        (Value::Bool(b), Value::Number(n)) | (Value::Number(n), Value::Bool(b)) => {
            assert_eq!(n.as_u64(), Some(u64::from(*b)), "{at}");
        }
        (Value::Number(p), Value::Number(r)) if p.is_f64() || r.is_f64() => {
            assert_eq!(p.as_f64(), r.as_f64(), "{at}");
        }
        _ => assert_eq!(py, rs, "{at}"),
    }
}

fn python_has_zstandard() -> bool {
    Command::new("python3")
        .args(["-c", "import zstandard"])
        .status()
        .is_ok_and(|s| s.success())
}

/// Each Python run costs a process start, so skip mode (which only differs on corrupt
/// traces) is compared where `both_modes` asks for it.
fn check(bytes: &[u8], dir: &Path, name: &str, both_modes: bool) {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    for skip in [false, true]
        .into_iter()
        .take(if both_modes { 2 } else { 1 })
    {
        assert_covers(
            &python_view(&path, skip),
            &rust_view(bytes, skip),
            &format!("{name}(skip={skip})"),
        );
    }
}

#[test]
fn python_reader_agrees_on_fixed_traces_torn_and_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let full = small_trace(WriterOptions::uncompressed(), true);
    check(&full, dir.path(), "full.pws", true);
    check(
        &small_trace(WriterOptions::uncompressed(), false),
        dir.path(),
        "unfinished.pws",
        false,
    );
    // Cuts inside headers, payloads and padding of every block (the Rust reader alone is
    // checked at every offset in corruption.rs).
    for cut in (pws_trace::FILE_HEADER_LEN..full.len()).step_by(23) {
        check(&full[..cut], dir.path(), &format!("torn-{cut}.pws"), false);
    }
    // What a later minor may write: fields appended to a record, an item after a list, an
    // informational block flag. Both readers must skip what they do not know.
    let ev = CgroupEvents {
        events: vec![CgroupEvent {
            ts_ns: 9,
            op: CgroupOp::Thaw,
            cgroup_id: 3,
            hierarchy: 0,
            path: "/b".into(),
            pid: 0,
            detail: "x".into(),
        }],
    };
    let mut p = Vec::new();
    ev.encode(&mut p);
    p[1] += 2;
    p.extend_from_slice(&[0xde, 0xad, 0x01]);
    let mut w = TraceWriter::new(Vec::new(), WriterOptions::uncompressed()).unwrap();
    w.write_block(pws_trace::BlockKind::CGROUP_EVENTS, &[&p])
        .unwrap();
    let mut ext = w.finish(5).unwrap();
    let at = pws_trace::FILE_HEADER_LEN;
    let mut h = pws_trace::BlockHeader::decode(&ext[at..]).unwrap();
    h.flags |= 0x0200;
    ext[at..at + 24].copy_from_slice(&h.encode());
    check(&ext, dir.path(), "extended.pws", false);
    assert_eq!(
        rust_view(&ext, false)["blocks"][0]["payload"][0]["detail"],
        "x"
    );

    // A flipped payload byte in the second block: an error without skipping, a skip with it.
    let t = Trace::from_vec(full.clone()).unwrap();
    let second = t.blocks().nth(1).unwrap().unwrap().offset as usize;
    let mut bad = full.clone();
    bad[second + 30] ^= 1;
    let path = dir.path().join("bad.pws");
    std::fs::write(&path, &bad).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/pws_read.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&second.to_string()),
        "error must name offset {second}"
    );
    assert_covers(
        &python_view(&path, true),
        &rust_view(&bad, true),
        "bad(skip)",
    );
    // Not a trace at all.
    std::fs::write(&path, b"definitely not a trace").unwrap();
    let out = Command::new("python3")
        .arg(&script)
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    if python_has_zstandard() {
        check(
            &small_trace(WriterOptions::default(), true),
            dir.path(),
            "zstd.pws",
            false,
        );
    } else {
        cannot_run("python3 lacks `zstandard`: compressed blocks not cross-checked");
    }
}

#[test]
fn python_reader_agrees_on_random_traces() {
    let dir = tempfile::tempdir().unwrap();
    let compressed = python_has_zstandard();
    if !compressed {
        cannot_run("python3 lacks `zstandard`: random traces cross-checked uncompressed only");
    }
    let mut runner = TestRunner::new(Config {
        cases: 24,
        ..Config::default()
    });
    runner
        .run(
            &(prop::collection::vec(item(), 0..10), any::<bool>()),
            |(items, zstd)| {
                let opts = WriterOptions {
                    compression_level: (zstd && compressed).then_some(3),
                    min_compress_len: 64,
                    ..WriterOptions::default()
                };
                let mut w = TraceWriter::new(Vec::new(), opts).unwrap();
                for i in &items {
                    write_item(&mut w, i);
                }
                check(&w.finish(77).unwrap(), dir.path(), "random.pws", false);
                Ok(())
            },
        )
        .unwrap();
}
