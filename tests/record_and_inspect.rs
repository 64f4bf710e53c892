//! Record → inspect, through the real binaries: every way a recording can end leaves a
//! trace that `pws-analyze info` reads.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pws_tests::{bin, info_json, run_with_timeout};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn recording_a_command_describes_this_host_and_carries_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("run.pws");
    let summary = dir.path().join("summary.json");
    let out = run_with_timeout(
        Command::new(bin("pws-record"))
            .arg("-o")
            .arg(&trace)
            .args(["--metadata", "run=e2e-1", "--metadata", "workload=sleep"])
            .arg("--summary-json")
            .arg(&summary)
            .args(["--", "sleep", "0.3"]),
        LIMIT,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = info_json(&trace);
    assert_eq!(v["ended_cleanly"], true);
    assert_eq!(v["end_via_trailer"], true);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(v["trace_info"]["hostname"], host.trim());
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(v["trace_info"]["kernel_release"], release.trim());
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    let n_online = v["trace_info"]["cpus"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["online"] == true)
        .count();
    assert!(
        n_online >= 1 && online.trim().ends_with(&(n_online - 1).to_string()),
        "{online} vs {n_online}"
    );
    assert_eq!(v["trace_info"]["metadata"]["run"], "e2e-1");
    assert_eq!(v["clock"], "CLOCK_MONOTONIC");
    let secs = v["span"]["seconds"].as_f64().unwrap();
    assert!((0.3..10.0).contains(&secs), "span {secs}");
    // Every source tried is listed; where the host has no energy counter (this VM, CI) the
    // simulated one stands in, and says so everywhere.
    let sources = v["trace_info"]["sources"].as_array().unwrap();
    let used_energy: Vec<_> = sources
        .iter()
        .filter(|s| s["kind"] == "energy" && s["used"] == true)
        .collect();
    assert_eq!(used_energy.len(), 1, "{sources:?}");
    if used_energy[0]["name"] == "simulated" {
        assert!(used_energy[0]["detail"]
            .as_str()
            .unwrap()
            .contains("SIMULATED"));
        assert_eq!(v["energy"][0]["measured"], false);
        assert!(
            sources
                .iter()
                .any(|s| s["kind"] == "energy" && s["used"] == false),
            "the real sources tried are listed"
        );
    }
    assert!(
        v["energy"][0]["samples"].as_u64().unwrap() > 10,
        "{}",
        v["energy"]
    );
    // The sampler and the switch sampler ran on every CPU.
    assert!(sources
        .iter()
        .any(|s| s["name"] == "sampler:context-switches" && s["used"] == true));
    assert_eq!(v["perf_cpus"].as_array().unwrap().len(), n_online);
    assert_eq!(v["lost_records"], 0);
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(s["command_exit_code"], 0);
    // Private: the trace holds command lines.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&trace).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn the_command_exit_status_is_passed_on_and_the_trace_still_finished() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("fail.pws");
    let out = run_with_timeout(
        Command::new(bin("pws-record"))
            .arg("-o")
            .arg(&trace)
            .args(["--", "sh", "-c", "exit 3"]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(info_json(&trace)["ended_cleanly"], true);
}

#[test]
fn duration_stops_the_recording() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("d.pws");
    let t = Instant::now();
    let out = run_with_timeout(
        Command::new(bin("pws-record"))
            .arg("-o")
            .arg(&trace)
            .args(["--duration", "300ms"]),
        LIMIT,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(t.elapsed() < Duration::from_secs(20));
    let v = info_json(&trace);
    assert_eq!(v["ended_cleanly"], true);
    assert!(v["span"]["seconds"].as_f64().unwrap() >= 0.3);
}

#[test]
fn sigterm_finishes_the_trace_and_sigkill_leaves_a_readable_prefix() {
    let dir = tempfile::tempdir().unwrap();
    for (sig, clean) in [("TERM", true), ("INT", true), ("KILL", false)] {
        let trace = dir.path().join(format!("sig{sig}.pws"));
        let mut child = Command::new(bin("pws-record"))
            .arg("-o")
            .arg(&trace)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait until the first blocks are durable (the recorder flushes them at start).
        let t = Instant::now();
        while std::fs::metadata(&trace).map(|m| m.len()).unwrap_or(0) < 200 {
            assert!(t.elapsed() < LIMIT, "recorder wrote nothing");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(1200));
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(st.success());
        let status = child.wait().unwrap();
        let v = info_json(&trace);
        assert_eq!(v["ended_cleanly"], clean, "signal {sig}: {v}");
        assert_eq!(v["trace_info"]["recorder"], "pws-record");
        if clean {
            assert!(status.success(), "signal {sig}: {status:?}");
        } else {
            // At least the start pair and one periodic clock-sync pair survived.
            assert!(v["clock_sync_pairs"].as_u64().unwrap() >= 2, "{v}");
        }
    }
}

#[test]
fn an_unwritable_output_is_a_clear_error() {
    let out = run_with_timeout(
        Command::new(bin("pws-record")).args([
            "-o",
            "/nonexistent-dir/run.pws",
            "--duration",
            "1s",
        ]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot create trace /nonexistent-dir/run.pws")
            && err.contains("No such file"),
        "{err}"
    );
}

#[test]
fn a_wrong_flag_is_named() {
    let out = run_with_timeout(
        Command::new(bin("pws-record")).args(["-o", "x.pws", "--duration", "30"]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--duration") && err.contains("30s"), "{err}");
}
