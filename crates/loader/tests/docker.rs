//! The Docker runtime against a real Docker daemon, step by step: the stem cell and a cold
//! container are Docker containers (Docker's 64-hex ids, cgroups under `docker/<id>` on both
//! hierarchies), a warm one is frozen by `docker pause` (v1 freezer `FROZEN`, v2 `frozen 1`) and
//! thawed by `docker unpause`, and nothing is left at the end. Starts a `dockerd` (with flags
//! that work in a VM) when none answers, and stops it again. Needs root and Docker; fails under
//! CI where they are missing.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pws_loader::functions::Function;
use pws_loader::outputs::Outputs;
use pws_loader::platform::{Action, Config, Platform, RuntimeKind, State};
use pws_test_support::docker::{daemon, docker};
use support::{is_hex, kernel_root, read_records};

/// Removes what the platform of this process left (containers by label) and the image.
struct Leftovers {
    image: Option<String>,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        let label = format!("label=pws-load.invoker={}", std::process::id());
        if let Some(ids) = docker(&["ps", "-aq", "--filter", &label]) {
            for id in ids.split_whitespace() {
                let _ = docker(&["rm", "-f", id]);
            }
        }
        if let Some(image) = &self.image {
            let _ = docker(&["rmi", "-f", image]);
        }
    }
}

fn freezer_state(id: &str) -> String {
    std::fs::read_to_string(
        Path::new("/sys/fs/cgroup/freezer/docker")
            .join(id)
            .join("freezer.state"),
    )
    .unwrap_or_default()
    .trim()
    .to_owned()
}

fn run(p: &mut Platform, d: Duration) {
    p.run_until(Instant::now() + d);
}

#[test]
fn docker_containers_are_started_paused_resumed_and_removed_like_openwhisk() {
    let Some(root) = kernel_root("docker") else {
        return;
    };
    let Some(_daemon) = daemon() else {
        return;
    };
    let mut left = Leftovers { image: None };
    let dir = tempfile::tempdir().unwrap();
    let (acts, log) = (
        dir.path().join("acts.jsonl"),
        dir.path().join("invoker.log"),
    );
    let out = Arc::new(Outputs::create(Some(&acts), Some(&log)).unwrap());
    let cfg = Config {
        cgroup_root: root.path.clone(),
        max_containers: 3,
        prewarm: 1,
        pause_grace: Duration::from_millis(300),
        idle_timeout: Duration::from_secs(30),
        stem_memory_mb: 128,
        max_queue: 100,
        runtime_exe: PathBuf::from(support::BIN),
        runtime: RuntimeKind::Docker,
    };
    let mut p = Platform::new(cfg, out).expect("docker platform");
    left.image = p
        .summary()
        .notes
        .iter()
        .find_map(|n| n.strip_prefix("docker runtime, image ").map(str::to_owned));
    assert!(left.image.is_some(), "{:?}", p.summary().notes);
    let spin = Arc::new(Action {
        name: "spin".into(),
        namespace: "guest".into(),
        function: Function::IntLoop,
        memory_mb: 96,
        code_size_kb: 256,
        timeout: Duration::from_secs(30),
    });
    // The stem cell: a Docker container whose cgroups Docker made.
    assert!(p.run_until_quiet(Duration::from_secs(60)));
    let stem = p.containers();
    assert_eq!(stem.len(), 1, "one stem cell");
    let id = stem[0].id.clone();
    assert!(is_hex(&id, 64), "{id}");
    assert_eq!(
        docker(&["inspect", "--format", "{{.Id}}", &id]).as_deref(),
        Some(id.as_str())
    );
    assert!(
        stem[0].cgroup.ends_with(format!("docker/{id}")),
        "{:?}",
        stem[0].cgroup
    );
    assert!(stem[0].cgroup.join("cgroup.procs").exists());
    assert!(stem[0].pid > 1, "the runtime's host pid");

    // Prewarmed start, then idle → paused by `docker pause` on the v1 freezer.
    p.submit(Arc::clone(&spin), 20_000).unwrap();
    assert!(p.run_until_quiet(Duration::from_secs(60)));
    run(&mut p, Duration::from_millis(900));
    let paused = p
        .containers()
        .into_iter()
        .find(|c| c.id == id)
        .expect("the container");
    assert_eq!(paused.state, State::Paused);
    assert_eq!(freezer_state(&id), "FROZEN");
    assert_eq!(
        docker(&["inspect", "--format", "{{.State.Paused}}", &id]).as_deref(),
        Some("true")
    );

    // Warm start: unpaused first.
    p.submit(Arc::clone(&spin), 20_000).unwrap();
    assert!(p.run_until_quiet(Duration::from_secs(60)));
    assert_eq!(freezer_state(&id), "THAWED");

    let summary = p.shutdown(Duration::from_secs(10), true, &|| false);
    assert_eq!(summary.containers.paused, 1, "{summary:?}");
    assert_eq!(summary.containers.resumed, 1);
    // Everything is gone: containers, their cgroups.
    assert_eq!(docker(&["inspect", &id]), None, "container {id} removed");
    assert!(!paused.cgroup.exists());
    let label = format!("label=pws-load.invoker={}", std::process::id());
    assert_eq!(
        docker(&["ps", "-aq", "--filter", &label]).as_deref(),
        Some("")
    );

    let recs = read_records(&acts);
    assert_eq!(recs.len(), 2);
    for r in &recs {
        assert_eq!(r.response.status_code, Some(0), "{r:?}");
        let c = r
            .annotation("containerId")
            .and_then(|v| v.as_str())
            .unwrap();
        assert_eq!(c, id, "both activations ran in the stem cell's container");
        assert!(
            r.annotation("cgroupUsageUsec")
                .and_then(|v| v.as_u64())
                .unwrap()
                > 0
        );
    }
    let log = std::fs::read_to_string(&log).unwrap();
    for needle in [
        "[DockerClientWithFileAccess] running ".to_owned(),
        format!("--name wsk{}_1_prewarm_pwsload", std::process::id()),
        format!("docker pause {id} "),
        format!("docker unpause {id} "),
        format!("docker rm -f {id} "),
        format!("containerState: prewarmed container: Some(ContainerId({id}))"),
        format!("containerState: warmed container: Some(ContainerId({id}))"),
    ] {
        assert!(
            log.contains(&needle),
            "invoker log lacks `{needle}`:\n{log}"
        );
    }
    // pws-record's parser reads every line.
    for l in log.lines() {
        let e =
            pws_openwhisk::invoker_log::parse::parse_line(l).unwrap_or_else(|e| panic!("{l}: {e}"));
        assert!(e.is_some(), "not an invoker line: {l}");
    }
}
