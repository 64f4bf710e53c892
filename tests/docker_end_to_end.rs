//! The Docker path users have, end to end: `pws-record --activations … --invoker-log … --
//! pws-load run WORKLOAD` with `runtime: docker` (every function instance a Docker container,
//! started, paused, unpaused and removed as OpenWhisk's invoker does), then `pws-analyze`, then
//! DuckDB queries over its Parquet (`tests/e2e/check_docker.py`):
//!
//! - every container pws-load ran is resolved to its Docker cgroup (`/docker/<64 hex>`) and is a
//!   function container;
//! - every activation is linked, by the invoker log, to the container that ran it;
//! - each container's `paused_ns` (the v1 freezer watcher's spans on a hybrid host, the v2
//!   tracepoints on a unified one) is within 5 % of the time pws-load kept it paused — which it
//!   knows only to within its `docker pause` / `unpause` commands, so within 5 % of that range;
//! - per-activation CPU time within 5 % of the kernel's accounting of the container's cgroup
//!   over the activation (pws-load's `cgroupUsageUsec`), for activations of at least 80 ms;
//! - each container's CPU time over its life within 5 % + 5 ms of its cgroup's `cpu.stat`,
//!   read by pws-load just before `docker rm` (an unexplained excess of up to a few ms per
//!   container: `check_docker.py`), and all of them together within 2 % of the `cpu.stat` of
//!   Docker's parent cgroup, which keeps their time after their removal.
//!
//! Needs root and Docker (starts a `dockerd` when none runs, and stops it), and the Python
//! environment of `scripts/python-env.sh`; fails under CI where any is missing.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use pws_test_support::docker::{daemon, docker};
use pws_tests::{
    analyze, bin, calibrated_inputs, cannot_run, cgroup2_mount, online_cpus, python_with_duckdb,
    run_check_script, run_with_timeout, steal_ns,
};

/// A 20 s workload with every start and end a container has, on Docker: cold starts (spin's
/// bursts of two), the prewarmed stem cell, warm starts after pauses of about a second (crunch
/// every 1.5 s, nap every 700 ms), evictions at the idle timeout (spin waits 5 s between bursts,
/// late stops at 12 s) and for space (five kinds of container for four places). spin and
/// crunch use about 250 ms of CPU (calibrated here, so the 80 ms threshold holds in a debug
/// build on a busy machine too); nap sleeps; late is short.
fn workload(int_loop: u64, float_loop: u64) -> String {
    format!(
        "name: docker-e2e
duration: 20s
namespace: guest
seed: 7
platform:
  runtime: docker
  max_containers: 4
  prewarm: 1
  pause_grace: 50ms
  idle_timeout: 2500ms
  drain_timeout: 60s
functions:
  - name: spin
    function: int-loop
    memory_mb: 128
    code_size_kb: 1024
    arrival: {{burst: {{every: 5s, count: 2}}}}
    input: {{fixed: {int_loop}}}
  - name: crunch
    function: float-loop
    memory_mb: 128
    code_size_kb: 1024
    start: 500ms
    arrival: {{interval: {{every: 1500ms}}}}
    input: {{fixed: {float_loop}}}
  - name: nap
    function: sleep
    memory_mb: 64
    code_size_kb: 1024
    start: 200ms
    arrival: {{interval: {{every: 700ms}}}}
    input: {{fixed: 30}}
  - name: late
    function: float-loop
    memory_mb: 64
    code_size_kb: 1024
    start: 3s
    stop: 12s
    arrival: {{interval: {{every: 2s}}}}
    input: {{fixed: 20000}}
"
    )
}

/// usage_usec of a cgroup v2 directory's `cpu.stat` (0 where it does not exist yet: Docker
/// makes its parent cgroup with its first container).
fn usage_usec(dir: &Path) -> u64 {
    std::fs::read_to_string(dir.join("cpu.stat"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("usage_usec "))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Removes, however the test ends, what a pws-load that did not finish left: its containers
/// (by pws-load's label) and runtime images.
struct Leftovers;

impl Drop for Leftovers {
    fn drop(&mut self) {
        if let Some(ids) = docker(&["ps", "-aq", "--filter", "label=pws-load.invoker"]) {
            for id in ids.split_whitespace() {
                let _ = docker(&["rm", "-f", id]);
            }
        }
        if let Some(images) = docker(&["images", "-q", "pws-load/runtime"]) {
            for image in images.split_whitespace() {
                let _ = docker(&["rmi", "-f", image]);
            }
        }
    }
}

#[test]
fn a_docker_experiment_is_recorded_analyzed_and_queried() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        cannot_run("needs root (system-wide perf, Docker)");
        return;
    }
    let python = python_with_duckdb();
    let Some(daemon) = daemon() else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let p = |name: &str| d.path().join(name);
    let (int_loop, float_loop) = calibrated_inputs(250);
    std::fs::write(p("workload.yaml"), workload(int_loop, float_loop)).unwrap();
    let _leftovers = Leftovers;
    // Docker's parent cgroup (cgroupfs driver: `docker/` on the v2 hierarchy, the unified one
    // on a hybrid host) keeps every container's CPU time after the container is gone.
    let parent = cgroup2_mount().expect("a cgroup v2 mount").join("docker");
    let parent_before = usage_usec(&parent);
    let (steal_before, tick_ns) = steal_ns();

    let out = run_with_timeout(
        Command::new(bin("pws-record"))
            .arg("-o")
            .arg(p("run.pws"))
            .args(["-q", "--energy", "simulated", "--activations"])
            .arg(p("acts.jsonl"))
            .arg("--invoker-log")
            .arg(p("invoker.log"))
            .arg("--")
            .arg(bin("pws-load"))
            .arg("run")
            .arg(p("workload.yaml"))
            .arg("-q")
            .arg("--activations-out")
            .arg(p("acts.jsonl"))
            .arg("--invoker-log-out")
            .arg(p("invoker.log"))
            .arg("--summary-json")
            .arg(p("summary.json")),
        Duration::from_secs(240),
    );
    let steal = steal_ns().0 - steal_before;
    let parent_usage = usage_usec(&parent) - parent_before;
    assert!(
        out.status.success(),
        "pws-record around pws-load: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // check_docker.py's energy check sums the attribution per interval.
    analyze(
        &p("run.pws"),
        &p("tables"),
        &["--attribution", "per-interval"],
    );
    let facts = serde_json::json!({
        "docker_parent_usage_usec": parent_usage,
        "daemon_started_here": daemon.started_here(),
        "steal_ns": steal,
        "steal_tick_ns": tick_ns,
        "cpus": online_cpus(),
    });
    drop(_leftovers);
    drop(daemon);
    std::fs::write(p("kernel.json"), facts.to_string()).unwrap();
    let (tables, acts, summary, kernel) = (
        p("tables"),
        p("acts.jsonl"),
        p("summary.json"),
        p("kernel.json"),
    );
    run_check_script(
        &python,
        "check_docker.py",
        &[
            "--tables".as_ref(),
            tables.as_os_str(),
            "--activations".as_ref(),
            acts.as_os_str(),
            "--summary".as_ref(),
            summary.as_os_str(),
            "--kernel".as_ref(),
            kernel.as_os_str(),
        ],
        d,
    );
}
