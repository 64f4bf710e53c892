//! pws-load as users and pws-record run it: a workload's activations recorded exactly once in
//! OpenWhisk's schema, written live, with the invoker log lines of cold, warm and prewarmed
//! starts; SIGTERM drains and cleans up; the Azure replay; and clear errors for bad input.
//! The runs need root and cgroup v2 (they skip elsewhere, saying why); the error tests do not.

mod support;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{check_record, container_id, kernel_root, read_records, tid, ChildGuard, BIN};

fn parent_of(root: &Path, pid: u32) -> std::path::PathBuf {
    root.join(format!("pws-load-{pid}"))
}

#[test]
fn every_activation_of_a_workload_is_recorded_once_live_with_its_log_lines() {
    let Some(root) = kernel_root("cli-small") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (acts, log, sum) = (
        dir.path().join("acts.jsonl"),
        dir.path().join("invoker.log"),
        dir.path().join("summary.json"),
    );
    // The workload file alone means `run`, as in `pws-record … -- pws-load workload.yaml`.
    let child = Command::new(BIN)
        .arg(support::workload("small.yaml"))
        .args(["--cgroup-root".as_ref(), root.path.as_os_str()])
        .args(["--activations-out".as_ref(), acts.as_os_str()])
        .args(["--invoker-log-out".as_ref(), log.as_os_str()])
        .args(["--summary-json".as_ref(), sum.as_os_str()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = ChildGuard(child);
    let pid = child.0.id();

    // Live: records and log lines appear while the run goes on (its workload lasts 3 s).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut live = false;
    while Instant::now() < deadline {
        let lines = std::fs::read_to_string(&acts).unwrap_or_default();
        if lines.lines().count() >= 2 && matches!(child.0.try_wait(), Ok(None)) {
            assert!(lines.ends_with('\n'), "whole lines only");
            assert!(
                parent_of(&root.path, pid).is_dir(),
                "the run's parent cgroup exists meanwhile"
            );
            live = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(live, "records were not written while the run was going on");
    let status = child
        .wait_for(Duration::from_secs(30))
        .expect("pws-load ended");
    let mut err = String::new();
    std::io::Read::read_to_string(child.0.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{err}");
    assert!(err.contains("17 activations"), "{err}");
    assert!(
        !parent_of(&root.path, pid).exists(),
        "parent cgroup removed at the end"
    );

    // Exactly once each: 10 naps, 4 spins, 3 lates (see small.yaml).
    let recs = read_records(&acts);
    assert_eq!(recs.len(), 17);
    let ids: HashSet<&str> = recs.iter().map(|r| r.activation_id.as_str()).collect();
    assert_eq!(ids.len(), 17, "unique activation ids");
    let mut per_action: HashMap<&str, usize> = HashMap::new();
    for r in &recs {
        check_record(r);
        assert_eq!(r.status_code(), Some(0), "{r:?}");
        *per_action.entry(r.name.as_str()).or_default() += 1;
    }
    assert_eq!(
        per_action,
        HashMap::from([("nap", 10), ("spin", 4), ("late", 3)])
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sum).unwrap()).unwrap();
    assert_eq!(summary["accepted"], 17);
    assert_eq!(summary["rejected"], 0);
    assert_eq!(summary["seed"], 1);

    // Each activation: one containerStart; its tid's other lines match its start type.
    let log = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    let mut seen_states = HashSet::new();
    for r in &recs {
        let starts: Vec<&&str> = lines
            .iter()
            .filter(|l| l.contains("containerStart") && l.contains(&r.activation_id))
            .collect();
        assert_eq!(starts.len(), 1, "{}", r.activation_id);
        let start = starts[0];
        let t = tid(start).unwrap();
        let mine: Vec<&&str> = lines.iter().filter(|l| tid(l) == Some(t)).collect();
        let run = mine
            .iter()
            .find(|l| {
                l.contains(&format!(
                    "sending arguments to /guest/{} at ContainerId(",
                    r.name
                ))
            })
            .expect("sending arguments");
        let cid = container_id(run).unwrap();
        assert!(support::is_hex(cid, 64));
        let has_init = mine
            .iter()
            .any(|l| l.contains(&format!("sending initialization to ContainerId({cid})")));
        let has_run = mine
            .iter()
            .any(|l| l.contains("docker run") && l.contains(&format!("_guest_{} ", r.name)));
        let state = ["cold", "warmed", "prewarmed"]
            .into_iter()
            .find(|s| start.contains(&format!("containerState: {s} ")))
            .expect("a containerState");
        seen_states.insert(state);
        match state {
            "cold" => {
                assert!(start.contains("container: None"));
                assert!(has_run && has_init, "cold: docker run then init: {mine:?}");
            }
            "prewarmed" => {
                assert!(start.contains(&format!("container: Some(ContainerId({cid}))")));
                assert!(has_init && !has_run, "prewarmed: init only: {mine:?}");
            }
            _ => {
                assert!(start.contains(&format!("container: Some(ContainerId({cid}))")));
                assert!(!has_init && !has_run, "warm: run only: {mine:?}");
            }
        }
        assert_eq!(
            r.annotation("initTime").is_some(),
            state != "warmed",
            "{r:?}"
        );
    }
    assert_eq!(
        seen_states.len(),
        3,
        "cold, warm and prewarmed starts: {seen_states:?}"
    );
    read_as_the_recorder_does(&recs, &lines, &acts);
    assert!(lines.iter().any(|l| l.contains("runc pause")));
    assert!(lines.iter().any(|l| l.contains("runc resume")));
    assert!(lines.iter().any(|l| l.contains("docker rm -f")));
    // Log lines are stamped with wall-clock times in order of writing, near the records'.
    let first_rec = recs.iter().map(|r| r.start).min().unwrap();
    assert!(lines[0].starts_with('['));
    let stamp = humantime::parse_rfc3339(&lines[0][1..25]).unwrap();
    let ms = stamp
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        ms <= first_rec && first_rec - ms < 5_000,
        "{ms} vs {first_rec}"
    );
}

/// The records and the log through pws-record's own parsers (`pws_openwhisk::activation`,
/// `invoker_log::{parse, link}`): every line accepted, and each activation tied to its
/// container with the right start type.
fn read_as_the_recorder_does(
    recs: &[pws_openwhisk::doc::ActivationDoc],
    lines: &[&str],
    acts: &Path,
) {
    use pws_openwhisk::invoker_log::{link::Linker, parse::parse_line};
    use pws_trace::records::{ActivationSource, ContainerOp, StartType};

    let mut inited = HashMap::new();
    for l in std::fs::read_to_string(acts).unwrap().lines() {
        let a = pws_openwhisk::activation::from_line(l, ActivationSource::JsonLines)
            .unwrap_or_else(|e| panic!("the recorder rejects {l}: {e}"))
            .unwrap();
        assert!(a.wait_ms.is_some() && a.duration_ms.is_some(), "{a:?}");
        assert_eq!(a.memory_limit_mb, Some(64));
        assert_eq!(a.timeout_ms, Some(60_000));
        assert!(a.kind.starts_with("pws-load:"));
        assert_eq!(a.path, format!("guest/{}", a.action));
        inited.insert(a.activation_id.clone(), a.init_ms.is_some());
    }
    assert_eq!(inited.len(), recs.len());

    let mut linker = Linker::new();
    let mut assembler = pws_openwhisk::invoker_log::activations::Assembler::new();
    let mut events = Vec::new();
    let mut from_log = HashMap::new();
    for l in lines {
        let ev = parse_line(l)
            .unwrap_or_else(|e| panic!("the recorder rejects {l}: {e}"))
            .unwrap_or_else(|| panic!("the recorder ignores {l}"));
        events.extend(linker.feed(&ev).into_iter().map(|x| x.event));
        if let Some(r) = assembler.feed(&ev) {
            from_log.insert(r.activation_id.clone(), r);
        }
    }
    // The log alone gives every activation, as a real invoker's does: its run ends with a
    // `running result` line and is acknowledged by `posted completion of activation`.
    assert_eq!(assembler.incomplete(), 0, "activations the log never ended");
    for r in recs {
        let l = from_log
            .get(&r.activation_id)
            .unwrap_or_else(|| panic!("{} is not in the log alone", r.activation_id));
        assert_eq!(l.action, r.name);
        assert_eq!(l.init_ms.is_some(), inited[&r.activation_id], "{l:?}");
    }
    for r in recs {
        let assigns: Vec<_> = events
            .iter()
            .filter(|e| e.op == ContainerOp::Assign && e.activation_id == r.activation_id)
            .collect();
        assert_eq!(
            assigns.len(),
            1,
            "one link for {}: {assigns:?}",
            r.activation_id
        );
        let a = assigns[0];
        assert!(support::is_hex(&a.container_id, 64));
        assert_eq!(
            (a.action.as_str(), a.namespace.as_str()),
            (r.name.as_str(), "guest")
        );
        match a.start_type {
            StartType::Warm => assert!(!inited[&r.activation_id]),
            StartType::Cold | StartType::Prewarmed => assert!(inited[&r.activation_id]),
            other => panic!("start type {other:?}"),
        }
        if a.start_type == StartType::Cold {
            assert!(events.iter().any(|e| e.op == ContainerOp::Create
                && e.container_id == a.container_id
                && e.activation_id == r.activation_id));
        }
    }
    for op in [
        ContainerOp::Init,
        ContainerOp::Run,
        ContainerOp::Pause,
        ContainerOp::Resume,
        ContainerOp::Remove,
    ] {
        assert!(events.iter().any(|e| e.op == op), "no {op:?} event");
    }
}

#[test]
fn sigterm_drains_records_and_removes_the_cgroups() {
    let Some(root) = kernel_root("cli-sigterm") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("long.yaml");
    std::fs::write(
        &w,
        "duration: 60s\nplatform: {prewarm: 1, idle_timeout: 10m}\nfunctions:\n  - {name: z, function: sleep, memory_mb: 64, code_size_kb: 512, arrival: {interval: {every: 100ms}}, input: {fixed: 300}}\n",
    )
    .unwrap();
    let (acts, sum) = (dir.path().join("a.jsonl"), dir.path().join("s.json"));
    let child = Command::new(BIN)
        .args(["run".as_ref(), w.as_os_str()])
        .args(["--cgroup-root".as_ref(), root.path.as_os_str()])
        .args(["--activations-out".as_ref(), acts.as_os_str()])
        .args(["--summary-json".as_ref(), sum.as_os_str(), "-q".as_ref()])
        .spawn()
        .unwrap();
    let mut child = ChildGuard(child);
    let pid = child.0.id();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(parent_of(&root.path, pid).is_dir());
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let status = child
        .wait_for(Duration::from_secs(15))
        .expect("pws-load ended after SIGTERM");
    assert!(status.success());
    assert!(!parent_of(&root.path, pid).exists(), "cgroups removed");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sum).unwrap()).unwrap();
    assert_eq!(s["interrupted"], true);
    let recs = read_records(&acts);
    assert!(recs.len() >= 5, "{}", recs.len());
    assert_eq!(
        recs.len() as u64,
        s["accepted"].as_u64().unwrap(),
        "one record per accepted activation"
    );
    let ids: HashSet<&str> = recs.iter().map(|r| r.activation_id.as_str()).collect();
    assert_eq!(ids.len(), recs.len());
    // Running activations finished (drained); none was cut short.
    assert!(recs.iter().filter(|r| r.status_code() == Some(0)).count() >= recs.len() - 3);
}

#[test]
fn the_azure_trace_replays_with_a_time_scale() {
    let Some(root) = kernel_root("cli-azure") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (acts, sum) = (dir.path().join("a.jsonl"), dir.path().join("s.json"));
    let t0 = Instant::now();
    let out = Command::new(BIN)
        .args(["azure", "--trace-dir"])
        .arg(support::azure_dir())
        .args([
            "--minutes",
            "1..1",
            "--functions",
            "2",
            "--time-scale",
            "60",
        ])
        .args([
            "--invocation-scale",
            "0.02",
            "--max-run",
            "20ms",
            "--profiles",
            "sleep,int-loop",
        ])
        .args(["--code-size-kb", "512", "--seed", "3", "-q"])
        .args(["--cgroup-root".as_ref(), root.path.as_os_str()])
        .args(["--activations-out".as_ref(), acts.as_os_str()])
        .args(["--summary-json".as_ref(), sum.as_os_str()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "one trace minute in about a second"
    );
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sum).unwrap()).unwrap();
    let recs = read_records(&acts);
    // 197 + 760 invocations in minute 1, 2 % kept: about 19.
    assert!((5..=45).contains(&recs.len()), "{}", recs.len());
    assert_eq!(recs.len() as u64, s["accepted"].as_u64().unwrap());
    assert!(recs
        .iter()
        .all(|r| r.name == "az-47658c9c" || r.name == "az-2b373145"));
    for r in &recs {
        check_record(r);
    }
    assert_eq!(s["mode"], "azure");
}

fn fails_with(args: &[&str], want: &[&str]) {
    let out = Command::new(BIN).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(!err.contains("panicked"), "{err}");
    for w in want {
        assert!(err.contains(w), "{args:?}: `{w}` not in: {err}");
    }
}

#[test]
fn bad_input_gives_clear_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str, text: &str| {
        let f = dir.path().join(name);
        std::fs::write(&f, text).unwrap();
        f.to_str().unwrap().to_owned()
    };
    let good = "duration: 2s\nfunctions:\n  - name: a\n    function: sleep\n    arrival: {interval: {every: 1s}}\n    input: {fixed: 1}\n";
    let malformed = p("malformed.yaml", "duration: 2s\nfunctions: [\n");
    fails_with(&["run", &malformed], &["malformed.yaml", "line"]);
    let unknown = p("unknown.yaml", &good.replace("sleep", "snooze"));
    fails_with(
        &["run", &unknown],
        &["unknown.yaml", "unknown function `snooze`", "line 3"],
    );
    let dur = p("dur.yaml", &good.replace("every: 1s", "every: 1 fortnite"));
    fails_with(
        &["run", &dur],
        &["dur.yaml", "invalid duration `1 fortnite`", "line 5"],
    );
    let good_file = p("good.yaml", good);
    fails_with(
        &["run", &good_file, "--duration", "3 sec0nds"],
        &["--duration", "3 sec0nds"],
    );
    fails_with(
        &["run", "/nonexistent/w.yaml"],
        &["cannot read workload file /nonexistent/w.yaml"],
    );

    let trace = dir.path().join("trace");
    std::fs::create_dir(&trace).unwrap();
    std::fs::write(
        trace.join("invocations.csv"),
        "HashOwner,HashApp,HashFunction,Trigger,1,2\no,a,f,http,1,2\no,a,g,http,3,-4\n",
    )
    .unwrap();
    std::fs::write(
        trace.join("durations.csv"),
        "HashOwner,HashApp,HashFunction,percentile_Average_0,percentile_Average_100\no,a,f,1,5\no,a,g,1,5\n",
    )
    .unwrap();
    fails_with(
        &["azure", "--trace-dir", trace.to_str().unwrap()],
        &["invocations.csv:3: column `2`: `-4` is not a valid number"],
    );
    fails_with(
        &[
            "azure",
            "--trace-dir",
            trace.to_str().unwrap(),
            "--profiles",
            "sleep,nap",
        ],
        &["--profiles: unknown function `nap`"],
    );
}

#[test]
fn the_suite_is_listed() {
    let out = Command::new(BIN).arg("functions").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for f in [
        "int-loop",
        "float-loop",
        "matmul",
        "mem-stream",
        "cache-hash",
        "sleep",
        "bursty",
    ] {
        assert!(text.contains(f), "{text}");
    }
}
