//! `docker pause` on a hybrid host (Docker's cgroupfs driver: a v1 freezer cgroup beside the
//! container's v2 cgroup of the same path), as the real binaries see it: a cgroup pair made
//! here, frozen through the v1 `freezer.state` for half a second while `pws-record` runs, must
//! come out of `pws-analyze` paused for that long on the v2 cgroup's container row.
//!
//! Needs root and both hierarchies; fails under CI (`CI` set) when it cannot run, else skips
//! saying why.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pws_tests::{bin, cgroup2_mount, run_with_timeout, TestCgroup};

const FREEZER: &str = "/sys/fs/cgroup/freezer";

/// A v1 freezer cgroup, thawed, emptied and removed on drop, even when the test fails.
struct V1Cgroup(PathBuf);

impl Drop for V1Cgroup {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0.join("freezer.state"), "THAWED");
        for _ in 0..100 {
            let procs = std::fs::read_to_string(self.0.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter_map(|p| p.trim().parse::<i32>().ok()) {
                // SAFETY: plain kill(2) of a process this test started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            if std::fs::remove_dir(&self.0).is_ok() || !self.0.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("warning: could not remove {}", self.0.display());
    }
}

/// The process made for the cgroups, killed on drop.
struct Sleeper(Child);

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cannot_run() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("needs root (system-wide perf, cgroups)".into());
    }
    if cgroup2_mount().is_none() {
        return Some("no cgroup v2 hierarchy".into());
    }
    if !Path::new(FREEZER).join("cgroup.procs").exists() {
        return Some(format!("no cgroup v1 freezer hierarchy at {FREEZER}"));
    }
    None
}

#[test]
fn a_v1_freeze_pauses_the_v2_cgroup_of_the_same_path() {
    if let Some(why) = cannot_run() {
        assert!(std::env::var_os("CI").is_none(), "CI must run this: {why}");
        eprintln!("skipping: {why}");
        return;
    }
    let v2 = TestCgroup::create("pws-test-pause");
    let v1 = V1Cgroup(Path::new(FREEZER).join(v2.hierarchy_path.trim_start_matches('/')));
    std::fs::create_dir(&v1.0).unwrap();
    let sleeper = Sleeper(
        Command::new("sleep")
            .arg("30")
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = sleeper.0.id().to_string();
    std::fs::write(v2.path.join("cgroup.procs"), &pid).unwrap();
    std::fs::write(v1.0.join("cgroup.procs"), &pid).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("pause.pws");
    let times = dir.path().join("times");
    // The frozen time as the writer sees it: from just before the freeze's write to just
    // after the thaw's.
    let state = v1.0.join("freezer.state");
    let script = format!(
        "sleep 0.5; date +%s%N > {t}; echo FROZEN > {s}; sleep 0.5; echo THAWED > {s}; date +%s%N >> {t}; sleep 0.3",
        t = times.display(),
        s = state.display()
    );
    let out = run_with_timeout(
        Command::new(bin("pws-record")).arg("-o").arg(&trace).args([
            "--quiet",
            "--energy",
            "simulated",
            "--",
            "sh",
            "-c",
            &script,
        ]),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t: Vec<u64> = std::fs::read_to_string(&times)
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    let frozen_ns = t[1] - t[0];

    let tables = dir.path().join("tables");
    let out = run_with_timeout(
        Command::new(bin("pws-analyze"))
            .arg(&trace)
            .args(["-q", "-o"])
            .arg(&tables),
        Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = containers(&tables);
    let row = rows
        .iter()
        .find(|r| r.0 == v2.hierarchy_path)
        .unwrap_or_else(|| panic!("no container row for {}: {rows:?}", v2.hierarchy_path));
    let err = (row.1 as f64 - frozen_ns as f64).abs() / frozen_ns as f64;
    eprintln!(
        "frozen {frozen_ns} ns by the writer's clock, paused_ns {} ({}), off by {:.2} %",
        row.1,
        row.2,
        err * 100.0
    );
    assert!(err < 0.05, "paused_ns {} vs frozen {frozen_ns}", row.1);
    assert_eq!(row.2, "cgroup-v1-freezer");
}

/// (cgroup, paused_ns, paused_source) of every row of the `containers` table.
fn containers(tables: &Path) -> Vec<(String, u64, String)> {
    use arrow_array::{Array, StringArray, UInt64Array};
    let mut rows = Vec::new();
    let mut stack = vec![tables.join("containers")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().is_none_or(|x| x != "parquet") {
                continue;
            }
            let f = std::fs::File::open(&p).unwrap();
            let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
                .unwrap()
                .build()
                .unwrap();
            for b in r {
                let b = b.unwrap();
                let s = |n: &str| {
                    b.column_by_name(n)
                        .unwrap()
                        .as_any()
                        .downcast_ref::<StringArray>()
                        .unwrap()
                        .clone()
                };
                let (cg, src) = (s("cgroup"), s("paused_source"));
                let ns = b.column_by_name("paused_ns").unwrap();
                let ns = ns.as_any().downcast_ref::<UInt64Array>().unwrap();
                for i in 0..b.num_rows() {
                    let v = if ns.is_null(i) { 0 } else { ns.value(i) };
                    rows.push((cg.value(i).to_owned(), v, src.value(i).to_owned()));
                }
            }
        }
    }
    rows
}
