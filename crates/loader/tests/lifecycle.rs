//! The local platform's container lifecycle checked against cgroupfs, step by step:
//! cold → warm → paused → resumed → evicted, prewarmed stem cells, time limits, and the end of
//! a run. Kernel tests: they need root and cgroup v2, and skip (saying why) elsewhere.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pws_loader::functions::Function;
use pws_loader::outputs::Outputs;
use pws_loader::platform::{Action, Config, Platform, State};
use support::{kernel_root, read_records, tid, TestRoot};

fn config(root: &TestRoot, prewarm: usize, max: usize) -> Config {
    Config {
        cgroup_root: root.path.clone(),
        max_containers: max,
        prewarm,
        // Long enough that a test thread stalled on a loaded machine still sees a warm
        // container thawed before it is paused again.
        pause_grace: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(1500),
        stem_memory_mb: 128,
        max_queue: 100,
        runtime_exe: PathBuf::from(support::BIN),
        runtime: Default::default(),
    }
}

fn action(name: &str, function: Function, timeout: Duration) -> Arc<Action> {
    Arc::new(Action {
        name: name.into(),
        namespace: "guest".into(),
        function,
        memory_mb: 96,
        code_size_kb: 256,
        timeout,
    })
}

struct Files {
    _dir: tempfile::TempDir,
    acts: PathBuf,
    log: PathBuf,
}

fn outputs() -> (Files, Arc<Outputs>) {
    let dir = tempfile::tempdir().unwrap();
    let (acts, log) = (
        dir.path().join("acts.jsonl"),
        dir.path().join("invoker.log"),
    );
    let out = Arc::new(Outputs::create(Some(&acts), Some(&log)).unwrap());
    (
        Files {
            _dir: dir,
            acts,
            log,
        },
        out,
    )
}

fn log_lines(f: &Files) -> Vec<String> {
    std::fs::read_to_string(&f.log)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn frozen(cg: &Path) -> u64 {
    let ev = std::fs::read_to_string(cg.join("cgroup.events")).unwrap();
    ev.lines()
        .find_map(|l| l.strip_prefix("frozen "))
        .and_then(|v| v.trim().parse().ok())
        .expect("frozen in cgroup.events")
}

fn procs(cg: &Path) -> Vec<u32> {
    std::fs::read_to_string(cg.join("cgroup.procs"))
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn quiet(p: &mut Platform) {
    assert!(
        p.run_until_quiet(Duration::from_secs(15)),
        "platform did not settle: {p:?}"
    );
}

#[test]
fn cold_warm_paused_resumed_evicted_in_cgroupfs() {
    let Some(root) = kernel_root("lifecycle") else {
        return;
    };
    let (files, out) = outputs();
    let mut p = Platform::new(config(&root, 0, 2), out).unwrap();
    let parent = p.parent_dir().to_path_buf();
    assert_eq!(
        parent,
        root.path.join(format!("pws-load-{}", std::process::id()))
    );
    let nap = action("nap", Function::Sleep, Duration::from_secs(10));

    // Cold: a cgroup named by the container id, with the runtime inside, not frozen.
    p.submit(Arc::clone(&nap), 10).unwrap();
    quiet(&mut p);
    let c = p.containers();
    assert_eq!(c.len(), 1, "{c:?}");
    let (id, cg, pid) = (c[0].id.clone(), c[0].cgroup.clone(), c[0].pid);
    assert!(support::is_hex(&id, 64), "{id}");
    assert_eq!(cg, parent.join(&id));
    assert!(cg.is_dir());
    assert_eq!(procs(&cg), vec![pid]);
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let rel = cg.strip_prefix(pws_loader::cgroup::default_root()).unwrap();
    assert!(own.contains(&format!("0::/{}", rel.display())), "{own}");
    // pws-record's resolver finds the container's cgroup by its id.
    let mut resolver =
        pws_openwhisk::cgroup::Resolver::new(vec![pws_loader::cgroup::default_root()]);
    assert_eq!(resolver.resolve(&id), Some(cg.clone()));

    // Paused after the grace: frozen 1 in cgroup.events.
    p.run_until(Instant::now() + Duration::from_millis(700));
    assert_eq!(p.containers()[0].state, State::Paused);
    assert_eq!(frozen(&cg), 1);

    // Resumed for the next activation of the same action: warm, same container, thawed.
    p.submit(Arc::clone(&nap), 10).unwrap();
    quiet(&mut p);
    let c = p.containers();
    assert_eq!((c.len(), c[0].id.as_str()), (1, id.as_str()));
    assert_eq!(frozen(&cg), 0, "thawed to run");
    assert_eq!(procs(&cg), vec![pid], "the same runtime process served it");

    // Evicted after the idle timeout: the runtime is gone and so is the directory.
    p.run_until(Instant::now() + Duration::from_millis(2000));
    assert!(p.containers().is_empty());
    assert!(!cg.exists(), "{} still exists", cg.display());
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "runtime {pid} still alive"
    );

    let s = p.shutdown(Duration::from_secs(5), true, &|| false);
    assert!(!parent.exists());
    let a = &s.activations["nap"];
    assert_eq!((a.cold, a.warm, a.succeeded), (1, 1, 2));
    assert_eq!(s.containers.created_cold, 1);
    assert!(s.containers.paused >= 2, "{:?}", s.containers);
    assert!(
        s.containers.resumed >= 2,
        "resumed to run, and before removal: {:?}",
        s.containers
    );
    assert_eq!(s.containers.evicted_idle, 1);

    // The invoker log says the same, under the activations' tids and OpenWhisk's own words.
    let lines = log_lines(&files);
    let recs = read_records(&files.acts);
    assert_eq!(recs.len(), 2);
    let cold = &recs[0];
    assert_eq!(cold.name, "nap");
    assert!(cold.annotation("initTime").is_some());
    assert!(recs[1].annotation("initTime").is_none(), "warm: no init");
    let start_line = |aid: &str| {
        lines
            .iter()
            .find(|l| l.contains("containerStart") && l.contains(aid))
            .unwrap_or_else(|| panic!("no containerStart for {aid}"))
            .clone()
    };
    let l1 = start_line(&cold.activation_id);
    assert!(l1.contains("containerState: cold container: None"), "{l1}");
    let t1 = tid(&l1).unwrap();
    let mine: Vec<&String> = lines.iter().filter(|l| tid(l) == Some(t1)).collect();
    assert!(mine
        .iter()
        .any(|l| l.contains("docker run") && l.contains("_guest_nap ")));
    assert!(mine
        .iter()
        .any(|l| l.contains(&format!("sending initialization to ContainerId({id})"))));
    assert!(mine.iter().any(|l| l.contains(&format!(
        "sending arguments to /guest/nap at ContainerId({id})"
    ))));
    let l2 = start_line(&recs[1].activation_id);
    assert!(l2.contains(&format!(
        "containerState: warmed container: Some(ContainerId({id}))"
    )));
    let t2 = tid(&l2).unwrap();
    assert_ne!(t1, t2);
    let mine: Vec<&String> = lines.iter().filter(|l| tid(l) == Some(t2)).collect();
    assert!(mine
        .iter()
        .any(|l| l.contains(&format!("runc resume {id}"))));
    assert!(!mine.iter().any(|l| l.contains("sending initialization")));
    assert!(lines
        .iter()
        .any(|l| l.contains(&format!("runc pause {id}"))));
    assert!(lines
        .iter()
        .any(|l| l.contains(&format!("docker rm -f {id}"))));
}

#[test]
fn prewarmed_stem_cells_serve_any_action_and_are_replaced() {
    let Some(root) = kernel_root("prewarm") else {
        return;
    };
    let (files, out) = outputs();
    let mut p = Platform::new(config(&root, 1, 3), out).unwrap();
    quiet(&mut p);
    let c = p.containers();
    assert_eq!(c.len(), 1);
    assert_eq!((c[0].state, c[0].action.as_deref()), (State::Stem, None));
    let stem = c[0].id.clone();
    assert_eq!(procs(&c[0].cgroup), vec![c[0].pid]);
    assert_eq!(frozen(&c[0].cgroup), 0, "stem cells are not paused");

    let aid = p
        .submit(
            action("spin", Function::IntLoop, Duration::from_secs(10)),
            1000,
        )
        .unwrap();
    quiet(&mut p);
    let c = p.containers();
    assert!(
        c.iter()
            .any(|x| x.id == stem && x.action.as_deref() == Some("spin")),
        "the stem cell became spin's container: {c:?}"
    );
    assert!(
        c.iter().any(|x| x.state == State::Stem && x.id != stem),
        "a new stem cell replaced it: {c:?}"
    );
    let s = p.shutdown(Duration::from_secs(5), true, &|| false);
    assert_eq!(s.activations["spin"].prewarmed, 1);
    assert_eq!(s.containers.created_prewarm, 2);

    let lines = log_lines(&files);
    let start = lines
        .iter()
        .find(|l| l.contains(&aid))
        .expect("containerStart");
    assert!(start.contains(&format!(
        "containerState: prewarmed container: Some(ContainerId({stem}))"
    )));
    let t = tid(start).unwrap();
    let mine: Vec<&String> = lines.iter().filter(|l| tid(l) == Some(t)).collect();
    assert!(
        !mine.iter().any(|l| l.contains("docker run")),
        "no creation: {mine:?}"
    );
    assert!(mine
        .iter()
        .any(|l| l.contains(&format!("sending initialization to ContainerId({stem})"))));
    assert!(lines
        .iter()
        .any(|l| l.contains("[#tid_sid_invokerWarmup]") && l.contains("_prewarm_")));
    let recs = read_records(&files.acts);
    assert_eq!(recs.len(), 1);
    assert!(
        recs[0].annotation("initTime").is_some(),
        "a prewarmed start inits"
    );
}

#[test]
fn a_time_limit_kills_the_activation_and_removes_its_container() {
    let Some(root) = kernel_root("timeout") else {
        return;
    };
    let (files, out) = outputs();
    let mut p = Platform::new(config(&root, 0, 2), out).unwrap();
    let slow = action("slow", Function::Sleep, Duration::from_millis(300));
    p.submit(Arc::clone(&slow), 5_000).unwrap();
    let t0 = Instant::now();
    quiet(&mut p);
    assert!(
        t0.elapsed() < Duration::from_secs(4),
        "the limit cut the 5 s sleep"
    );
    assert!(p.containers().is_empty());
    let dirs = std::fs::read_dir(p.parent_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .count();
    assert_eq!(dirs, 0, "the container's cgroup is removed");
    let s = p.shutdown(Duration::from_secs(5), true, &|| false);
    assert_eq!(s.activations["slow"].timed_out, 1);
    assert_eq!(s.containers.removed_after_error, 1);
    let recs = read_records(&files.acts);
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    assert_eq!(r.status_code(), Some(2), "developer error");
    assert_eq!(r.annotation("timeout"), Some(&serde_json::json!(true)));
    assert!(r.response.result["error"]
        .as_str()
        .unwrap()
        .contains("exceeded its time limits of 300 milliseconds"));
}

#[test]
fn the_end_kills_what_runs_records_what_waits_and_removes_every_cgroup() {
    let Some(root) = kernel_root("shutdown") else {
        return;
    };
    let (files, out) = outputs();
    let mut p = Platform::new(config(&root, 0, 1), out).unwrap();
    let long = action("long", Function::Sleep, Duration::from_secs(60));
    let ids: Vec<String> = (0..3)
        .map(|_| p.submit(Arc::clone(&long), 10_000).unwrap())
        .collect();
    p.run_until(Instant::now() + Duration::from_millis(500));
    assert_eq!(
        (p.busy(), p.queued()),
        (1, 2),
        "one slot: one runs, two wait"
    );
    let parent = p.parent_dir().to_path_buf();
    let t0 = Instant::now();
    let s = p.shutdown(Duration::from_millis(200), false, &|| false);
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(!parent.exists(), "parent cgroup removed");
    assert_eq!(s.abandoned, 2);
    let recs = read_records(&files.acts);
    let mut got: Vec<&str> = recs.iter().map(|r| r.activation_id.as_str()).collect();
    got.sort_unstable();
    let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(
        got, want,
        "every accepted activation has exactly one record"
    );
    assert!(recs.iter().all(|r| r.status_code() == Some(3)));
    for r in &recs {
        support::check_record(r);
    }
}

#[test]
fn memory_limits_are_set_where_the_controller_is_enabled() {
    let Some(root) = kernel_root("memory") else {
        return;
    };
    let (_files, out) = outputs();
    let mut p = Platform::new(config(&root, 0, 1), out).unwrap();
    p.submit(action("m", Function::Sleep, Duration::from_secs(10)), 1)
        .unwrap();
    quiet(&mut p);
    let c = p.containers();
    let limits = p.summary().memory_limits;
    let max = std::fs::read_to_string(c[0].cgroup.join("memory.max"));
    if limits {
        assert_eq!(max.unwrap().trim(), (96u64 << 20).to_string());
    } else {
        assert!(max.is_err(), "no memory.max without the controller");
        assert!(
            p.summary()
                .notes
                .iter()
                .any(|n| n.starts_with("memory limits not applied")),
            "{:?}",
            p.summary().notes
        );
    }
    let _ = p.shutdown(Duration::from_secs(5), true, &|| false);
}
