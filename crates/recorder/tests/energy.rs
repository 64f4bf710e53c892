//! The energy path end to end: a powercap tree that advances and wraps while pws-record
//! records it through `--energy powercap --powercap-root`; the trace must hold the raw values
//! and the wrap range, untouched.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pws_trace::records::{EnergyDomain, EnergySource};
use pws_trace::{Record, Trace};

const MAX: u64 = 262_143_328_850;

fn zone(root: &Path, name: &str, label: &str, value: u64) {
    let z = root.join(name);
    fs::create_dir_all(&z).unwrap();
    fs::write(z.join("name"), format!("{label}\n")).unwrap();
    fs::write(z.join("max_energy_range_uj"), format!("{MAX}\n")).unwrap();
    fs::write(z.join("energy_uj"), format!("{value:020}\n")).unwrap();
}

#[test]
fn powercap_values_and_wrap_reach_the_trace_verbatim() {
    if !support::is_root() {
        support::cannot_run("pws-record needs root for system-wide perf");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("powercap");
    zone(&root, "intel-rapl:0", "package-0", 1_000_000);
    let trace = d.path().join("energy.pws");
    // A package counter that gains 100 000 µJ every 2 ms (50 W). Once the recorder has
    // finished probing (its trace exists), it jumps, on the same grid, to just below the wrap
    // point, so the wrap happens while samples are taken.
    let stop = Arc::new(AtomicBool::new(false));
    let ticker = {
        let (stop, file, trace) = (
            Arc::clone(&stop),
            root.join("intel-rapl:0/energy_uj"),
            trace.clone(),
        );
        std::thread::spawn(move || {
            let (mut v, mut jumped) = (1_000_000u64, false);
            while !stop.load(Ordering::Relaxed) {
                if !jumped && trace.exists() {
                    v += (MAX - 2_000_000 - v) / 100_000 * 100_000;
                    jumped = true;
                }
                v = (v + 100_000) % (MAX + 1);
                // In place, fixed width, like sysfs: the reader keeps the file open and rereads
                // it, and a same-length write at offset 0 never shows it a half-written number.
                let f = fs::OpenOptions::new().write(true).open(&file).unwrap();
                std::os::unix::fs::FileExt::write_all_at(&f, format!("{v:020}\n").as_bytes(), 0)
                    .unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let out = Command::new(env!("CARGO_BIN_EXE_pws-record"))
        .arg("-o")
        .arg(&trace)
        .args([
            "--quiet",
            "--energy",
            "powercap",
            "--energy-interval",
            "5ms",
            "--powercap-root",
        ])
        .arg(&root)
        .args(["--", "sleep", "0.6"])
        .output()
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    ticker.join().unwrap();
    support::assert_ran(&out);

    let t = Trace::open(&trace).unwrap();
    let mut samples = Vec::new();
    let mut used = None;
    for b in t.blocks() {
        match b.unwrap().decode().unwrap() {
            Record::TraceInfo(i) => {
                used = i
                    .sources
                    .iter()
                    .find(|s| s.kind == "energy" && s.status.code() == 1)
                    .map(|s| s.name.clone());
            }
            Record::Energy(e) => {
                for s in e.series {
                    assert_eq!(
                        (s.source, s.domain, s.index),
                        (EnergySource::Powercap, EnergyDomain::Package, 0)
                    );
                    assert_eq!(s.name, "intel-rapl:0");
                    assert_eq!(s.unit_joules, 1e-6);
                    assert_eq!(s.wrap, MAX + 1, "the range is recorded for unwrapping");
                    samples.extend(s.samples);
                }
            }
            _ => {}
        }
    }
    assert_eq!(used.as_deref(), Some("powercap"));
    assert!(
        samples.len() >= 40,
        "{} samples at 5 ms over 0.6 s",
        samples.len()
    );
    // Raw values, not unwrapped: exactly one wrap, and every step is what the ticker wrote.
    let wraps = samples.windows(2).filter(|w| w[1].raw < w[0].raw).count();
    assert_eq!(
        wraps,
        1,
        "{:?}",
        samples.iter().map(|s| s.raw).collect::<Vec<_>>()
    );
    for w in samples.windows(2) {
        assert!(w[1].ts_ns > w[0].ts_ns);
        let delta = pws_trace::records::EnergySeries::raw_delta(MAX + 1, w[0].raw, w[1].raw);
        assert_eq!(
            delta % 100_000,
            0,
            "raw values are the ticker's, unconverted"
        );
    }
}

/// Without NVML (no libnvidia-ml.so.1: the development VM, CI; here a path absent everywhere),
/// the default `--energy auto` records the CPU source and says in the trace's source list why
/// the GPUs were not; naming nvml makes it an error that says why, before any trace is made.
#[test]
fn without_nvml_auto_records_why_and_a_named_nvml_fails() {
    if !support::is_root() {
        support::cannot_run("pws-record needs root for system-wide perf");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let lib = "/nonexistent/libnvidia-ml.so.1";
    let trace = d.path().join("auto.pws");
    let out = Command::new(env!("CARGO_BIN_EXE_pws-record"))
        .arg("-o")
        .arg(&trace)
        .args(["--quiet", "--nvml-lib", lib, "--", "sleep", "0.3"])
        .output()
        .unwrap();
    support::assert_ran(&out);
    let t = Trace::open(&trace).unwrap();
    let mut sources = None;
    for b in t.blocks() {
        match b.unwrap().decode().unwrap() {
            Record::TraceInfo(i) => sources = Some(i.sources),
            Record::Gpu(g) => panic!("a gpu block without NVML: {g:?}"),
            Record::Energy(e) => assert!(e.series.iter().all(|s| s.source != EnergySource::Nvml)),
            _ => {}
        }
    }
    let sources = sources.unwrap();
    let nvml = sources
        .iter()
        .find(|s| s.kind == "energy" && s.name == "nvml")
        .expect("nvml in the source list");
    assert_eq!(nvml.status.to_string(), "unavailable", "{nvml:?}");
    assert!(
        nvml.detail.contains(&format!("{lib} not found")),
        "{nvml:?}"
    );
    // The CPU side chose as it always did.
    assert_eq!(
        sources
            .iter()
            .filter(|s| s.kind == "energy" && s.status.to_string() == "used")
            .count(),
        1,
        "{sources:?}"
    );

    for named in ["nvml", "simulated,nvml"] {
        let trace = d.path().join("named.pws");
        let out = Command::new(env!("CARGO_BIN_EXE_pws-record"))
            .arg("-o")
            .arg(&trace)
            .args(["--quiet", "--energy", named, "--nvml-lib", lib])
            .args(["--duration", "1s"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{named}: {stderr}");
        assert!(
            stderr.contains(&format!("--energy {named}: nvml: {lib} not found")),
            "{named}: {stderr}"
        );
        assert!(!trace.exists(), "{named}: no trace is made");
    }
}
