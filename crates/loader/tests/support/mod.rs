//! Shared by the integration tests: whether kernel tests can run here, a private cgroup root per
//! test that is removed (processes killed, directories removed deepest first) even when the test
//! fails, a guard for spawned pws-load processes, and readers of what pws-load writes.

#![allow(dead_code)] // each test file uses part of it

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use pws_loader::cgroup;
use pws_openwhisk::doc::ActivationDoc;

pub const BIN: &str = env!("CARGO_BIN_EXE_pws-load");

pub fn workload(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("workloads")
        .join(name)
}

pub fn azure_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/azure-functions-2019")
}

/// A cgroup directory of our own under the v2 hierarchy; removed with everything in it on drop.
#[derive(Debug)]
pub struct TestRoot {
    pub path: PathBuf,
}

impl Drop for TestRoot {
    fn drop(&mut self) {
        if let Err(e) = cgroup::remove_tree(&self.path) {
            eprintln!("cleanup of {}: {e:#}", self.path.display());
        }
    }
}

/// A private cgroup root for test `name`, or None (with the reason printed; a failure under CI)
/// where kernel tests cannot run: they need root and cgroup v2.
pub fn kernel_root(name: &str) -> Option<TestRoot> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        cannot_run(&format!(
            "{name}: kernel tests need root (cgroup v2 directories are created)"
        ));
        return None;
    }
    let base = cgroup::default_root();
    if let Some(why) = cgroup::unusable_reason(&base) {
        cannot_run(&format!("{name}: {why}"));
        return None;
    }
    let path = base.join(format!("pws-load-test-{}-{name}", std::process::id()));
    // A leftover from an earlier run of this very pid cannot be in use: start clean.
    let _ = cgroup::remove_tree(&path);
    std::fs::create_dir(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
    Some(TestRoot { path })
}

/// Kills a spawned pws-load on drop (and reaps it); the cgroups it made are under a TestRoot.
#[derive(Debug)]
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

impl ChildGuard {
    /// Waits for exit up to `timeout`; the exit status, or None if still running.
    pub fn wait_for(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(s)) = self.0.try_wait() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

pub fn read_records(path: &Path) -> Vec<ActivationDoc> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| {
            serde_json::from_str::<ActivationDoc>(l)
                .unwrap_or_else(|e| panic!("not an activation record ({e}): {l}"))
        })
        .collect()
}

pub fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Checks one record against OpenWhisk's stored form and the cold-start convention.
pub fn check_record(d: &ActivationDoc) {
    assert!(
        is_hex(&d.activation_id, 32),
        "activationId {}",
        d.activation_id
    );
    assert_eq!(d.subject, d.namespace);
    assert!(d.end >= d.start, "{d:?}");
    assert_eq!(d.duration, Some(d.end - d.start), "{d:?}");
    assert!(d.status_code().is_some(), "{d:?}");
    assert_eq!(
        d.annotation("path").and_then(|v| v.as_str()),
        Some(format!("{}/{}", d.namespace, d.name).as_str())
    );
    assert!(
        d.annotation("waitTime").and_then(|v| v.as_u64()).is_some(),
        "{d:?}"
    );
    assert!(d
        .annotation("kind")
        .and_then(|v| v.as_str())
        .is_some_and(|k| k.starts_with("pws-load:")));
    let limits = d.annotation("limits").expect("limits");
    assert!(limits["memory"].as_u64().is_some() && limits["timeout"].as_u64().is_some());
    assert_eq!(limits["concurrency"], 1);
    if let Some(init) = d.annotation("initTime").and_then(|v| v.as_u64()) {
        assert!(d.duration.unwrap() >= init, "duration includes init: {d:?}");
    }
}

/// The `#tid_<n>` of an invoker log line.
pub fn tid(line: &str) -> Option<&str> {
    let start = line.find("[#tid_")? + 6;
    let end = start + line[start..].find(']')?;
    Some(&line[start..end])
}

/// The container id in `ContainerId(<id>)` of a line.
pub fn container_id(line: &str) -> Option<&str> {
    let start = line.find("ContainerId(")? + 12;
    let end = start + line[start..].find(')')?;
    Some(&line[start..end])
}

/// What a test that cannot run here does (skip outside CI, fail under CI).
pub use pws_test_support::cannot_run;
