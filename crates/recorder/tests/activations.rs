//! pws-record's activation sources through the real binary: followed JSON-lines and invoker-log
//! files written while it records (malformed lines included), and the OpenWhisk REST API served
//! on loopback. Needs root (system-wide perf); elsewhere each test says why it
//! skips (fails under CI).

mod support;

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use pws_trace::records::{ActivationSource, ContainerOp, StartType};
use pws_trace::{Record, Trace};
use support::fake_openwhisk::{doc, FakeOpenWhisk};

fn root() -> Result<(), String> {
    if !support::is_root() {
        return Err("needs root (system-wide perf)".into());
    }
    Ok(())
}

fn clock(id: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid timespec pointer.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
}

fn realtime_ns() -> i128 {
    clock(libc::CLOCK_REALTIME)
}

fn monotonic_ns() -> i128 {
    clock(libc::CLOCK_MONOTONIC)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[derive(Default)]
struct Read {
    activations: Vec<pws_trace::records::ActivationRecord>,
    containers: Vec<pws_trace::records::ContainerEvent>,
    sources: HashMap<String, pws_trace::records::SourceStats>,
    span: (u64, u64),
}

fn read(path: &Path) -> Read {
    let t = Trace::open(path).unwrap();
    let mut r = Read::default();
    for b in t.blocks() {
        match b.unwrap().decode().unwrap() {
            Record::TraceInfo(i) => r.span.0 = i.start_monotonic_ns,
            Record::Activations(a) => r.activations.extend(a.records),
            Record::ContainerEvents(c) => r.containers.extend(c.events),
            Record::Statistics(s) => {
                r.span.1 = r.span.1.max(s.ts_ns);
                for st in s.sources {
                    r.sources.insert(st.name.clone(), st);
                }
            }
            _ => {}
        }
    }
    r
}

fn record(trace: &Path, args: &[&str], script: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_pws-record"))
        .arg("-o")
        .arg(trace)
        .args(["--quiet", "--energy", "none", "--compression-level", "0"])
        .args(args)
        .args(["--", "sh", "-c", script])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "pws-record failed: {err}");
    err
}

#[test]
fn followed_files_give_every_activation_once_and_report_bad_lines() {
    if let Err(why) = root() {
        support::cannot_run(&why);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let acts = dir.path().join("acts.jsonl");
    let log = dir.path().join("invoker.log");
    // A container whose cgroup exists on this host, so the log's id resolves to it.
    let id = format!("{:064x}", u128::from(std::process::id()) << 64 | 0xc0ffee);
    let v2 = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .into_iter()
        .find(|p| Path::new(p).join("cgroup.controllers").exists())
        .expect("a cgroup v2 mount");
    let parent = Path::new(v2).join(format!("pws-test-{}-acts", std::process::id()));
    let cg = parent.join(&id);
    fs::create_dir_all(&cg).unwrap();
    struct Cleanup(std::path::PathBuf, std::path::PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = fs::remove_dir(&self.0);
            let _ = fs::remove_dir(&self.1);
        }
    }
    let _cleanup = Cleanup(cg.clone(), parent.clone());

    let t = now_ms();
    let stored = |n: u64, cold: bool| {
        let mut d = doc(n, t + n, 20);
        d["response"] = serde_json::json!({"statusCode": 0, "result": {}});
        if cold {
            d["annotations"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({"key": "initTime", "value": 7}));
        }
        d.to_string()
    };
    let ts = |ms: u64| {
        humantime::format_rfc3339_millis(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
        )
        .to_string()
    };
    let aid = format!("{:032x}", 1);
    let log_lines = [
        format!("[{}] [INFO] [#tid_7] [ContainerPool] containerStart containerState: cold container: None activations: 1 of max 1 action: hello namespace: guest activationId: {aid} [marker:invoker_activation_start:1]", ts(t)),
        format!("[{}] [INFO] [#tid_7] [DockerContainer] sending initialization to ContainerId({id}) ContainerAddress(172.17.0.5,8080) [marker:invoker_activationInit_start:3]", ts(t + 1)),
        format!("[{}] [INFO] [#tid_7] [DockerContainer] sending arguments to /guest/hello at ContainerId({id}) ContainerAddress(172.17.0.5,8080) [marker:invoker_activationRun_start:9]", ts(t + 8)),
        "this is not an invoker line".to_owned(),
        format!("[{}] [INFO] [#tid_sid_invokerNanny] [RuncClient] running /usr/bin/docker-runc pause {id} (timeout: 10 seconds) [marker:invoker_runc.pause_start:0]", ts(t + 90)),
    ];
    // Written while recording, in pieces, one record twice and one line malformed.
    let script = format!(
        "printf '%s\\n' '{a1}' >> {acts}; sleep 0.3; printf '%s\\n' '{a2}' 'not json' '{a1}' >> {acts}; \
         printf '%s\\n' '{l0}' '{l1}' >> {log}; sleep 0.3; printf '%s\\n' '{l2}' '{l3}' '{l4}' >> {log}; \
         printf '%s' '{a3}' >> {acts}",
        a1 = stored(1, true),
        a2 = stored(2, false),
        a3 = stored(3, false),
        acts = acts.display(),
        log = log.display(),
        l0 = log_lines[0],
        l1 = log_lines[1],
        l2 = log_lines[2],
        l3 = log_lines[3],
        l4 = log_lines[4],
    );
    let trace = dir.path().join("acts.pws");
    let err = record(
        &trace,
        &[
            "--activations",
            acts.to_str().unwrap(),
            "--invoker-log",
            log.to_str().unwrap(),
        ],
        &script,
    );

    let r = read(&trace);
    let mut ids: Vec<&str> = r
        .activations
        .iter()
        .map(|a| a.activation_id.as_str())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            format!("{:032x}", 1),
            format!("{:032x}", 2),
            format!("{:032x}", 3)
        ],
        "each once, the unterminated last line too"
    );
    let a1 = r
        .activations
        .iter()
        .find(|a| a.activation_id == aid)
        .unwrap();
    assert_eq!(
        (a1.source, a1.start_type, a1.init_ms),
        (ActivationSource::JsonLines, StartType::Cold, Some(7))
    );
    // Placed on the trace clock (CLOCK_MONOTONIC) where its epoch time falls.
    let expected = (t + 1) as i128 * 1_000_000 - (realtime_ns() - monotonic_ns());
    assert!(
        (a1.start_ns as i128 - expected).abs() < 5_000_000,
        "start {} vs expected {expected}",
        a1.start_ns
    );
    assert_eq!(a1.end_ns - a1.start_ns, 20_000_000);

    let jsonl = r
        .sources
        .iter()
        .find(|(k, _)| k.contains("jsonl"))
        .map(|(_, v)| v)
        .unwrap();
    assert_eq!(jsonl.errors, 1, "{jsonl:?}");
    assert!(
        jsonl.last_error.contains("acts.jsonl:3:"),
        "names the line: {}",
        jsonl.last_error
    );
    let inv = r
        .sources
        .iter()
        .find(|(k, _)| k.contains("invoker-log"))
        .map(|(_, v)| v)
        .unwrap();
    assert_eq!(inv.errors, 1, "{inv:?}");
    assert!(
        inv.last_error.contains("invoker.log:4:"),
        "{}",
        inv.last_error
    );
    assert!(
        err.contains("acts.jsonl:3:") && err.contains("invoker.log:4:"),
        "{err}"
    );

    let ops: Vec<ContainerOp> = r.containers.iter().map(|e| e.op).collect();
    assert!(
        ops.contains(&ContainerOp::Assign)
            && ops.contains(&ContainerOp::Run)
            && ops.contains(&ContainerOp::Pause),
        "{ops:?}"
    );
    let assign = r
        .containers
        .iter()
        .find(|e| e.op == ContainerOp::Assign)
        .unwrap();
    assert_eq!(
        (assign.activation_id.as_str(), assign.container_id.as_str()),
        (aid.as_str(), id.as_str())
    );
    assert_eq!(assign.start_type, StartType::Cold);
    assert_eq!(
        Path::new(&assign.cgroup_path),
        cg,
        "the container id resolved to its cgroup"
    );
    assert!(r
        .containers
        .iter()
        .all(|e| e.ts_ns > 0 && e.source == ActivationSource::InvokerLog));
}

#[test]
fn the_rest_api_is_polled_and_the_key_stays_out_of_the_trace() {
    if let Err(why) = root() {
        support::cannot_run(&why);
        return;
    }
    let key = "123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";
    let auth = format!("23bc46b1-71f6-4ed5-8c54-816aa4f8c502:{key}");
    let creds = pws_openwhisk::wskprops::Credentials::from_auth(&auth).unwrap();
    let ow = FakeOpenWhisk::start("guest", &creds.basic_auth_header());
    let t = now_ms();
    {
        let mut st = ow.state.lock().unwrap();
        st.docs = (0..250).map(|n| doc(n, t - 1000 + n, 3)).collect();
        st.fail_next = 1; // the first poll fails; the recording goes on
    }
    let dir = tempfile::tempdir().unwrap();
    let props = dir.path().join("wskprops");
    fs::write(
        &props,
        format!("APIHOST={}\nAUTH={auth}\nNAMESPACE=guest\n", ow.url),
    )
    .unwrap();
    let trace = dir.path().join("rest.pws");
    // Records that appear while recording are caught by a later poll or the last one at stop.
    let state = std::sync::Arc::clone(&ow.state);
    let adder = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        state
            .lock()
            .unwrap()
            .docs
            .extend((250..260).map(|n| doc(n, now_ms(), 3)));
    });
    record(
        &trace,
        &[
            "--openwhisk",
            "--openwhisk-auth",
            props.to_str().unwrap(),
            "--openwhisk-interval",
            "200ms",
        ],
        "sleep 2",
    );
    adder.join().unwrap();

    let r = read(&trace);
    let mut ids: Vec<String> = r
        .activations
        .iter()
        .map(|a| a.activation_id.clone())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 260, "every activation");
    assert_eq!(r.activations.len(), 260, "each once");
    let src = r
        .sources
        .iter()
        .find(|(k, _)| k.contains("rest-api"))
        .map(|(_, v)| v)
        .unwrap();
    assert!(src.errors >= 1 && src.last_error.contains("500"), "{src:?}");
    assert!(ow.state.lock().unwrap().requests.iter().all(|(_, ok)| *ok));
    let bytes = fs::read(&trace).unwrap();
    let hit = bytes.windows(key.len()).any(|w| w == key.as_bytes());
    assert!(!hit, "the API key is in the trace");
    let b64 = creds.basic_auth_header();
    let b64 = b64.trim_start_matches("Basic ");
    assert!(!bytes.windows(b64.len()).any(|w| w == b64.as_bytes()));
}

/// An invoker log alone, appended while recording (a cold start, a pause, a warm start after
/// `docker unpause`, and one activation still running at stop), gives an activation record for
/// every activation that ended, and a note for the one that did not.
#[test]
fn the_invoker_log_alone_gives_activation_records() {
    if let Err(why) = root() {
        assert!(std::env::var_os("CI").is_none(), "CI must run this: {why}");
        eprintln!("skipping: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("invoker0_logs.log");
    let t = now_ms();
    let ts = |ms: u64| {
        humantime::format_rfc3339_millis(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
        )
        .to_string()
    };
    let c = "4e5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d0c1b2a3f4e5d";
    let (a1, a2, a3) = (
        "2f6c3a0e9b8d4c7a8e1f0b2d3c4a5e6f",
        "7c1d2e3f4a5b4c6d8e9f0a1b2c3d4e5f",
        "a0b1c2d3e4f5465788a9b0c1d2e3f4a5",
    );
    let l = |ms: u64, tid: &str, comp: &str, msg: String| {
        format!("[{}] [INFO] [#tid_{tid}] [{comp}] {msg}", ts(t + ms))
    };
    let first = [
        l(0, "A", "ContainerPool", format!("containerStart containerState: cold container: None activations: 1 of max 1 action: hello namespace: guest activationId: {a1} [marker:invoker_containerStart.cold_counter:30]")),
        l(3, "A", "DockerClientWithFileAccess", "running /usr/bin/docker run -d --cpu-shares 2 --memory 256m --memory-swap 256m --network bridge --name wsk0_2_guest_hello openwhisk/action-nodejs-v20:nightly (timeout: 1 minute) [marker:invoker_docker.run_start:33]".into()),
        l(600, "A", "DockerContainer", format!("sending initialization to ContainerId({c}) ContainerAddress(172.17.0.6,8080) [marker:invoker_activationInit_start:640]")),
        l(671, "A", "DockerContainer", "initialization result: ok [marker:invoker_activationInit_finish:711:70]".into()),
        l(673, "A", "DockerContainer", format!("sending arguments to /guest/hello at ContainerId({c}) ContainerAddress(172.17.0.6,8080) [marker:invoker_activationRun_start:713]")),
        l(683, "A", "DockerContainer", "running result: ok [marker:invoker_activationRun_finish:723:9]".into()),
        l(695, "A", "InvokerReactive", format!("posted completion of activation {a1}")),
        l(750, "sid_invokerNanny", "DockerClientWithFileAccess", format!("running /usr/bin/docker pause {c} (timeout: 10 seconds) [marker:invoker_docker.pause_start:0]")),
    ];
    let second = [
        l(2000, "B", "ContainerPool", format!("containerStart containerState: warmed container: Some(ContainerId({c})) activations: 1 of max 1 action: hello namespace: guest activationId: {a2} [marker:invoker_containerStart.warmed_counter:8]")),
        l(2002, "B", "DockerClientWithFileAccess", format!("running /usr/bin/docker unpause {c} (timeout: 10 seconds) [marker:invoker_docker.unpause_start:10]")),
        l(2030, "B", "DockerContainer", format!("sending arguments to /guest/hello at ContainerId({c}) ContainerAddress(172.17.0.6,8080) [marker:invoker_activationRun_start:38]")),
        l(2036, "B", "DockerContainer", "running result: ok [marker:invoker_activationRun_finish:44:6]".into()),
        l(2100, "C", "ContainerPool", format!("containerStart containerState: warmed container: Some(ContainerId({c})) activations: 1 of max 1 action: hello namespace: guest activationId: {a3} [marker:invoker_containerStart.warmed_counter:8]")),
    ];
    let quote = |ls: &[String]| {
        ls.iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let script = format!(
        "printf '%s\\n' {} >> {log}; sleep 0.4; printf '%s\\n' {} >> {log}; sleep 0.2",
        quote(&first),
        quote(&second),
        log = log.display()
    );
    let trace = dir.path().join("log-only.pws");
    let err = record(&trace, &["--invoker-log", log.to_str().unwrap()], &script);

    let r = read(&trace);
    let mut recs = r.activations.clone();
    recs.sort_by_key(|a| a.start_epoch_ms);
    let got: Vec<_> = recs
        .iter()
        .map(|a| {
            (
                a.activation_id.as_str(),
                a.source,
                a.start_type,
                a.start_epoch_ms - t,
                a.end_epoch_ms - t,
                a.init_ms,
                a.container_id.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                a1,
                ActivationSource::InvokerLog,
                StartType::Cold,
                603,
                682,
                Some(70),
                c
            ),
            (
                a2,
                ActivationSource::InvokerLog,
                StartType::Warm,
                2030,
                2036,
                None,
                c
            ),
        ],
        "the unfinished {a3} is left out"
    );
    for a in &recs {
        assert!(
            a.start_ns > 0
                && a.end_ns - a.start_ns == (a.end_epoch_ms - a.start_epoch_ms) * 1_000_000
        );
    }
    let ops: Vec<ContainerOp> = r.containers.iter().map(|e| e.op).collect();
    assert!(
        ops.contains(&ContainerOp::Pause) && ops.contains(&ContainerOp::Resume),
        "{ops:?}"
    );
    assert!(
        err.contains("1 activations started in the log but never ended"),
        "{err}"
    );
}
